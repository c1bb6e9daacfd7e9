"""The trainer: Algorithm 1's schedule, which parameters each phase trains, learning-rate
schedules, exact resume from checkpoints, safe checkpoint loading, callbacks and metric files,
and a short digits run with a trained teacher."""

import csv
import json

import pytest
import torch
from torch.utils.data import Subset

from pidkit.errors import PIDValueError
from pidkit_distill import data, models
from pidkit_distill.train import (
    Trainer,
    distill,
    learning_rate,
    load_checkpoint,
    phase_of_epoch,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def _small(ds, n=128):
    return Subset(ds, list(range(n)))


def test_schedule_cifar10_and_cifar100_settings():
    # CIFAR-10: n_w = 30, q = 30, r = 1/4 -> r q = 7.5: epochs with i mod 30 in 0..7 are phase 1
    phases = [phase_of_epoch(i, 30, 30, 0.25) for i in range(90)]
    assert phases[:30] == ["warmup"] * 30
    assert phases[30:38] == ["teacher"] * 8
    assert phases[38:60] == ["student"] * 22
    assert phases[60:68] == ["teacher"] * 8 and phases[68] == "student"
    # CIFAR-100: n_w = q = 5, r = 1/5 -> one teacher epoch then four student epochs
    assert [phase_of_epoch(i, 5, 5, 0.2) for i in range(15)] == (
        ["warmup"] * 5 + ["teacher"] + ["student"] * 4 + ["teacher"] + ["student"] * 4)
    # warm-up that is not a multiple of q: the cycle position is the absolute epoch mod q
    assert [phase_of_epoch(i, 3, 4, 0.5) for i in range(8)] == (
        ["warmup"] * 3 + ["student", "teacher", "teacher", "student", "student"])


def test_learning_rate_schedules():
    assert [learning_rate(e, 0.05, "multistep", (150, 200), 0.2) for e in (0, 149, 150, 200)] \
        == pytest.approx([0.05, 0.05, 0.01, 0.002])
    assert learning_rate(5, 0.1, "cosine", epochs=10) == pytest.approx(0.05)
    assert learning_rate(7, 0.1, "constant") == 0.1


def _rid_trainer(digits, **kw):
    train, test = digits
    torch.manual_seed(0)
    teacher = models.get_model("digits_cnn", width=6)
    student = models.get_model("digits_cnn", width=3)
    opts = dict(method="rid", epochs=4, warmup=1, cycle=2, ratio=0.5, batch_size=32,
                progress=False, lr=0.02, seed=3)
    opts.update(kw)
    return Trainer(teacher, student, _small(train), val_data=_small(test, 64), **opts)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


def test_phase_parameters_receive_gradients_and_change(digits):
    trainer = _rid_trainer(digits)
    loss = trainer.loss_fn
    teacher_side = {n for n, _ in loss.named_parameters()
                    if ".teacher_filter." in n or ".head." in n}
    student_side = {n for n, _ in loss.named_parameters()
                    if ".student_filter." in n or n.endswith("raw_sigma")}
    assert teacher_side and student_side and teacher_side | student_side == {
        n for n, _ in loss.named_parameters()}
    x, y = next(iter(trainer.loader))
    for phase, trained in (("teacher", teacher_side), ("student", student_side)):
        trainer.student.zero_grad(set_to_none=True)
        loss.zero_grad(set_to_none=True)
        trainer.student.train(phase == "student")
        loss.set_phase(phase)
        batch = trainer._forward(x, y, phase)
        value = (loss.student_loss(batch)[0] if phase == "student"
                 else loss.teacher_loss(batch, distill=True)[0])
        value.backward()
        with_grad = {n for n, p in loss.named_parameters()
                     if p.grad is not None and p.grad.abs().sum() > 0}
        assert with_grad == trained, phase
        student_grads = [p.grad is not None for p in trainer.student.parameters()]
        assert all(student_grads) if phase == "student" else not any(student_grads)
        assert all(p.grad is None for p in trainer.teacher.parameters())
    # whole epochs: epoch 0 warm-up, 1 student, 2 teacher (cycle 2, ratio 0.5)
    expected = {0: ("warmup", {n for n in teacher_side}, False),
                1: ("student", student_side, True),
                2: ("teacher", teacher_side, False)}
    teacher_before = _snapshot(trainer.teacher)
    for epoch, (phase, trained, student_moves) in expected.items():
        loss_before, student_before = _snapshot(loss), _snapshot(trainer.student)
        metrics = trainer.train_epoch(epoch)
        assert metrics["phase"] == phase
        assert _changed(loss_before, loss) == trained, phase
        moved = _changed(student_before, trainer.student)
        assert moved == (set(student_before) if student_moves else set()), phase
    assert not _changed(teacher_before, trainer.teacher)


def test_history_phases_lr_metric_files_and_callbacks(digits, tmp_path):
    seen = []

    class Recorder:
        def on_epoch_end(self, trainer, epoch, metrics):
            metrics["custom"] = 10 * epoch
            seen.append((epoch, metrics["phase"]))

    trainer = _rid_trainer(digits, epochs=5, milestones=(3,), gamma=0.5, teacher_lr=0.01,
                           out_dir=str(tmp_path))
    trainer.callbacks.append(Recorder())
    history = trainer.fit()
    assert seen == [(0, "warmup"), (1, "student"), (2, "teacher"), (3, "student"),
                    (4, "teacher")]
    # lr logged is the one of the phase's optimizer, following its own base lr and milestones
    assert [h["lr"] for h in history] == pytest.approx([0.01, 0.02, 0.01, 0.01, 0.005])
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(5))
    assert [float(r["custom"]) for r in rows] == [0, 10, 20, 30, 40]
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored[-1]["val_acc"] == pytest.approx(history[-1]["val_acc"])
    assert 0.0 <= history[-1]["val_acc"] <= 1.0 and "val_head_acc" in history[-1]


def test_resume_after_checkpoint_equals_uninterrupted_run(digits, tmp_path):
    full = _rid_trainer(digits, epochs=5)
    full.fit()

    class StopAfter:
        def on_epoch_end(self, trainer, epoch, metrics):
            trainer.stop = epoch == 2

    first = _rid_trainer(digits, epochs=5, out_dir=str(tmp_path))
    first.callbacks.append(StopAfter())
    first.fit()
    assert first.epoch == 3
    torch.manual_seed(12345)  # a different global RNG state must not matter after resume
    resumed = _rid_trainer(digits, epochs=5)
    resumed.fit(resume=tmp_path / "checkpoint.pt")
    for a, b in ((full.student, resumed.student), (full.loss_fn, resumed.loss_fn)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert [h["phase"] for h in resumed.history] == [h["phase"] for h in full.history]
    assert resumed.history[-1]["train_loss"] == full.history[-1]["train_loss"]


class Payload:
    """Any non-tensor object: a pickle of it carries code references."""

    def __reduce__(self):
        return (print, ("this should never run",))


def test_checkpoint_loading_refuses_pickled_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "pidkit_distill.checkpoint/1", "student": Payload()}, path)
    with pytest.raises(PIDValueError, match="checkpoint"):
        load_checkpoint(path)
    assert "never run" not in capsys.readouterr().out
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(2)}, plain)
    with pytest.raises(PIDValueError, match="not a pidkit_distill checkpoint"):
        load_checkpoint(plain)


def test_config_errors(digits):
    train, _ = digits
    student = models.get_model("digits_mlp", hidden=(4,))
    with pytest.raises(PIDValueError, match="unknown options"):
        Trainer(None, student, train, method="none", epoch=3)
    with pytest.raises(PIDValueError, match="needs a teacher"):
        Trainer(None, student, train, method="kd")
    with pytest.raises(PIDValueError, match="ratio"):
        Trainer(None, student, train, method="none", ratio=2.0)


def test_baselines_by_name_train_one_epoch(digits):
    train, test = digits
    torch.manual_seed(0)
    teacher = models.get_model("digits_cnn", width=4)
    for method in ("none", "kd", "fitnets", "vid", "ted", "rid"):
        student = models.get_model("digits_cnn", width=2)
        before = _snapshot(student)
        res = distill(teacher, student, _small(train, 64), method=method, epochs=1,
                      batch_size=32, progress=False, val_data=_small(test, 32))
        assert res.trainer.loss_fn.two_phase == (method == "rid")
        # RID's first epoch is phase 1 (cycle 1, ratio 0 -> student); others train the student
        assert _changed(before, student) == set(before), method
        assert res.final["phase"] == "student"


def test_amp_bfloat16_on_cpu_trains(digits):
    train, test = digits
    torch.manual_seed(0)
    student = models.get_model("digits_mlp", hidden=(32,))
    res = distill(None, student, train, method="none", epochs=3, batch_size=32, lr=0.05,
                  amp=True, progress=False, val_data=test)
    assert res.final["val_acc"] > 0.8


def test_evaluate_restores_every_submodules_own_mode(digits):
    # a student whose BatchNorm is frozen (eval) inside a module in training mode, as when a
    # user fine-tunes around a frozen block: evaluation must not switch that BatchNorm back to
    # training (batch statistics, running-statistics updates) afterwards
    train, test = digits
    torch.manual_seed(0)
    student = models.get_model("digits_cnn", width=3)
    student.layer1[1].eval()
    trainer = Trainer(None, student, _small(train), val_data=_small(test, 64), method="none",
                      epochs=1, batch_size=32, progress=False, seed=0)
    running = student.layer1[1].running_mean.clone()
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["val_acc"] <= 1.0 and metrics["val_loss"] > 0
    assert student.training and not student.layer1[1].training
    assert student.layer2[1].training
    assert torch.equal(student.layer1[1].running_mean, running)
