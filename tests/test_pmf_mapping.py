"""A pmf given as a mapping ``{outcome tuple: probability}`` (BROJA_2PID's and IDTxl's format):
the same results as the equivalent array on every measure, whatever the mapping's order or the
labels; the labelling of :func:`pidkit.joint_pmf`; dit as an independent reference; typed
errors naming ``p`` and the outcome."""

import collections
import itertools
import math
import types

import numpy as np
import pytest
from _dit_reference import dit_distribution, random_pmf

import pidkit
from pidkit import information
from pidkit.discrete import MEASURES
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.validation import pmf_from_mapping

# BROJA_2PID's AND gate, keyed (target, source 0, source 1)
AND = {(0, 0, 0): 0.25, (0, 0, 1): 0.25, (0, 1, 0): 0.25, (1, 1, 1): 0.25}


def as_mapping(p: np.ndarray, labels=None) -> dict:
    """The support of ``p`` as ``{outcome: probability}``; ``labels[k]`` relabels axis ``k``
    (index -> label)."""
    out = {}
    for idx in itertools.product(*(range(s) for s in p.shape)):
        if p[idx] > 0:
            key = idx if labels is None else tuple(
                lab[i] for lab, i in zip(labels, idx, strict=True))
            out[key] = float(p[idx])
    return out


def _atoms(r):
    return [r.atoms[node] for node in r.atoms]


def test_and_gate_of_broja_2pid_has_its_closed_form():
    # Uni = 0 for the AND gate, so Red = I(Y; X0) = h(1/4) - 1/2 h(1/2), Syn = 1/2 bit
    r = pidkit.pid(AND)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert r.redundancy == pytest.approx(h - 0.5, abs=1e-9)
    assert r.unique == pytest.approx((0.0, 0.0), abs=1e-9)
    assert r.synergy == pytest.approx(0.5, abs=1e-9)
    assert r.mutual_information == pytest.approx(h, abs=1e-12)


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_every_measure_equals_the_array_route(measure):
    p = random_pmf(np.random.default_rng(len(measure)), (2, 3, 2), zeros=0.2)
    ours, array = pidkit.pid(as_mapping(p), measure=measure), pidkit.pid(p, measure=measure)
    assert _atoms(ours) == _atoms(array)        # the same array: the same numbers, exactly
    assert ours.mutual_information == array.mutual_information


@pytest.mark.parametrize("measure", sorted(m for m, s in MEASURES.items()
                                           if s.max_sources is None or s.max_sources >= 3))
def test_three_sources_and_grouped_sources_equal_the_array_route(measure):
    p = random_pmf(np.random.default_rng(7), (2, 2, 2, 2), zeros=0.2)
    d = as_mapping(p)
    assert _atoms(pidkit.pid(d, measure=measure)) == _atoms(pidkit.pid(p, measure=measure))
    grouped = pidkit.pid(d, sources=[[1, 2], 3], measure="mmi")
    assert _atoms(grouped) == _atoms(pidkit.pid(p, sources=[[1, 2], 3], measure="mmi"))


@pytest.mark.parametrize("measure", ["broja", "imin", "ccs", "sx"])
def test_invariant_to_the_order_of_the_mapping(measure):
    p = random_pmf(np.random.default_rng(3), (3, 2, 3), zeros=0.2)
    d = as_mapping(p)
    items = list(d.items())
    np.random.default_rng(0).shuffle(items)
    shuffled = pidkit.pid(dict(items), measure=measure)
    assert _atoms(shuffled) == _atoms(pidkit.pid(d, measure=measure))


@pytest.mark.parametrize("measure", ["broja", "imin", "mmi", "ccs", "pm", "wedge"])
def test_invariant_to_relabelling(measure):
    p = random_pmf(np.random.default_rng(11), (3, 2, 3), zeros=0.2)
    # strings, negative integers, integers with gaps in another order
    labels = (["c", "a", "b"], [-1, -7], [5, 2, 9])
    ours = pidkit.pid(as_mapping(p, labels), measure=measure)
    array = pidkit.pid(p, measure=measure)
    assert _atoms(ours) == pytest.approx(_atoms(array), abs=1e-9)


def test_target_is_the_key_position():
    p = random_pmf(np.random.default_rng(5), (2, 3, 2), zeros=0.1)
    d = as_mapping(p)
    last = {(x0, x1, y): v for (y, x0, x1), v in d.items()}   # keyed (x0, x1, y)
    for measure in ("broja", "imin"):
        ours = pidkit.pid(last, target=2, measure=measure)
        assert _atoms(ours) == pytest.approx(_atoms(pidkit.pid(p, measure=measure)), abs=1e-9)
    assert pidkit.pid(last, target=-1, measure="mmi").atoms == pidkit.pid(
        last, target=2, measure="mmi").atoms


@pytest.mark.parametrize("measure", ["imin", "mmi", "ccs"])
def test_agrees_with_dit(measure):
    from dit.pid import PID_CCS, PID_MMI, PID_WB

    p = random_pmf(np.random.default_rng(2), (2, 3, 2), zeros=0.15)
    ours = pidkit.pid(as_mapping(p, (["n", "y"], ["a", "b", "c"], [0, 1])), measure=measure)
    theirs = {"imin": PID_WB, "mmi": PID_MMI, "ccs": PID_CCS}[measure](
        dit_distribution(p), sources=[[0], [1]], target=[2])
    key = {frozenset(frozenset(m) for m in node): node for node in theirs._lattice}
    for node in ours.atoms:
        expected = theirs.get_pi(key[frozenset(frozenset(m) for m in node)])
        assert ours.atoms[node] == pytest.approx(expected, abs=1e-9)


def test_labels_are_numbered_as_joint_pmf_numbers_them():
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes", "maybe"], 200)
    x0 = rng.choice([0, 2, 5], 200)                 # integer codes with gaps: their own index
    x1 = rng.choice([True, False], 200)
    counts = collections.Counter(zip(y.tolist(), x0.tolist(), x1.tolist(), strict=True))
    d = {k: n / 200 for k, n in counts.items()}
    np.testing.assert_allclose(pmf_from_mapping(d), pidkit.joint_pmf(y, x0, x1),
                               rtol=0, atol=1e-15)
    assert pmf_from_mapping(d).shape == (3, 6, 2)


def test_whole_number_float_labels_are_codes_as_in_joint_pmf():
    # 2.0 and 2 are the same dict key; joint_pmf reads whole-number floats as codes too
    d = {(0.0, 2.0): 0.5, (1, 0): 0.5}
    np.testing.assert_array_equal(pmf_from_mapping(d),
                                  pidkit.joint_pmf(np.array([0.0, 1.0]), np.array([2.0, 0.0])))
    assert pmf_from_mapping({(0.5, 2.0): 0.5, (1, 0): 0.5}).shape == (2, 3)   # 0.5 is ranked


def test_missing_outcomes_have_probability_zero():
    arr = pmf_from_mapping({("b", 2): 0.5, ("a", 0): 0.5})
    np.testing.assert_array_equal(arr, [[0.5, 0, 0], [0, 0, 0.5]])


def test_broja_information_and_to_dit_take_a_mapping():
    p = random_pmf(np.random.default_rng(9), (2, 2, 3), zeros=0.1)
    d = as_mapping(p)
    assert _atoms(pidkit.broja(d)) == _atoms(pidkit.broja(p))
    assert information.entropy(d) == information.entropy(p)
    assert information.mutual_information(d, [0], [1, 2]) == information.mutual_information(
        p, [0], [1, 2])
    np.testing.assert_array_equal(information.marginal(d, [1]), information.marginal(p, [1]))
    np.testing.assert_array_equal(information.subset_mutual_information(d),
                                  information.subset_mutual_information(p))
    np.testing.assert_array_equal(information.specific_information(d),
                                  information.specific_information(p))
    assert pidkit.to_dit(d).outcomes == pidkit.to_dit(p).outcomes


def test_mapping_types_and_normalize():
    counts = collections.Counter({(0, 0, 0): 1, (0, 0, 1): 1, (0, 1, 0): 1, (1, 1, 1): 1})
    with pytest.raises(PIDValueError, match=r"^p: sums to 4, not 1.*normalize=True"):
        pidkit.pid(counts)
    assert _atoms(pidkit.pid(counts, normalize=True)) == _atoms(pidkit.pid(AND))
    assert _atoms(pidkit.pid(types.MappingProxyType(AND))) == _atoms(pidkit.pid(AND))
    Outcome = collections.namedtuple("Outcome", "y x0 x1")
    named = {Outcome(*k): v for k, v in AND.items()}
    assert _atoms(pidkit.pid(named)) == _atoms(pidkit.pid(AND))


def test_sum_tolerance_follows_the_values_precision():
    near = {(0, 0): 0.5, (1, 1): 0.5 + 5e-9}                # within float64's 1e-8
    assert pidkit.pid(near).redundancy == pytest.approx(1.0, abs=1e-7)
    with pytest.raises(PIDValueError, match=r"^p: sums to 1\.1, not 1"):
        pidkit.pid({(0, 0): 0.5, (1, 1): 0.6})
    third = np.float32(1 / 3)                               # sums to 1 within float32's
    assert pmf_from_mapping({(0, 0): third, (1, 1): third, (2, 2): third}).dtype == np.float32
    assert pidkit.pid({(0, 0): third, (1, 1): third, (2, 2): third}).redundancy == pytest.approx(
        math.log2(3), abs=1e-6)


def test_percentages_are_named():
    with pytest.raises(PIDValueError, match=r"^p: sums to 100, .*percentages: divide p by 100"):
        pidkit.pid({k: 100 * v for k, v in AND.items()})
    with pytest.raises(PIDValueError, match="percentages: divide p by 100"):
        pidkit.pid(100 * pmf_from_mapping(AND))


@pytest.mark.parametrize(("p", "kind", "match"), [
    ({}, PIDValueError, r"^p: is an empty mapping"),
    ({0: 0.5, 1: 0.5}, PIDTypeError, r"^p: has key 0, which is not a tuple.*e\.g\. \(0, 1, 1\)"),
    ({"00": 0.5, "11": 0.5}, PIDTypeError, r"^p: has key '00'.*tuple\(k\)"),
    ({(0, 0): 0.5, (1,): 0.5}, PIDValueError,
     r"^p: has keys of different lengths: \(0, 0\) has 2 labels, \(1,\) has 1"),
    ({(): 1.0}, PIDValueError, r"^p: has the key \(\)"),
    ({(0, 0): "0.5", (1, 1): 0.5}, PIDTypeError,
     r"^p: the probability of outcome \(0, 0\) must be a real number \(got '0\.5'\)"),
    ({(0, 0): None, (1, 1): 1.0}, PIDTypeError, r"^p: the probability of outcome \(0, 0\)"),
    ({(0, 0): True}, PIDTypeError, r"^p: the probability of outcome \(0, 0\) must be a real"),
    ({(0, 0): 0.5 + 0j, (1, 1): 0.5}, PIDTypeError, r"^p: the probability of outcome \(0, 0\)"),
    ({(0, 0): -0.5, (1, 1): 1.5}, PIDValueError,
     r"^p: the probability of outcome \(0, 0\) is negative \(got -0\.5\)"),
    ({(0, 1): math.nan, (1, 1): 1.0}, PIDValueError,
     r"^p: the probability of outcome \(0, 1\) is not a finite float"),
    ({(0, 1): math.inf}, PIDValueError, r"^p: the probability of outcome \(0, 1\) is not"),
    ({(0, 1): 10**400}, PIDValueError, r"^p: the probability of outcome \(0, 1\) is not"),
    ({(None, 1): 1.0}, PIDValueError, r"^p: outcome \(None, 1\) holds a missing label.*position 0"),
    ({(0, math.nan): 1.0}, PIDValueError, r"^p: outcome \(0, nan\) holds a missing label"),
    ({(1, "a"): 0.5, ("b", 1): 0.5}, PIDTypeError,
     r"^p: has labels at key position 0 that do not sort into one order"),
    ({(frozenset({1}), 0): 0.5, (frozenset({2}), 1): 0.5}, PIDTypeError,
     r"^p: has labels at key position 0 that do not sort into one order"),
    ({(0, 10**9): 1.0}, PIDValueError,
     r"^p \(key position 1\): holds code 1000000000.*relabel that position"),
    ({(0,): 1.0}, PIDValueError, r"^p: needs at least 2 axes"),
])
def test_bad_mappings_are_typed_errors_naming_p(p, kind, match):
    with pytest.raises(kind, match=match):
        pidkit.pid(p)


def test_errors_name_the_argument_of_each_function():
    with pytest.raises(PIDValueError, match=r"^p: the probability of outcome \(0, 0, 0\) is neg"):
        pidkit.broja({(0, 0, 0): -1.0, (1, 1, 1): 2.0})
    with pytest.raises(PIDTypeError, match=r"^p: has key 'a'"):
        information.entropy({"a": 1.0})
    with pytest.raises(PIDValueError, match=r"^p: must have 4 axes"):
        pidkit.broja(AND, batch=True)


def test_value_counts_series_is_the_plug_in_pmf():
    """df.value_counts(normalize=True), a Series indexed by outcome tuples, is a pmf outcome by
    outcome: the same array as joint_pmf of the columns (pid said 'needs at least 2 axes')."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"y": rng.choice(["a", "b", "c"], 300), "x0": rng.integers(0, 3, 300),
                       "x1": rng.integers(0, 2, 300)})
    series = df.value_counts(normalize=True)
    np.testing.assert_allclose(pmf_from_mapping(series),
                               pidkit.joint_pmf(df.y, df.x0, df.x1), rtol=0, atol=1e-15)
    for measure in ("broja", "imin"):
        assert _atoms(pidkit.pid(series, measure=measure)) == pytest.approx(
            _atoms(pidkit.pid(pidkit.joint_pmf(df.y, df.x0, df.x1), measure=measure)),
            abs=1e-12)
    assert pidkit.broja(series).synergy == pytest.approx(pidkit.pid(series).synergy, abs=1e-12)
    with pytest.raises(PIDValueError, match=r"^p: sums to 300, not 1"):
        pidkit.pid(df.value_counts())                   # counts: normalize=True was forgotten
