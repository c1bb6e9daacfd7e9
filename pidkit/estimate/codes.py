"""Integer codes for discrete samples: arbitrary integer labels (or rows of labels) mapped to
``0, ..., k-1``, and the one-hot encoding used by the Gaussian route for a discrete target."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import is_torch
from ..errors import PIDTypeError
from ..validation import (
    as_host_array,
    check_flag,
    check_int,
    check_samples,
    check_table_size,
    fail,
)

__all__ = ["encode", "label_codes", "one_hot", "sorted_labels"]


def encode(labels: Any) -> tuple[np.ndarray, int]:
    """Compact codes of labels (any size: 2**62 or 10**12 become 0, 1, ...).

    Parameters
    ----------
    labels : array_like or tensor, shape (n,) or (n, k)
        One label per sample (integers of any size, strings, or other objects of one kind that
        sort together, e.g. a pandas categorical or string column), or one row of labels per
        sample (a composite discrete variable; each distinct row becomes one outcome). Tensors
        are read detached, on the host. Missing values (None, NaN, pandas' NA) are refused.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
        ``codes[i]`` in ``0, ..., size-1``, in sorted order of the distinct labels (rows).
    size : int
        Number of distinct outcomes.

    Examples
    --------
    >>> encode(np.array([7, -1, 7, 3]))
    (array([2, 0, 2, 1]), 3)
    >>> encode(["no", "yes", "no"])
    (array([0, 1, 0]), 2)
    """
    labels = as_host_array(labels, "labels", must="an array of labels, one per sample",
                           fix="Pass a numpy array, a list or a tensor",
                           ragged_fix="Give every sample the same number of labels")
    return label_codes(labels, "labels")


def label_codes(labels: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """:func:`encode` of a numpy array ``labels``, errors naming ``name``: the ranks of the
    distinct labels (rows), and their number. Strings and objects (one column at a time,
    then rows of their codes) must sort together and hold no missing value; floats must be
    finite."""
    if labels.ndim == 0 or labels.shape[0] == 0:
        raise fail(name, "holds no samples", "Pass one label per sample", labels.shape)
    if labels.dtype.kind == "c":
        raise fail(name, f"must hold integers or strings, not dtype {labels.dtype}",
                   "Pass real labels", kind=PIDTypeError)
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise fail(name, "contains NaN or infinite values",
                   "Drop or impute the missing labels first")
    if labels.dtype.kind in "OUS":
        labels = labels.reshape(labels.shape[0], -1)
        columns = [sorted_labels(labels[:, j], name)[1] for j in range(labels.shape[1])]
        labels = columns[0] if len(columns) == 1 else np.stack(columns, axis=1)
    if labels.ndim == 1:
        values, codes = np.unique(labels, return_inverse=True)
    else:
        values, codes = np.unique(labels, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), int(values.shape[0])


def _missing(value: Any) -> bool:
    """Whether ``value`` marks a missing label: None, a float NaN, or pandas' NA / NaT."""
    if value is None or (isinstance(value, float | np.floating) and value != value):
        return True
    kind = type(value)
    return kind.__module__.split(".")[0] == "pandas" and kind.__name__ in ("NAType", "NaTType")


def sorted_labels(column: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a string or object ``column`` (1-D), sorted, and the index of
    each sample's value among them; missing values and values that do not sort together are
    errors naming ``name``."""
    try:
        values, codes = np.unique(column, return_inverse=True)
    except TypeError as exc:   # None, pandas' NA or mixed kinds (1 next to "a") do not sort
        values, failure = column, exc
    else:
        failure = None
        if column.dtype.kind in "US":
            return values, codes.reshape(-1)
    missing = [i for i, v in enumerate(values) if _missing(v)]
    if missing:
        row = missing[0] if failure is not None else int(np.flatnonzero(codes == missing[0])[0])
        raise fail(name, f"holds missing values (None, NaN or pandas NA; the first at row "
                   f"{row})", "Drop or impute the samples with missing labels first")
    if failure is not None:
        raise fail(name, f"holds labels that cannot be sorted together ({failure})",
                   "Use labels of one kind (all strings, or all integers)",
                   kind=PIDTypeError) from failure
    return values, codes.reshape(-1)


def one_hot(labels: Any, n_classes: int | None = None, *, drop_last: bool = True
            ) -> Any:
    r"""One-hot encoding of class labels ``0, ..., n_classes-1``, as float64, in the labels'
    array library: a numpy array, or for a torch tensor a tensor on the labels' device (so that
    it goes into :meth:`GaussianMoments.update <pidkit.estimate.GaussianMoments.update>` next to
    torch features).

    The Gaussian route's encoding of a discrete target. The full one-hot matrix has columns
    summing to 1, so its covariance is singular; dropping the last column removes that single
    linear dependence. Every Gaussian quantity pidkit computes from a covariance is invariant under
    an invertible linear map of the target block, so the choice of the dropped column does not
    change the result (tested).

    Parameters
    ----------
    labels : ndarray or tensor of int, shape (n,)
        Class labels in ``0, ..., n_classes-1`` (checked on the host).
    n_classes : int, optional
        Number of classes (default ``labels.max() + 1``); fix it when encoding batch by batch.
    drop_last : bool, default True
        Drop the last column (shape ``(n, n_classes-1)``).

    Examples
    --------
    >>> one_hot(np.array([0, 2, 1]), 3)
    array([[1., 0.],
           [0., 0.],
           [0., 1.]])
    """
    given = labels
    labels = check_samples(labels, "labels", keep_torch=False)
    if labels.ndim != 1 or labels.dtype.kind not in "iub":
        raise fail("labels", f"must be one integer class label per sample, not shape "
                   f"{labels.shape} of dtype {labels.dtype}",
                   "Encode classes as 0, ..., n_classes-1 with pidkit.estimate.encode",
                   kind=PIDTypeError)
    drop_last = check_flag(drop_last, "drop_last")
    k = int(labels.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", 1)
    if labels.min() < 0 or labels.max() >= k:
        raise fail("labels", f"must lie in 0..{k - 1}", "Encode classes as 0, ..., n_classes-1",
                   (int(labels.min()), int(labels.max())))
    check_table_size([labels.shape[0], k], ["labels", "labels" if n_classes is None
                                            else "n_classes"],
                     fix="Re-code the labels to 0..k-1 with pidkit.estimate.encode")
    out = np.zeros((labels.shape[0], k))
    out[np.arange(labels.shape[0]), labels] = 1.0
    out = out[:, :-1] if drop_last else out
    if is_torch(given):
        import torch

        return torch.as_tensor(np.ascontiguousarray(out), device=given.device)
    return out
