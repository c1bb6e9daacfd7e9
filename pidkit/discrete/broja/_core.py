r"""From the solver's bracket on :math:`f^*` to the four certified BROJA atoms, batched.

With :math:`u = \mathrm{Uni}(Y{:}T \setminus S)` the atoms are affine in ``u``:

.. math::

    \mathrm{Uni}_T = u,\quad \mathrm{Red} = I(Y;T) - u,\quad
    \mathrm{Uni}_S = I(Y;S) - I(Y;T) + u,\quad \mathrm{Syn} = I(Y;T,S) - I(Y;S) - u,

and all four are non-negative at the true value, so
:math:`u \in [\max(0, I(Y;T) - I(Y;S)),\ \min(I(Y;T), I(Y;T,S) - I(Y;S))]`. The reported
``u`` is the primal (upper) bound clipped to that interval and the certificate is the
intersection of the solver's bracket with it: no atom is negative and every atom is within the
certified gap of its true value. When the interval itself is shorter than the tolerance
(constant or identical sources, a constant target, sources independent of the target) no
optimisation is needed.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import entr as _entr

from ..._backend import NUMPY, Backend
from ..._threads import one_blas_thread
from . import _ipm
from ._bounds import CROSSING

#: Largest Schur complement, :math:`|Y| \min(|T|, |S|)` rows, solved with one BLAS thread (the
#: thread setting of the caller applies above, up to the numpy backend's ``LARGE_ORDER``).
#: Measured on the 2-core machine (2026-12-04, Intel Xeon, numpy, Dirichlet(1) cubes, one pmf):
#: one thread against two, 0.18 / 0.16 s at k = 24, 0.47 / 1.00 s at k = 32, 1.23 / 1.82 s at
#: k = 40, 2.68 / 2.94 s at k = 48, 12.1 / 9.6 s at k = 64; with two busy processes on the
#: cores 0.29 / 0.55 s at k = 24 and 0.74 / 2.78 s at k = 32 (threads competing for busy cores,
#: the slowdown the issue measured at k = 64). On the AMD EPYC 2-core machine (2026-12-06) a
#: second thread gains nothing at k = 64 (5.05-5.24 against 5.27-5.77 s wall, twice the CPU
#: time) and costs 3x under contention (8.3-9.2 s pinned against 25-26 s), so k = 64 cubes (4,096
#: rows) are pinned too.
ONE_THREAD_SCHUR = 4096
#: ... but one pmf whose dense Newton matrix (:mod:`._small`) has at most this many rows,
#: ``|Y|(|T| + |S|)``, is left to the caller's setting: OpenBLAS runs such sizes on one thread
#: anyway, and pinning costs about 14 us, 2% of a 3 x 3 x 3 solve. Measured (2026-12-05, the
#: lean driver, Dirichlet(1) cubes, 1 / 2 threads): 0.46 / 0.46 ms at k = 3 (18 rows), 0.52 /
#: 0.54 ms at k = 4 (32), 1.15 / 1.14 ms at k = 6 (72), but 1.8 / 10.0 ms at k = 8 (128).
UNPINNED_SINGLE = 72


def entropy(p, axes, xp: Backend):
    r""":math:`-\sum p \ln p` over ``axes`` (nats), with ``0 log 0 = 0`` and finite gradients."""
    return -xp.sum(xp.xlogy_safe(p, p), axis=axes)


@dataclass
class Information:
    """Entropies and mutual informations (nats) of a batch ``p[b, y, t, s]``, shape ``(B,)``."""

    h_y_given_s: Any
    i_t: Any
    i_s: Any
    i_ts: Any

    @property
    def bounds(self) -> tuple[Any, Any]:
        """The interval ``Uni_S >= 0`` and ``Syn >= 0`` put ``Uni(Y:T\\S)`` in (the third
        bound, ``Red >= 0``, is applied by :func:`clip_unique`)."""
        return self.i_t - self.i_s, self.i_ts - self.i_s


def information(p, xp: Backend) -> Information:
    r"""Compute the :class:`Information` of ``p[b, y, t, s]``, differentiable under torch.

    The four torch quantities are the outputs of one autograd node
    (:meth:`~pidkit._backend.Backend.custom_gradient`) whose backward is their closed-form
    vector-Jacobian product (:func:`_information_vjp`). Written as torch operations the
    entropies made about 50 autograd nodes: on a 10 x 10 x 10 table (development timing, one
    thread) 0.29 ms forward against 0.12 ms this way."""
    if xp is NUMPY:
        return _clamped(_raw_numpy(p), xp)
    detached = xp.detach(p)
    with xp.no_grad():
        raw = list(_raw(detached, xp))
    if xp.requires_grad(p):
        raw = xp.custom_gradient(p, raw, lambda grads: _information_vjp(detached, grads, xp))
    return _clamped(raw, xp)


def _clamped(raw, xp: Backend) -> Information:
    """:class:`Information` of the raw ``(H(Y|S), I(Y;T), I(Y;S), I(Y;T,S))``, the mutual
    informations floored at 0 (rounding)."""
    h_y_given_s, i_t, i_s, i_ts = raw
    return Information(h_y_given_s, xp.maximum(i_t, 0.0), xp.maximum(i_s, 0.0),
                       xp.maximum(i_ts, 0.0))


def _raw(p, xp: Backend) -> tuple[Any, Any, Any, Any]:
    """``(H(Y|S), I(Y;T), I(Y;S), I(Y;T,S))`` of ``p[b, y, t, s]`` with the backend's
    operations (nats, not floored)."""
    p_yt, p_ys = xp.sum(p, axis=3), xp.sum(p, axis=2)
    p_y, p_t, p_s = xp.sum(p_yt, axis=2), xp.sum(p_yt, axis=1), xp.sum(p_ys, axis=1)
    p_ts = xp.sum(p, axis=1)
    h_y = entropy(p_y, 1, xp)
    h_ys, h_s = entropy(p_ys, (1, 2), xp), entropy(p_s, 1, xp)
    i_t = h_y + entropy(p_t, 1, xp) - entropy(p_yt, (1, 2), xp)
    i_ts = h_y + entropy(p_ts, (1, 2), xp) - entropy(p, (1, 2, 3), xp)
    return h_ys - h_s, i_t, h_y + h_s - h_ys, i_ts


def _raw_numpy(p: np.ndarray) -> tuple[Any, Any, Any, Any]:
    r""":func:`_raw` for numpy arrays (:func:`numpy_information`)."""
    return numpy_information(p)[0]


def numpy_information(p: np.ndarray) -> tuple[tuple[Any, Any, Any, Any], tuple[Any, Any, Any]]:
    r"""``(H(Y|S), I(Y;T), I(Y;S), I(Y;T,S))`` of a numpy batch ``p[b, y, t, s]`` (nats, not
    floored), and its one-variable marginals ``(P(y), P(t), P(s))``, each ``(B, n)``.

    The seven entropies come from one ``scipy.special.entr`` (:math:`-x \ln x`, 0 at 0) on
    all the marginals laid end to end and one ``np.add.reduceat``: the values of :func:`_raw`
    up to rounding, in a quarter of its time on a small pmf (11 against 45 us at 3 x 3 x 3,
    17 us with an ``entr`` per entropy; every ``pidkit.pid`` call pays it)."""
    b, ny, nt, ns = p.shape
    p_yt, p_ys, p_ts = np.add.reduce(p, 3), np.add.reduce(p, 2), np.add.reduce(p, 1)
    p_y, p_t, p_s = np.add.reduce(p_yt, 2), np.add.reduce(p_yt, 1), np.add.reduce(p_ys, 1)
    sizes = (ny, nt, ns, ny * nt, ny * ns, nt * ns)
    flat = np.concatenate((p_y, p_t, p_s, p_yt.reshape(b, -1), p_ys.reshape(b, -1),
                           p_ts.reshape(b, -1), p.reshape(b, -1)), axis=1)
    h_y, h_t, h_s, h_yt, h_ys, h_ts, h = np.add.reduceat(
        _entr(flat), (0, *itertools.accumulate(sizes)), axis=1).T
    return (h_ys - h_s, h_y + h_t - h_yt, h_y + h_s - h_ys, h_y + h_ts - h), (p_y, p_t, p_s)


def _information_vjp(p, grads: list[Any], xp: Backend) -> Any:
    r"""The gradient with respect to ``p[b, y, t, s]`` of
    :math:`\sum_k g_k \cdot v_k` for the quantities :math:`v` of :func:`_raw` and incoming
    gradients ``grads`` :math:`g` (each ``(B,)``). With
    :math:`G_A = \partial H(A) / \partial p(y,t,s) = -(\ln p_A(a) + 1)` for the marginal cell
    :math:`a` of :math:`(y,t,s)` (0 where :math:`p_A(a) = 0`, as the gradient of ``0 log 0``
    through :meth:`~pidkit._backend.Backend.xlogy_safe`):
    :math:`H(Y|S) \to G_{YS} - G_S`, :math:`I(Y;T) \to G_Y + G_T - G_{YT}`,
    :math:`I(Y;S) \to G_Y + G_S - G_{YS}`, :math:`I(Y;T,S) \to G_Y + G_{TS} - G_{YTS}`;
    each marginal's term is weighted once and broadcast over its cells."""
    def g(x, weight, axes):
        value = xp.where(x > 0, -xp.log(xp.where(x > 0, x, 1.0)) - 1.0, 0.0)
        return xp.reshape(weight, (-1, 1, 1, 1)) * xp.reshape(value, axes)

    g_hys, g_it, g_is, g_its = grads
    b, ny, nt, ns = p.shape
    p_yt, p_ys, p_ts = xp.sum(p, axis=3), xp.sum(p, axis=2), xp.sum(p, axis=1)
    return (g(xp.sum(p_yt, axis=2), g_it + g_is + g_its, (b, ny, 1, 1))
            + g(xp.sum(p_yt, axis=1), g_it, (b, 1, nt, 1))
            + g(xp.sum(p_ys, axis=1), g_is - g_hys, (b, 1, 1, ns))
            + g(p_yt, -g_it, (b, ny, nt, 1)) + g(p_ys, g_hys - g_is, (b, ny, 1, ns))
            + g(p_ts, g_its, (b, 1, nt, ns)) + g(p, -g_its, (b, ny, nt, ns)))


@dataclass
class Atoms:
    """Certified BROJA atoms of a batch, in nats, each of shape ``(B,)``."""

    unique_t: Any
    redundancy: Any
    unique_s: Any
    synergy: Any
    lower: Any
    upper: Any
    converged: Any
    iterations: int


def clip_unique(u, info: Information, xp: Backend):
    r"""Clip ``u`` into the interval every non-negative decomposition puts
    :math:`\mathrm{Uni}_T` in, as BROJA's is (Bertschinger et al. 2014):

    .. math::

        \max\{I(Y;T) - I(Y;S),\ 0\} \le \mathrm{Uni}_T
        \le \min\{I(Y;T,S) - I(Y;S),\ I(Y;T)\}

    (:math:`\mathrm{Uni}_S, \mathrm{Uni}_T, \mathrm{Syn}, \mathrm{Red} \ge 0`). A pmf with
    :math:`I(Y;T) = 0` or :math:`I(Y;S) = 0` has an interval of width 0: closed-form."""
    lo, hi = info.bounds
    lo = xp.maximum(lo, 0.0)
    hi = xp.maximum(xp.minimum(hi, info.i_t), 0.0)
    lo = xp.minimum(lo, hi)
    return xp.minimum(xp.maximum(u, lo), hi), lo, hi


def atoms_from_unique(u, info: Information, xp: Backend):
    """``(Uni_T, Red, Uni_S, Syn)`` from ``u`` (already clipped); rounding floored at 0."""
    red = xp.maximum(info.i_t - u, 0.0)
    uni_s = xp.maximum(info.i_s - info.i_t + u, 0.0)
    syn = xp.maximum(info.i_ts - info.i_s - u, 0.0)
    return u, red, uni_s, syn


def certified(f_lower, f_upper, info: Information, xp: Backend, interval=None):
    """Reported ``u`` and its certificate ``[lower, upper]`` from a bracket on :math:`f^*`;
    ``interval``: the ``(lo, hi)`` of :func:`clip_unique` if the caller has it already."""
    if interval is None:
        u, lo, hi = clip_unique(info.h_y_given_s + f_upper, info, xp)
    else:
        lo, hi = interval
        u = xp.minimum(xp.maximum(info.h_y_given_s + f_upper, lo), hi)
    lower = xp.minimum(xp.maximum(info.h_y_given_s + f_lower, lo), u)
    upper = xp.maximum(xp.minimum(info.h_y_given_s + f_upper, hi), u)
    return u, lower, upper


def solve_atoms(p, xp: Backend, tol: float, max_iter: int, solver=None,
                info: Information | None = None) -> tuple[Atoms, _ipm.SolverOutput]:
    """Certified atoms of ``p[b, y, t, s]`` (float64) and the raw solver output.

    ``tol`` is the certified gap in nats. ``solver`` has :func:`._ipm.solve`'s contract
    (default: that function; :func:`pidkit.pid` on one numpy pmf passes the lean single-pmf
    driver :func:`._small.solve`, with its warm start if any). The solve runs with one BLAS
    thread when the Schur complement has at most :data:`ONE_THREAD_SCHUR` rows, except for
    one pmf whose Newton matrix has at most :data:`UNPINNED_SINGLE` rows. Items whose interval
    of admissible values is already shorter than ``tol`` are closed-form: the solver does not
    iterate on them. ``info``: :func:`information` of ``p`` if the caller has it already.
    """
    if info is None:
        info = information(p, xp)
    _, lo, hi = clip_unique(info.i_t, info, xp)
    solver = solver or _ipm.solve
    b, ny, nt, ns = p.shape
    pin = ny * min(nt, ns) <= ONE_THREAD_SCHUR and (b > 1 or ny * (nt + ns) > UNPINNED_SINGLE)
    with (one_blas_thread() if pin else nullcontext()):
        out = solver(p, xp, tol, max_iter, done=(hi - lo) <= tol)
    u, lower, upper = certified(out.f_lower, out.f_upper, info, xp, (lo, hi))
    # bounds that cross by more than rounding are a solver fault, not a certificate
    # (certified() would clip them to a gap of 0): such an item keeps only the interval every
    # decomposition allows
    consistent = out.f_upper >= out.f_lower - CROSSING * (1.0 + abs(out.f_lower))
    lower, upper = xp.where(consistent, lower, lo), xp.where(consistent, upper, hi)
    converged = (upper - lower) <= tol
    atoms = Atoms(*atoms_from_unique(u, info, xp), lower, upper, converged, out.iterations)
    return atoms, out
