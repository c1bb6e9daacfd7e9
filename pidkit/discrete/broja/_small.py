r"""A lean driver of the interior-point method for numpy pmfs whose Newton matrix is small
(``|Y|(|T| + |S|) <=`` :data:`LEAN_ROWS`), one at a time (a batch of up to
:data:`LEAN_BATCH` or ``|Y||T||S| / 8`` of them, or of pmfs of :data:`LEAN_BATCH_CELLS` cells
or more, item by item; torch tensors in host memory come
here as numpy arrays, :func:`._host.atoms_arrays`): the Mehrotra predictor-corrector steps
of :mod:`._ipm` (its line search rule, its corrector cap) written with plain numpy on arrays
without a batch axis, and the Newton system assembled as one dense ``n x n`` matrix,
``n = |Y|(|T| + |S|)``,

.. math::

    H = E^\top \mathrm{Diag}(q) E + G\,\mathrm{Diag}(\rho)\,G^\top,\qquad G = E^\top \Pi,

scaled to a unit diagonal (plus :data:`~._newton.RIDGE`) and factorised once per iteration by
Cholesky (LAPACK directly) for both directions. At these sizes the cost is the number of numpy
calls, not arithmetic: the matrix is assembled already scaled into preallocated storage (only
its upper triangle, which is all LAPACK reads, through strided views of its blocks), the dual
point is one vector, the block masses and slacks one ``(2, T, S)`` array, margins are one
product with the incidence matrix on the smallest tables (where :math:`G^\top d` is one
product with the scaled :math:`G` of the Newton matrix), the two directions of a step share
the first term of their right-hand side, and the residuals of an accepted trial point are
those of the next iteration. BLAS runs with the caller's threads:
:func:`._core.solve_atoms` pins one above :data:`._core.UNPINNED_SINGLE` Newton rows.

Three choices, all for fewer iterations, which :func:`._ipm.solve` now shares
(:data:`._ipm.LEAN_RULES`; the fixed-iteration mode :func:`._ipm.solve_fixed` keeps the
original ones):

- the start: the dual point of :mod:`._ipm`, block masses
  :math:`w_{ts} = \sum_y P(y,t) P(y,s) / P(y)` (the independent coupling
  :math:`P(y) P(t \mid y) P(s \mid y)`, which has the right marginals), at least
  :data:`START_MASS` ``/ m``, and slacks :data:`START_SLACK`;
- the centering parameter :math:`\sigma = (\eta_{\mathrm{aff}} / \eta)^3` is floored at
  :data:`~._ipm.SIGMA_MIN` only while that floor asks for a complementarity above
  :data:`TARGET_FRACTION` times ``tol`` (then at that level): once the affine step is nearly
  full, the iteration converges superlinearly instead of by a factor of about 17 per step;
  and it is at least :data:`RESIDUAL_FRACTION` times the residual norm over :math:`\eta`
  (Wright 1997, chapter 6: the infeasibility must fall as fast as the complementarity);
- the fraction-to-boundary factor is :math:`1 - \min(1 - \text{BOUNDARY}, \eta)`, so it tends
  to 1 as :math:`\eta = \sum w s \to 0` (Wright 1997, chapter 11; at least
  :data:`TARGET_FRACTION` ``tol`` away from 1, so that rounding cannot put an iterate on the
  boundary).

The certificate is the general one, for one pmf: :func:`._bounds.dual_bound`,
:func:`._bounds.repair` and :func:`._bounds.neg_conditional_entropy` evaluated with the same
formulas on arrays without a batch axis (:func:`_certificate`: :func:`_lower` of the dual
point, :func:`_upper` of the primal one). A warm start (:mod:`._warm`) is certified by the
same two functions before any iteration, and iterates from its re-centred point where that
leaves the bracket above ``tol`` (:func:`_lean_warm`: the warm solver for one pmf, without
the batched functions, about 0.3 ms less per call on a 10 x 10 x 10 pmf). It is evaluated once
:math:`\eta \le` :data:`~._ipm.CERT_FACTOR` ``tol`` (or from :data:`~._ipm.CERT_FROM` on);
the returned bracket always comes from it, and the iterate's accuracy only decides when it
passes. As in the general solver, the primal point is also rescaled onto the marginals
(:func:`._bounds.upper_bound`) from iteration :data:`~._ipm.RESCALE_FROM` on while the bracket
is open, here only once the iterate is close (:math:`\eta \le` ``CERT_FACTOR tol``: the
stalls it resolves have a converged dual bound; on iterations that have not converged, e.g.
Dirichlet(0.01) pmfs on their way to the crossover, it cost 0.35 ms per iteration and found
nothing), a trial point's slacks are reset to :math:`-h` where it is dual-feasible and the
line search is non-monotone (:data:`~._ipm.NONMONOTONE`) from :data:`~._ipm.RESET_FROM` on,
and an iterate still open every :data:`._ipm.POLISH_EVERY`
iterations gets the crossover of :func:`._polish.polish`, whose bounds are certified the same
way: the driver runs to ``max_iter`` and reports its best bracket as the general solver does.
Only where its linear algebra fails (a Newton matrix that is not positive definite, a
non-finite step) does the general solver :func:`._ipm.solve` run instead, from the start
(or the warm solver :func:`._warm.warm_solver` from the warm start).

References
----------
S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM J. Optim. 2,
575 (1992). S. J. Wright, "Primal-Dual Interior-Point Methods", SIAM (1997).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.linalg.blas import dsymv as _symv
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs
from scipy.special import xlogy as _xlogy

from ..._backend import NUMPY
from . import _ipm, _polish, _warm
from ._bounds import LOG_NEGLIGIBLE, rounding_margin, upper_bound
from ._ipm import (
    BOUNDARY,
    CERT_FACTOR,
    CERT_FROM,
    CORRECTOR_CAP,
    MAX_BACKTRACK,
    NONMONOTONE,
    REFINE_BELOW,
    RESCALE_FROM,
    RESET_FROM,
    RESIDUAL_FRACTION,
    SHRINK,
    SIGMA_MIN,
    START_MASS,
    START_SLACK,
    SUFFICIENT,
    TARGET_FRACTION,
    SolverOutput,
)
from ._newton import RIDGE
from ._problem import Problem

__all__ = ["LEAN_BATCH", "LEAN_BATCH_CELLS", "LEAN_ROWS", "solve"]

#: Most rows ``|Y|(|T| + |S|)`` of the dense Newton matrix for which one pmf goes to the lean
#: driver (above, the general solver, whose Schur complement has ``|Y| min(|T|, |S|)`` rows).
#: Measured (2026-12-05, one BLAS thread, Dirichlet(1) pmfs, median of 3-10, lean / general):
#: 4.3 / 16.1 ms at 10 x 10 x 10 (200 rows), 25 / 44 ms at 16 x 16 x 16 (512), 70 / 104 ms at
#: 20 x 20 x 20 (800), 96 / 108 ms at 64 x 8 x 8 (1024), 145 / 168 ms at 16 x 32 x 32 (1024),
#: 703 / 760 ms at 2 x 250 x 250 (1000), but 174-179 / 158-174 ms at 24 x 24 x 24 (1152): the
#: dense Cholesky factorisation (n^3 / 3) overtakes the general solver's per-call overhead
#: near 1000 rows.
LEAN_ROWS = 1024
#: A batch of at most ``max(LEAN_BATCH, |Y||T||S| / 8)`` such pmfs is solved item by item by
#: the lean driver (above, by the general solver, whose cost per iteration is mostly a fixed
#: overhead shared by the batch). Measured (2026-12-05, Dirichlet(1) cubes, cold, one BLAS
#: thread; lean loop / general): 2.5 / 11.6 ms for 2 pmfs at k = 4, 16.7 / 18.6 ms for 16,
#: 31.9 / 19.6 ms for 32; 45.7 / 40.7 ms for 32 at k = 6; 9.6 / 34.2 ms for 2 at k = 10 and
#: 266 / 353 ms for 64.
LEAN_BATCH = 16
#: ... and a batch of pmfs of at least this many cells ``|Y||T||S|``, whatever its size: the
#: general solver's batching saves nothing there (k = 8, 1000 Dirichlet(1) pmfs: 2.70 s as one
#: batch against 2.45 s for the loop of single solves, ``benchmarks/results/broja_batched.md``,
#: 2026-12-05 13:11 UTC).
LEAN_BATCH_CELLS = 512
#: Steps of iterative refinement of each Newton direction (:func:`_solve`).
REFINE_STEPS = 1
#: Sizes ``|Y||T||S| n`` up to which margins and ``lam[y, t] + mu[y, s]`` are products with
#: the incidence matrix (one call; at 3 x 3 x 3 a third of the time of the reductions),
#: above which reductions and broadcasting (at 8 x 8 x 8, the product costs twice as much).
BY_MATRIX = 2048
# START_SLACK, START_MASS, TARGET_FRACTION, RESIDUAL_FRACTION and REFINE_BELOW: the rules
# this driver shares with :func:`._ipm.solve` (defined and explained there).


@functools.lru_cache(maxsize=64)
def _layout(ny: int, nt: int, ns: int):
    """The incidence matrix ``E`` (``(E v)[y, t, s] = lam[y, t] + mu[y, s]``), its transpose
    and the sum over ``y`` (``|Y||T||S| x |T||S|``) up to :data:`BY_MATRIX`, else None;
    read-only, shared by the solves of one shape."""
    nl, n = ny * nt, ny * (nt + ns)
    if ny * nt * ns * n > BY_MATRIX:
        return None
    y, s = np.arange(ny)[:, None, None], np.arange(ns)[None, None, :]
    t3 = np.arange(nt)[None, :, None]
    cells, shape = np.arange(ny * nt * ns), (ny, nt, ns)
    incidence = np.zeros((ny * nt * ns, n))
    incidence[cells, np.broadcast_to(y * nt + t3, shape).ravel()] = 1.0
    incidence[cells, np.broadcast_to(nl + y * ns + s, shape).ravel()] = 1.0
    y_sum = np.zeros((ny * nt * ns, nt * ns))
    y_sum[cells, cells % (nt * ns)] = 1.0
    index = incidence, np.ascontiguousarray(incidence.T), y_sum
    for a in index:
        a.setflags(write=False)
    return index


def _strided(a, offset: int, shape: tuple[int, ...], steps: tuple[int, ...]):
    """The view of the C-contiguous matrix ``a`` at the flat positions
    ``offset + sum(i_k steps_k)``, ``i`` over ``shape`` (writable: the blocks of the Newton
    matrix are written through it)."""
    item = a.itemsize
    return np.ndarray(shape, a.dtype, buffer=a, offset=offset * item,
                      strides=tuple(step * item for step in steps))


class _Small:
    """Constants of one pmf ``p[y, t, s]`` and storage for its Newton matrix (above
    :data:`BY_MATRIX`, only its upper triangle is written, through strided views of its
    blocks; LAPACK reads it through the transpose); up to :data:`BY_MATRIX`, :func:`_newton`
    also keeps its scaled ``Diag(scale) G`` here as ``g`` for the directions."""

    def __init__(self, p):
        ny, nt, ns = self.shape = p.shape
        self.nl, self.n = nl, n = ny * nt, ny * (nt + ns)
        self.p_yt, self.p_ys = p_yt, p_ys = np.add.reduce(p, 2), np.add.reduce(p, 1)
        self.ok_yt, self.ok_ys = ok_yt, ok_ys = p_yt > 0, p_ys > 0
        self.all_allowed = bool(ok_yt.all() and ok_ys.all())
        if self.all_allowed:        # the common case: every block live, nothing to mask
            self.allowed = np.ones(p.shape, dtype=bool)
            self.live, self.livef = np.ones((nt, ns), dtype=bool), np.ones((nt, ns))
            self.m, self.dead = float(nt * ns), False
        else:
            self.allowed = allowed = ok_yt[:, :, None] & ok_ys[:, None, :]
            self.live = live = np.logical_or.reduce(allowed, 0)
            self.m = max(float(np.count_nonzero(live)), 1.0)
            self.dead = self.m < nt * ns
            self.off = np.where(allowed, 0.0, -math.inf)
            self.livef = live.astype(np.float64)
        # one mu per y is pinned (pin_gauge: the first largest P(y, s))
        self.free_mu = free_mu = ok_ys.copy()
        free_mu[np.arange(ny), p_ys.argmax(axis=1)] = False
        self.free = np.concatenate((ok_yt, free_mu), axis=None).astype(np.float64)
        self.target = np.concatenate((p_yt, p_ys), axis=None)
        layout = _layout(ny, nt, ns)
        self.by_matrix = layout is not None
        # matrices of 128 x 128 doubles are mmap-allocated: allocated once per solve
        self.mat, self.work = np.zeros((n, n)), np.empty((n, n))
        self.mat_diag = self.mat.reshape(-1)[::n + 1]
        self.work_diag = self.work.reshape(-1)[::n + 1]
        if self.by_matrix:
            self.inc, self.inc_t, self.y_sum = layout
        else:   # views of the blocks [(y,t),(z,t)] as [t, y, z], [(y,s),(z,s)] as [s, y, z],
            # [(y,t),(z,s)] as [y, t, z, s] and its entries z = y as [y, t, s]
            mat = self.mat
            self.ll = _strided(mat, 0, (nt, ny, ny), (n + 1, nt * n, nt))
            self.mm = _strided(mat, nl * (n + 1), (ns, ny, ny), (n + 1, ns * n, ns))
            self.lm = mat[:nl, nl:].reshape(ny, nt, ny, ns)
            self.same_y = _strided(mat, nl, (ny, nt, ns), (nt * n + ns, n, 1))
            self.ones_t, self.ones_s = np.ones(nt), np.ones(ns)
        # [w / s, -1]: d_ws = coef u - [r_c / s, 0] (_direction)
        self.coef = np.empty((2, nt, ns))
        self.coef[1] = -1.0


def _logits(pr, v):
    """``h[t, s]`` and ``pi[y, t, s]`` (:func:`._problem.logits`, one pmf) of the dual vector
    ``v = [lam.ravel(), mu.ravel()]``; dead blocks get ``h = -1``, ``pi = 0``."""
    z = _spread(pr, v)
    if not pr.all_allowed:
        z += pr.off
    zmax = np.maximum.reduce(z, 0)
    if pr.dead:
        zmax = np.where(pr.live, zmax, 0.0)
    e = np.exp(z - zmax)
    tot = np.add.reduce(e, 0)
    if pr.dead:
        tot = np.where(pr.live, tot, 1.0)
        return np.where(pr.live, np.log(tot) + zmax, -1.0), e / tot
    return np.log(tot) + zmax, e / tot


def _margins(pr, x):
    """``[x.sum(axis=2).ravel(), x.sum(axis=1).ravel()]`` of ``x[y, t, s]`` (``E^T x``), as
    products with vectors of ones above :data:`BY_MATRIX` (at 8 x 8 x 8, 2.5 us against 4.2
    for the two reductions)."""
    if pr.by_matrix:
        return pr.inc_t @ x.reshape(-1)
    return np.concatenate((x.reshape(pr.nl, -1) @ pr.ones_s, (pr.ones_t @ x).reshape(-1)))


def _spread(pr, v):
    """``lam[y, t] + mu[y, s]`` of ``v = [lam.ravel(), mu.ravel()]`` (``E v``)."""
    ny, nt, ns = pr.shape
    if pr.by_matrix:
        return (pr.inc @ v).reshape(ny, nt, ns)
    return v[:pr.nl].reshape(ny, nt, 1) + v[pr.nl:].reshape(ny, 1, ns)


class _Point:
    """An iterate: dual vector ``v``, block masses and slacks ``ws = [w, s]`` (also as the
    views ``w``, ``s``), its logits and residuals (``qs``: the margins of ``q = w pi``;
    ``r = qs - [P(y,t), P(y,s)]``; ``r_p = h + s``; ``wsp = w s``;
    ``res_sq = |r|^2 + |r_p|^2``)."""

    __slots__ = ("v", "ws", "w", "s", "h", "pi", "q", "qs", "r", "r_p", "wsp", "res_sq")

    def __init__(self, pr, v, ws, reset=False):
        self.v, self.ws = v, ws
        self.w, self.s = w, s = ws
        self.h, self.pi = h, pi = _logits(pr, v)
        if reset:       # slacks s = -h where the point is dual-feasible (_ipm.RESET_FROM)
            np.copyto(s, -h, where=pr.live & (h < 0))
        self.q = q = w * pi
        self.qs = qs = _margins(pr, q)
        self.r = r = qs - pr.target
        self.r_p = r_p = h + s
        self.wsp = w * s
        self.res_sq = float(r @ r) + float(np.vdot(r_p, r_p))

    def merit(self, target):
        """Squared norm of the residuals with complementarity target ``target`` (``w s``)."""
        r_c = self.wsp - target
        return self.res_sq + float(np.vdot(r_c, r_c))


def _newton(pr, x, rho):
    r"""The dense Newton matrix of :mod:`._newton` (fixed variables: identity rows), scaled to
    a unit diagonal, the Cholesky factor of the scaled matrix plus the ridge, and the scale.
    Its blocks, with :math:`r = \rho\pi`:
    ``[(y,t),(z,t)]`` :math:`\sum_s r_{yts}\pi_{zts} + \delta_{yz} q(y,t)`,
    ``[(y,s),(z,s)]`` :math:`\sum_t r_{yts}\pi_{zts} + \delta_{yz} q(y,s)`,
    ``[(y,t),(z,s)]`` :math:`r_{yts}\pi_{zts} + \delta_{yz} q(y,t,s)`.
    The diagonal comes first, so that every entry is assembled already scaled (passes over
    the whole matrix cost more than the assembly at ``n = 128``)."""
    ny, nt, ns = pr.shape
    pi = x.pi
    rpi = rho * pi
    scale = pr.free / np.sqrt(np.maximum(_margins(pr, rpi * pi) + x.qs, 1e-300))
    mat = pr.mat
    if pr.by_matrix:  # small: E^T Diag(q) E + G Diag(rho) G^T as dense products, scaled
        e_s = pr.inc * scale
        pr.g = g = (e_s.T * pi.reshape(-1)) @ pr.y_sum     # Diag(scale) G, kept: _direction
        np.matmul(e_s.T * x.q.reshape(-1), e_s, out=mat)
        mat += (g * rho.reshape(-1)) @ g.T
        return _factor(pr, scale)
    s_l, s_m = scale[:pr.nl].reshape(ny, nt, 1), scale[pr.nl:].reshape(ny, 1, ns)
    r_l, pi_l, r_m, pi_m = rpi * s_l, pi * s_l, rpi * s_m, pi * s_m
    np.matmul(r_l.transpose(1, 0, 2), pi_l.transpose(1, 2, 0), out=pr.ll)
    np.matmul(r_m.transpose(2, 0, 1), pi_m.transpose(2, 1, 0), out=pr.mm)
    np.multiply(r_l[:, :, None, :], pi_m.transpose(1, 0, 2)[None], out=pr.lm)
    pr.same_y += x.q * s_l * s_m
    return _factor(pr, scale)


def _factor(pr, scale):
    """Set the unit diagonal of the scaled matrix ``pr.mat`` (identity rows of the fixed
    variables), factorise it plus the ridge; ``(matrix, cholesky, scale)``."""
    pr.mat_diag[...] = 1.0
    np.copyto(pr.work, pr.mat)
    pr.work_diag[...] = 1.0 + RIDGE
    chol, info = _potrf(pr.work.T, lower=True, clean=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError("Newton matrix not positive definite")
    return pr.mat, chol, scale


def _solve(factor, rhs, refine):
    """Solve with the scaled Newton matrix ``factor = (matrix, cholesky, scale)`` (the Cholesky
    factor of the matrix plus the ridge), then ``refine`` steps of iterative refinement
    against the matrix without the ridge (late in the run, once rho = w/s >> q, the ridge and
    rounding would otherwise leave relative errors near 1e-8 in the direction and the gap
    would stall above tol). LAPACK's ``dpotrs`` and BLAS's ``dsymv`` directly: scipy's
    wrappers cost more in argument checks than the solve itself at these sizes."""
    matrix, chol, _ = factor
    x = _potrs(chol, rhs, lower=True)[0]
    for _ in range(refine):
        x += _potrs(chol, rhs - _symv(1.0, matrix.T, x, lower=1), lower=True)[0]
    return x


def _direction(pr, factor, x, rhs, rcs, refine):
    """The Newton direction ``(d_v, d_ws)`` for the complementarity residual ``r_c``, given as
    ``rcs = r_c / s`` (as :meth:`._ipm.Linearisation.direction`), from the scaled right-hand
    side ``rhs = -scale (E^T (pi (w r_p - r_c) / s) + r)`` (:func:`_lean` shares its first
    term between the two directions of a step; ``pr.coef`` holds ``w / s``)."""
    d = _solve(factor, rhs, refine)
    if pr.by_matrix:    # G^T d = (Diag(scale) G)^T (d / scale), G[:, (t, s)] = E^T pi[:, t, s]
        u = x.r_p + (d @ pr.g).reshape(x.r_p.shape)
        d *= factor[2]
    else:
        d *= factor[2]
        u = x.r_p + np.add.reduce(x.pi * _spread(pr, d), 0)
    d_ws = pr.coef * u
    d_ws[0] -= rcs
    return d, d_ws


def _max_step(ws, d_ws):
    """Largest ``a`` with ``ws + a d_ws >= 0`` on the live blocks (as :func:`._ipm.max_step`,
    one item; dead blocks have ``w = d_w = 0`` and give NaN ratios, ignored)."""
    lowest = float(np.fmin.reduce(d_ws / ws, axis=None))
    return -1.0 / lowest if lowest < 0 else math.inf


def _certificate(pr, x):
    r"""Bounds ``(low, up)`` on :math:`f^*` and their points ``(lam, mu, q)`` from the iterate
    ``x``: :func:`_lower` of its dual point and :func:`_upper` of its primal point."""
    ny, nt, ns = pr.shape
    low, lam, mu = _lower(pr, x.v[:pr.nl].reshape(ny, nt), x.v[pr.nl:].reshape(ny, ns), x.h)
    up, q = _upper(pr, x.q)
    return low, up, lam, mu, q


def _lower(pr, lam, mu, h):
    r""":func:`._bounds.dual_bound` for one pmf: from ``(lam, mu)`` with constraint values
    ``h``, its local repair and the shift of ``lam`` per ``t``, then ``mu`` per ``s``, until
    every live constraint holds; ``(low, lam, mu)`` of the better of the two points."""
    # the local repair first (cells with tiny marginals), then the shifts, as dual_bound
    lam_s, mu_s, low = _shift(pr, lam, mu, h)
    if not np.fmax.reduce(h, None) > 0:     # no violated block: nothing to repair
        return low, lam_s, mu_s
    share = lam[:, :, None] + mu[:, None, :] - h
    need = np.where(pr.allowed & (share >= LOG_NEGLIGIBLE), np.maximum(h, 0.0), 0.0)
    if need.any():          # else the repaired point is the iterate's: the same bound
        t_side = pr.p_yt[:, :, None] <= pr.p_ys[:, None, :]     # the cheaper side
        lam_l = lam - np.maximum.reduce(np.where(t_side, need, 0.0), 2)
        mu_l = mu - np.maximum.reduce(np.where(t_side, 0.0, need), 1)
        h_l = _logits(pr, np.concatenate((lam_l, mu_l), axis=None))[0]
        lam_l, mu_l, low_l = _shift(pr, lam_l, mu_l, h_l)
        if low_l > low:
            lam_s, mu_s, low = lam_l, mu_l, low_l
    return low, lam_s, mu_s


def _upper(pr, q):
    r""":func:`._bounds.repair` of ``q[y, t, s] >= 0`` for one pmf (scale rows, then columns,
    down to their marginals and add the rank-one correction of the deficits) and
    :func:`._bounds.neg_conditional_entropy` of the result: ``(up, q)``."""
    q = q * np.fmin(1.0, pr.p_yt / np.add.reduce(q, 2))[:, :, None]
    q *= np.fmin(1.0, pr.p_ys / np.add.reduce(q, 1))[:, None, :]
    e_t = np.maximum(pr.p_yt - np.add.reduce(q, 2), 0.0)
    e_s = np.maximum(pr.p_ys - np.add.reduce(q, 1), 0.0)
    tot = np.add.reduce(e_s, 1)
    e_s /= np.where(tot > 0, tot, 1.0)[:, None]
    q += e_t[:, :, None] * e_s[:, None, :]
    q_ts = np.add.reduce(q, 0)
    up = float(np.add.reduce(_xlogy(q, q), None)) - float(np.add.reduce(_xlogy(q_ts, q_ts), None))
    return up, q


def _shift(pr, lam, mu, h):
    """:func:`._bounds.dual_bound`'s shift of ``lam`` per ``t``, then ``mu`` per ``s``, for
    one pmf; the shifted point and its value, less :func:`._bounds.rounding_margin`."""
    if pr.dead:
        h = np.where(pr.live, h, -math.inf)
    c_t = np.maximum.reduce(h, 1)
    if pr.dead:
        c_t = np.where(c_t > -math.inf, c_t, 0.0)
    d_s = np.maximum.reduce(h - c_t[:, None], 0)
    if pr.dead:
        d_s = np.where(d_s > -math.inf, d_s, 0.0)
    lam, mu = lam - c_t, mu - d_s
    value = float(np.vdot(pr.p_yt, lam)) + float(np.vdot(pr.p_ys, mu))
    size = float(np.vdot(pr.p_yt, np.abs(lam))) + float(np.vdot(pr.p_ys, np.abs(mu)))
    return lam, mu, value - rounding_margin(lam.size + mu.size, size)


def _rescaled(pr, x):
    """The upper bound of :func:`._bounds.upper_bound` (plain and rescaled repair, the better)
    on the iterate's primal point, for one pmf: ``(up, None, None, q)`` (no dual point)."""
    up, q = upper_bound(x.q[None], pr.p_yt[None], pr.p_ys[None], NUMPY)
    return float(up[0]), None, None, q[0]


def _keep(best, low, up, lam, mu, q):
    """Keep in ``best = [low, up, lam, mu, q]`` the bounds that improve (and their points)."""
    if low > best[0]:
        best[0], best[2], best[3] = low, lam, mu
    if up < best[1]:
        best[1], best[4] = up, q


def _crossover(pr, x, tol):
    """The crossover of :func:`._polish.polish` on the lean iterate ``x``, as for the general
    solver's items at iteration :data:`._ipm.POLISH_EVERY`; returns its bounds and points
    ``(low, up, lam, mu, q)`` for one pmf."""
    low, up, lam, mu, q = _polish.polish(_problem(pr), _state(pr, x), tol, NUMPY)
    return float(low[0]), float(up[0]), lam[0], mu[0], q[0]


def _problem(pr):
    """The :class:`._problem.Problem` of the pmf (a batch of one)."""
    return Problem(pr.p_yt[None], pr.p_ys[None], pr.allowed[None], pr.live[None],
                   np.array([pr.m]), pr.ok_yt[None], pr.free_mu[None])


def _state(pr, x):
    """The iterate ``x`` as the general solver's state ``(lam, mu, w, slack, h, pi)`` (a batch
    of one)."""
    ny, nt, ns = pr.shape
    return tuple(a[None] for a in (x.v[:pr.nl].reshape(ny, nt), x.v[pr.nl:].reshape(ny, ns),
                                   x.w, x.s, x.h, x.pi))


def _start(pr):
    """The starting iterate: ``lam = ln P(y | t)``, ``mu = 0``, block masses of the
    independent coupling (at least :data:`START_MASS` ``/ m``), slacks :data:`START_SLACK`
    (dead blocks: ``w = 0``, ``s = 1``)."""
    v = np.zeros(pr.n)
    v[:pr.nl] = np.where(pr.ok_yt, np.log(pr.p_yt / np.add.reduce(pr.p_yt, 0)), 0.0).ravel()
    ws = np.empty((2,) + pr.shape[1:])
    p_y = np.maximum(np.add.reduce(pr.p_yt, 1), 1e-300)
    np.matmul((pr.p_yt / p_y[:, None]).T, pr.p_ys, out=ws[0])
    ws[0] = np.maximum(ws[0], START_MASS / pr.m) * pr.livef
    ws[1] = START_SLACK
    if pr.dead:
        ws[1][~pr.live] = 1.0
    return _Point(pr, v, ws)


def _lean(pr, tol, max_iter, start=None, best=None):
    """The lean iteration on the pmf of ``pr`` (a :class:`_Small`, smaller source first), from
    the cold start or from ``start = (lam, mu, w, slack)`` (:func:`_lean_warm`'s), keeping
    the bounds ``best = [low, up, lam, mu, q]`` already proven, if given: ``(best,
    iterations)``, the best bounds and their points (certified once below ``tol``, else
    after ``max_iter`` iterations); ``None`` when the linear algebra failed."""
    if start is None:
        x = _start(pr)
    else:
        x = _Point(pr, np.concatenate(start[:2], axis=None), np.stack(start[2:4]))
    best = [-math.inf, math.inf, None, None, None] if best is None else best
    checking = False
    recent: list[float] = []     # residual norms of the last NONMONOTONE iterates (RESET_FROM)
    last = max_iter
    floor = TARGET_FRACTION * tol
    for it in range(last + 1):
        w, sl = x.w, x.s
        eta = float(np.add.reduce(x.wsp, None))
        checking = checking or eta <= CERT_FACTOR * tol or it >= CERT_FROM
        if checking or it == last:
            _keep(best, *_certificate(pr, x))
            if best[1] - best[0] > tol and it >= RESCALE_FROM and eta <= CERT_FACTOR * tol:
                _keep(best, -math.inf, *_rescaled(pr, x))
            if best[1] - best[0] <= tol:
                return best, it
            if it > 0 and it % _ipm.POLISH_EVERY == 0:
                _keep(best, *_crossover(pr, x, tol))
                if best[1] - best[0] <= tol:
                    return best, it
        if it == last:
            return best, it
        # -- one Mehrotra predictor-corrector step (as _ipm.step) --------------------------
        wos = np.divide(w, sl, out=pr.coef[0])
        try:
            factor = _newton(pr, x, wos - w)
        except np.linalg.LinAlgError:
            return None
        scale = factor[2]
        base = _margins(pr, x.pi * (wos * x.r_p)) + x.r
        # r_c = w s: r_c / s = w, and E^T (pi w) = qs
        _, d_aff = _direction(pr, factor, x, (x.qs - base) * scale, w, 0)
        a_aff = min(_max_step(x.ws, d_aff), 1.0)
        t = x.ws + a_aff * d_aff
        eta_aff = float(np.vdot(t[0], t[1]))
        sigma = max(min(max(eta_aff / eta, 0.0), 1.0) ** 3, min(SIGMA_MIN, floor / eta),
                    min(1.0, RESIDUAL_FRACTION * math.sqrt(x.res_sq) / eta))
        inv_t = sigma * eta / pr.m
        target = inv_t * pr.livef if pr.dead else inv_t
        r_c = np.maximum(d_aff[0] * d_aff[1], -CORRECTOR_CAP * x.wsp)
        r_c += x.wsp
        r_c -= target
        rcs = r_c / sl
        d_v, d_ws = _direction(pr, factor, x, (_margins(pr, x.pi * rcs) - base) * scale, rcs,
                               REFINE_STEPS if eta < REFINE_BELOW else 0)
        norm0 = math.sqrt(x.merit(target))
        reference = max([norm0, *recent])           # the non-monotone search (_ipm.NONMONOTONE)
        keep = 1.0 - min(1.0 - BOUNDARY, max(eta, floor))
        alpha = keep * min(_max_step(x.ws, d_ws), 1.0 / keep)
        if not math.isfinite(norm0) or not math.isfinite(alpha):
            return None
        for trial in range(MAX_BACKTRACK):
            y = _Point(pr, x.v + alpha * d_v, x.ws + alpha * d_ws, it >= RESET_FROM)
            if (math.sqrt(y.merit(target)) <= (1.0 - SUFFICIENT * alpha) * reference
                    or trial == MAX_BACKTRACK - 1):
                break
            alpha *= SHRINK
        x = y
        if it >= RESET_FROM:
            norm = math.sqrt(x.merit(0.0))
            recent = [*recent, norm if math.isfinite(norm) else 0.0]
            recent = recent[len(recent) - NONMONOTONE:]
    return None


def _lean_warm(pr, warm, tol, max_iter):
    """:func:`._warm.warm_solver` for one pmf in the lean driver: the warm point ``warm =
    (lam, mu, q)`` (a previous solution, smaller source first) certified on the pmf of ``pr``
    (:func:`._warm.warm_bounds`' shifted dual and refitted, repaired primal, by
    :func:`_lower` and :func:`_upper`), and where that leaves the bracket above ``tol``, the
    lean iteration from it re-centred (:func:`._warm.centred`; cold above
    :data:`._warm.CENTRED_GAP`), keeping the better bounds: :func:`_lean`'s contract."""
    lam, mu, q = warm
    low, lam, mu = _lower(pr, lam, mu, _logits(pr, np.concatenate((lam, mu), axis=None))[0])
    q = _warm.refit(q[None], pr.allowed[None], pr.p_yt[None], pr.p_ys[None], NUMPY)
    up, q = _upper(pr, q[0])
    best = [-math.inf, math.inf, None, None, None]
    _keep(best, low, up, lam, mu, q)        # a non-finite warm point proves nothing: not kept
    gap = best[1] - best[0]
    if gap <= tol:
        return best, 0
    start = None
    if gap <= _warm.CENTRED_GAP:
        h = _logits(pr, np.concatenate((lam, mu), axis=None))[0]
        start = (lam, mu, *_warm.centred(h, np.add.reduce(q, 0), gap / pr.m, pr.live, NUMPY))
    return _lean(pr, tol, max_iter, start, best)


def solve(p, xp, tol: float, max_iter: int, done=None, warm=None) -> SolverOutput:
    """:func:`._ipm.solve`'s contract for a numpy batch ``p[b, y, t, s]``: the lean iteration
    item by item where the Newton matrix has at most :data:`LEAN_ROWS` rows and the batch at
    most ``max(``:data:`LEAN_BATCH` ``, |Y||T||S| / 8)`` items (any number from
    :data:`LEAN_BATCH_CELLS` cells on), from the warm start ``warm`` (a
    :class:`._warm.WarmStart` of ``p``'s shape) if given (:func:`_lean_warm`); the general
    solver otherwise (:func:`._warm.warm_solver` with ``warm``), and for an item whose lean
    linear algebra fails."""
    nb, ny, nt, ns = p.shape
    cells = ny * nt * ns
    if (xp is not NUMPY or ny * (nt + ns) > LEAN_ROWS
            or (cells < LEAN_BATCH_CELLS and nb > max(LEAN_BATCH, cells // 8))):
        return _general(warm)(p, xp, tol, max_iter, done)
    swap = _ipm.smaller_first(p)
    inner = np.swapaxes(p, 2, 3) if swap else p
    if warm is not None and swap:
        warm = _warm.WarmStart(warm.mu, warm.lam, np.swapaxes(warm.q, 2, 3))
    done = np.zeros(nb, dtype=bool) if done is None else np.asarray(done)
    low, up = np.full(nb, -math.inf), np.full(nb, math.inf)
    lam, mu = np.zeros(inner.shape[:3]), np.zeros(inner.shape[:2] + inner.shape[3:])
    q, iterations = np.array(inner), 0
    if done.any():      # items not iterated keep the general solver's placeholders: no
        rest = inner[done]                  # bounds, q = P and its cold start's dual point
        lam[done] = _ipm.cold_start(rest, _ipm.problem(rest, NUMPY), NUMPY)[0]
    for b in np.flatnonzero(~done):
        pr = _Small(np.ascontiguousarray(inner[b]))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            found = (_lean(pr, tol, max_iter) if warm is None else
                     _lean_warm(pr, (warm.lam[b], warm.mu[b], warm.q[b]), tol, max_iter))
        if found is None:          # the general solver on this item (inner layout: no swap)
            item = None if warm is None else _warm.WarmStart(
                warm.lam[b:b + 1], warm.mu[b:b + 1], warm.q[b:b + 1])
            out = _general(item)(inner[b:b + 1], xp, tol, max_iter)
            found = ([out.f_lower[0], out.f_upper[0], out.lam[0], out.mu[0], out.q[0]],
                     out.iterations)
        (low[b], up[b], lam[b], mu[b], q[b]), it = found
        iterations = max(iterations, it)
    if swap:
        lam, mu, q = mu, lam, np.swapaxes(q, 2, 3)
    return SolverOutput(low, up, lam, mu, q, done | (up - low <= tol), iterations)


def _general(warm):
    """The general solver :func:`._ipm.solve`, from the warm start ``warm`` if given
    (:func:`._warm.warm_solver`)."""
    return _ipm.solve if warm is None else _warm.warm_solver(_ipm.solve, warm)
