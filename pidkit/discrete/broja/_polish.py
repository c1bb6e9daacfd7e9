r"""Crossover for iterates the interior-point method cannot finish: a semismooth Newton
method on the optimality conditions, batched, on any backend.

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

Nothing here is trusted: every Newton iterate is turned into a certificate by the same
functions as the interior-point iterates (:func:`~._bounds.dual_bound` on the *full* problem,
:func:`~._bounds.repair` of :math:`\max(w, 0)\,\pi`), so a failed Newton run costs time,
never a wrong bound.

References
----------
A. Fischer, "A special Newton-type optimization method", Optimization 24, 269 (1992).
L. Qi, J. Sun, "A nonsmooth version of Newton's method", Math. Programming 58, 353 (1993).
T. De Luca, F. Facchinei, C. Kanzow, "A semismooth equation approach to the solution of
nonlinear complementarity problems", Math. Programming 75, 407 (1996).
"""

from __future__ import annotations

from typing import Any

from ..._backend import Backend
from ..._threads import one_blas_thread
from ._bounds import dual_bound, neg_conditional_entropy, repair
from ._problem import Best, Problem, logits

__all__ = ["polish"]

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
#: Backtracking: halve the step at most this many times; Armijo constant of the decrease
#: of ||F||^2 / 2 (the item stays put when no step qualifies).
BACKTRACK, SUFFICIENT = 20, 0.01
#: Largest number of unknowns |Y|(|T| + |S|) + |T||S| of the dense Newton system (k = 24:
#: 1728; at k = 32, 3072, one LU factorisation takes seconds): larger problems get no
#: crossover.
MAX_UNKNOWNS = 2048
#: Iterates whose dual variables exceed this in magnitude are not certified (their rounding
#: error, about 1e-16 times it, would no longer be negligible next to the tolerance).
LARGEST_DUAL = 1e4


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


def _certify(pb: Any, lam: Any, mu: Any, w: Any, pi: Any, xp: Backend):
    """Bounds ``(low, up, lam_f, mu_f, q_f)`` of one Newton iterate per item, by the general
    certificate on the full problem ``pb`` (``pi``: the softmax of the reduced problem,
    zero off its cells); ``-inf``/``+inf`` where the iterate is not finite or its dual
    variables exceed :data:`LARGEST_DUAL`."""
    h, _ = logits(lam, mu, pb.allowed, xp)
    lam_f, mu_f, low = dual_bound(lam, mu, h, pb.p_yt, pb.p_ys, pb.live, xp)
    q_f = repair(xp.maximum(w, 0.0)[:, None] * pi, pb.p_yt, pb.p_ys, xp)
    up = neg_conditional_entropy(q_f, xp)
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
    r"""Semismooth Newton crossover from interior-point iterates
    ``state = (lam, mu, w, slack, h, pi)`` of the sub-batch ``pb`` (:class:`._problem.Problem`;
    the slacks are not used).

    :data:`ROUNDS` rounds of at most :data:`NEWTON_ITER` damped Newton steps on the system of
    the module docstring, restricted to the cells of :func:`_reduced`, from the iterate and,
    where that does not certify ``tol``, once more from the best certified points (the dual
    point of the best lower bound, the block masses of the best primal point). Every iterate is
    certified on the full problem; the iteration stops once every item's best bracket is
    below ``tol`` (nats), its residual vanishes, or the linear algebra fails (a singular
    matrix: the best bounds so far are returned). Problems with more than
    :data:`MAX_UNKNOWNS` unknowns are returned unchanged (infinite bounds).

    Returns
    -------
    low, up, lam, mu, q
        Per item the best certified lower bound and its feasible dual point, the best upper
        bound and its feasible primal point (``-inf``/``+inf`` where no iterate was sound).
    """

    lam, mu, w, _, _, _ = state
    nb = lam.shape[0]
    best = Best(xp.zeros((nb,), like=lam) - float("inf"),
                     xp.zeros((nb,), like=lam) + float("inf"), xp.copy(lam), xp.copy(mu),
                     xp.zeros((nb, *pb.allowed.shape[1:]), like=lam))
    nl = lam.shape[1] * (lam.shape[2] + mu.shape[2])
    if nl + w.shape[1] * w.shape[2] > MAX_UNKNOWNS:
        return best.low, best.up, best.lam, best.mu, best.q
    with one_blas_thread():
        _newton_rounds(pb, (lam, mu, w), best, tol, nl, xp)
        if not xp.all(best.up - best.low <= tol):
            _newton_rounds(pb, (best.lam, best.mu, xp.sum(best.q, axis=1)), best, tol, nl, xp)
    return best.low, best.up, best.lam, best.mu, best.q


def _newton_rounds(pb: Any, point: tuple[Any, Any, Any], best: Any, tol: float, nl: int,
                   xp: Backend) -> None:
    """The rounds of :func:`polish`, recording every certified iterate in ``best``
    (:class:`._problem.Best`)."""
    lam, mu, w = point
    everyone = best.low == best.low                  # every item (the bounds are never NaN)
    p_t, p_s = xp.sum(pb.p_yt, axis=1), xp.sum(pb.p_ys, axis=1)
    room = xp.minimum(p_t[:, :, None], p_s[:, None, :])
    scale = 1.0 / xp.where(room > 0, room, 1.0)
    for _ in range(ROUNDS):
        red = _reduced(pb, lam, mu, xp)
        w = xp.where(red.live, w, 0.0)
        h, pi, res = _residual(red, lam, mu, w, scale, xp)
        for _ in range(NEWTON_ITER):
            low, up, lam_f, mu_f, q_f = _certify(pb, lam, mu, w, pi, xp)
            best.update(everyone, low, lam_f, mu_f, up, q_f, xp)
            if xp.all(best.up - best.low <= tol):
                return
            jac = _jacobian(red, w, pi, h, scale, xp)
            ok = xp.isfinite(xp.sum(res, axis=1)) & xp.isfinite(xp.sum(jac, axis=(1, 2)))
            jac = xp.where(ok[:, None, None], jac, xp.eye(jac.shape[1], like=jac))
            res = xp.where(ok[:, None], res, 0.0)
            try:
                d = -xp.solve(jac, res[:, :, None])[:, :, 0]
            except (ValueError, RuntimeError):  # numpy's LinAlgError, torch's _LinAlgError
                return
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
    waiting = a > 0
    moved = waiting & False
    out = [xp.copy(x) for x in point]
    for _ in range(BACKTRACK):
        size3 = a[:, None, None]
        trial = (lam + size3 * d_lam, mu + size3 * d_mu, w + size3 * d_w)
        h_n, pi_n, res_n = _residual(pb, *trial, scale, xp)
        merit = 0.5 * xp.sum(res_n * res_n, axis=1)
        ok = waiting & (merit <= merit0 + SUFFICIENT * a * slope)
        for x, t in zip(out, (*trial, h_n, pi_n, res_n), strict=True):
            x[ok] = t[ok]
        moved = moved | ok
        waiting = waiting & ~ok
        if not xp.any(waiting):
            break
        a = a * 0.5
    return tuple(out), moved
