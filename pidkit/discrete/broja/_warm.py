r"""Warm starts: certify the solution of a nearby pmf on a new pmf before iterating at all, and
iterate from it, re-centred, where it does not certify.

The dual's feasible set :math:`\{h_{ts}(\lambda, \mu) \le 0\}` depends on the support of
:math:`P` only, so the optimal dual :math:`(\lambda, \mu)` of a previous pmf :math:`P_0`,
shifted by :func:`~._bounds.dual_bound`, is a lower bound on :math:`f^*(P)` for any new
:math:`P`, exact to first order in :math:`P - P_0` (:math:`\lambda + \mu` is the gradient of
:math:`f^*`). The previous primal :math:`Q_0` is refitted to the new marginals by iterative
proportional fitting *on its own support* (:func:`refit`):

.. math::

    q(y,t,s) \leftarrow q(y,t,s)\,\frac{P(y,t)}{\sum_{s'} q(y,t,s')},\qquad
    q(y,t,s) \leftarrow q(y,t,s)\,\frac{P(y,s)}{\sum_{t'} q(y,t',s)},

:data:`SCALINGS` times, then repaired onto :math:`\Delta_P` exactly (:func:`~._bounds.repair`)
for the upper bound :math:`f(Q)`. A scaling :math:`q\,a_{yt}\,b_{ys}` is again of the form
:math:`w_{ts}\,\mathrm{softmax}_y(\lambda_{yt} + \ln a_{yt} + \mu_{ys} + \ln b_{ys})` and adds
no mass to blocks the previous optimum left empty (where adding mass costs :math:`-h_{ts} > 0`
per unit), so the upper bound too is exact to first order and the bracket's width is of second
order: about :math:`3\cdot10^{-7}` bits for relative steps of :math:`10^{-3}` and
:math:`2\cdot10^{-5}` bits for :math:`10^{-2}` on a 10 x 10 x 10 Dirichlet pmf. Items whose
bracket is below ``tol`` are done without an iteration. The others run the interior-point
iteration from the warm point with its block masses and slacks re-centred
(:func:`centred_start`; from the cold start where the warm bracket exceeds
:data:`CENTRED_GAP`), and per item the better lower and upper bounds of the two stages are
kept. Every bound comes from the general certificate on the new problem, so a warm start from
any point, however far, can cost time but never give a wrong bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._backend import Backend, get_namespace
from ...errors import PIDTypeError
from ...validation import fail
from . import _ipm
from ._bounds import dual_bound, neg_conditional_entropy, repair
from ._ipm import SolverOutput
from ._problem import Best, logits

__all__ = ["CENTRED_GAP", "SCALINGS", "WarmStart", "centred", "centred_start", "check_warm_start",
           "fixed_warm_solver", "refit", "warm_bounds", "warm_solver"]

#: Proportional-fitting sweeps of the previous primal point (:func:`refit`): each costs two
#: passes over the table; the marginal error left after ten is below the bracket's width in our
#: runs (relative steps 1e-3..1e-1).
SCALINGS = 10
#: Floor of a row or column sum in :func:`refit`: the factor of an empty row stays finite.
_TINY = 1e-300
#: Largest warm bracket (nats) from which :func:`centred_start` starts the interior-point
#: iteration: on 10 x 10 x 10 Dirichlet pmfs moved by relative steps of 1e-3 and 1e-2
#: (brackets near 2e-7 and 2e-5 nats) it takes 2-5 iterations instead of 10 at ``tol=1e-9``
#: bits, moved by 1e-1 (brackets near 2e-3 nats) 13-17, more than cold.
CENTRED_GAP = 1e-3


@dataclass(frozen=True)
class WarmStart:
    r"""The solution of a BROJA solve, to start a solve of a nearby pmf from
    (``pidkit.broja(p, warm_start=r)`` with ``r`` a previous result, or ``r.solver.state``).

    Attributes
    ----------
    lam, mu : array ``(B, Y, X0)``, ``(B, Y, X1)``
        The dual point of the lower bound, feasible (:math:`h_{ts} \le 0`) up to the
        rounding of its own entries (a point of huge entries certifies nothing better than the
        admissible interval, :func:`._bounds.rounding_margin`).
    q : array ``(B, Y, X0, X1)``
        A primal point of the solved pmf on its marginals up to absolute rounding (about
        1e-16), float64.

    Arrays of the solved pmf's library and device, batch axis first (``B = 1`` for a single
    pmf), in the layout of the pmf passed in (all outcomes, zeros included).
    """

    lam: Any
    mu: Any
    q: Any


def check_warm_start(warm: Any, p: Any, xp: Backend) -> WarmStart:
    """``warm`` (a previous BROJA :class:`~pidkit.result.PIDResult` or its
    ``solver.state``) as a :class:`WarmStart` for the batch ``p[b, y, t, s]``; raises a
    :class:`~pidkit.errors.PIDTypeError` or ``PIDValueError`` naming ``warm_start``."""
    state = getattr(getattr(warm, "solver", None), "state", warm)
    if not isinstance(state, WarmStart):
        raise fail("warm_start", f"must be a previous pidkit.broja result, not "
                   f"{type(warm).__name__}", "Pass the PIDResult of the previous solve "
                   "(or its solver.state), or warm_start=None", kind=PIDTypeError)
    if tuple(state.q.shape) != tuple(p.shape):
        raise fail("warm_start", f"was solved for shape {tuple(state.q.shape)}, p has "
                   f"{tuple(p.shape)} (batch axis included)",
                   "Warm-start only from a solve of a pmf of the same shape")
    try:
        get_namespace(p, state.q)
    except (TypeError, ValueError) as err:
        raise fail("warm_start", f"lives in another array library or device than p ({err})",
                   "Pass a previous result computed on the same kind of array",
                   kind=PIDTypeError) from err
    return state


def refit(q: Any, allowed: Any, p_yt: Any, p_ys: Any, xp: Backend) -> Any:
    """:data:`SCALINGS` sweeps of proportional fitting of a previous primal ``q[b, y, t, s]``
    to the marginals ``p_yt``, ``p_ys`` on its support within the ``allowed`` cells (module
    docstring). Entries that are not positive and finite count as 0 (a NaN cell, read as 0 by
    the entropy, once gave the warm certificate an "upper bound" below its lower one;
    :func:`~._bounds.repair` makes any non-negative point exactly feasible). Rows or columns
    without mass stay empty (a finite factor times zero) and are left to the repair."""
    q = xp.where(allowed & (q > 0) & xp.isfinite(q), q, 0.0)
    for _ in range(SCALINGS):
        q = q * (p_yt / xp.maximum(xp.sum(q, axis=3), _TINY))[:, :, :, None]
        q = q * (p_ys / xp.maximum(xp.sum(q, axis=2), _TINY))[:, :, None, :]
    return q


def warm_bounds(p: Any, warm: WarmStart, xp: Backend) -> tuple[Any, ...]:
    """Certified ``(low, up, lam, mu, q)`` on :math:`f^*` of ``p[b, y, t, s]`` from the warm
    point: the shifted previous dual and the refitted, repaired previous primal
    (:func:`refit`). A dual point with NaN or infinite entries gives a NaN or infinite lower
    bound, which no caller keeps; numpy's warnings about such points are not the user's (no
    effect on torch tensors)."""
    p_yt, p_ys = xp.sum(p, axis=3), xp.sum(p, axis=2)
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        h, _ = logits(warm.lam, warm.mu, allowed, xp)
        lam, mu, low = dual_bound(warm.lam, warm.mu, h, p_yt, p_ys, xp.any(allowed, axis=1),
                                  xp)
        q = repair(refit(warm.q, allowed, p_yt, p_ys, xp), p_yt, p_ys, xp)
        return low, neg_conditional_entropy(q, xp), lam, mu, q


def centred_start(point: tuple[Any, ...], gap: Any, limit: float = CENTRED_GAP) -> Any:
    r"""A ``start`` for :func:`._ipm.solve` from the certified warm point
    ``point = (lam, mu, q)`` (feasible dual, primal in :math:`\Delta_P`; internal layout) with
    bracket width ``gap`` ``(B,)``: the dual point, the block masses :math:`w_{ts} = Q(t,s)`
    and slacks re-centred at the barrier level :math:`\eta = \mathrm{gap} / m`
    (:math:`m` live blocks),

    .. math::

        s_{ts} = -h_{ts},\ w_{ts} = \eta / s_{ts} \ \text{where}\ -h_{ts} \ge \sqrt\eta,
        \qquad w_{ts} \leftarrow \max(w_{ts}, \sqrt\eta),\ s_{ts} = \eta / w_{ts}
        \ \text{elsewhere},

    so that :math:`w_{ts} s_{ts} = \eta` on every block (the optimum sits on the boundary
    :math:`w s = 0`, where Newton steps are cut short) while the residual
    :math:`h + s \le \sqrt\eta` stays small. Items whose ``gap`` exceeds ``limit``
    (:data:`CENTRED_GAP` by default; or is not finite) keep the cold start."""
    lam, mu, q = point

    def start(p: Any, pb: Any, cold: list[Any], xp: Backend) -> list[Any]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as warm_bounds
            h, pi = logits(lam, mu, pb.allowed, xp)
            eta = (gap / xp.maximum(pb.m, 1.0))[:, None, None]
            w, sl = centred(h, xp.sum(q, axis=1), eta, pb.live, xp)
        near = gap <= limit
        return [xp.where(near.reshape((-1,) + (1,) * (x.ndim - 1)), x, c)
                for x, c in zip((lam, mu, w, sl, h, pi), cold, strict=True)]

    return start


def centred(h: Any, mass: Any, eta: Any, live: Any, xp: Backend) -> tuple[Any, Any]:
    r"""Block masses and slacks ``(w, s)`` re-centred at the barrier level ``eta`` from the
    constraint values ``h[..., t, s]`` and block masses ``mass`` of a certified point
    (:func:`centred_start`'s formula; any leading axes, ``eta`` broadcast against them; dead
    blocks get ``w = 0``, ``s = 1``)."""
    root = eta ** 0.5
    inactive = -h >= root
    w = xp.maximum(mass, root)
    sl = xp.where(inactive, -h, eta / w)
    return xp.where(live, xp.where(inactive, eta / sl, w), 0.0), xp.where(live, sl, 1.0)


def warm_solver(solver: Any, warm: WarmStart) -> Any:
    """A solver with :func:`._ipm.solve`'s contract that first certifies ``warm`` on the new
    pmf (:func:`warm_bounds`), runs ``solver`` on the items whose bracket is above ``tol``
    from :func:`centred_start` (``solver``'s ``start``), and keeps per item the better lower
    and upper bounds of the two."""

    def solve(p: Any, xp: Backend, tol: float, max_iter: int, done: Any = None):
        low, up, lam, mu, q = warm_bounds(p, warm, xp)
        certified = up - low <= tol
        if xp.all(certified):                      # nothing to iterate: skip the solver's setup
            return SolverOutput(low, up, lam, mu, q, certified, 0)
        done = certified | (certified if done is None else done)
        point = (mu, lam, xp.swapaxes(q, 2, 3)) if _ipm.smaller_first(p) else (lam, mu, q)
        out = solver(p, xp, tol, max_iter, done, start=centred_start(point, up - low))
        # every item (a NaN bound of a non-finite warm point never replaces a number)
        best = Best(out.f_lower, out.f_upper, out.lam, out.mu, out.q).better(low, lam, mu, up,
                                                                            q, xp)
        out.f_lower, out.f_upper, out.lam, out.mu, out.q = (best.low, best.up, best.lam,
                                                            best.mu, best.q)
        out.converged = best.up - best.low <= tol
        return out

    return solve


def fixed_warm_solver(warm: WarmStart) -> Any:
    """:func:`warm_solver` for :func:`._ipm.solve_fixed` (no host read): the warm bounds
    (:func:`warm_bounds`) start the best bounds of every item, and every item iterates from
    :func:`centred_start` (items the warm point already certifies are frozen at once), however
    wide its bracket (no cold fallback above :data:`CENTRED_GAP`) unless the cold start's own
    bracket is narrower (a warm point from another table, or garbage: from arrays with entries
    of 1e3 the iteration did not move in 30 steps, gaps 0.09-0.28 bits, where the cold start
    closes them): with a few iterations per training step, each step then continues from where
    the last one stopped. On a walk of 3
    10 x 10 x 10 pmfs (relative step 1e-2 per step, tol 1e-9 bits), 2 and 3 iterations per step
    reached gaps near 1e-6 and 1e-8 bits after two steps, where the cold fallback restarted
    every step (gaps 3e-2 and 6e-3 bits). The bracket width used for centring is floored at
    ``tol``: an exact warm point (width 0) would put every block mass or slack at 0."""

    def solve(p: Any, xp: Backend, tol: float, iterations: int, done: Any = None):
        bounds = warm_bounds(p, warm, xp)
        low, up, lam, mu, q = bounds
        point = (mu, lam, xp.swapaxes(q, 2, 3)) if _ipm.smaller_first(p) else (lam, mu, q)
        gap = xp.maximum(up - low, tol)

        def start(p: Any, pb: Any, cold: list[Any], xp: Backend) -> list[Any]:
            # per item, the warm point unless the cold start is certified more tightly
            cold_low, _, _, cold_up, _ = _ipm.bounds_of(pb, tuple(cold), xp, rescaled=False)
            return centred_start(point, gap, cold_up - cold_low)(p, pb, cold, xp)

        return _ipm.solve_fixed(p, xp, tol, iterations, done, start=start, bounds=bounds)

    return solve
