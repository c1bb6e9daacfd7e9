"""``pidkit-distill``: command-line entry point with one subcommand per module.

Every module in :mod:`pidkit_distill.commands` is a subcommand. A module defines

- ``NAME`` (the subcommand, e.g. ``"train"``) and ``HELP`` (one line),
- ``add_arguments(parser)`` (adds its options to an ``argparse`` subparser),
- ``run(args) -> int`` (the exit status).

To add a subcommand, drop such a module into ``pidkit_distill/commands/``; nothing else changes.
Modules are imported only to build the parser (keep heavy imports inside ``run``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from pidkit.errors import PIDKitError

from . import commands

__all__ = ["build_parser", "main"]


def _command_modules() -> list:
    mods = [importlib.import_module(f"{commands.__name__}.{info.name}")
            for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")]
    return sorted((m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")),
                  key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand found in :mod:`pidkit_distill.commands`."""
    parser = argparse.ArgumentParser(prog="pidkit-distill",
                                     description="Knowledge distillation with PID-based "
                                                 "regularizers (RID and baselines).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the subcommand; errors raised on
    purpose by pidkit are printed as one line with exit status 2, warnings as one line each
    (``pidkit-distill COMMAND: warning: ...``)."""
    args = build_parser().parse_args(argv)
    prefix = f"pidkit-distill {args.command}"

    def one_line(message, category, *_args, **_kwargs) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():     # the caller's warning settings are restored after
        warnings.showwarning = one_line     # not Python's file:line and source line
        try:
            return int(args._run(args) or 0)
        except PIDKitError as exc:
            print(f"{prefix}: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
