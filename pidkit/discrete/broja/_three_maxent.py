r"""The trivariate maximum-entropy program of MaxEnt3D_Pid, solved with a certificate.

For a pmf ``p[t, a, b, c]`` of a target :math:`T` and three (possibly composite) sources
:math:`A, B, C`, :func:`solve` brackets

.. math::

    f^* = \min_{Q \in \Delta_P} \sum_{t,a,b,c} q(t,a,b,c) \ln \frac{q(t,a,b,c)}{q(a,b,c)}
        = \min_{Q \in \Delta_P} -H_Q(T \mid A,B,C),\qquad
    \Delta_P = \{Q \ge 0 : Q(t,a) = P(t,a),\ Q(t,b) = P(t,b),\ Q(t,c) = P(t,c)\},

so that :math:`\min_{Q \in \Delta_P} I_Q(T; A,B,C) = H(T) + f^*` (Makkeh, Chicharro, Theis and
Vicente 2019, the problem their estimator solves for the synergy; Chicharro 2017). The
objective is convex (per block :math:`(a,b,c)` it is the perspective of the negative entropy
of :math:`q(\cdot \mid a,b,c)`), the constraints are linear and ``p`` itself is feasible.

**Dual and certificate.** Per block :math:`k = (a,b,c)` let
:math:`v_k(t) = \lambda_{ta} + \mu_{tb} + \nu_{tc}` and
:math:`g_k = \ln \sum_{t} e^{v_k(t)}` over the cells ``t`` allowed in the block
(:math:`P(t,a) P(t,b) P(t,c) > 0`; every other cell has :math:`q = 0` in
:math:`\Delta_P`). For any dual point with :math:`g_k \le 0` for every block,

.. math::

    D(\lambda,\mu,\nu) = \sum_{t,a} P(t,a)\lambda_{ta} + \sum_{t,b} P(t,b)\mu_{tb}
        + \sum_{t,c} P(t,c)\nu_{tc} \;\le\; f^* .

*Proof.* For a feasible :math:`Q`, a block of mass :math:`m_k > 0` and
:math:`\pi = q(\cdot \mid k)`, Gibbs' inequality gives
:math:`\sum_t \pi_t \ln \pi_t \ge \sum_t \pi_t v_k(t) - g_k \ge \sum_t \pi_t v_k(t)`. Multiplying
by :math:`m_k` and summing over blocks, the objective is at least
:math:`\sum q\,(\lambda_{ta} + \mu_{tb} + \nu_{tc}) = D`, because :math:`Q` has the marginals
of :math:`P`. :math:`\square`

Any exactly feasible :math:`Q` gives the upper bound :math:`f(Q) \ge f^*`, so
``[lower, upper]`` brackets :math:`f^*` whatever the iterate. The iterate's primal point
:math:`q = m_k \pi_k` is made exactly feasible by an affine correction that fixes the three
marginal residuals of each ``t`` (whose totals agree) without leaving the allowed cells, then,
where that leaves a negative entry, by the smallest mixture with the strictly positive
feasible point :math:`P(t) P(a|t) P(b|t) P(c|t)`.

**Algorithm.** An infeasible primal-dual interior-point method (as the bivariate solver's) on
the optimality conditions :math:`\sum_k m_k \nabla g_k = b` (the marginals),
:math:`g_k + s_k = 0`, :math:`m_k s_k = \tau`, with block masses :math:`m_k` and slacks
:math:`s_k` as variables: Mehrotra predictor-corrector steps, a backtracking line search on
the residual norm, and one dense Newton system in the dual variables per iteration (masses and
slacks eliminated; one ``mu`` and one ``nu`` per ``t`` pinned to fix the gauge
:math:`\lambda_{t\cdot} + c,\ \mu_{t\cdot} - c`), Jacobi-scaled, factorised by Cholesky and
refined. It starts from the dual point :math:`\lambda = \ln P(t,a) - 1`,
:math:`\mu = \ln P(b|t)`, :math:`\nu = \ln P(c|t)` and the block masses of the feasible
:math:`Q = P(t)P(a|t)P(b|t)P(c|t)`, each at least ``START_MASS / m`` (``m`` live blocks; the
bivariate solver's start, :func:`._ipm.cold_start`): a block whose product mass is tiny (or
underflows: marginal entries of 1e-98 to 1e-287 in a Dirichlet(0.01) pmf) cut every
corrector step at the boundary to about that mass, and on the 3 x 6 x 6 x 9 program of such
a pmf the iteration did not move in 800 iterations (gap 2.7e-4 bits; certified at
iteration 40 with the floor). An
infeasible dual iterate is certified after shifting ``lam[:, a]`` (or ``mu[:, b]``,
``nu[:, c]``) down by the largest violation :math:`g_k > 0` among the blocks with that ``a``
(``b``, ``c``), which makes it feasible at the cost :math:`\sum_a P(a)\,\mathrm{shift}_a`,
or, where cheaper, after lowering in each violated block the variable of smallest marginal of
each cell (:meth:`_Program.dual_bound`, as the bivariate :func:`._bounds.local_repair`).
After each trial step the slack of every block with :math:`g_k < 0` is reset to
:math:`-g_k`, so the dual residual lives only on violated blocks.

**Sparse pmfs** (as the bivariate solver, :mod:`._polish`). Marginal entries below
:math:`\mathrm{tol}/(2n)` (``n`` entries) are left out of the iteration with their cells
(:func:`_kept_cells`); the certificate stays on the full program: the dual point is lifted
(:meth:`_Program.lift`) and the primal point gets the left-out cells of ``p`` back, which is
exactly feasible. Each step moves no dual variable by more than :data:`_MAX_LOG_STEP` (the
nearly empty rows of tiny entries otherwise allowed steps of :math:`10^8` and overflow), a
step whose residual is not finite ends the iteration with the bracket proven so far, and
every :data:`_POLISH_EVERY` iterations an open program gets the primal barrier crossover of
:mod:`._three_barrier`: on sparse pmfs with composite sources the dual iteration's steps are
cut to :math:`10^{-4}` by block masses that must fall to zero, and its gap stayed near 0.1
nats after 200 iterations.

References
----------
D. Chicharro, "Quantifying multivariate redundancy with maximum entropy decompositions of
mutual information", arXiv:1708.03845 (2017).
A. Makkeh, D. Chicharro, D. O. Theis, R. Vicente, "MAXENT3D_PID: An estimator of the
maximum-entropy trivariate partial information decomposition", Entropy 21(9), 862 (2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotrs

from ..._threads import one_blas_thread
from ...information import _entropy, _mutual_information
from ._bounds import CROSSING, LOG_NEGLIGIBLE, rounding_margin
from ._ipm import (
    BOUNDARY,
    CERT_FACTOR,
    CERT_FROM,
    CORRECTOR_CAP,
    MAX_BACKTRACK,
    SHRINK,
    SIGMA_MIN,
    START_MASS,
    SUFFICIENT,
)
from ._ipm import POLISH_EVERY as _POLISH_EVERY
from ._polish import DROP_SHARE, DROPPED_WEIGHT
from ._polish import MAX_LOG_STEP as _MAX_LOG_STEP
from ._three_barrier import barrier, objective

__all__ = ["MaxEntBracket", "solve"]

# The program's objective, :func:`._three_barrier.objective`, is defined beside the crossover,
# whose barrier function is that objective minus the log barrier (that module cannot import
# this one, which imports it).

# The bivariate solver's rules, imported above: every _POLISH_EVERY iterations (and after the
# first that many) an open program gets the crossover of :func:`._three_barrier.barrier`
# (``_ipm.POLISH_EVERY``); no dual variable (a logarithm of a cell's mass) moves by more than
# _MAX_LOG_STEP in one step (``_polish.MAX_LOG_STEP``: Newton on an exponential closes a gap
# of order 1 per step; longer steps, which the tiny diagonal of a nearly empty marginal
# entry's row allows, only overflow). The step, line search, centring and certificate rules
# are the bivariate interior-point method's fixed ones (``_ipm``, :func:`._ipm.solve_fixed`):
# a step goes BOUNDARY of the distance to the boundary (masses and slacks); the line search
# shrinks it by SHRINK until the residual norm falls by SUFFICIENT times the step, at most
# MAX_BACKTRACK lengths (the last is taken without decrease: the certificate guards the
# answer); the centring parameter is at least SIGMA_MIN and Mehrotra's second-order term at
# least -CORRECTOR_CAP ``m s``; the certificate is evaluated once ``sum(m s)`` is below
# CERT_FACTOR ``tol``, and at every iteration from CERT_FROM on.

#: Ridge added to the unit-diagonal Newton matrix before Cholesky (this matrix's own: the
#: bivariate ridges of the same size, ``_newton.RIDGE`` and ``_polish.REGULARISATION``, keep
#: other matrices factorisable); refinement steps.
_RIDGE, _REFINE = 1e-13, 6
#: Refinement (:data:`_REFINE` steps in every solve) runs once the complementarity
#: ``sum(m s)`` is below this (before, the scaled matrix is well conditioned); not the
#: bivariate ``_ipm.REFINE_BELOW``, which gives the corrector one step.
_REFINE_BELOW = 1e-4
#: Sweeps of proportional fitting in :meth:`_Program.repair` before the exact correction (the
#: correction spreads the residual over every allowed cell; fitting first keeps it tiny where
#: the iterate's mass is tiny, so the mixture that restores signs stays negligible).
_FIT_SWEEPS = 5


@dataclass(frozen=True)
class MaxEntBracket:
    """A proven bracket ``lower <= f* <= upper`` (nats) on the program of :func:`solve`;
    ``iterations`` interior-point iterations (0: the trivial bracket sufficed)."""

    lower: float
    upper: float
    iterations: int

    @property
    def gap(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower


class _Program:
    """Constants of one program: marginals, allowed cells, gauge pins and index maps."""

    def __init__(self, p: np.ndarray):
        self.p_ta, self.p_tb, self.p_tc = p.sum(axis=(2, 3)), p.sum(axis=(1, 3)), p.sum(axis=(1, 2))
        self.p_t = self.p_ta.sum(axis=1)
        self.allowed = ((self.p_ta[:, :, None, None] > 0) & (self.p_tb[:, None, :, None] > 0)
                        & (self.p_tc[:, None, None, :] > 0))
        self.live = self.allowed.any(axis=0)
        nt, na, nb, nc = p.shape
        self.shape = p.shape
        self.idx_a = np.arange(nt * na).reshape(nt, na)
        self.idx_b = nt * na + np.arange(nt * nb).reshape(nt, nb)
        self.idx_c = nt * (na + nb) + np.arange(nt * nc).reshape(nt, nc)
        self.n = nt * (na + nb + nc)
        free = np.concatenate([(self.p_ta > 0).ravel(), (self.p_tb > 0).ravel(),
                               (self.p_tc > 0).ravel()])
        rows = np.arange(nt)
        free[self.idx_b[rows, np.argmax(self.p_tb > 0, axis=1)]] = False  # gauge pins
        free[self.idx_c[rows, np.argmax(self.p_tc > 0, axis=1)]] = False
        self.free = np.flatnonzero(free)
        self.b = np.concatenate([self.p_ta.ravel(), self.p_tb.ravel(), self.p_tc.ravel()])
        with np.errstate(divide="ignore"):
            cond_a, cond_b, cond_c = (m / np.where(self.p_t > 0, self.p_t, 1.0)[:, None]
                                      for m in (self.p_ta, self.p_tb, self.p_tc))
            self.u_a, self.u_b, self.u_c = cond_a, cond_b, cond_c
            # the strictly positive feasible point P(t) P(a|t) P(b|t) P(c|t)
            self.product = (self.p_t[:, None, None, None] * cond_a[:, :, None, None]
                            * cond_b[:, None, :, None] * cond_c[:, None, None, :])
            self.x0 = np.concatenate([np.where(self.p_ta > 0, np.log(self.p_ta), 0.0).ravel() - 1.0,
                                      np.where(self.p_tb > 0, np.log(cond_b), 0.0).ravel(),
                                      np.where(self.p_tc > 0, np.log(cond_c), 0.0).ravel()])

    def lift(self, x: np.ndarray, reduced: _Program) -> np.ndarray:
        r"""A dual point of this program from one of ``reduced`` (the program of
        :func:`_kept_cells`, same shape): the variables of marginal entries the reduced
        program lacks are set from the entry's own mass :math:`\delta` (at least
        ``DROPPED_WEIGHT``) and the largest kept variables of the other two sources, as the
        bivariate :func:`._polish.lift_dual`: :math:`\lambda_{ta} = \ln\delta_{ta} - \max_b
        \mu_{tb} - \max_c \nu_{tc}` over the kept ones, then likewise for ``mu`` and ``nu``.
        A cell with one dropped entry then weighs at most that entry's :math:`\delta`; a cell
        with two or three has no such bound (its weight depends on the kept variables'
        maxima). Either way the lower bound stays valid: :meth:`dual_bound` makes any point
        feasible, so the lift decides only how tight it is."""
        parts = list(reduced.split(x))
        for i, (mine, theirs) in enumerate(zip((self.p_ta, self.p_tb, self.p_tc),
                                               (reduced.p_ta, reduced.p_tb, reduced.p_tc),
                                               strict=True)):
            kept = theirs > 0
            others = [np.where(o > 0, v, -np.inf).max(axis=1, keepdims=True)
                      for j, (v, o) in enumerate(zip(parts, (reduced.p_ta, reduced.p_tb,
                                                              reduced.p_tc), strict=True))
                      if j != i]
            top = sum(np.where(np.isfinite(o), o, 0.0) for o in others)
            parts[i] = np.where(kept, parts[i],
                                np.log(np.maximum(mine, DROPPED_WEIGHT)) - top)
        return np.concatenate([v.ravel() for v in parts])

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nt, na, nb, nc = self.shape
        return (x[:nt * na].reshape(nt, na), x[nt * na:nt * (na + nb)].reshape(nt, nb),
                x[nt * (na + nb):].reshape(nt, nc))

    def cell_sum(self, x: np.ndarray) -> np.ndarray:
        r""":math:`A^\top x`: ``lam[t, a] + mu[t, b] + nu[t, c]`` per cell ``[t, a, b, c]`` of
        the flat dual vector ``x``."""
        lam, mu, nu = self.split(x)
        return lam[:, :, None, None] + mu[:, None, :, None] + nu[:, None, None, :]

    def softmax(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per live block: ``g = log-sum-exp_t v`` and the softmax ``pi[t, a, b, c]``."""
        v = np.where(self.allowed, self.cell_sum(x), -np.inf)
        vmax = np.where(self.live, v.max(axis=0), 0.0)
        e = np.where(self.allowed, np.exp(v - vmax), 0.0)
        tot = e.sum(axis=0)
        g = np.where(self.live, np.log(np.where(self.live, tot, 1.0)) + vmax, -1.0)
        return g, e / np.where(self.live, tot, 1.0)

    def dual_bound(self, x: np.ndarray, g: np.ndarray) -> float:
        """A lower bound on :math:`f^*` from any dual point, the better of two feasible points:
        :meth:`_shifted` of ``x`` itself, and of ``x`` after :meth:`_local_repair`."""
        repaired = self._local_repair(x, g)
        return max(self._shifted(x, g), self._shifted(repaired, self.softmax(repaired)[0]))

    def _shifted(self, x: np.ndarray, g: np.ndarray) -> float:
        """The dual value after shifting ``lam[:, a]`` (or ``mu[:, b]``, ``nu[:, c]``) down by
        the largest positive ``g`` of the blocks with that ``a`` (``b``, ``c``), which makes
        every block feasible; the best of the three (less :func:`._bounds.rounding_margin`)."""
        gp = np.where(self.live, np.maximum(g, 0.0), 0.0)
        value = float(self.b @ x) - rounding_margin(x.size, float(np.abs(self.b) @ np.abs(x)))
        costs = (self.p_ta.sum(axis=0) @ gp.max(axis=(1, 2)),
                 self.p_tb.sum(axis=0) @ gp.max(axis=(0, 2)),
                 self.p_tc.sum(axis=0) @ gp.max(axis=(0, 1)))
        return value - float(min(costs))

    def _local_repair(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        r"""The bivariate solver's local repair (:func:`._bounds.local_repair`) for three
        sources: in every violated block (:math:`g_k > 0`), each allowed cell ``t`` carrying
        at least ``NEGLIGIBLE_SHARE`` of the block's weight has the one of its three variables
        :math:`\lambda_{ta}, \mu_{tb}, \nu_{tc}` with the smallest marginal lowered by
        :math:`g_k` (the largest such excess per variable). A violation in a block of cells
        with tiny marginals then costs those marginals, where :meth:`_shifted` pays a whole
        source value's mass."""
        v = self.cell_sum(x)
        heavy = self.allowed & (v - g[None] >= LOG_NEGLIGIBLE)
        need = np.where(heavy, np.where(self.live, np.maximum(g, 0.0), 0.0)[None], 0.0)
        m_a = np.broadcast_to(self.p_ta[:, :, None, None], need.shape)
        m_b = np.broadcast_to(self.p_tb[:, None, :, None], need.shape)
        m_c = np.broadcast_to(self.p_tc[:, None, None, :], need.shape)
        side = np.argmin(np.stack([m_a, m_b, m_c]), axis=0)     # ties: a, then b
        lowered = [np.where(side == i, need, 0.0).max(axis=axes)
                   for i, axes in enumerate(((2, 3), (1, 3), (1, 2)))]
        return x - np.concatenate([d.ravel() for d in lowered])

    def marginals(self, q: np.ndarray) -> np.ndarray:
        return np.concatenate([q.sum(axis=(2, 3)).ravel(), q.sum(axis=(1, 3)).ravel(),
                               q.sum(axis=(1, 2)).ravel()])

    def repair(self, q: np.ndarray) -> np.ndarray:
        """An exactly feasible point near ``q`` (supported on the allowed cells)."""
        q = np.where(self.allowed, np.maximum(q, 0.0), 0.0)
        for _ in range(_FIT_SWEEPS):  # proportional fitting: support and signs kept
            for axes, target in (((2, 3), self.p_ta), ((1, 3), self.p_tb), ((1, 2), self.p_tc)):
                have = q.sum(axis=axes)
                ratio = np.where(have > 0, target / np.where(have > 0, have, 1.0), 1.0)
                q = q * np.expand_dims(ratio, axes)
        r_a = self.p_ta - q.sum(axis=(2, 3))
        r_b = self.p_tb - q.sum(axis=(1, 3))
        r_c = self.p_tc - q.sum(axis=(1, 2))
        d = r_a.sum(axis=1)  # equals r_b.sum(1) and r_c.sum(1): P(t) - Q(t)
        ua, ub, uc = self.u_a, self.u_b, self.u_c
        correction = (r_a[:, :, None, None] * ub[:, None, :, None] * uc[:, None, None, :]
                      + ua[:, :, None, None] * r_b[:, None, :, None] * uc[:, None, None, :]
                      + ua[:, :, None, None] * ub[:, None, :, None] * r_c[:, None, None, :]
                      - 2.0 * d[:, None, None, None] * ua[:, :, None, None]
                      * ub[:, None, :, None] * uc[:, None, None, :])
        q = q + correction
        negative = q < 0
        if negative.any():
            f = self.product[negative]
            theta = float(np.max(-q[negative] / (f - q[negative])))
            q = (1.0 - theta) * q + theta * self.product
            q = np.where(self.allowed, np.maximum(q, 0.0), 0.0)
        return q

    def cell_gram(self, w: np.ndarray) -> np.ndarray:
        r""":math:`A\,\mathrm{Diag}(w)\,A^\top = \sum_{cells} w\, e e^\top`, ``(n, n)`` on the
        full dual index, for weights ``w[t, a, b, c]`` (``e``: the cell's three dual
        coordinates): rows ``(t, a)`` and ``(t', b)`` meet where ``t = t'``, with the sum of
        ``w`` over the cells ``(t, a, b, .)``; the diagonal holds the rows' sums."""
        h = np.zeros((self.n, self.n))
        ia, ib, ic = self.idx_a, self.idx_b, self.idx_c
        h[ia, ia] = w.sum(axis=(2, 3))
        h[ib, ib] = w.sum(axis=(1, 3))
        h[ic, ic] = w.sum(axis=(1, 2))
        for i1, i2, block in ((ia[:, :, None], ib[:, None, :], w.sum(axis=3)),
                              (ia[:, :, None], ic[:, None, :], w.sum(axis=2)),
                              (ib[:, :, None], ic[:, None, :], w.sum(axis=1))):
            rows = np.broadcast_to(i1, block.shape)
            cols = np.broadcast_to(i2, block.shape)
            h[rows, cols] = block
            h[cols, rows] = block
        return h

    def newton_matrix(self, q: np.ndarray, pi: np.ndarray, w: np.ndarray) -> np.ndarray:
        r""":math:`\sum_{cells} q\, e e^\top + \sum_k w_k u_k u_k^\top` on the full dual index
        (``e``: the cell's three dual coordinates, :meth:`cell_gram`; ``u_k``: the block's
        softmax on them)."""
        nt = self.shape[0]
        h = self.cell_gram(q)
        ia, ib, ic = self.idx_a, self.idx_b, self.idx_c
        wp = w[None] * pi
        g_aa = np.einsum("tabc,sabc->tsa", wp, pi)
        g_bb = np.einsum("tabc,sabc->tsb", wp, pi)
        g_cc = np.einsum("tabc,sabc->tsc", wp, pi)
        g_ab = np.einsum("tabc,sabc->tasb", wp, pi)
        g_ac = np.einsum("tabc,sabc->tasc", wp, pi)
        g_bc = np.einsum("tabc,sabc->tbsc", wp, pi)
        for idx, gram in ((ia, g_aa), (ib, g_bb), (ic, g_cc)):
            rows = np.broadcast_to(idx.T[:, :, None], (idx.shape[1], nt, nt))
            cols = np.broadcast_to(idx.T[:, None, :], (idx.shape[1], nt, nt))
            h[rows, cols] += np.transpose(gram, (2, 0, 1))
        for i1, i2, gram in ((ia, ib, g_ab), (ia, ic, g_ac), (ib, ic, g_bc)):
            rows = np.broadcast_to(i1[:, :, None, None], gram.shape)
            cols = np.broadcast_to(i2[None, None, :, :], gram.shape)
            h[rows, cols] += gram
            h[cols, rows] += gram
        return h


def solve(p: np.ndarray, tol: float, max_iter: int,
          lower: float = -math.inf) -> MaxEntBracket:
    r"""Bracket :math:`f^* = \min_{Q \in \Delta_P} -H_Q(T \mid A,B,C)` of ``p[t, a, b, c]``.

    Parameters
    ----------
    p : numpy.ndarray
        Normalised float64 pmf, target on axis 0, one (possibly composite) source per other axis.
    tol : float
        Stop when ``upper - lower <= tol`` (nats).
    max_iter : int
        Most interior-point iterations.
    lower : float, optional
        A lower bound on :math:`f^*` proven elsewhere (nats), e.g. a bivariate BROJA program's
        on two of the sources: :math:`-H_Q(T \mid A,B,C) \ge -H_Q(T \mid A,B)` and every
        :math:`Q \in \Delta_P` has the two marginals that program fixes, so its optimum
        bounds this one from below. It starts the bracket with the mutual-information bounds.

    Returns
    -------
    MaxEntBracket
        Proven bounds (nats) and the iterations used; the gap exceeds ``tol`` only when
        ``max_iter`` was reached.
    """
    with one_blas_thread():  # matrices of a few hundred rows: threads only contend
        return _solve_program(p, tol, max_iter, lower)


def _solve_program(p: np.ndarray, tol: float, max_iter: int, given: float) -> MaxEntBracket:
    keep = [p.sum(axis=tuple(a for a in range(4) if a != axis)) > 0 for axis in range(4)]
    p = p[np.ix_(*keep)]
    full = _Program(p)
    # I_Q(T;ABC) >= I(T;A) etc. on Delta_P; p and P(t)P(a|t)P(b|t)P(c|t) are feasible
    lower = max(given, max(_mutual_information(p, (0,), (k,)) for k in (1, 2, 3))
                - _entropy(full.p_t))
    upper = min(objective(p), objective(full.product))
    if upper - lower <= tol or p.shape[0] == 1:
        return MaxEntBracket(min(lower, upper), upper, 0)
    p_kept = _kept_cells(p, tol / (DROP_SHARE * full.n))
    reduced = p_kept is not p                      # some marginal entries were left out
    prog = _Program(p_kept) if reduced else full
    dropped = p - p_kept
    trivial = (min(lower, upper), upper)

    def finish(iterations: int) -> MaxEntBracket:
        """The bracket proven so far; bounds that cross by more than rounding are a fault
        (:data:`._bounds.CROSSING`, as for the bivariate solver): then only the trivial one."""
        if upper < lower - CROSSING * (1.0 + abs(lower)):
            return MaxEntBracket(*trivial, iterations)
        return MaxEntBracket(min(lower, upper), upper, iterations)

    def bracket(x: np.ndarray, q: np.ndarray) -> bool:
        """Certify the reduced program's dual point ``x`` and primal point ``q`` on the full
        program (lifted dual, dropped cells restored); whether the bracket is closed."""
        nonlocal lower, upper
        x_full = full.lift(x, prog) if reduced else x
        lower = max(lower, full.dual_bound(x_full, full.softmax(x_full)[0]))
        upper = min(upper, objective(prog.repair(q) + dropped))
        return upper - lower <= tol

    x = prog.x0.copy()
    resume = None           # where the last crossover ran out of steps (None: start afresh)
    live = prog.live
    n_live = float(live.sum())
    g, pi = prog.softmax(x)
    m = np.where(live, np.maximum(prog.product.sum(axis=0), START_MASS / n_live), 0.0)
    s = np.where(live, -g, 1.0)
    for it in range(1, max_iter + 1):
        q = m[None] * pi
        r_d = np.where(live, g + s, 0.0)  # dual residual: g + s = 0
        r_c0 = np.where(live, m * s, 0.0)
        r_q = prog.marginals(q) - prog.b  # primal residual
        eta = float(r_c0.sum())
        h = prog.newton_matrix(q, pi, np.where(live, m / s - m, 0.0))[np.ix_(prog.free,
                                                                               prog.free)]
        factor = _factor(h, _REFINE if eta < _REFINE_BELOW else 0)
        lin = (prog, factor, pi, m, s, r_q, r_d)
        dm_aff, ds_aff = _direction(*lin, r_c0)[1:]
        a_aff = _step_to_boundary(m, dm_aff, s, ds_aff, live, 1.0)
        eta_aff = float(np.where(live, (m + a_aff * dm_aff) * (s + a_aff * ds_aff), 0.0).sum())
        sigma = max(min(eta_aff / eta, 1.0) ** 3, SIGMA_MIN)
        second = np.maximum(dm_aff * ds_aff, -CORRECTOR_CAP * m * s)
        r_c = np.where(live, m * s - sigma * eta / n_live + second, 0.0)
        dx, dm, ds = _direction(*lin, r_c)
        alpha = _step_to_boundary(m, dm, s, ds, live, BOUNDARY)
        alpha = min(alpha, _MAX_LOG_STEP / max(float(np.max(np.abs(dx))), _MAX_LOG_STEP))
        norm0 = _norm(r_q[prog.free], r_d, r_c0 - np.where(live, sigma * eta / n_live, 0.0))
        for trial in range(MAX_BACKTRACK):
            x_n, m_n, s_n = x + alpha * dx, m + alpha * dm, s + alpha * ds
            g_n, pi_n = prog.softmax(x_n)
            # the slack a dual-feasible block actually has (g is convex, so the step leaves g
            # above its linearisation: without this the dual residual dominates the merit and
            # the line search crawls on composite sources)
            s_n = np.where(live & (g_n < 0), -g_n, s_n)
            norm_n = _norm((prog.marginals(m_n[None] * pi_n) - prog.b)[prog.free],
                           np.where(live, g_n + s_n, 0.0),
                           np.where(live, m_n * s_n - sigma * eta / n_live, 0.0))
            if norm_n <= (1.0 - SUFFICIENT * alpha) * norm0 or trial == MAX_BACKTRACK - 1:
                break
            alpha *= SHRINK
        if not math.isfinite(norm_n):     # a breakdown: stop with the bracket proven so far
            return finish(it)
        x, m, s, g, pi = x_n, np.where(live, m_n, 0.0), np.where(live, s_n, 1.0), g_n, pi_n
        if (eta <= CERT_FACTOR * tol or it >= CERT_FROM) and bracket(x, m[None] * pi):
            return finish(it)
        if it % _POLISH_EVERY == 0:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                resume = barrier(prog, m[None] * pi,
                                 float(np.sum(m * s)) / float(prog.allowed.sum()), tol,
                                 bracket, start=resume)
            if upper - lower <= tol:
                return finish(it)
    return finish(max_iter)


def _kept_cells(p: np.ndarray, threshold: float) -> np.ndarray:
    """``p`` without the cells of marginal entries :math:`P(t,a)`, :math:`P(t,b)`,
    :math:`P(t,c)` below ``threshold`` (repeated until every remaining entry is above it or
    zero); the interior-point method runs on this pmf and its marginals."""
    while True:
        entries = (p.sum(axis=(2, 3)), p.sum(axis=(1, 3)), p.sum(axis=(1, 2)))
        kept = [(e >= threshold) | (e == 0) for e in entries]
        if all(k.all() for k in kept):
            return p
        p = np.where(kept[0][:, :, None, None] & kept[1][:, None, :, None]
                     & kept[2][:, None, None, :], p, 0.0)


def _norm(*parts: np.ndarray) -> float:
    return math.sqrt(sum(float(np.vdot(r, r)) for r in parts))


def _factor(h: np.ndarray, refine: int):
    """Jacobi scaling and Cholesky factor (plus a tiny ridge) of the Newton matrix; ``refine``
    steps of iterative refinement for each solve."""
    scale = 1.0 / np.sqrt(np.maximum(np.diag(h), 1e-300))
    hs = h * scale[:, None] * scale[None, :]
    chol, info = dpotrf(hs + _RIDGE * np.eye(len(hs)), lower=False, clean=False)
    return hs, (chol if info == 0 else None), scale, refine


def _solve(factor, rhs: np.ndarray) -> np.ndarray:
    """Solve with :func:`_factor`'s output, refined against the matrix without the ridge;
    least squares where Cholesky broke down."""
    hs, chol, scale, refine = factor
    r = rhs * scale
    if chol is None:
        return np.linalg.lstsq(hs, r, rcond=None)[0] * scale
    y = dpotrs(chol, r, lower=False)[0]
    for _ in range(refine):
        y = y + dpotrs(chol, r - hs @ y, lower=False)[0]
    return y * scale


def _direction(prog: _Program, factor, pi: np.ndarray, m: np.ndarray, s: np.ndarray,
               r_q: np.ndarray, r_d: np.ndarray, r_c: np.ndarray):
    r"""Newton direction ``(dx, dm, ds)`` of the residuals ``r_q`` (marginals), ``r_d``
    (:math:`g + s`) and ``r_c`` (:math:`m s - \tau`), masses and slacks eliminated:
    ``H dx = -r_q - sum_k u_k (m_k r_d - r_c) / s_k``, ``ds = -r_d - u.dx``,
    ``dm = -(r_c + m ds) / s``."""
    coef = np.where(prog.live, (m * r_d - r_c) / s, 0.0)
    rhs = -r_q - prog.marginals(pi * coef[None])
    dx = np.zeros(prog.n)
    dx[prog.free] = _solve(factor, rhs[prog.free])
    u_dx = np.where(prog.allowed, pi * prog.cell_sum(dx), 0.0).sum(axis=0)
    ds = np.where(prog.live, -r_d - u_dx, 0.0)
    dm = np.where(prog.live, -(r_c + m * ds) / s, 0.0)
    return dx, dm, ds


def _step_to_boundary(m: np.ndarray, dm: np.ndarray, s: np.ndarray, ds: np.ndarray,
                      live: np.ndarray, fraction: float) -> float:
    """Largest ``alpha <= 1`` keeping masses and (linearised) slacks positive, times
    ``fraction`` when limited."""
    alpha = 1.0
    for v, dv in ((m, dm), (s, ds)):
        neg = live & (dv < 0)
        if neg.any():
            alpha = min(alpha, fraction * float(np.min(-v[neg] / dv[neg])))
    return alpha if math.isfinite(alpha) else 1.0
