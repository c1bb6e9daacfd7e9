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

Computation: the graphs of many nodes are laid side by side as the disjoint blocks of one
graph, so a single call to :func:`scipy.sparse.csgraph.connected_components` finds the meets of
all of them, and one ``bincount`` gives every :math:`p(y, w)`. Each collection's values are
coded by the distinct values that occur in the support, so a block has at most
:math:`k\, m` vertices and :math:`(k - 1)\, m` edges for :math:`k` collections and :math:`m`
source outcomes in the support; blocks are sized to keep arrays near 16 MiB.

References
----------
V. Griffith, E. K. P. Chong, R. G. James, C. J. Ellison, J. P. Crutchfield, "Intersection
information based on common randomness", Entropy 16(4), 1985-2000 (2014).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..lattice import lattice
from ..result import SolverInfo
from .registry import register_measure

__all__ = ["wedge"]

#: Largest (nodes x members x outcomes) block of vertex indices built at once.
MAX_BLOCK = 1 << 21


def _value_codes(support: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """For every source bitmask ``B`` (rows), the value of :math:`X_B` at each support outcome,
    coded ``0 .. k_B - 1`` by the values that occur, and the number ``k_B`` of such values.

    ``support`` holds the source coordinates of the ``m`` outcomes, shape (m, n).
    """
    n = len(shape)
    codes = np.zeros((1 << n, len(support)), dtype=np.int64)
    counts = np.ones(1 << n, dtype=np.int64)
    for mask in range(1, 1 << n):
        axes = [i for i in range(n) if mask >> i & 1]
        flat = np.ravel_multi_index(tuple(support[:, axes].T), tuple(shape[a] for a in axes))
        values, codes[mask] = np.unique(flat, return_inverse=True)
        counts[mask] = len(values)
    return codes, counts


def _meet_information(masks: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                      p_yx: np.ndarray) -> np.ndarray:
    """:math:`I(Y; \\wedge_i X_{A_i})` in nats for a block of nodes given by their member masks
    (rows of ``masks``, padded by repeating a member), with ``p_yx[y, o]`` the joint mass of
    target value ``y`` and support outcome ``o``."""
    n_nodes, width = masks.shape
    n_y, m = p_yx.shape
    sizes = counts[masks]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).reshape(sizes.shape)
    vertex = first[:, :, None] + codes[masks]                     # (nodes, members, outcomes)
    rows = np.broadcast_to(vertex[:, :1], (n_nodes, width - 1, m)).ravel()
    graph = sp.csr_matrix((np.ones(rows.size), (rows, vertex[:, 1:].ravel())),
                          shape=(sizes.sum(),) * 2)
    _, component = connected_components(graph, directed=False)
    # the meet's value at each outcome of each node, numbered 0 .. n_w - 1 across the block
    w = np.unique(component[vertex[:, 0]], return_inverse=True)[1].reshape(n_nodes, m)
    n_w = int(w.max()) + 1
    cells = w[:, None, :] * n_y + np.arange(n_y)[None, :, None]
    joint = np.bincount(cells.ravel(), weights=np.broadcast_to(p_yx, cells.shape).ravel(),
                        minlength=n_w * n_y).reshape(n_w, n_y)
    p_w = joint.sum(axis=1, keepdims=True)
    p_y = p_yx.sum(axis=1)
    positive = joint > 0
    terms = np.zeros_like(joint)
    terms[positive] = joint[positive] * (np.log(joint[positive])
                                         - np.log(np.broadcast_to(p_w, joint.shape)[positive])
                                         - np.log(np.broadcast_to(p_y, joint.shape)[positive]))
    node_of = np.empty(n_w, dtype=np.int64)
    node_of[w] = np.arange(n_nodes)[:, None]
    return np.bincount(node_of, weights=terms.sum(axis=1), minlength=n_nodes)


@register_measure("wedge", reference="Griffith, Chong, James, Ellison & Crutchfield 2014, "
                                     "Entropy 16(4), 1985",
                  summary="I_wedge, information in the Gacs-Koerner common variable (meet) of "
                          "the sources; any number of sources")
def wedge(p: np.ndarray):
    r""":math:`I_\wedge` atoms (nats) of ``p[y, x0, ..., x_{n-1}]`` for every lattice node.

    .. math::

        I_\wedge(Y; A_1, \dots, A_k) = I(Y; X_{A_1} \wedge \dots \wedge X_{A_k}),

    the meet computed exactly from the connected components of the support graph.

    Properties: symmetric; self-redundant, :math:`I_\wedge(Y; A) = I(Y; X_A)`; monotone
    (Griffith et al. 2014; also along the lattice order, :math:`\alpha \preceq \beta
    \Rightarrow I_\wedge(\alpha) \le I_\wedge(\beta)`, since the meet of :math:`\alpha` is
    then a function of the meet of :math:`\beta`); non-negative redundancy bounded by MMI,
    :math:`I_\wedge \le \min_i I(Y; X_{A_i})`. The meet depends on ``p`` only through its
    support, so the measure is discontinuous in ``p`` (an outcome of tiny mass can join two
    components), and it vanishes for collections of disjoint sources whose joint pmf has full
    support. The synergy can be negative, with two sources too, and the identity property
    fails (correlated inputs with full support have no common variable).

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
    p_x = p.sum(axis=0)
    support = np.argwhere(p_x > 0)
    codes, counts = _value_codes(support, p_x.shape)
    p_yx = p[(slice(None), *support.T)]
    masks = lat.member_masks
    block = max(1, MAX_BLOCK // (len(support) * max(masks.shape[1], p.shape[0])))
    red = np.concatenate([_meet_information(masks[s:s + block], codes, counts, p_yx)
                          for s in range(0, len(lat), block)])
    return lat.moebius(red), SolverInfo("closed_form")
