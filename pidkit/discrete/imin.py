r"""Williams-Beer :math:`I_{\min}` redundancy, for any number of sources.

.. math::

    I_{\min}(Y; A_1, \dots, A_k) = \sum_y p(y) \min_i I(Y = y; X_{A_i}),
    \qquad
    I(Y = y; X_A) = \sum_{x} p(x \mid y) \log \frac{p(y \mid x)}{p(y)},

the expected minimum *specific information* the collections :math:`A_i` carry about each target
value. It is the original measure of the partial information lattice; it is non-negative on
every atom, but counts "the same amount" of information about an outcome as redundant even when
the sources carry different information (e.g. it gives 1 bit of redundancy on the two-bit copy).

References
----------
P. L. Williams, R. D. Beer, "Nonnegative Decomposition of Multivariate Information",
arXiv:1004.2515 (2010), eqs. 2-3.
"""

from __future__ import annotations

import numpy as np

from ..information import _marginal, specific_information
from ..lattice import lattice
from ..result import SolverInfo
from .registry import lattice_redundancy_min, register_measure

__all__ = ["imin"]


@register_measure("imin", reference="Williams & Beer 2010, arXiv:1004.2515",
                  summary="Williams-Beer I_min, expected minimum specific information; "
                          "any number of sources")
def imin(p: np.ndarray):
    r""":math:`I_{\min}` atoms (nats) of ``p[y, x0, ..., x_{n-1}]`` for every lattice node.

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

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((2, 2, 2)); p[0, 0, 0] = p[1, 1, 1] = 0.5   # RDN gate
    >>> atoms, _ = imin(p)
    >>> round(float(atoms[((0,), (1,))] / np.log(2)), 12)
    1.0
    """
    lat = lattice(p.ndim - 1)
    p_y = _marginal(p, (0,))
    # specific information for every node member, minimum over members, then E_y.
    per_target = lattice_redundancy_min(specific_information(p), lat.member_masks)
    return lat.moebius(per_target @ p_y), SolverInfo("closed_form")
