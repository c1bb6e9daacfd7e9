"""Checks on samples at the boundary of :mod:`pidkit.estimate`: arrays, lengths, finiteness,
labels (integers, strings, objects); the warning for a constant variable. Every failure is a
typed error built by :func:`pidkit.validation.fail`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._backend import is_torch
from ..errors import PIDTypeError, PIDValueError, caller_stacklevel
from ..validation import as_host_array, check_samples, fail
from ..validation import check_finite as check_finite  # moved to pidkit.validation; kept here
from ..validation import check_level as check_level  # moved to pidkit.validation; kept here
from .codes import label_codes

__all__ = ["to_numpy"]


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Samples as a numpy array (torch tensors are detached and copied to the CPU); see
    :func:`pidkit.validation.check_samples`."""
    return check_samples(x, name, keep_torch=False)


def samples_or_labels(x: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Samples as a numpy array, as :func:`to_numpy` gives them, except that labels (strings or
    other objects: a pandas string or categorical column) come back as they are, for the routes
    that read them (:func:`as_labels`) or refuse them with their own advice
    (:func:`refuse_labels`)."""
    if not is_torch(x):
        raw = as_host_array(x, name, must="an array of samples",
                            fix="Pass a numpy array or a torch tensor",
                            ragged_fix="Give every sample the same shape (one row per sample)")
        if raw.dtype.kind in "OUS" and raw.ndim:
            return raw
    return check_samples(x, name, keep_torch=False, allow_empty=allow_empty)


def refuse_labels(x: Any, name: str, fix: str) -> None:
    """Refuse labels (strings or other objects) where a route needs numbers: a
    :class:`~pidkit.errors.PIDTypeError` naming ``name``, with ``fix`` (the route's advice)."""
    if is_torch(x):
        return
    dtype = as_host_array(x, name, must="an array of samples",
                          fix="Pass a numpy array or a torch tensor",
                          ragged_fix="Give every sample the same shape (one row per sample)"
                          ).dtype
    if dtype.kind in "OUS":
        raise fail(name, f"holds labels (dtype {dtype}), not numbers", fix, kind=PIDTypeError)


def rows(x: Any, name: str) -> np.ndarray:
    """Samples as an array ``(n, D)`` without copying or converting their dtype (finiteness is
    checked later, chunk by chunk)."""
    arr = to_numpy(x, name)
    return arr.reshape(arr.shape[0], -1)


def check_lengths(arrays: list[np.ndarray], names: list[str]) -> int:
    """All arrays must hold the same number of samples (their first axis); return it. An array
    laid out with one row per variable (a list of sources passed as one argument) is named in
    the advice."""
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) > 1:
        listing = ", ".join(f"{n}: {k}" for n, k in zip(names, lengths, strict=True))
        fix = "Pass one row per sample for the target and every source, aligned"
        stacked = [(name, a.shape) for a, name in zip(arrays, names, strict=True)
                   if a.ndim >= 2 and a.shape[0] != lengths[0] and a.shape[1] == lengths[0]]
        if stacked:
            name, shape = stacked[0]
            fix = (f"{name} has shape {shape}, one row per variable: pass each source as its "
                   "own argument (pid_from_samples(y, x0, x1), or pid_from_samples(y, *xs) "
                   "for a list xs), or the transpose (.T) for one composite source")
        raise fail("samples", f"have different numbers of samples ({listing})", fix)
    if lengths[0] < 2:
        raise fail("samples", "need at least 2 samples", "Pass more samples", lengths[0])
    return lengths[0]


def as_matrix(x: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """Continuous samples as a finite 2-D array ``(n, d)``: a vector becomes one column and any
    trailing axes (channels, height, width) are flattened, as in the paper's audit."""
    arr = to_numpy(x, name)
    check_finite(arr, name)
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[1] == 0:
        raise fail(name, "has zero features per sample", "Pass at least one feature", arr.shape)
    return arr.astype(dtype, copy=False)


def as_labels(x: Any, name: str, fix: str | None = None, *,
              kind: type = PIDValueError) -> np.ndarray:
    """Discrete samples as an integer-valued array ``(n,)`` or ``(n, k)`` (one column per
    discrete component), for :func:`~pidkit.estimate.codes.encode` to compact.

    Labels are categories: only which samples share a value matters. Strings and other objects
    (a pandas string or categorical column; rows of them for a composite variable) become the
    ranks of their distinct values (rows), ``(n,)``
    (:func:`~pidkit.estimate.codes.label_codes`: missing values and labels that do not sort
    together are errors naming ``name``). Integer labels become
    int64 (a ``uint64`` label of ``2**63`` or more wraps to a distinct negative int64, which
    keeps every equality). Floats are accepted only when every value is an integer, and are
    returned as floats, never cast: a float may be an integer far outside the int64 range
    (``2.0**63``, ``1e20``). :func:`~pidkit.estimate.codes.encode` ranks their distinct values
    (rows) as it does integers', so equal floats share a code and the order is kept. ``fix``:
    the advice when ``x`` holds non-integer values (default: encode them, or use a continuous
    estimator). ``kind``: the error class for non-integer values (:class:`JointCounts
    <pidkit.estimate.JointCounts>` keeps its contract that codes must be integers, a
    :class:`~pidkit.errors.PIDTypeError`).
    """
    arr = samples_or_labels(x, name)
    if arr.dtype.kind in "OUS":
        arr = label_codes(arr, name)[0]
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.dtype.kind == "f":
        check_finite(arr, name)
        if not np.all(arr == np.round(arr)):
            raise fail(name, "holds non-integer values but must be integer labels",
                       fix or "Encode categories as integers, or use estimator='discretize' "
                       "(or 'gaussian') for continuous samples", kind=kind)
        return arr
    return arr.astype(np.int64, copy=False)


def warn_constant(name: str, *, target: bool) -> None:
    """Warn that the variable ``name`` (the target when ``target``) takes one value in every
    sample. A constant target carries no information, so every atom, the mutual information and
    every bootstrap and shuffle replicate are exactly 0, and the estimators return those zeros;
    a constant source carries no information about the target, which the count routes compute
    exactly. Either is well defined but most often a wrong array, hence the warning."""
    if target:
        what = ("every atom, the mutual information and their bootstrap and shuffle replicates "
                "are exactly 0 (p-values 1)")
    else:
        what = "its mutual information with the target is 0"
    warnings.warn(f"{name}: is constant (one value in every sample), so it carries no "
                  f"information: {what}. Check that the right array was passed", UserWarning,
                  stacklevel=caller_stacklevel())
