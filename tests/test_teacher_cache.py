"""CachedTeacher (pidkit_distill.teacher_cache): replayed logits and hooked features equal the
teacher's own on cached inputs, unknown inputs fall back to the teacher, nested paths (a
nuisance teacher's taps) work, bad arguments are refused, and a student distilled through the
cache ends where one distilled from the teacher itself does."""

import pytest
import torch

from pidkit.errors import PIDValueError
from pidkit_distill import models
from pidkit_distill.features import forward_with_features
from pidkit_distill.teacher_cache import CachedTeacher
from pidkit_distill.train import distill

torch.set_num_threads(1)


def _teacher(name="digits_resnet", **kw):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return models.freeze(models.get_model(name, width=4, **kw))


def test_replay_equals_the_teacher_on_cached_and_unknown_inputs():
    teacher = _teacher(blocks=2)
    x = torch.randn(40, 1, 8, 8)
    layers = ["layer2", "layer3"]
    cached = CachedTeacher(teacher, x, layers, batch_size=16)
    with torch.no_grad():
        for batch in (x[[3, 17, 5, 5, 39]], torch.randn(4, 1, 8, 8),
                      torch.cat([x[:2], torch.randn(1, 1, 8, 8)])):   # known, unknown, mixed
            want_logits, want = forward_with_features(teacher, batch, layers)
            got_logits, got = forward_with_features(cached, batch, layers)
            torch.testing.assert_close(got_logits, want_logits, rtol=1e-5, atol=1e-6)
            for g, w in zip(got, want, strict=True):
                torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_replayed_inputs_do_not_run_the_teacher():
    teacher = _teacher()
    x = torch.randn(10, 1, 8, 8)
    cached = CachedTeacher(teacher, x, ["layer3"])
    calls = []
    handle = teacher.layer3.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        cached(x[:4])
        assert calls == []
        cached(torch.randn(2, 1, 8, 8))
        assert calls == [1]
    handle.remove()


def test_nested_paths_of_a_nuisance_teacher():
    teacher = models.NuisanceTeacher(_teacher("digits_cnn"), layers=["layer2", "layer3"],
                                     channels=3, kind="random_features", seed=1)
    x = torch.randn(12, 1, 8, 8)
    layers = ["taps.0", "taps.1"]
    cached = CachedTeacher(teacher, x, layers)
    with torch.no_grad():
        _, want = forward_with_features(teacher, x[5:9], layers)
        _, got = forward_with_features(cached, x[5:9], layers)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_bad_arguments_are_refused_and_the_teacher_is_frozen():
    teacher = _teacher("digits_cnn")
    x = torch.randn(5, 1, 8, 8)
    with pytest.raises(PIDValueError, match="inputs"):
        CachedTeacher(teacher, torch.zeros(0, 1, 8, 8), ["layer3"])
    unfrozen = models.get_model("digits_cnn", width=4)
    CachedTeacher(unfrozen, x, ["layer3"])
    assert not unfrozen.training and not any(p.requires_grad for p in unfrozen.parameters())
    with pytest.raises(PIDValueError, match="names the output of module 'layer3' again"):
        CachedTeacher(teacher, x, ["layer3", "layer3"])
    with pytest.raises(PIDValueError, match="nests"):
        CachedTeacher(teacher, x, ["layer3", "layer3.0"])


def test_a_student_distilled_through_the_cache_matches_one_distilled_directly():
    teacher = _teacher()
    torch.manual_seed(1)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    data = torch.utils.data.TensorDataset(x, y)
    finals = []
    for t in (teacher, CachedTeacher(teacher, x, ["layer3"])):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(2)
            student = models.get_model("digits_cnn", width=2)
        distill(t, student, data, method="fitnets", layers=[("layer3", "layer3")], epochs=2,
                batch_size=16, lr=0.01, progress=False, seed=3)
        finals.append(torch.cat([p.detach().flatten() for p in student.parameters()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-4, atol=1e-5)


class _Recurrent(torch.nn.Module):
    """An LSTM (tuple output: sequence, (h, c)) and a GRU (tuple output) feeding a head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
        self.gru = torch.nn.GRU(4, 5, batch_first=True)
        self.head = torch.nn.Linear(5, 2)

    def forward(self, x):
        seq, _ = self.lstm(x)
        out, last = self.gru(seq)
        return self.head(out[:, -1] + last[0])


def test_items_of_tuple_outputs_are_replayed_at_their_places():
    """'lstm[0]' was accepted but its replay failed ('module lstm not found'): the cache now
    replays a tuple holding the cached items at their places."""
    net = _Recurrent().eval()
    x = torch.randn(6, 7, 3, generator=torch.Generator().manual_seed(1))
    specs = ["lstm[0]", "gru[0]"]
    cached = CachedTeacher(net, x, specs)
    with torch.no_grad():
        want_logits, want = forward_with_features(net, x[:4], specs)
        logits, got = forward_with_features(cached, x[:4], specs)
    assert torch.equal(logits, want_logits)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert [g.shape for g in got] == [(4, 7, 4), (4, 7, 5)]
    with pytest.raises(PIDValueError, match=r"^layers: 'gru\[1\]' gives a feature of shape "
                                            r"\(1, 6, 5\) for 6 inputs: its first axis is not"):
        CachedTeacher(net, x, ["gru[1]"])      # the hidden state (layers, N, H)


@pytest.mark.parametrize(("specs", "words"), [
    (["lstm[-1]"], "counts an item from the end"),
    (["gru[0]", "gru[0]:channels_last"], "names the output of module 'gru' again"),
    (["gru", "gru[0]"], "names the output of module 'gru' again"),
])
def test_item_specs_the_cache_cannot_replay_are_refused(specs, words):
    net = _Recurrent().eval()
    with pytest.raises(PIDValueError, match=rf"^layers: .*{words}"):
        CachedTeacher(net, torch.randn(3, 7, 3), specs)
