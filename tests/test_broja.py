"""Bivariate BROJA (pidkit.discrete.broja): values against an independent exponential-cone
solve (cvxpy + Clarabel), literature gates, zeros and degenerate cases, the certificate, the
registry and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _broja_reference import information_terms, random_pmf, reference_unique

import pidkit
from pidkit.errors import ConvergenceWarning, PIDTypeError, PIDValueError

# Literature gates, in bits: copied from the project's reference table (canonical two-source
# distributions; values agree with Bertschinger et al. 2014, Griffith & Koch 2014 and the
# BROJA_2PID test gates of Makkeh, Theis, Vicente 2018). Outcomes "target|source1|source2",
# equally likely. Columns: redundancy, unique1, unique2, synergy.
LITERATURE = {
    "XOR": ("0|0|0 1|0|1 1|1|0 0|1|1", (0.0, 0.0, 0.0, 1.0)),
    "AND": ("0|0|0 0|0|1 0|1|0 1|1|1", (0.3112781244, 0.0, 0.0, 0.5)),
    "OR": ("0|0|0 1|0|1 1|1|0 1|1|1", (0.3112781244, 0.0, 0.0, 0.5)),
    "RDN": ("0|0|0 1|1|1", (1.0, 0.0, 0.0, 0.0)),
    "UNQ": ("(0,0)|0|0 (0,1)|0|1 (1,0)|1|0 (1,1)|1|1", (0.0, 1.0, 1.0, 0.0)),
    "COPY1": ("0|0|0 0|0|1 1|1|0 1|1|1", (0.0, 1.0, 0.0, 0.0)),
    "SUM": ("0|0|0 1|0|1 1|1|0 2|1|1", (0.5, 0.0, 0.0, 1.0)),
    "XORAND": ("(0,0)|0|0 (1,0)|0|1 (1,0)|1|0 (0,1)|1|1", (0.5, 0.0, 0.0, 1.0)),
    "RDNXOR": ("(0,0)|(0,0)|(0,0) (0,1)|(0,0)|(0,1) (0,1)|(0,1)|(0,0) (0,0)|(0,1)|(0,1) "
               "(1,0)|(1,0)|(1,0) (1,1)|(1,0)|(1,1) (1,1)|(1,1)|(1,0) (1,0)|(1,1)|(1,1)",
               (1.0, 0.0, 0.0, 1.0)),
    "W": ("1|0|0 0|0|1 0|1|0", (0.2516291674, 0.0, 0.0, 0.6666666667)),
}


def rdnunqxor_outcomes() -> str:
    """RDNUNQXOR (Griffith & Koch 2014): uniform bits r, a, b, c, d; T = (r, a, c),
    S = (r, b, d), Y = (r, a, b, c xor d). Every atom is 1 bit."""
    out = []
    for r, a, b, c, d in np.ndindex(2, 2, 2, 2, 2):
        out.append(f"({r},{a},{b},{c ^ d})|({r},{a},{c})|({r},{b},{d})")
    return " ".join(out)


LITERATURE["RDNUNQXOR"] = (rdnunqxor_outcomes(), (1.0, 1.0, 1.0, 1.0))


def gate_pmf(text: str) -> np.ndarray:
    """Pmf of equally likely outcomes ``"y|t|s y|t|s ..."``; values coded in sorted order."""
    outcomes = [tuple(tok.split("|")) for tok in text.split()]
    alphabets = [sorted({o[k] for o in outcomes}) for k in range(3)]
    p = np.zeros([len(a) for a in alphabets])
    for o in outcomes:
        p[tuple(alphabets[k].index(o[k]) for k in range(3))] += 1.0 / len(outcomes)
    return p


def atoms_bits(r) -> np.ndarray:
    return np.array([r.redundancy, r.unique[0], r.unique[1], r.synergy], dtype=float)


# -- against the independent exponential-cone solve --------------------------------------------
REFERENCE_CASES = [((2, 2, 2), 0.0, 0), ((2, 3, 4), 0.0, 1), ((4, 2, 3), 0.5, 2),
                   ((3, 5, 5), 0.0, 3), ((5, 4, 3), 0.6, 4), ((2, 6, 6), 0.7, 5),
                   ((6, 6, 2), 0.0, 6), ((4, 4, 4), 0.8, 7)]


@pytest.mark.parametrize("shape, sparsity, seed", REFERENCE_CASES)
def test_unique_matches_exponential_cone_solver(shape, sparsity, seed):
    p = random_pmf(np.random.default_rng(seed), shape, sparsity)
    ref = reference_unique(p)
    r = pidkit.pid(p, measure="broja")
    assert r.unique[0] == pytest.approx(ref, abs=1e-7)
    i_t, i_s, i_ts = information_terms(p)
    assert r.redundancy == pytest.approx(i_t - ref, abs=1e-7)
    assert r.unique[1] == pytest.approx(i_s - i_t + ref, abs=1e-7)
    assert r.synergy == pytest.approx(i_ts - i_s - ref, abs=1e-7)
    cert = r.solver.certificate
    assert cert.quantity == "unique[0]" and cert.gap <= 1e-9
    # the certificate brackets the reference (up to the reference solver's own accuracy)
    assert cert.lower - 1e-8 <= ref <= cert.upper + 1e-8


@pytest.mark.slow
@pytest.mark.parametrize("shape, sparsity, seed", [((10, 10, 10), 0.0, 11),
                                                   ((10, 9, 10), 0.6, 12),
                                                   ((7, 10, 8), 0.3, 13)])
def test_unique_matches_exponential_cone_solver_large(shape, sparsity, seed):
    p = random_pmf(np.random.default_rng(seed), shape, sparsity)
    ref = reference_unique(p)
    r = pidkit.pid(p, measure="broja")
    assert r.unique[0] == pytest.approx(ref, abs=1e-7)
    assert r.solver.certificate.lower - 1e-8 <= ref <= r.solver.certificate.upper + 1e-8


# -- literature gates --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LITERATURE))
def test_literature_gates(name):
    outcomes, expected = LITERATURE[name]
    r = pidkit.pid(gate_pmf(outcomes), measure="broja")
    np.testing.assert_allclose(atoms_bits(r), expected, atol=1e-8)
    assert r.solver.converged and r.solver.certificate.gap <= 1e-9


def test_units_follow_base():
    p = gate_pmf(LITERATURE["AND"][0])
    bits = pidkit.pid(p, measure="broja")
    nats = pidkit.pid(p, measure="broja", base=math.e)
    assert nats.redundancy == pytest.approx(bits.redundancy * math.log(2), abs=1e-12)
    assert nats.solver.certificate.gap == pytest.approx(bits.solver.certificate.gap
                                                        * math.log(2), abs=1e-15)


# -- zeros and degenerate cases (closed forms) --------------------------------------------------
def _closed_form_case(p, expected):
    r = pidkit.pid(p, measure="broja")
    np.testing.assert_allclose(atoms_bits(r), expected, atol=1e-12)
    return r


def test_constant_target_gives_zero_atoms():
    p = np.zeros((3, 2, 2))
    p[1] = random_pmf(np.random.default_rng(0), (2, 2))
    r = _closed_form_case(p, (0, 0, 0, 0))
    assert r.solver.status == "closed_form"


def test_constant_source_gives_other_source_unique():
    rng = np.random.default_rng(1)
    p_ys = random_pmf(rng, (3, 4))
    p = np.zeros((3, 2, 4))
    p[:, 1, :] = p_ys
    i_s = information_terms(p)[1]
    r = _closed_form_case(p, (0, 0, i_s, 0))
    assert r.solver.status == "closed_form"
    q = np.zeros((3, 4, 2))
    q[:, :, 0] = p_ys
    _closed_form_case(q, (0, i_s, 0, 0))


def test_identical_sources_are_fully_redundant():
    p_yx = random_pmf(np.random.default_rng(2), (3, 4))
    p = np.zeros((3, 4, 4))
    for x in range(4):
        p[:, x, x] = p_yx[:, x]
    i_t = information_terms(p)[0]
    r = _closed_form_case(p, (i_t, 0, 0, 0))
    assert r.solver.status == "closed_form"


def test_sources_independent_of_target():
    rng = np.random.default_rng(3)
    p = np.einsum("y,ts->yts", random_pmf(rng, (3,)), random_pmf(rng, (3, 4)))
    _closed_form_case(p, (0, 0, 0, 0))


def test_deterministic_target_matches_reference():
    rng = np.random.default_rng(4)
    f = rng.integers(0, 3, size=(4, 4))
    p_ts = random_pmf(rng, (4, 4), 0.3)
    p = np.zeros((3, 4, 4))
    for t, s in np.ndindex(4, 4):
        p[f[t, s], t, s] = p_ts[t, s]
    r = pidkit.pid(p, measure="broja")
    assert r.unique[0] == pytest.approx(reference_unique(p), abs=1e-7)


def test_structural_zeros_and_unused_outcomes():
    """Zeros in P(y,t) and P(y,s), and outcomes of zero probability, change nothing."""
    rng = np.random.default_rng(5)
    p = random_pmf(rng, (3, 3, 4))
    p[0, 1, :] = 0.0        # P(y=0, t=1) = 0
    p[2, :, 3] = 0.0        # P(y=2, s=3) = 0
    p /= p.sum()
    padded = np.zeros((4, 5, 5))
    padded[:3, :3, :4] = p  # extra outcomes of zero probability
    r = pidkit.pid(p, measure="broja")
    r_padded = pidkit.pid(padded, measure="broja")
    assert r.unique[0] == pytest.approx(reference_unique(p), abs=1e-7)
    np.testing.assert_allclose(atoms_bits(r_padded), atoms_bits(r), atol=2e-9)


def test_no_atom_below_minus_tol_on_degenerate_gates():
    for outcomes, _ in LITERATURE.values():
        r = pidkit.pid(gate_pmf(outcomes), measure="broja")
        assert min(r.atoms.values()) >= 0.0


# -- grouping axes through pidkit.pid -----------------------------------------------------------
def test_grouped_sources_equal_merged_axes():
    rng = np.random.default_rng(6)
    p = random_pmf(rng, (2, 2, 3, 2))
    grouped = pidkit.pid(p, target=0, sources=[[1, 2], [3]], measure="broja")
    merged = pidkit.pid(p.reshape(2, 6, 2), measure="broja")
    np.testing.assert_allclose(atoms_bits(grouped), atoms_bits(merged), atol=1e-12)


def test_registered_with_options():
    spec = pidkit.discrete.MEASURES["broja"]
    assert spec.max_sources == 3 and set(spec.options) == {"tol", "max_iter"}
    assert "broja" in pidkit.available_measures()


# -- tolerance, max_iter and the convergence warning --------------------------------------------
def test_tol_controls_the_certified_gap():
    p = random_pmf(np.random.default_rng(7), (4, 4, 4))
    loose = pidkit.pid(p, measure="broja", tol=1e-3)
    tight = pidkit.pid(p, measure="broja")
    assert loose.solver.certificate.gap <= 1e-3
    assert loose.solver.iterations < tight.solver.iterations
    assert abs(loose.unique[0] - tight.unique[0]) <= 1e-3


def test_max_iter_warns_and_still_certifies():
    p = random_pmf(np.random.default_rng(8), (4, 4, 4))
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        r = pidkit.pid(p, measure="broja", max_iter=2)
    assert r.solver.status == "max_iter" and not r.solver.converged
    ref = reference_unique(p)
    cert = r.solver.certificate
    assert cert.gap > 1e-9 and cert.lower - 1e-8 <= ref <= cert.upper + 1e-8
    assert min(r.atoms.values()) >= 0.0


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, error, match", [
    ({"tol": 0.0}, PIDValueError, "tol"),
    ({"tol": "small"}, PIDTypeError, "tol"),
    ({"max_iter": 0}, PIDValueError, "max_iter"),
    ({"max_iter": 2.5}, PIDTypeError, "max_iter"),
    ({"method": "cone"}, PIDValueError, "options"),
])
def test_invalid_options(options, error, match):
    with pytest.raises(error, match=match):
        pidkit.pid(gate_pmf(LITERATURE["AND"][0]), measure="broja", **options)


def test_four_sources_rejected():
    with pytest.raises(PIDValueError, match="at most 3 sources"):
        pidkit.pid(np.full((2,) * 5, 1 / 32), measure="broja")


@pytest.mark.parametrize("p, kwargs, error, match", [
    (np.full((2, 2), 0.25), {}, PIDValueError, "3 axes"),
    (np.full((2, 2, 2), 0.2), {}, PIDValueError, "sum"),
    (np.full((2, 2, 2, 2), 1 / 16), {"batch": True, "base": 1}, PIDValueError, "base"),
    (np.full((2, 2, 2), 0.125), {"batch": "yes"}, PIDTypeError, "batch"),
    (-np.full((1, 2, 2, 2), 0.125), {"batch": True}, PIDValueError, "negative"),
    (np.full((2, 2, 2), 0.125), {"batch": True}, PIDValueError, "4 axes"),
])
def test_broja_validation(p, kwargs, error, match):
    with pytest.raises(error, match=match):
        pidkit.broja(p, **kwargs)



@pytest.mark.parametrize("base", [2, math.e])
@pytest.mark.parametrize("kwargs", [{}, {"tol": 1e-6, "max_iter": 50}])
def test_broja_of_one_pmf_is_pid(base, kwargs):
    # pidkit.broja builds its single-pmf result itself (it must not import pidkit.decompose,
    # which imports it): the result is pidkit.pid's, value for value
    p = random_pmf(np.random.default_rng(3), (3, 4, 2), 0.3)
    p[:, 1, :] = 0.0                                   # an unused outcome, removed by both
    p /= p.sum()
    r = pidkit.broja(p, base=base, **kwargs)
    ref = pidkit.pid(p, measure="broja", base=base, **kwargs)
    assert r.to_dict() == ref.to_dict()
    assert r.details == ref.details and r.source_names == ref.source_names
    assert type(r.redundancy) is float
    lists = pidkit.broja((p * 3).tolist(), normalize=True, base=base, **kwargs)
    assert lists.to_dict() == pidkit.pid(p * 3, measure="broja", base=base, normalize=True,
                                         **kwargs).to_dict()


def test_numpy_batch_accepts_integers_and_array_likes():
    counts = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]])            # XOR as counts
    r = pidkit.broja(np.stack([counts, counts]), batch=True, normalize=True)
    r_list = pidkit.broja([counts.tolist()], batch=True, normalize=True)
    assert r.synergy.dtype == np.float64 and r.synergy.shape == (2,)
    np.testing.assert_allclose(r.synergy, 1.0, atol=1e-12)
    np.testing.assert_allclose(r_list.synergy, 1.0, atol=1e-12)
    with pytest.raises(PIDTypeError, match="real numbers"):
        pidkit.broja(np.ones((1, 2, 2, 2), dtype=complex), batch=True)


@pytest.mark.parametrize("independent", [0, 1])
def test_a_source_independent_of_the_target_is_closed_form(independent):
    """With I(Y;X_i) = 0 non-negativity pins every atom (Red = 0; the other source's unique
    information is its mutual information): no iteration, values equal to a generic solve."""
    rng = np.random.default_rng(11)
    p_ys = rng.dirichlet(np.ones(12)).reshape(3, 4)
    p_x = rng.dirichlet(np.ones(5))
    p = p_ys[:, None, :] * p_x[None, :, None]          # Y, S dependent; X independent of both
    if independent == 1:
        p = np.swapaxes(p, 1, 2)
    r = pidkit.pid(p, measure="broja")
    assert r.solver.status == "closed_form" and r.solver.iterations == 0
    assert r.redundancy == pytest.approx(0.0, abs=1e-12)
    assert r.unique[independent] == pytest.approx(0.0, abs=1e-12)
    assert r.unique[0] == pytest.approx(reference_unique(p), abs=1e-7)
