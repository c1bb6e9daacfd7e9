"""The PID regularizer: its batch redundancy matches a Gaussian closed form written in the
test, its gradient is finite, and gradient steps move the redundancy the intended way."""

import math

import pytest
import torch

from pidkit_distill import data, models
from pidkit_distill.losses import Batch, PIDLoss, batch_covariance, gaussian_redundancy
from pidkit_distill.train import distill

torch.set_num_threads(1)


def _gaussian_mi(cov, a, b):
    """I(A;B) in nats of a Gaussian from its covariance, index lists a and b (log-dets)."""
    def ld(idx):
        return torch.logdet(cov[idx][:, idx].double())
    return float(0.5 * (ld(a) + ld(b) - ld(a + b)))


def _synthetic(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    signal = torch.nn.functional.one_hot(y, 3).float() @ torch.tensor(
        [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    teacher = signal + 0.3 * torch.randn(n, 2, generator=g)
    nuisance = torch.randn(n, 2, generator=g)
    return y, teacher, signal + 0.3 * torch.randn(n, 2, generator=g), nuisance


def test_batch_covariance_is_the_unbiased_covariance():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(batch_covariance(x[:, :1], x[:, 1:], ridge=0.0),
                               torch.cov(x.T.double()), rtol=1e-5, atol=1e-6)


def test_mmi_redundancy_matches_closed_form():
    y, t, s, _ = _synthetic()
    red = gaussian_redundancy(y, t, s, 3, measure="mmi", ridge=1e-3)
    target = torch.nn.functional.one_hot(y, 3)[:, :2].float()
    cov = batch_covariance(target, t, s, ridge=1e-3)
    expected = min(_gaussian_mi(cov, [0, 1], [2, 3]), _gaussian_mi(cov, [0, 1], [4, 5]))
    assert float(red) == pytest.approx(expected, rel=1e-4)
    # BROJA redundancy never exceeds MMI's min(I(Y;A), I(Y;B)) and is positive here
    broja = float(gaussian_redundancy(y, t, s, 3, measure="broja"))
    assert 0.1 < broja <= expected + 1e-6


@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_gradient_is_finite_and_raises_redundancy(measure):
    """The student representation mixes a label-informative part and a nuisance with weight
    w; ascending Red moves w toward the informative part and Red goes up."""
    y, t, s, nuisance = _synthetic()
    w = torch.tensor(0.2, requires_grad=True)
    reds = []
    for _ in range(5):
        student = w * s + (1 - w) * nuisance
        red = gaussian_redundancy(y, t, student, 3, measure=measure)
        (grad,) = torch.autograd.grad(red, w)
        assert torch.isfinite(grad)
        reds.append(float(red.detach()))
        with torch.no_grad():
            w += 0.2 * grad.sign() * 0.1
    assert reds == sorted(reds) and reds[-1] > reds[0] + 0.05
    assert float(w.detach()) > 0.2


def test_pid_loss_step_raises_redundancy():
    y, t, s, nuisance = _synthetic()
    torch.manual_seed(0)
    loss = PIDLoss([(2,)], [(4,)], num_classes=3, beta=1.0, dim=2)
    feats = torch.cat([nuisance, s], dim=1)  # the student's features: nuisance and signal
    batch = Batch(y=y, student_logits=torch.zeros(len(y), 3), teacher_features=[t],
                  student_features=[feats])
    opt = torch.optim.SGD(loss.parameters(), lr=1.0)
    before = float(loss.redundancies(batch)[0].detach())
    for _ in range(10):
        value, parts = loss.student_loss(batch)
        opt.zero_grad()
        value.backward()
        assert all(torch.isfinite(p.grad).all() for p in loss.parameters())
        opt.step()
    after = float(loss.redundancies(batch)[0].detach())
    assert after > before + 0.3
    assert parts["ce"] == pytest.approx(math.log(3), rel=1e-6)


def test_pid_method_trains_a_digits_student():
    train, test = data.load_digits()
    torch.manual_seed(0)
    teacher = models.untrained_teacher("digits_mlp", seed=0, hidden=(32,))
    student = models.get_model("digits_mlp", hidden=(16,))
    res = distill(teacher, student, train, method="pid", epochs=3, batch_size=64, lr=0.05,
                  method_options={"measure": "broja", "dim": 3, "beta": 0.5}, progress=False,
                  val_data=test)
    assert all(math.isfinite(h["train_redundancy"]) for h in res.history)
    assert res.final["val_acc"] > 0.7
