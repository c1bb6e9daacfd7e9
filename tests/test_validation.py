"""Every bad input of issue 2, point 7, is rejected with a typed error naming the argument,
the problem and the fix."""

import math

import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDKitError, PIDTypeError, PIDValueError
from pidkit.gates import gate

XOR = gate("XOR")


def _raises(kind, match, *args, **kwargs):
    with pytest.raises(kind, match=match) as info:
        pidkit.pid(*args, **kwargs)
    assert isinstance(info.value, PIDKitError)
    assert issubclass(kind, ValueError if kind is PIDValueError else TypeError)
    return str(info.value)


def test_negative_probability():
    p = XOR.copy()
    p[0, 0, 0] = -0.25
    p[1, 0, 1] = 0.75
    msg = _raises(PIDValueError, r"^p: contains negative probabilities", p, measure="mmi")
    assert ">= 0" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_probability(bad):
    p = XOR.copy()
    p[0, 0, 0] = bad
    _raises(PIDValueError, r"^p: contains NaN or infinite", p, measure="mmi")


def test_not_summing_to_one_and_normalize():
    msg = _raises(PIDValueError, r"^p: sums to 2, not 1 \(tolerance 1e-08\)", 2 * XOR,
                  measure="mmi")
    assert "normalize=True" in msg
    r = pidkit.pid(2 * XOR, measure="mmi", normalize=True)
    assert r.synergy == pytest.approx(1.0)
    # within the stated tolerance the pmf is accepted (and renormalised)
    assert pidkit.pid(XOR * (1 + 5e-9), measure="mmi").synergy == pytest.approx(1.0)


def test_normalize_must_be_bool():
    with pytest.raises(PIDTypeError, match="^normalize: must be True or False"):
        pidkit.pid(XOR, measure="mmi", normalize="yes")


def test_all_zero():
    _raises(PIDValueError, r"^p: is all zeros", np.zeros((2, 2, 2)), measure="mmi",
            normalize=True)


@pytest.mark.parametrize("p", [[0.5, 0.5], 1.0, np.ones(0)])
def test_fewer_than_two_axes(p):
    _raises(PIDValueError, r"^p: needs at least 2 axes", p, measure="mmi")


def test_empty_axis():
    _raises(PIDValueError, r"^p: is empty", np.zeros((2, 0)), measure="mmi")


@pytest.mark.parametrize("target", [3, -4])
def test_target_out_of_range(target):
    _raises(PIDValueError, r"^target: axis .* is out of range for a pmf with 3 axes", XOR,
            target=target, measure="mmi")


def test_sources_out_of_range():
    _raises(PIDValueError, r"^sources: axis 5 is out of range", XOR, sources=[1, 5],
            measure="mmi")


def test_target_overlaps_sources():
    _raises(PIDValueError, r"^sources: axis \[0\] is also the target", XOR, sources=[0, 1],
            measure="mmi")


def test_sources_overlap_each_other():
    _raises(PIDValueError, r"^sources: two sources share an axis", XOR, sources=[[1, 2], [2]],
            measure="mmi")


def test_sources_repeat_an_axis():
    _raises(PIDValueError, r"^sources: names the same axis twice", XOR, sources=[[1, 1], 2],
            measure="mmi")


@pytest.mark.parametrize(("target", "sources"), [(1.5, None), (0, "12"), (0, [1, "2"]),
                                                 (True, None)])
def test_target_or_sources_wrong_type(target, sources):
    with pytest.raises(PIDTypeError, match=r"^(target|sources): "):
        pidkit.pid(XOR, target=target, sources=sources, measure="mmi")


def test_no_sources_left():
    _raises(PIDValueError, r"^sources: no source axes are left", np.full((2, 2), 0.25),
            target=[0, 1], measure="mmi")


def test_unknown_measure_lists_known_ones():
    msg = _raises(PIDValueError, r"^measure: is not a known choice \(got 'nope'\)", XOR,
                  measure="nope")
    for name in pidkit.available_measures():
        assert name in msg


def test_measure_wrong_type():
    _raises(PIDTypeError, r"^measure: ", XOR, measure=3)


def test_unknown_measure_option():
    msg = _raises(PIDValueError, r"^options: \['tol'\] are not options of measure 'mmi'",
                  XOR, measure="mmi", tol=1e-3)
    assert "none" in msg


@pytest.mark.parametrize("p", [np.array([["a", "b"], ["c", "d"]]),
                               np.ones((2, 2), dtype=complex) / 4,
                               np.array([[None, 0.5], [0.5, 0.0]], dtype=object)])
def test_non_numeric_dtype(p):
    _raises(PIDTypeError, r"^p: ", p, measure="mmi")


def test_string_pmf():
    _raises(PIDTypeError, r"^p: must be an array of probabilities, not a string", "0.5 0.5",
            measure="mmi")


def test_ragged_lists():
    _raises(PIDValueError, r"^p: is a ragged nested sequence", [[0.5, 0.25], [0.25]],
            measure="mmi")


@pytest.mark.parametrize("base", [0, -2, 1, 1.0, math.inf, math.nan])
def test_bad_log_base(base):
    msg = _raises(PIDValueError, r"^base: must be a finite logarithm base > 1 to measure "
                  r"information", XOR, measure="mmi", base=base)
    assert "Use 2 for bits" in msg


@pytest.mark.parametrize("base", ["2", None, True])
def test_log_base_wrong_type(base):
    _raises(PIDTypeError, r"^base: must be a real number", XOR, measure="mmi", base=base)


def test_too_many_sources_for_lattice():
    p = np.full((2,) * 7, 1 / 2**7)
    _raises(PIDValueError, r"^sources: 6 sources are more than the 5 whose lattice", p,
            measure="mmi")


def test_measure_with_source_limit():
    limited = [m for m, spec in pidkit.discrete.MEASURES.items() if spec.max_sources == 2]
    for measure in limited:
        _raises(PIDValueError, r"^sources: measure .* is defined for at most 2 sources",
                gate("PARITY3"), measure=measure)


def test_error_message_format_names_value_and_fix():
    with pytest.raises(PIDValueError) as info:
        pidkit.pid(XOR, measure="mmi", base=-1)
    assert str(info.value) == ("base: must be a finite logarithm base > 1 to measure information "
                               "(got -1.0). Use 2 for bits, math.e for nats, 10 for hartleys")


def test_check_samples_keeps_library_and_dtype():
    """One checker for samples: numpy stays numpy, torch stays torch (or is copied to numpy on
    request), the dtype is never changed, bad input gets the project's error format."""
    import torch

    from pidkit.validation import check_samples

    x32 = np.ones((4, 3), dtype=np.float32)
    assert check_samples(x32, "x") is x32
    assert check_samples([1, 2, 3], "x").dtype.kind == "i"
    t = torch.ones(5, 2, dtype=torch.float16, requires_grad=False)
    assert check_samples(t, "x") is t
    host = check_samples(torch.arange(6).reshape(3, 2), "x", keep_torch=False)
    assert isinstance(host, np.ndarray) and host.dtype == np.int64
    for bad, kind, message in [
        ("abc", PIDTypeError, r"^x: must be an array of samples \(got 'abc'\)\. Pass"),
        (None, PIDTypeError, r"^x: must be an array of samples"),
        (np.array(["a", "b"]), PIDTypeError, r"^x: must hold numbers, not dtype <U1\. "),
        (torch.ones(3, dtype=torch.complex64), PIDTypeError, r"^x: must hold real numbers"),
        (np.float64(3.0), PIDValueError, r"^x: is a scalar, not an array of samples"),
        (np.zeros((0, 2)), PIDValueError, r"^x: holds no samples\. Pass at least two"),
    ]:
        with pytest.raises(kind, match=message):
            check_samples(bad, "x")


def test_zero_dimensional_arrays_and_tensors_count_as_the_numbers_they_hold():
    """``lr=torch.tensor(0.1)`` or a numpy scalar array: the number, exactly; a 0-d bool, a
    vector or a NaN tensor still fail with the argument named."""
    import torch

    from pidkit.validation import check_fraction, check_int, check_positive

    assert check_positive(torch.tensor(0.1, dtype=torch.float64), "lr") == 0.1
    assert check_positive(torch.tensor(0.1), "lr") == float(np.float32(0.1))
    assert check_positive(np.array(3.0), "beta") == 3.0
    assert check_fraction(torch.tensor(0.25), "ratio") == 0.25
    assert check_int(torch.tensor(4), "epochs", 1) == 4 and check_int(np.array(4), "e", 1) == 4
    with pytest.raises(PIDTypeError, match="lr"):
        check_positive(torch.tensor(True), "lr")
    with pytest.raises(PIDTypeError, match="lr"):
        check_positive(torch.tensor([0.1, 0.2]), "lr")
    with pytest.raises(PIDValueError, match="lr"):
        check_positive(torch.tensor(float("nan")), "lr")
    with pytest.raises(PIDTypeError, match="epochs"):
        check_int(torch.tensor(4.0), "epochs", 1)
