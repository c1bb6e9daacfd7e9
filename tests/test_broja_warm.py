"""Warm starts of the BROJA solver (``pidkit.broja(..., warm_start=)``): the values of a warm
solve equal the cold ones within the certified gaps, bad warm starts raise typed errors, far
ones still certify, and the discrete PID regulariser uses them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pidkit
from pidkit.discrete.broja import WarmStart
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill.losses import Batch, DiscretePIDLoss

torch.set_num_threads(1)


def _dirichlet(shape, seed, alpha=1.0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(alpha * np.ones(int(np.prod(shape)))).reshape(shape)


def _moved(p, rel, seed):
    """``p`` moved by a relative step ``rel`` per cell (renormalised; zeros stay zero)."""
    rng = np.random.default_rng(seed)
    q = np.abs(p * (1.0 + rel * rng.standard_normal(p.shape)))
    return q / q.sum(axis=tuple(range(q.ndim - 3, q.ndim)), keepdims=True)


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _gap(r):
    return _np(r.solver.certificate.upper) - _np(r.solver.certificate.lower)


def _assert_same(warm, cold):
    """Every atom of ``warm`` equals ``cold``'s within the sum of the two certified gaps."""
    slack = _gap(warm) + _gap(cold) + 1e-12
    for node in cold.atoms:
        assert np.all(np.abs(_np(warm.atoms[node]) - _np(cold.atoms[node])) <= slack)


@pytest.mark.parametrize("tol", [1e-4, 1e-9])
def test_warm_numpy_single_equals_cold_within_gaps(tol):
    p = _dirichlet((3, 4, 5), 0)
    p[:, 1] = 0.0                                     # a zero outcome: removed internally
    p /= p.sum()
    first = pidkit.broja(p, tol=tol)
    assert first.solver.state.q.shape == (1, 3, 4, 5)
    nxt = _moved(p, 1e-3, 1)
    warm = pidkit.broja(nxt, tol=tol, warm_start=first)
    cold = pidkit.broja(nxt, tol=tol)
    assert warm.solver.converged and _gap(warm) <= tol
    _assert_same(warm, cold)
    if tol == 1e-4:
        assert warm.solver.iterations == 0           # the refitted point certifies


def test_warm_batched_torch_values_and_gradient():
    p = torch.tensor(_moved(_dirichlet((3, 6, 5, 5), 2), 0.0, 0))     # per item: sums to 1
    first = pidkit.broja(p, batch=True, tol=1e-9)
    nxt = torch.tensor(_moved(p.numpy(), 1e-3, 3))
    grads = []
    for warm_start, tol in ((first, 1e-4), (None, 1e-9)):
        x = nxt.clone().requires_grad_(True)
        r = pidkit.broja(x, batch=True, tol=tol, warm_start=warm_start)
        r.redundancy.sum().backward()
        grads.append(x.grad)
        if warm_start is not None:
            warm = r
    cold = pidkit.broja(nxt, batch=True, tol=1e-9)
    assert warm.solver.iterations == 0 and bool(torch.all(warm.solver.details["converged"]))
    _assert_same(warm, cold)
    # the gradient is the previous optimal dual: equal to the new one to first order in the step
    torch.testing.assert_close(grads[0], grads[1], atol=2e-2, rtol=0.0)
    # a warm start that does not certify tol iterates (from the re-centred warm point) to the
    # same optimum: the same gradient
    x = nxt.clone().requires_grad_(True)
    pidkit.broja(x, batch=True, tol=1e-9, warm_start=first).redundancy.sum().backward()
    torch.testing.assert_close(x.grad, grads[1], atol=1e-6, rtol=0.0)


def test_far_warm_start_still_certifies():
    p = _dirichlet((6, 5, 4), 4, alpha=0.3)
    far = pidkit.broja(_dirichlet((6, 5, 4), 5, alpha=3.0))
    r = pidkit.broja(p, warm_start=far, tol=1e-9)
    cold = pidkit.broja(p, tol=1e-9)
    assert r.solver.converged and r.solver.iterations > 0 and _gap(r) <= 1e-9
    _assert_same(r, cold)
    # a warm start from arbitrary (infeasible, unrelated) points certifies too
    junk = WarmStart(np.full((1, 6, 5), 3.0), np.full((1, 6, 4), -2.0), np.ones((1, 6, 5, 4)))
    r = pidkit.broja(p, warm_start=junk, tol=1e-9)
    assert r.solver.converged
    _assert_same(r, cold)


def test_bad_warm_start_raises_typed_errors():
    p = _dirichlet((3, 3, 3), 6)
    with pytest.raises(PIDTypeError, match="warm_start"):
        pidkit.broja(p, warm_start="previous")
    other = pidkit.broja(_dirichlet((3, 3, 4), 7))
    with pytest.raises(PIDValueError, match="warm_start"):
        pidkit.broja(p, warm_start=other)
    with pytest.raises(PIDValueError, match="warm_start"):
        pidkit.broja(np.stack([p, p]), batch=True, warm_start=pidkit.broja(p))
    with pytest.raises(PIDTypeError, match="warm_start"):
        pidkit.broja(torch.tensor(p), warm_start=pidkit.broja(p))


def test_state_is_not_part_of_plain_data():
    r = pidkit.broja(_dirichlet((3, 3, 3), 8))
    assert isinstance(r.solver.state, WarmStart)
    assert "state" not in r.solver.to_dict()


def test_regulariser_steps_use_the_warm_start(monkeypatch):
    """Training steps on slowly moving tables: every solve after the first gets the previous
    state, most need no iteration, and the values equal cold solves within the gaps."""
    calls = []
    solve = pidkit.broja

    def recording(p, **options):
        r = solve(p, **options)
        calls.append((p.detach().clone(), options["warm_start"], r))
        return r

    monkeypatch.setattr(pidkit, "broja", recording)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    t = 3.0 * torch.nn.functional.one_hot(y, 6).float() + 0.3 * torch.randn(90, 6, generator=g)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=4, tau=0.5, momentum=0.9, tol=1e-4)
    loss.fit_codebook([t])
    loss.train()
    s = t + 2.0 * torch.randn(90, 6, generator=g)
    for _ in range(6):                          # the student moves a little at every step
        s = s + 0.02 * torch.randn(90, 6, generator=g)
        loss.redundancies(Batch(y=y, student_logits=torch.zeros(90, 3),
                                teacher_features=[t], student_features=[s]))
    assert calls[0][1] is None
    assert all(warm is prev.solver.state for (_, warm, _), (_, _, prev)
               in zip(calls[1:], calls[:-1], strict=True))
    iterations = [r.solver.iterations for _, _, r in calls]
    assert iterations[0] > 0 and sum(iterations[1:]) < iterations[0] * (len(calls) - 1) / 2
    for p, _, r in calls:
        cold = solve(p, base=np.e, tol=1e-4, max_iter=loss.max_iter, batch=True,
                     normalize=True)
        _assert_same(r, cold)
    loss.load_state_dict(loss.state_dict())
    assert loss._warm is None                                   # a load starts cold


@pytest.mark.parametrize("shape", [(5, 8, 3), (5, 3, 8)])        # sources swapped or not
def test_warm_iteration_starts_recentred_and_needs_fewer_iterations(shape):
    p = _moved(_dirichlet((2, *shape), 9), 0.0, 0)
    first = pidkit.broja(p, batch=True)
    nxt = _moved(p, 1e-2, 10)
    warm = pidkit.broja(nxt, batch=True, warm_start=first.solver.state)
    cold = pidkit.broja(nxt, batch=True)
    assert warm.solver.converged and np.all(_gap(warm) <= 1e-9)
    assert 0 < warm.solver.iterations < cold.solver.iterations
    _assert_same(warm, cold)


@pytest.mark.parametrize("shape", [(10, 10, 10), (4, 9, 6), (4, 6, 9)])
def test_single_pmf_warm_start_iterates_in_the_lean_driver(shape, general_solver_calls):
    """One pmf (numpy, or a torch tensor on the CPU, solved by the same numpy code) iterates
    from its warm point in the lean driver (:mod:`._small`), not in the batched solver, in
    fewer iterations than cold, to the same values."""
    p = _dirichlet(shape, 11)
    nxt = _moved(p, 1e-3, 12)
    first, cold = pidkit.broja(p), pidkit.broja(nxt)
    general_solver_calls.clear()
    warm = pidkit.broja(nxt, warm_start=first)
    assert general_solver_calls == []
    assert warm.solver.converged and _gap(warm) <= 1e-9
    assert 0 < warm.solver.iterations < cold.solver.iterations
    _assert_same(warm, cold)
    x = torch.tensor(nxt, requires_grad=True)
    t_first = pidkit.broja(torch.tensor(p))
    t_warm = pidkit.broja(x, warm_start=t_first)
    assert general_solver_calls == []
    assert isinstance(t_warm.solver.state.q, torch.Tensor)
    assert t_warm.solver.iterations == warm.solver.iterations    # the same numpy iteration
    assert _gap(t_warm) <= 1e-9
    _assert_same(t_warm, warm)
    t_warm.redundancy.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("alpha", [1.0, 0.05])
def test_lean_warm_certificate_is_the_general_one(alpha):
    """The lean driver's fused warm certificate of one pmf (``_small._lean_warm``, no
    iteration) gives the bounds of the batched ``_warm.warm_bounds`` on the same warm point
    (shifted dual, refitted and repaired primal), sparse pmfs included."""
    from pidkit._backend import NUMPY
    from pidkit.discrete.broja import _small, _warm

    p = _dirichlet((4, 5, 7), 13, alpha)
    nxt = _moved(p, 1e-2, 14)
    state = pidkit.broja(p).solver.state
    low, up, lam, mu, q = _warm.warm_bounds(nxt[None], state, NUMPY)
    assert 1e-9 < float(up[0] - low[0]) < 1.0       # a bracket to iterate from at tol=1e-9
    (lean_low, lean_up, lean_lam, lean_mu, lean_q), iterations = _small._lean_warm(
        _small._Small(nxt), (state.lam[0], state.mu[0], state.q[0]), 1.0, 200)
    assert iterations == 0                            # tol = 1 nat: the warm bounds suffice
    assert lean_low == pytest.approx(float(low[0]), abs=1e-14)
    assert lean_up == pytest.approx(float(up[0]), abs=1e-14)
    np.testing.assert_allclose(lean_q, q[0], atol=1e-15)
    np.testing.assert_allclose(lean_lam, lam[0], atol=1e-12)
    np.testing.assert_allclose(lean_mu, mu[0], atol=1e-12)


@pytest.mark.parametrize("spoil", ["nan lam", "inf lam", "-inf mu", "nan q", "inf q"])
def test_non_finite_warm_points_certify_like_cold_quietly(spoil):
    """A warm start whose arrays hold NaN or infinities proves nothing and must not stop the
    solve: the lean driver (one numpy pmf, a CPU tensor) and the general solver (a batch of more
    pmfs than the lean driver takes) certify as from the cold start, with no warning."""
    from pidkit.discrete.broja import _small

    def spoiled(state):
        lam, mu, q = (np.array(x) if isinstance(x, np.ndarray) else x.clone()
                      for x in (state.lam, state.mu, state.q))
        {"nan lam": lambda: lam.__setitem__((..., 0, 0), np.nan),
         "inf lam": lambda: lam.__setitem__((..., 1, 0), np.inf),
         "-inf mu": lambda: mu.__setitem__((..., 0, 1), -np.inf),
         "nan q": lambda: q.__setitem__((..., 0, 0, 0), np.nan),
         "inf q": lambda: q.__setitem__((..., 1, 1, 1), np.inf)}[spoil]()
        return WarmStart(lam, mu, q)

    p = _dirichlet((3, 4, 5), 21)
    nxt = _moved(p, 1e-3, 22)
    big = np.stack([_dirichlet((3, 4, 5), s) for s in range(30, 30 + _small.LEAN_BATCH + 4)])
    assert len(big) > max(_small.LEAN_BATCH, big[0].size // 8)   # the general solver's batch
    cases = [(nxt, pidkit.broja(p), {}),
             (torch.tensor(nxt), pidkit.broja(torch.tensor(p)), {}),
             (_moved(big, 1e-3, 25), pidkit.broja(big, batch=True), {"batch": True})]
    for target, previous, kwargs in cases:
        cold = pidkit.broja(target, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warm = pidkit.broja(target, warm_start=spoiled(previous.solver.state), **kwargs)
        assert warm.solver.status == "optimal" and np.all(_gap(warm) <= 1e-9)
        _assert_same(warm, cold)
