r"""Entropy, marginals and mutual information of a joint pmf with one axis per variable, in nats.

Shared by every discrete measure, and public for packages built on pidkit. ``0 log 0 = 0``
throughout: logarithms are taken only where the mass is positive. Each function checks that its
array holds finite, non-negative real numbers and that its axes exist (typed errors naming the
argument) and that the masses sum to 1 (divide an unnormalised array by its sum first). A pmf
may also be given as a mapping ``{outcome tuple: probability}``, key position ``k`` being axis
``k`` (:func:`~pidkit.validation.pmf_from_mapping`).
Divide by ``math.log(base)`` for other units.
The measures call the unchecked ``_entropy``, ``_marginal`` and ``_mutual_information`` on the
pmf that :func:`pidkit.pid` validated once (and solvers on their own iterates, which the
checks would reject or slow down).

The measures lay a pmf out as ``p[y, x0, ..., x_{n-1}]`` (target first) and index sets of
sources by bitmask: source ``i`` is bit ``i`` and axis ``i + 1`` (:func:`source_axes`).

Examples
--------
>>> import numpy as np
>>> from pidkit.information import entropy, marginal, mutual_information
>>> p = np.array([[0.5, 0.0], [0.0, 0.5]])      # two copies of a fair bit
>>> round(entropy(marginal(p, (0,))), 6), round(mutual_information(p, (0,), (1,)), 6)
(0.693147, 0.693147)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .validation import check_axis_list, check_int, check_pmf, fail

__all__ = ["entropy", "marginal", "mutual_information", "source_axes",
           "subset_mutual_information", "specific_information"]


def _probabilities(p: Any, name: str = "p") -> np.ndarray:
    r"""``p`` as a float64 pmf: finite, non-negative numbers summing to 1 (:func:`check_pmf`,
    any number of axes; typed errors otherwise). Entropies of an unnormalised array would be
    silently wrong: :math:`H(cq) = c H(q) - c \ln c`."""
    return check_pmf(p, name, min_axes=0,
                     sum_fix=f"Divide it by its sum first ({name} / {name}.sum()), or fix the pmf")


#: Most sources of :func:`subset_mutual_information` and :func:`specific_information`, which
#: loop over all ``2**n`` source sets (16 sources of two outcomes took 31 s, each further
#: two sources 16x more).
MAX_SUBSET_SOURCES = 12


def _laid_out(p: Any) -> np.ndarray:
    """A pmf ``p[y, x0, ...]`` (:func:`_probabilities`) with at least the target axis and at
    most :data:`MAX_SUBSET_SOURCES` sources (the subset functions' loop)."""
    arr = _probabilities(p)
    if arr.ndim < 1:
        raise fail("p", "needs a target axis and one axis per source, has 0 axes",
                   "Lay the pmf out as p[y, x0, x1, ...]")
    if arr.ndim - 1 > MAX_SUBSET_SOURCES:
        raise fail("p", f"has {arr.ndim - 1} sources; every one of their 2**{arr.ndim - 1} "
                   f"subsets would be evaluated (at most {MAX_SUBSET_SOURCES} sources)",
                   "Group axes into fewer composite sources (reshape p), or compute the "
                   "subsets you need with mutual_information(p, a, b)")
    return arr


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum()) + 0.0     # a point mass: 0.0, not -0.0


def _marginal(p: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    drop = tuple(ax for ax in range(p.ndim) if ax not in keep)
    return p.sum(axis=drop)


def _mutual_information(p: np.ndarray, a: Sequence[int], b: Sequence[int]) -> float:
    joint = tuple(sorted({*a, *b}))
    h_ab = _entropy(_marginal(p, joint))
    return max(_entropy(_marginal(p, tuple(a))) + _entropy(_marginal(p, tuple(b))) - h_ab, 0.0)


def entropy(p: np.ndarray) -> float:
    r""":math:`H(P) = -\sum_x p(x) \ln p(x)` in nats, of any array of probabilities.

    Parameters
    ----------
    p : ndarray or mapping
        Probabilities summing to 1, any shape (a joint pmf is taken as one variable), or a
        mapping ``{outcome tuple: probability}``; an unnormalised array is a
        :class:`~pidkit.errors.PIDValueError`.

    Returns
    -------
    float
        The entropy in nats.
    """
    return _entropy(_probabilities(p))


def marginal(p: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """Marginal over the axes in ``keep``, summing out the others.

    Parameters
    ----------
    p : ndarray or mapping
        Joint pmf, one axis per variable (a mapping ``{outcome tuple: probability}``: one axis
        per key position, its labels numbered as
        :func:`~pidkit.validation.pmf_from_mapping` numbers them).
    keep : sequence of int
        Axes to keep; the result has them in increasing order.

    Returns
    -------
    ndarray
        The marginal pmf, one axis per kept variable.
    """
    p = _probabilities(p)
    return _marginal(p, check_axis_list(keep, "keep", p.ndim))


def mutual_information(p: np.ndarray, a: Sequence[int], b: Sequence[int]) -> float:
    r""":math:`I(A;B) = H(A) + H(B) - H(A,B)` in nats between two groups of axes of ``p``.

    Parameters
    ----------
    p : ndarray or mapping
        Joint pmf, one axis per variable, or a mapping ``{outcome tuple: probability}`` (one
        axis per key position).
    a, b : sequence of int
        The axes that form :math:`A` and those that form :math:`B` (the other axes are
        summed out).

    Returns
    -------
    float
        The mutual information in nats, clipped at 0 (rounding can make it slightly negative).
    """
    p = _probabilities(p)
    return _mutual_information(p, check_axis_list(a, "a", p.ndim),
                               check_axis_list(b, "b", p.ndim))


def source_axes(mask: int) -> tuple[int, ...]:
    """Axes of ``p[y, x0, ...]`` holding the sources in bitmask ``mask`` (source i -> axis i+1)."""
    mask = check_int(mask, "mask", 0)
    return tuple(i + 1 for i in range(mask.bit_length()) if mask >> i & 1)


def subset_mutual_information(p: np.ndarray) -> np.ndarray:
    r""":math:`I(Y; X_A)` in nats for every set of sources ``A``, indexed by bitmask.

    ``p`` is laid out as ``p[y, x0, ...]``. Entry 0 (no sources) is 0.
    """
    p = _laid_out(p)
    n = p.ndim - 1
    out = np.zeros(1 << n)
    for mask in range(1, 1 << n):
        out[mask] = _mutual_information(p, (0,), source_axes(mask))
    return out


def specific_information(p: np.ndarray) -> np.ndarray:
    r"""Specific information :math:`I(Y=y; X_A)` in nats, shape ``(2**n, |Y|)``, by bitmask.

    .. math::

        I(Y=y; X_A) = \sum_{x} p(x \mid y) \left[\ln p(y, x) - \ln p(y) - \ln p(x)\right]

    (Williams and Beer 2010, eq. 2), evaluated in log space: the ratio
    :math:`p(y, x) / (p(y) p(x))` is never formed, since the product :math:`p(y) p(x)` underflows
    to 0 when both marginals are tiny (two cells of 1e-200), which would give ``inf - inf``.
    Only cells with :math:`p(y, x) > 0` contribute, and there every term is finite, down to
    subnormal masses. Rows for targets of zero probability are 0.
    """
    p = _laid_out(p)
    n = p.ndim - 1
    p_y = _marginal(p, (0,))
    out = np.zeros((1 << n, p.shape[0]))
    safe_y = np.where(p_y > 0, p_y, 1.0)
    log_y = np.log(safe_y)
    for mask in range(1, 1 << n):
        axes = source_axes(mask)
        p_yx = _marginal(p, (0, *axes)).reshape(p.shape[0], -1)
        p_x = p_yx.sum(axis=0)
        cells = p_yx > 0                      # there p(y) > 0 and p(x) > 0 as well
        log_x = np.log(np.where(p_x > 0, p_x, 1.0))
        log_ratio = np.log(np.where(cells, p_yx, 1.0)) - log_y[:, None] - log_x[None, :]
        # p(x | y) = p(y, x) / p(y) <= 1 is formed directly: no product of small numbers.
        conditional = np.where(cells, p_yx / safe_y[:, None], 0.0)
        out[mask] = (conditional * np.where(cells, log_ratio, 0.0)).sum(axis=1)
    return out
