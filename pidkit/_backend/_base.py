"""The interface every array library implements: :class:`Backend`.

Numerical code is written once against a backend ``xp`` obtained from its inputs
(:func:`pidkit._backend.get_namespace`) and calls only the methods below, plus the operators
``+ - * / ** @``, comparisons and indexing, which numpy and torch share. It never asks which
library it runs on: what differs between libraries (argument names, dtype and device handling,
autograd, the fastest route to a factorisation) is a method here, implemented once per library
(:class:`~pidkit._backend.numpy.NumpyBackend`, :class:`~pidkit._backend.torch.TorchBackend`),
as POT's ``ot.backend`` does.

Conventions shared by every method:

- Arrays created from nothing (``zeros``, ``empty``, ``eye``, ``asarray``) take the dtype and
  device of a reference array ``like``.
- Reductions take ``axis`` (an int, a tuple or a list) and ``keepdims``, as in numpy.
- Nothing here validates user input: errors are raised at the public boundary
  (:mod:`pidkit.validation`), which may import this package, never the other way round.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

__all__ = ["Backend", "Factor"]


class Factor(NamedTuple):
    """A factorised symmetric matrix (batch) from :meth:`Backend.sym_factor`, to be used by
    :meth:`Backend.sym_solve` of the same backend only: ``kind`` names the factorisation
    (the backend's own tag) and ``data`` holds its arrays."""

    kind: str
    data: Any


class Backend(ABC):
    """The operations pidkit's array code uses, implemented once per array library.

    Attributes
    ----------
    name : str
        The library, ``"numpy"`` or ``"torch"``: for messages and tables only; numerical code
        must not branch on it.
    scalar_floats : bool
        Whether the result of one unbatched item is reported as Python floats (numpy), rather
        than as 0-d arrays that keep the input's dtype, device and autograd graph (torch).
    """

    name: str = ""
    scalar_floats: bool = False
    _lib: Any = None

    def __repr__(self) -> str:
        return f"<pidkit backend {self.name!r}>"

    # -- creation and conversion -----------------------------------------------------------
    @abstractmethod
    def asarray(self, x: Any, like: Any = None, dtype: Any = None) -> Any:
        """``x`` as an array of this library, with ``like``'s dtype and device (or ``dtype``,
        a dtype of this library)."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...], like: Any, dtype: str | None = None) -> Any:
        """Zeros of ``shape`` with ``like``'s dtype (or the dtype named ``dtype``, e.g.
        ``"int64"``) and device."""

    @abstractmethod
    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        """An uninitialised array of ``shape`` with ``like``'s dtype and device."""

    @abstractmethod
    def eye(self, n: int, like: Any) -> Any:
        """Identity matrix of size ``n`` with ``like``'s dtype and device."""

    @abstractmethod
    def indices(self, idx: Any, like: Any) -> Any:
        """The integer index array ``idx`` (numpy) on ``like``'s device, ready to index
        arrays of this library."""

    @abstractmethod
    def float64(self, x: Any) -> Any:
        """``x`` converted to float64 (same device)."""

    @abstractmethod
    def to_dtype(self, x: Any, like: Any) -> Any:
        """``x`` converted to ``like``'s dtype (same device)."""

    @abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A numpy array of ``x``'s values on the host, detached from any autograd graph."""

    @abstractmethod
    def to_result(self, x: Any, like: Any, shape: tuple[int, ...]) -> Any:
        """``x`` shaped ``shape`` as a result value: numpy gives float64 values (a Python float
        when ``shape == ()``); torch keeps the device and the autograd graph and converts to
        ``like``'s dtype."""

    @abstractmethod
    def copy(self, x: Any) -> Any:
        """A copy of ``x`` (same dtype and device)."""

    # -- dtype -----------------------------------------------------------------------------
    @abstractmethod
    def is_floating(self, x: Any) -> bool:
        """Whether ``x`` has a real floating-point dtype."""

    @abstractmethod
    def eps(self, x: Any) -> float:
        """Machine epsilon of ``x``'s floating-point dtype."""

    def on_host(self, x: Any) -> bool:
        """Whether ``x`` lives in host memory (the CPU), where working on a large batch in
        cache-sized chunks pays; on an accelerator, one call on the whole batch does."""
        return True

    # -- autograd --------------------------------------------------------------------------
    def requires_grad(self, x: Any) -> bool:
        """Whether ``x`` carries an autograd graph (never, for libraries without autograd)."""
        return False

    def detach(self, x: Any) -> Any:
        """``x`` cut from any autograd graph (same array otherwise)."""
        return x

    def no_grad(self) -> Any:
        """A context manager under which no autograd graph is recorded."""
        import contextlib

        return contextlib.nullcontext()

    def envelope(self, x: Any, value: Any, grad: Any) -> Any:
        r"""``value`` (shape ``(B,)``) as a differentiable function of ``x`` (``(B, ...)``)
        whose gradient is ``grad`` (shape of ``x``): the envelope theorem, where ``value`` is
        an optimal value and ``grad`` the optimal dual,

        .. math:: \frac{\partial\, \mathrm{value}_b}{\partial x_{b,\dots}} =
                  \mathrm{grad}_{b,\dots}.

        ``value`` itself without autograd."""
        return value

    def custom_gradient(self, x: Any, values: list[Any], vjp: Any) -> list[Any]:
        """``values`` (computed without autograd) as the outputs of one differentiable node with
        input ``x``: backward calls ``vjp(grads)`` with the incoming gradient of every value
        and takes its result as the gradient with respect to ``x`` (a closed-form
        vector-Jacobian product instead of a graph of many small operations). ``values``
        themselves without autograd."""
        return values

    # -- elementwise -----------------------------------------------------------------------
    def exp(self, x: Any) -> Any:
        return self._lib.exp(x)

    def log(self, x: Any) -> Any:
        return self._lib.log(x)

    @abstractmethod
    def isfinite(self, x: Any) -> Any:
        """Elementwise: neither NaN nor infinite."""

    @abstractmethod
    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """``a`` where ``cond`` else ``b``; a Python scalar takes the other operand's dtype."""

    @abstractmethod
    def maximum(self, a: Any, b: Any) -> Any:
        """Elementwise maximum; ``b`` may be a Python scalar."""

    @abstractmethod
    def minimum(self, a: Any, b: Any) -> Any:
        """Elementwise minimum; ``b`` may be a Python scalar."""

    def to_dtype_outward(self, x: Any, like: Any, up: bool) -> Any:
        """``x`` (float64) converted to ``like``'s dtype rounded toward :math:`+\\infty`
        (``up``) or :math:`-\\infty`, not to nearest: a bound stays a bound in a narrower dtype
        (``x`` itself when ``like`` is float64 too)."""
        if x.dtype == like.dtype:
            return x
        y = self.to_dtype(x, like)
        wrong = self.float64(y) < x if up else self.float64(y) > x
        step = self._lib.nextafter(y, self.to_dtype(self.zeros(y.shape, like=x)
                                                    + (math.inf if up else -math.inf), like))
        return self.where(wrong, step, y)

    @abstractmethod
    def ldexp(self, x: Any, k: Any) -> Any:
        r""":math:`x \cdot 2^{k}` with ``k`` a numpy integer array broadcast against ``x``:
        exact whenever the result is a normal number (autograd sees a constant factor)."""

    def xlogy_safe(self, x: Any, y: Any) -> Any:
        r""":math:`x \ln y` with ``0 log 0 = 0`` and no NaN gradient: ``y`` is masked to 1 before
        the logarithm wherever ``x == 0`` or ``y <= 0``."""
        keep = (x != 0) & (y > 0)
        return self.where(keep, x * self.log(self.where(keep, y, 1.0)), 0.0)

    def multiply(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a * b`` (broadcasting), written into ``out`` when given."""
        return self._lib.multiply(a, b, out=out)

    # -- reductions ------------------------------------------------------------------------
    @abstractmethod
    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Sum over ``axis`` (all axes when ``None``)."""

    @abstractmethod
    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Maximum over ``axis`` (all axes when ``None``)."""

    @abstractmethod
    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Minimum over ``axis`` (all axes when ``None``)."""

    @abstractmethod
    def any(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """Whether any entry is true over ``axis`` (all axes when ``None``)."""

    def all(self, x: Any) -> bool:
        """Whether every entry is true, as a Python bool."""
        return bool(x.all())

    @abstractmethod
    def cumsum(self, x: Any, axis: int) -> Any:
        """Cumulative sum along ``axis`` (booleans count as integers)."""

    @abstractmethod
    def bincount(self, x: Any, minlength: int = 0) -> Any:
        """Counts of each non-negative integer in the 1-d ``x``, at least ``minlength`` long."""

    # -- shape -----------------------------------------------------------------------------
    @abstractmethod
    def einsum(self, subscripts: str, *operands: Any) -> Any:
        """Einstein summation (numpy's subscripts)."""

    def moveaxis(self, x: Any, source: Any, destination: Any) -> Any:
        return self._lib.moveaxis(x, source, destination)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape(shape)

    @abstractmethod
    def swapaxes(self, x: Any, a: int, b: int) -> Any:
        """``x`` with axes ``a`` and ``b`` exchanged (a view)."""

    @abstractmethod
    def permute_dims(self, x: Any, axes: Any) -> Any:
        """``x`` with its axes in the order ``axes`` (a view)."""

    @abstractmethod
    def concatenate(self, arrays: Any, axis: int = 0) -> Any:
        """Arrays joined along ``axis``."""

    @abstractmethod
    def diagonal(self, x: Any, axis1: int = -2, axis2: int = -1) -> Any:
        """A *writable view* of the diagonal of ``x`` over ``axis1`` and ``axis2`` (same
        length), moved to the last axis: ``diagonal(x) += v`` adds ``v`` to the diagonal in
        place."""

    # -- linear algebra --------------------------------------------------------------------
    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """Batched ``a @ b``, written into ``out`` (contiguous, of the result's shape) when
        given."""
        return self._lib.matmul(a, b, out=out)

    @abstractmethod
    def solve(self, a: Any, b: Any) -> Any:
        """Batched ``a^{-1} b`` for square ``a[..., n, n]`` and ``b[..., n, k]``. A matrix
        that is singular in floating point gets NaN for its solution, for each matrix of a
        batch on its own (no error), as :meth:`cholesky` does: one item's failed linear
        algebra must not stop the solves of the others."""

    @abstractmethod
    def solve_triangular(self, lower: Any, b: Any) -> Any:
        """Batched ``lower^{-1} b`` for lower-triangular ``lower[..., n, n]``."""

    @abstractmethod
    def cholesky(self, a: Any) -> Any:
        """Lower Cholesky factor of a (batch of) symmetric positive definite matrix.

        A matrix that is not numerically positive definite gets NaN for its factor, with every
        library and for each matrix of a batch on its own (no error, no warning), so that the
        failure propagates to every value computed from that factor only; torch does it
        without reading the status on the host (no GPU synchronisation).
        """

    def inv_quad(self, a: Any, b: Any) -> Any:
        r""":math:`b^\top a^{-1} b` for symmetric positive definite ``a[..., n, n]`` and
        ``b[..., n, k]``: ``w^T w`` with ``w = L^{-1} b`` (:meth:`cholesky`: NaN where ``a``
        is not numerically positive definite)."""
        w = self.solve_triangular(self.cholesky(a), b)
        return self.swapaxes(w, -1, -2) @ w

    @abstractmethod
    def eigvalsh(self, a: Any) -> Any:
        """Eigenvalues of a (batch of) symmetric matrix, ascending. A matrix with a non-finite
        entry (such as a NaN factor of :meth:`cholesky`) gets NaN eigenvalues where the
        library's solver fails to converge on it, never an error for the whole batch."""

    @abstractmethod
    def cho_factor(self, a: Any) -> Any:
        """Batched Cholesky factor of the symmetric positive definite ``a[..., n, n]`` (only
        its lower triangle is read), in the layout :meth:`cho_solve` wants; ``None`` when some
        matrix of the batch is not numerically positive definite."""

    @abstractmethod
    def cho_solve(self, factor: Any, b: Any, overwrite_b: bool = False) -> Any:
        """``a^{-1} b`` from :meth:`cho_factor`'s ``factor`` and ``b[..., n, k]`` (batch axes
        as ``a``'s). With ``overwrite_b`` the solution may be written into ``b`` (a large
        ``b`` then needs no second buffer); ``b``'s contents are undefined afterwards."""

    @abstractmethod
    def cho_lower_solve(self, factor: Any, b: Any) -> Any:
        r"""``L^{-1} b`` for :meth:`cho_factor`'s ``factor`` of :math:`a = L L^\top` and
        ``b[..., n, k]``: the first half of :meth:`cho_solve` (:math:`a^{-1} = L^{-\top}
        L^{-1}`)."""

    @abstractmethod
    def sym_factor(self, a: Any, single: bool = False) -> Factor | None:
        """Factorise the symmetric ``a[B, n, n]`` (float64, left unchanged) for
        :meth:`sym_solve`, by the fastest route this library has.

        Cholesky (only the lower triangle is read) in float64, or an LU factorisation where
        rounding made ``a`` numerically indefinite. With ``single``, a float32 Cholesky factor
        (half the time, for a preconditioner), or ``None`` where it breaks down (or would not
        pay: the caller then asks again without ``single``).
        """

    @abstractmethod
    def lu_factor(self, a: Any) -> Factor:
        """An LU factorisation with partial pivoting of the square ``a[..., n, n]`` (any batch
        axes, float64) for :meth:`sym_solve`, whose status is never read on the host (no GPU
        synchronisation): a singular matrix gives non-finite solutions instead of an error."""

    @abstractmethod
    def sym_solve(self, factor: Factor, b: Any) -> Any:
        """``a^{-1} b`` for ``b[B, n, k]`` (float64) from :meth:`sym_factor`'s ``factor``
        (or :meth:`lu_factor`'s, ``b[..., n, k]``); float64 out."""

    # -- helpers shared by the implementations ---------------------------------------------
    @staticmethod
    def _axes(axis: Any) -> Any:
        return tuple(axis) if isinstance(axis, list) else axis
