"""No host synchronisation inside a training step: the sync counter itself (it counts planted
host reads and nothing else), the device path of the Gaussian PID (same values and gradients as
the validated path, no host read), and forward + loss + backward steps of every distillation
loss on a small MLP with labelled and partly unlabelled batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _gaussian_reference import random_cov
from torch import nn

import pidkit
from pidkit_distill.losses import UNLABELLED, Batch, make_loss
from pidkit_distill.sync_check import count_host_syncs

torch.set_num_threads(1)


# -- the counter ----------------------------------------------------------------------------
def test_counter_counts_planted_host_reads_with_their_call_sites():
    x = torch.randn(6, generator=torch.Generator().manual_seed(0))
    with count_host_syncs() as syncs:
        y = (x * 2 + 1).relu().sum()
        a = y.item()
        b = float(y)
        picked = x[x > 0]
    assert syncs.count == 3, syncs.report()
    assert [e.op for e in syncs.events] == ["Tensor.item", "Tensor.__float__",
                                            "Tensor.__getitem__ with a boolean mask"]
    assert all(e.site.startswith(__file__) for e in syncs.events)
    assert "test_counter_counts_planted_host_reads" in syncs.report()
    assert a == b and picked.numel() == int((x > 0).sum())  # outside the block: not counted
    assert syncs.count == 3


@pytest.mark.parametrize("planted", [
    lambda t: t.tolist(), lambda t: t.cpu(), lambda t: bool(t[0]), lambda t: int(t[0]),
    lambda t: t.nonzero(), lambda t: torch.unique(t), lambda t: torch.masked_select(t, t > 0),
    lambda t: torch.where(t > 0), lambda t: t.numpy(), lambda t: f"{t[0]:.2f}",
])
def test_counter_counts_each_kind_of_host_read(planted):
    t = torch.arange(-2.0, 3.0)
    with count_host_syncs() as syncs:
        planted(t)
    assert syncs.count == 1, syncs.report()


def test_counter_ignores_pure_tensor_operations():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3, 2)
    y = torch.tensor([0, 1, 1, UNLABELLED, 0])
    with count_host_syncs() as syncs:
        keep = y != UNLABELLED
        loss = nn.functional.cross_entropy(x @ w, y, ignore_index=UNLABELLED, reduction="sum")
        loss = loss / keep.sum().clamp(min=1)
        z = torch.where(keep[:, None], x, 0.0)[1:, None, :2].sum() + x[0, 1]
        (loss + z).backward()
    assert syncs.count == 0, syncs.report()
    assert syncs.report() == "no host synchronisation"


# -- the Gaussian PID on the device ---------------------------------------------------------
@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("batch_shape", [(), (3,)])
def test_unvalidated_gaussian_pid_equals_validated(measure, batch_shape):
    rng = np.random.default_rng(5)
    covs = np.stack([random_cov(rng, 7) for _ in range(int(np.prod(batch_shape)))])
    cov = torch.tensor(covs.reshape(batch_shape + (7, 7)), requires_grad=True)
    checked = pidkit.gaussian_pid(cov, (3, 2, 2), measure=measure, base=math.e, certify=False)
    with count_host_syncs() as syncs:
        fast = pidkit.gaussian_pid(cov, (3, 2, 2), measure=measure, base=math.e,
                                   validate=False)
        values = torch.stack([fast.redundancy, *fast.unique, fast.synergy,
                              fast.mutual_information])
        (grad_fast,) = torch.autograd.grad(fast.redundancy.sum(), cov)
    assert syncs.count == 0, syncs.report()
    expected = torch.stack([checked.redundancy, *checked.unique, checked.synergy,
                            checked.mutual_information])
    torch.testing.assert_close(values, expected, rtol=0, atol=1e-12)
    (grad_checked,) = torch.autograd.grad(checked.redundancy.sum(), cov)
    torch.testing.assert_close(grad_fast, grad_checked, rtol=0, atol=1e-12)
    for got, want in zip(fast.details["mi_sources"], checked.details["mi_sources"],
                         strict=True):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=0, atol=1e-12)
    if measure == "broja":
        np.testing.assert_allclose(fast.details["eigenvalues"].detach().numpy(),
                                   np.asarray(checked.details["eigenvalues"]), atol=1e-12)


def test_unvalidated_gaussian_pid_gives_nan_for_a_non_positive_definite_input():
    cov = torch.eye(4, dtype=torch.float64)
    cov[0, 1] = cov[1, 0] = 2.0  # not positive semi-definite
    r = pidkit.gaussian_pid(cov, (2, 1, 1), validate=False)
    assert torch.isnan(r.redundancy)
    with pytest.raises(pidkit.PIDValueError, match="positive semi-definite"):
        pidkit.gaussian_pid(cov, (2, 1, 1))


def test_unvalidated_gaussian_pid_rejects_a_certificate():
    with pytest.raises(pidkit.PIDValueError, match="certify"):
        pidkit.gaussian_pid(torch.eye(3), (1, 1, 1), validate=False, certify=True)
    with pytest.raises(pidkit.PIDTypeError, match="validate"):
        pidkit.gaussian_pid(torch.eye(3), (1, 1, 1), validate="no")


# -- training steps ---------------------------------------------------------------------------
class MLP(nn.Module):
    """``x -> relu(W1 x) -> relu(W2 .) -> logits``, returning the logits and both hidden
    layers (the distilled features)."""

    def __init__(self, hidden: tuple[int, int], d_in: int = 6, num_classes: int = 3):
        super().__init__()
        self.l1 = nn.Linear(d_in, hidden[0])
        self.l2 = nn.Linear(hidden[0], hidden[1])
        self.head = nn.Linear(hidden[1], num_classes)

    def forward(self, x):
        h1 = self.l1(x).relu()
        h2 = self.l2(h1).relu()
        return self.head(h2), [h1, h2]


def _batches():
    g = torch.Generator().manual_seed(3)
    labels = [torch.arange(16) % 3,                                   # labelled
              torch.where(torch.arange(16) % 4 == 0, UNLABELLED, torch.arange(16) % 3),
              torch.full((16,), UNLABELLED)]                          # none labelled
    return [(torch.randn(16, 6, generator=g), y) for y in labels]


METHODS = [("none", {}), ("kd", {}), ("fitnets", {}), ("vid", {}), ("ted", {}),
           ("rid", {}), ("pid", {"measure": "broja", "dim": 3}),
           ("pid", {"measure": "mmi", "dim": 3})]


@pytest.mark.parametrize("method,options", METHODS, ids=[
    f"{m}-{o.get('measure', '')}".rstrip("-") for m, o in METHODS])
def test_training_steps_do_not_synchronise(method, options):
    torch.manual_seed(0)
    teacher, student = MLP((10, 8)), MLP((7, 5))
    loss_fn = make_loss(method, [(10,), (8,)], [(7,), (5,)], 3, **options)
    phases = ["warmup", "teacher", "student"] if loss_fn.two_phase else ["student"]
    opt = torch.optim.SGD([*student.parameters(), *loss_fn.parameters()], lr=0.01)
    for phase in phases:
        loss_fn.set_phase(phase)
        for x, y in _batches():
            opt.zero_grad()
            with count_host_syncs() as syncs:
                with torch.no_grad():
                    t_logits, t_feats = teacher(x)
                with torch.set_grad_enabled(phase == "student"):
                    s_logits, s_feats = student(x)
                batch = Batch(y=y, student_logits=s_logits, teacher_logits=t_logits,
                              student_features=s_feats, teacher_features=t_feats)
                if phase == "student":
                    loss, parts = loss_fn.student_loss(batch)
                else:
                    loss, parts = loss_fn.teacher_loss(batch, distill=phase == "teacher")
                loss.backward()
            assert syncs.count == 0, f"{method} {phase}: {syncs.report()}"
            assert parts and all(isinstance(v, torch.Tensor) and v.shape == ()
                                 and v.dtype == torch.float32 and not v.requires_grad
                                 for v in parts.values()), parts
            assert torch.isfinite(loss)
            opt.step()
