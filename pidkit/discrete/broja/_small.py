r"""A lean driver of the interior-point method for ONE small numpy pmf (``|Y||T||S| <=
SMALL_SIZE``): the same Mehrotra predictor-corrector steps as :mod:`._ipm` (its constants,
its line search rule, its start), written with plain numpy on arrays without a batch axis, and
the Newton system assembled as one dense ``n x n`` matrix, ``n = |Y|(|T| + |S|)``,

.. math::

    H = E^\top \mathrm{Diag}(q) E + G\,\mathrm{Diag}(\rho)\,G^\top,\qquad G = E^\top \Pi,

scaled to a unit diagonal (plus :data:`~._newton.RIDGE`) and factorised once per iteration by
Cholesky for both directions. The general solver pays about 1 ms of array-namespace dispatch,
sub-batch bookkeeping and generic batched linear algebra per iteration at these sizes; this
driver does the same arithmetic in a few dozen numpy calls.

The certificate is the general one: :func:`~._bounds.dual_bound`, :func:`~._bounds.repair`
and :func:`~._bounds.neg_conditional_entropy` on the iterate. It is evaluated once the
iterate is close (complementarity and residual small), so early iterations skip it; the
returned bracket always comes from those functions. An iterate still open at iteration
:data:`._ipm.POLISH_EVERY` gets the crossover of :func:`._polish.polish` (as the general
solver's items do), whose bounds are certified the same way. When this driver does not reach
``tol`` (in at most :data:`LEAN_ITER` iterations), the general solver :func:`._ipm.solve` runs
instead and its output is returned: the lean path can only save time, never lose accuracy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

from ..._backend import NUMPY
from ..._threads import one_blas_thread
from . import _ipm, _polish
from ._bounds import dual_bound, neg_conditional_entropy, repair
from ._ipm import (
    BOUNDARY,
    CERT_FACTOR,
    CERT_FROM,
    CORRECTOR_CAP,
    MAX_BACKTRACK,
    SHRINK,
    SIGMA_MIN,
    SUFFICIENT,
    SolverOutput,
)
from ._newton import RIDGE
from ._problem import Problem, pin_gauge

__all__ = ["SMALL_SIZE", "LEAN_ITER", "solve"]

#: Largest |Y||T||S| sent to the lean driver (8 x 8 x 8; above, the general solver).
SMALL_SIZE = 512
#: Most lean iterations before the general solver takes over.
LEAN_ITER = 60
#: Steps of iterative refinement of each Newton direction (:func:`_refined_solve`).
REFINE_STEPS = 2
#: Refinement runs on the corrector direction once ``sum(w s)`` is below this (earlier the
#: scaled matrix is well conditioned and the predictor only sets the barrier target).
REFINE_BELOW = 1e-4


def _logits(lam, mu, allowed):
    z = lam[:, :, None] + mu[:, None, :]
    z = np.where(allowed, z, -math.inf)
    zmax = z.max(axis=0)
    zmax = np.where(zmax > -math.inf, zmax, 0.0)
    e = np.exp(z - zmax)
    tot = e.sum(axis=0)
    pos = tot > 0
    safe = np.where(pos, tot, 1.0)
    h = np.where(pos, np.log(safe) + zmax, -1.0)
    return h, e / safe


class _Small:
    """Constants of one pmf ``p[y, t, s]`` and the index maps of the dense Newton matrix."""

    def __init__(self, p):
        ny, nt, ns = p.shape
        self.p_yt, self.p_ys = p.sum(axis=2), p.sum(axis=1)
        self.allowed = (self.p_yt > 0)[:, :, None] & (self.p_ys > 0)[:, None, :]
        self.live = self.allowed.any(axis=0)
        self.m = max(float(self.live.sum()), 1.0)
        pins = pin_gauge(self.p_ys[None], NUMPY)[0]
        self.ok_yt, self.ok_ys = self.p_yt > 0, self.p_ys > 0
        self.free_mu = self.ok_ys & ~pins
        free = np.concatenate([self.ok_yt.ravel(), self.free_mu.ravel()])
        self.free = free.astype(np.float64)
        self.n = n = ny * (nt + ns)
        self.diag = np.arange(n) * (n + 1)
        self.shape = (ny, nt, ns)


def _direction(pr, factor, scale, pi, w_over_s, sl, r_lam, r_mu, r_p, r_c, refine):
    """The Newton direction for complementarity residual ``r_c`` (as
    :meth:`._ipm.Linearisation.direction`)."""
    coef = w_over_s * r_p - r_c / sl
    pc = pi * coef
    g = np.concatenate([(-r_lam - pc.sum(axis=2)).ravel(),
                        (-r_mu - pc.sum(axis=1)).ravel()]) * pr.free
    d = scale * _refined_solve(factor, scale * g, refine)
    ny, nt, ns = pr.shape
    d_lam, d_mu = d[:ny * nt].reshape(ny, nt), d[ny * nt:].reshape(ny, ns)
    dh = (pi * (d_lam[:, :, None] + d_mu[:, None, :])).sum(axis=0)
    d_w = np.where(pr.live, w_over_s * (dh + r_p) - r_c / sl, 0.0)
    d_s = np.where(pr.live, -r_p - dh, 0.0)
    return d_lam, d_mu, d_w, d_s


def _refined_solve(factor, rhs, refine):
    """Solve with the scaled Newton matrix ``factor = (matrix, cholesky)`` (the Cholesky
    factor of the matrix plus the ridge), then ``refine`` steps of iterative
    refinement against the matrix without the ridge (late in the run, once rho = w/s >> q,
    the ridge and rounding would otherwise leave relative errors near 1e-8 in the direction
    and the gap would stall above tol). LAPACK's ``dpotrs`` directly: scipy's ``cho_solve``
    costs more in argument checks than the solve itself at these sizes."""
    matrix, chol = factor
    x = _potrs(chol, rhs, lower=False)[0]
    for _ in range(refine):
        x = x + _potrs(chol, rhs - matrix @ x, lower=False)[0]
    return x


def _max_step(x, dx):
    """Largest ``a`` with ``x + a dx >= 0`` (as :func:`._ipm.max_step`, one item)."""
    return float(np.min(np.where(dx < 0, -x / dx, math.inf)))


def _residuals(pr, w, sl, h, pi, inv_t):
    q = w * pi
    # q is 0 outside the allowed cells, so r_lam, r_mu are exactly 0 off the support
    r_lam = q.sum(axis=2) - pr.p_yt
    r_mu = q.sum(axis=1) - pr.p_ys
    r_p = np.where(pr.live, h + sl, 0.0)
    r_c = np.where(pr.live, w * sl - inv_t, 0.0)
    return q, r_lam, r_mu, r_p, r_c


def _norm(*rs):
    return math.sqrt(sum(float(np.vdot(r, r)) for r in rs))


def _newton_factor(pr, q, pi, rho):
    r"""The dense Newton matrix of :mod:`._newton` (fixed variables: identity rows), scaled to
    a unit diagonal, and the Cholesky factor of the scaled matrix plus the ridge. Its blocks,
    with :math:`r = \rho\pi`:
    ``[(y,t),(z,t)]`` :math:`\sum_s r_{yts}\pi_{zts} + \delta_{yz} q(y,t)`,
    ``[(y,s),(z,s)]`` :math:`\sum_t r_{yts}\pi_{zts} + \delta_{yz} q(y,s)`,
    ``[(y,t),(z,s)]`` :math:`r_{yts}\pi_{zts} + \delta_{yz} q(y,t,s)`."""
    ny, nt, ns = pr.shape
    n, nl = pr.n, ny * nt
    h = np.zeros((n, n))
    rpi = rho * pi
    ll = h[:nl, :nl].reshape(ny, nt, ny, nt)
    np.einsum("ytzt->yzt", ll)[...] = np.einsum("yts,zts->yzt", rpi, pi)
    mm = h[nl:, nl:].reshape(ny, ns, ny, ns)
    np.einsum("yszs->yzs", mm)[...] = np.einsum("yts,zts->yzs", rpi, pi)
    lm = h[:nl, nl:].reshape(ny, nt, ny, ns)
    lm[...] = rpi[:, :, None, :] * pi[None, :, :, :].transpose(0, 2, 1, 3)
    np.einsum("ytys->yts", lm)[...] += q
    h[nl:, :nl] = h[:nl, nl:].T
    hf = h.ravel()
    hf[pr.diag] += np.concatenate([q.sum(axis=2).ravel(), q.sum(axis=1).ravel()])
    f = pr.free
    h *= f[:, None] * f[None, :]
    hf[pr.diag] += 1.0 - f
    dg = hf[pr.diag]
    scale = 1.0 / np.sqrt(np.where(dg > 0, dg, 1.0))
    h *= scale[:, None] * scale[None, :]
    ridged = h.copy()
    ridged.ravel()[pr.diag] += RIDGE
    chol, info = _potrf(ridged, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError("Newton matrix not positive definite")
    return (h, chol), scale


def _certificate(pr, lam, mu, h, w, pi):
    lam_f, mu_f, low = dual_bound(lam[None], mu[None], h[None], pr.p_yt[None], pr.p_ys[None],
                                  pr.live[None], NUMPY)
    q_f = repair((w * pi)[None], pr.p_yt[None], pr.p_ys[None], NUMPY)
    up = neg_conditional_entropy(q_f, NUMPY)
    return float(low[0]), float(up[0]), lam_f[0], mu_f[0], q_f[0]


def _keep(best, low, up, lam, mu, q):
    """Keep in ``best = [low, up, lam, mu, q]`` the bounds that improve (and their points)."""
    if low > best[0]:
        best[0], best[2], best[3] = low, lam, mu
    if up < best[1]:
        best[1], best[4] = up, q


def _crossover(pr, state, tol):
    """The crossover of :func:`._polish.polish` on the lean iterate ``state``, as for the
    general solver's items at iteration :data:`._ipm.POLISH_EVERY`; returns its bounds and
    points ``(low, up, lam, mu, q)`` for one pmf."""
    pb = Problem(pr.p_yt[None], pr.p_ys[None], pr.allowed[None], pr.live[None],
                 np.array([pr.m]), pr.ok_yt[None], pr.free_mu[None])
    low, up, lam, mu, q = _polish.polish(pb, tuple(x[None] for x in state), tol, NUMPY)
    return float(low[0]), float(up[0]), lam[0], mu[0], q[0]


def _lean(p, tol, max_iter):
    """The lean iteration on ``p[y, t, s]`` (smaller source first); ``None`` when it did not
    certify ``tol`` within its iterations or the linear algebra failed."""
    pr = _Small(p)
    p_t = pr.p_yt.sum(axis=0)
    cond_t = pr.p_yt / np.where(p_t > 0, p_t, 1.0)[None, :]
    lam = np.where(pr.ok_yt, np.log(np.where(pr.ok_yt, cond_t, 1.0)), 0.0)
    mu = np.zeros(pr.p_ys.shape)
    w = np.where(pr.live, 1.0 / pr.m, 0.0)
    sl = np.ones_like(w)
    h, pi = _logits(lam, mu, pr.allowed)
    best = [-math.inf, math.inf, None, None, None]
    checking = False
    for it in range(min(max_iter, LEAN_ITER) + 1):
        eta = float(np.where(pr.live, w * sl, 0.0).sum())
        q, r_lam, r_mu, r_p, r_c_aff = _residuals(pr, w, sl, h, pi, 0.0)
        checking = checking or eta <= CERT_FACTOR * tol or it >= CERT_FROM
        if checking or it == min(max_iter, LEAN_ITER):
            _keep(best, *_certificate(pr, lam, mu, h, w, pi))
            if best[1] - best[0] <= tol:
                return best, it
            if it == _ipm.POLISH_EVERY:
                _keep(best, *_crossover(pr, (lam, mu, w, sl, h, pi), tol))
                if best[1] - best[0] <= tol:
                    return best, it
        if it == min(max_iter, LEAN_ITER):
            return None
        # -- one Mehrotra predictor-corrector step (as _ipm.step) --------------------------
        w_over_s = w / sl
        rho = np.where(pr.live, w_over_s - w, 0.0)
        try:
            factor, scale = _newton_factor(pr, q, pi, rho)
        except np.linalg.LinAlgError:
            return None
        args = (pr, factor, scale, pi, w_over_s, sl, r_lam, r_mu, r_p)
        _, _, dw_aff, ds_aff = _direction(*args, r_c_aff, 0)
        a_aff = min(_max_step(w, dw_aff), _max_step(sl, ds_aff), 1.0)
        eta_aff = float(np.where(pr.live, (w + a_aff * dw_aff) * (sl + a_aff * ds_aff),
                                 0.0).sum())
        sigma = max(min(max(eta_aff / eta, 0.0), 1.0) ** 3, SIGMA_MIN)
        inv_t = sigma * eta / pr.m
        second = np.maximum(dw_aff * ds_aff, -CORRECTOR_CAP * w * sl)
        r_c = np.where(pr.live, w * sl - inv_t + second, 0.0)
        d_lam, d_mu, d_w, d_s = _direction(*args, r_c, REFINE_STEPS if eta < REFINE_BELOW
                                            else 0)
        norm0 = _norm(r_lam, r_mu, r_p, r_c_aff - np.where(pr.live, inv_t, 0.0))
        alpha = min(_max_step(w, d_w), _max_step(sl, d_s))
        alpha = BOUNDARY * min(alpha, 1.0 / BOUNDARY)
        if not math.isfinite(norm0) or not math.isfinite(alpha):
            return None
        for trial in range(MAX_BACKTRACK):
            lam_n, mu_n = lam + alpha * d_lam, mu + alpha * d_mu
            w_n, sl_n = w + alpha * d_w, sl + alpha * d_s
            h_n, pi_n = _logits(lam_n, mu_n, pr.allowed)
            norm_n = _norm(*_residuals(pr, w_n, sl_n, h_n, pi_n, inv_t)[1:])
            if norm_n <= (1.0 - SUFFICIENT * alpha) * norm0 or trial == MAX_BACKTRACK - 1:
                break
            alpha *= SHRINK
        lam, mu, w, sl, h, pi = lam_n, mu_n, w_n, sl_n, h_n, pi_n
    return None


def solve(p, xp, tol: float, max_iter: int, done=None, start=None) -> SolverOutput:
    """:func:`._ipm.solve`'s contract for a batch of one small numpy pmf ``p[1, y, t, s]``:
    the lean iteration, or the general solver where it does not certify ``tol`` or ``p`` is
    not small. A warm ``start`` goes to the general solver only: at these sizes the lean
    iteration from its cold start costs less than the general one from a warm start."""
    if (xp is not NUMPY or p.shape[0] != 1 or p[0].size > SMALL_SIZE
            or (done is not None and bool(done[0]))):
        return _ipm.solve(p, xp, tol, max_iter, done, start)
    single = p[0]
    swap = single.shape[1] > single.shape[2]
    if swap:
        single = np.swapaxes(single, 1, 2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), one_blas_thread():
        found = _lean(np.ascontiguousarray(single), tol, max_iter)
    if found is None:
        return _ipm.solve(p, xp, tol, max_iter, done, start)
    (low, up, lam, mu, q), iterations = found
    if swap:
        lam, mu, q = mu, lam, np.swapaxes(q, 1, 2)
    return SolverOutput(np.array([low]), np.array([up]), lam[None], mu[None], q[None],
                        np.array([True]), iterations)
