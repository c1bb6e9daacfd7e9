r"""An independent reference for the maximum-entropy fits of I_ccs and I_dep: Newton's method on
the dual, in 50-digit arithmetic (mpmath). Nothing here is shared with
:mod:`pidkit.discrete._maxent` but the problem's data.

On a support :math:`S` the maximum-entropy pmf with marginals :math:`A q = t` is
:math:`q_\theta \propto e^{M^\top \theta}` at the minimiser of the convex dual

.. math::

    g(\theta) = \log \sum_{x \in S} e^{(M^\top \theta)_x} - \theta^\top t_M,

with :math:`M` rows of :math:`A` that, with the all-ones row, form a basis of its row space
(so the dual is strictly convex and its Hessian invertible), and :math:`t_M` their targets,
computed from ``p`` in 50 digits. The float64 dual of pidkit stalls on sparse pmfs because the
marginals it must match to 1e-13 are sums of cells of 1e-12 mass that it moves by relative
amounts below its rounding; with 50 digits the same iteration converges quadratically, and it
stops when the marginals match to 1e-35. Any start converges to the same minimiser (the dual is
strictly convex); a start near it only saves iterations.
"""

from __future__ import annotations

import mpmath
import numpy as np

DIGITS = 50


def _basis_rows(a: np.ndarray) -> list[int]:
    """Rows of the 0/1 matrix ``a`` that extend the all-ones row to a basis of its row space."""
    chosen: list[int] = []
    basis = np.ones((1, a.shape[1]))
    for i, row in enumerate(a):
        trial = np.vstack([basis, row])
        if np.linalg.matrix_rank(trial) > len(basis):
            basis = trial
            chosen.append(i)
    return chosen


def reference_maxent(p: np.ndarray, groups: list[np.ndarray], support: np.ndarray,
                     start: np.ndarray | None = None, max_iter: int = 200) -> np.ndarray:
    """Maximum-entropy pmf on ``support`` with the marginals of ``p`` over each of ``groups``
    (flattened cells; ``groups[j][x]`` is the marginal cell of cell ``x`` in constraint ``j``),
    as float64. ``start``: an optional positive pmf on ``support`` whose log-linear fit starts
    the iteration (from the uniform pmf otherwise)."""
    cells = np.flatnonzero(support)
    a = np.concatenate([np.equal.outer(np.arange(g.max() + 1), g[cells]) for g in groups])
    a = a[a.any(axis=1)].astype(float)
    m = a[_basis_rows(a)]
    with mpmath.workdps(DIGITS):
        p_mp = [mpmath.mpf(float(v)) for v in p[cells]]
        t = [mpmath.fsum(pv for pv, on in zip(p_mp, row, strict=True) if on) for row in m]
        log_start = np.log(start[cells]) if start is not None else np.zeros(len(cells))
        theta = [mpmath.mpf(float(v)) for v in np.linalg.lstsq(m.T, log_start, rcond=None)[0]]
        mt = mpmath.matrix(m.T.tolist())

        def evaluate(theta):
            s = mt * mpmath.matrix(theta)
            top = max(s)
            log_z = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in s))
            q = [mpmath.exp(v - log_z) for v in s]
            value = log_z - mpmath.fsum(th * tv for th, tv in zip(theta, t, strict=True))
            return value, q

        rows = [np.flatnonzero(row) for row in m]
        pairs = [[np.flatnonzero(row_i * row_j) for row_j in m] for row_i in m]
        value, q = evaluate(theta)
        for _ in range(max_iter):
            marg = [mpmath.fsum(q[x] for x in row) for row in rows]
            grad = [mv - tv for mv, tv in zip(marg, t, strict=True)]
            if max(abs(v) for v in grad) < mpmath.mpf(10) ** -35:
                break
            hess = mpmath.matrix(len(t), len(t))
            for i, row in enumerate(pairs):
                for j, both in enumerate(row[:i + 1]):
                    hess[i, j] = hess[j, i] = mpmath.fsum(q[x] for x in both) - marg[i] * marg[j]
            step = mpmath.lu_solve(hess, mpmath.matrix([-v for v in grad]))
            slope = mpmath.fsum(g * s for g, s in zip(grad, step, strict=True))
            size = mpmath.mpf(1)
            while True:
                trial = [th + size * s for th, s in zip(theta, step, strict=True)]
                new_value, new_q = evaluate(trial)
                if new_value <= value + size * slope / 4 or size < mpmath.mpf(10) ** -20:
                    break
                size /= 2
            theta, value, q = trial, new_value, new_q
        else:
            raise RuntimeError("the 50-digit dual Newton did not converge")
        out = np.zeros(p.shape)
        out[cells] = [float(v) for v in q]
    return out
