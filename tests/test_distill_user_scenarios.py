"""Workflows of a user who brings their own models and data to pidkit_distill: one option set
swept over methods, their own shuffling DataLoader with a seeded generator (first-batch peek,
checkpoint and resume), and audits of semi-supervised data."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pidkit_distill as pd
from pidkit.errors import CheckpointError, PIDTypeError, PIDValueError

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


# -- models called with named inputs (Hugging Face style) ------------------------------------
class _TokenClassifier(nn.Module):
    """forward(input_ids, attention_mask) -> {"logits": ...}: embeddings, a masked mean over
    the tokens ("pool", hooked), a linear head."""

    def __init__(self, vocab, width, classes):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pool = nn.Identity()
        self.head = nn.Linear(width, classes)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask[..., None].to(self.embed.weight.dtype)
        pooled = self.pool((self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1))
        return {"logits": self.head(pooled)}


def _token_samples(n, seed):
    """Flat dict samples as a tokenizer gives them: the class is the most frequent of three
    token groups; padding (mask 0) at the end of each sequence."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        label = i % 3
        length = int(torch.randint(4, 9, (), generator=g))
        ids = torch.randint(0, 30, (8,), generator=g)
        ids[: length // 2 + 1] = 30 + 10 * label + torch.randint(0, 10, (length // 2 + 1,),
                                                                  generator=g)
        mask = (torch.arange(8) < length).long()
        samples.append({"input_ids": ids * mask, "attention_mask": mask, "labels": label})
    return samples


def test_models_with_named_inputs_train_and_audit():
    """A flat dict batch (input_ids, attention_mask, labels) and models whose forward takes
    those names: input_key as a tuple of entries and KeywordInputs train RID, with the inner
    model's layer paths, and the audit reads the same batches."""
    torch.manual_seed(0)
    wrapped_teacher = pd.models.KeywordInputs(_TokenClassifier(60, 16, 3))
    pd.distill(None, wrapped_teacher, _token_samples(96, 0), method="none", epochs=8, lr=0.2,
               batch_size=16, input_key=("input_ids", "attention_mask"), progress=False)
    student = _TokenClassifier(60, 8, 3)
    wrapped = pd.models.KeywordInputs(student)
    batch = _token_samples(4, 1)
    x = {k: torch.stack([s[k] for s in batch]) for k in ("input_ids", "attention_mask")}
    torch.testing.assert_close(wrapped(x)["logits"], student(**x)["logits"], rtol=0, atol=0)
    trainer = pd.Trainer(wrapped_teacher, wrapped, _token_samples(96, 2), method="rid",
                         layers=[("pool", "pool")], val_data=_token_samples(48, 3), epochs=7,
                         warmup=1, cycle=2, ratio=0.5, lr=0.2, batch_size=16,
                         input_key=("input_ids", "attention_mask"), progress=False)
    filters = trainer.loss_fn.pairs[0].teacher_filter
    before = [p.detach().clone() for p in filters.parameters()]
    history = trainer.fit()
    assert [h["phase"] for h in history][:3] == ["warmup", "teacher", "student"]
    # chance is 1/3 (sd 0.07 on 48 samples); 0.625 where written
    assert history[-1]["val_acc"] > 0.5
    assert any(not torch.equal(a, b) for a, b in zip(before, filters.parameters(), strict=True))
    report = pd.audit(wrapped_teacher, wrapped, _token_samples(90, 4), [("pool", "pool")],
                      input_key=("input_ids", "attention_mask"), estimator="gaussian",
                      n_boot=0, n_perm=0)
    assert report[0].values["mi_teacher"] > 0.5   # bits: the teacher separates the classes
    with pytest.raises(PIDTypeError, match="tuple of keys"):
        pd.distill(None, wrapped, [(x["input_ids"][0], 0)] * 8, method="none", epochs=1,
                   input_key=("input_ids", "attention_mask"), progress=False)
