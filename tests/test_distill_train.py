"""The trainer: Algorithm 1's schedule, which parameters each phase trains, learning-rate
schedules, exact resume from checkpoints, safe checkpoint loading, callbacks and metric files,
and a short digits run with a trained teacher."""

import csv
import json
import warnings

import pytest
import torch
from torch.utils.data import Subset

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import data, models
from pidkit_distill.schedule import (
    learning_rate,
    phase_of_epoch,
    resolve_schedule,
    teacher_epochs_per_cycle,
)
from pidkit_distill.train import Trainer, distill, load_checkpoint

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
    # warm-up that is not a multiple of q: cycles start when the warm-up ends
    assert [phase_of_epoch(i, 3, 4, 0.5) for i in range(8)] == (
        ["warmup"] * 3 + ["teacher", "teacher", "student", "student", "teacher"])


def test_teacher_epochs_per_cycle_is_exact():
    # 0.07 * 100 = 7.000000000000001 in floating point: a float comparison gives 8 epochs
    assert teacher_epochs_per_cycle(100, 0.07) == 7
    assert [phase_of_epoch(i, 0, 100, 0.07) for i in range(100)].count("teacher") == 7
    assert teacher_epochs_per_cycle(30, 0.25) == 8          # r q = 7.5: ceil, as i mod q < r q
    assert teacher_epochs_per_cycle(10, 0.3) == 3 and teacher_epochs_per_cycle(3, 0.1) == 1
    assert teacher_epochs_per_cycle(7, 0.0) == 0 and teacher_epochs_per_cycle(7, 1.0) == 7


@pytest.mark.parametrize("epochs", [2, 3, 4, 7, 10, 25, 60, 300])
def test_automatic_schedule_trains_both_sides(epochs):
    schedule = resolve_schedule(epochs)
    phases = schedule.phases(epochs)
    assert schedule.automatic and schedule.ratio == 0.25
    assert "teacher" in phases and "student" in phases
    first_teacher, first_student = phases.index("teacher"), phases.index("student")
    assert first_teacher < first_student        # filters are fitted before the student follows
    assert phases[:schedule.warmup] == ["warmup"] * schedule.warmup
    # whole cycles follow the warm-up, so the student trains in the last epoch
    assert (epochs - schedule.warmup) % schedule.cycle == 0 and phases[-1] == "student"
    if epochs == 300:
        assert (schedule.warmup, schedule.cycle) == (30, 30)    # the paper's CIFAR-10 setting


@pytest.mark.parametrize("epochs", [5, 11, 15, 33])
def test_automatic_schedule_puts_the_remainder_in_the_warmup(epochs):
    schedule = resolve_schedule(epochs)
    cycle = max(2, round(epochs / 10))
    assert schedule.cycle == cycle
    first = min(cycle, epochs - cycle)
    assert schedule.warmup == first + (epochs - first) % cycle


def test_a_schedule_ending_in_teacher_epochs_warns():
    with pytest.warns(UserWarning, match="ends with 1 teacher-phase epoch.*after epoch 2"):
        schedule = resolve_schedule(4, warmup=1, cycle=2, ratio=0.5)
    assert schedule.phases(4)[-1] == "teacher"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_schedule(300, warmup=30, cycle=30, ratio=0.25)   # the paper's: no warning
        resolve_schedule(5, warmup=1, cycle=2, ratio=0.5)


def test_schedules_that_leave_a_side_untrained_are_refused():
    with pytest.raises(PIDValueError, match="no teacher-phase epoch"):
        resolve_schedule(5, warmup=0, cycle=1, ratio=0.0)   # the old defaults
    with pytest.raises(PIDValueError, match="no teacher-phase epoch"):
        resolve_schedule(3, warmup=3, cycle=2, ratio=0.5)   # warm-up only
    with pytest.raises(PIDValueError, match="no student-phase epoch"):
        resolve_schedule(1)
    with pytest.raises(PIDValueError, match="cycle"):
        resolve_schedule(5, cycle=0)
    with pytest.raises(PIDValueError, match="ratio"):
        resolve_schedule(5, ratio=1.5)


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
    # decay_1d: weight decay moves the filters' biases too (a bias before batch norm gets an
    # exactly-zero gradient), so every parameter of the trained side changes
    trainer = _rid_trainer(digits, decay_1d=True)
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
        value, _, _ = trainer.step_module(x, y, *trainer._teacher_pass(x), phase)
        value.backward()
        with_grad = {n for n, p in loss.named_parameters()
                     if p.grad is not None and p.grad.abs().sum() > 0}
        assert with_grad == trained, phase
        student_grads = [p.grad is not None for p in trainer.student.parameters()]
        assert all(student_grads) if phase == "student" else not any(student_grads)
        assert all(p.grad is None for p in trainer.teacher.parameters())
    # whole epochs: epoch 0 warm-up, 1 teacher, 2 student (cycle 2, ratio 0.5)
    expected = {0: ("warmup", {n for n in teacher_side}, False),
                1: ("teacher", teacher_side, False),
                2: ("student", student_side, True)}
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
    assert seen == [(0, "warmup"), (1, "teacher"), (2, "student"), (3, "teacher"),
                    (4, "student")]
    # lr logged is the one of the phase's optimizer, following its own base lr and milestones
    assert [h["lr"] for h in history] == pytest.approx([0.01, 0.01, 0.02, 0.005, 0.01])
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(5))
    assert [float(r["custom"]) for r in rows] == [0, 10, 20, 30, 40]
    # every saved quantity names its unit: in the CSV header and in the JSON's metadata
    assert "val_loss [nats]" in rows[0] and "val_acc [fraction]" in rows[0]
    assert "time_s [s]" in rows[0]
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["units"]["val_loss"] == "nats" and stored["units"]["train_head_ce"] == "nats"
    assert set(stored["units"]) == set().union(*history) and "train_head_acc" in history[1]
    assert stored["history"][-1]["val_acc"] == pytest.approx(history[-1]["val_acc"])
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


@pytest.mark.parametrize(("options", "stop"), [({}, 1), ({"solve_every": 2}, 0),
                                              ({"optimizer": "adam"}, 1)],
                         ids=["warm-start", "lagged-duals", "adam"])
def test_broja_resume_equals_uninterrupted_run(digits, tmp_path, options, stop):
    """The exact regulariser's solver state (warm start, lagged duals, their step count) is
    in the checkpoint: a resumed run makes the solves, and so the weights, of an uninterrupted
    one (cold solves after a resume moved them by up to 3e-2 with Adam)."""
    train, test = digits

    def trainer(**kw):
        torch.manual_seed(0)
        teacher = models.get_model("digits_cnn", width=6)
        student = models.get_model("digits_cnn", width=3)
        return Trainer(teacher, student, _small(train, 96), val_data=_small(test, 64),
                       method="broja", epochs=4, batch_size=32, progress=False, lr=0.02,
                       seed=3, method_options={"codes": 3, **{k: v for k, v in options.items()
                                                              if k != "optimizer"}},
                       optimizer=options.get("optimizer", "sgd"), **kw)

    full = trainer()
    full.fit()

    class StopAfter:
        def on_epoch_end(self, trainer, epoch, metrics):
            # 3 steps per epoch: after epoch 0 the next step uses the lagged duals
            trainer.stop = epoch == stop

    first = trainer(out_dir=str(tmp_path))
    first.callbacks.append(StopAfter())
    first.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["loss_run_state"]["warm"] is not None
    resumed = trainer()
    resumed.fit(resume=tmp_path / "checkpoint.pt")
    for a, b in ((full.student, resumed.student), (full.loss_fn, resumed.loss_fn)):
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(x, y), k


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
    with pytest.raises(PIDValueError, match="no teacher-phase epoch"):
        Trainer(models.get_model("digits_mlp", hidden=(4,)), student, train, method="rid",
                epochs=4, warmup=0, cycle=1, ratio=0.0)


def test_baselines_by_name_train_one_epoch(digits):
    train, test = digits
    torch.manual_seed(0)
    teacher = models.get_model("digits_cnn", width=4)
    for method in ("none", "kd", "fitnets", "vid", "ted", "rid"):
        student = models.get_model("digits_cnn", width=2)
        before = _snapshot(student)
        epochs = 2 if method == "rid" else 1   # RID's default schedule: teacher, student
        res = distill(teacher, student, _small(train, 64), method=method, epochs=epochs,
                      batch_size=32, progress=False, val_data=_small(test, 32))
        assert res.trainer.loss_fn.two_phase == (method == "rid")
        assert _changed(before, student) == set(before), method
        assert [h["phase"] for h in res.history] == (["teacher", "student"] if method == "rid"
                                                     else ["student"])


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


def test_teacher_side_runs_once_per_batch(digits):
    # the teacher-side filter's batch norm counts the batches it normalised in training mode:
    # one per batch in the warm-up and teacher epochs (the logged head accuracy reuses the
    # loss's logits instead of running f_t a second time)
    trainer = _rid_trainer(digits)
    batches = len(trainer.loader)
    bns = [m for pair in trainer.loss_fn.pairs for m in pair.teacher_filter.modules()
           if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)]
    assert bns
    for epoch in (0, 1):                      # warm-up, teacher
        before = [int(bn.num_batches_tracked) for bn in bns]
        metrics = trainer.train_epoch(epoch)
        assert 0.0 <= metrics["train_head_acc"] <= 1.0
        assert [int(bn.num_batches_tracked) - b for bn, b in zip(bns, before, strict=True)] \
            == [batches] * len(bns)


def test_resuming_with_another_architecture_is_a_typed_error(digits, tmp_path):
    from pidkit.errors import CheckpointError

    trainer = _rid_trainer(digits, epochs=2, warmup=0, cycle=2, ratio=0.5,
                           out_dir=str(tmp_path))
    trainer.fit()
    train, test = digits
    wider = Trainer(trainer.teacher, models.get_model("digits_cnn", width=5), _small(train),
                    method="rid", epochs=3, batch_size=trainer.config.batch_size,
                    seed=trainer.config.seed, progress=False)
    with pytest.raises(CheckpointError, match=r"(?s)checkpoint: its student state .*same student"):
        wider.fit(resume=tmp_path / "checkpoint.pt")


def _mlp_run(tmp_path, **kw):
    """A one-second ``method="none"`` run on 64 digits samples (fixed weights)."""
    train, _ = data.load_digits()
    torch.manual_seed(0)
    student = models.get_model("digits_mlp", hidden=(8,))
    options = {"method": "none", "epochs": 1, "batch_size": 32, "progress": False, "seed": 0,
               **kw}
    return distill(None, student, _small(train, 64), **options)


def test_out_dir_holding_an_earlier_run_is_refused_before_training(tmp_path):
    """distill(..., out_dir=X) run twice replaced the first run's checkpoint.pt and metrics
    files after epoch 0, whereas the CLI refused such an --out; the API now refuses it too,
    before anything is trained, unless the call resumes that run or overwrite=True."""
    import re

    run = tmp_path / "a"
    _mlp_run(tmp_path, out_dir=run)
    files = {name: (run / name).read_bytes()
             for name in ("checkpoint.pt", "metrics.json", "metrics.csv")}
    train, _ = data.load_digits()
    epochs_run = []
    with pytest.raises(PIDValueError, match=re.escape(
            f"out_dir: {run} holds an earlier run (checkpoint.pt, metrics.json, metrics.csv)")
            ) as caught:
        _mlp_run(tmp_path, out_dir=str(run), epochs=2, callbacks=[
            _Epochs(epochs_run)])
    message = str(caught.value)
    assert f"resume='{run / 'checkpoint.pt'}'" in message and "overwrite=True" in message
    assert "another out_dir" in message
    assert epochs_run == []                                      # refused before training
    assert {name: (run / name).read_bytes() for name in files} == files
    # a resume of that run continues it in its folder
    resumed = _mlp_run(tmp_path, out_dir=run, epochs=2, resume=run / "checkpoint.pt")
    assert [h["epoch"] for h in resumed.history] == [0, 1]
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 2
    # so does a trainer that loaded its checkpoint, and a second fit of the same trainer
    trainer = resumed.trainer
    trainer.config.epochs = 3
    trainer.fit()
    assert trainer.epoch == 3
    torch.manual_seed(0)
    again = Trainer(None, models.get_model("digits_mlp", hidden=(8,)), _small(train, 64),
                    method="none", epochs=4, batch_size=32, progress=False, out_dir=run)
    again.load_checkpoint(run / "checkpoint.pt")
    again.fit()
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 4
    # a checkpoint of another folder does not continue this one
    other = tmp_path / "b"
    _mlp_run(tmp_path, out_dir=other)
    with pytest.raises(PIDValueError, match=r"^out_dir: .* holds an earlier run .*"
                                            r"continues a checkpoint of another folder"):
        _mlp_run(tmp_path, out_dir=run, epochs=2, resume=other / "checkpoint.pt")
    # overwrite=True starts afresh there
    fresh = _mlp_run(tmp_path, out_dir=run, overwrite=True)
    assert [h["epoch"] for h in json.loads((run / "metrics.json").read_text())["history"]] \
        == [0] == [h["epoch"] for h in fresh.history]
    # metrics files alone (checkpoint_every=0) are a run too; there is nothing to resume
    metrics_only = tmp_path / "c"
    _mlp_run(tmp_path, out_dir=metrics_only, checkpoint_every=0)
    with pytest.raises(PIDValueError, match=r"^out_dir: .* \(metrics\.json, metrics\.csv\), "
                                            r"[^.]*\. Pass overwrite=True to replace it or "
                                            r"write to another out_dir$"):
        _mlp_run(tmp_path, out_dir=metrics_only)
    # an empty folder, or one holding other files, is not an earlier run
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    _mlp_run(tmp_path, out_dir=tmp_path / "d")
    with pytest.raises(PIDTypeError, match="^overwrite: must be True or False"):
        _mlp_run(tmp_path, out_dir=run, overwrite="yes")


class _Epochs:
    def __init__(self, seen):
        self.seen = seen

    def on_epoch_end(self, trainer, epoch, metrics):
        self.seen.append(epoch)
