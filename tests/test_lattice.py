"""The redundancy lattice: sizes, order, Moebius inversion, labels (Williams & Beer 2010)."""

import itertools

import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.lattice import Lattice, lattice, node_label, parse_node


def _leq_by_definition(alpha, beta):
    """alpha <= beta iff every member of beta contains a member of alpha (W&B 2010, eq. 6)."""
    return all(any(set(a) <= set(b) for a in alpha) for b in beta)


def _is_antichain(node):
    return all(not set(a) <= set(b) for a, b in itertools.permutations(node, 2))


# Number of antichains of non-empty subsets = Dedekind numbers minus 2 (OEIS A003182 / A007153).
@pytest.mark.parametrize(("n", "size"), [(1, 1), (2, 4), (3, 18), (4, 166), (5, 7579)])
def test_node_counts(n, size):
    lat = lattice(n)
    assert len(lat) == size
    assert len(set(lat.nodes)) == size
    assert all(_is_antichain(a) and all(a) for a in lat.nodes)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_order_matches_definition_and_is_a_partial_order(n):
    lat = lattice(n)
    leq = np.array([[lat.leq(a, b) for b in lat.nodes] for a in lat.nodes])
    truth = np.array([[_leq_by_definition(a, b) for b in lat.nodes] for a in lat.nodes])
    np.testing.assert_array_equal(leq, truth)
    assert leq.diagonal().all()                                   # reflexive
    assert not (leq & leq.T & ~np.eye(len(lat), dtype=bool)).any()  # antisymmetric
    # transitive: leq @ leq has no path a<=b<=c with not a<=c
    two_step = (leq.astype(int) @ leq.astype(int)) > 0
    assert not (two_step & ~leq).any()
    # nodes are a linear extension: everything below a node comes earlier
    assert not np.tril(leq, k=-1).any()
    assert all(lat.leq(lat.bottom, a) and lat.leq(a, lat.top) for a in lat.nodes)


def test_bottom_top_and_labels_for_two_sources():
    lat = lattice(2)
    assert [node_label(a) for a in lat.nodes] == ["{0}{1}", "{0}", "{1}", "{0:1}"]
    assert lat.bottom == ((0,), (1,))
    assert lat.top == ((0, 1),)


def test_down_set_agrees_with_order():
    lat = lattice(3)
    node = parse_node("{0:1}{0:2}")
    expected = [b for b in lat.nodes if _leq_by_definition(b, node)]
    assert lat.down_set(node) == expected
    assert lat.down_set(node, strict=True) == [b for b in expected if b != node]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_moebius_and_cumulate_are_inverse(n):
    lat = lattice(n)
    rng = np.random.default_rng(n)
    atoms = rng.normal(size=len(lat))
    red = lat.cumulate(atoms)
    back = lat.moebius(red)
    np.testing.assert_allclose([back[a] for a in lat.nodes], atoms, atol=1e-9)


def test_moebius_matches_sum_over_down_set_on_three_sources():
    lat = lattice(3)
    rng = np.random.default_rng(7)
    red = dict(zip(lat.nodes, rng.normal(size=len(lat)), strict=True))
    atoms = lat.moebius(red)
    for a in lat.nodes:
        total = sum(atoms[b] for b in lat.nodes if _leq_by_definition(b, a))
        assert total == pytest.approx(red[a], abs=1e-12)


def test_two_source_moebius_closed_form():
    lat = lattice(2)
    red = {((0,), (1,)): 0.3, ((0,),): 0.5, ((1,),): 0.4, ((0, 1),): 1.0}
    atoms = lat.moebius(red)
    assert atoms[((0,), (1,))] == pytest.approx(0.3)
    assert atoms[((0,),)] == pytest.approx(0.2)
    assert atoms[((1,),)] == pytest.approx(0.1)
    assert atoms[((0, 1),)] == pytest.approx(0.4)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_label_round_trip(n):
    for node in lattice(n).nodes:
        assert parse_node(node_label(node)) == node
    assert parse_node(" {1:0}{2} ") == ((0, 1), (2,))


def test_lattice_is_cached_and_exported():
    assert pidkit.lattice(3) is pidkit.lattice(3)
    assert isinstance(pidkit.lattice(2), pidkit.Lattice)
    assert repr(lattice(2)) == "Lattice(n_sources=2, nodes=4)"


@pytest.mark.parametrize(("bad", "kind"), [(0, PIDValueError), (6, PIDValueError),
                                           (2.5, PIDTypeError), ("3", PIDTypeError)])
def test_bad_number_of_sources(bad, kind):
    with pytest.raises(kind, match="n_sources"):
        Lattice(bad)


@pytest.mark.parametrize("label", ["0}{1}", "{a}", "{0}{1"])
def test_bad_labels(label):
    with pytest.raises(PIDValueError, match="node"):
        parse_node(label)


def test_moebius_rejects_incomplete_values():
    with pytest.raises(PIDValueError, match="misses 1 lattice nodes"):
        lattice(2).moebius({((0,), (1,)): 0.0, ((0,),): 0.0, ((1,),): 0.0})
    with pytest.raises(PIDValueError, match="shape"):
        lattice(2).moebius(np.zeros(3))
