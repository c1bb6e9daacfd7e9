"""Each distillation loss against a value computed by hand (closed forms written out with
``math``) on tiny tensors; the parts contract (detached tensors); and data parallelism: two
gloo processes give the loss values and gradients of one process on the global batch."""

import gc
import math

import pytest
import torch
from torch import nn

from pidkit.errors import PIDValueError
from pidkit_distill.losses import (
    UNLABELLED,
    Batch,
    FitNetsLoss,
    KDLoss,
    RIDLoss,
    TEDLoss,
    VIDLoss,
    cross_entropy,
    distributed_mean,
    gaussian_nll,
    hint_loss,
    kd_divergence,
    make_loss,
    sigma_from_raw,
    sum_across_processes,
    weighted_residual,
)

torch.set_num_threads(1)


def _ce(logits, label):
    """Cross-entropy of one sample, by hand."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_kd_divergence_temperature_one_and_two():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    # tau = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    expected1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(kd_divergence(s, t, 1.0)) == pytest.approx(expected1, rel=1e-6)
    # tau = 2: p_t = (sqrt3, 1) / (sqrt3 + 1), times tau^2 = 4
    a = math.sqrt(3) / (math.sqrt(3) + 1)
    expected2 = 4 * (a * math.log(a / 0.5) + (1 - a) * math.log((1 - a) / 0.5))
    assert float(kd_divergence(s, t, 2.0)) == pytest.approx(expected2, rel=1e-6)


def test_kd_loss_mixes_ce_and_kl():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    loss, parts = KDLoss(temperature=1.0, alpha=0.25).student_loss(
        Batch(y=y, student_logits=s, teacher_logits=t))
    ce = (_ce([1, 0], 0) + _ce([0, 2], 1)) / 2

    def kl(pt, ps):
        return sum(a * math.log(a / b) for a, b in zip(pt, ps, strict=True))

    def sm(v):
        z = sum(math.exp(x) for x in v)
        return [math.exp(x) / z for x in v]

    kd = (kl(sm([0, 1]), sm([1, 0])) + kl(sm([0, 0]), sm([0, 2]))) / 2
    assert float(loss) == pytest.approx(0.75 * ce + 0.25 * kd, rel=1e-6)
    assert parts["ce"] == pytest.approx(ce, rel=1e-6)


def test_weighted_residual_mean_and_sum():
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    sigma = torch.tensor([1.0, 2.0])
    # V^2 / sigma = [[1, 2], [9, 8]]
    assert float(weighted_residual(v, sigma, "mean")) == pytest.approx(5.0)
    assert float(weighted_residual(v, sigma, "sum")) == pytest.approx((3 + 17) / 2)
    maps = torch.ones(1, 2, 2, 2)
    maps[0, 1] = 2.0  # channel 1: V^2 = 4, sigma = 2 -> 2; channel 0: 1
    assert float(weighted_residual(maps, sigma, "mean")) == pytest.approx(1.5)


def test_sigma_parametrisation_and_init():
    assert float(sigma_from_raw(torch.tensor(0.0))) == pytest.approx(math.log(2) + 1e-3)
    loss = RIDLoss([(3,)], [(2,)], num_classes=2)
    assert torch.allclose(loss.pairs[0].sigma, torch.full((2,), math.log1p(math.exp(5)) + 1e-3))


def _identity_rid(cls=RIDLoss, **kwargs):
    """RID/TED loss on 2-channel vectors whose filters compute relu(x) and whose head is
    relu(relu(x)) @ I."""
    loss = cls([(2,)], [(2,)], num_classes=2, norm=False, **kwargs)
    pair = loss.pairs[0]
    with torch.no_grad():
        t1, t2 = pair.teacher_filter[0], pair.teacher_filter[2]
        t1.weight.copy_(torch.eye(2))
        t2.weight.copy_(torch.eye(2))
        s1, s2 = pair.student_filter[0], pair.student_filter[2]
        s1.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [0, 0], [0, 0]]))
        s2.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0]]))
        pair.head[2].weight.copy_(torch.eye(2))
        for m in (t1, t2, s1, s2, pair.head[2]):
            m.bias.zero_()
        pair.raw_sigma.copy_(torch.tensor([0.0, 1.0]))
    return loss


T = torch.tensor([[1.0, -1.0], [2.0, 0.5]])
S = torch.tensor([[0.5, 1.0], [-1.0, 0.5]])
Y = torch.tensor([0, 1])
SIG = [math.log(2) + 1e-3, math.log1p(math.e) + 1e-3]
# f_t(T) = relu(T) = [[1, 0], [2, .5]]; f_s(S) = relu(S) = [[.5, 1], [0, .5]]
V = [[0.5, -1.0], [2.0, 0.0]]
VTERM = sum(V[n][c] ** 2 / SIG[c] for n in range(2) for c in range(2)) / 4


def test_rid_teacher_phase_value():
    loss = _identity_rid()
    batch = Batch(y=Y, teacher_features=[T], student_features=[S])
    value, parts = loss.teacher_loss(batch, distill=True)
    ce = (_ce([1, 0], 0) + _ce([2, 0.5], 1)) / 2
    assert value.item() == pytest.approx(ce + VTERM, rel=1e-6)
    warm, _ = loss.teacher_loss(batch, distill=False)
    assert warm.item() == pytest.approx(ce, rel=1e-6)


def test_rid_student_phase_value():
    loss = _identity_rid(lambda1=0.5, lambda2=3.0)
    logits = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    batch = Batch(y=Y, student_logits=logits, teacher_features=[T], student_features=[S])
    value, _ = loss.student_loss(batch)
    ce = (_ce([0, 1], 0) + _ce([1, 1], 1)) / 2
    reg = (SIG[0] ** 2 + SIG[1] ** 2) / 2 + VTERM
    assert value.item() == pytest.approx(0.5 * ce + 3.0 * reg, rel=1e-6)
    # reduction="sum": sums over channels, mean over the batch
    loss_sum = _identity_rid(lambda1=0.5, lambda2=3.0, reduction="sum")
    value_sum, _ = loss_sum.student_loss(batch)
    reg_sum = SIG[0] ** 2 + SIG[1] ** 2 + 2 * VTERM
    assert value_sum.item() == pytest.approx(0.5 * ce + 3.0 * reg_sum, rel=1e-6)


def test_rid_sums_over_pairs():
    loss = _identity_rid()
    two = RIDLoss([(2,), (2,)], [(2,), (2,)], num_classes=2, norm=False)
    two.pairs[0].load_state_dict(loss.pairs[0].state_dict())
    two.pairs[1].load_state_dict(loss.pairs[0].state_dict())
    batch1 = Batch(y=Y, teacher_features=[T], student_features=[S])
    batch2 = Batch(y=Y, teacher_features=[T, T], student_features=[S, S])
    one, _ = loss.teacher_loss(batch1, distill=True)
    both, _ = two.teacher_loss(batch2, distill=True)
    assert both.item() == pytest.approx(2 * one.item(), rel=1e-6)


def test_rid_filters_adapt_to_channels_and_spatial_sizes():
    loss = RIDLoss([(6, 8, 8)], [(3, 4, 4)], num_classes=5)
    pair = loss.pairs[0]
    t, s = torch.randn(2, 6, 8, 8), torch.randn(2, 3, 4, 4)
    assert pair.teacher_side(t).shape == (2, 3, 4, 4)
    assert pair.student_side(s).shape == (2, 3, 4, 4)
    assert pair.head(pair.teacher_side(t)).shape == (2, 5)
    # the map is average-pooled to 4x4 before the filter: constant 2x2 blocks pool exactly
    blocks = torch.arange(16.0).view(1, 1, 4, 4).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.equal(pair.align(blocks), torch.arange(16.0).view(1, 1, 4, 4))
    vec = RIDLoss([(6, 8, 8)], [(3,)], num_classes=5).pairs[0]  # map vs vector: global pool
    assert vec.teacher_side(t).shape == (2, 3)
    seq = RIDLoss([(6, 20)], [(3, 10)], num_classes=5).pairs[0]  # 1-D maps (MNIST-1D)
    assert seq.teacher_side(torch.randn(2, 6, 20)).shape == (2, 3, 10)
    ramp = torch.arange(20.0).view(1, 1, 20)
    assert torch.equal(seq.align(ramp), (torch.arange(10.0) * 4 + 1).view(1, 1, 10) / 2)


def test_ted_value():
    loss = _identity_rid(TEDLoss, lambda1=1.0, lambda2=2.0)
    logits = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    batch = Batch(y=Y, student_logits=logits, teacher_features=[T], student_features=[S])
    value, _ = loss.student_loss(batch)
    ce = (_ce([0, 1], 0) + _ce([1, 1], 1)) / 2
    head = (_ce([1, 0], 0) + _ce([2, 0.5], 1)) / 2
    mse = sum(v ** 2 for row in V for v in row) / 4
    assert value.item() == pytest.approx(ce + head + 2.0 * mse, rel=1e-6)
    assert all(p.requires_grad for p in loss.student_parameters())
    assert not any(p is loss.pairs[0].raw_sigma for p in loss.student_parameters())


def test_vid_gaussian_nll_and_loss():
    mu, t = torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2)
    var = torch.tensor([1.0, 4.0])
    expected = 0.5 * ((1 / 1 + 0) + (4 / 4 + math.log(4))) / 2
    assert float(gaussian_nll(mu, t, var)) == pytest.approx(expected, rel=1e-6)
    loss = VIDLoss([(2,)], [(2,)], weight=10.0)
    pair = loss.pairs[0]
    assert torch.allclose(pair.variance, torch.full((2,), 5.0), atol=1e-5)
    with torch.no_grad():
        for layer in (pair.regressor[0], pair.regressor[2], pair.regressor[4]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    s = torch.tensor([[1.0, 3.0]])  # mu = relu(relu(s)) = s
    logits = torch.tensor([[0.0, 0.0]])
    value, _ = loss.student_loss(Batch(y=torch.tensor([1]), student_logits=logits,
                                       teacher_features=[torch.zeros(1, 2)],
                                       student_features=[s]))
    vid = 0.5 * ((1 / 5 + math.log(5)) + (9 / 5 + math.log(5))) / 2
    assert value.item() == pytest.approx(math.log(2) + 10.0 * vid, rel=1e-5)


def test_fitnets_value():
    assert float(hint_loss(torch.tensor([[1.0, 3.0]]), torch.zeros(1, 2))) == pytest.approx(5.0)
    loss = FitNetsLoss([(1,)], [(2,)], beta=2.0)
    with torch.no_grad():
        loss.adapters[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        loss.adapters[0].bias.fill_(0.5)
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # adapted: [3.5, 0.5]
    t = torch.tensor([[3.0], [1.5]])
    value, parts = loss.student_loss(Batch(y=torch.tensor([0, 0]),
                                           student_logits=torch.zeros(2, 3),
                                           teacher_features=[t], student_features=[s]))
    assert parts["hint"] == pytest.approx((0.25 + 1.0) / 2)
    assert value.item() == pytest.approx(math.log(3) + 2.0 * 0.625, rel=1e-6)


def test_make_loss_by_name_and_errors():
    assert isinstance(make_loss("RID", [(4,)], [(2,)], 3), RIDLoss)
    with pytest.raises(PIDValueError, match="method"):
        make_loss("nope", [(4,)], [(2,)], 3)
    with pytest.raises(PIDValueError, match="layers"):
        make_loss("vid", [(4,), (4,)], [(2,)], 3)


def test_parts_are_detached_float32_tensors():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    _, parts = KDLoss().student_loss(Batch(y=Y, student_logits=s, teacher_logits=t))
    assert set(parts) == {"ce", "kd"}
    for value in parts.values():
        assert value.shape == () and value.dtype == torch.float32 and not value.requires_grad
    _, parts = _identity_rid().student_loss(Batch(y=Y, student_logits=s, teacher_features=[T],
                                                  student_features=[S]))
    assert float(parts["v_term"]) == pytest.approx(VTERM, rel=1e-6)
    assert all(isinstance(v, torch.Tensor) for v in parts.values())


def test_cross_entropy_over_labelled_samples_keeps_float64():
    z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, UNLABELLED, 1])
    ce = cross_entropy(z, y)
    assert ce.dtype == torch.float64
    assert float(ce) == pytest.approx((_ce([2, 0], 0) + _ce([1, 1], 1)) / 2, rel=1e-12)
    none = cross_entropy(z, torch.full((3,), UNLABELLED))
    assert float(none) == 0.0
    assert float(cross_entropy(z.half(), y)) == pytest.approx(float(ce), rel=1e-3)


def test_distributed_helpers_are_local_in_one_process():
    assert float(distributed_mean(torch.tensor(6.0), torch.tensor(4))) == 1.5
    assert float(distributed_mean(torch.tensor(0.0), torch.tensor(0))) == 0.0
    x = torch.randn(3)
    assert sum_across_processes(x) is x


# -- data parallelism: two gloo processes average to one process on the global batch ----------
#: Labels of the global batch of 12 in two steps, split 6 / 6 over two processes: in step 0 the
#: second process has no labelled sample.
DDP_LABELS = [[0, 1, 2, -1, 0, 1, -1, -1, -1, -1, -1, -1],
              [0, -1, -1, 2, 1, -1, 1, 2, -1, 0, 0, 2]]
DDP_CASES = [("none", {}), ("pid", {"measure": "broja", "dim": 2, "beta": 2.0}),
             ("pid", {"measure": "mmi", "dim": 2, "beta": 2.0})]


class _Step(nn.Module):
    """A linear student and a loss as one module (so that DDP averages both's gradients)."""

    def __init__(self, method, options):
        super().__init__()
        torch.manual_seed(0)
        self.student = nn.Linear(5, 3).double()
        self.loss = make_loss(method, [(4,)], [(3,)], 3, **options).double()

    def forward(self, x, y, teacher):
        logits = self.student(x)
        return self.loss.student_loss(Batch(y=y, student_logits=logits,
                                            teacher_features=[teacher],
                                            student_features=[logits]))[0]


def _ddp_data(step):
    g = torch.Generator().manual_seed(10 + step)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    teacher = x[:, :4] + 0.5 * torch.randn(12, 4, generator=g, dtype=torch.float64)
    return x, torch.tensor(DDP_LABELS[step]), teacher


def _loss_and_grads(model, x, y, teacher):
    model.zero_grad()
    loss = model(x, y, teacher)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _ddp_worker(rank, world, init_file, out_file):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        results = {}
        for c, (method, options) in enumerate(DDP_CASES):
            model = DistributedDataParallel(_Step(method, options))
            for step in range(len(DDP_LABELS)):
                x, y, teacher = (v[rank * 6:(rank + 1) * 6] for v in _ddp_data(step))
                loss, grads = _loss_and_grads(model, x, y, teacher)
                dist.all_reduce(loss)
                results[c, step] = (loss / world, grads)
        if rank == 0:
            torch.save(results, out_file)
    finally:
        # DDP wrappers that ran backward sit in reference cycles: collected at interpreter
        # exit they made gloo abort (tests/test_distill_shutdown.py)
        model = None
        gc.collect()
        dist.destroy_process_group()


@pytest.mark.slow
def test_losses_under_ddp_equal_one_process_on_the_global_batch(tmp_path):
    """Cross-entropy with partly unlabelled data (one process without labelled samples) and
    the PID loss: loss values averaged over 2 processes and the DDP-averaged gradients of the
    student and the loss's own parameters equal one process on the concatenated batch."""
    import torch.multiprocessing as mp

    out = tmp_path / "rank0.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "rendezvous"), str(out)), nprocs=2,
             join=True)
    got = torch.load(out, weights_only=True)
    for c, (method, options) in enumerate(DDP_CASES):
        model = _Step(method, options)
        for step in range(len(DDP_LABELS)):
            loss, grads = _loss_and_grads(model, *_ddp_data(step))
            ddp_loss, ddp_grads = got[c, step]
            where = f"{method} {options} step {step}"
            torch.testing.assert_close(ddp_loss, loss, rtol=0, atol=1e-10, msg=where)
            assert len(ddp_grads) == len(grads) > 0
            for a, b in zip(ddp_grads, grads, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=where)
            if method == "pid":  # the PID term is active in both steps
                x, y, teacher = _ddp_data(step)
                with torch.no_grad():
                    red = model.loss.redundancies(Batch(y=y, teacher_features=[teacher],
                                                        student_features=[model.student(x)]))
                assert float(red[0]) > 0.01
