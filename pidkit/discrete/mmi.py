r"""Minimum mutual information (MMI) redundancy.

.. math::

    I_\cap^{\mathrm{MMI}}(Y; A_1, \dots, A_k) = \min_i I(Y; X_{A_i})

For jointly Gaussian variables with a scalar target it equals the BROJA redundancy (Barrett
2015); for discrete variables it is a simple upper bound on most other measures.

References
----------
A. B. Barrett, "Exploration of synergistic and redundant information sharing in static and
dynamical Gaussian systems", Phys. Rev. E 91, 052802 (2015).
"""

from __future__ import annotations

import numpy as np

from ..information import subset_mutual_information
from ..lattice import lattice
from ..result import SolverInfo
from .registry import lattice_redundancy_min, register_measure


@register_measure("mmi", reference="Barrett 2015, Phys. Rev. E 91, 052802",
                  summary="minimum mutual information, min_i I(Y;A_i); any number of sources")
def mmi(p: np.ndarray):
    """MMI atoms (nats) of ``p[y, x0, ...]`` for every node of the lattice."""
    lat = lattice(p.ndim - 1)
    red = lattice_redundancy_min(subset_mutual_information(p), lat.member_masks)
    return lat.moebius(red), SolverInfo("closed_form")
