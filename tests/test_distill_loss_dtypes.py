"""Every built-in loss returns its value and its parts in the batch's floating dtype
(``losses.result_dtype``): float32 for a float32 student, float64 for a float64 one, float32
for float16 / bfloat16 features under autocast, whatever it computes in inside (the PID
losses' float64 running statistics and BROJA solve); the value is the float64 computation
rounded once, and the gradient still reaches the student's features."""

import math
import warnings

import pytest
import torch

from pidkit_distill import make_loss
from pidkit_distill.losses import Batch, cross_entropy, result_dtype

torch.set_num_threads(1)

METHODS = ["none", "kd", "fitnets", "vid", "ted", "rid", "pid", "broja"]
N, K = 24, 3


def _batch(dtype, *, student_logits=True):
    g = torch.Generator().manual_seed(0)
    s_feat = torch.randn(N, 4, 3, generator=g).to(dtype).requires_grad_()
    return Batch(y=torch.arange(N) % K,
                 student_logits=(torch.randn(N, K, generator=g).to(dtype).requires_grad_()
                                 if student_logits else None),
                 teacher_logits=torch.randn(N, K, generator=g).to(dtype),
                 student_features=[s_feat],
                 teacher_features=[torch.randn(N, 6, 3, generator=g).to(dtype)])


def _loss(method, dtype=torch.float32):
    torch.manual_seed(0)
    return make_loss(method, [(6, 3)], [(4, 3)], K).match_precision(dtype)


def _dtypes(result):
    loss, parts = result
    return loss.dtype, {name: value.dtype for name, value in parts.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_value_and_parts_have_the_students_dtype(method, dtype):
    loss = _loss(method, dtype)
    batch = _batch(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # a BROJA solve stopping early on random features
        value, parts = loss.student_loss(batch)
    assert value.dtype == dtype and value.shape == ()
    assert parts and all(p.dtype == dtype and not p.requires_grad for p in parts.values())
    value.backward()
    assert batch.student_logits.grad.dtype == dtype
    if loss.uses_features:
        assert batch.student_features[0].grad is not None
        assert batch.student_features[0].grad.dtype == dtype
    if loss.two_phase:
        for distill, with_student in ((False, False), (True, True)):
            phase_batch = _batch(dtype, student_logits=with_student)
            got = _dtypes(loss.teacher_loss(phase_batch, distill=distill))
            assert got[0] == dtype and set(got[1].values()) == {dtype}


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", METHODS)
def test_half_precision_under_autocast_returns_float32(method, half):
    loss = _loss(method)
    batch = _batch(half)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cpu", dtype=half):
            got = _dtypes(loss.student_loss(batch))
    assert got[0] == torch.float32 and set(got[1].values()) == {torch.float32}


@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_pid_value_is_its_float64_redundancy_rounded_once(measure):
    torch.manual_seed(0)
    loss = make_loss("pid", [(6, 3)], [(4, 3)], K, beta=0.7, measure=measure).eval()
    batch = _batch(torch.float32)
    red = loss.redundancies(batch)[0].detach()
    assert red.dtype == torch.float64          # the internals stay in float64
    value, parts = loss.student_loss(batch)
    ce = cross_entropy(batch.student_logits, batch.y).detach()
    want = float(ce) - 0.7 * float(red)
    assert value.dtype == torch.float32
    assert float(value.detach()) == pytest.approx(want, rel=1e-6)
    assert float(parts["redundancy"]) == pytest.approx(float(red), rel=1e-6)
    assert float(red) != 0.0 and math.isfinite(want)


def test_kd_with_float64_teacher_logits_follows_the_float32_student():
    loss = _loss("kd")
    batch = _batch(torch.float32)
    batch.teacher_logits = batch.teacher_logits.double()
    value, parts = loss.student_loss(batch)
    assert value.dtype == torch.float32 and parts["kd"].dtype == torch.float32
    assert float(parts["kd"]) > 0


def test_result_dtype_of_a_batch():
    y = torch.tensor([0, 1])
    assert result_dtype(Batch(y=y, student_logits=torch.zeros(2, 3))) == torch.float32
    assert result_dtype(Batch(y=y, teacher_features=[torch.zeros(2, 3, dtype=torch.float64)])
                        ) == torch.float64
    assert result_dtype(Batch(y=y, teacher_features=[torch.zeros(2, 3, dtype=torch.float16)])
                        ) == torch.float32
    assert result_dtype(Batch(y=y)) == torch.get_default_dtype()
