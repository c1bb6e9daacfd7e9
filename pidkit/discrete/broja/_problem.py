"""What the BROJA solvers share about one (sub-)batch: its constants (:class:`Problem`), the
softmax parametrisation of the primal by the duals (:func:`logits`) and the best certified
bounds found so far (:class:`Best`). The interior-point driver (:mod:`._ipm`), the lean
single-pmf driver (:mod:`._small`) and the crossover (:mod:`._polish`) import them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..._backend import Backend

__all__ = ["Best", "Problem", "logits", "pin_gauge"]


@dataclass
class Problem:
    """Constants of a (sub-)batch: marginals ``p_yt``, ``p_ys``, the allowed cells
    ``allowed[b, y, t, s]``, the live blocks ``live[b, t, s]``, their number ``m[b]`` and the
    free dual variables ``free_lam``, ``free_mu`` (support minus the gauge pins)."""

    p_yt: Any
    p_ys: Any
    allowed: Any
    live: Any
    m: Any
    free_lam: Any
    free_mu: Any

    def take(self, idx: Any) -> Problem:
        """The sub-batch ``idx`` (a boolean mask or indices)."""
        return Problem(*(getattr(self, k)[idx] for k in self.__dataclass_fields__))


def logits(lam: Any, mu: Any, allowed: Any, xp: Backend) -> tuple[Any, Any]:
    r"""Per block ``(t, s)``: the constraint value and the softmax over allowed ``y``,

    .. math::

        h_{ts} = \ln \sum_y e^{\lambda_{yt} + \mu_{ys}},\qquad
        \pi_{ts}(y) = e^{\lambda_{yt} + \mu_{ys} - h_{ts}},

    computed with the maximum subtracted. Blocks with no allowed ``y`` get ``h = -1`` and a
    zero softmax (they carry no mass). Returns ``h (B, T, S)`` and ``pi (B, Y, T, S)``.
    """
    z = lam[:, :, :, None] + mu[:, :, None, :]
    z = xp.where(allowed, z, -math.inf)
    zmax = xp.max(z, axis=1, keepdims=True)
    live = zmax > -math.inf
    zmax = xp.where(live, zmax, 0.0)
    e = xp.exp(z - zmax)                      # 0 at the cells not allowed (-inf)
    tot = xp.sum(e, axis=1, keepdims=True)
    live_tot = tot > 0
    h = xp.where(live_tot, xp.log(xp.where(live_tot, tot, 1.0)) + zmax, -1.0)
    pi = e / xp.where(live_tot, tot, 1.0)
    return h[:, 0], pi


@dataclass
class Best:
    """Per item the best certified bounds so far (``low``, ``up``, nats) and the feasible dual
    (``lam``, ``mu``) and primal (``q``) points they come from."""

    low: Any
    up: Any
    lam: Any
    mu: Any
    q: Any

    def better(self, low: Any, lam: Any, mu: Any, up: Any, q: Any, xp: Backend) -> Best:
        """Per item the better lower bound (with its dual point) and the better upper bound
        (with its primal point) of these and the given ones, chosen with ``where``: no host
        read, and a NaN bound never replaces a number."""
        better_low, better_up = low > self.low, up < self.up
        return Best(xp.where(better_low, low, self.low), xp.where(better_up, up, self.up),
                    xp.where(better_low[:, None, None], lam, self.lam),
                    xp.where(better_low[:, None, None], mu, self.mu),
                    xp.where(better_up[:, None, None, None], q, self.q))

    def update(self, rows: Any, low: Any, lam: Any, mu: Any, up: Any, q: Any,
               xp: Backend) -> None:
        """Keep, for the items ``rows`` (a boolean mask), the bounds that improve
        (:meth:`better`), in place."""
        new = Best(self.low[rows], self.up[rows], self.lam[rows], self.mu[rows],
                   self.q[rows]).better(low, lam, mu, up, q, xp)
        self.low[rows], self.up[rows] = new.low, new.up
        self.lam[rows], self.mu[rows], self.q[rows] = new.lam, new.mu, new.q


def pin_gauge(p_ys: Any, xp: Backend) -> Any:
    """One ``mu[y, s]`` per ``y`` is fixed (the first largest ``P(y, s)``): ``lam + c_y``,
    ``mu - c_y`` leaves everything unchanged, so the Newton matrix needs one pin per ``y``.
    Returns the pins, a boolean ``(B, Y, S)``."""
    best = xp.max(p_ys, axis=2, keepdims=True)
    is_best = (p_ys == best) & (p_ys > 0)
    # keep only the first maximiser: cumulative count of maximisers along s
    return is_best & (xp.cumsum(is_best, axis=2) == 1)
