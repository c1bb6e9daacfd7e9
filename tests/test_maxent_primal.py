"""The primal finish of the maximum-entropy fits of I_ccs and I_dep
(:func:`pidkit.discrete._maxent.primal_maxent`).

On sparse pmfs (Dirichlet(0.05) over 2x2x2x2x2 and 2x2x2x2) Newton's method on the dual stalled
with marginal deviations of 1e-12..8e-9 (a ConvergenceWarning after 10,000 sweeps and 100 Newton
iterations): the pmfs with the required marginals form a polytope of dimension 1-3 and width
~1e-12 around ``p``, and the log-linear iterate cannot move mass onto a cell outside ``p``'s
support without moving cells of 1e-12 mass by amounts below its rounding. The primal finish
moves only within that polytope.
"""

import numpy as np
import pytest
from _maxent_reference import reference_maxent

import pidkit
from pidkit.discrete import _maxent, ccs, dep

#: (seed, number of axes): ``dirichlet(full(2**axes, 0.05))`` reshaped to (2,) * axes, target 0.
REPRODUCERS = [(1, 5), (2, 5), (12, 5), (29, 5), (1, 4)]

#: A lattice node of each reproducer whose fit needs the primal finish.
STALLED_NODES = [(1, 5, ((0, 1, 3), (0, 2), (1, 2), (2, 3))),
                 (2, 5, ((0, 1, 3), (0, 2, 3), (1, 2, 3))),
                 (12, 5, ((0, 1, 3), (0, 2), (1, 2, 3))),
                 (29, 5, ((0, 1), (0, 2), (0, 3), (1, 2, 3))),
                 (1, 4, ((0, 1), (0, 2), (1, 2)))]


def _sparse(seed, axes, alpha=0.05):
    return np.random.default_rng(seed).dirichlet(np.full(2 ** axes, alpha)).reshape((2,) * axes)


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "axes"), REPRODUCERS)
def test_sparse_ccs_fits_converge_and_do_not_depend_on_the_source_order(seed, axes):
    """Each reproducer converges (the ConvergenceWarning is an error in this suite) and its
    atoms agree with those of the pmf with the sources in reverse order to 5e-12 bits. (The
    largest difference, 2.1e-12 bits on seed 29, comes from a node that IPF fits to a
    marginal deviation of 9.99e-14, just inside ``tol``, in both orders: its term moves by
    1.8e-12 nats; the nodes finished on the primal agree to better than 1e-13.)"""
    p = _sparse(seed, axes)
    r = pidkit.pid(p, measure="ccs")
    reverse = pidkit.pid(np.transpose(p, (0, *range(axes - 1, 0, -1))), measure="ccs")
    for result in (r, reverse):
        assert result.solver.converged
        assert result.solver.details["marginal_deviation"] <= 1e-13
    assert abs(reverse.synergy - r.synergy) <= 5e-12
    assert abs(reverse.redundancy - r.redundancy) <= 5e-12
    assert np.allclose(reverse.unique[::-1], r.unique, rtol=0, atol=5e-12)


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "axes", "node"), STALLED_NODES)
def test_primal_finish_matches_a_50_digit_dual_solution(seed, axes, node):
    """The stalled node fits against the maximum-entropy pmf found by Newton's method on the
    dual in 50-digit arithmetic (``tests/_maxent_reference.py``, started from the uniform
    pmf): every cell within 1e-13 (the tolerance; the worst is 3e-14) and the node's I_ccs term
    within 1e-13 nats, both for the primal finish on its own (the dual stalled on these nodes
    after 10,000 sweeps) and for the whole fit (which now reaches some of them by the dual,
    from the iterate of a shorter IPF round)."""
    p = ccs.drop_negligible(_sparse(seed, axes), ccs.DEFAULT_TOL)
    nd = ccs._Node(p, node)
    problem = nd.problem()
    (q,), converged, _, deviation, _ = _maxent.solve_maxent([problem], 1e-13, 10_000)
    assert converged and deviation <= 1e-13
    finish, finished, _, deviation = _maxent.primal_maxent(problem, 1e-13, 100)
    assert finished and deviation <= 1e-13
    reference = reference_maxent(problem.p, problem.groups, problem.allowed)
    for fit in (q, finish):
        assert np.abs(fit - reference).max() <= 1e-13
        assert abs(nd.redundancy(fit) - nd.redundancy(reference)) <= 1e-13


@pytest.mark.parametrize("seed", range(4))
def test_primal_finish_agrees_with_the_dual_where_the_dual_converges(seed):
    """On ordinary 3x3x3 pmfs (every cell positive) the primal finish, run on its own from
    ``p``, reaches the pmf that IPF and the dual reach, to 1e-13 per cell."""
    p = np.random.default_rng(seed).dirichlet(np.full(27, 0.5)).reshape(3, 3, 3)
    problem = _maxent.MaxEntProblem(p.ravel(), [ccs._group(p.shape, m) for m in dep.PAIRS])
    (q,), converged, *_ = _maxent.solve_maxent([problem], 1e-13, 10_000)
    finish, finished, iterations, deviation = _maxent.primal_maxent(problem, 1e-13, 100)
    assert converged and finished and deviation <= 1e-13 and iterations < 30
    assert np.abs(finish - q).max() <= 1e-13


def test_primal_finish_starts_inside_a_support_larger_than_p():
    """The 2x2x2x2 reproducer's stalled node: 3 of its 16 cells carry mass in some pmf with the
    required marginals but not in ``p``; the start ``p + eps d`` is positive on all 16 and the
    finish converges in a few iterations, with the marginals of ``p``."""
    p = ccs.drop_negligible(_sparse(1, 4), ccs.DEFAULT_TOL)
    problem = ccs._Node(p, ((0, 1), (0, 2), (1, 2))).problem()
    problem.allowed = _maxent._exact_support(problem)
    assert problem.allowed.sum() == 16 and (problem.p > 0).sum() == 13
    q, converged, iterations, deviation = _maxent.primal_maxent(problem, 1e-13, 100)
    assert converged and iterations <= 10
    assert (q[problem.allowed] > 0).all()
    for g, t in zip(problem.groups, problem.targets, strict=True):
        assert np.abs(np.bincount(g, weights=q, minlength=len(t)) - t).max() <= 1e-13


def test_dual_path_is_kept_where_it_converges(monkeypatch):
    """The primal finish runs only where Newton's method on the dual stops short of ``tol``:
    on the 3x3x3x3 Dirichlet(0.05) pmf of seed 5, whose fits need the dual Newton (up to 14
    iterations) and converge there, it is never called."""
    def fail(*args, **kwargs):
        raise AssertionError("primal finish called")

    monkeypatch.setattr(_maxent, "primal_maxent", fail)
    p = np.random.default_rng(5).dirichlet(np.full(81, 0.05)).reshape(3, 3, 3, 3)
    r = pidkit.pid(p, measure="ccs")
    assert r.solver.converged and 0 < r.solver.details["newton_iterations"] <= 30


def test_hard_four_source_pmf_converges_and_keeps_its_values():
    """A 4-source Dirichlet(0.05) pmf over 2x3x2x3x3 (seed 0), one of those whose I_ccs call
    took 3-45 s (IPF's second round of 9,950 sweeps on ~145 nodes, a least-squares dual
    Newton, a few programmes per node for the supports): it converges without a warning (an
    error in this suite) and keeps the values of that solver (redundancy, unique and synergy
    in nats, printed with 16 digits; atoms agreed to 1.9e-12 nats)."""
    p = np.random.default_rng(0).dirichlet(np.full(108, 0.05)).reshape(2, 3, 2, 3, 3)
    r = pidkit.pid(p, measure="ccs")
    assert r.solver.converged and r.solver.details["marginal_deviation"] <= 1e-13
    assert r.redundancy == pytest.approx(-6.944936881162801e-05, abs=1e-11)
    np.testing.assert_allclose(r.unique, [-0.10309012618885338, -0.034982297234609105,
                                          -0.06349781156342847, -0.07068680177908332],
                               rtol=0, atol=1e-11)
    assert r.synergy == pytest.approx(0.2887710614325921, abs=1e-11)
