r"""Gaussian mutual informations and the broadcast-channel form, for numpy or torch.

With the target whitened, :math:`\Sigma_{MM} = L_M L_M^\top`, each source is a Gaussian channel

.. math::

    \tilde X = L_{X|M}^{-1} X = H_X \tilde M + N_X, \qquad
    H_X = L_{X|M}^{-1} \Sigma_{XM} L_M^{-\top}, \qquad N_X \sim \mathcal N(0, I),

where :math:`L_{X|M}` is the Cholesky factor of :math:`\Sigma_{X|M} = \Sigma_{XX} -
\Sigma_{XM}\Sigma_{MM}^{-1}\Sigma_{MX}`. Both factors come from one Cholesky factorisation of the
``(M, X)`` block. Then :math:`I(M; X) = \tfrac12 \log\det(I + H_X^\top H_X)` (matrix
determinant lemma), and likewise for :math:`Y` and for the joint source :math:`(X, Y)`.
Everything here is differentiable (Cholesky and triangular solves only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

__all__ = ["cholesky", "logdet_pd", "channel", "channels"]


def cholesky(xp: Any, a: Any) -> Any:
    """Lower Cholesky factor of a (batch of) symmetric positive definite matrix."""
    if xp.name == "torch":
        return xp._lib.linalg.cholesky(a)
    return np.linalg.cholesky(a)


def _trisolve(xp: Any, lower: Any, b: Any) -> Any:
    """``lower^{-1} b`` for a lower-triangular ``lower``."""
    if xp.name == "torch":
        return xp._lib.linalg.solve_triangular(lower, b, upper=False)
    if lower.ndim == 2:
        return sla.solve_triangular(lower, b, lower=True, check_finite=False)
    if lower.shape[0] <= 4:  # large matrices: LAPACK's triangular solve, one at a time
        return np.stack([sla.solve_triangular(a, c, lower=True, check_finite=False)
                         for a, c in zip(lower, b, strict=True)])
    return np.linalg.solve(lower, b)


def _diagonal(xp: Any, a: Any) -> Any:
    if xp.name == "torch":
        return a.diagonal(dim1=-2, dim2=-1)
    return np.diagonal(a, axis1=-2, axis2=-1)


def logdet_pd(xp: Any, a: Any) -> Any:
    r""":math:`\log\det A` of a (batch of) positive definite matrix, via Cholesky."""
    return 2 * xp.sum(xp.log(_diagonal(xp, cholesky(xp, a))), axis=-1)


def channel(xp: Any, block: Any, d_m: int) -> tuple[Any, Any]:
    r"""``(H, I)`` for the covariance ``block`` of ``(M, S)``: the whitened channel
    :math:`H_S` ``(d_s, d_m)`` and :math:`I(M; S)` in nats."""
    low = cholesky(xp, block)
    h = _trisolve(xp, low[..., d_m:, d_m:], low[..., d_m:, :d_m])
    gram = xp.swapaxes(h, -1, -2) @ h
    eye = xp.eye(d_m, like=gram)
    return h, 0.5 * logdet_pd(xp, eye + gram)


def _take(xp: Any, cov: Any, idx: np.ndarray) -> Any:
    if xp.name == "torch":
        t = xp._lib.as_tensor(idx, device=cov.device)
        return cov.index_select(-2, t).index_select(-1, t)
    return cov[..., idx[:, None], idx[None, :]]


def channels(xp: Any, cov: Any, dims: tuple[int, int, int], z_map: Any = None) -> dict[str, Any]:
    """Whitened channels and mutual informations (nats) of a prepared covariance ``(d, d)``.

    Returns a dict with ``h_x``, ``h_y`` (channels), ``i_x``, ``i_y``, ``i_xy``.
    ``z_map`` (``(k, d_x + d_y)``), when given, maps the joint source to independent
    coordinates before :math:`I(M; X, Y)` is computed.
    """
    d_m, d_x, d_y = dims
    d = d_m + d_x + d_y
    h_x, i_x = channel(xp, cov[..., : d_m + d_x, : d_m + d_x], d_m)
    idx_y = np.r_[0:d_m, d_m + d_x:d]
    h_y, i_y = channel(xp, _take(xp, cov, idx_y), d_m)
    if z_map is None:
        _, i_xy = channel(xp, cov, d_m)
    else:
        zm = xp.asarray(z_map, like=cov)
        c_mz = cov[..., :d_m, d_m:] @ zm.T
        c_zz = zm @ cov[..., d_m:, d_m:] @ zm.T
        top = xp._lib.cat([cov[..., :d_m, :d_m], c_mz], -1) if xp.name == "torch" else \
            np.concatenate([cov[..., :d_m, :d_m], c_mz], -1)
        bottom_parts = [xp.swapaxes(c_mz, -1, -2), (c_zz + xp.swapaxes(c_zz, -1, -2)) / 2]
        bottom = xp._lib.cat(bottom_parts, -1) if xp.name == "torch" else \
            np.concatenate(bottom_parts, -1)
        joint = xp._lib.cat([top, bottom], -2) if xp.name == "torch" else \
            np.concatenate([top, bottom], -2)
        _, i_xy = channel(xp, joint, d_m)
    return {"h_x": h_x, "h_y": h_y, "i_x": i_x, "i_y": i_y, "i_xy": i_xy}
