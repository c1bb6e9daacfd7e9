"""I_sx, I_pm and I_wedge (issue 18): closed forms on the canonical gates, published expectations
(IDTxl's SxPID tests, dit's own test suite), agreement with dit 2.3 and with brute-force
implementations written here, invariances, four and five sources, the informative /
misinformative parts, and the measure-properties table of docs/theory.md recomputed.

dit 2.3 implements the same three measures independently: ``PID_SX`` (I_sx), ``PID_PM`` (I_pm)
and ``PID_GK`` (I_wedge), in bits. All three are closed forms, so the tolerance is 1e-9 bits.
"""

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from _dit_reference import dit_distribution, random_pmf
from hypothesis import given, settings
from hypothesis import strategies as st

import pidkit
from pidkit.gates import GATES, gate
from pidkit.lattice import lattice, node_label, parse_node

NEW_MEASURES = ("sx", "pm", "wedge")
ATOL = 1e-9
LOG2_3 = math.log2(3)
H14 = -0.25 * math.log2(0.25) - 0.75 * math.log2(0.75)   # I(Y; X0, X1) on AND
MI_AND = H14 - 0.5                                        # I(Y; X_i) on AND


# --- closed forms on the canonical gates (bits) ------------------------------------------------
# (redundancy {0}{1}, unique {0}, unique {1}, synergy {0:1}), derived from the definitions; the
# unique and synergy atoms follow from red + uni_i = I(Y;X_i) and the sum I(Y;X0,X1).
#
# I_sx (Makkeh, Gutknecht & Wibral 2021), i = log2 P(U and y) / (P(U) p(y)), U = {x0 or x1}:
#   XOR: P(U) = 3/4, P(U and y) = 1/4, p(y) = 1/2 at every outcome -> red = log2(2/3).
#   AND: log2(4/3) at (y,x)=(0,00) and (1,11), log2(8/9) at (0,01), (0,10) -> red = log2(32/27)/2.
#   UNQ: P(U) = 3/4, P(U and y) = p(y) = 1/4 -> red = log2(4/3); COPY1 likewise.
# I_pm (Finn & Lizier 2018), r = min_i h(x_i) - min_i h(x_i | y):
#   XOR: 1 - 1 = 0. AND: 1 - (3/4) log2(3/2). UNQ and COPY1: 1 - 0 = 1.
# I_wedge (Griffith et al. 2014): independent inputs have a constant meet (red = 0); on RDN the
# meet is the shared bit (red = 1).
SX_AND = 0.5 * math.log2(32 / 27)
PM_AND = 1 - 0.75 * math.log2(1.5)
GATE_VALUES = {
    "sx": {"XOR": (math.log2(2 / 3), math.log2(1.5), math.log2(1.5), 2 - LOG2_3),
           "AND": (SX_AND, MI_AND - SX_AND, MI_AND - SX_AND, H14 - 2 * MI_AND + SX_AND),
           "RDN": (1, 0, 0, 0),
           "UNQ": (math.log2(4 / 3), math.log2(1.5), math.log2(1.5), math.log2(4 / 3)),
           "COPY1": (math.log2(4 / 3), math.log2(1.5), -math.log2(4 / 3), math.log2(4 / 3))},
    "pm": {"XOR": (0, 0, 0, 1),
           "AND": (PM_AND, MI_AND - PM_AND, MI_AND - PM_AND, H14 - 2 * MI_AND + PM_AND),
           "RDN": (1, 0, 0, 0), "UNQ": (1, 0, 0, 1), "COPY1": (1, 0, -1, 1)},
    "wedge": {"XOR": (0, 0, 0, 1), "AND": (0, MI_AND, MI_AND, H14 - 2 * MI_AND),
              "RDN": (1, 0, 0, 0), "UNQ": (0, 1, 1, 0), "COPY1": (0, 1, 0, 0)},
}


@pytest.mark.parametrize("measure", NEW_MEASURES)
@pytest.mark.parametrize("name", ["XOR", "AND", "RDN", "UNQ", "COPY1"])
def test_two_source_gates(measure, name):
    r = pidkit.pid(gate(name), measure=measure)
    got = (r.redundancy, *r.unique, r.synergy)
    np.testing.assert_allclose(got, GATE_VALUES[measure][name], rtol=0, atol=ATOL)


@pytest.mark.parametrize("measure", NEW_MEASURES)
def test_three_source_gates(measure):
    # every measure here is self-redundant, so the redundant bit of RDN3 and the parity bit
    # of PARITY3 land on the bottom and top
    rdn = pidkit.pid(gate("RDN3"), measure=measure)
    assert rdn.redundancy == pytest.approx(1.0, abs=ATOL)
    parity = pidkit.pid(gate("PARITY3"), measure=measure)
    assert sum(parity.atoms.values()) == pytest.approx(1.0, abs=ATOL)
    if measure != "sx":   # I_sx spreads the parity bit over the lattice (negative atoms)
        assert parity.synergy == pytest.approx(1.0, abs=ATOL)


# Published expectations of IDTxl's SxPID estimator (pwollstadt/IDTxl,
# test/test_estimators_multivariate_pid.py: test_average_pid_and, test_average_pid_xor,
# test_average_pid_source_copy, test_average_pid_three_hash), in bits; IDTxl's sources 1, 2, 3
# are our 0, 1, 2, and its "source copy" (Z = X) is COPY1.
IDTXL_SXPID = {
    "AND": {"{0}{1}": 0.12255624891826572},
    "XOR": {"{0}{1}": -0.5849625007211562},
    "COPY1": {"{0}": 0.5849625007211562, "{1}": -0.4150374992788438,
              "{0}{1}": 0.4150374992788438, "{0:1}": 0.4150374992788438},
    "PARITY3": {"{0}{1}{2}": 0.1926450779423959, "{0:1}{0:2}{1:2}": -0.22686079328030903,
                "{0:1:2}": 0.24511249783653177},
}


@pytest.mark.parametrize("name", sorted(IDTXL_SXPID))
def test_sx_matches_idtxl_published_values(name):
    r = pidkit.pid(gate(name), measure="sx")
    for label, value in IDTXL_SXPID[name].items():
        assert r.atoms[label] == pytest.approx(value, abs=ATOL), label


# Expectations of dit's own test suite (dit/dit tests/pid/test_isx.py, test_ipm.py,
# test_iwedge.py, test_igh.py, test_iig.py, test_ibroja.py) on distributions of dit's catalogue
# (dit.pid.distributions), in bits; the target is the catalogue distribution's last variable.
# Where dit's suite states its values to 4-5 digits (I_GH, I_IG) they are compared with its
# own tolerance, 1e-4 bits (DIT_ROUNDED); its BROJA values are full-precision closed forms and
# pidkit's BROJA is certified to 1e-9 bits, so they get ATOL.
L2 = math.log2
DIT_ROUNDED = 1e-4
DIT_SUITE = [
    ("sx", "bivariates", "pnt. unq.", {"{0}{1}": 0, "{0}": 0.5, "{1}": 0.5, "{0:1}": 0}),
    ("sx", "bivariates", "unique 1", {"{0}{1}": L2(4 / 3), "{0}": -L2(4 / 3), "{1}": L2(3 / 2),
                                      "{0:1}": L2(4 / 3)}),
    ("sx", "bivariates", "reduced or", {"{0}{1}": L2(4 / 3) / 2 - 1 / 2,
                                        "{0}": L2(4 / 3) / 2 + L2(3) / 4,
                                        "{1}": L2(4 / 3) / 2 + L2(3) / 4,
                                        "{0:1}": L2(9 / 8) / 2}),
    ("sx", "trivariates", "synergy", {
        "{0}": L2(5 / 4), "{1}": L2(5 / 4), "{2}": L2(5 / 4), "{0:1}": L2(9 / 8),
        "{0:2}": L2(9 / 8), "{1:2}": L2(9 / 8), "{0:1:2}": L2(32 / 27), "{0}{1}": L2(7 / 8),
        "{0}{2}": L2(7 / 8), "{0}{1:2}": L2(32 / 35), "{1}{2}": L2(7 / 8),
        "{1}{0:2}": L2(32 / 35), "{2}{0:1}": L2(32 / 35), "{0:1}{0:2}": L2(16 / 15),
        "{0:1}{1:2}": L2(16 / 15), "{0:2}{1:2}": L2(16 / 15), "{0}{1}{2}": L2(8 / 7),
        "{0:1}{0:2}{1:2}": L2(875 / 1024)}),
    ("pm", "bivariates", "pnt. unq.", {"{0}{1}": 0, "{0}": 0.5, "{1}": 0.5, "{0:1}": 0}),
    ("pm", "bivariates", "unique 1", {"{0}{1}": 1, "{0}": -1, "{1}": 0, "{0:1}": 1}),
    ("wedge", "bivariates", "imp. rdn", {"{0}{1}": 0, "{0}": 1, "{1}": 0.98959,
                                         "{0:1}": -0.98959}),
    ("gh", "bivariates", "and", {"{0}{1}": 0.1226, "{0}": 0.1887, "{1}": 0.1887,
                                 "{0:1}": 0.3113}),
    ("gh", "bivariates", "sum", {"{0}{1}": 0.0, "{0}": 0.5, "{1}": 0.5, "{0:1}": 0.5}),
    ("gh", "bivariates", "pnt. unq.", {"{0}{1}": 0.0, "{0}": 0.5, "{1}": 0.5, "{0:1}": 0.0}),
    ("ig", "bivariates", "and", {"{0}{1}": 0.08283, "{0}": 0.22845, "{1}": 0.22845,
                                 "{0:1}": 0.27155}),
    ("ig", "bivariates", "reduced or", {"{0}{1}": -0.03122, "{0}": 0.34250, "{1}": 0.34250,
                                        "{0:1}": 0.34622}),
    ("broja", "bivariates", "diff", {"{0}{1}": 0.12255624891826589,
                                     "{0}": 0.18872187554086706, "{1}": 0.18872187554086706,
                                     "{0:1}": 0.0}),
    ("broja", "trivariates", "anddup", {"{0}{1}{2}": 0.31127812445913305, "{0:1}{1:2}": 0.5}),
    ("wedge", "trivariates", "sum", {
        "{0:1:2}": 0.31127812445913294, "{0}": 0.31127812445913294,
        "{1}": 0.31127812445913294, "{2}": 0.31127812445913294,
        "{0:1}": 0.18872187554086706, "{0:2}": 0.18872187554086706,
        "{1:2}": 0.18872187554086706}),
]


@pytest.mark.parametrize(("measure", "catalogue", "name", "expected"), DIT_SUITE,
                         ids=[f"{m}-{n}" for m, _, n, _ in DIT_SUITE])
def test_dit_test_suite_expectations(measure, catalogue, name, expected):
    from dit.pid import distributions

    d = getattr(distributions, catalogue)[name]
    r = pidkit.pid(d, target=len(d.rvs) - 1, measure=measure)
    expected = {parse_node(label): value for label, value in expected.items()}
    # dit's suite rounds the irrational I_wedge value on "imp. rdn" to 5 digits, and its
    # I_GH and I_IG values to 4-5 digits (compared there with abs=1e-4)
    tol = 1e-5 if name == "imp. rdn" else DIT_ROUNDED if measure in ("gh", "ig") else ATOL
    for node, value in r.atoms.items():
        assert value == pytest.approx(expected.get(node, 0.0), abs=tol), node_label(node)


# --- informative and misinformative parts --------------------------------------------------------
def _entropy_bits(q):
    q = q[q > 0]
    return float(-(q * np.log2(q)).sum())


@pytest.mark.parametrize("measure", ["sx", "pm"])
@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 2, 3, 2)])
def test_parts_sum_to_entropies_and_difference_is_the_atoms(measure, shape):
    p = random_pmf(np.random.default_rng(len(shape)), shape, zeros=0.2)
    r = pidkit.pid(p, measure=measure)
    plus, minus = r.solver.parts["informative"], r.solver.parts["misinformative"]
    for node, value in r.atoms.items():
        assert plus[node] - minus[node] == pytest.approx(value, abs=ATOL), node_label(node)
    # the top collection {0:1:...} alone: E[-log p(x)] = H(X), E[-log p(x|y)] = H(X|Y)
    h_x = _entropy_bits(p.sum(axis=0))
    h_x_given_y = _entropy_bits(p) - _entropy_bits(p.reshape(p.shape[0], -1).sum(axis=1))
    assert sum(plus.values()) == pytest.approx(h_x, abs=ATOL)
    assert sum(minus.values()) == pytest.approx(h_x_given_y, abs=ATOL)


def test_parts_on_gates_and_units():
    r = pidkit.pid(gate("AND"), measure="pm")
    assert r.solver.parts["informative"]["{0}{1}"] == pytest.approx(1.0, abs=ATOL)
    assert r.solver.parts["misinformative"]["{0}{1}"] == pytest.approx(0.75 * math.log2(1.5),
                                                                         abs=ATOL)
    unq = pidkit.pid(gate("UNQ"), measure="sx", base=math.e)
    assert unq.solver.parts["informative"]["{0}{1}"] == pytest.approx(math.log(4 / 3), abs=ATOL)
    assert unq.solver.parts["misinformative"]["{0}{1}"] == pytest.approx(0.0, abs=ATOL)
    plain = unq.to_dict()["solver"]["parts"]
    assert set(plain) == {"informative", "misinformative"}
    assert set(plain["informative"]) == {"{0}{1}", "{0}", "{1}", "{0:1}"}
    assert pidkit.pid(gate("AND"), measure="wedge").solver.parts == {}


# --- agreement with dit 2.3 ----------------------------------------------------------------------
def _common_block_pmf(rng, n_sources):
    """Sources of 4 values, each a (group bit, free bit); outcomes only where every source has
    the same group: the meet of any sources is the group bit, so I_wedge is not trivially 0."""
    shape = (3,) + (4,) * n_sources
    groups = np.indices(shape)[1:] // 2
    same = (groups == groups[0]).all(axis=0)
    p = rng.random(shape) * same * (rng.random(shape) > 0.2)
    p[(0,) * len(shape)] += 0.01
    return p / p.sum()


def _dit_class(measure):
    from dit.pid import PID_GK, PID_PM, PID_SX

    return {"sx": PID_SX, "pm": PID_PM, "wedge": PID_GK}[measure]


def _compare_with_dit(p, measure):
    n = p.ndim - 1
    ours = pidkit.pid(p, measure=measure)
    theirs = _dit_class(measure)(dit_distribution(p), sources=[[i] for i in range(n)],
                                 target=[n])
    key = {frozenset(frozenset(m) for m in node): node for node in theirs._lattice}
    for node in lattice(n).nodes:
        dit_value = theirs.get_pi(key[frozenset(frozenset(m) for m in node)])
        assert ours.atoms[node] == pytest.approx(dit_value, abs=ATOL), node_label(node)


@pytest.mark.parametrize("measure", NEW_MEASURES)
@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 2, 3), (2, 3, 2), (4, 3, 3)])
def test_agrees_with_dit_two_sources(measure, shape):
    rng = np.random.default_rng(sum(shape) + len(measure))
    _compare_with_dit(random_pmf(rng, shape, zeros=0.25), measure)
    _compare_with_dit(_common_block_pmf(rng, 2), measure)


@pytest.mark.slow
@pytest.mark.parametrize("measure", NEW_MEASURES)
def test_agrees_with_dit_three_sources(measure):
    rng = np.random.default_rng(3)
    _compare_with_dit(random_pmf(rng, (2, 2, 3, 2), zeros=0.2), measure)
    _compare_with_dit(_common_block_pmf(rng, 3), measure)


# --- brute force, written independently, at four sources ----------------------------------------
def _cells(p):
    """Support as (probabilities, y values, source values of shape (cells, n))."""
    idx = np.argwhere(p > 0)
    return p[tuple(idx.T)], idx[:, 0], idx[:, 1:]


def _brute_sx_pm(p, node):
    """I_sx and I_pm redundancy (bits) of one node by direct sums over the support."""
    prob, ys, xs = _cells(p)
    sx = pm = 0.0
    for w, y, x in zip(prob, ys, xs, strict=True):
        agree = [(xs[:, list(a)] == x[list(a)]).all(axis=1) for a in node]
        same_y = ys == y
        p_y = prob[same_y].sum()
        union = np.logical_or.reduce(agree)
        sx += w * math.log2(prob[union & same_y].sum() / (prob[union].sum() * p_y))
        spec = min(-math.log2(prob[g].sum()) for g in agree)
        amb = min(-math.log2(prob[g & same_y].sum() / p_y) for g in agree)
        pm += w * (spec - amb)
    return sx, pm


def _brute_wedge(p, node):
    """I_wedge redundancy (bits) of one node: union-find on the values of each collection."""
    prob, ys, xs = _cells(p)
    parent = {}

    def find(v):
        while parent.setdefault(v, v) != v:
            v = parent[v]
        return v

    for x in xs:
        first = find((0, tuple(x[list(node[0])])))
        for i, a in enumerate(node[1:], start=1):
            parent[find((i, tuple(x[list(a)])))] = first
    comp = [find((0, tuple(x[list(node[0])]))) for x in xs]
    joint, p_w, p_y = {}, {}, {}
    for w, y, c in zip(prob, ys, comp, strict=True):
        joint[y, c] = joint.get((y, c), 0.0) + w
        p_w[c] = p_w.get(c, 0.0) + w
        p_y[y] = p_y.get(y, 0.0) + w
    return sum(v * math.log2(v / (p_y[y] * p_w[c])) for (y, c), v in joint.items())


def test_four_sources_match_brute_force_and_sum_to_mutual_information():
    rng = np.random.default_rng(4)
    for p in (random_pmf(rng, (2, 2, 2, 2, 2), zeros=0.3), _common_block_pmf(rng, 4)):
        mi = _entropy_bits(p.sum(axis=0)) + _entropy_bits(p.reshape(p.shape[0], -1).sum(1)) \
            - _entropy_bits(p)
        results = {m: pidkit.pid(p, measure=m) for m in NEW_MEASURES}
        reds = {m: r.lattice.cumulate(dict(r.atoms)) for m, r in results.items()}
        for m, r in results.items():
            assert len(r.atoms) == 166
            assert sum(r.atoms.values()) == pytest.approx(mi, abs=ATOL), m
        for node in lattice(4).nodes:
            sx, pm = _brute_sx_pm(p, node)
            assert reds["sx"][node] == pytest.approx(sx, abs=ATOL), node_label(node)
            assert reds["pm"][node] == pytest.approx(pm, abs=ATOL), node_label(node)
            assert reds["wedge"][node] == pytest.approx(_brute_wedge(p, node), abs=ATOL)


FOUR_SOURCE_NODES = ["{0}{1}{2}{3}", "{0:1}{2:3}", "{0:1:2}{1:2:3}{0:3}", "{0}{1:2:3}"]


@pytest.mark.parametrize("measure", ["pm", "wedge"])   # dit's PID_SX takes seconds per node
def test_four_sources_agree_with_dit_per_node(measure):
    p = _common_block_pmf(np.random.default_rng(6), 4)
    ours = pidkit.pid(p, measure=measure)
    red = ours.lattice.cumulate(dict(ours.atoms))
    dist = dit_distribution(p)
    for label in FOUR_SOURCE_NODES:
        node = parse_node(label)
        theirs = _dit_class(measure)._measure(dist, tuple(node), (4,))
        assert red[node] == pytest.approx(theirs, abs=ATOL), label


@pytest.mark.parametrize("measure", NEW_MEASURES)
def test_blocks_of_one_node_or_outcome_change_nothing(measure, monkeypatch):
    # the measures process nodes (wedge) or outcomes (sx, pm) in blocks of bounded memory
    p = _common_block_pmf(np.random.default_rng(9), 3)
    whole = pidkit.pid(p, measure=measure)
    module = pidkit.discrete.wedge if measure == "wedge" else pidkit.discrete._pointwise
    monkeypatch.setattr(module, "MAX_BLOCK", 1)
    _assert_same(pidkit.pid(p, measure=measure), whole)


def test_five_sources_run():
    p = random_pmf(np.random.default_rng(5), (2,) * 6, zeros=0.3)
    for measure in NEW_MEASURES:
        r = pidkit.pid(p, measure=measure)
        assert len(r.atoms) == 7579
        assert sum(r.atoms.values()) == pytest.approx(r.mutual_information, abs=1e-8)


# --- identities and invariances ------------------------------------------------------------------
@pytest.mark.parametrize("measure", NEW_MEASURES)
@settings(deadline=None, max_examples=30, derandomize=True)
@given(shape=st.tuples(st.integers(2, 4), st.integers(2, 4), st.integers(2, 4)),
       seed=st.integers(0, 2**32 - 1), zeros=st.sampled_from([0.0, 0.3, 0.6]))
def test_two_source_identities(measure, shape, seed, zeros):
    # self-redundancy: red + uni_i = I(Y; X_i), and the atoms sum to I(Y; X0, X1)
    p = random_pmf(np.random.default_rng(seed), shape, zeros=zeros)
    r = pidkit.pid(p, measure=measure)
    h_y = _entropy_bits(p.sum(axis=(1, 2)))
    for i, axis in enumerate((2, 1)):
        q = p.sum(axis=axis)
        mi = h_y + _entropy_bits(q.sum(0)) - _entropy_bits(q)
        assert r.redundancy + r.unique[i] == pytest.approx(mi, abs=ATOL)
    mi_all = h_y + _entropy_bits(p.sum(0)) - _entropy_bits(p)
    assert sum(r.atoms.values()) == pytest.approx(mi_all, abs=ATOL)


@pytest.mark.parametrize("measure", NEW_MEASURES)
@pytest.mark.parametrize("seed", range(4))
def test_invariant_to_relabelling_padding_and_source_order(measure, seed):
    rng = np.random.default_rng(seed)
    p = _common_block_pmf(rng, 3) if seed % 2 else random_pmf(rng, (3, 2, 3, 2), zeros=0.3)
    base = pidkit.pid(p, measure=measure)
    relabelled = p[np.ix_(*(rng.permutation(s) for s in p.shape))]
    _assert_same(pidkit.pid(relabelled, measure=measure), base)
    pad = [(0, 0)] * p.ndim
    pad[int(rng.integers(p.ndim))] = (0, 1)
    _assert_same(pidkit.pid(np.pad(p, pad), measure=measure), base)
    perm = rng.permutation(3)
    permuted = pidkit.pid(np.transpose(p, (0, *(perm + 1))), measure=measure)
    for node, value in permuted.atoms.items():
        old = tuple(sorted(tuple(sorted(int(perm[j]) for j in m)) for m in node))
        assert value == pytest.approx(base.atoms[old], abs=ATOL), node_label(node)


def _assert_same(a, b):
    for node, value in a.atoms.items():
        assert value == pytest.approx(b.atoms[node], abs=ATOL), node_label(node)


@pytest.mark.parametrize("measure", NEW_MEASURES)
def test_grouped_sources_equal_merged_axes(measure):
    p = random_pmf(np.random.default_rng(7), (2, 2, 3, 2), zeros=0.2)
    _assert_same(pidkit.pid(p, sources=[[1, 2], [3]], measure=measure),
                 pidkit.pid(p.reshape(2, 6, 2), measure=measure))


@pytest.mark.parametrize("measure", ["sx", "pm"])
@pytest.mark.parametrize("tiny", [1e-200, 1e-310, 5e-324])
def test_tiny_masses_stay_finite_and_continuous(measure, tiny):
    # sx and pm are continuous in p: cells of tiny mass give the limit of zero mass
    limit = pidkit.pid(gate("AND"), measure=measure)
    p = gate("AND") * (1 - 2 * tiny)
    p[1, 0, 0] += tiny
    p[0, 1, 1] += tiny
    r = pidkit.pid(p, measure=measure, normalize=True)
    values = np.array(list(r.atoms.values()))
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values, list(limit.atoms.values()), rtol=0, atol=1e-12)


# --- the measure-properties table of docs/theory.md, recomputed -------------------------------
def _correlated_copy():
    """Y = (X0, X1) with P(X0 = X1) = 0.8: the identity property asks for I(X0;X1) = 0.278 bits
    of redundancy (Harder, Salge & Polani 2013)."""
    p = np.zeros((4, 2, 2))
    for a, b in itertools.product((0, 1), repeat=2):
        p[2 * a + b, a, b] = 0.4 if a == b else 0.1
    return p


TEST_DISTRIBUTIONS = {**{name: gate(name) for name in GATES}, "CORRCOPY": _correlated_copy()}
# Two-source distributions whose target is an invertible function of (X0, X1) on the support.
IDENTITY_CASES = ("RDN", "UNQ", "CORRCOPY")


def _violations(measure):
    """Test distributions violating each property, per property column of the docs table."""
    out = {"non-negative atoms": [], "identity property": [], "monotone on the lattice": []}
    limit = pidkit.discrete.MEASURES[measure].max_sources
    for name, p in sorted(TEST_DISTRIBUTIONS.items()):
        if limit is not None and p.ndim - 1 > limit:
            continue   # two-source measures (proj, dep): the two-source distributions only
        r = pidkit.pid(p, measure=measure)
        if min(r.atoms.values()) < -ATOL:
            out["non-negative atoms"].append(name)
        red = r.lattice.cumulate(dict(r.atoms))
        if any(red[a] > red[b] + ATOL for a in red for b in red if r.lattice.leq(a, b)):
            out["monotone on the lattice"].append(name)
        if name in IDENTITY_CASES:
            q = p.sum(axis=0)
            i_x0_x1 = _entropy_bits(q.sum(1)) + _entropy_bits(q.sum(0)) - _entropy_bits(q)
            if abs(r.redundancy - i_x0_x1) > ATOL:
                out["identity property"].append(name)
    return out


def _docs_table():
    text = (Path(__file__).resolve().parents[1] / "docs" / "theory.md").read_text()
    section = text.split("### Measure properties", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    header = next(line for line in section.splitlines() if line.startswith("| measure"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[cells[0].strip("`")] = dict(zip(columns, cells[1:], strict=True))
    return table


TABLE = _docs_table()


def test_properties_table_covers_the_measures():
    assert {"imin", "mmi", "ccs", *NEW_MEASURES} <= set(TABLE)
    assert set(TABLE) <= set(pidkit.available_measures())


@pytest.mark.parametrize("measure", sorted(TABLE))
def test_properties_table_matches_computation(measure):
    found = _violations(measure)
    for column, cell in TABLE[measure].items():
        if cell == "yes":
            assert found[column] == [], (measure, column)
        else:
            match = re.fullmatch(r"no \((\w+)\)", cell)
            assert match, f"cell {cell!r} of {measure}/{column} is neither 'yes' nor 'no (GATE)'"
            assert match.group(1) in found[column], (measure, column, found[column])
