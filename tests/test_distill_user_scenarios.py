"""Workflows of a user who brings their own models and data to pidkit_distill: one option set
swept over methods, their own shuffling DataLoader with a seeded generator (first-batch peek,
checkpoint and resume), and audits of semi-supervised data."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pidkit_distill as pd
from pidkit.errors import CheckpointError, PIDValueError

KW = dict(batch_size=8, lr=0.05, progress=False)


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long())


def _net(hidden=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def _loader(seed=3, shuffle=True):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(_data(), batch_size=8, shuffle=shuffle, generator=generator)


@pytest.mark.parametrize("method", ["none", "kd"])
def test_layers_given_to_a_method_without_features_are_ignored_with_a_warning(method):
    # one configuration swept over methods: layers=[...] used to stop method="none" with
    # "0 teacher layers but 1 student layers"
    with pytest.warns(UserWarning, match="layers is ignored") as caught:
        result = pd.distill(_net(8, seed=1), _net(), _data(), method=method,
                            layers=[("1", "1")], epochs=1, **KW)
    assert (result.trainer.teacher_layers, result.trainer.student_layers) == ([], [])
    # the warning names this line, not the trainer's
    assert {w.filename for w in caught if "layers is ignored" in str(w.message)} == {__file__}
    assert result.final["train_acc"] > 0


def test_peeking_at_a_users_loader_leaves_its_generator_where_it_was():
    loader = _loader()
    before = loader.generator.get_state()
    pd.Trainer(_net(8, seed=1), _net(), loader, method="kd", **KW)
    # the first epoch then sees the order the loader's generator gives first
    assert torch.equal(loader.generator.get_state(), before)


def test_resume_continues_a_shuffling_loader_with_its_own_generator_exactly(tmp_path):
    teacher = _net(8, seed=1)
    full = pd.distill(teacher, _net(), _loader(), method="kd", epochs=3, **KW)
    pd.distill(teacher, _net(), _loader(), method="kd", epochs=2, out_dir=tmp_path, **KW)
    resumed = pd.distill(teacher, _net(), _loader(), method="kd", epochs=3,
                         resume=tmp_path / "checkpoint.pt", **KW)
    # before, the resumed run's loader restarted its permutations at epoch 0's
    assert resumed.history[-1]["train_loss"] == full.history[-1]["train_loss"]
    for a, b in zip(full.student.parameters(), resumed.student.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_with_a_loader_drawing_from_other_generators_is_refused(tmp_path):
    teacher = _net(8, seed=1)
    pd.distill(teacher, _net(), _loader(shuffle=False), method="kd", epochs=1,
               out_dir=tmp_path, **KW)
    trainer = pd.Trainer(teacher, _net(), _data(), method="kd", epochs=2, **KW)
    weights = [p.detach().clone() for p in trainer.student.parameters()]
    with pytest.raises(CheckpointError, match="0 data-loader generator"):
        trainer.load_checkpoint(tmp_path / "checkpoint.pt")
    # refused before anything was loaded
    assert trainer.epoch == 0
    for a, b in zip(weights, trainer.student.parameters(), strict=True):
        assert torch.equal(a, b)


def test_an_audit_of_semi_supervised_labels_says_to_keep_the_labelled_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    y[::4] = -1
    t, s = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    with pytest.raises(PIDValueError, match=r"^labels: holds unlabelled samples \(label -1, "
                       r"15 in this batch\).*keep = labels >= 0"):
        pd.audit_features(y, t, s, estimator="gaussian", ci=None, n_perm=0)
    keep = y >= 0
    report = pd.audit_features(y[keep], t[keep], s[keep], estimator="gaussian", ci=None,
                               n_perm=0)
    assert report.n_samples == 45
