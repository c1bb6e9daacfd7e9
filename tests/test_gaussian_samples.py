"""The Gaussian estimator from samples, reached by both entry points
(``pidkit.gaussian_pid_from_samples`` and ``pid_from_samples(estimator="gaussian")``): identical
results, the digamma bias formula against simulation, the exact bias of plug-in atoms and its
removal (margins from theory), interval coverage (binomial margin), invariance to the units of
the samples, torch input, small-n resamples, and input checks.

Samples are drawn through a Cholesky factor computed here (``standard_normal @ L.T``), never
through an SVD or eigendecomposition, so they are the same on every machine."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _gaussian_reference import channel_cov, separated_classes
from scipy import stats

import pidkit
from pidkit.estimate import GaussianMoments, pid_from_samples
from pidkit.estimate.codes import one_hot
from pidkit.estimate.gaussian_route import (
    _weighted_covariances,
    gaussian_vectors,
    logdet_bias,
    mi_bias,
    standardized,
)

# X dominates Y strongly in every direction (generalized eigenvalues 3.3 and 4.7): at n >= 40
# the sample eigenvalues stay above 1, so the plug-in BROJA union information is I(M;X) in every
# replicate and the bias of every plug-in atom is a combination of exact Wishart biases.
A_X = np.array([[2.0, 0.3], [0.0, 1.6]])
A_Y = np.array([[0.3, 0.0], [0.1, 0.2]])
DIMS = (2, 2, 2)
ATOMS = ("red", "uni_x", "uni_y", "syn")


def truth(cov):
    r = pidkit.gaussian_pid(cov, DIMS, base=math.e)
    return np.array([r.redundancy, r.unique[0], r.unique[1], r.synergy])


def draw(rng, cov, n):
    """``n`` rows of N(0, cov) through the Cholesky factor, split into blocks (2, 2, 2)."""
    z = rng.standard_normal((n, len(cov))) @ np.linalg.cholesky(cov).T
    return z[:, :2], z[:, 2:4], z[:, 4:]


def atoms_of(r):
    return np.array([r.redundancy, *r.unique, r.synergy])


# -- one estimator, two entry points ------------------------------------------------------------
def _assert_identical(a, b):
    assert a.atoms == b.atoms
    assert a.mutual_information == b.mutual_information
    assert a.intervals == b.intervals
    assert a.details == b.details
    assert a.solver.to_dict() == b.solver.to_dict()
    assert a.to_dict() == b.to_dict()                 # names included


@pytest.mark.parametrize("kwargs", [
    {},
    {"bias_correction": False},
    {"measure": "mmi", "interval": "basic", "n_boot": 40, "n_perm": 30, "ci": 0.9},
    {"base": math.e, "ci": None, "n_perm": 0},
])
def test_both_entry_points_give_identical_results(kwargs):
    """The issue's case: 200 samples, same arguments and seed -> the same values, intervals and
    details (they differed by divisor and default before: redundancy 0.4599 vs 0.4673)."""
    rng = np.random.default_rng(14)
    m, x, y = draw(rng, channel_cov(np.array([[1.0, 0.2], [0.3, 0.8]]),
                                    np.array([[0.9, 0.0], [0.4, 0.6]])), 200)
    a = pidkit.gaussian_pid_from_samples(m, x, y, seed=3, **kwargs)
    b = pid_from_samples(m, x, y, estimator="gaussian", seed=3, **kwargs)
    _assert_identical(a, b)
    assert a.details["bias_correction"] is kwargs.get("bias_correction", True)


def test_entry_points_share_the_default_and_the_streaming_statistic_agrees():
    rng = np.random.default_rng(1)
    m, x, y = draw(rng, channel_cov(A_X, A_Y), 300)
    a = pidkit.gaussian_pid_from_samples(m, x, y, n_boot=0, n_perm=0, seed=0)
    b = pid_from_samples(m, x, y, estimator="gaussian", n_boot=0, n_perm=0, seed=0)
    stream = GaussianMoments()
    for s in (slice(0, 128), slice(128, 300)):
        stream.update(m[s], x[s], y[s])
    c = stream.pid()
    assert a.details["bias_correction"] and b.details["bias_correction"]
    for node in a.atoms:
        assert a.atoms[node] == b.atoms[node]
        assert c.atoms[node] == pytest.approx(a.atoms[node], abs=1e-12)
    assert c.details["mutual_information_bias_wishart"] == a.details[
        "mutual_information_bias_wishart"]


# -- the bias -----------------------------------------------------------------------------------
def test_logdet_bias_matches_wishart_simulation():
    rng = np.random.default_rng(0)
    n, p = 12, 3
    sigma = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 0.5]])
    z = rng.standard_normal((4000, n, p)) @ np.linalg.cholesky(sigma).T
    c = z - z.mean(axis=1, keepdims=True)
    vals = np.linalg.slogdet(np.einsum("rni,rnj->rij", c, c))[1]
    expected = np.linalg.slogdet(sigma)[1] + p * math.log(2) + logdet_bias(n, p)
    se = np.std(vals) / math.sqrt(len(vals))
    assert abs(np.mean(vals) - expected) < 5 * se       # two-sided, P(fail) ~ 6e-7


def test_mi_bias_is_positive_and_vanishes():
    assert mi_bias(20, 2, 3) > mi_bias(200, 2, 3) > mi_bias(20000, 2, 3) > 0
    # Large n: bias ~ a b / (2 n).
    assert mi_bias(100000, 2, 3) == pytest.approx(6 / (2 * 100000), rel=1e-3)
    np.testing.assert_allclose(mi_bias(np.array([20.0, 200.0]), 2, 3),
                               [mi_bias(20, 2, 3), mi_bias(200, 2, 3)])
    assert np.isnan(mi_bias(np.array([5.0]), 2, 3)).all()    # n <= a + b: undefined


@pytest.mark.parametrize("n", [40, 160])
def test_bias_of_plugin_atoms_is_the_wishart_bias_and_correction_removes_it(n):
    """With X dominating in every replicate (checked: plug-in Uni_Y = 0), the plug-in atoms are
    linear in Gaussian informations, so their bias is exact: Red = I(M;Y) has bias b(2,2),
    Uni_X none (equal block sizes), Syn = I(M;X,Y) - I(M;X) has b(2,4) - b(2,2). Means over
    R = 400 data sets are compared with 5 standard errors (two-sided: P(fail) ~ 6e-7 per
    assertion); the biases themselves are 10-23 standard errors here."""
    cov = channel_cov(A_X, A_Y)
    true = truth(cov)
    rng = np.random.default_rng(n)
    plug, corr = [], []
    for _ in range(400):
        r = pidkit.gaussian_pid_from_samples(*draw(rng, cov, n), base=math.e, ci=None,
                                             n_perm=0)
        corr.append(atoms_of(r))
        plug.append([r.details["plugin"][k] for k in ATOMS])
    plug, corr = np.array(plug), np.array(corr)
    assert np.abs(plug[:, 2]).max() < 1e-12                 # the regime held in every sample
    exact = np.array([mi_bias(n, 2, 2), 0.0, 0.0, mi_bias(n, 2, 4) - mi_bias(n, 2, 2)])
    se_plug = plug.std(axis=0, ddof=1) / math.sqrt(len(plug))
    se_corr = corr.std(axis=0, ddof=1) / math.sqrt(len(corr))
    for k in (0, 1, 3):
        assert abs(plug[:, k].mean() - true[k] - exact[k]) < 5 * se_plug[k], ATOMS[k]
        assert abs(corr[:, k].mean() - true[k]) < 5 * se_corr[k], ATOMS[k]
    for k in (0, 3):
        assert exact[k] > 6 * se_plug[k]                    # the test can see the bias


@pytest.mark.slow
def test_bootstrap_interval_coverage():
    """Coverage of the 95 % percentile intervals over R data sets: each count is binomial; the
    threshold is the 1e-4 quantile of Binomial(R, 0.9), so the test fails with probability
    below 1e-4 per atom if the true coverage is at least 0.9."""
    cov = channel_cov(np.array([[1.0]]), np.array([[0.7]]))
    true = pidkit.gaussian_pid(cov, (1, 1, 1))
    chol = np.linalg.cholesky(cov)
    rng = np.random.default_rng(5)
    reps = 60
    hits = np.zeros(4)
    for i in range(reps):
        z = rng.standard_normal((300, 3)) @ chol.T
        r = pidkit.gaussian_pid_from_samples(z[:, :1], z[:, 1:2], z[:, 2:], n_boot=100,
                                             n_perm=0, seed=i)
        for j, node in enumerate(r.atoms):
            lo, hi = r.intervals[node]
            hits[j] += lo <= true.atoms[node] <= hi
    threshold = stats.binom.ppf(1e-4, reps, 0.9)
    # Uni_Y is 0 (a boundary of a never-negative estimate) and excluded.
    assert (hits[[0, 1, 3]] > threshold).all(), (hits, threshold)


def test_intervals_and_details():
    rng = np.random.default_rng(1)
    m, x, y = draw(rng, channel_cov(A_X, A_Y), 500)
    r = pidkit.gaussian_pid_from_samples(m, x, y, n_boot=50, n_perm=20, seed=0)
    for lo, hi in r.intervals.values():
        assert lo <= hi
    d = r.details
    assert d["n_samples"] == 500 and d["dims"] == [2, 2, 2] and d["seed"] == 0
    assert d["mutual_information_bias_wishart"]["I(Y;X0,X1)"] == pytest.approx(
        mi_bias(500, 2, 4) / math.log(2))
    assert d["bias"]["method"] == "bootstrap" and set(d["p_values"]) >= {"redundancy", "synergy"}
    assert d["dropped_replicates"] == {"bootstrap": 0, "null": 0}
    same = pidkit.gaussian_pid_from_samples(m, x, y, n_boot=50, n_perm=20, seed=0)
    assert same.intervals == r.intervals and same.details == r.details
    raw = pidkit.gaussian_pid_from_samples(m, x, y, bias_correction=False, ci=None, n_perm=0)
    z = np.hstack([m, x, y])
    plug = pidkit.gaussian_pid(np.cov(z.T), DIMS)
    assert raw.synergy == pytest.approx(plug.synergy, abs=1e-12)
    assert raw.solver.certificate is not None        # plug-in: gaussian_pid's certificate
    assert r.synergy < raw.synergy                    # the correction removes a positive bias
    assert d["plugin"]["syn"] == pytest.approx(raw.synergy, abs=1e-12)


# -- units ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1e160, 1e-160, 2.0 ** 1000, 1e-300])
def test_atoms_do_not_depend_on_the_units_of_the_samples(factor):
    """Any finite rescaling of one block (x 1e160 overflowed the covariance before, x 1e-160
    underflowed it) gives the same atoms, intervals and p-values, up to float64 rounding."""
    rng = np.random.default_rng(3)
    m, x, y = draw(rng, channel_cov(A_X, A_Y), 200)
    kw = dict(n_boot=30, n_perm=20, seed=1)
    ref = pidkit.gaussian_pid_from_samples(m, x, y, **kw)
    for scaled in ((m * factor, x, y), (m, x * factor, y), (m, x, y * factor),
                   (m * factor, x * factor, y / factor if factor > 1 else y)):
        r = pidkit.gaussian_pid_from_samples(*scaled, **kw)
        np.testing.assert_allclose(atoms_of(r), atoms_of(ref), rtol=1e-9, atol=1e-12)
        for node, (lo, hi) in ref.intervals.items():
            assert r.intervals[node] == pytest.approx((lo, hi), rel=1e-9, abs=1e-12)
        assert r.details["p_values"] == ref.details["p_values"]
    stream = GaussianMoments().update(m * factor, x, y)
    assert atoms_of(stream.pid()) == pytest.approx(atoms_of(ref), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_raise_a_typed_error(bad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20)
    x[3] = bad
    with pytest.raises(pidkit.PIDValueError, match="x.*NaN or infinite"):
        pidkit.gaussian_pid_from_samples(rng.standard_normal(20), x, rng.standard_normal(20))
    with pytest.raises(pidkit.PIDValueError, match="NaN or infinite"):
        GaussianMoments().update(rng.standard_normal(20), x, rng.standard_normal(20))


def test_exact_copies_of_variables_do_not_change_the_corrected_atoms():
    """A source with a copied column carries the information of the source without it, and two
    identical sources that of one (``gaussian_pid`` computes on the independent part). The
    bias correction must then be the Wishart bias of the independent variables: the copies
    leave the corrected atoms unchanged, and identical sources give Uni = Syn = 0 exactly and
    Red = the corrected I(M;X) (log-det reference). It once used the block sizes: at n = 120
    the copied column moved Uni_X by 0.009 nats and identical sources had Syn = -0.017 nats."""
    n = 120
    m, x, y = draw(np.random.default_rng(3), channel_cov(A_X, A_Y), n)
    ref = pidkit.gaussian_pid_from_samples(m, x, y, base=math.e, ci=None, n_perm=0)
    dup = pidkit.gaussian_pid_from_samples(m, np.c_[x, x[:, :1]], y, base=math.e, ci=None,
                                           n_perm=0)
    np.testing.assert_allclose(atoms_of(dup), atoms_of(ref), rtol=0, atol=1e-9)
    assert dup.mutual_information == pytest.approx(ref.mutual_information, abs=1e-9)
    assert dup.details["ranks"] == [2, 2, 2, 4] and dup.details["dims"] == [2, 3, 2]
    assert (dup.details["mutual_information_bias_wishart"]
            == ref.details["mutual_information_bias_wishart"])

    same = pidkit.gaussian_pid_from_samples(m, x, x.copy(), base=math.e, n_boot=20, n_perm=0,
                                            seed=0)
    s = np.cov(np.c_[m, x].T, bias=True)
    logdet = lambda a: np.linalg.slogdet(a)[1]                              # noqa: E731
    i_mx = 0.5 * (logdet(s[:2, :2]) + logdet(s[2:, 2:]) - logdet(s)) - mi_bias(n, 2, 2)
    np.testing.assert_allclose(atoms_of(same), [i_mx, 0, 0, 0], rtol=0, atol=1e-9)
    assert same.details["ranks"] == [2, 2, 2, 2]
    for node in same.atoms:                      # every replicate has identical sources too
        if node != same.lattice.bottom:
            np.testing.assert_allclose(same.intervals[node], (0, 0), rtol=0, atol=1e-9)


# -- small n -------------------------------------------------------------------------------------
def test_singular_resamples_at_small_n_are_dropped_and_counted():
    """Six samples of three scalar variables: a resample holding three or fewer distinct rows
    has a singular covariance in which the target is a linear function of the sources
    (infinite information), P = (6 + 930 + 10800) / 6^6 = 0.2515 per resample. Such replicates
    are dropped, counted in details and announced by one warning; no message names an internal
    batch item."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = pidkit.gaussian_pid_from_samples(z[:, 0], z[:, 1], z[:, 2], n_boot=200,
                                             n_perm=50, seed=0)
    dropped = r.details["dropped_replicates"]["bootstrap"]
    p_singular = (6 + 930 + 10800) / 6**6
    lo, hi = stats.binom.ppf(1e-6, 200, p_singular), stats.binom.isf(1e-6, 200, p_singular)
    assert lo <= dropped <= hi
    messages = [str(w.message) for w in caught]
    assert any(f"{dropped} of 200 replicates" in m for m in messages)
    assert not any("batch item" in m for m in messages)
    for lo, hi in r.intervals.values():
        assert np.isfinite([lo, hi]).all() and lo <= hi


def test_resamples_that_miss_a_class_are_evaluated_not_dropped():
    """A one-hot target of 40 classes with 2 samples each: a resample of the 80 rows misses
    about 40 (1 - 1/80)^160 ~ 5.4 classes, each a one-hot column that is constant in the
    resample. Its covariance must have exact zeros there (the class carries nothing in that
    resample; ``gaussian_pid`` drops it), and the replicate's Wishart correction is that of the
    classes present. Computed as E[zz'] - mean mean', the variance of an absent class was a
    rounding residue, negative in some resamples (rejected as not PSD): every replicate of
    this case was dropped and the estimate raised an error."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(40), 2)
    x = labels[:, None] * 0.05 + rng.standard_normal((80, 1))
    y = rng.standard_normal((80, 1))
    r = pidkit.gaussian_pid_from_samples(labels, x, y, n_boot=30, n_perm=0, seed=0)
    assert r.details["dropped_replicates"]["bootstrap"] == 0
    assert all(np.isfinite(v).all() for v in r.intervals.values())

    # the resampled covariance equals that of the resampled rows, with exact zeros
    c = standardized(np.c_[one_hot(labels, 40), x, y])
    counts = np.bincount(rng.integers(0, 80, 80), minlength=80)
    absent = np.setdiff1d(np.arange(39), labels[counts > 0])
    assert absent.size > 0
    cov = _weighted_covariances(c, counts[None])[0]
    np.testing.assert_allclose(cov, np.cov(np.repeat(c, counts, axis=0).T, bias=True),
                               rtol=0, atol=1e-15)
    assert (cov[absent] == 0).all() and (cov[:, absent] == 0).all()
    # ... and the replicate's atoms are those of the covariance without the absent classes
    keep = np.setdiff1d(np.arange(41), absent)
    dims = (39 - absent.size, 1, 1)
    np.testing.assert_allclose(gaussian_vectors(cov[None], 80, (39, 1, 1), "broja", True),
                               gaussian_vectors(cov[np.ix_(keep, keep)][None], 80, dims,
                                                "broja", True), rtol=0, atol=1e-12)


# -- torch and checks ----------------------------------------------------------------------------
def test_torch_samples_are_differentiable():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    m, x, y = (torch.tensor(v) for v in draw(rng, channel_cov(A_X, A_Y), 200))
    x.requires_grad_()
    r = pidkit.gaussian_pid_from_samples(m, x, y, seed=0, n_boot=20, n_perm=10)
    ref = pidkit.gaussian_pid_from_samples(m.numpy(), x.detach().numpy(), y.numpy(), seed=0,
                                           n_boot=20, n_perm=10)
    assert float(r.redundancy.detach()) == pytest.approx(ref.redundancy, abs=1e-12)
    assert r.intervals == ref.intervals and r.details == ref.details
    r.synergy.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_tensors(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    m, x, y = (torch.tensor(v).to(getattr(torch, dtype)) for v in
               draw(rng, channel_cov(A_X, A_Y), 200))
    r = pidkit.gaussian_pid_from_samples(m, x, y, ci=None, n_perm=0)
    ref = pidkit.gaussian_pid_from_samples(*(v.double().numpy() for v in (m, x, y)), ci=None,
                                           n_perm=0)
    assert float(r.synergy) == pytest.approx(ref.synergy, abs=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    ({"ci": 1.5}, "ci"),
    ({"n_boot": -1}, "n_boot"),
    ({"n_perm": 1.5}, "n_perm"),
    ({"bias_correction": 1}, "bias_correction"),
    ({"seed": -3}, "seed"),
    ({"interval": "bca"}, "interval"),
    ({"measure": "ccs"}, "measure"),
])
def test_bad_options(kwargs, match):
    m = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises((pidkit.PIDValueError, pidkit.PIDTypeError), match=match):
        pidkit.gaussian_pid_from_samples(m[:, 0], m[:, 1], m[:, 2], **kwargs)


def test_bad_samples():
    rng = np.random.default_rng(0)
    with pytest.raises(pidkit.PIDValueError, match="different numbers of samples"):
        pidkit.gaussian_pid_from_samples(rng.normal(size=10), rng.normal(size=11),
                                         rng.normal(size=10))
    with pytest.raises(pidkit.PIDValueError, match="too few"):
        pidkit.gaussian_pid_from_samples(rng.normal(size=4), rng.normal(size=(4, 2)),
                                         rng.normal(size=4))
    with pytest.raises(pidkit.PIDValueError, match="constant"):
        pidkit.gaussian_pid_from_samples(rng.normal(size=20), np.ones(20), rng.normal(size=20))
    torch = pytest.importorskip("torch")
    with pytest.raises(pidkit.PIDTypeError, match="mix numpy arrays and torch tensors"):
        pidkit.gaussian_pid_from_samples(torch.zeros(10), rng.normal(size=10),
                                         rng.normal(size=10))


def test_gaussian_route_warns_where_its_information_exceeds_the_label_entropy():
    # one-hot labels read as Gaussian: well separated classes gave a 3-class target I(Y;X0,X1)
    # of several bits (at most log2 3) without a word
    rng = np.random.default_rng(0)
    y, entropy, layer = separated_classes(rng, 600)
    x0, x1 = layer(10.0), rng.normal(size=(600, 2))
    for call in (lambda: pidkit.pid_from_samples(y, x0, x1, estimator="gaussian", n_boot=0,
                                                 n_perm=0),
                 lambda: pidkit.gaussian_pid_from_samples(y, x0, x1, n_boot=0, n_perm=0)):
        with pytest.warns(UserWarning, match=r"^(target|m): the Gaussian estimate of "
                                             r"I\(Y;T,S\) = \S+ exceeds the labels' entropy "
                                             rf"H\(Y\) = {entropy:.4g}"):
            r = call()
        assert r.mutual_information > entropy
        assert r.details["label_entropy"] == pytest.approx(entropy, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a weak dependence: within H(Y), no warning
        weak = pidkit.pid_from_samples(y, x0 * 0.02 + rng.normal(size=x0.shape), x1,
                                       estimator="gaussian", n_boot=0, n_perm=0, base=math.e)
    assert weak.details["label_entropy"] == pytest.approx(entropy * math.log(2), rel=1e-12)
    continuous = pidkit.pid_from_samples(rng.normal(size=600), x0, x1, estimator="gaussian",
                                         n_boot=0, n_perm=0)
    assert "label_entropy" not in continuous.details
