"""Bad inputs to the public API found by an adversarial sweep: each gets a typed error whose
message starts with the argument's name (never a raw numpy / Python exception, a silently
coerced value or a silently wrong answer)."""

import math

import numpy as np
import pytest

import pidkit
from pidkit import information
from pidkit.errors import PIDKitError, PIDTypeError, PIDValueError
from pidkit.estimate import (
    Discretizer,
    GaussianMoments,
    JointCounts,
    count_replicates,
    encode,
    miller_madow_mi_bias,
    one_hot,
    pid_from_counts,
    pid_from_samples,
    plot_sensitivity,
)
from pidkit.estimate import uncertainty as unc
from pidkit.gates import gate, pmf_from_outcomes
from pidkit.lattice import lattice, node_label
from pidkit.result import PIDResult
from pidkit.validation import check_pmf, check_samples

AND = gate("AND")
RNG = np.random.default_rng(0)
N = 60
Y = RNG.integers(0, 2, N)
A = RNG.integers(0, 2, N)
B = Y ^ A
M = RNG.normal(size=N)
X = M + RNG.normal(size=N)
Z = M + RNG.normal(size=N)
QUICK = {"ci": None, "n_perm": 0, "seed": 0}
#: Counts of (y, a, b) in a small XOR-like table.
COUNTS = np.array([[[10, 2], [3, 9]], [[1, 8], [7, 2]]])


def _raises(kind, name, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises pidkit's ``kind`` whose message starts with ``name``."""
    with pytest.raises(kind) as info:
        fn(*args, **kwargs)
    err = info.value
    assert type(err) is kind and isinstance(err, PIDKitError), repr(err)
    assert str(err).startswith(f"{name}: "), str(err)
    return str(err)


# -- samples and pmfs ------------------------------------------------------------------------
def test_ragged_samples_are_a_typed_error():
    _raises(PIDValueError, "target", pidkit.pid_from_samples, [[0], [0, 1]], A[:2], B[:2],
            **QUICK)
    _raises(PIDValueError, "x", check_samples, [[1.0], [1.0, 2.0]], "x")


def test_check_pmf_tolerance_is_checked():
    _raises(PIDValueError, "atol", check_pmf, AND, atol=-1)
    _raises(PIDTypeError, "atol", check_pmf, AND, atol="a")
    assert check_pmf(AND, atol=0.0).sum() == pytest.approx(1)


def test_joint_pmf_refuses_masked_columns():
    """The mask would be dropped: the hidden sample was counted."""
    column = np.ma.masked_array([0, 1, 1], mask=[0, 0, 1])
    msg = _raises(PIDTypeError, "columns[0]", pidkit.joint_pmf, column, [0, 1, 0])
    assert "masked" in msg
    assert pidkit.joint_pmf(column.compressed(), [0, 1]).shape == (2, 2)


@pytest.mark.parametrize("outcomes, kind", [
    ([], PIDValueError),
    ([(0, 1), (0,)], PIDValueError),
    ([()], PIDValueError),
    (None, PIDTypeError),
    ([1, 2], PIDTypeError),
    ("abc", PIDTypeError),
    (iter([(0, 1)]), PIDTypeError),
    ([(0, 1), ("a", 1)], PIDTypeError),
    ([([0], 1)], PIDTypeError),
])
def test_pmf_from_outcomes_checks_its_outcomes(outcomes, kind):
    _raises(kind, "outcomes", pmf_from_outcomes, outcomes)


def test_pmf_from_outcomes_still_takes_tuples_and_array_rows():
    assert np.array_equal(pmf_from_outcomes([(0, 0), (1, 1)]), np.eye(2) / 2)
    assert np.array_equal(pmf_from_outcomes(np.array([[0, 0], [1, 1]])), np.eye(2) / 2)


# -- lattice and results -----------------------------------------------------------------------
def test_node_label_checks_the_node():
    _raises(PIDValueError, "node", node_label, "x")
    _raises(PIDTypeError, "node", node_label, None)
    _raises(PIDTypeError, "node", node_label, (0, 1))
    _raises(PIDValueError, "node", node_label, ((0,), (0, 1)))     # not an antichain
    _raises(PIDValueError, "node", node_label, ((0,), (0,)))
    assert node_label(((1,), (0,))) == node_label("{1}{0}") == "{0}{1}"
    assert node_label(((np.int64(1), 0),)) == "{0:1}"


def test_down_set_strict_must_be_a_bool():
    _raises(PIDTypeError, "strict", lattice(2).down_set, "{0}", strict="x")
    assert lattice(2).down_set("{0}", strict=True) == [((0,), (1,))]


def test_result_base_is_checked():
    atoms = dict(pidkit.pid(AND, measure="mmi").atoms)
    _raises(PIDValueError, "base", PIDResult, atoms=atoms, measure="mmi", base=1,
            mutual_information=0.8)
    _raises(PIDTypeError, "base", PIDResult, atoms=atoms, measure="mmi", base="a",
            mutual_information=0.8)


def test_result_atoms_must_be_the_nodes_of_a_lattice():
    """A partial map used to be accepted, and r.synergy then raised a bare KeyError."""
    msg = _raises(PIDValueError, "atoms", PIDResult, atoms={"{0}{1}": 0.1}, measure="mmi",
                  base=2, mutual_information=0.1)
    assert "'{0:1}'" in msg
    _raises(PIDValueError, "atoms", PIDResult, atoms={((0,), (0, 1)): 0.1, ((0,),): 0.2,
                                                      ((1,),): 0.3, ((0, 1),): 0.4},
            measure="mmi", base=2, mutual_information=1.0)
    _raises(PIDValueError, "atoms", PIDResult, atoms={((7,),): 0.1}, measure="mmi", base=2,
            mutual_information=0.1)


def test_plot_ax_must_be_axes():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    _raises(PIDTypeError, "ax", pidkit.pid(AND, measure="mmi").plot, ax="x")


# -- pid_from_samples and its pieces -----------------------------------------------------------
def test_names_must_be_strings():
    _raises(PIDTypeError, "names", pidkit.pid_from_samples, Y, A, B, names=[1, 2, 3], **QUICK)
    _raises(PIDTypeError, "names", pidkit.pid_from_samples, Y, A, B, names={"a", "b", "c"},
            **QUICK)
    r = pidkit.pid_from_samples(Y, A, B, names=("T", "L", "R"), **QUICK)
    assert (r.target_name, r.source_names) == ("T", ("L", "R"))


def test_discretize_target_must_be_a_bool():
    features = RNG.normal(size=(N, 3))
    for flag in ("yes", 1):
        _raises(PIDTypeError, "discretize_target", pidkit.pid_from_samples, M, features,
                features, estimator="discretize", n_clusters=3, discretize_target=flag, **QUICK)


def test_discretizer_checks_settings_its_method_does_not_use():
    features = RNG.normal(size=(N, 3))
    _raises(PIDValueError, "n_bins", Discretizer(n_clusters=3, n_bins=0).fit, features)
    _raises(PIDValueError, "n_clusters",
            Discretizer(method="quantile", n_clusters=0).fit, features)
    _raises(PIDValueError, "n_bins", pidkit.pid_from_samples, Y, features, features,
            estimator="discretize", n_clusters=3, n_bins=0, **QUICK)


def test_discretizer_repr_with_an_array_setting():
    assert "n_components=array([1, 2])" in repr(Discretizer(n_components=np.array([1, 2])))


def test_gaussian_fit_size_is_checked_without_projection():
    _raises(PIDValueError, "fit_size", pidkit.pid_from_samples, M, X, Z,
            estimator="gaussian", fit_size=1, **QUICK)
    _raises(PIDTypeError, "fit_size", pidkit.pid_from_samples, M, X, Z,
            estimator="gaussian", fit_size="all", **QUICK)


def test_gaussian_moments_shift_and_base_are_checked():
    _raises(PIDTypeError, "shift", GaussianMoments, shift="a")
    _raises(PIDTypeError, "shift", GaussianMoments, shift=[1j, 0, 0])
    _raises(PIDTypeError, "shift", GaussianMoments,
            shift=np.ma.masked_array([1.0, 0, 0], mask=[1, 0, 0]))
    _raises(PIDValueError, "shift", GaussianMoments, shift=[np.nan, 0, 0])
    moments = GaussianMoments().update(M, X, Z)
    _raises(PIDValueError, "base", moments.pid, base=1)      # was a ZeroDivisionError
    assert moments.pid(base=math.e).redundancy == pytest.approx(
        moments.pid().redundancy * math.log(2))


@pytest.mark.parametrize("labels, kind", [
    (np.array([np.nan, 1.0, 0.0]), PIDValueError),
    (np.array([None, 1], dtype=object), PIDValueError),     # a missing label
    (np.array(["a", 1], dtype=object), PIDTypeError),       # labels that do not sort together
    (np.array([1j, 0]), PIDTypeError),
    (np.ma.masked_array([1, 2], mask=[0, 1]), PIDTypeError),
    (None, PIDTypeError),
    ([[0], [0, 1]], PIDValueError),
])
def test_encode_refuses_bad_labels(labels, kind):
    _raises(kind, "labels", encode, labels)


def test_encode_still_takes_strings():
    assert encode(np.array(["b", "a", "b"]))[1] == 2
    assert encode(np.array(["b", "a"], dtype=object))[0].tolist() == [1, 0]


def test_one_hot_checks_its_options():
    labels = np.array([0, 1, 1])
    _raises(PIDTypeError, "n_classes", one_hot, labels, 1.5)
    _raises(PIDValueError, "n_classes", one_hot, labels, 0)
    _raises(PIDTypeError, "drop_last", one_hot, labels, drop_last="x")
    msg = _raises(PIDValueError, "labels", one_hot, np.array([0, 10**12]))  # not a MemoryError
    assert "cells" in msg


def test_counts_are_checked_everywhere():
    _raises(PIDTypeError, "counts", pid_from_counts,
            np.ma.masked_array(COUNTS, mask=COUNTS > 8), **QUICK)
    assert "int64" in _raises(PIDValueError, "counts", pid_from_counts, COUNTS * 1e300,
                              **QUICK)
    _raises(PIDTypeError, "details", pid_from_counts, COUNTS, details=3, **QUICK)
    _raises(PIDValueError, "counts", miller_madow_mi_bias, COUNTS - 100)
    _raises(PIDValueError, "counts", miller_madow_mi_bias, np.where(COUNTS > 8, np.nan, COUNTS))
    _raises(PIDTypeError, "counts", miller_madow_mi_bias, "abc")
    _raises(PIDValueError, "counts", miller_madow_mi_bias, np.zeros((2, 2)))
    assert miller_madow_mi_bias(COUNTS.tolist()) == miller_madow_mi_bias(COUNTS)
    _raises(PIDValueError, "n_boot", count_replicates, COUNTS, "mmi", n_boot=-1, n_perm=3,
            seed=0)
    _raises(PIDTypeError, "n_perm", count_replicates, COUNTS, "mmi", n_boot=3, n_perm=1.5,
            seed=0)


def test_plot_sensitivity_checks_its_table_columns_and_axes():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    table = [{"n_components": 2, "n_clusters": k, "redundancy": 0.1, "unique_0": 0.2,
              "unique_1": 0.0, "synergy": 0.3, "mutual_information": 0.6, "unit": "bits"}
             for k in (3, 4)]
    _raises(PIDValueError, "x", plot_sensitivity, table, x="nope")
    _raises(PIDValueError, "group", plot_sensitivity, table, group="nope")
    _raises(PIDTypeError, "axes", plot_sensitivity, table, axes="x")
    _raises(PIDTypeError, "table", plot_sensitivity, "abc")
    _raises(PIDTypeError, "table", plot_sensitivity, [1, 2])
    assert len(plot_sensitivity(table, atoms="synergy")) == 1


def test_uncertainty_engine_checks_its_arguments():
    point, boot = np.zeros(3), np.zeros((5, 3))
    _raises(PIDValueError, "ci", unc.interval, point, boot, 1.5)
    _raises(PIDValueError, "boot", unc.interval, point, np.zeros((0, 3)), 0.9)
    _raises(PIDValueError, "boot", unc.interval, point, np.zeros((5, 4)), 0.9)
    _raises(PIDValueError, "null", unc.p_values, point, np.zeros((5, 4)))
    rng = np.random.default_rng(0)
    _raises(PIDValueError, "size", unc.permutations, rng, 5, -1)
    _raises(PIDValueError, "n_boot", unc.poisson_weights, np.arange(3), -1, 0)
    _raises(PIDValueError, "weights", unc.bootstrap_counts, rng, np.array([-1.0, 2.0]), 3)
    _raises(PIDTypeError, "result", unc.vector, None)
    _raises(PIDValueError, "bootstrap", unc.drop_failed, np.array([1.0, np.nan]), "bootstrap")


# -- information functions ---------------------------------------------------------------------
def test_information_functions_check_their_inputs():
    _raises(PIDValueError, "p", information.entropy, np.array([np.nan, 1.0]))
    _raises(PIDValueError, "p", information.entropy, np.array([-0.5, 1.5]))
    _raises(PIDTypeError, "p", information.entropy, "ab")
    _raises(PIDValueError, "keep", information.marginal, AND, (5,))
    _raises(PIDValueError, "b", information.mutual_information, AND, (0,), (7,))
    _raises(PIDValueError, "mask", information.source_axes, -1)
    _raises(PIDTypeError, "mask", information.source_axes, "a")
    _raises(PIDValueError, "p", information.subset_mutual_information, np.array(1.0))
    _raises(PIDValueError, "p", information.specific_information, np.array([[np.nan]]))
    # a negative axis counts from the end (it used to sum every axis out)
    assert np.array_equal(information.marginal(AND, (-1,)), information.marginal(AND, (2,)))


def test_discretize_with_a_continuous_target_names_discretize_target():
    rng = np.random.default_rng(0)
    y, a, b = rng.normal(size=(3, 200))
    with pytest.raises(PIDValueError, match="target.*discretize_target=True"):
        pid_from_samples(y, a, b, estimator="discretize")
    r = pid_from_samples(y, a, b, estimator="discretize", discretize_target=True,
                         n_clusters=3, n_boot=0)
    assert r.mutual_information >= 0


def test_unknown_keywords_of_jointcounts_pid_and_presets_are_typed_errors():
    counts = JointCounts()
    counts.update(np.array([0, 1, 0, 1]), np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0]))
    with pytest.raises(PIDTypeError, match="^tol: .*measure_options"):
        counts.pid(tol=1e-3)
    assert counts.pid(measure_options={"tol": 1e-6}, n_boot=0, n_perm=0).mutual_information > 0
    with pytest.raises(PIDTypeError, match="^nope: is not a Discretizer setting"):
        Discretizer.from_preset("paper-cifar10", nope=1)
    assert Discretizer.from_preset("paper-cifar10", n_clusters=4).get_params()["n_clusters"] == 4


# -- second sweep: lattice, results, interop, Gaussian API, estimators --------------------------
def test_moebius_and_cumulate_refuse_non_finite_values():
    """NaN used to spread silently to every atom above it."""
    lat = lattice(2)
    msg = _raises(PIDValueError, "redundancy", lat.moebius, [np.nan, 0.0, 0.0, 1.0])
    assert "'{0}{1}'" in msg
    _raises(PIDValueError, "atoms", lat.cumulate,
            {"{0}{1}": 0.1, "{0}": np.inf, "{1}": 0.0, "{0:1}": 0.2})
    top = lattice(3).top
    msg = _raises(PIDValueError, "redundancy", lattice(3).moebius,
                  {a: (np.nan if a == top else 0.0) for a in lattice(3).nodes})
    assert "'{0:1:2}'" in msg
    assert lat.moebius([0.1, 0.3, 0.2, 1.0])[((0, 1),)] == pytest.approx(1.0 - 0.3 - 0.2 + 0.1)


def test_bootstrap_still_drops_replicates_it_cannot_evaluate():
    """The engine's NaN rows never reach the lattice: 6 Gaussian samples make some resampled
    covariances singular; those replicates are dropped and the intervals stay finite."""
    m, x, z = np.random.default_rng(3).normal(size=(3, 6))
    with pytest.warns(UserWarning, match="could not be evaluated"):
        r = pid_from_samples(m, x, z, estimator="gaussian", measure="mmi", n_boot=40, n_perm=0,
                             seed=0)
    assert r.details["dropped_replicates"]["bootstrap"] == 12
    assert np.isfinite([v for pair in r.intervals.values() for v in pair]).all()


def test_summaries_refuse_replicates_that_failed():
    """A NaN row gave NaN intervals and p-values computed over the wrong number of shuffles."""
    point, reps = np.zeros(3), np.ones((5, 3))
    reps[2] = np.nan
    assert "1 replicate" in _raises(PIDValueError, "boot", unc.interval, point, reps, 0.9)
    _raises(PIDValueError, "null", unc.p_values, point, reps)
    _raises(PIDValueError, "point", unc.interval, np.array([np.nan, 0, 0]), np.ones((5, 3)), 0.9)
    with pytest.warns(UserWarning, match="1 of 5 replicates"):
        kept, dropped = unc.drop_failed(reps, "bootstrap")
    assert dropped == 1 and unc.p_values(point, kept).tolist() == [1.0] * 3


def test_node_errors_name_the_argument_passed():
    """Errors about a malformed label used to say 'node' whatever the argument was."""
    lat = lattice(2)
    _raises(PIDValueError, "atoms", pidkit.AtomMap, {"junk": 1.0})
    _raises(PIDValueError, "atoms", PIDResult, atoms={"{0}{1}": 0.1, "{x}": 0.2}, measure="mmi",
            base=2, mutual_information=0.3)
    _raises(PIDValueError, "redundancy", lat.moebius,
            {"{0}{1}": 0.0, "{0}": 0.0, "{1}": 0.0, "x": 1.0})
    _raises(PIDValueError, "atoms", lat.cumulate, {"{0:}": 1.0})
    _raises(PIDValueError, "b", lat.leq, "{0}", "{x}")
    _raises(PIDValueError, "a", lat.leq, "0", "{0}")
    _raises(PIDValueError, "label", pidkit.parse_node, "{0}{0}", "label")


def test_plot_names_an_unknown_keyword():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    r = pidkit.pid(AND, measure="mmi")
    assert "Axes.bar" in _raises(PIDTypeError, "nope", r.plot, nope=3)  # was AttributeError
    _raises(PIDTypeError, "height", r.plot, height=[1, 2, 3, 4])       # was TypeError
    ax = r.plot(color="red", lw=2, width=0.5, label="mmi", alpha=0.5)
    assert [p.get_width() for p in ax.patches] == [0.5] * 4
    plt.close("all")


def test_dit_distribution_where_an_array_is_expected_is_a_typed_error():
    """numpy reads a dit distribution as its table of outcomes: entropy, counts and BROJA used
    the outcome codes as numbers (entropy returned 0, pid_from_counts a wrong estimate)."""
    pytest.importorskip("dit")
    xor = pidkit.to_dit(gate("XOR"))
    assert "from_dit" in _raises(PIDTypeError, "p", information.entropy, xor)
    _raises(PIDTypeError, "p", pidkit.broja, xor)
    _raises(PIDTypeError, "counts", pid_from_counts, xor, **QUICK)
    _raises(PIDTypeError, "columns[0]", pidkit.joint_pmf, xor)
    _raises(PIDTypeError, "cov", pidkit.gaussian_pid, xor, dims=(1, 1, 1))
    _raises(PIDTypeError, "target", pid_from_samples, xor, A, B, **QUICK)
    assert pidkit.pid(xor, measure="mmi").synergy == pytest.approx(1.0)
    assert pidkit.broja(pidkit.from_dit(xor)[0]).synergy == pytest.approx(1.0, abs=1e-6)


def test_dit_distributions_with_string_and_multi_character_outcomes():
    dit = pytest.importorskip("dit")
    d = dit.Distribution([("lo", "a", "x"), ("hi", "b", "x"), ("hi", "a", "y")],
                         [0.5, 0.25, 0.25])
    d.set_rv_names(["T", "L", "R"])
    p, names = pidkit.from_dit(d)
    assert names == ("T", "L", "R") and p.shape == (2, 2, 2)
    # each alphabet sorted: T (hi, lo), L (a, b), R (x, y)
    assert (p[1, 0, 0], p[0, 1, 0], p[0, 0, 1], p.sum()) == (0.5, 0.25, 0.25, 1.0)
    r = pidkit.pid(d, measure="mmi")
    assert (r.target_name, r.source_names) == ("T", ("L", "R"))
    assert r.mutual_information == pytest.approx(information.mutual_information(p, (0,), (1, 2))
                                                 / math.log(2))
    loose = dit.Distribution(["000", "011"], [0.5, 0.7], validate=False)
    assert "sums to 1.2" in _raises(PIDValueError, "p", pidkit.pid, loose)


def test_information_functions_refuse_unnormalised_arrays():
    """entropy([2, 3]) returned -4.68 nats: H(cq) = c H(q) - c ln c, silently."""
    assert "sums to 5" in _raises(PIDValueError, "p", information.entropy, np.array([2.0, 3.0]))
    _raises(PIDValueError, "p", information.mutual_information, np.ones((2, 2)), (0,), (1,))
    assert information.entropy(np.array([0.5, 0.5], dtype=np.float32)) == pytest.approx(
        math.log(2))
    assert information.entropy([[0.25, 0.25], [0.5, 0.0]]) == pytest.approx(
        -2 * 0.25 * math.log(0.25) - 0.5 * math.log(0.5))


def test_gaussian_pid_refuses_a_ragged_batch():
    cov = np.array([[1.0, 0.5, 0.4], [0.5, 1.0, 0.2], [0.4, 0.2, 1.0]])
    _raises(PIDValueError, "cov", pidkit.gaussian_pid, [cov, cov[:2, :2]], dims=(1, 1, 1))
    single = pidkit.gaussian_pid(cov, dims=(1, 1, 1)).redundancy
    assert pidkit.gaussian_pid([cov, cov], dims=(1, 1, 1)).redundancy.tolist() == [single] * 2


def test_measure_options_of_the_estimators_are_named_measure_options():
    """They were reported as 'options', an argument the caller never passed."""
    msg = _raises(PIDValueError, "measure_options", pid_from_counts, COUNTS,
                  measure_options={"nope": 1}, **QUICK)
    assert "tol, max_iter" in msg
    _raises(PIDValueError, "measure_options", pid_from_samples, Y, A, B, measure="mmi",
            measure_options={"tol": 1e-6}, **QUICK)
    _raises(PIDValueError, "measure", pid_from_counts, COUNTS, measure="brojaa", **QUICK)


def test_a_percentage_as_confidence_level_gets_the_fraction_advice():
    msg = _raises(PIDValueError, "ci", pid_from_samples, Y, A, B, ci=95, n_boot=5)
    assert "ci=0.95" in msg
    _raises(PIDValueError, "ci", pid_from_samples, Y, A, B, ci=1.0, n_boot=5)


def test_string_labels_are_labels_on_the_discrete_route_and_refused_on_the_gaussian_one():
    """They were refused with the advice to encode them (tests/test_string_labels.py)."""
    labels = np.array(["no", "yes"])[Y]
    r = pid_from_samples(labels, A, B, measure="mmi", **QUICK)
    assert r.mutual_information == pytest.approx(
        pid_from_samples(Y, A, B, measure="mmi", **QUICK).mutual_information, abs=1e-12)
    msg = _raises(PIDTypeError, "target", pid_from_samples, labels, X, Z, estimator="gaussian",
                  **QUICK)
    assert "encode(target)" in msg and "estimator='plugin'" in msg


def test_empty_gaussian_moments_say_they_have_no_samples():
    """It used to say 'has -1 sources'."""
    assert "no samples" in _raises(PIDValueError, "GaussianMoments", GaussianMoments().pid)


# -- consistency between related entry points (follow-up of the sweep) -------------------------
def test_joint_counts_take_whole_number_floats_as_pid_from_samples_does():
    """Float arrays of whole numbers are codes for pid_from_samples; JointCounts refused them."""
    y, a, b = Y.astype(float), A.astype(np.float32), B.tolist()
    floats = JointCounts().update(y, a, b)
    ints = JointCounts().update(Y, A, B)
    np.testing.assert_array_equal(floats.counts, ints.counts)
    # the counts are those of the samples themselves (independent of JointCounts' code path)
    expected = np.zeros((2, 2, 2), dtype=np.int64)
    np.add.at(expected, (Y, A, B), 1)
    np.testing.assert_array_equal(floats.counts, expected)
    assert floats.pid(measure="mmi", **QUICK).to_dict()["atoms"] == \
        pid_from_samples(y, a, np.asarray(b, float), estimator="plugin", measure="mmi",
                         **QUICK).to_dict()["atoms"]
    small = JointCounts().update(np.array([0., 1.]), [0, 1], [1, 0])
    np.testing.assert_array_equal(small.counts, [[[0, 1], [0, 0]], [[0, 0], [1, 0]]])


@pytest.mark.parametrize(("column", "kind", "name", "words"), [
    (np.array([0.5, 1.0]), PIDTypeError, "target", "non-integer"),
    ([0.0, 2.5], PIDTypeError, "target", "non-integer"),
    (np.array([np.nan, 1.0]), PIDValueError, "target", "NaN"),
    (np.array([-1.0, 1.0]), PIDValueError, "target", "negative"),
    (np.array([1e20, 0.0]), PIDValueError, "target", "cells"),
], ids=["half", "list", "nan", "negative", "huge"])
def test_joint_counts_still_refuse_floats_that_are_not_codes(column, kind, name, words):
    msg = _raises(kind, name, JointCounts().update, column, [0, 1])
    assert words in msg
    # the same non-integer target is refused by pid_from_samples too
    if words == "non-integer":
        _raises(PIDValueError, "target", pid_from_samples, np.resize(column, N), A, B, **QUICK)


def test_joint_counts_name_the_float_source_and_read_float_tensors_as_codes():
    torch = pytest.importorskip("torch")
    msg = _raises(PIDTypeError, "sources[1]", JointCounts().update, [0, 1], [0, 1],
                  np.array([0.0, 0.25]))
    assert "integer codes" in msg
    # a float tensor of whole numbers is codes, as for numpy floats and pid_from_samples
    floats = JointCounts().update(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]))
    np.testing.assert_array_equal(floats.counts, [[1, 0], [0, 1]])
    msg = _raises(PIDTypeError, "sources[0]", JointCounts().update, torch.tensor([0, 1]),
                  torch.tensor([0.0, 0.25]))
    assert "integer codes" in msg


def test_gaussian_moments_with_a_constant_variable_name_it():
    """It said 'cov: the target block is constant' although the user passed samples (a
    constant target now gives zeros, with a warning naming it)."""
    with pytest.warns(UserWarning, match="^target: is constant"):
        assert GaussianMoments().update(np.ones(N), X, Z).pid().mutual_information == 0.0
    msg = _raises(PIDValueError, "sources[1]",
                  GaussianMoments().update(M, X, np.zeros(N)).pid)
    assert "is constant" in msg and "constant source" in msg


@pytest.mark.parametrize(("blocks", "name", "other"), [
    ((M, 2 * M + 1, Z), "x", "m"),
    ((M, X, np.c_[X, -3 * M]), "y", "m"),
    ((X + Z, X, Z), "m", "x and y"),
], ids=["x-collinear", "y-collinear", "both"])
def test_gaussian_pid_from_samples_names_the_collinear_argument(blocks, name, other):
    msg = _raises(PIDValueError, name, pidkit.gaussian_pid_from_samples, *blocks, n_boot=0,
                  n_perm=0, ci=None)
    assert f"is collinear with {other}" in msg and "infinite" in msg
    assert not msg.startswith("cov")


def test_collinear_samples_name_the_arguments_in_every_sample_entry_point():
    _raises(PIDValueError, "sources[0]", pid_from_samples, M, 2 * M, Z, estimator="gaussian",
            **QUICK)
    _raises(PIDValueError, "sources[1]", pid_from_samples, M, X, -M, estimator="gaussian",
            **QUICK)
    msg = _raises(PIDValueError, "sources[0]", GaussianMoments().update(M, 2 * M, Z).pid)
    assert "is collinear with target" in msg
    msg = _raises(PIDValueError, "target", GaussianMoments().update(X + Z, X, Z).pid)
    assert "is collinear with sources[0] and sources[1]" in msg


def test_gaussian_pid_on_a_covariance_still_names_cov():
    """The covariance API is unchanged: there the user did pass cov."""
    cov = np.cov(np.c_[M, 2 * M, Z].T)
    msg = _raises(PIDValueError, "cov", pidkit.gaussian_pid, cov, (1, 1, 1))
    assert "infinite information" in msg
    _raises(PIDValueError, "cov", pidkit.gaussian_pid, np.diag([0.0, 1.0, 1.0]), (1, 1, 1))


def test_subset_informations_refuse_more_sources_than_their_loop_can_take():
    # 2**n source sets: 16 sources took 31 s, 20 would take hours
    p = np.zeros((2,) * 14)
    p.flat[0] = p.flat[-1] = 0.5
    for fn in (information.subset_mutual_information, information.specific_information):
        with pytest.raises(PIDValueError, match=r"^p: has 13 sources; every one of their "
                                                r"2\*\*13 subsets"):
            fn(p)
    twelve = p.sum(axis=-1)                     # 12 sources: computed (Y is a copy of each)
    assert information.subset_mutual_information(twelve)[-1] == pytest.approx(math.log(2))


def test_gh_at_a_tolerance_below_its_resolution_stops_with_a_certificate():
    # the branch and bound split its simplices until their normals were 0 / 0 (raw ValueError)
    p = np.random.default_rng(0).dirichlet(np.ones(8)).reshape(2, 2, 2)
    exact = pidkit.pid(p, measure="gh", base=math.e)
    with pytest.warns(pidkit.ConvergenceWarning, match="More iterations cannot help: loosen tol"):
        tight = pidkit.pid(p, measure="gh", base=math.e, tol=1e-20)
    cert = tight.solver.certificate
    assert tight.solver.status == "max_iter" and 0 < cert.gap < 1e-9
    assert cert.lower - 1e-12 <= exact.redundancy <= cert.upper + 1e-12


def test_proj_with_sources_of_very_different_alphabets(monkeypatch):
    # one direction's problems were padded to the other's alphabet: a 2 x 2000 x 2 pmf asked
    # for 60 GB (raw MemoryError); each direction is now its own batch
    from pidkit.discrete import proj

    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(2 * 400 * 2)).reshape(2, 400, 2)
    r = pidkit.pid(p, measure="proj")
    swapped = pidkit.pid(p.transpose(0, 2, 1), measure="proj")
    assert r.solver.converged and r.redundancy == pytest.approx(swapped.redundancy, abs=1e-9)
    assert min(r.redundancy, *r.unique) >= -1e-12     # I_proj <= min_i I(Y; X_i)
    # the Woodbury solver's arrays grow as the pmf (500 x 500 x 2 entries here), so the limit
    # is lowered to see its refusal on a table small enough for a test
    monkeypatch.setattr(proj, "MAX_NEWTON_ENTRIES", 10**5)
    with pytest.raises(PIDValueError, match=r"^p: has 500 values of X0 with mass to project "
                                            r"onto the hull of 500 conditionals of X1: the "
                                            r"Newton systems would hold 5e\+05 entries"):
        pidkit.pid(rng.dirichlet(np.ones(2 * 500 * 500)).reshape(2, 500, 500), measure="proj")


def test_too_many_variables_and_object_arrays_get_the_right_cause():
    with pytest.raises(PIDValueError, match=r"^columns\[0\], \.\.\., columns\[29\]: are 30 "
                                            r"variables whose joint table"):
        pidkit.joint_pmf(*[[0, 1]] * 30)
    with pytest.raises(PIDValueError, match=r"^columns\[0\]: holds code 1099511627776"):
        pidkit.joint_pmf([0, 2**40], [0, 1])
    with pytest.raises(PIDTypeError, match=r"^p: has dtype object\. Convert it with "
                                           r"np\.asarray\(p, dtype=float\)"):
        pidkit.pid(np.full((2, 2, 2), 0.125).astype(object))


def test_redundancy_values_are_not_called_probabilities():
    from pidkit.lattice import Lattice

    with pytest.raises(PIDTypeError, match=r"^redundancy: must be an array of values, one per "
                                           r"lattice node, not None\. Pass a numpy array or "
                                           r"nested lists of numbers$"):
        Lattice(2).moebius(None)


def test_hand_built_results_check_intervals_solver_and_details():
    # str(r) raised KeyError for intervals keyed by labels or missing atoms, AttributeError for
    # solver=None
    from pidkit.result import PIDResult

    atoms = {"{0}{1}": 0.1, "{0}": 0.2, "{1}": 0.3, "{0:1}": 0.4}
    with pytest.raises(PIDValueError, match=r"^intervals: misses the atoms"):
        PIDResult(atoms, "imin", 2.0, 1.0, intervals={"{0}": (0.0, 1.0)})
    with pytest.raises(PIDTypeError, match=r"^solver: is a NoneType"):
        PIDResult(atoms, "imin", 2.0, 1.0, solver=None)
    with pytest.raises(PIDTypeError, match=r"^details: is a list"):
        PIDResult(atoms, "imin", 2.0, 1.0, details=[1])
    r = PIDResult(atoms, "imin", 2.0, 1.0, intervals={k: (0.0, 1.0) for k in atoms})
    assert str(r).count("[0.000000, 1.000000]") == 4
    assert r.intervals[((0,), (1,))] == (0.0, 1.0)


# -- second sweep: core helpers, result objects and plain data -------------------------------
def test_a_base_beyond_float_range_is_a_typed_error():
    # float(2**1100) raised a bare OverflowError from check_base
    _raises(PIDValueError, "base", pidkit.pid, AND, base=2**1100)
    _raises(PIDValueError, "base", pidkit.gaussian_pid, np.eye(3) + 0.5, (1, 1, 1),
            base=-(2**1100))


@pytest.mark.parametrize("bad", [(v for v in Y), {1: 2}, {0, 1}, None],
                         ids=["generator", "dict", "set", "None"])
@pytest.mark.parametrize("call, name", [
    (lambda v: pid_from_samples(v, A, B, **QUICK), "target"),
    (lambda v: JointCounts().update(Y, v), "sources[0]"),
    (lambda v: encode(v), "labels"),
    (lambda v: pidkit.gaussian_pid(v, (1, 1, 1)), "cov"),
    (lambda v: pid_from_counts(v, **QUICK), "counts"),
    (lambda v: Discretizer(n_clusters=2).fit(v), "X"),
    (lambda v: pidkit.joint_pmf(Y, v), "columns[1]"),
], ids=["pid_from_samples", "JointCounts.update", "encode", "gaussian_pid",
        "pid_from_counts", "Discretizer.fit", "joint_pmf"])
def test_objects_that_are_not_arrays_say_what_they_are(call, name, bad):
    # numpy wraps a generator, dict or set as a 0-d object array: encode said "holds no
    # samples" (a PIDValueError), the others "must hold numbers, not dtype object ... encode
    # category labels", and joint_pmf "must be 1-D, got shape ()"
    message = _raises(PIDTypeError, name, call, bad)
    assert ("None" if bad is None else type(bad).__name__) in message


@pytest.mark.parametrize("data, cls, field", [
    (5, "Certificate", None), ({}, "Certificate", None),
    ({"quantity": "unique[0]", "lower": "a", "upper": 1.0}, "Certificate", "lower"),
    (5, "SolverInfo", None), ({}, "SolverInfo", None),
    ({"status": "optimal", "converged": "no"}, "SolverInfo", "converged"),
    ({"status": None, "converged": True}, "SolverInfo", "status"),
    ({"status": "optimal", "converged": True, "residual": "x"}, "SolverInfo", "residual"),
])
def test_certificate_and_solver_info_from_dict_are_typed(data, cls, field):
    # Certificate.from_dict(5) raised a bare TypeError, ({}) a KeyError; SolverInfo.from_dict
    # an AttributeError or KeyError; bool("no") read converged="no" as True
    from pidkit import result

    kind = PIDTypeError if not isinstance(data, dict) else PIDValueError
    message = _raises(kind, "data", getattr(result, cls).from_dict, data)
    assert field is None or f"{field}: " in message


@pytest.mark.parametrize("field, value", [
    ("atoms", {"{0}{1}": "a", "{0}": 0.0, "{1}": 0.0, "{0:1}": 0.0}),
    ("atoms", {"{0}{1}": None, "{0}": 0.0, "{1}": 0.0, "{0:1}": 0.0}),
    ("mutual_information", "abc"),
    ("measure", None),
    ("target_name", None),
    ("source_names", [1, 2]),
    ("source_names", ["only one"]),
    ("source_names", "ab"),
    ("intervals", {k: [0.0, "x"] for k in ("{0}{1}", "{0}", "{1}", "{0:1}")}),
])
def test_result_from_dict_refuses_edited_values_instead_of_coercing_them(field, value):
    # were accepted: str(None) became the measure "None", string atoms failed later in str(r)
    # with a raw ValueError, names of the wrong number or kind in the table
    data = {**pidkit.pid(AND).to_dict(), field: value}
    message = _raises(PIDValueError, "data", PIDResult.from_dict, data)
    assert field in message


@pytest.mark.parametrize("kwargs, kind, name", [
    ({"atoms": {"{0}": "a"}}, PIDTypeError, "atoms['{0}']"),
    ({"atoms": {"{0}": True}}, PIDTypeError, "atoms['{0}']"),
    ({"mutual_information": None}, PIDTypeError, "mutual_information"),
    ({"measure": 3}, PIDTypeError, "measure"),
    ({"source_names": ("a", "b")}, PIDValueError, "source_names"),
    ({"source_names": (0,)}, PIDTypeError, "source_names"),
    ({"intervals": {"{0}": (0.0, 1.0, 2.0)}}, PIDTypeError, "intervals['{0}']"),
])
def test_hand_built_results_check_their_values(kwargs, kind, name):
    fields = {"atoms": {"{0}": 0.5}, "measure": "mmi", "base": 2,
              "mutual_information": 0.5, **kwargs}
    _raises(kind, name, PIDResult, **fields)


def test_every_result_reads_back_from_json():
    # the fixed-iteration BROJA result's to_dict held a 0-d tensor (solver.converged), which
    # json.dumps refused
    import json

    torch = pytest.importorskip("torch")
    results = [pidkit.pid(AND), pidkit.broja(np.stack([AND, AND]), batch=True),
               pidkit.broja(torch.tensor(np.stack([AND, AND])), batch=True, iterations=3),
               pidkit.gaussian_pid(np.stack([np.eye(3) + 0.5] * 2), (1, 1, 1))]
    for r in results:
        back = PIDResult.from_dict(json.loads(json.dumps(r.to_dict())))
        assert back == r and back.to_dict() == json.loads(json.dumps(r.to_dict()))


def test_result_helpers_check_their_arguments():
    from pidkit.result import default_source_names, to_plain, unit_name

    _raises(PIDTypeError, "base", unit_name, "x")       # float('x'): a bare ValueError
    _raises(PIDValueError, "base", unit_name, 0)        # was "log base 0"
    _raises(PIDTypeError, "n_sources", default_source_names, 1.5)
    _raises(PIDValueError, "n_sources", default_source_names, -1)   # was ()
    _raises(PIDTypeError, "strict", to_plain, 1.0, strict=1)
    cycle = []
    cycle.append(cycle)
    _raises(PIDValueError, "value", to_plain, {"a": cycle})          # was a RecursionError
    shared = [1]
    assert to_plain([shared, shared]) == [[1], [1]]     # a repeat is not a cycle


# -- second sweep: estimators from samples ---------------------------------------------------
@pytest.mark.parametrize("ddof, kind", [("a", PIDTypeError), (None, PIDTypeError),
                                        (True, PIDTypeError), (1.5, PIDTypeError),
                                        (-1, PIDValueError)])
def test_gaussian_moments_ddof_is_checked(ddof, kind):
    # "a" and None were bare TypeErrors from n - ddof; True, 1.5 and -1 were used as numbers
    moments = GaussianMoments().update(M, X, Z)
    _raises(kind, "ddof", moments.to_covariance, ddof=ddof)
    assert moments.to_covariance(ddof=1).shape == (3, 3)


def test_sensitivity_names_an_estimator_it_does_not_take():
    # pid_from_samples got estimator twice: a bare "multiple values for keyword argument"
    Xs = RNG.normal(size=(N, 3))
    _raises(PIDTypeError, "estimator", pidkit.estimate.sensitivity, Y, Xs, Xs[:, ::-1],
            n_clusters=[2], n_components=[2], estimator="plugin")


def test_counts_whose_total_overflows_int64_are_refused():
    # each cell fits int64 but the int64 sum wrapped: pid_from_counts said "p: is empty (shape
    # (0, 0, 0))" and miller_madow_mi_bias returned a value of the wrapped total
    huge = COUNTS * 3 * 10**17       # cells up to 3e18, 1.3e19 in all
    _raises(PIDValueError, "counts", pid_from_counts, huge, **QUICK)
    _raises(PIDValueError, "counts", miller_madow_mi_bias, huge)


def test_a_table_of_many_samples_without_a_null_builds_no_per_sample_rows():
    # one index per sample was built for the shuffle null even with n_perm=0: 2.7e16 samples
    # asked for exabytes (a bare MemoryError); the bootstrap resamples cells
    many = pid_from_counts(COUNTS * 10**15, ci=0.9, n_boot=5, n_perm=0, seed=0)
    few = pid_from_counts(COUNTS, ci=None, n_perm=0, seed=0)
    assert all(many.atoms[k] == pytest.approx(few.atoms[k], abs=1e-12) for k in few.atoms)


def test_a_shuffle_null_of_too_many_samples_is_refused_naming_n_perm():
    # the null permutes the samples one by one: a table of 2.7e16 samples with n_perm > 0 was
    # a bare MemoryError; at most MAX_NULL_SAMPLES, with the advice to pass n_perm=0
    from pidkit.estimate.discrete_route import MAX_NULL_SAMPLES

    many = COUNTS * (MAX_NULL_SAMPLES // int(COUNTS.sum()) + 1)
    assert many.sum() > MAX_NULL_SAMPLES
    msg = _raises(PIDValueError, "n_perm", pid_from_counts, many, ci=None, n_perm=5)
    assert "n_perm=0" in msg
    # at the limit the null is drawn
    few = COUNTS * 1000
    assert "redundancy" in pid_from_counts(few, ci=None, n_perm=3, seed=0).details["p_values"]


@pytest.mark.parametrize("call, kind, name", [
    (lambda: unc.smallest_n_perm(None), PIDTypeError, "ci"),        # 1 - None: a TypeError
    (lambda: unc.smallest_n_perm(0), PIDValueError, "ci"),          # was 1
    (lambda: unc.permutations(0, 3, 2), PIDTypeError, "rng"),       # int.permutation
    (lambda: unc.bootstrap_counts(7, np.ones(3), 2), PIDTypeError, "rng"),
    # multinomial(0, 0 / 0): numpy's "pvals contains NaNs" after a RuntimeWarning
    (lambda: unc.bootstrap_counts(np.random.default_rng(0), np.zeros(3), 2), PIDValueError,
     "weights"),
    (lambda: unc.summarize("replicates", 0.9), PIDTypeError, "reps"),  # AttributeError
    (lambda: unc.p_values(np.zeros(2), np.zeros((3, 2)), tol=-1.0), PIDValueError, "tol"),
    (lambda: unc.check_null_size(-1, 0.9, "normal"), PIDValueError, "n_perm"),
    (lambda: unc.check_null_size(5, 0.9, "bca"), PIDValueError, "interval"),
], ids=["smallest_n_perm-None", "smallest_n_perm-0", "permutations-rng", "bootstrap-rng",
        "bootstrap-no-rows", "summarize", "p_values-tol", "null_size-n_perm", "null_size-kind"])
def test_uncertainty_engine_checks_the_rest_of_its_arguments(call, kind, name):
    _raises(kind, name, call)


@pytest.mark.parametrize("value", [np.array(["kmeans", "full"]), ["kmeans"], 1, None],
                         ids=["array", "list", "int", "None"])
@pytest.mark.parametrize("estimator, option", [
    ("discretize", "method"), ("discretize", "kmeans"), ("discretize", "scaling"),
    ("discretize", "pca_solver"), ("discretize", "n_init"), ("discretize", "preset"),
    ("gaussian", "target_encoding"),
])
def test_string_options_of_the_estimators_refuse_other_objects(estimator, option, value):
    # an array made `value not in (...)` ambiguous (a bare ValueError), a list made the preset
    # lookup unhashable (a bare TypeError), and None or 1 were PIDValueErrors
    valid = ((value is None and option in ("scaling", "preset"))   # no scaling, no preset
             or (option == "n_init" and isinstance(value, int)))     # one initialisation
    if valid:
        return
    Xs = RNG.normal(size=(N, 3))
    _raises(PIDTypeError, option, pid_from_samples, Y if estimator == "discretize" else M,
            Xs, Xs[:, ::-1] ** 2, estimator=estimator, **{option: value}, **QUICK)


def test_presets_and_projector_settings_refuse_unhashable_objects():
    from pidkit.estimate import Projector

    _raises(PIDTypeError, "preset", Discretizer.from_preset, ["paper-cifar10"])
    _raises(PIDValueError, "preset", Discretizer.from_preset, "paper-cifar1000")
    _raises(PIDTypeError, "n_iter", Projector(n_components=2, n_iter=np.array([1, 2])).fit,
            RNG.normal(size=(N, 3)))


def test_integer_tensors_are_axes_as_integer_arrays_are():
    # np.array(0) and np.array([1, 2]) were axes, tensor(0) and tensor([1, 2]) PIDTypeErrors
    torch = pytest.importorskip("torch")
    expected = pidkit.pid(AND, target=np.array(0), sources=np.array([1, 2])).redundancy
    assert pidkit.pid(AND, target=torch.tensor(0),
                      sources=torch.tensor([1, 2])).redundancy == expected
    assert pidkit.pid(AND, sources=[torch.tensor(1), torch.tensor([2])]).redundancy == expected
    _raises(PIDTypeError, "target", pidkit.pid, AND, target=torch.tensor(0.0))
    _raises(PIDTypeError, "target", pidkit.pid, AND, target=torch.tensor(True))
    _raises(PIDValueError, "target", pidkit.pid, AND, target=torch.tensor(5))


def test_zero_dimensional_base_and_level_count_as_numbers():
    # check_int, check_positive and check_fraction read a 0-d array or tensor as its number;
    # base and ci refused them
    torch = pytest.importorskip("torch")
    assert pidkit.pid(AND, base=np.array(2.0)) == pidkit.pid(AND)
    assert pidkit.pid(AND, base=torch.tensor(10)).unit == "hartleys"
    r = pid_from_samples(Y, A, B, ci=np.array(0.9), n_boot=5, n_perm=0, seed=0)
    assert r.intervals is not None
    _raises(PIDTypeError, "base", pidkit.pid, AND, base=np.array([2.0]))
    _raises(PIDTypeError, "base", pidkit.pid, AND, base=torch.tensor(True))
    _raises(PIDValueError, "ci", pid_from_samples, Y, A, B, ci=torch.tensor(95.0), n_boot=5)


def test_messages_of_the_gaussian_route_give_its_own_advice():
    # a continuous target with target_encoding='onehot' was told to "use estimator='gaussian'"
    # (the route it was on); a string shift was "an array of probabilities"
    message = _raises(PIDValueError, "target", pid_from_samples, X, Z, X * Z,
                      estimator="gaussian", target_encoding="onehot", **QUICK)
    assert "target_encoding='continuous'" in message and "estimator=" not in message
    message = _raises(PIDTypeError, "shift", GaussianMoments, shift="a")
    assert "probabilities" not in message
