"""The ``pidkit`` command line: ``pidkit demo``, ``pidkit pid FILE``, ``pidkit measures``.

Errors in the input (a bad file, an unknown column, a pmf that does not sum to 1, ...) print one
line ``pidkit: error: ...`` to standard error and exit with status 2. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import gates as gates_module
from .decompose import pid
from .discrete import MEASURES, available_measures
from .errors import PIDKitError
from .lattice import lattice, node_label
from .samples import joint_pmf
from .validation import check_base

__all__ = ["main"]

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``pidkit: error: ...``."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise _CLIError(message)


class _CLIError(Exception):
    pass


def _base(text: str) -> float:
    if text.strip().lower() == "e":
        return math.e
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (use 2, e or 10)") from exc


# --- demo ----------------------------------------------------------------------------------
def _measures_for(n_sources: int, wanted: Sequence[str] | None) -> list[str]:
    names = sorted(MEASURES) if not wanted else list(wanted)
    return [m for m in names
            if MEASURES[m].max_sources is None or n_sources <= MEASURES[m].max_sources]


def _demo(args) -> int:
    wanted = [_check_measure(m) for m in args.measure] if args.measure else None
    check_base(args.base)
    names = [g for g in gates_module.GATES if not args.gate or g.lower() in
             {x.lower() for x in args.gate}]
    if args.gate and len(names) != len(set(x.lower() for x in args.gate)):
        known = ", ".join(gates_module.GATES)
        raise _CLIError(f"--gate: unknown gate in {args.gate}. Use some of: {known}")
    unit = {2.0: "bits", math.e: "nats", 10.0: "hartleys"}.get(args.base, f"log base {args.base:g}")
    print(f"PID atoms of the canonical gates, in {unit} (target Y, sources X0, X1, ...)")
    for name in names:
        gate = gates_module.GATES[name]
        measures = _measures_for(gate.n_sources, wanted)
        results = [pid(gate.pmf(), measure=m, base=args.base) for m in measures]
        print(f"\n{name}: {gate.description}")
        width = max(8, *(len(node_label(a)) for a in lattice(gate.n_sources).nodes))
        print("  " + f"{'atom':<{width}}" + "".join(f"{m:>12}" for m in measures))
        for node in lattice(gate.n_sources).nodes:
            row = "".join(f"{round(float(r.atoms[node]), 6) + 0.0:>12.6f}" for r in results)
            print(f"  {node_label(node):<{width}}{row}")
        mi = float(results[0].mutual_information) if results else float("nan")
        print(f"  {'I(Y;all)':<{width}}{mi:>12.6f}")
    return 0


# --- pid FILE ------------------------------------------------------------------------------
def _check_measure(name: str) -> str:
    if name.lower() not in MEASURES:
        raise _CLIError(f"--measure: unknown measure {name!r}. Use one of: "
                        f"{', '.join(sorted(MEASURES))}")
    return name.lower()


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.reader(fh) if row]
    if not rows:
        raise _CLIError(f"{path}: the file is empty; expected a header row and samples")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        raise _CLIError(f"{path}: the header repeats a column name ({header})")
    if len(rows) < 2:
        raise _CLIError(f"{path}: no samples below the header")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise _CLIError(f"{path}: line {line} has {len(row)} fields, the header has "
                            f"{len(header)}")
    return header, rows[1:]


def _column(rows: list[list[str]], index: int, name: str, path: Path) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        text = row[index].strip()
        try:
            out[i] = int(text)
        except ValueError:
            raise _CLIError(f"{path}: line {i + 2}, column {name!r}: {text!r} is not an integer "
                            f"code (code each outcome as 0, 1, 2, ...)") from None
    return out


def _groups(tokens: Sequence[str]) -> list[list[str]]:
    groups = [[t.strip() for t in token.split("+")] for token in tokens]
    if any(not t for g in groups for t in g):
        raise _CLIError(f"--sources: empty name in {list(tokens)}; write grouped columns as a+b")
    return groups


def _pmf_from_csv(path: Path, target: str | None, sources: Sequence[str] | None):
    header, rows = _read_csv(path)
    target_cols = _groups([target])[0] if target is not None else [header[0]]
    if sources:
        source_groups = _groups(sources)
    else:
        source_groups = [[h] for h in header if h not in target_cols]
    for col in target_cols + [c for g in source_groups for c in g]:
        if col not in header:
            raise _CLIError(f"{path}: no column {col!r}; the header has {header}")
    used = list(dict.fromkeys(target_cols + [c for g in source_groups for c in g]))
    if len(used) != len(target_cols) + sum(len(g) for g in source_groups):
        raise _CLIError("--target/--sources: a column is used twice; each column may belong to "
                        "one variable")
    columns = [_column(rows, header.index(c), c, path) for c in used]
    p = joint_pmf(*columns)
    position = {c: i for i, c in enumerate(used)}
    target_axes = [position[c] for c in target_cols]
    source_axes = [[position[c] for c in g] for g in source_groups]
    names = (["+".join(g) for g in source_groups], "+".join(target_cols))
    return p, target_axes, source_axes, names


def _axis(token: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise _CLIError(f"{token!r} is not an axis index; for a .npy pmf --target and --sources "
                        f"take integers (group axes as 1+2)") from None


def _pmf_from_npy(path: Path, target: str | None, sources: Sequence[str] | None):
    try:
        p = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise _CLIError(f"{path}: cannot read the array ({exc}); save a numeric array with "
                        f"np.save") from None
    if not isinstance(p, np.ndarray):
        raise _CLIError(f"{path}: holds an archive, not one array; save the pmf with np.save")
    target_axes = [_axis(t) for t in _groups([target])[0]] if target is not None else [0]
    source_axes = ([[_axis(t) for t in g] for g in _groups(sources)] if sources else None)
    return p, target_axes, source_axes, None


def _pid(args) -> int:
    measure = _check_measure(args.measure)
    base = check_base(args.base)
    path = Path(args.file)
    if not path.is_file():
        raise _CLIError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        p, target, sources, names = _pmf_from_npy(path, args.target, args.sources)
    elif suffix in (".csv", ".txt"):
        p, target, sources, names = _pmf_from_csv(path, args.target, args.sources)
    else:
        raise _CLIError(f"{path}: unknown file type {suffix!r}; give a .csv of integer-coded "
                        f"samples or a .npy pmf")
    result = pid(p, target=target if len(target) > 1 else target[0], sources=sources,
                 measure=measure, base=base, normalize=args.normalize)
    if names is not None:
        result = dataclasses.replace(result, source_names=tuple(names[0]), target_name=names[1])
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result)
    return 0


def _measures(args) -> int:
    for name, summary in available_measures().items():
        print(f"{name:<8} {summary} ({MEASURES[name].reference})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``pidkit`` argument parser (subcommands ``demo``, ``pid``, ``measures``)."""
    parser = _Parser(prog="pidkit", description="Partial information decomposition.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="PID tables of the canonical gates under every measure")
    demo.add_argument("--measure", nargs="+", metavar="NAME",
                      help="measures to show (default: every registered measure)")
    demo.add_argument("--gate", nargs="+", metavar="NAME", help="gates to show (default: all)")
    demo.add_argument("--base", type=_base, default=2.0,
                      help="logarithm base: 2 (bits, default), e (nats), 10")
    demo.set_defaults(run=_demo)

    p = sub.add_parser("pid", help="PID of a CSV of integer-coded samples or a .npy pmf")
    p.add_argument("file", help="a .csv file (header row, integer codes) or a .npy pmf")
    p.add_argument("--target", metavar="COL",
                   help="target column (CSV, default: the first) or axis (.npy, default 0); "
                        "a+b merges several into one variable")
    p.add_argument("--sources", nargs="+", metavar="COL",
                   help="source columns or axes in order, a+b groups several into one source "
                        "(default: every other column/axis)")
    p.add_argument("--measure", default="broja", help="redundancy measure (default: broja)")
    p.add_argument("--base", type=_base, default=2.0,
                   help="logarithm base: 2 (bits, default), e (nats), 10")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--normalize", action="store_true",
                   help="divide a .npy pmf by its sum instead of rejecting it")
    p.set_defaults(run=_pid)

    m = sub.add_parser("measures", help="list the available measures")
    m.set_defaults(run=_measures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 for a usage or input error)."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (_CLIError, PIDKitError) as exc:
        print(f"pidkit: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:
        print(f"pidkit: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

