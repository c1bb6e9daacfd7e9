r"""BROJA for three sources: the maximum-entropy trivariate decomposition (Chicharro 2017;
Makkeh, Chicharro, Theis and Vicente 2019), all 18 atoms, each with a proven bracket.

**Definition.** For a target :math:`T` and sources :math:`X_0, X_1, X_2`, Chicharro (2017)
extends the bivariate BROJA measure by maximum entropy: the information not determined by the
target-source marginals is synergy. With

.. math::

    \Delta_P = \{Q : Q(T, X_i) = P(T, X_i),\ i = 0, 1, 2\},\qquad
    M_S = \min_{Q \in \Delta_P} I_Q(T; X_S)\quad (S \subseteq \{0,1,2\}),

the estimator MaxEnt3D_Pid (Makkeh et al. 2019) solves the four convex programs
:math:`\min_{\Delta_P} -H_Q(T \mid X_0 X_1 X_2)` and :math:`\min_{\Delta_P} -H_Q(T \mid X_i X_j)`
(the last three are the bivariate BROJA programs of the pairs, since :math:`X_k` enters
:math:`\Delta_P` only through :math:`Q(T, X_k)`) and returns eight sums of atoms of the
Williams-Beer lattice (labels ``{i}``, ``{i}{j:k}`` ...):

.. math::

    \mathrm{CI} &= I(T; X_0X_1X_2) - M_{012}
        \quad\text{(the eight atoms not below any single source)},\\
    \mathrm{UI}(T; X_i \setminus X_j, X_k) &= M_{012} - M_{jk}
        = \{i\} + \{i\}\{j{:}k\},\\
    \mathrm{UI}(T; X_i, X_j \setminus X_k) &= M_{ik} + M_{jk} - M_{012} - I(T;X_k)
        = \{i\}\{j\},\\
    \mathrm{SI}(T; X_0, X_1, X_2) &= \textstyle\sum_i I(T;X_i) - \sum_{i<j} M_{ij} + M_{012}
        = \{0\}\{1\}\{2\},

the union-information reading :math:`M_S = \sum` of the atoms below some :math:`\{i\}`,
:math:`i \in S`. The paper's hierarchy of bivariate and trivariate decompositions of coarse
grainings of the sources then separates the remaining atoms (Makkeh et al. 2019, the
"finer quantities"; the same steps as ``testing/test_trivariate_finer_parts.py`` of the
MAXENT3D_PID repository):

- ``{i}`` is the bivariate BROJA unique information of :math:`X_i` with respect to the
  composite source :math:`(X_j, X_k)`, and ``{i}{j:k}`` = :math:`M_{012} - M_{jk} - \{i\}`;
- the synergy atoms come from the synergies of four more systems: the bivariate BROJA
  synergy of :math:`((X_i X_j), X_k)`, :math:`\{0{:}1{:}2\} + \{i{:}k\} + \{j{:}k\} +
  \{i{:}k\}\{j{:}k\}`; that of :math:`((X_iX_j), (X_iX_k))`, :math:`\{0{:}1{:}2\} +
  \{j{:}k\}`; and the trivariate maximum-entropy synergy of the three pairs
  :math:`((X_0X_1), (X_0X_2), (X_1X_2))`, :math:`\{0{:}1{:}2\}` (a program over composite
  variables with the product alphabet, as the estimator treats them); ``{0:1}{0:2}{1:2}`` is
  :math:`\mathrm{CI}` minus the other seven.

So every atom is determined: 2 trivariate maximum-entropy programs and 9 bivariate BROJA
programs. With two sources the same construction is the bivariate BROJA decomposition, and a
constant third source gives the bivariate atoms with every atom naming it zero.

**Certificate.** Each program is solved with a proven bracket on its optimum: the bivariate ones
by :func:`pidkit.discrete.broja.compute` (certified gap on the unique information), the two
trivariate ones by :func:`._three_maxent.solve` (a feasible dual point for the lower bound, an
exactly feasible primal point for the upper bound; proof there). Every atom is an affine
function of the programs' optima with coefficients :math:`\pm 1` (kept in simplified form, so
that no program is counted twice), and interval arithmetic on it gives the atom a proven
bracket: ``solver.parts["lower"]`` and ``solver.parts["upper"]`` hold them, and
``solver.certificate`` is the widest one (its ``gap`` bounds the error of every atom). The
reported atoms use the primal (upper) values of the trivariate programs and the reported
bivariate values, as the bivariate solver does. ``tol`` is the gap asked of each program; an
atom's bracket is at most the sum of the gaps of the programs it involves (at most eight,
for ``{0:1}{0:2}{1:2}``).

**Signs.** Non-negative by definition: ``{i}`` (a bivariate BROJA unique information), the
synergy ``{0:1:2}`` and the sum of the eight synergy atoms ``CI`` (maximum-entropy synergies:
``p`` is feasible). The other atoms are differences of the programs' optima and are reported
as computed, without clipping: on random pmfs (Dirichlet(0.5), alphabets of 2 and 3, 60
draws) 13 had an atom below -1e-8 bits, the lowest -0.038 bits, among ``{0}{1}{2}``,
``{i}{j:k}``, ``{i:k}{j:k}`` and ``{0:1}{0:2}{1:2}``; the independent solve in
``tests/_broja3_reference.py`` gives the same values, so they belong to the definition, not to
the solver.

References
----------
D. Chicharro, "Quantifying multivariate redundancy with maximum entropy decompositions of
mutual information", arXiv:1708.03845 (2017).
A. Makkeh, D. Chicharro, D. O. Theis, R. Vicente, "MAXENT3D_PID: An estimator of the
maximum-entropy trivariate partial information decomposition", Entropy 21(9), 862 (2019).
N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
Entropy 16, 2161 (2014).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations, permutations

import numpy as np

from ..._backend import NUMPY
from ...errors import ConvergenceWarning, caller_stacklevel
from ...information import _entropy, _marginal, _mutual_information
from ...lattice import Node, lattice, node_label
from ...result import AtomMap, Certificate, SolverInfo
from . import _three_maxent
from ._core import clip_unique, information

__all__ = ["compute_three"]

_LN2 = math.log(2.0)

#: The bivariate solver's signature: ``(q, tol=, max_iter=) -> (atoms in nats, SolverInfo)``.
Bivariate = Callable[..., tuple[Mapping[Node, float], SolverInfo]]


@dataclass(frozen=True)
class _Affine:
    """``const + sum_j coef[j] * f_j``: an affine function (nats) of the programs' optima
    ``f_j``, kept symbolic so that each atom's bracket is exact interval arithmetic on its
    simplified form (no program counted twice)."""

    const: float
    coef: dict[str, float]

    def __add__(self, other: _Affine | float) -> _Affine:
        if isinstance(other, _Affine):
            coef = dict(self.coef)
            for name, c in other.coef.items():
                coef[name] = coef.get(name, 0.0) + c
            return _Affine(self.const + other.const, coef)
        return _Affine(self.const + other, self.coef)

    __radd__ = __add__

    def __neg__(self) -> _Affine:
        return _Affine(-self.const, {name: -c for name, c in self.coef.items()})

    def __sub__(self, other: _Affine | float) -> _Affine:
        return self + (-other)

    def __rsub__(self, other: float) -> _Affine:
        return (-self) + other

    def evaluate(self, programs: dict[str, tuple[float, float, float]]) -> tuple[float, ...]:
        """``(value, lower, upper)`` from each program's ``(value, lower, upper)``."""
        value = lower = upper = self.const
        for name, c in self.coef.items():
            v, lo, hi = programs[name]
            value += c * v
            lower += c * (lo if c > 0 else hi)
            upper += c * (hi if c > 0 else lo)
        return value, lower, upper


def _node(*parts: tuple[int, ...]) -> Node:
    return tuple(sorted(tuple(sorted(part)) for part in parts))


def _coarse(p: np.ndarray, groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """``q[t, g_1, ..., g_m]`` of ``p[t, x0, x1, x2]``: each group of sources (they may
    overlap) one composite variable with the product alphabet, unused sources summed out."""
    used = sorted({i for g in groups for i in g})
    sub = _marginal(p, (0, *(i + 1 for i in used)))
    sizes = sub.shape[1:]
    grid = np.indices(sizes)
    flat = [np.ravel_multi_index([grid[used.index(i)] for i in g],
                                 [sizes[used.index(i)] for i in g]) for g in groups]
    out = np.zeros((p.shape[0], *(math.prod(sizes[used.index(i)] for i in g) for g in groups)))
    out[(slice(None), *flat)] = sub  # injective: the groups cover every used source
    return out


class _Run:
    """Solves the programs of one pmf; keeps each optimum's ``(value, lower, upper)`` (nats)
    and the iterations used."""

    def __init__(self, p: np.ndarray, tol: float, max_iter: int, bivariate: Bivariate):
        self.p, self.tol, self.max_iter, self.bivariate = p, tol, max_iter, bivariate
        self.iterations = 0
        self.programs: dict[str, tuple[float, float, float]] = {}

    def _record(self, name: str, value: float, lower: float, upper: float) -> _Affine:
        self.programs[name] = (value, min(lower, value), max(upper, value))
        return _Affine(0.0, {name: 1.0})

    def unique(self, first: tuple[int, ...], second: tuple[int, ...]) -> _Affine:
        r"""Bivariate BROJA ``Uni(T: first \ second)`` of two (composite) sources; without a
        solve when non-negativity alone pins it within ``tol`` (e.g. a source independent of
        the target; :func:`._core.clip_unique` gives the interval)."""
        name = f"broja({_name(first)}, {_name(second)})"
        if name in self.programs:                  # solved already (a maxent program's bound)
            return _Affine(0.0, {name: 1.0})
        q = _coarse(self.p, (first, second))
        info = information(q[None], NUMPY)
        _, lo, hi = (float(x[0]) for x in clip_unique(info.i_t, info, NUMPY))
        if hi - lo <= self.tol * _LN2:
            return self._record(name, lo, lo, hi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported once, by the caller
            atoms, info = self.bivariate(q, tol=self.tol, max_iter=self.max_iter)
        self.iterations += info.iterations or 0
        cert = info.certificate
        return self._record(name, atoms[((0,),)], cert.lower, cert.upper)

    def maxent(self, groups: tuple[tuple[int, ...], ...]) -> _Affine:
        """:math:`\\min_{\\Delta_P} I_Q(T; A, B, C)` of three (composite) sources, its bracket
        started from the bivariate programs of its pairs of sources (solved here if not yet,
        and kept): :math:`f^*_{ABC} \\ge f^*_{AB} =
        \\mathrm{Uni}(T{:}A \\setminus B) - H(T \\mid B)` (:func:`._three_maxent.solve`). On
        nearly deterministic programs the maxent iteration's own dual bound can stay far off
        (a 3 x 6 x 6 x 9 program of a Dirichlet(0.01) pmf: 2.7e-4 bits open at max_iter
        without this bound, 2.4e-7 with it, until the iteration's starting masses were
        floored; it now certifies that program by itself, and this bound costs no solve)."""
        q = _coarse(self.p, groups)
        lower = -math.inf
        for first, second in combinations(groups, 2):
            self.unique(first, second)
            pair = _coarse(self.p, (second,))                # p[t, b]
            h_t_given_b = _entropy(pair.sum(axis=1)) - _mutual_information(pair, (0,), (1,))
            uni_lower = self.programs[f"broja({_name(first)}, {_name(second)})"][1]
            lower = max(lower, uni_lower - h_t_given_b)
        out = _three_maxent.solve(q, self.tol * _LN2, self.max_iter, lower)
        self.iterations += out.iterations
        h_t = _entropy(q.sum(axis=(1, 2, 3)))
        return self._record(f"maxent({', '.join(_name(g) for g in groups)})", h_t + out.upper,
                            h_t + out.lower, h_t + out.upper)

    @property
    def gaps_bits(self) -> dict[str, float]:
        """The certified gap of each program, in bits."""
        return {name: (hi - lo) / _LN2 for name, (_, lo, hi) in self.programs.items()}


def _name(group: tuple[int, ...]) -> str:
    return "X" + "".join(str(i) for i in group) if len(group) == 1 else \
        "(" + ",".join(f"X{i}" for i in group) + ")"


def _atoms(run: _Run) -> dict[Node, _Affine]:
    """The 18 atoms of the hierarchy (module docstring), as affine functions of the programs."""
    p = run.p
    i1 = [_mutual_information(p, (0,), (i + 1,)) for i in range(3)]
    i3 = _mutual_information(p, (0,), (1, 2, 3))

    def i2(i: int, j: int) -> float:
        return _mutual_information(p, (0,), (i + 1, j + 1))

    union = {}
    for i, j in ((0, 1), (0, 2), (1, 2)):  # M_ij = I(T;X_j) + Uni(T: X_i \ X_j)
        union[i, j] = union[j, i] = i1[j] + run.unique((i,), (j,))
    m3 = run.maxent(((0,), (1,), (2,)))
    top = i3 - run.maxent(((0, 1), (0, 2), (1, 2)))
    single = {i: run.unique((i,), tuple(k for k in range(3) if k != i)) for i in range(3)}
    atoms: dict[Node, _Affine] = {
        _node((0,), (1,), (2,)): i1[0] + i1[1] + i1[2] - union[0, 1] - union[0, 2]
        - union[1, 2] + m3,
        _node((0, 1, 2)): top,
    }
    for i, j, k in permutations(range(3)):
        if i < j:
            atoms[_node((i,), (j,))] = union[i, k] + union[j, k] - m3 - i1[k]
        if j < k:
            atoms[_node((i,),)] = single[i]
            atoms[_node((i,), (j, k))] = m3 - union[j, k] - single[i]
            # Syn((X_i X_j), (X_i X_k)) = {0:1:2} + {j:k}
            shared = i3 - i2(i, k) - run.unique(_node((i, j))[0], _node((i, k))[0])
            atoms[_node((j, k))] = shared - top
    for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
        # Syn((X_i X_j), X_k) = {0:1:2} + {i:k} + {j:k} + {i:k}{j:k}
        syn = i3 - i2(i, j) - single[k]
        atoms[_node((i, k), (j, k))] = (syn - top - atoms[_node((i, k))]
                                        - atoms[_node((j, k))])
    rest = i3 - m3  # CI = the eight atoms not below a single source
    for node, value in atoms.items():
        if all(len(part) > 1 for part in node):
            rest = rest - value
    atoms[_node((0, 1), (0, 2), (1, 2))] = rest
    return atoms


def compute_three(p: np.ndarray, tol: float, max_iter: int, bivariate: Bivariate
                  ) -> tuple[dict[Node, float], SolverInfo]:
    """Maximum-entropy BROJA atoms (nats) of ``p[t, x0, x1, x2]`` with proven brackets.

    Parameters
    ----------
    p : numpy.ndarray
        Normalised float64 pmf, target on axis 0, one source per other axis.
    tol : float
        Certified gap asked of each of the 11 convex programs, in bits.
    max_iter : int
        Most interior-point iterations per program.
    bivariate : callable
        The certified bivariate solver, ``bivariate(q, tol=, max_iter=) -> (atoms, SolverInfo)``
        (:func:`pidkit.discrete.broja.compute`; passed in, so that this module does not import
        the one that dispatches to it).

    Returns
    -------
    atoms : dict
        Every node of :func:`pidkit.lattice.lattice` (3) -> atom in nats.
    info : SolverInfo
        ``certificate``: the widest atom bracket (its gap bounds every atom's error);
        ``parts["lower"]``, ``parts["upper"]``: every atom's bracket;
        ``details["program_gaps_bits"]``: the certified gap of each program.
    """
    run = _Run(p, tol, max_iter, bivariate)
    affine = _atoms(run)
    nodes = lattice(3).nodes
    brackets = {n: affine[n].evaluate(run.programs) for n in nodes}
    widest = max(nodes, key=lambda n: brackets[n][2] - brackets[n][1])
    cert = Certificate(f"atoms[{node_label(widest)}]", brackets[widest][1], brackets[widest][2])
    gaps = run.gaps_bits
    converged = all(gap <= tol for gap in gaps.values())
    if not converged:
        warnings.warn(
            f"BROJA (three sources): after max_iter={max_iter} interior-point iterations a "
            f"program's certified gap is {max(gaps.values()):.3g} bits > tol={tol:g}; every "
            f"atom is within its bracket in solver.parts. Raise max_iter (e.g. "
            f"max_iter={4 * max_iter}) or loosen tol.", ConvergenceWarning,
            stacklevel=caller_stacklevel())
    status = ("optimal" if run.iterations else "closed_form") if converged else "max_iter"
    info = SolverInfo(
        status, converged, run.iterations, cert,
        details={"tol_bits": tol, "max_iter": max_iter,
                 "algorithm": "maximum-entropy hierarchy: 2 trivariate programs (primal-dual "
                              "interior point) and 9 bivariate BROJA programs",
                 "program_gaps_bits": gaps},
        parts={"lower": AtomMap({n: brackets[n][1] for n in nodes}),
               "upper": AtomMap({n: brackets[n][2] for n in nodes})})
    return {n: brackets[n][0] for n in nodes}, info
