"""I_min, MMI and I_ccs: literature values, agreement with dit, and PID identities.

Literature values are in ``pid_reference_values.py`` (with their sources). dit 2.3 is an
independent implementation of the same three measures (``PID_WB``, ``PID_MMI``, ``PID_CCS``).
"""

import math
import warnings

import numpy as np
import pytest
from _dit_reference import dit_distribution
from hypothesis import given, settings
from hypothesis import strategies as st
from pid_reference_values import THREE_SOURCE, TWO_SOURCE

import pidkit
from pidkit.errors import ConvergenceWarning, PIDTypeError, PIDValueError
from pidkit.gates import gate
from pidkit.lattice import lattice, node_label

MEASURES = ("imin", "mmi", "ccs")


# --- literature values ---------------------------------------------------------------------
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("name", sorted(TWO_SOURCE))
def test_two_source_gates(name, measure):
    r = pidkit.pid(gate(name), measure=measure)
    expected = TWO_SOURCE[name][measure]
    got = (r.redundancy, *r.unique, r.synergy)
    np.testing.assert_allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("name", sorted(THREE_SOURCE))
def test_three_source_gates(name, measure):
    r = pidkit.pid(gate(name), measure=measure)
    expected = THREE_SOURCE[name][measure]
    for node, value in r.atoms.items():
        assert value == pytest.approx(expected.get(node_label(node), 0.0), abs=1e-9), node


# --- agreement with dit ----------------------------------------------------------------------
def _dit_class(measure):
    from dit.pid import PID_CCS, PID_MMI, PID_WB

    return {"imin": PID_WB, "mmi": PID_MMI, "ccs": PID_CCS}[measure]


def _random_pmf(rng, shape, zeros=0.0):
    p = rng.random(shape) ** 2
    p[rng.random(shape) < zeros] = 0.0
    return p / p.sum()


# dit's I_ccs fits its maximum-entropy pmf by IPF with tolerance 1e-10 on the marginals
# (dit.algorithms.ipf_dist), so its own values carry errors of a few 1e-10 bits: we observed
# differences up to 2.6e-10 on random 2-4 source pmfs. The 1e-9 tolerance holds for all three.
DIT_ATOL = 1e-9

TWO_SOURCE_SHAPES = [(2, 2, 2), (3, 2, 3), (2, 3, 2)]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("shape", TWO_SOURCE_SHAPES)
def test_agrees_with_dit_two_sources(measure, shape):
    rng = np.random.default_rng(sum(shape) + len(measure))
    p = _random_pmf(rng, shape, zeros=0.15)
    ours = pidkit.pid(p, measure=measure)
    theirs = _dit_class(measure)(dit_distribution(p), sources=[[0], [1]], target=[2])
    _compare_atoms(ours, theirs, 2)


def _compare_atoms(ours, theirs, n):
    key = {frozenset(frozenset(m) for m in node): node for node in theirs._lattice}
    for node in lattice(n).nodes:
        dit_value = theirs.get_pi(key[frozenset(frozenset(m) for m in node)])
        assert ours.atoms[node] == pytest.approx(dit_value, abs=DIT_ATOL), node_label(node)


@pytest.mark.slow
@pytest.mark.parametrize("measure", MEASURES)
def test_agrees_with_dit_three_sources(measure):
    rng = np.random.default_rng(3)
    p = _random_pmf(rng, (2, 2, 3, 2))
    ours = pidkit.pid(p, measure=measure)
    theirs = _dit_class(measure)(dit_distribution(p), sources=[[0], [1], [2]], target=[3])
    _compare_atoms(ours, theirs, 3)


# dit takes minutes for a whole 4-source lattice (95 s for I_ccs), so the 4-source check compares
# the redundancy I_cap(node) (not atoms) at a few nodes, through dit's per-node _measure.
FOUR_SOURCE_NODES = ["{0}{1}{2}{3}", "{0:1}{2:3}", "{0:1:2}{1:2:3}{0:3}", "{0}{1:2:3}",
                     "{0:1}{0:2}{1:2}{3}"]


@pytest.mark.slow
@pytest.mark.parametrize("measure", MEASURES)
def test_agrees_with_dit_four_sources(measure):
    rng = np.random.default_rng(4)
    p = _random_pmf(rng, (2, 2, 2, 2, 2))
    ours = pidkit.pid(p, measure=measure)
    red = ours.lattice.cumulate({node: v for node, v in ours.atoms.items()})
    dist = dit_distribution(p)
    for label in FOUR_SOURCE_NODES:
        node = pidkit.parse_node(label)
        theirs = _dit_class(measure)._measure(dist, tuple(node), (4,))
        assert red[node] == pytest.approx(theirs, abs=DIT_ATOL), label


# --- identities (hypothesis) -----------------------------------------------------------------
def _pmfs(n_sources):
    shapes = st.tuples(*[st.integers(2, 3)] * (n_sources + 1))

    def build(shape_and_values):
        shape, values = shape_and_values
        p = np.array(values[:math.prod(shape)]).reshape(shape)
        return p / p.sum()

    values = st.lists(st.one_of(st.just(0.0), st.floats(0.01, 1.0)), min_size=81, max_size=81)
    return st.tuples(shapes, values).filter(lambda sv: sum(sv[1][:math.prod(sv[0])]) > 0.05
                                            ).map(build)


def _mi_bits(p, axes):
    """I(Y; X_axes) in bits by entropies, independent of pidkit's helpers."""
    def h(q):
        q = q[q > 0]
        return -(q * np.log2(q)).sum()

    keep = (0, *axes)
    pyx = p.sum(axis=tuple(a for a in range(p.ndim) if a not in keep))
    return h(pyx.sum(axis=tuple(range(1, pyx.ndim)))) + h(pyx.sum(axis=0)) - h(pyx)


# Per-test settings (not a global profile, which would change other files' hypothesis tests).
PROPERTY = settings(deadline=None, max_examples=30, derandomize=True)


@pytest.mark.parametrize("measure", MEASURES)
@PROPERTY
@given(p=_pmfs(2))
def test_two_source_identities(measure, p):
    r = pidkit.pid(p, measure=measure)
    assert sum(r.atoms.values()) == pytest.approx(_mi_bits(p, (1, 2)), abs=1e-9)
    assert r.mutual_information == pytest.approx(_mi_bits(p, (1, 2)), abs=1e-9)
    # red + uni_i = I(Y;X_i): every measure here gives I_cap({i}) = I(Y;X_i).
    assert r.redundancy + r.unique[0] == pytest.approx(_mi_bits(p, (1,)), abs=1e-9)
    assert r.redundancy + r.unique[1] == pytest.approx(_mi_bits(p, (2,)), abs=1e-9)


@pytest.mark.parametrize("measure", ["imin", "mmi"])
@PROPERTY
@given(p=_pmfs(3), seed=st.integers(0, 2**32 - 1))
def test_invariances(measure, p, seed):
    _check_invariances(measure, p, seed)


# each example fits ~70 maximum-entropy pmfs, some by LP + IPF: fewer examples
@settings(deadline=None, max_examples=8, derandomize=True)
@given(p=_pmfs(3), seed=st.integers(0, 2**32 - 1))
def test_invariances_ccs(p, seed):
    _check_invariances("ccs", p, seed)


def _check_invariances(measure, p, seed):
    rng = np.random.default_rng(seed)
    base = pidkit.pid(p, measure=measure)
    assert sum(base.atoms.values()) == pytest.approx(_mi_bits(p, (1, 2, 3)), abs=1e-9)
    # relabelling the outcomes of every variable changes nothing
    relabelled = p[np.ix_(*(rng.permutation(s) for s in p.shape))]
    _assert_same(pidkit.pid(relabelled, measure=measure), base)
    # adding a zero-probability outcome to a variable changes nothing
    axis = int(rng.integers(p.ndim))
    pad = [(0, 0)] * p.ndim
    pad[axis] = (0, 1)
    _assert_same(pidkit.pid(np.pad(p, pad), measure=measure), base)
    # permuting the sources permutes the atoms: new source j is old source perm[j]
    perm = rng.permutation(3)
    permuted = pidkit.pid(np.transpose(p, (0, *(perm + 1))), measure=measure)
    for node, value in permuted.atoms.items():
        old = tuple(sorted(tuple(sorted(int(perm[j]) for j in m)) for m in node))
        assert value == pytest.approx(base.atoms[old], abs=1e-9), node_label(node)


def _assert_same(a, b):
    for node, value in a.atoms.items():
        assert value == pytest.approx(b.atoms[node], abs=1e-9), node_label(node)


# --- CCS solver behaviour ------------------------------------------------------------------
def test_ccs_reports_ipf_and_warns_when_not_converged():
    r = pidkit.pid(gate("AND"), measure="ccs")
    assert r.solver.converged and r.solver.status == "optimal"
    assert r.solver.details["marginal_deviation"] < 1e-13
    p = _random_pmf(np.random.default_rng(0), (3, 3, 3))
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        r = pidkit.pid(p, measure="ccs", max_iter=1)
    assert not r.solver.converged and r.solver.status == "max_iter"


def test_ccs_needs_exact_support_on_induced_zeros():
    # On AND the constraints force q(y=0, x0=1, x1=1) = 0 without any zero marginal: plain IPF
    # converges like 1/t there (50 sweeps, below the LP stage, leave it far from 1e-13); the
    # Newton finish on the dual closes that fit, and the default solver finds the support by
    # LP and converges without it. Both give the same atoms.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plain = pidkit.pid(gate("AND"), measure="ccs", max_iter=50)
        exact = pidkit.pid(gate("AND"), measure="ccs")
    assert plain.solver.converged and plain.solver.details["newton_iterations"] > 0
    assert exact.solver.iterations < 200 and exact.solver.converged
    assert exact.solver.details["newton_iterations"] == 0
    np.testing.assert_allclose(list(plain.atoms.values()), list(exact.atoms.values()),
                               atol=1e-10)


def test_ccs_loose_tolerance_is_close():
    p = _random_pmf(np.random.default_rng(1), (2, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = pidkit.pid(p, measure="ccs")
        loose = pidkit.pid(p, measure="ccs", tol=1e-6)
    np.testing.assert_allclose(list(loose.atoms.values()), list(exact.atoms.values()), atol=1e-4)


@pytest.mark.parametrize(("options", "kind"), [({"tol": -1.0}, PIDValueError),
                                                ({"max_iter": 0}, PIDValueError),
                                                ({"max_iter": 2.5}, PIDTypeError)])
def test_ccs_rejects_bad_options(options, kind):
    with pytest.raises(kind, match=next(iter(options))):
        pidkit.pid(gate("XOR"), measure="ccs", **options)


def test_grouped_sources_equal_merged_axes():
    # sources=[[1, 2], [3]] is the same as a pmf whose axes 1 and 2 are merged into one variable.
    p = _random_pmf(np.random.default_rng(5), (2, 2, 3, 2))
    merged = p.reshape(2, 6, 2)
    for measure in MEASURES:
        a = pidkit.pid(p, sources=[[1, 2], [3]], measure=measure)
        b = pidkit.pid(merged, measure=measure)
        _assert_same(a, b)
        assert a.source_names == ("X0", "X1")
        assert a.details["source_axes"] == [[1, 2], [3]]


# --- the gate registry -----------------------------------------------------------------------
def _h2(q):
    return -q * math.log2(q) - (1 - q) * math.log2(1 - q)


# I(Y; all sources) in bits, from each gate's definition.
GATE_MI = {"XOR": 1.0, "AND": _h2(0.25), "OR": _h2(0.25), "RDN": 1.0, "UNQ": 2.0, "COPY1": 1.0,
           "SUM": 1.5, "XORAND": 1.5, "RDNXOR": 2.0, "RDNUNQXOR": 4.0, "W": _h2(1 / 3),
           "PARITY3": 1.0, "RDN3": 1.0, "COPY3": 3.0}


@pytest.mark.parametrize("name", sorted(GATE_MI))
def test_gate_pmfs(name):
    p = gate(name.lower())
    spec = pidkit.gates.GATES[name]
    assert p.ndim == spec.n_sources + 1 and p.sum() == pytest.approx(1.0)
    assert _mi_bits(p, tuple(range(1, p.ndim))) == pytest.approx(GATE_MI[name], abs=1e-12)
    p[...] = 0  # a fresh copy each time
    assert gate(name).sum() == pytest.approx(1.0)


def test_gate_registry_is_complete_and_rejects_unknown_names():
    assert set(pidkit.gates.GATES) == set(GATE_MI)
    with pytest.raises(PIDValueError, match="^name: is not a known choice"):
        gate("NAND")


# --- tiny masses: no NaN, the high-precision value or the limit ---------------------------------
TINY = [1e-200, 1e-300, 1e-310, 5e-324, 0.0]   # 1e-310 and 5e-324 are subnormal


def _imin_mpmath(p):
    """I_min atoms of a two-source pmf p[y, x0, x1] in bits, in 60-digit arithmetic (each float
    entry converted exactly): the reference for inputs whose products underflow in float64."""
    import mpmath

    with mpmath.workdps(60):
        q = [[[mpmath.mpf(float(v)) for v in row] for row in plane] for plane in p]
        ky, k0, k1 = p.shape
        total = sum(q[y][a][b] for y in range(ky) for a in range(k0) for b in range(k1))
        q = [[[q[y][a][b] / total for b in range(k1)] for a in range(k0)] for y in range(ky)]
        p_y = [sum(q[y][a][b] for a in range(k0) for b in range(k1)) for y in range(ky)]

        def joint(y, x, src):   # p(y, x_src)
            return (sum(q[y][x][b] for b in range(k1)) if src == 0
                    else sum(q[y][a][x] for a in range(k0)))

        def specific(y, src):
            size = k0 if src == 0 else k1
            out = mpmath.mpf(0)
            for x in range(size):
                pyx = joint(y, x, src)
                if pyx > 0:
                    px = sum(joint(t, x, src) for t in range(ky))
                    out += pyx / p_y[y] * mpmath.log(pyx / (p_y[y] * px), 2)
            return out

        def mi(cells):   # I(Y; X) with X given by a cell function (y) -> {x: p(y, x)}
            px = {}
            for y in range(ky):
                for x, v in cells(y).items():
                    px[x] = px.get(x, 0) + v
            return sum(v * mpmath.log(v / (p_y[y] * px[x]), 2)
                       for y in range(ky) for x, v in cells(y).items() if v > 0)

        i0 = mi(lambda y: {a: joint(y, a, 0) for a in range(k0)})
        i1 = mi(lambda y: {b: joint(y, b, 1) for b in range(k1)})
        i01 = mi(lambda y: {(a, b): q[y][a][b] for a in range(k0) for b in range(k1)})
        red = sum(p_y[y] * min(specific(y, 0), specific(y, 1)) for y in range(ky) if p_y[y] > 0)
        return {"{0}{1}": float(red), "{0}": float(i0 - red), "{1}": float(i1 - red),
                "{0:1}": float(i01 - i0 - i1 + red)}


def _and_with_tiny_outcome(tiny):
    """AND gate plus a third target value and a third source value that occur together with
    probability ``tiny``: p(y) p(x) = tiny**2 underflows in float64."""
    p = np.zeros((3, 3, 2))
    p[:2, :2, :] = gate("AND") * (1 - tiny)
    p[2, 2, 0] = tiny
    return p


@pytest.mark.parametrize("tiny", TINY)
def test_imin_tiny_marginals_match_high_precision(tiny):
    p = _and_with_tiny_outcome(tiny)
    ref = _imin_mpmath(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no overflow / invalid-value warnings either
        r = pidkit.pid(p, measure="imin", normalize=True)
    for label, value in ref.items():
        assert r.atoms[label] == pytest.approx(value, abs=1e-12), label
    limit = pidkit.pid(gate("AND"), measure="imin")
    np.testing.assert_allclose(list(r.atoms.values()), list(limit.atoms.values()), atol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("tiny", TINY)
def test_tiny_cells_give_the_limit_of_zero_mass(measure, tiny):
    """Cells of 1e-200, 1e-300 or subnormal mass (in the marginals and where the constraints of
    I_ccs nearly force a zero) change no atom beyond rounding: the answer is the limit of zero
    mass, finite, and I_ccs converges as it does at exact zeros."""
    limit = pidkit.pid(gate("AND"), measure=measure)
    p = gate("AND") * (1 - 4 * tiny)
    for cell in [(1, 0, 0), (0, 1, 1), (1, 1, 0), (1, 0, 1)]:
        p[cell] += tiny
    big = np.zeros((3, 3, 2))
    big[:2, :2, :] = p
    big[2, 2, 1] = tiny
    for q in (p, big):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = pidkit.pid(q, measure=measure, normalize=True)
        values = np.array(list(r.atoms.values()))
        assert np.isfinite(values).all() and np.isfinite(r.mutual_information)
        np.testing.assert_allclose(values, list(limit.atoms.values()), rtol=0, atol=1e-12)
        assert r.solver.converged


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), exponent=st.integers(150, 323),
       n_tiny=st.integers(1, 6), n_sources=st.sampled_from([2, 3]))
def test_no_nan_leaves_a_measure(seed, exponent, n_tiny, n_sources):
    rng = np.random.default_rng(seed)
    shape = (2,) + (3,) * n_sources if n_sources == 2 else (2, 2, 2, 2)
    p = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
    flat = p.reshape(-1)
    cells = rng.choice(flat.size, size=min(n_tiny, flat.size - 1), replace=False)
    flat[cells] = 10.0 ** -exponent * rng.random(cells.size)    # down to subnormals and 0
    for measure in MEASURES:
        r = pidkit.pid(p, measure=measure, normalize=True)
        values = np.array(list(r.atoms.values()) + [r.mutual_information])
        assert np.isfinite(values).all(), (measure, values)
        # the lattice identity survives: the atoms sum to I(Y; all sources)
        assert values[:-1].sum() == pytest.approx(values[-1], abs=1e-9)


@pytest.mark.parametrize("measure", sorted(pidkit.available_measures()))
def test_one_source_is_its_mutual_information_for_every_measure(measure):
    """With one source the lattice has one node; pidkit.pid puts I(Y; X0) there for every
    measure (two-source-only ones included), computed here from the joint and marginal
    entropies."""
    p = np.array([[0.3, 0.2, 0.0], [0.1, 0.25, 0.15]])

    def h(q):
        return -sum(v * np.log2(v) for v in q.ravel() if v > 0)

    mi = h(p.sum(1)) + h(p.sum(0)) - h(p)
    r = pidkit.pid(p, measure=measure)
    assert list(r.atoms.values()) == pytest.approx([mi], abs=1e-12)
    assert r.solver.status == "closed_form" and r.mutual_information == pytest.approx(mi)
