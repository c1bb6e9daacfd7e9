r"""Crossover for iterates the interior-point method cannot finish, batched, on any backend:
a primal barrier method (:func:`barrier`, first) and a semismooth Newton method on the
optimality conditions (on the items the first leaves open).

**Why the dual iteration stalls.** Its variables are the logarithms of the conditional cell
masses, :math:`q(y \mid t,s) = e^{\lambda_{yt} + \mu_{ys} - h_{ts}}`, and Newton's method on
an exponential moves such a variable by about 1 per step when it must fall: pmfs whose
optimum puts masses of :math:`10^{-20}` to :math:`10^{-300}` in some cells (Dirichlet pmfs of
concentration 0.001-0.01) need dual moves of 30-700 and crawl for hundreds of iterations,
and on a nearly flat optimal face (block masses that change by tens of percent for an
objective change of :math:`10^{-6}`) the iterate sits far from the optimum with a small gap
that will not close. Traced on a 9 x 3 x 4 Dirichlet(0.01) pmf: at iteration 200 a block
with 30% of the optimal mass still had :math:`w = 10^{-6}` and dual variables had 30-50 left
to travel; the gap closed only after about 250 iterations.

**The primal barrier method** (:func:`barrier`) works on the cell masses themselves, which
move linearly: Newton's method on :math:`\phi_\tau(q) = f(q) - \tau\sum\ln q` over
:math:`\Delta_P`, with the KKT system solved whole (:func:`kkt_direction`) and :math:`\tau`
decreased to :math:`\mathrm{tol}/(8N)`; at the minimiser of :math:`\phi_\tau` the
multipliers of the marginal constraints are a dual point whose gap to the primal one is
exactly :math:`\tau N` (``N`` cells). Marginal entries below :func:`drop_threshold`
(:math:`\mathrm{tol} / (2m)` for ``m`` marginal entries, :data:`DROP_SHARE`, and always those
below :data:`DROP`) are left out of it, with their cells: at the barrier's resolution they
would keep every iterate from certifying. The certificate below is computed on the full
problem, their dual variables are set by :func:`lift_dual` and the mass of their cells restored
by the repair, so what they change is inside the certified bracket (about their mass times a
logarithm).

**The semismooth Newton method.**
A stalled interior-point run (``docs/broja.md``) ends with the complementarity products
:math:`w_{ts}s_{ts}` collapsed while the marginals are still off: the bounds
:math:`w, s \ge 0` and the fraction-to-boundary rule shrink every step to a few percent.
Here the slacks are eliminated and the bound :math:`w \ge 0` with its complementarity is
written as one equation per block with the Fischer-Burmeister function
:math:`\phi(a, b) = a + b - \sqrt{a^2 + b^2}` (zero exactly when :math:`a, b \ge 0` and
:math:`ab = 0`):

.. math::

    \sum_s w_{ts}\pi_{ts}(y) = P(y,t),\qquad \sum_t w_{ts}\pi_{ts}(y) = P(y,s),\qquad
    \phi(c_{ts} w_{ts},\ -h_{ts}(\lambda,\mu)) = 0,

a square system in :math:`(\lambda, \mu, w)` (one ``mu`` per ``y`` pinned as in
:mod:`._ipm`; :math:`c_{ts} = 1/\min(P(t), P(s))` puts block masses on the scale of the
logits) with no inequality left, so Newton steps are not cut short by any boundary. Where
:math:`c w \gg -h` the row is the active constraint :math:`h_{ts} = 0`, where
:math:`-h \gg c w` it is :math:`w_{ts} = 0`: the optimal support is found by the iteration,
not guessed. Its generalised Jacobian (Qi and Sun 1993) has the marginal rows of the
interior-point matrix in the limit :math:`s \to 0`,

.. math::

    \begin{pmatrix} K & \Pi \\ D_h \Pi^\top & D_w \end{pmatrix},\qquad
    K = E^\top \Big[\bigoplus_{ts} w_{ts}\big(\mathrm{Diag}(\pi_{ts}) -
    \pi_{ts}\pi_{ts}^\top\big)\Big] E,

(``E`` maps :math:`(\lambda,\mu)` to the logits, :math:`\Pi` holds the columns
:math:`E^\top\pi_{ts}`, :math:`D_h = -(1 + h/r)`, :math:`D_w = c(1 - cw/r)`,
:math:`r = \sqrt{(cw)^2 + h^2}`), factorised densely (LU) with :data:`REGULARISATION` added
to the diagonal. Steps are damped by a backtracking line search on :math:`\|F\|` (the
Fischer-Burmeister merit function is continuously differentiable) and capped at
:data:`MAX_LOG_STEP` in the logits. Cells whose softmax weight is below :data:`CELL_FLOOR`
are left out of the system (cells of zero optimal mass inside a block with mass would send the
dual variables to infinity); that cell set is refreshed every :data:`NEWTON_ITER` steps.

Nothing here is trusted: every iterate of both methods is turned into a certificate by the
same functions as the interior-point iterates (:func:`~._bounds.dual_bound` on the *full*
problem, :func:`~._bounds.repair` of the primal point, :math:`q` or :math:`\max(w, 0)\,\pi`),
so a failed run costs time, never a wrong bound.

References
----------
A. Fischer, "A special Newton-type optimization method", Optimization 24, 269 (1992).
L. Qi, J. Sun, "A nonsmooth version of Newton's method", Math. Programming 58, 353 (1993).
T. De Luca, F. Facchinei, C. Kanzow, "A semismooth equation approach to the solution of
nonlinear complementarity problems", Math. Programming 75, 407 (1996).
S. Boyd, L. Vandenberghe, "Convex Optimization", Cambridge (2004), sections 10.2 (Newton's
method with equality constraints, infeasible start) and 11.3 (the barrier method).
"""

from __future__ import annotations

import math
from typing import Any

from ..._backend import Backend
from ..._threads import one_blas_thread
from ._bounds import dual_bound, neg_conditional_entropy, repair, upper_bound
from ._problem import Best, Problem, logits, pin_gauge

__all__ = ["barrier", "drop_threshold", "kkt_direction", "lift_dual", "polish"]

#: Cells whose softmax weight is below this are left out of the Newton system (their mass,
#: at most this times the block's, is negligible next to the tolerance).
CELL_FLOOR = 1e-16
#: Rounds (the cell set is refreshed at the start of each), and Newton steps per round.
ROUNDS, NEWTON_ITER = 4, 15
#: Largest change of any logit lambda + mu in one Newton step (Newton on an exponential
#: closes a gap of order 1 per step; longer steps only overflow).
MAX_LOG_STEP = 20.0
#: Residual norm at which the iteration stops (the system is solved).
SOLVED = 1e-14
#: Added to the diagonal of the Jacobian (times c on the w rows): the (lambda, mu) block is
#: only positive semidefinite.
REGULARISATION = 1e-13
#: Backtracking of both methods' line searches (:func:`_backtrack`): halve the step at most
#: this many times; Armijo constant of the decrease (of ||F||^2 / 2, of the barrier function);
#: an item stays put when no step qualifies.
BACKTRACK, SUFFICIENT = 20, 0.01
#: Largest number of unknowns of the dense Newton systems of both methods that are factorised:
#: of their |Y|(|T| + |S|) + |T||S| rows, those of free dual variables (marginal entries kept,
#: not pinned) and of blocks holding cells (:func:`_solve_active`). Dense cubic pmfs reach it
#: at k = 30 (k = 32: 3072 rows, about 0.5 s per LU factorisation on one thread); the sparse
#: pmfs that need the crossover have far fewer such rows (Dirichlet(0.001) at k = 32: about
#: 2150 of 3072, 0.2 s). Larger systems are skipped: the method stops there.
MAX_UNKNOWNS = 2560
#: Iterates whose dual variables exceed this in magnitude are not certified (their rounding
#: error, about 1e-16 times it, would no longer be negligible next to the tolerance).
LARGEST_DUAL = 1e4
#: Most bytes of the Newton matrices of one batch of :func:`barrier` (items run in chunks).
KKT_MEMORY = 2**28
#: Marginal entries :math:`P(y,t)`, :math:`P(y,s)` below this are always left out of the
#: barrier problem (with them, their cells: a cell can carry no more than its marginals); their
#: mass is restored by the repair of the certificate and their dual variables by
#: :func:`lift_dual`.
DROP = 1e-60
#: ... and so are those below ``tol / (DROP_SHARE m)`` (``m = |Y|(|T| + |S|)`` marginal
#: entries), :func:`drop_threshold`. Entries that small sit at the barrier's resolution
#: (:math:`\tau \ge \mathrm{tol}/(8N)`, ``N`` cells): kept, their multipliers grow like
#: :math:`\tau/P` and no iterate certifies. Dropped, each costs the certified gap about its
#: mass times :math:`|\ln(q^*(y \mid t,s)/P)|`, since :func:`lift_dual` gives its cells
#: weights of the order of the entry itself: a few ``tol / m`` at the very most, and far less
#: on the heavy-tailed pmfs where it matters (where the cost is too high the certificate simply
#: does not reach ``tol`` and the iteration goes on). Measured in a development run on
#: Dirichlet(0.001) pmfs with alphabets 13-20 (3 per alphabet, 2026-12-05): with DROP alone 21
#: of 24 stopped at ``max_iter`` (gaps 1e-7..2e-4 bits, 8-55 s each); with this threshold and
#: those weights 11 of the 20 re-run were certified (10 by the first crossover), and with the
#: dual bound's local repair (:func:`._bounds.local_repair`) the recorded sweep
#: (``benchmarks/broja_stalls.py``, families "dirichlet(0.001) large" and "huge", k = 12-32)
#: has no stall left.
DROP_SHARE = 2.0
#: Smallest weight :math:`e^{\lambda + \mu}` that :func:`lift_dual` gives the cells of a
#: dropped marginal entry (the entry's own mass otherwise).
DROPPED_WEIGHT = 1e-300
#: Share of the independent coupling mixed into the barrier's start (every cell positive).
MIX = 1e-6
#: Most Newton steps of the barrier method (per crossover). 40 left a 20 x 20 x 20
#: Dirichlet(0.001) pmf (``benchmarks/broja_stalls.py`` seed 1) at a gap of 1.8e-9 bits with
#: its lower bound still falling by a factor 3-4 per step, and the interior-point iteration
#: then ran to ``max_iter`` (40 s); with 60 the first crossover certifies it (1.6 s).
BARRIER_STEPS = 60
#: The barrier parameter falls (by TAU_SHRINK) once the Newton decrement is below CENTRED
#: times tau N.
CENTRED, TAU_SHRINK = 1.0, 0.1


def _residual(pb: Any, lam: Any, mu: Any, w: Any, scale: Any, xp: Backend):
    """``(h, pi, F)``: the constraint values, softmax columns and the residual ``F[b, n]``
    of the square system (rows of fixed variables are 0)."""
    h, pi = logits(lam, mu, pb.allowed, xp)
    q = w[:, None] * pi
    nb = lam.shape[0]
    f_lam = xp.where(pb.free_lam, xp.sum(q, axis=3) - pb.p_yt, 0.0)
    f_mu = xp.where(pb.free_mu, xp.sum(q, axis=2) - pb.p_ys, 0.0)
    cw = scale * w
    f_h = xp.where(pb.live, cw - h - (cw * cw + h * h) ** 0.5, 0.0)
    res = xp.concatenate([f_lam.reshape(nb, -1), f_mu.reshape(nb, -1), f_h.reshape(nb, -1)],
                         axis=1)
    return h, pi, res


def _jacobian(pb: Any, w: Any, pi: Any, h: Any, scale: Any, xp: Backend):
    """The regularised generalised Jacobian ``J[b, n, n]`` of :func:`_residual` in
    ``(lam, mu, w)`` (row-major layouts ``(y, t)``, ``(y, s)``, ``(t, s)``); fixed variables
    get identity rows and columns."""
    nb, ny, nt, ns = pi.shape
    eye_y, eye_t, eye_s = (xp.eye(n, like=pi) for n in (ny, nt, ns))
    # per block: w (Diag(pi) - pi pi^T), indexed [b, y, z, t, s]
    hb = (xp.einsum("byts,yz->byzts", pi, eye_y) - xp.einsum("byts,bzts->byzts", pi, pi))
    hb = hb * w[:, None, None]
    ll = xp.einsum("byzts,tu->bytzu", hb, eye_t).reshape(nb, ny * nt, ny * nt)
    mm = xp.einsum("byzts,sv->byszv", hb, eye_s).reshape(nb, ny * ns, ny * ns)
    lm = xp.einsum("byzts->bytzs", hb).reshape(nb, ny * nt, ny * ns)
    lw = xp.einsum("byts,tu->bytus", pi, eye_t).reshape(nb, ny * nt, nt * ns)
    mw = xp.einsum("byts,sv->bystv", pi, eye_s).reshape(nb, ny * ns, nt * ns)
    cw = scale * w
    r = (cw * cw + h * h) ** 0.5
    r_safe = xp.where(r > 0, r, 1.0)
    d_h = xp.where(r > 0, -(1.0 + h / r_safe), -1.0).reshape(nb, nt * ns)
    d_w = (scale * xp.where(r > 0, 1.0 - cw / r_safe, 1.0)).reshape(nb, nt * ns)
    top = xp.concatenate([ll, lm, lw], axis=2)
    mid = xp.concatenate([xp.swapaxes(lm, 1, 2), mm, mw], axis=2)
    bottom = xp.concatenate([xp.swapaxes(lw, 1, 2) * d_h[:, :, None],
                             xp.swapaxes(mw, 1, 2) * d_h[:, :, None],
                             xp.zeros((nb, nt * ns, nt * ns), like=pi)], axis=2)
    jac = xp.concatenate([top, mid, bottom], axis=1)
    free = xp.float64(xp.concatenate([pb.free_lam.reshape(nb, -1), pb.free_mu.reshape(nb, -1),
                                      pb.live.reshape(nb, -1)], axis=1))
    jac = jac * free[:, :, None] * free[:, None, :]
    sign = xp.concatenate([xp.zeros((nb, ny * (nt + ns)), like=pi) + REGULARISATION,
                           d_w + REGULARISATION * scale.reshape(nb, nt * ns)], axis=1)
    diag = xp.diagonal(jac)
    diag += (1.0 - free) + free * sign
    return jac


def _certify(pb: Any, lam: Any, mu: Any, q: Any, xp: Backend):
    """Bounds ``(low, up, lam_f, mu_f, q_f)`` per item of the dual point ``(lam, mu)`` and the
    primal point ``q >= 0`` by the general certificate on the full problem ``pb``;
    ``-inf``/``+inf`` where they are not finite or the dual variables exceed
    :data:`LARGEST_DUAL`."""
    h, _ = logits(lam, mu, pb.allowed, xp)
    lam_f, mu_f, low = dual_bound(lam, mu, h, pb.p_yt, pb.p_ys, pb.live, xp)
    up, q_f = upper_bound(q, pb.p_yt, pb.p_ys, xp)
    size = xp.maximum(xp.max(abs(lam_f), axis=(1, 2)), xp.max(abs(mu_f), axis=(1, 2)))
    sound = xp.isfinite(low) & xp.isfinite(up) & (size <= LARGEST_DUAL)
    return (xp.where(sound, low, -float("inf")), xp.where(sound, up, float("inf")),
            lam_f, mu_f, q_f)


def _reduced(pb: Any, lam: Any, mu: Any, xp: Backend) -> Any:
    """The problem on the cells whose softmax weight at ``(lam, mu)`` is at least
    :data:`CELL_FLOOR`, with the dual variables of marginals left without a cell fixed."""
    _, pi = logits(lam, mu, pb.allowed, xp)
    cells = pb.allowed & (pi >= CELL_FLOOR)
    live = xp.any(cells, axis=1)
    return Problem(pb.p_yt, pb.p_ys, cells, live, pb.m,
                        pb.free_lam & xp.any(cells, axis=3), pb.free_mu & xp.any(cells, axis=2))


def polish(pb: Any, state: tuple[Any, ...], tol: float, xp: Backend):
    r"""Crossover from interior-point iterates ``state = (lam, mu, w, slack, h, pi)`` of the
    sub-batch ``pb`` (:class:`._problem.Problem`).

    First the primal barrier method (:func:`barrier`) from the primal iterate
    :math:`w\pi`, with the barrier parameter :math:`\sum w s / N` of the iterate (``N``
    cells; the batch in chunks of at most :data:`KKT_MEMORY` bytes of Newton matrices). Then,
    on the items it leaves above ``tol`` (nats), the semismooth Newton method of the module
    docstring: :data:`ROUNDS` rounds of at most :data:`NEWTON_ITER` damped Newton steps,
    restricted to the cells of :func:`_reduced`, from the iterate and, where that does not
    certify ``tol``, once more from the best certified points (the dual point of the best lower
    bound, the block masses of the best primal point). Every iterate of both is certified on
    the full problem; a method stops once every item's best bracket is below ``tol`` or its
    iteration cannot progress (the best bounds so far are returned); an item whose Newton
    system is singular stops where it is, and the others go on. Each method skips a batch
    whose Newton systems have more than :data:`MAX_UNKNOWNS` active rows (the bounds then stay
    infinite).

    Returns
    -------
    low, up, lam, mu, q
        Per item the best certified lower bound and its feasible dual point, the best upper
        bound and its feasible primal point (``-inf``/``+inf`` where no iterate was sound).
    """

    lam, mu, w, sl, _, pi = state
    nb, ny, nt = lam.shape
    ns = mu.shape[2]
    best = Best(xp.zeros((nb,), like=lam) - float("inf"),
                xp.zeros((nb,), like=lam) + float("inf"), xp.copy(lam), xp.copy(mu),
                xp.zeros((nb, *pb.allowed.shape[1:]), like=lam))
    nl = ny * (nt + ns)
    size = nl + nt * ns
    fields = ("low", "up", "lam", "mu", "q")
    with one_blas_thread():
        cells = xp.sum(xp.float64(pb.allowed), axis=(1, 2, 3))
        tau = xp.sum(xp.where(pb.live, w * sl, 0.0), axis=(1, 2)) / xp.maximum(cells, 1.0)
        chunk = max(1, KKT_MEMORY // (8 * size * size))
        for start in range(0, nb, chunk):
            part = slice(start, start + chunk)
            sub = Best(*(getattr(best, k)[part] for k in fields))   # views: updated in place
            barrier(pb.take(part), w[part, None] * pi[part], tau[part], tol, sub, xp)
        stuck = best.up - best.low > tol
        if xp.any(stuck):
            sub = Best(*(getattr(best, k)[stuck] for k in fields))
            sub_pb = pb.take(stuck)
            _newton_rounds(sub_pb, (lam[stuck], mu[stuck], w[stuck]), sub, tol, nl, xp)
            if not xp.all(sub.up - sub.low <= tol):
                _newton_rounds(sub_pb, (sub.lam, sub.mu, xp.sum(sub.q, axis=1)), sub, tol, nl,
                               xp)
            best.update(stuck, sub.low, sub.lam, sub.mu, sub.up, sub.q, xp)
    return best.low, best.up, best.lam, best.mu, best.q


def _newton_rounds(pb: Any, point: tuple[Any, Any, Any], best: Any, tol: float, nl: int,
                   xp: Backend) -> None:
    """The rounds of :func:`polish`, recording every certified iterate in ``best``
    (:class:`._problem.Best`)."""
    lam, mu, w = point
    nb = lam.shape[0]
    everyone = best.low == best.low                  # every item (the bounds are never NaN)
    p_t, p_s = xp.sum(pb.p_yt, axis=1), xp.sum(pb.p_ys, axis=1)
    room = xp.minimum(p_t[:, :, None], p_s[:, None, :])
    scale = 1.0 / xp.where(room > 0, room, 1.0)
    for _ in range(ROUNDS):
        red = _reduced(pb, lam, mu, xp)
        active = xp.concatenate([xp.reshape(red.free_lam, (nb, -1)),
                                 xp.reshape(red.free_mu, (nb, -1)),
                                 xp.reshape(red.live, (nb, -1))], axis=1)
        if _too_large(active, xp):
            return
        w = xp.where(red.live, w, 0.0)
        h, pi, res = _residual(red, lam, mu, w, scale, xp)
        for _ in range(NEWTON_ITER):
            low, up, lam_f, mu_f, q_f = _certify(pb, lam, mu,
                                                 xp.maximum(w, 0.0)[:, None] * pi, xp)
            best.update(everyone, low, lam_f, mu_f, up, q_f, xp)
            if xp.all(best.up - best.low <= tol):
                return
            jac = _jacobian(red, w, pi, h, scale, xp)
            ok = xp.isfinite(xp.sum(res, axis=1)) & xp.isfinite(xp.sum(jac, axis=(1, 2)))
            jac = xp.where(ok[:, None, None], jac, xp.eye(jac.shape[1], like=jac))
            res = xp.where(ok[:, None], res, 0.0)
            d = -_solve_active(jac, res, active, xp)   # NaN where singular: that item stays
            point = (lam, mu, w, h, pi, res)
            merit = xp.sum(res * res, axis=1)
            point, moved = _line_search(red, point, d, -merit, nl, scale, xp)
            # where Newton's direction gives no decrease: the scaled steepest descent of
            # ||F||^2 / 2, -J^T F ||F||^2 / ||J^T F||^2 (De Luca, Facchinei, Kanzow 1996)
            grad = (xp.swapaxes(jac, 1, 2) @ res[:, :, None])[:, :, 0]
            g2 = xp.sum(grad * grad, axis=1)
            d = -grad * (merit / xp.where(g2 > 0, g2, 1.0))[:, None]
            stuck = ~moved & (g2 > 0)
            if xp.any(stuck):
                point, rescued = _line_search(red, point, d, xp.where(stuck, -merit, 0.0), nl,
                                              scale, xp)
                moved = moved | rescued
            lam, mu, w, h, pi, res = point
            if xp.all(xp.sum(res * res, axis=1) <= SOLVED ** 2):
                return
            if not xp.any(moved):                 # no decrease: refresh the cells, or stop
                break


def _line_search(pb: Any, point: tuple[Any, ...], d: Any, slope: Any, nl: int, scale: Any,
                 xp: Backend) -> tuple[tuple[Any, ...], Any]:
    r"""Damped step along ``d``: per item the first of :math:`a_0, a_0/2, \dots`
    (:math:`a_0 = \min(1, \text{MAX\_LOG\_STEP}/\|d_{\lambda\mu}\|_\infty)`) with the
    Armijo decrease :math:`\tfrac12\|F(x + a d)\|^2 \le \tfrac12\|F(x)\|^2 +
    \text{SUFFICIENT}\; a\, \text{slope}` (``slope`` :math:`= F^\top J d`, negative for a
    descent direction). Returns the new point (items without such a step stay where they
    are) and which items moved."""
    lam, mu, w, h, pi, res = point
    nb, ny, nt = lam.shape
    ns = mu.shape[2]
    d_lam = d[:, :ny * nt].reshape(nb, ny, nt)
    d_mu = d[:, ny * nt:nl].reshape(nb, ny, ns)
    d_w = d[:, nl:].reshape(nb, nt, ns)
    size = xp.max(abs(d[:, :nl]), axis=1)
    a = xp.minimum(MAX_LOG_STEP / xp.maximum(size, MAX_LOG_STEP), 1.0)
    a = xp.where(xp.isfinite(a) & (slope < 0), a, 0.0)
    merit0 = 0.5 * xp.sum(res * res, axis=1)

    def trial_at(a):
        size3 = a[:, None, None]
        trial = (lam + size3 * d_lam, mu + size3 * d_mu, w + size3 * d_w)
        h_n, pi_n, res_n = _residual(pb, *trial, scale, xp)
        merit = 0.5 * xp.sum(res_n * res_n, axis=1)
        return merit <= merit0 + SUFFICIENT * a * slope, (*trial, h_n, pi_n, res_n)

    out, moved = _backtrack(point, a, a > 0, trial_at, xp)
    return tuple(out), moved


def _backtrack(start: tuple[Any, ...], a: Any, waiting: Any, trial_at, xp: Backend
               ) -> tuple[list[Any], Any]:
    """Per item, the first step length of ``a, a/2, ...`` (at most :data:`BACKTRACK` tries)
    whose trial point is accepted: ``trial_at(a)`` returns ``(accepted (B,), trial arrays)``,
    the arrays in the order of ``start``. Items in ``waiting`` take their first accepted trial
    point; the others, and those with none accepted, keep ``start``. Returns the new arrays
    and which items moved."""
    moved = waiting & False
    out = [xp.copy(x) for x in start]
    for _ in range(BACKTRACK):
        accepted, trial = trial_at(a)
        ok = waiting & accepted
        for x, t in zip(out, trial, strict=True):
            x[ok] = t[ok]
        moved = moved | ok
        waiting = waiting & ~ok
        if not xp.any(waiting):
            break
        a = a * 0.5
    return out, moved


# -- the primal barrier method ---------------------------------------------------------------


def barrier(pb: Any, q_start: Any, tau: Any, tol: float, best: Any, xp: Backend) -> None:
    r"""The primal log-barrier method on :math:`\Delta_P`, batched, recording every certified
    iterate in ``best`` (:class:`._problem.Best`).

    On the cells of the marginal entries of at least :func:`drop_threshold` (the others are
    left out, see :func:`lift_dual`) it minimises, for decreasing :math:`\tau`,

    .. math::

        \phi_\tau(q) = \sum_{y,t,s} q \ln q(y \mid t, s) - \tau \sum_{y,t,s} \ln q
        \quad \text{s.t.} \quad Q(y,t) = P(y,t),\ Q(y,s) = P(y,s),

    by Newton's method: each step solves the KKT system of :func:`kkt_direction` (whose
    multipliers :math:`-\nu` are the dual point), stays inside :math:`q > 0` by the
    fraction-to-boundary rule and backtracks on :math:`\phi_\tau` (:data:`SUFFICIENT`);
    :math:`\tau` falls by :data:`TAU_SHRINK` once the Newton decrement is below
    :data:`CENTRED` :math:`\tau N` (near the minimiser of :math:`\phi_\tau`, whose dual point
    has a gap of :math:`\tau N` to it) down to :math:`\mathrm{tol}/(8N)`. The primal start
    is ``q_start`` repaired onto the reduced marginals and mixed with :data:`MIX` of the
    independent coupling :math:`P(y,t)P(y,s)/P(y)`, so that every cell is positive; ``tau``
    ``(B,)`` is the first barrier parameter. At most :data:`BARRIER_STEPS` steps; an item
    stops moving when no step length decreases :math:`\phi_\tau`.

    Unlike the dual iteration, whose variables are logarithms of the cell masses (a cell that
    must fall by :math:`e^{-30}` takes about 30 Newton steps), the primal variables move
    linearly: on a nearly flat optimal face mass moves between blocks in one step, and a cell
    shrinks by the fraction-to-boundary factor per step.
    """
    p_yt, p_ys = pb.p_yt, pb.p_ys
    nb = p_yt.shape[0]
    drop = drop_threshold(tol, p_yt.shape[1] * (p_yt.shape[2] + p_ys.shape[2]))
    keep_yt, keep_ys = p_yt >= drop, p_ys >= drop
    r_yt, r_ys = xp.where(keep_yt, p_yt, 0.0), xp.where(keep_ys, p_ys, 0.0)
    cells = keep_yt[:, :, :, None] & keep_ys[:, :, None, :]
    free_lam, free_mu = keep_yt, keep_ys & ~pin_gauge(r_ys, xp)
    p_y = xp.sum(r_yt, axis=2)
    independent = (r_yt[:, :, :, None] * r_ys[:, :, None, :]
                   / xp.where(p_y > 0, p_y, 1.0)[:, :, None, None])
    active = xp.concatenate([xp.reshape(free_lam, (nb, -1)), xp.reshape(free_mu, (nb, -1)),
                             xp.reshape(xp.any(cells, axis=1), (nb, -1))], axis=1)
    if _too_large(active, xp):
        return
    q = repair(xp.where(cells, q_start, 0.0), r_yt, r_ys, xp)
    q = xp.where(cells, (1.0 - MIX) * q + MIX * independent, 0.0)
    n_cells = xp.maximum(xp.sum(xp.float64(cells), axis=(1, 2, 3)), 1.0)
    tau_min = tol / (8.0 * n_cells)
    tau = xp.maximum(tau, tau_min)
    everyone = best.low == best.low
    moving = everyone
    for _ in range(BARRIER_STEPS):
        g = _barrier_gradient(q, cells, tau, xp)
        res_yt = xp.where(free_lam, r_yt - xp.sum(q, axis=3), 0.0)
        res_ys = xp.where(free_mu, r_ys - xp.sum(q, axis=2), 0.0)
        # NaN where an item's system is singular: its bounds are not sound, it stops moving
        dq, nu_t, nu_s = kkt_direction(q, g, cells, (res_yt, res_ys), (free_lam, free_mu),
                                       tau, xp, active)
        # variables far below -LARGEST_DUAL (cells with q << tau, whose barrier term dominates
        # their multipliers) carry no weight: they are reset as those of dropped marginals
        lam, mu = -nu_t, -nu_s
        lam, mu = lift_dual(lam, mu, keep_yt & (lam >= -LARGEST_DUAL / 2),
                            keep_ys & (mu >= -LARGEST_DUAL / 2), p_yt, p_ys, xp)
        low, up, lam_f, mu_f, q_f = _certify(pb, lam, mu, q, xp)
        best.update(everyone, low, lam_f, mu_f, up, q_f, xp)
        if xp.all((best.up - best.low <= tol) | ~moving):
            return
        slope = xp.sum(g * dq, axis=(1, 2, 3))           # minus the Newton decrement
        q, moving = _barrier_line_search(q, dq, slope, cells, tau, xp)
        centred = -slope <= CENTRED * tau * n_cells
        tau = xp.where(centred, xp.maximum(tau * TAU_SHRINK, tau_min), tau)


def _barrier_gradient(q: Any, cells: Any, tau: Any, xp: Backend) -> Any:
    r"""The gradient of :math:`\phi_\tau`, :math:`\ln q(y \mid t,s) - \tau / q` on the cells
    (0 elsewhere)."""
    q_ts = xp.sum(q, axis=1, keepdims=True)
    safe = xp.where(cells, q, 1.0)
    return xp.where(cells, xp.log(safe / xp.where(q_ts > 0, q_ts, 1.0))
                    - tau[:, None, None, None] / safe, 0.0)


def _barrier_value(q: Any, cells: Any, tau: Any, xp: Backend) -> Any:
    r""":math:`\phi_\tau(q)` per item (:func:`barrier`)."""
    logs = xp.sum(xp.where(cells, xp.log(xp.where(cells, q, 1.0)), 0.0), axis=(1, 2, 3))
    return neg_conditional_entropy(q, xp) - tau * logs


def kkt_direction(q: Any, g: Any, cells: Any, residual: tuple[Any, Any],
                  free: tuple[Any, Any], tau: Any, xp: Backend,
                  active: Any) -> tuple[Any, Any, Any]:
    r"""The Newton step of :func:`barrier` and its multipliers, from the KKT system

    .. math::

        \begin{pmatrix} H & A^\top \\ A & 0 \end{pmatrix}
        \begin{pmatrix} \Delta q \\ \nu \end{pmatrix} =
        \begin{pmatrix} -g \\ r \end{pmatrix},\qquad
        H_{ts} = \mathrm{Diag}\Big(\frac{q + \tau}{q^2}\Big)
        - \frac{\mathbf 1 \mathbf 1^\top}{q(t,s)},

    with ``A`` the marginal rows (``residual`` = :math:`r = P - Aq` on the ``free`` rows; one
    ``(y, s)`` row per ``y`` is redundant and replaced by an identity row, as are the rows of
    dropped marginals) and ``H`` the Hessian of :math:`\phi_\tau` (one block per ``(t, s)``).
    With :math:`u = q/\sqrt{q + \tau}`, :math:`\Delta q = u \circ z` and the constraint rows
    scaled to unit norm (:math:`\tilde A = D_r A\,\mathrm{Diag}(u)`; a row whose cells all
    underflowed is fixed too), the scaled Hessian is
    :math:`I - \sum_{ts} u_{ts} u_{ts}^\top / q(t,s)`; with one more unknown per block,
    :math:`\zeta_{ts} = u_{ts}^\top z / q(t,s)`, the cell unknowns are eliminated exactly,
    :math:`z = -u \circ g - \tilde A^\top \tilde\nu + \sum_{ts} \zeta_{ts} u_{ts}`, leaving

    .. math::

        \begin{pmatrix} \tilde A \tilde A^\top & -\tilde A U \\ -U^\top \tilde A^\top &
        -\mathrm{Diag}(\kappa) \end{pmatrix}
        \begin{pmatrix} \tilde\nu \\ \zeta \end{pmatrix} =
        \begin{pmatrix} -D_r r - \tilde A (u \circ g) \\ U^\top (u \circ g) \end{pmatrix},
        \qquad \kappa_{ts} = \sum_y \frac{q\,\tau}{q + \tau},

    of :math:`|Y|(|T| + |S|) + |T||S|` rows (the unknowns of the semismooth system), solved
    by LU on the ``active`` rows only (:func:`_solve_active`: the free variables and the
    blocks holding cells). Its entries are at most 1 and
    :math:`\kappa \approx \tau N_{ts}` stays on the diagonal: eliminating :math:`\zeta`
    instead would leave :math:`1/\kappa`, a penalty-like matrix with condition number near
    :math:`1/\tau`. Returns ``(dq, nu_t, nu_s)``, shapes
    ``(B, Y, T, S)``, ``(B, Y, T)``, ``(B, Y, S)``.
    """
    nb, ny, nt, ns = q.shape
    nl, nm, nk = ny * nt, ny * ns, nt * ns
    t4 = tau[:, None, None, None]
    u2 = xp.where(cells, q * q / (q + t4), 0.0)                   # u^2
    kappa = xp.sum(xp.where(cells, q * t4 / (q + t4), 0.0), axis=1)
    fl, fm = (xp.float64(f) for f in free)
    sc_t, sc_s = (xp.where(n > 0, f / xp.where(n > 0, n, 1.0), 0.0)  # row scaling D_r
                  for f, n in ((fl, xp.sum(u2, axis=3) ** 0.5), (fm, xp.sum(u2, axis=2) ** 0.5)))
    # A A^T: unit diagonal (identity on fixed rows), cross terms (y, t)-(y, s)
    cross = xp.zeros((nb, ny, nt, ny, ns), like=q)                 # [b, y, t, y', s]
    xp.diagonal(cross, 1, 3)[...] = xp.moveaxis(
        u2 * sc_t[..., None] * sc_s[:, :, None, :], 1, 3)
    cross = cross.reshape(nb, nl, nm)
    # -A U: row (y, t) meets the blocks (t, s), row (y, s) the blocks (t, s)
    b_t = xp.zeros((nb, ny, nt, nt, ns), like=q)                   # [b, y, t, t', s]
    xp.diagonal(b_t, 2, 3)[...] = -xp.swapaxes(u2 * sc_t[..., None], 2, 3)
    b_s = xp.zeros((nb, ny, ns, nt, ns), like=q)                   # [b, y, s, t, s']
    xp.diagonal(b_s, 2, 4)[...] = -u2 * sc_s[:, :, None, :]
    b = xp.concatenate([b_t.reshape(nb, nl, nk), b_s.reshape(nb, nm, nk)], axis=1)
    top = xp.concatenate([xp.concatenate([xp.zeros((nb, nl, nl), like=q), cross], axis=2),
                          xp.concatenate([xp.swapaxes(cross, 1, 2),
                                          xp.zeros((nb, nm, nm), like=q)], axis=2)], axis=1)
    xp.diagonal(top)[...] += 1.0
    corner = xp.zeros((nb, nk, nk), like=q)
    xp.diagonal(corner)[...] -= xp.where(xp.any(cells, axis=1), kappa, 1.0).reshape(nb, nk)
    matrix = xp.concatenate([xp.concatenate([top, b], axis=2),
                             xp.concatenate([xp.swapaxes(b, 1, 2), corner], axis=2)], axis=1)
    ug = u2 * g                                                    # u (u o g), per cell
    rhs = xp.concatenate([-((residual[0] + xp.sum(ug, axis=3)) * sc_t).reshape(nb, nl),
                          -((residual[1] + xp.sum(ug, axis=2)) * sc_s).reshape(nb, nm),
                          xp.sum(ug, axis=1).reshape(nb, nk)], axis=1)
    sol = _solve_active(matrix, rhs, active, xp)
    nu_t = sol[:, :nl].reshape(nb, ny, nt) * sc_t
    nu_s = sol[:, nl:nl + nm].reshape(nb, ny, ns) * sc_s
    zeta = sol[:, nl + nm:].reshape(nb, nt, ns)
    dq = u2 * (zeta[:, None] - g - nu_t[:, :, :, None] - nu_s[:, :, None, :])
    return xp.where(cells, dq, 0.0), nu_t, nu_s


def _too_large(active: Any, xp: Backend) -> bool:
    """Whether the rows active in some item (``active`` ``(B, n)``) exceed
    :data:`MAX_UNKNOWNS`."""
    return int(xp.sum(xp.float64(xp.any(active, axis=0)))) > MAX_UNKNOWNS


def _solve_active(matrix: Any, rhs: Any, active: Any, xp: Backend) -> Any:
    r"""``matrix^{-1} rhs`` for ``matrix`` ``(B, n, n)`` and ``rhs`` ``(B, n)`` whose rows and
    columns outside ``active`` (``(B, n)``) are unit (or minus unit) diagonal ones with a zero
    right-hand side: the variables the Newton systems of both methods fix (pinned or dropped
    dual variables, blocks without cells). Their solution is 0, so only the rows active in
    some item of the batch are factorised (LU): on the sparse pmfs that need the crossover,
    2150 of 3072 rows at k = 32, a third of the time."""
    rows = xp.any(active, axis=0)
    if bool(xp.all(rows)):
        return xp.solve(matrix, rhs[:, :, None])[:, :, 0]
    out = xp.zeros(rhs.shape, like=rhs)
    out[:, rows] = xp.solve(matrix[:, rows][:, :, rows], rhs[:, rows][:, :, None])[:, :, 0]
    return out


def drop_threshold(tol: float, entries: int) -> float:
    """The smallest marginal entry :func:`barrier` keeps: :data:`DROP` or
    ``tol / (DROP_SHARE * entries)``, whichever is larger (``entries`` = ``|Y|(|T| + |S|)``)."""
    return max(DROP, tol / (DROP_SHARE * max(entries, 1)))


def lift_dual(lam: Any, mu: Any, keep_yt: Any, keep_ys: Any, p_yt: Any, p_ys: Any,
              xp: Backend) -> tuple[Any, Any]:
    r"""A dual point of the full problem from one of the problem without the dropped marginal
    entries (``keep_yt``, ``keep_ys`` false): their variables are set so that every cell
    they enter weighs at most the entry's own mass :math:`\delta` (``p_yt`` or ``p_ys``, at
    least :data:`DROPPED_WEIGHT`),

    .. math::

        \mu_{ys} = \ln\delta_{ys} - \max_{t\ \text{kept}} \lambda_{yt},\qquad
        \lambda_{yt} = \ln\delta_{yt} - \max_{s} \mu_{ys}.

    A dropped cell then raises :math:`h_{ts}` by at most :math:`|Y|` times the largest dropped
    entry, and its marginal enters the dual objective with its mass times a variable near
    :math:`\ln \delta` (the optimum's is :math:`\ln q^*(y \mid t,s)` minus the other one, of
    that order for a cell that can carry no more than :math:`\delta`): the lower bound of
    :func:`~._bounds.dual_bound` on the full problem loses about the dropped mass times a
    logarithm (:data:`DROP_SHARE`), and remains a proven bound whatever it loses."""
    top = xp.max(xp.where(keep_yt, lam, -math.inf), axis=2, keepdims=True)
    mu = xp.where(keep_ys, mu, xp.log(xp.maximum(p_ys, DROPPED_WEIGHT))
                  - xp.where(top > -math.inf, top, 0.0))
    return xp.where(keep_yt, lam, xp.log(xp.maximum(p_yt, DROPPED_WEIGHT))
                    - xp.max(mu, axis=2, keepdims=True)), mu


def _barrier_line_search(q: Any, dq: Any, slope: Any, cells: Any, tau: Any,
                         xp: Backend) -> tuple[Any, Any]:
    r"""Step along ``dq``: per item the first of :math:`a_0, a_0/2, \dots`
    (:math:`a_0 = \min(1, 0.99\, a_{\max})`, :math:`a_{\max}` the step to the boundary
    :math:`q = 0`) with :math:`\phi_\tau(q + a\,dq) \le \phi_\tau(q) + \text{SUFFICIENT}\, a\,
    \text{slope}`, or any step when the slope is below rounding. Returns the new ``q`` and
    which items moved."""
    ratio = xp.where(dq < 0, -q / xp.where(dq < 0, dq, -1.0), math.inf)
    a = xp.minimum(0.99 * xp.min(xp.where(cells, ratio, math.inf), axis=(1, 2, 3)), 1.0)
    value = _barrier_value(q, cells, tau, xp)
    flat = abs(slope) <= 1e-15 * (1.0 + abs(value))
    waiting = xp.isfinite(slope) & (slope < 0) | flat

    def trial_at(a):
        trial = q + a[:, None, None, None] * dq
        decrease = _barrier_value(trial, cells, tau, xp) <= value + SUFFICIENT * a * slope
        return decrease | flat, (trial,)

    out, moved = _backtrack((q,), a, waiting, trial_at, xp)
    return out[0], moved
