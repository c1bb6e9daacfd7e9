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
from ._checks import as_labels, to_numpy
from ._distributed import agree, all_reduce_sum, comm_device, distributed

__all__ = ["JointCounts"]


class JointCounts:
    r"""Histogram of integer codes ``(target, source_0, ..., source_{n-1})``, mergeable by ``+``.

    Feed batches of codes (numpy arrays or torch tensors on any device) with :meth:`update`;
    codes are non-negative integers, e.g. class labels or the cluster indices returned by
    :meth:`pidkit.estimate.Discretizer.transform`. The table grows when a larger code appears
    unless ``shape`` fixes the alphabet sizes. The state stays in the backend (and on the device)
    of the first batch; mixing numpy and torch batches is an error.

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
    def n_samples(self) -> int:
        return 0 if self._state is None else int(self._state.sum())

    def _zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        return get_namespace(like).zeros(shape, like, dtype="int64")

    def _grown(self, shape: tuple[int, ...]) -> Any:
        """The state padded with zeros to ``shape`` (element-wise at least the current one)."""
        if tuple(shape) == self.shape:
            return self._state
        out = self._zeros(tuple(shape), self._state)
        out[tuple(slice(0, k) for k in self.shape)] = self._state
        return out

    # -- accumulation ------------------------------------------------------------------------
    def update(self, target: Any, *sources: Any) -> JointCounts:
        """Add one batch of codes: ``target`` and every source, shape ``(batch,)`` each.

        Returns ``self`` so calls chain. Codes must be non-negative integers: numpy arrays,
        torch tensors or array-likes such as lists (read as numpy arrays). Numpy floats (and
        lists of floats) are accepted when every value is a whole number (``[0., 1.]``), by
        the rule :func:`~pidkit.estimate.pid_from_samples` applies
        (:func:`pidkit.estimate._checks.as_labels`); a non-integer float is a
        :class:`~pidkit.errors.PIDTypeError` naming the column. Torch tensors, counted on
        their device, must have an integer dtype: checking a float tensor's values would need
        a host synchronisation, so it is refused (pass ``codes.long()``).
        """
        cols = [target, *sources]
        names = ["target"] + [f"sources[{i}]" for i in range(len(sources))]
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
        if self._state is not None and len(cols) != len(self.shape):
            raise fail("update", f"got {len(cols)} variables, earlier batches had "
                       f"{len(self.shape)}", "Pass the same variables in every batch")
        # numpy arrays, tensors and array-likes (lists): typed errors for anything else
        cols = [check_samples(c, name, allow_empty=True) for c, name in zip(cols, names,
                                                                           strict=True)]
        fix = ("Map labels to 0..k-1 (pidkit.estimate.encode) or discretise continuous "
               "samples first (Discretizer)")
        for i, (c, name) in enumerate(zip(cols, names, strict=True)):
            if not use_torch and c.dtype.kind == "f" and c.size:
                # whole-number floats, as pid_from_samples reads them (kept as floats until
                # the range checks below, so 1e20 is a table-size error, not a wrapped int)
                cols[i] = c = as_labels(c, name, "Pass integer codes: m" + fix[1:],
                                        kind=PIDTypeError)
            kind = str(c.dtype) if use_torch else c.dtype.kind
            # numpy floats reaching here are whole numbers (or empty)
            integer = (("int" in kind or kind == "torch.bool") if use_torch
                       else kind in "biuf")
            if not integer:
                raise fail(name, f"must hold integer codes, not dtype {c.dtype}",
                           fix + (" (a float tensor's values are not checked on the device: "
                                  "pass codes.long())" if use_torch else ""),
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
            raise fail(names[bad[0]], f"holds code {highs[bad[0]] - 1}, outside the fixed size "
                       f"{self._fixed[bad[0]]}", "Enlarge shape= or fix the codes")
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
            self._state = batch if self._fixed is None else self._pad(batch, self._fixed)
        else:
            self._state = self._grown(needed)
            self._state += batch
        return self

    def _pad(self, batch: Any, shape: tuple[int, ...]) -> Any:
        out = self._zeros(shape, batch)
        out[tuple(slice(0, k) for k in batch.shape)] = batch
        return out

    def __add__(self, other: JointCounts) -> JointCounts:
        if not isinstance(other, JointCounts):
            return NotImplemented
        if self._state is None or other._state is None:
            src = other if self._state is None else self
            out = JointCounts(self._fixed or other._fixed)
            out._state = None if src._state is None else src._state * 1
            return out
        if is_torch(self._state) != is_torch(other._state):
            raise fail("other", "holds torch counts while these are numpy (or the reverse)",
                       "Merge statistics from the same array library", kind=PIDTypeError)
        if len(self.shape) != len(other.shape):
            raise fail("other", f"has {len(other.shape)} variables, these counts have "
                       f"{len(self.shape)}", "Merge counts of the same variables")
        shape = tuple(max(a, b) for a, b in zip(self.shape, other.shape, strict=True))
        out = JointCounts(self._fixed)
        out._state = self._grown(shape) + other._grown(shape)
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
        ndim_shape = None if self._state is None else list(self.shape)
        shape = tuple(int(k) for k in agree(ndim_shape, "counts shape", dist, group, device,
                                            reduce="max"))
        if self._state is None:
            self._state = np.zeros(shape, dtype=np.int64)
        else:
            self._state = self._grown(shape)
        self._state = all_reduce_sum(self._state, dist, group, device)
        return self

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
