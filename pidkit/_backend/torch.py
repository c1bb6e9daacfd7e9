"""The torch backend: :class:`TorchBackend` (any device, autograd).

torch is imported when the backend is created (by :func:`pidkit._backend.get_namespace`, for
a torch tensor), never when this module is imported: ``import pidkit`` works without torch.
"""

from __future__ import annotations

from typing import Any

from ._base import Backend, Factor

__all__ = ["TorchBackend", "is_torch"]


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


class TorchBackend(Backend):
    """:class:`~pidkit._backend.Backend` on torch: arrays keep their device; reductions
    translate ``axis``/``keepdims`` to ``dim``/``keepdim``; nothing reads a value back to the
    host unless its docstring says so."""

    name = "torch"
    scalar_floats = False

    def __init__(self) -> None:
        import torch

        self._lib = torch

    # -- creation and conversion -----------------------------------------------------------
    def asarray(self, x: Any, like: Any = None, dtype: Any = None) -> Any:
        kwargs = {}
        if like is not None:
            kwargs = {"dtype": like.dtype if dtype is None else dtype, "device": like.device}
        elif dtype is not None:
            kwargs = {"dtype": dtype}
        return self._lib.as_tensor(x, **kwargs)

    def zeros(self, shape: tuple[int, ...], like: Any, dtype: str | None = None) -> Any:
        dtype = like.dtype if dtype is None else getattr(self._lib, dtype)
        return self._lib.zeros(shape, dtype=dtype, device=like.device)

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        return self._lib.empty(shape, dtype=like.dtype, device=like.device)

    def eye(self, n: int, like: Any) -> Any:
        return self._lib.eye(n, dtype=like.dtype, device=like.device)

    def indices(self, idx: Any, like: Any) -> Any:
        return self._lib.as_tensor(idx, device=like.device)

    def float64(self, x: Any) -> Any:
        return x.to(self._lib.float64)

    def to_dtype(self, x: Any, like: Any) -> Any:
        return x.to(like.dtype)

    def to_numpy(self, x: Any) -> Any:
        """Reads ``x`` back to the host (a synchronisation on a GPU)."""
        return x.detach().cpu().numpy()

    def to_result(self, x: Any, like: Any, shape: tuple[int, ...]) -> Any:
        return x.to(like.dtype).reshape(shape)

    def copy(self, x: Any) -> Any:
        return x.clone()

    # -- dtype -----------------------------------------------------------------------------
    def is_floating(self, x: Any) -> bool:
        return bool(x.is_floating_point())

    def eps(self, x: Any) -> float:
        return float(self._lib.finfo(x.dtype).eps)

    def on_host(self, x: Any) -> bool:
        return x.device.type == "cpu"

    # -- autograd --------------------------------------------------------------------------
    def requires_grad(self, x: Any) -> bool:
        return bool(x.requires_grad)

    def detach(self, x: Any) -> Any:
        return x.detach()

    def no_grad(self) -> Any:
        return self._lib.no_grad()

    def envelope(self, x: Any, value: Any, grad: Any) -> Any:
        return _envelope_function(self._lib).apply(x, value.detach(), grad)

    def custom_gradient(self, x: Any, values: list[Any], vjp: Any) -> list[Any]:
        return list(_custom_gradient_function(self._lib).apply(x, vjp, *values))

    # -- elementwise -----------------------------------------------------------------------
    def isfinite(self, x: Any) -> Any:
        return self._lib.isfinite(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """A scalar operand takes the other's dtype and device (torch's default dtype and
        ``cond``'s device when both are scalars). A Python ``float`` or ``int`` beside a
        floating-point tensor goes to ``torch.where`` as a scalar argument of the kernel (no
        host-to-device copy: on a GPU, nothing waits)."""
        lib = self._lib
        ref = a if is_torch(a) else b
        other = b if ref is a else a
        if is_torch(ref) and type(other) in (float, int) and ref.is_floating_point():
            return lib.where(cond, a, b)
        dtype, device = ((ref.dtype, ref.device) if is_torch(ref)
                         else (lib.get_default_dtype(), cond.device))
        if not is_torch(a):
            a = lib.as_tensor(a, dtype=dtype, device=device)
        if not is_torch(b):
            b = lib.as_tensor(b, dtype=dtype, device=device)
        return lib.where(cond, a, b)

    def ldexp(self, x: Any, k: Any) -> Any:
        r"""Two normal float factors :math:`2^{\lfloor k/2 \rfloor}` and
        :math:`2^{k - \lfloor k/2 \rfloor}`, so that neither overflows nor underflows where
        their product with ``x`` is normal."""
        import numpy as np

        half = np.asarray(k) // 2
        f1 = self._lib.as_tensor(np.ldexp(1.0, half), dtype=x.dtype, device=x.device)
        f2 = self._lib.as_tensor(np.ldexp(1.0, np.asarray(k) - half), dtype=x.dtype,
                                 device=x.device)
        return x * f1 * f2

    def maximum(self, a: Any, b: Any) -> Any:
        if not is_torch(b):
            return self._lib.clamp(a, min=b)
        return self._lib.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        if not is_torch(b):
            return self._lib.clamp(a, max=b)
        return self._lib.minimum(a, b)

    # -- reductions ------------------------------------------------------------------------
    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            return x.sum()
        return x.sum(dim=self._axes(axis), keepdim=keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            return x.max()
        return self._lib.amax(x, dim=self._axes(axis), keepdim=keepdims)

    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            return x.min()
        return self._lib.amin(x, dim=self._axes(axis), keepdim=keepdims)

    def any(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            return x.any()
        return x.any(dim=axis, keepdim=keepdims)

    def cumsum(self, x: Any, axis: int) -> Any:
        return x.cumsum(dim=axis)

    def bincount(self, x: Any, minlength: int = 0) -> Any:
        return self._lib.bincount(x, minlength=minlength)

    # -- shape -----------------------------------------------------------------------------
    def einsum(self, subscripts: str, *operands: Any) -> Any:
        return self._lib.einsum(subscripts, *operands)

    def swapaxes(self, x: Any, a: int, b: int) -> Any:
        return x.transpose(a, b)

    def permute_dims(self, x: Any, axes: Any) -> Any:
        return x.permute(list(axes))

    def concatenate(self, arrays: Any, axis: int = 0) -> Any:
        return self._lib.cat(list(arrays), dim=axis)

    def diagonal(self, x: Any, axis1: int = -2, axis2: int = -1) -> Any:
        return self._lib.diagonal(x, dim1=axis1, dim2=axis2)

    # -- linear algebra --------------------------------------------------------------------
    def solve(self, a: Any, b: Any) -> Any:
        """``torch.linalg.solve_ex``, whose status stays on the device; NaN for a singular
        matrix."""
        x, info = self._lib.linalg.solve_ex(a, b)
        return self._lib.where((info == 0)[..., None, None], x, float("nan"))

    def solve_triangular(self, lower: Any, b: Any) -> Any:
        return self._lib.linalg.solve_triangular(lower, b, upper=False)

    def cholesky(self, a: Any) -> Any:
        """``torch.linalg.cholesky_ex``, whose status stays on the device
        (``torch.linalg.cholesky`` would read it on the host, a GPU synchronisation at every
        call); NaN for a matrix that is not numerically positive definite."""
        low, info = self._lib.linalg.cholesky_ex(a)
        return self._lib.where((info == 0)[..., None, None], low, float("nan"))

    def eigvalsh(self, a: Any) -> Any:
        """On CUDA, torch reads the solver's status on the host (one synchronisation per
        call; torch has no unchecked variant). Where the solver fails to converge on a matrix
        with a non-finite entry (such as :meth:`cholesky`'s NaN factor, from order 3 on the
        CPU), NaN eigenvalues for those matrices instead of an error for the whole batch."""
        lib = self._lib
        try:
            return lib.linalg.eigvalsh(a)
        except lib.linalg.LinAlgError:
            bad = ~lib.isfinite(a).all(dim=-1).all(dim=-1)
            if not bool(bad.any()):
                raise
        eye = lib.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        lam = lib.linalg.eigvalsh(lib.where(bad[..., None, None], eye, a))
        return lib.where(bad[..., None], float("nan"), lam)

    def cho_factor(self, a: Any) -> Any:
        """The lower factor ``L`` with :math:`a = L L^\\top` (batch axes first). Reads the
        status on the host (the caller needs to know whether to fall back)."""
        chol, info = self._lib.linalg.cholesky_ex(a)
        return chol if bool((info == 0).all()) else None

    def cho_solve(self, factor: Any, b: Any, overwrite_b: bool = False) -> Any:
        return self._lib.cholesky_solve(b, factor)

    def cho_lower_solve(self, factor: Any, b: Any) -> Any:
        return self._lib.linalg.solve_triangular(factor, b, upper=False)

    def sym_factor(self, a: Any, single: bool = False) -> Factor | None:
        """:meth:`cho_factor` in float32 (``single``) or float64; else, without ``single``,
        ``torch.linalg.lu_factor``."""
        chol = self.cho_factor(a.float() if single else a.double())
        if chol is not None:
            return Factor("cholesky", chol)
        return None if single else Factor("lu", self._lib.linalg.lu_factor(a.double()))

    def lu_factor(self, a: Any) -> Factor:
        """``torch.linalg.lu_factor_ex``, whose status stays on the device."""
        lu, pivots, _ = self._lib.linalg.lu_factor_ex(a)
        return Factor("lu", (lu, pivots))

    def sym_solve(self, factor: Factor, b: Any) -> Any:
        kind, f = factor
        if kind == "cholesky":
            return self.to_dtype(self.cho_solve(f, self.to_dtype(b, f)), b)
        return self._lib.linalg.lu_solve(*f, b)


_ENVELOPE: Any = None


def _envelope_function(torch: Any) -> Any:
    """The autograd function of :meth:`TorchBackend.envelope` (defined once, on first use):
    forward returns a copy of ``value``; backward multiplies the incoming gradient, broadcast
    over the trailing axes, by the stored ``grad``."""
    global _ENVELOPE
    if _ENVELOPE is None:
        class Envelope(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any, value: Any, grad: Any) -> Any:
                ctx.save_for_backward(grad)
                return value.clone()

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (gr,) = ctx.saved_tensors
                return g.reshape(g.shape + (1,) * (gr.ndim - g.ndim)) * gr, None, None

        _ENVELOPE = Envelope
    return _ENVELOPE


_CUSTOM_GRADIENT: Any = None


def _custom_gradient_function(torch: Any) -> Any:
    """The autograd function of :meth:`TorchBackend.custom_gradient` (defined once, on first
    use): forward returns copies of the values; backward hands the incoming gradients to the
    stored ``vjp``."""
    global _CUSTOM_GRADIENT
    if _CUSTOM_GRADIENT is None:
        class CustomGradient(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any, vjp: Any, *values: Any) -> Any:
                ctx.vjp = vjp
                return tuple(v.clone() for v in values)

            @staticmethod
            def backward(ctx: Any, *grads: Any) -> Any:
                return (ctx.vjp(list(grads)), None, *(None for _ in grads))

        _CUSTOM_GRADIENT = CustomGradient
    return _CUSTOM_GRADIENT
