r"""Gaussian PID from samples: plug-in covariance, closed-form bias correction, bootstrap.

Bias of Gaussian log-determinants. For ``n`` i.i.d. samples of a ``p``-variate Gaussian, the
scatter matrix :math:`W = \sum_i (z_i - \bar z)(z_i - \bar z)^\top` is Wishart with ``n - 1``
degrees of freedom, so (e.g. Cai, Liang, Zhou 2015)

.. math::

    \mathbb E[\log\det W] = \log\det\Sigma + p\log 2 + \Psi_n(p), \qquad
    \Psi_n(p) = \sum_{i=1}^{p} \psi\!\left(\frac{n - i}{2}\right),

with :math:`\psi` the digamma function. Every Gaussian mutual information is a combination of
log-determinants in which the :math:`\log\det\Sigma` and :math:`p\log 2` terms cancel, so the
plug-in estimate of :math:`I(A; B)` (dimensions ``a``, ``b``) has the exact bias

.. math::

    b_n(a, b) = \tfrac12\left[\Psi_n(a) + \Psi_n(b) - \Psi_n(a + b)\right] > 0,

whatever :math:`\Sigma` is. The corrected estimates of :math:`I(M;X)`, :math:`I(M;Y)` and
:math:`I(M;X,Y)` are therefore exactly unbiased.

The BROJA union information :math:`f^* = I(M;Y) + \mathrm{Uni}_X = I(M;X) + \mathrm{Uni}_Y`
equals :math:`I(M;Y)` when every generalized eigenvalue :math:`\lambda_i \le 1` and
:math:`I(M;X)` when every :math:`\lambda_i \ge 1` (:mod:`pidkit.gaussian.broja`); in those
regimes its bias is exactly :math:`b_Y` or :math:`b_X`. In general we subtract the
interpolation :math:`(k_X b_X + k_Y b_Y) / d_m`, where :math:`k_X` (:math:`k_Y`) counts the
eigenvalues above (below) 1 (ties count half): exact in the degraded regimes, an approximation in
between. For MMI, :math:`f^* = \max(I(M;X), I(M;Y))` is taken over the corrected informations.
All atoms then follow from the identities, so the corrected atoms still sum to the corrected
:math:`I(M; X, Y)`. Corrected values can be slightly negative when the true atom is near 0.

Intervals: percentile bootstrap over rows (``n_boot`` resamples, all evaluated as one batch),
each resample bias-corrected like the point estimate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import digamma

from .._backend import is_torch
from ..errors import PIDTypeError
from ..lattice import lattice
from ..result import PIDResult
from ..validation import check_base, check_choice, check_positive, check_samples, fail
from .api import MEASURES, gaussian_pid

__all__ = ["gaussian_pid_from_samples", "logdet_bias", "mi_bias"]


def logdet_bias(n: int, p: int) -> float:
    r""":math:`\Psi_n(p) = \sum_{i=1}^p \psi((n-i)/2)`: the bias of :math:`\log\det W`
    beyond :math:`\log\det\Sigma + p\log 2` for a scatter matrix of ``n`` samples (nats)."""
    if n <= p:
        raise fail("samples", f"{n} samples are too few for a {p}-dimensional covariance",
                   f"Pass more than {p + 1} samples")
    return float(digamma((n - np.arange(1, p + 1)) / 2).sum())


def mi_bias(n: int, a: int, b: int) -> float:
    r"""Exact bias :math:`b_n(a,b)` (nats) of the plug-in Gaussian :math:`I(A;B)`, dims ``a, b``,
    from ``n`` samples (mean estimated)."""
    return 0.5 * (logdet_bias(n, a) + logdet_bias(n, b) - logdet_bias(n, a + b))


def _as_block(v: Any, name: str) -> tuple[Any, bool]:
    """A block of samples ``(n, d)`` (a vector becomes one column) in its own library, float
    (integers widened to float64, float dtypes kept), finite; and whether it is a torch tensor."""
    arr = check_samples(v, name)
    torch_in = is_torch(arr)
    if torch_in:
        arr = arr if arr.dtype.is_floating_point else arr.double()
    elif arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise fail(name, f"must have shape (n,) or (n, d), got {tuple(arr.shape)}",
                   "Put samples on the first axis and features on the second")
    host = arr.detach().cpu().numpy() if torch_in else arr
    if not np.isfinite(host).all():
        raise fail(name, "contains NaN or infinite values", "Drop or impute those samples")
    return arr, torch_in


def _covariance(z: Any) -> Any:
    centred = z - z.mean(0)
    return centred.T @ centred / (z.shape[0] - 1)


def _corrections(n: int, dims: tuple[int, int, int]) -> tuple[float, float, float]:
    d_m, d_x, d_y = dims
    return mi_bias(n, d_m, d_x), mi_bias(n, d_m, d_y), mi_bias(n, d_m, d_x + d_y)


def _union_bias(lam: Any, b_x: float, b_y: float) -> Any:
    """Bias subtracted from the BROJA union information f* (see the module notes)."""
    lam = np.asarray(lam)
    k_x = (lam > 1).sum(-1) + 0.5 * (lam == 1).sum(-1)
    return (k_x * b_x + (lam.shape[-1] - k_x) * b_y) / lam.shape[-1]


def _float(v: Any) -> float:
    return float(v.detach()) if is_torch(v) else float(v)


def _atoms_from(i_x: Any, i_y: Any, i_xy: Any, f_star: Any) -> dict[str, Any]:
    red = i_x + i_y - f_star
    return {"red": red, "uni_x": f_star - i_y, "uni_y": f_star - i_x, "syn": i_xy - f_star}


def _union(r: PIDResult) -> Any:
    """The union information :math:`f^* = I(M;X) + \\mathrm{Uni}_Y` of a nats result."""
    return r.redundancy + r.unique[0] + r.unique[1]


def _corrected(r: PIDResult, measure: str, n: int, dims: tuple[int, int, int],
               correct: bool) -> dict[str, Any]:
    """Atoms in nats of a nats result ``r`` (possibly a batch), bias-corrected if asked."""
    red = r.redundancy
    i_x = red + r.unique[0]
    i_y = red + r.unique[1]
    i_xy = r.mutual_information
    if not correct:
        return _atoms_from(i_x, i_y, i_xy, _union(r))
    b_x, b_y, b_xy = _corrections(n, dims)
    ci_x, ci_y, ci_xy = i_x - b_x, i_y - b_y, i_xy - b_xy
    if measure == "mmi":
        f_star = ci_x + (ci_y - ci_x).clip(min=0) if is_torch(ci_x) else np.maximum(ci_x, ci_y)
    else:
        lam = np.asarray(r.details["eigenvalues"])
        shift = _union_bias(lam, b_x, b_y)
        if not is_torch(i_x):
            shift = np.asarray(shift).reshape(np.shape(i_x))
            shift = float(shift) if np.ndim(shift) == 0 else shift
        f_star = _union(r) - shift
    return _atoms_from(ci_x, ci_y, ci_xy, f_star)


def gaussian_pid_from_samples(m: Any, x: Any, y: Any, measure: str = "broja", base: float = 2,
                              *, bias_correction: bool = True, ci: float | None = 0.95,
                              n_boot: int = 200, seed: int | None = None) -> PIDResult:
    r"""Gaussian PID of samples of a target ``m`` and sources ``x``, ``y``, bias-corrected.

    The sample covariance of the rows :math:`(m_i, x_i, y_i)` goes through
    :func:`~pidkit.gaussian.gaussian_pid`; with ``bias_correction`` the exact Wishart bias of
    each Gaussian mutual information (:func:`mi_bias`, digamma terms) is subtracted (see the
    module notes for the BROJA union information).

    Parameters
    ----------
    m, x, y : array_like or torch.Tensor, shape ``(n,)`` or ``(n, d_*)``
        Samples in rows. Torch tensors give torch atoms with autograd (the correction is a
        constant shift); the bootstrap runs on detached copies.
    measure : {"broja", "mmi"}
    base : float, default 2
    bias_correction : bool, default True
        Subtract the exact digamma bias of each mutual information and the closed-form estimate
        of the union information's bias (module notes); ``False``: plug-in.
    ci : float or None, default 0.95
        Level of the percentile bootstrap intervals (``result.intervals``); ``None`` skips it.
    n_boot : int, default 200
        Bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap resampling.

    Returns
    -------
    PIDResult
        ``details`` holds ``n_samples``, ``bias`` (the subtracted biases of
        :math:`I(M;X)`, :math:`I(M;Y)`, :math:`I(M;X,Y)` in the result's units) and
        ``plugin`` (the uncorrected atoms).

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> rng = np.random.default_rng(0)
    >>> m = rng.normal(size=2000)
    >>> x, y = m + rng.normal(size=2000), m + rng.normal(size=2000)
    >>> r = pidkit.gaussian_pid_from_samples(m, x, y, seed=0)
    >>> bool(abs(r.redundancy - 0.5) < 0.1)    # true redundancy: 0.5 bit
    True

    References
    ----------
    T. T. Cai, T. Liang, H. H. Zhou, "Law of log determinant of sample covariance matrix and
    optimal estimation of differential entropy for high-dimensional Gaussian distributions",
    J. Multivariate Anal. 137 (2015).
    """
    measure = check_choice(measure, "measure", MEASURES)
    base = check_base(base)
    if not isinstance(bias_correction, bool):
        raise fail("bias_correction", "must be True or False", "Pass True or False",
                   bias_correction, kind=PIDTypeError)
    if ci is not None:
        level = check_positive(ci, "ci")
        if not 0 < level < 1:
            raise fail("ci", "must be a level strictly between 0 and 1", "Use e.g. ci=0.95", ci)
    n_boot = check_positive(n_boot, "n_boot", integer=True)
    blocks = [_as_block(v, name) for v, name in ((m, "m"), (x, "x"), (y, "y"))]
    kinds = {t for _, t in blocks}
    if len(kinds) > 1:
        raise fail("m, x, y", "mix numpy arrays and torch tensors",
                   "Convert them all to one library", kind=PIDTypeError)
    arrays = [a for a, _ in blocks]
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise fail("m, x, y", f"hold different numbers of samples "
                   f"{[int(a.shape[0]) for a in arrays]}", "Pass one row per sample in each")
    dims = tuple(int(a.shape[1]) for a in arrays)
    if n <= sum(dims) + 1:
        raise fail("m, x, y", f"{n} samples are too few for {sum(dims)} variables",
                   f"Pass more than {sum(dims) + 1} samples (many more for useful estimates)")
    torch_in = kinds == {True}
    if torch_in:
        import torch

        z = torch.cat([a.to(torch.float64) for a in arrays], dim=1)
    else:
        z = np.concatenate(arrays, axis=1, dtype=np.float64)
    cov = _covariance(z)
    point = gaussian_pid(cov, dims, measure=measure, base=math.e, certify=False)
    atoms = _corrected(point, measure, n, dims, bias_correction)
    plug = _corrected(point, measure, n, dims, False)
    factor = 1.0 / math.log(base)
    keys = {"red": lattice(2).bottom, "uni_x": ((0,),), "uni_y": ((1,),), "syn": lattice(2).top}
    intervals = None
    if ci is not None:
        host = z.detach().cpu().numpy() if torch_in else z
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
        covs = np.empty((n_boot,) + (host.shape[1],) * 2)
        for start in range(0, n_boot, 32):
            w = weights[start:start + 32]
            mean = w @ host / n
            second = np.einsum("bn,ni,nj->bij", w, host, host, optimize=True)
            covs[start:start + 32] = (second - n * mean[:, :, None] * mean[:, None, :]) / (n - 1)
        rb = gaussian_pid(covs, dims, measure=measure, base=math.e, certify=False)
        ab = _corrected(rb, measure, n, dims, bias_correction)
        alpha = (1 - ci) / 2
        intervals = {keys[k]: tuple(float(q) * factor for q in
                                    np.quantile(ab[k], [alpha, 1 - alpha])) for k in keys}
    b = _corrections(n, dims) if bias_correction else (0.0, 0.0, 0.0)
    i_xy = point.mutual_information - b[2]
    to_float = (lambda v: v * factor) if torch_in else (lambda v: float(v) * factor)
    return PIDResult(
        atoms={keys[k]: to_float(atoms[k]) for k in keys},
        measure=measure, base=base, mutual_information=to_float(i_xy),
        solver=point.solver, source_names=("X", "Y"), target_name="M", intervals=intervals,
        details={"n_samples": n, "dims": dims, "bias_correction": bias_correction,
                 "bias": tuple(v * factor for v in b),
                 "plugin": {k: _float(plug[k]) * factor for k in keys}, "ci": ci,
                 "n_boot": n_boot if ci is not None else 0},
    )
