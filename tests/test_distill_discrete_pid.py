"""The exact discrete PID regulariser ("broja"): the envelope gradient of Red with respect to the
soft table matches finite differences, the loss trains in the Trainer and in a hand-written
loop, features independent of Y give a near-zero value, several layer pairs are solved
together, empty cells give finite gradients, and the host reads of a step are counted."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import Trainer, models
from pidkit_distill.losses import (
    UNLABELLED,
    Batch,
    DiscretePIDLoss,
    available_methods,
    discrete_redundancy,
    kmeans_codebook,
    make_loss,
    soft_assign,
)
from pidkit_distill.losses.discrete_pid import soft_joint_counts
from pidkit_distill.sync_check import count_host_syncs

torch.set_num_threads(1)


def _synthetic(n=240, classes=3, seed=0):
    """Teacher features that code the label (plus noise), and label-free nuisance features."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    signal = 3.0 * torch.nn.functional.one_hot(y, 6).float()
    teacher = signal + 0.3 * torch.randn(n, 6, generator=g)
    nuisance = torch.randn(n, 6, generator=g)
    return y, teacher, nuisance


def _batch(y, teacher, student, classes=3):
    return Batch(y=y, student_logits=torch.zeros(len(y), classes),
                 teacher_features=[teacher], student_features=[student])


def test_registered_name_builds_the_loss():
    assert "broja" in available_methods()
    loss = make_loss("BROJA", [(6,)], [(4,)], 3, codes=4, tau=0.2)
    assert isinstance(loss, DiscretePIDLoss) and loss.codes == 4 and loss.tau == 0.2
    with pytest.raises(ValueError, match="tau"):
        make_loss("broja", [(6,)], [(4,)], 3, tau=0.0)
    with pytest.raises(ValueError, match="momentum"):
        make_loss("broja", [(6,)], [(4,)], 3, momentum=1.0)


def test_envelope_gradient_matches_finite_differences():
    """d Red / d p from pidkit.broja's envelope gradient, against central differences along
    directions inside the simplex (float64, a 3 x 3 x 3 table with full support)."""
    g = torch.Generator().manual_seed(3)
    p = torch.rand(1, 3, 3, 3, generator=g, dtype=torch.float64) + 0.05
    p[0, 0, 0, 0] += 1.0  # away from symmetry: a non-trivial redundancy
    p = p / p.sum()
    leaf = p.clone().requires_grad_(True)
    red = discrete_redundancy(leaf, tol=1e-11)
    (grad,) = torch.autograd.grad(red.sum(), leaf)
    assert float(red.detach()) > 1e-3
    eps = 1e-5
    for k in range(4):
        d = torch.randn(p.shape, generator=g, dtype=torch.float64)
        d = d - d.mean()  # stays a pmf: sum zero
        fd = (discrete_redundancy(p + eps * d, tol=1e-11)
              - discrete_redundancy(p - eps * d, tol=1e-11)) / (2 * eps)
        assert float((grad * d).sum()) == pytest.approx(float(fd), rel=1e-5, abs=1e-7), k


def test_loss_gradient_matches_finite_differences():
    """The whole chain (adapter, soft codes, running table, BROJA) in float64, eval mode (the
    running table is then fixed): gradient w.r.t. the adapter's weight vs central
    differences."""
    y, t, nuisance = _synthetic(60)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, tau=0.5, tol=1e-11).double()
    loss.fit_codebook([t.double()])
    s = (t + nuisance).double()
    batch = _batch(y, t.double(), s)
    loss.train()
    loss.redundancies(batch)  # fill the running table once
    loss.eval()
    weight = loss.adapters[0].weight
    (grad,) = torch.autograd.grad(loss.redundancies(batch)[0], weight)
    g = torch.Generator().manual_seed(5)
    d = torch.randn(weight.shape, generator=g, dtype=torch.float64)
    eps = 1e-6
    with torch.no_grad():
        weight += eps * d
        up = loss.redundancies(batch)[0]
        weight -= 2 * eps * d
        down = loss.redundancies(batch)[0]
        weight += eps * d
    fd = (up - down) / (2 * eps)
    assert float((grad * d).sum()) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)


def test_soft_table_is_a_count_of_labelled_samples():
    y = torch.tensor([0, 1, UNLABELLED, 2, 1])
    q = torch.softmax(torch.randn(5, 4, dtype=torch.float64), 1)
    counts = soft_joint_counts(y, q, q, 3)
    assert counts.shape == (3, 4, 4)
    assert float(counts.sum()) == pytest.approx(4.0)
    torch.testing.assert_close(counts[1].sum(1), q[1] + q[4])


def test_codebook_is_seeded_and_temperature_is_scale_free():
    _, t, _ = _synthetic()
    a, b = kmeans_codebook(t, 4, seed=1), kmeans_codebook(t, 4, seed=1)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(4, dtype=torch.float64))
    # features in other units: same codes (L2-normalised before the distances)
    torch.testing.assert_close(soft_assign(1e3 * t, a, 0.1), soft_assign(t, a, 0.1))


def _identity_adapter_loss(t, codes=4, **options):
    """A loss whose student adapter is the identity and whose codebook is fitted on ``t``
    (labelled samples only unless ``options`` say otherwise)."""
    options = {"momentum": 0.0, "unlabelled": "ignore", **options}
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=codes, **options)
    with torch.no_grad():
        loss.adapters[0].weight.copy_(torch.eye(6))
        loss.adapters[0].bias.zero_()
    loss.fit_codebook([t])
    return loss


def test_independent_features_give_near_zero_redundancy():
    """A student whose codes carry no information about Y: Red(Y: C_T, C_S) <= I(Y; C_S) is
    near 0 (plug-in bias of a 240-sample table only); a student that copies the teacher has
    Red = I(Y; C_T), far larger."""
    y, t, nuisance = _synthetic()
    loss = _identity_adapter_loss(t)
    independent = float(loss.redundancies(_batch(y, t, nuisance))[0].detach())
    copy = float(loss.redundancies(_batch(y, t, t))[0].detach())
    assert copy > 0.5
    assert independent < 0.05 * copy


def test_copying_the_teacher_leaves_no_unique_information():
    """The known answer of the issue: a student whose code is the teacher's has
    Uni(Y: C_T minus C_S) = 0, i.e. Red = I(Y; C_T)."""
    import pidkit

    y, t, _ = _synthetic()
    loss = _identity_adapter_loss(t)
    p = loss.tables(_batch(y, t, t))[0].detach()
    r = pidkit.broja(p, base=math.e, normalize=True, tol=1e-5)
    assert float(r.unique[0]) == pytest.approx(0.0, abs=1e-5)  # nats, within tol


def test_empty_cells_give_finite_gradients():
    """A batch with one class absent (an all-zero slice of the table) and a temperature so small
    that most soft codes underflow to exactly 0: value and gradients finite."""
    y, t, nuisance = _synthetic(48)
    y = torch.where(y == 2, UNLABELLED, y)  # class 2 absent
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=4, tau=1e-3)
    loss.fit_codebook([t])
    s = (t + nuisance).requires_grad_(True)
    batch = _batch(y, t, s)
    p = loss.tables(batch)[0]
    assert bool((p == 0).any())
    value, parts = loss.student_loss(batch)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(s.grad).all()
    assert all(torch.isfinite(q.grad).all() for q in loss.parameters() if q.grad is not None)


def test_no_labelled_sample_gives_zero():
    y, t, nuisance = _synthetic(12)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3)
    loss.fit_codebook([t])
    s = nuisance.clone().requires_grad_(True)
    red = loss.redundancies(_batch(torch.full_like(y, UNLABELLED), t, s))[0]
    red.backward()
    assert float(red.detach()) == pytest.approx(0.0, abs=1e-9)
    assert torch.isfinite(s.grad).all()


def test_running_table_smooths_and_takes_gradient_from_the_batch_only():
    y, t, nuisance = _synthetic(60)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, momentum=0.5)
    loss.fit_codebook([t])
    loss.train()
    first = loss.tables(_batch(y, t, nuisance))[0].detach()
    ema = loss.ema_counts_0.clone()
    assert float(ema.sum()) == pytest.approx(60.0)
    s = t.clone().requires_grad_(True)
    second = loss.tables(_batch(y, t, s))[0]
    alone = soft_joint_counts(y, soft_assign(t, loss.codebook_0, loss.tau),
                              soft_assign(loss.adapters[0](t), loss.codebook_0, loss.tau), 3)
    torch.testing.assert_close(second.detach(), (0.5 * ema + alone.detach()) / 90.0)
    assert not torch.equal(second.detach(), first)
    torch.testing.assert_close(loss.ema_counts_0, 0.5 * ema + alone.detach())
    loss.eval()  # evaluation leaves the running table alone
    loss.tables(_batch(y, t, t))
    torch.testing.assert_close(loss.ema_counts_0, 0.5 * ema + alone.detach())


def test_several_layer_pairs_are_solved_together():
    y, t, nuisance = _synthetic(90)
    s = torch.cat([t, nuisance], dim=1)
    teacher = [t, t.flip(1), t[:, :4].reshape(90, 4, 1, 1).expand(90, 4, 2, 2)]
    loss = DiscretePIDLoss([(6,), (6,), (4, 2, 2)], [(12,), (12,), (12, 3, 3)], 3, codes=3,
                           momentum=0.0)
    loss.fit_codebook(teacher)
    student = [s, s, s.reshape(90, 12, 1, 1).expand(90, 12, 3, 3)]
    batch = Batch(y=y, student_logits=torch.zeros(90, 3), teacher_features=teacher,
                  student_features=student)
    reds = loss.redundancies(batch)
    tables = loss.tables(batch)
    assert len(reds) == 3
    for red, p in zip(reds, tables, strict=True):
        alone = discrete_redundancy(p[None].detach())[0]
        torch.testing.assert_close(red.detach(), alone, rtol=0, atol=1e-6)
    value, parts = loss.student_loss(batch)
    value.backward()
    assert all(a.weight.grad is not None and torch.isfinite(a.weight.grad).all()
               for a in loss.adapters)
    assert float(parts["redundancy"]) == pytest.approx(float(sum(reds).detach()), rel=1e-5)


# the loop drives the table toward a nearly deterministic one where the training budget
# (max_iter=20) stops before tol: certified atoms within the gap, and a ConvergenceWarning
# (module notes); the warning is the documented behaviour, not a failure here
@pytest.mark.filterwarnings("default::pidkit.errors.ConvergenceWarning")
def test_hand_written_loop_raises_the_redundancy():
    """A user's own loop: adapter trained on -Red only; the student's features hold the signal
    and a nuisance, and the redundancy rises."""
    y, t, nuisance = _synthetic(120)
    torch.manual_seed(0)
    loss = DiscretePIDLoss([(6,)], [(12,)], 3, codes=4, tau=0.2, momentum=0.0)
    feats = torch.cat([nuisance, t + 0.3 * torch.randn(120, 6)], dim=1)
    batch = _batch(y, t, feats)
    opt = torch.optim.Adam(loss.parameters(), lr=0.05)
    before = None
    for _ in range(30):
        value, parts = loss.student_loss(batch)
        before = float(parts["redundancy"]) if before is None else before
        opt.zero_grad()
        value.backward()
        opt.step()
    after = float(loss.student_loss(batch)[1]["redundancy"])
    assert after > before + 0.1
    assert parts["redundancy"].dtype == torch.float32 and not parts["redundancy"].requires_grad


def test_trainer_one_epoch_on_a_tiny_mlp_pair():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(96) % 3
    x = torch.randn(96, 16, generator=g) + y[:, None].float()
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", hidden=(24, 12), in_features=16, num_classes=3)
    student = models.get_model("digits_mlp", hidden=(8, 6), in_features=16, num_classes=3)
    before = [q.detach().clone() for q in student.parameters()]
    trainer = Trainer(teacher, student, TensorDataset(x, y), method="broja", epochs=1,
                      batch_size=32, progress=False, optimizer="sgd",
                      method_options={"codes": 4, "beta": 1.0})
    metrics = trainer.train_epoch(0)
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["train_redundancy"])
    assert any(not torch.equal(a, b.detach())
               for a, b in zip(before, student.parameters(), strict=True))
    assert bool(trainer.loss_fn.fitted)  # lazily fitted on the first batch
    assert float(trainer.loss_fn.ema_counts_0.sum()) > 0


def test_host_reads_of_a_step_are_counted():
    """Honest accounting (module notes): this module's own code reads nothing in a step once
    the codebook is fitted; every host read comes from pidkit's BROJA solver."""
    y, t, nuisance = _synthetic(64)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=4)
    loss.fit_codebook([t])
    s = (t + nuisance).requires_grad_(True)
    with count_host_syncs() as syncs:
        value, _ = loss.student_loss(_batch(y, t, s))
        value.backward()
    assert syncs.count > 0
    mine = [e for e in syncs.events if "discrete_pid.py" in e.site]
    assert not mine, syncs.report()
    assert all("pidkit" in e.site for e in syncs.events), syncs.report()


def test_lagged_dual_surrogate_between_solves():
    """solve_every=3: the solving step gives the exact value and gradient; the next steps make
    no host read at all, and their value is an upper bound of the exact redundancy, close to
    it for a nearby table."""
    y, t, nuisance = _synthetic(90)
    s = t + nuisance
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, tau=0.5, momentum=0.0, solve_every=3,
                           tol=1e-9, max_iter=200)
    loss.fit_codebook([t])
    loss.train()
    weight = loss.adapters[0].weight
    batch = _batch(y, t, s)
    red = loss.redundancies(batch)[0]
    (grad,) = torch.autograd.grad(red, weight)
    loss.eval()  # exact reference (no caching in eval mode)
    exact = loss.redundancies(batch)[0]
    (grad_exact,) = torch.autograd.grad(exact, weight)
    torch.testing.assert_close(red.detach(), exact.detach(), rtol=0, atol=1e-8)
    torch.testing.assert_close(grad, grad_exact, rtol=1e-6, atol=1e-9)
    loss.train()
    with torch.no_grad():
        weight.add_(0.02 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    with count_host_syncs() as syncs:
        lagged = loss.redundancies(batch)[0]
        lagged.backward()
    assert syncs.count == 0, syncs.report()
    loss.eval()
    exact = loss.redundancies(batch)[0].detach()
    assert float(lagged.detach()) >= float(exact) - 1e-8
    assert float(lagged.detach()) == pytest.approx(float(exact), abs=1e-2)
    loss.train()
    assert loss._calls == 2
    duals = loss._duals
    loss.redundancies(batch)  # third call: surrogate again
    assert loss._duals is duals
    loss.redundancies(batch)  # the fourth solves
    assert loss._calls == 4 and loss._duals is not duals


def test_learned_student_codebook_starts_at_the_teachers_and_trains():
    y, t, nuisance = _synthetic(60)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, student_codebook="learned")
    loss.fit_codebook([t])
    torch.testing.assert_close(loss.student_codebooks[0].detach(), loss.codebook_0)
    value, _ = loss.student_loss(_batch(y, t, t + nuisance))
    value.backward()
    assert loss.student_codebooks[0].grad is not None
    assert torch.isfinite(loss.student_codebooks[0].grad).all()
    assert loss.codebook_0.requires_grad is False  # the teacher's stays fixed


def test_state_dict_round_trip_keeps_codebook_and_running_table():
    y, t, nuisance = _synthetic(60)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3)
    batch = _batch(y, t, t + nuisance)
    loss.student_loss(batch)  # lazy fit and one running-table update
    other = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, seed=7)
    other.load_state_dict(loss.state_dict())
    assert bool(other.fitted)
    loss.eval()
    other.eval()
    torch.testing.assert_close(other.tables(batch)[0], loss.tables(batch)[0])


def test_codebook_does_not_depend_on_row_order():
    """Shuffled rows (another loader order, shards gathered in rank order) give the same
    centroids: the fit sorts the rows first."""
    x = torch.randn(60, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(kmeans_codebook(x[perm], 4, seed=1), kmeans_codebook(x, 4, seed=1),
                               rtol=0, atol=0)


def test_solver_stops_warn_once_per_loss_and_log_the_gap():
    """A training budget the solver cannot meet on these tables (max_iter=1) stops every solve:
    one ConvergenceWarning for the loss, not one per step, and the certified gap of each step
    in the parts (nats); with a budget it meets, no warning and gaps within ``tol``."""
    import warnings

    from pidkit.errors import ConvergenceWarning

    g = torch.Generator().manual_seed(7)
    y = torch.arange(60) % 3
    t = torch.randn(60, 6, generator=g) + 3 * torch.nn.functional.one_hot(y, 6)
    with torch.random.fork_rng():      # the adapter's initialisation draws from torch's RNG
        torch.manual_seed(0)
        loss = DiscretePIDLoss([(6,)], [(4,)], num_classes=3, codes=3, seed=0, max_iter=1,
                               tol=1e-12)
    batch = Batch(y=y, student_logits=torch.zeros(60, 3), teacher_features=[t],
                  student_features=[torch.randn(60, 4, generator=g)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gaps = [loss.student_loss(batch)[1]["certified_gap"] for _ in range(4)]
    stops = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(stops) == 1 and "certified_gap" in str(stops[0].message)
    assert all(g.dtype == torch.float32 and g.dim() == 0 and float(g) >= 0 for g in gaps)
    assert max(float(g) for g in gaps) > loss.tol * math.log(2)    # the stop the warning names
    # a budget the solver meets: no warning, and every logged gap within tol (bits -> nats)
    loss = DiscretePIDLoss([(6,)], [(4,)], num_classes=3, codes=3, seed=0, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gaps = [loss.student_loss(batch)[1]["certified_gap"] for _ in range(3)]
    assert all(0 <= float(g) <= loss.tol * math.log(2) * (1 + 1e-6) for g in gaps)


def test_fixed_iterations_make_no_host_read_and_match_the_certified_solve():
    """iterations=N (pidkit.broja's fixed-iteration mode): a warm step reads nothing from the
    host, and value and gradient equal those of the default certified solve of the same loss
    (same initial weights) within the logged certified gaps."""
    y, t, nuisance = _synthetic(64)
    results = {}
    for iterations in (None, 10):
        torch.manual_seed(0)
        loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=4, iterations=iterations)
        loss.fit_codebook([t])
        s = (t + nuisance).requires_grad_(True)
        loss.student_loss(_batch(y, t, s))[0].backward()      # cold first step
        s.grad = None
        with count_host_syncs() as syncs:
            value, parts = loss.student_loss(_batch(y, t, s))
            value.backward()
        if iterations is not None:
            assert syncs.count == 0, syncs.report()
        results[iterations] = (parts["redundancy"].item(), parts["certified_gap"].item(),
                               s.grad.clone())
    (red, gap, grad), (red_fixed, gap_fixed, grad_fixed) = results[None], results[10]
    assert red_fixed == pytest.approx(red, abs=gap + gap_fixed + 1e-12)
    torch.testing.assert_close(grad_fixed, grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("iterations, error", [(0, PIDValueError), (2.5, PIDTypeError),
                                               (True, PIDTypeError)])
def test_fixed_iterations_option_is_checked(iterations, error):
    with pytest.raises(error, match="iterations"):
        DiscretePIDLoss([(6,)], [(6,)], 3, iterations=iterations)


def _impute_loss(t, **options):
    return _identity_adapter_loss(t, unlabelled="impute", **options)


def test_label_posterior_of_the_teacher_codes():
    from pidkit_distill.losses import label_posterior

    c = torch.tensor([[3.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)  # (y, i)
    post = label_posterior(c)
    torch.testing.assert_close(post.sum(0), torch.ones(3, dtype=torch.float64))
    # code 1 was reached by no labelled sample: the label marginal (4/5, 1/5)
    torch.testing.assert_close(post[:, 1], torch.tensor([0.8, 0.2], dtype=torch.float64))
    # code 0: (3 + 0.8) / 5 and (1 + 0.2) / 5
    torch.testing.assert_close(post[:, 0], torch.tensor([0.76, 0.24], dtype=torch.float64))
    torch.testing.assert_close(label_posterior(torch.zeros(2, 3, dtype=torch.float64)),
                               torch.full((2, 3), 0.5, dtype=torch.float64))


def test_imputed_table_against_a_sample_by_sample_count():
    """unlabelled="impute": a labelled sample adds [y = y_n] q_t(i) q_s(j), an unlabelled one
    p(y | i) q_t(i) q_s(j) with the teacher-code posterior of the labelled samples; counted
    here sample by sample in plain Python."""
    y, t, nuisance = _synthetic(30)
    y = torch.where(torch.arange(30) % 4 == 0, UNLABELLED, y)
    s = t + nuisance
    loss = _impute_loss(t)
    table = loss.tables(_batch(y, t, s))[0].detach()
    q_t = soft_assign(t, loss.codebook_0, loss.tau)
    q_s = soft_assign(s, loss.codebook_0, loss.tau)
    c = torch.zeros(3, 4, dtype=torch.float64)
    for n in range(30):
        if y[n] != UNLABELLED:
            c[y[n]] += q_t[n]
    prior = c.sum(1) / c.sum()
    post = (c + prior[:, None]) / (c.sum(0) + 1)
    expected = torch.zeros(3, 4, 4, dtype=torch.float64)
    for n in range(30):
        joint = torch.outer(q_t[n], q_s[n])
        if y[n] != UNLABELLED:
            expected[y[n]] += joint
        else:
            expected += post[:, :, None] * joint
    torch.testing.assert_close(table, expected / 30.0)


def test_impute_equals_ignore_when_every_sample_is_labelled():
    y, t, nuisance = _synthetic(60)
    s = t + nuisance
    ignore = _identity_adapter_loss(t)
    impute = _impute_loss(t, momentum=ignore.momentum)
    for loss in (ignore, impute):
        loss.train()
        loss.tables(_batch(y, t, s))
    torch.testing.assert_close(impute.tables(_batch(y, t, s))[0],
                               ignore.tables(_batch(y, t, s))[0])


def test_imputed_samples_carry_gradient_and_copying_leaves_no_unique_information():
    """Half the labels hidden: the student's features of the unlabelled samples get a gradient
    only with "impute"; a student that copies the teacher's hard code still has
    Uni(Y: C_T minus C_S) = 0: the imputed cells p(y | i) [i = j] keep the table symmetric in
    T and S, so the coupling S = T is feasible. (Soft codes spread q_t(i) q_t(j) off the
    diagonal with a code-dependent posterior, which breaks the symmetry slightly.)"""
    import pidkit

    y, t, nuisance = _synthetic(120)
    y = torch.where(torch.arange(120) % 2 == 0, UNLABELLED, y)
    hidden = y == UNLABELLED
    grads = {}
    for mode in ("ignore", "impute"):
        loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=4, momentum=0.0, unlabelled=mode)
        loss.fit_codebook([t])
        s = (t + nuisance).requires_grad_(True)
        loss.redundancies(_batch(y, t, s))[0].backward()
        grads[mode] = s.grad[hidden].abs().max()
    assert float(grads["ignore"]) == 0.0
    assert float(grads["impute"]) > 1e-6
    hard = 3.0 * torch.nn.functional.one_hot(torch.arange(120) % 3, 6).float()
    loss = _impute_loss(hard, codes=3, tau=0.01)
    p = loss.tables(_batch(y, hard, hard))[0].detach()
    r = pidkit.broja(p, base=math.e, normalize=True, tol=1e-5)
    assert float(r.unique[0]) == pytest.approx(0.0, abs=1e-5)
    assert float(r.redundancy) > 0.5


def test_imputation_from_a_label_free_teacher_adds_no_redundancy():
    """The nuisance case: teacher features independent of Y give a flat code posterior, so a
    student that copies such a teacher on many unlabelled samples gains (almost) no
    redundancy: at most the plug-in bias of the few labelled samples."""
    y, _, nuisance = _synthetic(300)
    y = torch.where(torch.arange(300) % 10 != 0, UNLABELLED, y)  # 30 labels
    loss = _impute_loss(nuisance)
    imputed = float(loss.redundancies(_batch(y, nuisance, nuisance))[0].detach())
    _, informative, _ = _synthetic(300)
    useful = float(_impute_loss(informative).redundancies(
        _batch(y, informative, informative))[0].detach())
    assert useful > 0.5
    assert imputed < 0.1 * useful


def test_unlabelled_option_is_checked_and_saved():
    with pytest.raises(PIDValueError, match="unlabelled"):
        DiscretePIDLoss([(6,)], [(6,)], 3, unlabelled="pseudo")
    y, t, nuisance = _synthetic(60)
    y = torch.where(torch.arange(60) % 3 == 0, UNLABELLED, y)
    loss = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, unlabelled="impute")
    loss.train()
    loss.student_loss(_batch(y, t, t + nuisance))
    assert float(loss.ema_label_codes_0.sum()) == pytest.approx(40.0)   # labelled samples
    assert float(loss.ema_counts_0.sum()) == pytest.approx(60.0)    # every sample
    other = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, unlabelled="impute")
    other.load_state_dict(loss.state_dict())
    torch.testing.assert_close(other.ema_label_codes_0, loss.ema_label_codes_0)
    old = DiscretePIDLoss([(6,)], [(6,)], 3, codes=3, unlabelled="ignore")
    assert "ema_label_codes_0" not in old.state_dict()
    # a state saved with labelled samples only (the earlier default) names the option to pass
    with pytest.raises(RuntimeError, match="unlabelled='ignore'"):
        other.load_state_dict(old.state_dict())


def test_resuming_a_run_saved_without_imputation_names_the_option(tmp_path):
    from pidkit.errors import CheckpointError

    g = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 3
    x = torch.randn(48, 16, generator=g) + y[:, None].float()

    def trainer(**options):
        torch.manual_seed(0)
        teacher = models.get_model("digits_mlp", hidden=(12,), in_features=16, num_classes=3)
        student = models.get_model("digits_mlp", hidden=(6,), in_features=16, num_classes=3)
        return Trainer(teacher, student, TensorDataset(x, y), method="broja", epochs=1,
                       batch_size=24, progress=False, method_options={"codes": 3, **options})

    old = trainer(unlabelled="ignore")
    old.fit()
    old.save_checkpoint(tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"loss state .*unlabelled='ignore'"):
        trainer().load_checkpoint(tmp_path / "old.pt")
    trainer(unlabelled="ignore").load_checkpoint(tmp_path / "old.pt")   # the option it names
