"""Bugs a new user met with their own models and data (each test failed before its fix)."""

import pytest
import torch
from torch import nn
from torch.utils.data import IterableDataset

import pidkit_distill as pd
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill.losses import Batch

torch.set_num_threads(1)


def _data(n=12, dim=6, classes=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=g), torch.arange(n) % classes


def _mlp(dim=6, hidden=8, classes=3):
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class _Stream(IterableDataset):
    def __init__(self, samples):
        self.samples = samples

    def __iter__(self):
        return iter(self.samples)


def _ragged(x, y):
    """Samples whose inputs alternate between 5 and 6 features (they need a collate_fn)."""
    return [(x[i, : 6 - i % 2], y[i]) for i in range(len(y))]


@pytest.mark.parametrize("wrap", [list, _Stream], ids=["list", "iterable"])
def test_samples_that_cannot_be_batched_are_a_typed_error(wrap):
    x, y = _data()
    with pytest.raises(PIDTypeError, match=r"train_data: holds samples that cannot be batched "
                       r"together \(stack expects.*collate_fn") as info:
        pd.distill(None, _mlp(), wrap(_ragged(x, y)), method="none", epochs=1,
                   batch_size=4, progress=False)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_tuple_of_plain_lists_is_a_typed_error_naming_the_fix():
    x, y = _data()
    with pytest.raises(PIDTypeError, match=r"val_data: holds samples that cannot be batched.*"
                       r"TensorDataset\(torch.as_tensor\(x\)"):
        pd.distill(None, _mlp(), (x, y), val_data=(x.tolist(), y.tolist()), method="none",
                   epochs=1, batch_size=4, progress=False)


def test_string_labels_are_a_typed_error_naming_the_data():
    x, _ = _data()
    samples = [(x[i], ["cat", "dog", "eel"][i % 3]) for i in range(len(x))]
    with pytest.raises(PIDTypeError, match=r"train_data: yields labels that are not numbers "
                       r"\(\['cat', 'dog', 'eel'\]"):
        pd.distill(None, _mlp(), samples, method="none", epochs=1, batch_size=4,
                   progress=False)


@pytest.mark.parametrize("form", ["dataset", "samples", "tuple"])
def test_extract_features_takes_the_data_forms_the_trainer_takes(form):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _data(n=10)
    torch.manual_seed(0)
    net = _mlp()
    data = {"dataset": TensorDataset(x, y), "samples": list(zip(x, y, strict=True)),
            "tuple": (x, y)}[form]
    got = pd.extract_features(net, data, ["1"])
    want = pd.extract_features(net, DataLoader(TensorDataset(x, y), batch_size=4), ["1"])
    assert got.targets.tolist() == y.tolist()
    torch.testing.assert_close(got.features["1"], want.features["1"])
    torch.testing.assert_close(got.features["1"], torch.relu(net[0](x)))


def test_student_sharing_trainable_teacher_parameters_is_refused():
    x, y = _data()
    torch.manual_seed(0)
    teacher = _mlp()
    student = nn.Sequential(teacher[0], nn.ReLU(), nn.Linear(8, 3))   # the teacher's layer
    with pytest.raises(PIDValueError, match=r"student: shares 2 trainable parameter\(s\) with "
                       r"the teacher \(e.g. \['0.weight', '0.bias'\]\)"):
        pd.distill(teacher, student, (x, y), method="kd", epochs=1, batch_size=4,
                   progress=False)
    assert all(p.requires_grad for p in student.parameters())   # nothing frozen on the way


def test_student_on_a_frozen_shared_backbone_trains_its_head_only():
    x, y = _data()
    torch.manual_seed(0)
    teacher = _mlp()
    student = nn.Sequential(teacher[0].requires_grad_(False), nn.ReLU(), nn.Linear(8, 3))
    backbone = teacher[0].weight.clone()
    head = student[2].weight.clone()
    pd.distill(teacher, student, (x, y), method="kd", epochs=1, batch_size=4, progress=False)
    assert torch.equal(teacher[0].weight, backbone)
    assert not torch.equal(student[2].weight, head)


@pytest.mark.parametrize("method, part, unit", [("vid", "train_vid", "nats"),
                                                ("fitnets", "train_hint", "squared feature"),
                                                ("ted", "train_mse", "squared feature")])
def test_logged_loss_parts_carry_their_documented_units(tmp_path, method, part, unit):
    import csv

    x, y = _data()
    torch.manual_seed(0)
    res = pd.distill(_mlp(hidden=10), _mlp(), (x, y), method=method, layers=[("1", "1")],
                     epochs=1, batch_size=4, progress=False, out_dir=tmp_path)
    assert part in res.final
    assert res.trainer.units()[part].startswith(unit)
    with open(tmp_path / "metrics.csv") as fh:
        header = next(csv.reader(fh))
    assert f"{part} [{unit}" in " ".join(header)


def test_validating_on_a_user_dataloader_does_not_change_training():
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _data(n=16)
    weights = []
    for val in [None, DataLoader(TensorDataset(x, y), batch_size=4)]:
        torch.manual_seed(3)
        student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
        res = pd.distill(None, student, (x, y), val_data=val, method="none", epochs=3,
                         batch_size=4, progress=False)
        weights.append(student[3].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    state = torch.get_rng_state()
    res.trainer.evaluate()
    assert torch.equal(torch.get_rng_state(), state)


def _bn_mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("case", ["schedule", "one_sample_batch", "iterable_tail"])
def test_trainer_warnings_point_at_the_users_line(case):
    x, y = _data(n=9)
    torch.manual_seed(0)
    options = dict(method="none", epochs=1, batch_size=4, progress=False)
    data = (x, y)
    student = _bn_mlp()
    if case == "schedule":   # ends with a teacher epoch
        options.update(method="rid", layers=[("1", "1")], epochs=4, warmup=1, cycle=2,
                       ratio=0.5)
        teacher = _mlp(hidden=8)
    else:
        teacher = None
    if case == "iterable_tail":
        data = _Stream(list(zip(x, y, strict=True)))
    with pytest.warns(UserWarning, match="one sample|teacher-phase epoch") as record:
        pd.distill(teacher, student, data, **options)
    assert {w.filename for w in record
            if "one sample" in str(w.message) or "teacher-phase" in str(w.message)} == {__file__}


def test_method_options_with_a_ready_loss_are_refused_not_ignored():
    x, y = _data()
    torch.manual_seed(0)
    loss = pd.make_loss("kd", [], [], num_classes=3, temperature=2.0)
    with pytest.raises(PIDValueError, match=r"method_options: configures the loss built from "
                       r"method='kd', but loss= gives a ready KDLoss"):
        pd.distill(_mlp(), _mlp(), (x, y), loss=loss, method="kd",
                   method_options={"temperature": 8.0}, epochs=1, progress=False)
    res = pd.distill(_mlp(), _mlp(), (x, y), loss=loss, epochs=1, progress=False)
    assert res.trainer.loss_fn.temperature == 2.0


@pytest.mark.parametrize("method", ["kd", "rid", "none"])
@pytest.mark.parametrize("bad, kind", [("bogus", PIDValueError), (3, PIDTypeError)])
def test_set_phase_refuses_unknown_phase_for_every_loss(method, bad, kind):
    shapes = ([(8, 4, 4)], [(4, 4, 4)]) if method == "rid" else ([], [])
    loss = pd.make_loss(method, *shapes, num_classes=3)
    with pytest.raises(kind, match=r"phase:.*warmup, teacher, student"):
        loss.set_phase(bad)


def test_set_phase_check_wraps_a_custom_override():
    seen = []

    class Custom(pd.DistillLoss):
        uses_features = False

        def student_loss(self, batch):
            raise NotImplementedError

        def set_phase(self, phase):
            seen.append(phase)

    Custom().set_phase("Teacher")
    assert seen == ["teacher"]
    with pytest.raises(PIDValueError, match="phase:"):
        Custom().set_phase("bogus")
    assert seen == ["teacher"]


def test_rid_teacher_loss_refuses_non_bool_distill():
    loss = pd.make_loss("rid", [(8, 4, 4)], [(4, 4, 4)], num_classes=3)
    batch = Batch(y=torch.zeros(2, dtype=torch.long),
                     teacher_features=[torch.randn(2, 8, 4, 4)],
                     student_features=[torch.randn(2, 4, 4, 4)])
    with pytest.raises(PIDTypeError, match="distill:"):
        loss.teacher_loss(batch, distill=1)
    value, _ = loss.teacher_loss(batch, distill=True)
    assert torch.isfinite(value)


@pytest.mark.parametrize("layers, side", [([("", "")], "teacher"), ([("1", "")], "student")])
def test_distill_refuses_empty_layer_path_as_the_cli_does(layers, side):
    x, y = _data()
    with pytest.raises(PIDValueError, match=rf"layers: holds the empty path, which names the "
                       rf"whole {side}.*named_modules"):
        pd.distill(_mlp(hidden=10), _mlp(), (x, y), method="fitnets", layers=layers,
                   epochs=1, batch_size=4, progress=False)
