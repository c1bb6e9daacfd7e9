r"""Griffith et al.'s :math:`I_\wedge`: the information the Gacs-Koerner common random variable of
the sources carries about the target, for any number of sources.

For a lattice node :math:`\alpha = \{A_1, \dots, A_k\}`, the *meet*
:math:`X_{A_1} \wedge \dots \wedge X_{A_k}` is the finest random variable that is a function of
every :math:`X_{A_i}` (the Gacs-Koerner common information of the collections). Draw the
support as a graph: one vertex per value :math:`x_{A_i}` of each collection, and the values of
one outcome joined. The meet is the connected component of an outcome's vertices; it is exact,
computed from the support alone, and

.. math::

    I_\wedge(Y; A_1, \dots, A_k) = I(Y; X_{A_1} \wedge \dots \wedge X_{A_k}) .

A single collection is its own meet, so :math:`I_\wedge(Y; A) = I(Y; X_A)`.

References
----------
V. Griffith, E. K. P. Chong, R. G. James, C. J. Ellison, J. P. Crutchfield, "Intersection
information based on common randomness", Entropy 16(4), 1985-2000 (2014).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..information import marginal, mutual_information, source_axes
from ..lattice import Node, lattice
from ..result import SolverInfo
from .registry import register_measure

__all__ = ["meet", "wedge"]


def meet(values: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """Gacs-Koerner common variable of several variables observed on the same outcomes.

    Parameters
    ----------
    values : list of ndarray of int, each of shape (m,)
        The value of each variable at each of the ``m`` outcomes of the support.
    sizes : list of int
        The number of values of each variable.

    Returns
    -------
    ndarray of int, shape (m,)
        The meet's value (a connected component of the support graph) at each outcome.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])   # outcomes (a, b)
    >>> meet([a, b], [3, 3]).tolist()
    [0, 0, 0, 1]
    """
    if len(values) == 1:
        return np.unique(values[0], return_inverse=True)[1]
    offsets = np.cumsum([0, *sizes])
    rows = np.concatenate([values[0]] * (len(values) - 1)).astype(np.int64)
    cols = np.concatenate([v + off for v, off in zip(values[1:], offsets[1:-1], strict=True)])
    edges = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(offsets[-1],) * 2)
    _, component = connected_components(edges, directed=False)
    _, labels = np.unique(component[values[0]], return_inverse=True)
    return labels


def _meet_information(local: np.ndarray, members: list[tuple[int, ...]]) -> float:
    """:math:`I(Y; \\wedge_i X_{A_i})` in nats for ``local[y, x_u...]`` (the sources of the
    node's union, in increasing order), ``members`` given as local axis positions (1-based)."""
    p_yx = local.reshape(local.shape[0], -1)
    support = np.flatnonzero(p_yx.sum(axis=0) > 0)
    coords = np.unravel_index(support, local.shape[1:])
    values, sizes = [], []
    for axes in members:
        shape = tuple(local.shape[a] for a in axes)
        values.append(np.ravel_multi_index(tuple(coords[a - 1] for a in axes), shape))
        sizes.append(int(np.prod(shape)))
    w = meet(values, sizes)
    n_w = int(w.max()) + 1
    cells = (np.arange(local.shape[0])[:, None] * n_w + w).ravel()
    p_yw = np.bincount(cells, weights=p_yx[:, support].ravel(), minlength=local.shape[0] * n_w)
    return mutual_information(p_yw.reshape(local.shape[0], n_w), (0,), (1,))


def _node_redundancy(p: np.ndarray, node: Node, cache: dict[int, np.ndarray]) -> float:
    union = 0
    for part in node:
        union |= sum(1 << s for s in part)
    if union not in cache:
        cache[union] = marginal(p, (0, *source_axes(union)))
    position = {s: i + 1 for i, s in enumerate(a - 1 for a in source_axes(union))}
    return _meet_information(cache[union], [tuple(position[s] for s in part) for part in node])


@register_measure("wedge", reference="Griffith, Chong, James, Ellison & Crutchfield 2014, "
                                     "Entropy 16(4), 1985",
                  summary="I_wedge, information in the Gacs-Koerner common variable (meet) of "
                          "the sources; any number of sources")
def wedge(p: np.ndarray):
    r""":math:`I_\wedge` atoms (nats) of ``p[y, x0, ..., x_{n-1}]`` for every lattice node.

    .. math::

        I_\wedge(Y; A_1, \dots, A_k) = I(Y; X_{A_1} \wedge \dots \wedge X_{A_k}),

    the meet computed exactly from the connected components of the support graph
    (:func:`meet`).

    Properties (Griffith et al. 2014): symmetric; self-redundant,
    :math:`I_\wedge(Y; A) = I(Y; X_A)`; monotone (a coarser meet for more collections, and
    :math:`\alpha \preceq \beta \Rightarrow I_\wedge(\alpha) \le I_\wedge(\beta)` on the
    lattice); non-negative redundancy bounded by MMI, :math:`I_\wedge \le \min_i I(Y; X_{A_i})`.
    It depends on the support only through which outcomes are possible, so it is discontinuous
    in ``p`` (an outcome of tiny mass can join two components), and it is zero whenever the
    sources have full joint support. Three-source atoms can be negative and the identity
    property fails (correlated inputs with full support have no common variable).

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, ..., |X_{n-1}|)
        Normalised joint pmf, target on axis 0.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats.
    info : SolverInfo
        ``closed_form``.

    References
    ----------
    V. Griffith, E. K. P. Chong, R. G. James, C. J. Ellison, J. P. Crutchfield, "Intersection
    information based on common randomness", Entropy 16(4), 1985-2000 (2014).

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("RDNXOR"), measure="wedge")
    >>> round(r.redundancy, 9), round(r.synergy, 9)
    (1.0, 1.0)
    """
    lat = lattice(p.ndim - 1)
    cache: dict[int, np.ndarray] = {}
    red = np.array([_node_redundancy(p, node, cache) for node in lat.nodes])
    return lat.moebius(red), SolverInfo("closed_form")
