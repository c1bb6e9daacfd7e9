"""The nuisance-teacher benchmark's teachers (issue 8): ``digits_resnet`` / ``mnist1d_resnet``
(:class:`pidkit_distill.models.SmallResNet`) have the students' feature shapes, the stated
depth and initialisation, are deterministic as untrained teachers, and - the reason they
exist - their untrained features are far larger than the shallow CNN's."""

import math

import pytest
import torch
from torch import nn

from pidkit.errors import PIDValueError
from pidkit_distill import data, models
from pidkit_distill.features import feature_shapes, forward_with_features

torch.set_num_threads(1)


@pytest.mark.parametrize(("name", "student", "x"), [
    ("digits_resnet", "digits_cnn", torch.zeros(3, 1, 8, 8)),
    ("mnist1d_resnet", "mnist1d_cnn", torch.zeros(3, 40)),
])
def test_shapes_match_the_shallow_students(name, student, x):
    for width, blocks in ((4, 1), (8, 3)):
        net = models.get_model(name, width=width, blocks=blocks)
        ref = models.get_model(student, width=width)
        assert net.feature_layers == ("layer1", "layer2", "layer3")
        assert (feature_shapes(net, x, net.feature_layers)
                == feature_shapes(ref, x, ref.feature_layers))
        assert net(x).shape == (3, 10)
        # 3x3 convolutions: the stem plus two per block in each of the three groups.
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))
                 and m.kernel_size[0] == 3]
        assert len(convs) == 1 + 6 * blocks


def test_one_dimensional_input_with_or_without_channel_axis():
    net = models.get_model("mnist1d_resnet", width=4, blocks=1).eval()
    x = torch.randn(5, 40)
    torch.testing.assert_close(net(x), net(x.unsqueeze(1)))


def test_kaiming_fan_out_initialisation():
    # std of N(0, 2 / (C_out k)): for layer3's 3x3 convs at width 16 (32 -> 32 channels),
    # sqrt(2 / (32 * 9)) = 0.0833; 9216 weights give a relative standard error of ~0.7%.
    torch.manual_seed(0)
    net = models.get_model("digits_resnet", width=16)
    w = net.layer3[0].conv1.weight.detach()
    assert float(w.std()) == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.03)
    assert abs(float(w.mean())) < 0.005


def test_untrained_teacher_is_deterministic_frozen_and_in_eval_mode():
    x = torch.randn(6, 1, 8, 8)
    a = models.untrained_teacher("digits_resnet", seed=1000, width=8)
    b = models.untrained_teacher("digits_resnet", seed=1000, width=8)
    c = models.untrained_teacher("digits_resnet", seed=1001, width=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["stem.weight"], sc["stem.weight"])
    with torch.no_grad():
        la, fa = forward_with_features(a, x, a.feature_layers)
        lb, fb = forward_with_features(b, x, b.feature_layers)
    assert torch.equal(la, lb) and all(torch.equal(p, q) for p, q in zip(fa, fb, strict=True))
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    assert not any(m.training for m in a.modules())


def test_rejects_bad_dims_and_blocks():
    with pytest.raises(PIDValueError, match="dims"):
        models.SmallResNet(dims=3)
    with pytest.raises(PIDValueError, match="blocks"):
        models.get_model("digits_resnet", blocks=0)


def test_untrained_features_are_much_larger_than_the_shallow_cnns():
    # The benchmark's untrained teachers (seed 1000 + teacher seed) at the innermost
    # distilled layer on digits: the shallow CNN's root-mean-square feature is a few 1e-2
    # (PyTorch's default init shrinks every layer; BatchNorm in eval mode is the identity),
    # the residual net's is O(1) (each block adds about its input's variance).
    x = data.load_digits()[0].tensors[0][:256]
    for seed in (1000, 1001, 1002):
        shallow = models.untrained_teacher("digits_cnn", seed=seed, width=16)
        deep = models.untrained_teacher("digits_resnet", seed=seed, width=16)
        with torch.no_grad():
            _, (fs,) = forward_with_features(shallow, x, ["layer3"])
            _, (fd,) = forward_with_features(deep, x, ["layer3"])
        rms_shallow, rms_deep = (float(f.pow(2).mean().sqrt()) for f in (fs, fd))
        assert rms_shallow < 0.1
        assert rms_deep > 0.5 and rms_deep > 10 * rms_shallow
