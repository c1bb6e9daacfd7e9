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
section 11.7) on this dual, with explicit slacks :math:`s_{ts}` so that iterates need not be
feasible: Newton steps on the perturbed KKT system ``q(y,t) = P(y,t)``, ``q(y,s) = P(y,s)``,
:math:`h_{ts} + s_{ts} = 0`, :math:`w_{ts} s_{ts} = 1/\tau`, with a fraction-to-boundary rule on
``w`` and ``s`` and a backtracking line search on the residual norm.

Each Newton system has the matrix :math:`E^\top [\mathrm{Diag}(q) + \sum_{ts} \rho_{ts}
\pi_{ts}\pi_{ts}^\top] E` in :math:`(\lambda, \mu)` (``E`` maps them to the logits
:math:`\lambda_{yt} + \mu_{ys}`, :math:`\rho = w/s - w`). Its :math:`\mu\mu` part is block
diagonal (one ``|Y| x |Y|`` block per ``s``), so we eliminate :math:`\mu` and solve the Schur
complement of size ``|Y||T|`` (the solver puts the smaller source in the ``T`` role); for large
problems it is assembled from the diagonal-plus-rank-one structure of the coupling, with
iterative refinement and a dense fallback (see :func:`_newton_direction`).

Every iterate yields a certificate: the dual point, shifted per ``t`` and then per ``s`` so that
every constraint holds, gives a lower bound on :math:`f^*`; the primal point, repaired onto
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
#: Most step lengths tried in one line search (the last one is taken even without decrease:
#: near the end rounding can stall the merit function, and the certificate guards the answer).
MAX_BACKTRACK = 8
#: Steps of iterative refinement of each Newton direction.
REFINE = 2
#: Relative residual of a structured Newton direction above which the dense solve is used.
ACCURACY = 1e-9
#: Smallest |Y||T||S| for which the structured Schur complement is used (below: dense).
STRUCTURED_SIZE = 1000


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
    r"""Solve the Newton system for ``(d_lam, d_mu)`` by eliminating ``mu`` block by block.

    Shapes: ``q, pi (B, Y, T, S)``, ``rho (B, T, S)``, ``g_lam (B, Y, T)``, ``g_mu (B, Y, S)``;
    fixed variables (``free_* == False``) get a unit diagonal and a zero step.

    The coupling of ``lam[., t]`` and ``mu[., s]`` is :math:`C_s = D_s + \Pi_s K_s`, diagonal in
    ``y`` plus rank one per ``(t, s)``, so with :math:`M_s = B_s^{-1}` (``|Y| x |Y|``, computed
    after a symmetric diagonal scaling) the Schur complement
    :math:`A - \sum_s C_s^\top M_s C_s` is assembled term by term with batched matrix
    products in :math:`O(|Y|^2 |T|^2 |S|)` operations and :math:`O(|Y|^2 |T| |S|)` memory
    (the dense product :math:`C^\top (B^{-1} C)` costs :math:`O(|Y|^3 |T|^2 |S|)`), then
    factorised (Cholesky, :math:`O(|Y|^3 |T|^3)`). Small problems
    (``|Y||T||S| < STRUCTURED_SIZE``) use :func:`_dense_direction`.
    """
    nb, ny, nt, ns = q.shape
    if ny * nt * ns < STRUCTURED_SIZE:
        return _dense_direction(q, pi, rho, g_lam, g_mu, free_lam, free_mu, xp)
    fl = xp.float64(free_lam)
    fm = xp.float64(free_mu)
    qm = q * fl[:, :, :, None] * fm[:, :, None, :]                # D part, (B, Y, T, S)
    rpl = rho[:, None] * pi * fl[:, :, :, None]                   # lam side of the rank one
    pr = pi * fm[:, :, None, :]                                   # mu side of the rank one
    # mu-mu blocks, one per s: diag(q(y,s)) + sum_t rho pi pi^T; inverted after scaling by
    # their diagonal (they are ill-conditioned near the end)
    fm_s = xp.moveaxis(fm, 1, 2)                                  # (B, S, Y)
    rpi = rho[:, None] * pi
    b_s = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=2), 1, 2)) + xp.einsum("byts,bzts->bsyz",
                                                                          rpi, pi)
    b_s = b_s * fm_s[:, :, :, None] * fm_s[:, :, None, :] + xp.diag_embed(1.0 - fm_s)
    d = 1.0 / xp.einsum("bsyy->bsy", b_s) ** 0.5
    dd = d[:, :, :, None] * d[:, :, None, :]
    m_s = xp.solve(b_s * dd, xp.eye(ny, like=q) + 0.0 * b_s) * dd  # (B, S, Y, Y)
    # lam-lam blocks, one per t
    fl_t = xp.moveaxis(fl, 1, 2)                                  # (B, T, Y)
    a_t = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=3), 1, 2)) + xp.einsum("byts,bzts->btyz",
                                                                          rpi, pi)
    a_t = a_t * fl_t[:, :, :, None] * fl_t[:, :, None, :] + xp.diag_embed(1.0 - fl_t)
    pr_s = xp.einsum("byts->bsyt", pr)
    g_s = m_s @ pr_s                                              # M_s Pi_s, (B, S, Y, T)
    w_s = xp.swapaxes(pr_s, 2, 3) @ g_s                           # Pi_s^T M_s Pi_s, (B, S, T, T)
    # sum_s C_s^T M_s C_s, indexed [b, t, y, u, z] = [(t, y), (u, z)]; every product is a
    # batch of plain matrix products over one index
    q_zsu = _c(xp.einsum("bzus->bzsu", qm), xp)
    r_usz = _c(xp.einsum("bzus->busz", rpl), xp)
    x1 = qm[:, None] * xp.einsum("bsyz->bzys", m_s)[:, :, :, None]         # (B, Z, Y, T, S)
    t1 = xp.reshape(x1, (nb, ny, ny * nt, ns)) @ q_zsu                      # (B, Z, YT, U)
    del x1
    cc = xp.einsum("bzytu->btyuz", xp.reshape(t1, (nb, ny, ny, nt, nt)))
    x2 = qm[:, None] * xp.einsum("bsyu->buys", g_s)[:, :, :, None]         # (B, U, Y, T, S)
    t2 = xp.reshape(xp.reshape(x2, (nb, nt, ny * nt, ns)) @ r_usz, (nb, nt, ny, nt, ny))
    del x2
    t2 = xp.einsum("buytz->btyuz", t2)
    cc = cc + t2 + xp.einsum("btyuz->buzty", t2)
    del t2
    x3 = xp.einsum("byts->btys", rpl)[:, None] * xp.einsum("bstu->buts", w_s)[:, :, :, None]
    t3 = xp.reshape(xp.reshape(x3, (nb, nt, nt * ny, ns)) @ r_usz, (nb, nt, nt, ny, ny))
    del x3
    cc = cc + xp.einsum("butyz->btyuz", t3)
    del t3
    schur = -xp.reshape(cc, (nb, nt * ny, nt * ny))
    del cc
    blocks = xp.reshape(schur, (nb, nt, ny, nt, ny))
    idx = xp.arange(nt, like=q)
    blocks[:, idx, :, idx, :] += xp.moveaxis(a_t, 1, 0)           # block-diagonal A
    scale = xp.max(xp.einsum("bii->bi", schur), axis=1)
    schur = schur + (1e-15 * scale)[:, None, None] * xp.eye(nt * ny, like=q)
    factor = _factor(schur, xp)

    def approx_solve(g_l, g_m):
        # right-hand side g_lam - sum_s C_s^T M_s g_mu_s, then back-substitution
        # d_mu_s = M_s (g_mu_s - C_s d_lam)
        g_ms = xp.moveaxis(g_m * fm, 1, 2)                        # (B, S, Y)
        v = (m_s @ g_ms[..., None])[..., 0]
        pv = xp.einsum("bzts,bsz->bts", pr, v)
        ctv = xp.einsum("byts,bsy->byt", qm, v) + xp.einsum("byts,bts->byt", rpl, pv)
        rhs = xp.reshape(xp.moveaxis(g_l * fl - ctv, 1, 2), (nb, nt * ny, 1))
        d_l = xp.moveaxis(xp.reshape(_factor_solve(factor, rhs, xp), (nb, nt, ny)), 1, 2) * fl
        rd = xp.einsum("byts,byt->bts", rpl, d_l)
        c_d = xp.einsum("bzts,bzt->bsz", qm, d_l) + xp.einsum("bzts,bts->bsz", pr, rd)
        d_m = (m_s @ (g_ms - c_d)[..., None])[..., 0]             # (B, S, Y)
        return d_l, xp.moveaxis(d_m, 1, 2) * fm

    # the structured Schur complement loses digits to cancellation once rho = w/s is large:
    # iterative refinement against the exact (matrix-free) Newton matrix, keeping a correction
    # only where it lowers the residual; items still inaccurate fall back to the dense solve
    def residual(d_l, d_m):
        z = d_l[:, :, :, None] + d_m[:, :, None, :]
        u = q * z + rpi * xp.sum(pi * z, axis=1, keepdims=True)
        r_l = g_lam * fl - (fl * xp.sum(u, axis=3) + (1.0 - fl) * d_l)
        r_m = g_mu * fm - (fm * xp.sum(u, axis=2) + (1.0 - fm) * d_m)
        size = xp.sum(r_l * r_l, axis=(1, 2)) + xp.sum(r_m * r_m, axis=(1, 2))
        return r_l, r_m, size

    d_lam, d_mu = approx_solve(g_lam, g_mu)
    r_l, r_m, size = residual(d_lam, d_mu)
    for _ in range(REFINE):
        c_l, c_m = approx_solve(r_l, r_m)
        n_l, n_m = d_lam + c_l, d_mu + c_m
        nr_l, nr_m, n_size = residual(n_l, n_m)
        better = n_size < size
        d_lam = xp.where(better[:, None, None], n_l, d_lam)
        d_mu = xp.where(better[:, None, None], n_m, d_mu)
        r_l = xp.where(better[:, None, None], nr_l, r_l)
        r_m = xp.where(better[:, None, None], nr_m, r_m)
        size = xp.where(better, n_size, size)
    g_size = xp.sum(g_lam * g_lam * fl, axis=(1, 2)) + xp.sum(g_mu * g_mu * fm, axis=(1, 2))
    bad = size > ACCURACY**2 * g_size
    if xp.any(bad):
        d_l, d_m = _dense_direction(q[bad], pi[bad], rho[bad], g_lam[bad], g_mu[bad],
                                    free_lam[bad], free_mu[bad], xp)
        d_lam[bad] = d_l
        d_mu[bad] = d_m
    return d_lam, d_mu


def _dense_direction(q, pi, rho, g_lam, g_mu, free_lam, free_mu, xp: Namespace):
    """The Newton direction from the dense Schur complement ``sum_s C_s^T B_s^{-1} C_s``
    (:math:`O(|Y|^3|T|^2|S|)` operations): slower for large problems but accurate to the end.

    Shapes: ``q, pi (B, Y, T, S)``, ``rho (B, T, S)``, ``g_lam (B, Y, T)``, ``g_mu (B, Y, S)``;
    fixed variables (``free_* == False``) get a unit diagonal and a zero step.
    """
    nb, ny, nt, ns = q.shape
    fl = xp.float64(free_lam)
    fm = xp.float64(free_mu)
    rpi = rho[:, None] * pi
    # mu-mu blocks, one per s: diag(q(y,s)) + sum_t rho pi pi^T (ill-conditioned near the
    # end: solve with them, never form their inverse)
    fm_s = xp.moveaxis(fm, 1, 2)                                  # (B, S, Y)
    b_s = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=2), 1, 2)) + xp.einsum("byts,bzts->bsyz",
                                                                          rpi, pi)
    b_s = b_s * fm_s[:, :, :, None] * fm_s[:, :, None, :] + xp.diag_embed(1.0 - fm_s)
    # lam-lam blocks, one per t
    fl_t = xp.moveaxis(fl, 1, 2)                                  # (B, T, Y)
    a_t = xp.diag_embed(xp.moveaxis(xp.sum(q, axis=3), 1, 2)) + xp.einsum("byts,bzts->btyz",
                                                                          rpi, pi)
    a_t = a_t * fl_t[:, :, :, None] * fl_t[:, :, None, :] + xp.diag_embed(1.0 - fl_t)
    # coupling C[b, s, z, t, y] = fl(y,t) fm(z,s) (d(y,z) q(y,t,s) + rho pi(y) pi(z))
    mask = fl[:, :, :, None] * fm[:, :, None, :]
    cross = (xp.einsum("byts,bzts->bszty", rpi * fl[:, :, :, None], pi * fm[:, :, None, :])
             + xp.einsum("byts,yz->bszty", q * mask, xp.eye(ny, like=q)))
    cross = xp.reshape(cross, (nb, ns, ny, nt * ny))
    cross_t = xp.swapaxes(xp.reshape(cross, (nb, ns * ny, nt * ny)), 1, 2)
    g_mu_s = xp.moveaxis(g_mu * fm, 1, 2)[..., None]              # (B, S, Y, 1)
    # one batched solve for B_s^{-1} [C_s, g_mu_s]
    xv = xp.solve(b_s, _cat(cross, g_mu_s, xp))
    x = xp.reshape(xv[..., :-1], (nb, ns * ny, nt * ny))          # B_s^{-1} C_s
    v = xp.reshape(xv[..., -1:], (nb, ns * ny, 1))                # B_s^{-1} g_mu_s
    schur = -(cross_t @ x)
    blocks = xp.reshape(schur, (nb, nt, ny, nt, ny))
    idx = xp.arange(nt, like=q)
    blocks[:, idx, :, idx, :] += xp.moveaxis(a_t, 1, 0)           # block-diagonal A
    scale = xp.max(xp.einsum("bii->bi", schur), axis=1)
    schur = schur + (1e-15 * scale)[:, None, None] * xp.eye(nt * ny, like=q)
    rhs = xp.reshape(xp.moveaxis(g_lam * fl, 1, 2), (nb, nt * ny, 1)) - cross_t @ v
    d_lam = xp.solve(schur, rhs)                                  # (B, T*Y, 1)
    back = xp.reshape(xp.swapaxes(cross_t, 1, 2) @ d_lam, (nb, ns, ny, 1))
    d_mu = xp.solve(b_s, g_mu_s - back)[..., 0]                   # (B, S, Y)
    d_lam = xp.moveaxis(xp.reshape(d_lam, (nb, nt, ny)), 1, 2) * fl
    d_mu = xp.moveaxis(d_mu, 1, 2) * fm
    return d_lam, d_mu


def _cat(a, b, xp: Namespace):
    """``a`` and ``b`` side by side along the last axis."""
    if xp.name == "torch":
        import torch

        return torch.cat([a, b], dim=-1)
    import numpy as np

    return np.concatenate([a, b], axis=-1)


def _c(x, xp: Namespace):
    """A C-contiguous copy of ``x`` (so that batched products run as BLAS calls)."""
    return xp.reshape(xp.reshape(x, (-1,)), tuple(x.shape))


def _factor(a, xp: Namespace):
    """Batched factorisation of the symmetric ``a[..., n, n]`` for :func:`_factor_solve`:
    Cholesky, or LU where rounding made ``a`` numerically indefinite (numpy batches of more
    than one item are solved afresh by numpy's batched solver at each use)."""
    if xp.name == "torch":
        import torch

        chol, info = torch.linalg.cholesky_ex(a)
        if not bool((info == 0).all()):
            return "lu", torch.linalg.lu_factor(a)
        return "cholesky", chol
    if a.shape[0] > 1:   # scipy loops over a batch in Python: numpy's batched solve instead
        return "solve", a
    import scipy.linalg

    try:
        return "cholesky", scipy.linalg.cho_factor(a, lower=True, check_finite=False)
    except scipy.linalg.LinAlgError:
        return "lu", scipy.linalg.lu_factor(a, check_finite=False)


def _factor_solve(factor, b, xp: Namespace):
    """``a^{-1} b`` from :func:`_factor`'s output, ``b[..., n, k]``."""
    kind, f = factor
    if xp.name == "torch":
        import torch

        if kind == "lu":
            return torch.linalg.lu_solve(*f, b)
        return torch.cholesky_solve(b, f)
    if kind == "solve":
        return xp.solve(f, b)
    import scipy.linalg

    if kind == "lu":
        return scipy.linalg.lu_solve(f, b, check_finite=False)
    return scipy.linalg.cho_solve(f, b, check_finite=False)


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


@dataclass
class _Problem:
    """Constants of a (sub-)batch: marginals, supports and gauge pins."""

    p_yt: Any
    p_ys: Any
    allowed: Any
    live: Any
    m: Any
    free_lam: Any
    free_mu: Any

    def take(self, idx) -> _Problem:
        return _Problem(*(getattr(self, k)[idx] for k in self.__dataclass_fields__))


def _residuals(pb: _Problem, w, sl, h, pi, inv_t, xp: Namespace):
    """Residuals of the perturbed KKT system and their norm, per batch item."""
    q = w[:, None] * pi
    r_lam = xp.where(pb.p_yt > 0, xp.sum(q, axis=3) - pb.p_yt, 0.0)
    r_mu = xp.where(pb.p_ys > 0, xp.sum(q, axis=2) - pb.p_ys, 0.0)
    r_p = xp.where(pb.live, h + sl, 0.0)
    r_c = xp.where(pb.live, w * sl - inv_t[:, None, None], 0.0)
    norm = (xp.sum(r_lam * r_lam, axis=(1, 2)) + xp.sum(r_mu * r_mu, axis=(1, 2))
            + xp.sum(r_p * r_p, axis=(1, 2)) + xp.sum(r_c * r_c, axis=(1, 2))) ** 0.5
    return q, r_lam, r_mu, r_p, r_c, norm


def _step(pb: _Problem, state, centering, xp: Namespace):
    """One damped Newton step on ``state = (lam, mu, w, slack, h, pi)``; returns the new state
    and the step length taken."""
    lam, mu, w, sl, h, pi = state
    eta = xp.sum(xp.where(pb.live, w * sl, 0.0), axis=(1, 2))
    inv_t = eta / (centering * xp.maximum(pb.m, 1.0))
    q, r_lam, r_mu, r_p, r_c, norm0 = _residuals(pb, w, sl, h, pi, inv_t, xp)
    w_over_s = w / sl
    rho = xp.where(pb.live, w_over_s - w, 0.0)
    coef = w_over_s * r_p - r_c / sl
    g_lam = -r_lam - xp.sum(pi * coef[:, None], axis=3)
    g_mu = -r_mu - xp.sum(pi * coef[:, None], axis=2)
    d_lam, d_mu = _newton_direction(q, pi, rho, g_lam, g_mu, pb.free_lam, pb.free_mu, xp)
    dh = xp.sum(pi * (d_lam[:, :, :, None] + d_mu[:, :, None, :]), axis=1)
    d_w = xp.where(pb.live, w_over_s * (dh + r_p) - r_c / sl, 0.0)
    d_s = xp.where(pb.live, -r_p - dh, 0.0)
    alpha = xp.minimum(_max_step(w, d_w, xp), _max_step(sl, d_s, xp))
    alpha = BOUNDARY * xp.minimum(alpha, 1.0 / BOUNDARY)
    accepted = alpha < 0  # all False
    new = state
    for trial in range(MAX_BACKTRACK):
        last = trial == MAX_BACKTRACK - 1  # the shortest step is taken without decrease
        lam_n = lam + alpha[:, None, None] * d_lam
        mu_n = mu + alpha[:, None, None] * d_mu
        w_n = w + alpha[:, None, None] * d_w
        s_n = sl + alpha[:, None, None] * d_s
        h_n, pi_n = _logits(lam_n, mu_n, pb.allowed, xp)
        norm_n = _residuals(pb, w_n, s_n, h_n, pi_n, inv_t, xp)[-1]
        ok = (norm_n <= (1.0 - SUFFICIENT * alpha) * norm0) | last
        take = ok & ~accepted
        new = tuple(xp.where(_expand(take, a), b, a) for a, b in
                    zip(new, (lam_n, mu_n, w_n, s_n, h_n, pi_n), strict=True))
        accepted = accepted | ok
        if xp.all(accepted):
            break
        alpha = xp.where(accepted, alpha, alpha * SHRINK)
    return new, xp.where(accepted, alpha, 0.0)


def solve(p, xp: Namespace, tol: float, max_iter: int, done=None) -> SolverOutput:
    """Run the interior-point method on a batch ``p[b, y, t, s]`` (float64, normalised).

    ``tol`` is the target certified gap in nats; at most ``max_iter`` Newton steps. Items with
    ``done[b]`` true (e.g. closed-form cases) are not iterated, and items leave the working
    batch as soon as their own certificate reaches ``tol``. The smaller of the two sources
    takes the ``t`` role internally; outputs are in the input's layout.
    """
    swap = p.shape[2] > p.shape[3]
    if swap:
        p = xp.swapaxes(p, 2, 3)
    p_yt = xp.sum(p, axis=3)
    p_ys = xp.sum(p, axis=2)
    p_t = xp.sum(p_yt, axis=1)
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    live = xp.any(allowed, axis=1)
    m = xp.sum(xp.float64(live), axis=(1, 2))                     # number of constraints
    pb = _Problem(p_yt, p_ys, allowed, live, m, p_yt > 0,
                  (p_ys > 0) & ~_pin_gauge(p_ys, xp))

    cond_t = p_yt / xp.where(p_t > 0, p_t, 1.0)[:, None, :]
    # start: lam = ln P(y|t), mu = 0, uniform block masses, unit slacks. The start is
    # deliberately not on h + s = 0: a feasible start made the early steps much shorter
    lam = xp.where(p_yt > 0, xp.log(xp.where(p_yt > 0, cond_t, 1.0)), 0.0)
    mu = xp.zeros(p_ys.shape, like=p)
    w = xp.where(live, 1.0 / xp.maximum(m, 1.0)[:, None, None], 0.0)
    h, pi = _logits(lam, mu, allowed, xp)
    state = [lam, mu, w, w * 0.0 + 1.0, h, pi]                    # slack starts at 1
    nb = p.shape[0]
    if done is None:
        done = xp.zeros((nb,), like=p) > 0
    best_low = xp.zeros((nb,), like=p) - math.inf
    best_up = xp.zeros((nb,), like=p) + math.inf
    best_lam, best_mu, best_q = xp.copy(lam), xp.copy(mu), xp.copy(p)
    centering = xp.zeros((nb,), like=p) + CENTERING
    iterations = 0
    active = ~done
    for iterations in range(max_iter + 1):
        if not xp.any(active):
            break
        sub = pb.take(active)
        lam, mu, w, sl, h, pi = (x[active] for x in state)
        # -- certificate of the current iterate ----------------------------------------------
        lam_f, mu_f, low = _dual_bound(lam, mu, h, sub.p_yt, sub.p_ys, sub.live, xp)
        q_f = repair(w[:, None] * pi, sub.p_yt, sub.p_ys, xp)
        up = neg_conditional_entropy(q_f, xp)
        better_low = low > best_low[active]
        better_up = up < best_up[active]
        best_low[active] = xp.where(better_low, low, best_low[active])
        best_lam[active] = xp.where(better_low[:, None, None], lam_f, best_lam[active])
        best_mu[active] = xp.where(better_low[:, None, None], mu_f, best_mu[active])
        best_up[active] = xp.where(better_up, up, best_up[active])
        best_q[active] = xp.where(better_up[:, None, None, None], q_f, best_q[active])
        finished = best_up[active] - best_low[active] <= tol
        done[active] = finished
        if iterations == max_iter or xp.all(finished):
            break
        # -- Newton step on the items still open -------------------------------------------
        keep = ~finished
        active_new = xp.copy(active)
        active_new[active] = keep
        active = active_new
        sub = sub.take(keep)
        new, alpha = _step(sub, tuple(x[active] for x in state), centering[active], xp)
        for x, n in zip(state, new, strict=True):
            x[active] = n
        # long steps were taken: aim the next barrier parameter lower (adaptive centering)
        centering[active] = xp.where(alpha > 0.9, alpha * 0.0 + CENTERING * FAST, CENTERING)
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
