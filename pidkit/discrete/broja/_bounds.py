r"""The certificate of an interior-point iterate: a lower and an upper bound on :math:`f^*`.

With :math:`f(Q) = -H_Q(Y \mid T, S)` and the dual (see :mod:`._ipm`)

.. math::

    f^* = \max_{\lambda, \mu} \sum_{y,t} P(y,t) \lambda_{yt} + \sum_{y,s} P(y,s) \mu_{ys}
    \quad \text{s.t.} \quad h_{ts} = \ln \sum_y e^{\lambda_{yt} + \mu_{ys}} \le 0,

any *feasible* dual point gives a lower bound (weak duality) and any primal point in
:math:`\Delta_P` an upper bound. Iterates are neither, so each is made so:

- :func:`dual_bound` lowers dual variables until every constraint holds, two ways, and keeps
  the better value: ``lam`` per ``t`` and then ``mu`` per ``s`` (a shift by ``c`` lowers every
  ``h`` of the row or column by ``c``), and, first, per cell of each violated block the
  variable with the smaller marginal (:func:`local_repair`: a violated block whose cells
  have tiny marginals then costs about those marginals, not its row's whole mass);
- :func:`repair` projects the primal point ``q = w softmax(lam + mu)`` onto :math:`\Delta_P`
  exactly (Altschuler, Weed and Rigollet 2017, Algorithm 2, per ``y``), and
  :func:`neg_conditional_entropy` evaluates ``f`` there; :func:`upper_bound` also repairs
  ``q`` after :func:`rescale` has moved it onto the marginals by the smallest relative change
  of its cells (the repair then has almost nothing left to add), and keeps the smaller value.

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

import numpy as np

from ..._backend import Backend
from ._problem import logits

__all__ = ["dual_bound", "local_repair", "repair", "rescale", "upper_bound",
           "neg_conditional_entropy", "rounding_margin", "ROUNDING", "CROSSING"]

#: Cells carrying less than this share of their block's weight are not lowered by
#: :func:`local_repair` (the shift of :func:`dual_bound` then covers them, at a cost of at
#: most ``|Y|`` times this share times a marginal).
NEGLIGIBLE_SHARE = 1e-20
#: Its logarithm, the threshold on a cell's log-weight share (also used by the local repairs of
#: :mod:`._small` and :mod:`._three_maxent`).
LOG_NEGLIGIBLE = math.log(NEGLIGIBLE_SHARE)
#: Relative rounding of one floating-point operation (float64 machine epsilon): a dual value
#: :math:`\sum_k c_k x_k` of ``m`` terms computed in floating point is within
#: ``m * ROUNDING * sum |c_k x_k|`` of the exact one (recursive summation, Higham 2002,
#: section 4.2), and every dual bound subtracts that much (:func:`rounding_margin`).
ROUNDING = float(np.finfo(np.float64).eps)
#: Largest amount (relative, nats) by which a solver's upper bound may fall below its lower
#: bound from rounding alone; a larger crossing is a fault, never a certificate
#: (:func:`._core.solve_atoms`, :func:`._three_maxent.solve`).
CROSSING = 1e-12
#: Added to the unit diagonal of the scaled systems of :func:`rescale` (singular along the
#: gauge ``a + c``, ``b - c`` of each connected part of the support).
RESCALE_RIDGE = 1e-12
#: Rows and columns of :func:`rescale` with less mass than this keep :math:`a = 0`, :math:`b = 0`
#: (the reciprocals of smaller masses overflow; :func:`repair` handles them).
RESCALE_FLOOR = 1e-300


def dual_bound(lam: Any, mu: Any, h: Any, p_yt: Any, p_ys: Any, live: Any,
               xp: Backend, host: bool = False) -> tuple[Any, Any, Any]:
    r"""A feasible dual point near ``(lam, mu)`` and its objective, a lower bound on :math:`f^*`.

    .. math::

        c_t = \max_s h_{ts}, \quad \lambda'_{yt} = \lambda_{yt} - c_t, \quad
        d_s = \max_t (h_{ts} - c_t), \quad \mu'_{ys} = \mu_{ys} - d_s,

    so that :math:`h'_{ts} = h_{ts} - c_t - d_s \le 0` on every live block, and the value is
    :math:`\sum P(y,t) \lambda'_{yt} + \sum P(y,s) \mu'_{ys}` over the support. The same
    shift is also applied after :func:`local_repair` (which lowers, per violated block, the
    cheaper variable of each cell), and per item the point with the larger value is returned:
    both are feasible, so both values are lower bounds (weak duality). With ``host`` (the
    caller may read values on the host) and arrays in host memory, only the items with a
    violated block are repaired locally (elsewhere the repair changes nothing; in batches of
    small pmfs, about a quarter of the certified iterates have one).

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
    lam_s, mu_s, value = _shift(lam, mu, h, p_yt, p_ys, live, xp)
    rows = xp.any(live & (h > 0), axis=(1, 2))        # the local repair changes nothing else
    if not (host and xp.on_host(lam)) or xp.all(rows):
        lam_l, mu_l, value_l = _local_shift(lam, mu, h, p_yt, p_ys, live, xp)
        local = value_l > value
        return (xp.where(local[:, None, None], lam_l, lam_s),
                xp.where(local[:, None, None], mu_l, mu_s), xp.where(local, value_l, value))
    if xp.any(rows):
        lam_l, mu_l, value_l = _local_shift(lam[rows], mu[rows], h[rows], p_yt[rows],
                                            p_ys[rows], live[rows], xp)
        local = value_l > value[rows]
        lam_s[rows] = xp.where(local[:, None, None], lam_l, lam_s[rows])
        mu_s[rows] = xp.where(local[:, None, None], mu_l, mu_s[rows])
        value[rows] = xp.where(local, value_l, value[rows])
    return lam_s, mu_s, value


def _local_shift(lam: Any, mu: Any, h: Any, p_yt: Any, p_ys: Any, live: Any,
                 xp: Backend) -> tuple[Any, Any, Any]:
    """:func:`local_repair`, then the shift of :func:`_shift`, and the dual value."""
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    lam_l, mu_l = local_repair(lam, mu, h, p_yt, p_ys, live, xp)
    h_l, _ = logits(lam_l, mu_l, allowed, xp)
    return _shift(lam_l, mu_l, h_l, p_yt, p_ys, live, xp)


def _shift(lam: Any, mu: Any, h: Any, p_yt: Any, p_ys: Any, live: Any,
           xp: Backend) -> tuple[Any, Any, Any]:
    """The shift per ``t``, then per ``s``, of :func:`dual_bound`, and the dual value."""
    h_live = xp.where(live, h, -math.inf)
    c_t = xp.max(h_live, axis=2)                                  # (B, T)
    c_t = xp.where(c_t > -math.inf, c_t, 0.0)
    lam = lam - c_t[:, None, :]
    d_s = xp.max(h_live - c_t[:, :, None], axis=1)                # (B, S)
    d_s = xp.where(d_s > -math.inf, d_s, 0.0)
    mu = mu - d_s[:, None, :]
    terms_t = xp.where(p_yt > 0, p_yt * lam, 0.0)
    terms_s = xp.where(p_ys > 0, p_ys * mu, 0.0)
    value = xp.sum(terms_t, axis=(1, 2)) + xp.sum(terms_s, axis=(1, 2))
    count = xp.sum(xp.float64(p_yt > 0), axis=(1, 2)) + xp.sum(xp.float64(p_ys > 0), axis=(1, 2))
    size = xp.sum(abs(terms_t), axis=(1, 2)) + xp.sum(abs(terms_s), axis=(1, 2))
    return lam, mu, value - rounding_margin(count, size)


def rounding_margin(count: Any, size: Any) -> Any:
    r"""What a dual value of ``count`` terms whose absolute values sum to ``size`` may be off
    by in floating point, :math:`m\,\epsilon \sum |c_k x_k|` (:data:`ROUNDING`): subtracted
    from every dual bound, so that it stays a lower bound whatever the rounding. At the sizes
    of the dual variables of a converging run (log-probabilities, :math:`\sum |c_k x_k|` of a
    few nats) it is below 1e-11 nats at k = 64; a blown-up dual point (entries of 1e131 were
    seen after a stalled Newton step, whose shifted value then cancelled to exactly 0 above a
    true optimum of -0.13 nats) gets a bound of about -1e117, which is never kept."""
    return ROUNDING * count * size


def local_repair(lam: Any, mu: Any, h: Any, p_yt: Any, p_ys: Any, live: Any,
                 xp: Backend) -> tuple[Any, Any]:
    r"""Lower, in every violated block, each cell's cheaper dual variable by the violation.

    For a live block with :math:`h_{ts} > 0`, every allowed cell ``y`` carrying at least
    :data:`NEGLIGIBLE_SHARE` of the block's weight (:math:`\lambda_{yt} + \mu_{ys} - h_{ts}`
    above its logarithm) needs :math:`a_{yt} + b_{ys} \ge h_{ts}`; the decrease goes to the
    variable with the smaller marginal:

    .. math::

        a_{yt} = \max_{s:\ P(y,t) \le P(y,s)} h^+_{ts},\qquad
        b_{ys} = \max_{t:\ P(y,t) > P(y,s)} h^+_{ts},

    and ``(lam - a, mu - b)`` is returned. A block's heavy cells then weigh at most
    :math:`e^{-h_{ts}}` times as much as before, so the block holds up to its negligible cells
    (which :func:`dual_bound`'s shift covers), at a cost in the dual objective of
    :math:`\sum P(y,t) a_{yt} + \sum P(y,s) b_{ys}`. Where a violation sits in a block
    whose cells have tiny marginals (the tails of sparse pmfs: a block whose cells all have
    marginals near 1e-10 and a dual point accurate only to the barrier's resolution), this
    costs about those marginals, where the shift per row costs the row's whole mass
    :math:`P(t)\,h_{ts}` (measured: 1.9e-2 nats against 1e-9 on the 12 x 12 x 12
    Dirichlet(0.001) pmf of the "dirichlet(0.001) large" family of
    ``benchmarks/broja_stalls.py``). It is not always the cheaper (with every block violated
    by the same amount it can cost up to twice the shift), so :func:`dual_bound` keeps the
    better of the two.
    """
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    excess = xp.where(live, xp.maximum(h, 0.0), 0.0)[:, None]    # (B, 1, T, S)
    share = lam[:, :, :, None] + mu[:, :, None, :] - h[:, None]
    need = xp.where(allowed & (share >= LOG_NEGLIGIBLE), excess, 0.0)
    t_side = p_yt[:, :, :, None] <= p_ys[:, :, None, :]
    a = xp.max(xp.where(t_side, need, 0.0), axis=3)
    b = xp.max(xp.where(t_side, 0.0, need), axis=2)
    return lam - a, mu - b


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


def rescale(q: Any, p_yt: Any, p_ys: Any, xp: Backend) -> Any:
    r"""Move ``q[b, y, t, s] >= 0`` onto the marginals :math:`P(y,t)`, :math:`P(y,s)` by the
    smallest change in the :math:`\chi^2` metric of ``q``, keeping its support:

    .. math::

        \min_{\delta} \sum_{t,s} \frac{\delta_{yts}^2}{q_{yts}}
        \quad\text{s.t.}\quad \sum_s (q + \delta)_{yts} = P(y,t),\
        \sum_t (q + \delta)_{yts} = P(y,s),

    per ``(b, y)``. The minimiser is :math:`\delta = q\,(a_t + b_s)` (a linearised matrix
    scaling), with :math:`a` from the Schur complement in ``t``,

    .. math::

        (D_t - Q D_s^{-1} Q^\top)\, a = r_t - Q D_s^{-1} r_s,\qquad
        b = D_s^{-1}(r_s - Q^\top a),

    :math:`Q = q(y, \cdot, \cdot)`, :math:`D_t`, :math:`D_s` its row and column sums and
    :math:`r` the marginal residuals (scaled to a unit diagonal plus :data:`RESCALE_RIDGE`;
    rows and columns with less mass than :data:`RESCALE_FLOOR` keep :math:`a = 0`,
    :math:`b = 0`; overflow and NaN stay silent and make the bound NaN, which
    :func:`upper_bound` never keeps). Cells that would turn negative are set to 0;
    :func:`repair` then closes what is left exactly.

    Why: the rank-one fill of :func:`repair` puts the missing mass into every block, and each
    unit of mass in a block off the optimal support costs the objective about that block's
    dual slack :math:`-h_{ts}`. When the interior-point iterate's marginals are off by more
    than the tolerance over those slacks, that alone keeps the upper bound from certifying
    (measured: a 3 x 100 x 100 uniform-cells pmf whose dual bound had converged stayed at a
    gap of 8e-10 nats for 170 iterations, marginal residuals 3e-9; through this correction
    its gap is 8e-11 nats at iteration 26). Here the change of each cell is proportional to
    its mass, so blocks without mass get none and, to first order, the objective changes by
    the dual value of the residuals alone.
    """
    nb, ny, nt, ns = q.shape
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # torch: no effect
        q_t, q_s = xp.sum(q, axis=3), xp.sum(q, axis=2)             # (B, Y, T), (B, Y, S)
        r_t, r_s = p_yt - q_t, p_ys - q_s
        live_t, live_s = q_t > RESCALE_FLOOR, q_s > RESCALE_FLOOR
        inv_s = xp.where(live_s, 1.0 / xp.where(live_s, q_s, 1.0), 0.0)
        d = xp.where(live_t, 1.0 / xp.where(live_t, q_t, 1.0) ** 0.5, 0.0)  # unit diagonal
        q_d = q * d[:, :, :, None]                         # q / sqrt(q_t): at most sqrt(q_t)
        q_ds = q_d * inv_s[:, :, None, :]
        schur = -xp.einsum("byts,byus->bytu", q_ds, q_d)
        xp.diagonal(schur)[...] += 1.0 + RESCALE_RIDGE * xp.float64(live_t)
        rhs = d * r_t - xp.einsum("byts,bys->byt", q_ds, r_s)
        factor = xp.lu_factor(xp.reshape(schur, (nb * ny, nt, nt)))  # status not read
        a = d * xp.reshape(xp.sym_solve(factor, xp.reshape(rhs, (nb * ny, nt, 1))),
                           (nb, ny, nt))
        b = inv_s * (r_s - xp.einsum("byts,byt->bys", q, a))
        return xp.maximum(q * (1.0 + a[:, :, :, None] + b[:, :, None, :]), 0.0)


def upper_bound(q: Any, p_yt: Any, p_ys: Any, xp: Backend, low: Any = None,
                tol: float | None = None, rescaled: bool = True) -> tuple[Any, Any]:
    r"""An upper bound on :math:`f^*` from the primal point ``q >= 0``: ``(up, q_f)``, the
    smaller per item of the values of ``q`` repaired onto :math:`\Delta_P` (:func:`repair`)
    directly and after :func:`rescale`, and that point; only a finite value of the rescaled
    point is taken (a first version let an overflowing rescale give :math:`-\infty`, which
    "certified" a Dirichlet(0.001) pmf with a gap of 0). With ``low`` (the items' lower
    bounds) and ``tol`` (nats), on the host, only the items whose bracket is still wider than
    ``tol`` are rescaled (the others are done); without them, every item (the crossover's
    points). With ``rescaled`` false, the plain repair only (the fixed-iteration mode)."""
    q_f = repair(q, p_yt, p_ys, xp)
    up = neg_conditional_entropy(q_f, xp)
    if not rescaled:
        return up, q_f
    if low is not None and xp.on_host(q):
        wide = up - low > tol
        if not xp.any(wide):
            return up, q_f
        up_w, q_w = _rescaled_bound(q[wide], p_yt[wide], p_ys[wide], up[wide], q_f[wide], xp)
        up[wide], q_f[wide] = up_w, q_w
        return up, q_f
    return _rescaled_bound(q, p_yt, p_ys, up, q_f, xp)


def _rescaled_bound(q: Any, p_yt: Any, p_ys: Any, up: Any, q_f: Any,
                    xp: Backend) -> tuple[Any, Any]:
    """The better per item of ``(up, q_f)`` and the value and point of ``q`` rescaled, then
    repaired (finite values only)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # torch: no effect
        q_r = repair(rescale(q, p_yt, p_ys, xp), p_yt, p_ys, xp)
        up_r = neg_conditional_entropy(q_r, xp)
    better = (up_r < up) & xp.isfinite(up_r)
    return xp.where(better, up_r, up), xp.where(better[:, None, None, None], q_r, q_f)


def neg_conditional_entropy(q: Any, xp: Backend) -> Any:
    r"""The primal objective per batch item, ``(B,)`` nats:

    .. math::

        f(Q) = \sum_{y,t,s} q \ln q - \sum_{t,s} q(t,s) \ln q(t,s) = -H_Q(Y \mid T, S).
    """
    q_ts = xp.sum(q, axis=1)
    return xp.sum(xp.xlogy_safe(q, q), axis=(1, 2, 3)) - xp.sum(xp.xlogy_safe(q_ts, q_ts),
                                                              axis=(1, 2))
