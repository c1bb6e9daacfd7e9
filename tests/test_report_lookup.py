"""Looking things up in results and audit reports by key or position: a miss keeps the
container's protocol (a ``KeyError`` for a mapping-like lookup, an ``IndexError`` for a
position) through pidkit's own subclasses, whose messages name the keys or positions there
are; numpy integers are positions."""

import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDIndexError, PIDKeyError, PIDKitError, PIDTypeError
from pidkit_distill.audits.curves import _pair_of
from pidkit_distill.audits.report import QUANTITIES, AuditReport, LayerAudit


def _report():
    pairs = (LayerAudit("layer3", "block.2", {q: 0.5 for q in QUANTITIES}),
             LayerAudit("fc", "fc", {q: 0.25 for q in QUANTITIES}))
    return AuditReport(pairs, "gaussian", {}, 100)


def test_a_position_out_of_range_is_an_index_error_naming_the_positions():
    with pytest.raises(PIDIndexError, match=r"^key: position 5 is out of range: the report "
                       r"holds 2 layer pair\(s\)\. Pass one of positions 0 to 1 \(or -2 to -1\), "
                       r"names \['layer3 -> block\.2', 'fc -> fc'\]") as caught:
        _report()[5]
    # still an IndexError (sequence protocol) and one of pidkit's errors
    assert isinstance(caught.value, IndexError) and isinstance(caught.value, PIDKitError)
    with pytest.raises(PIDIndexError, match="position -3 is out of range"):
        _report()[-3]


def test_numpy_integers_are_positions():
    report = _report()
    # np.int64 (from np.argmax over report.values(...)) compared itself with the pairs' tuples
    # element-wise: "ValueError: The truth value of an array ... is ambiguous"
    best = np.argmax(report.values("redundancy"))
    assert report[best] is report[0]
    assert report[np.int32(-1)].name == "fc -> fc"
    with pytest.raises(PIDIndexError, match="position 7 is out of range"):
        report[np.int64(7)]
    # the curves' pair lookup turns the miss into its own typed error naming `pair`
    with pytest.raises(pidkit.PIDValueError, match=r"^pair: is not one of the 2 audited"):
        _pair_of(report, np.int64(7))


@pytest.mark.parametrize("key", ["nope", True, 1.0, ("fc", "block.2"), slice(0, 1)],
                         ids=["name", "bool", "float", "tuple", "slice"])
def test_an_unknown_key_is_a_key_error_naming_the_pairs(key):
    with pytest.raises(PIDKeyError, match=r"is not a layer pair of this report\. Pass one of "
                       r"positions 0 to 1") as caught:
        _report()[key]
    assert isinstance(caught.value, KeyError)
    # printed as its message, not as the repr a plain KeyError shows
    assert str(caught.value).startswith("key: ")


def test_a_layer_audit_names_its_quantities():
    pair = _report()[0]
    assert pair["synergy"] == 0.5
    with pytest.raises(PIDKeyError, match=r"^quantity: 'red' is not an audited quantity of the "
                       r"pair layer3 -> block\.2\. Use one of \['mi_teacher', 'mi_student', "
                       r"'redundancy'"):
        pair["red"]
    with pytest.raises(KeyError, match=r"^quantity: 5 is not an audited quantity"):
        pair[5]


def test_a_missing_atom_names_the_atoms():
    r = pidkit.pid(np.full((2, 2, 2), 1 / 8), target=0, measure="mmi")
    with pytest.raises(PIDKeyError, match=r"^atoms: has no atom \{0\}\{2\}; its atoms: "
                                          r"\{0\}\{1\}, \{0\}, \{1\}, \{0:1\}\. Give a label"):
        r.atoms["{0}{2}"]
    with pytest.raises(KeyError, match=r"^atoms: has no atom 5; its atoms"):
        r.atoms[5]
    with pytest.raises(PIDTypeError, match=r"^atoms: cannot be looked up with a list"):
        r.atoms[[0]]
    # the Mapping protocol still holds: get() and `in` answer without raising
    assert r.atoms.get("{0}{2}", -1.0) == -1.0 and r.atoms.get([0]) is None
    assert 5 not in r.atoms and "{0:1}" in r.atoms


def test_a_large_lattice_lists_a_few_atoms_and_the_count():
    p = np.full((2, 2, 2, 2, 2), 1 / 32)
    r = pidkit.pid(p, target=0, measure="mmi")
    with pytest.raises(PIDKeyError, match=r", \.\.\. \(166 in all\)\."):
        r.atoms["{0}{5}"]
