"""Models and data "from the wild" (sequence models, structured layer outputs, reused modules,
wrapped models, pandas labels), third sweep: each test of a defect failed before its fix; the
tests marked "guard" check that a fix changes nothing else."""

import dataclasses
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import pidkit_distill as pd
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill.features import FeatureHooks

torch.set_num_threads(1)


class _Recurrent(nn.Module):
    """A classifier over 4 steps of 2 features; ``lstm`` returns ``(output, (h_n, c_n))``."""

    def __init__(self, hidden):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 3)

    def forward(self, x):
        out, _ = self.lstm(x.view(len(x), 4, 2))
        return self.fc(out[:, -1])


def _sequences(n=12):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 8, generator=g), torch.arange(n) % 3


def _fit(layers, student):
    x, y = _sequences()
    torch.manual_seed(0)
    teacher = _Recurrent(6)
    return pd.distill(teacher, student, (x, y), method="fitnets", layers=layers, epochs=1,
                      batch_size=4, lr=0.1, progress=False)


def test_an_item_of_a_tuple_output_is_a_layer_the_trainer_takes():
    # 'lstm[0]' (documented) was refused by the set-up check as "module 'lstm[0]' not found"
    torch.manual_seed(1)
    indexed, plain = _Recurrent(4), _Recurrent(4)
    plain.load_state_dict(indexed.state_dict())
    _fit([("lstm[0]", "lstm[0]")], indexed)
    _fit([("lstm", "lstm")], plain)          # no suffix: the first tensor, the same item
    for a, b in zip(indexed.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(indexed.fc.weight, _Recurrent(4).fc.weight)


@pytest.mark.parametrize("spec, kind, match", [
    ("lstm[1]", PIDTypeError, r"'lstm\[1\]' asks for item 1 of the module's tuple, which is a "
     r"tuple, not a tensor \(items: \[0\] Tensor, \[1\] tuple\)"),
    ("lstm[2]", PIDValueError, r"'lstm\[2\]' asks for item 2 but the module returned a tuple "
     r"of 2 items"),
])
def test_a_tuple_item_that_is_not_a_tensor_is_refused_before_training(spec, kind, match):
    # were an AttributeError ('tuple' object has no attribute 'is_inference') and an IndexError
    torch.manual_seed(1)
    student = _Recurrent(4)
    before = [p.clone() for p in student.parameters()]
    with pytest.raises(kind, match="layers: " + match):
        _fit([(spec, "lstm")], student)
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


class _ModelOutput(OrderedDict):
    """A Hugging Face style ``ModelOutput``: a mapping whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


@dataclasses.dataclass
class _Encoded:
    hidden: torch.Tensor
    pooled: torch.Tensor
    mask: object = None


class _Encoder(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.proj = nn.Linear(4, 3)

    def forward(self, x):
        h = self.proj(x)
        pooled = h.mean(1, keepdim=True)
        if self.kind == "mapping":
            return _ModelOutput(last_hidden_state=h, pooler_output=pooled, note="text")
        return _Encoded(h, pooled, "text")


class _Classifier(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.encoder = _Encoder(kind)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        out = self.encoder(x)
        return self.head(out.last_hidden_state if self.encoder.kind == "mapping" else out.hidden)


@pytest.mark.parametrize("kind", ["mapping", "dataclass"])
def test_a_layer_returning_a_model_output_or_a_dataclass_gives_its_items(kind):
    # "returned _ModelOutput, not a tensor or tuple", whatever the index
    torch.manual_seed(0)
    net = _Classifier(kind)
    x = torch.randn(5, 4)
    specs = ["encoder", "encoder[0]", "encoder[1]", "encoder[-2]"]
    with torch.no_grad(), FeatureHooks(net, specs) as hooks:
        net(x)
        got = dict(zip(specs, hooks.collect(), strict=True))
        hidden = x @ net.encoder.proj.weight.T + net.encoder.proj.bias
    for spec in ("encoder", "encoder[0]"):
        torch.testing.assert_close(got[spec], hidden)
    torch.testing.assert_close(got["encoder[1]"], hidden.mean(1, keepdim=True))
    torch.testing.assert_close(got["encoder[-2]"], hidden.mean(1, keepdim=True))
    with pytest.raises(PIDTypeError, match=r"layers: 'encoder\[2\]' asks for item 2 of the "
                       r"module's .*, which is a str, not a tensor"):
        with FeatureHooks(net, ["encoder[2]"]):
            net(x)


def test_a_model_output_layer_trains_as_its_tensor_does():
    x, y = torch.randn(8, 4), torch.arange(8) % 2
    torch.manual_seed(0)
    teacher = _Classifier("mapping")
    students = []
    for spec in ("encoder[0]", "encoder.proj"):
        torch.manual_seed(1)
        students.append(_Classifier("dataclass"))
        spec_s = spec if spec == "encoder.proj" else "encoder"
        pd.distill(teacher, students[-1], (x, y), method="fitnets", layers=[(spec, spec_s)],
                   epochs=1, batch_size=4, lr=0.1, progress=False)
    for a, b in zip(students[0].parameters(), students[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "eel"] * 20),
    np.array(["cat", "dog", "eel"] * 20, dtype=object),
], ids=["str", "object"])
def test_class_names_as_labels_get_a_fix_that_maps_them_to_indices(labels):
    # the advice was "Convert them with y.long()", which strings do not have
    g = np.random.default_rng(0)
    features = g.normal(size=(60, 3))
    with pytest.raises(PIDTypeError, match=r"labels: holds labels of dtype (<U3|object); .* "
                       r"Map the class names to indices 0..K-1, e.g. classes, y = "
                       r"np.unique\(labels, return_inverse=True\)"):
        pd.audit_features(labels, features, features, ci=None)
    _, codes = np.unique(labels, return_inverse=True)
    assert codes.tolist() == [0, 1, 2] * 20


class _Attention(nn.Module):
    """Self-attention over 4 steps; ``batch_first=False`` makes ``att`` output (L, N, C)."""

    def __init__(self, dim, batch_first):
        super().__init__()
        self.inp = nn.Linear(2, dim)
        self.att = nn.MultiheadAttention(dim, 2, batch_first=batch_first)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(dim, 3)

    def forward(self, x):
        h = self.inp(x.view(len(x), 4, 2))
        if not self.att.batch_first:
            h = h.transpose(0, 1)
        out, _ = self.att(h, h, h)
        if not self.att.batch_first:
            out = out.transpose(0, 1)
        return self.fc(self.drop(out.mean(1)))


def test_an_audit_of_a_layer_without_the_batch_first_names_the_layer():
    # an IndexError from deep inside the discretisation (40 labels, 4 feature rows)
    x, y = _sequences(40)
    torch.manual_seed(0)
    teacher, student = _Attention(8, False), _Attention(4, False)
    with pytest.raises(PIDValueError, match=r"layers: pair 0 \('att', 'att'\): teacher feature "
                       r"shape \(4, 40, 8\) and student feature shape \(4, 40, 4\) do not both "
                       r"start with the batch size 40 .*batch_first=True"):
        pd.audit(teacher, student, (x, y), [("att", "att")], ci=None, n_perm=0)


def test_an_audit_callback_layer_it_cannot_read_stops_the_run_before_training():
    # the trainer trained epoch 0, then the first audit failed (an IndexError)
    x, y = _sequences()
    torch.manual_seed(0)
    teacher, student = _Attention(8, False), _Attention(4, False)
    before = [p.clone() for p in student.parameters()]
    callback = pd.AuditCallback((x, y), layers=[("att", "att")], ci=None, n_perm=0)
    with pytest.raises(PIDValueError, match=r"layers: pair 0 \('att', 'att'\).*batch_first"):
        pd.distill(teacher, student, (x, y), method="kd", epochs=1, batch_size=4,
                   progress=False, callbacks=[callback])
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


def test_the_audit_callback_probe_leaves_training_as_it_was():
    # guard: the pre-training read of the audit data draws from no generator of the run
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _sequences(16)
    torch.manual_seed(0)
    teacher = _Attention(8, True)
    runs = []
    for callbacks in ([], [pd.AuditCallback(
            DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(3)),
            layers=[("att[0]", "inp")], ci=None, n_perm=0)]):
        torch.manual_seed(1)
        student = _Attention(4, True)                # dropout draws from the global RNG
        result = pd.distill(teacher, student, (x, y), method="kd", epochs=2, batch_size=4,
                            progress=False, callbacks=callbacks)
        runs.append((student, result))
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert runs[1][1].history[-1]["audit_redundancy"] >= 0


class _BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock``: one in-place ``relu`` applied twice."""

    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def _resnet(width):
    net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), _BasicBlock(width),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 3))
    net.eval()
    return net


def test_a_module_applied_twice_in_a_forward_pass_is_refused_naming_it():
    # '1.relu' silently gave the output of its second call, the block's output
    torch.manual_seed(0)
    net = _resnet(4)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad(), FeatureHooks(net, ["1.relu", "1.conv2", "1"]) as hooks:
        net(x)
        with pytest.raises(PIDValueError, match=r"layers: a hooked module of the model "
                           r"\(Sequential\) ran more than once in one forward pass \('1.relu' 2 "
                           r"times\).*'layer1.0.conv2', not 'layer1.0.relu'"):
            hooks.collect()
    with torch.no_grad(), FeatureHooks(net, ["1.conv2", "1"]) as hooks:
        for _ in range(2):                       # each forward pass counts afresh
            net(x)
            conv2, block = hooks.collect()
        stem = net[0](x)
        first = torch.relu(net[1].bn1(net[1].conv1(stem)))
        torch.testing.assert_close(conv2, net[1].conv2(first))
        torch.testing.assert_close(block, torch.relu(net[1].bn2(conv2) + stem))
    x_train, y_train = torch.randn(8, 3, 5, 5), torch.arange(8) % 3
    student = _resnet(2)
    before = [p.clone() for p in student.parameters()]
    with pytest.raises(PIDValueError, match=r"ran more than once.*'1.relu' 2 times"):
        pd.distill(_resnet(4), student, (x_train, y_train), method="vid",
                   layers=[("1.conv2", "1.relu")], epochs=1, batch_size=4, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


@pytest.mark.parametrize("reentrant", [False, True])
def test_activation_checkpointing_is_not_taken_for_a_module_run_twice(reentrant):
    # guard: the backward pass runs a checkpointed segment again, after the features were
    # collected, which is not a second call in the forward pass
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.block = nn.Sequential(nn.Linear(6, width), nn.Tanh(), nn.Linear(width, width))
            self.fc = nn.Linear(width, 3)

        def forward(self, x):
            return self.fc(checkpoint(self.block, x, use_reentrant=reentrant))

    x, y = torch.randn(12, 6), torch.arange(12) % 3
    torch.manual_seed(0)
    teacher, student = Checkpointed(8), Checkpointed(4)
    start = student.fc.weight.clone()
    result = pd.distill(teacher, student, (x, y), method="vid", layers=[("block.2", "block.2")],
                        epochs=2, batch_size=4, progress=False)
    assert len(result.history) == 2
    assert not torch.equal(start, student.fc.weight)


@pytest.mark.parametrize("argument", ["train", "audit"])
def test_class_names_in_an_inputs_labels_pair_are_named_as_the_labels(argument):
    # "whose entries are not numeric arrays ... Pass tensors or numeric numpy arrays"
    pandas = pytest.importorskip("pandas")
    g = np.random.default_rng(0)
    x = g.normal(size=(12, 6)).astype(np.float32)
    names = pandas.Series(["cat", "dog", "eel"] * 4)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    name = "train_data" if argument == "train" else "data"
    with pytest.raises(PIDTypeError, match=rf"{name}: is a tuple \(inputs, labels\) whose labels "
                       r"are not a numeric array .*np.unique\(labels, return_inverse=True\)"):
        if argument == "train":
            pd.distill(None, net, (x, names), method="none", epochs=1, batch_size=4,
                       progress=False)
        else:
            pd.audit(net, net, (x, names), [("1", "1")], ci=None, n_perm=0)
    codes = pandas.Series(np.unique(names, return_inverse=True)[1])   # the fix trains
    pd.distill(None, net, (x, codes), method="none", epochs=1, batch_size=4, progress=False)


def _resumable(width=5):
    torch.manual_seed(width)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Dropout(0.2), nn.Linear(width, 3))


_RESUMED = dict(method="rid", layers=[("0", "0")], batch_size=4, warmup=1, cycle=2,
                ratio=0.5, epochs=5, progress=False)


@pytest.mark.parametrize("first, second", [("wrapped", "plain"), ("plain", "wrapped")])
def test_a_run_resumes_with_or_without_a_wrapper_around_the_student(tmp_path, first, second):
    # a checkpoint of nn.DataParallel(student) held 'module.'-prefixed keys (torch.compile's:
    # '_orig_mod.'), refused by the same student without the wrapper ("does not fit")
    x, y = torch.randn(16, 8, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    teacher = _resumable(12)

    def wrap(net, how):
        return nn.DataParallel(net) if how == "wrapped" else net

    torch.manual_seed(7)
    whole = _resumable()
    pd.distill(teacher, whole, (x, y), **_RESUMED)
    torch.manual_seed(7)
    stop = pd.LambdaCallback(lambda trainer, epoch, metrics: setattr(trainer, "stop",
                                                                      epoch == 1))
    pd.distill(teacher, wrap(_resumable(), first), (x, y), out_dir=tmp_path, callbacks=[stop],
               **_RESUMED)
    saved = pd.load_checkpoint(tmp_path / "checkpoint.pt")["student"]
    assert sorted(saved) == sorted(whole.state_dict())        # the user's model's keys
    torch.manual_seed(123)                                     # the checkpoint's RNG is used
    resumed = _resumable()
    pd.distill(teacher, wrap(resumed, second), (x, y), out_dir=tmp_path,
               resume=tmp_path / "checkpoint.pt", **_RESUMED)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_checkpoint_with_the_wrappers_keys_still_resumes_into_the_wrapper(tmp_path):
    # guard: the checkpoints of a wrapped student written before the fix
    x, y = torch.randn(16, 8, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    teacher = _resumable(12)
    pd.distill(teacher, nn.DataParallel(_resumable()), (x, y), out_dir=tmp_path, **_RESUMED)
    state = pd.load_checkpoint(tmp_path / "checkpoint.pt")
    state["student"] = {f"module.{k}": v for k, v in state["student"].items()}   # written before
    student = nn.DataParallel(_resumable())
    trainer = pd.Trainer(teacher, student, (x, y), config=pd.TrainConfig(**{
        k: v for k, v in _RESUMED.items() if k not in ("layers", "progress")}, progress=False),
        layers=[("0", "0")])
    trainer.load_state_dict(state)
    for name, value in student.state_dict().items():
        torch.testing.assert_close(value, state["student"][name], rtol=0, atol=0)
