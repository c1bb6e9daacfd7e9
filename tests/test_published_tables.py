"""pidkit against published PID values (``_published_tables.py``: sources, distributions, values).

Each value is compared within the rounding its source prints (half a unit in the last place) plus
1e-9 bits of float slack; values printed to full precision (or exact) are compared to 1e-12 bits,
and analytic values met by an iterative solver to the tolerance ``ROUNDING`` gives them.
"""

import numpy as np
import pytest
from _published_tables import (
    DIT_DEP_VALUES,
    FINN_PM_VALUES,
    IDTXL_SX_VALUES,
    INCE_THREE_SOURCE,
    INCE_TWO_SOURCE,
    KOLCHINSKY_COLUMNS,
    KOLCHINSKY_THREE_SOURCE,
    KOLCHINSKY_TWO_SOURCE,
    MAXENT3D_COPY_VALUES,
    MAXENT3D_QUANTITIES,
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


@pytest.mark.parametrize("entry", FINN_PM_VALUES, ids=lambda e: e["label"].split(":")[0])
def test_finn_pm(entry):
    p = pmf_from_outcomes([(o[-1], *o[:-1]) for o in entry["outcomes"]])
    result = pidkit.pid(p, target=0, measure="pm")
    parts = {"atoms": result.atoms, **result.solver.parts}
    for part, values in entry["values"].items():
        got = {_node_collections(node): v for node, v in parts[part].items()}
        for label, value in values.items():
            assert got[_collections(label)] == pytest.approx(value, abs=_tolerance(entry)), (
                part, label)


def _pmf_from_strings(outcomes):
    """dit outcome strings ``x1 ... xn y`` (one character per variable) -> ``p[y, x1, ..., xn]``."""
    width = len(next(iter(outcomes)))
    alphabets = [sorted({o[k] for o in outcomes}) for k in range(width)]
    p = np.zeros([len(a) for a in alphabets])
    for outcome, prob in outcomes.items():
        p[tuple(a.index(c) for a, c in zip(alphabets, outcome, strict=True))] += prob
    return np.moveaxis(p, -1, 0)


def _kolchinsky_cases(entries):
    return [pytest.param(e, column, id=f"{e['label'].split(' ')[0]}-{column}")
            for e in entries for column in e["values"]]


@pytest.mark.parametrize(("entry", "column"),
                         _kolchinsky_cases(KOLCHINSKY_TWO_SOURCE)
                         + _kolchinsky_cases(KOLCHINSKY_THREE_SOURCE))
def test_kolchinsky_redundancy(entry, column):
    p = _pmf_from_strings(entry["outcomes"])
    n = p.ndim - 1
    result = pidkit.pid(p, target=0, measure=KOLCHINSKY_COLUMNS[column])
    bottom = frozenset(frozenset((i,)) for i in range(n))
    got = _atoms_by_collections(result)[bottom]
    assert got == pytest.approx(entry["values"][column], abs=_tolerance(entry)), (
        entry["label"], column, got)


@pytest.mark.parametrize("entry", MAXENT3D_COPY_VALUES,
                         ids=lambda e: "x".join(map(str, e["sizes"])))
def test_maxent3d_copy_gate(entry):
    n_x, n_y, n_z = entry["sizes"]
    p = np.zeros((n_x * n_y * n_z, n_x, n_y, n_z))
    for t, xyz in enumerate(np.ndindex(n_x, n_y, n_z)):
        p[(t, *xyz)] = 1 / (n_x * n_y * n_z)
    atoms = _atoms_by_collections(pidkit.pid(p, target=0, measure="broja"))
    for quantity, value in entry["values"].items():
        got = sum(atoms[_collections(label)] for label in MAXENT3D_QUANTITIES[quantity])
        assert got == pytest.approx(value, abs=_tolerance(entry)), (quantity, got)


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
    for entry in KOLCHINSKY_TWO_SOURCE + KOLCHINSKY_THREE_SOURCE + FINN_PM_VALUES:
        probs = (entry["outcomes"].values() if isinstance(entry["outcomes"], dict)
                 else [1 / len(entry["outcomes"])] * len(entry["outcomes"]))
        assert sum(probs) == pytest.approx(1.0, abs=1e-12), entry["label"]
    # the MAXENT3D quantities cover every atom of the three-source lattice exactly once
    labels = [label for atoms in MAXENT3D_QUANTITIES.values() for label in atoms]
    assert len(labels) == len(set(labels)) == len(lattice(3).nodes)
    assert {_collections(label) for label in labels} == {
        _node_collections(node) for node in lattice(3).nodes}
    # FINN_PM: the atoms are the informative minus the misinformative atoms
    for entry in FINN_PM_VALUES:
        v = entry["values"]
        assert all(v["atoms"][k] == v["informative"][k] - v["misinformative"][k]
                   for k in v["atoms"])
