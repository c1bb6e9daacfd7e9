"""Canonical example distributions ("gates") of the PID literature, as ndarray pmfs.

Every gate is a pmf ``p[y, x0, x1, ...]`` (target on axis 0) over equally likely outcomes. The
values of each variable (bits, or tuples of bits) are coded ``0, 1, ...`` in sorted order.
Two-source gates follow Bertschinger et al. (2014), Griffith and Koch (2014) and the test gates
of Makkeh, Theis and Vicente (2018); the three-source gates are the usual parity, redundancy and
copy examples (Williams and Beer 2010).

>>> import pidkit
>>> p = pidkit.gates.gate("XOR")
>>> p.shape, float(p[1, 0, 1])
((2, 2, 2), 0.25)
>>> len(pidkit.gates.GATES), pidkit.gates.GATES["AND"].n_sources
(14, 2)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import PIDTypeError
from .validation import check_choice, fail

__all__ = ["GATES", "Gate", "gate", "pmf_from_outcomes"]

Outcome = tuple  # (y, x0, x1, ...), each an int or a tuple of ints


def pmf_from_outcomes(outcomes: Sequence[Outcome]) -> np.ndarray:
    """Pmf of equally likely ``outcomes`` (tuples ``(y, x0, ...)``), one axis per position.

    The distinct values at each position are sorted and coded ``0, 1, ...``; repeated outcomes
    add up.

    Raises
    ------
    PIDTypeError
        ``outcomes`` is not a list of tuples, or a position holds values that cannot be sorted
        together or hashed (``1`` and ``"a"``, a list).
    PIDValueError
        ``outcomes`` is empty, or its tuples have different lengths.
    """
    fix = "Pass a list of equally long tuples (y, x0, x1, ...), e.g. [(0, 0, 0), (1, 1, 0)]"
    if (isinstance(outcomes, (str, bytes)) or not isinstance(outcomes, Sequence | np.ndarray)
            or not all(isinstance(o, Sequence | np.ndarray) and not isinstance(o, (str, bytes))
                       for o in outcomes)):
        raise fail("outcomes", "must be a list of tuples, one per outcome", fix, outcomes,
                   kind=PIDTypeError)
    if len(outcomes) == 0:
        raise fail("outcomes", "is empty", fix, outcomes)
    width = len(outcomes[0])
    if width == 0 or any(len(o) != width for o in outcomes):
        raise fail("outcomes", f"holds tuples of lengths {sorted({len(o) for o in outcomes})}, "
                   "not one non-zero length", fix, outcomes)
    try:
        alphabets = [sorted({o[k] for o in outcomes}) for k in range(width)]
    except TypeError as exc:  # unhashable values, or values that cannot be ordered together
        raise fail("outcomes", f"holds values that cannot be hashed and sorted together ({exc})",
                   "Use ints, or tuples of ints, at every position", kind=PIDTypeError) from exc
    codes = [{v: i for i, v in enumerate(a)} for a in alphabets]
    p = np.zeros(tuple(len(a) for a in alphabets))
    for o in outcomes:
        p[tuple(codes[k][o[k]] for k in range(width))] += 1.0 / len(outcomes)
    return p


def _bits(n: int):
    return itertools.product((0, 1), repeat=n)


@dataclass(frozen=True)
class Gate:
    """A canonical distribution: ``name``, ``description`` and a builder of its pmf."""

    name: str
    n_sources: int
    description: str
    build: Callable[[], list[Outcome]]

    def pmf(self) -> np.ndarray:
        """A fresh copy of the pmf ``p[y, x0, ...]``."""
        return pmf_from_outcomes(self.build())


GATES: dict[str, Gate] = {}


def _register(name: str, n_sources: int, description: str):
    def decorate(build: Callable[[], list[Outcome]]):
        GATES[name] = Gate(name, n_sources, description, build)
        return build
    return decorate


@_register("XOR", 2, "Y = X0 xor X1, independent uniform bits")
def _xor():
    return [(a ^ b, a, b) for a, b in _bits(2)]


@_register("AND", 2, "Y = X0 and X1, independent uniform bits")
def _and():
    return [(a & b, a, b) for a, b in _bits(2)]


@_register("OR", 2, "Y = X0 or X1, independent uniform bits")
def _or():
    return [(a | b, a, b) for a, b in _bits(2)]


@_register("RDN", 2, "Y = X0 = X1, one uniform bit")
def _rdn():
    return [(a, a, a) for a in (0, 1)]


@_register("UNQ", 2, "Y = (X0, X1), independent uniform bits (two-bit copy)")
def _unq():
    return [((a, b), a, b) for a, b in _bits(2)]


@_register("COPY1", 2, "Y = X0, X1 an independent uniform bit")
def _copy1():
    return [(a, a, b) for a, b in _bits(2)]


@_register("SUM", 2, "Y = X0 + X1 (0, 1 or 2), independent uniform bits")
def _sum():
    return [(a + b, a, b) for a, b in _bits(2)]


@_register("XORAND", 2, "Y = (X0 xor X1, X0 and X1), independent uniform bits")
def _xorand():
    return [((a ^ b, a & b), a, b) for a, b in _bits(2)]


@_register("RDNXOR", 2, "X_i = (R, A_i), Y = (R, A0 xor A1): one redundant and one synergistic bit")
def _rdnxor():
    return [((r, a ^ b), (r, a), (r, b)) for r, a, b in _bits(3)]


@_register("RDNUNQXOR", 2, "X0 = (R, U0, A0), X1 = (R, U1, A1), Y = (R, U0, U1, A0 xor A1): "
                           "one bit of each atom")
def _rdnunqxor():
    return [((r, u, v, a ^ b), (r, u, a), (r, v, b)) for r, u, v, a, b in _bits(5)]


@_register("W", 2, "(X0, X1) uniform on {00, 01, 10}, Y = 1 iff X0 = X1 = 0")
def _w():
    return [(1, 0, 0), (0, 0, 1), (0, 1, 0)]


@_register("PARITY3", 3, "Y = X0 xor X1 xor X2, independent uniform bits")
def _parity3():
    return [(a ^ b ^ c, a, b, c) for a, b, c in _bits(3)]


@_register("RDN3", 3, "Y = X0 = X1 = X2, one uniform bit")
def _rdn3():
    return [(a, a, a, a) for a in (0, 1)]


@_register("COPY3", 3, "Y = (X0, X1, X2), independent uniform bits")
def _copy3():
    return [((a, b, c), a, b, c) for a, b, c in _bits(3)]


def gate(name: str) -> np.ndarray:
    """The pmf ``p[y, x0, ...]`` of the canonical gate ``name`` (see :data:`GATES`).

    Parameters
    ----------
    name : str
        A key of :data:`GATES`, case-insensitive (``"xor"``, ``"RDNUNQXOR"``, ...).

    Returns
    -------
    ndarray
        A fresh array (safe to modify).
    """
    lookup = {k.lower(): k for k in GATES}
    key = check_choice(name, "name", tuple(lookup))
    return GATES[lookup[key]].pmf()
