"""The array backends (pidkit._backend) against numpy's and torch's own functions: one class per
library behind one interface, parametrised over backend x dtype; the einsum route of numpy's
short sums, the batched Cholesky factor and solve (batch axes last on numpy), the writable
diagonal view, the symmetric factorisations the BROJA solver uses, autograd; and the import
graph: no cycle among pidkit's modules, torch imported only for tensors."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import pidkit
from pidkit._backend import (
    NUMPY,
    SHORT_SUM,
    Backend,
    NumpyBackend,
    TorchBackend,
    get_namespace,
)
from pidkit.errors import PIDTypeError

TORCH = get_namespace(torch.zeros(1))


def spd_batch(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    """Random symmetric positive definite matrices, condition number up to about 1e6."""
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + 1e-6 * n * np.eye(n)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, (1, 2), (1, 3), (0, 2, 3), (1, 2, 3), [1, 3]])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", [(5, 4, 3, 6), (60, 4, 3, 6)])     # np.add.reduce, einsum
def test_short_sums_equal_numpy_sum(axis, keepdims, shape):
    x = np.random.default_rng(0).random(shape)
    ours = NUMPY.sum(x, axis=axis, keepdims=keepdims)
    ref = np.sum(x, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=keepdims)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(TORCH.sum(torch.tensor(x), axis=axis, keepdims=keepdims).numpy(),
                               ref, rtol=1e-14, atol=0)


def test_sum_takes_einsum_for_short_sums_of_large_arrays_only():
    from pidkit._backend.numpy import EINSUM_SIZE, _sum_plan

    assert _sum_plan((5, 4, 3, 6), (1, -1)) == ((1, 3), None)       # small: np.add.reduce
    assert 60 * 4 * 3 * 6 >= EINSUM_SIZE
    assert _sum_plan((60, 4, 3, 6), (1, -1)) == ((1, 3), "abcd->ac")
    assert _sum_plan((60, SHORT_SUM + 1), 1) == ((1,), None)         # long: pairwise sum


def test_long_integer_and_float32_sums_keep_numpy_semantics():
    rng = np.random.default_rng(1)
    long = rng.random((3, SHORT_SUM + 1))
    assert NUMPY.sum(long, axis=1).tolist() == np.sum(long, axis=1).tolist()   # pairwise sum
    counts = rng.integers(0, 5, size=(4, 3))
    assert NUMPY.sum(counts > 2, axis=1).tolist() == np.sum(counts > 2, axis=1).tolist()
    single = rng.random((4, 3)).astype(np.float32)
    assert NUMPY.sum(single, axis=1).dtype == np.float32


@pytest.mark.parametrize("n, k", [(1, 1), (4, 16), (16, 1), (9, 3)])
def test_cholesky_solve_equals_dense_solve(n, k):
    rng = np.random.default_rng(n * 10 + k)
    a = spd_batch(rng, (7, 3), n)
    b = rng.standard_normal((7, 3, n, k))
    b_before = b.copy()
    ref = np.linalg.solve(a, b)
    factor = NUMPY.cho_factor(a)
    assert factor is not None
    x = NUMPY.cho_solve(factor, b)
    assert x.shape == b.shape
    np.testing.assert_array_equal(b, b_before)              # the right-hand side is untouched
    scale = np.linalg.cond(a)[..., None, None] * np.abs(ref).max()
    assert np.all(np.abs(x - ref) <= 1e-12 * scale)
    xt = TORCH.cho_solve(TORCH.cho_factor(torch.tensor(a)), torch.tensor(b)).numpy()
    assert np.all(np.abs(xt - ref) <= 1e-12 * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 300])
def test_few_large_cholesky_solves_by_blas_equal_the_substitution(dtype, k, monkeypatch):
    # six matrices of order 20: solved one by one with BLAS's triangular solves (the float64
    # Schur complement of BROJA at k = 64 has 64 of order 64 with 4096 right-hand sides)
    from pidkit._backend import numpy as numpy_backend

    assert numpy_backend._few_large(20, 6)
    rng = np.random.default_rng(k)
    a = rng.standard_normal((2, 3, 20, 20))
    a = (a @ np.swapaxes(a, -1, -2) + 20 * np.eye(20)).astype(dtype)   # condition below ~10
    b = rng.standard_normal((2, 3, 20, k)).astype(dtype)
    b_before = b.copy()
    factor = NUMPY.cho_factor(a)
    x = NUMPY.cho_solve(factor, b)
    np.testing.assert_array_equal(b, b_before)              # the right-hand side is untouched
    assert x.dtype == dtype and x.shape == b.shape
    ref = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    eps = np.finfo(dtype).eps
    assert np.abs(x - ref).max() <= 100 * eps * np.abs(ref).max()
    in_place = NUMPY.cho_solve(factor, b, overwrite_b=True)
    assert np.shares_memory(in_place, b)
    np.testing.assert_array_equal(in_place, x)
    monkeypatch.setattr(numpy_backend, "BLAS_ORDER", 10**6)   # the row-by-row substitution
    assert not numpy_backend._few_large(20, 6)
    by_rows = NUMPY.cho_solve(factor, b_before)
    assert np.abs(by_rows - x).max() <= 100 * eps * np.abs(ref).max()


@pytest.mark.parametrize("n, k, count", [(4, 8, 6), (16, 1, 40), (20, 3, 6), (20, 30, 60)])
def test_cholesky_lower_solve_is_the_first_half_of_the_solve(n, k, count):
    # L^-1 b, by rows over the batch or (few large matrices) BLAS one matrix at a time: its
    # inner products give b^T a^-1 b, and L times it is b; torch's agrees
    from pidkit._backend import numpy as numpy_backend

    rng = np.random.default_rng(n + k)
    a = spd_batch(rng, (count,), n) + n * np.eye(n)                 # condition below ~1e3
    b = rng.standard_normal((count, n, k))
    assert numpy_backend._few_large(n, count, k) == (n >= 16 and (count <= 32 or k >= n))
    w = NUMPY.cho_lower_solve(NUMPY.cho_factor(a), b)
    assert w.shape == b.shape
    np.testing.assert_allclose(np.swapaxes(w, -1, -2) @ w,
                               np.swapaxes(b, -1, -2) @ np.linalg.solve(a, b), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.cholesky(a) @ w, b, atol=1e-12)
    wt = TORCH.cho_lower_solve(TORCH.cho_factor(torch.tensor(a)), torch.tensor(b)).numpy()
    np.testing.assert_allclose(wt, w, atol=1e-12)


def test_cholesky_factor_reports_indefinite_matrices():
    rng = np.random.default_rng(3)
    a = spd_batch(rng, (5,), 4)
    a[2] = np.diag([1.0, -1e-3, 1.0, 1.0])                  # one indefinite item in the batch
    assert NUMPY.cho_factor(a) is None
    assert TORCH.cho_factor(torch.tensor(a)) is None


@pytest.mark.parametrize("axes", [(-2, -1), (1, 3), (2, 4)])
def test_diagonal_is_a_writable_view_like_torch(axes):
    x = np.random.default_rng(4).random((2, 3, 4, 3, 4))
    if axes == (-2, -1):
        x = x[..., :3]
    t = torch.tensor(x)
    view = NUMPY.diagonal(x, *axes)
    np.testing.assert_array_equal(view, TORCH.diagonal(t, *axes).numpy())
    before = x.copy()
    view += 1.0
    TORCH.diagonal(t, *axes).add_(1.0)
    np.testing.assert_array_equal(x, t.numpy())
    assert (x != before).sum() == view.size                  # exactly the diagonal changed


# -- one class per library behind one interface ------------------------------------------------
BACKENDS = [NUMPY, TORCH]
DTYPES = ["float64", "float32"]


def array(xp, values, dtype="float64"):
    """``values`` as an array of ``xp``'s library in the dtype named ``dtype``."""
    return xp.asarray(np.asarray(values, dtype=dtype))


def host(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def tolerance(dtype):
    return {"float64": 1e-12, "float32": 1e-5}[dtype]


def test_one_class_per_library_behind_one_interface():
    assert isinstance(NUMPY, NumpyBackend) and isinstance(TORCH, TorchBackend)
    for xp in BACKENDS:
        assert isinstance(xp, Backend)
        assert not getattr(type(xp), "__abstractmethods__", None)   # every method implemented
    assert get_namespace(np.ones(2), 1.0, None) is NUMPY
    assert get_namespace([1.0, 2.0]) is NUMPY
    assert get_namespace(torch.ones(2), 3) is TORCH
    with pytest.raises(PIDTypeError, match="mix numpy arrays and torch tensors"):
        get_namespace(np.ones(2), torch.ones(2))


def test_numerical_code_never_asks_which_library():
    # the BROJA solver and the backend's users in it are written once: no branch on the
    # library's name, no torch import, no tensor type test (those live in pidkit._backend)
    root = Path(pidkit.__file__).parent / "discrete" / "broja"
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("name", "_lib"), where
            if isinstance(node, ast.Name):
                assert node.id != "is_torch", where
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m.split(".")[0] == "torch" for m in modules), where


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_creation_conversion_and_dtype(xp, dtype):
    x = array(xp, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype)
    assert xp.is_floating(x) and not xp.is_floating(array(xp, [1, 2], "int64"))
    assert xp.eps(x) == float(np.finfo(dtype).eps)
    z = xp.zeros((2, 2), x)
    assert host(z).dtype == np.dtype(dtype) and host(z).sum() == 0
    assert host(xp.zeros((3,), x, dtype="int64")).dtype == np.int64
    assert host(xp.empty((4,), x)).dtype == np.dtype(dtype)
    assert host(xp.eye(3, x)).tolist() == np.eye(3).tolist()
    assert host(xp.float64(x)).dtype == np.float64
    assert host(xp.to_dtype(xp.float64(x), x)).dtype == np.dtype(dtype)
    assert host(x[xp.indices(np.array([1, 0]), x)]).tolist() == [[4, 5, 6], [1, 2, 3]]
    c = xp.copy(x)
    c[0, 0] = 9.0
    assert float(x[0, 0]) == 1.0
    one = xp.to_result(xp.sum(x, axis=(0, 1))[None], x, ())
    many = xp.to_result(xp.sum(x, axis=0), x, (3,))
    if xp.scalar_floats:           # numpy: float64 values, a Python float for one item
        assert type(one) is float and many.dtype == np.float64
    else:                          # torch: the input's dtype, 0-d tensors for one item
        assert one.shape == () and one.dtype == x.dtype and many.dtype == x.dtype
    assert float(one) == 21.0 and host(many).tolist() == [5.0, 7.0, 9.0]


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
def test_elementwise_reductions_and_shapes(xp):
    x = array(xp, np.arange(24.0).reshape(2, 3, 4) - 5.0)
    ref = np.arange(24.0).reshape(2, 3, 4) - 5.0
    assert host(xp.where(x > 0, x, 0.0)).tolist() == np.where(ref > 0, ref, 0.0).tolist()
    assert host(xp.maximum(x, 0.0)).tolist() == np.maximum(ref, 0.0).tolist()
    assert host(xp.minimum(x, x * 0.5)).tolist() == np.minimum(ref, ref * 0.5).tolist()
    k = np.array([[-1060], [3], [1020]])                      # per row of a (3, 4) array
    scaled = xp.ldexp(array(xp, np.full((3, 4), 0.75)), k)
    assert host(scaled).tolist() == np.ldexp(np.full((3, 4), 0.75), k).tolist()
    odd = array(xp, [1.0, np.inf, -np.inf, np.nan])
    assert host(xp.isfinite(odd)).tolist() == [True, False, False, False]
    np.testing.assert_array_equal(host(xp.xlogy_safe(xp.maximum(x, 0.0), xp.maximum(x, 0.0))),
                                  np.where(ref > 0, ref * np.log(np.where(ref > 0, ref, 1)), 0))
    for axis in (1, (0, 2), [0, 1]):
        ax = tuple(axis) if isinstance(axis, list) else axis
        assert host(xp.max(x, axis=axis)).tolist() == ref.max(axis=ax).tolist()
        assert host(xp.min(x, axis=axis, keepdims=True)).tolist() == ref.min(
            axis=ax, keepdims=True).tolist()
    assert bool(xp.any(x > 17)) and not xp.all(x > 0) and xp.all(x > -6)
    assert host(xp.sum(x, axis=[0, 2])).tolist() == ref.sum(axis=(0, 2)).tolist()
    assert host(xp.any(x > 17, axis=2)).tolist() == (ref > 17).any(axis=2).tolist()
    flags = x > 0
    assert host(xp.cumsum(flags, axis=2)).tolist() == np.cumsum(ref > 0, axis=2).tolist()
    codes = xp.asarray(np.array([0, 3, 3, 1]))
    assert host(xp.bincount(codes, minlength=6)).tolist() == [1, 1, 0, 2, 0, 0]
    assert host(xp.permute_dims(x, (2, 0, 1))).tolist() == ref.transpose(2, 0, 1).tolist()
    assert host(xp.swapaxes(x, 0, 2)).tolist() == ref.swapaxes(0, 2).tolist()
    assert host(xp.moveaxis(x, 0, 2)).tolist() == np.moveaxis(ref, 0, 2).tolist()
    assert host(xp.concatenate([x, x[:1]], axis=0)).shape == (3, 3, 4)
    assert host(xp.concatenate([x, x], axis=2)).tolist() == np.concatenate([ref, ref], 2).tolist()
    np.testing.assert_allclose(host(xp.einsum("abc,abc->a", x, x)),
                               np.einsum("abc,abc->a", ref, ref), rtol=1e-14)


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_algebra(xp, dtype):
    rng = np.random.default_rng(5)
    a_np = spd_batch(rng, (3,), 4)
    a_np /= np.abs(a_np).max()
    b_np = rng.standard_normal((3, 4, 2))
    a, b = array(xp, a_np, dtype), array(xp, b_np, dtype)
    tol = tolerance(dtype) * np.linalg.cond(a_np).max()
    low = xp.cholesky(a)
    np.testing.assert_allclose(host(low), np.linalg.cholesky(a_np), atol=tol)
    np.testing.assert_allclose(host(xp.solve_triangular(low, b)),
                               np.linalg.solve(np.linalg.cholesky(a_np), b_np), atol=tol)
    quad = np.swapaxes(b_np, -1, -2) @ np.linalg.solve(a_np, b_np)
    np.testing.assert_allclose(host(xp.inv_quad(a, b)), quad, atol=tol * np.abs(quad).max())
    np.testing.assert_allclose(host(xp.eigvalsh(a)), np.linalg.eigvalsh(a_np), atol=tol)
    np.testing.assert_allclose(host(xp.solve(a, b)), np.linalg.solve(a_np, b_np), atol=tol)


def not_positive_definite_batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``(2, 4, n, n)`` batch of symmetric matrices, good ones between matrices that are not
    numerically positive definite (indefinite, exactly singular, a negative diagonal entry,
    a NaN on the diagonal or off it, which numpy's LAPACK does not flag), and the mask of the
    good ones."""
    rng = np.random.default_rng(n)
    a = spd_batch(rng, (8,), n) / n
    a[1, 0, -1] = a[1, -1, 0] = 2 * np.sqrt(a[1, 0, 0] * a[1, -1, -1])   # indefinite
    a[2, -1], a[2, :, -1] = a[2, 0], a[2, 0]                         # singular: last = first
    a[2, 0, 0] = a[2, -1, -1] = a[2, 0, -1] = a[2, -1, 0] = 4.0     # exactly (pivot 0)
    a[4, -1, -1] = -1.0                                              # negative variance
    a[5, 0, 0] = np.nan
    a[6, 1, 0] = a[6, 0, 1] = np.nan
    good = np.array([True, False, False, True, False, False, False, True])
    return a.reshape(2, 4, n, n), good.reshape(2, 4)


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 5])
def test_cholesky_is_nan_for_each_matrix_not_positive_definite(xp, dtype, n):
    """numpy as torch's ``cholesky_ex``: NaN for the bad matrices only, no error, no
    warning; the good ones get numpy's factor."""
    a_np, good = not_positive_definite_batch(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low = host(xp.cholesky(array(xp, a_np, dtype)))
    assert low.shape == a_np.shape and low.dtype == np.dtype(dtype)
    assert np.isnan(low).all(axis=(-2, -1)).tolist() == (~good).tolist()
    assert np.isfinite(low[good]).all()
    ref = np.linalg.cholesky(a_np[good].astype(dtype))
    np.testing.assert_allclose(low[good], ref, rtol=0, atol=tolerance(dtype))
    if xp is NUMPY:
        assert np.array_equal(low[good], ref)         # the batched call's factor, bit for bit


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
def test_solve_is_nan_for_each_singular_matrix_only(xp):
    """A batched solve with an exactly singular matrix: NaN for that matrix, no error, the
    others solved (numpy's batched call raises for the whole batch)."""
    rng = np.random.default_rng(3)
    a = spd_batch(rng, (2, 3), 4)
    a[1, 2] = 0.0
    b = rng.standard_normal((2, 3, 4, 2))
    x = host(xp.solve(array(xp, a, np.float64), array(xp, b, np.float64)))
    good = np.ones((2, 3), dtype=bool)
    good[1, 2] = False
    assert np.isnan(x[~good]).all() and np.isfinite(x[good]).all()
    np.testing.assert_allclose(x[good], np.linalg.solve(a[good], b[good]), rtol=1e-10)


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("n, batch", [(1, 1), (1, 64), (3, 2), (3, 100), (5, 80)])
def test_inv_quad_both_substitutions(xp, n, batch):
    """Row-by-row substitution over a long batch and numpy's LU solver for a short one
    (:func:`pidkit._backend.numpy._forward_substitute`) equal the dense formula."""
    rng = np.random.default_rng(batch + n)
    a_np = spd_batch(rng, (batch,), n)
    b_np = rng.standard_normal((batch, n, 2))
    quad = np.swapaxes(b_np, -1, -2) @ np.linalg.solve(a_np, b_np)
    got = host(xp.inv_quad(array(xp, a_np), array(xp, b_np)))
    np.testing.assert_allclose(got, quad, rtol=1e-9 * np.linalg.cond(a_np).max(), atol=0)


@pytest.mark.parametrize("n, batch", [(2, 8), (2, 64), (5, 8), (5, 100)])
def test_inv_quad_nan_pattern_is_torchs(n, batch):
    """NaN where ``a`` is not numerically positive definite (indefinite, exactly singular,
    negative or NaN entries), identical for numpy and torch, whichever substitution runs;
    numpy's LU solver used to raise on the singular matrix and give numbers for the
    indefinite one."""
    a_np, good = not_positive_definite_batch(n)
    reps = -(-batch // 8)
    a_np = np.tile(a_np.reshape(8, n, n), (reps, 1, 1))[:batch]
    good = np.tile(good.ravel(), reps)[:batch]
    b_np = np.random.default_rng(0).standard_normal((batch, n, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = NUMPY.inv_quad(a_np, b_np)
    ref = TORCH.inv_quad(torch.tensor(a_np), torch.tensor(b_np)).numpy()
    assert np.isnan(got).all(axis=(-2, -1)).tolist() == (~good).tolist()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got[good], ref[good], rtol=1e-12, atol=0)


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 3, 6])
def test_eigvalsh_is_nan_for_a_matrix_with_a_nan(xp, dtype, n):
    """A NaN matrix (a failed factor) among good ones: NaN eigenvalues for it alone, where
    LAPACK fails to converge from order 3 and numpy and torch raised for the whole batch."""
    a_np = spd_batch(np.random.default_rng(n), (4,), n)
    a_np[1] = np.nan
    a_np[3, 0, 1] = a_np[3, 1, 0] = np.inf
    lam = host(xp.eigvalsh(array(xp, a_np, dtype)))
    assert lam.dtype == np.dtype(dtype)
    assert np.isnan(lam).all(axis=-1).tolist() == [False, True, False, True]
    ref = np.linalg.eigvalsh(a_np[[0, 2]].astype(dtype))
    np.testing.assert_allclose(lam[[0, 2]], ref, rtol=0, atol=tolerance(dtype) * ref.max())


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("single", [False, True])
def test_symmetric_factor_and_solve(xp, batch, single):
    rng = np.random.default_rng(batch)
    a_np = spd_batch(rng, (batch,), 6)
    b_np = rng.standard_normal((batch, 6, 2))
    a, b = xp.asarray(a_np), xp.asarray(b_np)
    a_before = a_np.copy()
    factor = xp.sym_factor(a, single=single)
    if factor is None:          # float32 refused (numpy batches: it would not pay)
        assert single and xp is NUMPY and batch > 1
        return
    x = xp.sym_solve(factor, b)
    assert host(x).dtype == np.float64
    np.testing.assert_array_equal(host(a), a_before)                  # a is left unchanged
    tol = (1e-4 if single else 1e-12) * np.linalg.cond(a_np).max()
    np.testing.assert_allclose(host(x), np.linalg.solve(a_np, b_np), atol=tol)


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda xp: xp.name)
@pytest.mark.parametrize("batch", [1, 3])
def test_symmetric_factor_of_an_indefinite_matrix(xp, batch):
    # rounding can make a Schur complement indefinite: float32 gives up, float64 falls back
    # to an LU factorisation (or a plain solve) that still solves the system
    rng = np.random.default_rng(7)
    a_np = spd_batch(rng, (batch,), 4)
    a_np[-1] = np.diag([2.0, -1.0, 3.0, 1.0])
    b_np = rng.standard_normal((batch, 4, 1))
    a, b = xp.asarray(a_np), xp.asarray(b_np)
    assert xp.sym_factor(a, single=True) is None
    x = xp.sym_solve(xp.sym_factor(a), b)
    np.testing.assert_allclose(host(x), np.linalg.solve(a_np, b_np), atol=1e-10)


@pytest.mark.parametrize("single", [False, True])
def test_large_single_matrices_are_factorised_on_one_blas_thread(monkeypatch, single):
    """OpenBLAS's multithreaded Cholesky crashes the process from about order 15,000 (see
    LARGE_ORDER): from LARGE_ORDER on the numpy backend factorises one matrix with one BLAS
    thread, and says what to install when it cannot pin threads."""
    from scipy.linalg import lapack
    from threadpoolctl import threadpool_info, threadpool_limits

    import pidkit._backend.numpy as numpy_backend

    def blas_threads():
        return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas"}

    seen = []

    def recording(real):
        def call(*args, **kwargs):
            seen.append(max(blas_threads().values()))
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(lapack, "dpotrf", recording(lapack.dpotrf))
    monkeypatch.setattr(lapack, "spotrf", recording(lapack.spotrf))
    monkeypatch.setattr(numpy_backend, "LARGE_ORDER", 6)
    rng = np.random.default_rng(1)
    a_np, b_np = spd_batch(rng, (1,), 6), rng.standard_normal((1, 6, 2))
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        x = NUMPY.sym_solve(NUMPY.sym_factor(a_np, single=single), b_np)
        after = blas_threads()
    tol = (1e-4 if single else 1e-12) * np.linalg.cond(a_np).max()
    np.testing.assert_allclose(x, np.linalg.solve(a_np, b_np), atol=tol)
    assert seen == [1]
    assert after == before and 2 in before.values()   # the pin is undone after the call
    monkeypatch.setattr(numpy_backend, "have_threadpoolctl", lambda: False)
    with pytest.raises(ImportError, match="pip install threadpoolctl"):
        NUMPY.sym_factor(a_np)


def test_autograd_methods():
    for xp in BACKENDS:
        assert not xp.requires_grad(xp.asarray(np.ones(2)))
    x = torch.tensor([[0.2, 0.3], [0.5, 0.0]], dtype=torch.float64, requires_grad=True)
    assert TORCH.requires_grad(x) and not TORCH.requires_grad(TORCH.detach(x))
    with TORCH.no_grad():
        assert not (x * 2).requires_grad
    grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    value = (x * grad).sum(dim=1).detach() + 7.0
    out = TORCH.envelope(x, value, grad)
    assert torch.equal(out, value)
    (out * torch.tensor([1.0, -2.0], dtype=torch.float64)).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0], [-6.0, -8.0]]
    v = np.array([1.0, 2.0])
    assert NUMPY.envelope(np.ones((2, 2)), v, np.ones((2, 2))) is v
    with NUMPY.no_grad():
        pass


# -- imports: no cycle among pidkit's modules, torch stays optional ----------------------------
def import_graph(package: str) -> dict[str, set[str]]:
    """Static import graph of ``package`` (module -> pidkit modules it imports, at module level
    or inside functions): ``from a import b`` points at ``a.b`` when that is a module, else
    at ``a`` (a package's ``__init__``)."""
    root = Path(pidkit.__file__).parent.parent
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[:len(here.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                subs = {f"{target}.{a.name}" for a in node.names} & modules.keys()
                deps.update(subs)
                if target in modules and len(subs) < len(node.names):
                    deps.add(target)
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_import_graph_helper_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["pidkit", "pidkit_distill"])
def test_no_import_cycle(package):
    graph = import_graph(package)
    assert "pidkit.decompose" not in graph.get("pidkit.discrete.broja._api", set())
    assert not graph.get("pidkit._backend", {"?"}) & {"pidkit.validation", "pidkit._validation"}
    assert cycles(graph) == []


@pytest.mark.parametrize("first", ["pidkit.discrete.broja._api", "pidkit.discrete.broja",
                                   "pidkit._backend", "pidkit.validation", "pidkit.decompose"])
def test_modules_import_first_in_a_fresh_interpreter(first):
    # the orders the former cycles made fragile; torch stays unimported
    script = (f"import sys, importlib; importlib.import_module({first!r}); import pidkit; "
              "p = pidkit.gates.gate('AND'); r = pidkit.broja(p); "
              "print(round(r.redundancy, 6), 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.311278", "False"]
