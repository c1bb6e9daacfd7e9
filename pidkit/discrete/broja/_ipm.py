r"""Primal-dual interior-point solver for the BROJA optimisation, batched, on any backend: the
driver (iterations, predictor-corrector steps, line search, certificates, batch bookkeeping).

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
:math:`h_{ts} + s_{ts} = 0`, :math:`w_{ts} s_{ts} = 1/\tau` (:func:`residuals`), with a
fraction-to-boundary rule on ``w`` and ``s`` and a backtracking line search on the residual
norm (:func:`line_search`). The barrier parameter follows Mehrotra's predictor-corrector rule
(:func:`step`): two directions per iteration from one factorisation.

Modules: this one is the driver; :mod:`._newton` solves the Newton systems (the Schur
complement in :math:`\lambda` after eliminating :math:`\mu`, assembled by :mod:`._schur`);
:mod:`._polish` takes over, every :data:`POLISH_EVERY` iterations, the items whose iteration
stalls (a primal barrier method, then a semismooth Newton method, whose iterates are
certified the same way);
:mod:`._bounds` turns an iterate into a certificate: the dual point, shifted so that every
constraint holds, gives a lower bound on :math:`f^*`; the primal point, repaired onto
:math:`\Delta_P` exactly, an upper bound. An item's iterates are certified once they are close
(:data:`CERT_FACTOR`, :data:`CERT_FROM`), and it stops when its bracket is below ``tol``
(nats). :func:`solve_fixed` is the fixed-iteration variant for training steps on a GPU: the
same steps on the whole batch for a given number of iterations, every decision taken per item on
the device (no host read, no crossover). :func:`solve` follows the start, centering and
fraction-to-boundary rules of the lean single-pmf driver :mod:`._small` (:data:`LEAN_RULES`),
refines its late corrector directions (:data:`REFINE_BELOW`), and on the host steps large
batches in cache-sized chunks (:data:`STEP_BYTES`).

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

import numpy as np

from ..._backend import Backend
from . import _newton, _polish
from ._bounds import dual_bound, upper_bound
from ._problem import Best, Problem, logits, pin_gauge

__all__ = ["SolverOutput", "bounds_of", "cold_start", "problem", "solve", "solve_fixed", "logits",
           "residuals", "step", "line_search", "fixed_line_search"]

#: Fraction-to-boundary factor and backtracking parameters of the line search.
BOUNDARY, SHRINK, SUFFICIENT = 0.99, 0.5, 0.01
#: Smallest centering parameter sigma of the Mehrotra corrector.
SIGMA_MIN = 0.05
#: Bound on the corrector's second-order term per block, as a multiple of ``w s``: it may ask
#: the complementarity product to grow by at most this times its current value (see
#: :func:`step`).
CORRECTOR_CAP = 1.0
#: Most step lengths tried in one line search (the last one is taken even without decrease:
#: near the end rounding can stall the merit function, and the certificate guards the answer;
#: but not a non-finite one).
MAX_BACKTRACK = 8
#: Items still open after every POLISH_EVERY interior-point iterations get a crossover
#: (:func:`._polish.polish`); converging runs take 7-30 iterations, so with the default
#: ``max_iter = 200`` a stalled item gets five.
POLISH_EVERY = 40
#: In a batch, the items still open at iteration TAIL_FROM, or at the first iteration after
#: it where at most TAIL_SHARE of the batch is still open, get that crossover then, once (on
#: top of every POLISH_EVERY): the tail of a batch of small pmfs otherwise runs on as a
#: handful of items, each iteration of which costs about as much in overhead as a few
#: hundred items do in the bulk (batches of 10^4 sparse pmfs at k = 4: 9 items certified only
#: by the crossover at iteration 40, 28 iterations on fewer than 100 items; the crossover at
#: iteration 20 certifies all 32 items then open, for about 1 ms each). A crossover only adds
#: certificates (the iterates go on unchanged), and single pmfs and batches of fewer than
#: 1 / TAIL_SHARE items never take it.
TAIL_FROM, TAIL_SHARE = 20, 0.01
#: The certificate of an item is evaluated once its complementarity ``sum(w s)`` is below this
#: times ``tol`` (near the end the certified gap is 0.2-1.3 times it in our traces, so the
#: first evaluation is usually the last), from iteration :data:`CERT_FROM` on regardless, and
#: at every iteration after its first evaluation. At small sizes it costs about as much as an
#: iteration.
CERT_FACTOR = 4.0
#: Iteration from which every item's certificate is evaluated at every iteration.
CERT_FROM = 15
#: Rules of :func:`solve` (not :func:`solve_fixed`), those of the lean single-pmf driver
#: :mod:`._small`, for fewer iterations: block masses at the start are the independent
#: coupling's, at least START_MASS ``/ m``, slacks START_SLACK (:func:`cold_start`, at sizes up
#: to INDEPENDENT_SIZE); the centering floor SIGMA_MIN applies while it asks for ``sum(w s)``
#: above TARGET_FRACTION ``tol`` (then that level), the barrier target never drops below
#: RESIDUAL_FRACTION times the residual norm, and the fraction-to-boundary factor tends to 1
#: with ``sum(w s)`` (:func:`step`).
START_SLACK, START_MASS, TARGET_FRACTION, RESIDUAL_FRACTION = 0.3, 0.1, 0.1, 1e-4
#: With these rules, the corrector direction gets one step of iterative refinement
#: (:meth:`._newton.DenseNewton.refined`) on the items whose ``sum(w s)`` is below REFINE_BELOW
#: (each item's own: decided for a whole batch, it made an item's directions depend on the
#: others, and one of 400 Dirichlet(0.01) pmfs at 5 x 5 x 5 that certifies alone stopped at
#: max_iter in its batch).
REFINE_BELOW = 1e-7
#: From this iteration on, :func:`line_search` resets the slack of every block a trial point
#: leaves dual-feasible to :math:`s = -h` (:math:`r_p = 0` there), as the three-source
#: program does (:mod:`._three_maxent`). The curvature of :math:`h` (a log-sum-exp) adds a
#: second-order term to :math:`r_p = h + s` along every step, and once the residuals are small
#: that term rejected all but the 7th of the backtracking lengths, :math:`2^{-6}` of the step to
#: the boundary, at every iteration: on 3 x 150 x 150 tables with uniform random cells (the
#: "small target" family of ``benchmarks/broja_stalls.py``) the duality measure fell by 0.5%
#: per iteration and 3 of 4 seeds stopped at ``max_iter`` (gaps 2.6e-9 to 9.2e-8 bits).
#: From the first iteration it also cost the tables that converge anyway 10-60% more
#: iterations (measured on 24 such tables, |Y| = 2-5, and in the lean driver on 3 x 3 x 3 to
#: 8 x 8 x 8 pmfs), so it starts where a run is already slow (the crossover's
#: :data:`POLISH_EVERY`): seeds 0 and 1 then finish in 63 and 71 iterations, and no table
#: of ``benchmarks/broja_stalls.py``'s other families changes.
RESET_FROM = 40
#: From :data:`RESET_FROM` on, the line search is non-monotone (Grippo, Lampariello and Lucidi
#: 1986): a trial point is accepted when its residual norm is below ``1 - SUFFICIENT a`` times
#: the largest of the current one and the residual norms (complementarity ``w s`` included) of
#: the item's last NONMONOTONE iterates, instead of the current one alone. On the degenerate
#: "small target" tables (most blocks lose their mass) the monotone search kept a few percent
#: of each step, and the duality measure fell by about 1% per iteration: 3 x 150 x 150 seed 2
#: stopped at ``max_iter = 200`` (gap 3.2e-9 bits) and now certifies at iteration 89; seeds 0
#: and 1 take 49 and 69 iterations instead of 59 and 92 (lean driver, 2026-12-05). Runs that
#: certify before RESET_FROM, every pmf of ``benchmarks/broja_stalls.py``'s other families
#: but the few the crossover certifies at iteration 40, are unchanged.
NONMONOTONE = 10
#: From this iteration on, :func:`solve` also tries the rescaled primal bound
#: (:func:`._bounds.rescale`) on the items whose bracket is open: batches of tiny pmfs certify
#: within 9-13 iterations without it, and the stalls it resolves set in later (a
#: 3 x 100 x 100 table: bracket open from iteration 27 on).
RESCALE_FROM = CERT_FROM
#: Whether :func:`solve` follows these rules (false: those of :func:`solve_fixed`, uniform
#: block masses, unit slacks, sigma at least SIGMA_MIN, the fraction-to-boundary factor
#: BOUNDARY, under which some pmfs stall until the crossover, :mod:`._polish`). The fixed mode
#: keeps those: without the sigma floor its iterations stalled near a gap of 1e-10 nats on
#: some Dirichlet(1) pmfs at k = 4, with tol = 1e-12 and no crossover to finish them.
LEAN_RULES = True
#: Largest |Y||T||S| given that start (the lean driver's sizes, where it was measured; above,
#: uniform block masses and unit slacks).
INDEPENDENT_SIZE = 512
#: On the host, :func:`solve` steps a large working batch in chunks whose largest Newton
#: temporary (``8 |Y|^2 |T| |S|`` bytes per item) takes about this many bytes, so that it stays
#: in cache (at k = 4, chunks of 1024 pmfs: a quarter less time per step than the whole batch
#: of 10^4 at once, 2026-12-05, one thread) ...
STEP_BYTES = 2**21
#: ... when a chunk holds at least this many items (below, the per-call overhead dominates).
STEP_CHUNK_MIN = 256
#: :func:`line_search` evaluates all the remaining step lengths of the items still waiting at
#: once when that is at most this many trial points (a call costs about as much in overhead
#: as a hundred items' trial points at k = 4).
ONE_ROUND = 256


@dataclass
class SolverOutput:
    """Arrays returned by :func:`solve` (batch axis first, float64, backend of the input).

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


def smaller_first(p: Any) -> bool:
    """Whether :func:`solve` swaps the sources of ``p[b, y, t, s]`` (the smaller takes the
    ``t`` role internally)."""
    return p.shape[2] > p.shape[3]


def residuals(pb: Problem, w: Any, sl: Any, h: Any, pi: Any, inv_t: Any,
              xp: Backend) -> tuple[Any, Any, Any, Any, Any, Any]:
    r"""Residuals of the perturbed KKT system and their norm, per batch item:

    .. math::

        r_\lambda = q(y,t) - P(y,t),\quad r_\mu = q(y,s) - P(y,s),\quad
        r_p = h_{ts} + s_{ts},\quad r_c = w_{ts} s_{ts} - 1/\tau,

    with :math:`q = w \pi` (outside the support and on dead blocks: 0). Returns
    ``(q, r_lam, r_mu, r_p, r_c, norm)``, ``norm`` the Euclidean norm of all four ``(B,)``.
    """
    q = w[:, None] * pi
    r_lam = xp.where(pb.p_yt > 0, xp.sum(q, axis=3) - pb.p_yt, 0.0)
    r_mu = xp.where(pb.p_ys > 0, xp.sum(q, axis=2) - pb.p_ys, 0.0)
    r_p = xp.where(pb.live, h + sl, 0.0)
    r_c = xp.where(pb.live, w * sl - inv_t[:, None, None], 0.0)
    norm = _norm(r_lam, r_mu, r_p, r_c, xp)
    return q, r_lam, r_mu, r_p, r_c, norm


def _norm(r_lam: Any, r_mu: Any, r_p: Any, r_c: Any, xp: Backend) -> Any:
    """The Euclidean norm of the four residuals together, per batch item; ``inf`` (silently:
    numpy's overflow warning is off here) for a trial point far off, which the line search
    then rejects."""
    with np.errstate(over="ignore", invalid="ignore"):  # no effect on torch tensors
        return (xp.sum(r_lam * r_lam, axis=(1, 2)) + xp.sum(r_mu * r_mu, axis=(1, 2))
                + xp.sum(r_p * r_p, axis=(1, 2)) + xp.sum(r_c * r_c, axis=(1, 2))) ** 0.5


@dataclass
class Linearisation:
    r"""The KKT system linearised at one iterate, for directions with any complementarity
    residual (:meth:`direction`): the quantities that do not depend on it and the factorised
    Newton matrix."""

    live: Any
    pi: Any
    w_over_s: Any
    sl: Any
    r_lam: Any
    r_mu: Any
    r_p: Any
    solver: Any

    def direction(self, r_c: Any, xp: Backend, refine: Any = None
                  ) -> tuple[Any, Any, Any, Any]:
        r"""The Newton direction for the complementarity residual ``r_c``. Eliminating
        :math:`\Delta w` and :math:`\Delta s` (with :math:`c = (w/s) r_p - r_c/s`),

        .. math::

            H \begin{pmatrix}\Delta\lambda\\ \Delta\mu\end{pmatrix} =
            -\begin{pmatrix} r_\lambda + \sum_s \pi c \\ r_\mu + \sum_t \pi c\end{pmatrix},
            \quad \Delta h = \pi^\top (\Delta\lambda + \Delta\mu),\quad
            \Delta w = \tfrac{w}{s}(\Delta h + r_p) - \tfrac{r_c}{s},\quad
            \Delta s = -r_p - \Delta h.

        ``refine`` ``(B,)``: the items whose Newton solve gets one step of iterative
        refinement (dense solver only, :meth:`._newton.DenseNewton.refined`). Returns
        ``(d_lam, d_mu, d_w, d_s)``.
        """
        pi, live = self.pi, self.live
        coef = self.w_over_s * self.r_p - r_c / self.sl
        weighted = pi * coef[:, None]
        g_lam = -self.r_lam - xp.sum(weighted, axis=3)
        g_mu = -self.r_mu - xp.sum(weighted, axis=2)
        refined = getattr(self.solver, "refined", None)
        if refined is not None and refine is not None and xp.any(refine):
            d_lam, d_mu = refined(g_lam, g_mu, refine)
        else:
            d_lam, d_mu = self.solver(g_lam, g_mu)
        dh = xp.sum(pi * (d_lam[:, :, :, None] + d_mu[:, :, None, :]), axis=1)
        d_w = xp.where(live, self.w_over_s * (dh + self.r_p) - r_c / self.sl, 0.0)
        d_s = xp.where(live, -self.r_p - dh, 0.0)
        return d_lam, d_mu, d_w, d_s


def step(pb: Problem, state: tuple[Any, ...], xp: Backend, work: dict | None = None,
         fixed: bool = False, tol: float | None = None, reset: bool = False,
         recent: Any = None) -> tuple[Any, ...]:
    r"""One damped Mehrotra predictor-corrector step on ``state = (lam, mu, w, slack, h, pi)``;
    returns the new state (:func:`line_search` sets each item's step length; with ``fixed``,
    :func:`fixed_line_search`, and the Newton system is factorised without host reads).

    Both directions use one factorisation: the predictor aims at :math:`w s = 0`, its longest
    step sets the barrier target :math:`1/\tau = \sigma \eta / m` with
    :math:`\eta = \sum w s` and :math:`\sigma = (\eta_\text{aff} / \eta)^3`, and the corrector
    adds the second-order term :math:`\Delta w_\text{aff} \Delta s_\text{aff}` to the
    complementarity residual, bounded below by :math:`-\text{CORRECTOR\_CAP}\, w s` per block.
    That term is the product's change along the *full* affine step; on this nonlinear problem
    the affine step is often far from admissible (:math:`\alpha_\text{aff} \ll 1`), and on
    blocks leaving the support (:math:`w \to 0` while :math:`s` grows several-fold) the
    unbounded term asked :math:`w s` to grow by an order of magnitude, steering sparse pmfs
    into a region where the Newton directions blew up.

    With ``tol`` (nats; :func:`solve`), the rules of the lean driver :mod:`._small`:
    :math:`\sigma \ge \min(\mathrm{SIGMA\_MIN}, \mathrm{TARGET\_FRACTION}\,
    \mathrm{tol} / \eta)` instead of SIGMA_MIN, :math:`\sigma \ge
    \min(1, \mathrm{RESIDUAL\_FRACTION}\, \|r\| / \eta)` (Wright 1997, chapter 6) and the
    fraction-to-boundary factor :math:`1 - \min(1 - \mathrm{BOUNDARY},
    \max(\eta, \mathrm{TARGET\_FRACTION}\, \mathrm{tol}))` (Wright 1997, chapter 11),
    and one step of iterative refinement of the corrector direction of the items whose
    :math:`\eta` is below :data:`REFINE_BELOW`. ``reset``: :func:`line_search`'s
    (:data:`RESET_FROM`). ``recent`` ``(B,)``: the largest residual norm of each item's last
    :data:`NONMONOTONE` iterates; a trial point then only has to decrease the larger of it and
    the current residual norm (the non-monotone search, from :data:`RESET_FROM` on).
    """
    lam, mu, w, sl, h, pi = state
    eta = xp.sum(xp.where(pb.live, w * sl, 0.0), axis=(1, 2))
    m = xp.maximum(pb.m, 1.0)
    q, r_lam, r_mu, r_p, r_c_aff, _ = residuals(pb, w, sl, h, pi, eta * 0.0, xp)
    w_over_s = w / sl
    rho = xp.where(pb.live, w_over_s - w, 0.0)
    if fixed:
        solver = _newton.DenseNewton(q, pi, rho, pb.free_lam, pb.free_mu, xp, unchecked=True)
    else:
        solver = _newton.newton_solver(q, pi, rho, pb.free_lam, pb.free_mu, xp, work)
    kkt = Linearisation(pb.live, pi, w_over_s, sl, r_lam, r_mu, r_p, solver)
    # predictor
    _, _, dw_aff, ds_aff = kkt.direction(r_c_aff, xp)
    a_aff = xp.minimum(xp.minimum(max_step(w, dw_aff, xp), max_step(sl, ds_aff, xp)), 1.0)
    a_aff = a_aff[:, None, None]
    eta_aff = xp.sum(xp.where(pb.live, (w + a_aff * dw_aff) * (sl + a_aff * ds_aff), 0.0),
                     axis=(1, 2))
    sigma = xp.minimum(xp.maximum(eta_aff / eta, 0.0), 1.0) ** 3
    if tol is None:
        sigma = xp.maximum(sigma, SIGMA_MIN)
    else:
        floor = TARGET_FRACTION * tol
        res = _norm(r_lam, r_mu, r_p, r_p * 0.0, xp)
        sigma = xp.maximum(xp.maximum(sigma, xp.minimum(floor / eta, SIGMA_MIN)),
                           xp.minimum(RESIDUAL_FRACTION * res / eta, 1.0))
    inv_t = sigma * eta / m
    # corrector
    second = xp.maximum(dw_aff * ds_aff, -CORRECTOR_CAP * w * sl)
    r_c = xp.where(pb.live, w * sl - inv_t[:, None, None] + second, 0.0)
    refine = None if tol is None else eta < REFINE_BELOW
    d_lam, d_mu, d_w, d_s = kkt.direction(r_c, xp, refine)
    r_c0 = r_c_aff - xp.where(pb.live, inv_t[:, None, None], 0.0)
    norm0 = _norm(r_lam, r_mu, r_p, r_c0, xp)
    alpha = xp.minimum(max_step(w, d_w, xp), max_step(sl, d_s, xp))
    if tol is None:
        keep = BOUNDARY
    else:
        keep = 1.0 - xp.minimum(xp.maximum(eta, floor), 1.0 - BOUNDARY)
    alpha = keep * xp.minimum(alpha, 1.0 / keep)
    if fixed:
        return fixed_line_search(pb, state, (d_lam, d_mu, d_w, d_s), alpha, inv_t, norm0, xp)
    reference = norm0 if recent is None else xp.maximum(norm0, recent)
    return line_search(pb, state, (d_lam, d_mu, d_w, d_s), alpha, inv_t, reference, xp, reset)


def _chunked_step(pb: Problem, state: tuple[Any, ...], xp: Backend, work: dict,
                  tol: float | None, reset: bool = False, recent: Any = None
                  ) -> tuple[Any, ...]:
    """:func:`step` on the items of ``state``, in chunks of :data:`STEP_BYTES` on the host
    (items are independent; only the choices :func:`step` takes for a whole batch, whether to
    refine and a failed Cholesky factorisation's fallback, are taken per chunk)."""
    nb, ny, nt, ns = state[5].shape
    chunk = STEP_BYTES // (8 * ny * ny * nt * ns)
    if chunk < STEP_CHUNK_MIN or nb < 2 * chunk or not xp.on_host(state[0]):
        return step(pb, state, xp, work, tol=tol, reset=reset, recent=recent)
    parts = [step(pb.take(slice(a, a + chunk)), tuple(x[a:a + chunk] for x in state), xp, work,
                  tol=tol, reset=reset, recent=None if recent is None else recent[a:a + chunk])
             for a in range(0, nb, chunk)]
    return tuple(xp.concatenate(list(z)) for z in zip(*parts, strict=True))


def line_search(pb: Problem, state: tuple[Any, ...], directions: tuple[Any, ...], alpha: Any,
                inv_t: Any, norm0: Any, xp: Backend, reset: bool = False) -> tuple[Any, ...]:
    r"""Backtracking on the residual norm: item ``b`` takes the first step length
    :math:`a = \alpha_b\, \mathrm{SHRINK}^k` with

    .. math:: \|r(x + a\,d)\| \le (1 - \mathrm{SUFFICIENT}\; a)\, \|r_0\|,

    or the last one tried (``MAX_BACKTRACK``) where its residual norm is finite (else the
    item keeps its point: a non-finite direction, from a singular Newton matrix, must not
    turn its iterate into NaN for the rest of the run); ``norm0`` is :math:`\|r_0\|`, or the
    non-monotone reference of :func:`step`. After the first trial only the items still
    waiting are evaluated, and once they are few (:data:`ONE_ROUND`) all their remaining
    lengths at once (:func:`_last_round`). With ``reset`` (:data:`RESET_FROM`), a trial
    point's slacks are :math:`-h` on the live blocks where :math:`h < 0`. Returns the new
    ``(lam, mu, w, slack, h, pi)``.
    """
    new: list[Any] = []
    waiting = None                                                # None: every item
    for trial in range(MAX_BACKTRACK):
        if waiting is not None and (MAX_BACKTRACK - trial) * xp.sum(waiting) <= ONE_ROUND:
            _last_round(pb, state, directions, alpha, inv_t, norm0, xp, reset, waiting,
                        MAX_BACKTRACK - trial, new)
            break
        last = trial == MAX_BACKTRACK - 1  # the shortest step is taken without decrease
        a = _pick(alpha, waiting)
        sub = pb if waiting is None else pb.take(waiting)
        trial_state = _trial_points(sub, tuple(_pick(x, waiting) for x in state),
                                    tuple(_pick(d, waiting) for d in directions), a, xp, reset)
        norm_n = residuals(sub, trial_state[2], trial_state[3], trial_state[4], trial_state[5],
                           _pick(inv_t, waiting), xp)[-1]
        ok = ((norm_n <= (1.0 - SUFFICIENT * a) * _pick(norm0, waiting))
              | (last & xp.isfinite(norm_n)))
        if waiting is None and xp.all(ok):                        # the usual case
            return trial_state
        if waiting is None:
            new = [xp.copy(x) for x in state]
        taken = ok if waiting is None else scatter(waiting, ok, xp)
        for x, t in zip(new, trial_state, strict=True):
            x[taken] = t[ok]
        waiting = ~taken if waiting is None else waiting & ~taken
        if not xp.any(waiting):
            break
        alpha = xp.where(waiting, alpha * SHRINK, alpha)
    return tuple(new)


def _trial_points(pb: Problem, state: tuple[Any, ...], directions: tuple[Any, ...], a: Any,
                  xp: Backend, reset: bool) -> tuple[Any, ...]:
    """The trial points ``state + a directions`` (``a`` ``(B,)``) of :func:`line_search`, as
    ``(lam, mu, w, slack, h, pi)``."""
    size = a[:, None, None]
    lam, mu, w, sl = (x + size * d for x, d in zip(state[:4], directions, strict=True))
    h, pi = logits(lam, mu, pb.allowed, xp)
    if reset:
        sl = xp.where(pb.live & (h < 0), -h, sl)
    return lam, mu, w, sl, h, pi


def _last_round(pb: Problem, state: tuple[Any, ...], directions: tuple[Any, ...], alpha: Any,
                inv_t: Any, norm0: Any, xp: Backend, reset: bool, waiting: Any, k: int,
                new: list[Any]) -> None:
    """The last ``k`` step lengths of :func:`line_search` for the items ``waiting``, evaluated
    at once (the items repeated ``k`` times along the batch axis, as in
    :func:`fixed_line_search`): each takes the first length that decreases its residual norm
    enough, or the last one where finite (else it keeps its point), written into ``new`` in
    place. Same choices as trying them one by one, in one call instead of up to ``k`` (at
    k = 4, a few percent of a chunk's items backtrack, and each further trial cost about as
    much in overhead as the first one on the whole chunk)."""
    def repeat(x: Any) -> Any:
        return xp.concatenate([x[waiting]] * k)

    a = alpha[waiting]
    sizes = xp.concatenate([a * SHRINK**i for i in range(k)])
    big = Problem(*(repeat(getattr(pb, name)) for name in pb.__dataclass_fields__))
    trial_state = _trial_points(big, tuple(repeat(x) for x in state),
                                tuple(repeat(d) for d in directions), sizes, xp, reset)
    norm_n = residuals(big, trial_state[2], trial_state[3], trial_state[4], trial_state[5],
                       repeat(inv_t), xp)[-1]
    ok = xp.reshape(norm_n <= (1.0 - SUFFICIENT * sizes) * repeat(norm0), (k, a.shape[0]))
    finite = xp.reshape(xp.isfinite(norm_n), (k, a.shape[0]))
    ok = xp.concatenate([ok[:-1], ok[-1:] | finite[-1:]])  # the shortest step, if finite
    first = ok & (xp.cumsum(ok, axis=0) == 1)
    taken = xp.any(first, axis=0)
    rows = scatter(waiting, taken, xp)
    for x, t in zip(new, trial_state, strict=True):
        t = xp.reshape(t, (k, a.shape[0], *t.shape[1:]))
        x[rows] = xp.sum(xp.where(xp.reshape(first, (*first.shape, *(1,) * (t.ndim - 2))),
                                  t, 0.0), axis=0)[taken]


def fixed_line_search(pb: Problem, state: tuple[Any, ...], directions: tuple[Any, ...],
                      alpha: Any, inv_t: Any, norm0: Any, xp: Backend) -> tuple[Any, ...]:
    r"""The step lengths of :func:`line_search` without reading anything on the host: the
    ``MAX_BACKTRACK`` lengths :math:`a_k = \alpha_b\, \mathrm{SHRINK}^k` are tried at once
    (the batch repeated ``MAX_BACKTRACK`` times along its axis), each item takes the first
    that satisfies the decrease condition (the last one otherwise), chosen with a cumulative
    count instead of a loop, and the new state is formed at that length. Same step lengths as
    :func:`line_search`; every length is evaluated for every item. An item whose new point is
    not finite (a singular Newton matrix, factorised without a check, gives non-finite
    directions) keeps its point."""
    k, nb = MAX_BACKTRACK, alpha.shape[0]

    def repeat(x: Any) -> Any:
        return xp.concatenate([x] * k)

    sizes = xp.concatenate([alpha * SHRINK**i for i in range(k)])          # (K * B,)
    size = sizes[:, None, None]
    trial = [repeat(x) + size * repeat(d) for x, d in zip(state[:4], directions, strict=True)]
    big = Problem(*(repeat(getattr(pb, name)) for name in pb.__dataclass_fields__))
    h_n, pi_n = logits(trial[0], trial[1], big.allowed, xp)
    norm_n = residuals(big, trial[2], trial[3], h_n, pi_n, repeat(inv_t), xp)[-1]
    ok = xp.reshape(norm_n <= (1.0 - SUFFICIENT * sizes) * repeat(norm0), (k, nb))
    ok = xp.concatenate([ok[:-1], ok[-1:] | True])          # the shortest step: always taken
    first = ok & (xp.cumsum(ok, axis=0) == 1)
    a = xp.sum(xp.where(first, xp.reshape(sizes, (k, nb)), 0.0), axis=0)[:, None, None]
    new = [x + a * d for x, d in zip(state[:4], directions, strict=True)]
    finite = xp.isfinite(sum(xp.sum(x, axis=tuple(range(1, x.ndim))) for x in new))
    new = [xp.where(_expand(finite, x), n, x) for x, n in zip(state[:4], new, strict=True)]
    return (*new, *logits(new[0], new[1], pb.allowed, xp))


def _pick(x: Any, waiting: Any) -> Any:
    """The items of ``x`` still waiting (all of them while ``waiting`` is ``None``)."""
    return x if waiting is None else x[waiting]


def scatter(mask: Any, values: Any, xp: Backend) -> Any:
    """A boolean array shaped like ``mask``: ``values`` at its true entries, false elsewhere."""
    out = xp.copy(mask)
    out[mask] = values
    return out


def max_step(x: Any, dx: Any, xp: Backend) -> Any:
    r"""Largest :math:`a \le \infty` with :math:`x + a\,dx \ge 0` for every entry, per batch
    item: :math:`\min_{dx < 0} -x / dx`."""
    ratio = xp.where(dx < 0, -x / xp.where(dx < 0, dx, -1.0), math.inf)
    return xp.min(ratio, axis=(1, 2))


def _certify(pb: Problem, state: tuple[Any, ...], rows: Any, best: Best, xp: Backend,
             tol: float, rescaled: bool) -> None:
    """Certify the iterates ``state`` of the items ``rows`` (:mod:`._bounds`) into ``best``."""
    best.update(rows, *bounds_of(pb, state, xp, tol, rescaled), xp)


def bounds_of(pb: Problem, state: tuple[Any, ...], xp: Backend, tol: float | None = None,
               rescaled: bool = True) -> tuple[Any, ...]:
    """The certificate ``(low, lam, mu, up, q)`` of the iterates ``state`` (:mod:`._bounds`):
    the shifted feasible dual point and its value, the repaired primal point and its value
    (:func:`._bounds.upper_bound`; with ``tol``, rescaled only where the bracket is wider;
    not at all without ``rescaled``). ``tol`` also says that values may be read on the host
    (:func:`._bounds.dual_bound`'s ``host``); without it, nothing is."""
    lam, mu, w, _, h, pi = state
    lam_f, mu_f, low = dual_bound(lam, mu, h, pb.p_yt, pb.p_ys, pb.live, xp, tol is not None)
    up, q_f = upper_bound(w[:, None] * pi, pb.p_yt, pb.p_ys, xp,
                          None if tol is None else low, tol, rescaled)
    return low, lam_f, mu_f, up, q_f


def cold_start(p: Any, pb: Problem, xp: Backend, independent: bool = False) -> list[Any]:
    """The starting state ``[lam, mu, w, slack, h, pi]``: :math:`\\lambda = \\ln P(y|t)`,
    :math:`\\mu = 0`, uniform block masses, unit slacks. The start is deliberately not on
    ``h + s = 0``: a feasible start made the early steps much shorter. With ``independent``
    (:func:`solve`), the lean driver's start (:mod:`._small`): block masses of the independent
    coupling, :math:`w_{ts} = \\sum_y P(y,t) P(y,s) / P(y)`, at least
    :data:`START_MASS` ``/ m``, and slacks :data:`START_SLACK` (dead blocks: 1)."""
    p_t = xp.sum(pb.p_yt, axis=1)
    cond_t = pb.p_yt / xp.where(p_t > 0, p_t, 1.0)[:, None, :]
    lam = xp.where(pb.p_yt > 0, xp.log(xp.where(pb.p_yt > 0, cond_t, 1.0)), 0.0)
    mu = xp.zeros(pb.p_ys.shape, like=p)
    w = xp.where(pb.live, 1.0 / xp.maximum(pb.m, 1.0)[:, None, None], 0.0)
    h, pi = logits(lam, mu, pb.allowed, xp)
    if not independent:
        return [lam, mu, w, w * 0.0 + 1.0, h, pi]                 # slack starts at 1
    p_y = xp.maximum(xp.sum(pb.p_yt, axis=2), 1e-300)[:, :, None]
    w = xp.where(pb.live, xp.maximum(xp.swapaxes(pb.p_yt / p_y, 1, 2) @ pb.p_ys,
                                     START_MASS * w), 0.0)
    return [lam, mu, w, xp.where(pb.live, w * 0.0 + START_SLACK, 1.0), h, pi]


def _independent(p: Any) -> bool:
    """Whether :func:`solve` starts ``p[b, y, t, s]`` from the independent coupling
    (:data:`LEAN_RULES`, :data:`INDEPENDENT_SIZE`)."""
    return LEAN_RULES and math.prod(p.shape[1:]) <= INDEPENDENT_SIZE


def problem(p: Any, xp: Backend) -> Problem:
    """The :class:`Problem` of a batch ``p[b, y, t, s]`` (internal layout)."""
    p_yt = xp.sum(p, axis=3)
    p_ys = xp.sum(p, axis=2)
    allowed = (p_yt > 0)[:, :, :, None] & (p_ys > 0)[:, :, None, :]
    live = xp.any(allowed, axis=1)
    m = xp.sum(xp.float64(live), axis=(1, 2))                     # number of constraints
    return Problem(p_yt, p_ys, allowed, live, m, p_yt > 0, (p_ys > 0) & ~pin_gauge(p_ys, xp))


def solve(p: Any, xp: Backend, tol: float, max_iter: int, done: Any = None,
          start: Any = None) -> SolverOutput:
    """Run the interior-point method on a batch ``p[b, y, t, s]`` (float64, normalised).

    ``tol`` is the target certified gap in nats; at most ``max_iter`` Newton steps. Items with
    ``done[b]`` true (e.g. closed-form cases) are not iterated. An item's iterates are
    certified from the first one with ``sum(w s) <= CERT_FACTOR * tol`` (or from iteration
    :data:`CERT_FROM`, and at ``max_iter``) on, and it leaves the working batch as soon as its
    certificate reaches ``tol``. ``start(p, pb, cold, xp)``, if given, returns the starting
    state from the problem ``pb`` (internal layout, see below) and the cold start ``cold`` of
    :func:`cold_start` (warm starts, :func:`._warm.warm_solver`). The working batch is compacted
    only at the iterations where items leave it (in the bulk of a run none do, and nothing is
    gathered). Every :data:`POLISH_EVERY` iterations the items still open get the crossover
    of :func:`._polish.polish`, whose certified bounds count like the iterates' own, and so
    do, once, the last few items of a batch (:data:`TAIL_FROM`, :data:`TAIL_SHARE`). The
    smaller of the two sources takes the ``t`` role internally (:func:`smaller_first`);
    outputs are in the input's layout.
    """
    swap = smaller_first(p)
    if swap:
        p = xp.swapaxes(p, 2, 3)
    pb = problem(p, xp)
    state = cold_start(p, pb, xp, independent=_independent(p))
    if start is not None:
        state = start(p, pb, state, xp)
    lam, mu = state[0], state[1]
    nb = p.shape[0]
    if done is None:
        done = xp.zeros((nb,), like=p) > 0
    best = Best(xp.zeros((nb,), like=p) - math.inf, xp.zeros((nb,), like=p) + math.inf,
                xp.copy(lam), xp.copy(mu), xp.copy(p))
    iterations = 0
    active = ~done
    # the working batch: the open items only, compacted when some finish (in the bulk of the
    # run none do, and nothing is gathered or scattered)
    sub, cur = pb.take(active), tuple(x[active] for x in state)
    checking = xp.zeros((sub.m.shape[0],), like=p) > 0            # certificate evaluated
    work: dict = {}                                               # large buffers, reused
    history = None           # residual norms of the last NONMONOTONE iterates (RESET_FROM)
    tail_polished = False                                         # TAIL_FROM
    for iterations in range(max_iter + 1):
        if sub.m.shape[0] == 0:
            break
        # -- certificate of the iterates close enough (CERT_FACTOR, CERT_FROM) ---------------
        if iterations >= CERT_FROM or iterations == max_iter:
            checking = sub.m >= 0.0
        else:
            eta = xp.sum(xp.where(sub.live, cur[2] * cur[3], 0.0), axis=(1, 2))
            checking = checking | (eta <= CERT_FACTOR * tol)
        if xp.all(checking):
            _certify(sub, cur, active, best, xp, tol, iterations >= RESCALE_FROM)
        elif xp.any(checking):
            _certify(sub.take(checking), tuple(x[checking] for x in cur),
                     scatter(active, checking, xp), best, xp, tol,
                     iterations >= RESCALE_FROM)
        finished = best.up[active] - best.low[active] <= tol
        polish = iterations > 0 and iterations % POLISH_EVERY == 0
        if (not tail_polished and iterations >= TAIL_FROM
                and xp.sum(~finished) <= TAIL_SHARE * nb):
            polish = tail_polished = True
        if polish and not xp.all(finished):
            stuck = ~finished
            low, up, lam_f, mu_f, q_f = _polish.polish(
                sub.take(stuck), tuple(x[stuck] for x in cur), tol, xp)
            best.update(scatter(active, stuck, xp), low, lam_f, mu_f, up, q_f, xp)
            finished = best.up[active] - best.low[active] <= tol
        done[active] = finished
        if iterations == max_iter or xp.all(finished):
            break
        if xp.any(finished):                                      # compact the working batch
            keep = ~finished
            active = scatter(active, keep, xp)
            sub, cur, checking = sub.take(keep), tuple(x[keep] for x in cur), checking[keep]
            history = None if history is None else history[keep]
        # -- Newton step on the items still open -------------------------------------------
        # an item whose Newton direction blows up (sparse composite-source programs of
        # three-source BROJA: the predictor's product overflowed) gets inf/NaN trial points,
        # which its line search rejects; numpy's warnings about them are not the user's
        # (no effect on torch tensors, as the lean driver's :func:`._small.solve`)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            cur = _chunked_step(sub, cur, xp, work, tol if LEAN_RULES else None,
                                iterations >= RESET_FROM,
                                None if history is None else xp.max(history, axis=1))
            if iterations >= RESET_FROM and NONMONOTONE > 0:
                history = _remember(history, sub, cur, xp)
    best_lam, best_mu, best_q = best.lam, best.mu, best.q
    if swap:
        best_lam, best_mu = best_mu, best_lam
        best_q = xp.swapaxes(best_q, 2, 3)
    return SolverOutput(best.low, best.up, best_lam, best_mu, best_q, done, iterations)


def _remember(history: Any, pb: Problem, state: tuple[Any, ...], xp: Backend) -> Any:
    """``history`` ``(B, NONMONOTONE)`` (or None: zeros) with the oldest column dropped and
    the residual norm of each item's new iterate ``state`` (complementarity ``w s`` included;
    0 where it is not finite, which no trial point can then exploit) appended."""
    _, _, w, sl, h, pi = state
    norm = residuals(pb, w, sl, h, pi, xp.zeros((w.shape[0],), like=w), xp)[-1]
    norm = xp.where(xp.isfinite(norm), norm, 0.0)
    if history is None:
        history = xp.zeros((w.shape[0], NONMONOTONE), like=w)
    return xp.concatenate([history[:, 1:], norm[:, None]], axis=1)


def solve_fixed(p: Any, xp: Backend, tol: float, iterations: int, done: Any = None,
                start: Any = None, bounds: tuple[Any, ...] | None = None) -> SolverOutput:
    r"""Exactly ``iterations`` predictor-corrector steps on the whole batch ``p[b, y, t, s]``
    (float64, normalised), with no data-dependent control flow on the host: nothing is read
    back from the device, so on a GPU the call only queues kernels.

    What :func:`solve` decides on the host is decided per item on the device, with ``where``
    on the full batch: the line search tries every step length at once
    (:func:`fixed_line_search`), the Newton systems are factorised without reading a status
    (:meth:`~pidkit._backend.Backend.lu_factor`, the dense solver of :mod:`._newton` at every
    size), the iterate of each item is certified after every step (:func:`bounds_of`, with the
    plain repair only: the rescaled bound would add work to every step of a training
    regulariser, whose gradient comes from the dual point) and the best bounds are kept, and an
    item whose bracket is below ``tol`` (nats), or with ``done[b]`` true, keeps its iterate from
    then on (it is frozen, not removed). There is no crossover (:mod:`._polish`): an item the
    iteration cannot close keeps the bracket it reached, reported in ``f_lower``/``f_upper``
    and, per item, in ``converged`` (a device array, not read here). ``start`` is
    :func:`solve`'s; ``bounds = (low, up, lam, mu, q)``, certified bounds already known on
    ``p`` (input layout, e.g. from a warm start, :func:`._warm.fixed_warm_solver`), starts the
    best bounds. Returns the
    :class:`SolverOutput` of :func:`solve`, with ``iterations`` the number asked for.
    """
    swap = smaller_first(p)
    if swap:
        p = xp.swapaxes(p, 2, 3)
    pb = problem(p, xp)
    cur = tuple(cold_start(p, pb, xp))
    if start is not None:
        cur = tuple(start(p, pb, list(cur), xp))
    nb = p.shape[0]
    if bounds is None:
        best = Best(xp.zeros((nb,), like=p) - math.inf, xp.zeros((nb,), like=p) + math.inf,
                    cur[0], cur[1], p)
    else:
        low, up, lam, mu, q = bounds
        best = Best(low, up, mu, lam, xp.swapaxes(q, 2, 3)) if swap else Best(*bounds)
    frozen = xp.zeros((nb,), like=p) > 0 if done is None else done
    best = best.better(*bounds_of(pb, cur, xp, rescaled=False), xp)
    for _ in range(iterations):
        frozen = frozen | (best.up - best.low <= tol)
        new = step(pb, cur, xp, fixed=True)
        cur = tuple(xp.where(_expand(frozen, x), x, n) for x, n in zip(cur, new, strict=True))
        best = best.better(*bounds_of(pb, cur, xp, rescaled=False), xp)
    lam, mu, q = best.lam, best.mu, best.q
    if swap:
        lam, mu, q = mu, lam, xp.swapaxes(q, 2, 3)
    return SolverOutput(best.low, best.up, lam, mu, q, best.up - best.low <= tol, iterations)


def _expand(flag: Any, like: Any) -> Any:
    """A per-item flag ``(B,)`` with singleton axes to broadcast against ``like``."""
    return flag.reshape((-1,) + (1,) * (like.ndim - 1))
