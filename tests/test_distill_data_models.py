"""Data sets (CIFAR from files the test writes, digits, MNIST-1D, per-class subsets), feature
hooks, and the model registry (ResNets, Wide-ResNets, untrained and nuisance teachers)."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import data, models
from pidkit_distill.features import (
    FeatureHooks,
    extract_features,
    feature_shapes,
    forward_with_features,
)
from pidkit_distill.train import Trainer

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- CIFAR files
def _images(n, offset):
    """Deterministic uint8 images (n, 3, 32, 32) with a recognisable value per image."""
    base = np.arange(3 * 32 * 32, dtype=np.int64).reshape(3, 32, 32) % 200
    return np.stack([(base + offset + i) % 256 for i in range(n)]).astype(np.uint8)


def _write_binary(root, variant, n=3):
    if variant == 10:
        folder = root / "cifar-10-batches-bin"
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    else:
        folder = root / "cifar-100-binary"
        names = ["train.bin", "test.bin"]
    folder.mkdir(parents=True)
    for k, name in enumerate(names):
        imgs = _images(n, 10 * k)
        labels = (np.arange(n) + k) % variant
        prefix = [labels[:, None]] if variant == 10 else [(labels // 5)[:, None], labels[:, None]]
        rec = np.concatenate([*prefix, imgs.reshape(n, -1)], axis=1).astype(np.uint8)
        (folder / name).write_bytes(rec.tobytes())


def test_cifar10_binary_format(tmp_path):
    _write_binary(tmp_path, 10)
    train = data.CIFAR(tmp_path, 10, train=True, normalize=False)
    test = data.CIFAR(tmp_path, 10, train=False, normalize=False)
    assert len(train) == 15 and len(test) == 3
    # batch k holds labels (i + k) % 10 and images offset by 10 k + i
    assert train.targets.tolist() == [(i + k) % 10 for k in range(5) for i in range(3)]
    x, y = train[4]  # batch 1 (k = 1), image 1
    assert int(y) == 2
    assert torch.equal((x * 255).round().to(torch.uint8),
                       torch.from_numpy(_images(3, 10)[1]))
    xn, _ = data.CIFAR(tmp_path, 10, train=True)[4]
    mean = torch.tensor(data.CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(data.CIFAR_STD).view(3, 1, 1)
    torch.testing.assert_close(xn, (x - mean) / std)


def test_cifar100_binary_uses_fine_labels_and_augmentation_shapes(tmp_path):
    _write_binary(tmp_path, 100, n=4)
    train, test = data.load_cifar(tmp_path, 100, augment=True)
    assert train.targets.tolist() == [0, 1, 2, 3] and test.targets.tolist() == [1, 2, 3, 4]
    torch.manual_seed(0)
    x, _ = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_cifar_python_format_through_restricted_unpickler(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batch = {b"data": _images(2, k).reshape(2, -1), b"labels": [k % 10, (k + 1) % 10]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    test = data.CIFAR(tmp_path, 10, train=False, fmt="python", normalize=False)
    assert test.targets.tolist() == [5, 6]
    assert torch.equal(test.data[1], torch.from_numpy(_images(2, 5)[1]))


class _Exploit:
    def __reduce__(self):
        return (print, ("this should never run",))


def test_cifar_python_format_refuses_code(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": [0]}))
    with pytest.raises(PIDValueError, match="not a plain CIFAR pickle"):
        data.CIFAR(tmp_path, 10, train=False, fmt="python")
    assert "never run" not in capsys.readouterr().out


def test_cifar_missing_or_truncated(tmp_path):
    with pytest.raises(PIDValueError, match="never downloads"):
        data.CIFAR(tmp_path, 10)
    _write_binary(tmp_path, 10)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(PIDValueError, match="not a multiple"):
        data.CIFAR(tmp_path, 10, train=False)
    with pytest.raises(PIDValueError, match="root"):
        data.get_dataset("cifar10")


def test_damaged_cifar_files_are_refused(tmp_path):
    # a label byte of 200 gave 201 classes, an empty file an empty test set, 15 labels for 10
    # images an index error later
    _write_binary(tmp_path, 10)
    binary = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    record = bytearray(binary.read_bytes())
    record[0] = 200
    binary.write_bytes(bytes(record))
    with pytest.raises(PIDValueError, match=r"labels outside \[0, 10\) \(e\.g\. 200\)"):
        data.CIFAR(tmp_path, 10, train=False)
    binary.write_bytes(b"")
    with pytest.raises(PIDValueError, match="holds no images"):
        data.CIFAR(tmp_path, 10, train=False)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    cases = [({b"data": _images(10, 0).reshape(10, -1), b"labels": [1] * 15}, "15 labels for 10"),
             ({b"data": _images(2, 0).reshape(2, -1), b"labels": [0, -2]}, "outside"),
             ({b"labels": [0]}, "a dict with 'data'"),
             ({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}, "not \\(N, 3072\\)")]
    for batch, match in cases:
        (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
        with pytest.raises(PIDValueError, match=match):
            data.CIFAR(tmp_path, 10, train=False, fmt="python")
    (folder / "test_batch").write_bytes(b"")
    with pytest.raises(PIDValueError, match="not a plain CIFAR pickle"):
        data.CIFAR(tmp_path, 10, train=False, fmt="python")


def test_label_and_count_arguments_are_never_altered():
    train, _ = data.load_digits()
    with pytest.raises(PIDValueError, match=r"^unlabelled_per_class: must be >= 0"):
        data.semi_supervised(train, 2, -1)          # sliced idx[:-1]: one sample fewer
    with pytest.raises(PIDTypeError, match=r"^unlabelled_per_class: must be an integer"):
        data.semi_supervised(train, 2, 2.7)         # became 2
    fractional = TensorDataset(torch.zeros(3, 2), torch.tensor([0.5, 1.7, 2.0]))
    with pytest.raises(PIDValueError, match=r"not whole numbers"):
        data.dataset_targets(fractional)            # truncated to [0, 1, 2]
    whole = TensorDataset(torch.zeros(3, 2), torch.tensor([0.0, 1.0, 2.0]))
    assert data.dataset_targets(whole).tolist() == [0, 1, 2]


def test_digits_mnist1d_and_subsets():
    train, test = data.load_digits()
    assert len(train) + len(test) == 1797
    x, y = train[0]
    assert x.shape == (1, 8, 8) and 0 <= float(x.min()) and float(x.max()) <= 1
    sub = data.subset_per_class(train, 7, seed=1)
    counts = torch.bincount(data.dataset_targets(sub), minlength=10)
    assert counts.tolist() == [7] * 10
    assert data.subset_per_class(train, 7, seed=1).indices == sub.indices
    assert data.subset_per_class(train, 7, seed=2).indices != sub.indices
    with pytest.raises(PIDValueError, match="n_per_class"):
        data.subset_per_class(train, 10_000)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    tr1, te1 = data.load_mnist1d(num_samples=200, seed=3)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    assert tr1.tensors[0].shape == (160, 1, 40) and te1.tensors[0].shape == (40, 1, 40)
    assert set(tr1.tensors[1].tolist()) <= set(range(10))
    tr2, _ = data.load_mnist1d(num_samples=200, seed=3)
    assert torch.equal(tr1.tensors[0], tr2.tensors[0])


# ----------------------------------------------------------------------------- features
class _TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.rnn = nn.GRU(4, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        h = self.body(x)
        out, last = self.rnn(h.unsqueeze(1))
        return self.head(out[:, 0])


def test_hooks_tuple_outputs_vectors_and_maps():
    net = _TupleNet()
    x = torch.randn(6, 3)
    out, feats = forward_with_features(net, x, ["body", "rnn", "rnn[1]"])
    assert torch.equal(feats[0], net.body(x))
    seq, last = net.rnn(net.body(x).unsqueeze(1))
    assert torch.equal(feats[1], seq) and torch.equal(feats[2], last)
    assert feats[0].requires_grad  # graph kept for losses
    assert not net.body._forward_hooks  # hooks removed
    cnn = models.get_model("digits_cnn", width=4)
    assert feature_shapes(cnn, torch.zeros(2, 1, 8, 8), cnn.feature_layers) == [
        (4, 8, 8), (8, 4, 4), (8, 4, 4)]
    with pytest.raises(PIDValueError, match="not found"):
        FeatureHooks(cnn, ["layer9"])
    with pytest.raises(PIDValueError, match="returns a tensor"):
        forward_with_features(cnn, torch.zeros(2, 1, 8, 8), ["layer1[0]"])


def test_hooked_output_changed_in_place_later_is_refused():
    """digits_cnn's blocks are conv, batch norm, ReLU(inplace=True): the batch norm's output is
    overwritten by the ReLU, so hooking it would silently give post-ReLU features."""
    torch.manual_seed(0)
    cnn = models.get_model("digits_cnn", width=4).eval()
    x = torch.randn(5, 1, 8, 8)
    for detach in (False, True):        # losses keep the graph, audits detach
        with pytest.raises(PIDValueError, match="changed in place") as err:
            with FeatureHooks(cnn, ["layer1.1"], detach=detach) as hooks:
                cnn(x)
                hooks.collect()
        assert "inplace = False" in str(err.value)
    with pytest.raises(PIDValueError, match="changed in place"):
        Trainer(models.get_model("digits_cnn", width=8), cnn, TensorDataset(
            x, torch.arange(5) % 3), method="rid", layers=[("layer1", "layer1.1")],
            num_classes=10, progress=False)
    # the enclosing block's output is not modified: captured as the model computes it
    _, (block,) = forward_with_features(cnn, x, ["layer1"])
    assert torch.equal(block, cnn.layer1(x))
    # with the in-place ReLU off, the batch norm's own output (negative entries included)
    cnn.layer1[2].inplace = False
    _, (normed,) = forward_with_features(cnn, x, ["layer1.1"])
    assert torch.equal(normed, cnn.layer1[1](cnn.layer1[0](x))) and normed.min() < 0
    with torch.inference_mode():        # inference tensors have no version counter
        _, (block,) = forward_with_features(cnn, x, ["layer1"])
    assert torch.equal(block, cnn.layer1(x))


def test_wrapped_models_take_the_paths_of_the_model_inside():
    """torch.compile(net), DataParallel(net) and a compiled DataParallel take net's own module
    paths; training a compiled student gives the uncompiled student's run."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.randn(5, 4)
    _, (plain,) = forward_with_features(net, x, ["1"])
    for wrapped in (torch.compile(net, backend="eager"), nn.DataParallel(net),
                    torch.compile(nn.DataParallel(net), backend="eager")):
        _, (feature,) = forward_with_features(wrapped, x, ["1"])
        torch.testing.assert_close(feature, plain, rtol=0, atol=0)
        with pytest.raises(PIDValueError, match="not found"):
            FeatureHooks(wrapped, ["7"])
    data = TensorDataset(torch.randn(64, 4), torch.arange(64) % 3)

    def run(compiled):
        torch.manual_seed(1)
        teacher = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        student = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
        model = torch.compile(student, backend="eager") if compiled else student
        trainer = Trainer(teacher, model, data, method="rid", layers=[("1", "1")], epochs=3,
                          warmup=1, cycle=2, ratio=0.5, batch_size=16, progress=False, seed=0)
        trainer.fit()
        return student.state_dict(), trainer.history

    (plain_state, plain_history), (state, history) = run(False), run(True)
    for key, value in plain_state.items():
        torch.testing.assert_close(state[key], value, rtol=1e-6, atol=1e-7)
    assert [h["phase"] for h in history] == [h["phase"] for h in plain_history]


def test_extract_features_matches_manual_pass():
    train, test = data.load_digits()
    torch.manual_seed(0)
    net = models.get_model("digits_mlp", hidden=(6, 5))
    net.train()
    loader = torch.utils.data.DataLoader(test, batch_size=100)
    ex = extract_features(net, loader, ["layer1", "layer2"])
    assert net.training  # mode restored
    x, y = test.tensors
    with torch.no_grad():
        h1 = net.layer1(x.flatten(1))
        torch.testing.assert_close(ex.features["layer1"], h1)
        torch.testing.assert_close(ex.features["layer2"], net.layer2(h1))
        torch.testing.assert_close(ex.logits, net(x))
    assert torch.equal(ex.targets, y) and ex.flat("layer2").shape == (len(y), 5)
    assert len(extract_features(net, loader, ["layer1"], max_batches=2).targets) == 200


# ----------------------------------------------------------------------------- models
def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_resnets_match_the_reference_parameter_counts():
    # torchvision's resnet18 / resnet34 (ImageNet, 1000 classes) have 11,689,512 and
    # 21,797,672 parameters (He et al. 2016 architecture; torchvision model docs)
    assert _count(models.get_model("resnet18", num_classes=1000)) == 11_689_512
    assert _count(models.get_model("resnet34", num_classes=1000)) == 21_797_672
    net = models.get_model("resnet18", num_classes=10, cifar_stem=True)
    shapes = feature_shapes(net, torch.zeros(2, 3, 32, 32), net.feature_layers)
    assert shapes == [(128, 16, 16), (256, 8, 8), (512, 4, 4)]


def test_wide_resnets():
    for name, width in (("wrn-16-1", 1), ("wrn-40-2", 2)):
        net = models.get_model(name)
        shapes = feature_shapes(net, torch.zeros(2, 3, 32, 32), net.feature_layers)
        assert shapes == [(16 * width, 32, 32), (32 * width, 16, 16), (64 * width, 8, 8)]
    # blocks per group = (depth - 4) / 6
    assert len(models.get_model("wrn-40-2").block1) == 6
    assert len(models.get_model("wrn-16-1").block3) == 2
    with pytest.raises(PIDValueError, match="6n"):
        models.get_model("wrn-15-1")


def test_registry_factories_and_torchvision_error():
    mlp = models.get_model("pidkit_distill.models:DigitsMLP", num_classes=3, hidden=(4,))
    assert mlp.fc.out_features == 3
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(PIDValueError, match="torchvision"):
            models.get_model("torchvision:resnet18")
    with pytest.raises(PIDValueError, match="not a known model"):
        models.get_model("nonexistent")
    with pytest.raises(PIDTypeError):
        models.get_model(3)


def test_untrained_teacher_is_seeded_frozen_and_leaves_rng_alone():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = models.untrained_teacher("digits_cnn", seed=1, width=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = models.untrained_teacher("digits_cnn", seed=1, width=4)
    c = models.untrained_teacher("digits_cnn", seed=2, width=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.fc.weight, c.fc.weight)
    assert not a.training and not any(p.requires_grad for p in a.parameters())


@pytest.mark.parametrize("kind", ["noise", "random_features"])
def test_nuisance_teacher_concatenates_z_and_g(kind):
    torch.manual_seed(0)
    base = models.get_model("digits_cnn", width=4)
    nuis = models.NuisanceTeacher(base, channels=[3, 2, 5], kind=kind, seed=4)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        logits, feats = forward_with_features(nuis, x, nuis.feature_layers)
        ref_logits, ref = forward_with_features(base, x, base.feature_layers)
    torch.testing.assert_close(logits, ref_logits)
    for f, z, g in zip(feats, ref, (3, 2, 5), strict=True):
        assert f.shape == (5, z.shape[1] + g, *z.shape[2:])
        torch.testing.assert_close(f[:, :z.shape[1]], z)
        assert float(f[:, z.shape[1]:].std()) > 0.05  # G is not constant
    with torch.no_grad():
        _, again = forward_with_features(nuis, x, nuis.feature_layers)
    same = torch.equal(again[0], feats[0])
    assert same == (kind == "random_features")  # noise is redrawn, features are fixed


def test_data_helpers_name_their_arguments():
    train, _ = data.load_digits()
    empty = TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    cases = [(lambda: data.load_digits(test_size=0), PIDValueError, r"^test_size: must be a "
                                                                     r"fraction"),
             (lambda: data.load_mnist1d(num_samples=3), PIDValueError,
              r"^num_samples: must be >= 50"),
             (lambda: data.get_dataset(None), PIDTypeError, r"^name: must be a data set name"),
             (lambda: data.subset_per_class(train, 2, seed="a"), PIDTypeError,
              r"^seed: must be a non-negative integer"),
             (lambda: data.num_classes_of([]), PIDValueError, r"^datasets: hold no labelled"),
             (lambda: data.num_classes_of([empty]), PIDValueError, r"^datasets: hold no"),
             (lambda: data.CIFAR(None), PIDTypeError, r"^root: must be the folder")]
    for call, kind, match in cases:
        with pytest.raises(kind, match=match):
            call()
