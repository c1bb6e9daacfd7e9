"""Streaming sufficient statistics: batch-by-batch accumulation, merging with +, all_reduce,
exact equality with one-shot statistics (numpy and torch)."""

import os
import tempfile
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.estimate import GaussianMoments, JointCounts, one_hot, pid_from_samples


def _codes(n, sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, k, n) for k in sizes]


def _batches(n, size):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_merged_counts_equal_one_shot_exactly(backend):
    cols = _codes(5000, (4, 7, 3), 0)
    wrap = (lambda a: torch.from_numpy(a)) if backend == "torch" else (lambda a: a)
    one_shot = JointCounts().update(*[wrap(c) for c in cols])
    running = JointCounts()
    parts = []
    for sl in _batches(5000, 777):
        running.update(*[wrap(c[sl]) for c in cols])
        parts.append(JointCounts().update(*[wrap(c[sl]) for c in cols]))
    merged = parts[0]
    for part in parts[1:]:
        merged = merged + part
    reference = np.zeros((4, 7, 3), dtype=np.int64)
    np.add.at(reference, tuple(cols), 1)
    for stat in (one_shot, running, merged, sum(parts[1:], parts[0])):
        np.testing.assert_array_equal(stat.counts, reference)
    np.testing.assert_array_equal(merged.to_pmf(), pidkit.joint_pmf(*cols))
    assert merged.n_samples == 5000


def test_counts_grow_and_merge_across_alphabet_sizes():
    a = JointCounts().update(np.array([0, 1]), np.array([0, 0]))
    b = JointCounts().update(np.array([0]), np.array([4]))
    merged = a + b
    assert merged.shape == (2, 5)
    assert merged.counts[0, 4] == 1 and merged.counts[1, 0] == 1
    a.update(np.array([2]), np.array([1]))  # grows in place
    assert a.shape == (3, 2) and a.n_samples == 3
    assert (JointCounts() + a).counts.tolist() == a.counts.tolist()


def test_counts_pid_matches_pid_from_samples():
    y, x0, x1 = _codes(1500, (2, 3, 3), 1)
    stat = JointCounts()
    for sl in _batches(1500, 400):
        stat.update(y[sl], x0[sl], x1[sl])
    kw = dict(measure="mmi", n_boot=20, n_perm=20, seed=3)
    assert stat.pid(**kw).to_dict()["atoms"] == pid_from_samples(y, x0, x1, **kw).to_dict()["atoms"]


def test_counts_errors():
    with pytest.raises(PIDTypeError, match="integer codes"):
        JointCounts().update(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(PIDValueError, match="negative"):
        JointCounts().update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(PIDValueError, match="outside the fixed size"):
        JointCounts(shape=(2, 2)).update(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(PIDTypeError, match="mixes numpy"):
        JointCounts().update(torch.tensor([0, 1]), np.array([0, 1]))
    t = JointCounts().update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(PIDTypeError, match="switches"):
        t.update(np.array([0]), np.array([1]))
    with pytest.raises(PIDTypeError, match="same array library"):
        t + JointCounts().update(np.array([0]), np.array([1]))
    with pytest.raises(PIDValueError, match="different lengths"):
        JointCounts().update(np.array([0, 1]), np.array([0]))
    with pytest.raises(PIDValueError, match="no samples"):
        JointCounts().counts


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_merged_moments_equal_one_shot_exactly_on_dyadic_data(backend):
    """Integers / 8 in float32: every partial sum is exact in float64, so batching may not change
    a single bit."""
    rng = np.random.default_rng(0)
    m = (rng.integers(-64, 64, (3000, 2)) / 8).astype(np.float32)
    x = (rng.integers(-64, 64, (3000, 3)) / 8).astype(np.float32)
    y = (rng.integers(-64, 64, 3000) / 8).astype(np.float32)
    wrap = torch.from_numpy if backend == "torch" else (lambda a: a)
    one_shot = GaussianMoments().update(wrap(m), wrap(x), wrap(y))
    parts = [GaussianMoments().update(wrap(m[s]), wrap(x[s]), wrap(y[s]))
             for s in _batches(3000, 512)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged + part
    z = np.concatenate([m, x, y[:, None]], axis=1).astype(np.float64)
    assert merged.dims == (2, 3, 1) and merged.n_samples == 3000
    np.testing.assert_array_equal(merged.sum, one_shot.sum)
    np.testing.assert_array_equal(merged.cross, one_shot.cross)
    np.testing.assert_array_equal(merged.sum, z.sum(0))
    np.testing.assert_array_equal(merged.to_covariance(), one_shot.to_covariance())
    np.testing.assert_allclose(merged.to_covariance(ddof=1), np.cov(z, rowvar=False), rtol=1e-13)


def test_moments_generic_data_within_rounding_and_shift():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4000, 4)) + 1000.0
    shift = np.full(4, 1000.0)
    stat = GaussianMoments(shift=shift)
    for s in _batches(4000, 333):
        stat.update(z[s, :1], z[s, 1:3], z[s, 3:])
    np.testing.assert_allclose(stat.to_covariance(ddof=1), np.cov(z, rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(stat.to_mean(), z.mean(0), rtol=1e-14)
    with pytest.raises(PIDValueError, match="different shift"):
        stat + GaussianMoments().update(z[:5, :1], z[:5, 1:3], z[:5, 3:])
    with pytest.raises(PIDValueError, match="block widths"):
        stat.update(z[:5, :2], z[:5, 2:3], z[:5, 3:])
    with pytest.raises(PIDValueError, match="NaN"):
        GaussianMoments().update(np.array([np.nan, 1.0]), np.array([1.0, 2.0]))


def test_one_hot_drop_last():
    np.testing.assert_array_equal(one_hot(np.array([0, 2, 1]), 3),
                                  [[1, 0], [0, 0], [0, 1]])
    assert one_hot(np.array([1]), 4, drop_last=False).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(PIDValueError, match="must lie in"):
        one_hot(np.array([3]), 3)


def test_all_reduce_without_process_group_is_a_no_op():
    stat = JointCounts().update(np.array([0, 1]), np.array([1, 1]))
    assert stat.all_reduce() is stat and stat.n_samples == 2


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        cols = _codes(1000, (3, 4, 2), 0)
        mine = slice(rank * 500, (rank + 1) * 500)
        # rank 1 sees a larger alphabet of source 0 than rank 0 does on purpose
        counts = JointCounts().update(*[c[mine] for c in cols]) if rank == 0 else \
            JointCounts().update(cols[0][mine], cols[1][mine] + 3, cols[2][mine])
        counts.all_reduce()
        rng = np.random.default_rng(rank)
        z = rng.normal(size=(200, 3))
        moments = GaussianMoments().update(torch.from_numpy(z[:, :1]),
                                           torch.from_numpy(z[:, 1:2]), torch.from_numpy(z[:, 2:]))
        moments.all_reduce()
        empty = GaussianMoments().all_reduce()
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), counts=counts.counts,
                 n=moments.n_samples, cross=moments.cross, empty_n=empty.n_samples)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_across_two_processes():
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        ctx = mp.spawn(_worker, args=(2, init_file, tmp), nprocs=2, join=False)
        deadline = time.monotonic() + 300
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                for proc in ctx.processes:
                    proc.kill()
                pytest.fail("the two worker processes did not finish within 300 s")
        results = [np.load(os.path.join(tmp, f"rank{r}.npz")) for r in range(2)]
    cols = _codes(1000, (3, 4, 2), 0)
    expected = np.zeros((3, 7, 2), dtype=np.int64)
    np.add.at(expected, (cols[0][:500], cols[1][:500], cols[2][:500]), 1)
    np.add.at(expected, (cols[0][500:], cols[1][500:] + 3, cols[2][500:]), 1)
    z = np.concatenate([np.random.default_rng(r).normal(size=(200, 3)) for r in range(2)])
    for res in results:
        np.testing.assert_array_equal(res["counts"], expected)
        assert int(res["n"]) == 400 and int(res["empty_n"]) == 0
        np.testing.assert_allclose(res["cross"], z.T @ z, rtol=1e-12)
