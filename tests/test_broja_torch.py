"""Batched and torch BROJA: batch equals one-by-one, torch equals numpy (float64 and float32,
dtype and device kept), gradients through the envelope theorem against finite differences, no
NaN gradients at zero probability, and the array namespace helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _broja_reference import random_pmf

import pidkit
from pidkit._backend import get_namespace
from pidkit.errors import PIDTypeError, PIDValueError


def atoms(r):
    return [r.redundancy, r.unique[0], r.unique[1], r.synergy]


def mixed_batch(shape=(3, 3, 4)):
    """Random full and sparse pmfs plus degenerate ones (constant target, identical sources,
    a constant source, structural zeros), all of one shape."""
    rng = np.random.default_rng(0)
    items = [random_pmf(rng, shape) for _ in range(3)]
    items += [random_pmf(rng, shape, 0.6) for _ in range(3)]
    const_target = np.zeros(shape)
    const_target[0] = random_pmf(rng, shape[1:])
    identical = np.zeros(shape)
    for x in range(shape[1]):
        identical[:, x, x] = random_pmf(rng, (shape[0],)) / shape[1]
    const_source = np.zeros(shape)
    const_source[:, 0, :] = random_pmf(rng, (shape[0], shape[2]))
    zeros = random_pmf(rng, shape)
    zeros[0, 1, :] = 0.0
    zeros[1, :, 2] = 0.0
    items += [const_target, identical, const_source, zeros / zeros.sum()]
    return np.stack(items)


def test_batch_equals_one_by_one():
    batch = mixed_batch()
    r = pidkit.broja(batch, batch=True)
    assert r.redundancy.shape == (len(batch),) and r.solver.converged
    for i, p in enumerate(batch):
        single = pidkit.pid(p, measure="broja")
        np.testing.assert_allclose([a[i] for a in atoms(r)], atoms(single), atol=2e-9)
        # two certified brackets (the lean single-pmf driver, the batched solver) of one
        # optimum: they overlap
        cert = single.solver.certificate
        assert max(r.solver.certificate.lower[i], cert.lower) <= min(
            r.solver.certificate.upper[i], cert.upper) + 1e-12
    assert np.all(r.solver.certificate.upper - r.solver.certificate.lower <= 1e-9)


def test_torch_float64_equals_numpy():
    batch = mixed_batch()
    r_np = pidkit.broja(batch, batch=True)
    r_t = pidkit.broja(torch.tensor(batch), batch=True)
    for a_t, a_np in zip(atoms(r_t), atoms(r_np), strict=True):
        assert isinstance(a_t, torch.Tensor) and a_t.dtype == torch.float64
        np.testing.assert_allclose(a_t.numpy(), a_np, atol=1e-10)


def test_torch_float32_keeps_dtype_with_dtype_aware_tolerance():
    batch = mixed_batch()
    r_np = pidkit.broja(batch, batch=True)
    r_t = pidkit.broja(torch.tensor(batch, dtype=torch.float32), batch=True)
    eps = torch.finfo(torch.float32).eps
    for a_t, a_np in zip(atoms(r_t), atoms(r_np), strict=True):
        assert a_t.dtype == torch.float32 and a_t.device == torch.device("cpu")
        # the input itself is rounded to float32: atoms move by O(eps * log(1/eps))
        np.testing.assert_allclose(a_t.numpy(), a_np, atol=200 * eps)


def test_pid_accepts_tensor_and_groups_axes():
    rng = np.random.default_rng(1)
    p = random_pmf(rng, (2, 2, 3, 2))
    r_np = pidkit.pid(p, target=0, sources=[[1, 2], [3]], measure="broja")
    r_t = pidkit.pid(torch.tensor(p), target=0, sources=[[1, 2], [3]], measure="broja")
    np.testing.assert_allclose([float(a) for a in atoms(r_t)], atoms(r_np), atol=1e-10)
    assert r_t.solver.certificate.gap <= 1e-9
    with pytest.raises(PIDValueError, match="only 'broja'"):
        pidkit.pid(torch.tensor(p), measure="mmi")


def _finite_difference(p, direction, atom_index, h=1e-4):
    def value(x):
        return float(atoms(pidkit.broja(torch.tensor(x), tol=1e-11))[atom_index])

    return (value(p + h * direction) - value(p - h * direction)) / (2 * h)


@pytest.mark.parametrize("atom_index", [0, 1, 2, 3])
def test_gradient_matches_finite_differences(atom_index):
    rng = np.random.default_rng(2)
    p = random_pmf(rng, (3, 3, 3))
    p = 0.7 * p + 0.3 / p.size           # keep every cell away from zero
    x = torch.tensor(p, requires_grad=True)
    atoms(pidkit.broja(x, tol=1e-11))[atom_index].backward()
    for _ in range(3):
        d = rng.normal(size=p.shape)
        d -= d.mean()                    # stay on the simplex
        analytic = float((x.grad * torch.tensor(d)).sum())
        numeric = _finite_difference(p, d, atom_index)
        assert analytic == pytest.approx(numeric, abs=2e-5, rel=1e-4)


def test_batched_gradients_match_single():
    batch = mixed_batch()[:4]
    x = torch.tensor(batch, requires_grad=True)
    pidkit.broja(x, batch=True).unique[0].sum().backward()
    for i in range(len(batch)):
        xi = torch.tensor(batch[i], requires_grad=True)
        pidkit.broja(xi).unique[0].backward()
        torch.testing.assert_close(x.grad[i], xi.grad, atol=1e-6, rtol=1e-6)


def test_no_nan_gradient_at_zero_probability():
    batch = mixed_batch()
    x = torch.tensor(batch, requires_grad=True)
    r = pidkit.broja(x, batch=True)
    total = sum(a.sum() for a in atoms(r))
    total.backward()
    assert bool(torch.isfinite(x.grad).all())
    assert (batch == 0).any()


def test_batch_validation_and_normalize():
    batch = torch.tensor(mixed_batch()[:2]) * 3.0
    with pytest.raises(PIDValueError, match=r"^p: sums to 3 \(item 0 of the batch\), not 1"):
        pidkit.broja(batch, batch=True)
    r = pidkit.broja(batch, batch=True, normalize=True)
    r1 = pidkit.broja(batch / 3.0, batch=True)
    torch.testing.assert_close(r.synergy, r1.synergy)
    with pytest.raises(PIDTypeError, match="floating-point"):
        pidkit.broja(torch.ones((2, 2, 2), dtype=torch.int64), batch=False)
    with pytest.raises(PIDValueError, match="NaN"):
        pidkit.broja(torch.full((2, 2, 2), float("nan")))


def test_namespace_helper():
    assert get_namespace(np.ones(2)).name == "numpy"
    assert get_namespace(torch.ones(2), torch.zeros(3)).name == "torch"
    with pytest.raises(PIDTypeError, match="mix"):
        get_namespace(np.ones(2), torch.ones(2))


def test_one_source_tensor_is_the_closed_form_and_differentiable():
    """One source: the one-node lattice holds I(Y; X0) for a tensor as for an array, with a
    gradient equal to finite differences (the tensor path runs no solver)."""
    p = random_pmf(np.random.default_rng(5), (3, 2, 4))
    t = torch.tensor(p, requires_grad=True)
    r = pidkit.pid(t, sources=[[1, 2]])
    ref = pidkit.pid(p, sources=[[1, 2]])
    assert r.solver.status == "closed_form"
    assert float(r.mutual_information) == pytest.approx(ref.mutual_information, abs=1e-12)
    assert float(next(iter(r.atoms.values()))) == pytest.approx(ref.mutual_information, abs=1e-12)
    assert torch.autograd.gradcheck(
        lambda x: pidkit.pid(x, sources=[[1, 2]], normalize=True).mutual_information,
        (torch.tensor(p, requires_grad=True),))


@pytest.mark.parametrize(("p", "kwargs", "kind", "words"), [
    (torch.full((2, 2, 2), 0.25, dtype=torch.float64), {"normalize": "no"}, PIDTypeError,
     "normalize"),
    (torch.full((2, 2, 2), 0.125, dtype=torch.float64), {"measure": None}, PIDTypeError,
     "measure"),
    (torch.full((2, 2, 2, 2), 1 / 16, dtype=torch.float64), {}, PIDValueError, "numpy"),
    (torch.tensor([0.5, 0.5], dtype=torch.float64), {}, PIDValueError, "at least 2 axes"),
    (torch.zeros((2, 0, 2), dtype=torch.float64), {}, PIDValueError, "empty axis"),
])
def test_tensor_input_errors_match_the_array_path(p, kwargs, kind, words):
    with pytest.raises(kind, match=words):
        pidkit.pid(p, **kwargs)


def test_information_gradient_is_the_entropies_gradient():
    """The closed-form vector-Jacobian product of the information terms (one autograd node,
    ``_core._information_vjp``) equals autograd through the entropies written as torch
    operations, with zero cells, a zero marginal row and a zero target outcome."""
    from pidkit.discrete.broja import _core

    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.ones(3 * 4 * 5), size=2).reshape(2, 3, 4, 5)
    p[0, :, 1, :] = 0.0                       # T = 1 never occurs in item 0
    p[1, 2] = 0.0                             # Y = 2 never occurs in item 1
    p[p < 0.004] = 0.0                        # and scattered zero cells
    p /= p.sum(axis=(1, 2, 3), keepdims=True)
    x = torch.tensor(p, requires_grad=True)
    xp = get_namespace(x)
    info = _core.information(x, xp)
    reference = _core._raw(x, xp)
    weights = torch.tensor(rng.standard_normal((4, 2)))
    fields = (info.h_y_given_s, info.i_t, info.i_s, info.i_ts)
    for value, ref in zip(fields, reference, strict=True):
        torch.testing.assert_close(value, torch.clamp(ref, min=0.0) if value is not fields[0]
                                   else ref, atol=1e-14, rtol=0.0)
    ours, = torch.autograd.grad(sum((w * v).sum() for w, v in zip(weights, fields, strict=True)),
                                x, retain_graph=True)
    theirs, = torch.autograd.grad(sum((w * v).sum() for w, v in zip(weights, reference,
                                                                       strict=True)), x)
    assert bool(torch.isfinite(ours).all())
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0.0)



def test_host_node_gradient_equals_the_device_graph(monkeypatch):
    """A tensor in host memory is solved by numpy behind one autograd node
    (``_host.atoms_arrays``); its gradients (every atom and I(Y;T,S), batch and single) equal
    those of the autograd graph the device path builds, forced here on the CPU, on the items
    of the mixed batch whose atoms are off the clips (on a clip the two paths' information
    terms, computed with different rounding, can pick different one-sided derivatives: see
    the next test for the rule at ties)."""
    from pidkit._backend.torch import TorchBackend

    def gradients(p, batch_axis):
        x = torch.tensor(p, requires_grad=True)
        r = pidkit.broja(x, batch=batch_axis, tol=1e-11)
        outputs = [*atoms(r), r.mutual_information]
        grads = [torch.autograd.grad(o.sum(), x, retain_graph=True)[0] for o in outputs]
        return torch.stack([o.detach() for o in outputs]), grads

    batch = mixed_batch()
    host_values, host = gradients(batch, True)
    monkeypatch.setattr(TorchBackend, "on_host", lambda self, x: False)
    device_values, device = gradients(batch, True)
    torch.testing.assert_close(host_values, device_values, atol=1e-9, rtol=0.0)
    off_clips = (host_values[:4] > 1e-6).all(dim=0)
    assert int(off_clips.sum()) >= 6
    for ours, theirs in zip(host, device, strict=True):
        assert bool(torch.isfinite(ours).all())
        torch.testing.assert_close(ours[off_clips], theirs[off_clips], atol=1e-9, rtol=1e-7)
    monkeypatch.undo()
    for i in np.flatnonzero(off_clips.numpy())[:3]:
        values, single = gradients(batch[i], False)
        torch.testing.assert_close(values, host_values[:, i], atol=1e-12, rtol=0.0)
        for k in range(5):
            torch.testing.assert_close(single[k], host[k][i], atol=1e-10, rtol=1e-8)


def test_host_node_jacobian_is_autograd_through_the_same_functions():
    """The host node's derivatives of (Uni_T, Red, Uni_S, Syn, I(Y;T,S)) with respect to the
    raw information terms and f* (forward mode through ``_core._clamped``,
    ``_core.certified`` and ``_core.atoms_from_unique``) equal torch's autograd through the
    same functions, on inputs that put every clip inside, outside and exactly on its
    boundary (ties: the gradient split equally, as torch does)."""
    from pidkit.discrete.broja import _core, _host

    rng = np.random.default_rng(11)
    n = 400
    hys, i_t, i_s = rng.uniform(0, 1, n), rng.uniform(-0.1, 1, n), rng.uniform(-0.1, 1, n)
    i_ts = np.maximum(i_t, i_s) + rng.uniform(-0.2, 1, n)
    f = rng.uniform(-1, 0.5, n) - hys
    i_t[:40] = 0.0                                  # clamps exactly on their boundary
    i_s[40:80] = i_t[40:80]                         # lo = 0 exactly
    i_ts[80:120] = i_s[80:120] + np.maximum(i_t[80:120], 0.0)      # hi = I(Y;T) exactly
    f[120:160] = i_t[120:160] - i_s[120:160] - hys[120:160]        # u on lo exactly
    f[160:200] = i_ts[160:200] - i_s[160:200] - hys[160:200]       # u on hi exactly
    raw = (hys, i_t, i_s, i_ts)
    ours = _host._jacobian(raw, f)
    xp = get_namespace(torch.zeros(1))

    def outputs(*inputs):
        info = _core._clamped(list(inputs[:4]), xp)
        u = _core.certified(inputs[4], inputs[4], info, xp)[0]
        return (*_core.atoms_from_unique(u, info, xp), info.i_ts)

    leaves = [torch.tensor(v, requires_grad=True) for v in (*raw, f)]
    values = outputs(*leaves)
    theirs = np.stack([np.stack([np.zeros(n) if g is None else g.numpy() for g in
                                 torch.autograd.grad(v.sum(), leaves, retain_graph=True,
                                                     allow_unused=True)], axis=1)
                       for v in values], axis=1)
    ties = int(((np.abs(ours - theirs) < 1e-15) & (np.abs(ours % 1.0 - 0.5) < 1e-15)).sum())
    assert ties > 0                                 # some half-gradients were exercised
    np.testing.assert_array_equal(ours, theirs)
