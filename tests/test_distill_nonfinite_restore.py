"""A training epoch that ends with non-finite values: the error names the epoch and what was
non-finite, and with ``restore_on_nonfinite`` (the default) the user's student, the loss and the
optimizers are first put back to their state at the end of the previous epoch (a copy on the
device taken at the start of every epoch, no host read), where the epoch's NaN updates had
been left in them."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pidkit_distill as pd
from pidkit.errors import PIDValueError
from pidkit_distill.sync_check import count_host_syncs

N = 24


def _data(nan_at=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=g)
    if nan_at is not None:
        x[nan_at, 2] = float("nan")
    return TensorDataset(x, torch.arange(N) % 3)


def _student():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class _Poisoned(torch.utils.data.Dataset):
    """The clean data, except that from epoch ``bad_epoch`` on sample 5 holds a NaN (the
    trainer's epoch is read from the sampler's ``set_epoch``)."""

    def __init__(self, bad_epoch):
        self.clean, self.bad_epoch, self.epoch = _data(), bad_epoch, 0

    def __len__(self):
        return N

    def __getitem__(self, i):
        x, y = self.clean[i]
        if i == 5 and self.epoch >= self.bad_epoch:
            x = x.clone()
            x[2] = float("nan")
        return x, y


class _EpochSampler(torch.utils.data.Sampler):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return N

    def set_epoch(self, epoch):
        self.data.epoch = epoch

    def __iter__(self):
        return iter(range(N))


def _states(trainer):
    return ({k: v.clone() for k, v in trainer.student.state_dict().items()},
            {k: v.clone() for k, v in trainer.loss_fn.state_dict().items()},
            [{k: v.clone() for k, v in s.items()}
             for s in trainer.student_optimizer.state_dict()["state"].values()],
            [g["lr"] for g in trainer.student_optimizer.param_groups])


def _equal(a, b):
    assert a[0].keys() == b[0].keys()
    for key in a[0]:
        torch.testing.assert_close(a[0][key], b[0][key], rtol=0, atol=0)
    for key in a[1]:
        torch.testing.assert_close(a[1][key], b[1][key], rtol=0, atol=0)
    assert len(a[2]) == len(b[2])
    for x, y in zip(a[2], b[2], strict=True):
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0)
    assert a[3] == b[3]


def _per_step_decay(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


@pytest.mark.parametrize(("method", "options"), [
    ("none", {"schedule": "cosine"}),
    ("kd", {"scheduler": _per_step_decay, "scheduler_interval": "step"})],
    ids=["none-cosine", "kd-steplr"])
def test_a_nan_sample_leaves_the_model_at_the_end_of_the_previous_epoch(method, options):
    data = _Poisoned(bad_epoch=1)
    loader = DataLoader(data, batch_size=6, sampler=_EpochSampler(data))
    teacher = None if method == "none" else nn.Sequential(nn.Linear(6, 3))
    trainer = pd.Trainer(teacher, _student(), loader, method=method, epochs=3, lr=0.1,
                         momentum=0.9, progress=False, **options)
    trainer.train_epoch(0)
    after_epoch_0 = _states(trainer)
    assert all(torch.isfinite(p).all() for p in trainer.student.parameters())
    with pytest.raises(PIDValueError, match=r"^train_data: held NaN or infinite inputs in "
                       r"epoch 1 \(student phase\).*put back to their state at the end of "
                       r"epoch 0 \(restore_on_nonfinite=True\)"):
        trainer.train_epoch(1)
    # before, every weight (and batch-norm statistic, and momentum buffer) was NaN here
    _equal(_states(trainer), after_epoch_0)
    if "scheduler" in options:       # stepped 4 times per epoch, and back at epoch 0's end
        assert trainer.student_scheduler.last_epoch == 4
    assert trainer.epoch == 0 and trainer.history == []


def test_without_the_restore_point_the_epoch_updates_stay_applied():
    data = _Poisoned(bad_epoch=1)
    loader = DataLoader(data, batch_size=6, sampler=_EpochSampler(data))
    trainer = pd.Trainer(None, _student(), loader, method="none", epochs=3, progress=False,
                         restore_on_nonfinite=False)
    trainer.train_epoch(0)
    with pytest.raises(PIDValueError, match=r"this epoch's updates were applied: "
                                            r"restore_on_nonfinite=False"):
        trainer.train_epoch(1)
    assert not torch.isfinite(trainer.student[0].weight).all()


def test_fit_stops_with_the_initial_weights_when_the_first_epoch_fails():
    student = _student()
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(PIDValueError, match=r"^train_data: held NaN or infinite inputs in "
                       r"epoch 0 .*state at the start of training"):
        pd.distill(None, student, _data(nan_at=7), method="none", epochs=2, batch_size=6,
                   progress=False)
    for key, value in student.state_dict().items():
        torch.testing.assert_close(value, initial[key], rtol=0, atol=0)


def test_a_diverging_loss_names_the_epoch_and_the_non_finite_terms():
    # a huge learning rate makes the weights overflow in epoch 0: the loss and its
    # cross-entropy term are non-finite; the student is back at its initial weights
    student = _student()
    initial = [p.detach().clone() for p in student.parameters()]
    with pytest.raises(PIDValueError, match=r"^loss: became NaN or infinite during epoch 0 "
                       r"\(student phase; non-finite terms: train_ce, train_kd\).*start of "
                       r"training"):
        pd.distill(nn.Sequential(nn.Linear(6, 3)), student, _data(), method="kd", epochs=1,
                   batch_size=6, lr=1e30, grad_clip=None, progress=False)
    for before, after in zip(initial, student.parameters(), strict=True):
        torch.testing.assert_close(after.detach(), before, rtol=0, atol=0)


def test_the_restore_point_reads_nothing_on_the_host():
    trainer = pd.Trainer(None, _student(), _data(), method="none", epochs=1, batch_size=6,
                         progress=False)
    with count_host_syncs() as syncs:
        metrics = trainer.train_epoch(0)
    in_trainer = [e for e in syncs.events if "batches.py" not in e.site]
    assert len(in_trainer) == 1, syncs.report()          # the epoch's one read of its sums
    assert math.isfinite(metrics["train_loss"])
