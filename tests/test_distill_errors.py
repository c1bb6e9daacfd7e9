"""Bad input to the distillation API fails with a typed error that names the argument, the
value and the fix: wrong layer names, mismatched feature shapes, models on the wrong device,
truncated or corrupted checkpoints."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from pidkit.errors import CheckpointError, PIDTypeError, PIDValueError
from pidkit_distill import models
from pidkit_distill.features import (
    FeatureHooks,
    check_feature_batch,
    check_layer_pairs,
    feature_shapes,
    forward_with_features,
    get_module,
)
from pidkit_distill.models import module_device
from pidkit_distill.train import Trainer, load_checkpoint

X = torch.zeros(2, 1, 8, 8)  # two digits-shaped inputs


@pytest.fixture(scope="module")
def cnn():
    return models.get_model("digits_cnn", width=4)  # modules layer1, layer2, layer3, fc, ...


# ----------------------------------------------------------------------------- layer names
@pytest.mark.parametrize("call", [
    lambda m, layers, name: FeatureHooks(m, layers, name=name),
    lambda m, layers, name: get_module(m, layers[0], name=name),
    lambda m, layers, name: forward_with_features(m, X, layers, name=name),
    lambda m, layers, name: feature_shapes(m, X, layers, name=name),
], ids=["FeatureHooks", "get_module", "forward_with_features", "feature_shapes"])
@pytest.mark.parametrize("name", ["teacher", "student"])
def test_unknown_layer_names_the_model_and_suggests_close_paths(cnn, call, name):
    with pytest.raises(PIDValueError) as info:
        call(cnn, ["layr3"], name)
    msg = str(info.value)
    assert msg.startswith("layers: module 'layr3' not found in the " + name)
    assert "Did you mean 'layer3'" in msg
    top = [n for n, _ in cnn.named_children()]
    assert f"has {len(list(cnn.named_modules())) - 1} submodules" in msg
    assert "top level: " + ", ".join(top) in msg
    assert f"{name}.named_modules()" in msg


def test_unknown_layer_suggestions_for_deeper_and_prefixed_paths():
    net = models.get_model("resnet18", num_classes=10, cifar_stem=True)
    with pytest.raises(PIDValueError, match=r"Did you mean 'layer3\.0\.conv2'"):
        get_module(net, "layer3.0.conv3", name="student")
    # a DistributedDataParallel-style prefix
    with pytest.raises(PIDValueError, match=r"module 'module\.layer3' not found.*Did you mean "
                                            r"'layer3'\?"):
        get_module(net, "module.layer3", name="teacher")
    # no close match: the top-level children are still listed
    with pytest.raises(PIDValueError, match=r"No module path is close to it\. .* top level: "
                                            r"conv1, maxpool, bn1, layer1"):
        get_module(net, "encoder", name="teacher")


def test_unknown_layer_through_the_trainer(cnn):
    train = torch.utils.data.TensorDataset(torch.randn(8, 1, 8, 8), torch.arange(8) % 4)
    teacher = models.get_model("digits_cnn", width=4)
    with pytest.raises(PIDValueError, match=r"^layers: .*'layr3'.*Did you mean 'layer3'"):
        Trainer(teacher, cnn, train, method="vid", layers=[("layr3", "layer3")],
                progress=False, epochs=1)


# ----------------------------------------------------------------------------- shapes
class _Tokens(nn.Module):
    """Hooks on ``proj`` see the batch folded into the token axis: ``(N * L, C)``."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):  # x: (N, L, 4)
        h = self.proj(x.reshape(-1, 4))
        return self.fc(h.view(x.shape[0], x.shape[1], -1).mean(1))


def test_feature_shapes_rejects_a_batch_folded_into_another_axis():
    with pytest.raises(PIDValueError) as info:
        feature_shapes(_Tokens(), torch.zeros(2, 5, 4), ["proj"], name="student")
    msg = str(info.value)
    assert msg.startswith("layers: layer 'proj' of the student (_Tokens) returned shape "
                          "(10, 6), which does not have the batch of 2 inputs on its first axis")
    assert "(N, C) or (N, C, *spatial)" in msg


def test_feature_shapes_rejects_a_feature_without_channel_axis():
    net = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))  # output (N,)
    with pytest.raises(PIDValueError, match=r"layer '1' of the teacher \(Sequential\) returned "
                                            r"shape \(2,\), which has no channel axis"):
        feature_shapes(net, torch.zeros(2, 4), ["1"], name="teacher")


def test_check_layer_pairs_names_the_pair_and_both_shapes():
    pairs = [("layer2", "layer2"), ("layer3", "fc1")]
    t, s = [(64, 16, 16), (128, 8, 8)], [(32, 16, 16), (32,)]
    check_layer_pairs(t, s, pairs)  # default: maps and vectors are pooled to a common size
    with pytest.raises(PIDValueError) as info:
        check_layer_pairs(t, s, pairs, spatial="match")
    assert str(info.value) == (
        "layers: pair 1 ('layer3', 'fc1') pairs a teacher 2-D feature map of per-sample shape "
        "(128, 8, 8) with a student vector of shape (32,). Pick a student layer that outputs a "
        "2-D map, or a teacher layer that outputs a vector")
    with pytest.raises(PIDValueError, match=r"pair 0 \('a', 'b'\) pairs a teacher vector .* "
                                            r"\(8,\) with a student 1-D feature map .* \(4, 20\)"
                                            r"\. Pick a teacher layer that outputs a 1-D map"):
        check_layer_pairs([(8,)], [(4, 20)], [("a", "b")], spatial="match")
    with pytest.raises(PIDValueError, match=r"^layers: 2 teacher layers but 1 student layers"):
        check_layer_pairs(t, s[:1])
    with pytest.raises(PIDValueError, match=r"pair 0: the student feature has per-sample "
                                            r"shape \(\) \(one number per sample"):
        check_layer_pairs([(4,)], [()])
    with pytest.raises(PIDValueError, match=r"pair 0 \('x', 'y'\): the teacher feature has "
                                            r"per-sample shape \(4, 0\) with an empty axis"):
        check_layer_pairs([(4, 0)], [(4,)], [("x", "y")])
    with pytest.raises(PIDValueError, match=r"^spatial: is not a known choice"):
        check_layer_pairs(t, s, spatial="strict")


def test_check_feature_batch_names_the_pair_and_both_shapes():
    y = torch.zeros(64, dtype=torch.long)
    good_t, good_s = torch.zeros(64, 8, 4, 4), torch.zeros(64, 3)
    check_feature_batch(y, [good_t], [good_s], [("layer3", "enc")])
    check_feature_batch(y, [good_t], [], [("layer3", "enc")])  # student not computed (RID)
    with pytest.raises(PIDValueError) as info:
        check_feature_batch(y, [good_t], [torch.zeros(1024, 3)], [("layer3", "enc.norm")])
    assert str(info.value).startswith(
        "layers: pair 0 ('layer3', 'enc.norm'): teacher feature shape (64, 8, 4, 4) and student "
        "feature shape (1024, 3) do not both start with the batch size 64 of the labels (y of "
        "shape (64,)). Hook modules whose output is (N, C) or (N, C, *spatial) with the batch "
        "first")
    with pytest.raises(PIDValueError, match=r"pair 1 \('b', 'd'\): teacher feature shape "
                                            r"\(32, 5\) and student feature shape not computed"):
        check_feature_batch(y, [good_t, torch.zeros(32, 5)], [], [("a", "c"), ("b", "d")])


# ----------------------------------------------------------------------------- devices
def test_module_device_on_one_device():
    assert module_device(nn.Linear(2, 2), "student") == torch.device("cpu")
    assert module_device(nn.Linear(2, 2), "student", expected="cpu") == torch.device("cpu")
    assert module_device(nn.ReLU(), "teacher") is None  # no tensors at all


def test_module_device_rejects_meta_tensors():
    with torch.device("meta"):
        teacher = models.get_model("digits_cnn", width=4)
    with pytest.raises(PIDValueError) as info:
        module_device(teacher, "teacher")
    msg = str(info.value)
    assert msg.startswith("teacher: has parameters or buffers on the 'meta' device (shapes "
                          "without data), e.g. ['layer1.0.weight'")
    assert "teacher.to_empty(device=...) then teacher.load_state_dict(weights)" in msg


def test_module_device_rejects_a_model_partly_on_meta():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2, device="meta"))
    with pytest.raises(PIDValueError, match=r"^student: has parameters or buffers on the 'meta' "
                                            r"device .* e\.g\. \['1\.weight', '1\.bias'\]"):
        module_device(net, "student")


def test_module_device_rejects_another_device_than_requested():
    with pytest.raises(PIDValueError, match=r"^teacher: is on cpu, not on the requested device "
                                            r"cuda:1\. Move it with teacher\.to\('cuda:1'\), or "
                                            r"request device='cpu'"):
        module_device(nn.Linear(2, 2), "teacher", expected="cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_module_device_rejects_a_model_split_over_devices():
    net = nn.Sequential(nn.Linear(2, 2).cuda(), nn.Linear(2, 2))
    assert module_device(net[0], "teacher", expected="cuda") == torch.device("cuda", 0)
    with pytest.raises(PIDValueError, match=r"^teacher: has parameters or buffers on 2 devices "
                                            r"\(cuda:0: 2 tensors.*cpu: 2 tensors.*teacher\.to"):
        module_device(net, "teacher")


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint in the trainer's format, written by Trainer.save_checkpoint."""
    torch.manual_seed(0)
    train = torch.utils.data.TensorDataset(torch.randn(16, 1, 8, 8), torch.arange(16) % 4)
    student = models.get_model("digits_mlp", hidden=(8,), num_classes=4)
    trainer = Trainer(None, student, train, method="none", epochs=1, batch_size=8,
                      progress=False)
    trainer.fit()
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    trainer.save_checkpoint(path)
    return path, trainer


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _expect(path, *patterns, cause=None):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    err = info.value
    assert isinstance(err, PIDValueError) and isinstance(err, ValueError)
    msg = str(err)
    assert msg.startswith(f"checkpoint: {path} "), msg
    for pattern in patterns:
        assert re.search(pattern, msg), (pattern, msg)
    if cause is not None:
        assert isinstance(err.__cause__, cause), repr(err.__cause__)
    return msg


REDO = r"copy it again, resume from an earlier checkpoint or train again"


def test_a_good_checkpoint_loads(checkpoint):
    path, trainer = checkpoint
    state = load_checkpoint(path)
    assert state["format"] == "pidkit_distill.checkpoint/1"
    assert torch.equal(next(iter(state["student"].values())),
                       next(iter(trainer.student.state_dict().values())))


@pytest.mark.parametrize("keep", [0.99, 0.5, 0.1, 30])
def test_truncated_checkpoint(checkpoint, tmp_path, keep):
    data = checkpoint[0].read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    path = _write(tmp_path / "cut.pt", data[:n])
    _expect(path, rf"is truncated \({n} bytes, the end of the zip archive is missing\)", REDO)


def test_checkpoint_with_flipped_bytes_fails_its_checksum(checkpoint, tmp_path):
    data = bytearray(checkpoint[0].read_bytes())
    mid = len(data) // 2  # inside the tensor records
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path = _write(tmp_path / "flipped.pt", bytes(data))
    _expect(path, r"is corrupted \(Bad CRC-32 for file '.*'\)", REDO, cause=Exception)


def test_random_bytes_empty_file_and_text(tmp_path):
    noise = np.random.default_rng(0).bytes(4096)    # deterministic: no magic number by chance
    _expect(_write(tmp_path / "random.pt", noise),
            r"is not a checkpoint file written by torch\.save \(4096 bytes starting with "
            r"b'.*', not a zip archive\)",
            r"Pass a file written by Trainer\.save_checkpoint")
    _expect(_write(tmp_path / "empty.pt", b""), r"is empty \(0 bytes\)", REDO)
    _expect(_write(tmp_path / "notes.txt", b"epoch 3\n"), r"starting with b'epoc'")


def test_legacy_torch_format_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"format": "pidkit_distill.checkpoint/1"}, path,
               _use_new_zipfile_serialization=False)
    _expect(path, r"legacy \(pre-zip\) format, which Trainer\.save_checkpoint never writes")


def test_directory_and_missing_file(checkpoint, tmp_path):
    _expect(checkpoint[0].parent, r"is a directory\. Pass the file inside it: "
            + re.escape(str(checkpoint[0])))
    _expect(tmp_path, r"is a directory\. Pass the checkpoint file itself")
    _write(tmp_path / "epoch3.pt", b"x")
    _expect(tmp_path / "chekpoint.pt", r"does not exist\. Check the path; .* holds "
            r"\['epoch3\.pt'\]")
    _expect(tmp_path / "nowhere" / "checkpoint.pt", r"the folder .*nowhere does not exist")


def test_plain_weights_and_other_format_versions(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    _expect(weights, r"is not a pidkit_distill checkpoint\. Pass a file written by "
            r"Trainer\.save_checkpoint \(plain weights load with model\.load_state_dict")
    future = tmp_path / "future.pt"
    torch.save({"format": "pidkit_distill.checkpoint/2"}, future)
    _expect(future, r"has format 'pidkit_distill\.checkpoint/2'; this version reads "
            r"'pidkit_distill\.checkpoint/1'")


def test_checkpoint_path_must_be_a_path():
    with pytest.raises(PIDTypeError, match=r"^checkpoint: must be a file path \(got 3\)"):
        load_checkpoint(3)


def test_trainer_resume_from_a_truncated_checkpoint(checkpoint, tmp_path):
    path, trainer = checkpoint
    cut = _write(tmp_path / "cut.pt", path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"^checkpoint: .*cut\.pt is truncated"):
        trainer.load_checkpoint(cut)
