r"""Shared-exclusion redundancy :math:`I^{\mathrm{sx}}_\cap` of Makkeh, Gutknecht and Wibral
(2021), for any number of sources.

For an outcome :math:`(y, x)` and a lattice node :math:`\alpha = \{A_1, \dots, A_k\}`, let
:math:`\mathfrak{a}_i` be the event :math:`X_{A_i} = x_{A_i}` and
:math:`\mathfrak{U} = \mathfrak{a}_1 \cup \dots \cup \mathfrak{a}_k` ("at least one collection
takes its observed value"). The pointwise shared information is

.. math::

    i^{\mathrm{sx}}_\cap(y; \alpha)
    = \log \frac{P(\mathfrak{U} \cap \{Y = y\})}{P(\mathfrak{U})\, p(y)}
    = \underbrace{-\log P(\mathfrak{U})}_{i^{\mathrm{sx}+}}
    - \underbrace{\left[-\log P(\mathfrak{U} \mid Y = y)\right]}_{i^{\mathrm{sx}-}},

and :math:`I^{\mathrm{sx}}_\cap(Y; \alpha) = \sum_{y, x} p(y, x)\, i^{\mathrm{sx}}_\cap(y; \alpha)`.

Computation: the probability of the union is a sum over the sets :math:`D` of sources that
agree with :math:`x`. With :math:`e_x(D)` the probability that the sources agreeing with
:math:`x` are exactly :math:`D`, :math:`P(\mathfrak{U}) = \sum_{D \in \mathrm{up}(\alpha)}
e_x(D)`, where :math:`\mathrm{up}(\alpha)` holds the sets containing a member of :math:`\alpha`.
:math:`e_x` is the Moebius transform over supersets of the marginals :math:`p(x_B)` (one
butterfly pass per source), so every node at every outcome costs one matrix product with the
lattice's up-set matrix: :math:`O(m\, 2^n)` marginals and :math:`O(m\, 2^n\, |\text{lattice}|)`
flops for :math:`m` outcomes in the support. Each partial sum of the transform is bounded by the
largest marginal in it, itself at most :math:`P(\mathfrak{U})`, so the result is accurate to a
few units of rounding relative to :math:`P(\mathfrak{U})`.

References
----------
A. Makkeh, A. J. Gutknecht, M. Wibral, "Introducing a differentiable measure of pointwise shared
information", Phys. Rev. E 103, 032149 (2021).
"""

from __future__ import annotations

import numpy as np

from ..lattice import Lattice
from ._pointwise import OutcomeMarginals, pointwise_decomposition, up_sets
from .registry import register_measure

__all__ = ["exact_agreement", "sx"]


def exact_agreement(marginals: np.ndarray) -> np.ndarray:
    r"""Moebius transform over supersets along the last axis (length :math:`2^n`).

    ``marginals[..., B]`` is :math:`P(X_B = x_B)`; the result ``e[..., D]`` is
    :math:`\sum_{B \supseteq D} (-1)^{|B \setminus D|} P(X_B = x_B)`, the probability that the
    sources agreeing with :math:`x` are exactly those in :math:`D`.
    """
    n = marginals.shape[-1].bit_length() - 1
    e = marginals.reshape(*marginals.shape[:-1], *(2,) * n).copy()
    lead = (slice(None),) * (marginals.ndim - 1)
    for bit in range(n):
        keep = (slice(None),) * bit
        e[(*lead, *keep, 0)] -= e[(*lead, *keep, 1)]
    return e.reshape(marginals.shape)


def _pointwise_sx(lat: Lattice, m: OutcomeMarginals) -> tuple[np.ndarray, np.ndarray]:
    """:math:`i^{sx+}` and :math:`i^{sx-}` of every node (rows) at every outcome (columns)."""
    up = up_sets(lat.n_sources)
    union = up @ exact_agreement(m.sources).T                 # P(U)
    union_with_y = up @ exact_agreement(m.joint).T            # P(U and Y = y)
    p_y = m.joint[:, 0]
    return -np.log(union), np.log(p_y) - np.log(union_with_y)


@register_measure("sx", reference="Makkeh, Gutknecht & Wibral 2021, Phys. Rev. E 103, 032149",
                  summary="shared-exclusion I_sx, pointwise, with informative and "
                          "misinformative parts; any number of sources")
def sx(p: np.ndarray):
    r""":math:`I^{\mathrm{sx}}_\cap` atoms (nats) of ``p[y, x0, ..., x_{n-1}]`` for every node.

    .. math::

        I^{\mathrm{sx}}_\cap(Y; A_1, \dots, A_k) = \sum_{y, x} p(y, x)
        \log \frac{P(\mathfrak{a}_1 \cup \dots \cup \mathfrak{a}_k \mid Y = y)}
        {P(\mathfrak{a}_1 \cup \dots \cup \mathfrak{a}_k)},
        \qquad \mathfrak{a}_i = \{X_{A_i} = x_{A_i}\}.

    Properties (Makkeh, Gutknecht and Wibral 2021): symmetric in the collections;
    self-redundant, :math:`I^{\mathrm{sx}}_\cap(Y; A) = I(Y; X_A)`, so the atoms sum to
    :math:`I(Y; X_0, \dots, X_{n-1})`; pointwise and differentiable in ``p``; the informative
    atoms (from :math:`i^{\mathrm{sx}+}`) and misinformative atoms (from
    :math:`i^{\mathrm{sx}-}`) are reported as parts. Atoms can be negative (XOR: redundancy
    :math:`\log_2 (2/3) = -0.585` bits) and the identity property fails (two-bit copy: 0.415 bits
    of redundancy between independent sources).

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, ..., |X_{n-1}|)
        Normalised joint pmf, target on axis 0.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats.
    info : SolverInfo
        ``closed_form``; ``parts["informative"]`` and ``parts["misinformative"]`` (nats).

    References
    ----------
    A. Makkeh, A. J. Gutknecht, M. Wibral, "Introducing a differentiable measure of pointwise
    shared information", Phys. Rev. E 103, 032149 (2021).

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("XOR"), measure="sx")
    >>> round(r.redundancy, 6), round(r.unique[0], 6), round(r.synergy, 6)
    (-0.584963, 0.584963, 0.415037)
    >>> parts = r.solver.parts
    >>> round(parts["informative"]["{0}{1}"] - parts["misinformative"]["{0}{1}"], 6)
    -0.584963
    """
    return pointwise_decomposition(p, _pointwise_sx)
