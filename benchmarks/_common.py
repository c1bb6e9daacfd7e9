"""Shared helpers for the scripts in ``benchmarks/``: machine information, BLAS pinning, timing,
and writing ``benchmarks/results/<name>.md`` and ``.json``.

Every benchmark script follows the same shape::

    from _common import Timer, blas_threads, environment, time_call, write_results

    with blas_threads(1) as blas:                 # pin BLAS/OpenMP threads, report the setting
        ours = time_call(lambda: f(x), repeat=5)  # Timing(best, median, runs)
        theirs = time_call(lambda: g(x), repeat=3, budget_s=60)
    rows = [{"case": "parity-4", "ours_s": ours.best, "anchor_s": theirs.best,
             "speedup": theirs.best / ours.best}]
    write_results("my_benchmark", rows, blas=blas, title="...", notes=["..."],
                  columns=["case", "ours_s", "anchor_s", "speedup"])

Run scripts from the repository root (``python benchmarks/my_benchmark.py``) or from
``benchmarks/``; both find this module because Python puts the script's folder on ``sys.path``.

Rules these helpers support (docs/developers): speed claims are ratios against an anchor timed
in the same run, BLAS threads are pinned with threadpoolctl and the setting is reported, and every
result file records the machine, date and package versions.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pidkit.result import to_plain

__all__ = [
    "RESULTS_DIR",
    "Timing",
    "Timer",
    "blas_threads",
    "environment",
    "format_seconds",
    "markdown_table",
    "package_versions",
    "time_call",
    "write_results",
]

#: Where result files go: ``benchmarks/results/``.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Packages whose versions every result file records (those not installed are listed as None).
DEFAULT_PACKAGES = ("pidkit", "numpy", "scipy", "dit", "torch", "cvxpy", "threadpoolctl")


# --- machine and environment -----------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other processes sharing the machine slow timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_versions(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Version of each package in ``packages`` (``None`` when it is not installed).

    Importing is done here on purpose: only call this at the end of a benchmark, after timing.
    """
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except ImportError:
            out[name] = None
    return out


def environment(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, Any]:
    """Machine, date (UTC) and versions to store next to every result.

    Returns a dict with ``date_utc``, ``machine`` (cpu model, logical cores, memory, OS,
    Python, load averages at the time of the call) and ``versions`` (see
    :func:`package_versions`). Add a ``gpu`` entry yourself where a benchmark uses one.
    """
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": {
            "cpu": _cpu_model(),
            "logical_cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "load_average": _load_average(),
        },
        "versions": package_versions(packages),
    }


# --- BLAS pinning --------------------------------------------------------------------------
@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[dict[str, Any]]:
    """Limit BLAS and OpenMP thread pools to ``n`` threads inside the block (threadpoolctl).

    Yields a dict describing the setting (``{"limit": n, "pools": [...]}``) to pass as
    ``write_results(..., blas=...)``. Torch's intra-op threads are not a BLAS pool: set
    ``torch.set_num_threads`` yourself if a benchmark uses torch, and record it in ``notes``.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=n):
        pools = [
            {"api": pool.get("internal_api"), "library": Path(pool.get("filepath", "")).name,
             "num_threads": pool.get("num_threads")}
            for pool in threadpool_info()
        ]
        yield {"limit": n, "pools": pools}


# --- timing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls: ``best`` (minimum), ``median`` and every run."""

    best: float
    median: float
    runs: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_call(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1,
              budget_s: float | None = None) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls (``time.perf_counter``).

    ``budget_s`` stops early (after at least one timed run) once the total timed seconds exceed
    it, for slow anchors such as dit on 4 sources. The warm-up is skipped when ``warmup=0``;
    use that for anchors that take many seconds per call.
    """
    for _ in range(warmup):
        fn()
    runs: list[float] = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
        if budget_s is not None and sum(runs) > budget_s:
            break
    return Timing(min(runs), statistics.median(runs), tuple(runs))


class Timer:
    """Context manager measuring one block: ``with Timer() as t: ...; t.seconds``."""

    seconds: float = math.nan

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._start


def format_seconds(seconds: float | None) -> str:
    """Human-readable duration: ``812 us``, ``3.41 ms``, ``2.05 s``; ``-`` for None/NaN."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


# --- output --------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), columns in ``columns`` order (default: first row's
    keys). ``headers`` renames columns for display. Floats are shown with 4 significant digits;
    pre-format cells as strings (e.g. with :func:`format_seconds`) to control them."""
    if not rows:
        return "(no rows)\n"
    cols = list(columns) if columns is not None else list(rows[0])
    names = [(headers or {}).get(c, c) for c in cols]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(name: str, rows: Sequence[Mapping[str, Any]], *, title: str,
                  blas: Mapping[str, Any] | None, columns: Sequence[str] | None = None,
                  headers: Mapping[str, str] | None = None, notes: Sequence[str] = (),
                  extra: Mapping[str, Any] | None = None,
                  packages: Sequence[str] = DEFAULT_PACKAGES) -> tuple[Path, Path]:
    """Write ``benchmarks/results/<name>.md`` and ``<name>.json`` and print the table.

    Parameters
    ----------
    name : str
        File stem, usually the script's name.
    rows : sequence of dict
        One dict per table row; stored verbatim in the JSON (numpy scalars converted).
    title : str
        Heading of the Markdown file.
    blas : dict or None
        What :func:`blas_threads` yielded (``None`` if the benchmark does not pin, which the
        file then says).
    columns, headers : optional
        Columns shown in the Markdown table and their display names.
    notes : sequence of str
        Bullet points under the table (what is compared, tolerances, caveats).
    extra : dict, optional
        More data for the JSON only (raw timings, settings).

    Returns
    -------
    (Path, Path)
        The Markdown and JSON paths.
    """
    env = environment(packages)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, columns, headers)
    machine = env["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v is not None)
    blas_text = ("not pinned" if blas is None else
                 f"{blas['limit']} thread(s) via threadpoolctl "
                 f"({', '.join(p['library'] for p in blas['pools']) or 'no pools found'})")
    md = [f"# {title}", "",
          f"- Date: {env['date_utc']}",
          f"- Machine: {machine['cpu']}, {machine['logical_cores']} logical cores, "
          f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}",
          f"- Load average (1/5/15 min) when the results were written: "
          f"{machine['load_average']} on {machine['logical_cores']} cores",
          f"- BLAS threads: {blas_text}",
          f"- Versions: {versions}", "", table]
    if notes:
        md += [f"- {note}" for note in notes] + [""]
    md_path = RESULTS_DIR / f"{name}.md"
    json_path = RESULTS_DIR / f"{name}.json"
    md_path.write_text("\n".join(md), encoding="utf-8")
    payload = {"name": name, "title": title, **env, "blas": blas, "rows": rows,
               "notes": list(notes), "extra": extra or {}}
    json_path.write_text(json.dumps(to_plain(payload, strict=True), indent=2) + "\n",
                         encoding="utf-8")
    print(table)
    print(f"wrote {md_path} and {json_path}")
    return md_path, json_path
