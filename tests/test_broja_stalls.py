"""Pmfs on which the interior-point iteration stalls (issue 15, goal 1): noisy-XOR pmfs with cells
of tiny mass and Dirichlet pmfs of small concentration. Without the crossover
(:mod:`pidkit.discrete.broja._polish`) each of them stops at ``max_iter`` with a gap above the
default tolerance; with it each must finish "optimal" with a certified gap <= 1e-9 bits that
brackets an independent reference (cvxpy + Clarabel), on numpy and on torch. The crossover's
bounds must bracket the reference even when it starts from a poor iterate, and a bootstrap
``pid_from_samples`` call on a sparse table (whose replicates warned before) must not warn."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _broja_reference import reference_unique

import pidkit
from pidkit.discrete.broja import _ipm
from pidkit.errors import ConvergenceWarning

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
from broja_noisy_xor import noisy_xor  # noqa: E402  (the benchmark's generator, not installed)

#: Clarabel reports these reference solutions "inaccurate": they are within about 1.5e-8
#: bits of our certified brackets, so the reference is allowed this much (bits).
REFERENCE_TOL = 2e-8
#: Seeds of :func:`stalling_pmf` (each stalled at max_iter = 80 without the crossover).
XOR_SEEDS = (2, 3, 10, 12, 15, 20)
DIRICHLET_SEEDS = (5, 6, 11, 12)


def stalling_pmf(kind: str, seed: int) -> np.ndarray:
    """A noisy-XOR pmf (eps in 1e-12..1e-6) or a Dirichlet(0.05 or 0.1) pmf, alphabets 2..6."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 7, size=3))
    if kind == "xor":
        return noisy_xor(rng, shape, float(rng.choice([1e-12, 1e-10, 1e-8, 1e-6])))
    alpha = float(rng.choice([0.05, 0.1]))
    return rng.dirichlet(np.full(int(np.prod(shape)), alpha)).reshape(shape)


CASES = [("xor", s) for s in XOR_SEEDS] + [("dirichlet", s) for s in DIRICHLET_SEEDS]


@pytest.fixture
def no_crossover(monkeypatch):
    monkeypatch.setattr(_ipm, "POLISH_EVERY", 10 ** 9)


def reference(p: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # Clarabel: "may be inaccurate"
        return reference_unique(p)


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_previously_stalling_pmf_is_certified_and_matches_reference(kind, seed):
    p = stalling_pmf(kind, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.pid(p, measure="broja")
    cert = r.solver.certificate
    assert r.solver.status == "optimal" and r.solver.converged
    assert 0.0 <= cert.gap <= 1e-9
    assert cert.lower <= r.unique[0] <= cert.upper
    ref = reference(p)
    assert cert.lower - REFERENCE_TOL <= ref <= cert.upper + REFERENCE_TOL
    assert min(r.atoms.values()) >= 0.0


@pytest.mark.usefixtures("no_crossover")
@pytest.mark.parametrize(("kind", "seed"), CASES[:3] + CASES[-2:])
def test_without_the_crossover_these_pmfs_stall(kind, seed):
    with pytest.warns(ConvergenceWarning):
        r = pidkit.pid(stalling_pmf(kind, seed), measure="broja", max_iter=80)
    assert r.solver.status == "max_iter" and r.solver.certificate.gap > 1e-9


def test_batched_numpy_and_torch_certify_every_stalling_pmf():
    """The batched driver (numpy and torch) runs the same crossover on the items left open."""
    pmfs = [stalling_pmf(kind, seed) for kind, seed in CASES[:3]]
    shape = tuple(max(p.shape[i] for p in pmfs) for i in range(3))
    batch = np.zeros((len(pmfs), *shape))
    for i, p in enumerate(pmfs):                     # pad with outcomes of zero probability
        batch[i, :p.shape[0], :p.shape[1], :p.shape[2]] = p
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.broja(batch, batch=True)
        r_t = pidkit.broja(torch.tensor(batch), batch=True)
    for res in (r, r_t):
        assert res.solver.status == "optimal"
        gap = np.asarray(res.solver.certificate.upper) - np.asarray(res.solver.certificate.lower)
        assert np.all(gap <= 1e-9)
    np.testing.assert_allclose(r_t.unique[0].numpy(), r.unique[0], atol=2e-9)
    singles = [pidkit.pid(p, measure="broja").unique[0] for p in pmfs]
    np.testing.assert_allclose(r.unique[0], singles, atol=2e-9)


@pytest.mark.parametrize(("kind", "seed"), CASES[::3])
def test_crossover_from_poor_iterates_still_brackets_the_reference(monkeypatch, kind, seed):
    """The crossover after the first interior-point step, far from the optimum: whatever it
    returns is certified by the general bounds, so the bracket must hold."""
    monkeypatch.setattr(_ipm, "POLISH_EVERY", 1)
    p = stalling_pmf(kind, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = pidkit.broja(p[None], batch=True, max_iter=1)
    lower, upper = float(r.solver.certificate.lower[0]), float(r.solver.certificate.upper[0])
    ref = reference(p)
    assert lower - REFERENCE_TOL <= ref <= upper + REFERENCE_TOL


def test_bootstrap_on_a_sparse_table_does_not_warn():
    """120 samples of a Dirichlet(0.3) pmf over 6 x 6 x 6 cells: before the crossover and the
    replicate tolerance, one of its replicate batches ended at max_iter and warned."""
    rng = np.random.default_rng(1)
    cells = rng.choice(216, size=120, p=rng.dirichlet(np.full(216, 0.3)))
    y, t, s = np.unravel_index(cells, (6, 6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.pid_from_samples(y, t, s, n_boot=100, n_perm=50, seed=1)
    assert r.solver.status == "optimal"
    assert all(np.isfinite(bounds).all() for bounds in r.intervals.values())
