"""Errors of the library named by the command-line flags the user typed (shared by the
subcommands; the leading underscore keeps this module from being a subcommand).

pidkit's errors name the Python parameter that failed (``grad_clip: must be > 0 ...``); on the
command line that parameter is a flag (``--grad-clip``). :func:`flag_errors` wraps a library
call and re-raises each :class:`~pidkit.errors.PIDKitError` raised for one of the call's
parameters with the flag in its place, in the prefix and in the advice (``Pass grad_clip=None``
becomes ``Pass --grad-clip none``); the original error is chained. :func:`flags_of` builds the
mapping from the parsed arguments themselves, so every option of a subcommand is covered:
``dest`` ``samples_per_class`` is ``--samples-per-class``, and a parameter spelt otherwise
than its flag's ``dest`` is given as ``parameter="dest"``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator, Mapping

from pidkit.errors import PIDKitError

__all__ = ["flags_of", "flag_errors"]


def flags_of(args: argparse.Namespace, options: Mapping | None = None,
             **renames: str) -> dict[str, str]:
    """``{python parameter: flag}`` for every option of ``args`` (``dest`` ``grad_clip`` ->
    ``--grad-clip``); the keys of ``options`` (the ``--option KEY=VALUE`` entries, which are
    parameters of the method or estimator) as ``--option KEY``; and ``renames``:
    ``parameter="dest"`` for a parameter that is not called as its flag
    (``n_per_class="samples_per_class"``), or ``parameter="--flag ..."`` for an explicit
    text."""
    flags = {dest: "--" + dest.replace("_", "-") for dest in vars(args)
             if not dest.startswith("_") and dest != "command"}
    for key in options or {}:
        if isinstance(key, str) and key.isidentifier() and key not in flags:
            flags[key] = f"--option {key}"
    for param, dest in renames.items():
        flags[param] = dest if dest.startswith("--") else "--" + dest.replace("_", "-")
    return flags


def _rename(text: str, flags: Mapping[str, str]) -> str:
    """``text`` with ``param=value`` written as ``--flag value`` (``None`` as ``none``), and
    the parameters spelt in snake case (``n_per_class``, never a word of prose such as
    ``name``) written as their flags."""
    def flag(match: re.Match) -> str:
        value = match.group(2)
        return f"{flags[match.group(1)]} {'none' if value == 'None' else value}"

    names = "|".join(re.escape(p) for p in sorted(flags, key=len, reverse=True))
    text = re.sub(rf"(?<![\w.-])({names})=((?:None\b)|(?=[\w.'\"-]))", flag, text)
    snake = "|".join(re.escape(p) for p in sorted(flags, key=len, reverse=True) if "_" in p)
    if snake:
        text = re.sub(rf"(?<![\w.'\"-])({snake})(?![\w'\"=(\[])",
                      lambda m: flags[m.group(1)], text)
    return text


@contextlib.contextmanager
def flag_errors(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a :class:`~pidkit.errors.PIDKitError` whose message starts with
    ``parameter:`` for a ``parameter`` of ``flags`` as the same error type naming the flag;
    other errors pass unchanged."""
    try:
        yield
    except PIDKitError as exc:
        name, sep, rest = str(exc).partition(": ")
        if not sep or name not in flags:
            raise
        raise type(exc)(f"{flags[name]}: {_rename(rest, flags)}") from exc
