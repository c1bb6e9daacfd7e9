"""I_GH's branch and bound (``pidkit.discrete.gh``): the conforming refinement of the cover, the
weak-duality upper bound and the lower bound of a repaired (feasible) channel, against exact
values.

``EXACT`` holds I_GH (nats) of seeded Dirichlet pmfs, computed outside pidkit by an exact
rational reference (2026-12-05): every extreme ray of the cone of feasible Q-masses enumerated
by a double-description method in fractions (p's floats taken exactly), the linear programme
max sum_v lambda_v f(v) s.t. sum_v lambda_v v = p over them solved by a two-phase simplex in
mpmath at 100 digits, its basis re-solved in fractions (lambda >= 0 checked) and a
weak-duality bound from its duals equal to the value to 1e-90. That reference agrees with this
suite's brute force (``_gh_reference_bits`` in test_measures_gh_ig.py) on its 10 GH_SMALL pmfs
to 3e-15 bits. Values are given to 17 digits (double precision).
"""

import math

import numpy as np
import pytest

from pidkit.discrete import gh


def _dirichlet(seed, shape, alpha):
    p = np.random.default_rng(seed).dirichlet(np.full(math.prod(shape), alpha)).reshape(shape)
    return p / p.sum()


def _area(triangle):
    return np.linalg.svd(triangle[1:] - triangle[0], compute_uv=False).prod() / 2


# (seed, shape, alpha): exact I_GH (nats). The last five have cells 1e-10 to 1e-12 of the
# largest, where the previous implementation's certified brackets (the solver's optimum as upper
# end, its channel's value as lower end) missed these values by 7e-11 to 4.9e-9 nats; on 133
# only a repair that keeps the channel's zeros closes the bracket (projection alone: 4.5e-10
# wide). On 238 (cells from 3e-8) HiGHS's first multipliers were 4e-9 off in the last round,
# its other methods' are not (gh.POLISH).
EXACT = {(0, (3, 3, 3), 1.0): 0.0063845978175571866,
         (238, (2, 2, 2), 0.05): 0.10458558550294528,
         (2, (3, 3, 3), 0.5): 0.015536642908200429,
         (6, (2, 3, 3), 1.0): 0.010571121432684037,
         (8, (2, 3, 3), 0.2): 0.0016178199993577618,
         (30, (2, 2, 3), 0.1): 4.5583459290211475e-05,
         (2, (2, 3, 3), 0.1): 1.2125607330510513e-05,
         (54, (2, 2, 2), 0.1): 0.002583214115095707,
         (58, (3, 2, 2), 0.05): 0.0,
         (133, (2, 2, 2), 0.05): 0.2078386644200956}


def test_refine_keeps_an_exact_cover():
    # every split replaces a simplex by children whose areas sum to its own, whether the point
    # is inside, on a shared edge (both neighbours split) or at a vertex (nothing split)
    square = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                       [[1, 0, 0], [0, 1, 0], [1 / 3, 1 / 3, 1 / 3]]], dtype=float)
    whole = sum(_area(t) for t in square)
    for point, count in [([0.5, 0.5, 0.0], 4), ([0.2, 0.3, 0.5], 4), ([1.0, 0.0, 0.0], 2)]:
        out = gh._refine(square, [np.array(point)])
        assert len(out) == count
        assert sum(_area(t) for t in out) == pytest.approx(whole, rel=1e-12)


def test_star_never_makes_slivers():
    # a point 1e-17 off an edge: its weight is rounded to 0 (SNAP), so the star has two children
    # and none is thinner than MIN_WIDTH; a point at a vertex leaves the simplex whole
    triangle = np.eye(3)
    children = gh._star(triangle, np.array([0.5, 0.5 - 1e-17, 1e-17]))
    assert len(children) == 2
    assert gh._width(np.array(children)).min() >= gh.MIN_WIDTH
    assert sum(_area(t) for t in children) == pytest.approx(_area(triangle), rel=1e-12)
    assert len(gh._star(triangle, np.array([1.0, 0.0, 0.0]))) == 1


def test_a_point_just_outside_a_thin_simplex_splits_its_nearest():
    # the programme's posterior may leave its simplex by more than CONTAINS (its rows are
    # relaxed by the coefficients below SMALL): a weight of -1e-8 in a simplex 2.5e-8 thin (from
    # a Dirichlet(0.01) pmf). It split nothing, and the search stopped after one round with the
    # bracket [0, min_i I(Y; X_i)]; now the nearest simplex is split around the point moved
    # onto it (onto its edge here: two children), its cover exact; -1e-7 is resolved by the
    # weights at this thinness
    thin = np.array([[[2.6771e-08, 0.0, 1.0 - 2.6771e-08],
                      [1.5249e-07, 2.0265e-08, 1.0 - 1.5249e-07 - 2.0265e-08],
                      [0.99986, 2.5094e-09, 1.0 - 0.99986 - 2.5094e-09]]])
    weights = np.array([0.3, -1e-7, 0.7 + 1e-7])
    point = weights @ thin[0]
    assert not (gh._barycentric(thin, point)[0].min() >= -gh.CONTAINS)
    children = gh._refine(thin, [point])
    assert len(children) == 2
    assert sum(_area(t) for t in children) == pytest.approx(_area(thin[0]), rel=1e-6)
    # a point far outside (weight -1e-3 < -SNAP) still splits nothing
    far = np.array([0.3, -1e-3, 0.701]) @ thin[0]
    assert len(gh._refine(thin, [far])) == 1


def test_swapped_sources_give_the_same_bracket_on_a_wide_pmf():
    # I_GH is symmetric in its sources. On this Dirichlet(0.01) pmf (cells over 89 orders of
    # magnitude) the swapped solve stopped after one round at [9e-17, 0.0186] nats: the
    # pseudo-inverse in the containment test left a residual of 1.5e-9 on the thin first
    # simplex's own solution point, so nothing was split
    p = _dirichlet(2, (3, 3, 3), 0.01)
    lower, upper, _, _, _ = gh.gh_bounds(p, 1e-10, 100, certified=False)
    lower_s, upper_s, _, _, why = gh.gh_bounds(np.swapaxes(p, 1, 2), 1e-10, 100,
                                               certified=False)
    assert why is None and upper_s - lower_s <= 1e-10
    assert abs(lower_s - lower) <= 1e-9 and lower > 1e-3


@pytest.mark.parametrize(("seed", "shape"), [(0, (2, 2, 2)), (1, (3, 2, 2)), (2, (2, 3, 3)),
                                             (3, (3, 3, 3))])
def test_dual_bound_holds_and_is_tight(seed, shape):
    # the weak-duality bound is valid for any multipliers, so at least the programme's optimum
    # (the solver's, to its tolerance), and with the solver's multipliers within 1e-9 of it on
    # well-scaled pmfs: on the first cover and on a refined one
    p = _dirichlet(seed, shape, 1.0)
    programme = gh._ConeProgramme(p)
    simplices = gh._initial_cover(p)
    for _ in range(3):
        value, bound, x, _ = programme.solve(simplices, gh._divergences(simplices, programme.p_y))
        assert value - 1e-12 <= bound <= value + 1e-9
        # the repaired channel is feasible: its value is at most the programme's
        assert programme.feasible_value(x) <= bound + 1e-13
        masses = programme.posterior_masses(x)
        total = masses.sum(axis=1)
        points = [masses[j] / total[j] for j in np.flatnonzero(total > 1e-6)]
        simplices = gh._refine(simplices, points)


@pytest.mark.parametrize(("seed", "shape", "alpha"), sorted(EXACT))
def test_bracket_contains_the_exact_value(seed, shape, alpha):
    exact = EXACT[seed, shape, alpha]
    p = _dirichlet(seed, shape, alpha)
    lower, upper, _, _, _ = gh.gh_bounds(p, 1e-10, 100)
    # rounding only (double precision on values up to 0.02 nats)
    assert lower - 1e-14 <= exact <= upper + 1e-14
    positive = p[p > 0]
    if positive.max() / positive.min() <= 1e9 or seed == 133:
        assert upper - lower <= 1e-10     # no weight below the programme's SMALL: closed


def test_random_3x3x3_converges_in_few_rounds():
    # a full-support Dirichlet(1) pmf: 23 rounds (85 simplices) before splits were conforming,
    # 12 after
    p = _dirichlet(0, (3, 3, 3), 1.0)
    lower, upper, rounds, _, _ = gh.gh_bounds(p, 1e-10, 15)
    assert upper - lower <= 1e-10 and rounds <= 15
    assert lower <= EXACT[0, (3, 3, 3), 1.0] + 1e-14 <= upper + 2e-14


def _mi_nats(joint):
    """I(A; B) in nats of a 2-d joint pmf ``joint[a, b]``, written out."""
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    cells = joint > 0
    return float((joint[cells] * np.log(joint[cells] / outer[cells])).sum())


class _FailAfter:
    """``scipy.optimize.linprog`` that fails (HiGHS's status 4) from the ``n``-th call on."""

    def __init__(self, n):
        import scipy.optimize

        self.linprog, self.n, self.calls = scipy.optimize.linprog, n, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.calls < self.n:
            return self.linprog(**kwargs)
        from types import SimpleNamespace
        return SimpleNamespace(status=4, message="(HiGHS Status 4: Solve error)")


def test_a_failed_round_keeps_the_bracket_of_the_rounds_before(monkeypatch):
    # the solver failing on every formulation of a later round's programme raised an error
    # that threw away a proven bracket; now the search stops with it and warns
    import scipy.optimize

    import pidkit
    from pidkit.errors import ConvergenceWarning

    exact = EXACT[6, (2, 3, 3), 1.0]
    p = _dirichlet(6, (2, 3, 3), 1.0)
    monkeypatch.setattr(scipy.optimize, "linprog", _FailAfter(4))
    with pytest.warns(ConvergenceWarning, match="solver failed .*round 4"):
        r = pidkit.pid(p, measure="gh", base=math.e)
    cert = r.solver.certificate
    assert r.solver.status == "max_iter" and r.solver.iterations == 4
    assert cert.lower == r.redundancy <= exact + 1e-14 <= cert.upper + 2e-14
    assert cert.upper - cert.lower < 1e-2        # three rounds' bracket, not the trivial one


def test_a_failed_first_round_gives_the_data_processing_bracket(monkeypatch):
    # no programme solved: [0, min_i I(Y; X_i)] still brackets I_GH (Q - X_i - Y Markov)
    import scipy.optimize

    import pidkit
    from pidkit.errors import ConvergenceWarning

    p = _dirichlet(6, (2, 3, 3), 1.0)
    bound = min(_mi_nats(p.sum(axis=3 - i)) for i in (1, 2))
    monkeypatch.setattr(scipy.optimize, "linprog", _FailAfter(1))
    with pytest.warns(ConvergenceWarning, match="solver failed .*round 1"):
        r = pidkit.pid(p, measure="gh", base=math.e)
    assert r.redundancy == r.solver.certificate.lower == 0.0
    assert r.solver.certificate.upper == pytest.approx(bound, rel=1e-12)
    assert EXACT[6, (2, 3, 3), 1.0] <= r.solver.certificate.upper


def test_hard_dirichlet_pmf_where_highs_fails_gives_a_bracket():
    # Dirichlet(0.02), 3x4x4, target the last axis: cells span 58 orders; every HiGHS method
    # failed on the ninth round's programme and pid raised PIDKitError ("every
    # linear-programme solver failed"); now a bracket, flagged approximate (beyond
    # CERTIFIED_RANGE)
    import warnings

    import pidkit
    from pidkit.errors import ConvergenceWarning

    p = np.random.default_rng(4).dirichlet(np.full(48, 0.02)).reshape(3, 4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = pidkit.pid(p, target=2, measure="gh", base=math.e)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert r.solver.status == "approximate"
    lower, upper = r.solver.details["approximate_bracket_nats"]
    assert 0 <= lower == r.redundancy <= upper <= min(r.redundancy + r.unique[0],
                                                      r.redundancy + r.unique[1])
    assert upper - lower < 1e-8
    mi = [_mi_nats(p.sum(axis=1 - i).T) for i in (0, 1)]
    assert r.redundancy + r.unique[0] == pytest.approx(mi[0], abs=1e-12)
    assert r.redundancy + r.unique[1] == pytest.approx(mi[1], abs=1e-12)


def test_subnormal_cells_are_reported_with_their_range():
    # a cell of 5e-324 next to 0.25: the ratio overflowed and the warning said "span inf orders"
    import pidkit
    from pidkit.errors import ConvergenceWarning
    from pidkit.gates import gate

    p = gate("XOR").copy()
    p[p == 0] = 5e-324
    with pytest.warns(ConvergenceWarning, match="span 323 orders of magnitude"):
        r = pidkit.pid(p, measure="gh")
    assert r.solver.status == "approximate"
    assert r.redundancy == pytest.approx(0.0, abs=1e-9)
