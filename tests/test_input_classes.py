"""Issue 14: every input class users have gives a result or a typed error naming the argument.

One test per class of input (low-precision tensors, tensors that require grad, seeds, option
mappings, huge integer codes, low-precision pmfs) and its relatives. An error must be a
:class:`~pidkit.errors.PIDKitError` (a ``ValueError`` or ``TypeError``) whose message starts
with the argument's name, says what was wrong and how to fix it; never a raw numpy or torch
exception.

Tests marked ``xfail(strict=True)`` document a path whose fix lives in a file owned elsewhere
(the reason says which): they start passing, and then fail as XPASS, when it lands.
"""

import re

import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDKitError, PIDTypeError, PIDValueError
from pidkit.estimate import Discretizer, JointCounts, Projector, pid_from_counts, pid_from_samples
from pidkit.gates import gate
from pidkit.validation import (
    MAX_TABLE_CELLS,
    check_options,
    check_pmf,
    check_samples,
    check_seed,
    check_table_size,
    pmf_sum_atol,
)

torch = pytest.importorskip("torch")

LOW_PRECISION = [torch.bfloat16, torch.float16]
FAST = {"n_boot": 3, "n_perm": 3}


def _raises(kind, argument, call, *args, **kwargs):
    """``call`` raises ``kind`` (a PIDKitError) whose message starts with ``argument:``."""
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    assert isinstance(info.value, PIDKitError)
    message = str(info.value)
    assert message.startswith(f"{argument}:"), message
    assert message.count(". ") >= 1, f"no fix given: {message}"
    return message


def _xor_samples(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x0, x1 = rng.integers(0, 2, size=(2, n))
    return x0 ^ x1, x0, x1


# --- 1. bfloat16 / float16 tensors ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_pmf_tensor(dtype):
    """pid (BROJA, tensor path), check_pmf and to_dit-style checks take bf16/fp16 pmfs."""
    p = torch.tensor(gate("AND"), dtype=dtype)
    r = pidkit.pid(p)
    assert float(r.synergy) == pytest.approx(0.5, abs=0.02)
    q = check_pmf(p)                                          # host copy, float64
    assert q.dtype == np.float64 and q.sum() == pytest.approx(1.0)
    assert pidkit.pid(q, measure="mmi").synergy == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_samples(dtype):
    """The sample estimators compute in float32/float64 on host copies: integer-valued bf16/fp16
    codes give the same PID as int64 codes, continuous ones go through the discretiser."""
    y, x0, x1 = _xor_samples()
    ref = pid_from_samples(y, x0, x1, measure="mmi", seed=0, **FAST)
    low = pid_from_samples(*(torch.tensor(c, dtype=dtype) for c in (y, x0, x1)),
                           measure="mmi", seed=0, **FAST)
    assert low.atoms == pytest.approx(ref.atoms)
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 4))
    codes = Discretizer(n_clusters=3, n_components=2, random_state=0).fit_transform(
        torch.tensor(feats, dtype=dtype))
    assert codes.shape == (300,) and codes.max() < 3
    host = check_samples(torch.ones(3, 2, dtype=dtype), "x", keep_torch=False)
    assert host.dtype in (np.float32, np.float16)


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_gaussian_samples(dtype):
    rng = np.random.default_rng(2)
    m = rng.normal(size=300)
    x, y = m + rng.normal(size=300), m + rng.normal(size=300)
    try:
        r = pid_from_samples(*(torch.tensor(v, dtype=dtype) for v in (m, x, y)),
                             estimator="gaussian", seed=0, **FAST)
    except PIDKitError as exc:  # a clear refusal is acceptable, a raw exception is not
        assert re.match(r"^(target|sources\[\d\]):", str(exc)), str(exc)
    else:
        assert np.isfinite(float(r.redundancy))


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_codes_in_streaming_counts(dtype):
    """A float tensor of whole numbers is codes for JointCounts (checked on the device, in the
    batch's one host read), as for pid_from_samples; a fractional one is refused by name."""
    codes = torch.tensor([0, 1, 1, 2], dtype=dtype)
    other = torch.tensor([1, 1, 0, 0])
    np.testing.assert_array_equal(JointCounts().update(codes, other).counts,
                                  JointCounts().update(codes.long(), other).counts)
    message = _raises(PIDTypeError, "target", JointCounts().update, codes / 4, other)
    assert "non-integer" in message


@pytest.mark.parametrize("dtype", [
    torch.bfloat16, torch.float16])
def test_low_precision_codes_in_joint_pmf(dtype):
    codes = torch.tensor([0, 1, 1, 2], dtype=dtype)
    np.testing.assert_array_equal(pidkit.joint_pmf(codes, torch.tensor([0, 1, 0, 1])),
                                  pidkit.joint_pmf([0, 1, 1, 2], [0, 1, 0, 1]))
    _raises(PIDTypeError, "columns[0]", pidkit.joint_pmf, codes / 4, torch.tensor([0, 1, 0, 1]))


# --- 2. tensors that require grad ----------------------------------------------------------------
def test_tensors_requiring_grad_are_read_detached():
    p = torch.tensor(gate("XOR"), requires_grad=True)
    assert check_pmf(p).sum() == pytest.approx(1.0)
    assert pidkit.pid(check_pmf(p), measure="mmi").synergy == pytest.approx(1.0)
    y, x0, x1 = (torch.tensor(c, dtype=torch.float32, requires_grad=True)
                 for c in _xor_samples())
    r = pid_from_samples(y, x0, x1, measure="mmi", seed=0, **FAST)
    assert r.synergy == pytest.approx(1.0, abs=0.05)
    host = check_samples(y, "y", keep_torch=False)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32


def test_joint_pmf_of_a_tensor_requiring_grad():
    codes = torch.tensor([0.0, 1.0, 1.0], requires_grad=True)
    np.testing.assert_array_equal(pidkit.joint_pmf(codes, codes),
                                  pidkit.joint_pmf([0, 1, 1], [0, 1, 1]))


# --- 3. seeds ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "kind"), [(-1, PIDValueError), (2**32, PIDValueError),
                                            (1.5, PIDTypeError), (3.0, PIDTypeError),
                                            ("0", PIDTypeError), (True, PIDTypeError),
                                            (np.random.default_rng(0), PIDTypeError),
                                            (np.random.RandomState(0), PIDTypeError)])
def test_bad_random_state_of_discretiser_and_projector(seed, kind):
    x = np.random.default_rng(0).normal(size=(50, 3))
    message = _raises(kind, "random_state", Discretizer(n_clusters=2, n_components=1,
                                                        random_state=seed).fit, x)
    if isinstance(seed, np.random.Generator):
        assert "int(rng.integers(2**32))" in message
    _raises(kind, "random_state", Projector(1, random_state=seed).fit, x)


@pytest.mark.parametrize("seed", [0, np.int64(7), np.uint32(7), 2**32 - 1, None])
def test_good_random_states(seed):
    x = np.random.default_rng(0).normal(size=(50, 3))
    codes = Discretizer(n_clusters=2, n_components=1, random_state=seed).fit_transform(x)
    assert codes.shape == (50,)


@pytest.mark.parametrize(("seed", "kind"), [(-1, PIDKitError), (1.5, PIDTypeError),
                                            ("0", PIDTypeError), (True, PIDTypeError)])
def test_bad_seed_of_sample_estimators(seed, kind):
    y, x0, x1 = _xor_samples(50)
    _raises(kind, "seed", pid_from_samples, y, x0, x1, measure="mmi", seed=seed, **FAST)
    counts = JointCounts().update(y, x0, x1).counts
    _raises(kind, "seed", pid_from_counts, counts, measure="mmi", seed=seed, **FAST)


def test_numpy_integer_seeds_and_generators():
    y, x0, x1 = _xor_samples(50)
    a = pid_from_samples(y, x0, x1, measure="mmi", seed=np.int64(3), **FAST)
    b = pid_from_samples(y, x0, x1, measure="mmi", seed=3, **FAST)
    assert a.intervals == b.intervals and a.details["seed"] == 3
    try:  # a Generator works where documented, else is refused by name
        pid_from_samples(y, x0, x1, measure="mmi", seed=np.random.default_rng(0), **FAST)
    except PIDKitError as exc:
        assert str(exc).startswith("seed:")


def test_check_seed():
    assert check_seed(None) is None and check_seed(np.int32(5)) == 5
    rng = np.random.default_rng(0)
    assert check_seed(rng, generator=True) is rng
    _raises(PIDValueError, "seed", check_seed, -3)
    _raises(PIDTypeError, "seed", check_seed, rng)
    _raises(PIDValueError, "random_state", check_seed, 2**40, "random_state", maximum=2**32 - 1)


# --- 4. measure_options that are not a dict ------------------------------------------------------
@pytest.mark.parametrize("options", [[("tol", 1e-3)], "tol", 3])
def test_measure_options_must_be_a_dict(options):
    y, x0, x1 = _xor_samples(50)
    _raises(PIDTypeError, "measure_options", pid_from_samples, y, x0, x1, seed=0,
            measure_options=options, **FAST)
    counts = JointCounts().update(y, x0, x1).counts
    _raises(PIDTypeError, "measure_options", pid_from_counts, counts, seed=0,
            measure_options=options, **FAST)


def test_measure_options_dict_and_none():
    y, x0, x1 = _xor_samples(50)
    r = pid_from_samples(y, x0, x1, measure="ccs", seed=0, measure_options={"tol": 1e-12},
                         **FAST)
    assert r.synergy == pytest.approx(1.0, abs=0.1)
    assert check_options(None) == {} and check_options({"tol": 1}) == {"tol": 1}
    _raises(PIDTypeError, "measure_options", check_options, ["tol"], "measure_options")
    _raises(PIDTypeError, "measure_options", check_options, {0: 1}, "measure_options")


# --- 5. huge integer codes -----------------------------------------------------------------------
@pytest.mark.parametrize("code", [2**22, 2**40, 2**62])
def test_huge_codes_in_streaming_counts(code):
    """Today's 131 TiB MemoryError: the table size is checked before anything is allocated, and
    the error names the variable with the largest code."""
    big = np.array([0, code])
    message = _raises(PIDValueError, "sources[0]", JointCounts().update, np.array([0, 5000]), big)
    assert "np.unique(x, return_inverse=True)" in message and "cells" in message
    message = _raises(PIDValueError, "target", JointCounts().update, big, big)
    assert re.search(r"[KMGTPEZY]iB\)", message)  # how much memory it would have taken
    message = _raises(PIDValueError, "sources[1]", JointCounts().update,
                      torch.tensor([0, 1]), torch.tensor([0, 5000]), torch.tensor([0, code]))


def test_uint64_codes_do_not_wrap_to_negative():
    huge = np.array([0, 2**63 + 5], dtype=np.uint64)
    message = _raises(PIDValueError, "target", JointCounts().update, huge, np.array([0, 1]))
    assert "negative" not in message and str(2**63 + 5) in message


def test_fixed_shape_too_large_or_malformed():
    _raises(PIDValueError, "shape", JointCounts, (10**5, 10**5))
    _raises(PIDTypeError, "shape", JointCounts, (2.5, 3))
    _raises(PIDTypeError, "shape", JointCounts, "22")


def test_huge_labels_are_fine_where_they_are_encoded():
    y, x0, x1 = _xor_samples(100)
    ref = pid_from_samples(y, x0, x1, measure="mmi", seed=0, **FAST)
    big = pid_from_samples(y * 2**62, x0 + 10**12, x1 * 2**40, measure="mmi", seed=0, **FAST)
    assert big.atoms == pytest.approx(ref.atoms)


def test_joint_pmf_huge_codes():
    message = _raises(PIDValueError, "columns[0]", pidkit.joint_pmf, [0, 2**40], [0, 2**40])
    assert "np.unique(x, return_inverse=True)" in message


def test_joint_pmf_uint64_codes_do_not_wrap():
    message = _raises(PIDValueError, "columns[0]", pidkit.joint_pmf,
                      np.array([0, 2**63 + 5], dtype=np.uint64), [0, 1])
    assert "negative" not in message


def test_check_table_size():
    assert check_table_size([10, 10], ["a", "b"]) == 100
    message = _raises(PIDValueError, "b", check_table_size, [2, MAX_TABLE_CELLS], ["a", "b"])
    assert f"{MAX_TABLE_CELLS:,}" in message


# --- 6. low-precision pmfs: one dtype-aware tolerance for numpy and torch -------------------------
def _float32_pmf(offset=0.0):
    """A float32 pmf normalised in float64 and rounded: its float64 sum misses 1 by ~2e-8."""
    p = np.full((3, 7, 7), 1 / 147) * (1 + offset)
    return p.astype(np.float32)


def test_float32_pmf_normalised_in_float64_is_accepted_by_numpy_and_torch():
    p = _float32_pmf()
    assert abs(p.astype(np.float64).sum() - 1) > 1e-8        # beyond the float64 tolerance
    assert pidkit.pid(p, measure="mmi").mutual_information == pytest.approx(0, abs=1e-9)
    assert float(pidkit.pid(torch.tensor(p)).mutual_information) == pytest.approx(0, abs=1e-5)
    assert check_pmf(torch.tensor(p)).sum() == pytest.approx(1.0)


def test_far_from_normalised_float32_pmf_is_rejected_by_both():
    p = _float32_pmf(1e-3)
    _raises(PIDValueError, "p", pidkit.pid, p, measure="mmi")
    _raises(PIDValueError, "p", pidkit.pid, torch.tensor(p))
    _raises(PIDValueError, "p", check_pmf, torch.tensor(p))


def test_one_tolerance_rule():
    eps32 = float(np.finfo(np.float32).eps)
    assert pmf_sum_atol(np.float64) == pmf_sum_atol(torch.float64) == 1e-8
    assert pmf_sum_atol(np.float32) == pmf_sum_atol(torch.float32) == 8 * eps32
    assert pmf_sum_atol(torch.ones(2, dtype=torch.bfloat16)) == 8 * 2**-7
    assert pmf_sum_atol(np.int64) == 1e-8
    p = _float32_pmf(1e-5)   # outside 8 eps of float32 (9.5e-7), inside the old 1000 eps
    _raises(PIDValueError, "p", pidkit.pid, p, measure="mmi")


def test_torch_path_uses_the_same_tolerance():
    _raises(PIDValueError, "p", pidkit.pid, torch.tensor(_float32_pmf(1e-5)))


def test_audits_take_low_precision_and_grad_tensors():
    pd = pytest.importorskip("pidkit_distill")
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    t = torch.randn(300, 16, generator=g) + y[:, None]
    s = torch.randn(300, 16, generator=g) + y[:, None]
    half = pd.audit_features(y, t.bfloat16(), s.bfloat16(), ci=None).pairs[0].values
    widened = pd.audit_features(y, t.bfloat16().float(), s.bfloat16().float(),
                                ci=None).pairs[0].values
    assert half == widened                                   # bfloat16 -> float32 is exact
    grad = pd.audit_features(y, t.clone().requires_grad_(True), s, ci=None).pairs[0].values
    assert grad == pd.audit_features(y, t, s, ci=None).pairs[0].values
    # features passed as labels: one label per sample is needed (pidkit_distill.labels)
    _raises(PIDValueError, "labels", pd.audit_features, t.bfloat16(), t, s, ci=None)
    _raises(PIDTypeError, "labels", pd.audit_features, y > 0, t, s, ci=None)


def test_pandas_inputs_with_different_indexes_are_refused_not_paired_by_position():
    # pidkit pairs samples by position; a pandas user expects rows with the same label to be
    # paired, so df.m.sample(frac=1) beside df.x silently destroyed their dependence
    import pandas as pd

    from pidkit.estimate import GaussianMoments, gaussian_pid_from_samples

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"m": rng.normal(size=200)})
    df["x"], df["y"] = df.m + rng.normal(size=200), df.m + rng.normal(size=200)
    shuffled = df.sample(frac=1, random_state=0)
    codes, shuffled_codes = (df > 0).astype(int), (shuffled > 0).astype(int)
    calls = {
        "sources[0]": lambda: pidkit.pid_from_samples(df.m, shuffled.x, df.y,
                                                      estimator="gaussian"),
        "x": lambda: gaussian_pid_from_samples(df.m, shuffled.x, df.y),
        "columns[1]": lambda: pidkit.joint_pmf(codes.m, shuffled_codes.x),
        "sources[1]": lambda: JointCounts().update(codes.m, codes.x, shuffled_codes.y),
        "sources[0] ": lambda: GaussianMoments().update(df.m, shuffled[["x"]]),
    }
    for name, call in calls.items():
        with pytest.raises(PIDValueError, match=rf"^{re.escape(name.strip())}: has a pandas "
                                                r"index that differs from"):
            call()
    # the same rows in the same order, a DataFrame column block, or numpy beside pandas: paired
    # by position as before, the same estimate
    expected = pidkit.pid_from_samples(df.m.to_numpy(), df.x.to_numpy(), df.y.to_numpy(),
                                       estimator="gaussian", n_boot=0, n_perm=0)
    for x, y in ((df.x, df.y), (df[["x"]], df.y.to_numpy()),
                 (shuffled.x.reindex(df.index), df.y)):
        r = pidkit.pid_from_samples(df.m, x, y, estimator="gaussian", n_boot=0, n_perm=0)
        assert r.redundancy == expected.redundancy and r.synergy == expected.synergy
