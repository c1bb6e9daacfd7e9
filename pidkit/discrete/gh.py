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
:math:`L = \sum_j f(m_j)` is a **lower bound** attained by an explicit :math:`Q` (both ends as
computed are described under *Certificate*). Every simplex whose share of :math:`U - L` is
large gives a split point: its solution's posterior (which becomes a vertex, where
:math:`\hat D_j` is exact), or the midpoint of its longest edge when that posterior is already a
vertex; and **every** simplex containing that point is split into the star around it (the
children replace one vertex each by the point, so they cover the simplex exactly), not only the
one whose solution chose it. A neighbour sharing the face the point lies on, left whole, lets
the next programme put the same mass at the same point through it with the same overestimate
(the interpolation along the shared face is the same), and a round is lost: on a random 3x3x3
Dirichlet(1) pmf the previous version spent about its last 10 of 23 rounds that way,
splitting one simplex a round. A star whose thinnest child would be thinner than
:data:`MIN_WIDTH` is replaced by the halves of the longest edge, or not made. The programme is
solved again until
:math:`U - L \le` ``tol``. Termination is not proven (``max_iter`` caps the rounds, with a
warning; the bracket is valid at every round); in practice it takes 2-10 rounds on the
canonical gates and 11-16 on random 3x3x3 pmfs with full support (16-25 before); the
programmes grow with every round, and 4x4x4 pmfs with full support take minutes (timings
under *Certificate*).

**Scaling.** Each copy's variables are the channel values :math:`r_j(c) = m_j(c) / p(c)`,
so every row has coefficients of order one (conditional probabilities, unit-normalised facets)
whatever the masses; coefficients below :math:`10^{-9}` are left out and their rows relaxed by
what they can contribute (so the programme stays a relaxation), thin simplices are avoided by
rounding split points within :math:`10^{-6}` (barycentric) of a face onto it, the objective is
divided by its largest coefficient (on nearly redundancy-free pmfs every cost is below
:math:`10^{-8}`, under HiGHS's absolute dual tolerance) and relaxations smaller than the
feasibility tolerance are left out (the rows are equalities to HiGHS anyway). When HiGHS's
presolve or simplex fails the programme is solved again without presolve, then by the
interior-point method (:data:`METHODS`), then in the other formulations (:data:`FORMULATIONS`);
when all of them fail, the search stops with the bracket of the rounds before (both ends
proofs; :math:`[0, \min_i I(Y; X_i)]` before any) and warns.
Before this, pmfs with cells below about :math:`10^{-9}` next to cells of order one made HiGHS
report these (feasible) programmes infeasible. On such pmfs the value can depend strongly on
the tiny cells (a Dirichlet(0.05) 2x2x2 pmf with cells from :math:`10^{-17}` to 0.67 moves by
:math:`10^{-7}` nats when a :math:`10^{-17}` cell is raised to :math:`10^{-16}`), and dit's
optimiser returns values above the data-processing bound :math:`\min_i I(Y; X_i)` there.

**Certificate.** The upper end is a **weak-duality bound**, not the solver's optimum
(:meth:`_ConeProgramme.dual_bound`): for any multipliers :math:`y` of the cone rows and
:math:`z \le 0` of the inside rows, :math:`-U \ge \sum_c \min_j d'_j(c)`, with :math:`d'` the
reduced costs of the rows with *every* coefficient (the programme leaves out those below
:data:`SMALL`) and each :math:`\alpha_i` replaced by its value on a channel; the rows
:math:`\sum_j r_j(c) = 1` are kept as the set the minimum runs over, so no box on the variables
enters. HiGHS's multipliers make it valid whatever their accuracy, and within
:math:`4 \cdot 10^{-12}` of its optimum on well-scaled pmfs; when they are further off
(:data:`POLISH`) the programme is solved again by the solver's other methods and the least
bound is kept. The least bound of any round is kept (each round's programme is a
relaxation). The lower end is the value of a **repaired channel**
(:meth:`_ConeProgramme.feasible_value`): the solver's copies moved onto the cone rows with
every coefficient (by projection, or by changing their non-zero entries only: the better of
the two), made non-negative by adding multiples of :math:`p`'s own copy, scaled so that they
sum to at most :math:`p`, the remainder a copy of its own; the best of any round is kept.
Both ends are therefore proofs up to rounding (the facets and values in double precision),
whatever the solver's tolerances; the redundancy reported is :math:`L`.
Checked against exact values (every extreme ray of the cone in rational arithmetic, the
programme over them in 100 digits; 2026-12-05) on 223 Dirichlet(0.05-0.2) pmfs 2x2x2 to 2x3x3
whose cells span 6 to 13 orders of magnitude and 20 random pmfs up to 3x3x3: every bracket
contains the exact value, to :math:`2.5 \cdot 10^{-14}` nats (a repaired channel worth that on
a pmf with :math:`I_{\mathrm{GH}} = 0`: rounding); the previous bounds, the solver's
optimum and its channel's value, missed it by more than :math:`10^{-12}` on 32 of the 223, by
up to :math:`4.9 \cdot 10^{-9}`. The price: where a row has a cell below :math:`10^{-9}` of
the others, left out of the solver's programme, its multipliers need not price it and the
repaired channel loses a little, and on 6 of those 223 pmfs (cells spanning 9.1 to 11.7
orders) the proven bracket stayed :math:`1.5 \cdot 10^{-10}` to :math:`8.3 \cdot 10^{-9}`
nats wide (a :class:`~pidkit.errors.ConvergenceWarning` says so; so on 4 of the 504 pmfs
within the range of 1000 random 2x2x2 and 3x2x2 Dirichlet(0.05 and 0.2) pmfs, seeds 0-249,
:math:`2 \cdot 10^{-10}` to :math:`5.3 \cdot 10^{-10}` nats); the previous version reported
all of them certified within ``tol``, and its brackets missed the exact value on 5 of the 6
(by :math:`4 \cdot 10^{-12}` to :math:`4.9 \cdot 10^{-9}` nats) and on all 4 (by
:math:`6 \cdot 10^{-12}` to :math:`2 \cdot 10^{-10}`).
Pmfs whose positive cells span more than :data:`CERTIFIED_RANGE` (11 orders of magnitude) get
the status ``"approximate"``, a :class:`~pidkit.errors.ConvergenceWarning` and
no certificate, as before: there the upper end is the lesser of the bound and the solver's
optimum (an estimate, which keeps such pmfs from running to ``max_iter``); against exact values
the solver's optimum fell :math:`3 \cdot 10^{-8}` nats below :math:`I_{\mathrm{GH}}` on a 3x3x3
Dirichlet(0.05) pmf with cells down to :math:`1.6 \cdot 10^{-35}`.

**Timings** (CPU time with one BLAS thread, 2-core AMD EPYC shared with other work, previous
and this version interleaved in one script, best of 3; 2026-12-05): random 3x3x3 Dirichlet(1)
pmfs, seeds 0-9, 12.0 s before and 7.6 s now in all (1.6x; 1.14x to 2.6x each, 12-16 rounds
instead of 15-25; seed 0: 1.32 s and 23 rounds before, 0.52 s and 12 now), Dirichlet(0.5)
seeds 0-4 3.1 s and 2.2 s (1.4x), 4x3x3 Dirichlet(1) seeds 0-2 0.05 s and 0.04 s each (1.3x).
On a random 4x4x4 pmf (Dirichlet(1), seed 0) the conforming splits make the programmes grow
faster: 15 rounds took 175 s (535 simplices) against 39 s (233) before (wall time, the
machine busy), but closed the bracket to :math:`1.3 \cdot 10^{-3}` nats against
:math:`5.8 \cdot 10^{-3}`; the previous version's
15-round bracket is reached in 8 rounds, 4.6 s (:math:`5.7 \cdot 10^{-3}` nats; 11 rounds,
36 s: :math:`2.7 \cdot 10^{-3}`). Pass a small ``max_iter`` on such alphabets.

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

from ..errors import caller_stacklevel
from ..information import _mutual_information
from ._certified import check_solver_options, redundancy_result
from .registry import register_measure

__all__ = ["gh"]

#: Default bound on the certified error of the redundancy (nats).
DEFAULT_TOL = 1e-10

#: Feasibility tolerance passed to HiGHS (primal and dual).
FEASIBILITY = 1e-10
LP_OPTIONS = {"primal_feasibility_tolerance": FEASIBILITY,
              "dual_feasibility_tolerance": FEASIBILITY}

#: Largest ratio of p's largest to its smallest positive cell for which the bracket is
#: certified. Both ends are proofs at any range (weak duality, a repaired channel), but beyond
#: it the solver's multipliers leave the proven bracket too wide to stop, and the solver's
#: optimum is used as an estimate of the upper end: such pmfs get the status ``"approximate"``
#: and a warning. Checked against exact solutions (every extreme ray of the cone in rational
#: arithmetic, the linear programme over them in 100 digits; 2026-12-05): the solver's optimum
#: fell 3e-8 nats below I_GH on a 3x3x3 Dirichlet(0.05) pmf with cells down to 1.6e-35; on a
#: 3x2x2 Dirichlet(0.05) pmf with cells from 1.4e-12 to 0.66 (11.7 orders, I_GH = 0) it was
#: -6e-11, below the constant Q's 0, and the proven bracket stays 8e-9 nats wide, so the range
#: was lowered from 12 orders to 11.
CERTIFIED_RANGE = 1e11

#: Supports larger than this (a full 3x3x3 pmf takes 0.2-2 s) get a warning about the time.
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

#: Barycentric weights of a split point below this are rounded to zero (see ``_star``).
SNAP = 1e-6

#: When the weak-duality bound exceeds the solver's optimum by more than this (nats), the
#: programme is solved again by the solver's other methods (:data:`METHODS`) and the least of
#: their bounds is kept: on well-scaled pmfs the two agree within 4e-12; on a 2x2x2 pmf with
#: cells from 3e-8 to 0.69 the first multipliers were 4e-9 off.
POLISH = 1e-11

#: A split whose children would be thinner than this (least singular value of the edges from a
#: vertex) is not made: their facets' normals would be imprecise (children of zero width made
#: them 0 / 0 and linprog raise).
MIN_WIDTH = 1e-15

#: A point within this of a simplex (barycentric weights, residual) is in it (see ``_refine``).
CONTAINS = 1e-9

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


class _SolverFailure(Exception):
    """Every formulation and method of the linear-programme solver failed on one round's
    programme (:meth:`_ConeProgramme.solve`); :func:`gh_bounds` stops with the bracket it has."""


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
        rows, cols, vals, slack, full = [], [], [], [], []
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
                full += [(row, c, w) for c, w in zip(sel.tolist(), weights.tolist(), strict=True)]
                full.append((row, offset + x, -1.0))
                slack.append(weights[~big].sum())
                row += 1
        self.n_rows = row
        self.block = (np.array(rows, dtype=int), np.array(cols, dtype=int),
                      np.array(vals, dtype=float))
        #: each cone row's dropped weight: it holds as 0 <= alpha - sum_big w r <= slack
        self.slack = np.array(slack)
        #: the rows with every weight, as true channels satisfy them (for the dual bound)
        self.full = tuple(np.array(column) for column in zip(*full, strict=True))
        # an orthonormal basis of E's row space (E: those rows, dense): x - (x Q') Q projects a
        # copy onto E's null space
        dense = np.zeros((self.n_rows, len(self.cells) + n0 + n1))
        np.add.at(dense, self.full[:2], self.full[2])
        self.rows_dense = dense
        _, sing, basis = np.linalg.svd(dense, full_matrices=False)
        self.projector_rows = basis[sing > sing.max() * 1e-13]

    def solve(self, simplices: np.ndarray, divergences: np.ndarray):
        """Solve the upper-bound programme over ``simplices`` (shape (J, k, |Y|), vertices as
        rows; ``divergences`` (J, k) their :func:`_divergences`); return the solver's optimal
        value, the weak-duality upper bound from its multipliers (:meth:`dual_bound`; the one
        to trust), each copy's variables (shape (J, width)) and each copy's part of the
        optimal value (shape (J,))."""
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
            raise _SolverFailure(f"every formulation and method of HiGHS failed on the "
                                 f"programme over {n_simplices} simplices (last: "
                                 f"{res.message})")
        x = res.x[:n_simplices * width].reshape(n_simplices, width)
        parts = -(cost * x).sum(axis=1)
        bound = self.dual_bound(cost / unit, inside, cone.shape[0], res)
        if (res.fun - bound) * unit > POLISH:
            # the multipliers are off by more than rounding: those of the solver's other
            # methods on the same programme may be better (any of them gives a valid bound)
            for other_method, other_presolve in METHODS:
                if (other_method, other_presolve) == (method, presolve):
                    continue
                other = linprog(**programme, method=other_method,
                                options={**LP_OPTIONS, "presolve": other_presolve})
                if other.status == 0:
                    bound = max(bound, self.dual_bound(cost / unit, inside, cone.shape[0],
                                                       other))
        return -res.fun * unit, -bound * unit, x, parts

    def dual_bound(self, cost: np.ndarray, inside: np.ndarray, n_cone: int, res) -> float:
        r"""A lower bound on the minimum of ``cost`` (shape (J, width)) over every channel, from
        the solver's duals by weak duality: valid whatever their accuracy, and whatever the
        coefficients the programme left out.

        Let :math:`A x = 0` be the cone rows with every weight (the programme drops weights
        below :data:`SMALL`), :math:`G x \le 0` the inside rows :math:`-|m_j|\,\lambda_k \le 0`
        with every coefficient (``inside``, shape (J, k, cells)); every channel that groups a
        feasible :math:`Q` into the simplices satisfies both exactly. For any multipliers
        :math:`y` and :math:`z \le 0` (the solver's, its positive :math:`z` clipped),

        .. math::

            c^\top x = y^\top A x + z^\top G x + d^\top x \ge \sum_c \min_j d'_j(c),
            \qquad d = c - A^\top y - G^\top z,

        the least of :math:`d^\top x` over :math:`\sum_j r_j(c) = 1`, :math:`r \ge 0`, once
        each :math:`\alpha_i(x_i)` is replaced by its value on a channel,
        :math:`\sum_{c:\,c_i = x_i} p(c \mid x_i)\, r(c)`, which moves its reduced cost onto
        the cells: :math:`d'_j(c) = d_j(c) + \sum_i d_{\alpha_{j,i}}(c_i)\, p(c \mid c_i)`.
        No box on the variables enters (a box :math:`r \le 1` adds every reduced cost's
        tolerance-sized error), nor the programme's relaxations (a left-out weight times a
        multiplier of :math:`10^3` was worth :math:`10^{-8}`), so the bound is as tight as
        :math:`y, z` are: within :math:`4 \cdot 10^{-12}` of the solver's optimum on random pmfs."""
        n_cells, n0, n1, _ = self.sizes
        n_simplices, n_vertices = inside.shape[:2]
        y = res.eqlin.marginals[:n_cone].reshape(n_simplices, self.n_rows)
        z = np.minimum(res.ineqlin.marginals, 0.0).reshape(n_simplices, n_vertices)
        rows, cols, vals = self.full
        # d = c - A' y - G' z, copy by copy
        reduced = cost.copy()
        np.add.at(reduced, (slice(None), cols), -vals * y[:, rows])
        reduced[:, :n_cells] -= np.einsum("jk,jkc->jc", z, inside)
        # alpha_i(x_i) = sum_{c: c_i = x_i} p(c | x_i) r(c) on every channel
        cells = reduced[:, :n_cells].copy()
        for i, (offset, n_x) in enumerate(((n_cells, n0), (n_cells + n0, n1))):
            x_i = self.cells[:, 1 + i]
            p_x = np.bincount(x_i, weights=self.mass, minlength=n_x)
            cells += reduced[:, offset:offset + n_x][:, x_i] * (self.mass / p_x[x_i])
        return math.fsum(cells.min(axis=0))

    def feasible_value(self, x: np.ndarray) -> float:
        r""":math:`I(Q; Y)` of a channel made feasible from the solver's ``x`` (shape (J, width));
        a lower bound on :math:`I_{\mathrm{GH}}` up to rounding, however far (within reason)
        ``x`` misses the cone rows.

        The solver meets the rows only within its tolerance, and on pmfs with cells below
        :math:`10^{-9}` of others the value of its channel exceeded :math:`I_{\mathrm{GH}}` by
        up to :math:`5 \cdot 10^{-9}` nats (exact rational solutions). So each copy
        :math:`(r_j, \alpha_j)` is moved onto the null space of the cone rows with every
        weight, :math:`E`, in two ways (the greater value is taken): by orthogonal projection,
        and by the least change of its non-zero entries alone (zeros stay zeros, so fewer
        entries turn negative; where that cannot solve :math:`E x = 0` to rounding, the
        projection). Then :func:`_value_of_copies` makes the copies a feasible channel."""
        n_cells = self.sizes[0]
        kept = x[x[:, :n_cells] @ self.mass > 0]
        if not len(kept):
            return 0.0
        projected = kept - (kept @ self.projector_rows.T) @ self.projector_rows
        on_support = np.array([self._on_support(copy, fallback)
                               for copy, fallback in zip(kept, projected, strict=True)])
        return max(self._value_of_copies(projected), self._value_of_copies(on_support))

    def _on_support(self, copy: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """``copy`` with its non-zero entries changed least so that the cone rows hold, or
        ``fallback`` when that leaves a residual above rounding (:math:`10^{-15}`)."""
        support = np.flatnonzero(copy > 0)
        change = np.linalg.lstsq(self.rows_dense[:, support], -(self.rows_dense @ copy),
                                 rcond=None)[0]
        moved = copy.copy()
        moved[support] += change
        if np.abs(self.rows_dense @ moved).max() <= 1e-15 * np.abs(copy).max():
            return moved
        return fallback

    def _value_of_copies(self, copies: np.ndarray) -> float:
        r""":math:`I(Q; Y)` of the channel made of ``copies`` (shape (J, width), each in the null
        space of the cone rows :math:`E`): the all-ones copy (the channel of :math:`p` itself)
        is in that null space too, so :math:`\delta_j = \max(0, -\min(r_j, \alpha_j))` of it
        is added to each copy to make it non-negative; the copies are scaled by :math:`s \le 1`
        so that :math:`s \sum_j r_j(c) \le 1`; the remainder :math:`1 - s \sum_j r_j` is another
        copy in the null space, non-negative. The value is that of these copies,
        :math:`\sum_j f(s\, m_j) + f(\text{remainder})`, a feasible channel's."""
        n_cells = self.sizes[0]
        copies = copies + np.maximum(-copies.min(axis=1), 0.0)[:, None]
        scale = min(1.0, 1.0 / copies[:, :n_cells].sum(axis=0).max())
        channel = np.vstack([scale * copies[:, :n_cells],
                             np.maximum(1.0 - scale * copies[:, :n_cells].sum(axis=0), 0.0)])
        masses = np.zeros((len(channel), self.sizes[3]))
        np.add.at(masses.T, self.cells[:, 0], (self.mass * channel).T)
        total = masses.sum(axis=1)
        safe = np.where(total > 0, total, 1.0)
        return math.fsum(total * np.maximum(_divergences(masses / safe[:, None], self.p_y), 0.0))

    def posterior_masses(self, x: np.ndarray) -> np.ndarray:
        """Each copy's target marginal :math:`m_j(y)`, shape (J, |Y|)."""
        out = np.zeros((len(x), self.sizes[3]))
        np.add.at(out.T, self.cells[:, 0], (self.mass * np.maximum(x[:, :self.sizes[0]], 0)).T)
        return out


def _split_point(simplex: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Where to split ``simplex``: ``pi`` with its barycentric weights below ``SNAP`` set to zero
    (moved onto that face, so that no child is a sliver: a child's volume is its weight's share
    of the parent's, and near-degenerate simplices make the programme's rows ill-conditioned),
    or the midpoint of the longest edge when ``pi`` is then (numerically) a vertex."""
    weights = np.linalg.lstsq(simplex.T, pi, rcond=None)[0]
    weights = np.where(weights > SNAP, weights, 0.0)
    if np.count_nonzero(weights) > 1:
        return weights @ simplex / weights.sum()
    i, k = _longest_edge(simplex)
    return (simplex[i] + simplex[k]) / 2


def _longest_edge(simplex: np.ndarray) -> tuple[int, int]:
    """The vertices ``(i, k)`` of the longest edge of ``simplex`` (vertices as rows)."""
    lengths = ((simplex[:, None, :] - simplex[None, :, :]) ** 2).sum(axis=-1)
    i, k = np.unravel_index(np.argmax(lengths), lengths.shape)
    return int(i), int(k)


def _width(simplices: np.ndarray) -> np.ndarray:
    """Each simplex's thinness: the least singular value of its edges from vertex 0."""
    if simplices.shape[1] < 2:
        return np.zeros(len(simplices))
    return np.linalg.svd(simplices[:, 1:] - simplices[:, :1], compute_uv=False).min(axis=1)


def _star(simplex: np.ndarray, point: np.ndarray) -> list[np.ndarray]:
    r"""The children of ``simplex`` around ``point`` (a point of it): for each vertex :math:`v_i`
    where ``point``'s barycentric weight :math:`w_i` exceeds ``SNAP`` (smaller ones are rounded
    to 0), ``simplex`` with :math:`v_i` replaced by ``point``. They cover ``simplex`` exactly
    (a child's volume is :math:`w_i` times the parent's). When the thinnest child would be
    thinner than :data:`MIN_WIDTH` (its facets' normals imprecise), the halves of the longest
    edge instead, or ``[simplex]`` when those are that thin too."""
    weights = np.linalg.lstsq(simplex.T, point, rcond=None)[0]
    weights = np.where(weights > SNAP, weights, 0.0)
    if np.count_nonzero(weights) < 2:
        return [simplex]
    centre = weights @ simplex / weights.sum()
    children = []
    for i in np.flatnonzero(weights):
        child = simplex.copy()
        child[i] = centre
        children.append(child)
    if _width(np.array(children)).min() >= MIN_WIDTH:
        return children
    i, k = _longest_edge(simplex)
    halves = [simplex.copy(), simplex.copy()]
    halves[0][i] = halves[1][k] = (simplex[i] + simplex[k]) / 2
    return halves if _width(np.array(halves)).min() >= MIN_WIDTH else [simplex]


def _barycentric(simplices: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Barycentric weights :math:`w` of ``point`` in each of ``simplices`` (shape (J, k, |Y|)),
    the least-squares solution of :math:`[V^\top; 1^\top] w = [\pi; 1]` by QR (backward
    stable: the pseudo-inverse of a simplex 5e-9 thin left residuals of 1.5e-9 on a point
    inside it), and the largest residual per simplex: ``(weights (J, k), residual (J,))``."""
    n_simplices, n_vertices, _ = simplices.shape
    system = np.concatenate([np.swapaxes(simplices, 1, 2),
                             np.ones((n_simplices, 1, n_vertices))], axis=1)
    target = np.concatenate([point, [1.0]])
    q, r = np.linalg.qr(system)
    try:
        weights = np.linalg.solve(r, (np.swapaxes(q, 1, 2) @ target)[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:    # a degenerate simplex: the least-norm weights
        weights = np.linalg.pinv(system) @ target
    residual = np.abs(system @ weights[:, :, None] - target[:, None]).max(axis=(1, 2))
    return weights, residual


def _refine(simplices: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    r"""Split every simplex that contains one of ``points`` into its :func:`_star` around it:
    the simplex whose solution chose the point, and every neighbour sharing the face the point
    lies on. Left whole, such a neighbour lets the next programme put the same mass at the same
    point with the same overestimate (the interpolation along a shared face is the same), and
    a round is lost. Each simplex is replaced by children covering it exactly, so the cover
    stays a cover whatever the points.

    A simplex contains a point when the point's barycentric weights (:func:`_barycentric`) are
    at least ``-``:data:`CONTAINS` and reproduce it within ``CONTAINS``. The programme's
    solution may leave its simplex by more than that (its rows are relaxed by the coefficients
    below :data:`SMALL`; on a simplex 2.5e-8 thin a weight of the posterior was -1e-8): a point
    no simplex contains goes to the nearest one, if its weights are at least ``-``:data:`SNAP`
    (its star is then around the point moved onto the simplex). Before, such a point split
    nothing and the search stopped after its first round with the bracket
    :math:`[0, \min_i I(Y; X_i)]`."""
    for point in points:
        edges = np.abs(simplices[:, :, None] - simplices[:, None]).max(axis=(1, 2, 3))
        weights, residual = _barycentric(simplices, point)
        least = np.where(residual <= CONTAINS, weights.min(axis=1), -np.inf)
        split = least >= -CONTAINS
        if not split.any() and least.max() >= -SNAP:
            split[np.argmax(least)] = True
        split &= edges >= MIN_EDGE
        children = []
        for simplex, divide in zip(simplices, split, strict=True):
            children += _star(simplex, point) if divide else [simplex]
        simplices = np.array(children)
    return simplices


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


def _lower_parts(programme: _ConeProgramme, x: np.ndarray):
    r"""Each copy's target marginal :math:`m_j(y)` and its part :math:`f(m_j) \ge 0` of
    :math:`I(Q; Y)` for the solver's channel ``x`` as it is (clipped at 0, normalised to
    :math:`\sum_j r_j(c) = 1`): what each simplex's share of the gap and its split point are
    measured with. The lower end of the bracket is :meth:`_ConeProgramme.feasible_value`."""
    n_cells = programme.sizes[0]
    x = np.maximum(x, 0.0)
    x[:, :n_cells] /= np.maximum(x[:, :n_cells].sum(axis=0), np.finfo(float).tiny)
    masses = programme.posterior_masses(x)
    total = masses.sum(axis=1)
    scale = np.where(total > 0, total, 1.0)
    # rounding can leave a part at -1e-17
    return masses, total * np.maximum(_divergences(masses / scale[:, None], programme.p_y), 0.0)


def gh_bounds(p: np.ndarray, tol: float, max_iter: int, certified: bool = True):
    r"""Bounds ``(lower, upper)`` (nats) on :math:`I_{\mathrm{GH}}` of ``p[y, x0, x1]``, the
    rounds used, the number of simplices, and why the search stopped before meeting ``tol``
    within ``max_iter`` rounds (``None`` when it did not): ``"resolved"`` when nothing was left
    to split (:data:`MIN_EDGE`, :data:`MIN_WIDTH`, or no simplex with a gap by the solver's own
    values), or the message of a round whose programme every formulation and method of the
    solver failed on (:data:`FORMULATIONS`, :data:`METHODS`).

    ``lower`` is the best repaired channel of any round (:meth:`_ConeProgramme.feasible_value`;
    0, the constant :math:`Q`'s value, before any), ``upper`` the least weak-duality bound of
    any round (:meth:`_ConeProgramme.dual_bound`; each round's programme is a relaxation, so
    each bound holds, and the solver's optimal values need not decrease from round to round
    when its tolerances are coarse) and of the data-processing bound
    :math:`\min_i I(Y; X_i)`. A round the solver fails on ends the search with the bracket of
    the rounds before it (both ends stay proofs): on a 3x4x4 Dirichlet(0.02) pmf whose cells
    span 58 orders of magnitude HiGHS failed on the ninth round's programme after eight
    successful ones, and this raised an error that threw the bracket away. With
    ``certified`` false (``p`` beyond :data:`CERTIFIED_RANGE`) ``upper`` is the lesser of that
    bound and the round's optimal value, an estimate."""
    p = p[p.sum(axis=(1, 2)) > 0]
    programme = _ConeProgramme(p)
    simplices = _initial_cover(p)
    # the constant Q's value; Q - X_i - Y Markov: I(Q; Y) <= I(X_i; Y) (data processing)
    lower = 0.0
    least = min(_mutual_information(p, (0,), (1,)), _mutual_information(p, (0,), (2,)))
    upper = least
    rounds = 0
    while True:
        rounds += 1
        try:
            value, bound, x, upper_parts = programme.solve(
                simplices, _divergences(simplices, programme.p_y))
        except _SolverFailure as failure:
            return float(lower), float(upper), rounds, len(simplices), f"round {rounds}: {failure}"
        masses, lower_parts = _lower_parts(programme, x)
        total = masses.sum(axis=1)
        lower = max(lower, programme.feasible_value(x))
        least = min(least, bound)
        # beyond CERTIFIED_RANGE the solver's optimum too, as an estimate (as before this
        # bound existed): the proven bound can stay too wide there to ever stop
        upper = max(least if certified else min(least, value), lower)
        if upper - lower <= tol or rounds >= max_iter:
            return float(lower), float(upper), rounds, len(simplices), None
        gaps = upper_parts - lower_parts
        threshold = max(tol / (4 * len(simplices)), SPLIT_FRACTION * gaps.max())
        edges = np.abs(simplices[:, :, None] - simplices[:, None]).max(axis=(1, 2, 3))
        split = np.flatnonzero((gaps > threshold) & (total > 0) & (edges >= MIN_EDGE))
        # the largest gaps first: a later point may fall in a child of an earlier one
        points = [_split_point(simplices[j], masses[j] / total[j])
                  for j in split[np.argsort(-gaps[split])]]
        refined = _refine(simplices, points) if points else simplices
        if len(refined) == len(simplices):   # nothing to split, or only into slivers
            return float(lower), float(upper), rounds, len(simplices), "resolved"
        simplices = refined


def _wide_range(p: np.ndarray) -> str | None:
    """Why the bracket is not a proof on ``p`` (its positive cells span more than
    :data:`CERTIFIED_RANGE`), or None."""
    cells = p[p > 0]
    # as a difference of logarithms: the ratio overflows to inf below about 1e-308 (subnormals)
    orders = math.log10(cells.max()) - math.log10(cells.min())
    if orders <= math.log10(CERTIFIED_RANGE):
        return None
    return (f"p's positive cells span {orders:.0f} orders of magnitude (the "
            f"smallest is {cells.min():.1e}); there the linear programmes' tolerances leave the "
            f"proven bracket wide and its upper end is the solver's optimum, which was off by "
            f"up to 3e-8 nats (checked against exact rational solutions), so the bracket is "
            f"approximate, not a proof. Cells that small are "
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

    Warns
    -----
    ConvergenceWarning
        When the bracket is wider than ``tol`` (``max_iter`` reached, nothing left to split,
        or every formulation and method of the solver, :data:`FORMULATIONS` and
        :data:`METHODS`, failed on a round's programme: the search then stops with the
        bracket of the rounds before, :math:`[0, \min_i I(Y; X_i)]` when it is the first;
        none of 1000 random 2x2x2 and 3x2x2 Dirichlet(0.05 or 0.2) pmfs, seeds 0-249 of each,
        with masses spanning up to 300 orders, and a 3x4x4 Dirichlet(0.02) pmf spanning 58
        in its ninth round), and when ``p`` is beyond :data:`CERTIFIED_RANGE`.

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
                      f"brackets the value", UserWarning, stacklevel=caller_stacklevel())
    approximate = _wide_range(p)
    lower, upper, rounds, n_simplices, stop = gh_bounds(p, tol, max_iter,
                                                        certified=approximate is None)
    if stop == "resolved":
        stopped = ("the branch and bound found nothing left to split (simplices of posteriors "
                   f"{MIN_EDGE:g} wide or {MIN_WIDTH:g} thin, or the rest of the bracket is the "
                   f"solver's tolerance: cells below {SMALL:g} of others in a row are left out "
                   f"of its programmes)")
        advice = "More iterations cannot help: loosen tol"
    elif stop is not None:
        stopped = (f"the branch and bound stopped when the linear-programme solver failed "
                   f"({stop}); the bracket is that of the rounds before")
        advice = ("More iterations cannot help. Cells of mass below about 1e-9 next to cells "
                  "of order 1 are the usual cause: set them to 0 and renormalise, or use "
                  "measure='broja' (certified at any range)")
    else:
        stopped, advice = "the branch and bound stopped", "Increase max_iter or loosen tol"
    return redundancy_result(p, lower, lower, upper, tol=tol, iterations=rounds, measure="gh",
                             approximate=approximate, stopped=stopped, advice=advice,
                             details={"method": "branch and bound on the posterior simplex, "
                                                "linear programmes (HiGHS)",
                                      "simplices": n_simplices})
