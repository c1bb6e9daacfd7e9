"""Gaussian PID from samples: the digamma bias formula against simulation, bias correction
reduces the bias of every atom (fixed seeds, margins in standard errors), bootstrap interval
coverage, torch input, and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _gaussian_reference import channel_cov

import pidkit
from pidkit.gaussian.samples import logdet_bias, mi_bias

# X dominates Y in every direction (all generalized eigenvalues > 1): the correction is exact.
A_X = np.array([[1.2, 0.3], [0.0, 1.0]])
A_Y = np.array([[0.6, 0.0], [0.2, 0.5]])
DIMS = (2, 2, 2)


def truth(cov):
    r = pidkit.gaussian_pid(cov, DIMS, base=math.e)
    return np.array([r.redundancy, r.unique[0], r.unique[1], r.synergy])


def draw(rng, cov, n):
    z = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n, method="cholesky")
    return z[:, :2], z[:, 2:4], z[:, 4:]


def test_logdet_bias_matches_wishart_simulation():
    rng = np.random.default_rng(0)
    n, p = 12, 3
    sigma = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 0.5]])
    z = rng.multivariate_normal(np.zeros(p), sigma, size=(4000, n), method="cholesky")
    c = z - z.mean(axis=1, keepdims=True)
    vals = np.linalg.slogdet(np.einsum("rni,rnj->rij", c, c))[1]
    expected = np.linalg.slogdet(sigma)[1] + p * math.log(2) + logdet_bias(n, p)
    se = np.std(vals) / math.sqrt(len(vals))
    assert abs(np.mean(vals) - expected) < 4 * se


def test_mi_bias_is_positive_and_vanishes():
    assert mi_bias(20, 2, 3) > mi_bias(200, 2, 3) > mi_bias(20000, 2, 3) > 0
    # Large n: bias ~ a b / (2 n).
    assert mi_bias(100000, 2, 3) == pytest.approx(6 / (2 * 100000), rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("n", [40, 160])
def test_bias_correction_reduces_bias(n):
    cov = channel_cov(A_X, A_Y)
    true = truth(cov)
    rng = np.random.default_rng(n)
    plug, corr = [], []
    for _ in range(300):
        r = pidkit.gaussian_pid_from_samples(*draw(rng, cov, n), base=math.e, ci=None)
        corr.append([r.redundancy, r.unique[0], r.unique[1], r.synergy])
        plug.append([r.details["plugin"][k] for k in ("red", "uni_x", "uni_y", "syn")])
    plug, corr = np.array(plug), np.array(corr)
    se = corr.std(axis=0) / math.sqrt(len(corr))
    bias_plug = plug.mean(axis=0) - true
    bias_corr = corr.mean(axis=0) - true
    # Redundancy (= I(M;Y) here) and synergy carry a real bias; Uni_X = I(M;X) - I(M;Y) has
    # none to correct (equal block sizes) and Uni_Y is 0 and stays 0.
    for k in (0, 3):
        assert abs(bias_corr[k]) < abs(bias_plug[k])
    for k in (0, 1, 3):
        assert abs(bias_corr[k]) < 4 * se[k]
    # the synergy bias is real at these sizes: it falls like 1/n and the standard error of the
    # mean of 300 replicates like 1/sqrt(n), so bias/se is about 10 at n=40 and 5 at n=160
    assert abs(bias_plug[3]) > (4 if n == 40 else 2) * se[3]


@pytest.mark.slow
def test_bootstrap_interval_coverage():
    cov = channel_cov(np.array([[1.0]]), np.array([[0.7]]))
    true = pidkit.gaussian_pid(cov, (1, 1, 1))
    rng = np.random.default_rng(5)
    hits = np.zeros(4)
    reps = 40
    for i in range(reps):
        z = rng.multivariate_normal(np.zeros(3), cov, size=300, method="cholesky")
        r = pidkit.gaussian_pid_from_samples(z[:, :1], z[:, 1:2], z[:, 2:], n_boot=100, seed=i)
        for j, node in enumerate(r.atoms):
            lo, hi = r.intervals[node]
            hits[j] += lo <= true.atoms[node] <= hi
    cover = hits / reps
    # Nominal 0.95; Uni_Y is 0 (a boundary) and excluded. Margins: binomial sd ~ 0.03.
    assert (cover[[0, 1, 3]] > 0.82).all(), cover


def test_intervals_and_details():
    rng = np.random.default_rng(1)
    cov = channel_cov(A_X, A_Y)
    m, x, y = draw(rng, cov, 500)
    r = pidkit.gaussian_pid_from_samples(m, x, y, n_boot=50, seed=0)
    for lo, hi in r.intervals.values():
        assert lo <= hi
    assert r.details["n_samples"] == 500
    b = r.details["bias"]
    assert b[2] == pytest.approx(mi_bias(500, 2, 4) / math.log(2))
    same = pidkit.gaussian_pid_from_samples(m, x, y, n_boot=50, seed=0)
    assert same.intervals == r.intervals
    raw = pidkit.gaussian_pid_from_samples(m, x, y, bias_correction=False, ci=None)
    plug = pidkit.gaussian_pid(np.cov(np.hstack([m, x, y]).T), DIMS)
    assert raw.synergy == pytest.approx(plug.synergy, abs=1e-12)
    assert r.synergy < raw.synergy  # the correction removes a positive bias


def test_torch_samples_are_differentiable():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    m, x, y = (torch.tensor(v) for v in draw(rng, channel_cov(A_X, A_Y), 200))
    x.requires_grad_()
    r = pidkit.gaussian_pid_from_samples(m, x, y, ci=None)
    ref = pidkit.gaussian_pid_from_samples(m.numpy(), x.detach().numpy(), y.numpy(), ci=None)
    assert float(r.redundancy.detach()) == pytest.approx(ref.redundancy, abs=1e-12)
    r.synergy.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"ci": 1.5}, "ci"),
    ({"n_boot": 0}, "n_boot"),
    ({"bias_correction": 1}, "bias_correction"),
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
    bad = rng.normal(size=20)
    bad[3] = np.nan
    with pytest.raises(pidkit.PIDValueError, match="NaN"):
        pidkit.gaussian_pid_from_samples(bad, rng.normal(size=20), rng.normal(size=20))

