"""Streaming sufficient statistics: batch-by-batch accumulation, merging with +, all_reduce,
exact equality with one-shot statistics (numpy and torch)."""

import math
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
from _spawn import spawn_and_load

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
    """Integers / 8 in float32: every shifted sample and partial sum is exact in float64 (the
    automatic shift is a short binary fraction), so batching may not change a single bit."""
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
    np.testing.assert_array_equal(merged.shift, one_shot.shift)
    np.testing.assert_array_equal(merged.sum, (z - merged.shift).sum(0))
    np.testing.assert_array_equal(merged.cross, (z - merged.shift).T @ (z - merged.shift))
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
    with pytest.raises(PIDValueError, match="different explicit shift"):
        stat + GaussianMoments(shift=shift + 1).update(z[:5, :1], z[:5, 1:3], z[:5, 3:])
    # an explicit shift wins over an automatic one: the merged sums stay about 1000
    auto = GaussianMoments().update(z[:5, :1], z[:5, 1:3], z[:5, 3:])
    for merged in (stat + auto, auto + stat):
        np.testing.assert_array_equal(merged.shift, shift)
        np.testing.assert_allclose(merged.sum, np.r_[z, z[:5]].sum(0) - 4005 * shift,
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(merged.to_covariance(ddof=1),
                                   np.cov(np.r_[z, z[:5]], rowvar=False), rtol=1e-12)
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


def test_a_declared_class_that_never_occurs_leaves_the_estimate_unchanged():
    """one_hot(labels, n_classes=k) with the same k in every batch, as the docs ask: a class
    that occurs in no batch is a zero column, which gaussian_pid drops (it carries nothing), so
    the bias-corrected PID equals that of the classes present (pid_from_samples encodes only
    those). The correction once counted the declared k - 1 columns: here every atom moved by
    up to 0.011 bits."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    x = labels + rng.normal(size=200)
    y = rng.normal(size=(200, 2)) + labels[:, None]
    moments = GaussianMoments()
    for i in range(0, 200, 50):
        moments.update(one_hot(labels[i:i + 50], n_classes=5), x[i:i + 50], y[i:i + 50])
    streamed = moments.pid()
    direct = pid_from_samples(labels, x, y, estimator="gaussian", ci=None, n_perm=0)
    for node in direct.atoms:
        assert streamed.atoms[node] == pytest.approx(direct.atoms[node], abs=1e-9)
    assert streamed.details["ranks"] == [2, 1, 2, 3] == direct.details["ranks"]


def test_all_reduce_without_process_group_is_a_no_op():
    stat = JointCounts().update(np.array([0, 1]), np.array([1, 1]))
    assert stat.all_reduce() is stat and stat.n_samples == 2


def _rank_rows(rank):
    """Rank 0: 200 rows, rank 1: 300 rows in another range (so another automatic shift), both
    far from the origin."""
    rng = np.random.default_rng(rank)
    return rng.normal(size=(200 + 100 * rank, 3)) + 1e7 + rank * np.array([3.0, -2.0, 5.0])


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
        z = _rank_rows(rank)
        blocks = [torch.from_numpy(z[:, :1]), torch.from_numpy(z[:, 1:2]),
                  torch.from_numpy(z[:, 2:])]
        own_shift = GaussianMoments().update(*blocks).shift
        moments = GaussianMoments().update(*blocks)
        moments.all_reduce()
        # an explicit shift on rank 0 only: every rank adopts it
        mixed = (GaussianMoments(shift=np.full(3, 1e7)) if rank == 0 else GaussianMoments())
        mixed.update(*blocks).all_reduce()
        # samples on rank 1 only
        partial = GaussianMoments().update(*blocks) if rank == 1 else GaussianMoments()
        partial.all_reduce()
        empty = GaussianMoments().all_reduce()
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), counts=counts.counts,
                 n=moments.n_samples, shift=moments.shift, own_shift=own_shift,
                 cross=moments.cross, cov=moments.to_covariance(ddof=1),
                 atoms=list(moments.pid().atoms.values()), mixed_shift=mixed.shift,
                 mixed_cov=mixed.to_covariance(ddof=1), partial_n=partial.n_samples,
                 partial_cross=partial.cross, partial_shift=partial.shift,
                 empty_n=empty.n_samples)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_across_two_processes():
    results = spawn_and_load(_worker)
    cols = _codes(1000, (3, 4, 2), 0)
    expected = np.zeros((3, 7, 2), dtype=np.int64)
    np.add.at(expected, (cols[0][:500], cols[1][:500], cols[2][:500]), 1)
    np.add.at(expected, (cols[0][500:], cols[1][500:] + 3, cols[2][500:]), 1)
    z = np.concatenate([_rank_rows(r) for r in range(2)])
    ref = pid_from_samples(z[:, 0], z[:, 1], z[:, 2], estimator="gaussian", n_boot=0, n_perm=0)
    for res in results:
        np.testing.assert_array_equal(res["counts"], expected)
        assert int(res["n"]) == 500 and int(res["empty_n"]) == 0
        # the automatic shifts differed; the rank with more samples (rank 1) gave its own
        assert not np.array_equal(results[0]["own_shift"], results[1]["own_shift"])
        np.testing.assert_array_equal(res["shift"], results[1]["own_shift"])
        c = z - res["shift"]
        np.testing.assert_allclose(res["cross"], c.T @ c, rtol=1e-12)
        np.testing.assert_allclose(res["cov"], np.cov(z, rowvar=False), rtol=1e-10)
        np.testing.assert_allclose(res["atoms"], list(ref.atoms.values()), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_array_equal(res["mixed_shift"], np.full(3, 1e7))
        np.testing.assert_allclose(res["mixed_cov"], np.cov(z, rowvar=False), rtol=1e-8)
        assert int(res["partial_n"]) == 300
        np.testing.assert_array_equal(res["partial_shift"], results[1]["own_shift"])
        c1 = _rank_rows(1) - results[1]["own_shift"]
        np.testing.assert_allclose(res["partial_cross"], c1.T @ c1, rtol=1e-12)
    np.testing.assert_array_equal(results[0]["cross"], results[1]["cross"])


# -- shift invariance (automatic shifts) -------------------------------------------------------
def _gaussian_rows(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    z = rng.normal(size=(n, 1))
    y = x[:, 0] + z[:, 0] + 0.5 * rng.normal(size=n)
    return y, x, z


def _atoms(result):
    return np.array([result.atoms[node] for node in result.lattice.nodes])


def _assert_atoms_close(got, want, rtol):
    """Atoms equal within ``rtol`` relative to the largest atom (an atom near 0 is compared on
    the scale of the decomposition)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e7, 1e12])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_streamed_pid_is_invariant_to_offsets(offset, backend):
    """Adding a constant to each variable changes no Gaussian information. The streamed
    statistic gave swapped unique atoms at 1e7 when it summed raw cross-products about 0."""
    y, x, z = _gaussian_rows(5000, 0)
    y, x, z = y + offset, x - 2 * offset, z + 0.5 * offset   # the rows both routes see
    wrap = torch.from_numpy if backend == "torch" else (lambda a: a)
    stat = GaussianMoments()
    for s in _batches(5000, 500):
        stat.update(wrap(y[s]), wrap(x[s]), wrap(z[s]))
    ref = pid_from_samples(y, x, z, estimator="gaussian", n_boot=0, n_perm=0)
    _assert_atoms_close(_atoms(stat.pid()), _atoms(ref), 1e-9)
    assert stat.pid().mutual_information == pytest.approx(ref.mutual_information, rel=1e-9)
    _assert_atoms_close(_atoms(stat.pid(bias_correction=False)),
                        _atoms(pid_from_samples(y, x, z, estimator="gaussian", n_boot=0,
                                                n_perm=0, bias_correction=False)), 1e-9)
    rows = np.column_stack([y, x, z])
    centred = rows - rows.mean(0)
    centred -= centred.mean(0)   # two passes: np.cov's one pass is off by 5e-5 at 1e12
    np.testing.assert_allclose(stat.to_covariance(ddof=1), centred.T @ centred / 4999,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stat.to_mean(), rows.mean(0), rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e7, 1e12])
def test_merges_in_any_grouping_agree(offset):
    """Three shards in different ranges (split by the value of x, so each has its own
    automatic shift), merged in every grouping and order, and one running stream."""
    y, x, z = _gaussian_rows(6000, 1)
    y, x, z = y + offset, x + offset, z - offset
    order = np.argsort(x[:, 0], kind="stable")
    shards = [order[:1000], order[1000:4500], order[4500:]]
    parts = [GaussianMoments().update(y[i], x[i], z[i]) for i in shards]
    shifts = [p.shift for p in parts]
    assert not np.array_equal(shifts[0][1], shifts[2][1])   # x's shifts differ
    a, b, c = parts
    merged = [(a + b) + c, a + (b + c), (c + a) + b, (b + c) + a, c + (b + a), (a + c) + b]
    stream = GaussianMoments()
    for i in shards:
        for s in _batches(len(i), 700):
            stream.update(y[i[s]], x[i[s]], z[i[s]])
    ref = pid_from_samples(y, x, z, estimator="gaussian", n_boot=0, n_perm=0)
    first = _atoms(merged[0].pid())
    for stat in merged + [stream]:
        assert stat.n_samples == 6000
        _assert_atoms_close(_atoms(stat.pid()), first, 1e-12)
        np.testing.assert_allclose(stat.to_covariance(), merged[0].to_covariance(),
                                   rtol=1e-12)
        _assert_atoms_close(_atoms(stat.pid()), _atoms(ref), 1e-9)
    # between automatic shifts, the side with more samples keeps its own (b: 3500 rows)
    for stat in merged[:5]:
        np.testing.assert_array_equal(stat.shift, shifts[1])
    np.testing.assert_array_equal((a + c).shift, shifts[2])   # 1500 rows against 1000
    np.testing.assert_array_equal((a + a).shift, shifts[0])   # a tie: the left one


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_dyadic_merges_with_different_shifts_are_exact_about_a_common_shift(backend):
    """Dyadic data in shards of different ranges: the automatic shifts differ, the conversion
    terms are exact, so every grouping, re-expressed about one shift c
    (``GaussianMoments(shift=c) + stat``), equals the one-pass sums about c bit for bit."""
    rng = np.random.default_rng(2)
    wrap = torch.from_numpy if backend == "torch" else (lambda a: a)
    rows = []
    for k in range(4):   # shard k: integers / 8 around 40 k (and 1e6 in the target)
        rows.append(np.column_stack([
            rng.integers(-64, 64, (700 + 100 * k, 1)) / 8 + 1e6 - 3 * k,
            rng.integers(-64, 64, (700 + 100 * k, 2)) / 8 + 40 * k,
            rng.integers(-16, 16, (700 + 100 * k, 1)) / 4 - 7 * k]))
    parts = [GaussianMoments().update(wrap(r[:, :1]), wrap(r[:, 1:3]), wrap(r[:, 3:]))
             for r in rows]
    assert len({tuple(p.shift) for p in parts}) == 4
    z = np.concatenate(rows)
    p0, p1, p2, p3 = parts
    groupings = [((p0 + p1) + p2) + p3, p3 + (p2 + (p1 + p0)), (p0 + p2) + (p3 + p1)]
    for c in (parts[0].shift, np.array([1e6, 0.5, 60.0, -10.0])):
        one_pass = GaussianMoments(shift=c).update(wrap(z[:, :1]), wrap(z[:, 1:3]),
                                                   wrap(z[:, 3:]))
        np.testing.assert_array_equal(one_pass.sum, (z - c).sum(0))
        np.testing.assert_array_equal(one_pass.cross, (z - c).T @ (z - c))
        for stat in groupings:
            about_c = GaussianMoments(shift=c) + stat
            np.testing.assert_array_equal(about_c.shift, c)
            np.testing.assert_array_equal(about_c.sum, one_pass.sum)
            np.testing.assert_array_equal(about_c.cross, one_pass.cross)
            np.testing.assert_array_equal(about_c.to_covariance(), one_pass.to_covariance())
    np.testing.assert_allclose(groupings[0].to_covariance(ddof=1), np.cov(z, rowvar=False),
                               rtol=1e-12)
    np.testing.assert_array_equal(groupings[0].to_mean(), z.mean(0))


def test_torch_and_numpy_streams_agree():
    y, x, z = _gaussian_rows(3000, 3)
    y, x, z = y + 1e7, x - 1e7, z + 1e3
    with_numpy, with_torch = GaussianMoments(), GaussianMoments()
    for s in _batches(3000, 400):
        with_numpy.update(y[s], x[s], z[s])
        with_torch.update(*[torch.from_numpy(np.ascontiguousarray(a[s])) for a in (y, x, z)])
    assert is_tensor_on(with_torch._sum, torch.device("cpu"))
    np.testing.assert_array_equal(with_numpy.shift, with_torch.shift)
    np.testing.assert_allclose(with_torch.sum, with_numpy.sum, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(with_torch.cross, with_numpy.cross, rtol=1e-12)
    _assert_atoms_close(_atoms(with_torch.pid()), _atoms(with_numpy.pid()), 1e-12)


def is_tensor_on(value, device):
    return isinstance(value, torch.Tensor) and value.device == device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_state_stays_on_the_device_of_the_first_batch():
    y, x, z = _gaussian_rows(2000, 4)
    cuda = torch.device("cuda", torch.cuda.current_device())
    a, b = GaussianMoments(), GaussianMoments()
    for s in _batches(1000, 250):
        a.update(*[torch.from_numpy(np.ascontiguousarray(v[s]) + 1e7).to(cuda)
                   for v in (y, x, z)])
    for s in _batches(2000, 250)[4:]:
        b.update(*[torch.from_numpy(np.ascontiguousarray(v[s]) + 1e7 + 1).to(cuda)
                   for v in (y, x, z)])
    merged = a + b
    assert merged._sum.device == cuda and merged._cross.device == cuda
    host = GaussianMoments().update(*[v[:1000] + 1e7 for v in (y, x, z)]) + \
        GaussianMoments().update(*[v[1000:] + 1e7 + 1 for v in (y, x, z)])
    _assert_atoms_close(_atoms(merged.pid()), _atoms(host.pid()), 1e-10)


def test_streaming_update_and_merge_do_not_add_host_synchronisations():
    """One read of the column minima and maxima per batch besides the finiteness checks that
    every update makes; a merge reads nothing back from the device."""
    from pidkit_distill.sync_check import count_host_syncs

    y, x, z = _gaussian_rows(400, 5)
    blocks = [torch.from_numpy(np.ascontiguousarray(v)) + 1e7 for v in (y, x, z)]
    stat = GaussianMoments().update(*[v[:200] for v in blocks])
    other = GaussianMoments().update(*[v[200:] + 3 for v in blocks])
    with count_host_syncs() as syncs:
        stat.update(*[v[:200] for v in blocks])
    reads = [e.op for e in syncs.events if "as_tensor" not in e.op]
    assert reads == ["Tensor.__bool__"] * 3 + ["Tensor.cpu", "Tensor.numpy"], syncs.report()
    with count_host_syncs() as syncs:
        stat + other
    assert all("as_tensor" in e.op for e in syncs.events), syncs.report()


@pytest.mark.parametrize("shift", [None, np.zeros(3)])
def test_constant_variable_is_named_not_a_negative_variance(shift):
    """0.1 in every sample: the raw sums about 0 gave a variance of -5e-16, and "has a negative
    variance" instead of what pid_from_samples gives (for a constant target: zeros and a
    warning naming it)."""
    y, x, z = _gaussian_rows(5000, 0)
    far = 0.0 if shift is not None else 1e7   # an explicit shift of 0 only suits data near 0
    stat = GaussianMoments(shift=shift)
    for s in _batches(5000, 500):
        stat.update(np.full(500, 0.1), x[s] + far, z[s])
    with pytest.warns(UserWarning, match="target: is constant"):
        streamed = stat.pid()
    with pytest.warns(UserWarning, match="target: is constant"):
        batch = pid_from_samples(np.full(5000, 0.1), x, z, estimator="gaussian", n_boot=0,
                                 n_perm=0)
    assert list(streamed.atoms.values()) == list(batch.atoms.values()) == [0.0] * 4
    cov = stat.to_covariance()
    assert (cov[0] == 0).all() and (cov[:, 0] == 0).all() and cov[1, 1] > 0
    stat2 = GaussianMoments(shift=shift)
    for s in _batches(5000, 500):
        stat2.update(y[s], x[s] - 100 * far, np.full((500, 1), 1e12 / 3))
    parts = (stat2 + GaussianMoments().update(y[:10], x[:10] - 100 * far, np.full(10, 1e12 / 3)))
    for st in (stat2, parts):
        with pytest.raises(PIDValueError, match=r"sources\[1\]: is constant"):
            st.pid()


def test_extreme_magnitudes_and_far_later_batches():
    """Samples near the float64 limit whose later batches lie far from the first batch's
    automatic shift (r - c overflows: -1.5 2^1023 - 1.5 2^1023), and samples of 1e-160:
    nothing overflows, and the PID is that of the same samples scaled by an exact power of
    two."""
    y, x, z = _gaussian_rows(2000, 6)
    rows = np.column_stack([y, x, z])
    rows[:1000, 2] += 1.5 * 2.0 ** 23          # the last column jumps between the halves
    rows[1000:, 2] -= 1.5 * 2.0 ** 23
    ref = pid_from_samples(rows[:, 0], rows[:, 1], rows[:, 2], estimator="gaussian",
                           n_boot=0, n_perm=0)
    for scale in (2.0 ** 1000, 2.0 ** -530):
        data = rows * scale                      # exact: a power of two
        stat = GaussianMoments()
        for s in _batches(2000, 250):
            stat.update(data[s, :1], data[s, 1:2], data[s, 2:])
        _assert_atoms_close(_atoms(stat.pid()), _atoms(ref), 1e-9)
        assert np.isfinite(stat._scaled_cross()).all()
        exact_mean = [math.fsum(col) / 2000 for col in rows.T]
        np.testing.assert_allclose(stat.to_mean() / scale, exact_mean, rtol=1e-12,
                                   atol=1e-14 * 2.0 ** 24)
