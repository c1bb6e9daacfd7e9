r"""Entropies and mutual informations of a pmf laid out as ``p[y, x0, ..., x_{n-1}]``, in nats.

Shared by every discrete measure. ``0 log 0 = 0`` throughout: logarithms are taken only where
the mass is positive.
"""

from __future__ import annotations

import numpy as np


def entropy(p: np.ndarray) -> float:
    r""":math:`H(P) = -\sum_x p(x) \ln p(x)` in nats, of any array of probabilities."""
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def marginal(p: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """Marginal over the axes in ``keep`` (in increasing order), summing out the others."""
    drop = tuple(ax for ax in range(p.ndim) if ax not in keep)
    return p.sum(axis=drop)


def source_axes(mask: int) -> tuple[int, ...]:
    """Axes of ``p[y, x0, ...]`` holding the sources in bitmask ``mask`` (source i -> axis i+1)."""
    return tuple(i + 1 for i in range(mask.bit_length()) if mask >> i & 1)


def subset_mutual_information(p: np.ndarray) -> np.ndarray:
    r""":math:`I(Y; X_A)` in nats for every set of sources ``A``, indexed by bitmask.

    Entry 0 (no sources) is 0. Uses :math:`I(Y;X_A) = H(Y) + H(X_A) - H(Y, X_A)`.
    """
    n = p.ndim - 1
    h_y = entropy(marginal(p, (0,)))
    out = np.zeros(1 << n)
    for mask in range(1, 1 << n):
        axes = source_axes(mask)
        out[mask] = h_y + entropy(marginal(p, axes)) - entropy(marginal(p, (0, *axes)))
    return np.maximum(out, 0.0)


def specific_information(p: np.ndarray) -> np.ndarray:
    r"""Specific information :math:`I(Y=y; X_A)` in nats, shape ``(2**n, |Y|)``, by bitmask.

    .. math::

        I(Y=y; X_A) = \sum_{x} p(x \mid y) \ln \frac{p(y \mid x)}{p(y)}

    (Williams and Beer 2010, eq. 2). Rows for targets of zero probability are 0.
    """
    n = p.ndim - 1
    p_y = marginal(p, (0,))
    out = np.zeros((1 << n, p.shape[0]))
    for mask in range(1, 1 << n):
        axes = source_axes(mask)
        p_yx = marginal(p, (0, *axes)).reshape(p.shape[0], -1)
        p_x = p_yx.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(p_yx > 0, p_yx / (p_y[:, None] * p_x[None, :]), 1.0)
            terms = np.where(p_yx > 0, p_yx * np.log(ratio), 0.0).sum(axis=1)
            out[mask] = np.where(p_y > 0, terms / np.where(p_y > 0, p_y, 1.0), 0.0)
    return out
