"""The array namespace (pidkit._backend) against numpy's and torch's own functions: the
einsum route of numpy's short sums, the batched Cholesky factor and solve (batch axes last on
numpy), and the writable diagonal view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pidkit._backend import NUMPY, SHORT_SUM, get_namespace

TORCH = get_namespace(torch.zeros(1))


def spd_batch(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    """Random symmetric positive definite matrices, condition number up to about 1e6."""
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + 1e-6 * n * np.eye(n)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, (1, 2), (1, 3), (0, 2, 3), (1, 2, 3)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_short_sums_equal_numpy_sum(axis, keepdims):
    x = np.random.default_rng(0).random((5, 4, 3, 6))
    ours = NUMPY.sum(x, axis=axis, keepdims=keepdims)
    ref = np.sum(x, axis=axis, keepdims=keepdims)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(TORCH.sum(torch.tensor(x), axis=axis, keepdims=keepdims).numpy(),
                               ref, rtol=1e-14, atol=0)


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
