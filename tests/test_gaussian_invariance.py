r"""The Gaussian PID does not depend on units: rescaling any variable, :math:`\Sigma \mapsto
D\Sigma D` (``D`` diagonal, positive), leaves every atom, reduction, warning and error unchanged.

Covariances are built as :math:`\Sigma = LL^\top` from a lower-triangular factor drawn here
(no SVD / eigendecomposition-based sampling, so the inputs are the same on every LAPACK build),
and each variable is rescaled by :math:`10^{k}`, :math:`k` uniform in ``[-12, 12]``: variances
spanning 48 orders of magnitude within one matrix.

Tolerance. Rescaling and standardising again reproduces the correlation matrix :math:`R` up to
a relative error :math:`\delta \le 8\varepsilon` per entry (two products to rescale; a square
root and two divisions to standardise, each rounded once). Every atom is a signed sum of a few
half log-determinants of Schur complements of :math:`R` (or, for BROJA, of half logarithms of
generalised eigenvalues of two of them), and a Schur complement's eigenvalues are at least
:math:`\lambda_{\min}(R)`; to first order a perturbation :math:`E` (:math:`|E_{ij}| \le
\delta`) moves :math:`\log\det` by at most :math:`\lVert A^{-1}\rVert_2\,\lVert E\rVert_* \le
d^2\delta/\lambda_{\min}`, and propagating through a Schur complement costs at most one more
factor :math:`1/\lambda_{\min}`. Hence :func:`tolerance`, :math:`16\,d^2\varepsilon /
\lambda_{\min}(R)^2` in nats (the same order covers the backward error of the factorisations
themselves). On 800 random cases the largest observed difference was 0.02 of it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pidkit
from pidkit.errors import PIDValueError, RegularizationWarning

EPS = float(np.finfo(np.float64).eps)
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)

dims_strategy = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


def log_scales(d: int):
    return st.lists(st.floats(-12, 12), min_size=d, max_size=d)


def random_factor_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    """:math:`LL^\top` for a random lower-triangular ``L`` with a diagonal in [0.5, 1.5]."""
    low = np.tril(rng.normal(scale=0.7, size=(d, d)), -1) + np.diag(rng.uniform(0.5, 1.5, d))
    return low @ low.T


def rescale(cov: np.ndarray, exponents) -> np.ndarray:
    s = 10.0 ** np.asarray(exponents, dtype=float)
    return cov * s[:, None] * s[None, :]


def correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    return cov / sd[:, None] / sd[None, :]


def tolerance(cov: np.ndarray) -> float:
    """Bound (nats) on the change of any atom under a rescaling (module docstring)."""
    d = cov.shape[-1]
    lam = np.linalg.eigvalsh(correlation(cov))[0]
    return 16 * d * d * EPS / lam**2


def atoms(r) -> np.ndarray:
    values = [r.redundancy, r.unique[0], r.unique[1], r.synergy, r.mutual_information]
    return np.array([np.asarray(v.detach() if hasattr(v, "detach") else v, dtype=float)
                     for v in values])


def well_conditioned(cov: np.ndarray) -> bool:
    # away from the fast path's condition threshold (1e-10), so that both calls take one path
    return np.linalg.eigvalsh(correlation(cov))[0] > 1e-6


# --- regular covariances -----------------------------------------------------------------
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), dims=dims_strategy, data=st.data(),
       measure=st.sampled_from(["broja", "mmi"]))
def test_rescaling_each_variable_leaves_atoms_unchanged(seed, dims, data, measure):
    d = sum(dims)
    cov = random_factor_cov(np.random.default_rng(seed), d)
    assume(well_conditioned(cov))
    scaled = rescale(cov, data.draw(log_scales(d)))
    ref = pidkit.gaussian_pid(cov, dims, measure=measure, base=math.e)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ridge, no warning in other units either
        got = pidkit.gaussian_pid(scaled, dims, measure=measure, base=math.e)
    np.testing.assert_allclose(atoms(got), atoms(ref), rtol=0, atol=tolerance(cov))
    assert got.details["reductions"] == ref.details["reductions"] == []
    if measure == "broja":
        cert = got.solver.certificate
        assert cert.quantity == "unique[0]"
        slack = tolerance(cov)
        assert cert.lower - slack <= got.unique[0] <= cert.upper + slack
        assert 0 <= cert.gap < slack


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), dims=dims_strategy, data=st.data(),
       measure=st.sampled_from(["broja", "mmi"]))
def test_batched_rescaling_numpy_and_torch(seed, dims, data, measure):
    """One batch, each item in its own units: numpy, torch float64 validated, and torch
    ``validate=False`` (the training-regulariser path) all give the unscaled atoms."""
    d = sum(dims)
    rng = np.random.default_rng(seed)
    covs = np.stack([random_factor_cov(rng, d) for _ in range(3)])
    assume(all(well_conditioned(c) for c in covs))
    scaled = np.stack([rescale(c, data.draw(log_scales(d))) for c in covs])
    tol = max(tolerance(c) for c in covs)
    ref = atoms(pidkit.gaussian_pid(covs, dims, measure=measure, base=math.e))
    for arg, kwargs in [(scaled, {}), (torch.tensor(scaled), {}),
                        (torch.tensor(scaled), {"validate": False})]:
        got = pidkit.gaussian_pid(arg, dims, measure=measure, base=math.e, **kwargs)
        assert got.redundancy.shape == (3,)
        np.testing.assert_allclose(atoms(got), ref, rtol=0, atol=tol)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), dims=dims_strategy, data=st.data(),
       measure=st.sampled_from(["broja", "mmi"]))
def test_unvalidated_torch_path_is_invariant_with_gradients(seed, dims, data, measure):
    """``validate=False`` (what the PID regulariser calls): same atoms in any units, and the
    gradient transforms as the chain rule says, ``grad_scaled = D^{-1} grad D^{-1}``."""
    d = sum(dims)
    cov = random_factor_cov(np.random.default_rng(seed), d)
    assume(well_conditioned(cov))
    exponents = data.draw(st.lists(st.floats(-6, 6), min_size=d, max_size=d))
    s = 10.0 ** np.asarray(exponents)
    a = torch.tensor(cov, requires_grad=True)
    b = torch.tensor(rescale(cov, exponents), requires_grad=True)
    ra = pidkit.gaussian_pid(a, dims, measure=measure, base=math.e, validate=False)
    rb = pidkit.gaussian_pid(b, dims, measure=measure, base=math.e, validate=False)
    tol = tolerance(cov)
    np.testing.assert_allclose(atoms(rb), atoms(ra), rtol=0, atol=tol)
    (ga,) = torch.autograd.grad(ra.redundancy, a)
    (gb,) = torch.autograd.grad(rb.redundancy, b)
    assert torch.isfinite(gb).all()
    back = (gb * torch.tensor(np.outer(s, s))).numpy()  # D grad_scaled D = grad
    # the gradient is a smooth function of the same correlation matrix: the same relative bound
    np.testing.assert_allclose(back, ga.numpy(), rtol=0, atol=tol * (1 + float(ga.abs().max())))


# --- singular and constant inputs, rescaled ------------------------------------------------
def _insert(cov: np.ndarray, at: int, row: np.ndarray, var: float) -> np.ndarray:
    """``cov`` with a new variable at index ``at`` (covariances ``row``, variance ``var``)."""
    d = cov.shape[0]
    out = np.zeros((d + 1, d + 1))
    keep = [i for i in range(d + 1) if i != at]
    out[np.ix_(keep, keep)] = cov
    out[at, keep] = out[keep, at] = row
    out[at, at] = var
    return out


@pytest.mark.parametrize("block", [0, 1, 2])
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_constant_variable_is_dropped_in_any_units(block, seed, data):
    """A zero-variance variable (in any block) is dropped whatever the units of the others;
    it used to be the *other* way round: a variable with a small variance was dropped."""
    dims = (2, 2, 2)
    cov = random_factor_cov(np.random.default_rng(seed), 6)
    assume(well_conditioned(cov))
    at = [1, 3, 5][block]
    padded = _insert(cov, at + 1, np.zeros(6), 0.0)
    padded_dims = tuple(n + (i == block) for i, n in enumerate(dims))
    scaled = rescale(padded, data.draw(log_scales(7)))
    ref = pidkit.gaussian_pid(cov, dims, base=math.e)
    got = pidkit.gaussian_pid(scaled, padded_dims, base=math.e)
    np.testing.assert_allclose(atoms(got), atoms(ref), rtol=0, atol=tolerance(cov))
    assert got.details["reductions"] == ["dropped 1 constant variable(s)"]


@pytest.mark.parametrize("kind", ["duplicate_in_block", "source_linear_in_other",
                                  "rank_deficient_source"])
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), data=st.data(), measure=st.sampled_from(["broja",
                                                                                "mmi"]))
def test_exactly_singular_inputs_are_reduced_in_any_units(kind, seed, data, measure):
    """Exact linear dependencies are found on the correlation scale: the same reduction, and
    the same atoms as the non-singular equivalent, in any units."""
    rng = np.random.default_rng(seed)
    if kind == "duplicate_in_block":
        # (M1, M2, X1, Y1, Y2) plus X2 = c X1: the same information as without X2
        base = random_factor_cov(rng, 5)
        dims, full_dims = (2, 1, 2), (2, 2, 2)
        c = float(rng.uniform(0.5, 2.0)) * rng.choice([-1, 1])
        t = np.zeros((6, 5))
        t[[0, 1, 2, 3, 4, 5], [0, 1, 2, 2, 3, 4]] = [1, 1, 1, c, 1, 1]
        full, note = t @ base @ t.T, "source 1: 1 exactly linearly dependent"
        ref_cov = base
    elif kind == "source_linear_in_other":
        # (M1, M2, X1, X2) plus Y = A X (a 1 x 2 map): BROJA atoms of (M, X, Y) are those of
        # identical channels up to Y's information; compare with Y computed exactly
        base = random_factor_cov(rng, 4)
        a = rng.normal(size=(1, 2))
        t = np.zeros((5, 4))
        t[:4, :4] = np.eye(4)
        t[4, 2:] = a[0]
        full, dims, full_dims, note = t @ base @ t.T, None, (2, 2, 1), "share"
        ref_cov = full
    else:
        # source 2 has 3 variables driven by 2 independent factors: rank 2 inside its block
        low = np.tril(rng.normal(scale=0.7, size=(7, 7)), -1) + np.diag(rng.uniform(0.5, 1.5, 7))
        low[6] = rng.normal(size=2) @ low[4:6]  # the last variable: a combination of two others
        full, dims, full_dims = low @ low.T, None, (2, 2, 3)
        note, ref_cov = "source 2: 1 exactly linearly dependent", full
    exponents = data.draw(log_scales(full.shape[0]))
    ref = pidkit.gaussian_pid(full, full_dims, measure=measure, base=math.e)
    got = pidkit.gaussian_pid(rescale(full, exponents), full_dims, measure=measure,
                              base=math.e)
    assert any(note in n for n in got.details["reductions"]), got.details["reductions"]
    assert got.details["reductions"] == ref.details["reductions"]
    # The reduction is exact (a singular block is replaced by its whitened principal
    # components), so what remains is the problem of the non-singular part: its tolerance.
    nonsingular = base if kind != "rank_deficient_source" else full[:6, :6]
    tol = tolerance(nonsingular)
    np.testing.assert_allclose(atoms(got), atoms(ref), rtol=0, atol=tol)
    if dims is not None:  # and they equal the atoms without the duplicate
        np.testing.assert_allclose(atoms(got),
                                   atoms(pidkit.gaussian_pid(ref_cov, dims, measure=measure,
                                                             base=math.e)), rtol=0, atol=tol)


@PROPERTY
@given(data=st.data())
def test_near_singular_ridge_is_the_same_in_any_units(data):
    # X = M + sqrt(1e-11) N: 1 - rho^2 ~ 1e-11 < 1e-10, a ridge on the target block
    cov = np.array([[1.0, 1.0, 1.0], [1.0, 1.0 + 1e-11, 1.0], [1.0, 1.0, 2.0]])
    with pytest.warns(RegularizationWarning, match="ridge"):
        ref = pidkit.gaussian_pid(cov, (1, 1, 1), base=math.e)
    with pytest.warns(RegularizationWarning, match="ridge"):
        got = pidkit.gaussian_pid(rescale(cov, data.draw(log_scales(3))), (1, 1, 1),
                                  base=math.e)
    # Near the singularity an atom moves by ~ delta / (1 - rho^2) for a change delta of a
    # correlation: 8 eps / 1e-11 ~ 2e-4 nats on atoms of ~12 nats (the ridge itself, ~9e-11, moves
    # by ~ delta in absolute terms). In other units the same ridge and the same atoms, to that.
    assert got.solver.details["ridge"] == pytest.approx(ref.solver.details["ridge"], abs=1e-14)
    np.testing.assert_allclose(atoms(got), atoms(ref), rtol=0, atol=8 * EPS / 1e-11)


@PROPERTY
@given(data=st.data())
def test_errors_are_the_same_in_any_units(data):
    exps = data.draw(log_scales(3))
    noise_free = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 2.0]])  # X = M
    with pytest.raises(PIDValueError, match="infinite information"):
        pidkit.gaussian_pid(rescale(noise_free, exps), (1, 1, 1))
    not_psd = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    with pytest.raises(PIDValueError, match="not positive semi-definite"):
        pidkit.gaussian_pid(rescale(not_psd, exps), (1, 1, 1))
    beyond_one = np.array([[1.0, 1.5, 0.0], [1.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(PIDValueError, match="variables 0 and 1 have correlation"):
        pidkit.gaussian_pid(rescale(beyond_one, exps), (1, 1, 1))
    asym = rescale(np.eye(3) + 0.5 * np.eye(3, k=1), exps)
    with pytest.raises(PIDValueError, match="not symmetric"):
        pidkit.gaussian_pid(asym, (1, 1, 1))
    const_with_cov = rescale(np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]]),
                             exps)
    const_with_cov[2, 2] = 0.0  # zero variance, but cov[2, 0] stays 0 and cov[0, 2] = 0
    const_with_cov[1, 2] = const_with_cov[2, 1] = 1e-300  # tiny, but not zero: not PSD
    with pytest.raises(PIDValueError, match="variable 2 has zero variance"):
        pidkit.gaussian_pid(const_with_cov, (1, 1, 1))


@pytest.mark.parametrize("factor", [1e-9, 1e7, 1e-150, 1e150])
def test_issue_14_examples(factor):
    """The reported cases: one source measured x 1e-9 was dropped as constant (Uni 1.32 ->
    0.49 bits), one variable x 1e7 raised a false "not positive semi-definite"."""
    rng = np.random.default_rng(14)
    cov = random_factor_cov(rng, 5)
    dims = (1, 2, 2)
    ref = pidkit.gaussian_pid(cov, dims)
    for k in range(5):
        s = np.ones(5)
        s[k] = factor
        got = pidkit.gaussian_pid(cov * np.outer(s, s), dims)
        np.testing.assert_allclose(atoms(got), atoms(ref), rtol=0,
                                   atol=tolerance(cov) / math.log(2))
        assert got.details["reductions"] == []
