"""pidkit against published PID values (``_published_tables.py``: sources, distributions, values).

Each value is compared within the rounding its source prints (half a unit in the last place) plus
1e-9 bits of float slack; values printed to full precision are compared to 1e-12 bits.
"""

import numpy as np
import pytest
from _published_tables import (
    DIT_DEP_VALUES,
    IDTXL_SX_VALUES,
    INCE_THREE_SOURCE,
    INCE_TWO_SOURCE,
    ROUNDING,
)

import pidkit
from pidkit.gates import pmf_from_outcomes
from pidkit.information import mutual_information
from pidkit.lattice import lattice

SLACK = 1e-9  # float slack on top of a printed rounding
FULL_PRECISION = 1e-12  # for values printed to 16-17 significant digits


def _collections(label):
    """``"{1}{23}"`` (1-based, one digit per source) -> frozenset of 0-based collections."""
    return frozenset(frozenset(int(c) - 1 for c in part) for part in label[1:-1].split("}{"))


def _tuple_collections(node):
    """IDTxl / dit style ``((1,), (2, 3))`` (1-based) -> frozenset of 0-based collections."""
    return frozenset(frozenset(i - 1 for i in part) for part in node)


def _node_collections(node):
    """pidkit's node ``((0,), (1, 2))`` (0-based) -> frozenset of collections."""
    return frozenset(frozenset(part) for part in node)


def _atoms_by_collections(result):
    return {_node_collections(node): value for node, value in result.atoms.items()}


def _pmf_from_cells(shape, cells):
    """Ince's 1-based Matlab cells ``P(x1, ..., xn, y)`` -> pidkit's ``p[y, x1, ..., xn]``."""
    p = np.zeros(shape)
    for index, prob in cells.items():
        p[tuple(i - 1 for i in index)] = prob
    return np.moveaxis(p, -1, 0)


def _tolerance(entry):
    rounding = ROUNDING[entry["source"]]
    return rounding + SLACK if rounding else FULL_PRECISION


def _ince_cases(entries):
    return [pytest.param(e, m, id=f"{e['label']}-{m}") for e in entries for m in e["values"]]


@pytest.mark.parametrize(("entry", "measure"),
                         _ince_cases(INCE_TWO_SOURCE) + _ince_cases(INCE_THREE_SOURCE))
def test_ince_examples(entry, measure):
    p = _pmf_from_cells(entry["shape"], entry["cells"])
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    atoms = _atoms_by_collections(pidkit.pid(p, target=0, measure=measure))
    assert len(atoms) == len(entry["nodes"])
    tol = _tolerance(entry)
    got = [atoms[_collections(node)] for node in entry["nodes"]]
    expected = entry["values"][measure]
    bad = [(node, g, e) for node, g, e in zip(entry["nodes"], got, expected, strict=True)
           if abs(g - e) > tol]
    assert not bad, f"{entry['label']} ({measure}): (node, pidkit, published) {bad}"


@pytest.mark.parametrize("entry", IDTXL_SX_VALUES, ids=lambda e: e["label"].split(":")[0])
def test_idtxl_sx(entry):
    # outcomes are (s1, ..., t); pidkit's pmf_from_outcomes takes (y, x0, ...)
    p = pmf_from_outcomes([(o[-1], *o[:-1]) for o in entry["outcomes"]])
    atoms = _atoms_by_collections(pidkit.pid(p, target=0, measure="sx"))
    for node, value in entry["values"].items():
        assert atoms[_tuple_collections(node)] == pytest.approx(value, abs=_tolerance(entry)), node


@pytest.mark.parametrize("entry", DIT_DEP_VALUES, ids=lambda e: e["label"].split(":")[0])
def test_dit_dep(entry):
    shape = tuple(max(o[k] for o in entry["outcomes"]) + 1 for k in range(3))
    p = np.zeros(shape)
    for (x0, x1, y), prob in entry["outcomes"].items():
        p[x0, x1, y] = prob
    atoms = _atoms_by_collections(pidkit.pid(p, target=2, measure="dep"))
    for node, value in entry["values"].items():
        assert atoms[_tuple_collections(node)] == pytest.approx(value, abs=_tolerance(entry)), node


def test_fixture_is_consistent():
    """The transcription itself: pmfs sum to 1, every node listed once, atoms add up per row."""
    for entry in INCE_TWO_SOURCE + INCE_THREE_SOURCE:
        n = len(entry["shape"]) - 1
        assert len(entry["nodes"]) == len(set(entry["nodes"]))
        assert {_collections(node) for node in entry["nodes"]} == {
            _node_collections(node) for node in lattice(n).nodes}
        p = _pmf_from_cells(entry["shape"], entry["cells"])
        assert p.sum() == pytest.approx(1.0, abs=1e-12), entry["label"]
        mi = mutual_information(p, [0], range(1, n + 1)) / np.log(2)
        for measure, values in entry["values"].items():
            assert len(values) == len(entry["nodes"])
            # the atoms of every measure add up to I(Y; X) (rounding: half a unit per atom)
            assert sum(values) == pytest.approx(mi, abs=len(values) * 5e-5 + SLACK), (
                entry["label"], measure)
