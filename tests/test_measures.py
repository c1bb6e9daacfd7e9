"""I_min, MMI and I_ccs: literature values, agreement with dit, and PID identities.

Literature values are in ``pid_reference_values.py`` (with their sources). dit 2.3 is an
independent implementation of the same three measures (``PID_WB``, ``PID_MMI``, ``PID_CCS``).
"""

import itertools
import math
import warnings

import numpy as np
import pytest
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
def _dit_distribution(p):
    """dit distribution of p[y, x0, ...] with the target as the LAST variable (built here,
    independently of pidkit.to_dit)."""
    import dit

    outcomes, probs = [], []
    for idx in itertools.product(*(range(s) for s in p.shape)):
        if p[idx] > 0:
            outcomes.append((*idx[1:], idx[0]))
            probs.append(float(p[idx]))
    return dit.Distribution(outcomes, probs)


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
    theirs = _dit_class(measure)(_dit_distribution(p), sources=[[0], [1]], target=[2])
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
    theirs = _dit_class(measure)(_dit_distribution(p), sources=[[0], [1], [2]], target=[3])
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
    dist = _dit_distribution(p)
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
    # converges like 1/t there (50 sweeps, below the LP stage, leave it far from 1e-13), while
    # the default solver finds the support by LP and converges.
    with pytest.warns(ConvergenceWarning):
        plain = pidkit.pid(gate("AND"), measure="ccs", max_iter=50)
    assert plain.solver.details["marginal_deviation"] > 1e-6
    exact = pidkit.pid(gate("AND"), measure="ccs")
    assert exact.solver.iterations < 200 and exact.solver.converged


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
