r"""Class labels: the one rule every part of pidkit_distill applies (the trainer, the losses,
feature extraction and the audits), for torch tensors and numpy arrays alike.

**The rule.** Labels are class indices, one per sample:

- shape ``(N,)`` (one-hot or probability rows ``(N, K)`` and columns ``(N, 1)`` are refused,
  with ``y.argmax(1)`` / ``y.squeeze(1)`` as the fix): :class:`~pidkit.errors.PIDValueError`;
- an integer dtype, signed or unsigned, of any width, converted exactly to int64; or floats
  that are all whole numbers (``0.0, 1.0, ...``, as labels read from a CSV file are), also
  converted exactly. This is the rule of pidkit's estimators from samples
  (:func:`pidkit.estimate._checks.as_labels`). A float label with a fractional part, NaN or
  an infinity is refused (:class:`~pidkit.errors.PIDValueError`), not truncated by a cast;
- boolean, complex and other dtypes are refused (:class:`~pidkit.errors.PIDTypeError`):
  ``True``/``False`` need not mean classes 1 and 0; class names (strings) are refused with
  ``np.unique(labels, return_inverse=True)`` as the fix.

Whether floats are whole numbers is a question about their *values*, which can be read where
the data enter (the trainer's batches, :func:`~pidkit_distill.features.extract_features`, the
audits); inside a training step a loss must not read values (that would wait for the device),
so the losses (:func:`pidkit_distill.losses.base.check_labels`) take integer dtypes only and
refuse float labels by their dtype (by then the trainer has converted whole-number floats).
Label *values* (``0..K-1``, :data:`UNLABELLED`) are checked by the callers that know ``K``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pidkit.errors import PIDTypeError
from pidkit.validation import fail

__all__ = ["UNLABELLED", "as_class_labels"]

#: Label value of an unlabelled sample (semi-supervised distillation): such samples enter
#: every teacher-matching term of a loss but no cross-entropy.
UNLABELLED = -1

#: Float labels at or beyond this magnitude do not convert to int64.
_INT64_LIMIT = 2.0**63

#: How many offending values a message shows.
_SHOWN = 3


def _dtype_kind(y: Any) -> str:
    """numpy's dtype kind of ``y`` (a torch tensor or a numpy array): ``"i"``, ``"u"``,
    ``"f"``, ``"b"``, ``"c"``, ..."""
    if hasattr(y, "is_floating_point"):  # a torch tensor
        import torch

        if y.dtype == torch.bool:
            return "b"
        if y.is_complex():
            return "c"
        if y.is_floating_point():
            return "f"
        return "u" if y.dtype == torch.uint8 else "i"
    return y.dtype.kind


def as_class_labels(y: Any, name: str, *, read_values: bool = True) -> Any:
    """``y`` (a torch tensor or a numpy array) as int64 class indices of the same array type
    (``y`` itself when already int64), after the module's rule.

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray
    name : str
        The argument named in errors (``"train_data"``, ``"labels"``, ``"y"``, ...).
    read_values : bool, default True
        Accept float labels after checking that every value is a whole number (one read of
        the values; on a GPU tensor a host synchronisation). ``False`` (inside a training
        step): float labels are refused by their dtype, nothing is read.

    Raises
    ------
    PIDValueError
        ``y`` is not 1-D, or holds float values that are not whole numbers in int64's range.
    PIDTypeError
        ``y`` has a boolean, complex or other non-numeric dtype, or (``read_values=False``) a
        floating dtype.
    """
    is_torch = hasattr(y, "is_floating_point")
    shape = tuple(y.shape)
    if len(shape) != 1:
        raise fail(name, f"holds labels of shape {shape}; one class index per sample, shape "
                   "(N,), is needed", "For one-hot or probability rows (N, K) pass "
                   "y.argmax(1); for a column (N, 1) pass y.squeeze(1)")
    kind = _dtype_kind(y)
    if kind == "f" and read_values:
        if is_torch:
            import torch as lib
        else:
            lib = np
        ok = lib.isfinite(y) & (y == lib.round(y)) & (abs(y) < _INT64_LIMIT)
        if not bool(ok.all()):
            bad = y[~ok][:_SHOWN]
            if is_torch:  # shown in their own precision, as numpy prints them
                bad = bad.float().cpu().numpy() if bad.dtype == lib.bfloat16 else \
                    bad.cpu().numpy()
            shown = ", ".join(str(v) for v in bad)
            raise fail(name, f"holds labels that are not whole numbers (float values such as "
                       f"[{shown}])", "Pass class indices 0..K-1; an integer cast would truncate "
                       "these, so check what the values mean (for probability rows pass "
                       "y.argmax(1))")
    elif kind not in "iu":
        unread = (" (float values are not read inside a training step, so whole-number floats "
                  "are not accepted here)" if kind == "f" else "")
        fix = ("Map the class names to indices 0..K-1, e.g. classes, y = np.unique(labels, "
               "return_inverse=True)" if kind in "USO" else "Convert them with y.long() (class "
               "indices 0..K-1, -1 for an unlabelled sample in training); for one-hot rows use "
               "y.argmax(1)")
        raise fail(name, f"holds labels of dtype {y.dtype}; class indices of an integer dtype "
                   f"are needed{unread}", fix, kind=PIDTypeError)
    return y.long() if is_torch else y.astype(np.int64, copy=False)
