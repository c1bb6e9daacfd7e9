"""The ``pidkit`` command line: ``pidkit demo``, ``pidkit pid FILE``, ``pidkit measures``.

Errors in the input (a bad file, an unknown column, a pmf that does not sum to 1, a file that is
not UTF-8, ...) print one line ``pidkit: error: ...`` to standard error and exit with status 2,
naming the CSV column, line or option (never an internal argument). See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import dataclasses
import io
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import gates as gates_module
from .decompose import pid
from .discrete import MEASURES, available_measures
from .errors import PIDKitError
from .lattice import MAX_SOURCES, lattice, node_label
from .result import to_plain, unit_name
from .samples import joint_pmf
from .validation import MAX_TABLE_CELLS, check_base

__all__ = ["main"]

USAGE_ERROR = 2

#: Largest integer code a CSV may hold (numpy's int64).
MAX_CODE = 2**63 - 1
#: What a code in a CSV cell may look like: ASCII digits with an optional sign.
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
#: What a number in a CSV cell may look like (ASCII): an integer, or a decimal such as 1.0 or 1e3.
_ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: Cells that mark a missing value in a column of numbers (compared in lower case).
_MISSING = {"na", "nan", "n/a", "#n/a", "null", "none"}
#: Text files of samples, by suffix -> their field separator unless --delimiter says otherwise.
_TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}

#: Library argument -> the command-line option it comes from, for error messages.
_OPTIONS = {"base": "--base", "target": "--target", "sources": "--sources",
            "measure": "--measure", "normalize": "--normalize"}


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


def _delimiter(text: str) -> str:
    text = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one character (use ',', ';' or '\\t')")
    return text


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
    for name in names:          # before any output: a gate no measure asked for is defined on
        n_sources = gates_module.GATES[name].n_sources
        if not _measures_for(n_sources, wanted):
            limits = ", ".join(f"{m} at most {MEASURES[m].max_sources}" for m in wanted)
            raise _CLIError(f"--measure: gate {name} has {n_sources} sources ({limits}). Add a "
                            "measure defined for any number of sources (e.g. imin), or choose "
                            "a gate with fewer sources with --gate")
    print(f"PID atoms of the canonical gates, in {unit_name(args.base)} (target Y, sources X0, "
          f"X1, ...)")
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
        print(f"  {'I(Y;all)':<{width}}{float(results[0].mutual_information):>12.6f}")
    return 0


# --- pid FILE ------------------------------------------------------------------------------
def _check_measure(name: str) -> str:
    if name.lower() not in MEASURES:
        raise _CLIError(f"--measure: unknown measure {name!r}. Use one of: "
                        f"{', '.join(sorted(MEASURES))}")
    return name.lower()


def _encoding(name: str) -> str:
    """The codec for ``--encoding``: UTF-8 always as ``utf-8-sig``, which drops the byte-order
    mark Excel writes at the start of "CSV UTF-8" files."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise _CLIError(f"--encoding: unknown encoding {name!r}; use e.g. utf-8, latin-1 or "
                        f"cp1252") from None
    try:                # bytes-to-bytes codecs (base64, zlib) and rot13 are not text encodings
        "a,b".encode(info.name).decode(info.name)
    except (LookupError, UnicodeError):
        raise _CLIError(f"--encoding: {name!r} is not a text encoding; use e.g. utf-8, "
                        f"latin-1 or cp1252") from None
    return "utf-8-sig" if info.name in ("utf-8", "utf-8-sig") else info.name


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if data.startswith(b"PK\x03\x04"):
            raise _CLIError(f"{path}: looks like a spreadsheet workbook (.xlsx), not a CSV; "
                            f"export it as CSV UTF-8") from None
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise _CLIError(f"{path}: the file is UTF-16 (it starts with a UTF-16 byte-order "
                            f"mark); save it as CSV UTF-8, or pass --encoding utf-16") from None
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        shown = "UTF-8" if encoding == "utf-8-sig" else encoding
        raise _CLIError(f"{path}: line {line} is not valid {shown} (byte "
                        f"0x{data[exc.start]:02x} at position {column}); save the file as CSV "
                        f"UTF-8, or pass its encoding, e.g. --encoding latin-1 or --encoding "
                        f"cp1252") from None
    except UnicodeError as exc:    # codecs that do not say where (punycode)
        raise _CLIError(f"{path}: cannot be decoded as {encoding} ({exc}); save the file as "
                        f"CSV UTF-8, or pass its encoding, e.g. --encoding latin-1") from None


def _read_csv(path: Path, encoding: str = "utf-8",
              delimiter: str = ",") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of every non-empty row below it."""
    text = _decode(path, path.read_bytes(), _encoding(encoding))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise _CLIError(f"{path}: line {reader.line_num}: {exc}; is it a text CSV "
                        f"file?") from None
    if not rows:
        raise _CLIError(f"{path}: the file is empty; expected a header row and samples")
    header = [h.strip() for h in rows[0][1]]
    if not all(header):
        raise _CLIError(f"{path}: the header has an empty column name ({header}); name every "
                        f"column")
    if all(_ASCII_INTEGER.fullmatch(h) for h in header):
        raise _CLIError(f"{path}: the first line {header} holds integer codes, not column "
                        f"names (is the header row missing? it would be read as names and its "
                        f"sample lost); add a first line naming the columns, e.g. "
                        f"{','.join(_example_names(len(header)))}")
    if len(set(header)) != len(header):
        raise _CLIError(f"{path}: the header repeats a column name ({header})")
    if len(rows) < 2:
        raise _CLIError(f"{path}: no samples below the header")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise _CLIError(f"{path}: line {line} has {len(row)} fields, the header has "
                            f"{len(header)}")
    return header, rows[1:]


def _example_names(count: int) -> list[str]:
    """Column names to suggest for a header: ``y, x0, x1, ...`` (the target first)."""
    return ["y"] + [f"x{i}" for i in range(count - 1)]


def _column(rows: list[tuple[int, list[str]]], index: int, name: str,
              path: Path) -> np.ndarray:
    """Column ``name`` as compact codes ``0..k-1`` (the distinct values in increasing order:
    unobserved codes carry no probability, so the PID is the same, and labels such as 10**12
    need no table of that size).

    A column of numbers holds integer codes (whole-number decimals such as ``1.0`` count, as
    the library reads them); a column with no number in it holds labels (``cat``, ``dog``),
    numbered in sorted order, as :func:`pidkit.joint_pmf` numbers labels. A column that mixes
    numbers and words is refused: one of them is most likely a typo."""
    texts = []
    for line, row in rows:
        text = row[index].strip()
        if not text:
            raise _CLIError(f"{path}: line {line}, column {name!r} is empty; fill in or drop "
                            f"the samples with missing values")
        texts.append(text)
    numeric = [bool(_ASCII_NUMBER.fullmatch(t)) for t in texts]
    if not any(numeric):                       # labels
        _, codes = np.unique(np.array(texts, dtype=str), return_inverse=True)
        return codes.reshape(-1)
    first_number = numeric.index(True)
    values = []
    for (line, _), text, is_number in zip(rows, texts, numeric, strict=True):
        where = f"{path}: line {line}, column {name!r}"
        if not is_number:
            shown = f"{text!r} " + ("marks a missing value" if text.lower() in _MISSING
                                    else "is not an integer code")
            raise _CLIError(f"{where}: {shown}, but line {rows[first_number][0]} holds the "
                            f"number {texts[first_number]!r}: a column holds integer codes "
                            f"(0, 1, 2, ...) or labels (words), not both; fill in or drop the "
                            f"samples with missing values, or re-code the column")
        values.append(_code(text, where))
    _, codes = np.unique(np.array(values, dtype=np.int64), return_inverse=True)
    return codes.reshape(-1)


def _code(text: str, where: str) -> int:
    """The integer code written as ``text`` (ASCII digits, or a whole-number decimal)."""
    if _ASCII_INTEGER.fullmatch(text):
        try:
            value = int(text)
        except ValueError:   # longer than Python converts (4300 digits)
            raise _CLIError(f"{where}: {text[:20]}... is too large for a code; re-code the "
                            f"column as 0, 1, 2, ...") from None
    else:
        number = float(text)
        if not math.isfinite(number):
            raise _CLIError(f"{where}: {text} is too large for a code; re-code the column as "
                            f"0, 1, 2, ...")
        if not number.is_integer():
            raise _CLIError(f"{where}: {text!r} is not an integer code (a column of numbers "
                            f"holds codes 0, 1, 2, ...; discretise continuous values first)")
        value = int(number)
    if value < 0:
        raise _CLIError(f"{where} contains negative codes ({value}); codes are 0, 1, 2, ... "
                        f"(re-code the column)")
    if value > MAX_CODE:
        raise _CLIError(f"{where}: {value} is too large for a code (above 2**63 - 1); "
                        f"re-code the column as 0, 1, 2, ...")
    return value


def _groups(tokens: Sequence[str], flag: str = "--sources") -> list[list[str]]:
    groups = [[t.strip() for t in token.split("+")] for token in tokens]
    if any(not t for g in groups for t in g):
        raise _CLIError(f"{flag}: empty name in {list(tokens)}; write grouped columns as a+b")
    return groups


def _delimiter_hint(header: list[str]) -> str:
    """``"; is the file separated by ';'? Pass --delimiter ';'"`` when the header is a single
    column that holds a likely delimiter (the file was read with the wrong one), else ``""``."""
    if len(header) != 1:
        return ""
    sep = next((d for d in ";\t|" if d in header[0]), None)
    return "" if sep is None else f"; is the file separated by {sep!r}? Pass --delimiter {sep!r}"


def _twice_message(listed: list[str], target_cols: list[str], default_target: bool) -> str:
    """The error for columns listed twice in ``--target``/``--sources``: it names them, and
    the default target (the first column) when that is how a source became the target too."""
    twice = sorted({c for c in listed if listed.count(c) > 1})
    message = (f"--target/--sources: column(s) {twice} used twice; each column may belong to "
               "one variable")
    if default_target and target_cols[0] in twice:
        message += (f" (without --target the target is the first column, {target_cols[0]!r}; "
                    "pass --target)")
    return message


def _pmf_from_csv(path: Path, target: str | None, sources: Sequence[str] | None,
                  encoding: str = "utf-8", delimiter: str = ","):
    header, rows = _read_csv(path, encoding, delimiter)
    target_cols = _groups([target], "--target")[0] if target is not None else [header[0]]
    if sources:
        source_groups = _groups(sources)
    else:
        source_groups = [[h] for h in header if h not in target_cols]
    hint = _delimiter_hint(header)
    for col in target_cols + [c for g in source_groups for c in g]:
        if col not in header:
            raise _CLIError(f"{path}: no column {col!r}; the header has {header}{hint}")
    listed = target_cols + [c for g in source_groups for c in g]
    used = list(dict.fromkeys(listed))
    if len(used) != len(listed):
        raise _CLIError(_twice_message(listed, target_cols, target is None))
    if not source_groups:
        advice = hint or ". Add columns or name them with --sources"
        raise _CLIError(f"{path}: no source column; the header has only {header}{advice}")
    columns = [_column(rows, header.index(c), c, path) for c in used]
    sizes = [int(c.max()) + 1 for c in columns]
    if math.prod(sizes) > MAX_TABLE_CELLS:
        listing = ", ".join(f"{c!r} ({k})" for c, k in zip(used, sizes, strict=True))
        raise _CLIError(f"{path}: the columns used have so many distinct values ({listing}) "
                        f"that their joint table would have {math.prod(sizes):.2g} cells, more "
                        f"than {MAX_TABLE_CELLS:,}; use fewer columns or coarsen the ones with "
                        f"many values")
    p = joint_pmf(*columns)
    position = {c: i for i, c in enumerate(used)}
    target_axes = [position[c] for c in target_cols]
    source_axes = [[position[c] for c in g] for g in source_groups]
    names = (["+".join(g) for g in source_groups], "+".join(target_cols))
    return p, target_axes, source_axes, names


def _axis(token: str) -> int:
    try:
        axis = int(token)
    except ValueError:
        raise _CLIError(f"{token!r} is not an axis index; for a .npy pmf --target and --sources "
                        f"take integers (group axes as 1+2)") from None
    if axis < 0:        # the range error for a too large index says [0, ndim): the same here
        raise _CLIError(f"{token!r} is not an axis index; for a .npy pmf axes are 0, 1, ... "
                        f"(no negative indices)")
    return axis


def _pmf_from_npy(path: Path, target: str | None, sources: Sequence[str] | None):
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)   # reads the header only
        if isinstance(header, np.ndarray) and header.size > MAX_TABLE_CELLS:
            raise _CLIError(f"{path}: holds {header.size:.3g} values (shape {header.shape}), "
                            f"more than {MAX_TABLE_CELLS:,}; is it the pmf?")
        del header
        p = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise _CLIError(f"{path}: cannot read the array ({exc}); save a numeric array with "
                        f"np.save") from None
    if not isinstance(p, np.ndarray):
        raise _CLIError(f"{path}: holds an archive, not one array; save the pmf with np.save")
    target_axes = ([_axis(t) for t in _groups([target], "--target")[0]] if target is not None
                   else [0])
    source_axes = ([[_axis(t) for t in g] for g in _groups(sources)] if sources else None)
    return p, target_axes, source_axes, None


def _check_source_count(measure: str, n_sources: int, what: str) -> None:
    """Refuse, in command-line terms, more sources than the measure or the lattice takes."""
    limit = MEASURES[measure].max_sources
    if limit is not None and n_sources > limit:
        others = ", ".join(m for m in sorted(MEASURES) if MEASURES[m].max_sources is None)
        raise _CLIError(f"--sources: measure {measure!r} takes at most {limit} sources, got "
                        f"{n_sources} ({what}); group {what} into composite sources with a+b, "
                        f"or use --measure {others}")
    if n_sources > MAX_SOURCES:
        raise _CLIError(f"--sources: {n_sources} sources ({what}) are more than the {MAX_SOURCES} "
                        f"the redundancy lattice is built for; group {what} with a+b")


def _cli_message(message: str, path: Path | None = None) -> str:
    """A library error in command-line terms: ``base:`` -> ``--base:``, ``p:`` -> the file
    (and ``divide p by 100`` -> ``divide the array by 100``), ``normalize=True`` ->
    ``--normalize``."""
    head, sep, rest = message.partition(": ")
    if sep and head in _OPTIONS:
        message = f"{_OPTIONS[head]}: {rest}"
    elif sep and head == "p" and path is not None:
        message = f"{path}: {rest.replace('divide p by 100', 'divide the array by 100')}"
    return message.replace("Pass normalize=True", "Pass --normalize")


def _pid(args) -> int:
    measure = _check_measure(args.measure)
    base = check_base(args.base)
    path = Path(args.file)
    if path.is_dir():
        raise _CLIError(f"{path}: is a directory; give a .csv or .npy file")
    if not path.is_file():
        raise _CLIError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        for flag, value in (("--encoding", args.encoding), ("--delimiter", args.delimiter)):
            if value is not None:   # never silently ignored: the user meant another file
                raise _CLIError(f"{flag}: applies to a text file of samples (.csv, .tsv, .txt), "
                                f"but {path} is a .npy pmf (binary, read with np.load); drop "
                                f"{flag}, or give the CSV it was meant for")
        p, target, sources, names = _pmf_from_npy(path, args.target, args.sources)
        n_sources = len(sources) if sources else p.ndim - len(set(target))
        _check_source_count(measure, n_sources, "axes")
    elif suffix in _TEXT_SUFFIXES:
        delimiter = args.delimiter or _TEXT_SUFFIXES[suffix]
        p, target, sources, names = _pmf_from_csv(path, args.target, args.sources,
                                                  args.encoding or "utf-8", delimiter)
        _check_source_count(measure, len(sources), "columns")
    else:
        raise _CLIError(f"{path}: unknown file type {suffix!r}; give a .csv (or .tsv, .txt) of "
                        f"discrete samples (integer codes or labels) or a .npy pmf")
    try:
        result = pid(p, target=target if len(target) > 1 else target[0], sources=sources,
                     measure=measure, base=base, normalize=args.normalize)
    except PIDKitError as exc:
        raise _CLIError(_cli_message(str(exc), path)) from None
    if names is not None:
        result = dataclasses.replace(result, source_names=tuple(names[0]), target_name=names[1])
    if args.json:
        print(json.dumps(to_plain(result.to_dict(), strict=True), indent=2, allow_nan=False))
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

    p = sub.add_parser("pid", help="PID of a CSV of discrete samples (integer codes or "
                                   "labels) or a .npy pmf")
    p.add_argument("file", help="a .csv file (header row, integer codes or labels) or a .npy "
                                "pmf")
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
    p.add_argument("--encoding", default=None,
                   help="text encoding of a CSV (default utf-8, with or without the byte-order "
                        "mark Excel writes); e.g. latin-1, cp1252 (refused for a .npy file)")
    p.add_argument("--delimiter", default=None, type=_delimiter,
                   help="field separator of a CSV (default ',', and a tab for a .tsv file; "
                        "e.g. ';' or '\\t'; refused for a .npy file)")
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
    except _CLIError as exc:
        print(f"pidkit: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except PIDKitError as exc:
        print(f"pidkit: error: {_cli_message(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:
        print(f"pidkit: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

