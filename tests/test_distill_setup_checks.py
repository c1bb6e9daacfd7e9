"""The Trainer's set-up checks: labels, dtypes and devices, training options, models, layers,
method options, resuming, unlabelled data, and the phase schedule's arguments. Each mistake is
a typed error naming the argument before any training step (or, for data without a label,
at the end of the epoch that shows it), never a torch error from inside a step."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import IterableDataset, TensorDataset

import pidkit_distill as pd
from pidkit.errors import CheckpointError, PIDTypeError, PIDValueError
from pidkit_distill.losses import UNLABELLED
from pidkit_distill.schedule import phase_of_epoch

torch.set_num_threads(1)

K = 4


class MLP(nn.Module):
    """``fc1 -> [bn] -> relu -> fc2 -> relu -> head``; features at ``fc1`` and ``fc2``."""

    def __init__(self, hidden=12, dim=10, classes=K, bn=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = nn.Linear(dim, hidden)
        self.bn = nn.BatchNorm1d(hidden) if bn else nn.Identity()
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)
        self.feature_layers = ("fc1", "fc2")

    def forward(self, x):
        h = torch.relu(self.fc2(torch.relu(self.bn(self.fc1(x)))))
        return self.head(h)


def _xy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    x = torch.randn(K, 10, generator=g)[y] * 2 + torch.randn(n, 10, generator=g)
    return x, y


def _data(n=64, seed=0, labels=None):
    x, y = _xy(n, seed)
    return TensorDataset(x, y if labels is None else labels(y))


KW = dict(epochs=1, batch_size=16, progress=False)


# ----------------------------------------------------------------------------- 1. labels
@pytest.mark.parametrize(("labels", "kind", "fix"), [
    (lambda y: y.float() + 0.5, PIDValueError, r"an integer cast would truncate these"),
    (lambda y: torch.where(y == 1, math.nan, y.float()), PIDValueError, r"truncate"),
    (lambda y: y > 1, PIDTypeError, r"y\.long\(\)"),
    (lambda y: nn.functional.one_hot(y, K).float(), PIDValueError, r"y\.argmax\(1\)"),
    (lambda y: nn.functional.one_hot(y, K), PIDValueError, r"y\.argmax\(1\)"),
    (lambda y: y[:, None], PIDValueError, r"y\.squeeze\(1\)"),
], ids=["fractional-float", "nan-float", "bool", "one-hot-float", "one-hot-int", "column"])
@pytest.mark.parametrize("method", ["none", "kd", "pid"])
def test_labels_of_the_wrong_kind_are_refused_before_training(labels, kind, fix, method):
    student = MLP(hidden=8)
    before = copy.deepcopy(student.state_dict())
    teacher = None if method == "none" else MLP(seed=1)
    with pytest.raises(kind, match=rf"^train_data: holds labels .*{fix}"):
        pd.distill(teacher, student, _data(labels=labels), method=method, **KW)
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())


@pytest.mark.parametrize("bad", [K, -2])
def test_labels_outside_the_classes_are_refused(bad):
    labels = lambda y: torch.where(y == K - 1, torch.tensor(bad), y)  # noqa: E731
    with pytest.raises(PIDValueError, match=rf"train_data: yields labels \[{bad}\] outside "
                                            rf"the {K} classes"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(labels=labels), method="kd", **KW)
    with pytest.raises(PIDValueError, match=rf"val_data: yields labels \[{bad}\]"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), val_data=_data(labels=labels),
                   method="kd", **KW)


def test_fractional_float_validation_labels_are_refused():
    with pytest.raises(PIDValueError, match=r"^val_data: holds labels that are not whole numbers "
                                            r"\(float values such as \[0\.5, 1\.5, 2\.5\]\)"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(),
                   val_data=_data(labels=lambda y: y.float() + 0.5), method="kd", **KW)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8, torch.float32,
                                   torch.float64])
def test_narrow_integer_labels_train_exactly_as_int64(dtype):
    """So do float labels that are all whole numbers (the rule of pidkit_distill.labels, as in
    pidkit's estimators): converted exactly."""
    runs = []
    for labels in (None, lambda y: y.to(dtype)):
        student = MLP(hidden=8)
        result = pd.distill(MLP(seed=1), student, _data(labels=labels), method="kd",
                            val_data=_data(32, seed=1, labels=labels), epochs=2,
                            batch_size=16, progress=False)
        runs.append((student.state_dict(), result.final))
    (a, fa), (b, fb) = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert fa["val_acc"] == fb["val_acc"] and fa["train_loss"] == fb["train_loss"]


@pytest.mark.parametrize("num_classes", [2, 10])
def test_num_classes_must_match_the_logits(num_classes):
    with pytest.raises(PIDValueError, match=rf"num_classes: is {num_classes} but the "
                                            rf"student's logits have {K} columns"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="pid", num_classes=num_classes,
                   **KW)
    trainer = pd.Trainer(MLP(seed=1), MLP(hidden=8), _data(), method="pid", num_classes=K, **KW)
    assert trainer.num_classes == K


def test_a_student_with_one_logit_is_refused():
    data = TensorDataset(_xy()[0], torch.zeros(64, dtype=torch.long))
    with pytest.raises(PIDValueError, match=r"^student: outputs 1 logit per sample"):
        pd.distill(None, MLP(hidden=8, classes=1), data, method="none", **KW)


# ----------------------------------------------------------------------------- 2. dtypes
@pytest.mark.parametrize("method", ["rid", "pid", "fitnets", "vid", "ted", "broja"])
def test_float64_models_train_in_float64(method):
    x, y = _xy()
    student = MLP(hidden=8).double()
    result = pd.distill(MLP(seed=1).double(), student, TensorDataset(x.double(), y),
                        val_data=TensorDataset(x.double(), y), method=method,
                        epochs=2 if method == "rid" else 1, batch_size=16, progress=False)
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert math.isfinite(result.final["val_loss"])
    assert {p.dtype for p in student.parameters()} == {torch.float64}
    assert {p.dtype for p in result.trainer.loss_fn.parameters()} == {torch.float64}


@pytest.mark.parametrize("method", ["pid", "broja"])
def test_float32_students_keep_the_losses_float64_running_statistics(method):
    """The trainer casts the loss to the student's precision, but not the PID losses' running
    moments / soft counts, which are float64 on purpose."""
    x, y = _xy()
    trainer = pd.Trainer(MLP(seed=1), MLP(hidden=8), TensorDataset(x, y), method=method,
                         epochs=1, batch_size=16, progress=False)
    buffers = {name: b.dtype for name, b in trainer.loss_fn.named_buffers()
               if name.startswith("ema_")}
    assert buffers and set(buffers.values()) == {torch.float64}, buffers
    assert {p.dtype for p in trainer.loss_fn.parameters()} == {torch.float32}
    trainer.fit()
    assert {trainer.loss_fn.get_buffer(name).dtype for name in buffers} == {torch.float64}


def test_a_float64_teacher_teaches_a_float32_student_as_its_float32_copy():
    teacher = MLP(seed=1)
    losses = []
    for t in (teacher.double(), copy.deepcopy(teacher).float()):
        result = pd.distill(t, MLP(hidden=8), _data(), method="kd", **KW)
        losses.append(result.final["train_loss"])
    # the teacher's logits differ by float32 rounding only
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize("method", ["kd", "rid"])
def test_a_bfloat16_copy_of_the_teacher_teaches_within_its_rounding(method):
    """The cheaper live teacher of docs/distill.md: ``teacher.to(torch.bfloat16)`` passed as
    it is. Its logits and features reach the float32 loss rounded to 8 significant bits, so
    the run differs from the float32 teacher's, by about that rounding only."""
    teacher = MLP(seed=1)
    half = copy.deepcopy(teacher).to(torch.bfloat16)
    finals = []
    for t in (half, teacher):
        result = pd.distill(t, MLP(hidden=8), _data(), method=method, epochs=3, batch_size=16,
                            progress=False, layers=None if method == "kd" else [("fc2", "fc2")])
        finals.append(result.final["train_loss"])
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}  # the user's copy is kept
    assert finals[0] != finals[1]  # the bfloat16 teacher was used, not a float32 copy
    assert finals[0] == pytest.approx(finals[1], rel=2 ** -8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_inputs_of_another_dtype_than_the_student_are_a_typed_error(dtype):
    x, y = _xy()
    with pytest.raises(PIDTypeError, match=rf"train_data: yields inputs of dtype {dtype} but "
                                           r"the student's parameters are torch\.float32"):
        pd.distill(MLP(seed=1), MLP(hidden=8), TensorDataset(x.to(dtype), y), method="kd",
                   **KW)


@pytest.mark.parametrize("method", ["pid", "broja"])
def test_mps_refuses_float64_models_and_the_pid_losses_statistics(monkeypatch, method):
    """MPS has no float64: a float64 model (and the PID losses' float64 running statistics)
    is refused naming device, before anything moves there; the trainer's per-epoch sums are
    float32 there (float64 elsewhere). Checked on this machine by letting torch report MPS."""
    from pidkit_distill.losses import make_loss
    from pidkit_distill.train import _check_no_float64, epoch_sum_dtype

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    student = MLP(hidden=8).double()
    with pytest.raises(PIDValueError, match=r"^device: 'mps' has no float64, and the student "
                                            r"holds float64 tensors"):
        pd.distill(MLP(seed=1), student, _data(), method="kd", device="mps", **KW)
    assert {p.device.type for p in student.parameters()} == {"cpu"}
    loss = make_loss(method, [(8,)], [(8,)], K)
    with pytest.raises(PIDValueError, match=rf"^device: 'mps' has no float64, and "
                                            rf"{type(loss).__name__} keeps float64"):
        _check_no_float64(torch.device("mps"), loss=loss)
    _check_no_float64(torch.device("cpu"), loss=loss)               # float64 is fine there
    _check_no_float64(torch.device("mps"), loss=make_loss("rid", [(8,)], [(8,)], K))
    assert epoch_sum_dtype(torch.device("mps")) == torch.float32
    assert epoch_sum_dtype(torch.device("cpu")) == torch.float64


def test_the_meta_device_is_refused():
    with pytest.raises(PIDValueError, match=r"^device: 'meta' holds shapes without data"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd", device="meta", **KW)


# ----------------------------------------------------------------------------- 3. options
@pytest.mark.parametrize(("option", "value", "kind", "message"), [
    ("grad_clip", -1.0, PIDValueError, "must be > 0"),
    ("grad_clip", 0.0, PIDValueError, "must be > 0"),
    ("lr", float("nan"), PIDValueError, "must be > 0"),
    ("lr", -1.0, PIDValueError, "must be > 0"),
    ("lr", "0.1", PIDTypeError, "must be a number"),
    ("teacher_lr", 0.0, PIDValueError, "must be > 0"),
    ("momentum", 2.0, PIDValueError, "must be < 1"),
    ("momentum", -0.1, PIDValueError, "must be >= 0"),
    ("weight_decay", -1.0, PIDValueError, "must be >= 0"),
    ("weight_decay", float("inf"), PIDValueError, "must be >= 0"),
    ("gamma", 0.0, PIDValueError, "must be > 0"),
    ("milestones", ("3",), PIDTypeError, "must be an integer"),
    ("milestones", (-1,), PIDValueError, "must be >= 0"),
    ("milestones", 3, PIDTypeError, "must be a sequence"),
    ("warmup", -1, PIDValueError, "must be >= 0"),
    ("cycle", 0, PIDValueError, "must be >= 1"),
    ("amp", "yes", PIDTypeError, "must be True or False"),
    ("nesterov", 1, PIDTypeError, "must be True or False"),
    ("out_dir", 3, PIDTypeError, "must be a folder path"),
])
def test_every_numeric_option_is_validated(option, value, kind, message):
    with pytest.raises(kind, match=rf"^{option}: {message}"):
        pd.TrainConfig(**{option: value})


def test_valid_edge_options_are_accepted():
    config = pd.TrainConfig(grad_clip=None, momentum=0.0, weight_decay=0.0, teacher_lr=None,
                            milestones=[2, 5])
    assert config.milestones == (2, 5)


# ----------------------------------------------------------------------------- 4. set-up
def test_kd_needs_logits_of_the_same_width():
    with pytest.raises(PIDValueError, match=rf"^teacher: outputs 10 logits per sample but "
                                            rf"the student {K}"):
        pd.distill(MLP(classes=10, seed=1), MLP(hidden=8), _data(), method="kd", **KW)
    # feature methods compare features, not logits: another label space is fine
    result = pd.distill(MLP(classes=10, seed=1), MLP(hidden=8), _data(), method="fitnets", **KW)
    assert math.isfinite(result.final["train_loss"])


class _Stream(IterableDataset):
    def __init__(self, n):
        self.x, self.y = _xy(n)

    def __iter__(self):
        return iter(zip(self.x, self.y, strict=True))


def test_a_single_sample_last_batch_of_an_iterable_data_set_is_dropped_for_batch_norm():
    student = MLP(hidden=8, bn=True)
    with pytest.warns(UserWarning, match="last batch of this epoch holds one sample"):
        result = pd.distill(MLP(seed=1), student, _Stream(33), method="kd", epochs=2,
                            batch_size=16, progress=False)
    # 33 samples in batches of 16: 16, 16 and 1; the batch of one is left out each epoch
    assert int(student.bn.num_batches_tracked) == 2 * 2
    assert len(result.history) == 2


def test_a_one_sample_iterable_data_set_with_batch_norm_is_refused():
    with pytest.raises(PIDValueError, match="train_data: yields a single sample"):
        pd.distill(MLP(seed=1), MLP(hidden=8, bn=True), _Stream(1), method="kd", **KW)


@pytest.mark.parametrize("method", ["fitnets", "pid", "rid", "vid"])
def test_empty_layers_for_a_feature_method_is_a_typed_error(method):
    with pytest.raises(PIDValueError, match=r"^layers: is empty, but .* distils intermediate "
                                            r"features"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method=method, layers=[], **KW)


def test_teacher_and_student_must_be_two_models():
    student = MLP(hidden=8)
    with pytest.raises(PIDValueError, match=r"^teacher: is the student itself"):
        pd.distill(student, student, _data(), method="kd", **KW)
    assert all(p.requires_grad for p in student.parameters())   # not frozen on the way


def test_a_student_without_trainable_parameters_is_refused():
    student = MLP(hidden=8).requires_grad_(False)
    with pytest.raises(PIDValueError, match=r"^student: MLP has no trainable parameter"):
        pd.distill(MLP(seed=1), student, _data(), method="kd", **KW)


def test_a_teacher_that_is_not_a_module_is_refused():
    with pytest.raises(PIDTypeError, match=r"^teacher: is a function, not an nn\.Module"):
        pd.distill(lambda x: x, MLP(hidden=8), _data(), method="kd", **KW)


def test_unknown_method_options_list_the_accepted_ones():
    with pytest.raises(PIDValueError, match=r"^method_options: \['temp'\] are not options of "
                                            r"method 'kd'.*\['alpha', 'temperature'\]"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd",
                   method_options={"temp": 2}, **KW)
    with pytest.raises(PIDValueError, match=r"lambda3.*'lambda1', 'lambda2'"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="rid",
                   method_options={"lambda3": 1.0}, epochs=2, batch_size=16, progress=False)
    with pytest.raises(PIDValueError, match=r"Method 'none' takes no options"):
        pd.distill(None, MLP(hidden=8), _data(), method="none", method_options={"beta": 1},
                   **KW)
    trainer = pd.Trainer(MLP(seed=1), MLP(hidden=8), _data(), method="kd",
                         method_options={"temperature": 2.0}, **KW)
    assert trainer.loss_fn.temperature == 2.0


# ----------------------------------------------------------------------------- 5. resume
@pytest.fixture
def checkpoint(tmp_path):
    pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd", epochs=3, batch_size=16,
               progress=False, out_dir=str(tmp_path))
    return tmp_path / "checkpoint.pt"


def test_resuming_with_another_batch_size_is_refused(checkpoint):
    with pytest.raises(CheckpointError, match=r"^checkpoint: was written with batch_size=16, "
                                              r"this trainer has batch_size=8"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd", epochs=4, batch_size=8,
                   progress=False, resume=checkpoint)
    # refused before anything is loaded: the trainer keeps its own weights
    trainer = pd.Trainer(MLP(seed=1), MLP(hidden=8), _data(), method="kd", epochs=4,
                         batch_size=8, progress=False)
    before = {k: v.clone() for k, v in trainer.student.state_dict().items()}
    with pytest.raises(CheckpointError):
        trainer.load_checkpoint(checkpoint)
    for key, value in trainer.student.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_resuming_with_fewer_epochs_than_done_is_refused(checkpoint):
    with pytest.raises(CheckpointError, match=r"^epochs: is 2 but the checkpoint has already "
                                              r"trained 3 epochs"):
        pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd", epochs=2, batch_size=16,
                   progress=False, resume=checkpoint)
    result = pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd", epochs=4,
                        batch_size=16, progress=False, resume=checkpoint)
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- 6. no labels
def test_metrics_over_no_labelled_sample_are_nan():
    unlabelled = lambda y: torch.full_like(y, UNLABELLED)  # noqa: E731
    result = pd.distill(MLP(seed=1), MLP(hidden=8), _data(labels=unlabelled), method="kd",
                        val_data=_data(32, seed=1, labels=unlabelled), **KW)
    final = result.final
    assert math.isnan(final["val_acc"]) and math.isnan(final["val_loss"])
    assert math.isnan(final["train_acc"])
    assert final["train_loss"] > 0          # KD still learns from the teacher


def test_validation_metrics_count_the_labelled_samples_only():
    x, y = _xy(32, seed=1)
    half = torch.where(torch.arange(32) % 2 == 0, y, torch.full_like(y, UNLABELLED))
    result = pd.distill(MLP(seed=1), MLP(hidden=8), _data(), method="kd",
                        val_data=TensorDataset(x, half), **KW)
    student = result.student.eval()
    with torch.no_grad():
        logits = student(x[::2])
    expected_acc = (logits.argmax(1) == y[::2]).double().mean().item()
    expected_ce = nn.functional.cross_entropy(logits, y[::2]).item()
    assert result.final["val_acc"] == pytest.approx(expected_acc)
    assert result.final["val_loss"] == pytest.approx(expected_ce, rel=1e-5)


def test_no_labels_and_no_teacher_is_an_error():
    unlabelled = lambda y: torch.full_like(y, UNLABELLED)  # noqa: E731
    with pytest.raises(PIDValueError, match=r"^train_data: has no labelled sample in epoch 0"):
        pd.distill(None, MLP(hidden=8), _data(labels=unlabelled), method="none", **KW)


# ----------------------------------------------------------------------------- 7. schedule
@pytest.mark.parametrize(("args", "kind", "name"), [
    ((-1, 2, 4, 0.25), PIDValueError, "epoch"),
    ((1.5, 2, 4, 0.25), PIDTypeError, "epoch"),
    ((0, -1, 4, 0.25), PIDValueError, "warmup"),
    ((0, 0, 0, 0.25), PIDValueError, "cycle"),
    ((0, 0, 4, 1.5), PIDValueError, "ratio"),
])
def test_phase_of_epoch_validates_its_arguments(args, kind, name):
    with pytest.raises(kind, match=rf"^{name}: "):
        phase_of_epoch(*args)


def test_a_schedule_for_a_one_stage_method_warns_that_it_is_ignored():
    with pytest.warns(UserWarning, match=r"^warmup, cycle are ignored: .*KDLoss"):
        trainer = pd.Trainer(MLP(seed=1), MLP(hidden=8), _data(), method="kd", warmup=2,
                             cycle=3, epochs=3, batch_size=16, progress=False)
    assert [trainer.phase_of(e) for e in range(3)] == ["student"] * 3


def test_probing_a_users_shuffling_loader_leaves_the_global_rng():
    """A DataLoader with shuffle=True and no generator draws its seed from torch's global RNG
    whenever it is iterated: the Trainer's look at the first batch must not advance it (the
    epochs then shuffle exactly as the user's own loop would)."""
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 10, generator=g), torch.randint(0, 3, (64,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    student = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    pd.Trainer(None, student, loader, method="none", epochs=1, progress=False)
    assert torch.equal(before, torch.get_rng_state())


def test_a_users_logit_loss_gets_the_same_width_check():
    """The check follows the loss's ``uses_teacher_logits`` flag, not its class: a user's loss
    that compares logits class by class declares it and is checked like KD."""
    from pidkit_distill.losses import KDLoss

    class MyLogitLoss(KDLoss):
        pass

    with pytest.raises(PIDValueError, match=r"^teacher: outputs 10 logits .*MyLogitLoss"):
        pd.distill(MLP(classes=10, seed=1), MLP(hidden=8), _data(), loss=MyLogitLoss(), **KW)
