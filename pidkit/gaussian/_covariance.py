r"""Validation of a joint covariance and its exact reduction to a well-conditioned one.

The Gaussian PID depends on a covariance only through the canonical correlations between the
blocks (target :math:`M`, sources :math:`X`, :math:`Y`): every quantity is invariant under an
invertible linear map within a block. :func:`prepare` uses this to turn any accepted input into
an equivalent, well-conditioned covariance:

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

Well-conditioned inputs (Cholesky succeeds and LAPACK's reciprocal condition estimate of the
target-source correlation exceeds :data:`NEAR_RTOL`) take a fast path with no eigendecomposition.
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
from ..errors import PIDTypeError, RegularizationWarning
from ..validation import fail
from ._channels import permutation

__all__ = ["EXACT_RTOL", "NEAR_RTOL", "SYMMETRY_RTOL", "Prepared", "as_batch", "check_cov",
           "check_dims", "prepare", "screen", "apply_prepared"]

#: Relative eigenvalue (of a correlation matrix) at or below which a direction counts as exactly
#: degenerate.
EXACT_RTOL = 1e-12
#: Smallest ``1 - rho**2`` (rho a canonical correlation with the target) accepted without a ridge;
#: also the reciprocal-condition threshold of the fast path.
NEAR_RTOL = 1e-10
#: Tolerance on ``|cov - cov.T|`` relative to the largest variance (for float64 input; lower
#: precision input gets ``100 * eps`` of its dtype if that is larger).
SYMMETRY_RTOL = 1e-8
#: Tolerance on negative eigenvalues (relative to the largest) before a matrix counts as not PSD.
PSD_RTOL = 1e-8


def check_dims(dims: Any, d: int) -> tuple[int, int, int]:
    """Validate ``dims = (d_m, d_x, d_y)`` against a covariance of size ``d``."""
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
    if xp.name == "numpy":
        if isinstance(cov, (str, bytes)) or cov is None:
            raise fail("cov", "must be a covariance matrix", "Pass a numpy array or torch tensor",
                       cov, kind=PIDTypeError)
        arr = np.asarray(cov)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise fail("cov", f"must hold real numbers, not dtype {arr.dtype}",
                       "Pass a float array", kind=PIDTypeError)
        eps = float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else 0.0
        arr = arr.astype(np.float64, copy=False)
    else:
        if not cov.dtype.is_floating_point:
            raise fail("cov", f"must be a floating-point tensor, not {cov.dtype}",
                       "Convert it with cov.double()", kind=PIDTypeError)
        eps = float(xp._lib.finfo(cov.dtype).eps)
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
    scale = np.maximum(np.abs(diag).max(axis=-1), np.finfo(float).tiny)
    skew = host - np.swapaxes(host, -1, -2)
    asym = np.abs(skew).max(axis=(-2, -1)) / scale
    if (asym > max(SYMMETRY_RTOL, 100 * eps)).any():
        b = int(np.argmax(asym))
        raise fail("cov", f"is not symmetric (max |cov - cov.T| / max variance = {asym[b]:.3g}"
                   + (f" in batch item {b}" if arr.shape[0] > 1 else "") + ")",
                   "Pass a covariance matrix; symmetrise a numerically asymmetric one with "
                   "(cov + cov.T) / 2")
    if (diag < 0).any():
        raise fail("cov", f"has a negative variance on its diagonal (min {diag.min():.3g})",
                   "A covariance matrix is positive semi-definite")
    if xp.name == "torch":  # differentiable symmetrisation (a symmetric gradient)
        arr = (arr + xp.swapaxes(arr, -1, -2)) / 2
    elif asym.any():
        arr = arr - skew / 2  # = (cov + cov.T) / 2
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


def prepare(cov: np.ndarray, dims: tuple[int, int, int], *, item: str = "") -> Prepared:
    """Reduce one validated covariance ``(d, d)`` (float64 numpy) exactly; see the module notes.

    Raises a :class:`~pidkit.errors.PIDValueError` for non-PSD input and infinite information,
    and warns with :class:`~pidkit.errors.RegularizationWarning` when a ridge is added.
    """
    where = f" (batch item {item})" if item else ""
    var = np.diag(cov).copy()
    scale = var.max()
    if scale <= 0:
        raise fail("cov", f"is all zeros{where}", "Every block needs a non-constant variable")
    const = var <= EXACT_RTOL * scale
    safe = np.where(const, 1.0, np.sqrt(np.maximum(var, np.finfo(float).tiny)))
    corr = cov / np.outer(safe, safe)
    if const.any() and np.abs(corr[const]).max() > PSD_RTOL:
        raise fail("cov", f"is not positive semi-definite{where}: a variable with zero variance "
                   "has a non-zero covariance", "Pass a valid covariance matrix")
    slices = _blocks(dims)
    keep = [np.flatnonzero(~const[s]) for s in slices]
    names = ("target", "source 1", "source 2")
    for k, name in zip(keep, names, strict=True):
        if k.size == 0:
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
    return _slow(c, new_dims, base_maps, notes, where)


def screen(covs: np.ndarray, dims: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """Batched fast path: ``(ok, scale, corr, factor)``.

    ``ok[b]``: item ``b`` needs no reduction (no constant variable, Cholesky of the correlation
    matrix succeeds and LAPACK's reciprocal condition estimate exceeds :data:`NEAR_RTOL`);
    ``scale[b] = 1 / sqrt(diag(cov[b]))``; ``corr[b]`` the correlation matrix reordered
    ``(X, Y, M)`` (:func:`~pidkit.gaussian._channels.permutation`) and ``factor[b]`` its
    Cholesky factor, both reused by the numpy path.
    """
    var = np.diagonal(covs, axis1=-2, axis2=-1)
    ok = (var > EXACT_RTOL * var.max(axis=-1, keepdims=True)).all(axis=-1)
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
          notes: list[str], where: str) -> Prepared:
    """Eigendecomposition path for singular or near-singular correlation matrices."""
    lam_all = np.linalg.eigvalsh(c)
    if lam_all[0] < -PSD_RTOL * lam_all[-1]:
        raise fail("cov", f"is not positive semi-definite{where}: smallest eigenvalue of the "
                   f"correlation matrix {lam_all[0]:.3g}",
                   "Pass a valid covariance (an estimate from samples always is; check for "
                   "pairwise-deletion or rounding)")
    slices = _blocks(dims)
    maps, names = [], ("target", "source 1", "source 2")
    for s, name in zip(slices, names, strict=True):
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
    for name, r in rho.items():
        if 1 - r * r <= EXACT_RTOL:
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
            "variable or add noise to silence this", RegularizationWarning, stacklevel=4)
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
    return (out + out.T) / 2 if not is_torch(out) else (out + out.mT) / 2
