"""The numpy backend: :class:`NumpyBackend` (also the backend of Python scalars and lists)."""

from __future__ import annotations

import contextlib
import functools
import math
import string
from typing import Any

import numpy as np

from .._threads import have_threadpoolctl, one_blas_thread
from ._base import Backend, Factor

#: Order from which one matrix is factorised and solved with one BLAS thread: OpenBLAS's
#: multithreaded Cholesky (numpy's and scipy's bundled builds alike, OpenBLAS 0.3.x, 2 threads)
#: crashed the process with a segmentation fault at order 16,000 and 16,384 and ran at 14,000;
#: with one thread order 16,384 factorises in 22 s (2026-12-05, this project's 2-core machine).
#: The BROJA Schur complement reaches it at k = 128 (|Y||T| = 16,384 rows).
LARGE_ORDER = 12_000


def _threads_for(order: int) -> Any:
    """One BLAS thread for a matrix of at least :data:`LARGE_ORDER` rows, else no change;
    an ``ImportError`` naming the fix instead of the crash when threadpoolctl is missing."""
    if order < LARGE_ORDER:
        return contextlib.nullcontext()
    if not have_threadpoolctl():
        raise ImportError(
            f"factorising a matrix of order {order} with OpenBLAS's threads can crash the "
            f"process (OpenBLAS's multithreaded Cholesky fails from about order 15,000), so "
            f"pidkit runs it on one thread through threadpoolctl, which is not installed. "
            f"Install it: pip install threadpoolctl")
    return one_blas_thread()

__all__ = ["NumpyBackend", "SHORT_SUM"]

#: Largest number of entries summed into one output that :meth:`NumpyBackend.sum` hands to
#: ``einsum`` (longer sums keep ``np.sum``'s pairwise summation).
SHORT_SUM = 256
#: ... on arrays of at least this many entries: below, ``np.add.reduce`` costs less than an
#: ``einsum`` call (measured, one thread: 1.0 against 1.4 us on 64 entries, about equal on
#: 256; 4.6 against 2.5 us on 1024 entries summed over a trailing axis of 4).
EINSUM_SIZE = 512
_LETTERS = string.ascii_letters
#: Entries per chunk of :func:`_matrices_first`: a transpose of ``(chunk, n*n)`` that fits in
#: the cache (numpy's one-pass transpose of a ``(10^4, 256)`` array is 8x slower).
TRANSPOSE_CHUNK = 16384


@functools.lru_cache(maxsize=1024)
def _sum_plan(shape: tuple[int, ...], axis: Any) -> tuple[tuple[int, ...], str | None]:
    """The normalised axes of a sum of an array of ``shape`` over ``axis`` (an int or a
    tuple), and the ``einsum`` subscripts that compute it where :meth:`NumpyBackend.sum` uses
    ``einsum`` (else None); cached, since the solvers sum arrays of a few shapes thousands of
    times (the planning cost more than the sum on a 10 x 10 x 10 table)."""
    ndim = len(shape)
    axes = tuple(sorted({a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))}))
    if (math.prod(shape) < EINSUM_SIZE or ndim > len(_LETTERS)
            or math.prod(shape[a] for a in axes) > SHORT_SUM):
        return axes, None
    names = _LETTERS[:ndim]
    return axes, names + "->" + "".join(c for i, c in enumerate(names) if i not in axes)


def _matrices_first(a: Any) -> Any:
    """The batch of matrices ``a[..., n, n]`` as a C-ordered ``(n, n, ...)`` array, transposed
    chunk by chunk along the batch."""
    n, batch = a.shape[-1], a.shape[:-2]
    flat = np.reshape(a, (-1, n * n))
    out = np.empty((n * n, flat.shape[0]), dtype=a.dtype)
    chunk = min(max(TRANSPOSE_CHUNK // (n * n), 16), 256)
    for start in range(0, flat.shape[0], chunk):
        out[:, start:start + chunk] = flat[start:start + chunk].T
    return np.reshape(out, (n, n, *batch))


#: :meth:`NumpyBackend.cho_solve` solves with BLAS matrix by matrix for matrices of at least
#: this order when the batch holds at most :data:`BLAS_ROWS` rows in all (``n`` times the
#: number of matrices) and either at most :data:`BLAS_FEW` matrices or at least ``n``
#: right-hand sides. Measured on one thread (2026-12-05, AMD EPYC; the row-by-row
#: substitution against the loop, in place): n = 64, 64 matrices, 4096 right-hand sides 404
#: against 86 ms (the reassembled Schur complement of BROJA at k = 64), 64 right-hand sides
#: 5.9 against 1.7 ms, one 0.47 against 0.60 ms; n = 16, 16 matrices, 8 right-hand sides 0.12
#: against 0.05 ms; but n = 16, 1024 matrices, one right-hand side 0.18 against 3.0 ms (the
#: loop's per-matrix overhead, hence the cap on rows).
BLAS_ORDER = 16
BLAS_ROWS = 8192
#: With fewer right-hand sides than rows, the loop only pays for this many matrices: with one
#: right-hand side it took 0.5-0.9 times the substitution's time for 16 to 32 matrices of
#: order 16 to 128, but 1.2-1.7 times for 48 to 64 and 2.3-8.3 times for 128 to 512 at
#: order 16 (2026-12-06, one thread: the Schur complements of the last items of a batch of
#: 10^4 pmfs at k = 4, whose directions took 1.6 ms per solve at 512 items instead of 0.2).
BLAS_FEW = 32


def _few_large(n: int, count: int, k: int = 1) -> bool:
    """Whether ``count`` matrices of order ``n``, with ``k`` right-hand sides each, are
    solved faster one by one with BLAS."""
    return n >= BLAS_ORDER and n * count <= BLAS_ROWS and (count <= BLAS_FEW or k >= n)


def _cho_solve_each(factor: Any, b: Any, overwrite_b: bool = False,
                    lower_only: bool = False) -> np.ndarray:
    r""":meth:`NumpyBackend.cho_solve` by BLAS's triangular solves, one matrix at a time:
    ``factor`` ``(n, n, ...)`` (batch axes last), ``b`` ``(..., n, k)``; in ``b`` itself with
    ``overwrite_b`` where it is a C-ordered array of the result's shape and dtype.

    Each C-ordered ``n x k`` right-hand side is, in memory, the Fortran-ordered
    :math:`B^\top`, so with :math:`A = U^\top U` (``U = L^\top``) the solve
    :math:`X^\top = B^\top U^{-1} U^{-\top}` is two right-sided ``trsm`` calls in place,
    without the transposed copies ``potrs`` would make; with ``lower_only``, the first one
    alone, :math:`L^{-1} B` (:meth:`NumpyBackend.cho_lower_solve`)."""
    from scipy.linalg import blas

    n = factor.shape[0]
    lows = np.reshape(factor, (n, n, -1))
    shape, dtype = (*factor.shape[2:], *b.shape[-2:]), np.result_type(factor, b)
    in_place = (overwrite_b and isinstance(b, np.ndarray) and b.shape == shape
                and b.dtype == dtype and b.flags.c_contiguous and b.flags.writeable)
    out = b if in_place else np.array(np.broadcast_to(b, shape), dtype=dtype, copy=True)
    rows = np.reshape(out, (-1, *b.shape[-2:]))
    trsm = blas.dtrsm if out.dtype == np.float64 else blas.strsm
    for i in range(lows.shape[2]):
        upper = np.ascontiguousarray(lows[:, :, i], dtype=out.dtype).T  # Fortran-ordered U
        x_t = trsm(1.0, upper, rows[i].T, side=1, lower=0, trans_a=0, overwrite_b=1)
        if not lower_only:
            x_t = trsm(1.0, upper, x_t, side=1, lower=0, trans_a=1, overwrite_b=1)
        if not np.may_share_memory(x_t, rows[i]):      # the wrapper copied after all
            rows[i] = x_t.T
    return out


def _forward_rows(factor: Any, b: Any) -> np.ndarray:
    """``L^{-1} b`` for :meth:`NumpyBackend.cho_factor`'s ``factor`` ``(n, n, ...)`` and
    ``b`` ``(..., n, k)``, row by row over the whole batch, as a new C-ordered ``(n, k, ...)``
    array (the layout of :meth:`NumpyBackend.cho_solve`'s back substitution)."""
    x = np.array(np.moveaxis(b, (-2, -1), (0, 1)), dtype=np.result_type(factor, b),
                 order="C", copy=True)                            # (n, k, ...)
    for i in range(factor.shape[0]):
        if i:
            x[i] -= np.einsum("j...,jk...->k...", factor[i, :i], x[:i])
        x[i] /= factor[i, i]
    return x


def _solve_each(a: Any, b: Any) -> np.ndarray:
    """``a^{-1} b`` for each matrix ``a[..., n, n]`` on its own (``b[..., n, k]``, the same
    batch axes); NaN for a matrix on which numpy raises (singular in floating point)."""
    a, b = np.asarray(a), np.asarray(b)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    flat_a = np.reshape(np.broadcast_to(a, shape + a.shape[-2:]), (-1,) + a.shape[-2:])
    flat_b = np.reshape(np.broadcast_to(b, shape + b.shape[-2:]), (-1,) + b.shape[-2:])
    out = np.full(flat_b.shape, np.nan, dtype=np.result_type(a, b, 1.0))
    for i, (m, r) in enumerate(zip(flat_a, flat_b, strict=True)):
        try:
            out[i] = np.linalg.solve(m, r)
        except np.linalg.LinAlgError:
            pass                    # the documented result for this matrix: NaN
    return np.reshape(out, shape + b.shape[-2:])


def _cholesky_each(a: Any) -> np.ndarray:
    """The Cholesky factor of each matrix ``a[..., n, n]`` on its own; NaN for a matrix on
    which numpy raises."""
    a = np.asarray(a)
    flat = np.reshape(a, (-1,) + a.shape[-2:])
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    out = np.full(flat.shape, np.nan, dtype=dtype)
    for i, m in enumerate(flat):
        try:
            out[i] = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            pass                    # the documented result for this matrix: NaN
    return np.reshape(out, a.shape)


#: :func:`_forward_substitute` runs row by row when the batch holds at least this many matrices
#: per row of one (numpy's LU solver on the factor: 1000 matrices of order 16, 2.0 ms against
#: 3.5 ms; 10 of order 16, 95 us against 58 us; one of order 4, 12 us against 4 us; this
#: project's 2-core machine).
ROW_BY_ROW_BATCH = 16


def _forward_substitute(low: Any, b: Any) -> np.ndarray:
    """``low^{-1} b`` for lower-triangular ``low[..., n, n]`` and ``b[..., n, k]`` (same batch
    axes): row by row over the whole batch, or numpy's LU solver for a short batch. A NaN
    factor gives NaN, never an error."""
    n = low.shape[-1]
    if math.prod(low.shape[:-2]) < ROW_BY_ROW_BATCH * n:
        return np.linalg.solve(low, b)
    w = np.empty(np.broadcast_shapes(low.shape[:-2], b.shape[:-2]) + b.shape[-2:],
                 dtype=np.result_type(low, b))
    for i in range(n):
        row = b[..., i, :]
        if i:
            row = row - np.einsum("...j,...jk->...k", low[..., i, :i], w[..., :i, :])
        w[..., i, :] = row / low[..., i, i, None]
    return w


class NumpyBackend(Backend):
    """:class:`~pidkit._backend.Backend` on numpy (CPU, no autograd); linear algebra through
    numpy's batched LAPACK and, for one matrix, scipy's LAPACK wrappers."""

    name = "numpy"
    scalar_floats = True
    _lib = np

    # -- creation and conversion -----------------------------------------------------------
    def asarray(self, x: Any, like: Any = None, dtype: Any = None) -> Any:
        return np.asarray(x, dtype=like.dtype if (like is not None and dtype is None) else dtype)

    def zeros(self, shape: tuple[int, ...], like: Any, dtype: str | None = None) -> Any:
        return np.zeros(shape, dtype=like.dtype if dtype is None else np.dtype(dtype))

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        return np.empty(shape, dtype=like.dtype)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def indices(self, idx: Any, like: Any) -> Any:
        return np.asarray(idx)

    def float64(self, x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    def to_dtype(self, x: Any, like: Any) -> Any:
        return np.asarray(x, dtype=like.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def to_result(self, x: Any, like: Any, shape: tuple[int, ...]) -> Any:
        x = np.asarray(x, dtype=np.float64).reshape(shape)
        return float(x) if x.ndim == 0 else x

    def copy(self, x: Any) -> Any:
        return np.array(x, copy=True)

    # -- dtype -----------------------------------------------------------------------------
    def is_floating(self, x: Any) -> bool:
        return np.asarray(x).dtype.kind == "f"

    def eps(self, x: Any) -> float:
        return float(np.finfo(x.dtype).eps)

    # -- elementwise -----------------------------------------------------------------------
    def isfinite(self, x: Any) -> Any:
        return np.isfinite(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return np.where(cond, a, b)

    def ldexp(self, x: Any, k: Any) -> Any:
        return np.ldexp(x, k)

    def maximum(self, a: Any, b: Any) -> Any:
        return np.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return np.minimum(a, b)

    # -- reductions ------------------------------------------------------------------------
    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Sum over ``axis``. Short float reductions (at most :data:`SHORT_SUM` entries per
        output) of arrays of :data:`EINSUM_SIZE` entries or more run through ``einsum``, 2-6x
        faster than ``np.sum`` on axes of length 4 (numpy's reduction loop pays per output
        entry); their plain accumulation differs from ``np.sum``'s pairwise one by a few ulps
        at these lengths. Other float reductions over given axes take ``np.add.reduce``
        directly (:func:`_sum_plan`, cached per shape and axes)."""
        if axis is not None and x.dtype.kind == "f" and x.ndim > 0:
            axes, subscripts = _sum_plan(x.shape, tuple(axis) if isinstance(axis, list)
                                         else axis)
            if subscripts is None:
                return np.add.reduce(x, axis=axes, keepdims=keepdims)
            out = np.einsum(subscripts, x)
            return np.expand_dims(out, axes) if keepdims else out
        return np.sum(x, axis=self._axes(axis), keepdims=keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.max(x, axis=self._axes(axis), keepdims=keepdims)

    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.min(x, axis=self._axes(axis), keepdims=keepdims)

    def any(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.any(x, axis=self._axes(axis), keepdims=keepdims)

    def cumsum(self, x: Any, axis: int) -> Any:
        return np.cumsum(x, axis=axis)

    def bincount(self, x: Any, minlength: int = 0) -> Any:
        return np.bincount(x, minlength=minlength)

    # -- shape -----------------------------------------------------------------------------
    def einsum(self, subscripts: str, *operands: Any) -> Any:
        return np.einsum(subscripts, *operands, optimize=True)

    def swapaxes(self, x: Any, a: int, b: int) -> Any:
        return np.swapaxes(x, a, b)

    def permute_dims(self, x: Any, axes: Any) -> Any:
        return np.transpose(x, tuple(axes))

    def concatenate(self, arrays: Any, axis: int = 0) -> Any:
        return np.concatenate(arrays, axis=axis)

    def diagonal(self, x: Any, axis1: int = -2, axis2: int = -1) -> Any:
        """A writable view of the diagonal (``np.diagonal``'s is read-only): an ``einsum``
        view over the repeated index, moved to the last axis as torch's ``diagonal``."""
        a1, a2 = axis1 % x.ndim, axis2 % x.ndim
        names = [_LETTERS[i] for i in range(x.ndim)]
        names[a2] = names[a1]
        kept = "".join(c for i, c in enumerate(names) if i not in (a1, a2)) + names[a1]
        return np.einsum(f"{''.join(names)}->{kept}", x)

    # -- linear algebra --------------------------------------------------------------------
    def solve(self, a: Any, b: Any) -> Any:
        """``numpy.linalg.solve``, batched; where it raises (some matrix of the batch is
        singular in floating point: numpy's batched call fails for the whole batch), one
        call per matrix, NaN for the singular ones."""
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            return _solve_each(a, b)

    def solve_triangular(self, lower: Any, b: Any) -> Any:
        """``numpy.linalg.solve`` on purpose: scipy's triangular solver runs on scipy's own
        OpenBLAS thread pool, which contends with numpy's and made 2 x 2 solves take 24 ms
        unpinned on a loaded 2-core machine (vs 10 us)."""
        return np.linalg.solve(lower, b)

    def cholesky(self, a: Any) -> Any:
        """``numpy.linalg.cholesky`` with torch's failure mode (``cholesky_ex``): NaN for each
        matrix of the batch that is not numerically positive definite, no error. One batched
        call when every matrix factorises; else one call per matrix (numpy's batched call
        raises for the whole batch). A matrix with a NaN entry counts as failed, as torch's
        status says: numpy's LAPACK does not flag it, but its factor then has a NaN last
        diagonal entry (a NaN in row ``i`` reaches ``L[i, i]``, and through column ``i`` every
        later row's), the one entry per matrix checked here."""
        try:
            low = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            low = _cholesky_each(a)
        n = low.shape[-1]
        if low.size == n * n:                 # one matrix (or none): a check on the host scalar
            return np.full_like(low, np.nan) if n and math.isnan(low.flat[-1]) else low
        failed = np.isnan(low[..., -1, -1])
        return np.where(failed[..., None, None], np.nan, low) if failed.any() else low

    def inv_quad(self, a: Any, b: Any) -> Any:
        """``w^T w``, ``w = L^{-1} b`` (:meth:`cholesky`, so NaN where ``a`` is not numerically
        positive definite, as with torch): the substitution runs row by row over the whole
        batch where the batch is long next to ``n`` (numpy has no batched triangular solver;
        1000 matrices of order 1: about 50 us against 70 us for one LU solve of ``a``), else by
        numpy's LU solver on ``L`` (see :meth:`solve_triangular`)."""
        w = _forward_substitute(self.cholesky(a), b)
        return np.swapaxes(w, -1, -2) @ w

    def eigvalsh(self, a: Any) -> Any:
        """``numpy.linalg.eigvalsh``. Where LAPACK's solver fails to converge on a matrix with
        a non-finite entry (such as :meth:`cholesky`'s NaN factor, from order 3), NaN
        eigenvalues for those matrices instead of an error for the whole batch, as with torch
        (:meth:`TorchBackend.eigvalsh`)."""
        try:
            return np.linalg.eigvalsh(a)
        except np.linalg.LinAlgError:
            bad = ~np.isfinite(a).all(axis=(-2, -1))
            if not bad.any():
                raise
        eye = np.eye(a.shape[-1], dtype=a.dtype)
        lam = np.linalg.eigvalsh(np.where(bad[..., None, None], eye, a))
        return np.where(bad[..., None], np.nan, lam)

    def cho_factor(self, a: Any) -> Any:
        """``L`` with :math:`a = L L^\\top` and the batch axes *last*, ``(n, n, ...)``: numpy
        has no batched triangular solve, so :meth:`cho_solve` substitutes row by row with
        whole-batch vector operations, which need each ``L[i, j]`` contiguous over the batch.
        (numpy's batched ``linalg.solve`` re-factorises at every call: with several right-hand
        sides per matrix, factorising once and substituting is about twice as fast for
        ``n <= 16``; ``benchmarks/backend_kernels.py``.)"""
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        return _matrices_first(chol)

    def cho_solve(self, factor: Any, b: Any, overwrite_b: bool = False) -> Any:
        """Forward substitution with ``L``, back substitution with ``L^T``, row by row over
        the whole batch; for a few large matrices (:func:`_few_large`), BLAS's triangular
        solves on one matrix at a time instead (:func:`_cho_solve_each`)."""
        n = factor.shape[0]
        if _few_large(n, math.prod(factor.shape[2:]), b.shape[-1]):
            return _cho_solve_each(factor, b, overwrite_b)
        x = _forward_rows(factor, b)
        for i in reversed(range(n)):
            if i < n - 1:
                x[i] -= np.einsum("j...,jk...->k...", factor[i + 1:, i], x[i + 1:])
            x[i] /= factor[i, i]
        return np.moveaxis(x, (0, 1), (-2, -1))

    def cho_lower_solve(self, factor: Any, b: Any) -> Any:
        """The forward substitution of :meth:`cho_solve` alone (its BLAS route: the first
        triangular solve)."""
        if _few_large(factor.shape[0], math.prod(factor.shape[2:]), b.shape[-1]):
            return _cho_solve_each(factor, b, lower_only=True)
        return np.moveaxis(_forward_rows(factor, b), (0, 1), (-2, -1))

    def sym_factor(self, a: Any, single: bool = False) -> Factor | None:
        """A batch of more than one matrix: :meth:`cho_factor` (scipy would loop over the
        batch in Python), else a copy of the matrices, solved afresh by numpy's batched
        solver at each use; never float32 (it would not pay there). One matrix: scipy's
        LAPACK ``potrf`` (float32 with ``single``), else an LU factorisation."""
        if a.shape[0] > 1:
            chol = None if single else self.cho_factor(a)
            if chol is not None:
                return Factor("cholesky", chol)
            # a copy: callers reuse a's buffer (BROJA's Schur complement) once it is factorised
            return None if single else Factor("solve", np.array(a, dtype=np.float64))
        import scipy.linalg
        from scipy.linalg import lapack

        # a is symmetric and C-ordered: its transpose is the Fortran-ordered array LAPACK wants
        with _threads_for(a.shape[-1]):
            if single:
                c, info = lapack.spotrf(np.asarray(a[0], dtype=np.float32).T, lower=1,
                                        overwrite_a=1, clean=0)
            else:
                c, info = lapack.dpotrf(np.asarray(a[0], dtype=np.float64).T, lower=1,
                                        overwrite_a=0, clean=0)
        if info == 0:
            return Factor("lapack_cholesky", (c, True))
        if single:
            return None
        return Factor("lu", scipy.linalg.lu_factor(a, check_finite=False))

    def lu_factor(self, a: Any) -> Factor:
        """The matrices themselves, solved by numpy's batched LU solver at each use (it takes
        any batch axes; a host library has nothing to synchronise)."""
        return Factor("solve", np.asarray(a, dtype=np.float64))

    def sym_solve(self, factor: Factor, b: Any) -> Any:
        kind, f = factor
        if kind == "cholesky":
            return self.to_dtype(self.cho_solve(f, self.to_dtype(b, f)), b)
        if kind == "solve":
            return self.solve(f, b)
        import scipy.linalg

        if kind == "lu":
            return scipy.linalg.lu_solve(f, b, check_finite=False)
        c, lower = f
        with _threads_for(c.shape[-1]):
            return scipy.linalg.cho_solve((c, lower), b[0].astype(c.dtype),
                                          check_finite=False)[None].astype(b.dtype)
