"""Stall sweep of the BROJA solver (issue 15, goal 1): how many pmfs of each hard family end
without the default certified gap, with and without the crossover of
``pidkit.discrete.broja._polish``.

Families (``p[y, t, s]``, one pmf at a time through ``pidkit.pid(p, measure="broja")`` with the
defaults, tol 1e-9 bits and max_iter 200):

- ``noisy-xor``: Y = (T + S) mod |Y| except with probability eps in {1e-12, 1e-10, 1e-8,
  1e-6, 1e-5, 1e-4, 1e-3} (``benchmarks/broja_noisy_xor.py``), alphabets 2..8;
- ``dirichlet(a)``: Dirichlet(a) over all cells, a in {0.001, 0.01, 0.05, 0.1, 1},
  alphabets 2..10;
- ``sparse``: Dirichlet(1) with 50-90% of the cells zeroed, alphabets 2..10;
- ``empirical``: plug-in pmfs of N in {20, 100, 1000} samples of a Dirichlet(0.3) pmf,
  alphabets 2..10, and ``bootstrap``: five multinomial replicates of each such table (what
  ``pidkit.estimate`` resamples);
- ``large``: Dirichlet(0.05) and 70% sparse pmfs at k = 16, 24 and 32;
- ``dirichlet(0.001) large``: Dirichlet(0.001) pmfs at k = 12, 14, 16, 18 and 20 (a few dozen
  cells above 1e-12, marginal entries down to 1e-300; drawn after the other families, so
  adding it left their pmfs unchanged);
- ``dirichlet(0.001) huge``: the same at k = 24, 28 and 32 (drawn last). The crossover
  factorises only the active rows of its Newton systems (free dual variables and blocks
  holding cells) and skips systems with more than ``_polish.MAX_UNKNOWNS`` (2560) of them:
  dense cubic pmfs exceed it from k = 30 on (3k^2 - k rows), these sparse pmfs stay under it
  up to k = 32 (about 2150 of 3072 rows), so every one of them gets the crossover;
- ``small target``: pmfs of shape (|Y|, k, k) with uniform random cells (normalised), |Y| in
  {2, 3, 4}, k in {100, 150} (drawn last; Dirichlet(1) cells of these shapes did not stall).
  The dual has a few hundred free variables for 10,000-22,500 block constraints, few of which
  can be active at the optimum: most blocks must lose their mass, the interior-point iteration
  approaches that support slowly, and the crossover skips these problems (far more than
  ``_polish.MAX_UNKNOWNS`` unknowns). What certifies them is the rescaled primal bound
  (``_bounds.rescale``), and the slack reset and the non-monotone line search from
  ``_ipm.RESET_FROM`` on (docs/broja.md), which also certify the 3 x 150 x 150 tables of the
  development sweep (seed 2 stopped at max_iter before the non-monotone search).

Per family: pmfs, stalls (status not "optimal"/"closed_form"), the largest certified gap and
the median and largest wall time of one call, for the current solver ("crossover") and with the
crossover switched off (``_ipm.POLISH_EVERY`` beyond ``max_iter``: the solver before it, with
the later certificate and line-search changes kept).
One BLAS thread. Results in ``benchmarks/results/broja_stalls.{md,json}``.

Run from the repository root: ``python benchmarks/broja_stalls.py [--seed 0]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import blas_threads, format_seconds, write_results
from broja_noisy_xor import noisy_xor

import pidkit
from pidkit.discrete.broja import _ipm

XOR_EPS = (1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3)
ALPHAS = (0.001, 0.01, 0.05, 0.1, 1.0)
SAMPLES = (20, 100, 1000)
LARGE_K = (16, 24, 32)
SPARSE_LARGE_K = (12, 14, 16, 18, 20)
SPARSE_HUGE_K = (24, 28, 32)
SMALL_TARGET_Y, SMALL_TARGET_K = (2, 3, 4), (100, 150)


def _shape(rng: np.random.Generator, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(2, high + 1, size=3))


def families(seed: int) -> dict[str, list[np.ndarray]]:
    """The pmfs of every family (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"noisy-xor": []}
    for eps in XOR_EPS:
        out["noisy-xor"] += [noisy_xor(rng, _shape(rng, 8), eps) for _ in range(10)]
    for alpha in ALPHAS:
        out[f"dirichlet({alpha:g})"] = [
            rng.dirichlet(np.full(int(np.prod(s)), alpha)).reshape(s)
            for s in (_shape(rng, 10) for _ in range(16))]
    sparse = []
    for _ in range(40):
        p = rng.dirichlet(np.ones(int(np.prod(s := _shape(rng, 10))))).reshape(s)
        p[rng.random(s) < rng.uniform(0.5, 0.9)] = 0.0
        p.flat[0] += 1e-3 * (p.sum() == 0)
        sparse.append(p / p.sum())
    out["sparse"] = sparse
    tables = []
    for n in SAMPLES:
        for _ in range(12):
            s = _shape(rng, 10)
            truth = rng.dirichlet(np.full(int(np.prod(s)), 0.3))
            tables.append(rng.multinomial(n, truth).reshape(s) / n)
    out["empirical"] = tables
    out["bootstrap"] = [rng.multinomial(n, t.ravel()).reshape(t.shape) / n
                        for t, n in zip(tables, np.repeat(SAMPLES, 12), strict=True)
                        for _ in range(5)]
    large = []
    for k in LARGE_K:
        large.append(rng.dirichlet(np.full(k ** 3, 0.05)).reshape(k, k, k))
        p = rng.dirichlet(np.ones(k ** 3)).reshape(k, k, k)
        p[rng.random(p.shape) < 0.7] = 0.0
        large.append(p / p.sum())
    out["large"] = large
    out["dirichlet(0.001) large"] = [rng.dirichlet(np.full(k ** 3, 0.001)).reshape(k, k, k)
                                     for k in SPARSE_LARGE_K]
    out["dirichlet(0.001) huge"] = [rng.dirichlet(np.full(k ** 3, 0.001)).reshape(k, k, k)
                                    for k in SPARSE_HUGE_K]
    out["small target"] = [(u := rng.random((ny, k, k))) / u.sum()
                           for k in SMALL_TARGET_K for ny in SMALL_TARGET_Y]
    return out


def run_family(pmfs: list[np.ndarray]) -> dict:
    """Solve every pmf once: stalls, largest certified gap (bits), wall times."""
    gaps, times, stalled = [], [], []
    for i, p in enumerate(pmfs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pidkit.errors.ConvergenceWarning)
            start = time.perf_counter()
            r = pidkit.pid(p, target=0, measure="broja")
            times.append(time.perf_counter() - start)
        gaps.append(float(r.solver.certificate.gap))
        if r.solver.status not in ("optimal", "closed_form"):
            stalled.append({"index": i, "shape": list(p.shape), "gap_bits": gaps[-1]})
    return {"pmfs": len(pmfs), "stalls": len(stalled), "max_gap_bits": max(gaps),
            "median_s": statistics.median(times), "max_s": max(times), "stalled": stalled}


def main(seed: int) -> None:
    rows, raw = [], {}
    with blas_threads(1) as blas:
        for name, pmfs in families(seed).items():
            polish_every = _ipm.POLISH_EVERY
            _ipm.POLISH_EVERY = 10 ** 9                      # the solver without crossover
            try:
                before = run_family(pmfs)
            finally:
                _ipm.POLISH_EVERY = polish_every
            after = run_family(pmfs)
            raw[name] = {"without_crossover": before, "with_crossover": after}
            rows.append({
                "family": name, "pmfs": after["pmfs"],
                "stalls_before": before["stalls"], "stalls": after["stalls"],
                "max_gap_before": f"{before['max_gap_bits']:.1e}",
                "max_gap": f"{after['max_gap_bits']:.1e}",
                "median": format_seconds(after["median_s"]),
                "max": format_seconds(after["max_s"]),
                "max_before": format_seconds(before["max_s"]),
            })
            print(rows[-1], flush=True)
    write_results(
        "broja_stalls", rows, title="BROJA stall sweep (issue 15, goal 1)", blas=blas,
        columns=["family", "pmfs", "stalls_before", "stalls", "max_gap_before", "max_gap",
                 "median", "max", "max_before"],
        headers={"stalls_before": "stalls without crossover", "stalls": "stalls",
                 "max_gap_before": "largest gap without (bits)",
                 "max_gap": "largest gap (bits)", "median": "median time",
                 "max": "largest time", "max_before": "largest time without"},
        notes=[f"Seed {seed}; defaults tol 1e-9 bits, max_iter 200; one pmf at a time "
               "(pidkit.pid), so pmfs with at most 1024 Newton rows, |Y|(|T| + |S|), take "
               "the lean driver (_small.LEAN_ROWS; 512 cells until 2026-12-05 13:00 UTC).",
               "'without crossover': the same code with _ipm.POLISH_EVERY beyond max_iter, "
               "i.e. the solver before the crossover.",
               "A stall is a status other than 'optimal'/'closed_form' (a ConvergenceWarning); "
               "its certificate still brackets the truth. Stalled pmfs are listed in the JSON."],
        extra={"seed": seed, "families": raw})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    main(parser.parse_args().seed)
