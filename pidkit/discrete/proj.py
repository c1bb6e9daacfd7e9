r"""Harder, Salge and Polani's :math:`I_{\mathrm{proj}}` (:math:`I_{\mathrm{red}}`): redundancy of
two sources by information projections.

For a value :math:`x_0` of the first source, :math:`p(y \mid x_0)` is projected onto the convex
hull :math:`C_1 = \mathrm{conv}\{p(y \mid x_1) : p(x_1) > 0\}` of the other source's
conditionals (the reverse information projection, which minimises the Kullback-Leibler divergence
in its second argument):

.. math::

    \pi_{x_0} = \operatorname*{arg\,min}_{r \in C_1} D\bigl(p(\cdot \mid x_0) \,\|\, r\bigr),
    \qquad
    I^\pi_Y(X_0 \searrow X_1) = \sum_{x_0, y} p(x_0, y) \log \frac{\pi_{x_0}(y)}{p(y)},

and :math:`I_{\mathrm{proj}}(Y; X_0, X_1) = \min\{I^\pi_Y(X_0 \searrow X_1),
I^\pi_Y(X_1 \searrow X_0)\}`. Since :math:`\sum_y p(y \mid x_0) \log \frac{p(y \mid x_0)}{p(y)}`
averages to :math:`I(Y; X_0)`, the projected information is
:math:`I(Y; X_0) - \sum_{x_0} p(x_0) \min_{r \in C_1} D(p(\cdot \mid x_0) \| r)`.

**Solver.** Each projection is the convex problem

.. math::

    \min_{w \ge 0}\ F(w) = -\sum_y a_y \log (w^\top B)_y + \sum_j w_j ,

with :math:`a = p(\cdot \mid x_0)` and the rows of :math:`B` the conditionals
:math:`p(\cdot \mid x_1)` (rows summing to 1); its minimisers satisfy :math:`\sum_j w_j = 1`
(:math:`F(s w) = F(w) - \log s + (s - 1) \sum_j w_j` is minimal at
:math:`s = 1 / \sum_j w_j`), so they are the optimal mixture weights.
All projections of both directions are solved together by a primal-dual interior-point method on
the KKT conditions :math:`1 - \rho(w) = z`, :math:`w_j z_j = 0`, :math:`w, z \ge 0` (Mehrotra's
predictor-corrector; one Newton system per projection, batched: the ``k x k`` matrix for hulls
of ``k`` conditionals, or through the Woodbury identity ``|Y| x |Y|`` systems where ``k`` is
larger, :func:`_newton_solver`).
Identical or affinely dependent conditionals leave directions in which :math:`F` is constant; a
ridge of :math:`10^{-13}` relative to the Hessian keeps those systems regular.

**Certificate.** For weights :math:`\tilde w` on the simplex with :math:`\tilde q =
\tilde w^\top B` and :math:`\rho_j = \sum_y a_y B_{jy} / \tilde q_y`, Jensen's inequality gives,
for every :math:`r = v^\top B \in C_1`,
:math:`\sum_y a_y \log (r_y / \tilde q_y) \le \log \sum_j v_j \rho_j \le \log \max_j \rho_j`,
so :math:`D(a \| \tilde q) - \min_{r \in C_1} D(a \| r) \le \log \max_j \rho_j` (zero exactly
at the optimum, where :math:`\max_j \rho_j = 1`). Averaging over :math:`x_0` brackets each
projected information: the value from :math:`\tilde q` is a lower bound, and adding the averaged
gaps gives an upper bound; the minimum of the two directions inherits the bracket. Every atom is
:math:`\pm` the redundancy plus mutual informations, so the bracket's width bounds the error of
every atom (up to rounding).

References
----------
M. Harder, C. Salge, D. Polani, "Bivariate measure of redundant information",
Phys. Rev. E 87, 012130 (2013).
S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM J. Optim.
2(4), 575-601 (1992).
"""

from __future__ import annotations

import numpy as np

from ..information import _mutual_information
from ..validation import fail
from ._certified import check_solver_options, redundancy_result
from .registry import register_measure

__all__ = ["proj"]

#: Default bound on the certified error of the redundancy (nats).
DEFAULT_TOL = 1e-12

#: Relative ridge added to the Newton matrix.
RIDGE = 1e-13

#: Hulls of more than this many conditionals per target value are solved through the
#: Woodbury identity (:func:`_newton_solver`), smaller ones with the dense ``k x k`` matrix.
LOW_RANK_RATIO = 2

#: Steps of iterative refinement of each Woodbury solve.
REFINE_STEPS = 1


def _max_step(x, dx):
    """Largest step in [0, 1] keeping ``x + step dx >= 0`` (rows)."""
    ratio = np.where(dx < 0, -x / np.where(dx < 0, dx, -1.0), np.inf)
    return np.minimum(1.0, ratio.min(axis=1))


def _newton_step(w, z, a, b):
    r"""One Mehrotra predictor-corrector step for the KKT conditions
    :math:`1 - \rho(w) = z`, :math:`w_j z_j = 0`, :math:`w, z \ge 0` (batched).

    The Newton matrix is :math:`B\,\mathrm{Diag}(a / q^2)\,B^\top + \mathrm{Diag}(z / w)`
    plus the ridge (:func:`_newton_solver`)."""
    q = np.einsum("nj,njy->ny", w, b)
    ratio = np.divide(a, q, out=np.zeros_like(a), where=a > 0)
    residual = 1.0 - np.einsum("ny,njy->nj", ratio, b) - z
    solve = _newton_solver(b, ratio / q, z / w)
    mu = (w * z).mean(axis=1, keepdims=True)

    def direction(complementarity):
        dw = solve(complementarity / w - residual)
        return dw, (complementarity - z * dw) / w

    dw, dz = direction(-w * z)                                   # predictor (affine)
    alpha = np.minimum(_max_step(w, dw), _max_step(z, dz))[:, None]
    mu_affine = ((w + alpha * dw) * (z + alpha * dz)).mean(axis=1, keepdims=True)
    sigma = (mu_affine / mu) ** 3
    dw, dz = direction(sigma * mu - w * z - dw * dz)             # corrector
    alpha = 0.99 * np.minimum(_max_step(w, dw), _max_step(z, dz))[:, None]
    return w + alpha * dw, z + alpha * dz


def _newton_solver(b, curvature, barrier):
    r"""A solver of the Newton systems :math:`(G G^\top + \mathrm{Diag}(e))\,x = r` (batched),
    :math:`G = B\,\mathrm{Diag}(c)^{1/2}` with ``b`` ``(n, k, m)``, ``curvature`` :math:`c`
    ``(n, m)``, and :math:`e` = ``barrier`` :math:`z / w` ``(n, k)`` plus a ridge of
    :data:`RIDGE` times the largest diagonal entry of :math:`G G^\top` (conditionals that
    coincide, or are affinely dependent, on the support of ``a`` leave directions in which
    ``F`` is constant; the ridge keeps those systems regular).

    The ``k x k`` matrix is formed and solved directly while ``k <=`` :data:`LOW_RANK_RATIO`
    ``m``; for hulls of more conditionals than target values (a 2 x 300 x 300 pmf: 600 systems
    of 300 x 300, a minute) by the Woodbury identity, ``m x m`` systems in
    :math:`O(k m^2)` per projection:

    .. math::

        x = E^{-1} r - E^{-1} G\,(I + G^\top E^{-1} G)^{-1} G^\top E^{-1} r,

    followed by :data:`REFINE_STEPS` steps of iterative refinement against the exact product
    (the identity subtracts large terms where :math:`e_j` is small, i.e. on the weights the
    projection uses)."""
    n, k, m = b.shape
    if k <= LOW_RANK_RATIO * m:
        matrix = np.einsum("njy,ny,nky->njk", b, curvature, b)
        hessian = matrix[:, np.arange(k), np.arange(k)]
        matrix[:, np.arange(k), np.arange(k)] += barrier + RIDGE * hessian.max(
            axis=1, keepdims=True)
        return lambda r: np.linalg.solve(matrix, r[..., None])[..., 0]
    g = b * np.sqrt(curvature)[:, None, :]
    diagonal = barrier + RIDGE * np.einsum("njy,njy->nj", g, g).max(axis=1, keepdims=True)
    g_e = g / diagonal[..., None]
    small = np.einsum("njy,njz->nyz", g, g_e)
    small[:, np.arange(m), np.arange(m)] += 1.0

    def woodbury(r):
        u = np.linalg.solve(small, np.einsum("njy,nj->ny", g_e, r)[..., None])[..., 0]
        return r / diagonal - np.einsum("njy,ny->nj", g_e, u)

    def solve(r):
        x = woodbury(r)
        for _ in range(REFINE_STEPS):
            x += woodbury(r - np.einsum("njy,ny->nj", g, np.einsum("njy,nj->ny", g, x))
                          - diagonal * x)
        return x

    return solve


def projection_gaps(w, a, b):
    r"""Normalised projections :math:`\tilde q` and their certified gaps
    :math:`\log \max_j \rho_j \ge D(a \| \tilde q) - \min_{r \in C} D(a \| r)` (batched)."""
    w = w / w.sum(axis=1, keepdims=True)
    q = np.einsum("nj,njy->ny", w, b)
    ratio = np.divide(a, q, out=np.zeros_like(a), where=a > 0)
    rho = np.einsum("ny,njy->nj", ratio, b)
    return q, np.maximum(np.log(rho.max(axis=1)), 0.0)


def project(a, b, tol, max_iter):
    r"""Reverse information projections of the rows of ``a`` onto the hulls of ``b``.

    Parameters
    ----------
    a : ndarray, shape (n, m)
        The pmfs to project (rows sum to 1).
    b : ndarray, shape (n, k, m)
        For each problem, ``k`` pmfs spanning its convex hull.
    tol : float
        Stop when every problem's certified gap is at most ``tol`` (nats).
    max_iter : int
        Most interior-point iterations.

    Returns
    -------
    q : ndarray, shape (n, m)
        The projections (on the hulls exactly, up to rounding).
    gap : ndarray, shape (n,)
        Certified bounds on :math:`D(a \| q) - \min_{r} D(a \| r)`.
    steps : int
        Interior-point iterations used.
    """
    n, k, _ = b.shape
    w = np.full((n, k), 1.0 / k)
    z = np.ones((n, k))
    q, gap = projection_gaps(w, a, b)
    steps = 0
    while steps < max_iter and (gap > tol).any():
        steps += 1
        idx = np.flatnonzero(gap > tol)
        w[idx], z[idx] = _newton_step(w[idx], z[idx], a[idx], b[idx])
        q[idx], gap[idx] = projection_gaps(w[idx], a[idx], b[idx])
    return q, gap, steps


def _conditionals(p_xy: np.ndarray) -> np.ndarray:
    """Rows ``p(y | x)`` of the values ``x`` with mass, from ``p_xy[x, y]``."""
    p_x = p_xy.sum(axis=1)
    return p_xy[p_x > 0] / p_x[p_x > 0, None]


#: Most entries of one direction's Newton systems (:func:`_system_entries`; a 2 x 2000 x 2
#: pmf asked for 8e9 entries, 60 GB, before this check and the Woodbury solver).
MAX_NEWTON_ENTRIES = 10**8


def _system_entries(n: int, k: int, m: int) -> int:
    """Entries of the largest arrays of ``n`` projections onto hulls of ``k`` conditionals
    over ``m`` target values: the ``k x k`` Newton matrices, or the ``k x m`` hulls and
    Woodbury factors (:func:`_newton_solver`)."""
    return n * k * (max(k, m) if k <= LOW_RANK_RATIO * m else m)


def _pad_rows(rows: np.ndarray, k: int) -> np.ndarray:
    """``rows`` with its first row repeated up to ``k`` rows (the hull does not change)."""
    return np.concatenate([rows, np.repeat(rows[:1], k - len(rows), axis=0)])


def projected_informations(p: np.ndarray, tol: float, max_iter: int):
    r"""Lower and upper bounds (nats) on :math:`I^\pi_Y(X_0 \searrow X_1)` and
    :math:`I^\pi_Y(X_1 \searrow X_0)` of ``p[y, x0, x1]``, and the iterations used.

    The projections of both directions are one batch, the smaller hull padded with repeated
    rows, where that at most doubles the Newton systems' entries (small tables: one call costs
    less than two); otherwise each direction is its own batch (a 2 x 2000 x 2 pmf padded
    asked for 8e9 entries)."""
    p = p[p.sum(axis=(1, 2)) > 0]           # target values with mass
    p_y = p.sum(axis=(1, 2))
    pairs = [p.sum(axis=2).T, p.sum(axis=1).T]   # p(x0, y), p(x1, y)
    conds = [_conditionals(pair) for pair in pairs]
    m = len(p_y)
    sizes = [_system_entries(len(conds[d]), len(conds[1 - d]), m) for d in range(2)]
    for d in range(2):
        if sizes[d] > MAX_NEWTON_ENTRIES:
            raise fail("p", f"has {len(conds[d])} values of X{d} with mass to project onto the "
                       f"hull of {len(conds[1 - d])} conditionals of X{1 - d}: the Newton "
                       f"systems would hold {sizes[d]:.3g} entries (at most "
                       f"{MAX_NEWTON_ENTRIES:.0e})", "Merge rare outcomes of the sources (or "
                       "drop outcomes of negligible mass) before computing I_proj",
                       f"shape {p.shape}")
    k = max(len(c) for c in conds)
    if _system_entries(len(conds[0]) + len(conds[1]), k, m) <= 2 * sum(sizes):
        hulls = [[_pad_rows(conds[1 - d], k) for d in range(2)]]
    else:
        hulls = [[conds[1]], [conds[0]]]
    q, gap, steps = [], [], 0
    start = 0
    for group in hulls:
        rows = conds[start:start + len(group)]
        start += len(group)
        b = np.concatenate([np.broadcast_to(h, (len(c), *h.shape))
                            for c, h in zip(rows, group, strict=True)])
        q_g, gap_g, used = project(np.concatenate(rows), b, tol, max_iter)
        q.append(q_g)
        gap.append(gap_g)
        steps = max(steps, used)
    q, gap = np.concatenate(q), np.concatenate(gap)
    lower, upper = [], []
    start = 0
    for pair, cond in zip(pairs, conds, strict=True):
        rows = slice(start, start + len(cond))
        start += len(cond)
        weight = pair[pair.sum(axis=1) > 0]
        log_ratio = np.log(np.divide(q[rows], p_y, out=np.ones_like(q[rows]), where=weight > 0))
        value = float((weight * log_ratio).sum())
        lower.append(value)
        upper.append(value + float(weight.sum(axis=1) @ gap[rows]))
    return lower, upper, steps


@register_measure("proj", reference="Harder, Salge & Polani 2013, Phys. Rev. E 87, 012130",
                  summary="Harder-Salge-Polani I_proj (I_red), information projections onto "
                          "the other source's conditionals, certified; two sources",
                  max_sources=2, options=("tol", "max_iter"))
def proj(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 500):
    r""":math:`I_{\mathrm{proj}}` atoms (nats) of ``p[y, x0, x1]``, with a certificate.

    .. math::

        I_{\mathrm{proj}}(Y; X_0, X_1) = \min\Bigl\{\sum_{x_0, y} p(x_0, y)
        \log \frac{\pi_{x_0}(y)}{p(y)},\ \sum_{x_1, y} p(x_1, y)
        \log \frac{\pi_{x_1}(y)}{p(y)}\Bigr\},

    :math:`\pi_{x_0}` the reverse information projection of :math:`p(y \mid x_0)` onto the
    convex hull of :math:`\{p(y \mid x_1)\}` (and symmetrically).

    Properties (Harder, Salge and Polani 2013): symmetric in the sources; self-redundant;
    :math:`0 \le I_{\mathrm{proj}} \le \min_i I(Y; X_i)`, so redundancy and unique atoms are
    non-negative; the identity property holds, :math:`I_{\mathrm{proj}}(X_0 X_1; X_0, X_1) =
    I(X_0; X_1)`. Defined for two sources only.

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, |X_1|)
        Normalised joint pmf, target on axis 0 (a single source gives :math:`I(Y; X_0)`).
    tol : float, default 1e-12
        Certified bound (nats) on the error of each projection's divergence; the redundancy's
        bracket is at most ``tol`` wide (plus rounding).
    max_iter : int, default 500
        Most interior-point iterations. A :class:`~pidkit.errors.ConvergenceWarning` is
        issued when ``tol`` is not met; the certificate still bounds the error.

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats; the redundancy is the certificate's lower end (the value
        of feasible projections).
    info : SolverInfo
        ``optimal`` or ``max_iter``, the interior-point iterations, and ``certificate``: a
        proven bracket ``[lower, upper]`` on the redundancy (quantity ``"redundancy"``).

    References
    ----------
    M. Harder, C. Salge, D. Polani, "Bivariate measure of redundant information",
    Phys. Rev. E 87, 012130 (2013).

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("AND"), measure="proj")
    >>> round(r.redundancy, 6), round(r.synergy, 6), r.solver.certificate.gap < 1e-12
    (0.311278, 0.5, True)
    """
    tol, max_iter = check_solver_options(tol, max_iter)
    lower, upper, steps = projected_informations(p, tol, max_iter)
    # each projected information is at most I(Y; X_i), so the redundancy is at most the
    # smaller one: computed apart they can exceed it by rounding (4e-16), which left a unique
    # atom at -4e-16 where the theory says >= 0
    bound = min(_mutual_information(p, (0,), (1,)), _mutual_information(p, (0,), (2,)))
    red_lower, red_upper = min(*lower, bound), min(*upper, bound)
    return redundancy_result(p, red_lower, red_lower, red_upper, tol=tol, iterations=steps,
                             measure="proj", stopped="the projections stopped",
                             details={"method": "primal-dual interior point, batched"})
