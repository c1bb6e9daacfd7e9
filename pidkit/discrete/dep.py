r"""James, Emenheiser and Crutchfield's :math:`I_{\mathrm{dep}}`: unique information from the
dependency decomposition, for two sources.

The constraint lattice of :math:`(X_0, X_1, Y)` orders the sets of marginals a model keeps (from
:math:`\{X_0\}\{X_1\}\{Y\}`, independence, to :math:`\{X_0X_1Y\}`, the joint pmf); each node
stands for the maximum-entropy pmf with those marginals. The unique information of :math:`X_0` is
the smallest increase of :math:`I(X_0 X_1; Y)` along the edges of the lattice that add the
dependency :math:`\{X_0 Y\}`:

.. math::

    U_0 = \min_{\text{edges } \sigma \to \sigma \cup \{X_0 Y\}}
    \bigl[I_{\hat q_{\sigma \cup \{X_0 Y\}}}(X_0 X_1; Y) - I_{\hat q_\sigma}(X_0 X_1; Y)\bigr].

There are four such edges; with :math:`I_i = I(Y; X_i)` their increases are :math:`I_0` (from
:math:`\{X_0\}\{X_1\}\{Y\}` and from :math:`\{X_0X_1\}\{Y\}`),
:math:`I_{q_{\mathrm{ci}}}(X_0X_1; Y) - I_1` (from :math:`\{X_0\}\{X_1Y\}`, where the top is
:math:`q_{\mathrm{ci}} = p(y)\,p(x_0 \mid y)\,p(x_1 \mid y)`) and
:math:`I_{q_{\mathrm{pw}}}(X_0X_1; Y) - I_1` (from :math:`\{X_0X_1\}\{X_1Y\}`, where the top
:math:`q_{\mathrm{pw}}` is the maximum-entropy pmf with all three pairwise marginals). Hence

.. math::

    I_{\mathrm{dep}}(Y; X_0, X_1) = I_0 - U_0
    = \max\bigl\{0,\ I_0 + I_1 - I_{q_{\mathrm{ci}}}(X_0X_1; Y),\
    I_0 + I_1 - I_{q_{\mathrm{pw}}}(X_0X_1; Y)\bigr\},

symmetric in the sources, so :math:`I_1 - U_1` gives the same redundancy.

**Solver.** :math:`q_{\mathrm{ci}}` is closed-form; :math:`q_{\mathrm{pw}}` is fitted by
iterative proportional fitting (:mod:`pidkit.discrete._maxent`, the same fit as I_ccs's
two-source node), with exact support from linear programmes where the constraints force zeros.
IPF converges only slowly when :math:`q_{\mathrm{pw}}` has cells near zero (sparse pmfs); when it
has not met ``tol`` after ``max_iter`` sweeps, Newton's method on the convex dual
(:func:`~pidkit.discrete._maxent.newton_maxent`, warm-started from the IPF iterate) finishes the
fit, quadratically; where that stalls short of ``tol`` (sparse pmfs, where the pmfs with the
pairwise marginals form a thin polytope around ``p``), Newton's method on the primal within
that polytope does (:func:`~pidkit.discrete._maxent.primal_maxent`). The fit stops when every
pairwise marginal is within ``tol`` (default :math:`10^{-13}`, an absolute probability) of
``p``'s (and, after the primal finish, its Newton decrement is below ``tol``). The error of
:math:`I_{q_{\mathrm{pw}}}` at the stopping point is first order in that deviation, at most about
:math:`\mathrm{tol} \cdot |{\rm cells}| \cdot \max |\log q|` (an estimate, not a proof).
A proven one-sided bound also holds where the fit ends on IPF or the dual: the fitted pmf is
then log-linear in the pairwise marginals, so
:math:`-\sum_x p(x) \log q(x) \ge H(q_{\mathrm{pw}})` and
:math:`H(X_0X_1) + H(Y) + \sum_x p(x) \log q(x) \le I_{q_{\mathrm{pw}}}(X_0X_1; Y)`.

References
----------
R. G. James, J. Emenheiser, J. P. Crutchfield, "Unique information via dependency constraints",
J. Phys. A: Math. Theor. 52, 014002 (2019); arXiv:1709.06653.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning, caller_stacklevel
from ..information import _mutual_information
from ..lattice import lattice
from ..result import SolverInfo
from ._certified import check_solver_options
from ._maxent import MaxEntProblem, solve_maxent
from .ccs import DEFAULT_TOL, _group, drop_negligible
from .registry import register_measure

__all__ = ["dep"]

#: Local variable masks of p[y, x0, x1] (bit 0 = Y): the three pairwise marginals.
PAIRS = (0b110, 0b011, 0b101)


def _joint_information(q: np.ndarray) -> float:
    """:math:`I(X_0 X_1; Y)` in nats of ``q[y, x0, x1]``."""
    return _mutual_information(q, (0,), (1, 2))


def conditionally_independent(p: np.ndarray) -> np.ndarray:
    r""":math:`q_{\mathrm{ci}}(y, x_0, x_1) = p(y, x_0)\, p(y, x_1) / p(y)`."""
    p_y = p.sum(axis=(1, 2))
    ratio = np.divide(1.0, p_y, out=np.zeros_like(p_y), where=p_y > 0)
    return p.sum(axis=2)[:, :, None] * p.sum(axis=1)[:, None, :] * ratio[:, None, None]


def pairwise_maxent(p: np.ndarray, tol: float, max_iter: int):
    r""":math:`q_{\mathrm{pw}}`, the maximum-entropy pmf with the pairwise marginals of
    ``p[y, x0, x1]``: IPF, then Newton's method on the dual where IPF has not converged after
    ``max_iter`` sweeps and on the primal where that stalls
    (:func:`~pidkit.discrete._maxent.solve_maxent`); also (converged, IPF sweeps, Newton
    iterations, marginal deviation)."""
    problem = MaxEntProblem(p.ravel(), [_group(p.shape, mask) for mask in PAIRS])
    (q,), converged, sweeps, deviation, newton = solve_maxent([problem], tol, max_iter)
    return q.reshape(p.shape), converged, sweeps, newton, deviation


@register_measure("dep", reference="James, Emenheiser & Crutchfield 2019, J. Phys. A 52, "
                                   "014002",
                  summary="dependency-decomposition I_dep, unique information as the least "
                          "gain along the constraint lattice (pairwise maxent by IPF, Newton "
                          "finish); two sources",
                  max_sources=2, options=("tol", "max_iter"))
def dep(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 1000):
    r""":math:`I_{\mathrm{dep}}` atoms (nats) of ``p[y, x0, x1]``.

    .. math::

        I_{\mathrm{dep}}(Y; X_0, X_1) = \max\bigl\{0,\ I_0 + I_1 - I_{q_{\mathrm{ci}}}(X_0X_1; Y),\
        I_0 + I_1 - I_{q_{\mathrm{pw}}}(X_0X_1; Y)\bigr\},

    :math:`I_i = I(Y; X_i)`, :math:`q_{\mathrm{ci}}` the sources conditionally independent
    given :math:`Y`, :math:`q_{\mathrm{pw}}` the maximum-entropy pmf with the pairwise
    marginals; equivalently the unique information :math:`U_i = I_i - I_{\mathrm{dep}}` is the
    least increase of :math:`I(X_0X_1; Y)` when the constraint :math:`\{X_iY\}` is added
    anywhere in the constraint lattice.

    Properties (James, Emenheiser and Crutchfield 2019): symmetric; self-redundant; redundancy
    and unique atoms non-negative (:math:`0 \le I_{\mathrm{dep}} \le \min_i I_i`, since the
    first two edges increase :math:`I` by :math:`I_0`); the identity property holds (Y a copy of
    the sources: :math:`q_{\mathrm{pw}}` is then the joint pmf). The synergy can be negative in
    principle (not on the canonical gates). Defined for two sources only.

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, |X_1|)
        Normalised joint pmf, target on axis 0 (a single source gives :math:`I(Y; X_0)`).
    tol : float, default 1e-13
        IPF stops when no pairwise marginal moved by more than ``tol`` (absolute probability)
        during a sweep. Cells below ``min(tol, 1e-13) / (16 p.size)`` are treated as zeros (as
        for I_ccs).
    max_iter : int, default 1000
        Most IPF sweeps; then at most ``min(max_iter, 100)`` Newton iterations on the dual,
        and as many on the primal where those stall. A
        :class:`~pidkit.errors.ConvergenceWarning` is issued when ``tol`` is not met.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats.
    info : SolverInfo
        ``optimal`` or ``max_iter``; the IPF sweeps plus Newton iterations, and in ``details``
        each count and the final marginal deviation (a probability, ``marginal_deviation``).

    References
    ----------
    R. G. James, J. Emenheiser, J. P. Crutchfield, "Unique information via dependency
    constraints", J. Phys. A: Math. Theor. 52, 014002 (2019).

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("AND"), measure="dep")
    >>> round(r.redundancy, 6), round(r.unique[0], 6), r.solver.status
    (0.081704, 0.229574, 'optimal')
    """
    tol, max_iter = check_solver_options(tol, max_iter)
    lat = lattice(2)
    p = drop_negligible(p, tol)
    q_pw, converged, sweeps, newton, deviation = pairwise_maxent(p, tol, max_iter)
    if not converged:
        warnings.warn(f"dep: the maximum-entropy fit stopped after {sweeps} IPF sweeps and "
                      f"{newton} Newton iterations with marginal deviation {deviation:.2e} > "
                      f"tol={tol:g}; values may be inexact. Increase max_iter or loosen tol",
                      ConvergenceWarning, stacklevel=caller_stacklevel())
    mi = [_mutual_information(p, (0,), (axis,)) for axis in (1, 2)]
    red = max(0.0, sum(mi) - _joint_information(conditionally_independent(p)),
              sum(mi) - _joint_information(q_pw))
    cumulative = {((0,), (1,)): red, ((0,),): mi[0], ((1,),): mi[1],
                  ((0, 1),): _joint_information(p)}
    info = SolverInfo("optimal" if converged else "max_iter", converged, sweeps + newton, None,
                      None, {"method": "iterative proportional fitting, then Newton if needed",
                             "tol_marginal": tol, "ipf_sweeps": sweeps, "newton_iterations": newton,
                             "marginal_deviation": deviation})
    return lat.moebius(cumulative), info
