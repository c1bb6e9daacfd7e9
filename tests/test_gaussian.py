"""Exact Gaussian PID (numpy): closed forms, MMI for scalar targets, identities, invariances,
agreement with an independent generic solver, certificates, batches and degenerate inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _gaussian_reference import blocks, channel_cov, generic_union, mi, random_cov
from hypothesis import given, settings
from hypothesis import strategies as st

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError, RegularizationWarning

LOG2 = math.log(2)

# Values from the project's reference table (docs: gaussian.csv rows "orthogonal" and
# "same direction"), in bits: (redundancy, unique X, unique Y, synergy).
#   orthogonal: M ~ N(0, I_2), X = M1 + N1, Y = M2 + N2 -> (0, 0.5, 0.5, 0), I(M;X,Y) = 1.
#   same direction: X = sqrt(2) M1 + N1, Y = M1 + N2 -> (0.5, 0.292481, 0, 0.207519),
#   U_X = 0.5 log2(3) - 0.5.
ORTHOGONAL = (np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), (0.0, 0.5, 0.5, 0.0), 1.0)
SAME_DIRECTION = (np.array([[math.sqrt(2), 0.0]]), np.array([[1.0, 0.0]]),
                  (0.5, 0.5 * math.log2(3) - 0.5, 0.0, 1.0 - 0.5 * math.log2(3)), 1.0)


def atoms(r):
    return np.array([r.redundancy, r.unique[0], r.unique[1], r.synergy], dtype=float)


def union(r):
    """f* = I(M;Y) + Uni_X in the result's units."""
    return r.details["mi_sources"][1] + r.unique[0]


@pytest.mark.parametrize("case", [ORTHOGONAL, SAME_DIRECTION], ids=["orthogonal", "same"])
def test_reference_closed_forms(case):
    a_x, a_y, expected, total = case
    r = pidkit.gaussian_pid(channel_cov(a_x, a_y), dims=(2, 1, 1))
    np.testing.assert_allclose(atoms(r), expected, atol=1e-12)
    assert r.mutual_information == pytest.approx(total, abs=1e-12)
    assert r.solver.status == "closed_form"
    assert r.solver.certificate.gap < 1e-12


def test_reference_table_decimals():
    # The table's 6-decimal values for "same direction".
    a_x, a_y, _, _ = SAME_DIRECTION
    r = pidkit.gaussian_pid(channel_cov(a_x, a_y), dims=(2, 1, 1))
    np.testing.assert_allclose(atoms(r), [0.5, 0.292481, 0.0, 0.207519], atol=5e-7)


def test_identities_and_units():
    rng = np.random.default_rng(0)
    dims = (3, 2, 4)
    cov = random_cov(rng, 9)
    m, x, y = blocks(dims)
    r = pidkit.gaussian_pid(cov, dims)
    a = atoms(r)
    assert a[0] + a[1] == pytest.approx(mi(cov, m, x) / LOG2, abs=1e-12)
    assert a[0] + a[2] == pytest.approx(mi(cov, m, y) / LOG2, abs=1e-12)
    assert a.sum() == pytest.approx(mi(cov, m, x + y) / LOG2, abs=1e-12)
    assert r.mutual_information == pytest.approx(a.sum(), abs=1e-12)
    assert (a > -1e-12).all()
    nats = pidkit.gaussian_pid(cov, dims, base=math.e)
    np.testing.assert_allclose(atoms(nats), a * LOG2, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_scalar_target_is_mmi(seed):
    rng = np.random.default_rng(seed)
    dims = (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    cov = random_cov(rng, sum(dims))
    m, x, y = blocks(dims)
    i_x, i_y = mi(cov, m, x) / LOG2, mi(cov, m, y) / LOG2
    r = pidkit.gaussian_pid(cov, dims, measure="broja")
    assert r.redundancy == pytest.approx(min(i_x, i_y), abs=1e-12)
    mmi = pidkit.gaussian_pid(cov, dims, measure="mmi")
    np.testing.assert_allclose(atoms(r), atoms(mmi), atol=1e-12)


def test_mmi_vector_target_is_min():
    rng = np.random.default_rng(1)
    dims = (3, 3, 3)
    cov = random_cov(rng, 9)
    m, x, y = blocks(dims)
    r = pidkit.gaussian_pid(cov, dims, measure="mmi")
    assert r.redundancy == pytest.approx(min(mi(cov, m, x), mi(cov, m, y)) / LOG2, abs=1e-12)
    # BROJA redundancy never exceeds MMI's (its union information is at least max(I_X, I_Y)).
    assert pidkit.gaussian_pid(cov, dims).redundancy <= r.redundancy + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_additive_over_independent_copies(seed):
    rng = np.random.default_rng(seed + 10)
    dims = (2, 2, 3)
    cov = random_cov(rng, 7)
    m, x, y = blocks(dims)
    order = m + [i + 7 for i in m] + x + [i + 7 for i in x] + y + [i + 7 for i in y]
    double = np.zeros((14, 14))
    double[:7, :7] = cov
    double[7:, 7:] = cov
    double = double[np.ix_(order, order)]
    one = atoms(pidkit.gaussian_pid(cov, dims))
    two = atoms(pidkit.gaussian_pid(double, (4, 4, 6)))
    np.testing.assert_allclose(two, 2 * one, atol=1e-11)


@pytest.mark.parametrize("seed", range(3))
def test_invariant_under_block_linear_maps(seed):
    rng = np.random.default_rng(seed + 20)
    dims = (3, 3, 2)
    cov = random_cov(rng, 8)
    t = np.zeros((8, 8))
    for s in blocks(dims):
        t[np.ix_(s, s)] = rng.normal(size=(len(s), len(s))) + 2 * np.eye(len(s))
    mapped = t @ cov @ t.T
    np.testing.assert_allclose(atoms(pidkit.gaussian_pid(mapped, dims)),
                               atoms(pidkit.gaussian_pid(cov, dims)), atol=1e-10)


def test_swapping_sources_swaps_uniques():
    rng = np.random.default_rng(4)
    dims = (2, 3, 2)
    cov = random_cov(rng, 7)
    m, x, y = blocks(dims)
    perm = m + y + x
    a = atoms(pidkit.gaussian_pid(cov, dims))
    b = atoms(pidkit.gaussian_pid(cov[np.ix_(perm, perm)], (2, 2, 3)))
    np.testing.assert_allclose(b, a[[0, 2, 1, 3]], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("dims,seed", [((2, 2, 2), 3), ((3, 2, 3), 5), ((2, 3, 2), 7)])
def test_agrees_with_independent_generic_solver(dims, seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):  # pick a case where neither source is degraded (the hard regime)
        cov = random_cov(rng, sum(dims))
        r = pidkit.gaussian_pid(cov, dims, base=math.e)
        lam = r.details["eigenvalues"]
        if lam.min() < 0.95 and lam.max() > 1.05:
            break
    assert lam.min() < 1 < lam.max()
    assert union(r) == pytest.approx(generic_union(cov, dims, starts=2), abs=1e-9)


def test_certificate_brackets_and_is_tight():
    rng = np.random.default_rng(6)
    dims = (4, 5, 5)
    r = pidkit.gaussian_pid(random_cov(rng, 14), dims)
    cert = r.solver.certificate
    assert cert.lower - 1e-15 <= r.unique[0] <= cert.upper + 1e-15
    assert 0 <= cert.gap < 1e-10


def test_boundary_optimum_identical_channels():
    # Identical channels: the optimal coupling makes the noises equal (||C|| = 1), Uni = 0.
    a = np.array([[1.0, 0.5], [0.0, 2.0]])
    r = pidkit.gaussian_pid(channel_cov(a, a), dims=(2, 2, 2))
    i_x = r.details["mi_sources"][0]
    np.testing.assert_allclose(atoms(r)[:3], [i_x, 0.0, 0.0], atol=1e-12)
    assert r.solver.certificate.gap < 1e-9


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(7)
    dims = (2, 2, 3)
    covs = np.stack([random_cov(rng, 7) for _ in range(5)]).reshape(5, 1, 7, 7)
    r = pidkit.gaussian_pid(covs, dims)
    assert r.redundancy.shape == (5, 1)
    for i in range(5):
        single = pidkit.gaussian_pid(covs[i, 0], dims)
        np.testing.assert_allclose([r.atoms[k][i, 0] for k in r.atoms],
                                   [single.atoms[k] for k in single.atoms], atol=1e-13)
        assert r.solver.certificate.lower[i, 0] == pytest.approx(
            single.solver.certificate.lower, abs=1e-13)


def test_names_match_the_discrete_result():
    """Target, source and certificate names are those of pidkit.pid on a pmf (issue 14)."""
    p = np.zeros((2, 2, 2))  # p[y, x0, x1], y = x0 AND x1, uniform inputs
    for x0 in (0, 1):
        for x1 in (0, 1):
            p[x0 & x1, x0, x1] = 0.25
    discrete = pidkit.pid(p, target=0, measure="broja")
    cov = channel_cov(*SAME_DIRECTION[:2])
    for r in (pidkit.gaussian_pid(cov, dims=(2, 1, 1)),
              pidkit.gaussian_pid(cov, dims=(2, 1, 1), measure="mmi")):
        assert r.source_names == discrete.source_names == ("X0", "X1")
        assert r.target_name == discrete.target_name == "Y"
        assert str(r).splitlines()[0].startswith("PID of Y from (X0, X1)")
    cert = pidkit.gaussian_pid(cov, dims=(2, 1, 1)).solver.certificate
    assert cert.quantity == discrete.solver.certificate.quantity == "unique[0]"
    assert pidkit.gaussian_pid(cov, dims=(2, 1, 1)).to_dict()["solver"]["certificate"][
        "quantity"] == "unique[0]"


def test_result_serialises():
    r = pidkit.gaussian_pid(channel_cov(*SAME_DIRECTION[:2]), dims=(2, 1, 1))
    d = r.to_dict()
    assert d["atoms"]["{0}"] == pytest.approx(0.5 * math.log2(3) - 0.5, abs=1e-12)
    assert d["solver"]["status"] == "closed_form"
    assert "certified gap" in str(r)


# --- degenerate inputs --------------------------------------------------------------------
def test_source_linear_in_other_source():
    # Y = 2 X exactly: the joint is singular; BROJA sees identical channels.
    a = np.array([[1.0, 0.3]])
    cov = channel_cov(a, 2 * a, noise_y=4 * np.eye(1), cross=2 * np.eye(1))
    assert np.linalg.eigvalsh(cov).min() < 1e-12
    r = pidkit.gaussian_pid(cov, dims=(2, 1, 1))
    i_x = mi(channel_cov(a, a), [0, 1], [2]) / LOG2
    np.testing.assert_allclose(atoms(r), [i_x, 0, 0, 0], atol=1e-10)
    assert any("share" in n for n in r.details["reductions"])
    assert r.details["ranks"] == (2, 1, 1, 1)        # the joint source has one dimension


def test_duplicated_variable_within_a_block():
    # X = (X1, X1): same information as X1 alone.
    a = np.array([[1.0, 0.0], [0.5, 1.0]])
    cov = channel_cov(a[:1], a[1:])
    t = np.zeros((5, 4))
    t[[0, 1, 2, 3, 4], [0, 1, 2, 2, 3]] = 1.0
    dup = t @ cov @ t.T
    r_dup = pidkit.gaussian_pid(dup, dims=(2, 2, 1))
    np.testing.assert_allclose(atoms(r_dup), atoms(pidkit.gaussian_pid(cov, (2, 1, 1))),
                               atol=1e-10)
    assert r_dup.details["ranks"] == (2, 1, 1, 2)
    batch = pidkit.gaussian_pid(np.stack([dup, np.eye(5)]), dims=(2, 2, 1))
    np.testing.assert_array_equal(batch.details["ranks"], [[2, 1, 1, 2], [2, 2, 1, 3]])
    fast = pidkit.gaussian_pid(np.eye(5), dims=(2, 2, 1), validate=False)
    assert fast.details["ranks"] == (2, 2, 1, 3)     # unvalidated: the block sizes


def test_constant_variable_is_dropped():
    cov = channel_cov(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    padded = np.zeros((5, 5))
    padded[:4, :4] = cov  # a constant second variable in source 2
    r = pidkit.gaussian_pid(padded, dims=(2, 1, 2))
    np.testing.assert_allclose(atoms(r), ORTHOGONAL[2], atol=1e-12)
    assert r.details["ranks"] == (2, 1, 1, 2)


def test_nearly_collinear_sources_are_accurate_without_warning():
    # Y = X + eps W (W independent): Y is a degraded X, so Uni_Y = 0 and Syn = 0 exactly, while
    # the joint (X, Y) block has condition number ~ 1 / eps**2.
    eps = 1e-6
    cov = channel_cov(np.ones((1, 1)), np.ones((1, 1)), noise_y=(1 + eps**2) * np.eye(1),
                      cross=np.eye(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pidkit.gaussian_pid(cov, dims=(1, 1, 1))
    i_x, i_y = 0.5, 0.5 * math.log2(1 + 1 / (1 + eps**2))
    np.testing.assert_allclose(atoms(r), [i_y, i_x - i_y, 0.0, 0.0], atol=1e-9)


def test_noise_free_source_is_rejected():
    cov = channel_cov(np.array([[1.0]]), np.array([[1.0]]), noise_x=np.zeros((1, 1)))
    with pytest.raises(PIDValueError, match="infinite information"):
        pidkit.gaussian_pid(cov, dims=(1, 1, 1))


def test_target_determined_by_both_sources_is_rejected():
    # X = M + N, Y = M - N: X + Y = 2M.
    cov = channel_cov(np.array([[1.0]]), np.array([[1.0]]), cross=-np.eye(1))
    with pytest.raises(PIDValueError, match="two sources together"):
        pidkit.gaussian_pid(cov, dims=(1, 1, 1))


def test_near_singular_is_regularised_with_amount():
    cov = channel_cov(np.array([[1.0]]), np.array([[1.0]]), noise_x=1e-11 * np.eye(1))
    with pytest.warns(RegularizationWarning, match="ridge of [0-9.e+-]+ x Sigma_MM"):
        r = pidkit.gaussian_pid(cov, dims=(1, 1, 1))
    ridge = r.solver.details["ridge"]
    assert 0 < ridge < 1e-9
    # The answer is the PID of the ridged covariance: I(M;X) = 0.5 log2(1 + 1/(1e-11 + ridge')).
    assert 15 < r.unique[0] < 20
    assert np.isfinite(atoms(r)).all()


def test_well_conditioned_input_does_not_warn():
    rng = np.random.default_rng(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pidkit.gaussian_pid(random_cov(rng, 6), dims=(2, 2, 2))


@pytest.mark.parametrize("cov,dims,err,match", [
    (np.eye(3), (1, 1), PIDTypeError, "three block sizes"),
    (np.eye(3), (1, 1, 2), PIDValueError, "sums to 4"),
    (np.eye(3), (1, 0, 2), PIDValueError, "block size < 1"),
    (np.ones((3, 2)), (1, 1, 1), PIDValueError, "square"),
    (np.array([[1.0, 0.5, 0], [0.4, 1, 0], [0, 0, 1]]), (1, 1, 1), PIDValueError, "symmetric"),
    (np.diag([1.0, np.nan, 1.0]), (1, 1, 1), PIDValueError, "NaN"),
    (np.diag([1.0, -1.0, 1.0]), (1, 1, 1), PIDValueError, "negative variance"),
    (np.array([[1.0, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]), (1, 1, 1), PIDValueError,
     "not positive semi-definite"),
    ("cov", (1, 1, 1), PIDTypeError, "covariance"),
])
def test_bad_inputs_rejected(cov, dims, err, match):
    with pytest.raises(err, match=match):
        pidkit.gaussian_pid(cov, dims)


def test_bad_options_rejected():
    with pytest.raises(PIDValueError, match="measure"):
        pidkit.gaussian_pid(np.eye(3), (1, 1, 1), measure="ccs")
    with pytest.raises(PIDValueError, match="base"):
        pidkit.gaussian_pid(np.eye(3), (1, 1, 1), base=1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d_m=st.integers(1, 4), d_x=st.integers(1, 4),
       d_y=st.integers(1, 4))
def test_properties_on_random_covariances(seed, d_m, d_x, d_y):
    rng = np.random.default_rng(seed)
    dims = (d_m, d_x, d_y)
    cov = random_cov(rng, sum(dims), extra=int(rng.integers(0, 4)))
    m, x, y = blocks(dims)
    r = pidkit.gaussian_pid(cov, dims, base=math.e)
    a = atoms(r)
    assert (a > -1e-10).all()                                   # non-negative atoms
    assert a[0] + a[1] == pytest.approx(mi(cov, m, x), abs=1e-9)
    assert a[0] + a[2] == pytest.approx(mi(cov, m, y), abs=1e-9)
    assert a.sum() == pytest.approx(mi(cov, m, x + y), abs=1e-9)
    assert r.solver.certificate.gap < 1e-9
    mmi = pidkit.gaussian_pid(cov, dims, measure="mmi", base=math.e)
    assert a[0] <= mmi.redundancy + 1e-10                      # BROJA red <= MMI red
