"""pid_from_samples, Gaussian route: convergence to the exact Gaussian PID, the one-hot target
encoding, PCA reduction, bias correction, calibration of the null."""

import math

import numpy as np
import pytest
from scipy import stats

import pidkit
from pidkit.estimate import GaussianMoments, one_hot, pid_from_samples

# Literature values in bits (Venkatesh, Bennett, Gowda, Schamberg, NeurIPS 2023; as listed in the
# project's reference table): M ~ N(0, I2), X = sqrt(2) M1 + N1, Y = M1 + N2, unit noises.
SAME_DIRECTION = {"{0}{1}": 0.5, "{0}": 0.292481, "{1}": 0.0, "{0:1}": 0.207519}


def _same_direction(n, rng):
    m = rng.normal(size=(n, 2))
    x = math.sqrt(2) * m[:, :1] + rng.normal(size=(n, 1))
    y = m[:, :1] + rng.normal(size=(n, 1))
    return m, x, y


def _mi_bits(cov, a, b):
    """Gaussian I(A;B) in bits from a covariance, A = indices a, B = indices b (closed form)."""
    ab = list(a) + list(b)
    det = np.linalg.det
    return 0.5 * math.log2(det(cov[np.ix_(a, a)]) * det(cov[np.ix_(b, b)])
                           / det(cov[np.ix_(ab, ab)]))


def _scalar_target_cov():
    c_xy = np.array([[1.0, 0.3], [0.3, 1.0]])
    w = np.array([0.8, 0.5])
    cov = np.zeros((3, 3))
    cov[1:, 1:] = c_xy
    cov[0, 1:] = cov[1:, 0] = w @ c_xy
    cov[0, 0] = w @ c_xy @ w + 1.0
    return cov


def test_same_direction_samples_converge_to_literature_atoms():
    rng = np.random.default_rng(0)
    r = pid_from_samples(*_same_direction(200_000, rng), estimator="gaussian", n_boot=30,
                         n_perm=0, seed=0)
    for label, value in SAME_DIRECTION.items():
        assert r.atoms[label] == pytest.approx(value, abs=0.01), label
        lo, hi = r.intervals[pidkit.parse_node(label)]
        assert lo - 0.01 <= value <= hi + 0.01


@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_scalar_target_error_shrinks_and_matches_closed_form(measure):
    """Scalar target: BROJA = MMI (Barrett 2015), computed here from log-determinants."""
    cov = _scalar_target_cov()
    i_x, i_y = _mi_bits(cov, [0], [1]), _mi_bits(cov, [0], [2])
    i_xy = _mi_bits(cov, [0], [1, 2])
    truth = np.array([min(i_x, i_y), i_x - min(i_x, i_y), i_y - min(i_x, i_y),
                      i_xy - max(i_x, i_y)])
    chol = np.linalg.cholesky(cov)
    rng = np.random.default_rng(1)
    rmse = {}
    for n in (200, 20_000):
        errors = []
        for _ in range(10):
            z = rng.normal(size=(n, 3)) @ chol.T
            r = pid_from_samples(z[:, 0], z[:, 1], z[:, 2], estimator="gaussian",
                                 measure=measure, n_boot=0, n_perm=0, seed=0)
            errors.append(np.array([r.atoms[a] for a in ("{0}{1}", "{0}", "{1}", "{0:1}")])
                          - truth)
        rmse[n] = float(np.sqrt(np.mean(np.square(errors))))
    assert rmse[20_000] < rmse[200] / 4
    assert rmse[20_000] < 0.01


def test_one_hot_target_converges_and_ignores_the_dropped_column():
    pi = np.array([0.5, 0.3, 0.2])
    mu_x, mu_y = np.array([0.0, 1.5, -1.0]), np.array([0.0, 0.0, 2.0])
    # population covariance of (one-hot minus last column, X, Y), written out in the test
    rows = np.column_stack([np.eye(3)[:, :2], mu_x, mu_y])
    mean = pi @ rows
    cov = (rows - mean).T @ np.diag(pi) @ (rows - mean) + np.diag([0, 0, 1.0, 1.0])
    exact = pidkit.gaussian_pid(cov, dims=(2, 1, 1), measure="mmi")
    i_x, i_y = _mi_bits(cov, [0, 1], [2]), _mi_bits(cov, [0, 1], [3])
    assert exact.redundancy == pytest.approx(min(i_x, i_y), abs=1e-9)
    rng = np.random.default_rng(2)
    n = 100_000
    c = rng.choice(3, size=n, p=pi)
    x, y = mu_x[c] + rng.normal(size=n), mu_y[c] + rng.normal(size=n)
    r = pid_from_samples(c, x, y, estimator="gaussian", measure="mmi", n_boot=0, n_perm=0, seed=0)
    assert r.details["target_encoding"] == "onehot" and r.details["dims"] == [2, 1, 1]
    for node in exact.atoms:
        assert r.atoms[node] == pytest.approx(exact.atoms[node], abs=0.01)
    # relabelling the classes drops a different column: identical result up to rounding
    relabelled = pid_from_samples((c + 1) % 3, x, y, estimator="gaussian", measure="mmi",
                                  n_boot=0, n_perm=0, seed=0)
    for node in r.atoms:
        assert relabelled.atoms[node] == pytest.approx(r.atoms[node], abs=1e-9)
    explicit = pid_from_samples(one_hot(c, 3)[:, [0, 1]], x, y, estimator="gaussian",
                                measure="mmi", n_boot=0, n_perm=0, seed=0)
    assert explicit.mutual_information == pytest.approx(r.mutual_information, abs=1e-12)


def test_pca_reduction_keeps_the_informative_subspace():
    """X, Y are 2-d signals embedded in 40-d with tiny noise: PCA to 2 components recovers
    the PID of the 2-d signals."""
    rng = np.random.default_rng(3)
    m, x, y = _same_direction(20_000, rng)
    x2 = np.column_stack([x, rng.normal(size=(20_000, 1))])
    y2 = np.column_stack([y, rng.normal(size=(20_000, 1))])
    embed_x, embed_y = np.linalg.qr(rng.normal(size=(40, 2)))[0], np.linalg.qr(
        rng.normal(size=(40, 2)))[0]
    big_x = x2 @ embed_x.T + 1e-4 * rng.normal(size=(20_000, 40))
    big_y = y2 @ embed_y.T + 1e-4 * rng.normal(size=(20_000, 40))
    low = pid_from_samples(m, x2, y2, estimator="gaussian", n_boot=0, n_perm=0, seed=0)
    high = pid_from_samples(m, big_x, big_y, estimator="gaussian", n_components=2, n_boot=0,
                            n_perm=0, seed=0)
    for node in low.atoms:
        assert high.atoms[node] == pytest.approx(low.atoms[node], abs=2e-3)


def test_bias_correction_is_the_default_and_subtracts_the_wishart_bias():
    rng = np.random.default_rng(4)
    m, x, y = _same_direction(300, rng)
    ours = pid_from_samples(m, x, y, estimator="gaussian", n_boot=0, n_perm=0, seed=0)
    theirs = pidkit.gaussian_pid_from_samples(m, x, y, ci=None, n_perm=0)
    assert ours.details["bias_correction"] is True
    for node in theirs.atoms:
        assert ours.atoms[node] == theirs.atoms[node]
    plugin = pid_from_samples(m, x, y, estimator="gaussian", n_boot=0, n_perm=0, seed=0,
                              bias_correction=False)
    bias = ours.details["mutual_information_bias_wishart"]["I(Y;X0,X1)"]
    assert plugin.mutual_information - ours.mutual_information == pytest.approx(bias, rel=1e-9)
    assert ours.details["plugin"]["syn"] == pytest.approx(plugin.synergy, abs=1e-12)


def test_moments_route_equals_the_samples_route():
    rng = np.random.default_rng(5)
    m, x, y = _same_direction(5000, rng)
    stat = GaussianMoments()
    for i in range(0, 5000, 1024):
        stat.update(m[i:i + 1024], x[i:i + 1024], y[i:i + 1024])
    for correction in (True, False):
        from_moments = stat.pid(bias_correction=correction)
        from_samples = pid_from_samples(m, x, y, estimator="gaussian", n_boot=0, n_perm=0,
                                        seed=0, bias_correction=correction)
        for node in from_samples.atoms:
            assert from_moments.atoms[node] == pytest.approx(from_samples.atoms[node],
                                                             abs=1e-10)
        assert from_moments.details["n_samples"] == 5000
        assert from_moments.details["bias_correction"] is correction


def test_gaussian_null_pvalues_are_uniform_under_independence():
    rng = np.random.default_rng(6)
    pvals = []
    for _ in range(100):
        z = rng.normal(size=(60, 3))
        r = pid_from_samples(z[:, 0], z[:, 1], z[:, 2], estimator="gaussian", n_boot=0,
                             n_perm=19, seed=int(rng.integers(1 << 30)))
        pvals.append(r.details["p_values"]["mutual_information"])
    assert stats.kstest(pvals, "uniform").pvalue > 1e-3


def test_gaussian_route_errors():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(50, 4))
    with pytest.raises(pidkit.PIDValueError, match="takes two sources"):
        pid_from_samples(z[:, 0], z[:, 1], z[:, 2], z[:, 3], estimator="gaussian")
    with pytest.raises(pidkit.PIDValueError, match="too few"):
        pid_from_samples(z[:5, 0], z[:5, 1:3], np.column_stack([z[:5, 3]] * 1 + [z[:5, 2]]),
                         estimator="gaussian", n_boot=0, n_perm=0)
    with pytest.raises(pidkit.PIDValueError, match=r"sources\[1\]: has constant column"):
        pid_from_samples(z[:, 0], z[:, 1], np.zeros(50), estimator="gaussian")


def test_basic_interval_reflects_the_percentile_one_and_covers_a_zero_atom():
    """Same-direction case: Uni(M:Y\\X) = 0 exactly, with a population eigenvalue exactly 1, so
    the plug-in estimate and every replicate are almost surely > 0: the percentile interval
    (bounds interpolated between replicates) never contains the 0. The basic interval reflects
    the replicates around the estimate (checked exactly); its coverage count is binomial and
    the threshold is the 1e-4 quantile of Binomial(30, 0.9), i.e. the test fails with
    probability below 1e-4 if its true coverage is at least 0.9 (nominal 0.95)."""
    rng = np.random.default_rng(8)
    node = ((1,),)
    covered = {"percentile": 0, "basic": 0}
    for _ in range(30):
        samples = _same_direction(2000, rng)
        seed = int(rng.integers(1 << 30))
        results = {kind: pid_from_samples(*samples, estimator="gaussian", n_boot=60, n_perm=0,
                                          seed=seed, interval=kind, bias_correction=False)
                   for kind in covered}
        est = results["basic"].atoms[node]
        lo, hi = results["percentile"].intervals[node]
        assert results["basic"].intervals[node] == pytest.approx((2 * est - hi, 2 * est - lo))
        assert lo > 0
        for kind, r in results.items():
            covered[kind] += r.intervals[node][0] <= 0.0 <= r.intervals[node][1]
    assert covered["percentile"] == 0
    assert covered["basic"] > stats.binom.ppf(1e-4, 30, 0.9)
