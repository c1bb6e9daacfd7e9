r"""Griffith and Ho's redundancy :math:`I_{\mathrm{GH}}`: the most
information about the target that a variable :math:`Q` can carry while being conditionally
independent of the target given each source,

.. math::

    I_{\mathrm{GH}}(Y; X_0, X_1) = \max_{q(Q \mid Y, X_0, X_1)} I(Q; Y)
    \quad \text{subject to} \quad I(Q; Y \mid X_0) = I(Q; Y \mid X_1) = 0,

:math:`Q` coupled to :math:`(Y, X_0, X_1)` by any channel :math:`q(Q \mid Y, X_0, X_1)` (the
definition ``dit.pid.PID_GH`` of dit 2.3 implements).

**A linear programme over a cone.** Write a channel as the masses
:math:`m_q(c) = p(c)\,q(q \mid c)` on the cells :math:`c = (y, x_0, x_1)` of the support. The
constraint :math:`Q \perp Y \mid X_i` holds for each value :math:`q` separately and is linear in
:math:`m_q`: :math:`m_q(y, x_i) = \alpha_i(x_i)\, p(y, x_i)` for some :math:`\alpha_i \ge 0`.
So the feasible :math:`Q` are exactly the decompositions :math:`p = \sum_q m_q` into members of
the polyhedral cone :math:`K` of such masses, and
:math:`I(Q; Y) = \sum_q f(m_q)` with

.. math::

    f(m) = \sum_y m(y) \log \frac{m(y)}{|m|\, p(y)} = |m|\, D(\pi_m \,\|\, p_Y),
    \qquad \pi_m = m(\cdot) / |m|,

convex and positively homogeneous (hence subadditive). The problem *maximises* a convex
function, so it is **not convex**; but splitting never lowers :math:`f`, so the optimum is a
linear programme over the extreme rays of :math:`K` (finitely many), and :math:`Q` needs at most
:math:`|{\rm supp}\, p|` values. Enumerating the rays is exponential; instead:

**Solver: spatial branch and bound on the posterior simplex.** Every feasible posterior
:math:`\pi_m` is a mixture of one source's conditionals :math:`p(\cdot \mid x_i)`, so their
convex hull (a simplex, or a Delaunay triangulation of it) is covered by simplices
:math:`T_j`. On
:math:`T_j` let :math:`\hat D_j` be the affine function equal to :math:`D(\cdot \| p_Y)` at the
vertices of :math:`T_j`; by convexity :math:`\hat D_j \ge D` on :math:`T_j`. The linear programme

.. math::

    U = \max \sum_j |m_j|\, \hat D_j(\pi_{m_j}) \quad \text{s.t.} \quad
    \sum_j m_j = p,\ m_j \in K,\ \pi_{m_j} \in T_j

(one copy of the cone per simplex; :math:`|m_j| \hat D_j(\pi_{m_j})` and the conditions
:math:`\pi_{m_j} \in T_j`, barycentric coordinates :math:`\ge 0`, are linear in
:math:`m_j`) is an **upper bound**: every feasible :math:`Q` groups
into the simplices containing its posteriors, and on each the objective dominates :math:`f`.
Its solution is itself a feasible :math:`Q` (one value per simplex), so
:math:`L = \sum_j f(m_j)` is a **lower bound** attained by an explicit :math:`Q`. Every simplex
whose share of :math:`U - L` is large is split at its solution's posterior (which becomes a
vertex, where :math:`\hat D_j` is exact), or at the midpoint of its longest edge when that
posterior is already a vertex; the programme is solved again until
:math:`U - L \le` ``tol``. Termination is not proven (``max_iter`` caps the rounds, with a
warning; the bracket is valid at every round); in practice it takes 2-10 rounds on the
canonical gates and 15-30 on random 3x3x3 pmfs with full support (1-3 s); the programmes grow
with every round, and 4x4x4 pmfs with full support take minutes.

**Scaling.** Each copy's variables are the channel values :math:`r_j(c) = m_j(c) / p(c)`,
so every row has coefficients of order one (conditional probabilities, unit-normalised facets)
whatever the masses; coefficients below :math:`10^{-9}` are left out and their rows relaxed by
what they can contribute (so the programme stays a relaxation), thin simplices are avoided by
rounding split points within :math:`10^{-6}` (barycentric) of a face onto it, the objective is
divided by its largest coefficient (on nearly redundancy-free pmfs every cost is below
:math:`10^{-8}`, under HiGHS's absolute dual tolerance) and relaxations smaller than the
feasibility tolerance are left out (the rows are equalities to HiGHS anyway). When HiGHS's
presolve or simplex fails the programme is solved again without presolve, then by the
interior-point method (:data:`METHODS`), then in the other formulations (:data:`FORMULATIONS`).
Before this, pmfs with cells below about :math:`10^{-9}` next to cells of order one made HiGHS
report these (feasible) programmes infeasible. On such pmfs the value can depend strongly on
the tiny cells (a Dirichlet(0.05) 2x2x2 pmf with cells from :math:`10^{-17}` to 0.67 moves by
:math:`10^{-7}` nats when a :math:`10^{-17}` cell is raised to :math:`10^{-16}`), and dit's
optimiser returns values above the data-processing bound :math:`\min_i I(Y; X_i)` there.

**Certificate.** :math:`[L, U]` brackets :math:`I_{\mathrm{GH}}` (up to the linear-programme
solver's feasibility tolerance, :math:`10^{-10}`, and rounding) on pmfs whose positive cells
span at most :data:`CERTIFIED_RANGE` (12 orders of magnitude); the redundancy reported is
:math:`L`. Beyond, HiGHS's tolerances are too coarse: :math:`U` is its reported optimum, not a
weak-duality bound, and :math:`L` the value of a channel that may sit slightly off the cone;
against exact rational solutions both ends moved by :math:`10^{-9}` to :math:`3 \cdot 10^{-7}`
nats, so such pmfs get the status ``"approximate"`` and a
:class:`~pidkit.errors.ConvergenceWarning` instead of a certificate. (A valid :math:`U` from
HiGHS's duals is easy; a valid :math:`L` needs each channel part repaired onto the cone.)

References
----------
V. Griffith, T. Ho, "Quantifying redundant information in predicting a target random
variable", Entropy 17(7), 4644-4653 (2015); arXiv:1411.4732.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp

from ..errors import PIDKitError
from ._certified import check_solver_options, redundancy_result
from .registry import register_measure

__all__ = ["gh"]

#: Default bound on the certified error of the redundancy (nats).
DEFAULT_TOL = 1e-10

#: Feasibility tolerance passed to HiGHS (primal and dual).
FEASIBILITY = 1e-10
LP_OPTIONS = {"primal_feasibility_tolerance": FEASIBILITY,
              "dual_feasibility_tolerance": FEASIBILITY}

#: Largest ratio of p's largest to its smallest positive cell for which the bracket is a
#: proof. Beyond it (cells below about 1e-12 of the largest) HiGHS's tolerances, 1e-10 on
#: scaled rows, are too coarse: checked against exact solutions (every extreme ray of the
#: cone in rational arithmetic, the linear programme over them in 100 digits; 2026-12-05), the
#: LP's optimal value fell 3e-8 nats below I_GH on a 3x3x3 Dirichlet(0.05) pmf with cells down
#: to 1.6e-35, and its channels, slightly off the cone, were worth up to 2.5e-7 nats more than
#: I_GH (a 3x2x2 pmf with cells down to 5.7e-21, I_GH = 0); such pmfs are reported with status
#: ``"approximate"`` and a warning. At 11.7 orders the brackets held; at 12.1, 1e-10 off.
CERTIFIED_RANGE = 1e12

#: Supports larger than this (a full 3x3x3 pmf takes 1-3 s) get a warning about the time.
LARGE_SUPPORT = 32

#: ... unless ``max_iter`` is at most this (the time is then bounded by the caller).
BOUNDED_ROUNDS = 10

#: Formulations of the programme tried in turn, ``(scaled, least_slack)``: the objective
#: divided by its largest coefficient or not (HiGHS's dual feasibility tolerance is absolute,
#: and on nearly redundancy-free pmfs every cost is below 1e-8), and the cone rows whose
#: left-out weight is at most ``least_slack`` solved as equalities (within the feasibility
#: tolerance they are to HiGHS anyway; slacks down to 1e-31 made it report feasible programmes
#: infeasible). On random Dirichlet(0.05) pmfs whose cells span 30 orders of magnitude, each
#: formulation rescues some that the others do not.
FORMULATIONS = ((True, FEASIBILITY), (True, 0.0), (False, FEASIBILITY), (False, 0.0))

#: HiGHS methods tried in turn on each formulation, ``(method, presolve)``: its presolve
#: sometimes declares these feasible programmes infeasible, its simplex sometimes stalls on them.
METHODS = (("highs", True), ("highs-ds", False), ("highs-ipm", False))

#: Coefficients below this are left out of the programme's rows, which are relaxed by what they
#: can contribute (HiGHS treats smaller matrix entries as zeros, its ``small_matrix_value``; with
#: its feasibility tolerance at 1e-10 that made feasible programmes infeasible).
SMALL = 1e-9

#: Barycentric weights of a split point below this are rounded to zero (see ``_split``).
SNAP = 1e-6

#: A simplex is split when its gap exceeds this fraction of the largest one.
SPLIT_FRACTION = 0.01
#: ... and its longest edge (posterior probabilities) is at least this long: below, its
#: facets' normals lose their precision (a tol of 1e-20 split simplices until their normals
#: were 0 / 0). When no simplex can be split, the search stops with the bracket it has.
MIN_EDGE = 1e-9


def _divergences(pi: np.ndarray, p_y: np.ndarray) -> np.ndarray:
    r""":math:`D(\pi \| p_Y)` over the last axis of ``pi`` (rows of posteriors)."""
    safe = np.where(pi > 0, pi, 1.0)
    return np.where(pi > 0, pi * np.log(safe / p_y), 0.0).sum(axis=-1)


def _facets_and_objective(simplices: np.ndarray, divergences: np.ndarray):
    r"""For each simplex (shape (J, k, |Y|), vertices as rows) the linear forms of a mass
    :math:`m` over :math:`Y` that the programme needs: its ``k`` barycentric coordinates
    :math:`|m|\,\lambda_k(\pi_m)`, each scaled to a unit coefficient vector (the simplex is
    :math:`\{\lambda_k \ge 0\}`; scaling keeps thin simplices well conditioned), shape
    (J, k, |Y|), and the objective :math:`|m|\, \hat D_j(\pi_m)`, shape (J, |Y|).

    Barycentric coordinates are taken relative to vertex 0,
    :math:`\lambda_{1..}(\pi) = E^+ (\pi - v_0)` with :math:`E` the edges from :math:`v_0` (exact
    on the simplex's affine hull, where every feasible posterior lies), and
    :math:`\hat D_j = D_0 + \sum_{k \ge 1} \lambda_k (D_k - D_0)`: rounding errors in the slopes
    then only act through displacements within the simplex."""
    n_simplices, n_vertices, n_y = simplices.shape
    ones = np.ones((n_simplices, 1, n_y))
    if n_vertices == 1:
        return np.zeros((n_simplices, 0, n_y)), divergences[:, :1] * ones[:, 0]
    base = simplices[:, :1]
    edges = np.linalg.pinv(np.swapaxes(simplices[:, 1:] - base, 1, 2))   # (J, k - 1, |Y|)
    # |m| lambda_k = E^+ (m - |m| v_0): a linear form in m
    forms = edges - (edges @ np.swapaxes(base, 1, 2))
    forms = np.concatenate([ones - forms.sum(axis=1, keepdims=True), forms], axis=1)
    objective = (divergences[:, :1] * ones[:, 0]
                 + ((divergences[:, 1:] - divergences[:, :1])[:, :, None] * forms[:, 1:])
                 .sum(axis=1))
    return forms / np.linalg.norm(forms, axis=2, keepdims=True), objective


class _ConeProgramme:
    r"""The cone :math:`K` of ``p[y, x0, x1]`` as equality rows over one copy's variables
    ``[r (cells), alpha_0 (|X_0|), alpha_1 (|X_1|)]``, and the assembled programme for a list
    of simplices.

    A copy's mass is :math:`m(c) = p(c)\, r(c)` with :math:`r(c) = q(Q{=}j \mid c) \in [0, 1]`:
    the rows :math:`\sum_j r_j(c) = 1` and the cone rows
    :math:`\sum_{c \in (y, x_i)} p(c \mid y, x_i)\, r(c) = \alpha_i(x_i)` then have unit
    right-hand sides and coefficients that are conditional probabilities, whatever the masses
    (with masses as variables, cells of mass below the solver's feasibility tolerance made
    HiGHS report feasible programmes infeasible)."""

    def __init__(self, p: np.ndarray):
        self.cells = np.argwhere(p > 0)
        self.mass = p[tuple(self.cells.T)]
        self.p_y = p.sum(axis=(1, 2))
        n_y, n0, n1 = p.shape
        self.sizes = (len(self.cells), n0, n1, n_y)
        rows, cols, vals, slack = [], [], [], []
        row = 0
        offsets = (len(self.cells), len(self.cells) + n0)
        for axis, offset in zip((1, 2), offsets, strict=True):
            p_yx = p.sum(axis=3 - axis)
            for y, x in np.argwhere(p_yx > 0):
                # sum_c p(c | y, x_i) r(c) - alpha_i(x_i) = 0, i.e. m(y, x_i) = alpha_i p(y, x_i)
                sel = np.flatnonzero((self.cells[:, 0] == y) & (self.cells[:, axis] == x))
                weights = self.mass[sel] / self.mass[sel].sum()
                big = weights >= SMALL
                rows += [row] * (big.sum() + 1)
                cols += [*sel[big].tolist(), offset + x]
                vals += [*weights[big].tolist(), -1.0]
                slack.append(weights[~big].sum())
                row += 1
        self.n_rows = row
        self.block = (np.array(rows, dtype=int), np.array(cols, dtype=int),
                      np.array(vals, dtype=float))
        #: each cone row's dropped weight: it holds as 0 <= alpha - sum_big w r <= slack
        self.slack = np.array(slack)

    def solve(self, simplices: np.ndarray, divergences: np.ndarray):
        """Solve the upper-bound programme over ``simplices`` (shape (J, k, |Y|), vertices as
        rows; ``divergences`` (J, k) their :func:`_divergences`); return its value and each
        copy's variables (shape (J, width))."""
        from scipy.optimize import linprog  # imported on use: importing pidkit stays light

        n_cells, n0, n1, n_y = self.sizes
        n_simplices, n_vertices = simplices.shape[:2]
        rows, cols, vals = self.block
        width = n_cells + n0 + n1
        facets, objective = _facets_and_objective(simplices, divergences)
        shift = np.arange(n_simplices)[:, None]
        cone = sp.csr_matrix((np.tile(vals, n_simplices),
                              ((rows + self.n_rows * shift).ravel(),
                               (cols + width * shift).ravel())),
                             shape=(self.n_rows * n_simplices, width * n_simplices))
        total = sp.csr_matrix((np.ones(n_cells * n_simplices),
                               (np.tile(np.arange(n_cells), n_simplices),
                                (width * shift + np.arange(n_cells)).ravel())),
                              shape=(n_cells, width * n_simplices))
        # -|m_j| lambda_k(pi_j) <= 0, with m_j(y) = sum over the cells of y of p(c) r_j(c)
        j, k, c = np.meshgrid(np.arange(n_simplices), np.arange(n_vertices),
                              np.arange(n_cells), indexing="ij")
        inside = -facets[:, :, self.cells[:, 0]] * self.mass
        big = np.abs(inside) >= SMALL
        inside_rows = sp.csr_matrix((inside[big], ((j * n_vertices + k)[big],
                                                   (width * j + c)[big])),
                                    shape=(facets.shape[1] * n_simplices, width * n_simplices))
        inside_slack = np.where(big, 0.0, np.abs(inside)).sum(axis=2).ravel()
        cost = np.zeros((n_simplices, width))
        cost[:, :n_cells] = -objective[:, self.cells[:, 0]] * self.mass
        rows_eq = sp.vstack([cone, total])
        b_eq = np.concatenate([np.zeros(cone.shape[0]), np.ones(n_cells)])
        for scaled, least_slack in FORMULATIONS:
            # a cone row with left-out weight gets a slack s in [0, slack]:
            # alpha - sum_big w r = s (rows whose slack is at most least_slack: equalities)
            ranged = np.flatnonzero(np.tile(self.slack > least_slack, n_simplices))
            slacks = sp.csr_matrix((np.ones(len(ranged)), (ranged, np.arange(len(ranged)))),
                                   shape=(rows_eq.shape[0], len(ranged)))
            bounds = np.zeros((n_simplices * width + len(ranged), 2))
            bounds[:, 1] = np.inf
            bounds[n_simplices * width:, 1] = np.tile(self.slack, n_simplices)[ranged]
            unit = max(np.abs(cost).max(), np.finfo(float).tiny) if scaled else 1.0
            programme = {
                "c": np.concatenate([cost.ravel() / unit, np.zeros(len(ranged))]),
                "A_ub": sp.hstack([inside_rows, sp.csr_matrix((inside_rows.shape[0],
                                                               len(ranged)))]),
                "b_ub": inside_slack, "A_eq": sp.hstack([rows_eq, slacks]).tocsr(),
                "b_eq": b_eq, "bounds": bounds}
            for method, presolve in METHODS:
                res = linprog(**programme, method=method,
                              options={**LP_OPTIONS, "presolve": presolve})
                if res.status == 0:
                    break
            if res.status == 0:
                break
        if res.status != 0:
            raise PIDKitError(f"gh: every linear-programme solver failed on this pmf (last: "
                              f"{res.message}); no certified value is available. Cells of "
                              f"mass below about 1e-9 next to cells of order 1 are the usual "
                              f"cause: measure='broja' or 'mmi' handle them")
        x = res.x[:n_simplices * width].reshape(n_simplices, width)
        parts = -(cost * x).sum(axis=1)
        return -res.fun * unit, x, parts

    def posterior_masses(self, x: np.ndarray) -> np.ndarray:
        """Each copy's target marginal :math:`m_j(y)`, shape (J, |Y|)."""
        out = np.zeros((len(x), self.sizes[3]))
        np.add.at(out.T, self.cells[:, 0], (self.mass * np.maximum(x[:, :self.sizes[0]], 0)).T)
        return out


def _split(simplex: np.ndarray, pi: np.ndarray) -> list[np.ndarray]:
    """Children of ``simplex``: stars around ``pi``, or the halves of the longest edge when
    ``pi`` is (numerically) a vertex. A barycentric weight of ``pi`` below ``SNAP`` is set to
    zero first (``pi`` moved onto that face), so that no child is a sliver: a child's volume is
    its weight's share of the parent's, and near-degenerate simplices make the programme's rows
    ill-conditioned."""
    weights = np.linalg.lstsq(simplex.T, pi, rcond=None)[0]
    weights = np.where(weights > SNAP, weights, 0.0)
    inside = np.flatnonzero(weights)
    if len(inside) > 1:
        pi = weights @ simplex / weights.sum()
        children = []
        for i in inside:
            child = simplex.copy()
            child[i] = pi
            children.append(child)
        return children
    lengths = ((simplex[:, None, :] - simplex[None, :, :]) ** 2).sum(axis=-1)
    i, k = np.unravel_index(np.argmax(lengths), lengths.shape)
    mid = (simplex[i] + simplex[k]) / 2
    first, second = simplex.copy(), simplex.copy()
    first[i], second[k] = mid, mid
    return [first, second]


def _initial_cover(p: np.ndarray) -> np.ndarray:
    r"""Simplices (shape (J, k, |Y|), vertices as rows) covering the convex hull of the
    conditionals :math:`p(\cdot \mid x_i)` of the source with fewer distinct ones; every
    feasible posterior lies there, as :math:`m(y) = \sum_{x_i} \alpha_i(x_i)\, p(y, x_i)`."""
    from scipy.spatial import Delaunay, QhullError  # imported on use, as linprog

    hulls = []
    for axis in (1, 2):
        p_yx = p.sum(axis=3 - axis)
        p_x = p_yx.sum(axis=0)
        hulls.append(np.unique((p_yx[:, p_x > 0] / p_x[p_x > 0]).T.round(15), axis=0))
    points = min(hulls, key=len)
    centred = points - points.mean(axis=0)
    _, sing, basis = np.linalg.svd(centred, full_matrices=False)
    dim = int((sing > 1e-12).sum())
    if dim == 0:
        return points[None, :1]
    coords = centred @ basis[:dim].T
    if len(points) == dim + 1:
        return points[None]
    if dim == 1:
        return points[[np.argmin(coords[:, 0]), np.argmax(coords[:, 0])]][None]
    try:
        return points[Delaunay(coords).simplices]
    except QhullError:
        # nearly degenerate hull: the whole simplex of posteriors is a valid (looser) cover
        return np.eye(p.shape[0])[None]


def gh_bounds(p: np.ndarray, tol: float, max_iter: int):
    r"""Certified bounds ``(lower, upper)`` (nats) on :math:`I_{\mathrm{GH}}` of
    ``p[y, x0, x1]``, the rounds used, the number of simplices, and whether the search
    stopped because no simplex could be split further (:data:`MIN_EDGE`)."""
    p = p[p.sum(axis=(1, 2)) > 0]
    programme = _ConeProgramme(p)
    simplices = _initial_cover(p)
    rounds = 0
    while True:
        rounds += 1
        vertex_divergences = _divergences(simplices, programme.p_y)
        upper, x, upper_parts = programme.solve(simplices, vertex_divergences)
        masses = programme.posterior_masses(x)
        total = masses.sum(axis=1)
        scale = np.where(total > 0, total, 1.0)
        # each part is |m_j| D(pi_j || p_Y) >= 0; rounding can leave -1e-17
        lower_parts = total * np.maximum(_divergences(masses / scale[:, None], programme.p_y),
                                         0.0)
        lower = float(lower_parts.sum())
        upper = max(upper, lower)
        if upper - lower <= tol or rounds >= max_iter:
            return lower, upper, rounds, len(simplices), False
        gaps = upper_parts - lower_parts
        threshold = max(tol / (4 * len(simplices)), SPLIT_FRACTION * gaps.max())
        edges = np.abs(simplices[:, :, None] - simplices[:, None]).max(axis=(1, 2, 3))
        split = (gaps > threshold) & (total > 0) & (edges >= MIN_EDGE)
        if not split.any():
            return lower, upper, rounds, len(simplices), True
        children = []
        for simplex, divide, mass, weight in zip(simplices, split, masses, total, strict=True):
            children += _split(simplex, mass / weight) if divide else [simplex]
        simplices = np.array(children)


def _wide_range(p: np.ndarray) -> str | None:
    """Why the bracket is not a proof on ``p`` (its positive cells span more than
    :data:`CERTIFIED_RANGE`), or None."""
    cells = p[p > 0]
    spread = float(cells.max() / cells.min())
    if spread <= CERTIFIED_RANGE:
        return None
    return (f"p's positive cells span {math.log10(spread):.0f} orders of magnitude (the "
            f"smallest is {cells.min():.1e}); there the linear programmes' tolerances can move "
            f"both ends of the bracket by 1e-9 to 3e-7 nats (checked against exact rational "
            f"solutions), so the bracket is approximate, not a proof. Cells that small are "
            f"usually noise: set them to 0 (p[p < {1 / CERTIFIED_RANGE:g} * p.max()] = 0, then "
            f"renormalise), or use measure='broja' (certified at any range)")


@register_measure("gh", reference="Griffith & Ho 2015, Entropy 17, 4644",
                  summary="Griffith-Ho I_GH, max I(Q;Y) with Q-X_i-Y Markov for each "
                          "source; exact by branch and bound over linear programmes, certified; "
                          "two sources",
                  max_sources=2, options=("tol", "max_iter"))
def gh(p: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 100):
    r""":math:`I_{\mathrm{GH}}` atoms (nats) of ``p[y, x0, x1]``, with a certificate.

    .. math::

        I_{\mathrm{GH}}(Y; X_0, X_1) = \max_{Q} I(Q; Y) \quad \text{s.t.} \quad
        Q - X_0 - Y \ \text{and}\ Q - X_1 - Y \ \text{are Markov chains},

    over every :math:`Q` jointly distributed with :math:`(Y, X_0, X_1)`.

    Properties (Griffith and Ho 2015): symmetric in the sources; self-redundant;
    :math:`0 \le I_{\mathrm{GH}} \le \min_i I(Y; X_i)` (data processing along
    :math:`Q - X_i - Y`), so redundancy and unique atoms are non-negative; at least the
    Gacs-Korner common information's share :math:`I(Y; X_0 \wedge X_1)` (a common function
    of the sources is a feasible :math:`Q`). The identity property fails: for
    :math:`Y = (X_0, X_1)` every feasible :math:`Q` is a function of the Gacs-Korner common
    variable of the sources, so :math:`I_{\mathrm{GH}} = H(X_0 \wedge X_1)`, which is less than
    :math:`I(X_0; X_1)` unless the sources are independent given their common part. Defined
    here for two sources.

    Parameters
    ----------
    p : ndarray, shape (|Y|, |X_0|, |X_1|)
        Normalised joint pmf, target on axis 0 (a single source gives :math:`I(Y; X_0)`).
    tol : float, default 1e-10
        Stop when the certified bracket on the redundancy is at most ``tol`` nats wide.
    max_iter : int, default 100
        Most branch-and-bound rounds (linear programmes). A
        :class:`~pidkit.errors.ConvergenceWarning` is issued when ``tol`` is not met; the
        certificate still brackets the value. The programmes grow every round, so this is
        what bounds the time: above ``LARGE_SUPPORT`` (32) cells of positive mass and with
        ``max_iter > 10`` a ``UserWarning`` says so (a random 4x4x4 pmf takes over a minute
        with the default).

    Raises
    ------
    PIDKitError
        When every formulation and method (:data:`FORMULATIONS`, :data:`METHODS`) fails (none
        of 1000 random 2x2x2 and 3x2x2 Dirichlet(0.05 or 0.2) pmfs, seeds 0-249 of each,
        with masses spanning up to 300 orders; 6 did before the objective was scaled).

    Returns
    -------
    atoms : dict
        Lattice node -> atom in nats; the redundancy is the certificate's lower end (the
        value of an explicit feasible :math:`Q`).
    info : SolverInfo
        ``optimal``, ``max_iter`` or ``approximate`` (cells spanning more than
        :data:`CERTIFIED_RANGE`: the bracket is not a proof, so there is no certificate and
        ``details["approximate_bracket_nats"]`` holds it), the rounds, and ``certificate``: a
        bracket ``[lower, upper]`` on the redundancy (quantity ``"redundancy"``); ``details``
        holds the number of simplices of the final partition.

    References
    ----------
    V. Griffith, T. Ho, "Quantifying redundant information in predicting a target random
    variable", Entropy 17(7), 4644-4653 (2015).

    Examples
    --------
    >>> import pidkit
    >>> r = pidkit.pid(pidkit.gates.gate("AND"), measure="gh")
    >>> round(r.redundancy, 6), round(r.synergy, 6), r.solver.certificate.gap < 1e-10
    (0.122556, 0.311278, True)
    """
    tol, max_iter = check_solver_options(tol, max_iter)
    support = int((p > 0).sum())
    if support > LARGE_SUPPORT and max_iter > BOUNDED_ROUNDS:
        warnings.warn(f"gh: p has {support} cells of positive mass (> {LARGE_SUPPORT}); the "
                      f"branch and bound's linear programmes grow every round and can take "
                      f"minutes (a random 4x4x4 pmf: over a minute). Pass a smaller max_iter "
                      f"(rounds; default 100) to bound the time: the certificate still "
                      f"brackets the value", UserWarning, stacklevel=3)
    lower, upper, rounds, n_simplices, resolved = gh_bounds(p, tol, max_iter)
    return redundancy_result(p, lower, lower, upper, tol=tol, iterations=rounds, measure="gh",
                             approximate=_wide_range(p),
                             stopped=("the branch and bound reached its resolution "
                                      f"(simplices of posteriors {MIN_EDGE:g} wide)"
                                      if resolved else "the branch and bound stopped"),
                             advice=("More iterations cannot help: loosen tol" if resolved
                                     else "Increase max_iter or loosen tol"),
                             details={"method": "branch and bound on the posterior simplex, "
                                                "linear programmes (HiGHS)",
                                      "simplices": n_simplices})
