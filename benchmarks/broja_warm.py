"""Warm starts of the BROJA solver (issue 15, goal "warm starts"): a 10 x 10 x 10 torch pmf
re-solved with backward after one small move, started cold and warm
(``pidkit.broja(p, warm_start=previous)``), and a numpy parameter sweep.

Sequences: a Dirichlet(1) pmf moved by relative steps of 1e-3 and 1e-2 per cell (a random
walk), and the table of a training regulariser: a moving average (momentum 0.9) of soft
tables that a small per-step noise (5% per cell) perturbs. Each step is timed as one
``pidkit.broja`` call plus ``backward`` of the redundancy (median over the steps after the
first), at the regulariser's tolerance (1e-4 bits, ``max_iter=20``) and the default (1e-9).
The sweep: ``(1 - e) p_a + e p_b`` for 41 values of ``e`` (numpy, 10 x 10 x 10, no gradient).
BLAS and torch pinned to one thread. Results in ``benchmarks/results/broja_warm.*``.

Run from the repository root: ``python benchmarks/broja_warm.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import blas_threads, write_results

import pidkit

SHAPE = (10, 10, 10)
GOAL_S = 3e-3


def _walk(rel: float, steps: int, seed: int) -> list[np.ndarray]:
    """A Dirichlet(1) pmf moved by a relative step ``rel`` per cell at every step."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(int(np.prod(SHAPE)))).reshape(SHAPE)
    out = []
    for _ in range(steps):
        p = np.abs(p * (1.0 + rel * rng.standard_normal(SHAPE)))
        p = p / p.sum()
        out.append(p)
    return out


def _moving_average(steps: int, seed: int, momentum: float = 0.9) -> list[np.ndarray]:
    """Normalised moving averages of soft tables ``b_k = b (1 + 0.05 noise)``."""
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(0.3 * np.ones(int(np.prod(SHAPE)))).reshape(SHAPE) + 1e-4
    ema, out = np.zeros(SHAPE), []
    for _ in range(steps + 20):                     # 20 warm-up steps fill the average
        b = base * np.abs(1.0 + 0.05 * rng.standard_normal(SHAPE))
        p = momentum * ema + b
        out.append(p / p.sum())
        ema = p
    return out[20:]


def _run(tables: list[np.ndarray], tol: float, max_iter: int, warm: bool) -> dict:
    """Solve + backward per table, chained warm starts if ``warm``; times, iterations, gaps."""
    times, iterations, gaps, previous = [], [], [], None
    for p in tables:
        x = torch.tensor(p, requires_grad=True)
        start = time.perf_counter()
        r = pidkit.broja(x, tol=tol, max_iter=max_iter, warm_start=previous if warm else None)
        r.redundancy.backward()
        times.append(time.perf_counter() - start)
        iterations.append(r.solver.iterations)
        gaps.append(float(r.solver.certificate.gap))
        previous = r
    return {"median_s": float(np.median(times[1:])), "iterations": float(np.mean(iterations[1:])),
            "zero_iter": sum(i == 0 for i in iterations[1:]), "gap": max(gaps),
            "red": float(r.redundancy.detach())}


def _sweep(tol: float, warm: bool) -> dict:
    rng = np.random.default_rng(7)
    a, b = (rng.dirichlet(np.ones(1000)).reshape(SHAPE) for _ in range(2))
    previous, iterations, gaps = None, [], []
    start = time.perf_counter()
    for e in np.linspace(0.0, 1.0, 41):
        r = pidkit.broja((1 - e) * a + e * b, tol=tol, warm_start=previous if warm else None)
        iterations.append(r.solver.iterations)
        gaps.append(r.solver.certificate.gap)
        previous = r
    return {"total_s": time.perf_counter() - start, "iterations": float(np.mean(iterations)),
            "zero_iter": sum(i == 0 for i in iterations), "gap": max(gaps)}


def main(steps: int = 20) -> None:
    torch.set_num_threads(1)
    rows = []
    with blas_threads(1) as blas:
        sequences = {"dirichlet walk, rel 1e-3": _walk(1e-3, steps, 0),
                     "dirichlet walk, rel 1e-2": _walk(1e-2, steps, 1),
                     "moving average (m=0.9)": _moving_average(steps, 2)}
        for name, tables in sequences.items():
            for tol, max_iter in ((1e-4, 20), (1e-9, 200)):
                cold = _run(tables, tol, max_iter, False)
                warm = _run(tables, tol, max_iter, True)
                rows.append({
                    "sequence": f"torch {name}", "tol_bits": f"{tol:g}",
                    "cold_ms": f"{cold['median_s'] * 1e3:.2f}",
                    "warm_ms": f"{warm['median_s'] * 1e3:.2f}",
                    "cold_iter": f"{cold['iterations']:.1f}",
                    "warm_iter": f"{warm['iterations']:.1f}",
                    "warm_zero": f"{warm['zero_iter']}/{len(tables) - 1}",
                    "warm_gap": f"{warm['gap']:.1e}",
                    "goal_3ms": "met" if warm["median_s"] <= GOAL_S else "not met",
                    "cold": cold, "warm": warm})
                print(rows[-1]["sequence"], tol, cold, warm, flush=True)
        for tol in (1e-4, 1e-9):
            cold, warm = _sweep(tol, False), _sweep(tol, True)
            rows.append({
                "sequence": "numpy sweep (41 pmfs, total)", "tol_bits": f"{tol:g}",
                "cold_ms": f"{cold['total_s'] * 1e3:.0f}",
                "warm_ms": f"{warm['total_s'] * 1e3:.0f}",
                "cold_iter": f"{cold['iterations']:.1f}",
                "warm_iter": f"{warm['iterations']:.1f}",
                "warm_zero": f"{warm['zero_iter']}/41", "warm_gap": f"{warm['gap']:.1e}",
                "goal_3ms": "", "cold": cold, "warm": warm})
    columns = ["sequence", "tol_bits", "cold_ms", "warm_ms", "cold_iter", "warm_iter",
               "warm_zero", "warm_gap", "goal_3ms"]
    headers = {"tol_bits": "tol (bits)", "cold_ms": "cold (ms)", "warm_ms": "warm (ms)",
               "cold_iter": "cold iterations", "warm_iter": "warm iterations",
               "warm_zero": "warm steps without iteration", "warm_gap": "largest warm gap (bits)",
               "goal_3ms": "goal <= 3 ms"}
    notes = [
        "torch rows: median over the steps after the first of one pidkit.broja call on a "
        "10 x 10 x 10 float64 tensor plus backward of the redundancy; iterations: mean.",
        "warm: each solve gets warm_start=the previous step's result (chained).",
        "numpy sweep: total time of 41 solves of (1 - e) p_a + e p_b, e = 0..1.",
        "The load average above shows whether other jobs shared the 2 cores.",
    ]
    write_results("broja_warm", rows, blas=blas, columns=columns, headers=headers,
                  title="BROJA warm starts (issue 15)", notes=notes, extra={"steps": steps})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per sequence")
    main(parser.parse_args().steps)
