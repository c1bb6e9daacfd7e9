"""The lean single-pmf driver of BROJA (pidkit.discrete.broja._small) against the general
batched solver (the reference): hundreds of random small pmfs (Dirichlet(0.1..1), sparse
supports, alphabets 2..8, |T| != |S|) to 1e-9 bits with every certificate checked, the same
result object through pidkit.pid and pidkit.broja, and the fallback to the general solver."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import pidkit
from pidkit._backend import NUMPY
from pidkit.discrete.broja import _ipm, _small
from pidkit.discrete.broja._core import solve_atoms

TOL_BITS = 1e-9
TOL = TOL_BITS * math.log(2)


def random_small_pmf(rng: np.random.Generator) -> np.ndarray:
    """A pmf with alphabets 2..8 (shapes with |T| != |S| included), Dirichlet(alpha) with
    alpha in 0.1..1, and in 40% of cases half of the cells zeroed; outcomes of zero
    probability removed, as :func:`pidkit.discrete.broja._api.compute` does."""
    while True:
        shape = tuple(int(n) for n in rng.integers(2, 9, size=3))
        alpha = float(rng.uniform(0.1, 1.0))
        p = rng.dirichlet(np.full(math.prod(shape), alpha)).reshape(shape)
        if rng.random() < 0.4:
            p[rng.random(shape) < 0.5] = 0.0
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            p = np.compress(p.sum(axis=other) > 0, p, axis=axis)
        if p.sum() > 0 and min(p.shape) >= 2:
            return p / p.sum()


def both(p: np.ndarray):
    """Atoms from the general solver and from the lean driver (both certified)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        general, _ = solve_atoms(p[None], NUMPY, TOL, 200)
        lean, _ = solve_atoms(p[None], NUMPY, TOL, 200, solver=_small.solve)
    return general, lean


@pytest.mark.parametrize("seed", range(4))
def test_lean_driver_matches_general_solver_on_random_pmfs(seed):
    rng = np.random.default_rng(1000 + seed)
    compared = 0
    for _ in range(60):
        p = random_small_pmf(rng)
        general, lean = both(p)
        # every certificate the lean path returns is a bracket around its value
        assert lean.lower[0] <= lean.unique_t[0] <= lean.upper[0]
        if not general.converged[0]:
            continue          # a stall of the general solver (issue 15, goal 1): not compared
        assert lean.converged[0], p.shape
        assert lean.upper[0] - lean.lower[0] <= TOL
        for a, b in zip((general.unique_t, general.redundancy, general.unique_s,
                         general.synergy),
                        (lean.unique_t, lean.redundancy, lean.unique_s, lean.synergy),
                        strict=True):
            assert abs(a[0] - b[0]) / math.log(2) <= TOL_BITS
        # both brackets contain the optimum: they overlap (up to rounding in the bounds)
        assert (max(general.lower[0], lean.lower[0])
                <= min(general.upper[0], lean.upper[0]) + 1e-13)
        compared += 1
    assert compared >= 45


def test_lean_driver_needs_no_fallback_on_dirichlet_one(monkeypatch):
    """Dirichlet(1) pmfs k = 2..8 (the benchmark's kind) never leave the lean path."""
    calls = []
    original = _ipm.solve

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(_ipm, "solve", spy)
    rng = np.random.default_rng(7)
    for k in range(2, 9):
        for shape in ((k, k, k), (k, 2, k), (2, k, 3)):
            p = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
            r = pidkit.broja(p)
            assert r.solver.status in ("optimal", "closed_form")
            assert r.solver.certificate.gap <= TOL_BITS
    assert calls == []


def test_same_result_object_through_pid_and_broja():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5 * 3 * 4)).reshape(5, 3, 4)
    general, _ = solve_atoms(p[None], NUMPY, TOL, 200)
    for r in (pidkit.pid(p, target=0, measure="broja"), pidkit.broja(p)):
        assert r.solver.status == "optimal" and r.solver.converged
        assert r.solver.iterations > 0
        cert = r.solver.certificate
        assert cert.quantity == "unique[0]"
        assert cert.lower <= r.unique[0] <= cert.upper and cert.gap <= TOL_BITS
        assert abs(r.unique[0] - general.unique_t[0] / math.log(2)) <= TOL_BITS
        assert r.solver.details["algorithm"] == "primal-dual interior point on the dual"


def test_fallback_to_general_solver(monkeypatch):
    """When the lean iteration does not certify tol in LEAN_ITER steps, the general solver's
    output is returned as is."""
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(4 * 4 * 3)).reshape(4, 4, 3)
    monkeypatch.setattr(_small, "LEAN_ITER", 1)
    out_lean = _small.solve(p[None], NUMPY, TOL, 200)
    out_general = _ipm.solve(p[None], NUMPY, TOL, 200)
    assert out_lean.iterations == out_general.iterations
    np.testing.assert_array_equal(out_lean.f_upper, out_general.f_upper)
    np.testing.assert_array_equal(out_lean.f_lower, out_general.f_lower)


def test_large_or_batched_inputs_take_the_general_solver(monkeypatch):
    calls = []
    monkeypatch.setattr(_small, "_lean", lambda *a: calls.append(a) or None)
    rng = np.random.default_rng(5)
    big = rng.dirichlet(np.ones(9 * 9 * 9)).reshape(1, 9, 9, 9)
    _small.solve(big, NUMPY, 1e-6, 200)
    batch = rng.dirichlet(np.ones(27), size=2).reshape(2, 3, 3, 3)
    _small.solve(batch, NUMPY, 1e-6, 200)
    assert calls == []


@pytest.mark.parametrize("swap", [False, True])
def test_lean_outputs_in_input_layout(swap):
    """Dual and primal points come back in the input's layout when the sources were swapped
    internally (|T| > |S|): the primal point has the input's marginals."""
    rng = np.random.default_rng(2)
    shape = (3, 5, 2) if swap else (3, 2, 5)
    p = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
    out = _small.solve(p[None], NUMPY, TOL, 200)
    assert out.lam.shape == (1, 3, shape[1]) and out.mu.shape == (1, 3, shape[2])
    np.testing.assert_allclose(out.q[0].sum(axis=2), p.sum(axis=2), atol=1e-15)
    np.testing.assert_allclose(out.q[0].sum(axis=1), p.sum(axis=1), atol=1e-15)
