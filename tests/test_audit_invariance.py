"""Audits are invariant (to 1e-9 bits, in practice exactly) under the transformations that do not
change the data: renaming the classes (cyclic shift, non-contiguous labels), permuting the
samples, float32 vs float64 copies of the same features, numpy vs torch inputs. Checked on
Gaussian blobs with real structure (class means along random directions, overlapping, so that
samples sit near KMeans boundaries) for the paper preset and the Gaussian route, on every
number an audit reports: values, intervals, chance levels, p-values.
"""

import warnings

import numpy as np
import pytest
import torch
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)

from pidkit_distill import audit_features
from pidkit_distill.audits.estimators import DiscretePair
from pidkit_distill.audits.run import _settings
from pidkit_distill.audits.stream import FitSet, array_batches

ATOL = 1e-9
N, CLASSES, DIM = 360, 6, 32


@pytest.fixture(scope="module")
def blobs():
    """Labels (6 classes) and float32 teacher/student features: class means plus unit noise;
    the student sees the right class for 60% of the samples."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, CLASSES, N)
    means = rng.normal(size=(CLASSES, DIM)) * 0.7
    t = (means[y] + rng.normal(size=(N, DIM))).astype(np.float32)
    seen = np.where(rng.random(N) < 0.6, y, rng.integers(0, CLASSES, N))
    s = (means[seen] @ rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)
         + rng.normal(size=(N, DIM))).astype(np.float32)
    return y, t, s


def _variants(y, t, s):
    perm = np.random.default_rng(3).permutation(N)
    return {
        "cyclic relabelling": ((y + 1) % CLASSES, t, s),
        "reversed relabelling": (CLASSES - 1 - y, t, s),
        "non-contiguous labels": (np.array([3, 7, 10, 42, 100, 5])[y], t, s),
        "permuted samples": (y[perm], t[perm], s[perm]),
        "float64": (y, t.astype(np.float64), s.astype(np.float64)),
        "torch": (torch.as_tensor(y), torch.as_tensor(t), torch.as_tensor(s)),
        "torch float64": (torch.as_tensor(y), torch.as_tensor(t, dtype=torch.float64),
                          torch.as_tensor(s, dtype=torch.float64)),
    }


def _assert_same(a, b):
    for q in a.values:
        assert b.values[q] == pytest.approx(a.values[q], abs=ATOL), q
        assert b.intervals[q] == pytest.approx(a.intervals[q], abs=ATOL), q
        assert b.chance[q] == pytest.approx(a.chance[q], abs=ATOL), q
        assert b.chance_q95[q] == pytest.approx(a.chance_q95[q], abs=ATOL), q
        assert b.p_values[q] == a.p_values[q], q


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
def test_audit_is_invariant(blobs, estimator):
    y, t, s = blobs
    opts = dict(estimator=estimator, n_boot=20, n_perm=20, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sparse cells: not the point here
        ref = audit_features(y, t, s, **opts)[0]
        assert ref.values["mi_teacher"] > 0.3  # real structure
        assert ref.p_values["mi_teacher"] == 1 / 21
        for name, (a, b, c) in _variants(y, t, s).items():
            got = audit_features(a, b, c, **opts)[0]
            try:
                _assert_same(ref, got)
            except AssertionError as exc:
                raise AssertionError(f"{estimator}, {name}: {exc}") from exc


def test_codebooks_do_not_depend_on_order_dtype_or_labels(blobs):
    """The fitting rows (FitSet, keys hashed from float64 feature bytes only) and the fitted
    KMeans codebooks are the same for every variant."""
    y, t, s = blobs
    settings = _settings("paper", None)

    def centres(labels, teacher, student, capacity):
        fit = FitSet(capacity)
        for batch in array_batches(labels, [teacher], [student], 100):
            fit.add(batch)
        pair = DiscretePair(settings, np.random.SeedSequence(0))
        rows = fit.batch
        pair.fit(rows.teacher[0], rows.student[0], rows.labels)
        return [d.cluster_centers_ for d in pair.discretizers]

    for capacity in (N, 200):  # all rows, and an order-free subsample
        ref = centres(y, t, s, capacity)
        for name, (a, b, c) in _variants(y, t, s).items():
            got = centres(a, b, c, capacity)
            for r, g in zip(ref, got, strict=True):
                assert g.dtype == np.float64
                np.testing.assert_array_equal(r, g, err_msg=f"{name}, capacity {capacity}")


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
@pytest.mark.parametrize("max_fit_samples", [N, 200])
def test_teacher_side_does_not_depend_on_the_student(blobs, estimator, max_fit_samples):
    # precomputed features have no inputs to hash: each layer's fitting rows are keyed by its
    # own features, so the teacher's codebook (or projection), and with it I(Y;T), is the same
    # whichever student it is audited against (with keys of both sides it was not: 0.81 against
    # 0.86 bits for one teacher against a copy of itself and against noise)
    y, t, s = blobs
    noise = np.random.default_rng(11).normal(size=s.shape).astype(np.float32)
    opts = dict(estimator=estimator, n_boot=0, n_perm=0, seed=4,
                max_fit_samples=max_fit_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audits = [audit_features(y, t, student, **opts)[0] for student in (s, t, noise)]
    teacher = [a.values["mi_teacher"] for a in audits]
    assert teacher[0] > 0.3                                   # real structure
    assert teacher[1] == pytest.approx(teacher[0], abs=ATOL)
    assert teacher[2] == pytest.approx(teacher[0], abs=ATOL)
    # and symmetrically: the same student against two teachers keeps its I(Y;S)
    other = audit_features(y, noise, s, **opts)[0].values["mi_student"]
    assert other == pytest.approx(audits[0].values["mi_student"], abs=ATOL)


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
def test_a_pair_does_not_depend_on_the_other_pairs(blobs, estimator):
    # the same seeds for every pair: one teacher layer against two students shows one I(Y;T),
    # and a pair's report is the same alone, first or second
    y, t, s = blobs
    noise = np.random.default_rng(12).normal(size=s.shape).astype(np.float32)
    opts = dict(estimator=estimator, n_boot=20, n_perm=20, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        both = audit_features(y, [t, t], [s, noise], layers=[("t", "s"), ("t", "noise")],
                              **opts)
        swapped = audit_features(y, [t, t], [noise, s], layers=[("t", "noise"), ("t", "s")],
                                 **opts)
        alone = audit_features(y, [t], [noise], layers=[("t", "noise")], **opts)
    assert both[0].values["mi_teacher"] == pytest.approx(both[1].values["mi_teacher"],
                                                         abs=ATOL)
    _assert_same(both[0], swapped[1])
    _assert_same(both[1], swapped[0])
    _assert_same(both[1], alone[0])


def test_gaussian_null_is_order_free_with_duplicated_samples(blobs):
    # 40 samples repeat another sample's features under another label: their keys tie, and
    # the shuffle null's rows (sorted by key) were in data order among them
    y, t, s = blobs
    y, t, s = y.copy(), t.copy(), s.copy()
    rng = np.random.default_rng(21)
    src = rng.choice(N, 40, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(N), src), 40, replace=False)
    t[dst], s[dst], y[dst] = t[src], s[src], (y[src] + 1) % CLASSES
    perm = rng.permutation(N)
    opts = dict(estimator="gaussian", n_boot=20, n_perm=20, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _assert_same(audit_features(y, t, s, **opts)[0],
                     audit_features(y[perm], t[perm], s[perm], **opts)[0])
