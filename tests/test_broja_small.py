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


def test_lean_driver_needs_no_fallback_on_dirichlet_one(general_solver_calls):
    """Dirichlet(1) pmfs k = 2..8 (the benchmark's kind) never leave the lean path."""
    rng = np.random.default_rng(7)
    for k in range(2, 9):
        for shape in ((k, k, k), (k, 2, k), (2, k, 3)):
            p = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
            r = pidkit.broja(p)
            assert r.solver.status in ("optimal", "closed_form")
            assert r.solver.certificate.gap <= TOL_BITS
    assert general_solver_calls == []


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
    """When the lean iteration's linear algebra fails (a Newton matrix LAPACK does not
    factorise), the general solver's output is returned as is."""
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(4 * 4 * 3)).reshape(4, 4, 3)

    def not_positive_definite(*args, **kwargs):
        raise np.linalg.LinAlgError("Newton matrix not positive definite")

    monkeypatch.setattr(_small, "_factor", not_positive_definite)
    out_lean = _small.solve(p[None], NUMPY, TOL, 200)
    out_general = _ipm.solve(p[None], NUMPY, TOL, 200)
    assert out_lean.iterations == out_general.iterations
    np.testing.assert_array_equal(out_lean.f_upper, out_general.f_upper)
    np.testing.assert_array_equal(out_lean.f_lower, out_general.f_lower)
    np.testing.assert_array_equal(out_lean.q, out_general.q)          # the input's layout
    # a warm start reaches the general solver too (its state, in the solver's layout)
    first = pidkit.broja(p)
    moved = 0.999 * p + 0.001 / p.size
    warm = pidkit.broja(moved, warm_start=first)
    cold = pidkit.broja(moved)
    assert warm.solver.converged and warm.solver.certificate.gap <= TOL_BITS
    assert abs(warm.synergy - cold.synergy) <= 2 * TOL_BITS
    np.testing.assert_allclose(warm.solver.state.q[0].sum(axis=2), moved.sum(axis=2),
                               rtol=1e-12, atol=1e-16)


def test_large_pmfs_and_large_batches_take_the_general_solver(monkeypatch):
    calls = []
    monkeypatch.setattr(_small, "_lean", lambda *a: calls.append(a) or None)
    monkeypatch.setattr(_ipm, "solve", lambda p, *a: calls.append("general") or None)
    rng = np.random.default_rng(5)
    big = rng.dirichlet(np.ones(40 * 30 * 2)).reshape(1, 40, 30, 2)   # 40 x (30 + 2) rows
    assert 40 * (30 + 2) > _small.LEAN_ROWS
    _small.solve(big, NUMPY, 1e-6, 200)
    assert calls == ["general"]
    calls.clear()
    many = rng.dirichlet(np.ones(27), size=_small.LEAN_BATCH + 1).reshape(-1, 3, 3, 3)
    _small.solve(many, NUMPY, 1e-6, 200)
    assert calls == ["general"]


def test_small_batches_are_solved_item_by_item(monkeypatch):
    """A batch of at most LEAN_BATCH small pmfs: each item by the lean driver, with its own
    certificate (the same values as the general solver's within the gaps); items marked done
    (closed-form) are not iterated and keep a feasible dual point."""
    calls = []
    original = _small._lean
    monkeypatch.setattr(_small, "_lean", lambda *a: calls.append(a[0].shape) or original(*a))
    rng = np.random.default_rng(6)
    batch = rng.dirichlet(np.ones(3 * 4 * 5), size=3).reshape(3, 3, 4, 5)
    done = np.array([False, True, False])
    out = _small.solve(batch, NUMPY, TOL, 200, done=done)
    assert calls == [(3, 4, 5), (3, 4, 5)]
    general = _ipm.solve(batch, NUMPY, TOL, 200, done=done)
    for b in (0, 2):
        assert out.f_upper[b] - out.f_lower[b] <= TOL
        assert max(out.f_lower[b], general.f_lower[b]) <= min(out.f_upper[b],
                                                               general.f_upper[b]) + 1e-13
    assert out.f_lower[1] == -math.inf and out.f_upper[1] == math.inf
    h = np.log(np.exp(out.lam[1][:, :, None] + out.mu[1][:, None, :]).sum(axis=0))
    assert np.all(h <= 1e-12)                                   # feasible dual point


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


def random_iterate(rng: np.random.Generator, p: np.ndarray):
    """A random interior iterate of the lean driver on ``p`` (dual vector, masses, slacks)."""
    pr = _small._Small(p)
    v = rng.normal(scale=2.0, size=pr.n)
    ws = np.stack([rng.uniform(0.01, 1.0, p.shape[1:]) * pr.livef,
                   np.where(pr.live, rng.uniform(0.01, 1.0, p.shape[1:]), 1.0)])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return pr, _small._Point(pr, v, ws)


def sparse_pmf(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A pmf with disallowed cells and, by construction, dead blocks: y = 0 only with t = 0
    and s = 0, the other y never with t = 0 or s = 0."""
    p = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
    p[0, 1:, :] = 0.0
    p[0, :, 1:] = 0.0
    p[1:, 0, :] = 0.0
    p[1:, :, 0] = 0.0
    p[rng.random(shape) < 0.2] *= 1e-3
    return p / p.sum()


@pytest.mark.parametrize("shape", [(3, 3, 3), (2, 3, 5), (5, 4, 4), (8, 8, 8)])
def test_lean_certificate_is_the_bounds_modules(shape):
    """The lean driver's certificate (one pmf, plain numpy) equals the batched functions of
    pidkit.discrete.broja._bounds on the same iterate, dead blocks and zero cells included."""
    from pidkit.discrete.broja._bounds import dual_bound, neg_conditional_entropy, repair

    rng = np.random.default_rng(sum(shape))
    for p in (rng.dirichlet(np.ones(math.prod(shape))).reshape(shape),
              sparse_pmf(rng, shape)):
        pr, x = random_iterate(rng, p)
        assert pr.dead == (p[0, 0, 1:].sum() == 0)     # the sparse pmf has dead blocks
        with np.errstate(divide="ignore", invalid="ignore"):
            low, up, lam, mu, q = _small._certificate(pr, x)
        ny, nt, ns = shape
        lam0, mu0 = x.v[:ny * nt].reshape(ny, nt), x.v[ny * nt:].reshape(ny, ns)
        lam_b, mu_b, low_b = dual_bound(lam0[None], mu0[None], x.h[None], pr.p_yt[None],
                                        pr.p_ys[None], pr.live[None], NUMPY)
        q_b = repair(x.q[None], pr.p_yt[None], pr.p_ys[None], NUMPY)
        up_b = neg_conditional_entropy(q_b, NUMPY)
        np.testing.assert_allclose(lam, lam_b[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(mu, mu_b[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(q, q_b[0], rtol=1e-13, atol=1e-300)
        assert low == pytest.approx(float(low_b[0]), rel=1e-13, abs=1e-14)
        assert up == pytest.approx(float(up_b[0]), rel=1e-13, abs=1e-14)
        # the repaired point has the marginals of p exactly (up to rounding)
        np.testing.assert_allclose(q.sum(axis=2), pr.p_yt, atol=1e-15)
        np.testing.assert_allclose(q.sum(axis=1), pr.p_ys, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 3, 3), (2, 3, 5), (4, 2, 3), (5, 4, 4), (8, 8, 8)])
def test_lean_newton_matrix_matches_its_definition(shape):
    """The assembled Newton matrix (upper triangle, scaled to a unit diagonal) against
    E^T Diag(q) E + G Diag(rho) G^T written out with loops, G[:, (t, s)] = sum_y pi[y, t, s]
    E[(y, t, s), :], fixed variables (zero marginals, the pinned mu) as identity rows."""
    rng = np.random.default_rng(7 * sum(shape))
    for p in (rng.dirichlet(np.ones(math.prod(shape))).reshape(shape),
              sparse_pmf(rng, shape)):
        pr, x = random_iterate(rng, p)
        ny, nt, ns = shape
        n = pr.n
        w, s = x.ws
        rho = w / s - w
        with np.errstate(divide="ignore", invalid="ignore"):
            matrix, chol, scale = _small._newton(pr, x, rho)
        e = np.zeros((ny, nt, ns, n))
        for y in range(ny):
            for t in range(nt):
                for k in range(ns):
                    e[y, t, k, y * nt + t] = 1.0
                    e[y, t, k, ny * nt + y * ns + k] = 1.0
        g = np.einsum("ytsn,yts->tsn", e, x.pi).reshape(nt * ns, n).T
        e = e.reshape(-1, n)
        ref = e.T @ (x.q.reshape(-1)[:, None] * e) + g @ (rho.reshape(-1)[:, None] * g.T)
        pinned = np.zeros((ny, ns), bool)
        for y in range(ny):
            pinned[y, int(np.argmax(pr.p_ys[y]))] = True
        free = np.concatenate([(pr.p_yt > 0).ravel(), ((pr.p_ys > 0) & ~pinned).ravel()])
        d = np.where(free, 1.0 / np.sqrt(np.where(free, np.diag(ref), 1.0)), 0.0)
        ref = d[:, None] * ref * d[None, :]
        np.fill_diagonal(ref, 1.0)
        np.testing.assert_allclose(np.triu(matrix), np.triu(ref), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scale, d, rtol=1e-12)
        # the factor is the Cholesky factor of the matrix plus the ridge
        low = np.tril(chol)
        np.testing.assert_allclose(low @ low.T, ref + _small.RIDGE * np.eye(n), atol=1e-12)


def test_information_numpy_path_matches_entropies():
    """The numpy path of _core.information against entropies written out with loops."""
    from pidkit.discrete.broja._core import information

    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.full(60, 0.3), size=3).reshape(3, 5, 3, 4)
    p[1, 0] = 0.0
    p[1] /= p[1].sum()
    info = information(p, NUMPY)

    def h(x):
        x = x[x > 0]
        return -float(np.sum(x * np.log(x)))

    for b in range(3):
        q = p[b]
        h_y, h_t, h_s = h(q.sum(axis=(1, 2))), h(q.sum(axis=(0, 2))), h(q.sum(axis=(0, 1)))
        h_yt, h_ys, h_ts = h(q.sum(axis=2)), h(q.sum(axis=1)), h(q.sum(axis=0))
        assert info.h_y_given_s[b] == pytest.approx(h_ys - h_s, abs=1e-14)
        assert info.i_t[b] == pytest.approx(h_y + h_t - h_yt, abs=1e-14)
        assert info.i_s[b] == pytest.approx(h_y + h_s - h_ys, abs=1e-14)
        assert info.i_ts[b] == pytest.approx(h_y + h_ts - h(q), abs=1e-14)


def test_lean_driver_needs_no_fallback_on_skewed_pmfs(monkeypatch):
    """Dirichlet(0.1 .. 1) pmfs with zeroed cells (the random_small_pmf mix, where the
    complementarity could outrun feasibility and the independent coupling can start with block
    masses near 1e-10) never leave the lean path."""
    results = []
    original = _small._lean

    def spy(*args):
        results.append(original(*args))
        return results[-1]

    monkeypatch.setattr(_small, "_lean", spy)
    rng = np.random.default_rng(12345)
    for _ in range(120):
        p = random_small_pmf(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            atoms, _ = solve_atoms(p[None], NUMPY, TOL, 200, solver=_small.solve)
        assert atoms.converged[0]
    assert len(results) >= 100 and all(r is not None for r in results)


def test_lean_driver_reports_its_bracket_at_max_iter(monkeypatch):
    """A pmf the lean driver does not certify within ``max_iter`` gets its best bracket, not
    converged, with a ConvergenceWarning (the general solver is not run a second time); the
    bracket holds the exact value."""
    from _broja_reference import reference_unique

    calls = []
    monkeypatch.setattr(_ipm, "solve", lambda *a, **k: calls.append(a) or None)
    p = np.random.default_rng(13).dirichlet(np.ones(5 * 6 * 7)).reshape(5, 6, 7)
    with pytest.warns(pidkit.errors.ConvergenceWarning, match="max_iter"):
        r = pidkit.pid(p, measure="broja", max_iter=3)
    assert calls == []
    cert = r.solver.certificate
    assert r.solver.status == "max_iter" and not r.solver.converged and cert.gap > 1e-9
    exact = reference_unique(p)                                  # bits
    assert cert.lower - 1e-9 <= exact <= cert.upper + 1e-9
