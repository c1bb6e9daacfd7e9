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
problems it is assembled from the diagonal-plus-rank-one structure of the coupling and
factorised in float32, as a preconditioner of conjugate gradients on the exact system (see
:func:`_newton_solver`). The barrier parameter follows Mehrotra's predictor-corrector rule
(see :func:`_step`): two directions per iteration from one factorisation.

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
L. Vandenberghe, "Convex Optimization", Cambridge (2004), section 11.7. S. Mehrotra, "On the
implementation of a primal-dual interior point method", SIAM J. Optim. 2, 575 (1992).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..._backend import Namespace

#: Fraction-to-boundary factor and backtracking parameters of the line search.
BOUNDARY, SHRINK, SUFFICIENT = 0.99, 0.5, 0.01
#: Smallest centering parameter sigma of the Mehrotra corrector.
SIGMA_MIN = 0.05
#: Bound on the corrector's second-order term per block, as a multiple of ``w s``: it may ask
#: the complementarity product to grow by at most this times its current value (see
#: :func:`_step`).
CORRECTOR_CAP = 1.0
#: Most step lengths tried in one line search (the last one is taken even without decrease:
#: near the end rounding can stall the merit function, and the certificate guards the answer).
MAX_BACKTRACK = 8
#: Most conjugate-gradient steps refining each Newton direction (per factor precision).
REFINE = 10
#: Relative residual a structured Newton direction must reach (else the float64 round runs).
ACCURACY = 1e-12
#: Added to the unit diagonal of the scaled ``mu``-``mu`` blocks: once ``rho = w/s`` dwarfs
#: ``q`` they can be rank-deficient in floating point (a relative change far below the accuracy
#: the directions need).
RIDGE = 1e-13
#: Smallest Schur complement size |Y|min(|T|,|S|) factorised first in float32 (below, float64
#: is cheap enough and spares the extra refinement steps float32 needs).
SINGLE_SIZE = 2048
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


def _structured_schur(qm, rpl, pr, m_s, a_t, xp: Namespace, work: dict | None = None):
    r"""The Schur complement :math:`A - \sum_s C_s^\top M_s C_s` as ``(B, |T||Y|, |T||Y|)``.

    With :math:`C_s = Q_s + \Pi_s R_s` (``qm[y,t,s]`` the diagonal part, ``pr`` the columns of
    :math:`\Pi_s`, ``rpl[y,t,s]`` = :math:`\rho_{ts}\pi_{ts}(y)` the rows of :math:`R_s`),
    :math:`G_s = M_s \Pi_s` and :math:`W_s = \Pi_s^\top M_s \Pi_s`, entry
    ``[(t,y), (u,z)]`` of :math:`\sum_s C_s^\top M_s C_s` is

    .. math::

        \sum_s q_{yts} V_{ysuz} + \sum_s \rho_{ts}\pi_{ts}(y) X_{tsuz},\quad
        V_{ysuz} = M_s[y,z] q_{zus} + G_s[y,u] r_{zus},\quad
        X_{tsuz} = G_s[z,t] q_{zus} + W_s[t,u] r_{zus}

    (the first sum holds :math:`Q^\top M Q + Q^\top M \Pi R`, the second the transpose of
    the cross term and :math:`R^\top W R`): two batches of plain matrix products, over ``y``
    and over ``t``, each :math:`2|Y|^2|T|^2|S|` flops, written straight into the final
    ``[t, y, u, z]`` layout. The large arrays live in ``work`` (see :func:`_buffer`), reused
    from one iteration to the next.
    """
    nb, ny, nt, ns = qm.shape
    # the small factors of the broadcast products below, made contiguous: a strided innermost
    # axis makes those products several times slower
    q_t = _contiguous(xp.einsum("bzus->bsuz", qm), xp)[:, None]  # (B, 1, S, U, Z)
    r_t = _contiguous(xp.einsum("bzus->bsuz", rpl), xp)[:, None]
    pr_s = xp.einsum("byts->bsyt", pr)
    g_s = m_s @ pr_s                                              # G_s, (B, S, Y, T)
    w_s = xp.swapaxes(pr_s, 2, 3) @ g_s                           # W_s, (B, S, T, T)
    shape_v, shape_x = (nb, ny, ns, nt, ny), (nb, nt, ns, nt, ny)
    v = _buffer(work, "vx", shape_v, qm, xp)                      # V, (B, Y, S, U, Z)
    xp.multiply(xp.moveaxis(m_s, 1, 2)[:, :, :, None, :], q_t, out=v)
    v += xp.multiply(xp.moveaxis(g_s, 1, 2)[:, :, :, :, None], r_t,
                     out=_buffer(work, "tmp", shape_v, qm, xp))
    cc = xp.matmul(qm, xp.reshape(v, (nb, ny, ns, nt * ny)),
                   out=_buffer(work, "cc", (nb, ny, nt, nt * ny), qm, xp))  # (B, Y, T, UZ)
    x = _buffer(work, "vx", shape_x, qm, xp)                      # X, (B, T, S, U, Z)
    xp.multiply(_contiguous(xp.einsum("bszt->btsz", g_s), xp)[:, :, :, None, :], q_t, out=x)
    x += xp.multiply(xp.einsum("bstu->btsu", w_s)[:, :, :, :, None], r_t,
                     out=_buffer(work, "tmp", shape_x, qm, xp))
    schur = xp.matmul(xp.einsum("byts->btys", rpl), xp.reshape(x, (nb, nt, ns, nt * ny)),
                      out=_buffer(work, "schur", (nb, nt, ny, nt * ny), qm, xp))
    return _subtract_from_a(schur, cc, a_t, xp)


def _solved_schur(qm, rpl, pr, block_solve, a_t, xp: Namespace, work: dict | None = None):
    r"""The Schur complement :math:`A - \sum_s C_s^\top X_s` with :math:`X_s = B_s^{-1} C_s`
    from ``block_solve`` (:func:`_diagonal_blocks`), as ``(B, |T||Y|, |T||Y|)``: slower than
    :func:`_structured_schur` (it forms ``C`` and ``X``, :math:`2|Y|^3|T||S|` more flops) but
    without the explicit inverse of the ill-conditioned :math:`B_s`. :math:`C_s^\top X_s`
    uses the structure of ``C``:

    .. math::

        \sum_s C_s^\top X_s\,[(t,y), \cdot] = \sum_s q_{yts} X_s[y, \cdot]
        + \sum_s \rho_{ts}\pi_{ts}(y) \sum_a \pi_{ts}(a) X_s[a, \cdot],

    two batches of matrix products, :math:`O(|Y|^2|T|^2|S|)`.
    """
    nb, ny, nt, ns = qm.shape
    # C[b, s, z, t, y] = d(y,z) q(y,t,s) + pi(z,t,s) rho pi(y,t,s)
    c = _buffer(work, "vx", (nb, ns, ny, nt, ny), qm, xp)
    xp.multiply(xp.einsum("bzts->bszt", pr)[..., None], xp.einsum("byts->bsty", rpl)[:, :, None],
                out=c)
    xp.diagonal(c, 2, 4)[...] += xp.einsum("byts->bsty", qm)
    x = block_solve(xp.reshape(c, (nb, ns, ny, nt * ny)))        # X_s, (B, S, Y, UZ)
    t1 = xp.matmul(qm, xp.moveaxis(x, 1, 2),
                   out=_buffer(work, "cc", (nb, ny, nt, nt * ny), qm, xp))  # (B, Y, T, UZ)
    px = xp.swapaxes(xp.einsum("byts->bsyt", pr), 2, 3) @ x        # (B, S, T, UZ)
    del x
    schur = xp.matmul(xp.einsum("byts->btys", rpl), xp.moveaxis(px, 1, 2),
                      out=_buffer(work, "schur", (nb, nt, ny, nt * ny), qm, xp))
    return _subtract_from_a(schur, t1, a_t, xp)


def _subtract_from_a(schur, cross, a_t, xp: Namespace):
    r"""Finish a Schur complement in place: ``schur`` holds the ``(B, T, Y, TY)`` part of
    :math:`\sum_s C_s^\top X_s` that ``cross`` (``(B, Y, T, TY)``) completes; returns
    :math:`A - \sum_s C_s^\top X_s` as ``(B, TY, TY)`` (``A`` block diagonal, blocks ``a_t``
    of shape ``(B, T, Y, Y)``) with a relative ``1e-15`` ridge on the diagonal."""
    nb, nt, ny = schur.shape[:3]
    schur += xp.swapaxes(cross, 1, 2)
    schur = xp.reshape(schur, (nb, nt, ny, nt, ny))
    schur *= -1.0
    xp.diagonal(schur, 1, 3)[...] += xp.einsum("btyz->byzt", a_t)  # block-diagonal A
    schur = xp.reshape(schur, (nb, nt * ny, nt * ny))
    diag = xp.diagonal(schur)
    diag += (1e-15 * xp.max(diag, axis=1))[:, None]
    return schur


def _unit_diagonal_scaling(b_s, xp: Namespace):
    """``1 / sqrt(diag(b_s))`` per block, ``(B, S, Y)``; 1 where the diagonal is 0 (a free
    ``mu[y, s]`` whose softmax weights all underflowed: its row is then zero and only the ridge
    keeps the block invertible, instead of a division by zero poisoning the item)."""
    diag = xp.einsum("bsyy->bsy", b_s)
    return 1.0 / xp.where(diag > 0, diag, 1.0) ** 0.5


def _contiguous(x, xp: Namespace):
    """A C-contiguous copy of ``x`` (row-major, whatever the strides of ``x``)."""
    return xp.reshape(xp.reshape(x, (-1,)), tuple(x.shape))


def _buffer(work: dict | None, name: str, shape: tuple[int, ...], like, xp: Namespace):
    """An uninitialised array of ``shape`` (``like``'s dtype and device): the prefix of the
    flat buffer ``work[name]``, grown when too small, or a fresh array without ``work``."""
    size = math.prod(shape)
    buf = None if work is None else work.get(name)
    if buf is None or buf.shape[0] < size or buf.dtype != like.dtype:
        buf = xp.empty((size,), like)
        if work is not None:
            work[name] = buf
    return xp.reshape(buf[:size], shape)


def _diagonal_blocks(q, rpi, pi, fl, fm, xp: Namespace):
    r"""The diagonal blocks of the Newton matrix with fixed variables replaced by identity rows.

    Returns ``(inverse_b, a_t)``: ``inverse_b(x)`` is :math:`B_s^{-1} x` for ``x`` of shape
    ``(B, S, Y, k)``, with the mu-mu blocks, one per ``s``,
    :math:`B_s = \mathrm{diag}(q(\cdot, s)) + \sum_t \rho_{ts} \pi_{ts} \pi_{ts}^\top`;
    they are ill-conditioned near the end, so they are scaled to a unit diagonal plus the
    ridge, ``D B_s D + RIDGE I``, factorised once (Cholesky; LU solves at each call where
    rounding made a block indefinite) and never inverted explicitly:
    :math:`B_s^{-1} x = D (D B_s D)^{-1} D x`. ``a_t`` ``(B, T, Y, Y)`` are the lam-lam
    blocks, one per ``t``. ``rpi = rho * pi``.
    """
    b_scaled = _blocks(xp.sum(q, axis=2), rpi, pi, fm, "byts,bzts->bsyz", xp)
    d = _unit_diagonal_scaling(b_scaled, xp)
    b_scaled *= d[:, :, :, None] * d[:, :, None, :]
    xp.diagonal(b_scaled)[...] += RIDGE
    d = d[..., None]
    chol = xp.cho_factor(b_scaled)

    def inverse_b(x):
        x = d * x
        return d * (xp.solve(b_scaled, x) if chol is None else xp.cho_solve(chol, x))

    return inverse_b, _blocks(xp.sum(q, axis=3), rpi, pi, fl, "byts,bzts->btyz", xp)


def _blocks(q_sum, rpi, pi, free, spec: str, xp: Namespace):
    r"""One family of diagonal blocks of the Newton matrix, ``(B, K, Y, Y)`` for ``K`` = ``T``
    or ``S``: :math:`\mathrm{diag}(q_k) + \sum \rho \pi \pi^\top` (the sum and ``q_sum``
    ``(B, Y, K)`` over the other source; ``spec`` the einsum of the rank-one sum), with the
    rows and columns of fixed variables (``free`` ``(B, Y, K)`` zero) replaced by identity
    ones."""
    free_k = xp.moveaxis(free, 1, 2)                              # (B, K, Y)
    blocks = xp.einsum(spec, rpi, pi)
    blocks *= free_k[:, :, :, None] * free_k[:, :, None, :]
    xp.diagonal(blocks)[...] += xp.moveaxis(q_sum, 1, 2) * free_k + (1.0 - free_k)
    return blocks


def _newton_solver(q, pi, rho, free_lam, free_mu, xp: Namespace, work: dict | None = None):
    r"""Factorise the Newton matrix once; return ``solve(g_lam, g_mu) -> (d_lam, d_mu)``.

    ``mu`` is eliminated block by block. Shapes: ``q, pi (B, Y, T, S)``, ``rho (B, T, S)``,
    ``g_lam (B, Y, T)``, ``g_mu (B, Y, S)``; fixed variables (``free_* == False``) get a unit
    diagonal and a zero step.

    The coupling of ``lam[., t]`` and ``mu[., s]`` is :math:`C_s = D_s + \Pi_s K_s`, diagonal in
    ``y`` plus rank one per ``(t, s)``, so with :math:`M_s = B_s^{-1}` (``|Y| x |Y|``, computed
    after a symmetric diagonal scaling) the Schur complement
    :math:`A - \sum_s C_s^\top M_s C_s` is assembled by :func:`_structured_schur` in
    :math:`O(|Y|^2 |T|^2 |S|)` operations (the dense product :math:`C^\top (B^{-1} C)` costs
    :math:`O(|Y|^3 |T|^2 |S|)`), then factorised by Cholesky (:math:`O(|Y|^3 |T|^3)`) in
    float32 (half the time of float64). The factor only preconditions: each direction is
    refined by conjugate gradients on the exact Newton matrix (applied matrix-free in float64)
    until its relative residual is below ``ACCURACY``; where that fails, the Schur complement
    is reassembled from solves with :math:`B_s` (:func:`_solved_schur`) and factorised in
    float64. Small problems (``|Y||T||S| < STRUCTURED_SIZE``) use :func:`_dense_solver`.
    """
    nb, ny, nt, ns = q.shape
    if ny * nt * ns < STRUCTURED_SIZE:
        return _dense_solver(q, pi, rho, free_lam, free_mu, xp)
    fl = xp.float64(free_lam)
    fm = xp.float64(free_mu)
    qm = q * fl[:, :, :, None] * fm[:, :, None, :]                # D part, (B, Y, T, S)
    rpl = rho[:, None] * pi * fl[:, :, :, None]                   # lam side of the rank one
    pr = pi * fm[:, :, None, :]                                   # mu side of the rank one
    rpi = rho[:, None] * pi
    block_solve, a_t = _diagonal_blocks(q, rpi, pi, fl, fm, xp)
    m_s = block_solve(xp.eye(ny, like=q))                         # B_s^{-1}, (B, S, Y, Y)

    # assembled in float64 (a float32 assembly loses too much to cancellation late in the
    # run) and factorised, in float32 when large; where that is not enough, reassembled from
    # solves with B_s and factorised in float64; each at most once per Newton matrix
    schur = _structured_schur(qm, rpl, pr, m_s, a_t, xp, work)
    factors = {}

    def factor(first):
        # first: the structured Schur complement, in float32 when large; else the solved one
        if first not in factors:
            single = first and nt * ny >= SINGLE_SIZE
            exact = schur if first else _solved_schur(qm, rpl, pr, block_solve, a_t, xp, work)
            factors[first] = _factor(exact, xp, single=single)
            if factors[first][0] == "failed":      # float32 Cholesky broke down
                factors[first] = factor(False)
        return factors[first]

    def inverse_b(x, exact):
        # B_s^{-1} x for x (B, S, Y): the explicit inverse, or (exact) solves with D B_s D
        if exact:
            return block_solve(x[..., None])[..., 0]
        return (m_s @ x[..., None])[..., 0]

    def approx_solve(factor, g_l, g_m):
        # right-hand side g_lam - sum_s C_s^T B_s^{-1} g_mu_s, then back-substitution
        # d_mu_s = B_s^{-1} (g_mu_s - C_s d_lam); with the float64 factor of the solved Schur
        # complement, B_s^{-1} by solves too (the explicit inverse loses the digits that
        # factor keeps)
        exact = factor is factors.get(False)
        g_ms = xp.moveaxis(g_m * fm, 1, 2)                        # (B, S, Y)
        v = xp.moveaxis(inverse_b(g_ms, exact), 1, 2)[:, :, None, :]  # (B, Y, 1, S)
        pv = xp.sum(pr * v, axis=1, keepdims=True)                # (B, 1, T, S)
        ctv = xp.sum(qm * v + rpl * pv, axis=3)                   # C^T M g_mu, (B, Y, T)
        rhs = xp.reshape(xp.moveaxis(g_l * fl - ctv, 1, 2), (nb, nt * ny, 1))
        d_l = xp.moveaxis(xp.reshape(_factor_solve(factor, rhs, xp), (nb, nt, ny)), 1, 2) * fl
        d_l4 = d_l[:, :, :, None]
        rd = xp.sum(rpl * d_l4, axis=1, keepdims=True)            # (B, 1, T, S)
        c_d = xp.moveaxis(xp.sum(qm * d_l4 + pr * rd, axis=2), 1, 2)  # C d_lam, (B, S, Y)
        d_m = inverse_b(g_ms - c_d, exact)                        # (B, S, Y)
        return d_l, xp.moveaxis(d_m, 1, 2) * fm

    def apply(d_l, d_m):
        # the exact Newton matrix times (d_l, d_m), matrix-free (fixed variables: identity)
        z = d_l[:, :, :, None] + d_m[:, :, None, :]
        u = q * z + rpi * xp.sum(pi * z, axis=1, keepdims=True)
        return (fl * xp.sum(u, axis=3) + (1.0 - fl) * d_l,
                fm * xp.sum(u, axis=2) + (1.0 - fm) * d_m)

    def dot(a_l, a_m, b_l, b_m):
        return xp.sum(a_l * b_l, axis=(1, 2)) + xp.sum(a_m * b_m, axis=(1, 2))

    def solve(g_lam, g_mu):
        g_lam, g_mu = g_lam * fl, g_mu * fm
        target = ACCURACY**2 * dot(g_lam, g_mu, g_lam, g_mu)

        def refined(factor):
            # conjugate gradients on the exact Newton matrix, preconditioned by the factorised
            # Schur complement (residuals recomputed from the iterate at every step); the
            # iterate with the smallest residual is kept
            x_l, x_m = approx_solve(factor, g_lam, g_mu)
            h_l, h_m = apply(x_l, x_m)
            r_l, r_m = g_lam - h_l, g_mu - h_m
            best_l, best_m, best = x_l, x_m, dot(r_l, r_m, r_l, r_m)
            if REFINE == 0 or xp.all(best <= target):
                return best_l, best_m, best
            p_l, p_m = approx_solve(factor, r_l, r_m)
            rz = dot(r_l, r_m, p_l, p_m)
            for _ in range(REFINE):
                h_l, h_m = apply(p_l, p_m)
                php = dot(p_l, p_m, h_l, h_m)
                ok = (php > 0) & (rz > 0)
                alpha = xp.where(ok, rz / xp.where(ok, php, 1.0), 0.0)[:, None, None]
                x_l, x_m = x_l + alpha * p_l, x_m + alpha * p_m
                h_l, h_m = apply(x_l, x_m)
                r_l, r_m = g_lam - h_l, g_mu - h_m
                size = dot(r_l, r_m, r_l, r_m)
                better = size < best
                best_l = xp.where(better[:, None, None], x_l, best_l)
                best_m = xp.where(better[:, None, None], x_m, best_m)
                best = xp.where(better, size, best)
                if xp.all(best <= target):
                    break
                z_l, z_m = approx_solve(factor, r_l, r_m)
                rz_new = dot(r_l, r_m, z_l, z_m)
                beta = xp.where(rz > 0, rz_new / xp.where(rz > 0, rz, 1.0), 0.0)[:, None, None]
                p_l, p_m = z_l + beta * p_l, z_m + beta * p_m
                rz = rz_new
            return best_l, best_m, best

        # the float32 factor of the structured Schur complement first; where refinement does
        # not reach ACCURACY (that assembly loses digits to cancellation once rho = w/s is
        # large), the float64 factor of the solved one (kept for the next right-hand side);
        # per item the direction with the smaller residual
        d_lam, d_mu, size = refined(factor(True))
        if xp.any(size > target):
            d_l, d_m, size64 = refined(factor(False))
            better = (size64 < size)[:, None, None]
            d_lam = xp.where(better, d_l, d_lam)
            d_mu = xp.where(better, d_m, d_mu)
        return d_lam, d_mu

    return solve


def _dense_solver(q, pi, rho, free_lam, free_mu, xp: Namespace):
    """Factorise the dense Schur complement ``A - sum_s C_s^T B_s^{-1} C_s``
    (:math:`O(|Y|^3|T|^2|S|)` operations: slower for large problems but accurate to the end);
    return ``solve(g_lam, g_mu) -> (d_lam, d_mu)``.

    Shapes: ``q, pi (B, Y, T, S)``, ``rho (B, T, S)``, ``g_lam (B, Y, T)``, ``g_mu (B, Y, S)``;
    fixed variables (``free_* == False``) get a unit diagonal and a zero step.
    """
    nb, ny, nt, ns = q.shape
    fl = xp.float64(free_lam)
    fm = xp.float64(free_mu)
    rpi = rho[:, None] * pi
    block_solve, a_t = _diagonal_blocks(q, rpi, pi, fl, fm, xp)
    # coupling C[b, s, z, t, y] = fl(y,t) fm(z,s) (d(y,z) q(y,t,s) + rho pi(y) pi(z))
    cross = (xp.einsum("bzts->bszt", pi * fm[:, :, None, :])[..., None]
             * xp.einsum("byts->bsty", rpi * fl[:, :, :, None])[:, :, None])
    xp.diagonal(cross, 2, 4)[...] += xp.einsum("byts->bsty",
                                               q * fl[:, :, :, None] * fm[:, :, None, :])
    cross = xp.reshape(cross, (nb, ns, ny, nt * ny))
    cross_t = xp.swapaxes(xp.reshape(cross, (nb, ns * ny, nt * ny)), 1, 2)
    x = xp.reshape(block_solve(cross), (nb, ns * ny, nt * ny))   # B_s^{-1} C_s
    schur = -(cross_t @ x)
    blocks = xp.reshape(schur, (nb, nt, ny, nt, ny))
    xp.diagonal(blocks, 1, 3)[...] += xp.einsum("btyz->byzt", a_t)  # block-diagonal A
    diag = xp.diagonal(schur)
    diag += (1e-15 * xp.max(diag, axis=1))[:, None]
    factor = _factor(schur, xp)

    def solve(g_lam, g_mu):
        # with v = B^{-1} g_mu: C^T v = x^T g_mu and d_mu = v - x d_lam (one solve with B)
        g_mu_s = xp.moveaxis(g_mu * fm, 1, 2)[..., None]          # (B, S, Y, 1)
        v = xp.reshape(block_solve(g_mu_s), (nb, ns * ny, 1))    # B_s^{-1} g_mu_s
        rhs = xp.reshape(xp.moveaxis(g_lam * fl, 1, 2), (nb, nt * ny, 1)) - cross_t @ v
        d_lam = _factor_solve(factor, rhs, xp)                    # (B, T*Y, 1)
        d_mu = xp.reshape(v - x @ d_lam, (nb, ns, ny))            # (B, S, Y)
        d_lam = xp.moveaxis(xp.reshape(d_lam, (nb, nt, ny)), 1, 2) * fl
        return d_lam, xp.moveaxis(d_mu, 1, 2) * fm

    return solve


def _factor(a, xp: Namespace, single: bool = False):
    """Batched factorisation of the symmetric ``a[..., n, n]`` for :func:`_factor_solve`.

    Cholesky (only the lower triangle is read), or a float64 LU where rounding made ``a``
    numerically indefinite (numpy: batches of more than one item are then solved afresh by
    numpy's batched solver at each use). With ``single``, a float32 Cholesky, and
    ``("failed", None)`` instead of an LU (numpy batches: always, as float32 would not pay
    there). ``a`` is left unchanged (float64 input).
    """
    if xp.name == "torch":
        import torch

        chol = xp.cho_factor(a.float() if single else a.double())
        if chol is not None:
            return "cholesky", chol
        return ("failed", None) if single else ("lu", torch.linalg.lu_factor(a.double()))
    import numpy as np

    if a.shape[0] > 1:   # scipy loops over a batch in Python: the namespace's batched Cholesky
        chol = None if single else xp.cho_factor(a)
        if chol is not None:
            return "cholesky", chol
        return ("failed", None) if single else ("solve", np.asarray(a, dtype=np.float64))
    import scipy.linalg
    from scipy.linalg import lapack

    # a is symmetric and C-ordered: its transpose is the Fortran-ordered array LAPACK wants
    if single:
        c, info = lapack.spotrf(np.asarray(a[0], dtype=np.float32).T, lower=1, overwrite_a=1,
                                clean=0)
    else:
        c, info = lapack.dpotrf(np.asarray(a[0], dtype=np.float64).T, lower=1, overwrite_a=0,
                                clean=0)
    if info == 0:
        return "lapack_cholesky", (c, True)
    if single:
        return "failed", None
    return "lu", scipy.linalg.lu_factor(a, check_finite=False)


def _factor_solve(factor, b, xp: Namespace):
    """``a^{-1} b`` from :func:`_factor`'s output, ``b[..., n, k]`` (float64 out)."""
    kind, f = factor
    if kind == "cholesky":
        return xp.to_dtype(xp.cho_solve(f, xp.to_dtype(b, f)), b)
    if kind == "solve":
        return xp.solve(f, b)
    if xp.name == "torch":
        import torch

        return torch.linalg.lu_solve(*f, b)
    import scipy.linalg

    if kind == "lu":
        return scipy.linalg.lu_solve(f, b, check_finite=False)
    c, lower = f
    return scipy.linalg.cho_solve((c, lower), b[0].astype(c.dtype),
                                  check_finite=False)[None].astype(b.dtype)


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


def _step(pb: _Problem, state, xp: Namespace, work: dict | None = None):
    r"""One damped Mehrotra predictor-corrector step on ``state = (lam, mu, w, slack, h, pi)``;
    returns the new state (a backtracking line search on the residual norm sets each item's
    step length).

    Both directions use one factorisation: the predictor aims at :math:`w s = 0`, its longest
    step sets the barrier target :math:`1/\tau = \sigma \eta / m` with
    :math:`\sigma = (\eta_\text{aff} / \eta)^3`, and the corrector adds the second-order
    term :math:`\Delta w_\text{aff} \Delta s_\text{aff}` to the complementarity residual,
    bounded below by :math:`-\text{CORRECTOR\_CAP}\, w s` per block. That term is the
    product's change along the *full* affine step; on this nonlinear problem the affine step
    is often far from admissible (:math:`\alpha_\text{aff} \ll 1`), and on blocks leaving the
    support (:math:`w \to 0` while :math:`s` grows several-fold) the unbounded term asked
    :math:`w s` to grow by an order of magnitude, steering sparse pmfs into a region where
    the Newton directions blew up.
    """
    lam, mu, w, sl, h, pi = state
    eta = xp.sum(xp.where(pb.live, w * sl, 0.0), axis=(1, 2))
    m = xp.maximum(pb.m, 1.0)
    q, r_lam, r_mu, r_p, r_c_aff, _ = _residuals(pb, w, sl, h, pi, eta * 0.0, xp)
    w_over_s = w / sl
    rho = xp.where(pb.live, w_over_s - w, 0.0)
    solver = _newton_solver(q, pi, rho, pb.free_lam, pb.free_mu, xp, work)

    def direction(r_c):
        coef = w_over_s * r_p - r_c / sl
        g_lam = -r_lam - xp.sum(pi * coef[:, None], axis=3)
        g_mu = -r_mu - xp.sum(pi * coef[:, None], axis=2)
        d_lam, d_mu = solver(g_lam, g_mu)
        dh = xp.sum(pi * (d_lam[:, :, :, None] + d_mu[:, :, None, :]), axis=1)
        d_w = xp.where(pb.live, w_over_s * (dh + r_p) - r_c / sl, 0.0)
        d_s = xp.where(pb.live, -r_p - dh, 0.0)
        return d_lam, d_mu, d_w, d_s

    # predictor
    _, _, dw_aff, ds_aff = direction(r_c_aff)
    a_aff = xp.minimum(xp.minimum(_max_step(w, dw_aff, xp), _max_step(sl, ds_aff, xp)), 1.0)
    a_aff = a_aff[:, None, None]
    eta_aff = xp.sum(xp.where(pb.live, (w + a_aff * dw_aff) * (sl + a_aff * ds_aff), 0.0),
                     axis=(1, 2))
    sigma = xp.maximum(xp.minimum(xp.maximum(eta_aff / eta, 0.0), 1.0) ** 3, SIGMA_MIN)
    inv_t = sigma * eta / m
    # corrector
    second = xp.maximum(dw_aff * ds_aff, -CORRECTOR_CAP * w * sl)
    r_c = xp.where(pb.live, w * sl - inv_t[:, None, None] + second, 0.0)
    d_lam, d_mu, d_w, d_s = direction(r_c)
    r_c0 = r_c_aff - xp.where(pb.live, inv_t[:, None, None], 0.0)
    norm0 = (xp.sum(r_lam * r_lam, axis=(1, 2)) + xp.sum(r_mu * r_mu, axis=(1, 2))
             + xp.sum(r_p * r_p, axis=(1, 2)) + xp.sum(r_c0 * r_c0, axis=(1, 2))) ** 0.5
    alpha = xp.minimum(_max_step(w, d_w, xp), _max_step(sl, d_s, xp))
    alpha = BOUNDARY * xp.minimum(alpha, 1.0 / BOUNDARY)
    # backtracking; after the first trial only the items still waiting are evaluated
    new = [xp.copy(x) for x in state]
    waiting = None                                                # None: every item

    def pick(x):
        return x if waiting is None else x[waiting]

    for trial in range(MAX_BACKTRACK):
        last = trial == MAX_BACKTRACK - 1  # the shortest step is taken without decrease
        a = pick(alpha)
        step = a[:, None, None]
        trial_state = (pick(lam) + step * pick(d_lam), pick(mu) + step * pick(d_mu),
                       pick(w) + step * pick(d_w), pick(sl) + step * pick(d_s))
        h_n, pi_n = _logits(trial_state[0], trial_state[1], pick(pb.allowed), xp)
        sub = pb if waiting is None else pb.take(waiting)
        norm_n = _residuals(sub, trial_state[2], trial_state[3], h_n, pi_n, pick(inv_t), xp)[-1]
        ok = (norm_n <= (1.0 - SUFFICIENT * a) * pick(norm0)) | last
        taken = ok if waiting is None else _scatter(waiting, ok, xp)
        for x, t in zip(new, (*trial_state, h_n, pi_n), strict=True):
            x[taken] = t[ok]
        waiting = ~taken if waiting is None else waiting & ~taken
        if not xp.any(waiting):
            break
        alpha = xp.where(waiting, alpha * SHRINK, alpha)
    return tuple(new)


def _scatter(mask, values, xp: Namespace):
    """A boolean array shaped like ``mask``: ``values`` at its true entries, false elsewhere."""
    out = xp.copy(mask)
    out[mask] = values
    return out


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
    iterations = 0
    active = ~done
    work: dict = {}                                               # large buffers, reused
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
        new = _step(sub, tuple(x[active] for x in state), xp, work)
        for x, n in zip(state, new, strict=True):
            x[active] = n
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
