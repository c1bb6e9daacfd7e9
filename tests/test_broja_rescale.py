"""The rescaled upper bound of BROJA's certificate (:func:`pidkit.discrete.broja._bounds.rescale`,
issue 15, goal 1): the least-change correction of a primal point's marginals in the chi-square
metric of the point, checked against a dense weighted least-squares solve written here, and
the stall it removes (a small-target table whose dual bound had converged while the repaired
primal bound stayed above the tolerance for the rest of the run)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pidkit
from pidkit._backend import NUMPY, get_namespace
from pidkit.discrete.broja import _bounds
from pidkit.errors import ConvergenceWarning
from pidkit.information import mutual_information


def perturbed_pair(seed: int, shape=(2, 3, 4, 5), zeros: float = 0.3, eps: float = 1e-3):
    """A batch ``q`` with some zero cells and marginals ``(p_yt, p_ys)`` of a point on the same
    support whose cells differ from ``q``'s by a relative ``eps`` (so the correction exists)."""
    rng = np.random.default_rng(seed)
    q = rng.random(shape) * (rng.random(shape) > zeros)
    target = q * (1.0 + eps * rng.standard_normal(shape))
    return q, target.sum(axis=3), target.sum(axis=2)


def weighted_least_squares(q: np.ndarray, p_yt: np.ndarray, p_ys: np.ndarray) -> np.ndarray:
    """min sum(d^2 / q) s.t. the marginals of q + d are (p_yt, p_ys), per (b, y), d zero off
    the support: d = Q A^T z with (A Q A^T) z = r, solved by least squares (the system is
    singular along the gauge)."""
    out = np.array(q)
    for b in range(q.shape[0]):
        for y in range(q.shape[1]):
            cell = q[b, y]
            nt, ns = cell.shape
            rows = [np.kron(np.eye(nt)[t], np.ones(ns)) for t in range(nt)]
            rows += [np.kron(np.ones(nt), np.eye(ns)[s]) for s in range(ns)]
            a = np.array(rows)                                         # (T + S, T S)
            weight = cell.ravel()
            r = np.concatenate([p_yt[b, y] - cell.sum(axis=1), p_ys[b, y] - cell.sum(axis=0)])
            z = np.linalg.lstsq((a * weight) @ a.T, r, rcond=None)[0]
            out[b, y] = cell + (weight * (a.T @ z)).reshape(nt, ns)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_rescale_is_the_weighted_least_squares_correction(seed):
    q, p_yt, p_ys = perturbed_pair(seed)
    got = _bounds.rescale(q, p_yt, p_ys, NUMPY)
    want = weighted_least_squares(q, p_yt, p_ys)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(got.sum(axis=3), p_yt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=2), p_ys, rtol=1e-12, atol=1e-15)
    assert np.all(got[q == 0] == 0.0)                 # the support never grows


def test_rescale_leaves_a_feasible_point_unchanged_and_rows_without_mass_alone():
    q, _, _ = perturbed_pair(7)
    same = _bounds.rescale(q, q.sum(axis=3), q.sum(axis=2), NUMPY)
    np.testing.assert_allclose(same, q, rtol=1e-12, atol=1e-16)
    # a row t of some y without mass, asked for mass: rescaling cannot add it (repair does)
    q[0, 1, 2] = 0.0
    target = q.sum(axis=3)
    target[0, 1, 2] = 0.1
    out = _bounds.rescale(q, target, q.sum(axis=2), NUMPY)
    assert np.all(out[0, 1, 2] == 0.0) and np.isfinite(out).all() and (out >= 0).all()


def test_rescale_is_the_same_on_torch_and_for_each_item_alone():
    q, p_yt, p_ys = perturbed_pair(3, shape=(3, 4, 3, 6))
    whole = _bounds.rescale(q, p_yt, p_ys, NUMPY)
    tq, tyt, tys = (torch.from_numpy(x) for x in (q, p_yt, p_ys))
    on_torch = _bounds.rescale(tq, tyt, tys, get_namespace(tq))
    np.testing.assert_allclose(on_torch.numpy(), whole, rtol=1e-12, atol=1e-16)
    for b in range(q.shape[0]):
        alone = _bounds.rescale(q[b:b + 1], p_yt[b:b + 1], p_ys[b:b + 1], NUMPY)
        np.testing.assert_allclose(alone[0], whole[b], rtol=1e-12, atol=1e-16)


def test_the_upper_bound_keeps_the_better_of_both_repairs():
    """``upper_bound`` is never above the plain repair's bound, and both are values of
    points on the marginals (so both are upper bounds on f*)."""
    q, p_yt, p_ys = perturbed_pair(11, eps=1e-2)
    up, q_f = _bounds.upper_bound(q, p_yt, p_ys, NUMPY)
    plain = _bounds.repair(q, p_yt, p_ys, NUMPY)
    assert np.all(up <= _bounds.neg_conditional_entropy(plain, NUMPY))
    np.testing.assert_allclose(up, _bounds.neg_conditional_entropy(q_f, NUMPY), rtol=0,
                               atol=1e-15)
    np.testing.assert_allclose(q_f.sum(axis=3), p_yt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(q_f.sum(axis=2), p_ys, rtol=1e-12, atol=1e-15)


def small_target_pmf() -> np.ndarray:
    """A 3 x 100 x 100 pmf with uniform random cells (the "small target" family of
    ``benchmarks/broja_stalls.py``): with the plain repair its iteration ran to max_iter = 200
    on one machine (Intel Xeon; the dual bound converged by iteration 30, the repaired primal
    bound stayed above tol) and certified at iteration 34 on another (AMD EPYC): where it stalls
    depends on rounding, so the test below checks the mechanism instead."""
    p = np.random.default_rng(0).random((3, 100, 100))
    return p / p.sum()


def test_the_rescaled_bound_certifies_a_small_target_table_that_stalled(monkeypatch):
    from pidkit.discrete.broja import _small

    monkeypatch.setattr(_small, "LEAN_ROWS", 0)                 # the general solver
    p = small_target_pmf()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = pidkit.pid(p, measure="broja")
    cert = r.solver.certificate
    assert r.solver.status == "optimal" and 0.0 <= cert.gap <= 1e-9
    assert r.solver.iterations < 60


@pytest.mark.parametrize("seed", range(3))
def test_the_plain_repair_loses_to_first_order_and_the_rescaled_one_to_second(seed):
    """Why the plain repair stalled: a point that misses the marginals by a relative ``eps``
    (as an interior-point iterate does) costs the plain repair's bound O(eps) above the
    point's own value, and the rescaled bound O(eps^2). From the certified optimum of the
    small-target table, moved by a relative 1e-5: the plain bound is above ``tol`` by
    orders of magnitude (about 1.4e-6 nats), the rescaled one within ``tol / 10`` (about
    1e-11), so only the rescaled one can close the bracket near the optimum."""
    from pidkit.discrete.broja import _ipm

    p = small_target_pmf()[None]
    tol = 1e-9 * np.log(2.0)
    out = _ipm.solve(p, NUMPY, tol, 200)
    assert out.f_upper[0] - out.f_lower[0] <= tol
    p_yt, p_ys = p.sum(axis=3), p.sum(axis=2)
    at_optimum = _bounds.neg_conditional_entropy(out.q, NUMPY)[0]
    for eps, plain_above, rescaled_within in ((1e-5, 100 * tol, tol / 10),
                                              (1e-4, 1000 * tol, 10 * tol)):
        noise = np.random.default_rng(seed).standard_normal(p.shape)
        moved = out.q * (1.0 + eps * noise)
        plain = _bounds.neg_conditional_entropy(_bounds.repair(moved, p_yt, p_ys, NUMPY), NUMPY)
        both, q_f = _bounds.upper_bound(moved, p_yt, p_ys, NUMPY)
        assert plain[0] - at_optimum > plain_above
        assert abs(both[0] - at_optimum) < rescaled_within
        np.testing.assert_allclose(q_f.sum(axis=3), p_yt, rtol=1e-12, atol=1e-15)


def test_the_lean_driver_certifies_with_the_rescaled_bound(monkeypatch):
    """The lean single-pmf driver tries the rescaled bound too (from ``_ipm.RESCALE_FROM``):
    a 2 x 60 x 60 Dirichlet(1) pmf it certifies in 15 iterations with it is still open after
    60 without."""
    from pidkit.discrete.broja import _small

    p = np.random.default_rng(6).dirichlet(np.ones(7200)).reshape(2, 60, 60)
    tol = 1e-9 * np.log(2.0)
    found = _small._lean(_small._Small(p), tol, 200)
    assert found is not None
    (low, up, lam, mu, q), iterations = found
    assert 0.0 <= up - low <= tol and iterations < 20
    np.testing.assert_allclose(q.sum(axis=2), p.sum(axis=2), rtol=1e-12, atol=1e-17)
    np.testing.assert_allclose(q.sum(axis=1), p.sum(axis=1), rtol=1e-12, atol=1e-17)
    assert up == pytest.approx(_bounds.neg_conditional_entropy(q[None], NUMPY)[0], abs=1e-14)
    monkeypatch.setattr(_bounds, "rescale", lambda q, *rest: q)       # the plain repair only
    (low, up, *_), iterations = _small._lean(_small._Small(p), tol, 60)
    assert up - low > tol and iterations == 60


def test_rescale_is_silent_and_finite_on_masses_near_the_underflow():
    """Rows and columns of 1e-310 (the tails of Dirichlet(0.001) pmfs) gave numpy overflow
    warnings inside ``pidkit.pid``; they are left to the repair (no change), the others are
    rescaled, and the bound is finite."""
    rng = np.random.default_rng(5)
    q = rng.random((2, 3, 4, 5))
    q[0, 0, 1] *= 1e-310                       # a row of denormal masses
    q[1, 2, :, 3] = 1e-320                     # a column of them
    target = q * (1.0 + 1e-3 * rng.standard_normal(q.shape))
    p_yt, p_ys = target.sum(axis=3), target.sum(axis=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _bounds.rescale(q, p_yt, p_ys, NUMPY)
        up, q_f = _bounds.upper_bound(q, p_yt, p_ys, NUMPY)
    assert np.isfinite(out).all() and np.isfinite(up).all()
    np.testing.assert_allclose(q_f.sum(axis=3), p_yt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(q_f.sum(axis=2), p_ys, rtol=1e-12, atol=1e-15)


def test_a_dirichlet_0001_pmf_solves_without_runtime_warnings():
    """The one of 60 Dirichlet(0.001) pmfs (alphabets 2..10) whose certificate leaked numpy
    overflow warnings from the rescaled bound when it was first written."""
    rng = np.random.default_rng(22)
    shape = tuple(int(v) for v in rng.integers(2, 11, size=3))
    p = rng.dirichlet(np.full(int(np.prod(shape)), 0.001)).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.pid(p, measure="broja")
    assert r.solver.converged


def test_the_upper_bound_takes_only_a_finite_rescaled_value(monkeypatch):
    """A rescaled point whose value is -inf (an overflow) must not become the upper bound."""
    q, p_yt, p_ys = perturbed_pair(2)
    monkeypatch.setattr(_bounds, "neg_conditional_entropy",
                        lambda x, xp, f=_bounds.neg_conditional_entropy:
                        np.where(np.isinf(x).any(axis=(1, 2, 3)), -np.inf, f(x, xp)))
    monkeypatch.setattr(_bounds, "repair", lambda x, *rest: x)
    monkeypatch.setattr(_bounds, "rescale", lambda x, *rest: np.full_like(x, np.inf))
    up, q_f = _bounds.upper_bound(q, p_yt, p_ys, NUMPY)
    assert np.isfinite(up).all() and np.isfinite(q_f).all()


def test_a_crossing_bracket_is_never_reported_as_converged(monkeypatch):
    """If a solver fault put the upper bound below the lower one, the clipped certificate
    would have gap 0: the item keeps only the interval every decomposition allows
    (max(0, I(Y;T) - I(Y;S)) <= Uni_T <= min(I(Y;T), I(Y;T,S) - I(Y;S))) and is reported as
    not converged."""
    from pidkit.discrete.broja import _ipm, _small

    p = np.random.default_rng(4).dirichlet(np.ones(27)).reshape(3, 3, 3)
    honest = pidkit.broja(p)
    original = _ipm.solve

    def crossing(*args, **kwargs):
        out = original(*args, **kwargs)
        out.f_upper = out.f_lower - 1e-3
        return out

    monkeypatch.setattr(_small, "LEAN_ROWS", 0)                 # the general solver
    monkeypatch.setattr(_ipm, "solve", crossing)
    with pytest.warns(ConvergenceWarning):
        r = pidkit.broja(p)
    assert honest.solver.converged and not r.solver.converged
    bits = np.log(2.0)
    i_t, i_s, i_ts = (mutual_information(p, [0], b) / bits for b in ([1], [2], [1, 2]))
    cert = r.solver.certificate
    assert cert.lower == pytest.approx(max(0.0, i_t - i_s), abs=1e-12)
    assert cert.upper == pytest.approx(min(i_t, i_ts - i_s), abs=1e-12)
