"""BROJA under CPU contention (issue 15, goal "Scale"): one pmf per size, solved on an idle
machine and while two other processes keep both cores busy, with the caller's BLAS set to 2
threads (numpy's default on this machine). The solver runs with one BLAS thread itself when its
Schur complement is small (``pidkit.discrete.broja._core.ONE_THREAD_SCHUR``); the table shows
the slowdown under contention (goal: at most 2x) and, for comparison, the same solve with that
pinning switched off (the threshold set to 0 for the row).

Run from the repository root: ``python benchmarks/broja_contention.py``. Results in
``benchmarks/results/broja_contention.*``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from _common import blas_threads, format_seconds, time_call, write_results

KS = (16, 24, 32, 48, 64)
BUSY_PROCESSES = 2
GOAL = 2.0


def main() -> None:
    import pidkit
    from pidkit.discrete.broja import _core

    pinned_up_to = _core.ONE_THREAD_SCHUR
    rng = np.random.default_rng(0)
    pmfs = {k: rng.dirichlet(np.ones(k**3)).reshape(k, k, k) for k in KS}
    rows = []
    with blas_threads(2) as blas:
        pidkit.broja(pmfs[KS[0]])                                   # warm-up

        def measure() -> dict[tuple[int, bool], float]:
            out = {}
            for k, p in pmfs.items():
                for pinned in (True, False):
                    _core.ONE_THREAD_SCHUR = pinned_up_to if pinned else 0
                    out[(k, pinned)] = time_call(lambda p=p: pidkit.broja(p), repeat=2,
                                                 warmup=0).best
            _core.ONE_THREAD_SCHUR = pinned_up_to
            return out

        idle = measure()
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(BUSY_PROCESSES)]
        try:
            time.sleep(1.0)
            loaded = measure()
        finally:
            for proc in busy:
                proc.kill()
    for k in KS:
        for pinned in (True, False):
            ratio = loaded[(k, pinned)] / idle[(k, pinned)]
            rows.append({"k": k, "solver_threads": ("1 (pinned)" if pinned and k * k
                                                    <= pinned_up_to else "caller's (2)"),
                         "idle": format_seconds(idle[(k, pinned)]),
                         "busy": format_seconds(loaded[(k, pinned)]),
                         "slowdown": f"{ratio:.2f}x", "ratio": ratio,
                         "goal": ("met" if ratio <= GOAL else "not met") if pinned else "-",
                         "idle_s": idle[(k, pinned)], "busy_s": loaded[(k, pinned)]})
            print(rows[-1], flush=True)
    notes = [
        f"One Dirichlet(1) pmf of shape (k, k, k) per size, default tol 1e-9 bits; best of 2 "
        f"calls; busy = {BUSY_PROCESSES} processes spinning `while True: pass` on the 2 cores.",
        f"The caller's BLAS is set to 2 threads (threadpoolctl); the solver pins one thread "
        f"when |Y| min(|T|, |S|) <= {pinned_up_to} (the default; rows 'caller's (2)' with "
        "k <= 64 switch that off for comparison).",
        f"Goal (issue 15): at most {GOAL:g}x slower under contention.",
    ]
    write_results("broja_contention", rows, blas=blas,
                  columns=["k", "solver_threads", "idle", "busy", "slowdown", "goal"],
                  headers={"solver_threads": "solver BLAS threads", "idle": "idle machine",
                           "busy": "both cores busy", "slowdown": "busy / idle"},
                  title="BROJA under CPU contention (issue 15)", notes=notes)


if __name__ == "__main__":
    main()
