r"""Maximum-entropy pmfs with prescribed marginals, by iterative proportional fitting (IPF).

Given marginal constraints :math:`q(x_{S_j}) = p(x_{S_j})`, the maximum-entropy pmf is the
I-projection of the uniform pmf onto the set of pmfs with those marginals, and IPF (Deming and
Stephan 1940; Csiszar 1975) converges to it by cyclically rescaling :math:`q` to match one marginal
at a time:

.. math::

    q \leftarrow q \cdot \frac{p(x_{S_j})}{q(x_{S_j})}.

Many small problems (one per lattice node) are solved together: their cells are concatenated in
one vector and each rescaling is one ``np.bincount`` over all problems.

IPF converges geometrically when the maximum-entropy pmf is positive on every cell the
constraints allow, but only like :math:`1/t` when the constraints force extra zeros ("induced"
structural zeros, e.g. on the AND gate). Problems that have not converged after a first round
get their exact support from linear programs (facial reduction: a cell belongs to the support iff
some pmf with the required marginals puts mass on it) and are solved again on that support; those
IPF still leaves above the tolerance (maximum-entropy pmfs with cells near zero, where IPF is
sublinear) are finished by Newton's method on the convex dual (:func:`newton_maxent`),
warm-started from the IPF iterate. Where that stalls too (sparse pmfs whose feasible set is a
thin polytope around ``p``: moving mass onto a cell outside ``p``'s support moves cells of 1e-12
mass, which the log-linear parametrisation cannot resolve), the primal problem is solved
directly by Newton's method restricted to the affine set of pmfs with the required marginals
(:func:`primal_maxent`), from a strictly positive point built from ``p``.

References
----------
I. Csiszar, "I-divergence geometry of probability distributions and minimization problems",
Ann. Probab. 3, 146-158 (1975).

S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press (2004),
ch. 10 (equality constrained minimisation: Newton's method, the Newton decrement).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._threads import one_blas_thread

__all__ = ["MaxEntProblem", "newton_maxent", "primal_maxent", "solve_maxent"]

#: A cell counts as outside the support when no direction of the support programme (see
#: :func:`_exact_support`; entries in [-1, 1], vertices of a 0/1 system) puts more than this on it.
SUPPORT_TOL = 1e-9

#: Sweeps of plain IPF before the exact support is computed for problems still not converged.
FIRST_ROUND_SWEEPS = 50

#: Sweeps per chunk of the second IPF round, after which each problem's rate is checked.
CHECK_SWEEPS = 50

#: A problem stays in the second IPF round while its last chunk's rate predicts convergence
#: within this many more sweeps; the others are finished by Newton's method (IPF's rate on
#: maximum-entropy pmfs with cells near zero is slow or sublinear, where Newton's is quadratic).
HANDOVER_SWEEPS = 200

#: Most Newton iterations (:func:`newton_maxent`) finishing a problem IPF left unconverged, and
#: again of the primal finish (:func:`primal_maxent`) where those stop short of the tolerance.
NEWTON_MAX_ITER = 100

#: Iterations of :func:`newton_maxent` without progress (the marginal deviation not halved, the
#: dual value not lowered beyond its rounding) after which it stops and leaves the problem to
#: :func:`primal_maxent`.
STALL_ITERATIONS = 5

#: Relative change of the dual value below which :func:`newton_maxent`'s line search judges
#: a step by the marginal deviation instead (a few float64 roundings of the log-sum-exp).
ROUNDING = 1e-14

#: Largest fraction of the distance to the boundary :math:`q = 0` that one step of
#: :func:`primal_maxent` covers.
TO_BOUNDARY = 0.99

#: Armijo constant of :func:`primal_maxent`'s backtracking line search.
ARMIJO = 1e-4

#: Smallest step size :func:`primal_maxent`'s line search tries before it gives up.
MIN_STEP = 1e-10


@dataclass
class MaxEntProblem:
    """One maximum-entropy problem on a flattened pmf.

    Attributes
    ----------
    p : ndarray, shape (n_cells,)
        The pmf whose marginals are to be kept (flattened).
    groups : list of ndarray of int, each shape (n_cells,)
        For each constraint, the marginal cell every cell belongs to.
    allowed : ndarray of bool, shape (n_cells,)
        Cells that may carry mass (set by :func:`solve_maxent`).
    """

    p: np.ndarray
    groups: list[np.ndarray]
    targets: list[np.ndarray] = field(init=False)
    allowed: np.ndarray = field(init=False)

    def __post_init__(self):
        self.targets = [np.bincount(g, weights=self.p) for g in self.groups]
        self.allowed = np.ones(self.p.shape, dtype=bool)
        for g, t in zip(self.groups, self.targets, strict=True):
            self.allowed &= t[g] > 0  # a zero marginal forces its cells to zero


def _ipf(problems: list[MaxEntProblem], tol: float, max_sweeps: int,
         start: list[np.ndarray] | None = None):
    """Batched IPF from ``start`` (default: the uniform pmf on each problem's allowed cells).
    Returns (q per problem, converged flags, sweeps, deviation per problem)."""
    n_constraints = max(len(pr.groups) for pr in problems)
    sizes = np.array([pr.p.size for pr in problems])
    cell_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    q = np.concatenate(start if start is not None
                       else [pr.allowed / pr.allowed.sum() for pr in problems])
    big_g, big_t, starts = [], [], []
    for j in range(n_constraints):
        # Problems with fewer constraints repeat their last one (a no-op right after itself).
        idx = [min(j, len(pr.groups) - 1) for pr in problems]
        n_groups = np.array([len(pr.targets[i]) for pr, i in zip(problems, idx, strict=True)])
        g_start = np.concatenate([[0], np.cumsum(n_groups)[:-1]])
        big_g.append(np.concatenate([pr.groups[i] + off for pr, i, off
                                     in zip(problems, idx, g_start, strict=True)]))
        big_t.append(np.concatenate([pr.targets[i] for pr, i in zip(problems, idx, strict=True)]))
        starts.append(g_start)
    deviation = np.full(len(problems), np.inf)
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):  # noqa: B007  (sweeps is reported)
        deviation[:] = 0.0
        for g, t, g_start in zip(big_g, big_t, starts, strict=True):
            marg = np.bincount(g, weights=q, minlength=len(t))
            np.maximum(deviation, np.maximum.reduceat(np.abs(marg - t), g_start), out=deviation)
            ratio = np.divide(t, marg, out=np.zeros_like(t), where=marg > 0)
            q *= ratio[g]
        if deviation.max() < tol:
            break
    parts = [q[s:s + n] for s, n in zip(cell_start, sizes, strict=True)]
    return parts, deviation < tol, sweeps, deviation


def _exact_support(pr: MaxEntProblem) -> np.ndarray:
    """Cells on which some pmf with the required marginals puts mass (one problem; see
    :func:`_exact_supports`)."""
    return _exact_supports([pr])[0]


def _exact_supports(problems: list[MaxEntProblem]) -> list[np.ndarray]:
    r"""Cells on which some pmf with the required marginals puts mass: the support of the
    maximum-entropy pmf of each problem (one linear programme for all of them).

    ``pr.p`` itself has the required marginals, so a cell :math:`c` outside its support
    :math:`S` can carry mass iff some direction :math:`d` with :math:`A d = 0` (:math:`A` the
    0/1 constraint matrix), :math:`d_j \ge 0` off :math:`S` and :math:`d_c > 0` exists
    (then :math:`p + \varepsilon d` is such a pmf for small :math:`\varepsilon > 0`;
    conversely :math:`d = x - p` for any such pmf :math:`x`). The programme

    .. math::

        \max \sum_{j \notin S} y_j \quad\text{subject to}\quad A d = 0,\quad
        0 \le y_j \le \min(d_j, 1)\ (j \notin S)

    (:math:`d` free on :math:`S`) has the indicator of those cells as its optimal :math:`y`:
    a cell that cannot carry mass has :math:`d_j = 0` in every feasible point, and if a cell
    that can had :math:`y_c < 1` at an optimum, adding a large multiple of its direction to
    :math:`d` would allow :math:`y_c = 1` and nothing else lower (the set of directions is a
    cone). So a cell is in the support iff :math:`y_j > 1/2`, a threshold far from the
    solver's tolerances. The programme has 0/1 coefficients and zero right-hand sides
    whatever the masses. (Programmes over the pmfs with the required marginals themselves have
    those marginals as right-hand sides: on a 4x4x4x4 Dirichlet(0.05) pmf, marginals from
    1e-16 to 0.2, HiGHS declared one infeasible and 37 cells that carry up to 1e-4 were left
    out, depending on the order of the states. The box programme
    :math:`\max \sum_{j \notin S} d_j`, :math:`|d| \le 1`, finds only some of the cells at
    a time and took 2-4 rounds.)

    The problems are solved together, as one programme with a block-diagonal constraint matrix
    and the sum of their objectives, whose optima are the optima of every block. Should the
    solver fail on it, the problems are solved one at a time; should it fail on one problem,
    every allowed cell of that problem is kept: a superset of the support only slows the fit
    down, a subset would change the answer."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    cells = [np.flatnonzero(pr.allowed) for pr in problems]
    inside = [pr.p[c] > 0 for pr, c in zip(problems, cells, strict=True)]
    todo = [i for i, s in enumerate(inside) if not s.all()]
    blocks = []
    for i in todo:
        pr, c = problems[i], cells[i]
        rows, offset = [], 0
        for g, t in zip(pr.groups, pr.targets, strict=True):
            rows.append(g[c] + offset)
            offset += len(t)
        outside = np.flatnonzero(~inside[i])
        # [A 0; -E I] (d, y): A d = 0, y_j - d_j <= 0 for the cells j outside p's support
        a_eq = sp.csr_matrix((np.ones(len(c) * len(pr.groups)),
                              (np.concatenate(rows), np.tile(np.arange(len(c)), len(pr.groups)))),
                             shape=(offset, len(c) + len(outside)))
        n_out = len(outside)
        a_ub = sp.csr_matrix((np.concatenate([-np.ones(n_out), np.ones(n_out)]),
                              (np.tile(np.arange(n_out), 2),
                               np.concatenate([outside, len(c) + np.arange(n_out)]))),
                             shape=(n_out, len(c) + n_out))
        lower = np.concatenate([np.where(inside[i], -np.inf, 0.0), np.zeros(n_out)])
        upper = np.concatenate([np.full(len(c), np.inf), np.ones(n_out)])
        blocks.append((a_eq, a_ub, lower, upper, len(c), n_out))
    support = list(inside)
    if todo:
        a_eq = sp.block_diag([b[0] for b in blocks], format="csr")
        a_ub = sp.block_diag([b[1] for b in blocks], format="csr")
        cost = np.concatenate([np.concatenate([np.zeros(b[4]), -np.ones(b[5])]) for b in blocks])
        res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), A_eq=a_eq,
                      b_eq=np.zeros(a_eq.shape[0]),
                      bounds=np.column_stack([np.concatenate([b[2] for b in blocks]),
                                              np.concatenate([b[3] for b in blocks])]),
                      method="highs")
        if res.status == 0:
            parts = np.split(res.x, np.cumsum([b[4] + b[5] for b in blocks])[:-1])
            for i, x, b in zip(todo, parts, blocks, strict=True):
                support[i] = inside[i].copy()
                support[i][~inside[i]] = x[b[4]:] > 0.5
        else:
            # the programme is feasible (d = y = 0) and bounded (y <= 1), so only a solver
            # failure gets here: the problems one at a time, and a single one keeps every
            # allowed cell
            for i in todo:
                support[i] = (_exact_support(problems[i])[cells[i]] if len(todo) > 1
                              else np.ones(len(cells[i]), dtype=bool))
    out = []
    for pr, c, s in zip(problems, cells, support, strict=True):
        mask = np.zeros_like(pr.allowed)
        mask[c[s]] = True
        out.append(mask)
    return out


def solve_maxent(problems: list[MaxEntProblem], tol: float, max_iter: int):
    """Maximum-entropy pmf of every problem.

    Parameters
    ----------
    problems : list of MaxEntProblem
    tol : float
        Stop when no constrained marginal moved by more than ``tol`` (absolute probability)
        during a full sweep.
    max_iter : int
        Most IPF sweeps in all (the second round hands slow problems to Newton early, and
        problems on which the dual then stalls get the rest of the budget); Newton's method on
        the dual takes at most ``min(max_iter, NEWTON_MAX_ITER)`` iterations per problem still
        open and per start, and so does the primal finish (:func:`primal_maxent`) where the
        dual one stops short of ``tol``. With
        ``max_iter <=`` :data:`FIRST_ROUND_SWEEPS` there is no second round, hence no exact
        support and no primal finish.

    Returns
    -------
    q : list of ndarray
        The maximum-entropy pmfs (flattened like each problem's ``p``).
    converged : bool
        Whether every problem met ``tol``.
    sweeps : int
        Sweeps used (first round plus final round, when one was needed).
    deviation : float
        The largest marginal deviation of the returned pmfs.
    newton : int
        The most Newton iterations (dual plus primal) any problem took (0: IPF sufficed).
    """
    if not problems:
        return [], True, 0, 0.0, 0
    # matrices of at most a few hundred rows: BLAS threads only cost (see pidkit._threads); on
    # a loaded 2-core machine a 4-source I_ccs call took 23 s with 2 OpenBLAS threads, 0.5 s
    # with 1
    with one_blas_thread():
        return _solve(problems, tol, max_iter)


def _solve(problems: list[MaxEntProblem], tol: float, max_iter: int):
    """:func:`solve_maxent` (with BLAS pinned to one thread)."""
    q, ok, sweeps, dev = _ipf(problems, tol, min(FIRST_ROUND_SWEEPS, max_iter))
    hard = np.flatnonzero(~ok)
    if hard.size and max_iter > FIRST_ROUND_SWEEPS:
        for i, support in zip(hard, _exact_supports([problems[i] for i in hard]), strict=True):
            problems[i].allowed = support
        # second round, in chunks: a problem stays while its last chunk predicts convergence
        # within HANDOVER_SWEEPS more sweeps (geometric rate), the others go to Newton
        active, start, previous = hard, None, np.full(hard.size, np.inf)
        budget = max_iter - FIRST_ROUND_SWEEPS
        while active.size and budget > 0:
            chunk = min(CHECK_SWEEPS, budget)
            q_a, ok_a, more, dev_a = _ipf([problems[i] for i in active], tol, chunk, start)
            for j, i in enumerate(active):
                q[i] = q_a[j]
            ok[active], dev[active] = ok_a, dev_a
            sweeps += more
            budget -= more
            with np.errstate(divide="ignore", invalid="ignore"):
                needed = chunk * np.log(tol / dev_a) / np.log(dev_a / previous)
            keep = ~ok_a & (dev_a < previous) & (needed <= HANDOVER_SWEEPS)
            keep |= ~ok_a & np.isinf(previous)  # first chunk on the new support: no rate yet
            active, previous = active[keep], dev_a[keep]
            start = [q[i] for i in active]
    newton = np.zeros(len(problems), dtype=int)
    for i in np.flatnonzero(~ok):
        q[i], ok[i], newton[i], dev[i] = newton_maxent(problems[i], q[i], tol,
                                                       min(max_iter, NEWTON_MAX_ITER))
    stalled = np.flatnonzero(~ok)
    if stalled.size and max_iter > FIRST_ROUND_SWEEPS:
        # the dual stalled from the handover iterate: the rest of the IPF budget, from the
        # uniform pmf on the support, gives it a later start (on a node of a 4-source Dirichlet
        # pmf it then converges; the primal finish from p held a cell at 1e-17 whose
        # maximum-entropy mass is 3.7e-10), and the primal finishes what is still open
        q_s, ok_s, more, dev_s = _ipf([problems[i] for i in stalled], tol,
                                      max(max_iter - sweeps, 1))
        sweeps += more
        for j, i in enumerate(stalled):
            q[i], ok[i], dev[i] = q_s[j], ok_s[j], dev_s[j]
            if not ok[i]:
                q[i], ok[i], iterations, dev[i] = newton_maxent(
                    problems[i], q[i], tol, min(max_iter, NEWTON_MAX_ITER))
                newton[i] += iterations
            if not ok[i]:
                finish, converged, iterations, deviation = primal_maxent(
                    problems[i], tol, min(max_iter, NEWTON_MAX_ITER))
                if converged:
                    q[i], ok[i], dev[i] = finish, True, deviation
                newton[i] += iterations
    return q, bool(ok.all()), sweeps, float(dev.max()), int(newton.max())


def _constraint_matrix(pr: MaxEntProblem, cells: np.ndarray) -> np.ndarray:
    """Dense 0/1 matrix (constraint cells x allowed cells): which marginal cell each cell is in."""
    rows = [np.equal.outer(np.arange(len(t)), g[cells]) for g, t
            in zip(pr.groups, pr.targets, strict=True)]
    return np.concatenate(rows).astype(float)


def _row_basis(a: np.ndarray) -> np.ndarray:
    """Indices of rows of ``a`` (0/1) that form a basis of its row space (pivoted QR)."""
    from scipy.linalg import qr

    r, pivots = qr(a.T, mode="r", pivoting=True, check_finite=False)
    diagonal = np.abs(np.diagonal(r))
    rank = int((diagonal > diagonal[0] * max(a.shape) * np.finfo(float).eps).sum())
    return np.sort(pivots[:rank])


def newton_maxent(pr: MaxEntProblem, q0: np.ndarray, tol: float, max_iter: int):
    r"""Maximum-entropy pmf of one problem by Newton's method on the convex dual, warm-started
    from a log-linear pmf ``q0`` on ``pr.allowed`` (an IPF iterate).

    With :math:`A` the constraint matrix and :math:`t` the target marginals, the dual is
    :math:`g(\theta) = \log \sum_x e^{(A^\top \theta)_x} - \theta^\top t`, minimised where the
    marginals of :math:`q_\theta \propto e^{A^\top \theta}` equal :math:`t`. The rows of
    :math:`A` are redundant (every constraint's rows sum to the vector of ones, and the
    constraints overlap); only a basis :math:`B` of its row space is kept (:func:`_row_basis`;
    the other marginals follow from these, for :math:`q` and for ``p`` alike). The Hessian
    :math:`A_B (\mathrm{diag}\, q - q q^\top) A_B^\top` is still singular along the
    multipliers that add a constant to :math:`A_B^\top \theta` (which leave :math:`q_\theta`
    unchanged), and the gradient :math:`A_B q - t_B` is orthogonal to them; the step solves the
    positive definite system :math:`A_B\, \mathrm{diag}(q)\, A_B^\top \delta = -(A_B q - t_B)`
    instead, whose solution is a Newton step plus such a constant, so gives the same
    :math:`q_\theta` (one Cholesky factorisation instead of the least-squares solution of the
    full, redundant system). The system is scaled to a unit diagonal, so that marginals of tiny
    mass keep their directions; where the factorisation fails (cells underflowing to zero), the
    least-squares solution is used. Backtracking on :math:`g`. Converges quadratically where
    IPF is slow (maximum-entropy pmfs with cells near zero). Stops when every constrained
    marginal is within ``tol`` of its target, or when the iterate has stalled: neither the
    marginal deviation halved nor the dual fell by more than its rounding during
    :data:`STALL_ITERATIONS` iterations (the log-linear iterate cannot resolve the pmf; see
    :func:`primal_maxent`).

    Returns
    -------
    q : ndarray
        The fitted pmf, flattened like ``pr.p`` (zero outside ``pr.allowed``).
    converged : bool
    iterations : int
    deviation : float
        The largest marginal deviation at the returned pmf.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    cells = np.flatnonzero(pr.allowed)
    a = _constraint_matrix(pr, cells)
    t = np.concatenate(pr.targets)
    basis = _row_basis(a)
    a_b, t_b = a[basis], t[basis]
    theta = np.linalg.lstsq(a_b.T, np.log(np.maximum(q0[cells], np.finfo(float).tiny)),
                            rcond=None)[0]

    def dual(theta):
        s = a_b.T @ theta
        top = s.max()
        log_z = top + np.log(np.exp(s - top).sum())
        return log_z - theta @ t_b, np.exp(s - log_z)

    value, q = dual(theta)
    deviation = float(np.abs(a @ q - t).max())
    history = [(value, deviation)]
    iterations = 0
    while deviation > tol and iterations < max_iter:
        iterations += 1
        grad = a_b @ q - t_b
        system = (a_b * q) @ a_b.T
        # Jacobi-scaled: a marginal of mass 1e-11 whose cells sit at 1e-40 (curvature 1e-40
        # next to 0.1) otherwise fell below the least-squares cut-off and its multiplier never
        # moved (100 iterations stuck at a deviation of 3.8e-11 on a 3x3x3x3 Dirichlet(0.05)
        # pmf; 12 iterations scaled)
        scale = np.sqrt(np.maximum(np.diagonal(system), np.finfo(float).tiny))
        system /= np.outer(scale, scale)
        try:
            step = -cho_solve(cho_factor(system, check_finite=False), grad / scale,
                              check_finite=False) / scale
        except LinAlgError:
            step = -np.linalg.lstsq(system, grad / scale, rcond=None)[0] / scale
        size = 1.0
        while True:
            new_value, new_q = dual(theta + size * step)
            new_deviation = float(np.abs(a @ new_q - t).max())
            # near the solution the dual's decrease falls below its rounding: then a step
            # that lowers the marginal deviation (the gradient) is accepted instead
            flat = abs(new_value - value) <= ROUNDING * (1.0 + abs(value))
            if (new_value <= value + 1e-4 * size * (grad @ step)
                    or (flat and new_deviation < deviation) or size < 1e-10):
                break
            size /= 2
        theta, value, q, deviation = theta + size * step, new_value, new_q, new_deviation
        history.append((value, deviation))
        if len(history) > STALL_ITERATIONS:
            old_value, old_deviation = history[-1 - STALL_ITERATIONS]
            if (deviation > old_deviation / 2
                    and value >= old_value - ROUNDING * (1.0 + abs(old_value))):
                break
    out = np.zeros(pr.p.shape)
    out[cells] = q
    return out, deviation <= tol, iterations, deviation


def _interior_direction(a: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
    r"""A direction :math:`d` with :math:`A d = 0` that is positive on every cell outside
    ``inside`` (``p``'s support), or None.

    One linear programme: maximise :math:`s` subject to :math:`A d = 0`,
    :math:`d_j \ge s` off ``inside`` and :math:`|d| \le 1`, which, like those of
    :func:`_exact_support`, has 0/1 coefficients and zero right-hand sides. On the exact support
    :math:`s^* > 0` (a sum of the support programmes' directions, suitably weighted, is
    positive on every cell they added); below :data:`SUPPORT_TOL`, or when the solver fails,
    None. The solution is projected onto the null space of :math:`A` to remove the solver's
    residual."""
    from scipy.optimize import linprog

    n_out = int((~inside).sum())
    n = a.shape[1]
    a_ub = np.zeros((n_out, n + 1))
    a_ub[np.arange(n_out), np.flatnonzero(~inside)] = -1.0
    a_ub[:, -1] = 1.0
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    bounds = np.column_stack([np.append(np.where(inside, -1.0, 0.0), 0.0), np.ones(n + 1)])
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(n_out),
                  A_eq=np.hstack([a, np.zeros((a.shape[0], 1))]), b_eq=np.zeros(a.shape[0]),
                  bounds=bounds, method="highs")
    if res.status != 0 or res.x[-1] <= SUPPORT_TOL:
        return None
    d = res.x[:n]
    return d - np.linalg.lstsq(a, a @ d, rcond=None)[0]


def _primal_direction(a: np.ndarray, t: np.ndarray, q: np.ndarray, free: np.ndarray):
    r"""Newton step of :func:`primal_maxent` at ``q`` (cells outside ``free`` held), the
    correction of the marginals' rounding drift, and the Newton decrement.

    With :math:`W = \mathrm{diag}(\sqrt{q})` (zero on held cells), :math:`r` is the residual of
    the least-squares projection of :math:`W \log q` onto the range of :math:`W A^\top`, and
    the step is :math:`\Delta = -W r = -Q(\log q - A^\top \nu)` for the fitted multipliers
    :math:`\nu`: the equality-constrained Newton step of :math:`f(q) = \sum q \log q` (Hessian
    :math:`Q^{-1}`; :math:`A \Delta = 0`, and the gradient's constant 1 lies in the range of
    :math:`A^\top`), whose decrement is
    :math:`\lambda = (\Delta^\top Q^{-1} \Delta)^{1/2} = \|r\|`. The correction is
    :math:`-W y` with :math:`y` the least-norm solution of :math:`A W y = A q - t` (the
    infeasible-start term of Boyd and Vandenberghe section 10.3). One SVD of :math:`W A^\top`
    with its columns scaled to unit norm gives both (a marginal cell of mass 1e-30 keeps its
    direction, as in :func:`newton_maxent`)."""
    w = np.where(free, np.sqrt(q), 0.0)
    scale = np.sqrt(a @ (w * w))  # root of the free mass in each marginal cell
    rows = scale > 0
    u, sv, vt = np.linalg.svd((a[rows].T * w[:, None]) / scale[rows], full_matrices=False)
    rank = sv > sv[0] * max(u.shape) * np.finfo(float).eps
    u, sv, vt = u[:, rank], sv[rank], vt[rank]
    g = w * np.log(q)
    r = g - u @ (u.T @ g)
    y = u @ ((vt @ ((a[rows] @ q - t[rows]) / scale[rows])) / sv)
    return -w * r, -w * y, float(np.linalg.norm(r))


def primal_maxent(pr: MaxEntProblem, tol: float, max_iter: int):
    r"""Maximum-entropy pmf of one problem by Newton's method on the primal, restricted to the
    pmfs with the required marginals (Boyd and Vandenberghe 2004, sections 10.2-10.3).

    Minimises :math:`f(q) = \sum_x q_x \log q_x` subject to :math:`A q = t` on the cells of
    ``pr.allowed`` (the exact support, :func:`_exact_support`), where :func:`newton_maxent`
    stalls: its log-linear iterate cannot move mass onto a cell outside ``p``'s support without
    moving cells of 1e-12 mass by relative amounts it cannot resolve, so the marginals stay
    1e-12..1e-8 off. Here every iterate keeps the marginals (to rounding) and only the entropy
    is improved.

    **Start.** ``p`` itself has the required marginals; where the support is larger than
    ``p``'s, :math:`q_0 = p + \varepsilon d` with :math:`d` from :func:`_interior_direction`
    (:math:`A d = 0`, :math:`d > 0` off ``p``'s support) and
    :math:`\varepsilon = \tfrac12 \min(1, \min_{d_j < 0} p_j / |d_j|)`, which is strictly
    positive on the support.

    **Step.** The Newton step :math:`\Delta` of :func:`_primal_direction`, cut to
    :data:`TO_BOUNDARY` of the distance to :math:`q = 0`, then halved until the Armijo
    condition :math:`\phi(s) \le \phi(0) - \alpha s \lambda^2` holds
    (:math:`\alpha` = :data:`ARMIJO`) for :math:`\phi(s) = L(q + s\Delta)`, with
    :math:`L(q) = f(q) - (A^\top \nu + 1)^\top q` the Lagrangian at the step's multipliers
    (equal to :math:`f` up to a constant on the pmfs with the required marginals). Since
    :math:`\log q_x - (A^\top \nu)_x = -\Delta_x / q_x`, with :math:`u_x = s\Delta_x / q_x`,

    .. math::

        \phi(s) - \phi(0) = -s\lambda^2 + \sum_x \bigl[s\Delta_x \log(1 + u_x)
        + q_x \bigl(\log(1 + u_x) - u_x\bigr)\bigr],

    which is free of the rounding of :math:`\log q` and of :math:`A \Delta`: evaluating
    :math:`f` itself, a rounding-level drift of the marginals times :math:`\log q` (1e-15)
    hides the gain of the last steps (:math:`\lambda^2 / 2`, 1e-20 and less) and the search
    fails there. After the step the correction of :func:`_primal_direction` restores the
    marginals where it keeps :math:`q > 0`.

    **Held cells.** A cell below :math:`\mathrm{tol} / (16\, n)` (``n`` cells) that blocks a
    full step (:math:`q_x + \Delta_x \le 0`) is held where it is: its maximum-entropy mass is
    smaller still (often 1e-40 or less, which cutting the steps to the boundary approaches only
    by a factor 100 per iteration, keeping every other cell to small steps meanwhile). The
    held cells carry less than ``tol / 16`` together and keep their marginals exact; the other
    cells are optimised with them held.

    **Converged** when, at the returned pmf, both

    .. math::

        \max_j |(A q)_j - t_j| \le \mathrm{tol}
        \quad\text{and}\quad
        \lambda(q) = \bigl(\Delta^\top \nabla^2 f(q)\, \Delta\bigr)^{1/2}
        = \Bigl(\sum_x \Delta_x^2 / q_x\Bigr)^{1/2} \le \mathrm{tol},

    the second over the cells not held (:math:`\Delta` the Newton step, :math:`\lambda` the
    Newton decrement): :math:`\lambda^2/2` is the entropy still to be gained according to the
    quadratic model, and no cell is predicted to move by more than
    :math:`|\Delta_x| \le \lambda \sqrt{q_x} \le \mathrm{tol}` (Boyd and Vandenberghe's
    algorithm 10.1 stops on :math:`\lambda^2/2 \le \epsilon`; here
    :math:`\epsilon = \mathrm{tol}^2/2`). Newton's method converges quadratically near the
    optimum, so the decrement falls from about 1e-8 to below 1e-13 in one or two iterations;
    its rounding floor is about 1e-15. The fit stops unconverged after ``max_iter`` iterations
    or when the line search reaches :data:`MIN_STEP`; where no start can be built (the
    interior programme fails) it returns unconverged at once.

    Parameters
    ----------
    pr : MaxEntProblem
        With ``allowed`` the exact support.
    tol : float
        Tolerance on the marginals (absolute probability) and on the Newton decrement.
    max_iter : int
        Most Newton iterations.

    Returns
    -------
    q : ndarray
        The fitted pmf, flattened like ``pr.p`` (zero outside ``pr.allowed``).
    converged : bool
    iterations : int
    deviation : float
        The largest marginal deviation at the returned pmf.
    """
    cells = np.flatnonzero(pr.allowed)
    a = _constraint_matrix(pr, cells)
    t = np.concatenate(pr.targets)
    q = pr.p[cells]
    inside = q > 0
    if not inside.all():
        d = _interior_direction(a, inside)
        if d is None:
            return pr.p.copy(), False, 0, np.inf
        shrink = inside & (d < 0)
        q = q + 0.5 * float(np.min(q[shrink] / -d[shrink], initial=1.0)) * d
        if not (q > 0).all():
            return pr.p.copy(), False, 0, np.inf
    free = np.ones(len(q), dtype=bool)
    floor = tol / (16 * pr.p.size)
    iterations = 0
    while True:
        step, correction, decrement = _primal_direction(a, t, q, free)
        blocking = free & (q < floor) & (q + step <= 0)
        if blocking.any():
            free &= ~blocking
            continue
        deviation = float(np.abs(a @ q - t).max())
        converged = deviation <= tol and decrement <= tol
        if converged or iterations == max_iter:
            break
        iterations += 1
        shrink = step < 0
        size = min(1.0, TO_BOUNDARY * float(np.min(q[shrink] / -step[shrink], initial=np.inf)))
        while size >= MIN_STEP:
            x = size * step / q
            change = -size * decrement ** 2 + float(
                np.sum(size * step * np.log1p(x) + q * (np.log1p(x) - x)))
            if change <= -ARMIJO * size * decrement ** 2:
                break
            size /= 2
        if size < MIN_STEP:
            break
        q = q + size * step
        if (q + correction > 0).all():
            q += correction
    out = np.zeros(pr.p.shape)
    out[cells] = q
    return out, converged, iterations, deviation
