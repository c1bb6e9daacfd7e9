r"""What the pointwise measures (:math:`I_{\mathrm{sx}}`, :math:`I_\pm`) share: the probabilities
of every set of sources at every outcome, and the averaging of an informative and a
misinformative pointwise redundancy into atoms.

A pointwise measure gives, for every outcome :math:`(y, x)` of the support and every lattice node
:math:`\alpha`, an informative part :math:`i^+(x; \alpha)` and a misinformative part
:math:`i^-(y, x; \alpha)`; its redundancy is
:math:`I_\cap(\alpha) = \sum_{y, x} p(y, x)\,[i^+ - i^-]`. Moebius inversion is linear, so the
atoms of the averaged redundancy are the averages of the pointwise atoms, and the averaged
informative and misinformative redundancies invert to the informative and misinformative atoms
(Finn and Lizier 2018; Makkeh, Gutknecht and Wibral 2021).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..information import _marginal, source_axes
from ..lattice import Lattice, lattice
from ..result import AtomMap, SolverInfo

__all__ = ["OutcomeMarginals", "outcome_marginals", "pointwise_decomposition", "up_sets"]

#: Largest (nodes x outcomes) array of float64 built at once (32 MiB): 5 sources (7,579 nodes)
#: take 553 outcomes at a time, 4 sources 25,266.
MAX_BLOCK = 1 << 22


@dataclass(frozen=True)
class OutcomeMarginals:
    r"""Marginal probabilities at the outcomes of the support of ``p[y, x0, ...]``.

    Attributes
    ----------
    weight : ndarray, shape (m,)
        :math:`p(y, x)` of each of the ``m`` outcomes with positive mass.
    sources : ndarray, shape (m, 2**n)
        ``sources[o, B]`` is :math:`p(x_B)`, the probability that the sources in bitmask ``B``
        take their values at outcome ``o`` (column 0: the empty set, probability 1).
    joint : ndarray, shape (m, 2**n)
        ``joint[o, B]`` is :math:`p(y, x_B)` (column 0: :math:`p(y)`).
    """

    weight: np.ndarray
    sources: np.ndarray
    joint: np.ndarray

    def chunks(self, size: int) -> list[OutcomeMarginals]:
        """The outcomes in consecutive groups of at most ``size``."""
        return [OutcomeMarginals(self.weight[s:s + size], self.sources[s:s + size],
                                 self.joint[s:s + size])
                for s in range(0, len(self.weight), size)]


def outcome_marginals(p: np.ndarray) -> OutcomeMarginals:
    """:class:`OutcomeMarginals` of ``p[y, x0, ..., x_{n-1}]`` (one marginal per source set)."""
    n = p.ndim - 1
    coords = np.nonzero(p)
    sources = np.ones((len(coords[0]), 1 << n))
    joint = np.empty_like(sources)
    for mask in range(1 << n):
        axes = source_axes(mask)
        joint[:, mask] = _marginal(p, (0, *axes))[tuple(coords[a] for a in (0, *axes))]
        if mask:
            sources[:, mask] = _marginal(p, axes)[tuple(coords[a] for a in axes)]
    return OutcomeMarginals(p[coords], sources, joint)


@functools.cache
def up_sets(n_sources: int) -> np.ndarray:
    """``up[a, D]``: whether the source set of bitmask ``D`` contains a member of node ``a``
    (the up-set of the node in the Boolean lattice of source sets), shape (nodes, 2**n), float
    0/1 for products."""
    masks = lattice(n_sources).member_masks[:, :, None]
    subsets = np.arange(1 << n_sources)
    up = ((masks & subsets) == masks).any(axis=1).astype(np.float64)
    up.flags.writeable = False
    return up


Pointwise = Callable[[Lattice, OutcomeMarginals], tuple[np.ndarray, np.ndarray]]


def pointwise_decomposition(p: np.ndarray, pointwise: Pointwise):
    """Atoms and informative / misinformative parts (nats) of a pointwise measure.

    Parameters
    ----------
    p : ndarray
        Normalised pmf ``p[y, x0, ..., x_{n-1}]``.
    pointwise : callable
        ``pointwise(lattice, marginals) -> (plus, minus)``, each of shape (nodes, outcomes):
        the informative and misinformative pointwise redundancy of every node at every outcome
        of ``marginals`` (a chunk of the support, at most :data:`MAX_BLOCK` / nodes outcomes).

    Returns
    -------
    atoms : dict
        Node -> atom in nats.
    info : SolverInfo
        ``closed_form``, with ``parts["informative"]`` and ``parts["misinformative"]``.
    """
    lat = lattice(p.ndim - 1)
    plus_sum = np.zeros(len(lat))
    minus_sum = np.zeros(len(lat))
    red = np.zeros(len(lat))
    size = max(1, MAX_BLOCK // len(lat))
    for chunk in outcome_marginals(p).chunks(size):
        plus, minus = pointwise(lat, chunk)
        plus_sum += plus @ chunk.weight
        minus_sum += minus @ chunk.weight
        red += (plus - minus) @ chunk.weight
    parts = {"informative": AtomMap(lat.moebius(plus_sum)),
             "misinformative": AtomMap(lat.moebius(minus_sum))}
    return lat.moebius(red), SolverInfo("closed_form", parts=parts)
