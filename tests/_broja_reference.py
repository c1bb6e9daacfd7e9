"""An independent reference for the BROJA tests: the textbook convex program handed to cvxpy
with an exponential-cone solver (Clarabel, tight tolerances). Nothing here is shared with
pidkit's solver.

.. math::

    \\min_{Q \\ge 0} \\sum_{y,t,s} q(y,t,s) \\ln \\frac{q(y,t,s)}{q(t,s)}
    \\ \\text{s.t.}\\ Q(y,t) = P(y,t),\\ Q(y,s) = P(y,s);\\qquad
    \\mathrm{Uni}(Y{:}T\\setminus S) = H_P(Y|S) + \\text{optimum}.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

CLARABEL_TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                  "tol_ktratio": 1e-10, "max_iter": 500}


def _entropy(x: np.ndarray) -> float:
    x = x[x > 0]
    return float(-(x * np.log2(x)).sum())


def reference_unique(p: np.ndarray) -> float:
    """``Uni(Y:T\\S)`` in bits of ``p[y, t, s]`` from cvxpy + Clarabel."""
    ny, nt, ns = p.shape
    p_yt, p_ys = p.sum(axis=2), p.sum(axis=1)
    cells = [(y, t, s) for y in range(ny) for t in range(nt) for s in range(ns)
             if p_yt[y, t] > 0 and p_ys[y, s] > 0]
    n = len(cells)
    col = np.arange(n)
    y_, t_, s_ = (np.array(v) for v in zip(*cells, strict=True))
    m_yt = sp.csr_matrix((np.ones(n), (y_ * nt + t_, col)), shape=(ny * nt, n))
    m_ys = sp.csr_matrix((np.ones(n), (y_ * ns + s_, col)), shape=(ny * ns, n))
    m_ts = sp.csr_matrix((np.ones(n), (t_ * ns + s_, col)), shape=(nt * ns, n))
    q = cp.Variable(n, nonneg=True)
    objective = cp.sum(cp.rel_entr(q, m_ts.T @ (m_ts @ q)))
    problem = cp.Problem(cp.Minimize(objective),
                         [m_yt @ q == p_yt.ravel(), m_ys @ q == p_ys.ravel()])
    problem.solve(solver=cp.CLARABEL, **CLARABEL_TIGHT)
    h_y_given_s = _entropy(p_ys.ravel()) - _entropy(p_ys.sum(axis=0))
    return h_y_given_s + problem.value / np.log(2)


def information_terms(p: np.ndarray) -> tuple[float, float, float]:
    """``I(Y;T)``, ``I(Y;S)``, ``I(Y;T,S)`` in bits of ``p[y, t, s]``."""
    h_y = _entropy(p.sum(axis=(1, 2)))
    i_t = h_y + _entropy(p.sum(axis=(0, 2))) - _entropy(p.sum(axis=2).ravel())
    i_s = h_y + _entropy(p.sum(axis=(0, 1))) - _entropy(p.sum(axis=1).ravel())
    i_ts = h_y + _entropy(p.sum(axis=0).ravel()) - _entropy(p.ravel())
    return i_t, i_s, i_ts


def random_pmf(rng: np.random.Generator, shape: tuple[int, ...], sparsity: float = 0.0):
    """Dirichlet(1) pmf of ``shape``; with ``sparsity`` > 0 that fraction of cells is zeroed."""
    p = rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape)
    if sparsity > 0:
        p[rng.random(shape) < sparsity] = 0.0
        if p.sum() == 0:
            p.flat[0] = 1.0
    return p / p.sum()
