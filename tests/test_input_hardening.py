"""Input handling found wanting by an adversarial sweep: each bad input gets a typed error
naming the argument (or, where the documentation promises a value, that value), never a raw
numpy / Python exception or a silently wrong answer."""

import math
import warnings

import numpy as np
import pytest

import pidkit
from pidkit.cli import main
from pidkit.errors import PIDKitError, PIDTypeError, PIDValueError
from pidkit.estimate import Discretizer, JointCounts
from pidkit.estimate._checks import as_labels
from pidkit.estimate.codes import encode
from pidkit.gates import gate
from pidkit.lattice import lattice, node_label, parse_node
from pidkit.result import AtomMap, PIDResult

AND = gate("AND")
XOR = gate("XOR")
#: I_min(AND) = I(Y; X0) = 3/2 - (3/4) log2 3 bits (Williams and Beer 2010).
AND_IMIN_RED = 1.5 - 0.75 * math.log2(3)
#: A 3 x 3 "covariance" with unit variances and correlations that no joint Gaussian has
#: (determinant 1 - 3 * 0.81 - 2 * 0.729 < 0).
NOT_PD = np.array([[1, .9, .9], [.9, 1, -.9], [.9, -.9, 1]])


def _typed(exc_info, kind, name):
    """The error is pidkit's ``kind`` and its message starts with the argument ``name``."""
    err = exc_info.value
    assert type(err) is kind and isinstance(err, PIDKitError)
    assert str(err).startswith(f"{name}: "), str(err)
    return str(err)


# -- 1. masked arrays ----------------------------------------------------------------------
def test_masked_pmf_is_refused_and_the_advice_works():
    hidden = np.where(AND > 0, AND, 7.0)        # masked entries hold 7, not 0
    m = np.ma.masked_array(hidden, mask=AND == 0)
    with pytest.raises(PIDTypeError) as info:
        pidkit.pid(m, measure="imin")
    msg = _typed(info, PIDTypeError, "p")
    assert "masked array" in msg and "p.filled(0)" in msg
    r = pidkit.pid(m.filled(0), measure="imin")      # what the message advises
    assert r.redundancy == pytest.approx(AND_IMIN_RED, abs=1e-9)


def test_masked_samples_and_covariance_are_refused():
    y = np.arange(20) % 2
    masked = np.ma.masked_array(y, mask=y > 5)
    with pytest.raises(PIDTypeError) as info:
        pidkit.pid_from_samples(y, masked, y, ci=None, n_perm=0)
    _typed(info, PIDTypeError, "sources[0]")
    cov = np.ma.masked_array(np.eye(3), mask=np.eye(3) == 0)
    with pytest.raises(PIDTypeError) as info:
        pidkit.gaussian_pid(cov, (1, 1, 1))
    _typed(info, PIDTypeError, "cov")


# -- 2. gaussian_pid(validate=False) on numpy: NaN, as documented and as with torch --------
@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("cov", [NOT_PD, NOT_PD - 2 * np.eye(3)], ids=["indefinite", "negdiag"])
def test_unvalidated_numpy_not_pd_gives_nan_without_warning(measure, cov):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.gaussian_pid(cov, (1, 1, 1), measure=measure, validate=False)
    assert all(math.isnan(v) for v in r.atoms.values())
    assert math.isnan(r.mutual_information)


@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_unvalidated_numpy_batch_only_the_bad_item_is_nan(measure):
    good = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.2], [0.3, 0.2, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.gaussian_pid(np.stack([NOT_PD, good]), (1, 1, 1), measure=measure,
                                validate=False)
    checked = pidkit.gaussian_pid(good, (1, 1, 1), measure=measure)
    for node, value in r.atoms.items():
        assert math.isnan(value[0])
        assert value[1] == pytest.approx(checked.atoms[node], abs=1e-12)


def test_unvalidated_numpy_matches_torch_nan_atoms():
    torch = pytest.importorskip("torch")
    good = np.array([[2.0, 0.5, 0.3], [0.5, 1.0, 0.2], [0.3, 0.2, 1.0]])
    batch = np.stack([NOT_PD, good])
    rn = pidkit.gaussian_pid(batch, (1, 1, 1), validate=False)
    rt = pidkit.gaussian_pid(torch.tensor(batch), (1, 1, 1), validate=False)
    for node in rn.atoms:
        t = rt.atoms[node].numpy()
        np.testing.assert_array_equal(np.isnan(rn.atoms[node]), np.isnan(t))
        assert rn.atoms[node][1] == pytest.approx(t[1], abs=1e-12)


# -- 3. the default n_components of the discretiser fits narrow sources ----------------------
def test_default_components_capped_by_features():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    x = a + 0.01 * rng.normal(size=400)             # one feature each, two tight clusters
    z = b + 0.01 * rng.normal(size=400)
    d = Discretizer(n_clusters=2, scaling="standard", random_state=0).fit(x[:, None])
    assert d.n_components_ == 1
    codes = d.transform(x[:, None])
    assert len({(int(c), int(t)) for c, t in zip(codes, a, strict=True)}) == 2   # codes = a
    r = pidkit.pid_from_samples(a & b, x, z, estimator="discretize", n_clusters=2,
                                scaling="standard", measure="mmi", ci=None, n_perm=0, seed=0)
    exact = pidkit.pid_from_samples(a & b, a, b, measure="mmi", ci=None, n_perm=0)
    for node, value in exact.atoms.items():
        assert r.atoms[node] == pytest.approx(value, abs=1e-12)


def test_default_components_capped_by_samples_and_explicit_value_still_checked():
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(6, 40))
    assert Discretizer(n_clusters=2, random_state=0).fit(wide).n_components_ == 6
    assert Discretizer(n_clusters=2, random_state=0).fit(rng.normal(size=(50, 40))
                                                         ).n_components_ == 10
    with pytest.raises(PIDValueError) as info:
        Discretizer(n_clusters=2, n_components=10).fit(rng.normal(size=(50, 1)))
    _typed(info, PIDValueError, "n_components")
    with pytest.raises(PIDValueError) as info:
        Discretizer(n_components="all").fit(wide)
    _typed(info, PIDValueError, "n_components")


# -- 4. float labels beyond int64 -----------------------------------------------------------
@pytest.mark.parametrize("make", [lambda y: np.where(y > 0, 2.0**63, 2.0**63 + 4096),
                                  lambda y: y * 1e20, lambda y: -3.0 * y],
                         ids=["2**63", "1e20", "negative"])
def test_huge_float_labels_are_mapped_not_cast(make):
    y = np.random.default_rng(0).integers(0, 2, 500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.pid_from_samples(make(y), y, y ^ 1, measure="mmi", ci=None, n_perm=0)
    exact = pidkit.pid_from_samples(y, y, y ^ 1, measure="mmi", ci=None, n_perm=0)
    for node, value in exact.atoms.items():
        assert r.atoms[node] == pytest.approx(value, abs=1e-12)
    # closed form: both sources are copies of the target, so MMI redundancy = H(Y)
    p1 = y.mean()
    h = -(p1 * math.log2(p1) + (1 - p1) * math.log2(1 - p1))
    assert r.redundancy == pytest.approx(h, abs=1e-12)


def test_float_labels_are_ranked_never_cast():
    """Integer-valued floats outside the int64 range keep their identity: as_labels passes
    them on uncast and encode ranks the rows (equal floats share a code, the order is kept)."""
    labels = np.array([[1e20, 2.0**63], [-5.0, 1e20], [2.0**63, -5.0], [-5.0, 1e20]])
    kept = as_labels(labels, "t")
    np.testing.assert_array_equal(kept, labels)
    codes, size = encode(kept)
    np.testing.assert_array_equal(codes, [2, 0, 1, 0])
    assert size == 3
    column, size = encode(as_labels(labels[:, 0], "t"))
    np.testing.assert_array_equal(column, [2, 0, 1, 0])
    assert size == 3
    with pytest.raises(PIDValueError) as info:
        as_labels(np.array([0.5, 1.0]), "target")
    _typed(info, PIDValueError, "target")


# -- 5. parse_node validates ----------------------------------------------------------------
@pytest.mark.parametrize(("label", "what"), [
    ("{0}{0}", "repeats the collection"), ("{0:0}", "repeats a source index"),
    ("{0:1}{0}", "not an antichain"), ("{-1}", "invalid source index"),
    ("{\u0967}", "invalid source index"), ("{}", "empty collection"),
    ("{0}{}", "empty collection"), ("0", "not a lattice label")])
def test_parse_node_rejects_invalid_labels(label, what):
    with pytest.raises(PIDValueError) as info:
        parse_node(label)
    msg = _typed(info, PIDValueError, "node")
    assert what in msg and repr(label) in msg


@pytest.mark.parametrize("label", [None, 3, b"{0}", ((0,),)])
def test_parse_node_rejects_non_strings(label):
    with pytest.raises(PIDTypeError) as info:
        parse_node(label)
    msg = _typed(info, PIDTypeError, "node")
    assert type(label).__name__ in msg


def test_parse_node_round_trips_every_node():
    for n in (1, 2, 3, 4):
        for node in lattice(n).nodes:
            assert parse_node(node_label(node)) == node
    assert parse_node("{1:0} {2}") == ((0, 1), (2,))


# -- 6. mapping contract and result objects -------------------------------------------------
def test_atom_map_get_follows_the_mapping_contract():
    r = pidkit.pid(AND, measure="imin")
    assert r.atoms.get("junk") is None
    assert r.atoms.get("{0}{0}", -1.0) == -1.0
    assert r.atoms.get("{7}", 5) == 5
    assert r.atoms.get(["unhashable"]) is None
    assert r.atoms.get("{0}{1}") == pytest.approx(AND_IMIN_RED, abs=1e-9)
    with pytest.raises(PIDValueError) as info:
        r.atoms["junk"]
    _typed(info, PIDValueError, "node")


def test_atom_map_labels_and_nodes_are_the_same_keys():
    by_label = AtomMap({"{0}{1}": 0.1, "{0}": 0.2, "{1}": 0.3, "{0:1}": 0.4})
    by_node = AtomMap({((0,), (1,)): 0.1, ((0,),): 0.2, ((1,),): 0.3, ((0, 1),): 0.4})
    assert by_label == by_node and list(by_label) == list(by_node)
    with pytest.raises(PIDValueError) as info:
        AtomMap({"{0}": 1.0, ((0,),): 2.0})
    _typed(info, PIDValueError, "atoms")


def test_node_tuples_in_any_order_are_the_node_their_label_shows():
    """A tuple key with its collections or indices out of order is the same node as its label
    (which is printed sorted): stored, looked up and placed in the lattice as that node."""
    shuffled = AtomMap({((1,), (0,)): 0.1, ((0,),): 0.2, ((1,),): 0.3, ((1, 0),): 0.4})
    assert list(shuffled) == [((0,), (1,)), ((0,),), ((1,),), ((0, 1),)]
    assert shuffled["{0}{1}"] == 0.1 and shuffled[((1, 0),)] == 0.4
    assert "{0:1}" in shuffled and shuffled.get(((1,), (0,))) == 0.1
    r = pidkit.PIDResult(atoms=shuffled, measure="mmi", base=2.0, mutual_information=1.0)
    assert r.redundancy == 0.1 and r.synergy == 0.4
    assert lattice(2).position(((1,), (0,))) == lattice(2).position("{0}{1}")
    with pytest.raises(PIDValueError) as info:
        AtomMap({((0,), (1,)): 1.0, ((1,), (0,)): 2.0})
    _typed(info, PIDValueError, "atoms")


def test_lattice_order_accepts_labels_and_names_unknown_nodes():
    lat = lattice(2)
    assert lat.leq("{0}", "{0:1}") and not lat.leq("{0:1}", "{0}")
    assert lat.leq("{0}{1}", ((1,),)) and not lat.leq("{0}", "{1}")
    assert lat.down_set("{0:1}", strict=True) == [((0,), (1,)), ((0,),), ((1,),)]
    with pytest.raises(PIDValueError) as info:
        lat.down_set(((7,),))
    assert "((7,),)" in _typed(info, PIDValueError, "node")
    with pytest.raises(PIDValueError) as info:
        lat.leq("{0}", "{2}")
    assert "'{2}'" in _typed(info, PIDValueError, "b")


def test_moebius_accepts_labels_like_atom_map():
    lat = lattice(2)
    red = {((0,), (1,)): 0.3, ((0,),): 0.5, ((1,),): 0.3, ((0, 1),): 1.0}
    by_label = lat.moebius({node_label(k): v for k, v in red.items()})
    assert by_label == lat.moebius(red)
    # atoms: Red = 0.3, Uni0 = 0.5 - 0.3, Uni1 = 0.3 - 0.3, Syn = 1.0 - 0.3 - 0.2 - 0.0
    assert by_label[((0, 1),)] == pytest.approx(0.5)
    assert lat.cumulate(AtomMap(by_label)) == pytest.approx(red)
    with pytest.raises(PIDValueError) as info:
        lat.moebius({**red, "{0}": 0.5})
    _typed(info, PIDValueError, "redundancy")
    with pytest.raises(PIDValueError) as info:
        lat.moebius({**red, "{2}": 0.5})
    _typed(info, PIDValueError, "redundancy")


def test_results_are_deliberately_unhashable():
    r = pidkit.pid(AND, measure="mmi")
    with pytest.raises(TypeError, match="unhashable type: 'PIDResult'"):
        hash(r)
    with pytest.raises(TypeError, match="unhashable type: 'SolverInfo'"):
        hash(r.solver)
    assert r == pidkit.pid(AND, measure="mmi")      # equality still works


def test_result_with_no_atoms_is_a_typed_error():
    with pytest.raises(PIDValueError) as info:
        PIDResult(atoms={}, measure="mmi", base=2, mutual_information=0.0)
    _typed(info, PIDValueError, "atoms")
    with pytest.raises(PIDTypeError) as info:
        PIDResult(atoms=[1.0], measure="mmi", base=2, mutual_information=0.0)
    _typed(info, PIDTypeError, "atoms")
    with pytest.raises(PIDTypeError) as info:
        PIDResult(atoms={(1, 2): 0.5}, measure="mmi", base=2, mutual_information=0.0)
    _typed(info, PIDTypeError, "atoms")


# -- 7. raw exceptions ----------------------------------------------------------------------
def test_zero_d_integer_array_is_an_axis():
    r = pidkit.pid(AND, target=np.array(0), sources=np.array([1, 2]), measure="imin")
    assert r.redundancy == pytest.approx(AND_IMIN_RED, abs=1e-9)
    with pytest.raises(PIDTypeError) as info:
        pidkit.pid(AND, target=np.array(0.5))
    _typed(info, PIDTypeError, "target")
    with pytest.raises(PIDTypeError) as info:
        pidkit.pid(AND, sources=np.array(1))
    _typed(info, PIDTypeError, "sources")


def test_lattice_of_unhashable_is_typed():
    with pytest.raises(PIDTypeError) as info:
        pidkit.lattice([2])
    _typed(info, PIDTypeError, "n_sources")
    assert pidkit.lattice(np.int64(2)) is pidkit.lattice(2)


def test_joint_counts_accept_lists_like_arrays():
    a = JointCounts().update([0, 1, 1], [0, 1, 0])
    b = JointCounts().update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    np.testing.assert_array_equal(a.counts, [[1, 0], [1, 1]])
    np.testing.assert_array_equal(a.counts, b.counts)
    for bad, kind in [("ab", PIDTypeError), (None, PIDTypeError), ([0.5, 1.0], PIDTypeError),
                      (np.ma.masked_array([0, 1], mask=[0, 1]), PIDTypeError),
                      (3, PIDValueError)]:
        with pytest.raises(kind) as info:
            JointCounts().update(bad, [0, 1])
        _typed(info, kind, "target")


def test_moebius_of_non_numbers_is_typed():
    with pytest.raises(PIDTypeError) as info:
        lattice(2).moebius(np.array(["a", "b", "c", "d"]))
    _typed(info, PIDTypeError, "redundancy")
    with pytest.raises(PIDTypeError) as info:
        lattice(2).moebius({"{0}{1}": "a", "{0}": 1, "{1}": 1, "{0:1}": 1})
    _typed(info, PIDTypeError, "redundancy")


# -- 8. smaller inconsistencies -------------------------------------------------------------
@pytest.mark.parametrize("base", [0.5, 1 / math.e, 0.999])
def test_base_below_one_is_refused(base):
    with pytest.raises(PIDValueError) as info:
        pidkit.pid(AND, measure="mmi", base=base)
    assert "must be a finite logarithm base > 1" in _typed(info, PIDValueError, "base")
    with pytest.raises(PIDValueError) as info:
        pidkit.gaussian_pid(np.eye(3), (1, 1, 1), base=base)
    _typed(info, PIDValueError, "base")


def test_to_dit_normalize_bool_only_and_names_any_sequence():
    pytest.importorskip("dit")
    with pytest.raises(PIDTypeError) as info:
        pidkit.to_dit(AND * 2, normalize=1)
    _typed(info, PIDTypeError, "normalize")
    d = pidkit.to_dit(AND, names=np.array(["Y", "A", "B"]))
    assert d.get_rv_names() == ("Y", "A", "B")
    assert pidkit.to_dit(AND, names=("Y", "A", "B")).get_rv_names() == ("Y", "A", "B")
    with pytest.raises(PIDTypeError) as info:
        pidkit.to_dit(AND, names=np.array([["Y", "A", "B"]]))
    _typed(info, PIDTypeError, "names")


def test_bool_covariance_is_refused():
    with pytest.raises(PIDTypeError) as info:
        pidkit.gaussian_pid(np.eye(3, dtype=bool), (1, 1, 1))
    assert "bool" in _typed(info, PIDTypeError, "cov")


@pytest.mark.parametrize(("p", "what"), [(None, "not None"), ({0.5, 0.25}, "not a set")])
def test_pmf_of_the_wrong_kind_says_what_was_passed(p, what):
    with pytest.raises(PIDTypeError) as info:
        pidkit.pid(p)
    msg = _typed(info, PIDTypeError, "p")
    assert what in msg and "ragged" not in msg


def test_cli_semicolon_csv_without_target_gives_the_delimiter_hint(capsys, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("y;a;b\n0;0;0\n1;1;1\n")
    code = main(["pid", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "no source column" in err and "Pass --delimiter ';'" in err


def test_node_labels_are_canonical_and_leading_zeros_refused():
    assert pidkit.node_label(((1,), (0,))) == "{0}{1}"
    assert pidkit.node_label(((2, 0),)) == "{0:2}"
    assert pidkit.parse_node(pidkit.node_label(((1,), (0, 2)))) == ((0, 2), (1,))
    with pytest.raises(pidkit.PIDValueError, match="node"):
        pidkit.parse_node("{01}")


def test_plot_draws_intervals_that_exclude_their_estimate():
    """A basic bootstrap interval need not contain the point estimate (here the unique
    information of X0 in AND from 60 samples, 0 with an interval below 0): the plot draws the
    interval's segment instead of failing on negative error bars."""
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    x0, x1 = rng.integers(0, 2, (2, 60))
    r = pidkit.pid_from_samples(x0 & x1, x0, x1, n_boot=50, n_perm=0, seed=0, interval="basic")
    low, high = r.intervals[((0,),)]
    assert not low <= r.unique[0] <= high                       # the case that used to fail
    ax = r.plot()
    segments = ax.collections[0].get_segments()
    np.testing.assert_allclose(segments[1][:, 1], [low, high])   # node order: {0}{1}, {0}, ...


@pytest.mark.parametrize("flag", [np.True_, np.False_])
def test_numpy_bools_are_flags_on_both_paths(flag):
    """np.bool_ values (what comparisons of numpy arrays give) are accepted like bool by pid,
    on arrays and on tensors alike; 1 and "yes" are not."""
    import torch

    p = pidkit.gates.gate("AND") * (2.0 if flag else 1.0)
    for arr in (p, torch.tensor(p)):
        r = pidkit.pid(arr, normalize=flag)
        assert float(r.synergy) == pytest.approx(0.5)
    for bad in (1, "yes"):
        with pytest.raises(pidkit.PIDTypeError, match="normalize"):
            pidkit.pid(p, normalize=bad)


def test_too_many_sources_names_the_sources_argument():
    with pytest.raises(pidkit.PIDValueError, match=r"^sources: 6 sources"):
        pidkit.pid(np.full((2,) * 7, 1 / 128), measure="mmi")
    r = pidkit.pid(np.full((2,) * 7, 1 / 128), measure="mmi", sources=[[1, 2], 3, 4, 5, 6])
    assert r.n_sources == 5
