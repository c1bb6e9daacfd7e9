r"""Crossover for the trivariate maximum-entropy program of :mod:`._three_maxent`: a primal
log-barrier method on the cell masses, for the pmfs on which that module's dual
interior-point iteration crawls (sparse pmfs with composite sources: its steps are cut to
:math:`10^{-4}` by block masses that must fall to zero, and its gap stays near 0.1 nats after
200 iterations).

As the bivariate crossover (:func:`._polish.barrier`), it minimises, for decreasing
:math:`\tau`,

.. math::

    \phi_\tau(q) = \sum_{t,k} q(t,k) \ln \frac{q(t,k)}{q(k)} - \tau \sum_{t,k} \ln q(t,k)
    \quad \text{s.t.} \quad Q(t,a) = P(t,a),\ Q(t,b) = P(t,b),\ Q(t,c) = P(t,c),

over the allowed cells :math:`(t, k)`, :math:`k = (a,b,c)`, by Newton's method with an
infeasible start (Boyd and Vandenberghe 2004, sections 10.2 and 11.3). The Hessian is
:math:`\mathrm{Diag}((q + \tau)/q^2) - \sum_k e_k e_k^\top / q(k)` (``e_k`` the cells of block
``k``); with :math:`u^2 = q^2/(q + \tau)` and one unknown per block,
:math:`\zeta_k = e_k^\top \Delta q / q(k)`, the cell unknowns are eliminated exactly,
:math:`\Delta q = u^2 \circ (-g - A^\top \nu + E \zeta)`, leaving

.. math::

    \begin{pmatrix} A U^2 A^\top & -A U^2 E \\ -E^\top U^2 A^\top & -\mathrm{Diag}(\kappa)
    \end{pmatrix} \begin{pmatrix} \nu \\ \zeta \end{pmatrix} =
    \begin{pmatrix} -r - A U^2 g \\ E^\top U^2 g \end{pmatrix},\qquad
    \kappa_k = \sum_{t} \frac{q\,\tau}{q + \tau},

with ``A`` the marginal rows (``r = P - A q``; the pinned rows of :mod:`._three_maxent`, two
per ``t``, are redundant and left out) and ``g`` the gradient of :math:`\phi_\tau`; it is
scaled to a unit diagonal and solved by LU with :data:`REFINE` steps of iterative refinement
(``|T|(|A|+|B|+|C|) + |A||B||C|`` unknowns at most; it fails only on an exactly singular
matrix: an ill-conditioned one late in the run still gives usable steps, which the
certificate judges). At the minimiser of
:math:`\phi_\tau` the multipliers give the dual point
:math:`(\lambda, \mu, \nu) = -\nu_{\mathrm{KKT}}`, every block's
:math:`g_k = \ln\sum_t q(t \mid k)\, e^{-\tau/q} \le 0`, and its gap to the primal value is
:math:`\tau N` (``N`` cells). Every iterate is certified by the caller's functions (nothing
here is trusted), so a failed run costs time, never a wrong bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg.lapack import dgetrf as _getrf
from scipy.linalg.lapack import dgetrs as _getrs

from ...information import _entropy  # unchecked: the line search passes trial points
from ._ipm import SHRINK
from ._polish import BACKTRACK, CENTRED, MIX, SUFFICIENT, TAU_SHRINK

__all__ = ["barrier", "objective"]

# The rules shared with the bivariate crossover (:func:`._polish.barrier`): the barrier
# parameter falls by TAU_SHRINK once the Newton decrement is below CENTRED tau N; MIX of the
# strictly positive feasible point is mixed into the start; the line search tries at most
# BACKTRACK lengths, each SHRINK (the bivariate line searches' halving, :data:`._ipm.SHRINK`)
# times the last, for the decrease SUFFICIENT.

#: Most Newton steps per call: this method's own choice, not the bivariate crossover's
#: (``_polish.BARRIER_STEPS`` = 60); a run that uses them all is continued by the next call
#: (:func:`barrier`'s ``start``).
STEPS = 100
#: Steps of iterative refinement of each Newton direction. Late in a run the scaled system's
#: condition number reaches 1e12 and more, and an unrefined direction stops being a descent
#: direction, which ends the run above ``tol`` (the pairs program of a Dirichlet(0.05)
#: 3x3x3x3 pmf stopped at a gap of 8.9e-10 nats with ``tol`` 6.9e-10; with two steps it
#: closes at 2.5e-10).
REFINE = 2


def objective(q: np.ndarray) -> float:
    r"""The objective of :mod:`._three_maxent`'s program and of the barrier function
    :math:`\phi_\tau`: :math:`\sum q \ln(q / q(a,b,c)) = H(A,B,C) - H(T,A,B,C)` (nats) of a
    non-negative ``q[t, a, b, c]``."""
    return _entropy(q.sum(axis=0)) - _entropy(q)


def barrier(prog, q_start: np.ndarray, tau: float, tol: float,
            certify: Callable[[np.ndarray, np.ndarray], bool],
            start: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, float] | None:
    r"""Run the barrier method on the program ``prog`` (a :class:`._three_maxent._Program`)
    from the primal point ``q_start[t, a, b, c]`` (repaired onto ``prog``'s marginals and mixed
    with ``MIX``, :data:`._polish.MIX`, of ``prog.product``) with first barrier parameter
    ``tau``, down to :math:`\mathrm{tol}/(8N)`, for at most :data:`STEPS` Newton steps.
    ``certify(x, q)`` receives every iterate's dual point ``x`` (``prog``'s layout) and primal
    point ``q`` and returns whether the bracket is closed, which stops the run; so do a step
    that cannot decrease :math:`\phi_\tau` and an exactly singular Newton system.

    ``start``, a point ``(q, tau)`` returned by a previous call on the same program, continues
    that run instead (``q_start`` and ``tau`` are then ignored). Returns the last point
    ``(q, tau)`` when the run used all :data:`STEPS` steps, to be passed as the next call's
    ``start``, and ``None`` when it stopped for any of the reasons above: a run that stalled
    would only stall again from the same point, so the next call starts from its own
    ``q_start``.

    A fresh run whose first step already fails (its start has cells far below ``tau``, whose
    barrier terms :math:`\tau / q` then swamp the Newton system: nearly deterministic programs
    of Dirichlet(0.01) pmfs, cells down to 1e-88 at ``tau`` = 0.07) is restarted once with
    ``tau`` lowered to the smallest cell of its start (not below :math:`\mathrm{tol}/(8N)`);
    starting every run there instead stalled 28 of 200 Dirichlet(0.05) pmfs that the path from
    the iterate's ``tau`` certifies."""
    cells = prog.allowed
    n_cells = max(float(cells.sum()), 1.0)
    tau_min = tol / (8.0 * n_cells)
    if start is not None:
        return _run(prog, *start, tau_min, certify)[0]
    q = np.where(cells, (1.0 - MIX) * prog.repair(q_start) + MIX * prog.product, 0.0)
    tau = max(tau, tau_min)
    out, failed_at_once = _run(prog, q, tau, tau_min, certify)
    if failed_at_once:
        lowered = max(float(np.min(q[cells], initial=tau)), tau_min)
        if lowered < tau:
            out = _run(prog, q, lowered, tau_min, certify)[0]
    return out


def _run(prog, q: np.ndarray, tau: float, tau_min: float,
         certify: Callable[[np.ndarray, np.ndarray], bool]):
    """At most :data:`STEPS` barrier Newton steps from ``(q, tau)`` (:func:`barrier`), ``tau``
    falling to ``tau_min``; returns ``(last point or None, whether the first step failed)``."""
    cells = prog.allowed
    n_cells = max(float(cells.sum()), 1.0)
    for step in range(STEPS):
        g = _gradient(q, cells, tau)
        try:
            dq, x = _direction(prog, q, g, tau)
        except np.linalg.LinAlgError:        # an exactly singular system: stop here
            return None, step == 0
        if certify(x, q):
            return None, False
        slope = float(np.sum(g * dq))
        q_new = _line_search(q, dq, slope, cells, tau)
        if q_new is None:
            return None, step == 0
        q = q_new
        if -slope <= CENTRED * tau * n_cells:
            tau = max(tau * TAU_SHRINK, tau_min)
    return (q, tau), False


def _gradient(q: np.ndarray, cells: np.ndarray, tau: float) -> np.ndarray:
    r""":math:`\ln q(t \mid k) - \tau / q` on the cells, 0 elsewhere."""
    q_k = q.sum(axis=0, keepdims=True)
    safe = np.where(cells, q, 1.0)
    return np.where(cells, np.log(safe / np.where(q_k > 0, q_k, 1.0)) - tau / safe, 0.0)


def _value(q: np.ndarray, cells: np.ndarray, tau: float) -> float:
    r""":math:`\phi_\tau(q)`: :func:`objective` minus :math:`\tau` times the log barrier
    (infinite or NaN, so rejected by the line search, where a cell is not positive)."""
    safe = np.where(cells, q, 1.0)
    return objective(q) - tau * float(np.sum(np.where(cells, np.log(safe), 0.0)))


def _direction(prog, q: np.ndarray, g: np.ndarray,
               tau: float) -> tuple[np.ndarray, np.ndarray]:
    """The Newton step ``dq`` and the dual point ``x = -nu`` (``prog``'s flat layout, zero on
    the pinned rows) of the reduced KKT system of the module docstring."""
    cells, rows = prog.allowed, prog.free
    u2 = np.where(cells, q * q / (q + tau), 0.0)
    live = cells.any(axis=0)
    kappa = np.where(cells, q * tau / (q + tau), 0.0).sum(axis=0)[live]
    au2 = _row_products(prog, u2)[rows][:, live.ravel()]      # A U^2 E
    a_u2_at = prog.cell_gram(u2)[np.ix_(rows, rows)]            # A U^2 A^T
    r = (prog.b - prog.marginals(q))[rows]
    ug = u2 * g
    top_rhs = -r - prog.marginals(ug)[rows]
    low_rhs = ug.sum(axis=0)[live]
    n_r, n_k = len(rows), int(live.sum())
    matrix = np.empty((n_r + n_k, n_r + n_k))
    matrix[:n_r, :n_r] = a_u2_at
    matrix[:n_r, n_r:] = -au2
    matrix[n_r:, :n_r] = -au2.T
    matrix[n_r:, n_r:] = -np.diag(kappa)
    rhs = np.concatenate([top_rhs, low_rhs])
    diag = np.abs(np.diag(matrix))
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    sol = _refined_solve(matrix * scale[:, None] * scale[None, :], rhs * scale) * scale
    x = np.zeros(prog.n)
    x[rows] = -sol[:n_r]
    zeta = np.zeros(live.shape)
    zeta[live] = sol[n_r:]
    a_t_nu = prog.cell_sum(-x)                       # A^T nu_KKT
    dq = np.where(cells, u2 * (zeta[None] - g - a_t_nu), 0.0)
    return dq, x


def _refined_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``matrix^{-1} rhs`` by LU (LAPACK's ``getrf``/``getrs``) and :data:`REFINE` steps of
    iterative refinement; raises ``LinAlgError`` only on an exactly singular ``matrix``."""
    lu, piv, info = _getrf(matrix)
    if info > 0:
        raise np.linalg.LinAlgError("exactly singular Newton system")
    sol = _getrs(lu, piv, rhs)[0]
    for _ in range(REFINE):
        sol += _getrs(lu, piv, rhs - matrix @ sol)[0]
    return sol


def _row_products(prog, u2: np.ndarray) -> np.ndarray:
    """``A U^2 E``: per marginal row and block, the sum of ``u^2`` over the row's cells in the
    block, ``(n, |A||B||C|)`` in ``prog``'s row layout."""
    _, na, nb, nc = u2.shape
    out = np.zeros((prog.n, na * nb * nc))
    blocks = np.broadcast_to(np.arange(na * nb * nc).reshape(1, na, nb, nc), u2.shape)
    for rows in (prog.idx_a[:, :, None, None], prog.idx_b[:, None, :, None],
                 prog.idx_c[:, None, None, :]):
        out[np.broadcast_to(rows, u2.shape), blocks] = u2   # one cell per (row, block)
    return out


def _line_search(q: np.ndarray, dq: np.ndarray, slope: float, cells: np.ndarray,
                 tau: float) -> np.ndarray | None:
    r"""The first of :math:`a_0, a_0/2, \dots` (:math:`a_0 = \min(1, 0.99\, a_{\max})`) with
    :math:`\phi_\tau(q + a\,dq) \le \phi_\tau(q) + \mathrm{SUFFICIENT}\, a\, \mathrm{slope}`;
    ``None`` when none qualifies (or the slope is not a descent)."""
    if not (math.isfinite(slope) and slope < 0):
        return None
    neg = cells & (dq < 0)
    a = min(1.0, 0.99 * float(np.min(-q[neg] / dq[neg]))) if neg.any() else 1.0
    value = _value(q, cells, tau)
    for _ in range(BACKTRACK):
        trial = np.where(cells, q + a * dq, 0.0)
        if _value(trial, cells, tau) <= value + SUFFICIENT * a * slope:
            return trial
        a *= SHRINK
    return None
