"""Batched BROJA (``pidkit.broja(p, batch=True)``) against single-pmf solves: a few hundred mixed
pmfs (Dirichlet(0.1..1), zero cells, deterministic and constant targets, identical sources,
alphabets differing per axis) agree within the certified gaps; torch equals numpy; the torch
batched path is differentiable, with finite gradients equal to the single-pmf ones; a batch
stopped early still carries valid bounds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pidkit
from pidkit.errors import ConvergenceWarning

SHAPES = ((4, 4, 4), (3, 4, 5), (2, 5, 3), (5, 2, 4))
PER_SHAPE = 64
#: Rounding allowance on top of the certified gaps (bits).
SLACK = 1e-12


def atoms(r):
    return [r.redundancy, r.unique[0], r.unique[1], r.synergy]


def mixed_batch(shape: tuple[int, int, int], n: int, seed: int) -> np.ndarray:
    """``n`` pmfs of one shape: Dirichlet(alpha) with alpha in 0.1..1, half of them with zero
    cells, plus a deterministic target, a constant target, identical sources (when the
    source alphabets allow) and a constant source."""
    rng = np.random.default_rng(seed)
    ny, nt, ns = shape
    items = []
    for i in range(n - 4):
        p = rng.dirichlet(np.full(ny * nt * ns, rng.uniform(0.1, 1.0))).reshape(shape)
        if i % 2:
            p[rng.random(shape) < 0.4] = 0.0
            if p.sum() == 0:
                p[0, 0, 0] = 1.0
        items.append(p / p.sum())
    deterministic = np.zeros(shape)
    y_of = rng.integers(0, ny, size=(nt, ns))
    for t in range(nt):
        for s in range(ns):
            deterministic[y_of[t, s], t, s] = rng.uniform(0.5, 1.0)
    const_target = np.zeros(shape)
    const_target[0] = rng.dirichlet(np.ones(nt * ns)).reshape(nt, ns)
    identical = np.zeros(shape)
    for x in range(min(nt, ns)):
        identical[:, x, x] = rng.dirichlet(np.ones(ny))
    const_source = np.zeros(shape)
    const_source[:, 0, :] = rng.dirichlet(np.ones(ny * ns)).reshape(ny, ns)
    items += [q / q.sum() for q in (deterministic, const_target, identical, const_source)]
    return np.stack(items)


@pytest.fixture(scope="module")
def batches():
    return [mixed_batch(shape, PER_SHAPE, seed) for seed, shape in enumerate(SHAPES)]


@pytest.fixture(scope="module")
def numpy_results(batches):
    return [pidkit.broja(b, batch=True) for b in batches]


def test_batched_equals_single_solves_within_certified_gaps(batches, numpy_results):
    assert sum(len(b) for b in batches) >= 250
    for batch, r in zip(batches, numpy_results, strict=True):
        cert = r.solver.certificate
        gap = cert.upper - cert.lower
        assert r.solver.converged and r.solver.status in ("optimal", "closed_form")
        assert np.all(r.solver.details["converged"]) and np.all(gap <= 1e-9)
        assert np.all(cert.lower <= r.unique[0]) and np.all(r.unique[0] <= cert.upper)
        for i, p in enumerate(batch):
            single = pidkit.broja(p)
            s_cert = single.solver.certificate
            # both brackets contain the true value: they intersect
            assert max(cert.lower[i], s_cert.lower) <= min(cert.upper[i], s_cert.upper) + SLACK
            allowed = gap[i] + s_cert.gap + SLACK
            for a_batch, a_single in zip(atoms(r), atoms(single), strict=True):
                assert abs(a_batch[i] - a_single) <= allowed
            assert min(a[i] for a in atoms(r)) >= 0.0


def test_torch_equals_numpy(batches, numpy_results):
    for batch, r_np in zip(batches, numpy_results, strict=True):
        r_t = pidkit.broja(torch.from_numpy(batch), batch=True)
        assert r_t.solver.converged
        gap_t = (r_t.solver.certificate.upper - r_t.solver.certificate.lower).numpy()
        gap_np = r_np.solver.certificate.upper - r_np.solver.certificate.lower
        assert np.all(gap_t <= 1e-9)
        for a_t, a_np in zip(atoms(r_t), atoms(r_np), strict=True):
            assert isinstance(a_t, torch.Tensor) and a_t.dtype == torch.float64
            assert np.all(np.abs(a_t.numpy() - a_np) <= gap_t + gap_np + SLACK)


def test_torch_batched_gradients_finite_and_equal_single():
    batch = mixed_batch((3, 4, 4), 16, seed=7)
    x = torch.tensor(batch, requires_grad=True)
    r = pidkit.broja(x, batch=True)
    (r.unique[0].sum() + r.synergy.sum()).backward()
    assert bool(torch.isfinite(x.grad).all())
    for i in range(len(batch)):
        xi = torch.tensor(batch[i], requires_grad=True)
        ri = pidkit.broja(xi)
        (ri.unique[0] + ri.synergy).backward()
        torch.testing.assert_close(x.grad[i], xi.grad, atol=1e-5, rtol=1e-5)


def test_batch_stopped_early_keeps_valid_bounds(batches, numpy_results):
    batch, reference = batches[0], numpy_results[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = pidkit.broja(batch, batch=True, max_iter=3)
    cert = r.solver.certificate
    assert r.solver.status == "max_iter"
    assert np.all(np.isfinite(cert.lower)) and np.all(np.isfinite(cert.upper))
    truth = reference.unique[0]
    slack = reference.solver.certificate.gap + SLACK
    assert np.all(cert.lower <= truth + slack) and np.all(truth <= cert.upper + slack)


def test_last_round_of_the_line_search_takes_the_same_steps(monkeypatch):
    # the remaining step lengths of the few items still backtracking, evaluated at once,
    # give the choices of trying them one by one: the same bounds, bit for bit
    from pidkit.discrete.broja import _ipm

    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(64), size=600)
    p[rng.random(p.shape) < 0.7] = 0.0
    p[p.sum(axis=1) == 0, 0] = 1.0
    p = (p / p.sum(axis=1, keepdims=True)).reshape(600, 4, 4, 4)
    rounds = []
    original = _ipm._last_round
    monkeypatch.setattr(_ipm, "_last_round", lambda *a: rounds.append(1) or original(*a))
    first = pidkit.broja(p, batch=True)
    assert rounds                                       # the batch has backtracking items
    monkeypatch.setattr(_ipm, "ONE_ROUND", 0)
    second = pidkit.broja(p, batch=True)
    for a, b in zip(atoms(first), atoms(second), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.solver.certificate.lower,
                                  second.solver.certificate.lower)


def test_an_item_whose_iterate_breaks_down_leaves_the_others_alone(monkeypatch):
    # two sparse 5 x 5 x 5 pmfs (Dirichlet(0.01)) through the batched driver: the second one's
    # last backtracking step used to be taken with a non-finite residual, its iterate turned
    # NaN, and the crossover of both then stopped at the first singular Newton system (the
    # NaN item's), so the first, certified by that crossover when alone, ended at max_iter
    # too; now each item of the pair reaches the status it has alone, certified
    from pidkit.discrete.broja import _small

    monkeypatch.setattr(_small, "LEAN_ROWS", 0)             # the batched driver, any size
    rng = np.random.default_rng(1027)
    rng.dirichlet(np.full(64, 0.01), 400)
    rng.dirichlet(np.full(64, 0.001), 400)
    p = rng.dirichlet(np.full(125, 0.01), 400).reshape(400, 5, 5, 5)[[4, 208]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        pair = pidkit.broja(p, batch=True)
        alone = [pidkit.broja(p[i:i + 1], batch=True) for i in range(2)]
    assert np.all(pair.solver.details["converged"])
    for i, single in enumerate(alone):
        assert single.solver.details["converged"][0]
        gap = pair.solver.certificate.gap[i] + single.solver.certificate.gap[0] + SLACK
        assert abs(pair.unique[0][i] - single.unique[0][0]) <= gap


def test_a_batch_does_not_decide_for_its_items_whether_to_refine(monkeypatch):
    # 33 Dirichlet(0.01) pmfs at 5 x 5 x 5: the first (item 59 of the seed's 400) certifies
    # alone, but stopped at max_iter with a gap near 1e-7 bits in this batch while the corrector
    # direction was refined for the whole batch once some item's sum(w s) was below
    # _ipm.REFINE_BELOW (for it, at iterations that depended on the other items); now each
    # item's own sum(w s) decides
    from pidkit.discrete.broja import _small

    monkeypatch.setattr(_small, "LEAN_ROWS", 0)             # the batched driver, any size
    p = np.random.default_rng(1027).dirichlet(np.full(125, 0.01), 400).reshape(400, 5, 5, 5)
    items = [59, *range(364, 367), *range(370, 389), *range(390, 400)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = pidkit.broja(p[items], batch=True)
        alone = pidkit.broja(p[59:60], batch=True)
    assert alone.solver.details["converged"][0]
    assert np.all(batch.solver.details["converged"])
