"""A tiny array namespace so that numerical code is written once for numpy and torch.

Numerical kernels take their namespace from their inputs, ``xp = get_namespace(a, b)``, and use
only the functions below (and operators ``+ - * / @`` and indexing, which both libraries share).
The namespace keeps the inputs' dtype and device: arrays it creates (``zeros``, ``asarray``)
take them from a reference array. torch is imported only when a torch tensor is passed, so
``pidkit`` imports without torch.

>>> import numpy as np
>>> from pidkit._backend import get_namespace
>>> xp = get_namespace(np.ones(3))
>>> xp.name, float(xp.sum(np.ones(3), axis=0))
('numpy', 3.0)
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from .errors import PIDTypeError, PIDValueError
from .validation import fail

__all__ = ["Namespace", "get_namespace", "is_torch", "NUMPY"]

#: Largest number of entries summed into one output that numpy's ``Namespace.sum`` hands to
#: ``einsum`` (longer sums keep ``np.sum``'s pairwise summation).
SHORT_SUM = 256
_LETTERS = string.ascii_letters


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


class Namespace:
    """The operations pidkit's array code uses, for one library (``"numpy"`` or ``"torch"``).

    Reductions take ``axis`` (an int or a tuple) and ``keepdims``, as in numpy; the torch
    implementation translates them to ``dim`` / ``keepdim``.
    """

    def __init__(self, name: str):
        self.name = name
        if name == "torch":
            import torch

            self._lib = torch
        else:
            self._lib = np

    # -- creation ----------------------------------------------------------------------
    def asarray(self, x: Any, like: Any = None, dtype: Any = None) -> Any:
        """``x`` as an array of this library, with ``like``'s dtype and device (or ``dtype``)."""
        if self.name == "torch":
            kwargs = {}
            if like is not None:
                kwargs = {"dtype": like.dtype if dtype is None else dtype, "device": like.device}
            elif dtype is not None:
                kwargs = {"dtype": dtype}
            return self._lib.as_tensor(x, **kwargs)
        return np.asarray(x, dtype=like.dtype if (like is not None and dtype is None) else dtype)

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        """Zeros of ``shape`` with ``like``'s dtype and device."""
        if self.name == "torch":
            return self._lib.zeros(shape, dtype=like.dtype, device=like.device)
        return np.zeros(shape, dtype=like.dtype)

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        """An uninitialised array of ``shape`` with ``like``'s dtype and device."""
        if self.name == "torch":
            return self._lib.empty(shape, dtype=like.dtype, device=like.device)
        return np.empty(shape, dtype=like.dtype)

    def eye(self, n: int, like: Any) -> Any:
        """Identity matrix of size ``n`` with ``like``'s dtype and device."""
        if self.name == "torch":
            return self._lib.eye(n, dtype=like.dtype, device=like.device)
        return np.eye(n, dtype=like.dtype)

    def float64(self, x: Any) -> Any:
        """``x`` converted to float64 (same device)."""
        if self.name == "torch":
            return x.to(self._lib.float64)
        return np.asarray(x, dtype=np.float64)

    def to_dtype(self, x: Any, like: Any) -> Any:
        """``x`` converted to ``like``'s dtype (same device)."""
        if self.name == "torch":
            return x.to(like.dtype)
        return np.asarray(x, dtype=like.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A numpy copy of ``x`` (detached from any autograd graph)."""
        if self.name == "torch":
            return x.detach().cpu().numpy()
        return np.asarray(x)

    # -- elementwise -------------------------------------------------------------------
    def exp(self, x: Any) -> Any:
        return self._lib.exp(x)

    def log(self, x: Any) -> Any:
        return self._lib.log(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """``a`` where ``cond`` else ``b``; a scalar takes the other operand's dtype (torch's
        default dtype when both are scalars)."""
        if self.name == "torch":
            ref = a if is_torch(a) else b
            dtype, device = ((ref.dtype, ref.device) if is_torch(ref)
                             else (self._lib.get_default_dtype(), cond.device))
            if not is_torch(a):
                a = self._lib.as_tensor(a, dtype=dtype, device=device)
            if not is_torch(b):
                b = self._lib.as_tensor(b, dtype=dtype, device=device)
            return self._lib.where(cond, a, b)
        return np.where(cond, a, b)

    def maximum(self, a: Any, b: Any) -> Any:
        if self.name == "torch":
            if not is_torch(b):
                return self._lib.clamp(a, min=b)
            return self._lib.maximum(a, b)
        return np.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        if self.name == "torch":
            if not is_torch(b):
                return self._lib.clamp(a, max=b)
            return self._lib.minimum(a, b)
        return np.minimum(a, b)

    def xlogy_safe(self, x: Any, y: Any) -> Any:
        r""":math:`x \ln y` with ``0 log 0 = 0`` and no NaN gradient: ``y`` is masked to 1 before
        the logarithm wherever ``x == 0`` or ``y <= 0``."""
        keep = (x != 0) & (y > 0)
        return self.where(keep, x * self.log(self.where(keep, y, 1.0)), 0.0)

    def multiply(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a * b`` (broadcasting), written into ``out`` when given."""
        return self._lib.multiply(a, b, out=out)

    # -- reductions --------------------------------------------------------------------
    def _dim(self, axis: Any) -> Any:
        return tuple(axis) if isinstance(axis, list) else axis

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Sum over ``axis``. numpy: short float reductions (at most :data:`SHORT_SUM`
        entries per output) run through ``einsum``, 2-6x faster than ``np.sum`` on axes of
        length 4 (numpy's reduction loop pays per output entry); their plain accumulation
        differs from ``np.sum``'s pairwise one by a few ulps at these lengths."""
        if self.name == "torch":
            if axis is None:
                return x.sum()
            return x.sum(dim=self._dim(axis), keepdim=keepdims)
        if axis is not None and x.dtype.kind == "f" and 0 < x.ndim <= len(_LETTERS):
            axes = tuple(a % x.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
            if math.prod(x.shape[a] for a in axes) <= SHORT_SUM:
                names = _LETTERS[:x.ndim]
                kept = "".join(c for i, c in enumerate(names) if i not in axes)
                out = np.einsum(f"{names}->{kept}", x)
                return np.expand_dims(out, axes) if keepdims else out
        return np.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if self.name == "torch":
            if axis is None:
                return x.max()
            return self._lib.amax(x, dim=self._dim(axis), keepdim=keepdims)
        return np.max(x, axis=axis, keepdims=keepdims)

    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if self.name == "torch":
            if axis is None:
                return x.min()
            return self._lib.amin(x, dim=self._dim(axis), keepdim=keepdims)
        return np.min(x, axis=axis, keepdims=keepdims)

    def any(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if self.name == "torch":
            if axis is None:
                return x.any()
            return x.any(dim=axis, keepdim=keepdims)
        return np.any(x, axis=axis, keepdims=keepdims)

    def all(self, x: Any) -> bool:
        """Whether every entry is true, as a Python bool."""
        return bool(x.all())

    # -- shape and linear algebra ------------------------------------------------------
    def einsum(self, subscripts: str, *operands: Any) -> Any:
        if self.name == "torch":
            return self._lib.einsum(subscripts, *operands)
        return np.einsum(subscripts, *operands, optimize=True)

    def moveaxis(self, x: Any, source: Any, destination: Any) -> Any:
        return self._lib.moveaxis(x, source, destination)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape(shape)

    def swapaxes(self, x: Any, a: int, b: int) -> Any:
        if self.name == "torch":
            return x.transpose(a, b)
        return np.swapaxes(x, a, b)

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """Batched ``a @ b``, written into ``out`` (contiguous, of the result's shape) when
        given."""
        return self._lib.matmul(a, b, out=out)

    def solve(self, a: Any, b: Any) -> Any:
        """Batched ``a^{-1} b`` for square ``a[..., n, n]`` and ``b[..., n, k]``."""
        return self._lib.linalg.solve(a, b)

    def cho_factor(self, a: Any) -> Any:
        """Batched Cholesky factor of the symmetric positive definite ``a[..., n, n]`` (only
        its lower triangle is read), for :meth:`cho_solve`; ``None`` when some matrix of the
        batch is not numerically positive definite.

        torch returns the lower factor ``L`` with :math:`a = L L^\\top`. numpy returns ``L``
        with the batch axes *last*, ``(n, n, ...)``: numpy has no batched triangular solve,
        so :meth:`cho_solve` substitutes row by row with whole-batch vector operations,
        which need each ``L[i, j]`` contiguous over the batch. (numpy's batched
        ``linalg.solve`` re-factorises at every call: with several right-hand sides per
        matrix, factorising once and substituting is about twice as fast for ``n <= 16``;
        ``benchmarks/backend_kernels.py``.)
        """
        if self.name == "torch":
            chol, info = self._lib.linalg.cholesky_ex(a)
            return chol if bool((info == 0).all()) else None
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        return np.ascontiguousarray(np.moveaxis(chol, (-2, -1), (0, 1)))

    def cho_solve(self, factor: Any, b: Any) -> Any:
        """``a^{-1} b`` from :meth:`cho_factor`'s ``factor`` and ``b[..., n, k]`` (batch axes
        as ``a``'s): forward substitution with ``L``, back substitution with ``L^T``."""
        if self.name == "torch":
            return self._lib.cholesky_solve(b, factor)
        n = factor.shape[0]
        x = np.array(np.moveaxis(b, (-2, -1), (0, 1)), dtype=np.result_type(factor, b),
                     order="C", copy=True)                        # (n, k, ...)
        for i in range(n):
            if i:
                x[i] -= np.einsum("j...,jk...->k...", factor[i, :i], x[:i])
            x[i] /= factor[i, i]
        for i in reversed(range(n)):
            if i < n - 1:
                x[i] -= np.einsum("j...,jk...->k...", factor[i + 1:, i], x[i + 1:])
            x[i] /= factor[i, i]
        return np.moveaxis(x, (0, 1), (-2, -1))

    def diagonal(self, x: Any, axis1: int = -2, axis2: int = -1) -> Any:
        """A *writable view* of the diagonal of ``x`` over ``axis1`` and ``axis2`` (same
        length), moved to the last axis (torch's ``diagonal`` convention): ``diagonal(x) += v``
        adds ``v`` to the diagonal in place."""
        if self.name == "torch":
            return self._lib.diagonal(x, dim1=axis1, dim2=axis2)
        a1, a2 = axis1 % x.ndim, axis2 % x.ndim
        names = [_LETTERS[i] for i in range(x.ndim)]
        names[a2] = names[a1]
        kept = "".join(c for i, c in enumerate(names) if i not in (a1, a2)) + names[a1]
        return np.einsum(f"{''.join(names)}->{kept}", x)

    def copy(self, x: Any) -> Any:
        return x.clone() if self.name == "torch" else np.array(x, copy=True)


NUMPY = Namespace("numpy")
_TORCH: Namespace | None = None


def get_namespace(*arrays: Any) -> Namespace:
    """The namespace of ``arrays``: numpy for numpy arrays and Python scalars, torch for tensors.

    Raises
    ------
    PIDTypeError
        If numpy arrays and torch tensors are mixed.
    PIDValueError
        If torch tensors live on different devices.
    """
    global _TORCH
    tensors = [a for a in arrays if is_torch(a)]
    if not tensors:
        return NUMPY
    if len(tensors) != len([a for a in arrays if a is not None and not np.isscalar(a)]):
        raise fail("arrays", "mix numpy arrays and torch tensors",
                   "Convert them all to one library (torch.as_tensor or tensor.numpy())",
                   kind=PIDTypeError)
    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise PIDValueError(f"arrays: torch tensors on different devices ({sorted(devices)}). "
                            "Move them to one device with .to(device)")
    if _TORCH is None:
        _TORCH = Namespace("torch")
    return _TORCH
