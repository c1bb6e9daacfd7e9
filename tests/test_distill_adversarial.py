"""Inputs a PyTorch user passes to pidkit_distill, found by an adversarial sweep: each one
either works as a user would expect or is a typed error (pidkit's own classes) that names the
argument, raised before training starts (or, for a bad label halfway through an epoch, as soon
as its batch arrives)."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pidkit_distill as pd
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill.losses import Batch, make_loss

torch.set_num_threads(1)
N = 12


def _data(n=N, k=3, **overrides):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    y = torch.arange(n) % k
    return TensorDataset(overrides.get("x", x), overrides.get("y", y))


def _mlp(hidden=(8, 4), k=3):
    torch.manual_seed(0)
    return pd.models.get_model("digits_mlp", num_classes=k, hidden=hidden, in_features=16)


def _distill(data, method="kd", teacher=None, student=None, **config):
    config = {"epochs": 1, "batch_size": 4, "progress": False, **config}
    return pd.distill(teacher or _mlp(), student or _mlp((6, 4)), data, method=method, **config)


# ---------------------------------------------------------------- trainer inputs
def test_label_out_of_range_in_a_later_batch_is_a_typed_error():
    y = torch.arange(N) % 3
    y[-1] = 7  # the first batch is fine
    with pytest.raises(PIDValueError, match=r"train_data: yields labels \[7\]"):
        _distill(DataLoader(_data(y=y), batch_size=4))


def test_a_batch_refused_mid_epoch_leaves_the_student_as_it_was():
    # the error came after the epoch's earlier steps had updated the student: its weights
    # were neither those before the epoch nor those of a finished one
    y = torch.arange(N) % 3
    y[-1] = 7                                  # the last batch is refused
    student = _mlp((6, 4))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(PIDValueError, match=r"train_data: yields labels \[7\]") as info:
        _distill(DataLoader(_data(y=y), batch_size=4), student=student)
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())
    assert any("put back" in note for note in info.value.__notes__)
    # without the restore point the earlier steps stay applied
    student = _mlp((6, 4))
    with pytest.raises(PIDValueError, match=r"train_data: yields labels \[7\]"):
        _distill(DataLoader(_data(y=y), batch_size=4), student=student,
                 restore_on_nonfinite=False)
    assert any(not torch.equal(v, before[k]) for k, v in student.state_dict().items())


@pytest.mark.parametrize("argument", ["train_data", "val_data"])
def test_an_unbatched_dataloader_is_named_as_such(argument):
    # DataLoader(batch_size=None) yields single samples: the error said 'holds labels of
    # shape ()', which does not say what to change
    unbatched = DataLoader(_data(), batch_size=None)
    data = {"train_data": unbatched, "val_data": _data()}[argument]
    options = {"val_data": unbatched} if argument == "val_data" else {}
    with pytest.raises(PIDValueError, match=rf"^{argument}: is a DataLoader with "
                                            r"batch_size=None.*batch_size=64"):
        _distill(data, **options)


def test_an_unbatched_dataloader_over_a_data_set_of_batches_trains():
    # batch_size=None is PyTorch's way to read a data set that yields whole batches: accepted
    class Batches(torch.utils.data.Dataset):
        def __init__(self, data):
            self.x, self.y = data.tensors

        def __len__(self):
            return len(self.x) // 4

        def __getitem__(self, i):
            return self.x[4 * i:4 * i + 4], self.y[4 * i:4 * i + 4]

    result = _distill(DataLoader(Batches(_data()), batch_size=None), epochs=1)
    assert result.final["train_loss"] > 0


def test_audit_labels_of_none_are_named():
    # np.asarray(None) is 0-d: the message spoke of single samples
    y, t, s = _features()
    with pytest.raises(PIDTypeError, match=r"^labels: is None"):
        pd.audit_features(None, t, s)


def test_val_label_out_of_range_in_a_later_batch_names_val_data():
    y = torch.arange(N) % 3
    y[-1] = 5
    with pytest.raises(PIDValueError, match=r"val_data: yields labels \[5\]"):
        _distill(_data(), val_data=DataLoader(_data(y=y), batch_size=4))


def test_ignore_index_minus_100_gets_a_hint():
    y = torch.where(torch.arange(N) % 2 == 0, torch.arange(N) % 3, -100)
    with pytest.raises(PIDValueError, match=r"train_data: .*\[-100\].*masked_fill"):
        _distill(_data(y=y))


def test_uint8_images_are_a_typed_error_naming_train_data():
    x = torch.randint(0, 255, (N, 16), dtype=torch.uint8)
    with pytest.raises(PIDTypeError, match=r"train_data: yields inputs of dtype torch\.uint8"
                                           r".*x\.float\(\) / 255"):
        _distill(_data(x=x))


def test_a_dict_of_arrays_instead_of_a_data_set_is_refused():
    with pytest.raises(PIDTypeError, match=r"train_data: is a dict.*TensorDataset"):
        _distill({"x": torch.zeros(N, 16), "y": torch.zeros(N)})


@dataclasses.dataclass
class _Output:
    logits: torch.Tensor
    hidden: torch.Tensor | None = None


class _DataclassModel(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.net = _mlp(hidden)
        self.feature_layers = tuple(f"net.{p}" for p in self.net.feature_layers)

    def forward(self, x):
        return _Output(self.net(x))


def test_a_model_returning_a_dataclass_trains():
    result = _distill(_data(), method="rid", epochs=3, teacher=_DataclassModel((8, 4)),
                      student=_DataclassModel((6, 4)))
    assert np.isfinite(result.final["train_loss"])


def test_data_parallel_models_use_the_wrapped_feature_layers():
    result = _distill(_data(), method="fitnets", teacher=nn.DataParallel(_mlp()),
                      student=nn.DataParallel(_mlp((6, 4))))
    assert result.trainer.student_layers == ["module.layer1", "module.layer2"]


def test_scripted_models_train_without_features_and_are_refused_with_them():
    def seq(h):
        return torch.jit.script(nn.Sequential(nn.Linear(16, h), nn.ReLU(), nn.Linear(h, 3)))
    assert np.isfinite(_distill(_data(), teacher=seq(8), student=seq(6)).final["train_loss"])
    with pytest.raises(PIDTypeError, match=r"layers: .*TorchScript.*forward hooks"):
        _distill(_data(), method="fitnets", teacher=seq(8), student=seq(6),
                 layers=[("1", "1")])


@pytest.mark.parametrize("device", ["mps", "cuda:99"])
def test_unavailable_devices_are_typed_errors(device):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(PIDValueError, match=r"^device: "):
        _distill(_data(), device=device)


@pytest.mark.parametrize(("options", "match"), [
    ({"callbacks": lambda *a: None}, r"callbacks: is a function, not a list"),
    ({"callbacks": [lambda *a: None]}, r"callbacks: holds a function without an on_epoch_end"),
    ({"loss": "kd"}, r"loss: is a str, not a DistillLoss"),
])
def test_callbacks_and_loss_of_the_wrong_type(options, match):
    with pytest.raises(PIDTypeError, match=match):
        _distill(_data(), **options)


def test_lambda_callback_every_zero_and_out_dir_a_file(tmp_path):
    with pytest.raises(PIDValueError, match=r"every: must be >= 1"):
        pd.LambdaCallback(lambda *a: None, every=0)
    file = tmp_path / "a file.pt"
    file.write_bytes(b"x")
    with pytest.raises(PIDValueError, match=r"out_dir: is an existing file"):
        pd.TrainConfig(out_dir=file)


# ---------------------------------------------------------------- losses in a loop of one's own
def _batch(n=6, ts=(8,), ss=(6,), **fields):
    g = torch.Generator().manual_seed(0)
    base = dict(y=torch.arange(n) % 3, student_logits=torch.randn(n, 3, generator=g),
                teacher_logits=torch.randn(n, 3, generator=g),
                student_features=[torch.randn(n, *ss, generator=g)],
                teacher_features=[torch.randn(n, *ts, generator=g)])
    return Batch(**{**base, **fields})


@pytest.mark.parametrize("method", ["fitnets", "vid", "ted", "rid", "pid", "broja"])
def test_student_features_of_another_shape_name_the_field(method):
    loss = make_loss(method, [(8,)], [(6,)], 3)
    with pytest.raises(PIDValueError, match=r"student_features: item 0 has per-sample shape "
                                            r"\(7,\), but the loss was built for \(6,\)"):
        loss.student_loss(_batch(ss=(7,)))


def test_losses_built_directly_check_shapes_too():
    """A loss constructed from its class (not through make_loss) knows its layer shapes
    as well, so a user's own loop gets the same typed error."""
    from pidkit_distill.losses.fitnets import FitNetsLoss
    from pidkit_distill.losses.rid import RIDLoss

    for loss in (RIDLoss([(8,)], [(6,)], 3), FitNetsLoss([(8,)], [(6,)], 3)):
        assert loss.layer_shapes == ([(8,)], [(6,)])
        with pytest.raises(PIDValueError, match=r"student_features: item 0 has per-sample "
                                                r"shape \(7,\), but the loss was built for"):
            loss.student_loss(_batch(ss=(7,)))


def test_missing_features_and_teacher_logits_name_the_field():
    with pytest.raises(PIDValueError, match=r"teacher_features: holds 0 tensor\(s\) for the "
                                            r"loss's 1 layer pair"):
        make_loss("rid", [(8,)], [(6,)], 3).student_loss(_batch(teacher_features=[]))
    kd = make_loss("kd", [], [], 3)
    with pytest.raises(PIDTypeError, match=r"teacher_logits: is NoneType"):
        kd.student_loss(_batch(teacher_logits=None))
    with pytest.raises(PIDValueError, match=r"teacher_logits: has shape \(6, 5\)"):
        kd.student_loss(_batch(teacher_logits=torch.zeros(6, 5)))


def test_labels_as_a_list_and_one_sample_batches_with_batch_norm():
    rid = make_loss("rid", [(8,)], [(6,)], 3)
    with pytest.raises(PIDTypeError, match=r"^y: must be a tensor"):
        rid.student_loss(_batch(y=[0, 1, 2, 0, 1, 2]))
    with pytest.raises(PIDValueError, match=r"^y: holds 1 sample, and RIDLoss's batch norm"):
        rid.student_loss(_batch(n=1))
    # without batch norm one sample is fine
    loss, _ = make_loss("rid", [(8,)], [(6,)], 3, norm=False).student_loss(_batch(n=1))
    assert torch.isfinite(loss)


@pytest.mark.parametrize("method", ["none", "kd", "fitnets", "vid", "ted", "rid", "pid",
                                    "broja"])
def test_an_empty_batch_is_a_typed_error_naming_y(method):
    # a user's loop: kd, fitnets, vid, rid and ted returned a NaN loss, broja a torch error
    loss = make_loss(method, [(8,)], [(6,)], 3)
    with pytest.raises(PIDValueError, match=r"^y: holds no samples \(an empty batch\)"):
        loss.student_loss(_batch(n=0))


@pytest.mark.parametrize("method", ["fitnets", "vid", "ted", "rid", "pid", "broja"])
def test_features_of_another_precision_name_the_field_outside_autocast(method):
    loss = make_loss(method, [(8,)], [(6,)], 3)
    batch = _batch()
    doubled = dataclasses.replace(batch, student_features=[batch.student_features[0].double()])
    with pytest.raises(PIDTypeError, match=r"^student_features: item 0 is torch.float64, but "
                                           r"the loss's parameters are torch.float32"):
        loss.student_loss(doubled)
    value, _ = loss.match_precision(torch.float64).student_loss(dataclasses.replace(
        doubled, teacher_features=[batch.teacher_features[0].double()],
        student_logits=batch.student_logits.double(),
        teacher_logits=batch.teacher_logits.double()))
    assert value.dtype == torch.float64 and torch.isfinite(value)


def test_a_dict_config_and_an_uncreatable_out_dir_are_refused_before_training(tmp_path):
    with pytest.raises(PIDTypeError, match=r"^config: is a dict, not a TrainConfig"):
        pd.Trainer(_mlp(), _mlp((6, 4)), _data(), config={"method": "kd"})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    student = _mlp((6, 4))
    before = [p.detach().clone() for p in student.parameters()]
    with pytest.raises(PIDValueError, match=r"^out_dir: cannot be created"):
        _distill(_data(), student=student, out_dir=str(blocker / "runs"))
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


@pytest.mark.parametrize("argument", ["train_data", "val_data"])
def test_inputs_of_the_wrong_width_name_the_data_before_training(argument):
    narrow = _data(x=torch.randn(N, 10))           # the networks take 16 features
    data, val = (narrow, None) if argument == "train_data" else (_data(), narrow)
    with pytest.raises(PIDValueError, match=rf"^{argument}: yields inputs the student's "
                                            r"forward pass fails on \(mat1 and mat2"):
        pd.Trainer(_mlp(), _mlp((6, 4)), data, val_data=val, method="kd", progress=False)


def test_non_finite_inputs_are_named_as_the_cause():
    x = torch.randn(N, 16)
    x[5, 3] = float("nan")
    with pytest.raises(PIDValueError, match=r"^train_data: held NaN or infinite inputs in "
                                            r"epoch 0"):
        _distill(_data(x=x))


@pytest.mark.parametrize(("shapes", "kind", "match"), [
    ([8], PIDTypeError, r"teacher_shapes: must be a list of per-sample shapes"),
    ([()], PIDValueError, r"layers: pair 0: the teacher feature has per-sample shape \(\)"),
    ([(0,)], PIDValueError, r"layers: pair 0: .*empty axis"),
])
def test_make_loss_checks_the_shapes(shapes, kind, match):
    with pytest.raises(kind, match=match):
        make_loss("rid", shapes, [(6,)], 3)


# ---------------------------------------------------------------- audits
def _features(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return y, rng.normal(size=(n, 12)) + y[:, None], rng.normal(size=(n, 12)) + y[:, None]


def test_masked_arrays_and_bad_metadata_are_refused_by_the_audit():
    # the mask was dropped: rows the user had masked out were audited as data
    y, t, s = _features()
    masked = np.ma.masked_array(t, mask=np.zeros_like(t, dtype=bool))
    masked.mask[:30] = True
    with pytest.raises(PIDTypeError, match=r"^teacher_features: is a numpy masked array"):
        pd.audit_features(y, masked, s, estimator="gaussian", ci=None, n_perm=0)
    with pytest.raises(PIDTypeError, match=r"^labels: is a numpy masked array"):
        pd.audit_features(np.ma.masked_array(y, mask=y == 0), t, s, estimator="gaussian",
                          ci=None, n_perm=0)
    with pytest.raises(PIDTypeError, match=r"^metadata: must be a mapping of names"):
        pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0, metadata=5)
    report = pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0,
                               metadata={"run": "a"})
    assert report.metadata["run"] == "a"


def test_gaussian_audit_of_constant_features_names_them():
    # refused ("teacher_features: is constant") until constant layers were audited as carrying
    # no information, as the discrete routes do: now a warning naming the layer
    y, _, s = _features()
    with pytest.warns(UserWarning, match=r"the teacher layer 'T0' is constant"):
        layer = pd.audit_features(y, np.ones((60, 5)), s, estimator="gaussian", ci=None,
                                  n_perm=0)[0]
    assert layer.values["mi_teacher"] == 0.0 and layer.details["constant_layer"] == "teacher"


@pytest.mark.parametrize(("x", "kind", "match"), [
    (torch.randn(30, 16, dtype=torch.float64), PIDTypeError,
     r"data: yields inputs of dtype torch\.float64 but the student's parameters"),
    (torch.randint(0, 255, (30, 16), dtype=torch.uint8), PIDTypeError,
     r"data: yields inputs of dtype torch\.uint8"),
])
def test_audit_inputs_of_another_dtype(x, kind, match):
    with pytest.raises(kind, match=match):
        pd.audit(_mlp(), _mlp((6, 4)), TensorDataset(x, torch.arange(30) % 3), ci=None,
                 n_perm=0)


def test_audit_device_that_is_missing():
    with pytest.raises(PIDValueError, match=r"^device: CUDA is not available|^device: names"):
        pd.audit(_mlp(), _mlp((6, 4)), _data(), device="cuda:99", ci=None, n_perm=0)


def test_report_readers_and_plot_curves_give_typed_errors(tmp_path):
    y, t, s = _features()
    report = pd.audit_features(y, t, s, ci=None, n_perm=0)
    assert pd.AuditReport.from_json(report.to_json())[0].values == report[0].values
    with pytest.raises(PIDValueError, match=r"text_or_path: the JSON text is not valid JSON"):
        pd.AuditReport.from_json("{not json")
    with pytest.raises(PIDValueError, match=r"text_or_path: is neither JSON text nor an "
                                            r"existing file"):
        pd.AuditReport.from_json(tmp_path / "missing report.json")
    with pytest.raises(PIDValueError, match=r"data: is not an audit report \(missing "):
        pd.AuditReport.from_dict({"x": 1})
    with pytest.raises(PIDTypeError, match=r"histories: holds \['AuditReport'\]"):
        pd.plot_curves([report])
    with pytest.raises(PIDTypeError, match=r"^data: is a str"):
        pd.AuditCallback("data")


# ---------------------------------------------------------------- data and CLI
def test_subset_per_class_refuses_non_positive_counts():
    for n in (0, -1):
        with pytest.raises(PIDValueError, match=r"n_per_class: must be >= 1"):
            pd.data.subset_per_class(_data(), n)


def test_cli_save_student_in_a_missing_folder_fails_before_training(tmp_path, capsys):
    from pidkit_distill.cli import main

    target = tmp_path / "no such dir" / "student.pt"
    code = main(["train", "--student", "digits_mlp", "--method", "none", "--epochs", "1",
                 "--samples-per-class", "2", "--no-progress", "--save-student", str(target)])
    err = capsys.readouterr()
    assert code == 2
    assert "--save-student: the folder" in err.err and "epoch" not in err.out


# ---------------------------------------------------------------- the trainer and the audit agree
def _pair_arrays(n=N, k=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 16, generator=g), torch.arange(n) % k


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_a_tuple_of_inputs_and_labels_trains_like_its_tensor_dataset(kind):
    """distill takes (X, y) as audit does (one helper, batches.as_dataset): the same run as
    with TensorDataset(X, y), for train_data and val_data."""
    x, y = _pair_arrays()
    pair = (x, y) if kind == "torch" else (x.numpy(), y.numpy())
    torch.manual_seed(0)
    from_pair = _distill(pair, val_data=pair, epochs=2)
    torch.manual_seed(0)
    from_set = _distill(TensorDataset(x, y), val_data=TensorDataset(x, y), epochs=2)
    for a, b in zip(from_pair.history, from_set.history, strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_acc"] == b["val_acc"]
    assert from_pair.trainer.evaluate(pair) == from_set.trainer.evaluate(TensorDataset(x, y))


def test_the_trainer_and_the_audit_read_a_tuple_with_one_helper(monkeypatch):
    from pidkit_distill import batches

    seen = []
    real = batches.as_dataset

    def spy(data, argument):
        seen.append(argument)
        return real(data, argument)

    monkeypatch.setattr(batches, "as_dataset", spy)
    import pidkit_distill.train as train_module
    monkeypatch.setattr(train_module, "as_dataset", spy)
    x, y = _pair_arrays(60)
    _distill((x, y))
    pd.audit(_mlp(), _mlp((6, 4)), (x, y), [("layer2", "layer2")], ci=None, n_perm=0,
             estimator_options={"n_clusters": 2, "n_components": 2})
    assert "train_data" in seen and "data" in seen


@pytest.mark.parametrize(("data", "kind", "match"), [
    ((torch.zeros(N, 16), torch.zeros(N, dtype=torch.long), torch.ones(N)), PIDTypeError,
     r"train_data: is a tuple of 3 entries; a tuple of arrays is read as \(inputs, labels\)"
     r".*TensorDataset"),
    ((torch.zeros(N, 16),), PIDTypeError, r"train_data: is a tuple of 1 entry"),
    ((torch.zeros(N, 16), torch.zeros(N - 2, dtype=torch.long)), PIDValueError,
     r"train_data: is a tuple \(inputs, labels\) holding inputs of shape \(12, 16\) and labels "
     r"of shape \(10,\)"),
    ((np.zeros((N, 16), np.float32), np.int64(1)), PIDValueError,
     r"train_data: .*labels of shape \(\)"),
], ids=["three", "one", "lengths", "scalar-labels"])
def test_tuples_that_are_not_an_inputs_labels_pair_are_typed_errors(data, kind, match):
    with pytest.raises(kind, match=match):
        _distill(data)
    argument = match.split(":")[0].replace("train_data", "data")
    with pytest.raises(kind, match=argument):   # the audit refuses them in the same words
        pd.audit(_mlp(), _mlp((6, 4)), data, [("layer2", "layer2")], ci=None, n_perm=0)


def test_a_tuple_for_val_data_is_checked_under_its_name():
    x, y = _pair_arrays()
    with pytest.raises(PIDValueError, match=r"^val_data: is a tuple \(inputs, labels\)"):
        _distill(_data(), val_data=(x, y[:5]))
    with pytest.raises(PIDTypeError, match=r"^val_data: is a tuple of 3 entries"):
        _distill(_data(), val_data=(x, y, y))


def _features(n=60, k=3, width=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    t = rng.normal(size=(n, width)) + y[:, None]
    s = rng.normal(size=(n, width)) + y[:, None]
    return y, t, s


FAST_AUDIT = {"ci": None, "n_perm": 0, "estimator_options": {"n_clusters": 2,
                                                              "n_components": 2}}


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_audit_features_refuses_nested_lists_pointing_at_the_cause(which):
    """A nested Python list was read as one layer per row: 'has 12 samples, labels have 60'."""
    y, t, s = _features()
    args = (t.tolist(), s) if which == "teacher" else (t, s.tolist())
    name = f"{which}_features"
    with pytest.raises(PIDTypeError, match=rf"^{name}: is a nested Python list \(60 lists of 12 "
                                           rf"values\), not a list of arrays; .*60 entries would "
                                           rf"be a layer\. Pass np\.asarray\({name}\)"):
        pd.audit_features(y, *args, **FAST_AUDIT)
    # the advice works: the same audit as with the arrays
    fixed = [np.asarray(a) for a in args]
    assert pd.audit_features(y, *fixed, **FAST_AUDIT)[0].values == \
        pd.audit_features(y, t, s, **FAST_AUDIT)[0].values


def test_audit_features_names_the_list_entry_that_is_not_an_array():
    y, t, s = _features()
    with pytest.raises(PIDTypeError, match=r"^teacher_features\[1\]: is a list, not an array"):
        pd.audit_features(y, [t, t.tolist()], [s, s], **FAST_AUDIT)
    with pytest.raises(PIDTypeError, match=r"^fit\[1\]: is a nested Python list"):
        pd.audit_features(y, t, s, fit=(y, t.tolist(), s), **FAST_AUDIT)
    # lists of arrays, tuples of arrays and mappings still work
    two = pd.audit_features(y, (t, t), [s, s], **FAST_AUDIT)
    assert len(two) == 2 and two[0].values == two[1].values


@pytest.mark.parametrize("options", [
    {"n_boot": 20, "n_perm": 19},
    {"ci": None, "n_perm": 0},
    {"n_boot": 20, "n_perm": 19, "num_classes": 3},
], ids=["intervals-and-null", "point-only", "num_classes"])
def test_a_single_class_gives_zero_atoms_on_both_routes(options):
    """I(Y;.) = 0 for a constant Y: the default route returned zeros, the Gaussian route raised
    'labels: hold a single class'. Both now return zeros, p-values 1 and chance 0."""
    _, t, s = _features(n=120)
    y = np.zeros(120, dtype=np.int64)
    for estimator in ("paper", "gaussian"):
        r = pd.audit_features(y, t, s, estimator=estimator, **options)[0]
        assert all(v == 0.0 for v in r.values.values()), (estimator, r.values)
        assert set(r.values) == {"mi_teacher", "mi_student", "redundancy", "unique_teacher",
                                 "unique_student", "synergy"}
        if options.get("ci", 0.95) is not None:
            assert all(abs(lo) < 1e-6 and abs(hi) < 1e-6 for lo, hi in r.intervals.values())
        if options.get("n_perm"):
            assert all(p == 1.0 for p in r.p_values.values())
            assert all(c == 0.0 for c in r.chance.values())
    g = pd.audit_features(y, t, s, estimator="gaussian", **options)[0]
    assert g.details["solver_status"] == "constant_target"
    assert g.details["classes_present"] == [0]


def test_a_single_audited_class_with_a_two_class_fit_is_zero_on_the_gaussian_route():
    y, t, s = _features(n=120, k=2)
    r = pd.audit_features(np.ones(120, dtype=np.int64), t, s, estimator="gaussian",
                          fit=(y, t, s), ci=None, n_perm=0)[0]
    assert all(v == 0.0 for v in r.values.values())
    # two classes still give a positive I(Y;T) (the features depend on the labels)
    assert pd.audit_features(y, t, s, estimator="gaussian", ci=None,
                             n_perm=0)[0].values["mi_teacher"] > 0.1


def test_feature_hooks_entered_twice_and_report_names_with_folders(tmp_path):
    from pidkit_distill.features import FeatureHooks

    model = _mlp()
    hooks = FeatureHooks(model, ["layer1"])
    with hooks:
        with pytest.raises(PIDTypeError, match=r"^FeatureHooks: is already active"), hooks:
            pass
    assert not model.layer1._forward_hooks        # none left behind
    y, t, s = _features()
    report = pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0)
    for name in ("../escaped", "sub/x", "", ".."):
        with pytest.raises(PIDValueError, match=r"^name: must be a plain file name"):
            report.save(tmp_path / "out", name=name)
    assert not (tmp_path / "escaped.json").exists()


def test_nuisance_teacher_settings_and_checkpoint_paths(tmp_path):
    teacher = pd.models.get_model("digits_cnn", width=4)
    for kwargs, match in [({"scale": float("nan")}, r"^scale: must be finite"),
                          ({"channels": 0}, r"^channels: must be >= 1"),
                          ({"layers": ["nosuch"]}, r"^layers: module 'nosuch' not found in "
                                                   r"the teacher")]:
        with pytest.raises(PIDValueError, match=match):
            pd.models.NuisanceTeacher(teacher, **kwargs)
    trainer = pd.Trainer(_mlp(), _mlp((6, 4)), _data(), method="kd", progress=False)
    folder = tmp_path / "existing"
    folder.mkdir()
    with pytest.raises(PIDValueError, match=r"^path: .* is a folder"):
        trainer.save_checkpoint(folder)
    assert not (tmp_path / "existing.tmp").exists()      # no stray full checkpoint
    trainer.save_checkpoint(tmp_path / "ok.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "ok.pt"]


def test_audit_callback_settings_fail_before_training(tmp_path):
    # pair=9 and out_dir=<a file> were accepted, then crashed after the first epoch's audit
    file = tmp_path / "a_file"
    file.write_text("x")
    for kwargs, kind, match in [
            ({"pair": -1}, PIDTypeError, r"^pair: must be a layer pair's index"),
            ({"pair": 9, "layers": [("layer1", "layer1")]}, PIDValueError,
             r"^pair: is 9 but layers has 1 pair"),
            ({"out_dir": file}, PIDValueError, r"^out_dir: .* is a file, not a folder")]:
        with pytest.raises(kind, match=match):
            pd.AuditCallback(**kwargs)


def test_model_helpers_name_their_arguments():
    models = pd.models
    cases = [(lambda: models.get_model(":"), PIDValueError, r"^name: cannot import factory"),
             (lambda: models.get_model("pidkit:__version__"), PIDTypeError,
              r"^name: 'pidkit:__version__' is not a function"),
             (lambda: models.get_model("digits_cnn", bogus=1), PIDTypeError,
              r"^kwargs: model 'digits_cnn' does not accept \{'bogus': 1\}"),
             (lambda: models.get_model("digits_cnn", width=-1), PIDValueError,
              r"^kwargs: model 'digits_cnn' cannot be built with"),
             (lambda: models.get_model("digits_cnn", num_classes=0), PIDValueError,
              r"^num_classes: must be >= 2"),
             (lambda: models.untrained_teacher("digits_cnn", 2**70), PIDValueError,
              r"^seed: must be below 2\*\*64"),
             (lambda: models.module_device("x"), PIDTypeError,
              r"^model: is a str, not a torch.nn.Module"),
             (lambda: models.module_device(_mlp(), expected="bogus"), PIDValueError,
              r"^expected: is not a device"),
             (lambda: models.freeze("x"), PIDTypeError, r"^model: is a str"),
             (lambda: models.module_dtype(None), PIDTypeError, r"^model: is a NoneType")]
    for call, kind, match in cases:
        with pytest.raises(kind, match=match):
            call()


def test_report_and_history_readers_refuse_malformed_files(tmp_path):
    from pidkit_distill.audits import AuditHistory

    y, t, s = _features()
    report = pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0)
    good = report.to_dict()
    assert pd.AuditReport.from_dict(good).to_dict() == good
    pair = good["pairs"][0]
    broken = [{**good, "base": 1}, {**good, "ci": "abc"}, {**good, "settings": [1]},
              {**good, "pairs": [{**pair, "values": "abc"}]},
              {**good, "pairs": [{**pair, "intervals": 5}]}]
    for data in broken:
        with pytest.raises(PIDValueError, match=r"^data: is not an audit report"):
            pd.AuditReport.from_dict(data)
    with pytest.raises(PIDTypeError, match=r"^text_or_path: is a int"):
        pd.AuditReport.from_json(5)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PIDValueError, match=r"is not a UTF-8 text file"):
        pd.AuditReport.from_json(binary)
    history = AuditHistory("kd", [0], [report])
    path = history.save(tmp_path / "h")["json"]
    assert AuditHistory.load(path).to_dict() == history.to_dict()
    for content, match in [(b"\xff\xfe", "is not a JSON file"), (b'{"method": "x"}',
                           "is not an audit history"), (json_text(good), "is not an audit "
                                                                          "history")]:
        path.write_bytes(content)
        with pytest.raises(PIDValueError, match=match):
            AuditHistory.load(path)
    with pytest.raises(PIDValueError, match=r"^path: .* is not a file"):
        AuditHistory.load(tmp_path)


def json_text(data):
    import json

    return json.dumps(data).encode()


def test_cached_teacher_names_its_arguments():
    from pidkit_distill.teacher_cache import CachedTeacher

    teacher, x = _mlp(), torch.randn(20, 16)
    for kwargs, kind, match in [({"batch_size": 0}, PIDValueError, r"^batch_size: must be >= 1"),
                                ({"layers": [""]}, PIDValueError, r"^layers: holds the "
                                                                  r"empty path"),
                                ({"layers": ["training"]}, PIDValueError, r"^layers: module "
                                                                          r"'training' not"),
                                ({"layers": "layer1"}, PIDTypeError, r"^layers: must be a list")]:
        with pytest.raises(kind, match=match):
            CachedTeacher(teacher, x, **{"layers": ["layer1"], **kwargs})
    cache = CachedTeacher(teacher, x, ["layer1"], batch_size=7)
    with pytest.raises(PIDValueError, match=r"^x: must be a non-empty batch"):
        cache(x[:0])
    torch.testing.assert_close(cache(x[:5]), teacher(x[:5]))


def test_devices_and_loaders_of_readers_are_checked(tmp_path):
    from pidkit_distill.features import extract_features
    from pidkit_distill.train import load_checkpoint

    batch = [(torch.zeros(2, 16), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(PIDTypeError, match=r"^loader: is a NoneType"):
        extract_features(_mlp(), None, ["layer1"])
    with pytest.raises(PIDValueError, match=r"^device: is not a torch device"):
        extract_features(_mlp(), batch, ["layer1"], device="bogus")
    with pytest.raises(PIDValueError, match=r"^map_location: is not a torch device"):
        load_checkpoint(tmp_path / "x.pt", map_location="bogus")
    assert extract_features(_mlp(), batch, ["layer1"]).features["layer1"].shape == (2, 8)


def test_an_unknown_method_is_named_before_the_teacher_is_asked_for():
    with pytest.raises(PIDValueError, match=r"^method: 'bogus' is not a distillation method"):
        pd.Trainer(None, _mlp((6, 4)), _data(), method="bogus", progress=False)


def test_curve_arguments_are_checked_before_drawing(tmp_path):
    from pidkit_distill.audits import AuditHistory, plot_curves

    y, t, s = _features()
    report = pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0)
    history = AuditHistory("kd")
    history.append(0, report)
    cases = [(lambda: history.append(float("nan"), report), PIDTypeError, r"^epoch: must be an "
                                                                           r"integer"),
             (lambda: history.append(5, "rep"), PIDTypeError, r"^report: is a str"),
             (lambda: history.series("redundancy", pair=9), PIDValueError,
              r"^pair: is not one of the 1 audited pair"),
             (lambda: plot_curves([history], quantities=[]), PIDValueError,
              r"^quantities: must be a non-empty list"),
             (lambda: plot_curves([history], pair="x"), PIDValueError, r"^pair: is not one"),
             (lambda: plot_curves([history], path=tmp_path / "no" / "x.png"), PIDValueError,
              r"^path: the folder .* does not exist"),
             (lambda: plot_curves([history], path=tmp_path / "x.bogusext"), PIDValueError,
              r"^path: has the extension '\.bogusext'"),
             (lambda: plot_curves([history], dpi=0), PIDValueError, r"^dpi: must be >= 1")]
    for call, kind, match in cases:
        with pytest.raises(kind, match=match):
            call()
    plot_curves([history], path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert "png" not in AuditHistory("empty").save(tmp_path / "empty")   # no figure written


def test_a_non_finite_stop_names_the_checkpoint_to_restart_from(tmp_path):
    run = tmp_path / "run"
    _distill(_data(), out_dir=str(run))                 # epoch 0 and its checkpoint
    x = torch.randn(N, 16)
    x[3, 1] = float("inf")
    with pytest.raises(PIDValueError, match=r"then restart from the last checkpoint, "
                                            r".*checkpoint\.pt \(resume=\.\.\., written after "
                                            r"epoch 0 or earlier\)"):
        _distill(_data(x=x), out_dir=str(run), resume=str(run / "checkpoint.pt"), epochs=2)


def test_a_dead_student_layer_audits_as_carrying_no_information():
    """A layer constant on every audited sample (all its ReLUs off) was refused by the discrete
    route ('student_features: is constant ... Check the array'), which stopped a training run
    under AuditCallback; it carries no information: I(Y;S) = Red = Syn = 0 with a warning, and
    I(Y;T) is the same as against a live student."""
    data = _data(n=90)
    teacher, student = _mlp((16, 8)), _mlp((6, 4))
    with torch.no_grad():
        student.layer2[0].bias.fill_(-100.0)        # every ReLU of layer2 off
    options = {"layers": [("layer2", "layer2")], "ci": None, "n_perm": 0,
               "estimator_options": {"n_clusters": 3, "n_components": 2}}
    with pytest.warns(UserWarning, match="student layer 'layer2' is constant"):
        dead = pd.audit(teacher, student, data, **options)[0]
    live = pd.audit(teacher, _mlp((6, 4)), data, **options)[0]
    assert dead.values["mi_teacher"] == pytest.approx(live.values["mi_teacher"], abs=1e-12)
    assert dead.values["unique_teacher"] == pytest.approx(dead.values["mi_teacher"], abs=1e-12)
    for key in ("mi_student", "redundancy", "unique_student", "synergy"):
        assert dead.values[key] == pytest.approx(0.0, abs=1e-12)
    assert dead.details["student_codes"] == 1
    # the callback's audits no longer stop training
    cb = pd.AuditCallback(data, n_boot=0, n_perm=0, estimator_options={"n_clusters": 3})
    with pytest.warns(UserWarning, match="constant"):
        run = _distill(data, method="fitnets", student=student, epochs=2, lr=1e-4,
                       layers=[("layer2", "layer2")], callbacks=[cb])
    assert [h["audit_redundancy"] for h in run.history] == [0.0, 0.0]
    # the Gaussian route gives it the same treatment (it refused it: covariance singular);
    # tested against an independent computation in the next test
    with pytest.warns(UserWarning, match="student layer 'layer2' is constant"):
        gauss = pd.audit(teacher, student, data, **{**options, "estimator": "gaussian",
                                                    "estimator_options": None})[0]
    assert gauss.details["constant_layer"] == "student"
    for key in ("mi_student", "redundancy", "unique_student", "synergy"):
        assert gauss.values[key] == 0.0


def _gaussian_information(y, t, bias_correction):
    """I(Y;T) in bits of the Gaussian estimator, computed here from scratch: log-dets of the
    covariance of (one-hot Y without its last column, T), minus the exact Wishart bias
    0.5 (Psi_n(a) + Psi_n(b) - Psi_n(a + b)), Psi_n(p) = sum_i digamma((n - i) / 2)."""
    from scipy.special import digamma

    n, classes = len(y), np.unique(y)
    z = np.column_stack([(y[:, None] == classes[None, :-1]).astype(float), t])
    a = len(classes) - 1
    cov = np.cov(z.T, bias=True)
    logdet = lambda m: np.linalg.slogdet(m)[1]                  # noqa: E731
    mi = 0.5 * (logdet(cov[:a, :a]) + logdet(cov[a:, a:]) - logdet(cov))
    if bias_correction:
        psi = lambda p: sum(digamma((n - i) / 2) for i in range(1, p + 1))   # noqa: E731
        mi -= 0.5 * (psi(a) + psi(t.shape[1]) - psi(a + t.shape[1]))
    return mi / np.log(2)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_gaussian_audit_of_a_dead_layer_is_the_live_sides_information(bias_correction):
    """audit_features(y, [t], [np.zeros((200, 4))], estimator="gaussian") raised ('is constant
    ... covariance is singular'), while the discrete routes give the dead side one code. Now:
    that side's informations, Red and Syn are 0, Uni of the live side is the Gaussian I(Y;T) of
    the (Y, T) block alone (its bootstrap intervals and shuffle null too), with a warning
    naming the layer and details saying what happened; both sides dead: all 0."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    t = rng.normal(size=(200, 4))
    t[:, 0] += y
    t[:, 1] -= 0.5 * y
    dead = np.zeros((200, 4))
    expected = _gaussian_information(y, t, bias_correction)
    options = {"estimator": "gaussian", "estimator_options": {"bias_correction": bias_correction}}
    for teacher_dead in (False, True):
        teachers, students = ([dead], [t]) if teacher_dead else ([t], [dead])
        side, live = ("teacher", "student") if teacher_dead else ("student", "teacher")
        with pytest.warns(UserWarning, match=rf"the {side} layer '{side[0].upper()}0' is "
                                             "constant on its 200 fitting samples"):
            layer = pd.audit_features(y, teachers, students, ci=None, n_perm=0, **options)[0]
        assert layer.values[f"mi_{live}"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert layer.values[f"unique_{live}"] == layer.values[f"mi_{live}"]
        for key in (f"mi_{side}", "redundancy", f"unique_{side}", "synergy"):
            assert layer.values[key] == 0.0
        assert layer.details["constant_layer"] == side
        assert layer.details["solver_status"] == f"constant_{side}"
        assert layer.details["scaling"][0 if teacher_dead else 1] == "constant"
        assert f"the {side} layer '{side[0].upper()}0' is constant" in layer.details["note"]
        assert layer.details["joint_mutual_information"] == pytest.approx(
            layer.values[f"mi_{live}"], rel=1e-12)
    # the same I(Y;T), bootstrap intervals and shuffle null as the audit of T against a live
    # student (audits of models draw from the inputs' keys: the same resamples and shuffles)
    data = _data(n=120)
    teacher, student = _mlp((16, 8)), _mlp((6, 4))
    with torch.no_grad():
        student.layer2[0].bias.fill_(-100.0)        # every ReLU of layer2 off
    kw = {"layers": [("layer2", "layer2")], "ci": 0.9, "n_boot": 40, "n_perm": 30,
          "interval": "percentile", **options}
    with pytest.warns(UserWarning, match="student layer 'layer2' is constant"):
        dead_audit = pd.audit(teacher, student, data, **kw)[0]
    live_audit = pd.audit(teacher, _mlp((6, 4)), data, **kw)[0]
    assert dead_audit.values["mi_teacher"] == pytest.approx(live_audit.values["mi_teacher"],
                                                            rel=1e-9)
    for key in ("unique_teacher", "mi_teacher"):
        assert dead_audit.intervals[key] == pytest.approx(live_audit.intervals["mi_teacher"],
                                                          rel=1e-7)
        assert dead_audit.chance[key] == pytest.approx(live_audit.chance["mi_teacher"],
                                                       rel=1e-7)
        assert dead_audit.p_values[key] == live_audit.p_values["mi_teacher"]
    assert dead_audit.intervals["synergy"] == pytest.approx((0.0, 0.0), abs=1e-12)
    assert dead_audit.chance["redundancy"] == 0.0
    # both layers dead: every quantity is 0
    with pytest.warns(UserWarning, match="constant"):
        both = pd.audit_features(y, [dead], [dead + 1.0], ci=None, n_perm=0, **options)[0]
    assert set(both.values.values()) == {0.0}
    assert both.details["solver_status"] == "constant_teacher_and_student"


# ------------------------------------------------ second sweep: set-up leaves models alone
@pytest.mark.parametrize(("options", "match"), [
    ({"data": _data(y=torch.arange(N) % 3 + 5)}, "train_data"),
    ({"method": "fitnets", "layers": [("nope", "layer1")]}, "layers"),
    ({"data": TensorDataset(torch.randn(N, 7), torch.arange(N) % 3)}, "train_data"),
    ({"drop_last": True, "batch_size": 64}, "batch_size"),
])
def test_a_refused_set_up_leaves_the_teacher_trainable(options, match):
    teacher = _mlp()
    teacher.train()
    data = options.pop("data", _data())
    with pytest.raises(PIDValueError, match=rf"^{match}:"):
        pd.Trainer(teacher, _mlp((6, 4)), data, **{"method": "kd", "progress": False,
                                                    "batch_size": 4, **options})
    assert teacher.training and all(m.training for m in teacher.modules())
    assert all(p.requires_grad for p in teacher.parameters())


def test_an_accepted_set_up_still_freezes_the_teacher():
    teacher = _mlp()
    pd.Trainer(teacher, _mlp((6, 4)), _data(), method="kd", progress=False)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("argument", ["train_data", "val_data"])
@pytest.mark.parametrize("make", [lambda d: (d[i] for i in range(len(d))),
                                  lambda d: iter([d[i] for i in range(len(d))]),
                                  lambda d: map(d.__getitem__, range(len(d)))])
def test_one_shot_iterators_are_refused_naming_the_data(argument, make):
    data = {"train_data": _data(), "val_data": None}
    data[argument] = make(_data())
    with pytest.raises(PIDTypeError, match=rf"^{argument}: .*iterable without len\(\)"):
        pd.Trainer(_mlp(), _mlp((6, 4)), data["train_data"], val_data=data["val_data"],
                   method="kd", progress=False)


def test_drop_last_with_a_batch_larger_than_the_data_is_refused_before_training():
    with pytest.raises(PIDValueError, match=r"^batch_size: is 13 with drop_last=True.*12 "
                                            r"samples.*at most 12"):
        pd.Trainer(_mlp(), _mlp((6, 4)), _data(), method="kd", batch_size=13, drop_last=True,
                   progress=False)
    pd.Trainer(_mlp(), _mlp((6, 4)), _data(), method="kd", batch_size=12, drop_last=True,
               progress=False)                                      # one full batch: fine


@pytest.mark.parametrize("cls", [pd.losses.FitNetsLoss, pd.losses.VIDLoss, pd.losses.TEDLoss,
                                 pd.losses.RIDLoss, pd.losses.PIDLoss,
                                 pd.losses.DiscretePIDLoss])
@pytest.mark.parametrize(("args", "kind", "match"), [
    (([(8,), (8,)], [(6,)]), PIDValueError, r"^layers: .*2 teacher.*1 student"),
    ((None, [(6,)]), PIDTypeError, r"^teacher_shapes: must be a list of per-sample shapes"),
    (([(8,)], (6,)), PIDTypeError, r"^student_shapes: must be a list of per-sample shapes"),
])
def test_losses_built_from_their_class_check_the_pairs(cls, args, kind, match):
    extra = () if cls in (pd.losses.FitNetsLoss, pd.losses.VIDLoss) else (3,)
    with pytest.raises(kind, match=match):
        cls(*args, *extra)


@pytest.mark.parametrize("cls", [pd.losses.TEDLoss, pd.losses.RIDLoss, pd.losses.PIDLoss,
                                 pd.losses.DiscretePIDLoss])
@pytest.mark.parametrize(("num_classes", "kind"), [("3", PIDTypeError), (3.0, PIDTypeError),
                                                   (1, PIDValueError)])
def test_losses_built_from_their_class_check_num_classes(cls, num_classes, kind):
    with pytest.raises(kind, match=r"^num_classes:"):
        cls([(8,)], [(6,)], num_classes)


def test_vid_accepts_a_large_initial_variance():
    loss = make_loss("vid", [(8,)], [(6,)], 3, init_variance=1e9)
    assert torch.allclose(loss.pairs[0].variance.double(), torch.tensor(1e9, dtype=torch.float64),
                          rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.int64, "float64", None, np.float32])
def test_match_precision_needs_a_floating_torch_dtype(dtype):
    loss = make_loss("fitnets", [(8,)], [(6,)], 3)
    with pytest.raises(PIDTypeError, match=r"^dtype: must be a floating-point torch.dtype"):
        loss.match_precision(dtype)


@pytest.mark.parametrize("batch", [None, {"y": torch.zeros(2, dtype=torch.long)}])
def test_a_loss_given_something_else_than_a_batch_names_batch(batch):
    with pytest.raises(PIDTypeError, match=r"^batch: is a \w+, not a Batch"):
        make_loss("kd", [], [], 3).student_loss(batch)


def test_register_method_checks_its_name_and_factory():
    with pytest.raises(PIDTypeError, match=r"^name: must be a non-empty method name"):
        pd.register_method(3)
    with pytest.raises(PIDTypeError, match=r"^factory: registered as method 'broken'"):
        pd.register_method("broken")(3)
    assert "broken" not in pd.available_methods()


@pytest.mark.parametrize(("call", "kind", "match"), [
    (lambda: pd.audit(None, _mlp(), _data(), [("layer1", "layer1")]), PIDTypeError,
     r"^teacher: is a NoneType, not a torch.nn.Module"),
    (lambda: pd.audit(_mlp(), "resnet18", _data(), [("layer1", "layer1")]), PIDTypeError,
     r"^student: is a str, not a torch.nn.Module"),
    (lambda: pd.audit(_mlp(), _mlp(), _data(), [("layer1", "layer1")],
                      estimator_options=[("n_clusters", 2)]), PIDTypeError,
     r"^estimator_options: must be a dict"),
    (lambda: pd.audit_features(np.arange(60) % 3, np.ones((60, 4)), np.ones((60, 4)),
                               estimator_options="n_clusters=2"), PIDTypeError,
     r"^estimator_options: must be a dict"),
])
def test_audit_models_and_estimator_options_of_the_wrong_type(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


@pytest.mark.parametrize(("options", "kind", "match"), [
    ({"every": "5"}, PIDTypeError, r"^every: must be an integer"),
    ({"every": 1.5}, PIDTypeError, r"^every: must be an integer"),
    ({"every": True}, PIDTypeError, r"^every: must be an integer"),
    ({"every": 0}, PIDValueError, r"^every: must be >= 1"),
    ({"out_dir": 3}, PIDTypeError, r"^out_dir: must be a folder path or None"),
    ({"add_metrics": 1}, PIDTypeError, r"^add_metrics: must be True or False"),
    ({"method": 3}, PIDTypeError, r"^method: must be the method's name"),
    ({"layers": "layer1"}, PIDTypeError, r"^layers: must be a non-empty list"),
    ({"layers": [("layer1",)]}, PIDTypeError, r"^layers: holds an item that is not a pair"),
])
def test_audit_callback_arguments_of_the_wrong_type(options, kind, match):
    with pytest.raises(kind, match=match):
        pd.AuditCallback(**options)


@pytest.mark.parametrize(("call", "kind", "match"), [
    (lambda: pd.CachedTeacher("resnet", torch.randn(4, 16), ["layer1"]), PIDTypeError,
     r"^teacher: is a str, not a torch.nn.Module"),
    (lambda: pd.CachedTeacher(_mlp(), torch.randn(4, 16), None), PIDTypeError,
     r"^layers: must be a list of module paths"),
    (lambda: pd.FeatureHooks("resnet", ["layer1"], name="teacher"), PIDTypeError,
     r"^teacher: is a str, not a torch.nn.Module"),
    (lambda: pd.forward_with_features(_mlp(), torch.randn(2, 16), None), PIDTypeError,
     r"^layers: must be a list of module paths"),
    (lambda: pd.extract_features(_mlp(), _data(), "layer1"), PIDTypeError,
     r"^layers: must be a list of module paths \(a str would be read"),
    (lambda: pd.register_model(3), PIDTypeError, r"^name: must be a non-empty model name"),
    (lambda: pd.register_model("not_a_factory")(3), PIDTypeError,
     r"^factory: registered as model 'not_a_factory'"),
    (lambda: pd.get_model("digits_cnn", width=1.5), PIDValueError,
     r"^kwargs: model 'digits_cnn' cannot be built with \{'width': 1.5\}"),
    # sizes of 0 built models with empty layers (and torch's 'zero-element tensors' notes)
    (lambda: pd.get_model("digits_cnn", width=0), PIDValueError,
     r"^kwargs: model 'digits_cnn' built with \{'width': 0\} has layers of size 0"),
    (lambda: pd.get_model("digits_mlp", hidden=(0,)), PIDValueError,
     r"^kwargs: .* has layers of size 0 \(layer1.0.weight"),
    (lambda: pd.get_model("wrn-16-0"), PIDValueError,
     r"^name: model 'wrn-16-0' built as 'wrn-16-0' has layers of size 0"),
    (lambda: pd.resolve_schedule("5"), PIDTypeError, r"^epochs: must be an integer"),
    (lambda: pd.resolve_schedule(0), PIDValueError, r"^epochs: must be >= 1"),
    (lambda: pd.Schedule(-1, 2, 0.25), PIDValueError, r"^warmup: must be >= 0"),
    (lambda: pd.Schedule(0, 0, 0.25), PIDValueError, r"^cycle: must be >= 1"),
    (lambda: pd.Schedule(0, 2, 2), PIDValueError, r"^ratio: must be a number in \[0, 1\]"),
    (lambda: pd.BatchFormat(input_key=1.5), PIDTypeError, r"^input_key: must be a position"),
    (lambda: pd.BatchFormat(label_key=True), PIDTypeError, r"^label_key: must be a position"),
    (lambda: pd.BatchFormat(output_key=1.5), PIDTypeError, r"^output_key: must be a position"),
    (lambda: _distill(_data(), output_key=1.5), PIDTypeError, r"^output_key: must be"),
])
def test_public_helpers_refuse_arguments_of_the_wrong_type(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


def test_a_factory_s_own_typed_error_is_not_rewrapped():
    with pytest.raises(PIDValueError, match=r"^depth: must be 6n \+ 4"):
        pd.get_model("wrn-15-1")


def _report():
    g = np.random.default_rng(0)
    return pd.audit_features(np.arange(60) % 3, g.normal(size=(60, 4)), g.normal(size=(60, 4)),
                             ci=None, n_perm=0, estimator_options={"n_clusters": 2})


@pytest.mark.parametrize("writer", ["to_json", "to_csv"])
def test_report_writers_check_the_path(writer, tmp_path):
    report = _report()
    with pytest.raises(PIDValueError, match=r"^path: .* is a folder"):
        getattr(report, writer)(tmp_path)
    with pytest.raises(PIDTypeError, match=r"^path: must be a file path"):
        getattr(report, writer)(3)
    with pytest.raises(PIDValueError, match=r"^path: the folder .*missing does not exist"):
        getattr(report, writer)(tmp_path / "missing" / "a.txt")
    getattr(report, writer)(tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text()


@pytest.mark.parametrize(("options", "kind", "match"), [
    ({"dpi": 0}, PIDValueError, r"^dpi: must be > 0"),
    ({"dpi": "high"}, PIDTypeError, r"^dpi: must be a number"),
    ({"directory": 3}, PIDTypeError, r"^directory: must be a folder path"),
])
def test_report_save_checks_dpi_and_directory(options, kind, match, tmp_path):
    with pytest.raises(kind, match=match):
        _report().save(options.pop("directory", tmp_path), **options)
    assert not list(tmp_path.iterdir())                     # nothing half written


@pytest.mark.parametrize(("data", "kind"), [({}, PIDValueError), ([], PIDTypeError),
                                            ({"teacher_layer": "a"}, PIDValueError)])
def test_layer_audit_from_dict_names_data(data, kind):
    with pytest.raises(kind, match=r"^data: "):
        pd.LayerAudit.from_dict(data)


@pytest.mark.parametrize(("options", "match"), [
    ({"method": None}, r"^method: must be a method name \(str\)"),
    ({"method": 3}, r"^method: must be a method name \(str\)"),
    ({"method_options": None}, r"^method_options: must be a dict"),
    ({"method_options": [("temperature", 2)]}, r"^method_options: must be a dict"),
])
def test_method_and_method_options_of_the_wrong_type_are_type_errors(options, match):
    with pytest.raises(PIDTypeError, match=match):
        _distill(_data(), **options)


def _val_with(row, value):
    x = torch.randn(N, 16, generator=torch.Generator().manual_seed(1))
    x[row, 2] = value
    return _data(x=x)


def test_non_finite_inputs_in_the_first_validation_batch_are_refused_before_training():
    with pytest.raises(PIDValueError, match=r"^val_data: holds NaN or infinite inputs in its "
                                            r"first batch"):
        pd.Trainer(_mlp(), _mlp((6, 4)), _data(), method="kd", batch_size=4, progress=False,
                   val_data=_val_with(0, float("nan")))


def test_non_finite_inputs_in_a_later_validation_batch_name_val_data():
    trainer = pd.Trainer(_mlp(), _mlp((6, 4)), _data(), method="kd", batch_size=4,
                         progress=False, val_data=_val_with(N - 1, float("inf")))
    with pytest.raises(PIDValueError, match=r"^val_data: held NaN or infinite inputs in 1 "
                                            r"batch"):
        trainer.fit()
    with pytest.raises(PIDValueError, match=r"^val_data: held NaN"):
        trainer.evaluate(_val_with(5, float("nan")))


@pytest.mark.parametrize(("options", "match"), [
    ({"pair": "nope"}, r"^pair: is not one of the audited pairs \['layer1 -> layer1'\]"),
    ({"pair": 3}, r"^pair: is 3 but the audited layers hold 1 pair"),
    ({"layers": [("layr1", "layer1")]}, r"^layers: module 'layr1' not found in the teacher"),
    ({"layers": [("layer1", "layer1"), ("layer1", "nope")]},
     r"^layers: module 'nope' not found in the student"),
])
def test_audit_callback_pairs_are_checked_before_the_first_epoch(options, match):
    epochs = []
    callbacks = [pd.LambdaCallback(lambda trainer, epoch, metrics: epochs.append(epoch)),
                 pd.AuditCallback(ci=None, n_perm=0, **options)]
    with pytest.raises(PIDValueError, match=match):
        _distill(_data(), method="fitnets", layers=[("layer1", "layer1")], val_data=_data(),
                 callbacks=callbacks)
    assert epochs == []                                   # refused before training


def test_cached_teacher_inputs_of_another_precision_name_inputs():
    with pytest.raises(PIDTypeError, match=r"^inputs: .*torch.float64 but the teacher's "
                                           r"parameters are torch.float32"):
        pd.CachedTeacher(_mlp(), torch.randn(4, 16, dtype=torch.float64), ["layer1"])


def test_method_names_are_case_insensitive_as_in_make_loss():
    # make_loss('KD') built a KD loss while TrainConfig(method='KD') was refused
    from pidkit_distill import TrainConfig

    assert TrainConfig(method="KD").method == "kd"
    assert TrainConfig(method="Rid").method == "rid"
    result = _distill(_data(), method="KD")
    assert result.trainer.config.method == "kd" and result.final["train_kd"] >= 0
    with pytest.raises(PIDValueError, match=r"^method: 'kdx' is not a distillation method"):
        _distill(_data(), method="KDX")
