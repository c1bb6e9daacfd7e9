"""Latency of one small BROJA solve (issue 15, goal 2): ``pidkit.pid(p, measure="broja")`` on a
single k x k x k pmf, k in {3, 4, 6, 8}, against a warm cvxpy + Clarabel solve of the same pmf
in the same run (the test suite's program, ``tests/_broja_reference.py``), and against our own
general batched solver (the path every small pmf took before the lean driver,
``pidkit.discrete.broja._small``).

Two kinds of pmf as in ``benchmarks/broja.py``: Dirichlet(1) and "sparse" (70% of the cells
zeroed). Each time is the median of ``--repeat`` calls after one warm-up call (cvxpy: median of
5 after one warm-up); BLAS threads pinned to 1. Results in ``benchmarks/results/broja_small.*``.

Run from the repository root: ``python benchmarks/broja_small.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import blas_threads, format_seconds, time_call, write_results
from broja import make_pmf  # the pmfs of benchmarks/broja.py (same generator and seeds)

TESTS = Path(__file__).resolve().parents[1] / "tests"   # the test suite's cvxpy program

KS = (3, 4, 6, 8)
KINDS = ("dirichlet", "sparse")
GOAL_S = 1e-3


def main(repeat: int = 51) -> None:
    sys.path.insert(0, str(TESTS))
    from _broja_reference import information_terms, reference_unique

    import pidkit
    from pidkit.discrete.broja import _small

    rows = []
    with blas_threads(1) as blas:
        for kind in KINDS:
            for k in KS:
                p = make_pmf(k, kind, seed=k)
                def call(p=p):
                    return pidkit.pid(p, measure="broja")

                r = call()
                lean = time_call(call, repeat=repeat)
                lean_rows = _small.LEAN_ROWS
                _small.LEAN_ROWS = 0                        # force the general solver
                try:
                    r_general = call()
                    general = time_call(call, repeat=max(5, repeat // 5))
                finally:
                    _small.LEAN_ROWS = lean_rows
                anchor = time_call(lambda p=p: reference_unique(p), repeat=5)
                red_cvxpy = information_terms(p)[0] - reference_unique(p)
                row = {
                    "kind": kind, "k": k,
                    "lean_s": format_seconds(lean.median), "lean_seconds": lean.median,
                    "lean_best_seconds": lean.best,
                    "iterations": r.solver.iterations,
                    "gap_bits": f"{r.solver.certificate.gap:.1e}",
                    "gap": r.solver.certificate.gap, "status": r.solver.status,
                    "general_s": format_seconds(general.median),
                    "general_seconds": general.median,
                    "general_iterations": r_general.solver.iterations,
                    "cvxpy_s": format_seconds(anchor.median), "cvxpy_seconds": anchor.median,
                    "dred_general": f"{abs(r.redundancy - r_general.redundancy):.1e}",
                    "dred_cvxpy": f"{abs(r.redundancy - red_cvxpy):.1e}",
                    "speedup_vs_general": f"{general.median / lean.median:.1f}x",
                    "speedup_vs_cvxpy": f"{anchor.median / lean.median:.1f}x",
                    "goal_1ms": "met" if lean.median <= GOAL_S else
                                f"not met ({lean.median / GOAL_S:.1f}x over)",
                }
                rows.append(row)
                print({key: v for key, v in row.items() if not key.endswith("seconds")},
                      flush=True)
    columns = ["kind", "k", "lean_s", "iterations", "gap_bits", "general_s", "cvxpy_s",
               "speedup_vs_general", "speedup_vs_cvxpy", "dred_general", "dred_cvxpy",
               "goal_1ms"]
    headers = {"lean_s": "pidkit (median)", "gap_bits": "gap (bits)",
               "general_s": "general solver (median)", "cvxpy_s": "cvxpy+Clarabel warm (median)",
               "speedup_vs_general": "vs general", "speedup_vs_cvxpy": "vs cvxpy",
               "dred_general": "dRed general", "dred_cvxpy": "dRed cvxpy",
               "goal_1ms": "goal <= 1 ms"}
    notes = [
        "pidkit: median wall time of one pidkit.pid(p, measure='broja') call (validation, "
        "solve, certificate and result included) at the default tol = 1e-9 bits; small "
        "numpy pmfs take the lean single-pmf driver (pidkit.discrete.broja._small).",
        "general solver: the same call with the lean driver switched off "
        "(_small.LEAN_ROWS = 0), i.e. the batched solver every pmf took before.",
        "cvxpy+Clarabel warm: tests/_broja_reference.py (the exponential-cone program, "
        "tolerances 1e-10), median of 5 in-process calls after one warm-up call.",
        "dRed: absolute difference (bits) of the redundancy to ours; ours is certified "
        "within 'gap'.",
        "Issue 15's goal: <= 1 ms median and >= 10x cvxpy + Clarabel for k <= 8.",
        "The load average above shows whether other jobs shared the 2 cores.",
    ]
    write_results("broja_small", rows, blas=blas, columns=columns, headers=headers,
                  title="BROJA on one small pmf: latency (issue 15, goal 2)", notes=notes,
                  extra={"repeat": repeat})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=51, help="timed calls per pmf (ours)")
    main(parser.parse_args().repeat)
