r"""Joint counts: the sufficient statistic of the discrete route, accumulated batch by batch.

The plug-in pmf of integer codes :math:`(y, x_0, \dots, x_{n-1})` is
:math:`\hat p(y, x) = N(y, x) / N` with :math:`N(y, x)` the number of samples in each cell.
Counts are integers, so adding the counts of batches, processes or machines gives *exactly* the
counts of the whole data set, in any order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._backend import get_namespace, is_torch
from ..errors import PIDTypeError
from ..validation import (
    MAX_TABLE_CELLS,
    check_aligned,
    check_samples,
    check_table_size,
    fail,
)
from ._checks import as_labels, samples_or_labels, to_numpy
from ._distributed import agree, all_reduce_sum, comm_device, distributed
from .codes import sorted_labels

__all__ = ["JointCounts"]


class JointCounts:
    r"""Histogram of integer codes ``(target, source_0, ..., source_{n-1})``, mergeable by ``+``.

    Feed batches of codes (numpy arrays or torch tensors on any device) with :meth:`update`;
    codes are non-negative integers, e.g. class labels or the cluster indices returned by
    :meth:`pidkit.estimate.Discretizer.transform`. A variable may instead hold labels of any
    kind (strings, a pandas string or categorical column, numpy arrays only): each distinct
    label gets the next row of its axis when it first appears (:attr:`labels`), so batches,
    ``+`` and :meth:`all_reduce` agree on them whatever labels each part saw. The table grows
    when a larger code or a new label appears unless ``shape`` fixes the alphabet sizes. The
    state stays in the backend (and on the device) of the first batch; mixing numpy and torch
    batches is an error.

    Parameters
    ----------
    shape : tuple of int, optional
        Alphabet size of each variable (target first). Codes outside it raise an error.

    Notes
    -----
    The table has ``prod(shape)`` cells, at most :data:`~pidkit.validation.MAX_TABLE_CELLS`
    (10**8): a larger one (e.g. from labels such as 10**6 or 2**40 used as codes) is refused
    before anything is allocated, naming the variable; re-code labels with
    :func:`pidkit.estimate.encode` or ``np.unique(x, return_inverse=True)``.

    Attributes
    ----------
    counts : ndarray of int64, shape ``(k_y, k_0, ..., k_{n-1})``
        The table, as numpy (a copy).
    labels : tuple
        Per variable, target first: the labels of its axis in order (a tuple), or None for a
        variable of integer codes (the code is the index); ``()`` before the first sample.
    n_samples : int
        Number of samples counted.

    Examples
    --------
    >>> import numpy as np
    >>> a = JointCounts().update(np.array([0, 1]), np.array([0, 1]), np.array([1, 1]))
    >>> b = JointCounts().update(np.array([1]), np.array([1]), np.array([0]))
    >>> (a + b).counts.sum(), (a + b).shape
    (np.int64(3), (2, 2, 2))
    >>> (a + b).to_pmf()[1, 1, 0]
    np.float64(0.3333333333333333)
    >>> c = JointCounts().update(np.array(["no", "yes"]), np.array([0, 1]))
    >>> c.update(np.array(["maybe"]), np.array([1])).labels
    (('no', 'yes', 'maybe'), None)
    """

    def __init__(self, shape: tuple[int, ...] | None = None):
        if shape is not None:
            if (isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__")
                    or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                           for k in shape)):
                raise fail("shape", "must be a tuple of integers, one alphabet size per variable",
                           "Example: shape=(10, 10, 10)", shape, kind=PIDTypeError)
        self._fixed = None if shape is None else tuple(int(k) for k in shape)
        if self._fixed is not None:
            if len(self._fixed) < 2 or min(self._fixed) < 1:
                raise fail("shape", "needs a positive size for the target and each source",
                           "Example: shape=(10, 10, 10)", shape)
            if math.prod(self._fixed) > MAX_TABLE_CELLS:
                raise fail("shape", f"gives a table of {math.prod(self._fixed):.2g} cells, more "
                           f"than {MAX_TABLE_CELLS:,}",
                           "Re-code the variables to fewer codes, or coarsen them", shape)
        self._state: Any = None
        # per variable: a dict label -> index (labels) or None (integer codes), fixed by the
        # first non-empty batch; None before it
        self._labels: list[dict[Any, int] | None] | None = None

    # -- state -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        if self._state is None:
            return self._fixed if self._fixed is not None else ()
        return tuple(int(k) for k in self._state.shape)

    @property
    def counts(self) -> np.ndarray:
        if self._state is None:
            raise fail("JointCounts", "has no samples yet", "Call update(target, *sources) first")
        return to_numpy(self._state, "counts").astype(np.int64, copy=True)

    @property
    def labels(self) -> tuple[tuple[Any, ...] | None, ...]:
        if self._labels is None:
            return ()
        return tuple(None if v is None else tuple(v) for v in self._labels)

    @property
    def n_samples(self) -> int:
        return 0 if self._state is None else int(self._state.sum())

    def _grown(self, shape: tuple[int, ...]) -> Any:
        """The state padded with zeros to ``shape`` (element-wise at least the current one)."""
        return _padded(self._state, shape)

    # -- accumulation ------------------------------------------------------------------------
    def update(self, target: Any, *sources: Any) -> JointCounts:
        """Add one batch of codes: ``target`` and every source, shape ``(batch,)`` each.

        Returns ``self`` so calls chain. Codes must be non-negative integers: numpy arrays,
        torch tensors or array-likes such as lists (read as numpy arrays). Numpy floats (and
        lists of floats) are accepted when every value is a whole number (``[0., 1.]``), by
        the rule :func:`~pidkit.estimate.pid_from_samples` applies
        (:func:`pidkit.estimate._checks.as_labels`); a non-integer float is a
        :class:`~pidkit.errors.PIDTypeError` naming the column. Torch tensors are counted on
        their device; float tensors of whole numbers are codes too, checked there: the ranges
        of every column and the checks of the float ones come back in one host read per
        batch, as the ranges of integer tensors alone do.

        A column of strings or other objects (a pandas string or categorical column) holds
        labels: the labels new to the variable take its next rows, in sorted order
        (:attr:`labels`), so each label keeps one row across batches. A variable keeps the
        form of its first batch (labels, or integer codes); missing labels (None, NaN,
        pandas' NA) are refused.
        """
        cols = [target, *sources]
        names = [_variable(i) for i in range(len(cols))]
        check_aligned(cols, names)
        if not sources:
            raise fail("sources", "none given", "Pass the target and at least one source")
        torch_in = {is_torch(c) for c in cols}
        if len(torch_in) > 1:
            raise fail("update", "mixes numpy arrays and torch tensors",
                       "Pass every column in the same array library", kind=PIDTypeError)
        use_torch = torch_in.pop()
        if self._state is not None and is_torch(self._state) != use_torch:
            raise fail("update", "switches between numpy and torch batches",
                       "Keep one array library per JointCounts (convert the batch)",
                       kind=PIDTypeError)
        if self.shape and len(cols) != len(self.shape):
            held = "earlier batches had" if self._state is not None else "shape= fixes"
            raise fail("update", f"got {len(cols)} variables, {held} {len(self.shape)}",
                       "Pass the same variables in every batch, one size in shape= per variable")
        # numpy arrays, tensors and array-likes (lists): typed errors for anything else;
        # labels (strings, objects) are kept for _indexed
        cols = [check_samples(c, name, allow_empty=True) if is_torch(c)
                else samples_or_labels(c, name, allow_empty=True)
                for c, name in zip(cols, names, strict=True)]
        fix = ("Map labels to 0..k-1 (pidkit.estimate.encode) or discretise continuous "
               "samples first (Discretizer)")
        for i, (c, name) in enumerate(zip(cols, names, strict=True)):
            if not use_torch and c.dtype.kind == "f" and c.size:
                # whole-number floats, as pid_from_samples reads them (kept as floats until
                # the range checks below, so 1e20 is a table-size error, not a wrapped int)
                cols[i] = c = as_labels(c, name, "Pass integer codes: m" + fix[1:],
                                        kind=PIDTypeError)
            kind = str(c.dtype) if use_torch else c.dtype.kind
            # numpy floats reaching here are whole numbers (or empty); float tensors are
            # checked on the device with the ranges (_tensor_codes)
            integer = (("int" in kind or kind == "torch.bool" or c.is_floating_point())
                       if use_torch else kind in "biufOUS")
            if not integer:
                raise fail(name, f"must hold integer codes, not dtype {c.dtype}", fix,
                           kind=PIDTypeError)
            if c.ndim != 1:
                raise fail(name, f"must be one code per sample, shape (batch,), not "
                           f"{tuple(c.shape)}",
                           "Encode a composite variable into one integer code per sample")
        lengths = {int(c.shape[0]) for c in cols}
        if len(lengths) > 1:
            raise fail("update", f"columns have different lengths {sorted(lengths)}",
                       "Pass one code per sample for every variable")
        if lengths.pop() == 0:
            return self
        cols, labels = self._indexed(cols, names)
        if use_torch:
            cols, lows, highs = _tensor_codes(cols, names, "Pass integer codes: m" + fix[1:])
        else:
            # ranges as Python integers, before any cast: uint64 codes above 2**63 must not wrap
            lows = [int(c.min()) for c in cols]
            highs = [int(c.max()) + 1 for c in cols]
        if min(lows) < 0:
            raise fail(names[int(np.argmin(lows))], "holds negative codes",
                       "Codes must be 0, 1, ..., k-1", min(lows))
        current = self.shape if self.shape else (0,) * len(cols)
        needed = tuple(max(a, b) for a, b in zip(current, highs, strict=True))
        if self._fixed is not None and needed != self._fixed:
            bad = [i for i, (a, b) in enumerate(zip(highs, self._fixed, strict=True)) if a > b]
            raise fail(names[bad[0]], _outside(labels[bad[0]], highs[bad[0]],
                                               self._fixed[bad[0]]),
                       "Enlarge shape= or fix the codes")
        check_table_size(needed, names, fix="Re-code each variable to consecutive codes "
                         "0..k-1 with pidkit.estimate.encode or np.unique(x, "
                         "return_inverse=True)[1], or fix shape= to the true alphabet sizes")
        cols = [c.long() for c in cols] if use_torch else [c.astype(np.int64, copy=False)
                                                           for c in cols]
        flat = cols[0]
        for c, k in zip(cols[1:], needed[1:], strict=True):
            flat = flat * k + c
        size = math.prod(needed)
        batch = get_namespace(flat).bincount(flat, minlength=size).reshape(needed)
        if self._state is None:
            self._state = batch if self._fixed is None else _padded(batch, self._fixed)
        else:
            self._state = self._grown(needed)
            self._state += batch
        self._labels = labels
        return self

    def _indexed(self, cols: list[Any], names: list[str]
                 ) -> tuple[list[Any], list[dict[Any, int] | None]]:
        """The columns with every column of labels replaced by the labels' indices, new labels
        taking the next indices in sorted order, and the label dicts this batch leaves (new
        dicts: the state is only changed once the whole batch is accepted). A variable keeps
        the kind (labels or integer codes) of its first batch."""
        known = self._labels if self._labels is not None else [None] * len(cols)
        out, labels = [], []
        for c, name, index in zip(cols, names, known, strict=True):
            is_labels = not is_torch(c) and c.dtype.kind in "OUS"
            if self._labels is not None and is_labels != (index is not None):
                held = "integer codes" if index is None else "labels"
                raise fail(name, f"holds {'labels' if is_labels else 'integer codes'} (dtype "
                           f"{c.dtype}), earlier batches held {held}",
                           "Pass each variable in one form in every batch: labels throughout, "
                           "or integer codes throughout", kind=PIDTypeError)
            if not is_labels:
                out.append(c)
                labels.append(None)
                continue
            values, inverse = sorted_labels(c, name)
            index = dict(index or {})
            try:
                for v in values.tolist():
                    index.setdefault(v, len(index))
            except TypeError as exc:           # unhashable objects (lists, ...)
                raise fail(name, f"holds labels that cannot be told apart by value ({exc})",
                           "Use strings or numbers as labels", kind=PIDTypeError) from exc
            out.append(np.array([index[v] for v in values.tolist()],
                                dtype=np.int64)[inverse])
            labels.append(index)
        return out, labels

    def __radd__(self, other: Any) -> JointCounts:
        """``0 + counts``: a copy, so that ``sum(parts)`` merges a list of counts."""
        if isinstance(other, int) and other == 0:
            return self + JointCounts()
        return NotImplemented

    def __add__(self, other: JointCounts) -> JointCounts:
        if not isinstance(other, JointCounts):
            return NotImplemented
        if self._state is None or other._state is None:
            src = other if self._state is None else self
            out = JointCounts(self._fixed or other._fixed)
            out._state = None if src._state is None else src._state * 1
            out._labels = None if src._labels is None else [None if v is None else dict(v)
                                                            for v in src._labels]
            return out
        if is_torch(self._state) != is_torch(other._state):
            raise fail("other", "holds torch counts while these are numpy (or the reverse)",
                       "Merge statistics from the same array library", kind=PIDTypeError)
        if len(self.shape) != len(other.shape):
            raise fail("other", f"has {len(other.shape)} variables, these counts have "
                       f"{len(self.shape)}", "Merge counts of the same variables")
        theirs, labels = other._state, []
        for axis, (mine, their) in enumerate(zip(self._labels, other._labels, strict=True)):
            if (mine is None) != (their is None):
                raise fail("other", f"holds {_variable(axis)} as "
                           f"{'integer codes' if their is None else 'labels'}, these counts "
                           f"as {'integer codes' if mine is None else 'labels'}",
                           "Merge counts that hold each variable in the same form",
                           kind=PIDTypeError)
            merged = None if mine is None else _union([mine, their])
            if merged is not None:
                theirs = _relabelled(theirs, axis, their, merged)
            labels.append(merged)
        shape = tuple(max(a, b) for a, b in zip(self.shape, theirs.shape, strict=True))
        if self._fixed is not None and shape != self._fixed:
            bad = [i for i, (a, b) in enumerate(zip(shape, self._fixed, strict=True)) if a > b]
            raise fail("other", f"holds {shape[bad[0]]} labels of {_variable(bad[0])} with "
                       f"these, more than the fixed size {self._fixed[bad[0]]}",
                       "Enlarge shape=")
        out = JointCounts(self._fixed)
        out._state = self._grown(shape) + _padded(theirs, shape)
        out._labels = labels
        return out

    def all_reduce(self, group: Any = None) -> JointCounts:
        """Sum the counts over every process of ``torch.distributed`` (in place; returns self).

        Without an initialised process group this does nothing: one process already holds the
        global counts. Processes may have seen different alphabet sizes; the table grows to the
        largest. Every process must call it (a collective operation).
        """
        dist = distributed()
        if dist is None:
            return self
        device = comm_device(dist, group, self._state)
        # the shape, then one flag per variable held as labels (max: any process)
        mine = None if self._state is None else (
            list(self.shape) + [float(v is not None) for v in self._labels])
        agreed = [int(k) for k in agree(mine, "counts shape", dist, group, device,
                                        reduce="max")]
        shape, flags = agreed[:len(agreed) // 2], agreed[len(agreed) // 2:]
        labels = None if self._labels is None else list(self._labels)
        if any(flags):
            labels = self._agreed_labels(flags, dist, group)
            for axis, index in enumerate(labels):
                if index is not None:
                    shape[axis] = max(shape[axis], len(index))     # a fixed size may be larger
                    if self._state is not None:
                        self._state = _relabelled(self._state, axis, self._labels[axis], index)
        shape = tuple(shape)
        if self._state is None:
            self._state = np.zeros(shape, dtype=np.int64)
        else:
            self._state = self._grown(shape)
        self._labels = labels if labels is not None else [None] * len(shape)
        self._state = all_reduce_sum(self._state, dist, group, device)
        return self

    def _agreed_labels(self, flags: list[int], dist: Any, group: Any
                       ) -> list[dict[Any, int] | None]:
        """The labels of every variable that some process holds as labels: the union of the
        processes' labels, in rank order (the same on every process; one
        ``all_gather_object``). A variable held as labels on one process and as integer codes
        on another is an error, raised on every process."""
        world = dist.get_world_size(group)
        held = None if self._labels is None else [None if v is None else list(v)
                                                  for v in self._labels]
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, held, group=group)
        out: list[dict[Any, int] | None] = []
        for axis, flag in enumerate(flags):
            if not flag:
                out.append(None)
                continue
            parts = [g[axis] for g in gathered if g is not None]
            if any(p is None for p in parts):
                raise fail("all_reduce", f"{_variable(axis)} is held as labels on one "
                           "process and as integer codes on another",
                           "Pass each variable in one form on every process",
                           kind=PIDTypeError)
            out.append(_union([dict.fromkeys(p) for p in parts]))
        return out

    # -- results -----------------------------------------------------------------------------
    def to_pmf(self) -> np.ndarray:
        """The plug-in pmf ``counts / n_samples`` as float64 numpy, axes (target, sources...)."""
        counts = self.counts
        return counts / counts.sum()

    def pid(self, measure: str = "broja", base: float = 2, **kwargs: Any):
        """PID of the counted samples with bootstrap intervals and shuffle-null p-values:
        :func:`pidkit.estimate.pid_from_counts` on :attr:`counts` (``kwargs``: its keyword
        arguments; a measure's own options such as ``tol`` go in ``measure_options``). A
        constant target gives exact zeros with a warning, as
        :func:`~pidkit.estimate.pid_from_samples` does."""
        import inspect

        from .discrete_route import pid_from_counts

        accepted = set(inspect.signature(pid_from_counts).parameters) - {"counts"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise fail(unknown[0], "is not an argument of JointCounts.pid",
                       f"Arguments: {', '.join(sorted(accepted))}; pass a measure's own options "
                       f"in measure_options, e.g. measure_options={{'{unknown[0]}': ...}}",
                       kind=PIDTypeError)
        return pid_from_counts(self.counts, measure=measure, base=base, **kwargs)

    def __repr__(self) -> str:
        return f"JointCounts(shape={self.shape}, n_samples={self.n_samples})"


def _tensor_codes(cols: list[Any], names: list[str], fix: str
                  ) -> tuple[list[Any], list[int], list[int]]:
    """Torch columns (non-empty) as int64 codes on their device, with the least code and one
    past the largest of each, read in one host read for the whole batch. A float column's
    whole numbers are codes (as :func:`~pidkit.estimate.pid_from_samples` reads them); NaN or
    infinite values, values with a fractional part, and values too large for any table are
    errors naming the column (``fix``: the advice for non-integer values)."""
    import torch

    out, stats = [], []
    for c in cols:
        flags = torch.zeros(3, dtype=torch.int64, device=c.device)
        if c.is_floating_point():
            f = c if c.dtype in (torch.float32, torch.float64) else c.float()   # float8, ...
            finite = torch.isfinite(f)
            whole = finite & (f == torch.round(f))
            big = whole & (f.abs() >= 2.0**62)          # beyond any table; .long() would wrap
            flags = torch.stack([(~finite).any(), (finite & ~whole).any(), big.any()]).long()
            c = torch.where(whole & ~big, f, torch.zeros((), dtype=f.dtype, device=f.device))
        elif c.dtype == torch.uint64:   # its bits as int64: codes of 2**63 or more turn negative
            c = c.view(torch.int64)
            big = c < 0
            flags[2] = big.any()
            c = torch.where(big, torch.zeros((), dtype=c.dtype, device=c.device), c)
        c = c.long()
        out.append(c)
        stats.append(torch.cat([torch.stack([c.min(), c.max()]), flags]))
    values = torch.stack(stats).tolist()                    # the one host read
    for (_, _, nonfinite, fraction, big), name in zip(values, names, strict=True):
        if nonfinite:
            raise fail(name, "contains NaN or infinite values",
                       "Drop or impute those samples before counting")
        if fraction:
            raise fail(name, "holds non-integer values but must be integer codes", fix,
                       kind=PIDTypeError)
        if big:
            raise fail(name, f"holds codes of 2**62 or more, so the joint table would have more "
                       f"than {MAX_TABLE_CELLS:,} cells", "Re-code each variable to "
                       "consecutive codes 0..k-1 with pidkit.estimate.encode")
    return out, [v[0] for v in values], [v[1] + 1 for v in values]


def _variable(axis: int) -> str:
    """The name of the variable of ``axis`` in :meth:`JointCounts.update`'s errors."""
    return "target" if axis == 0 else f"sources[{axis - 1}]"


def _outside(index: dict[Any, int] | None, high: int, size: int) -> str:
    """What is wrong with a variable whose codes or labels do not fit its fixed ``size``."""
    if index is None:
        return f"holds code {high - 1}, outside the fixed size {size}"
    return f"holds {len(index)} distinct labels, more than the fixed size {size}"


def _union(indexes: list[dict[Any, int]]) -> dict[Any, int]:
    """Labels of several label dicts in one: those of the first in their order, then each new
    label of the next ones in theirs."""
    out: dict[Any, int] = {}
    for index in indexes:
        for label in index:
            out.setdefault(label, len(out))
    return out


def _relabelled(state: Any, axis: int, old: dict[Any, int], new: dict[Any, int]) -> Any:
    """``state`` with the rows of ``axis`` indexed by the labels of ``old`` moved to their rows
    in ``new`` (a superset), zero rows for the labels it lacks; the axis has ``len(new)`` rows
    (rows beyond ``old``'s labels, zero padding up to a fixed size, are dropped)."""
    rows = np.array([new[label] for label in old], dtype=np.int64)
    shape = list(state.shape)
    shape[axis] = len(new)
    out = np.zeros(shape, dtype=state.dtype)
    np.moveaxis(out, axis, 0)[rows] = np.moveaxis(state, axis, 0)[:len(old)]
    return out


def _padded(state: Any, shape: tuple[int, ...]) -> Any:
    """``state`` padded with zeros to ``shape`` (element-wise at least its own)."""
    shape = tuple(shape)
    if shape == tuple(int(k) for k in state.shape):
        return state
    out = get_namespace(state).zeros(shape, state, dtype="int64")
    out[tuple(slice(0, int(k)) for k in state.shape)] = state
    return out
