r"""BROJA of a torch batch in host memory: the numpy solve and one autograd node.

A tensor on the CPU is solved by the numpy code on a view that shares its memory
(:func:`._core.solve_atoms` with the lean driver :func:`._small.solve`), and the results come
back as tensors: the algorithm is the same, and each call costs less in numpy than in torch at
these sizes. The differentiable outputs, the four atoms and :math:`I(Y;T,S)`, are the outputs
of a single autograd node (:meth:`~pidkit._backend.Backend.custom_gradient`) whose
vector-Jacobian product is closed-form:

- the solver's value :math:`f^*` has the gradient :math:`\partial f^* / \partial P(y,t,s) =
  \lambda_{yt} + \mu_{ys}` at the optimal dual point (envelope theorem, as
  :meth:`~pidkit._backend.Backend.envelope`; zero on the rows outside the support);
- the information terms :math:`H(Y|S), I(Y;T), I(Y;S), I(Y;T,S)` have the gradient of
  :func:`._core._information_vjp`;
- the atoms are piecewise-linear functions of those five numbers (:func:`._core._clamped`,
  :func:`._core.certified`, :func:`._core.atoms_from_unique`), differentiated forward-mode by
  running the same functions on :class:`_Tangent` values, with torch's rules where a clip is
  active at equality (a maximum or minimum of two values shares the gradient equally; a clamp
  against a constant passes it on the boundary): the gradients are those of the autograd
  graph the device path (:func:`._api._atoms_arrays`) builds from the same functions.

Measured (2026-12-05, development timing, one thread; 10 x 10 x 10 float64 tensors re-solved
warm with backward along ``benchmarks/broja_warm.py``'s three sequences): a torch call costs
0.8-1.0 ms more than the numpy call on the same pmfs (validation, this node, the result's
tensors and the backward pass, of which 0.2-0.3 ms is this vector-Jacobian product), against
1.15-1.2 ms when the information terms, the envelope and the clipping were separate autograd
operations around the same numpy solve.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..._backend import NUMPY, Backend
from . import _small
from ._core import (
    Atoms,
    Information,
    _clamped,
    _information_vjp,
    _raw_numpy,
    atoms_from_unique,
    certified,
    solve_atoms,
)
from ._ipm import SolverOutput
from ._warm import WarmStart

__all__ = ["atoms_arrays"]

#: Inputs of the atoms' piecewise-linear map, in the order of the tangents' last axis:
#: :math:`H(Y|S), I(Y;T), I(Y;S), I(Y;T,S)` before clamping, and :math:`f^*`.
_INPUTS = 5


class _Tangent:
    """Values ``(B,)`` with their derivatives with respect to the inputs (:data:`_INPUTS`),
    stored together as ``a[:, 0]`` and ``a[:, 1:]``: what ``+`` and ``-`` of the clipping
    functions need."""

    __slots__ = ("a",)

    def __init__(self, a: Any):
        self.a = a

    def __add__(self, other: _Tangent) -> _Tangent:
        return _Tangent(self.a + other.a)

    def __sub__(self, other: _Tangent) -> _Tangent:
        return _Tangent(self.a - other.a)


class _TangentBackend:
    """The two backend operations the clipping functions use, on :class:`_Tangent` values,
    with the derivative torch's autograd gives: against a constant (a clamp) it passes where
    the value is on the kept side or on the boundary; between two values it goes to the
    selected one, half to each at equality."""

    @staticmethod
    def maximum(a: _Tangent, b: Any) -> _Tangent:
        return _select(a, b, np.greater, np.greater_equal)

    @staticmethod
    def minimum(a: _Tangent, b: Any) -> _Tangent:
        return _select(a, b, np.less, np.less_equal)


def _select(a: _Tangent, b: Any, wins: Any, keeps: Any) -> _Tangent:
    """``a`` where ``wins(a, b)``, else ``b``, or against a constant ``b`` (a clamp) ``a``
    where ``keeps(a, b)``, else ``b`` with zero derivatives; derivatives by
    :class:`_TangentBackend`'s rules."""
    if not isinstance(b, _Tangent):
        constant = np.zeros(_INPUTS + 1)
        constant[0] = b
        return _Tangent(np.where(keeps(a.a[:, :1], b), a.a, constant))
    first = wins(a.a[:, :1], b.a[:, :1])
    out = np.where(first, a.a, b.a)
    tie = a.a[:, 0] == b.a[:, 0]
    if tie.any():
        out[tie, 1:] = 0.5 * (a.a[tie, 1:] + b.a[tie, 1:])
    return _Tangent(out)


def _jacobian(raw: tuple[Any, ...], f_upper: Any) -> Any:
    """``(B, 5, 5)``: derivatives of (Uni_T, Red, Uni_S, Syn, I(Y;T,S)) with respect to the
    inputs (:data:`_INPUTS`), through :func:`._core._clamped`, :func:`._core.certified` and
    :func:`._core.atoms_from_unique` themselves."""
    start = np.zeros((_INPUTS, len(f_upper), _INPUTS + 1))
    start[:, :, 0] = (*raw, f_upper)
    start[np.arange(_INPUTS), :, np.arange(1, _INPUTS + 1)] = 1.0
    inputs = [_Tangent(a) for a in start]
    info = _clamped(inputs[:4], _TangentBackend)
    u = certified(inputs[4], inputs[4], info, _TangentBackend)[0]
    outputs = (*atoms_from_unique(u, info, _TangentBackend), info.i_ts)
    return np.stack([o.a[:, 1:] for o in outputs], axis=1)


def atoms_arrays(p64: Any, xp: Backend, tol: float, max_iter: int,
                 warm: WarmStart | None) -> tuple[Atoms, SolverOutput, Information]:
    """:func:`._api._atoms_arrays` for a torch batch ``p64[b, y, t, s]`` (float64) in host
    memory: solved by numpy, outputs as tensors sharing its memory, differentiable (one node,
    module docstring) if ``p64`` requires grad. ``tol`` in nats."""
    p_np = xp.to_numpy(p64)
    raw = _raw_numpy(p_np)
    info = _clamped(raw, NUMPY)
    warm_np = None if warm is None else WarmStart(*(xp.to_numpy(x) for x in vars(warm).values()))
    atoms, out = solve_atoms(p_np, NUMPY, tol, max_iter,
                             solver=partial(_small.solve, warm=warm_np), info=info)
    values = [xp.asarray(v) for v in (atoms.unique_t, atoms.redundancy, atoms.unique_s,
                                      atoms.synergy, info.i_ts)]
    if xp.requires_grad(p64):
        values = xp.custom_gradient(p64, values, partial(_vjp, p_np, raw, out, xp))
    tensors = [xp.asarray(v) for v in (atoms.lower, atoms.upper, atoms.converged)]
    info_t = Information(*(xp.asarray(v) for v in (info.h_y_given_s, info.i_t, info.i_s)),
                         values[4])
    return (Atoms(*values[:4], *tensors, atoms.iterations),
            SolverOutput(*(v if isinstance(v, int) else xp.asarray(v)
                           for v in vars(out).values())),
            info_t)


def _vjp(p: Any, raw: tuple[Any, ...], out: SolverOutput, xp: Backend, grads: list[Any]) -> Any:
    """The gradient with respect to ``p[b, y, t, s]`` of the outputs' dot product with
    ``grads`` (module docstring)."""
    weights = np.einsum("ob,boi->ib", [xp.to_numpy(v) for v in grads],
                        _jacobian(raw, out.f_upper))                        # (5, B)
    grad = _information_vjp(p, weights[:4], NUMPY)
    lam = np.where(p.sum(axis=3) > 0, out.lam, 0.0) * weights[4, :, None, None]
    mu = np.where(p.sum(axis=2) > 0, out.mu, 0.0) * weights[4, :, None, None]
    grad += lam[:, :, :, None]
    grad += mu[:, :, None, :]
    return xp.asarray(grad)
