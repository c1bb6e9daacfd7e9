"""The PID regularizer: its batch redundancy matches a Gaussian closed form written in the
test, its gradient is finite, gradient steps move the redundancy the intended way, and
unlabelled samples enter through zero weights (no gather) with a branch-free guard."""

import math

import pytest
import torch

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import data, models
from pidkit_distill.losses import (
    UNLABELLED,
    Batch,
    PIDLoss,
    batch_covariance,
    covariance_from_moments,
    gaussian_redundancy,
    weighted_moments,
)
from pidkit_distill.losses.pid import correlation_from_moments
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


def test_weighted_moments_give_the_covariance_of_the_kept_rows():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    keep = torch.arange(30) % 3 != 0
    cov = covariance_from_moments(*weighted_moments(x, keep), ridge=0.5)
    torch.testing.assert_close(cov, torch.cov(x[keep].T) + 0.5 * torch.eye(4), rtol=1e-12,
                               atol=1e-12)
    # moments add up over shards: the covariance of the union
    a, b = weighted_moments(x[:10], keep[:10]), weighted_moments(x[10:], keep[10:])
    merged = covariance_from_moments(*(u + v for u, v in zip(a, b, strict=True)), ridge=0.5)
    torch.testing.assert_close(merged, cov, rtol=1e-12, atol=1e-12)


def test_unlabelled_samples_are_left_out():
    y, t, s, nuisance = _synthetic(60)
    y_part = torch.where(torch.arange(60) % 4 == 0, UNLABELLED, y)
    keep = y_part != UNLABELLED
    for measure in ("broja", "mmi"):
        got = gaussian_redundancy(y_part, t, s + nuisance, 3, measure=measure)
        want = gaussian_redundancy(y[keep], t[keep], (s + nuisance)[keep], 3, measure=measure)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_labelled", [0, 1, 2, 3])
def test_fewer_than_three_labelled_samples_give_zero_and_finite_gradients(n_labelled):
    y, t, s, _ = _synthetic(12)
    y = torch.where(torch.arange(12) < n_labelled, y, UNLABELLED)
    s = s.clone().requires_grad_(True)
    red = gaussian_redundancy(y, t, s, 3)
    (grad,) = torch.autograd.grad(red, s)
    assert torch.isfinite(grad).all()
    if n_labelled < 3:
        assert float(red.detach()) == 0.0 and not grad.any()
    else:
        assert float(red.detach()) > 0.0 and grad[:n_labelled].any() and not grad[n_labelled:].any()


def test_ridge_must_be_positive():
    y, t, s, _ = _synthetic(12)
    with pytest.raises(PIDValueError, match="ridge"):
        gaussian_redundancy(y, t, s, 3, ridge=0.0)
    with pytest.raises(PIDValueError, match="ridge"):
        PIDLoss([(2,)], [(2,)], num_classes=3, ridge=-1.0)


def test_mmi_redundancy_matches_closed_form():
    y, t, s, _ = _synthetic()
    red = gaussian_redundancy(y, t, s, 3, measure="mmi", ridge=1e-3)
    target = torch.nn.functional.one_hot(y, 3)[:, :2].float()
    # The regulariser's matrix: the sample correlation matrix plus ridge * I (a ridge relative
    # to each variable's variance), built here from torch.corrcoef.
    z = torch.cat([target, t, s], dim=1).double()
    cov = torch.corrcoef(z.T) + 1e-3 * torch.eye(6, dtype=torch.float64)
    expected = min(_gaussian_mi(cov, [0, 1], [2, 3]), _gaussian_mi(cov, [0, 1], [4, 5]))
    assert float(red) == pytest.approx(expected, rel=1e-10)
    # BROJA redundancy never exceeds MMI's min(I(Y;A), I(Y;B)) and is positive here
    broja = float(gaussian_redundancy(y, t, s, 3, measure="broja"))
    assert 0.1 < broja <= expected + 1e-6


def _invariance_tolerance(y, t, s):
    r"""Bound (nats) on the change of the batch redundancy when features are rescaled.

    Rescaling a float64 feature rounds each entry once, and the moments, the one-pass variance
    and the standardisation reproduce every entry of the correlation matrix :math:`\hat R` to a
    relative :math:`\delta \approx 8\varepsilon` (times :math:`1 + \bar x^2/\sigma^2`, about 1
    for these centred features). The atoms are half log-determinants of Schur complements of
    :math:`\hat R` (or log generalised eigenvalues of two), whose eigenvalues are at least
    :math:`\lambda_{\min}(\hat R) \ge` ``ridge``: a change below
    :math:`16 d^2\varepsilon/\lambda_{\min}^2` (as in ``test_gaussian_invariance``)."""
    x = torch.cat([torch.nn.functional.one_hot(y, 3)[:, :2].double(), t, s], dim=1)
    corr = correlation_from_moments(*weighted_moments(x, torch.ones(len(x))), ridge=1e-3)
    lam = float(torch.linalg.eigvalsh(corr)[0])
    d = corr.shape[-1]
    return 16 * d * d * torch.finfo(torch.float64).eps / lam**2


@pytest.mark.parametrize("measure", ["broja", "mmi"])
@pytest.mark.parametrize("factor", [1e-3, 1e-2, 7.5, 1e3])
@pytest.mark.parametrize("side", ["teacher", "student"])
def test_redundancy_does_not_depend_on_feature_units(measure, factor, side):
    """Issue 14: with an absolute ridge, scaling the student's features by 0.01 took the
    redundancy from 0.35 to 0.07 nats. The ridge is now relative to each variable's variance:
    the same value in any units, finite gradients that follow the chain rule (d/d(c s) =
    (d/ds) / c)."""
    y, t, s, nuisance = _synthetic()
    t, s = t.double(), (0.7 * s + 0.5 * nuisance).double()
    scaled_t, scaled_s = (factor * t, s) if side == "teacher" else (t, factor * s)
    t, s = t.requires_grad_(), s.requires_grad_()
    scaled_t, scaled_s = scaled_t.detach().requires_grad_(), scaled_s.detach().requires_grad_()
    ref = gaussian_redundancy(y, t, s, 3, measure=measure)
    got = gaussian_redundancy(y, scaled_t, scaled_s, 3, measure=measure)
    assert 0.05 < float(ref.detach()) < 5
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=0,
                                                abs=_invariance_tolerance(y, t.detach(),
                                                                          s.detach()))
    grads = torch.autograd.grad(ref, (t, s))
    scaled_grads = torch.autograd.grad(got, (scaled_t, scaled_s))
    scaled_index = 0 if side == "teacher" else 1
    assert sum(float(h.abs().sum()) for h in scaled_grads) > 0
    for i, (g, h) in enumerate(zip(grads, scaled_grads, strict=True)):
        assert torch.isfinite(h).all()
        back = h * factor if i == scaled_index else h
        torch.testing.assert_close(back, g, rtol=1e-7, atol=1e-10)


def test_redundancy_ignores_a_shift_and_survives_constant_columns():
    y, t, s, nuisance = _synthetic()
    t, s = t.double(), (0.7 * s + 0.5 * nuisance).double()
    ref = float(gaussian_redundancy(y, t, s, 3))
    # a shift by 100 standard deviations costs (100)^2 eps of cancellation in the moments
    tol = _invariance_tolerance(y, t, s) * (1 + 100**2)
    assert float(gaussian_redundancy(y, t + 100 * t.std(0), s, 3)) == pytest.approx(ref, abs=tol)
    # a dead student feature (constant, non-zero), a zero column and a class absent from the
    # batch: finite value and gradients, the live columns' redundancy unchanged in any units
    dead = torch.cat([s, torch.full((len(s), 1), 3.0, dtype=torch.float64),
                      torch.zeros(len(s), 1, dtype=torch.float64)], dim=1).requires_grad_()
    keep = y != 2
    for scale in (1e-3, 1.0, 1e3):
        red = gaussian_redundancy(y[keep], t[keep], scale * dead[keep], 3)
        (grad,) = torch.autograd.grad(red, dead)
        assert torch.isfinite(red) and torch.isfinite(grad).all()
        alone = gaussian_redundancy(y[keep], t[keep], s[keep], 3)
        # constant columns become variables independent of everything else: they add nothing
        assert float(red.detach()) == pytest.approx(
            float(alone), abs=_invariance_tolerance(y[keep], t[keep], s[keep]))


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
    assert float(parts["ce"]) == pytest.approx(math.log(3), rel=1e-6)
    assert parts["redundancy"].dtype == torch.float32 and not parts["redundancy"].requires_grad


@pytest.mark.parametrize("measure", ["broja", "mmi"])
def test_pairs_are_batched_by_block_sizes(measure):
    """Three pairs, two of equal block sizes (one batched call) and one of other sizes: each
    redundancy equals the pair computed alone."""
    y, t, s, nuisance = _synthetic(90)
    y = torch.where(torch.arange(90) % 5 == 0, UNLABELLED, y)
    feats = torch.cat([s, nuisance], dim=1)
    loss = PIDLoss([(2,), (2,), (3,)], [(4,), (4,), (4,)], num_classes=3, dim=3,
                   measure=measure, unlabelled="ignore")   # as gaussian_redundancy
    teacher = [t, t.flip(1), torch.cat([t, nuisance[:, :1]], dim=1)]
    reds = loss.redundancies(Batch(y=y, teacher_features=teacher,
                                   student_features=[feats, feats, feats]))
    assert len(reds) == 3
    for i, red in enumerate(reds):
        alone = gaussian_redundancy(y, teacher[i] @ getattr(loss, f"teacher_projection_{i}"),
                                    loss.adapters[i](feats), 3, measure=measure)
        torch.testing.assert_close(red, alone, rtol=1e-12, atol=1e-12)
    assert float(reds[2].detach()) != float(reds[0].detach())


@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_pid_loss_does_not_depend_on_teacher_units(factor):
    """PIDLoss (summed moments, batched pairs) standardises after the sum: a teacher measured in
    other units gives the same redundancy (the projection is linear, without offset)."""
    y, t, s, nuisance = _synthetic(90)
    loss = PIDLoss([(2,)], [(4,)], num_classes=3, dim=2).double().eval()  # moments unmoved
    feats = torch.cat([s, nuisance], dim=1).double()
    reds = [loss.redundancies(Batch(y=y, teacher_features=[c * t.double()],
                                    student_features=[feats]))[0] for c in (1.0, factor)]
    assert float(reds[0].detach()) > 0.05
    # the bound of _invariance_tolerance with its worst case lambda_min = ridge (d = 6)
    bound = 16 * 6**2 * torch.finfo(torch.float64).eps / 1e-3**2
    torch.testing.assert_close(reds[1], reds[0], rtol=0, atol=bound)


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


def _weighted_redundancy(y, t_vec, s_vec, weights, ridge=1e-3):
    """Gaussian BROJA redundancy (nats) of the weighted sample correlation matrix, built here
    with numpy from the weighted mean and scatter (divisor sum(w) - 1) and pidkit's numpy
    Gaussian PID: the reference for running moments, whose rows carry weights m^age."""
    import numpy as np

    import pidkit

    z = torch.cat([torch.nn.functional.one_hot(y, 3)[:, :2].double(), t_vec.double(),
                   s_vec.double()], dim=1).numpy()
    w = weights.double().numpy()
    mean = (w[:, None] * z).sum(0) / w.sum()
    centred = z - mean
    cov = (w[:, None] * centred).T @ centred / (w.sum() - 1)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd) + ridge * np.eye(len(sd))
    return pidkit.gaussian_pid(corr, dims=(2, t_vec.shape[1], s_vec.shape[1]),
                               base=math.e).redundancy


def test_running_moments_weight_past_batches_by_momentum_and_pass_no_gradient_back():
    """With momentum m the second batch's redundancy is that of both batches' rows, the first
    batch's weighted by m (a reference built from weighted rows in numpy); the gradient reaches
    only the current batch; evaluation mode leaves the running moments alone."""
    y, t, s, nuisance = _synthetic(120, seed=3)
    feats = torch.cat([s, nuisance], dim=1).double()
    loss = PIDLoss([(2,)], [(4,)], num_classes=3, dim=2, momentum=0.8).double()
    first = feats[:60].clone().requires_grad_(True)
    second = feats[60:].clone().requires_grad_(True)
    loss.redundancies(Batch(y=y[:60], teacher_features=[t[:60].double()],
                            student_features=[first]))
    red = loss.redundancies(Batch(y=y[60:], teacher_features=[t[60:].double()],
                                  student_features=[second]))[0]
    red.backward()
    assert first.grad is None and torch.isfinite(second.grad).all() and second.grad.any()
    with torch.no_grad():
        t_vec = t.double() @ loss.teacher_projection_0
        s_vec = loss.adapters[0](feats)
    weights = torch.cat([torch.full((60,), 0.8), torch.ones(60)])
    want = _weighted_redundancy(y, t_vec, s_vec, weights)
    assert float(red.detach()) == pytest.approx(want, rel=1e-9)
    stored = loss.ema_moments_0.clone()
    loss.eval()
    loss.redundancies(Batch(y=y[:60], teacher_features=[t[:60].double()],
                            student_features=[feats[:60]]))
    torch.testing.assert_close(loss.ema_moments_0, stored, rtol=0, atol=0)


@pytest.mark.parametrize(("option", "value", "error"), [
    ("momentum", 1.0, PIDValueError), ("momentum", -0.1, PIDValueError),
    ("dim", 2.5, PIDTypeError), ("dim", 0, PIDValueError), ("beta", "1", PIDTypeError),
    ("seed", -1, PIDValueError)])
def test_pid_loss_options_are_checked(option, value, error):
    with pytest.raises(error, match=option):
        PIDLoss([(2,)], [(4,)], num_classes=3, **{option: value})


def test_imputed_moments_against_a_row_by_row_imputation():
    """The aggregated E-step equals imputing each unlabelled row's target by the regression
    a + B t (solved here with numpy from the labelled rows) and adding R per row."""
    import numpy as np

    from pidkit_distill.losses import imputed_moments

    g = torch.Generator().manual_seed(4)
    n, d_y, d_t, d_u = 80, 2, 3, 2
    t = torch.randn(n, d_t, generator=g, dtype=torch.float64)
    u = t[:, :2] + torch.randn(n, d_u, generator=g, dtype=torch.float64)
    y = t @ torch.randn(d_t, d_y, generator=g, dtype=torch.float64) + 0.5 * torch.randn(
        n, d_y, generator=g, dtype=torch.float64)
    lab = torch.arange(n) % 3 != 0
    x = torch.cat([y, t, u], dim=1)
    got = imputed_moments(weighted_moments(x, lab), weighted_moments(x[:, d_y:], ~lab),
                          d_y, d_t, ridge=1e-3)
    xl = x[lab].numpy()
    mu = xl.mean(0)
    cov = (xl - mu).T @ (xl - mu) / len(xl)
    ct = cov[d_y:d_y + d_t, d_y:d_y + d_t]
    ct = ct + 1e-3 * np.diag(np.diag(ct)) + 1e-12 * np.eye(d_t)
    b = np.linalg.solve(ct, cov[d_y:d_y + d_t, :d_y]).T
    r = cov[:d_y, :d_y] - b @ cov[d_y:d_y + d_t, :d_y]
    rows = x[~lab].numpy().copy()
    rows[:, :d_y] = mu[:d_y] + (rows[:, d_y:d_y + d_t] - mu[d_y:d_y + d_t]) @ b.T
    outer = rows.T @ rows
    outer[:d_y, :d_y] += len(rows) * r
    np.testing.assert_allclose(float(got[0]), len(rows))
    np.testing.assert_allclose(got[1].numpy(), rows.sum(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[2].numpy(), outer, rtol=1e-10, atol=1e-10)


def test_imputation_recovers_a_target_linear_in_the_teacher():
    """y = W t exactly: the imputed moments of the unlabelled rows are those of their true
    targets (R = 0), so the completed correlation matrix is the full data's."""
    from pidkit_distill.losses import imputed_moments

    g = torch.Generator().manual_seed(5)
    t = torch.randn(60, 3, generator=g, dtype=torch.float64)
    y = t @ torch.randn(3, 2, generator=g, dtype=torch.float64)
    u = torch.randn(60, 2, generator=g, dtype=torch.float64)
    x = torch.cat([y, t, u], dim=1)
    lab = torch.arange(60) % 2 == 0
    got = imputed_moments(weighted_moments(x, lab), weighted_moments(x[:, 2:], ~lab), 2, 3,
                          ridge=0.0)
    want = weighted_moments(x, ~lab)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_imputation_without_enough_labels_adds_no_dependence():
    from pidkit_distill.losses import imputed_moments

    y, t, s, _ = _synthetic(30)
    x = torch.cat([torch.nn.functional.one_hot(y, 3)[:, :2].double(), t.double(),
                   s.double()], dim=1)
    lab = torch.arange(30) < 2                                  # 2 < MIN_SAMPLES labels
    n, total, outer = imputed_moments(weighted_moments(x, lab),
                                      weighted_moments(x[:, 2:], ~lab), 2, 2)
    mean = total / n
    cov = outer / n - mean[:, None] * mean[None, :]
    torch.testing.assert_close(cov[:2, 2:], torch.zeros(2, 4, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(mean[:2], torch.full((2,), 1 / 3, dtype=torch.float64))


def test_pid_loss_imputes_unlabelled_samples():
    """unlabelled="impute": the same value as "ignore" with every sample labelled; with labels
    hidden the student's features of the unlabelled rows get a gradient, and the value is that
    of the labelled moments completed by :func:`imputed_moments`."""
    y, t, s, nuisance = _synthetic(300)
    hidden = torch.arange(300) % 4 != 0    # 75 labels, every class (y cycles with period 3)
    y_part = torch.where(hidden, UNLABELLED, y)
    feats = torch.cat([s, nuisance], dim=1)

    def loss_of(mode):
        torch.manual_seed(0)
        return PIDLoss([(2,)], [(4,)], num_classes=3, dim=2, momentum=0.0, unlabelled=mode)

    def red(loss, labels, f):
        return loss.redundancies(Batch(y=labels, teacher_features=[t],
                                       student_features=[f]))[0]

    torch.testing.assert_close(red(loss_of("impute"), y, feats), red(loss_of("ignore"), y, feats))
    grads = {}
    for mode in ("ignore", "impute"):
        f = feats.clone().requires_grad_(True)
        red(loss_of(mode), y_part, f).backward()
        grads[mode] = f.grad[hidden].abs().max()
    assert float(grads["ignore"]) == 0.0 and float(grads["impute"]) > 1e-6
    # the value is the redundancy of the labelled moments plus the imputed ones
    from pidkit_distill.losses import imputed_moments, redundancy_from_moments
    from pidkit_distill.losses.pid import one_hot_reduced

    loss = loss_of("impute")
    t_vec = (t @ loss.teacher_projection_0).double()
    z = torch.cat([t_vec, loss.adapters[0](feats).double()], dim=1)
    x = torch.cat([one_hot_reduced(y_part, 3), z], dim=1)
    lab = weighted_moments(x, ~hidden)
    imp = imputed_moments(lab, weighted_moments(z, hidden), 2, 2, loss.ridge)
    want = redundancy_from_moments(*(a + b for a, b in zip(lab, imp, strict=True)), (2, 2, 2))
    torch.testing.assert_close(red(loss, y_part, feats), want, rtol=1e-12, atol=1e-12)
    assert float(want.detach()) > 0.05


def test_pid_loss_state_without_imputation_names_the_option():
    old = PIDLoss([(2,)], [(4,)], num_classes=3, dim=2, unlabelled="ignore")
    new = PIDLoss([(2,)], [(4,)], num_classes=3, dim=2)
    with pytest.raises(RuntimeError, match="unlabelled='ignore'"):
        new.load_state_dict(old.state_dict())
    with pytest.raises(PIDValueError, match="unlabelled"):
        PIDLoss([(2,)], [(4,)], num_classes=3, unlabelled="guess")


def test_pid_loss_step_with_imputation_reads_nothing_on_the_host():
    from pidkit_distill.sync_check import count_host_syncs

    y, t, s, nuisance = _synthetic(60)
    y = torch.where(torch.arange(60) % 4 != 0, UNLABELLED, y)
    loss = PIDLoss([(2,)], [(4,)], num_classes=3, dim=2)
    loss.train()
    feats = torch.cat([s, nuisance], dim=1).requires_grad_(True)
    batch = Batch(y=y, student_logits=torch.zeros(60, 3, requires_grad=True),
                  teacher_features=[t], student_features=[feats])
    with count_host_syncs() as syncs:
        value, _ = loss.student_loss(batch)
        value.backward()
    assert syncs.count == 0, syncs.report()
    assert torch.isfinite(feats.grad).all()
