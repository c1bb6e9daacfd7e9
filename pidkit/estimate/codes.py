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

__all__ = ["encode", "one_hot"]


def encode(labels: Any) -> tuple[np.ndarray, int]:
    """Compact codes of labels (any size: 2**62 or 10**12 become 0, 1, ...).

    Parameters
    ----------
    labels : array_like or tensor, shape (n,) or (n, k)
        One label per sample (integers of any size, or strings), or one row of labels per
        sample (a composite discrete variable; each distinct row becomes one outcome). Tensors
        are read detached, on the host.

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
    """
    labels = as_host_array(labels, "labels", must="an array of labels, one per sample",
                           fix="Pass a numpy array, a list or a tensor",
                           ragged_fix="Give every sample the same number of labels")
    if labels.ndim == 0 or labels.shape[0] == 0:
        raise fail("labels", "holds no samples", "Pass one label per sample", labels.shape)
    if labels.dtype.kind == "c":
        raise fail("labels", f"must hold integers or strings, not dtype {labels.dtype}",
                   "Pass real labels", kind=PIDTypeError)
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise fail("labels", "contains NaN or infinite values",
                   "Drop or impute the missing labels first")
    try:
        if labels.ndim == 1:
            values, codes = np.unique(labels, return_inverse=True)
        else:
            values, codes = np.unique(labels, axis=0, return_inverse=True)
    except TypeError as exc:  # object labels that cannot be ordered (None next to 1, ...)
        raise fail("labels", f"holds values that cannot be sorted together ({exc})",
                   "Use integers or strings of one kind", kind=PIDTypeError) from exc
    return codes.reshape(-1).astype(np.int64), int(values.shape[0])


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
