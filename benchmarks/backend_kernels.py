"""The numpy kernels behind BROJA's batched small-matrix path, against plain numpy.

Shapes are those of 10,000 pmfs at k = 4 (the batched BROJA goal): sums over the short axes
of a ``(10000, 4, 4, 4)`` array (``Backend.sum`` routes them through ``einsum``, numpy
through ``np.sum``), and the per-iteration solves of the dense Newton direction: the 4 x 4
blocks ``B_s`` (40,000 matrices) with 16 right-hand sides once and 1 right-hand side twice,
and the 16 x 16 Schur complements (10,000 matrices) with 1 right-hand side twice, by
``np.linalg.solve`` at every call against one ``Backend.cho_factor`` plus ``cho_solve``
per call. Best of 5 repetitions, one BLAS thread.

Run from the repository root: ``python benchmarks/backend_kernels.py``; results in
``benchmarks/results/backend_kernels.{md,json}``.
"""

from __future__ import annotations

import time

import numpy as np
from _common import blas_threads, format_seconds, write_results

from pidkit._backend import NUMPY

REPEAT = 5


def best_of(fn) -> float:
    """Shortest of ``REPEAT`` timed calls (after one warm-up call), in seconds."""
    fn()
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def spd(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def sum_rows(rng: np.random.Generator) -> list[dict]:
    x = rng.random((10_000, 4, 4, 4))
    rows = []
    for axis in (1, 2, 3, (1, 2)):
        ours = best_of(lambda axis=axis: NUMPY.sum(x, axis=axis))
        ref = best_of(lambda axis=axis: np.sum(x, axis=axis))
        rows.append({"kernel": f"sum over axis {axis} of (10000, 4, 4, 4)",
                     "numpy": format_seconds(ref), "pidkit": format_seconds(ours),
                     "speed_up": f"{ref / ours:.1f}x", "numpy_s": ref, "pidkit_s": ours})
    return rows


def solve_rows(rng: np.random.Generator) -> list[dict]:
    blocks, schur = spd(rng, (10_000, 4), 4), spd(rng, (10_000,), 16)
    c, g = rng.standard_normal((10_000, 4, 4, 16)), rng.standard_normal((10_000, 4, 4, 1))
    r = rng.standard_normal((10_000, 16, 1))

    def numpy_iteration():
        np.linalg.solve(blocks, c)
        for _ in range(2):
            np.linalg.solve(blocks, g)
            np.linalg.solve(schur, r)

    def ours_iteration():
        fb, fs = NUMPY.cho_factor(blocks), NUMPY.cho_factor(schur)
        NUMPY.cho_solve(fb, c)
        for _ in range(2):
            NUMPY.cho_solve(fb, g)
            NUMPY.cho_solve(fs, r)

    ref, ours = best_of(numpy_iteration), best_of(ours_iteration)
    return [{"kernel": "one iteration's solves (4 x 4 blocks, 16 x 16 Schur complements)",
             "numpy": format_seconds(ref), "pidkit": format_seconds(ours),
             "speed_up": f"{ref / ours:.1f}x", "numpy_s": ref, "pidkit_s": ours}]


def main() -> None:
    rng = np.random.default_rng(0)
    with blas_threads(1) as blas:
        rows = sum_rows(rng) + solve_rows(rng)
    write_results("backend_kernels", rows, title="numpy kernels of the batched BROJA path",
                  blas=blas, columns=["kernel", "numpy", "pidkit", "speed_up"],
                  headers={"numpy": "np.sum / np.linalg.solve",
                           "pidkit": "Namespace.sum / cho_factor + cho_solve",
                           "speed_up": "speed-up"},
                  notes=[f"Best of {REPEAT} repetitions after a warm-up call.",
                         "Solves: np.linalg.solve re-factorises at every call; pidkit factors "
                         "each matrix once (batched Cholesky) and substitutes row by row with "
                         "the batch axis last."])


if __name__ == "__main__":
    main()
