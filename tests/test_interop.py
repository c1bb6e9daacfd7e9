"""dit interop (from_dit, to_dit, pid on a dit.Distribution) and joint_pmf from samples."""

import dit
import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.gates import gate


def test_from_dit_string_outcomes():
    d = dit.Distribution(["000", "011", "101", "110"], [0.25] * 4)
    p, names = pidkit.from_dit(d)
    assert names == ("0", "1", "2")
    expected = np.zeros((2, 2, 2))
    for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        expected[a, b, a ^ b] = 0.25
    np.testing.assert_array_equal(p, expected)


def test_from_dit_tuple_outcomes_mixed_symbols_sparse_and_names():
    d = dit.Distribution([(0, "b", (1, 1)), (2, "a", (0, 1))], [0.75, 0.25],
                         rv_names=["Y", "S", "T"])
    p, names = pidkit.from_dit(d)
    assert names == ("Y", "S", "T")
    # alphabets sorted: Y {0, 2}, S {a, b}, T {(0,1), (1,1)}
    assert p.shape == (2, 2, 2)
    assert p[0, 1, 1] == 0.75 and p[1, 0, 0] == 0.25 and p.sum() == pytest.approx(1.0)


def test_from_dit_dense_with_zero_outcomes_and_log_base():
    d = dit.Distribution(["00", "01", "10", "11"], [0.5, 0.0, 0.0, 0.5])
    d.make_dense()
    p, _ = pidkit.from_dit(d.copy(base=2))  # log-probabilities
    np.testing.assert_allclose(p, [[0.5, 0.0], [0.0, 0.5]], atol=1e-15)


def test_from_dit_checks_the_probabilities_dit_hands_over():
    """dit builds distributions unchecked with validate=False, and a log distribution whose
    impossible outcomes hold 0 (probability 1) instead of -inf (as dit 2.3's constructor leaves
    dit.Distribution(["00", "11"], [-1, -1], base=2)) reads as an unnormalised pmf. from_dit
    returned such pmfs as they were ([[0.5, 1], [1, 0.5]] here); now it checks them as pid
    checks a pmf, naming the argument, and normalize=True divides by the total."""
    bad_log = dit.Distribution(["00", "01", "10", "11"], [-1.0, 0.0, 0.0, -1.0], base=2,
                               validate=False)
    with pytest.raises(PIDValueError, match=r"^dist: sums to 3, not 1 .*-inf"):
        pidkit.from_dit(bad_log)
    with pytest.raises(PIDValueError, match=r"^p: sums to 3, not 1"):
        pidkit.pid(bad_log)
    twice = dit.Distribution(["00", "11"], [1.0, 1.0], validate=False)
    with pytest.raises(PIDValueError, match=r"^dist: sums to 2, not 1"):
        pidkit.from_dit(twice)
    p, _ = pidkit.from_dit(twice, normalize=True)
    np.testing.assert_array_equal(p, [[0.5, 0.0], [0.0, 0.5]])
    r = pidkit.pid(dit.Distribution(["000", "011", "101", "110"], [1.0] * 4, validate=False),
                   target=2, measure="mmi", normalize=True)
    assert r.synergy == pytest.approx(1.0, abs=1e-12)


def test_from_dit_rejects_other_objects():
    with pytest.raises(PIDTypeError, match="^dist: must be a dit.Distribution"):
        pidkit.from_dit(np.ones((2, 2)) / 4)


@pytest.mark.parametrize("name", ["AND", "RDNXOR", "SUM"])
def test_round_trip(name):
    p = gate(name)
    d = pidkit.to_dit(p, names=["Y", "A", "B"])
    assert d.get_rv_names() == ("Y", "A", "B")
    assert len(d.outcomes) == int((p > 0).sum())  # only positive outcomes listed
    q, names = pidkit.from_dit(d)
    assert names == ("Y", "A", "B")
    np.testing.assert_allclose(q, p[tuple(slice(0, s) for s in q.shape)])
    assert q.sum() == pytest.approx(1.0)


def test_to_dit_agrees_with_dit_entropy():
    rng = np.random.default_rng(0)
    p = rng.random((3, 2, 2))
    p /= p.sum()
    d = pidkit.to_dit(p)
    h = -(p * np.log2(p)).sum()
    assert dit.shannon.entropy(d) == pytest.approx(h, abs=1e-12)


def test_to_dit_validation():
    with pytest.raises(PIDValueError, match="^names: needs 3 strings"):
        pidkit.to_dit(gate("XOR"), names=["Y", "A"])
    with pytest.raises(PIDValueError, match="^names: repeats a name"):
        pidkit.to_dit(gate("XOR"), names=["Y", "A", "A"])
    with pytest.raises(PIDTypeError, match="^names: must be a list of strings"):
        pidkit.to_dit(gate("XOR"), names="YAB")
    with pytest.raises(PIDValueError, match="^p: sums to"):
        pidkit.to_dit(2 * gate("XOR"))
    assert len(pidkit.to_dit(2 * gate("XOR"), normalize=True).outcomes) == 4


def test_pid_on_dit_distribution_uses_variable_indices_and_names():
    d = dit.Distribution([(a, b, a & b) for a in (0, 1) for b in (0, 1)], [0.25] * 4,
                         rv_names=["A", "B", "Z"])
    r = pidkit.pid(d, target=2, measure="imin")
    ref = pidkit.pid(gate("AND"), measure="imin")
    for node, value in ref.atoms.items():
        assert r.atoms[node] == pytest.approx(value, abs=1e-12)
    assert r.source_names == ("A", "B") and r.target_name == "Z"
    grouped = pidkit.pid(d, target=2, sources=[[0, 1]], measure="mmi")
    assert grouped.source_names == ("A+B",)
    assert grouped.synergy == pytest.approx(ref.mutual_information)


# --- joint_pmf -------------------------------------------------------------------------------
def test_joint_pmf_counts():
    y = [0, 1, 1, 0, 2, 2]
    x = np.array([0, 0, 1, 1, 1, 1], dtype=np.int32)
    p = pidkit.joint_pmf(y, x)
    assert p.shape == (3, 2)
    np.testing.assert_allclose(p, [[1 / 6, 1 / 6], [1 / 6, 1 / 6], [0, 2 / 6]])


def test_joint_pmf_recovers_gate_from_samples():
    rng = np.random.default_rng(1)
    x0, x1 = rng.integers(0, 2, size=(2, 4000))
    p = pidkit.joint_pmf(x0 ^ x1, x0, x1)
    r = pidkit.pid(p, measure="mmi")
    assert r.synergy == pytest.approx(1.0, abs=0.01)
    assert p.sum() == pytest.approx(1.0)


def test_joint_pmf_accepts_bools_and_unobserved_codes():
    p = pidkit.joint_pmf([True, False], [3, 3])
    assert p.shape == (2, 4) and p[1, 3] == 0.5 and p[:, :3].sum() == 0


@pytest.mark.parametrize(("columns", "kind", "match"), [
    (([0, 1], [0]), PIDValueError, r"^columns: have different lengths \[2, 1\]"),
    (([0.5, 1.0],), PIDTypeError, r"^columns\[0\]: holds non-integer values"),
    (([0, 1], [0, -1]), PIDValueError, r"^columns\[1\]: contains negative codes \(min -1\)"),
    (([0.0, np.nan],), PIDValueError, r"^columns\[0\]: contains NaN"),
    (([],), PIDValueError, r"^columns\[0\]: is empty"),
    ((np.zeros((2, 2), dtype=int),), PIDValueError, r"^columns\[0\]: must be 1-D"),
    (("0101",), PIDTypeError, r"^columns\[0\]: must be a 1-D array of codes or labels"),
    (([[0, 1], [0]],), PIDTypeError, r"^columns\[0\]: is ragged"),
    (((), ), PIDValueError, r"^columns\[0\]: is empty"),
    ((), PIDTypeError, r"^columns: none given"),
    (([10**5], [10**5]), PIDValueError, r"^columns\[0\]: holds code 100000, so the joint table"),
])
def test_joint_pmf_rejects_bad_samples(columns, kind, match):
    with pytest.raises(kind, match=match):
        pidkit.joint_pmf(*columns)
