"""GaussianMoments.pid runs the batch Gaussian route's H(Y) check: a one-hot target (class
labels, found exactly from the streamed sums) gets details["label_entropy"] and the warning where
the Gaussian I(Y;X0,X1) exceeds H(Y). The streamed estimate of well separated classes reported
8.4 bits of a 3-class label (at most log2 3 = 1.58) without a word, while pid_from_samples on the
same rows warned. Both routes now apply one rule (gaussian_route.class_counts) to the target
block, so a one-hot block or a 0/1 target passed as floats gets the check on either route."""

import math
import warnings

import numpy as np
import pytest
from _gaussian_reference import separated_classes

from pidkit.estimate import GaussianMoments, one_hot, pid_from_samples
from pidkit.estimate.gaussian_route import class_counts

N = 600
WARNING = r"^target: the Gaussian estimate of I\(Y;T,S\) = \S+ exceeds the labels' entropy"


def _streamed(target, x0, x1, size=100, **kwargs):
    """The statistic of the rows fed in batches, halves merged with +."""
    halves = []
    for part in (slice(0, N // 2), slice(N // 2, N)):
        stat = GaussianMoments(**kwargs)
        for i in range(part.start, part.stop, size):
            stat.update(target[i:i + size], x0[i:i + size], x1[i:i + size])
        halves.append(stat)
    return halves[0] + halves[1]


@pytest.mark.parametrize("drop_last", [True, False])
def test_streamed_one_hot_labels_get_the_entropy_check(drop_last):
    rng = np.random.default_rng(0)
    y, entropy, layer = separated_classes(rng, N)
    x0, x1 = layer(10.0), rng.normal(size=(N, 2))
    stat = _streamed(one_hot(y, n_classes=3, drop_last=drop_last), x0, x1)
    with pytest.warns(UserWarning, match=WARNING):
        streamed = stat.pid()
    with pytest.warns(UserWarning, match=WARNING):
        batch = pid_from_samples(y, x0, x1, estimator="gaussian", n_boot=0, n_perm=0)
    assert streamed.mutual_information > 5 * entropy
    assert streamed.details["label_entropy"] == pytest.approx(entropy, rel=1e-12)
    assert streamed.details["label_entropy"] == pytest.approx(batch.details["label_entropy"],
                                                              rel=1e-12)


def test_weak_dependence_reports_the_entropy_without_a_warning():
    rng = np.random.default_rng(1)
    y, entropy, layer = separated_classes(rng, N)
    x0 = layer(10.0) * 0.02 + rng.normal(size=(N, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = GaussianMoments(shift=np.zeros(3 - 1 + 8 + 1)).update(
            one_hot(y, n_classes=3), x0, rng.normal(size=N)).pid(base=math.e)
    assert r.details["label_entropy"] == pytest.approx(entropy * math.log(2), rel=1e-12)


def test_a_binary_float_target_gets_the_check_on_both_routes():
    """0/1 floats read as one continuous variable are still a variable of two values, whose
    entropy bounds every information about it."""
    rng = np.random.default_rng(2)
    y, _, layer = separated_classes(rng, N, k=2)
    x0, x1 = layer(10.0), rng.normal(size=N)
    target = y.astype(float)
    p = np.bincount(y) / N
    entropy = float(-(p * np.log2(p)).sum())
    with pytest.warns(UserWarning, match=WARNING):
        streamed = GaussianMoments().update(target, x0, x1).pid()
    with pytest.warns(UserWarning, match=WARNING):
        batch = pid_from_samples(target, x0, x1, estimator="gaussian", n_boot=0, n_perm=0,
                                 target_encoding="continuous")
    assert streamed.details["label_entropy"] == pytest.approx(entropy, rel=1e-12)
    assert batch.details["label_entropy"] == pytest.approx(entropy, rel=1e-12)


@pytest.mark.parametrize("target", ["normal", "halves", "two ones"])
def test_targets_that_are_not_one_hot_get_no_entropy(target):
    rng = np.random.default_rng(3)
    x0, x1 = rng.normal(size=(2, N))
    if target == "normal":
        m = rng.normal(size=(N, 2))
    elif target == "halves":                          # in [0, 1], but 0.5 is not a class
        m = rng.integers(0, 3, (N, 1)) / 2
    else:                                             # 0/1, but two 1s in some rows
        m = rng.integers(0, 2, (N, 2)).astype(float)
    m = m + 0.1 * x0[:, None] if target == "normal" else m
    streamed = GaussianMoments().update(m, x0, x1).pid()
    batch = pid_from_samples(m, x0, x1, estimator="gaussian", n_boot=0, n_perm=0,
                             target_encoding="continuous")
    assert "label_entropy" not in streamed.details and "label_entropy" not in batch.details


def test_class_counts_of_one_hot_blocks():
    def counts(block):
        return class_counts(block.min(0), block.max(0),
                            lambda: (block.sum(0), block.T @ block), block.shape[0])

    assert counts(one_hot(np.array([0, 2, 1, 2, 2]), 3)).tolist() == [1, 1, 3]
    assert counts(np.zeros((4, 0))).tolist() == [4]       # one class: no column
    assert counts(np.array([[0.0], [1.0], [2.0]])) is None


def test_huge_targets_are_not_summed_for_the_check():
    """The sums are formed only for columns within [0, 1]: a target of 1e160 overflowed them
    (RuntimeWarnings) although it cannot be one-hot."""
    rng = np.random.default_rng(4)
    m, x0, x1 = rng.normal(size=(3, N)) * 1e160
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = GaussianMoments().update(m, x0 + m, x1).pid()
        b = pid_from_samples(m, x0 + m, x1, estimator="gaussian", n_boot=0, n_perm=0)
    assert "label_entropy" not in r.details and "label_entropy" not in b.details


def test_the_gaussian_audit_warns_once_naming_the_pair():
    """The audit's statistic now checks H(Y) itself; the audit keeps its own warning (naming
    the layer pair) and does not repeat the statistic's."""
    from pidkit_distill.audits import audit_features

    y, entropy, layer = separated_classes(np.random.default_rng(0), N)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = audit_features(y, layer(10.0), layer(10.0), estimator="gaussian", ci=None, n_perm=0)
    messages = [str(w.message) for w in caught if "exceeds the labels' entropy" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("audit of T0 -> S0: ")
    assert r.pairs[0].details["label_entropy"] == pytest.approx(entropy, rel=1e-12)
