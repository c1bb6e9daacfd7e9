r"""Niu and Quinn's information-geometric PID :math:`I_{\mathrm{IG}}`: the synergy is the
divergence of :math:`p` from the exponential family through the two Markov-chain models
:math:`p(x_0, x_1)\, p(y \mid x_1)` (:math:`X_0 - X_1 - Y`) and
:math:`p(x_0, x_1)\, p(y \mid x_0)` (:math:`X_1 - X_0 - Y`),

.. math::

    q_t(y, x_0, x_1) = \frac{p(x_0, x_1)\, p(y \mid x_0)^t\, p(y \mid x_1)^{1 - t}}{Z(t)},
    \qquad S = \inf_t D(p \,\|\, q_t),

and the redundancy is the co-information plus the synergy,
:math:`I_{\mathrm{IG}} = I(Y; X_0) + I(Y; X_1) - I(Y; X_0 X_1) + S`. As in
``dit.pid.PID_IG``, :math:`t` ranges over the whole line where :math:`q_t` is defined: where
some cell has :math:`p(y \mid x_0) = 0 < p(y \mid x_1)` (with :math:`p(x_0, x_1) > 0`),
:math:`t < 0` would give it infinite weight, so :math:`t \ge 0` (and symmetrically
:math:`t \le 1`); at such an end the infimum is the limit from inside (dit perturbs every cell
by :math:`10^{-100}` instead, which moves its optimum there by a few :math:`10^{-3}`).

**A convex one-dimensional problem.** On the model's support (cells with :math:`p(x_0, x_1)`,
:math:`p(y \mid x_0)`, :math:`p(y \mid x_1)` all positive) write
:math:`\ell = \log p(y \mid x_0) - \log p(y \mid x_1)`; then

.. math::

    F(t) = D(p \| q_t) = I(Y; X_0 \mid X_1) - t\, \mathbb{E}_p[\ell]
    + \log \sum_{\rm cells} p(x_0, x_1)\, p(y \mid x_1)\, e^{t \ell},

a constant plus a linear term plus a log-sum-exp of affine functions: **convex**, with
:math:`F'(t) = \mathbb{E}_{q_t}[\ell] - \mathbb{E}_p[\ell]` and
:math:`F''(t) = \mathrm{Var}_{q_t}[\ell] \ge 0`.

**Solver.** The minimiser is bracketed (an end of the domain where :math:`F'` points outward is
optimal exactly; otherwise steps double until :math:`F'` changes sign), then found by Newton's
method safeguarded by bisection. If :math:`\ell` is constant, :math:`F` is constant. If
:math:`F' < 0` on an unbounded domain (:math:`\ell` maximal on all of :math:`p`'s support) the
infimum is the limit :math:`t \to \infty`, in closed form (and symmetrically).

**Certificate.** For the final iterate :math:`\hat t` with :math:`g = F'(\hat t)` and a bracket
:math:`[t_l, t_r] \ni t^*`, convexity gives
:math:`F(\hat t) \ge S \ge F(\hat t) + \min\{g (t_l - \hat t), g (t_r - \hat t)\}`; the reported
synergy is :math:`F(\hat t)` (a feasible value), and the bracket carries over to every atom.

References
----------
X. Niu, C. J. Quinn, "A measure of synergy, redundancy, and unique information using
information geometry", Proc. IEEE ISIT 2019, 3127-3131.
"""

from __future__ import annotations

import numpy as np

from ..information import _mutual_information
from ._certified import check_solver_options, redundancy_result
from .registry import register_measure

__all__ = ["ig"]

#: Default bound on the certified error of the synergy (nats).
DEFAULT_TOL = 1e-13


class _Family:
    r"""The exponential family :math:`q_t` of ``p[y, x0, x1]`` on its support: log base weights
    :math:`\log p(x_0, x_1) p(y \mid x_1)`, the statistic :math:`\ell`, and :math:`p`'s cells."""

    def __init__(self, p: np.ndarray):
        p_x0x1 = p.sum(axis=0)
        cond0 = np.divide(p.sum(axis=2), p.sum(axis=(0, 2)),
                          out=np.zeros(p.shape[:2]), where=p.sum(axis=(0, 2)) > 0)
        cond1 = np.divide(p.sum(axis=1), p.sum(axis=(0, 1)),
                          out=np.zeros(p.shape[::2]), where=p.sum(axis=(0, 1)) > 0)
        a = np.broadcast_to(cond0[:, :, None], p.shape)
        b = np.broadcast_to(cond1[:, None, :], p.shape)
        joint = np.broadcast_to(p_x0x1[None], p.shape) > 0
        support = joint & (a > 0) & (b > 0)
        #: t >= 0 / t <= 1 where a cell would get infinite weight beyond
        self.lo = 0.0 if (joint & (a == 0) & (b > 0)).any() else -np.inf
        self.hi = 1.0 if (joint & (b == 0) & (a > 0)).any() else np.inf
        # logs of the factors, not of their product, which underflows for subnormal masses
        self.log_base = np.log(np.broadcast_to(p_x0x1[None], p.shape)[support]) + np.log(
            b[support])
        self.stat = np.log(a[support]) - np.log(b[support])
        weight = p[support]
        self.p_stat = float(weight @ self.stat)          # E_p[l]
        cells = weight > 0
        # sum_p p log(p / (p(x0, x1) p(y | x1))) = I(Y; X0 | X1)
        self.constant = float(weight[cells] @ (np.log(weight[cells]) - self.log_base[cells]))
        self.on_p = cells

    def value(self, t: float) -> tuple[float, float, float]:
        """:math:`F(t)`, :math:`F'(t)`, :math:`F''(t)`."""
        z = self.log_base + t * self.stat
        top = z.max()
        w = np.exp(z - top)
        total = w.sum()
        mean = float(w @ self.stat) / total
        var = float(w @ (self.stat - mean) ** 2) / total
        log_z = top + np.log(total)
        return self.constant - t * self.p_stat + log_z, mean - self.p_stat, var

    def extreme(self, sign: int) -> np.ndarray:
        r"""Cells where :math:`\ell` is maximal (``sign > 0``) or minimal, to rounding."""
        top = self.stat.max() if sign > 0 else self.stat.min()
        return np.abs(self.stat - top) <= 1e-13 * max(1.0, abs(top))

    def limit(self, sign: int) -> float:
        r"""``lim F(t)`` as :math:`t \to \pm\infty` when :math:`\ell` is extreme on :math:`p`'s
        support: the divergence to :math:`p(x_0, x_1) p(y \mid x_1)` restricted to the cells
        where :math:`\ell` is extreme."""
        log_base = self.log_base[self.extreme(sign)]
        top = log_base.max()
        return self.constant + top + float(np.log(np.exp(log_base - top).sum()))


def minimise(family: _Family, tol: float, max_iter: int):
    r"""Certified minimum of :math:`F` over its domain: ``(lower, upper, t, iterations)``
    (``t`` is ``±inf`` for a limit)."""
    spread = family.stat.max() - family.stat.min()
    if spread <= 1e-15 * max(1.0, np.abs(family.stat).max()):
        value = family.value(0.0)[0]
        return value, value, 0.0, 0
    for sign, end in ((1, family.hi), (-1, family.lo)):
        if np.isinf(end) and family.extreme(sign)[family.on_p].all():
            value = family.limit(sign)
            return value, value, sign * np.inf, 0
    # an end of the domain where the derivative points outward is optimal
    for end, sign in ((family.lo, 1), (family.hi, -1)):
        if np.isfinite(end):
            f, g, _ = family.value(end)
            if sign * g >= 0:
                return f, f, end, 0
    t = float(np.clip(0.5, family.lo, family.hi))
    f, g, h = family.value(t)
    left, right = family.lo, family.hi
    step = 1.0
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        if g < 0:
            left = t
            if np.isfinite(right):
                break
            t_new = t + step
        elif g > 0:
            right = t
            if np.isfinite(left):
                break
            t_new = t - step
        else:
            return f, f, t, iterations
        t_new = float(np.clip(t_new, family.lo, family.hi))
        step *= 2.0
        f_new, g_new, h_new = family.value(t_new)
        if (t_new == family.hi and g_new <= 0) or (t_new == family.lo and g_new >= 0):
            return f_new, f_new, t_new, iterations
        t, f, g, h = t_new, f_new, g_new, h_new
    best = (f, t, g)
    while iterations < max_iter:
        lower = best[0] + min(best[2] * (left - best[1]), best[2] * (right - best[1]))
        if best[0] - lower <= tol:
            break
        iterations += 1
        t_new = t - g / h if h > 0 else np.nan
        if not left < t_new < right:
            t_new = 0.5 * (left + right)
        t = t_new
        f, g, h = family.value(t)
        if g < 0:
            left = t
        elif g > 0:
            right = t
        else:
            return f, f, t, iterations
        if f <= best[0]:
            best = (f, t, g)
    lower = best[0] + min(best[2] * (left - best[1]), best[2] * (right - best[1]))
    return min(lower, best[0]), best[0], best[1], iterations


@register_measure("ig", reference="Niu & Quinn 2019, Proc. IEEE ISIT, 3127-3131",
                  summary="Niu-Quinn information-geometric I_IG, synergy as the divergence to "
                          "the exponential family through the two Markov chains (convex 1-D, "
                          "Newton, certified); two sources",
                  max_sources=2, options=("tol", "max_iter"))
def ig(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 200):
    r""":math:`I_{\mathrm{IG}}` atoms (nats) of ``p[y, x0, x1]``, with a certificate.

    .. math::

        I_{\mathrm{IG}}(Y; X_0, X_1) = I(Y; X_0) + I(Y; X_1) - I(Y; X_0 X_1)
        + \inf_t D\Bigl(p \,\Big\|\, \frac{p(x_0, x_1)\, p(y \mid x_0)^t\,
        p(y \mid x_1)^{1 - t}}{Z(t)}\Bigr).

    Properties: symmetric in the sources (:math:`t \leftrightarrow 1 - t`); self-redundant;
    synergy :math:`S \ge 0` and unique atoms non-negative
    (:math:`S \le D(p \| q_0) = I(Y; X_0 \mid X_1)`, the unique atom of :math:`X_0` being
    :math:`I(Y; X_0 \mid X_1) - S`, and symmetrically); the redundancy can be negative (the W
    gate: :math:`-0.0618` bits). For :math:`Y = (X_0, X_1)` the redundancy is
    :math:`I(X_0; X_1) + S \ge I(X_0; X_1)`, equal only when :math:`p` lies on the family, so
    the identity property fails in general. Defined for two sources only.

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, |X_1|)
        Normalised joint pmf, target on axis 0 (a single source gives :math:`I(Y; X_0)`).
    tol : float, default 1e-13
        Stop when the certified bracket on the synergy is at most ``tol`` nats wide.
    max_iter : int, default 200
        Most bracketing and Newton iterations. A :class:`~pidkit.errors.ConvergenceWarning`
        is issued when ``tol`` is not met; the certificate still brackets the value.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats; the synergy is :math:`F(\hat t)`, the certificate's
        upper end on the redundancy.
    info : SolverInfo
        ``optimal`` or ``max_iter``, the iterations, ``certificate`` (a bracket on the
        redundancy, quantity ``"redundancy"``) and in ``details`` the optimal ``t``
        (``±inf`` for a limit).

    References
    ----------
    X. Niu, C. J. Quinn, "A measure of synergy, redundancy, and unique information using
    information geometry", Proc. IEEE ISIT 2019, 3127-3131.

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("AND"), measure="ig")
    >>> round(r.redundancy, 6), round(r.synergy, 6), r.solver.certificate.gap < 1e-12
    (0.082831, 0.271553, True)
    """
    tol, max_iter = check_solver_options(tol, max_iter)
    lower, upper, t, iterations = minimise(_Family(p), tol, max_iter)
    coinformation = (_mutual_information(p, (0,), (1,)) + _mutual_information(p, (0,), (2,))
                     - _mutual_information(p, (0,), (1, 2)))
    lower, upper = coinformation + float(lower), coinformation + float(upper)
    return redundancy_result(p, upper, lower, upper, tol=tol, iterations=iterations,
                             measure="ig", stopped="the one-dimensional minimisation stopped",
                             details={"method": "safeguarded Newton on a convex 1-D problem",
                                      "t": float(t)})
