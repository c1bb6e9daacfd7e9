r"""Validation of a joint covariance and its exact reduction to a well-conditioned one.

The Gaussian PID depends on a covariance only through the canonical correlations between the
blocks (target :math:`M`, sources :math:`X`, :math:`Y`): every quantity is invariant under an
invertible linear map within a block, in particular under a rescaling
:math:`\Sigma \mapsto D\Sigma D` of each variable (``D`` diagonal, positive): a change of units.
Every test here is therefore made on the *correlation scale* (each variable standardised by its
own standard deviation) or is exact, so that the result, the reductions and the errors do not
depend on units:

* a variable is **constant** when its variance is exactly zero (or below the smallest normal
  float64, :data:`CONSTANT_VARIANCE`, where a variance has lost its significant digits); no
  variance is compared with another variable's variance;
* **symmetry**: :math:`|\Sigma_{ij} - \Sigma_{ji}| \le` :data:`SYMMETRY_RTOL`
  :math:`\sqrt{\Sigma_{ii}\Sigma_{jj}}`, entry by entry;
* a constant variable must have covariances :math:`|\Sigma_{ij}| \le \sqrt{\Sigma_{ii}\Sigma_{jj}}`
  (exactly zero for a zero variance: any non-zero one means the matrix is not positive
  semi-definite, in any units);
* every eigenvalue threshold (:data:`EXACT_RTOL`, :data:`PSD_RTOL`) and the condition test of
  the fast path (:data:`NEAR_RTOL`) applies to the correlation matrix.

:func:`prepare` turns any accepted input into an equivalent, well-conditioned covariance:

1. scale to correlations; drop constant variables (zero variance carries no information);
2. drop exact linear dependencies *within* a block (eigenvalues of the block correlation at or
   below :data:`EXACT_RTOL` of its largest): the block is replaced by its whitened principal
   components, which generate the same sigma-algebra;
3. reject infinite information: a canonical correlation of 1 between the target and a source
   (or both sources together) means a linear function of the target is observed without noise;
4. keep an exact linear relation *between* the two sources (e.g. ``Y = A X``): it does not
   affect BROJA, which only sees the pairs ``(M, X)`` and ``(M, Y)``, and :math:`I(M; X, Y)`
   is computed on the whitened principal components of the joint source (``z_map``);
5. near-singular (a canonical correlation :math:`\rho` with :math:`1-\rho^2 <` :data:`NEAR_RTOL`):
   add a ridge :math:`\delta\,\Sigma_{MM}` to the target block, i.e. add independent noise to the
   target, which shrinks every canonical correlation with the target by
   :math:`1/\sqrt{1+\delta}`; a :class:`~pidkit.errors.RegularizationWarning` states
   :math:`\delta`.

Well-conditioned inputs (no constant variable, Cholesky succeeds and LAPACK's reciprocal
condition estimate of the reordered correlation matrix exceeds :data:`NEAR_RTOL`) take a fast
path with no eigendecomposition.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from .._backend import get_namespace, is_torch
from ..errors import PIDTypeError, RegularizationWarning, caller_stacklevel
from ..validation import _integer_tensor_as_list, as_host_array, fail, reject_meta
from ._channels import permutation

__all__ = ["CONSTANT_VARIANCE", "EXACT_RTOL", "NEAR_RTOL", "PSD_RTOL", "SYMMETRY_RTOL",
           "Prepared", "as_batch", "check_cov", "check_dims", "prepare", "screen",
           "apply_prepared"]

#: A variance below this (zero, or subnormal: too few significant digits to standardise by) makes
#: a variable constant. It is the only absolute threshold, and it compares a variable with nothing
#: but itself: every positive normal variance is a legitimate unit.
CONSTANT_VARIANCE = float(np.finfo(np.float64).tiny)
#: Relative eigenvalue (of a correlation matrix) at or below which a direction counts as exactly
#: degenerate.
EXACT_RTOL = 1e-12
#: Smallest ``1 - rho**2`` (rho a canonical correlation with the target) accepted without a ridge;
#: also the reciprocal-condition threshold of the fast path.
NEAR_RTOL = 1e-10
#: Tolerance on ``|cov[i, j] - cov[j, i]|`` relative to ``sqrt(cov[i, i] * cov[j, j])`` (the
#: correlation scale of the entry), for float64 input; lower precision input gets ``100 * eps``
#: of its dtype if that is larger.
SYMMETRY_RTOL = 1e-8
#: Tolerance on negative eigenvalues of the correlation matrix (relative to the largest) before a
#: matrix counts as not PSD.
PSD_RTOL = 1e-8


def check_dims(dims: Any, d: int) -> tuple[int, int, int]:
    """Validate ``dims = (d_m, d_x, d_y)`` against a covariance of size ``d`` (integers, or an
    integer array or tensor of them, as axes are given to :func:`pidkit.pid`)."""
    dims = _integer_tensor_as_list(dims)
    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__") or len(dims) != 3:
        raise fail("dims", "must be three block sizes (d_target, d_source1, d_source2)",
                   "Example: dims=(1, 2, 2) for a scalar target and two 2-d sources", dims,
                   kind=PIDTypeError)
    out = []
    for v in dims:
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
            raise fail("dims", "holds a non-integer block size", "Use positive integers", dims,
                       kind=PIDTypeError)
        if int(v) < 1:
            raise fail("dims", "holds a block size < 1", "Every block needs at least one variable",
                       dims)
        out.append(int(v))
    if sum(out) != d:
        raise fail("dims", f"sums to {sum(out)} but cov is {d} x {d}",
                   "The block sizes must add up to the covariance size, ordered "
                   "(target, source1, source2)", tuple(dims))
    return out[0], out[1], out[2]


def as_batch(cov: Any, dims: Any) -> tuple[Any, Any, tuple[int, ...], tuple[int, int, int],
                                            float]:
    """Type, shape and ``dims`` checks of a covariance (or a batch of them); no value is read.

    Returns ``(xp, cov64, batch_shape, dims, eps)``: ``cov64`` is a float64 array of the input's
    library (and device), shape ``(B, d, d)``, not yet symmetrised; ``eps`` the machine epsilon
    of the input's dtype (0 for integers).
    """
    xp = get_namespace(cov)
    reject_meta(cov, "cov")
    # the dtype policy of the public boundary, per input type: numpy array-likes may hold
    # integers (exact); booleans are no covariance (True/False are not variances), nor is a
    # masked array (its mask would be dropped); a torch tensor must be floating point
    if not is_torch(cov):
        cov = as_host_array(cov, "cov", must="a covariance matrix",
                            fix="Pass a numpy array or torch tensor",
                            ragged_fix="Give every matrix of a batch the same shape (d, d)")
        if cov.dtype == object or cov.dtype.kind not in "iuf":
            raise fail("cov", f"must hold real numbers, not dtype {cov.dtype}",
                       "Pass a float array, e.g. np.asarray(cov, dtype=float)",
                       kind=PIDTypeError)
    elif not xp.is_floating(cov):
        raise fail("cov", f"must be a floating-point tensor, not {cov.dtype}",
                   "Convert it with cov.double()", kind=PIDTypeError)
    eps = xp.eps(cov) if xp.is_floating(cov) else 0.0
    arr = xp.float64(cov)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise fail("cov", f"must be a square matrix or a batch of them, shape {tuple(arr.shape)}",
                   "Pass shape (d, d) or (batch, d, d)")
    dims = check_dims(dims, arr.shape[-1])
    batch_shape = tuple(arr.shape[:-2])
    arr = arr.reshape((-1,) + tuple(arr.shape[-2:]))
    if arr.shape[0] == 0:
        raise fail("cov", "is an empty batch", "Pass at least one covariance")
    return xp, arr, batch_shape, dims, eps


def check_cov(cov: Any, dims: Any) -> tuple[Any, Any, tuple[int, ...], tuple[int, int, int]]:
    """Validate a covariance (or a batch of them) at the public boundary: :func:`as_batch`, then
    finite, symmetric, non-negative variances (read on the host).

    Returns ``(xp, cov64, batch_shape, dims)`` where ``cov64`` is a float64 array of the input's
    library (and device), shape ``(B, d, d)``, symmetrised.
    """
    xp, arr, batch_shape, dims, eps = as_batch(cov, dims)
    host = xp.to_numpy(arr)
    if not np.isfinite(host.sum()) and not np.isfinite(host).all():
        raise fail("cov", "contains NaN or infinite entries",
                   "Check how the covariance was estimated (e.g. a constant feature divided by 0)")
    diag = np.diagonal(host, axis1=-2, axis2=-1)
    skew = host - np.swapaxes(host, -1, -2)
    # Per entry, on the correlation scale sqrt(v_i v_j) (units cancel); an entry of a zero-
    # variance variable must be exactly symmetric (a ratio of +inf otherwise).
    std = np.sqrt(np.abs(diag))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(skew) / std[..., :, None] / std[..., None, :]
    rel = np.where(skew == 0, 0.0, rel)
    asym = rel.max(axis=(-2, -1))
    if (asym > max(SYMMETRY_RTOL, 100 * eps)).any():
        b = int(np.argmax(asym))
        i, j = np.unravel_index(int(np.argmax(rel[b])), rel.shape[-2:])
        raise fail("cov", f"is not symmetric (|cov[{i}, {j}] - cov[{j}, {i}]| / "
                   f"sqrt(cov[{i}, {i}] cov[{j}, {j}]) = {asym[b]:.3g}"
                   + (f" in batch item {b}" if arr.shape[0] > 1 else "") + ")",
                   "Pass a covariance matrix; symmetrise a numerically asymmetric one with "
                   "(cov + cov.T) / 2")
    if (diag < 0).any():
        raise fail("cov", f"has a negative variance on its diagonal (min {diag.min():.3g})",
                   "A covariance matrix is positive semi-definite")
    # (cov + cov.T) / 2, halved first (no overflow near the largest float); differentiable
    # with a symmetric gradient
    arr = arr / 2 + xp.swapaxes(arr, -1, -2) / 2
    return xp, arr, batch_shape, dims


@dataclass(frozen=True)
class Prepared:
    """An equivalent, well-conditioned problem for one covariance.

    ``cov`` equals ``T cov_in T^T`` (``T`` block diagonal from ``maps``) with ``ridge`` added
    as ``cov[M, M] *= 1 + ridge``. ``z_map`` (or ``None`` on the fast path) maps the joint
    source ``(X, Y)`` to whitened, linearly independent coordinates.
    """

    cov: np.ndarray
    dims: tuple[int, int, int]
    maps: tuple[np.ndarray, np.ndarray, np.ndarray]
    z_map: np.ndarray | None
    ridge: float
    notes: tuple[str, ...]


def _blocks(dims: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    d_m, d_x, d_y = dims
    return slice(0, d_m), slice(d_m, d_m + d_x), slice(d_m + d_x, d_m + d_x + d_y)


def _fast_ok(c: np.ndarray) -> bool:
    """Whether the correlation matrix ``c`` is safely positive definite (Cholesky + rcond)."""
    lower, info = lapack.dpotrf(c, lower=1, clean=1)
    if info != 0:
        return False
    rcond, info = lapack.dpocon(lower, np.abs(c).sum(axis=0).max(), uplo="L")
    return info == 0 and rcond > NEAR_RTOL


def _whitening(block: np.ndarray) -> tuple[np.ndarray, int]:
    """``(W, dropped)``: ``W block W^T = I`` on the directions kept (eigenvalues above
    :data:`EXACT_RTOL` of the largest); ``dropped`` counts exactly degenerate directions."""
    lam, vec = np.linalg.eigh(block)
    keep = lam > EXACT_RTOL * max(lam[-1], np.finfo(float).tiny)
    return (vec[:, keep] / np.sqrt(lam[keep])).T, int((~keep).sum())


def _constant_block(names: tuple[str, str, str], k: int) -> Exception:
    """The error for block ``k`` (0: target) of samples given as the arguments ``names``."""
    what = "a constant target" if k == 0 else "a constant source"
    return fail(names[k], "is constant (the same value in every sample, zero variance), so "
                f"the Gaussian PID is undefined: {what} carries no information",
                "Check that the right array was passed, or drop the constant variable")


def _collinear(names: tuple[str, str, str], k: int | None, r: float) -> Exception:
    """The error for a target that is an exact linear function of source ``k`` (``None``: of
    both sources together), for samples given as the arguments ``names``."""
    if k is None:
        return fail(names[0], f"is collinear with {names[1]} and {names[2]} together: a "
                    f"linear function of {names[0]} is an exact linear function of the two "
                    f"sources (canonical correlation {r:.15g}), so the Gaussian information is "
                    "infinite", "Add measurement noise, or check for a target built from the "
                    "sources")
    return fail(names[k], f"is collinear with {names[0]}: a linear function of {names[0]} is "
                f"an exact linear function of {names[k]} (canonical correlation {r:.15g}), so "
                "the Gaussian information is infinite", "Continuous variables observed "
                "without noise carry infinite information; add measurement noise or drop the "
                "duplicated variable")


def _constant_columns(names: tuple[str, str, str], slices: tuple[slice, ...],
                      const: np.ndarray) -> None:
    """Raise the error for the first block of samples (passed as ``names``) holding constant
    columns: the block's constant-block error when all its columns are constant, else the
    columns, in the words of :func:`pidkit.estimate.gaussian_route.gaussian_blocks`."""
    for b, s in enumerate(slices):
        if const[s].all():
            raise _constant_block(names, b)
    for b, s in enumerate(slices):
        cols = np.flatnonzero(const[s])
        if cols.size:
            raise fail(names[b], f"has constant column(s) {cols[:5].tolist()} (zero variance), "
                       "so the covariance is singular", "Drop constant features, or reduce "
                       "with n_components=...")


def prepare(cov: np.ndarray, dims: tuple[int, int, int], *, item: str = "",
            names: tuple[str, str, str] | None = None) -> Prepared:
    """Reduce one validated covariance ``(d, d)`` (float64 numpy) exactly; see the module notes.

    Raises a :class:`~pidkit.errors.PIDValueError` for non-PSD input and infinite information,
    and warns with :class:`~pidkit.errors.RegularizationWarning` when a ridge is added.
    ``names``: for a covariance estimated from samples, the arguments the target and the two
    sources were passed as (e.g. ``("target", "sources[0]", "sources[1]")``); a constant block
    or an exactly collinear source is then an error naming that argument, not ``cov``.
    """
    where = f" (batch item {item})" if item else ""
    var = np.diag(cov).copy()
    const = var < CONSTANT_VARIANCE  # per variable: no comparison with other variances
    if const.all():
        if names is not None:
            raise _constant_block(names, 0)
        raise fail("cov", f"is all zeros{where}", "Every block needs a non-constant variable")
    std = np.sqrt(np.maximum(var, 0.0))
    slices = _blocks(dims)
    if const.any():
        # PSD needs |cov_ij| <= sqrt(v_i v_j): a zero variance forces a zero row (in any units)
        bound = (1 + PSD_RTOL) * std[const][:, None] * std[None, :]
        bad = np.abs(cov[const]) > bound
        if bad.any():
            i, j = np.argwhere(bad)[0]
            i = int(np.flatnonzero(const)[i])
            if names is not None:
                # from samples, a zero variance is a constant variable and its covariances
                # are the rounding residue of the sums: name the argument it came from
                _constant_columns(names, slices, const)
            raise fail("cov", f"is not positive semi-definite{where}: variable {i} has zero "
                       f"variance but cov[{i}, {j}] = {cov[i, j]:.3g}",
                       "A constant variable has zero covariance with every variable; set its "
                       "row and column to 0 (or drop it)")
    safe = np.where(const, 1.0, std)
    corr = cov / safe[:, None] / safe[None, :]  # two divisions: no overflow of safe_i * safe_j
    keep = [np.flatnonzero(~const[s]) for s in slices]
    for b, (k, name) in enumerate(zip(keep, ("target", "source 1", "source 2"), strict=True)):
        if k.size == 0:
            if names is not None:
                raise _constant_block(names, b)
            raise fail("cov", f"the {name} block is constant (zero variance){where}",
                       "Every block needs a non-constant variable; drop the block or add it")
    base_maps = []
    for s, k in zip(slices, keep, strict=True):
        width = s.stop - s.start
        m = np.zeros((k.size, width))
        m[np.arange(k.size), k] = 1.0 / safe[s][k]
        base_maps.append(m)
    new_dims = tuple(int(k.size) for k in keep)
    kept = np.flatnonzero(~const)
    c = corr[np.ix_(kept, kept)]
    c = (c + c.T) / 2
    notes: list[str] = []
    if const.any():
        notes.append(f"dropped {int(const.sum())} constant variable(s)")
    if _fast_ok(c):
        return Prepared(c, new_dims, tuple(base_maps), None, 0.0, tuple(notes))
    off = np.abs(c - np.diag(np.diag(c)))
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    if off[i, j] > 1 + PSD_RTOL:  # a 2 x 2 principal minor is negative: name the pair
        i, j = int(kept[i]), int(kept[j])
        raise fail("cov", f"is not positive semi-definite{where}: variables {i} and {j} have "
                   f"correlation cov[{i}, {j}] / sqrt(cov[{i}, {i}] cov[{j}, {j}]) = "
                   f"{corr[i, j]:.6g}, beyond [-1, 1]",
                   "Pass a valid covariance; a variable meant to be constant (or measured "
                   "with rounding error only) must have an exactly zero row and column")
    return _slow(c, new_dims, base_maps, notes, where, names)


def screen(covs: np.ndarray, dims: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """Batched fast path: ``(ok, scale, corr, factor)``.

    ``ok[b]``: item ``b`` needs no reduction (no variance below :data:`CONSTANT_VARIANCE`,
    Cholesky of the correlation matrix succeeds and LAPACK's reciprocal condition estimate
    exceeds :data:`NEAR_RTOL`);
    ``scale[b] = 1 / sqrt(diag(cov[b]))``; ``corr[b]`` the correlation matrix reordered
    ``(X, Y, M)`` (:func:`~pidkit.gaussian._channels.permutation`) and ``factor[b]`` its
    Cholesky factor, both reused by the numpy path.
    """
    var = np.diagonal(covs, axis1=-2, axis2=-1)
    ok = (var >= CONSTANT_VARIANCE).all(axis=-1)
    scale = 1.0 / np.sqrt(np.where(ok[:, None], var, 1.0))
    perm = permutation(dims)
    sp = scale[:, perm]
    d_m, d_z = dims[0], dims[1] + dims[2]
    corr = np.empty_like(covs)  # (X, Y, M) order by block copies (faster than a gather)
    corr[:, :d_z, :d_z] = covs[:, d_m:, d_m:]
    corr[:, :d_z, d_z:] = covs[:, d_m:, :d_m]
    corr[:, d_z:, :d_z] = covs[:, :d_m, d_m:]
    corr[:, d_z:, d_z:] = covs[:, :d_m, :d_m]
    corr *= sp[:, :, None]
    corr *= sp[:, None, :]
    try:
        factor = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        factor = np.zeros_like(corr)
        for b in np.flatnonzero(ok):
            low, info = lapack.dpotrf(corr[b], lower=1, clean=1)
            ok[b] = info == 0
            factor[b] = low
    for b in np.flatnonzero(ok):
        rcond, info = lapack.dpocon(factor[b], np.abs(corr[b]).sum(axis=0).max(), uplo="L")
        ok[b] = info == 0 and rcond > NEAR_RTOL
    return ok, scale, corr, factor


def _slow(c: np.ndarray, dims: tuple[int, int, int], base_maps: list[np.ndarray],
          notes: list[str], where: str, names: tuple[str, str, str] | None = None) -> Prepared:
    """Eigendecomposition path for singular or near-singular correlation matrices."""
    lam_all = np.linalg.eigvalsh(c)
    if lam_all[0] < -PSD_RTOL * lam_all[-1]:
        raise fail("cov", f"is not positive semi-definite{where}: smallest eigenvalue of the "
                   f"correlation matrix {lam_all[0]:.3g}",
                   "Pass a valid covariance (an estimate from samples always is; check for "
                   "pairwise-deletion or rounding)")
    slices = _blocks(dims)
    maps = []
    for s, name in zip(slices, ("target", "source 1", "source 2"), strict=True):
        w, dropped = _whitening(c[s, s])
        if dropped:
            notes.append(f"{name}: {dropped} exactly linearly dependent direction(s) dropped")
        maps.append(w)
    W = sla.block_diag(*maps)
    t = W @ c @ W.T
    t = (t + t.T) / 2
    new_dims = tuple(m.shape[0] for m in maps)
    sm, sx, sy = _blocks(new_dims)
    rho = {"source 1": np.linalg.svd(t[sm, sx], compute_uv=False).max(initial=0.0),
           "source 2": np.linalg.svd(t[sm, sy], compute_uv=False).max(initial=0.0)}
    for k, (name, r) in enumerate(rho.items(), start=1):
        if 1 - r * r <= EXACT_RTOL:
            if names is not None:
                raise _collinear(names, k, r)
            raise fail("cov", f"gives infinite information{where}: a linear function of the "
                       f"target is an exact linear function of {name} (canonical correlation "
                       f"{r:.15g})", "Continuous variables observed without noise carry "
                       "infinite information; add measurement noise or drop the duplicated "
                       "variable")
    sz = slice(new_dims[0], sum(new_dims))
    z_map, dropped = _whitening(t[sz, sz])  # also conditions I(M; X, Y) when nearly singular
    if dropped:
        notes.append(f"the sources share {dropped} exact linear component(s); I(M; X, Y) is "
                     "computed on their independent part")
    kz = t[sm, sz] @ z_map.T
    rho["both sources"] = np.linalg.svd(kz, compute_uv=False).max(initial=0.0)
    if 1 - rho["both sources"] ** 2 <= EXACT_RTOL:
        if names is not None:
            raise _collinear(names, None, rho["both sources"])
        raise fail("cov", f"gives infinite information{where}: a linear function of the target "
                   "is an exact linear function of the two sources together",
                   "Add measurement noise, or check for a target built from the sources")
    worst = max(rho.values())
    ridge = 0.0
    if 1 - worst * worst < NEAR_RTOL:
        shrink = np.sqrt(1 - NEAR_RTOL) / worst
        ridge = float(1 / shrink**2 - 1)
        t[sm, sm] *= 1 + ridge
        warnings.warn(
            f"cov: near-singular{where} (largest canonical correlation with the target "
            f"{worst:.15g}, 1 - rho^2 = {1 - worst * worst:.3g}); added a ridge of "
            f"{ridge:.3g} x Sigma_MM to the target block (independent target noise, which "
            f"shrinks canonical correlations with the target by {shrink:.15g}). Information "
            "atoms near the singularity are large and sensitive; remove the near-duplicate "
            "variable or add noise to silence this", RegularizationWarning,
            stacklevel=caller_stacklevel())
        notes.append(f"ridge {ridge:.3g} x Sigma_MM added to the target block")
    maps_full = tuple(w @ b for w, b in zip(maps, base_maps, strict=True))
    return Prepared(t, new_dims, maps_full, z_map, ridge, tuple(notes))


def apply_prepared(xp: Any, cov: Any, p: Prepared) -> Any:
    """``T cov T^T`` with the ridge, for a float64 array ``cov (d, d)`` of namespace ``xp``
    (differentiable for torch: the maps are constants)."""
    T = xp.asarray(sla.block_diag(*p.maps), like=cov)
    out = T @ cov @ T.T
    if p.ridge:
        d_m = p.dims[0]
        mask = np.zeros((sum(p.dims),) * 2)
        mask[:d_m, :d_m] = p.ridge
        out = out * (1 + xp.asarray(mask, like=cov))
    return out / 2 + xp.swapaxes(out, -1, -2) / 2
