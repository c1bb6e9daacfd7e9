r"""Primal-dual interior-point solver for the BROJA optimisation, batched, on any namespace.

The problem (Bertschinger et al. 2014) for a batch of pmfs ``P[b, y, t, s]``:

.. math::

    f^* = \min_{Q \in \Delta_P} f(Q), \qquad
    f(Q) = \sum_{y,t,s} q(y,t,s) \ln q(y \mid t, s) = -H_Q(Y \mid T, S),

    \Delta_P = \{Q \ge 0 : Q(y,t) = P(y,t),\ Q(y,s) = P(y,s)\},

so that :math:`\mathrm{Uni}(Y{:}T \setminus S) = H_P(Y \mid S) + f^*`. Since ``f`` is convex and
positively homogeneous, its conjugate is an indicator and the Lagrange dual has only
``|Y|(|T|+|S|)`` variables and one log-sum-exp constraint per block ``(t, s)``:

.. math::

    f^* = \max_{\lambda, \mu} \sum_{y,t} P(y,t) \lambda_{yt} + \sum_{y,s} P(y,s) \mu_{ys}
    \quad \text{s.t.} \quad h_{ts} = \ln \sum_y e^{\lambda_{yt} + \mu_{ys}} \le 0,

where the sum runs over the ``y`` with :math:`P(y,t) P(y,s) > 0`. With multipliers
:math:`w_{ts} \ge 0` of these constraints the primal point is
:math:`q(y,t,s) = w_{ts}\, \mathrm{softmax}_y(\lambda_{yt} + \mu_{ys})`: ``w`` is the block mass
:math:`Q(t,s)`. We run the primal-dual interior-point method of Boyd and Vandenberghe (2004,
section 11.7) on this dual: Newton steps on the perturbed KKT system
``q(y,t) = P(y,t)``, ``q(y,s) = P(y,s)``, :math:`w_{ts} (-h_{ts}) = 1/\tau`, with a
fraction-to-boundary rule and a backtracking line search on the residual norm.

Each Newton system has the matrix :math:`E^\top [\mathrm{Diag}(q) + \sum_{ts} \rho_{ts}
\pi_{ts}\pi_{ts}^\top] E` in :math:`(\lambda, \mu)` (``E`` maps them to the logits
:math:`\lambda_{yt} + \mu_{ys}`, :math:`\rho = w/(-h) - w`). Its :math:`\mu\mu` part is block
diagonal (one ``|Y| x |Y|`` block per ``s``), so we eliminate :math:`\mu` and solve the Schur
complement of size ``|Y||T|`` (the solver puts the smaller source in the ``T`` role).

Every iterate yields a certificate: the dual point, shifted per ``t`` and per ``s`` so that every
constraint holds, gives a lower bound on :math:`f^*`; the primal point, repaired onto
:math:`\Delta_P` exactly (per ``y``: scale rows and columns down to their marginals, then add the
outer product of the deficits, Altschuler, Weed and Rigollet 2017, Algorithm 2), gives an upper
bound. The solver stops when the bracket is below ``tol`` (nats).

References
----------
N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
Entropy 16, 2161 (2014). A. Makkeh, D. O. Theis, R. Vicente, "BROJA-2PID: A robust estimator for
bivariate partial information decomposition", Entropy 20, 271 (2018). S. Boyd,
L. Vandenberghe, "Convex Optimization", Cambridge (2004), section 11.7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..._backend import Namespace

#: Centering factor of the barrier parameter (Boyd and Vandenberghe's ``mu``).
CENTERING = 10.0
#: Extra factor on the centering after a step longer than 0.9.
FAST = 10.0
#: Fraction-to-boundary factor and backtracking parameters of the line search.
BOUNDARY, SHRINK, SUFFICIENT = 0.99, 0.5, 0.01
#: Most halvings of the step in one line search.
MAX_BACKTRACK = 60


@dataclass
class SolverOutput:
    """Arrays returned by :func:`solve` (batch axis first, float64, namespace of the input).

    ``f_lower``/``f_upper`` bracket :math:`f^* = -\\max H_Q(Y|T,S)` in nats; ``lam``/``mu``
    are a feasible dual point (their sum ``lam[y,t] + mu[y,s]`` is the gradient of ``f^*``
    with respect to ``P``), ``q`` a feasible primal point in :math:`\\Delta_P`.
    """

    f_lower: Any
    f_upper: Any
    lam: Any
    mu: Any
    q: Any
    converged: Any
    iterations: int


def _logits(lam, mu, allowed, xp: Namespace):
    """Per block ``(t, s)``: ``h = logsumexp_y(lam + mu)`` over allowed ``y`` and the softmax.

    Blocks with no allowed ``y`` get ``h = -1`` and a zero softmax (they carry no mass).
    """
    z = lam[:, :, :, None] + mu[:, :, None, :]
    z = xp.where(allowed, z, -math.inf)
    zmax = xp.max(z, axis=1, keepdims=True)
    live = zmax > -math.inf
    zmax = xp.where(live, zmax, 0.0)
    e = xp.where(allowed, xp.exp(z - zmax), 0.0)
    tot = xp.sum(e, axis=1, keepdims=True)
    live_tot = tot > 0
    h = xp.where(live_tot, xp.log(xp.where(live_tot, tot, 1.0)) + zmax, -1.0)
    pi = e / xp.where(live_tot, tot, 1.0)
    return h[:, 0], pi


def repair(q, p_yt, p_ys, xp: Namespace):
    """Project ``q[b, y, t, s] >= 0`` onto :math:`\\Delta_P` exactly (up to rounding).

    Per ``(b, y)`` the slice ``q[b, y]`` must be a coupling of ``p_yt[b, y]`` and
    ``p_ys[b, y]``: rows and then columns that exceed their marginal are scaled down, and the
    remaining deficits ``e_t``, ``e_s`` (which have equal sums) are added as
    ``e_t e_s^T / sum(e_s)``. The support never grows beyond ``p_yt > 0`` and ``p_ys > 0``.
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


def neg_conditional_entropy(q, xp: Namespace):
    r""":math:`f(Q) = \sum q \ln q - \sum_{ts} q(t,s) \ln q(t,s) = -H_Q(Y|T,S)` per batch item."""
    q_ts = xp.sum(q, axis=1)
    return xp.sum(xp.xlogy_safe(q, q), axis=(1, 2, 3)) - xp.sum(xp.xlogy_safe(q_ts, q_ts),
                                                              axis=(1, 2))


def _dual_bound(lam, mu, h, p_yt, p_ys, live, xp: Namespace):
    """Shift ``lam`` per ``t`` and ``mu`` per ``s`` so that every live constraint holds; return
    the shifted point and its (lower-bound) dual objective."""
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


def _newton_direction(q, pi, rho, g_lam, g_mu, free_lam, free_mu, xp: Namespace):
    """Solve the Newton system for ``(d_lam, d_mu)`` by eliminating ``mu`` block by block.

    Shapes: ``q, pi (B, Y, T, S)``, ``rho (B, T, S)``, ``g_lam (B, Y, T)``, ``g_mu (B, Y, S)``;
    fixed variables (``free_* == False``) get a unit diagonal and a zero step.

    The coupling block between ``lam[., t]`` and ``mu[., s]`` is
    ``C_ts = diag(d_ts) + rho_ts u_ts v_ts^T`` (``d = q``, ``u = v = pi`` with the fixed
    variables masked), so the Schur complement
    ``A - sum_s C_ts B_s^{-1} C_t's^T`` is assembled from four structured products at cost
    ``O(|Y|^2 |T|^2 |S|)`` instead of a dense ``O(|Y|^3 |T|^2 |S|)`` product.
    """
    nb, ny, nt, ns = q.shape
    fl = xp.float64(free_lam)                                     # (B, Y, T)
    fm = xp.float64(free_mu)                                      # (B, Y, S)
    rpi = rho[:, None] * pi
    # mu-mu blocks, one per s: diag(q(y,s)) + sum_t rho pi pi^T, inverted
    fm_s = xp.moveaxis(fm, 1, 2)                                  # (B, S, Y)
    b_s = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=2), 1, 2)) + xp.einsum("byts,bzts->bsyz",
                                                                          rpi, pi)
    b_s = b_s * fm_s[:, :, :, None] * fm_s[:, :, None, :] + xp.diag_embed(1.0 - fm_s)
    g = xp.solve(b_s, xp.eye(ny, like=q) + 0.0 * b_s)             # B_s^{-1}, (B, S, Y, Y)
    # lam-lam blocks, one per t
    fl_t = xp.moveaxis(fl, 1, 2)                                  # (B, T, Y)
    a_t = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=3), 1, 2)) + xp.einsum("byts,bzts->btyz",
                                                                          rpi, pi)
    a_t = a_t * fl_t[:, :, :, None] * fl_t[:, :, None, :] + xp.diag_embed(1.0 - fl_t)
    # coupling factors
    d = q * fl[:, :, :, None] * fm[:, :, None, :]                 # (B, Y, T, S)
    u = rpi * fl[:, :, :, None]                                   # rho-weighted, lam side
    v = pi * fm[:, :, None, :]                                    # mu side
    gv = xp.einsum("bsyz,bzts->bsyt", g, v)                       # B_s^{-1} v_ts
    vgv = xp.einsum("byts,bsyu->bstu", v, gv)                     # v_ts^T B_s^{-1} v_us
    t1 = xp.einsum("byts,bsyz,bzus->btyuz", d, g, d)
    t2 = xp.einsum("byts,bsyu,bzus->btyuz", d, gv, u)
    t4 = xp.einsum("byts,bstu,bzus->btyuz", u, vgv, u)
    t2 = xp.reshape(t2, (nb, nt * ny, nt * ny))
    corr = xp.reshape(t1 + t4, (nb, nt * ny, nt * ny)) + t2 + xp.swapaxes(t2, 1, 2)
    a_full = xp.reshape(xp.einsum("btyz,tu->btyuz", a_t, xp.eye(nt, like=q)),
                        (nb, nt * ny, nt * ny))
    schur = a_full - corr
    scale = xp.max(xp.einsum("bii->bi", schur), axis=1)
    schur = schur + (1e-15 * scale)[:, None, None] * xp.eye(nt * ny, like=q)

    g_mu = g_mu * fm
    v_mu = xp.einsum("bsyz,bzs->bys", g, g_mu)                    # B^{-1} g_mu
    rhs = g_lam * fl - _c(d, u, v, v_mu, xp)
    rhs = xp.reshape(xp.moveaxis(rhs, 1, 2), (nb, nt * ny))
    d_lam = xp.solve(schur, rhs[..., None])[..., 0]
    d_lam = xp.moveaxis(xp.reshape(d_lam, (nb, nt, ny)), 1, 2) * fl
    d_mu = xp.einsum("bsyz,bzs->bys", g, g_mu - _ct(d, u, v, d_lam, xp)) * fm
    return d_lam, d_mu


def _c(d, u, v, x, xp: Namespace):
    """``(C x)[y, t] = sum_s d[y,t,s] x[y,s] + u[y,t,s] sum_z v[z,t,s] x[z,s]``."""
    return (xp.einsum("byts,bys->byt", d, x)
            + xp.einsum("byts,bts->byt", u, xp.einsum("bzts,bzs->bts", v, x)))


def _ct(d, u, v, x, xp: Namespace):
    """``(C^T x)[z, s] = sum_t d[z,t,s] x[z,t] + v[z,t,s] sum_y u[y,t,s] x[y,t]``."""
    return (xp.einsum("bzts,bzt->bzs", d, x)
            + xp.einsum("bzts,bts->bzs", v, xp.einsum("byts,byt->bts", u, x)))


def _pin_gauge(p_ys, xp: Namespace):
    """One ``mu[y, s]`` per ``y`` is fixed (the largest ``P(y, s)``): ``lam + c_y``,
    ``mu - c_y`` leaves everything unchanged, so the Newton matrix needs one pin per ``y``."""
    best = xp.max(p_ys, axis=2, keepdims=True)
    is_best = (p_ys == best) & (p_ys > 0)
    # keep only the first maximiser: cumulative count of maximisers along s
    if xp.name == "torch":
        first = is_best & (is_best.cumsum(dim=2) == 1)
    else:
        first = is_best & (is_best.cumsum(axis=2) == 1)
    return first


def solve(p, xp: Namespace, tol: float, max_iter: int, done=None) -> SolverOutput:
    """Run the interior-point method on a batch ``p[b, y, t, s]`` (float64, normalised).

    ``tol`` is the target certified gap in nats; at most ``max_iter`` Newton steps. Items with
    ``done[b]`` true (e.g. closed-form cases) are not iterated. The smaller of the two sources
    takes the ``t`` role internally; outputs are in the input's layout.
    """
    swap = p.shape[2] > p.shape[3]
    if swap:
        p = xp.swapaxes(p, 2, 3)
    p_yt = xp.sum(p, axis=3)
    p_ys = xp.sum(p, axis=2)
    p_t = xp.sum(p_yt, axis=1)
    p_s = xp.sum(p_ys, axis=1)
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    live = xp.any(allowed, axis=1)
    m = xp.sum(xp.float64(live), axis=(1, 2))                     # number of constraints
    free_lam = p_yt > 0
    free_mu = (p_ys > 0) & ~_pin_gauge(p_ys, xp)

    cond_t = p_yt / xp.where(p_t > 0, p_t, 1.0)[:, None, :]
    lam = xp.where(p_yt > 0, xp.log(xp.where(p_yt > 0, cond_t, 1.0)) - 1.0, 0.0)
    mu = xp.zeros(p_ys.shape, like=p)
    w = xp.where(live, 1.0 / xp.maximum(m, 1.0)[:, None, None], 0.0)
    h, pi = _logits(lam, mu, allowed, xp)

    def residuals(w, sl, h, pi, inv_t):
        q = w[:, None] * pi
        r_lam = xp.where(p_yt > 0, xp.sum(q, axis=3) - p_yt, 0.0)
        r_mu = xp.where(p_ys > 0, xp.sum(q, axis=2) - p_ys, 0.0)
        r_p = xp.where(live, h + sl, 0.0)
        r_c = xp.where(live, w * sl - inv_t[:, None, None], 0.0)
        norm = (xp.sum(r_lam * r_lam, axis=(1, 2)) + xp.sum(r_mu * r_mu, axis=(1, 2))
                + xp.sum(r_p * r_p, axis=(1, 2)) + xp.sum(r_c * r_c, axis=(1, 2))) ** 0.5
        return q, r_lam, r_mu, r_p, r_c, norm

    sl = w * 0.0 + 1.0                                            # slacks -h
    nb = p.shape[0]
    if done is None:
        done = xp.zeros((nb,), like=p) > 0
    best_low = xp.zeros((nb,), like=p) - math.inf
    best_up = xp.zeros((nb,), like=p) + math.inf
    best_lam, best_mu, best_q = lam, mu, p
    iterations = 0
    centering = xp.zeros((nb,), like=p) + CENTERING
    for iterations in range(max_iter + 1):
        # -- certificate of the current iterate ----------------------------------------------
        q = w[:, None] * pi
        lam_f, mu_f, low = _dual_bound(lam, mu, h, p_yt, p_ys, live, xp)
        q_f = repair(q, p_yt, p_ys, xp)
        up = neg_conditional_entropy(q_f, xp)
        better_low = low > best_low
        better_up = up < best_up
        best_low = xp.where(better_low, low, best_low)
        best_lam = xp.where(better_low[:, None, None], lam_f, best_lam)
        best_mu = xp.where(better_low[:, None, None], mu_f, best_mu)
        best_up = xp.where(better_up, up, best_up)
        best_q = xp.where(better_up[:, None, None, None], q_f, best_q)
        done = done | (best_up - best_low <= tol)
        if xp.all(done) or iterations == max_iter:
            break
        # -- Newton step on (lam, mu, w, slack) ----------------------------------------------
        eta = xp.sum(xp.where(live, w * sl, 0.0), axis=(1, 2))
        inv_t = eta / (centering * xp.maximum(m, 1.0))
        q, r_lam, r_mu, r_p, r_c, norm0 = residuals(w, sl, h, pi, inv_t)
        w_over_s = w / sl
        rho = xp.where(live, w_over_s - w, 0.0)
        coef = w_over_s * r_p - r_c / sl
        g_lam = -r_lam - xp.sum(pi * coef[:, None], axis=3)
        g_mu = -r_mu - xp.sum(pi * coef[:, None], axis=2)
        d_lam, d_mu = _newton_direction(q, pi, rho, g_lam, g_mu, free_lam, free_mu, xp)
        dh = xp.sum(pi * (d_lam[:, :, :, None] + d_mu[:, :, None, :]), axis=1)
        d_w = xp.where(live, w_over_s * (dh + r_p) - r_c / sl, 0.0)
        d_s = xp.where(live, -r_p - dh, 0.0)
        alpha = xp.minimum(_max_step(w, d_w, xp), _max_step(sl, d_s, xp))
        alpha = xp.where(done, 0.0, BOUNDARY * xp.minimum(alpha, 1.0 / BOUNDARY))
        accepted = done
        new = (lam, mu, w, sl, h, pi)
        for _ in range(MAX_BACKTRACK):
            lam_n = lam + alpha[:, None, None] * d_lam
            mu_n = mu + alpha[:, None, None] * d_mu
            w_n = w + alpha[:, None, None] * d_w
            s_n = sl + alpha[:, None, None] * d_s
            h_n, pi_n = _logits(lam_n, mu_n, allowed, xp)
            norm_n = residuals(w_n, s_n, h_n, pi_n, inv_t)[-1]
            ok = norm_n <= (1.0 - SUFFICIENT * alpha) * norm0
            take = ok & ~accepted
            new = tuple(xp.where(_expand(take, a), b, a) for a, b in
                        zip(new, (lam_n, mu_n, w_n, s_n, h_n, pi_n), strict=True))
            accepted = accepted | ok
            if xp.all(accepted):
                break
            alpha = xp.where(accepted, alpha, alpha * SHRINK)
        lam, mu, w, sl, h, pi = new
        # long steps were taken: aim the next barrier parameter lower (adaptive centering)
        centering = xp.where(alpha > 0.9, alpha * 0.0 + CENTERING * FAST, CENTERING)
    if swap:
        best_lam, best_mu = best_mu, best_lam
        best_q = xp.swapaxes(best_q, 2, 3)
    return SolverOutput(best_low, best_up, best_lam, best_mu, best_q, done, iterations)


def _max_step(x, dx, xp: Namespace):
    """Largest ``a <= inf`` with ``x + a dx >= 0`` for every entry, per batch item."""
    ratio = xp.where(dx < 0, -x / xp.where(dx < 0, dx, -1.0), math.inf)
    return xp.min(ratio, axis=(1, 2))


def _expand(mask, like):
    """``mask[b]`` reshaped to broadcast against ``like[b, ...]``."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
