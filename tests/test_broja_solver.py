"""BROJA's linear algebra (pidkit.discrete.broja._newton and _schur, driven by _ipm): the
structured Schur complement with its float32 Cholesky preconditioner against the dense Newton
solve and against cvxpy + Clarabel, the certificate staying a proof whatever the directions'
accuracy, batched structured solves equal to one-at-a-time ones (numpy and torch), a large k = 4
batch that once made the small-matrix solves singular, a sparse audit count table (and its
bootstrap replicates) on which the unbounded Mehrotra corrector diverged, and a zero diagonal in
a mu-mu block."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _broja_reference import random_pmf, reference_unique

import pidkit
from pidkit._backend import NUMPY, get_namespace
from pidkit.discrete.broja import _ipm, _newton, _schur, _small

# 1080 cells: the structured Schur complement from 1000 cells on (the fixture lowers the
# threshold to that, so these cheap shapes keep testing it)
STRUCTURED_SHAPE = (12, 10, 9)


@pytest.fixture(autouse=True)
def structured_from_1000_cells(monkeypatch):
    monkeypatch.setattr(_newton, "STRUCTURED_SIZE", 1000)


def newton_matrix_state(p: np.ndarray, steps: int):
    """Inputs of the Newton solver after ``steps`` interior-point iterations on ``p[y, t, s]``
    (``T`` the smaller source, as the solver arranges it)."""
    captured = []
    original = _newton.newton_solver

    def spy(q, pi, rho, free_lam, free_mu, xp, work=None):
        captured.append((q, pi, rho, free_lam, free_mu))
        return original(q, pi, rho, free_lam, free_mu, xp, work)

    _newton.newton_solver = spy
    try:
        _ipm.solve(p[None], NUMPY, tol=1e-12, max_iter=steps)
    finally:
        _newton.newton_solver = original
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


@pytest.fixture
def factor_kinds(monkeypatch):
    """The ``single`` flag of every factorisation of a Schur complement the solver asks the
    numpy backend for (True: float32)."""
    kinds = []
    original = NUMPY.sym_factor

    def spy(a, single=False):
        kinds.append(single)
        return original(a, single)

    monkeypatch.setattr(NUMPY, "sym_factor", spy)
    return kinds


@pytest.mark.parametrize("steps", [2, 6])
def test_structured_float32_factor_solves_the_newton_system(steps, monkeypatch, factor_kinds):
    monkeypatch.setattr(_newton, "SINGLE_SIZE", 0)   # float32 first, as for k >= 46
    # the float32-preconditioned conjugate gradients alone reach a 1e-9 relative residual
    # (the solver asks for 1e-12 and runs the float64 round where they stop short)
    monkeypatch.setattr(_newton, "ACCURACY", 1e-9)
    p = random_pmf(np.random.default_rng(21), STRUCTURED_SHAPE, 0.3)
    q, pi, rho, free_lam, free_mu = newton_matrix_state(p, steps)
    factor_kinds.clear()              # count only the solve below
    rng = np.random.default_rng(steps)
    g_lam = rng.standard_normal(free_lam.shape) * free_lam
    g_mu = rng.standard_normal(free_mu.shape) * free_mu
    solve = _newton.newton_solver(q, pi, rho, free_lam, free_mu, NUMPY)
    d_lam, d_mu = solve(g_lam, g_mu)
    assert factor_kinds == [True]     # the float32 factor alone was enough
    out_l, out_m = apply_newton_matrix(q, pi, rho, free_lam, free_mu, d_lam, d_mu)
    scale = np.sqrt((g_lam**2).sum() + (g_mu**2).sum())
    assert np.sqrt(((out_l - g_lam[0])**2).sum() + ((out_m - g_mu[0])**2).sum()) <= 1e-8 * scale
    # the dense solver (float64 LU/Cholesky of C^T B^-1 C) gives the same direction
    dense = _newton.DenseNewton(q, pi, rho, free_lam, free_mu, NUMPY)
    e_lam, e_mu = dense(g_lam, g_mu)
    size = np.abs(np.concatenate([e_lam.ravel(), e_mu.ravel()])).max()
    np.testing.assert_allclose(d_lam, e_lam, atol=1e-6 * size)
    np.testing.assert_allclose(d_mu, e_mu, atol=1e-6 * size)


def newton_residual(state, g_lam, g_mu, d_lam, d_mu):
    """The Euclidean residual of the Newton system at ``state`` for the direction ``d``."""
    out_l, out_m = apply_newton_matrix(*state, d_lam, d_mu)
    return math.sqrt(((out_l - g_lam[0])**2).sum() + ((out_m - g_mu[0])**2).sum())


def newton_problem(pmf_seed: int, steps: int, rhs_seed: int):
    """The Newton system after ``steps`` iterations on a random pmf, and a random right-hand
    side on its free variables: ``(state, g_lam, g_mu)``."""
    p = random_pmf(np.random.default_rng(pmf_seed), STRUCTURED_SHAPE, 0.3)
    state = newton_matrix_state(p, steps)
    free_lam, free_mu = state[3], state[4]
    rng = np.random.default_rng(rhs_seed)
    return (state, rng.standard_normal(free_lam.shape) * free_lam,
            rng.standard_normal(free_mu.shape) * free_mu)


def test_factors_are_tried_in_turn(monkeypatch, factor_kinds):
    # with an accuracy no direction reaches, every level runs once: the structured Schur
    # complement in float32, then the solved one in float32 and in float64
    monkeypatch.setattr(_newton, "SINGLE_SIZE", 0)
    monkeypatch.setattr(_newton, "ACCURACY", 0.0)
    state, g_lam, g_mu = newton_problem(22, 6, 5)
    factor_kinds.clear()
    d_lam, d_mu = _newton.newton_solver(*state, NUMPY)(g_lam, g_mu)
    assert factor_kinds == [True, True, False]
    scale = math.sqrt((g_lam**2).sum() + (g_mu**2).sum())
    assert newton_residual(state, g_lam, g_mu, d_lam, d_mu) <= 1e-8 * scale
    e_lam, e_mu = _newton.DenseNewton(*state, NUMPY)(g_lam, g_mu)   # float64 throughout
    size = np.abs(np.concatenate([e_lam.ravel(), e_mu.ravel()])).max()
    np.testing.assert_allclose(d_lam, e_lam, atol=1e-6 * size)
    np.testing.assert_allclose(d_mu, e_mu, atol=1e-6 * size)


def test_solved_float32_factor_stands_in_for_a_failed_structured_one(monkeypatch,
                                                                    factor_kinds):
    # a useless structured complement (the identity) as the float32 preconditioner: its
    # conjugate gradients stop short of the accuracy, the float32 factor of the complement
    # assembled from solves reaches it, and no float64 factorisation is needed
    monkeypatch.setattr(_newton, "SINGLE_SIZE", 0)
    monkeypatch.setattr(_newton, "ACCURACY", 1e-9)
    size = STRUCTURED_SHAPE[0] * min(STRUCTURED_SHAPE[1:])
    monkeypatch.setattr(_newton, "structured_schur",
                        lambda *args, **kwargs: np.eye(size)[None].copy())
    state, g_lam, g_mu = newton_problem(23, 4, 6)
    factor_kinds.clear()
    d_lam, d_mu = _newton.newton_solver(*state, NUMPY)(g_lam, g_mu)
    assert factor_kinds == [True, True]
    scale = math.sqrt((g_lam**2).sum() + (g_mu**2).sum())
    assert newton_residual(state, g_lam, g_mu, d_lam, d_mu) <= 1e-8 * scale


@pytest.mark.parametrize("sparsity, seed", [(0.0, 31), (0.5, 32)])
def test_structured_path_matches_exponential_cone_solver(sparsity, seed, monkeypatch,
                                                         factor_kinds):
    monkeypatch.setattr(_newton, "SINGLE_SIZE", 0)   # float32 first, as for k >= 46
    monkeypatch.setattr(_small, "LEAN_ROWS", 0)      # the general solver (Schur complement)
    p = random_pmf(np.random.default_rng(seed), STRUCTURED_SHAPE, sparsity)
    r = pidkit.pid(p, measure="broja")
    ref = reference_unique(p)
    assert True in factor_kinds               # the float32 factor was used
    assert r.unique[0] == pytest.approx(ref, abs=1e-7)
    cert = r.solver.certificate
    assert cert.gap <= 1e-9
    assert cert.lower - 1e-8 <= ref <= cert.upper + 1e-8


def test_certificate_is_a_proof_even_with_crude_directions(monkeypatch):
    # no refinement and any residual accepted: the float32 factor's raw directions drive the
    # iteration; the bracket must still contain the true value (it is computed exactly)
    monkeypatch.setattr(_newton, "REFINE", 0)
    monkeypatch.setattr(_newton, "ACCURACY", 1.0)
    monkeypatch.setattr(_newton, "SINGLE_SIZE", 0)
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
        a = _schur.buffer(work, "a", (3, 2), x, xp)
        b = _schur.buffer(work, "a", (2, 2), x, xp)          # a smaller view of the same memory
        assert tuple(a.shape) == (3, 2) and tuple(b.shape) == (2, 2)
        b[0, 0] = 7.0
        assert float(a[0, 0]) == 7.0
        out = xp.empty((2, 2), x)
        res = xp.matmul(x, xp.swapaxes(x, 0, 1), out=out)
        assert float(out[1, 1]) == 9.0 + 16.0 + 25.0 and float(res[0, 1]) == 0.0 + 4.0 + 10.0
        prod = xp.multiply(x, x[0], out=xp.empty((2, 3), x))
        assert float(prod[1, 2]) == 10.0


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_schur_assemblies_by_column_chunks_equal_the_whole(backend, monkeypatch):
    # one row y or t (structured) and one column u (solved) per chunk against one chunk for
    # all: the same complement (a late iterate, where both assemblies are used)
    p = random_pmf(np.random.default_rng(62), STRUCTURED_SHAPE, 0.2)
    state = newton_matrix_state(p, 8)
    if backend == "torch":
        state = tuple(torch.as_tensor(a) for a in state)
    xp = get_namespace(state[0])
    q, pi, rho, free_lam, free_mu = state

    def assemble():
        system = _newton.StructuredNewton(q, pi, rho, free_lam, free_mu, xp, work={})
        args = (system.qm, system.rpl, system.pr)
        structured = _schur.structured_schur(*args, system.m_s, system.a_t, xp, {})
        solved = _schur.solved_schur(*args, system.block_solve, system.a_t, xp, {})
        return [a.numpy() if isinstance(a, torch.Tensor) else a for a in (structured, solved)]

    whole = assemble()
    monkeypatch.setattr(_schur, "CHUNK", 1)
    assert len(_schur.column_chunks(tuple(q.shape))) == q.shape[2]
    assert len(_schur.row_chunks(q.shape[1], 1000)) == q.shape[1]
    for chunked, reference in zip(assemble(), whole, strict=True):
        np.testing.assert_allclose(chunked, reference, rtol=0,
                                   atol=1e-13 * np.abs(reference).max())


def test_solved_schur_equals_structured_schur():
    # the two assemblies of A - sum_s C_s^T B_s^-1 C_s (explicit inverse vs LU solves) agree
    # early in the run, where neither has lost digits, with a non-square |Y| != |T|
    p = random_pmf(np.random.default_rng(61), STRUCTURED_SHAPE, 0.2)
    q, pi, rho, free_lam, free_mu = newton_matrix_state(p, 2)
    seen = []
    original = NUMPY.sym_factor

    def spy(a, single=False):
        seen.append(np.array(a, dtype=np.float64))
        return original(a, single)

    NUMPY.sym_factor = spy
    try:
        solve = _newton.newton_solver(q, pi, rho, free_lam, free_mu, NUMPY)
        _newton.ACCURACY, accuracy = 0.0, _newton.ACCURACY     # force the float64 reassembly
        solve(free_lam * 1.0, free_mu * 1.0)
    finally:
        del NUMPY.sym_factor
        _newton.ACCURACY = accuracy
    structured, solved = seen
    assert structured.shape == solved.shape == (1, 9 * 12, 9 * 12)   # smaller source is T
    np.testing.assert_allclose(solved, structured, atol=1e-9 * np.abs(structured).max())


# A 10 x 10 x 10 count table (n = 2000) from a bootstrap replicate of an audit (labels x two
# discretised features), stored sparsely: flat index -> count; 70% of the cells are zero.
# The Mehrotra corrector without its bound overflowed on it and on about 20% of its own
# bootstrap replicates, stopping after 200 iterations with a gap near 0.05 bits.
AUDIT_CELLS = (
    0, 8, 14, 15, 22, 26, 27, 28, 32, 34, 36, 43, 44, 46, 56, 57, 59, 61, 62, 66, 75, 79, 80, 86,
    87, 90, 91, 92, 93, 94, 96, 97, 98, 99, 100, 103, 111, 112, 113, 117, 118, 120, 121, 122, 123,
    124, 126, 127, 128, 129, 130, 134, 146, 152, 157, 161, 162, 170, 175, 178, 182, 186, 192, 193,
    194, 208, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 222, 230, 234, 238, 244, 247,
    253, 257, 261, 275, 280, 282, 283, 286, 292, 295, 300, 301, 311, 315, 319, 321, 323, 325, 328,
    334, 338, 346, 348, 353, 359, 360, 361, 362, 363, 364, 365, 366, 367, 368, 369, 379, 383, 386,
    392, 398, 400, 405, 406, 412, 416, 418, 423, 428, 434, 441, 443, 445, 446, 450, 451, 452, 453,
    454, 455, 456, 457, 458, 459, 460, 461, 473, 476, 479, 481, 486, 492, 497, 503, 512, 513, 522,
    526, 528, 530, 531, 532, 533, 534, 535, 536, 537, 538, 539, 544, 546, 561, 565, 568, 569, 575,
    579, 586, 594, 599, 605, 612, 613, 628, 631, 633, 634, 638, 642, 646, 650, 661, 665, 666, 673,
    675, 680, 681, 682, 683, 684, 685, 686, 687, 688, 689, 692, 693, 694, 705, 709, 710, 713, 714,
    724, 728, 734, 737, 740, 741, 742, 743, 744, 745, 746, 747, 748, 749, 758, 761, 768, 774, 775,
    776, 781, 798, 800, 804, 806, 813, 823, 825, 826, 828, 829, 831, 833, 834, 841, 842, 843, 853,
    857, 861, 862, 864, 870, 871, 872, 873, 874, 875, 876, 877, 878, 879, 900, 901, 902, 903, 904,
    905, 906, 907, 908, 909, 913, 918, 923, 927, 928, 934, 943, 946, 953, 956, 960, 961, 975, 977,
    979, 986, 992, 999,
)
AUDIT_COUNTS = (
    7, 3, 2, 1, 1, 1, 1, 2, 3, 1, 3, 2, 1, 1, 1, 2, 2, 6, 6, 2, 3, 1, 2, 1, 1, 2, 6, 62, 4, 16, 11,
    5, 11, 4, 5, 1, 2, 1, 5, 1, 1, 4, 10, 7, 8, 5, 16, 6, 79, 3, 4, 1, 4, 1, 1, 4, 1, 1, 1, 1, 1,
    2, 1, 2, 1, 2, 8, 1, 9, 75, 13, 3, 13, 12, 8, 10, 1, 1, 2, 2, 1, 1, 1, 1, 4, 5, 2, 2, 1, 1, 2,
    2, 2, 2, 1, 1, 1, 2, 1, 1, 1, 9, 4, 1, 1, 1, 3, 1, 11, 75, 10, 10, 4, 4, 15, 7, 10, 7, 2, 1, 4,
    3, 1, 3, 1, 3, 2, 3, 2, 1, 1, 2, 1, 1, 2, 4, 11, 16, 5, 9, 11, 2, 21, 68, 11, 3, 1, 1, 2, 1, 1,
    1, 1, 3, 1, 4, 2, 2, 1, 1, 2, 11, 9, 5, 10, 85, 2, 18, 7, 20, 5, 1, 2, 7, 1, 1, 2, 3, 3, 2, 3,
    1, 2, 2, 4, 1, 3, 2, 4, 1, 1, 2, 1, 2, 3, 3, 2, 4, 12, 5, 17, 9, 8, 15, 75, 7, 9, 7, 3, 4, 1,
    1, 1, 2, 1, 1, 2, 2, 3, 1, 4, 8, 3, 4, 8, 1, 126, 11, 5, 4, 2, 1, 1, 1, 4, 3, 1, 2, 2, 1, 1, 3,
    2, 1, 1, 3, 2, 1, 3, 1, 3, 1, 1, 1, 2, 2, 1, 2, 12, 7, 6, 4, 8, 42, 16, 8, 13, 43, 105, 9, 8,
    6, 7, 8, 21, 14, 11, 4, 2, 3, 1, 1, 6, 6, 1, 6, 2, 3, 1, 2, 3, 3, 3, 7, 9, 2,
)


def audit_counts() -> np.ndarray:
    counts = np.zeros(1000)
    counts[list(AUDIT_CELLS)] = AUDIT_COUNTS
    return counts.reshape(10, 10, 10)


def test_sparse_audit_count_table_regression():
    counts = audit_counts()
    p = counts / counts.sum()
    # bootstrap replicates of the table (multinomial resampling, seeded), as the audit draws
    rng = np.random.default_rng(7)
    boots = rng.multinomial(int(counts.sum()), p.ravel(), size=12).reshape(12, 10, 10, 10)
    batch = np.concatenate([p[None], boots / counts.sum()])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        single = pidkit.pid(p, target=0, measure="broja")
        r = pidkit.broja(batch, batch=True)
        r_t = pidkit.broja(torch.tensor(batch), batch=True)
    assert single.solver.status == r.solver.status == r_t.solver.status == "optimal"
    assert single.solver.certificate.gap <= 1e-9
    assert np.all(r.solver.certificate.upper - r.solver.certificate.lower <= 1e-9)
    ref = reference_unique(p)
    assert single.unique[0] == pytest.approx(ref, abs=1e-7)
    assert r.unique[0][0] == pytest.approx(ref, abs=1e-7)
    assert float(r_t.unique[0][0]) == pytest.approx(ref, abs=1e-7)
    # replicate 4 (batch item 5) also diverged without the bound
    assert r.unique[0][5] == pytest.approx(reference_unique(batch[5]), abs=1e-7)


def test_corrector_bound_is_what_fixes_the_audit_table(monkeypatch):
    # without the bound on the second-order term the same table diverges: the bound (not an
    # unrelated change) is what the regression test above relies on. The interior-point
    # iteration alone: since its iterates stay finite (the line search takes no non-finite
    # step) the crossover at iteration 40 certifies this run too
    monkeypatch.setattr(_ipm, "CORRECTOR_CAP", math.inf)
    monkeypatch.setattr(_ipm, "POLISH_EVERY", 10**9)
    counts = audit_counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _ipm.solve((counts / counts.sum())[None], NUMPY, tol=1e-9, max_iter=40)
    assert not bool(out.converged[0])


def test_zero_diagonal_mu_block_gives_finite_directions():
    # a free mu[y, s] whose softmax weights all underflowed has a zero row in B_s: the
    # unit-diagonal scaling must not divide by zero (both Newton solvers, warnings as errors)
    p = random_pmf(np.random.default_rng(71), STRUCTURED_SHAPE, 0.2)
    q, pi, rho, free_lam, free_mu = newton_matrix_state(p, 3)
    y, s = np.argwhere(free_mu[0])[0]
    q, pi = q.copy(), pi.copy()
    q[0, y, :, s] = 0.0
    pi[0, y, :, s] = 0.0
    rng = np.random.default_rng(72)
    g_lam = rng.standard_normal(free_lam.shape) * free_lam
    g_mu = rng.standard_normal(free_mu.shape) * free_mu
    assert _newton.unit_diagonal_scaling(np.array([[0.0, 1.0], [1.0, 4.0]])[None, None], NUMPY
                                       ).tolist() == [[[1.0, 0.5]]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for make in (_newton.newton_solver, _newton.DenseNewton):
            d_lam, d_mu = make(q, pi, rho, free_lam, free_mu, NUMPY)(g_lam, g_mu)
            assert np.isfinite(d_lam).all() and np.isfinite(d_mu).all()


@pytest.mark.parametrize("steps", [2, 8])
def test_dense_symmetric_form_equals_the_general_one(steps, monkeypatch):
    # the dense solver with Cholesky factors of the mu-mu blocks (S = A - N^T N) and without
    # them (S = A - C^T B^-1 C, LU solves: the fallback where a block is indefinite) solve the
    # same Newton system as accurately, early and late in a run (rho up to 1e8: relative
    # residuals near 1e-5 for both, which the refined corrector brings to 1e-7), numpy and
    # torch
    p = random_pmf(np.random.default_rng(81), STRUCTURED_SHAPE, 0.3)
    state = newton_matrix_state(p, steps)
    free_lam, free_mu = state[3], state[4]
    rng = np.random.default_rng(82)
    g_lam = rng.standard_normal(free_lam.shape) * free_lam
    g_mu = rng.standard_normal(free_mu.shape) * free_mu
    symmetric = _newton.DenseNewton(*state, NUMPY)
    assert symmetric.k is not None
    d_lam, d_mu = symmetric(g_lam, g_mu)
    torch_state = [torch.tensor(x) for x in state]
    t_lam, t_mu = _newton.DenseNewton(*torch_state, get_namespace(torch_state[0]))(
        torch.tensor(g_lam), torch.tensor(g_mu))
    monkeypatch.setattr(NUMPY, "cho_factor", lambda a: None)
    general = _newton.DenseNewton(*state, NUMPY)
    assert general.k is None
    e_lam, e_mu = general(g_lam, g_mu)
    scale = math.sqrt((g_lam**2).sum() + (g_mu**2).sum())
    reference = newton_residual(state, g_lam, g_mu, e_lam, e_mu)
    assert reference <= (1e-12 if steps == 2 else 1e-4) * scale
    for a_lam, a_mu in ((d_lam, d_mu), (t_lam.numpy(), t_mu.numpy())):
        assert newton_residual(state, g_lam, g_mu, a_lam, a_mu) <= 2 * reference
    if steps == 2:
        size = np.abs(np.concatenate([e_lam.ravel(), e_mu.ravel()])).max()
        np.testing.assert_allclose(d_lam, e_lam, atol=1e-10 * size)
        np.testing.assert_allclose(d_mu, e_mu, atol=1e-10 * size)


def test_small_target_takes_the_dense_solver_with_the_same_answer(monkeypatch):
    # |Y| = 3 against 60 x 60 source values: 10,800 cells, above STRUCTURED_SIZE, but the
    # dense solver's |Y|^3 cost is small there (3-13x faster per Newton matrix)
    p = np.random.default_rng(0).random((3, 60, 60))
    p /= p.sum()
    kinds = []
    original = _newton.newton_solver

    def spy(*args, **kwargs):
        solver = original(*args, **kwargs)
        kinds.append(type(solver).__name__)
        return solver

    monkeypatch.setattr(_newton, "newton_solver", spy)
    monkeypatch.setattr(_newton, "STRUCTURED_SIZE", 6000)
    monkeypatch.setattr(_small, "LEAN_ROWS", 0)      # the general solver (Schur complement)
    dense = pidkit.pid(p)
    assert set(kinds) == {"DenseNewton"}
    monkeypatch.setattr(_newton, "SMALL_TARGET", 10**6)          # the rule off: structured
    kinds.clear()
    structured = pidkit.pid(p)
    assert set(kinds) == {"StructuredNewton"}
    gap = dense.solver.certificate.gap + structured.solver.certificate.gap
    assert dense.solver.converged and structured.solver.converged
    assert dense.redundancy == pytest.approx(structured.redundancy, abs=gap + 1e-12)
    # and a cubic table above the threshold keeps the structured one
    kinds.clear()
    monkeypatch.setattr(_newton, "SMALL_TARGET", 3)
    cubic = np.random.default_rng(1).random((20, 20, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                          # max_iter: a few steps do
        pidkit.pid(cubic / cubic.sum(), max_iter=2)
    assert kinds and set(kinds) == {"StructuredNewton"}
