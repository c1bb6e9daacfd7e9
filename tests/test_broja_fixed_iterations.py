"""The fixed-iteration, synchronisation-free mode of the torch BROJA path
(``pidkit.broja(p, batch=True, iterations=N)``): no host read inside the call (forward and
backward, cold and warm), the values of the certified solve within the gap it reports on the
device, the lazy check (``solver.check()``), envelope gradients against finite differences,
pmfs with zero cells in float32 and float64, and typed errors for bad ``iterations``.

References: an independent cvxpy + Clarabel solve (``_broja_reference``) and the AND gate's
closed form (Bertschinger et al. 2014, Entropy 16, 2161: Red = 0.311278 bits, Syn = 0.5 bits).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _broja_reference import information_terms, random_pmf, reference_unique

import pidkit
from pidkit.errors import ConvergenceWarning, PIDTypeError, PIDValueError
from pidkit_distill.sync_check import count_host_syncs

torch.set_num_threads(1)


def dirichlet_batch(seed: int, n: int = 3, k: int = 10, alpha: float = 1.0) -> np.ndarray:
    """``n`` Dirichlet(alpha) pmfs of shape ``(k, k, k)``, the regulariser's case."""
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(k**3, alpha), size=n).reshape((n, k, k, k))


def moved(p: np.ndarray, seed: int, step: float = 1e-2) -> np.ndarray:
    """``p`` moved by a relative step (an optimizer step), renormalised."""
    q = p * np.exp(step * np.random.default_rng(seed).standard_normal(p.shape))
    return q / q.sum(axis=(1, 2, 3), keepdims=True)


def mixed_batch() -> np.ndarray:
    """Five pmfs ``(3, 4, 2)`` (``|X0| > |X1|``: the solver swaps the sources) with zero
    cells: full support, an unused outcome of each variable, scattered zeros, and a copy of
    the target in ``X0`` (closed form: ``X1`` independent of nothing, Red = I(Y;X1))."""
    rng = np.random.default_rng(7)
    out = [random_pmf(rng, (3, 4, 2))]
    for axis in range(3):
        p = random_pmf(rng, (3, 4, 2))
        np.moveaxis(p, axis, 0)[-1] = 0.0
        out.append(p / p.sum())
    out.append(random_pmf(rng, (3, 4, 2), sparsity=0.5))
    copy = np.zeros((3, 4, 2))
    for y in range(3):
        copy[y, y] = rng.dirichlet(np.ones(2)) / 3
    out.append(copy)
    return np.stack(out)


# -- (a) no host synchronisation ------------------------------------------------------------
@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_no_host_read_in_a_cold_and_a_warm_step_with_backward(batch):
    p0 = dirichlet_batch(0)
    if not batch:
        p0 = p0[:1]
    first = torch.tensor(p0 if batch else p0[0], requires_grad=True)
    second = torch.tensor(moved(p0, 1) if batch else moved(p0, 1)[0], requires_grad=True)
    with count_host_syncs() as syncs:
        cold = pidkit.broja(first, batch=batch, iterations=10)
        cold.redundancy.sum().backward()
        warm = pidkit.broja(second, batch=batch, iterations=5, warm_start=cold)
        (warm.redundancy.sum() + warm.synergy.sum()).backward()
    assert syncs.count == 0, syncs.report()
    assert cold.solver.status == warm.solver.status == "fixed_iterations"
    assert cold.solver.iterations == 10 and warm.solver.iterations == 5
    assert torch.isfinite(first.grad).all() and torch.isfinite(second.grad).all()


def test_no_host_read_with_invalid_items_and_normalize():
    p = torch.tensor(dirichlet_batch(2, n=4, k=4)) * 3.0           # sums 3: normalize=True
    p[1, 0, 0, 0] = -0.1                                          # invalid: negative
    p[2, 1, 1, 1] = math.nan                                      # invalid: NaN
    p[3] = 0.0                                                    # invalid: all zeros
    with count_host_syncs() as syncs:
        r = pidkit.broja(p, batch=True, normalize=True, iterations=8)
    assert syncs.count == 0, syncs.report()
    assert r.solver.details["valid"].tolist() == [True, False, False, False]
    assert torch.isfinite(r.redundancy[0]) and torch.isnan(r.redundancy[1:]).all()
    with pytest.raises(PIDValueError, match=r"item\(s\) \[1, 2, 3\]"):
        r.solver.check()


def test_a_sum_different_from_one_is_invalid_without_normalize():
    p = torch.tensor(dirichlet_batch(3, n=2, k=3))
    p[1] *= 1.01
    r = pidkit.broja(p, batch=True, iterations=10)
    assert r.solver.details["valid"].tolist() == [True, False]
    with pytest.raises(PIDValueError, match="normalize=True"):
        r.solver.check()


# -- (b) values of the certified solve, within the reported gap -------------------------------
def test_enough_iterations_with_warm_starts_give_the_certified_values():
    tol = 1e-9
    p = dirichlet_batch(4)
    previous = None
    for step in range(4):                                          # consecutive training steps
        p = moved(p, 10 + step)
        t = torch.tensor(p)
        fixed = pidkit.broja(t, batch=True, iterations=30, warm_start=previous)
        exact = pidkit.broja(t, batch=True, tol=tol)
        gap = fixed.solver.details["gap_bits"]
        assert gap.device == t.device and gap.dtype == torch.float64
        assert (gap <= tol).all(), gap
        cert = fixed.solver.certificate
        torch.testing.assert_close(cert.upper - cert.lower, gap, rtol=1e-6, atol=1e-15)
        for name in ("redundancy", "synergy"):
            got, want = getattr(fixed, name), getattr(exact, name)
            assert ((got - want).abs() <= gap + exact.solver.certificate.gap + 1e-13).all()
        assert bool(fixed.solver.converged) and fixed.solver.details["converged"].all()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert fixed.solver.check() is True
        previous = fixed


def test_warm_start_needs_fewer_iterations_than_cold():
    p0 = dirichlet_batch(5)
    first = pidkit.broja(torch.tensor(p0), batch=True, iterations=30)
    p1 = torch.tensor(moved(p0, 6, step=1e-3))
    warm = pidkit.broja(p1, batch=True, iterations=3, warm_start=first)
    cold = pidkit.broja(p1, batch=True, iterations=3)
    assert (warm.solver.details["gap_bits"] <= 1e-9).all()
    assert (cold.solver.details["gap_bits"] > 1e-6).all()


def test_a_warm_chain_of_few_iterations_per_step_converges_over_the_steps():
    p = dirichlet_batch(16)
    previous, gaps = None, []
    for step in range(5):
        p = moved(p, 20 + step)
        previous = pidkit.broja(torch.tensor(p), batch=True, iterations=3, warm_start=previous)
        gaps.append(float(previous.solver.details["gap_bits"].max()))
    cold = pidkit.broja(torch.tensor(p), batch=True, iterations=3)
    assert gaps[0] > 1e-4 and float(cold.solver.details["gap_bits"].max()) > 1e-4
    assert max(gaps[2:]) <= 1e-6, gaps
    exact = pidkit.broja(torch.tensor(p), batch=True)
    assert ((previous.redundancy - exact.redundancy).abs() <= gaps[-1] + 1e-9).all()


def test_the_and_gate_matches_its_closed_form():
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[0, 0, 1] = p[0, 1, 0] = p[1, 1, 1] = 0.25
    r = pidkit.broja(torch.tensor(p), iterations=20)
    red = 1.5 - 0.75 * math.log2(3)                               # Bertschinger et al. 2014
    assert abs(float(r.redundancy) - red) <= 1e-9
    assert abs(float(r.synergy) - 0.5) <= 1e-9
    assert r.solver.check()


# -- (c) the lazy check ---------------------------------------------------------------------
def test_lazy_check_warns_when_too_few_iterations_and_is_silent_with_enough():
    p = torch.tensor(dirichlet_batch(8))
    short = pidkit.broja(p, batch=True, iterations=2)
    gap = short.solver.details["gap_bits"]
    assert (gap > 1e-9).any() and torch.isfinite(gap).all()
    assert not bool(short.solver.converged)
    with pytest.warns(ConvergenceWarning, match=r"after 2 fixed iterations.*iterations=4"):
        assert short.solver.check() is False
    # the short solve is still certified: the true value lies in its bracket
    exact = pidkit.broja(p, batch=True)
    cert = short.solver.certificate
    uni = exact.unique[0]
    assert ((cert.lower - 1e-12 <= uni) & (uni <= cert.upper + 1e-12)).all()
    long = pidkit.broja(p, batch=True, iterations=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert long.solver.check() is True


# -- (d) gradients --------------------------------------------------------------------------
def test_gradient_matches_finite_differences_at_convergence():
    p0 = dirichlet_batch(9, n=2, k=4)
    p = torch.tensor(p0, requires_grad=True)
    r = pidkit.broja(p, batch=True, iterations=30, tol=1e-12)
    assert (r.solver.details["gap_bits"] <= 1e-10).all()
    weights = torch.tensor([1.0, -0.7], dtype=torch.float64)
    (grad,) = torch.autograd.grad((weights * r.redundancy).sum(), p)
    rng = np.random.default_rng(11)
    h = 1e-4
    for _ in range(3):
        d = p0 * rng.standard_normal(p0.shape)                     # relative moves of each cell
        d -= p0 * d.sum(axis=(1, 2, 3), keepdims=True)             # that keep the sum at 1
        plus = pidkit.broja(torch.tensor(p0 + h * d), batch=True, tol=1e-13)
        minus = pidkit.broja(torch.tensor(p0 - h * d), batch=True, tol=1e-13)
        fd = float((weights * (plus.redundancy - minus.redundancy)).sum()) / (2 * h)
        assert abs(float((grad * torch.tensor(d)).sum()) - fd) <= 1e-7 * max(1.0, abs(fd))


def test_unconverged_gradient_is_a_feasible_dual_point_exact_at_the_lower_bound():
    """Before convergence the gradient ``g = lam + mu`` of f* is the dual point of the best
    lower bound: ``<g, P> = f_lower(P)`` and, the dual being feasible for every pmf of the same
    support, ``<g, P'> <= f*(P')`` (an epsilon-subgradient, epsilon = the certified gap)."""
    from pidkit._backend import get_namespace
    from pidkit.discrete.broja import _ipm

    p0 = torch.tensor(dirichlet_batch(17, n=2, k=5))
    xp = get_namespace(p0)
    out = _ipm.solve_fixed(p0, xp, 1e-12, 2)
    assert ((out.f_upper - out.f_lower) > 1e-6).all()                # not converged
    g = out.lam[:, :, :, None] + out.mu[:, :, None, :]
    torch.testing.assert_close((g * p0).sum(dim=(1, 2, 3)), out.f_lower, rtol=0, atol=1e-13)
    for seed in range(3):
        other = torch.tensor(dirichlet_batch(30 + seed, n=2, k=5))
        exact = _ipm.solve(other, xp, 1e-12, 200)
        assert ((g * other).sum(dim=(1, 2, 3)) <= exact.f_lower + 1e-12).all()


def test_gradient_equals_the_default_path_at_convergence():
    p0 = dirichlet_batch(12, n=3, k=6)
    grads = []
    for options in ({"iterations": 30}, {}):
        p = torch.tensor(p0, requires_grad=True)
        r = pidkit.broja(p, batch=True, **options)
        (r.redundancy.sum() + 2 * r.unique[1].sum()).backward()
        grads.append(p.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)


# -- (e) zero cells, shapes, dtypes ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pmfs_with_zero_cells_match_an_independent_solve(dtype):
    p = mixed_batch()
    with count_host_syncs() as syncs:
        r = pidkit.broja(torch.tensor(p, dtype=dtype), batch=True, iterations=30)
    assert syncs.count == 0, syncs.report()
    assert r.redundancy.dtype == dtype and r.solver.details["gap_bits"].dtype == torch.float64
    assert r.solver.check()
    atol = 1e-7 if dtype == torch.float64 else 5e-5                # float32 storage of p
    for b, pmf in enumerate(p):
        pmf32 = pmf.astype(np.float32).astype(np.float64) if dtype == torch.float32 else pmf
        pmf32 = pmf32 / pmf32.sum()
        i_t, _, _ = information_terms(pmf32)
        red = i_t - reference_unique(pmf32)
        assert abs(float(r.redundancy[b]) - red) <= atol, (b, float(r.redundancy[b]), red)


def test_single_pmf_in_float32_keeps_its_dtype_and_shape():
    p = torch.tensor(dirichlet_batch(13, n=1, k=5)[0], dtype=torch.float32)
    r = pidkit.broja(p, iterations=25)
    assert r.redundancy.shape == () and r.redundancy.dtype == torch.float32
    assert r.solver.details["gap_bits"].shape == ()
    exact = pidkit.broja(p)
    assert abs(float(r.redundancy) - float(exact.redundancy)) <= 1e-6
    assert r.solver.check()


# -- (f) typed errors -----------------------------------------------------------------------
@pytest.mark.parametrize(("value", "kind"), [
    (0, PIDValueError), (-3, PIDValueError), (5.0, PIDTypeError), (True, PIDTypeError),
    ("10", PIDTypeError)])
def test_bad_iterations_raise_typed_errors_naming_it(value, kind):
    p = torch.tensor(dirichlet_batch(14, n=2, k=3))
    with pytest.raises(kind, match="iterations"):
        pidkit.broja(p, batch=True, iterations=value)


def test_iterations_needs_a_torch_tensor():
    with pytest.raises(PIDTypeError, match="iterations: is for torch tensors"):
        pidkit.broja(dirichlet_batch(15, n=2, k=3), batch=True, iterations=10)


def test_shape_errors_are_raised_at_once():
    with pytest.raises(PIDValueError, match="must have 4 axes"):
        pidkit.broja(torch.ones(2, 2, 2) / 8, batch=True, iterations=5)
    with pytest.raises(PIDTypeError, match="floating-point"):
        pidkit.broja(torch.ones(1, 2, 2, 2, dtype=torch.int64), batch=True, iterations=5)


# -- the backend operation it adds ----------------------------------------------------------
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_lu_factor_solves_batched_systems(library):
    from pidkit._backend import get_namespace

    rng = np.random.default_rng(18)
    a = rng.standard_normal((2, 3, 5, 5)) + 5 * np.eye(5)
    b = rng.standard_normal((2, 3, 5, 2))
    want = np.linalg.solve(a, b)                                   # numpy's own LU solver
    if library == "torch":
        a, b = torch.tensor(a), torch.tensor(b)
    xp = get_namespace(a)
    got = xp.sym_solve(xp.lu_factor(a), b)
    np.testing.assert_allclose(xp.to_numpy(got) if library == "torch" else got, want,
                               rtol=1e-12, atol=1e-12)


def test_torch_lu_factor_reads_nothing_and_flags_a_singular_matrix_by_non_finite_values():
    from pidkit._backend import get_namespace

    a = torch.zeros(2, 3, 3, dtype=torch.float64)
    a[0] = torch.eye(3)                                            # a[1] is singular
    b = torch.ones(2, 3, 1, dtype=torch.float64)
    xp = get_namespace(a)
    with count_host_syncs() as syncs:
        x = xp.sym_solve(xp.lu_factor(a), b)
    assert syncs.count == 0, syncs.report()
    assert torch.equal(x[0], b[0]) and not torch.isfinite(x[1]).all()


def test_torch_where_with_a_python_scalar_copies_nothing_to_the_device():
    from pidkit._backend import get_namespace

    for dtype in (torch.float32, torch.float64):
        x = torch.arange(4, dtype=dtype)
        xp = get_namespace(x)
        with count_host_syncs() as syncs:
            a, b = xp.where(x > 1, x, math.inf), xp.where(x > 1, 0.5, x)
        assert syncs.count == 0, syncs.report()
        assert a.dtype == b.dtype == dtype
        assert a.tolist() == [math.inf, math.inf, 2.0, 3.0] and b.tolist() == [0, 1, 0.5, 0.5]
    counts = torch.arange(3)                                       # not floating: as before
    assert get_namespace(counts).where(counts > 0, counts, 7).dtype == torch.int64


def test_fixed_line_search_keeps_the_point_of_an_item_with_non_finite_directions():
    from pidkit._backend import get_namespace
    from pidkit.discrete.broja import _ipm

    p = torch.tensor(dirichlet_batch(19, n=2, k=3))
    xp = get_namespace(p)
    pb = _ipm.problem(p, xp)
    state = tuple(_ipm.cold_start(p, pb, xp))
    directions = [torch.full_like(x, 1e-3) for x in state[:4]]
    directions[0][1, 0, 0] = math.nan                              # item 1: broken direction
    norm = _ipm.residuals(pb, state[2], state[3], state[4], state[5],
                          torch.zeros(2, dtype=torch.float64), xp)[-1]
    new = _ipm.fixed_line_search(pb, state, directions, torch.ones(2, dtype=torch.float64),
                                 torch.zeros(2, dtype=torch.float64), norm, xp)
    for old, x in zip(state, new, strict=True):
        assert torch.isfinite(x).all()
        assert torch.equal(x[1], old[1])
    assert not torch.equal(new[0][0], state[0][0])


def test_fixed_iterations_take_the_steps_of_the_default_interior_point_iteration(monkeypatch):
    """Without a crossover (the default's polish switched off), certifying every iterate (as
    the fixed mode does) and with no item finishing (tol far below reach), both drivers take
    the same steps: the same bounds after N iterations, up to the rounding of LU against
    Cholesky factors. Dirichlet(0.01) pmfs, the family the default path needs its crossover
    for."""
    from pidkit._backend import get_namespace
    from pidkit.discrete.broja import _ipm

    monkeypatch.setattr(_ipm, "LEAN_RULES", False)  # the fixed mode keeps the classic rules

    monkeypatch.setattr(_ipm, "POLISH_EVERY", 10**9)
    monkeypatch.setattr(_ipm, "CERT_FROM", 0)
    monkeypatch.setattr(_ipm, "RESCALE_FROM", 10**9)  # the fixed mode never rescales
    p = torch.tensor(dirichlet_batch(21, n=4, k=5, alpha=0.01))
    xp = get_namespace(p)
    for n in (3, 20):
        default = _ipm.solve(xp.copy(p), xp, 1e-30, n)
        fixed = _ipm.solve_fixed(p, xp, 1e-30, n)
        assert default.iterations == fixed.iterations == n
        for a, b in ((default.f_lower, fixed.f_lower), (default.f_upper, fixed.f_upper)):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("big", [10.0, 1e3, 1e131])
def test_fixed_iterations_from_a_garbage_warm_start_do_as_well_as_cold(big):
    """A warm start that is nothing like the new table's solution (arbitrary arrays): the
    fixed mode used to stay where it started (gaps of 0.1-0.3 bits after 30 iterations, the
    same as after 1); items whose cold start is certified more tightly now start cold."""
    from pidkit.discrete.broja import WarmStart

    p = torch.tensor(dirichlet_batch(7, n=6, k=4, alpha=0.05))
    rng = np.random.default_rng(0)
    garbage = WarmStart(torch.tensor(big * rng.standard_normal((6, 4, 4))),
                        torch.tensor(-big * rng.standard_normal((6, 4, 4))),
                        torch.tensor(rng.random((6, 4, 4, 4)) / 64))
    warm = pidkit.broja(p, batch=True, iterations=30, warm_start=garbage)
    cold = pidkit.broja(p, batch=True, iterations=30)
    warm_gap = warm.solver.certificate.upper - warm.solver.certificate.lower
    cold_gap = cold.solver.certificate.upper - cold.solver.certificate.lower
    assert torch.all(warm_gap <= cold_gap + 1e-12)
    assert torch.all(torch.isfinite(warm.atoms[((0,), (1,))]))
