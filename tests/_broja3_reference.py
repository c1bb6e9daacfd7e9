"""An independent reference for three-source BROJA (the maximum-entropy decomposition of
Chicharro 2017 as estimated by MaxEnt3D_Pid, Makkeh et al. 2019): every convex program handed
to cvxpy with an exponential-cone solver (Clarabel, tight tolerances), and the 18 atoms
recovered by solving the lattice identities those programs satisfy as one linear system, with
the Williams-Beer order written out here. Nothing is shared with pidkit's solver or with its
closed-form assembly of the atoms.

Programs (nats), for (possibly composite) sources ``A_1, ..., A_m`` of ``q[t, a_1, ...]``:

.. math::

    U(A_1, \\dots, A_m) = \\min_{Q:\\ Q(t, a_i) = P(t, a_i)} I_Q(T; A_1 \\dots A_m),

the union information of the sources: the sum of the atoms below some ``A_i``. Bivariate BROJA
is the case ``m = 2`` (its synergy is ``I(T; A_1 A_2) - U``, its unique information of ``A_1``
is ``U - I(T; A_2)``).
"""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from _broja_reference import CLARABEL_TIGHT


def _entropy(x: np.ndarray) -> float:
    """Entropy in nats (``_broja_reference``'s is in bits)."""
    x = np.asarray(x).ravel()
    x = x[x > 0]
    return float(-(x * np.log(x)).sum())


def coarse(p: np.ndarray, groups: list[tuple[int, ...]]) -> np.ndarray:
    """``q[t, g_1, ..., g_m]``: each group of sources of ``p[t, x0, x1, x2]`` one variable
    (values numbered in order of first appearance), by a loop over the outcomes."""
    codes: list[dict[tuple[int, ...], int]] = [{} for _ in groups]
    cells = []
    for idx in itertools.product(*(range(n) for n in p.shape)):
        if p[idx] == 0:
            continue
        x = idx[1:]
        key = [codes[g].setdefault(tuple(x[i] for i in group), len(codes[g]))
               for g, group in enumerate(groups)]
        cells.append((idx[0], *key, p[idx]))
    q = np.zeros((p.shape[0], *(max(len(c), 1) for c in codes)))
    for t, *key, value in cells:
        q[(t, *key)] += value
    return q


def union_information(q: np.ndarray) -> float:
    """``min I_Q(T; A_1 ... A_m)`` over the pmfs with the ``(T, A_i)`` marginals of ``q``."""
    nt, *sizes = q.shape
    margs = [q.sum(axis=tuple(a for a in range(1, q.ndim) if a != i)) for i in range(1, q.ndim)]
    p_t = q.sum(axis=tuple(range(1, q.ndim)))
    cells = [c for c in itertools.product(*(range(n) for n in q.shape))
             if all(margs[i][c[0], c[i + 1]] > 0 for i in range(len(sizes)))]
    n = len(cells)
    cols = np.arange(n)
    arr = np.array(cells)
    blocks = np.ravel_multi_index(arr[:, 1:].T, sizes)
    block_m = sp.csr_matrix((np.ones(n), (blocks, cols)), shape=(int(np.prod(sizes)), n))
    x = cp.Variable(n, nonneg=True)
    constraints = []
    for i, size in enumerate(sizes):
        rows = arr[:, 0] * size + arr[:, i + 1]
        m = sp.csr_matrix((np.ones(n), (rows, cols)), shape=(nt * size, n))
        constraints.append(m @ x == margs[i].ravel())
    objective = cp.sum(cp.rel_entr(x, block_m.T @ (block_m @ x)))
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.CLARABEL, **CLARABEL_TIGHT)
    return _entropy(p_t) + problem.value


def mutual_information(q: np.ndarray) -> float:
    """``I(T; everything else)`` of ``q[t, ...]`` (nats)."""
    return _entropy(q.sum(axis=tuple(range(1, q.ndim)))) + _entropy(q.sum(axis=0)) - _entropy(q)


def _below(alpha: tuple, beta: tuple) -> bool:
    """Williams-Beer order: every member of ``beta`` contains a member of ``alpha``."""
    return all(any(set(a) <= set(b) for a in alpha) for b in beta)


def reference_atoms(p: np.ndarray, nodes: list[tuple]) -> dict[tuple, float]:
    """The 18 atoms (bits) of ``p[t, x0, x1, x2]`` ordered like ``nodes``: each program's value
    is the sum of the atoms below some of its sources (those not below any are synergy), so
    18 programs give 18 linear equations in the atoms."""
    rows, values = [], []

    def union_row(sources: list[tuple[int, ...]]) -> list[float]:
        return [float(any(_below(node, (s,)) for s in sources)) for node in nodes]

    total = mutual_information(coarse(p, [(0, 1, 2)]))
    rows.append([1.0] * len(nodes))
    values.append(total)
    for sources in ([(0,)], [(1,)], [(2,)], [(0,), (1,)], [(0,), (2,)], [(1,), (2,)],
                    [(0,), (1,), (2,)], [(0,), (1, 2)], [(1,), (0, 2)], [(2,), (0, 1)],
                    [(0, 1), (0, 2)], [(0, 1), (1, 2)], [(0, 2), (1, 2)],
                    [(0, 1), (0, 2), (1, 2)]):
        q = coarse(p, sources)
        value = mutual_information(q) if len(sources) == 1 else union_information(q)
        rows.append(union_row(sources))
        values.append(value)
    # the unique information of X_i against (X_j, X_k): U(X_i, X_jX_k) - I(T; X_jX_k)
    for i in range(3):
        others = tuple(k for k in range(3) if k != i)
        q = coarse(p, [(i,), others])
        unique = union_information(q) - mutual_information(coarse(p, [others]))
        rows.append([float(_below(node, ((i,),)) and not _below(node, (others,)))
                     for node in nodes])
        values.append(unique)
    a = np.array(rows)
    atoms = np.linalg.lstsq(a, np.array(values), rcond=None)[0]
    assert np.linalg.matrix_rank(a) == len(nodes)
    return dict(zip(nodes, (atoms / np.log(2)).tolist(), strict=True))


def maxent_optimum(q: np.ndarray) -> float:
    """``min_{Delta_P} -H_Q(T | A, B, C)`` (nats) of ``q[t, a, b, c]``."""
    return union_information(q) - _entropy(q.sum(axis=(1, 2, 3)))
