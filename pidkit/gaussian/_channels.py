r"""Gaussian mutual informations from posterior covariances of the target, numpy or torch.

Everything the Gaussian PID needs is three ``d_m x d_m`` posterior covariances,
:math:`P_X = \Sigma_{M|X}`, :math:`P_Y = \Sigma_{M|Y}`, :math:`P_{XY} = \Sigma_{M|X,Y}`, and
:math:`\log\det\Sigma_{MM}`: :math:`I(M; S) = \tfrac12(\log\det\Sigma_{MM} - \log\det P_S)`.

One Cholesky factorisation of the covariance reordered as ``(X, Y, M)``,

.. math::

    \begin{pmatrix}\Sigma_{ZZ} & \Sigma_{ZM}\\ \Sigma_{MZ} & \Sigma_{MM}\end{pmatrix}
    = \begin{pmatrix}L_{ZZ} & 0\\ W^\top & L_{M|Z}\end{pmatrix}
      \begin{pmatrix}L_{ZZ}^\top & W\\ 0 & L_{M|Z}^\top\end{pmatrix},
    \quad W = L_{ZZ}^{-1}\Sigma_{ZM},

gives :math:`P_{XY} = L_{M|Z}L_{M|Z}^\top` and, because the leading block of :math:`L_{ZZ}` is
the factor of :math:`\Sigma_{XX}`, :math:`P_X = \Sigma_{MM} - W_X^\top W_X` with :math:`W_X` the
first ``d_x`` rows of :math:`W`. Only :math:`P_Y` needs a second (smaller) factorisation, of
:math:`\Sigma_{YY}`. Cost :math:`\approx (d^3 + d_y^3)/3` flops. Every step is differentiable.

A matrix that is not numerically positive definite gives NaN instead of an error, with numpy as
with torch, for that batch item only (the backends' ``cholesky``, ``inv_quad`` and
``eigvalsh``); with torch nothing here reads a value back to the host (the factorisations'
LAPACK status stays on the device: reading it would synchronise a GPU with the host).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["logdet_pd", "posteriors", "permutation", "reorder"]


def logdet_pd(xp: Any, a: Any) -> Any:
    r""":math:`\log\det A` of a (batch of) positive definite matrix, via Cholesky."""
    return _logdet_factor(xp, xp.cholesky(a))


def _logdet_factor(xp: Any, low: Any) -> Any:
    return 2 * xp.sum(xp.log(xp.diagonal(low)), axis=-1)


def permutation(dims: tuple[int, int, int]) -> np.ndarray:
    """Index order ``(X, Y, M)`` of a covariance ordered ``(M, X, Y)``."""
    d_m, d_x, d_y = dims
    return np.r_[d_m:d_m + d_x + d_y, 0:d_m]


def reorder(xp: Any, cov: Any, dims: tuple[int, int, int]) -> Any:
    """``cov (..., d, d)`` ordered ``(M, X, Y)`` reordered ``(X, Y, M)`` (:func:`permutation`),
    by block concatenation: no index array is copied to the device."""
    d_m = dims[0]
    top = xp.concatenate([cov[..., d_m:, d_m:], cov[..., d_m:, :d_m]], axis=-1)
    bottom = xp.concatenate([cov[..., :d_m, d_m:], cov[..., :d_m, :d_m]], axis=-1)
    return xp.concatenate([top, bottom], axis=-2)


def _sym(xp: Any, a: Any) -> Any:
    return (a + xp.swapaxes(a, -1, -2)) / 2


def _posterior(xp: Any, c_ss: Any, c_sm: Any, c_mm: Any) -> Any:
    r""":math:`\Sigma_{MM} - \Sigma_{MS}\Sigma_{SS}^{-1}\Sigma_{SM}`
    (:meth:`~pidkit._backend.Backend.inv_quad`: a Cholesky factor of :math:`\Sigma_{SS}` and a
    triangular solve)."""
    return _sym(xp, c_mm - xp.inv_quad(c_ss, c_sm))


def posteriors(xp: Any, cov: Any, dims: tuple[int, int, int], z_map: Any = None,
               factor: Any = None) -> dict[str, Any]:
    """Posterior covariances and informations (nats) of a batch ``cov (B, d, d)`` ordered
    ``(X, Y, M)`` (:func:`permutation`).

    Parameters
    ----------
    z_map : ndarray ``(k, d_x + d_y)``, optional
        Maps the joint source to independent coordinates (sources sharing an exact linear
        component); then :math:`P_X` and :math:`P_{XY}` are computed separately.
    factor : ndarray ``(B, d, d)``, optional
        The Cholesky factor of ``cov`` when the caller already has it (numpy only; torch
        recomputes it so that autograd sees it).

    Returns
    -------
    dict with ``p_x``, ``p_y``, ``c_mm`` (``(B, d_m, d_m)``), ``i_x``, ``i_y``, ``i_xy``
    (``(B,)``).
    """
    _, d_x, d_y = dims
    d_z = d_x + d_y
    c_mm = cov[..., d_z:, d_z:]
    ld_m = logdet_pd(xp, c_mm)
    p_y = _posterior(xp, cov[..., d_x:d_z, d_x:d_z], cov[..., d_x:d_z, d_z:], c_mm)
    if z_map is None:
        low = xp.cholesky(cov) if factor is None else factor
        w_xt = low[..., d_z:, :d_x]
        p_x = _sym(xp, c_mm - w_xt @ xp.swapaxes(w_xt, -1, -2))
        ld_xy = _logdet_factor(xp, low[..., d_z:, d_z:])
    else:
        p_x = _posterior(xp, cov[..., :d_x, :d_x], cov[..., :d_x, d_z:], c_mm)
        zm = xp.asarray(z_map, like=cov)
        c_zz = zm @ cov[..., :d_z, :d_z] @ zm.T
        c_zm = zm @ cov[..., :d_z, d_z:]
        ld_xy = logdet_pd(xp, _posterior(xp, _sym(xp, c_zz), c_zm, c_mm))
    return {"p_x": p_x, "p_y": p_y, "c_mm": c_mm, "i_x": 0.5 * (ld_m - logdet_pd(xp, p_x)),
            "i_y": 0.5 * (ld_m - logdet_pd(xp, p_y)), "i_xy": 0.5 * (ld_m - ld_xy)}
