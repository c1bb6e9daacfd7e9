"""pidkit_distill with other people's models and data: DataLoaders, iterable data sets, mapping
batches, models that return tuples or mappings, tiny data sets, optimizer and scheduler
factories, parameter groups, the user's RNG, and a ResNet-style pair trained with RID's
defaults and audited. (The custom training loop is tested with the docs that show it.)"""

import copy
import functools
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import pidkit_distill as pd
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill.optim import param_groups

torch.set_num_threads(1)


def _blobs(n, seed=0, dim=12, classes=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(0))
    return TensorDataset(centers[y] + 0.7 * torch.randn(n, dim, generator=g), y)


class MLP(nn.Module):
    """Two hidden layers named ``body`` and ``mid``; optional batch norm; output kind chosen."""

    def __init__(self, hidden=16, dim=12, classes=3, bn=False, output="tensor", seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Linear(dim, hidden), *( [nn.BatchNorm1d(hidden)] if bn
                                                            else []), nn.ReLU())
        self.mid = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, classes)
        self.output = output

    def forward(self, x):
        logits = self.fc(self.mid(self.body(x)))
        if self.output == "tuple":
            return logits, self.mid[0].weight.sum()
        if self.output == "dict":
            return {"aux": logits.mean(), "logits": logits}
        return logits


LAYERS = [("mid", "mid")]


class DictData(Dataset):
    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return {"image": x, "label": y, "index": i}


class Stream(IterableDataset):
    def __init__(self, base):
        self.base = base

    def __iter__(self):
        return iter(self.base)


def _train(train, **kw):
    opts = dict(method="vid", epochs=1, batch_size=16, progress=False, layers=LAYERS, lr=0.01)
    opts.update(kw)
    teacher = opts.pop("teacher") if "teacher" in opts else MLP(24, seed=1)
    student = opts.pop("student") if "student" in opts else MLP(8, seed=2)
    return pd.distill(teacher, student, train, **opts)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_dataloader_iterable_and_mapping_batches_give_the_same_training():
    base = _blobs(64)
    plain = _train(base, seed=4)
    loader = DataLoader(base, batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    from_loader = _train(loader)
    assert from_loader.trainer.loader is loader            # the user's loader, as it is
    streamed = _train(Stream(base))
    mapped = _train(DictData(base), seed=4)
    keyed = _train(DictData(base), seed=4, input_key="image", label_key="label")
    for run in (from_loader, streamed, mapped, keyed):
        assert math.isfinite(run.final["train_loss"]) and 0.0 <= run.final["train_acc"] <= 1.0
        assert run.trainer.num_classes == 3                   # from the student's logits
    # same data order (seeded sampler) and same loss initialisation: identical updates
    for a, b in zip(plain.student.parameters(), mapped.student.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(plain.student.parameters(), keyed.student.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("output", ["tuple", "dict"])
def test_models_returning_tuples_or_mappings(output):
    base = _blobs(48)
    ref = _train(base, seed=1, method="kd", val_data=base)
    run = _train(base, seed=1, method="kd", val_data=base, teacher=MLP(24, seed=1,
                                                                        output=output),
                 student=MLP(8, seed=2, output=output))
    assert run.final["val_acc"] == ref.final["val_acc"]
    assert run.final["train_loss"] == pytest.approx(ref.final["train_loss"], rel=1e-6)
    picked = _train(base, seed=1, method="kd", teacher=MLP(24, seed=1, output="dict"),
                    student=MLP(8, seed=2, output="dict"), output_key=lambda out: out["logits"])
    assert picked.final["train_loss"] == pytest.approx(ref.final["train_loss"], rel=1e-6)


def test_batch_and_output_selection_errors_are_typed_and_name_the_argument():
    base = _blobs(32)
    with pytest.raises(PIDValueError, match="label_key"):
        _train(DictData(base), label_key="target")
    with pytest.raises(PIDValueError, match="output_key"):
        _train(base, student=MLP(8, output="dict"), output_key="scores")
    with pytest.raises(PIDTypeError, match="output_key"):
        _train(base, student=MLP(8, output="tuple"), output_key=1)   # selects a scalar
    with pytest.raises(PIDTypeError, match="train_data"):
        _train(42)


def test_empty_tiny_and_one_sample_last_batch():
    with pytest.raises(PIDValueError, match="train_data.*empty"):
        _train(_blobs(0))
    with pytest.raises(PIDValueError, match="one sample"):
        _train(_blobs(1), student=MLP(8, bn=True, seed=2))
    one = _train(_blobs(1), student=MLP(8, seed=2))           # no batch norm: one sample trains
    assert one.final["train_acc"] in (0.0, 1.0)
    # 33 samples with batch 16: a last batch of one sample would crash batch norm
    with pytest.warns(UserWarning, match="one sample"):
        run = _train(_blobs(33), student=MLP(8, bn=True, seed=2), method="rid", epochs=2)
    assert [h["phase"] for h in run.history] == ["teacher", "student"]
    loader = DataLoader(_blobs(33), batch_size=16)
    with pytest.raises(PIDValueError, match="drop_last=True"):
        _train(loader, student=MLP(8, bn=True, seed=2))
    _train(DataLoader(_blobs(33), batch_size=16, drop_last=True), student=MLP(8, bn=True))


def test_parameter_groups_leave_biases_norms_and_sigma_undecayed():
    trainer = _train(_blobs(32), method="rid", epochs=2, weight_decay=0.1,
                     student=MLP(8, bn=True)).trainer
    for optimizer in (trainer.student_optimizer, trainer.teacher_optimizer):
        for group in optimizer.param_groups:
            dims = {p.dim() for p in group["params"]}
            if group["name"].endswith("_no_decay"):
                assert group["weight_decay"] == 0.0 and dims <= {0, 1}
            else:
                assert group["weight_decay"] == 0.1 and min(dims) >= 2
    sigmas = {id(pair.raw_sigma) for pair in trainer.loss_fn.pairs}
    no_decay = {id(p) for g in trainer.student_optimizer.param_groups if g["weight_decay"] == 0
                for p in g["params"]}
    assert sigmas <= no_decay
    every = [p for g in param_groups([("a", trainer.student.parameters())], 0.1, decay_1d=True)
             for p in g["params"]]
    assert len(every) == len(list(trainer.student.parameters()))


def test_optimizer_and_scheduler_factories_per_phase():
    seen = []

    def adamw(groups):
        seen.append([g["name"] for g in groups])
        return torch.optim.AdamW(groups, lr=1e-3)

    step = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    run = _train(_blobs(32), method="rid", epochs=4, warmup=0, cycle=2, ratio=0.5,
                 optimizer=adamw, teacher_optimizer=torch.optim.Adam, lr=0.02, scheduler=step)
    trainer = run.trainer
    assert isinstance(trainer.student_optimizer, torch.optim.AdamW)
    assert type(trainer.teacher_optimizer) is torch.optim.Adam
    assert seen == [["student", "student_no_decay", "loss", "loss_no_decay"]]
    # each phase's scheduler steps after each of that phase's epochs: teacher (Adam, lr from
    # the config) 0.02 then 0.01, student (AdamW, lr from the factory) 1e-3 then 5e-4
    assert [h["lr"] for h in run.history] == pytest.approx([0.02, 1e-3, 0.01, 5e-4])
    with pytest.raises(PIDValueError, match="optimizer"):
        _train(_blobs(32), optimizer="lbfgs-ish")
    with pytest.raises(PIDTypeError, match="optimizer"):
        _train(_blobs(32), optimizer=lambda groups: "not an optimizer")


def test_the_users_global_rng_is_left_alone():
    runs = []
    for global_seed in (123, 999):
        models = {"teacher": MLP(24, seed=1), "student": MLP(8, seed=2)}
        torch.manual_seed(global_seed)
        before = torch.random.get_rng_state()
        runs.append(_train(_blobs(40), method="rid", epochs=3, val_data=_blobs(20, 1),
                           **models))
        assert torch.equal(torch.random.get_rng_state(), before)
    # the run is reproducible from its own seed, whatever the global RNG holds
    assert runs[0].final["train_loss"] == runs[1].final["train_loss"]


# --------------------------------------------------------------------------- ResNet-style
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                    nn.BatchNorm2d(cout)) if stride != 1 or cin != cout
                      else nn.Identity())

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class TinyResNet(nn.Module):
    """torchvision's ResNet layout (conv1/bn1, layer1..layer4, avgpool, fc), small widths."""

    def __init__(self, width, blocks, classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            layers.append(nn.Sequential(*[Block(cin if j == 0 else cout, cout,
                                                2 if (i and j == 0) else 1) for j in range(n)]))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_resnet_style_pair_with_a_dataloader_rid_defaults_and_an_audit():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(96) % 4
    x = torch.randn(96, 3, 16, 16, generator=g) + y.view(-1, 1, 1, 1).float() * 0.5
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    teacher, student = TinyResNet(8, (2, 2, 2, 2)), TinyResNet(4, (1, 1, 1, 1))
    layers = [("layer3", "layer3"), ("layer4", "layer4")]
    trainer = pd.Trainer(teacher, student, loader, layers=layers, method="rid", epochs=4,
                         progress=False)
    assert trainer.schedule.automatic
    assert [trainer.phase_of(e) for e in range(4)] == ["warmup", "warmup", "teacher", "student"]
    filters = copy.deepcopy([pair.teacher_filter for pair in trainer.loss_fn.pairs])
    history = trainer.fit()
    assert [h["phase"] for h in history] == ["warmup", "warmup", "teacher", "student"]
    for before, pair in zip(filters, trainer.loss_fn.pairs, strict=True):
        assert any(not torch.equal(a, b) for a, b in zip(before.parameters(),
                                                         pair.teacher_filter.parameters(),
                                                         strict=True))
    report = pd.audit(teacher, trainer.student, loader, layers=[("layer4", "layer4")], ci=None,
                      estimator="gaussian")
    values = report.pairs[0].values
    assert report.n_samples == 96
    assert 0.0 <= values["redundancy"] <= min(values["mi_teacher"], values["mi_student"]) + 1e-9


def test_trainer_names_the_model_and_the_closest_layers_in_errors():
    with pytest.raises(PIDValueError, match=r"(?s)layers.*student.*'mid'"):
        _train(_blobs(32), layers=[("mid", "midd")])
    with pytest.raises(PIDValueError, match=r"(?s)layers.*teacher.*'body'"):
        _train(_blobs(32), layers=[("bdy", "mid")])
    with torch.device("meta"):
        ghost = MLP(8, seed=2)
    with pytest.raises(PIDValueError, match="student"):
        _train(_blobs(32), student=ghost)


def test_sync_batchnorm_needs_cuda():
    with pytest.raises(PIDValueError, match="sync_batchnorm"):
        _train(_blobs(32), sync_batchnorm=True)


def test_reduce_lr_on_plateau_is_stepped_with_the_monitored_epoch_metric():
    # ReduceLROnPlateau.step needs a metric: it was called as sched.step() after the first
    # epoch's training (TypeError: missing 'metrics'); now it watches scheduler_monitor
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.5,
                                patience=0)
    scores = iter([3.0, 2.0, 2.5, 2.6, 1.0])

    def score(trainer, epoch, metrics):
        metrics["score"] = next(scores)

    run = _train(_blobs(32), method="kd", layers=None, epochs=5, scheduler=plateau, lr=0.02,
                 scheduler_monitor="score", callbacks=[pd.LambdaCallback(score)])
    # no improvement after epochs 2 and 3 halves the rate used from epochs 3 and 4 on
    assert [h["lr"] for h in run.history] == pytest.approx([0.02, 0.02, 0.02, 0.01, 0.005])
    # default: val_loss with val_data, else train_loss (both present, so training runs)
    for val in (None, _blobs(16, 1)):
        run = _train(_blobs(32), method="kd", layers=None, epochs=2, scheduler=plateau,
                     val_data=val)
        assert len(run.history) == 2
    with pytest.raises(PIDValueError, match="scheduler_monitor.*'val_acc'"):
        _train(_blobs(32), method="kd", layers=None, epochs=1, scheduler=plateau,
               scheduler_monitor="val_acc")
    with pytest.raises(PIDValueError, match="scheduler_interval.*ReduceLROnPlateau"):
        _train(_blobs(32), method="kd", layers=None, scheduler=plateau, scheduler_interval="step")
    # resumed runs continue the plateau scheduler's state (best value, bad epochs)
    trainer = _train(_blobs(32), method="kd", layers=None, epochs=2, scheduler=plateau).trainer
    assert trainer.state_dict()["student_scheduler"]["best"] == pytest.approx(
        min(h["train_loss"] for h in trainer.history))


def test_an_optimizer_factorys_own_weight_decay_is_applied():
    # the parameter groups carried the config's weight_decay (5e-4), which overrides an
    # optimizer's default: partial(AdamW, weight_decay=0.05) silently trained with 5e-4
    def decays(run):
        return {g["name"]: g["weight_decay"] for g in run.trainer.student_optimizer.param_groups}

    adamw = functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05)
    assert decays(_train(_blobs(32), optimizer=adamw)) == {
        "student": 0.05, "student_no_decay": 0.0, "loss": 0.05, "loss_no_decay": 0.0}
    run = _train(_blobs(32), optimizer=lambda groups: torch.optim.SGD(groups, lr=0.01,
                                                                       weight_decay=1e-2))
    assert decays(run)["student"] == 1e-2 and decays(run)["student_no_decay"] == 0.0
    # a factory that sets no decay keeps the config's; one that changes a group keeps it
    run = _train(_blobs(32), optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
                 weight_decay=1e-3)
    assert decays(run)["student"] == 1e-3

    def per_group(groups):
        for g in groups:
            if g["name"] == "loss":
                g["weight_decay"] = 0.2
        return torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.05)

    assert decays(_train(_blobs(32), optimizer=per_group))["loss"] == 0.2
    # the teacher-phase optimizer alike
    trainer = pd.Trainer(MLP(24, seed=1), MLP(8, seed=2), _blobs(32), method="rid",
                         layers=LAYERS, progress=False, teacher_optimizer=adamw)
    assert {g["name"]: g["weight_decay"] for g in trainer.teacher_optimizer.param_groups} \
        == {"loss_teacher_side": 0.05, "loss_teacher_side_no_decay": 0.0}


def test_audit_callback_metrics_carry_their_unit(tmp_path):
    # the callback's audit_* metrics were listed as "dimensionless" in metrics.json and had no
    # unit in the CSV header, whereas they are in bits (in nats with base=e)
    import json

    for base, unit in ((2, "bits"), (math.e, "nats")):
        out = tmp_path / unit
        cb = pd.AuditCallback(_blobs(60, 1), n_boot=0, n_perm=5, base=base,
                              estimator_options={"n_clusters": 3, "n_components": 2})
        run = _train(_blobs(32), epochs=1, out_dir=str(out), callbacks=[cb])
        assert run.trainer.units()["audit_redundancy"] == unit
        units = json.loads((out / "metrics.json").read_text())["units"]
        assert units["audit_mi_student"] == units["audit_redundancy_chance"] == unit
        assert f"audit_redundancy [{unit}]" in (out / "metrics.csv").read_text()
    # a resumed run without the callback keeps the units of the rows it continues
    run = _train(_blobs(32), epochs=2, resume=str(tmp_path / "bits" / "checkpoint.pt"))
    assert run.trainer.units()["audit_unique_teacher"] == "bits"


def test_a_plateau_on_audit_metrics_it_will_not_have_is_refused_before_training():
    # with every=2 the first epoch not audited stopped the run after training it ('audit_...
    # is not a metric of epoch 0'); with add_metrics=False every epoch did
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    calls = []

    def count(trainer, epoch, metrics):
        calls.append(epoch)

    for options, message in (({"every": 2}, r"only every 2 epochs"),
                             ({"add_metrics": False}, r"adds no metrics")):
        cb = pd.AuditCallback(_blobs(60, 1), n_boot=0, n_perm=0, **options)
        with pytest.raises(PIDValueError, match=r"^scheduler_monitor: is 'audit_redundancy'"
                                                rf".*{message}"):
            _train(_blobs(32), epochs=2, scheduler=plateau, scheduler_monitor="audit_redundancy",
                   callbacks=[cb, pd.LambdaCallback(count)])
    assert calls == []                  # refused before the first epoch
    # every=1 watches it in every epoch
    cb = pd.AuditCallback(_blobs(60, 1), n_boot=0, n_perm=0,
                          estimator_options={"n_clusters": 3, "n_components": 2})
    run = _train(_blobs(32), epochs=2, scheduler=plateau, scheduler_monitor="audit_redundancy",
                 callbacks=[cb])
    assert all("audit_redundancy" in h for h in run.history)


def test_metrics_files_survive_a_write_cut_short(tmp_path, monkeypatch):
    # metrics.csv was opened with "w" (truncated) and written row by row, metrics.json written
    # in place: a full disk during epoch 1's write destroyed epoch 0's files
    import csv
    import errno
    import json

    import pidkit_distill.train as train_module

    def disk_full(epoch):
        class Full:     # opening for writing truncates the file, then no byte fits
            def __init__(self, path, mode="r", *args, **kwargs):
                with open(path, mode, *args, **kwargs):
                    pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device")

        if epoch == 1:     # after epoch 0's files were written whole
            monkeypatch.setattr(train_module, "open", Full, raising=False)
            monkeypatch.setattr(type(tmp_path), "write_text",
                                lambda path, text, *a, **k: Full(path, "w").write(text))

    with pytest.raises(OSError, match="No space left"):
        _train(_blobs(32), epochs=2, out_dir=str(tmp_path),
               callbacks=[pd.LambdaCallback(lambda trainer, epoch, metrics: disk_full(epoch))])
    monkeypatch.undo()
    assert [h["epoch"] for h in json.loads((tmp_path / "metrics.json").read_text())["history"]] \
        == [0]
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.csv",
                                                          "metrics.json"]


def test_audit_callback_curves_continue_after_a_resume(tmp_path):
    """A run resumed into its folder rewrote <method>_curves.json with the audits after the
    resume only (epochs [2] instead of [0, 1, 2]): the callback now continues the curves."""
    import json

    def callback():
        return pd.AuditCallback(_blobs(60, 1), n_boot=0, n_perm=0, out_dir=tmp_path,
                                estimator_options={"n_clusters": 3, "n_components": 2})

    _train(_blobs(32), epochs=2, out_dir=str(tmp_path), callbacks=[callback()])
    _train(_blobs(32), epochs=3, out_dir=str(tmp_path), callbacks=[callback()],
           resume=str(tmp_path / "checkpoint.pt"))
    assert json.loads((tmp_path / "vid_curves.json").read_text())["epochs"] == [0, 1, 2]



def test_audit_callback_refuses_to_replace_an_earlier_runs_curves(tmp_path):
    """Two fresh runs with the same AuditCallback(out_dir=...) and no trainer out_dir: the
    second replaced the first run's <method>_curves.* silently at its first audit. It is now
    refused before training, unless the run is told overwrite=True (or resumes)."""
    import json

    curves = tmp_path / "curves"

    def callback():
        return pd.AuditCallback(_blobs(60, 1), n_boot=0, n_perm=0, out_dir=curves,
                                estimator_options={"n_clusters": 3, "n_components": 2})

    _train(_blobs(32), epochs=2, callbacks=[callback()])
    first = (curves / "vid_curves.json").read_text()
    with pytest.raises(PIDValueError, match=r"^out_dir: .*curves holds the curves of an "
                                            r"earlier run \(vid_curves\.json\)"):
        _train(_blobs(32), epochs=1, callbacks=[callback()])
    assert (curves / "vid_curves.json").read_text() == first       # nothing replaced
    _train(_blobs(32), epochs=1, callbacks=[callback()], overwrite=True)
    assert json.loads((curves / "vid_curves.json").read_text())["epochs"] == [0]
