r"""Plug-in (maximum-likelihood) pmfs from integer-coded or labelled samples.

.. math::

    \hat p(x_0, \dots, x_{m-1}) = \frac{1}{N} \#\{t : (c_0[t], \dots, c_{m-1}[t]) =
    (x_0, \dots, x_{m-1})\}

The plug-in pmf is biased for mutual information (upward, by about
:math:`(\text{cells} - 1) / (2 N \ln 2)` bits); bias-corrected estimators live in
:mod:`pidkit.estimate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import PIDTypeError
from .estimate._checks import as_labels
from .estimate.codes import sorted_labels
from .validation import (
    MAX_TABLE_CELLS,
    _kind,
    as_numpy,
    check_aligned,
    check_table_size,
    fail,
    host_numpy,
    reject_dit,
    reject_masked,
    reject_meta,
    reject_mixed_labels,
)

__all__ = ["joint_pmf"]

_CODE_FIX = "Code each outcome as 0, 1, 2, ... e.g. with np.unique(x, return_inverse=True)"


def _check_column(column: Any, name: str) -> np.ndarray:
    if isinstance(column, (str, bytes)):
        raise fail(name, "must be a 1-D array of codes or labels, not a string",
                   "Pass a list or array with one code or label per sample", column,
                   kind=PIDTypeError)
    reject_masked(column, name)
    reject_dit(column, name)
    reject_meta(column, name)
    try:
        # torch: a detached host copy (bfloat16 widened to float32), whatever requires_grad
        arr = host_numpy(column) if hasattr(column, "detach") else as_numpy(column, name)
    except ValueError as exc:  # ragged nesting
        raise fail(name, "is ragged", "Pass a flat 1-D sequence of integers",
                   kind=PIDTypeError) from exc
    if arr.dtype == object and arr.ndim == 0:    # None, a generator, a dict: wrapped by numpy
        raise fail(name, f"must be a 1-D array of codes or labels, not {_kind(column)}",
                   "Pass a list or array with one code or label per sample", kind=PIDTypeError)
    reject_mixed_labels(column, arr, name)
    if arr.ndim != 1:
        raise fail(name, f"must be 1-D, got shape {arr.shape}",
                   "Pass one column per variable (e.g. joint_pmf(*data.T))")
    if arr.size == 0:
        raise fail(name, "is empty", "Give at least one sample")
    if arr.dtype.kind in "OUS":          # labels (strings, a pandas categorical): their ranks
        return sorted_labels(arr, name)[1]
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise fail(name, "contains NaN", "Drop or impute missing samples before counting")
    if arr.dtype.kind == "f":
        # whole-number floats (numpy or torch) are codes, as pid_from_samples and JointCounts
        # read them (kept as floats until the range checks below, so 1e20 is a table-size
        # error, not a wrapped int)
        arr = as_labels(arr, name, _CODE_FIX, kind=PIDTypeError)
    elif arr.dtype.kind not in "iub":
        raise fail(name, f"must hold integer codes, got dtype {arr.dtype}",
                   _CODE_FIX, kind=PIDTypeError)
    if arr.min() < 0:
        raise fail(name, f"contains negative codes (min {int(arr.min())})",
                   "Codes must be 0, 1, 2, ...; recode with np.unique(x, return_inverse=True)")
    if int(arr.max()) > np.iinfo(np.int64).max:  # uint64 codes above 2**63 - 1 would wrap
        raise fail(name, f"holds code {int(arr.max())}, so the joint table would have more than "
                   f"{MAX_TABLE_CELLS:,} cells", "Recode each column to consecutive codes with "
                   "np.unique(x, return_inverse=True)")
    return arr.astype(np.int64)


def joint_pmf(*columns: Any) -> np.ndarray:
    """Plug-in joint pmf of integer-coded samples, one axis per column.

    Parameters
    ----------
    *columns : array_like, each shape (n_samples,)
        Non-negative integer codes of each variable (whole-number floats such as ``1.0`` count
        as codes, numpy arrays and torch tensors alike, as
        :func:`~pidkit.estimate.pid_from_samples` reads them), or labels of any kind (strings,
        a pandas string or categorical column), sample ``t`` at position ``t`` of every column.

    Returns
    -------
    ndarray, shape (max(c_0) + 1, ..., max(c_{m-1}) + 1)
        Relative frequencies (sum 1); codes never observed get probability 0. The axis of a
        column of labels has one index per distinct label, in sorted order
        (``np.unique(column)`` lists them).

    Examples
    --------
    >>> import pidkit
    >>> x0, x1 = [0, 0, 1, 1], [0, 1, 0, 1]
    >>> y = [a ^ b for a, b in zip(x0, x1)]
    >>> p = pidkit.joint_pmf(y, x0, x1)
    >>> p.shape, float(p[1, 0, 1])
    ((2, 2, 2), 0.25)
    """
    if not columns:
        raise fail("columns", "none given", "Pass one column per variable: joint_pmf(y, x0, x1)",
                   kind=PIDTypeError)
    check_aligned(columns, [f"columns[{i}]" for i in range(len(columns))])
    cols = [_check_column(c, f"columns[{i}]") for i, c in enumerate(columns)]
    lengths = [len(c) for c in cols]
    if len(set(lengths)) > 1:
        raise fail("columns", f"have different lengths {lengths}",
                   "Every column needs one entry per sample")
    shape = tuple(int(c.max()) + 1 for c in cols)
    cells = check_table_size(shape, [f"columns[{i}]" for i in range(len(cols))])
    flat = np.ravel_multi_index(tuple(cols), shape)
    counts = np.bincount(flat, minlength=cells).astype(np.float64)
    return (counts / lengths[0]).reshape(shape)
