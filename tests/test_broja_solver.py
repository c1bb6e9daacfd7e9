"""BROJA's linear algebra (pidkit.discrete.broja._ipm): the structured Schur complement with
its float32 Cholesky preconditioner against the dense Newton solve and against cvxpy +
Clarabel, the certificate staying a proof whatever the directions' accuracy, batched structured
solves equal to one-at-a-time ones (numpy and torch), and a large k = 4 batch that once made
the small-matrix solves singular."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _broja_reference import random_pmf, reference_unique

import pidkit
from pidkit._backend import NUMPY, get_namespace
from pidkit.discrete.broja import _ipm

# |Y||T||S| >= STRUCTURED_SIZE: these take the structured Schur complement
STRUCTURED_SHAPE = (12, 10, 9)


def newton_matrix_state(p: np.ndarray, steps: int):
    """Inputs of the Newton solver after ``steps`` interior-point iterations on ``p[y, t, s]``
    (``T`` the smaller source, as the solver arranges it)."""
    captured = []
    original = _ipm._newton_solver

    def spy(q, pi, rho, free_lam, free_mu, xp, work=None):
        captured.append((q, pi, rho, free_lam, free_mu))
        return original(q, pi, rho, free_lam, free_mu, xp, work)

    _ipm._newton_solver = spy
    try:
        _ipm.solve(p[None], NUMPY, tol=1e-12, max_iter=steps)
    finally:
        _ipm._newton_solver = original
    return captured[-1]


def apply_newton_matrix(q, pi, rho, free_lam, free_mu, d_lam, d_mu):
    """``E^T [Diag(q) + sum rho pi pi^T] E`` applied to ``(d_lam, d_mu)`` written out with
    plain loops over blocks (fixed variables: identity)."""
    ny, nt, ns = q.shape[1:]
    out_l, out_m = np.zeros((ny, nt)), np.zeros((ny, ns))
    for t in range(nt):
        for s in range(ns):
            z = d_lam[0, :, t] + d_mu[0, :, s]
            u = q[0, :, t, s] * z + rho[0, t, s] * pi[0, :, t, s] * (pi[0, :, t, s] @ z)
            out_l[:, t] += u
            out_m[:, s] += u
    out_l = np.where(free_lam[0], out_l, d_lam[0])
    out_m = np.where(free_mu[0], out_m, d_mu[0])
    return out_l, out_m


@pytest.mark.parametrize("steps", [2, 6])
def test_structured_float32_factor_solves_the_newton_system(steps, monkeypatch):
    monkeypatch.setattr(_ipm, "SINGLE_SIZE", 0)   # float32 first, as for k >= 46
    p = random_pmf(np.random.default_rng(21), STRUCTURED_SHAPE, 0.3)
    q, pi, rho, free_lam, free_mu = newton_matrix_state(p, steps)
    kinds = []
    original = _ipm._factor

    def spy(a, xp, single=False):
        kinds.append(single)
        return original(a, xp, single)

    monkeypatch.setattr(_ipm, "_factor", spy)
    rng = np.random.default_rng(steps)
    g_lam = rng.standard_normal(free_lam.shape) * free_lam
    g_mu = rng.standard_normal(free_mu.shape) * free_mu
    solve = _ipm._newton_solver(q, pi, rho, free_lam, free_mu, NUMPY)
    d_lam, d_mu = solve(g_lam, g_mu)
    assert kinds == [True]            # the float32 factor alone was enough
    out_l, out_m = apply_newton_matrix(q, pi, rho, free_lam, free_mu, d_lam, d_mu)
    scale = np.sqrt((g_lam**2).sum() + (g_mu**2).sum())
    assert np.sqrt(((out_l - g_lam[0])**2).sum() + ((out_m - g_mu[0])**2).sum()) <= 1e-8 * scale
    # the dense solver (float64 LU/Cholesky of C^T B^-1 C) gives the same direction
    dense = _ipm._dense_solver(q, pi, rho, free_lam, free_mu, NUMPY)
    e_lam, e_mu = dense(g_lam, g_mu)
    size = np.abs(np.concatenate([e_lam.ravel(), e_mu.ravel()])).max()
    np.testing.assert_allclose(d_lam, e_lam, atol=1e-6 * size)
    np.testing.assert_allclose(d_mu, e_mu, atol=1e-6 * size)


@pytest.mark.parametrize("sparsity, seed", [(0.0, 31), (0.5, 32)])
def test_structured_path_matches_exponential_cone_solver(sparsity, seed, monkeypatch):
    monkeypatch.setattr(_ipm, "SINGLE_SIZE", 0)   # float32 first, as for k >= 46
    p = random_pmf(np.random.default_rng(seed), STRUCTURED_SHAPE, sparsity)
    kinds = []
    original = _ipm._factor

    def spy(a, xp, single=False):
        kinds.append(single)
        return original(a, xp, single)

    monkeypatch.setattr(_ipm, "_factor", spy)
    r = pidkit.pid(p, measure="broja")
    ref = reference_unique(p)
    assert True in kinds                      # the float32 factor was used
    assert r.unique[0] == pytest.approx(ref, abs=1e-7)
    cert = r.solver.certificate
    assert cert.gap <= 1e-9
    assert cert.lower - 1e-8 <= ref <= cert.upper + 1e-8


def test_certificate_is_a_proof_even_with_crude_directions(monkeypatch):
    # no refinement and any residual accepted: the float32 factor's raw directions drive the
    # iteration; the bracket must still contain the true value (it is computed exactly)
    monkeypatch.setattr(_ipm, "REFINE", 0)
    monkeypatch.setattr(_ipm, "ACCURACY", 1.0)
    monkeypatch.setattr(_ipm, "SINGLE_SIZE", 0)
    p = random_pmf(np.random.default_rng(41), STRUCTURED_SHAPE, 0.2)
    ref = reference_unique(p)
    r = pidkit.pid(p, measure="broja", tol=1e-6)
    cert = r.solver.certificate
    assert cert.lower - 1e-8 <= ref <= cert.upper + 1e-8
    assert cert.lower - 1e-12 <= r.unique[0] <= cert.upper + 1e-12


def test_structured_batch_equals_one_at_a_time_numpy_and_torch():
    rng = np.random.default_rng(51)
    batch = np.stack([random_pmf(rng, STRUCTURED_SHAPE, s) for s in (0.0, 0.4, 0.7)])
    r = pidkit.broja(batch, batch=True)
    r_t = pidkit.broja(torch.tensor(batch), batch=True)
    for i, p in enumerate(batch):
        single = pidkit.pid(p, measure="broja")
        for a, b, c in ((r.redundancy, r_t.redundancy, single.redundancy),
                        (r.unique[0], r_t.unique[0], single.unique[0]),
                        (r.synergy, r_t.synergy, single.synergy)):
            assert a[i] == pytest.approx(c, abs=2e-9)
            assert float(b[i]) == pytest.approx(c, abs=2e-9)
    assert np.all(r.solver.certificate.upper - r.solver.certificate.lower <= 1e-9)


def test_large_small_pmf_batch_converges_and_matches_single_solves():
    # 2000 Dirichlet(1) pmfs at k = 4, not renormalised: with a less careful elimination some
    # mu-mu blocks became exactly singular near the end (numpy raised "Singular matrix")
    rng = np.random.default_rng(0)
    batch = rng.dirichlet(np.ones(64), size=2000).reshape((2000, 4, 4, 4))
    r = pidkit.broja(batch, batch=True, normalize=True)
    assert r.solver.converged
    gap = r.solver.certificate.upper - r.solver.certificate.lower
    assert np.all(gap <= 1e-9)
    for i in (0, 777, 1999):
        single = pidkit.pid(batch[i] / batch[i].sum(), measure="broja")
        assert r.unique[0][i] == pytest.approx(single.unique[0], abs=2e-9)


def test_namespace_buffers_and_out_arguments():
    for x in (np.arange(6.0).reshape(2, 3), torch.arange(6.0, dtype=torch.float64).reshape(2, 3)):
        xp = get_namespace(x)
        work: dict = {}
        a = _ipm._buffer(work, "a", (3, 2), x, xp)
        b = _ipm._buffer(work, "a", (2, 2), x, xp)          # a smaller view of the same memory
        assert tuple(a.shape) == (3, 2) and tuple(b.shape) == (2, 2)
        b[0, 0] = 7.0
        assert float(a[0, 0]) == 7.0
        out = xp.empty((2, 2), x)
        res = xp.matmul(x, xp.swapaxes(x, 0, 1), out=out)
        assert float(out[1, 1]) == 9.0 + 16.0 + 25.0 and float(res[0, 1]) == 0.0 + 4.0 + 10.0
        prod = xp.multiply(x, x[0], out=xp.empty((2, 3), x))
        assert float(prod[1, 2]) == 10.0


def test_solved_schur_equals_structured_schur():
    # the two assemblies of A - sum_s C_s^T B_s^-1 C_s (explicit inverse vs LU solves) agree
    # early in the run, where neither has lost digits, with a non-square |Y| != |T|
    p = random_pmf(np.random.default_rng(61), STRUCTURED_SHAPE, 0.2)
    q, pi, rho, free_lam, free_mu = newton_matrix_state(p, 2)
    seen = []
    original = _ipm._factor

    def spy(a, xp, single=False):
        seen.append(np.array(a, dtype=np.float64))
        return original(a, xp, single)

    _ipm._factor = spy
    try:
        solve = _ipm._newton_solver(q, pi, rho, free_lam, free_mu, NUMPY)
        _ipm.ACCURACY, accuracy = 0.0, _ipm.ACCURACY     # force the float64 reassembly
        solve(free_lam * 1.0, free_mu * 1.0)
    finally:
        _ipm._factor = original
        _ipm.ACCURACY = accuracy
    structured, solved = seen
    assert structured.shape == solved.shape == (1, 9 * 12, 9 * 12)   # smaller source is T
    np.testing.assert_allclose(solved, structured, atol=1e-9 * np.abs(structured).max())
