r"""The certificate of an interior-point iterate: a lower and an upper bound on :math:`f^*`.

With :math:`f(Q) = -H_Q(Y \mid T, S)` and the dual (see :mod:`._ipm`)

.. math::

    f^* = \max_{\lambda, \mu} \sum_{y,t} P(y,t) \lambda_{yt} + \sum_{y,s} P(y,s) \mu_{ys}
    \quad \text{s.t.} \quad h_{ts} = \ln \sum_y e^{\lambda_{yt} + \mu_{ys}} \le 0,

any *feasible* dual point gives a lower bound (weak duality) and any primal point in
:math:`\Delta_P` an upper bound. Iterates are neither, so each is made so:

- :func:`dual_bound` shifts ``lam`` per ``t`` and then ``mu`` per ``s`` until every constraint
  holds (a shift by ``c`` lowers every ``h`` of the row or column by ``c``);
- :func:`repair` projects the primal point ``q = w softmax(lam + mu)`` onto :math:`\Delta_P`
  exactly (Altschuler, Weed and Rigollet 2017, Algorithm 2, per ``y``), and
  :func:`neg_conditional_entropy` evaluates ``f`` there.

Both bounds are computed in float64 from the iterate alone: however inaccurate the Newton
directions, the bracket ``[dual value, f(repaired q)]`` contains :math:`f^*`.

References
----------
J. Altschuler, J. Weed, P. Rigollet, "Near-linear time approximation algorithms for optimal
transport via Sinkhorn iteration", NeurIPS (2017).
"""

from __future__ import annotations

import math
from typing import Any

from ..._backend import Backend

__all__ = ["dual_bound", "repair", "neg_conditional_entropy"]


def dual_bound(lam: Any, mu: Any, h: Any, p_yt: Any, p_ys: Any, live: Any,
               xp: Backend) -> tuple[Any, Any, Any]:
    r"""A feasible dual point near ``(lam, mu)`` and its objective, a lower bound on :math:`f^*`.

    .. math::

        c_t = \max_s h_{ts}, \quad \lambda'_{yt} = \lambda_{yt} - c_t, \quad
        d_s = \max_t (h_{ts} - c_t), \quad \mu'_{ys} = \mu_{ys} - d_s,

    so that :math:`h'_{ts} = h_{ts} - c_t - d_s \le 0` on every live block, and the value is
    :math:`\sum P(y,t) \lambda'_{yt} + \sum P(y,s) \mu'_{ys}` over the support.

    Parameters
    ----------
    lam, mu : array ``(B, Y, T)``, ``(B, Y, S)``
        The dual iterate.
    h : array ``(B, T, S)``
        Its constraint values (:func:`pidkit.discrete.broja._problem.logits`).
    p_yt, p_ys : array ``(B, Y, T)``, ``(B, Y, S)``
        The marginals of ``P``.
    live : bool array ``(B, T, S)``
        Blocks with at least one allowed ``y``.
    xp : Backend

    Returns
    -------
    lam, mu, value
        The shifted point and its objective ``(B,)``, in nats.
    """
    h_live = xp.where(live, h, -math.inf)
    c_t = xp.max(h_live, axis=2)                                  # (B, T)
    c_t = xp.where(c_t > -math.inf, c_t, 0.0)
    lam = lam - c_t[:, None, :]
    d_s = xp.max(h_live - c_t[:, :, None], axis=1)                # (B, S)
    d_s = xp.where(d_s > -math.inf, d_s, 0.0)
    mu = mu - d_s[:, None, :]
    value = (xp.sum(xp.where(p_yt > 0, p_yt * lam, 0.0), axis=(1, 2))
             + xp.sum(xp.where(p_ys > 0, p_ys * mu, 0.0), axis=(1, 2)))
    return lam, mu, value


def repair(q: Any, p_yt: Any, p_ys: Any, xp: Backend) -> Any:
    r"""Project ``q[b, y, t, s] >= 0`` onto :math:`\Delta_P` exactly (up to rounding).

    Per ``(b, y)`` the slice ``q[b, y]`` must be a coupling of ``p_yt[b, y]`` and
    ``p_ys[b, y]``: rows and then columns that exceed their marginal are scaled down, and the
    remaining deficits :math:`e_t = P(y,t) - \sum_s q`, :math:`e_s = P(y,s) - \sum_t q` (which
    have equal sums) are added as

    .. math:: q \leftarrow q + \frac{e_t e_s^\top}{\sum_s e_s}.

    The support never grows beyond ``p_yt > 0`` and ``p_ys > 0``.
    """
    rows = xp.sum(q, axis=3)
    q = q * xp.where(rows > p_yt, p_yt / xp.where(rows > 0, rows, 1.0), 1.0)[:, :, :, None]
    cols = xp.sum(q, axis=2)
    q = q * xp.where(cols > p_ys, p_ys / xp.where(cols > 0, cols, 1.0), 1.0)[:, :, None, :]
    e_t = xp.maximum(p_yt - xp.sum(q, axis=3), 0.0)
    e_s = xp.maximum(p_ys - xp.sum(q, axis=2), 0.0)
    tot = xp.sum(e_s, axis=2, keepdims=True)
    e_s = e_s / xp.where(tot > 0, tot, 1.0)
    return q + e_t[:, :, :, None] * e_s[:, :, None, :]


def neg_conditional_entropy(q: Any, xp: Backend) -> Any:
    r"""The primal objective per batch item, ``(B,)`` nats:

    .. math::

        f(Q) = \sum_{y,t,s} q \ln q - \sum_{t,s} q(t,s) \ln q(t,s) = -H_Q(Y \mid T, S).
    """
    q_ts = xp.sum(q, axis=1)
    return xp.sum(xp.xlogy_safe(q, q), axis=(1, 2, 3)) - xp.sum(xp.xlogy_safe(q_ts, q_ts),
                                                              axis=(1, 2))
