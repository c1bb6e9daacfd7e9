"""Bad input to pidkit.estimate: typed errors that name the argument and say how to fix it."""

import numpy as np
import pytest
import torch

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.estimate import Discretizer, pid_from_counts, pid_from_samples

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 200)
X0 = RNG.integers(0, 3, 200)
X1 = RNG.integers(0, 3, 200)
T = RNG.normal(size=(200, 16))
S = RNG.normal(size=(200, 16))
FAST = dict(measure="mmi", n_boot=0, n_perm=0, seed=0)


def test_mismatched_lengths():
    with pytest.raises(PIDValueError, match=r"samples: have different numbers of samples "
                                            r"\(target: 200, sources\[0\]: 199"):
        pid_from_samples(Y, X0[:199], X1, **FAST)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(bad):
    t = T.copy()
    t[7, 3] = bad
    with pytest.raises(PIDValueError, match=r"sources\[0\]: contains NaN or infinite values in "
                                            r"1 sample\(s\), first at row 7"):
        pid_from_samples(Y, t, S, estimator="discretize", n_clusters=3, n_components=2, **FAST)
    with pytest.raises(PIDValueError, match="NaN or infinite"):
        pid_from_samples(Y.astype(float), t, S, estimator="gaussian", **FAST)
    labels = Y.astype(float)
    labels[3] = bad
    with pytest.raises(PIDValueError, match="target: contains NaN"):
        pid_from_samples(labels, X0, X1, **FAST)


def test_constant_variable():
    """A constant source is counted on the plug-in route (warned; its information is 0, as
    JointCounts gives it), refused where something must be fitted to it; a constant target
    gives zeros on every route (tests/test_constant_target.py)."""
    y = (X0 == 0).astype(int)                     # depends on X0
    with pytest.warns(UserWarning, match=r"sources\[1\]: is constant"):
        r = pid_from_samples(y, X0, np.zeros(200, dtype=int), **FAST)
    alone = pid_from_samples(y, X0, X0, **FAST).mutual_information
    assert [r.redundancy, r.unique[1], r.synergy] == pytest.approx([0, 0, 0], abs=1e-12)
    assert r.unique[0] == pytest.approx(alone, abs=1e-12) and alone > 0.01
    with pytest.raises(PIDValueError, match=r"sources\[0\]: is constant"):
        pid_from_samples(Y, np.ones((200, 16)), S, estimator="discretize", n_clusters=3,
                         n_components=2, **FAST)
    with pytest.raises(PIDValueError, match=r"sources\[1\]: has constant column\(s\) \[2\]"):
        s = S.copy()
        s[:, 2] = 1.0
        pid_from_samples(Y, T, s, estimator="gaussian", **FAST)


def test_too_few_samples_for_clusters():
    with pytest.raises(PIDValueError, match=r"has 200 samples, fewer than the 500 clusters"):
        pid_from_samples(Y, T, S, estimator="discretize", n_clusters=500, n_components=2, **FAST)
    with pytest.raises(PIDValueError, match=r"fit_size: has 20 samples, fewer than the 30"):
        pid_from_samples(Y, T, S, estimator="discretize", n_clusters=30, fit_size=20,
                         n_components=2, **FAST)
    dup = np.repeat(T[:4], 50, axis=0)
    with pytest.raises(PIDValueError, match=r"has 4 distinct samples, fewer than the 10"):
        Discretizer(n_clusters=10, n_components=2).fit(dup)
    with pytest.raises(PIDValueError, match=r"n_components: exceeds min\(samples, features\)"):
        Discretizer(n_clusters=3, n_components=40).fit(T)


def test_non_integer_labels_where_integers_are_needed():
    with pytest.raises(PIDValueError, match="target: holds non-integer values but must be "
                                            "integer labels"):
        pid_from_samples(Y + 0.5, X0, X1, **FAST)
    with pytest.raises(PIDValueError, match=r"sources\[0\]: holds non-integer"):
        pid_from_samples(Y, T[:, 0], X1, **FAST)
    with pytest.raises(PIDValueError, match="target: holds non-integer"):
        pid_from_samples(T[:, 0], T, S, estimator="discretize", n_clusters=3, n_components=2,
                         **FAST)
    # integer-valued floats and torch integer tensors are fine (nothing is rounded)
    a = pid_from_samples(Y.astype(float), X0, X1, **FAST)
    b = pid_from_samples(torch.from_numpy(Y), X0, X1, **FAST)
    assert a.mutual_information == b.mutual_information


def test_bad_settings():
    with pytest.raises(PIDValueError, match="estimator: is not a known choice"):
        pid_from_samples(Y, X0, X1, estimator="knn")
    with pytest.raises(PIDValueError, match=r"options: \['n_clusters'\] are not options of "
                                            r"estimator 'plugin'"):
        pid_from_samples(Y, X0, X1, n_clusters=3)
    with pytest.raises(PIDValueError, match="ci: must lie strictly between 0 and 1"):
        pid_from_samples(Y, X0, X1, ci=95)
    with pytest.raises(PIDTypeError, match="n_boot: must be an integer"):
        pid_from_samples(Y, X0, X1, n_boot=10.5)
    with pytest.raises(PIDTypeError, match="seed: must be a non-negative integer"):
        pid_from_samples(Y, X0, X1, seed="abc")
    with pytest.raises(PIDValueError, match="sources: none given"):
        pid_from_samples(Y)
    with pytest.raises(PIDValueError, match="preset: is not a known preset"):
        pid_from_samples(Y, T, S, estimator="discretize", preset="cifar10")
    with pytest.raises(PIDValueError, match="scaling: is not a known scaling"):
        Discretizer(scaling="minmax").fit(T)
    with pytest.raises(PIDValueError, match="names: must name the target and the 2"):
        pid_from_samples(Y, X0, X1, names=("Y", "T"), **FAST)
    with pytest.raises(PIDTypeError, match=r"^target: holds labels \(dtype <U1\), not numbers"):
        pid_from_samples(np.array(["a", "b"]), T[:2], S[:2], estimator="gaussian", **FAST)


def test_discretizer_use_errors():
    d = Discretizer(n_clusters=3, n_components=2)
    with pytest.raises(PIDValueError, match="before fitting"):
        d.transform(T)
    d.fit(T)
    with pytest.raises(PIDValueError, match="has 8 features per sample, the fit had 16"):
        d.transform(T[:, :8])
    with pytest.raises(PIDValueError, match=r"discretizers: must be a list of 2 Discretizer"):
        pid_from_samples(Y, T, S, estimator="discretize", discretizers=[d], **FAST)


def test_counts_errors():
    with pytest.raises(PIDValueError, match="counts: holds negative counts"):
        pid_from_counts(np.array([[3, -1], [2, 2]]))
    with pytest.raises(PIDValueError, match="counts: holds non-integer values"):
        pid_from_counts(np.array([[0.5, 0.5], [0.0, 0.0]]))
    with pytest.raises(PIDValueError, match="counts: needs a target axis"):
        pid_from_counts(np.array([3, 4]))


def test_discretizers_and_settings_are_exclusive():
    d = Discretizer(n_clusters=3, n_components=2)
    with pytest.raises(PIDValueError, match=r"discretizers: were given together with "
                                            r"discretisation settings \['n_clusters'\]"):
        pid_from_samples(Y, T, S, estimator="discretize", discretizers=[d, d], n_clusters=4,
                         **FAST)


def test_import_does_not_load_optional_dependencies():
    import subprocess
    import sys

    code = ("import sys, pidkit, pidkit.estimate; "
            "print(sorted(m for m in ('sklearn', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("estimator", ["plugin", "gaussian"])
def test_one_bootstrap_replicate_is_refused_zero_skips(estimator):
    """One replicate would give intervals of width 0: a typed error naming n_boot; 0 (or
    ci=None) skips the bootstrap."""
    rng = np.random.default_rng(0)
    x0, x1 = rng.integers(0, 2, size=(2, 200))
    y = x0 ^ x1
    with pytest.raises(PIDValueError, match="n_boot"):
        pid_from_samples(y, x0, x1, estimator=estimator, measure="mmi", n_boot=1, n_perm=0,
                         seed=0)
    assert pid_from_samples(y, x0, x1, estimator=estimator, measure="mmi", n_boot=0,
                            n_perm=0, seed=0).intervals is None
    r = pid_from_samples(y, x0, x1, estimator=estimator, measure="mmi", n_boot=1, ci=None,
                         n_perm=0, seed=0)
    assert r.intervals is None
