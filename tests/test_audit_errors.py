"""Typed errors (issue 17) for inputs an audit cannot read: complex features, no samples, NaN or
infinite features, features of width 0; and labels like 10**12, which just work (classes are
renamed to their rank)."""

import numpy as np
import pytest

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import audit_features

N, D = 240, 16
ESTIMATORS = ["paper", "gaussian"]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, N)
    t = rng.normal(size=(N, D)) + y[:, None]
    s = rng.normal(size=(N, D)) - y[:, None]
    return y, t, s


def _run(y, t, s, estimator):
    return audit_features(y, t, s, estimator=estimator, ci=None, n_perm=0)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("side", ["teacher", "student"])
def test_complex_features_are_refused(estimator, side):
    y, t, s = _data()
    if side == "teacher":
        t = t + 1j
    else:
        s = s.astype(np.complex64)
    with pytest.raises(PIDTypeError, match=f"{side}_features: holds complex values"):
        _run(y, t, s, estimator)


def test_complex_torch_features_are_refused():
    torch = pytest.importorskip("torch")
    y, t, s = _data()
    with pytest.raises(PIDTypeError, match="student_features: holds complex values"):
        _run(y, torch.as_tensor(t), torch.as_tensor(s, dtype=torch.complex64), "paper")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_zero_samples(estimator):
    y, t, s = _data()
    with pytest.raises(PIDValueError, match="labels: hold no samples"):
        _run(y[:0], t[:0], s[:0], estimator)


def test_features_without_columns_and_scalars():
    y, t, s = _data()
    with pytest.raises(PIDValueError, match="teacher_features: has no features per sample"):
        _run(y, t[:, :0], s, "paper")
    with pytest.raises(PIDTypeError, match="student_features: must be an array"):
        _run(y, t, np.float64(1.0), "paper")


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(estimator, bad):
    y, t, s = _data()
    t = t.copy()
    t[5, 3] = bad
    with pytest.raises(PIDValueError, match="teacher_features: contains NaN or infinite"):
        _run(y, t, s, estimator)


@pytest.mark.filterwarnings("ignore:audit of T0:UserWarning")
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_huge_labels_are_renamed_to_their_rank(estimator):
    y, t, s = _data()
    huge = np.array([10**12, 7, 2**62])[y]
    ref = _run(y, t, s, estimator).pairs[0].values
    got = _run(huge, t, s, estimator).pairs[0].values
    for q, v in ref.items():
        assert got[q] == pytest.approx(v, abs=1e-9), q
