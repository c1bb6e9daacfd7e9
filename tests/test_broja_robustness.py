"""Robustness sweep of the BROJA solver: 264 random pmfs at k = 2..12 (cubic and
uneven shapes) with the zero patterns real data produce (sparse supports, small count tables,
zero rows P(y,t) = 0 / P(y,s) = 0 / P(t,s) = 0, absent target values, a constant source,
deterministic targets, identical sources, a target independent of the sources), solved batched
(numpy and torch) and one at a time: every one must reach status "optimal" (or
"closed_form") with the default gap, raise no RuntimeWarning, and agree between the paths;
where the atoms are known in closed form they are checked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _broja_reference import information_terms

import pidkit

FAMILIES = ("dirichlet", "sparse", "counts", "zero_rows", "constant_source", "deterministic",
            "identical", "independent")


def make_pmf(rng: np.random.Generator, family: str, shape: tuple[int, int, int]) -> np.ndarray:
    """A random pmf ``p[y, t, s]`` of ``family`` (see the module docstring)."""
    ny, nt, ns = shape
    size = ny * nt * ns
    if family == "dirichlet":
        p = rng.dirichlet(np.full(size, rng.choice([0.1, 0.5, 1.0]))).reshape(shape)
    elif family == "sparse":
        p = rng.dirichlet(np.ones(size)).reshape(shape)
        p[rng.random(shape) < rng.choice([0.3, 0.5, 0.7, 0.85])] = 0.0
    elif family == "counts":          # a small-sample count table: most cells zero
        cells = rng.dirichlet(np.full(size, rng.choice([0.05, 0.3, 1.0])))
        p = rng.multinomial(int(rng.integers(2, 3 * size)), cells).reshape(shape).astype(float)
    elif family == "zero_rows":
        p = rng.dirichlet(np.ones(size)).reshape(shape)
        for _ in range(int(rng.integers(1, max(shape) + 1))):
            which = rng.integers(4)
            if which == 0:
                p[rng.integers(ny), rng.integers(nt), :] = 0.0      # P(y, t) = 0
            elif which == 1:
                p[rng.integers(ny), :, rng.integers(ns)] = 0.0      # P(y, s) = 0
            elif which == 2:
                p[:, rng.integers(nt), rng.integers(ns)] = 0.0      # P(t, s) = 0
            else:
                p[rng.integers(ny)] = 0.0                           # y never occurs
    elif family == "constant_source":   # S takes one value
        p = np.zeros(shape)
        p[:, :, rng.integers(ns)] = rng.dirichlet(np.ones(ny * nt)).reshape(ny, nt)
    elif family == "deterministic":     # Y = f(T, S)
        f = rng.integers(ny, size=(nt, ns))
        p = np.zeros(shape)
        p[f, np.arange(nt)[:, None], np.arange(ns)[None, :]] = rng.dirichlet(
            np.ones(nt * ns)).reshape(nt, ns)
    elif family == "identical":         # T = S
        k = min(nt, ns)
        p = np.zeros(shape)
        p[:, np.arange(k), np.arange(k)] = rng.dirichlet(np.ones(ny * k)).reshape(ny, k)
    else:                               # independent: Y independent of (T, S)
        p = np.einsum("y,ts->yts", rng.dirichlet(np.ones(ny)),
                      rng.dirichlet(np.ones(nt * ns)).reshape(nt, ns))
    if p.sum() == 0:
        p.flat[0] = 1.0
    return p / p.sum()


def closed_form(p: np.ndarray, family: str) -> tuple[float, float, float, float] | None:
    """``(Red, Uni_T, Uni_S, Syn)`` in bits where the family fixes them, else None."""
    i_t, i_s, i_ts = information_terms(p)
    if family == "constant_source":
        return 0.0, i_t, 0.0, 0.0
    if family == "identical":
        return i_t, 0.0, 0.0, 0.0
    if family == "independent":
        return 0.0, 0.0, 0.0, 0.0
    return None


@pytest.mark.parametrize("k", range(2, 13))
def test_random_zero_patterns_converge_batched_and_one_at_a_time(k):
    rng = np.random.default_rng(100 + k)
    # two pmfs per family at k x k x k, one at an uneven shape: 264 pmfs over the k values
    shapes = [((k, k, k), 2), (tuple(int(v) for v in rng.integers(2, k + 1, size=3)), 1)]
    for shape, repeats in shapes:
        pmfs = [(family, make_pmf(rng, family, shape)) for family in FAMILIES
                for _ in range(repeats)]
        batch = np.stack([p for _, p in pmfs])
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            r = pidkit.broja(batch, batch=True)
            r_t = pidkit.broja(torch.tensor(batch), batch=True)
            singles = [pidkit.pid(p, target=0, measure="broja") for _, p in pmfs]
        assert r.solver.status in ("optimal", "closed_form")
        assert r_t.solver.status in ("optimal", "closed_form")
        np.testing.assert_allclose(r_t.unique[0].numpy(), r.unique[0], atol=2e-9)
        assert np.all(r.solver.certificate.upper - r.solver.certificate.lower <= 1e-9)
        for i, ((family, p), single) in enumerate(zip(pmfs, singles, strict=True)):
            assert single.solver.status in ("optimal", "closed_form"), (shape, family)
            assert single.solver.certificate.gap <= 1e-9
            atoms = (single.redundancy, single.unique[0], single.unique[1], single.synergy)
            batched = (r.redundancy[i], r.unique[0][i], r.unique[1][i], r.synergy[i])
            np.testing.assert_allclose(batched, atoms, atol=2e-9)
            assert min(atoms) >= 0.0
            expected = closed_form(p, family)
            if expected is not None:
                np.testing.assert_allclose(atoms, expected, atol=1e-9)
