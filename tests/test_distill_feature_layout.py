"""Feature layouts: a layer spec's ``":channels_last"`` suffix reads a batch-first transformer
layer's tokens ``(N, T, C)`` as ``C`` channels at ``T`` positions, everywhere features are
collected (FeatureHooks, feature_shapes, the Trainer, CachedTeacher, extract_features, audit),
so that RID's 1x1 filters mix the embedding, not the tokens; unknown layouts are refused."""

import pytest
import torch
from torch import nn

from pidkit.errors import PIDValueError
from pidkit_distill import CachedTeacher, Trainer, audit, audit_features, make_loss
from pidkit_distill.features import (
    FEATURE_LAYOUTS,
    FeatureHooks,
    check_module_paths,
    extract_features,
    feature_shapes,
    forward_with_features,
    split_layout,
)
from pidkit_distill.losses import Batch

torch.set_num_threads(1)

TOKENS, CLASSES = 5, 3


class TokenNet(nn.Module):
    """A tiny ViT-like classifier on sequences ``(N, TOKENS, 6)``: an embedding to ``width``
    channels, one batch-first transformer encoder layer (tokens ``(N, T, C)``), a mean over
    the tokens and a linear head."""

    def __init__(self, width: int):
        super().__init__()
        self.embed = nn.Linear(6, width)
        self.encoder = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=2 * width,
                                                  dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(1))


def _nets():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return TokenNet(8).eval(), TokenNet(4)


def _data(n=24):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, TOKENS, 6, generator=g), torch.arange(n) % CLASSES


def test_channels_last_moves_the_token_axis_behind_the_channels():
    teacher, _ = _nets()
    x, _ = _data(4)
    with torch.no_grad():
        _, (raw, moved, first) = forward_with_features(
            teacher, x, ["encoder", "encoder:channels_last", "encoder:channels_first"])
    assert tuple(raw.shape) == (4, TOKENS, 8) and tuple(moved.shape) == (4, 8, TOKENS)
    torch.testing.assert_close(moved, raw.transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(first, raw, rtol=0, atol=0)
    assert feature_shapes(teacher, x, ["encoder", "encoder:channels_last"]) == [
        (TOKENS, 8), (8, TOKENS)]
    assert split_layout("encoder[0]:channels_last") == ("encoder[0]", "channels_last")
    assert split_layout("encoder") == ("encoder", "channels_first")


def test_channels_last_leaves_vectors_alone():
    net = nn.Sequential(nn.Linear(4, 3))
    with torch.no_grad():
        _, (v,) = forward_with_features(net, torch.ones(2, 4), ["0:channels_last"])
    assert tuple(v.shape) == (2, 3)


def test_a_3d_map_keeps_its_positions_in_order():
    net = nn.Sequential(nn.Identity())
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)   # (N, H, W, C)
    with torch.no_grad():
        _, (f,) = forward_with_features(net, x, ["0:channels_last"])
    assert tuple(f.shape) == (2, 5, 3, 4)
    torch.testing.assert_close(f, x.permute(0, 3, 1, 2), rtol=0, atol=0)


@pytest.mark.parametrize("spec", ["encoder:nlc", "encoder:Channels_Last", "encoder:"])
def test_unknown_layouts_are_refused_before_any_forward_pass(spec):
    teacher, _ = _nets()
    for check in (lambda: FeatureHooks(teacher, [spec]),
                  lambda: check_module_paths(teacher, [spec], name="teacher"),
                  lambda: split_layout(spec)):
        with pytest.raises(PIDValueError, match=r"layers: .*not a known layout") as info:
            check()
        assert all(layout in str(info.value) for layout in FEATURE_LAYOUTS)


def test_the_trainer_refuses_an_unknown_layout():
    teacher, student = _nets()
    x, y = _data()
    with pytest.raises(PIDValueError, match="layers: .*channels_first, channels_last"):
        Trainer(teacher, student, (x, y), layers=[("encoder", "encoder:tokens")],
                method="rid", epochs=2, progress=False)


@pytest.mark.parametrize("layout, channels", [("channels_last", (8, 4)),
                                              ("channels_first", (TOKENS, TOKENS))])
def test_rid_filters_see_the_embedding_channels_with_channels_last(layout, channels):
    teacher, student = _nets()
    x, y = _data()
    seen = []

    class Spy:
        def on_train_begin(self, trainer):
            original = trainer.loss_fn.student_loss

            def student_loss(batch):
                seen.append([tuple(f.shape) for f in batch.student_features])
                return original(batch)
            trainer.loss_fn.student_loss = student_loss

        def on_epoch_end(self, trainer, epoch, metrics):
            pass

    spec = f"encoder:{layout}"
    trainer = Trainer(teacher, student, (x, y), layers=[(spec, spec)], method="rid",
                      epochs=3, warmup=1, cycle=2, ratio=0.5, batch_size=8, lr=0.01,
                      progress=False, callbacks=[Spy()])
    pair = trainer.loss_fn.pairs[0]
    ct, cs = channels
    assert pair.teacher_filter[0].in_features == ct
    assert pair.student_filter[0].in_features == cs
    assert pair.raw_sigma.shape == (cs,)
    trainer.fit()
    per_sample = (cs, TOKENS) if layout == "channels_last" else (TOKENS, 4)
    assert seen and all(shapes == [(8, *per_sample)] for shapes in seen)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in trainer.history)


@pytest.mark.parametrize("method", ["rid", "fitnets", "vid", "ted", "pid", "broja"])
def test_the_loss_on_channels_last_features_is_the_loss_on_hand_transposed_tokens(method):
    teacher, student = _nets()
    x, y = _data()
    specs = ["encoder:channels_last"]
    loss = make_loss(method, feature_shapes(teacher, x, specs),
                     feature_shapes(student, x, specs), CLASSES).eval()
    with torch.no_grad():
        t_logits, t_moved = forward_with_features(teacher, x, specs)
        s_logits, s_moved = forward_with_features(student, x, specs)
        _, (t_raw,) = forward_with_features(teacher, x, ["encoder"])
        _, (s_raw,) = forward_with_features(student, x, ["encoder"])
        by_hook = loss.student_loss(Batch(y=y, student_logits=s_logits, teacher_logits=t_logits,
                                          teacher_features=t_moved, student_features=s_moved))
        by_hand = loss.student_loss(Batch(y=y, student_logits=s_logits, teacher_logits=t_logits,
                                          teacher_features=[t_raw.transpose(1, 2)],
                                          student_features=[s_raw.transpose(1, 2)]))
    assert loss.layer_shapes == ([(8, TOKENS)], [(4, TOKENS)])
    torch.testing.assert_close(by_hook[0], by_hand[0], rtol=0, atol=0)
    for name, value in by_hook[1].items():
        torch.testing.assert_close(value, by_hand[1][name], rtol=0, atol=0)
    assert float(by_hook[1]["ce"]) > 0.5      # an untrained 3-class student: about log 3


def test_cached_teacher_replays_tokens_in_the_spec_layout():
    teacher, _ = _nets()
    x, _ = _data(10)
    spec = "encoder:channels_last"
    cached = CachedTeacher(teacher, x, [spec])
    assert cached.feature_layers == (spec,)
    with torch.no_grad():
        for batch in (x[[1, 4, 4]], torch.randn(3, TOKENS, 6)):      # replayed, then computed
            _, (want,) = forward_with_features(teacher, batch, [spec])
            _, (got,) = forward_with_features(cached, batch, [spec])
            _, (raw,) = forward_with_features(cached, batch, ["encoder"])
            assert tuple(got.shape) == (len(batch), 8, TOKENS)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(raw.transpose(1, 2), want, rtol=1e-5, atol=1e-6)


def test_extract_features_and_audit_read_channels_first():
    teacher, student = _nets()
    x, y = _data(60)
    spec = "encoder:channels_last"
    ex = extract_features(teacher, (x, y), [spec, "encoder"])
    assert tuple(ex.features[spec].shape) == (60, 8, TOKENS)
    torch.testing.assert_close(ex.features[spec], ex.features["encoder"].transpose(1, 2),
                               rtol=0, atol=0)
    options = dict(estimator="gaussian", ci=None, n_perm=0, seed=3)
    hooked = audit(teacher, student, (x, y), [(spec, spec)], **options)
    with torch.no_grad():
        _, (t,) = forward_with_features(teacher, x, ["encoder"])
        _, (s,) = forward_with_features(student.eval(), x, ["encoder"])
    by_hand = audit_features(y, [t.transpose(1, 2)], [s.transpose(1, 2)],
                             layers=[(spec, spec)], **options)
    got, want = hooked.pairs[0].values, by_hand.pairs[0].values
    assert set(got) == set(want) and any(v != 0 for v in want.values())
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
