r"""Ince's :math:`I_{\mathrm{ccs}}`: pointwise common change in surprisal, any number of sources.

For a lattice node with members :math:`A_1, \dots, A_k` (collections of sources, written
:math:`S_i = X_{A_i}`):

1. :math:`\hat q` is the maximum-entropy pmf of :math:`(S_1, \dots, S_k, Y)` that keeps the joint
   pmf of the sources, :math:`p(s_1, \dots, s_k)`, and every source-target pair
   :math:`p(s_i, y)`.
2. The local co-information of an outcome under :math:`\hat q` is

   .. math::

       c(s_1, \dots, s_k, y) = \sum_{\emptyset \ne T \subseteq \{S_1, \dots, S_k, Y\}}
       (-1)^{|T|} \log \hat q(t),

   (for two variables the pointwise mutual information, for three the pointwise co-information
   :math:`i(s_1; y) - i(s_1; y \mid s_2)`).
3. Only outcomes whose co-information has the same sign as every local mutual information
   :math:`i(s_i; y)` and as the joint one :math:`i(s_1, \dots, s_k; y)` count as redundant:

   .. math::

       I_{\mathrm{ccs}}(Y; A_1, \dots, A_k) = \sum_{e\,:\,\mathrm{sgn}\,c(e) = \mathrm{sgn}\,
       i(s_i; y)\ \forall i,\ \mathrm{sgn}\,c(e) = \mathrm{sgn}\,i(s_1..s_k; y)}
       \hat q(e)\, c(e).

This is Ince's definition for two sources and, for more sources, the same generalisation as
``dit.pid.PID_CCS`` (dit 2.3): same constrained marginals, same sign rule, and local terms within
``1e-8`` bits of zero treated as exactly zero before signs are compared. For a single member the
measure reduces to :math:`I(Y; X_A)`.

Members may share sources (``{0:1}{1:2}``); the maximum-entropy pmf of the coalesced variables is
then the one over the union of their sources, since keeping :math:`p(s_1, \dots, s_k)` keeps the
overlaps consistent.

References
----------
R. A. A. Ince, "Measuring multivariate redundant information with pointwise common change in
surprisal", Entropy 19(7), 318 (2017).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from ..errors import ConvergenceWarning, caller_stacklevel
from ..information import _marginal, source_axes
from ..lattice import lattice
from ..result import SolverInfo
from ._certified import check_solver_options
from ._maxent import MaxEntProblem, solve_maxent
from .registry import register_measure

__all__ = ["ccs"]

#: Local terms smaller than this (in nats; 1e-8 bits) count as zero in the sign rule.
SIGN_ZERO_TOL = 1e-8 * math.log(2)

#: Default IPF tolerance (absolute, on the constrained marginals).
DEFAULT_TOL = 1e-13


def drop_negligible(p: np.ndarray, tol: float) -> np.ndarray:
    r"""``p`` with the cells of negligible mass set to exactly zero (and renormalised).

    A cell counts as negligible below :math:`\min(\mathrm{tol}, 10^{-13}) / (16\,|p|)`, so the
    dropped mass moves no constrained marginal by more than a sixteenth of the IPF tolerance
    and no atom by more than about :math:`10^{-12}` nats. Without this, cells of 1e-200 (or
    subnormal) mass where the constraints nearly force a zero ("nearly induced zeros") keep IPF
    in its :math:`1/t` regime for ever: it stops at ``max_iter`` about 1e-5 bits away from the
    answer, which is the limit of zero mass (the maximum-entropy pmf is continuous in ``p``).
    """
    negligible = min(tol, DEFAULT_TOL) / (16 * p.size)
    small = (p > 0) & (p < negligible)
    if not small.any():
        return p
    kept = np.where(small, 0.0, p)
    return kept / kept.sum()


@functools.lru_cache(maxsize=4096)
def _group(shape: tuple[int, ...], local_mask: int) -> np.ndarray:
    """For a C-ordered array of ``shape``, the flat index of each cell's marginal cell over the
    axes in bitmask ``local_mask`` (shared by every node with the same local shape)."""
    coords = np.indices(shape).reshape(len(shape), -1)
    axes = [a for a in range(len(shape)) if local_mask >> a & 1]
    out = np.ravel_multi_index(tuple(coords[axes]), tuple(shape[a] for a in axes))
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=65536)
def _coinformation_coefficients(members: tuple[int, ...]) -> dict[int, int]:
    r"""Coefficient of :math:`\log \hat q(x_V)` in the local co-information, by local mask V.

    ``members`` are the local variable masks of the node's collections (bit 0 is Y). Each subset
    T of members maps to the union of their variables with sign :math:`(-1)^{|T|}`; adding Y
    sets bit 0 and flips the sign.
    """
    k = len(members)
    subsets = np.arange(1 << k)
    unions = np.zeros(1 << k, dtype=np.int64)
    for i, m in enumerate(members):
        unions |= np.where(subsets >> i & 1, m, 0)
    sign = np.where(np.array([bin(t).count("1") for t in subsets]) % 2, -1, 1)
    coef = np.bincount(unions[1:], weights=sign[1:], minlength=2 * (unions.max() + 1))
    coef -= np.bincount(unions | 1, weights=sign, minlength=len(coef))
    return {int(v): int(c) for v, c in enumerate(np.rint(coef)) if c != 0}


class _Node:
    """The pmf of (Y, X_U) for one lattice node, flattened, with the index maps it needs."""

    def __init__(self, p: np.ndarray, node):
        n = p.ndim - 1
        masks = [sum(1 << s for s in part) for part in node]
        union = 0
        for m in masks:
            union |= m
        local_sources = [s for s in range(n) if union >> s & 1]
        position = {s: i + 1 for i, s in enumerate(local_sources)}  # local axis 0 is Y
        loc = _marginal(p, (0, *source_axes(union)))
        self.shape = loc.shape
        self.p = loc.ravel()
        # Local variable masks: bit 0 = Y, bit position[s] = source s.
        self.members = tuple(sum(1 << position[s] for s in part) for part in node)
        self.all_sources = sum(1 << position[s] for s in local_sources)

    def group(self, local_mask: int) -> np.ndarray:
        """Index of each cell's marginal cell over the local variables in ``local_mask``."""
        return _group(self.shape, local_mask)

    def problem(self) -> MaxEntProblem:
        masks = [self.all_sources] + [m | 1 for m in self.members]
        return MaxEntProblem(self.p, [self.group(m) for m in masks])

    def log_marginal(self, q: np.ndarray, local_mask: int, cells: np.ndarray) -> np.ndarray:
        g = self.group(local_mask)
        return np.log(np.bincount(g, weights=q)[g[cells]])

    def redundancy(self, q: np.ndarray) -> float:
        """I_ccs in nats given the node's maximum-entropy pmf ``q`` (flattened like ``p``)."""
        cells = np.flatnonzero(q > 0)
        qc = q[cells]
        log_y = self.log_marginal(q, 1, cells)

        def zeroed(values: np.ndarray) -> np.ndarray:
            return np.where(np.abs(values) <= SIGN_ZERO_TOL, 0.0, values)

        coinfo = zeroed(sum(c * self.log_marginal(q, v, cells)
                            for v, c in _coinformation_coefficients(self.members).items()))
        agree = np.sign(coinfo) == np.sign(zeroed(
            np.log(qc) - self.log_marginal(q, self.all_sources, cells) - log_y))
        for m in self.members:
            pmi = self.log_marginal(q, m | 1, cells) - self.log_marginal(q, m, cells) - log_y
            agree &= np.sign(coinfo) == np.sign(zeroed(pmi))
        return float((qc * coinfo)[agree].sum())


@register_measure("ccs", reference="Ince 2017, Entropy 19(7), 318",
                  summary="Ince's pointwise common change in surprisal (maximum-entropy "
                          "pmf by IPF); any number of sources",
                  options=("tol", "max_iter"))
def ccs(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 10_000):
    r""":math:`I_{\mathrm{ccs}}` atoms (nats) of ``p[y, x0, ..., x_{n-1}]`` for every lattice node.

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, ..., |X_{n-1}|)
        Normalised joint pmf, target on axis 0.
    tol : float, default 1e-13
        IPF stops when no constrained marginal of any node's maximum-entropy pmf moved by more
        than ``tol`` (absolute probability) during a full sweep. Cells of negligible mass
        (below ``min(tol, 1e-13) / (16 p.size)``) are treated as zeros
        (:func:`drop_negligible`).
    max_iter : int, default 10000
        Most IPF sweeps. A :class:`~pidkit.errors.ConvergenceWarning` is issued when ``tol`` is
        not met.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats.
    info : SolverInfo
        ``optimal`` or ``max_iter``, the IPF sweeps, and the final marginal deviation (a
        probability) in ``details["marginal_deviation"]``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((2, 2, 2)); p[0, 0, 0] = p[1, 1, 1] = 0.5   # RDN gate
    >>> atoms, info = ccs(p)
    >>> round(float(atoms[((0,), (1,))] / np.log(2)), 12), info.status
    (1.0, 'optimal')
    """

    tol, max_iter = check_solver_options(tol, max_iter)
    p = drop_negligible(p, tol)
    lat = lattice(p.ndim - 1)
    nodes = [_Node(p, node) for node in lat.nodes]
    needs_fit = [i for i, nd in enumerate(nodes) if len(nd.members) > 1]
    q, converged, sweeps, deviation, newton = solve_maxent(
        [nodes[i].problem() for i in needs_fit], tol, max_iter)
    fitted = dict(zip(needs_fit, q, strict=True))
    red = np.array([nd.redundancy(fitted.get(i, nd.p)) for i, nd in enumerate(nodes)])
    if not converged:
        warnings.warn(f"ccs: the maximum-entropy fit stopped after {sweeps} sweeps and "
                      f"{newton} Newton iterations with marginal deviation {deviation:.2e} > "
                      f"tol={tol:g}; values may be inexact. Raise max_iter (it bounds the sweeps "
                      f"and the Newton iterations) or loosen tol (an absolute probability)",
                      ConvergenceWarning, stacklevel=caller_stacklevel())
    info = SolverInfo("optimal" if converged else "max_iter", converged, sweeps, None, None,
                      {"method": "iterative proportional fitting, Newton finish",
                       "tol_marginal": tol,
                       "marginal_deviation": deviation, "newton_iterations": newton})
    return lat.moebius(red), info
