"""Input checks at the public boundary, with one error format.

Every check raises :class:`~pidkit.errors.PIDValueError` or :class:`~pidkit.errors.PIDTypeError`
with a message ``"<argument>: <what was wrong> (got <value>). <how to fix it>."`` so that users
see which argument failed and what to do, never a numpy traceback.

Packages built on pidkit (``pidkit_distill``) use these checks and :func:`fail` so that their
errors read the same.

Examples
--------
>>> from pidkit.validation import check_int, fail
>>> check_int(3, "epochs", 1)
3
>>> raise fail("epochs", "must be >= 1", "Pass a positive integer", 0)
Traceback (most recent call last):
...
pidkit.errors.PIDValueError: epochs: must be >= 1 (got 0). Pass a positive integer
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import PIDTypeError, PIDValueError

__all__ = [
    "PMF_SUM_ATOL",
    "as_float_array",
    "check_axis_list",
    "check_base",
    "check_choice",
    "check_int",
    "check_pmf",
    "check_positive",
    "check_samples",
    "check_target_sources",
    "fail",
]

#: Absolute tolerance on ``|sum(p) - 1|`` below which a pmf counts as normalised.
PMF_SUM_ATOL = 1e-8


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(name: str, problem: str, fix: str, value: Any = None, *, kind: type = PIDValueError):
    """Build the error for argument ``name``: ``problem``, the value received, and ``fix``.

    Parameters
    ----------
    name : str
        The argument (or option) that failed.
    problem : str
        What was wrong with it.
    fix : str
        How to fix it.
    value : object, optional
        The value received, shown shortened as ``(got ...)``; ``None`` shows nothing.
    kind : type, default PIDValueError
        The exception class, :class:`~pidkit.errors.PIDValueError` or
        :class:`~pidkit.errors.PIDTypeError`.

    Returns
    -------
    PIDKitError
        The error, to be raised by the caller (``raise fail(...)``).
    """
    got = "" if value is None else f" (got {_short(value)})"
    return kind(f"{name}: {problem}{got}. {fix}")


def check_base(base: Any, name: str = "base") -> float:
    """Return ``base`` as a float, rejecting anything that is not a logarithm base > 0 and != 1."""
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise fail(name, "must be a real number",
                   "Use 2 for bits, math.e for nats, 10 for hartleys",
                   base, kind=PIDTypeError)
    base = float(base)
    if not np.isfinite(base) or base <= 0 or base == 1:
        raise fail(name, "must be a finite logarithm base > 0 and != 1",
                   "Use 2 for bits, math.e for nats, 10 for hartleys", base)
    return base


def as_float_array(p: Any, name: str = "p") -> np.ndarray:
    """Convert an array-like of numbers to a float64 ndarray; reject ragged or non-numeric input."""
    if isinstance(p, (str, bytes)):
        raise fail(name, "must be an array of probabilities, not a string",
                   "Pass a numpy array or nested lists of numbers", p, kind=PIDTypeError)
    if isinstance(p, np.ndarray):
        arr = p
    else:
        try:
            arr = np.asarray(p)
        except ValueError as exc:  # numpy refuses ragged nested sequences
            raise fail(name, "is a ragged nested sequence",
                       "Give every axis the same length (pad with zero probabilities)",
                       kind=PIDValueError) from exc
    if arr.dtype == object:
        raise fail(name, "is ragged or holds non-numeric entries",
                   "Give every axis the same length and use numbers only", kind=PIDTypeError)
    if arr.dtype.kind not in "biuf":
        raise fail(name, f"must hold real numbers, not dtype {arr.dtype}",
                   "Convert it with np.asarray(p, dtype=float)", kind=PIDTypeError)
    return arr.astype(np.float64, copy=False)


def check_pmf(p: Any, name: str = "p", *, normalize: bool = False, min_axes: int = 2,
              atol: float = PMF_SUM_ATOL) -> np.ndarray:
    """Validate a joint pmf with one axis per variable and return it as float64.

    Parameters
    ----------
    p : array_like
        Non-negative probabilities, one axis per variable.
    name : str
        Argument name used in error messages.
    normalize : bool
        Divide by the total mass instead of rejecting a pmf whose sum differs from 1 by more than
        ``atol``.
    min_axes : int
        Least number of axes (a target and at least one source need 2).
    atol : float
        Tolerance on ``|sum(p) - 1|``.
    """
    arr = as_float_array(p, name)
    if arr.ndim < min_axes:
        raise fail(name, f"needs at least {min_axes} axes (one per variable), has {arr.ndim}",
                   "Reshape it so that each variable has its own axis, e.g. p.reshape(2, 2, 2)")
    if arr.size == 0:
        raise fail(name, f"is empty (shape {arr.shape})",
                   "Every variable needs at least one outcome")
    if not np.all(np.isfinite(arr)):
        raise fail(name, "contains NaN or infinite probabilities",
                   "Remove or replace the non-finite entries")
    if np.any(arr < 0):
        raise fail(name, f"contains negative probabilities (min {arr.min():.3g})",
                   "Probabilities must be >= 0")
    total = float(arr.sum())
    if total == 0:
        raise fail(name, "is all zeros", "At least one outcome needs positive probability")
    if abs(total - 1.0) > atol:
        if not normalize:
            raise fail(name, f"sums to {total:.12g}, not 1 (tolerance {atol:g})",
                       "Pass normalize=True to divide by the total, or fix the pmf")
    return arr / total


def check_axis_list(value: Any, name: str, ndim: int) -> tuple[int, ...]:
    """Validate a sequence of distinct axis indices in ``[-ndim, ndim)`` and normalise them."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise fail(name, "must be an axis index or a list of axis indices",
                   f"Use integers in [0, {ndim})", value, kind=PIDTypeError)
    axes = []
    for ax in value:
        if isinstance(ax, bool) or not isinstance(ax, (numbers.Integral, np.integer)):
            raise fail(name, "holds a non-integer axis", f"Use integers in [0, {ndim})", value,
                       kind=PIDTypeError)
        if not -ndim <= int(ax) < ndim:
            raise fail(name, f"axis {int(ax)} is out of range for a pmf with {ndim} axes",
                       f"Use integers in [0, {ndim})", value)
        axes.append(int(ax) % ndim)
    if not axes:
        raise fail(name, "is empty", "Name at least one axis", value)
    if len(set(axes)) != len(axes):
        raise fail(name, "names the same axis twice", "List each axis once", value)
    return tuple(axes)


def check_target_sources(ndim: int, target: Any, sources: Any) -> tuple[tuple[int, ...],
                                                                       tuple[tuple[int, ...], ...]]:
    """Resolve ``target`` and ``sources`` against a pmf with ``ndim`` axes.

    ``target`` is an axis or a list of axes (grouped into one variable). ``sources`` is ``None``
    (every other axis is a source, in order) or a list whose items are an axis or a list of axes
    (a composite source). Axes may not overlap.
    """
    target_axes = check_axis_list(target, "target", ndim)
    if sources is None:
        groups = tuple((ax,) for ax in range(ndim) if ax not in target_axes)
    else:
        if isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence | np.ndarray):
            raise fail("sources", "must be a list of axes or of lists of axes",
                       "Example: sources=[1, 2] or sources=[[1, 2], [3]]", sources,
                       kind=PIDTypeError)
        groups = tuple(check_axis_list(g, "sources", ndim) for g in sources)
    if not groups:
        raise fail("sources", "no source axes are left", "Give the pmf at least one source axis")
    used = [ax for g in groups for ax in g]
    if len(set(used)) != len(used):
        raise fail("sources", "two sources share an axis", "Each axis may belong to one source",
                   sources)
    overlap = set(used) & set(target_axes)
    if overlap:
        raise fail("sources", f"axis {sorted(overlap)} is also the target",
                   "Sources and target must be different axes", sources)
    return target_axes, groups


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Validate that ``value`` is one of ``choices`` (case-insensitive); return it lower-cased."""
    if not isinstance(value, str) or value.lower() not in choices:
        kind = PIDTypeError if not isinstance(value, str) else PIDValueError
        raise fail(name, "is not a known choice", f"Use one of: {', '.join(choices)}", value,
                   kind=kind)
    return value.lower()


def check_positive(value: Any, name: str, *, integer: bool = False, allow_zero: bool = False):
    """Validate a positive number (an integer when ``integer``)."""
    kinds = (numbers.Integral, np.integer) if integer else (numbers.Real, np.floating, np.integer)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise fail(name, f"must be {'an integer' if integer else 'a number'}",
                   "Pass a positive value", value, kind=PIDTypeError)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise fail(name, f"must be {'>= 0' if allow_zero else '> 0'}", "Pass a positive value",
                   value)
    return int(value) if integer else float(value)


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise fail(name, "must be an integer", f"Pass an integer >= {minimum}", value,
                   kind=PIDTypeError)
    if value < minimum:
        raise fail(name, f"must be >= {minimum}", f"Pass an integer >= {minimum}", value)
    return int(value)


def check_samples(x: Any, name: str, *, keep_torch: bool = True):
    """Samples as an array of their own library and dtype, one sample per row of the first axis.

    numpy arrays (and array-likes) come back as numpy arrays, torch tensors as the same tensor
    (dtype, device and autograd kept) or, with ``keep_torch=False``, detached and copied to a
    numpy array on the host. Nothing is converted: dtype, shape and finiteness checks that
    depend on the use are the caller's.

    Raises
    ------
    PIDTypeError
        ``x`` is a string, None, or holds non-numeric values (object, string or complex dtype).
    PIDValueError
        ``x`` is a scalar (0 axes) or holds no samples.

    Examples
    --------
    >>> import numpy as np
    >>> check_samples(np.ones((3, 2), dtype=np.float32), "x").dtype
    dtype('float32')
    """
    from ._backend import is_torch

    if is_torch(x):
        if x.dtype.is_complex:
            raise fail(name, f"must hold real numbers, not dtype {x.dtype}",
                       "Pass a real-valued numpy array or torch tensor", kind=PIDTypeError)
        arr = x if keep_torch else x.detach().cpu().numpy()
    else:
        if isinstance(x, (str, bytes)) or x is None:
            raise fail(name, "must be an array of samples",
                       "Pass a numpy array or a torch tensor", x, kind=PIDTypeError)
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise fail(name, f"must hold numbers, not dtype {arr.dtype}",
                       "Pass a numeric numpy array or torch tensor", kind=PIDTypeError)
    if arr.ndim == 0:
        raise fail(name, "is a scalar, not an array of samples",
                   "Pass one row per sample, e.g. an array of shape (n,) or (n, d)", arr)
    if arr.shape[0] == 0:
        raise fail(name, "holds no samples", "Pass at least two samples")
    return arr
