"""Gaussian PID with torch tensors: equals numpy, keeps dtype and device, batches, gradients
against finite differences, and no NaN gradients at degenerate points the forward accepts."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _gaussian_reference import channel_cov, random_cov

import pidkit

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def atoms(r):
    return [r.redundancy, r.unique[0], r.unique[1], r.synergy]


def vector(r):
    return torch.stack(atoms(r))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_torch_matches_numpy(device, measure, dtype, tol):
    rng = np.random.default_rng(0)
    cov = random_cov(rng, 7)
    ref = pidkit.gaussian_pid(cov, (3, 2, 2), measure=measure)
    r = pidkit.gaussian_pid(torch.tensor(cov, dtype=dtype, device=device), (3, 2, 2),
                            measure=measure)
    for a, b in zip(atoms(r), atoms(ref), strict=True):
        assert a.dtype == dtype and a.device.type == device and a.shape == ()
        assert float(a) == pytest.approx(b, abs=tol)
    assert float(r.mutual_information) == pytest.approx(ref.mutual_information, abs=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_equals_one_by_one(device):
    rng = np.random.default_rng(1)
    covs = torch.tensor(np.stack([random_cov(rng, 6) for _ in range(4)]), device=device)
    r = pidkit.gaussian_pid(covs, (2, 2, 2))
    assert r.redundancy.shape == (4,)
    for i in range(4):
        one = pidkit.gaussian_pid(covs[i], (2, 2, 2))
        torch.testing.assert_close(vector(r)[:, i], vector(one), atol=1e-12, rtol=0)


def _fd_gradient(fun, cov: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``fun`` over symmetric perturbations of ``cov``."""
    grad = np.zeros_like(cov)
    d = cov.shape[0]
    for i in range(d):
        for j in range(i, d):
            e = np.zeros_like(cov)
            e[i, j] = e[j, i] = eps
            g = (fun(cov + e) - fun(cov - e)) / (2 * eps)
            grad[i, j] = grad[j, i] = g if i == j else g / 2
    return grad


@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("atom", [0, 1, 2, 3])
def test_gradient_matches_finite_differences(measure, atom):
    rng = np.random.default_rng(2)
    cov = random_cov(rng, 6)
    dims = (2, 2, 2)
    lam = pidkit.gaussian_pid(cov, dims).details["eigenvalues"]
    assert np.abs(lam - 1).min() > 1e-3  # away from the kink of log+
    t = torch.tensor(cov, requires_grad=True)
    value = atoms(pidkit.gaussian_pid(t, dims, measure=measure, base=math.e))[atom]
    (grad,) = torch.autograd.grad(value, t)
    sym = (grad + grad.T) / 2
    fd = _fd_gradient(lambda c: atoms(pidkit.gaussian_pid(c, dims, measure=measure, base=math.e,
                                                          certify=False))[atom], cov)
    np.testing.assert_allclose(sym.numpy(), fd, atol=2e-7)


def test_gradient_of_training_regulariser_from_features():
    # The distillation use: a (d, d) covariance built from a batch of features, autograd.
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(256, 2, generator=gen, dtype=torch.float64)
    a = (t @ torch.randn(2, 3, generator=gen, dtype=torch.float64)
         + torch.randn(256, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    b = torch.randn(256, 3, generator=gen, dtype=torch.float64) + t[:, :1]
    z = torch.cat([t, a, b], dim=1)
    z = z - z.mean(0)
    cov = z.T @ z / (len(z) - 1)
    r = pidkit.gaussian_pid(cov, dims=(2, 3, 3), base=math.e, certify=False)
    r.redundancy.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    # Directional derivative against a finite difference along a random direction.
    direction = torch.randn(256, 3, generator=gen, dtype=torch.float64)

    def red(shift):
        zz = torch.cat([t, a.detach() + shift * direction, b], dim=1)
        zz = zz - zz.mean(0)
        c = (zz.T @ zz / (len(zz) - 1)).numpy()
        return pidkit.gaussian_pid(c, (2, 3, 3), base=math.e, certify=False).redundancy

    fd = (red(1e-6) - red(-1e-6)) / 2e-6
    assert float((a.grad * direction).sum()) == pytest.approx(fd, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("case", ["identical", "zero_information", "tie_mmi", "y_is_2x"])
@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_no_nan_gradient_at_degenerate_points(case, measure):
    a = np.array([[1.0, 0.5], [0.0, 2.0]])
    if case == "identical":          # lambda = 1 (twice): kink of log+, repeated eigenvalue
        cov, dims = channel_cov(a, a), (2, 2, 2)
    elif case == "zero_information":  # Y independent of M
        cov, dims = channel_cov(a, np.zeros((2, 2))), (2, 2, 2)
    elif case == "tie_mmi":          # scalar target, I(M;X) = I(M;Y)
        cov, dims = channel_cov(np.ones((1, 1)), np.ones((1, 1))), (1, 1, 1)
    else:                            # Y = 2 X exactly: singular joint, reduced exactly
        one = np.array([[1.0, 0.3]])
        cov = channel_cov(one, 2 * one, noise_y=4 * np.eye(1), cross=2 * np.eye(1))
        dims = (2, 1, 1)
    t = torch.tensor(cov, requires_grad=True)
    r = pidkit.gaussian_pid(t, dims, measure=measure)
    total = sum(atoms(r)) + r.redundancy + r.unique[0]
    (grad,) = torch.autograd.grad(total, t)
    assert torch.isfinite(grad).all()
    ref = pidkit.gaussian_pid(cov, dims, measure=measure)
    np.testing.assert_allclose([float(v.detach()) for v in atoms(r)], atoms(ref), atol=1e-12)


@pytest.mark.parametrize("validate", [True, False])
def test_torch_results_use_the_discrete_names(validate):
    cov = torch.tensor(random_cov(np.random.default_rng(4), 5))
    r = pidkit.gaussian_pid(cov, (1, 2, 2), validate=validate, certify=False)
    assert r.source_names == ("X0", "X1") and r.target_name == "Y"


def test_torch_input_validation():
    with pytest.raises(pidkit.PIDTypeError, match="floating-point"):
        pidkit.gaussian_pid(torch.eye(3, dtype=torch.int64), (1, 1, 1))
    bad = torch.eye(3, dtype=torch.float64)
    bad[0, 1] = 0.5
    with pytest.raises(pidkit.PIDValueError, match="symmetric"):
        pidkit.gaussian_pid(bad, (1, 1, 1))


def test_float32_rounding_asymmetry_is_accepted():
    # A float32 covariance from features can be asymmetric at the level of float32 rounding.
    rng = np.random.default_rng(3)
    cov = torch.tensor(random_cov(rng, 6), dtype=torch.float32)
    noisy = cov + 2e-7 * torch.triu(torch.ones(6, 6), diagonal=1)
    r = pidkit.gaussian_pid(noisy, (2, 2, 2))
    assert r.redundancy.dtype == torch.float32 and torch.isfinite(r.redundancy)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_mixed_batch_of_plain_and_degenerate_items(backend):
    # Items that need an exact reduction are computed one by one, the others as a batch; the
    # results must come back in order.
    one = np.array([[1.0, 0.3]])
    singular = channel_cov(one, 2 * one, noise_y=4 * np.eye(1), cross=2 * np.eye(1))
    const = channel_cov(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    const[3, :] = const[:, 3] = 0.0  # source 2 (one variable) is constant: rejected
    rng = np.random.default_rng(9)
    plain = [random_cov(rng, 4) for _ in range(2)]
    covs = np.stack([plain[0], singular, plain[1]])
    arg = torch.tensor(covs) if backend == "torch" else covs
    r = pidkit.gaussian_pid(arg, (2, 1, 1))
    for i in range(3):
        ref = pidkit.gaussian_pid(covs[i], (2, 1, 1))
        got = [float(v[i]) for v in atoms(r)]
        np.testing.assert_allclose(got, atoms(ref), atol=1e-12)
    with pytest.raises(pidkit.PIDValueError, match="source 2 block is constant"):
        pidkit.gaussian_pid(np.stack([plain[0], const]), (2, 1, 1))


def _bad_batch(dims):
    """Covariances ordered (M, X, Y): good ones between ones that are not positive definite,
    and the mask of the good ones. Variances of 4 make the duplicated variables' correlations
    exactly 1 after rescaling (a zero pivot, not a rounding-dependent tiny one)."""
    d_m, d_x, d_y = dims
    x0, y0 = d_m, d_m + d_x
    rng = np.random.default_rng(sum(dims))
    items, good = [], []

    def add(cov, ok):
        items.append(cov)
        good.append(ok)

    add(random_cov(rng, sum(dims)), True)
    cov = random_cov(rng, sum(dims))              # |corr(X0, Y0)| = 1.5: the whole is indefinite,
    cov[x0, y0] = cov[y0, x0] = 1.5 * np.sqrt(cov[x0, x0] * cov[y0, y0])    # Y's block is not
    add(cov, False)
    cov = random_cov(rng, sum(dims))              # Y0 = X0: an exactly singular source pair
    cov[y0], cov[:, y0] = cov[x0], cov[x0]
    cov[x0, x0] = cov[y0, y0] = cov[x0, y0] = cov[y0, x0] = 4.0
    add(cov, False)
    add(random_cov(rng, sum(dims)), True)
    cov = random_cov(rng, sum(dims))              # a negative target variance
    cov[0, 0] = -1.0
    add(cov, False)
    if d_y > 1:
        cov = random_cov(rng, sum(dims))          # Y1 = Y0: Y's own block exactly singular
        cov[y0 + 1], cov[:, y0 + 1] = cov[y0], cov[y0]
        cov[y0, y0] = cov[y0 + 1, y0 + 1] = cov[y0, y0 + 1] = cov[y0 + 1, y0] = 4.0
        add(cov, False)
        cov = random_cov(rng, sum(dims))          # |corr(Y0, Y1)| = 1.5: Y's block indefinite
        cov[y0, y0 + 1] = cov[y0 + 1, y0] = 1.5 * np.sqrt(cov[y0, y0] * cov[y0 + 1, y0 + 1])
        add(cov, False)
    add(random_cov(rng, sum(dims)), True)
    return np.stack(items), np.array(good)


def _outputs(r, measure):
    """Every number of a result, as numpy arrays: atoms, I(M; X, Y), I(M; X), I(M; Y) and,
    for BROJA, the eigenvalues."""
    out = [*atoms(r), r.mutual_information, *r.details["mi_sources"]]
    if measure == "broja":
        out.append(r.details["eigenvalues"])
    return [v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in out]


@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("dims", [(1, 1, 1), (2, 1, 2), (3, 2, 2)])
def test_unvalidated_nan_pattern_numpy_equals_torch(measure, dims):
    """validate=False on a batch mixing good covariances with indefinite and exactly singular
    ones: numpy and torch give NaN in the same places of every output (the backends'
    cholesky, inv_quad and eigvalsh, one code path), with no error and no warning; the bad
    items' atoms are NaN, the good ones' equal the validated result."""
    covs, good = _bad_batch(dims)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rn = pidkit.gaussian_pid(covs, dims, measure=measure, validate=False)
    rt = pidkit.gaussian_pid(torch.tensor(covs), dims, measure=measure, validate=False)
    for n_out, t_out in zip(_outputs(rn, measure), _outputs(rt, measure), strict=True):
        np.testing.assert_array_equal(np.isnan(n_out), np.isnan(t_out))
        np.testing.assert_allclose(n_out[good], t_out[good], rtol=0, atol=1e-12)
    for value in _outputs(rn, measure)[:5]:           # atoms and I(M; X, Y)
        assert np.isnan(value).tolist() == (~good).tolist()
    checked = pidkit.gaussian_pid(covs[good], dims, measure=measure, certify=False)
    for got, ref in zip(_outputs(rn, measure), _outputs(checked, measure), strict=True):
        np.testing.assert_allclose(got[good], ref, rtol=0, atol=1e-12)
