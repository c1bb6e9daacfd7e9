r"""Sums and cross-products: the sufficient statistic of the Gaussian route, batch by batch.

For rows :math:`r_i = (m_i, x_i, y_i)` (blocks concatenated) and a shift vector :math:`c`, the
statistic is :math:`(N, \sum_i z_i, \sum_i z_i z_i^\top)` of the shifted rows
:math:`z_i = r_i - c`, accumulated in float64 on columns scaled by powers of two: column
:math:`j` is stored as :math:`z_{ij} 2^{-E_j}`, with :math:`E_j` at least the binary exponent of
the largest :math:`|z_{ij}|` (raised, and the stored sums rescaled exactly, when a larger value
arrives). Any finite input therefore accumulates without overflow or underflow (samples of
1e160 or 1e-160), and the factors are exact, so they change no bit of the sums below. The
covariance follows as

.. math::

    \hat\Sigma = \frac{1}{N - \mathrm{ddof}}\Big(\sum_i z_i z_i^\top - N \bar z \bar z^\top\Big),
    \qquad \bar z = \frac{1}{N}\sum_i z_i .

**The shift.** Every Gaussian information, hence the PID, is invariant to adding a constant to
any variable, but the difference above is not: it loses about :math:`\log_{10}(\bar z^2 /
\sigma^2)` digits when the data sit far from :math:`c` (relative to their spread
:math:`\sigma`), e.g. all of them for samples :math:`10^7 + \mathcal N(0, 1)` about
:math:`c = 0`. By default (``shift=None``) :math:`c` is therefore chosen from the first
non-empty batch, column by column: the centre of that batch's range,
:math:`(\min + \max)/2`, rounded to a multiple of a power of two :math:`2^k` no larger than
1/256 of the range (a short binary fraction, so that integer or dyadic data stay exact), or the
value itself in a column that is constant in that batch. The shift moves with the data, so the
statistic of :math:`r_i + a` is that of :math:`r_i` (up to the rounding of :math:`r_i + a`
itself) and the PID is invariant to offsets. Since :math:`c` lies in the range of the data,
the relative rounding of a variance is :math:`O(\epsilon (1 + \bar z^2/\sigma^2))`, which is
:math:`O(\epsilon)` for data that do not drift far beyond the range of the first batch and at
worst :math:`O(\epsilon N)` (:math:`\bar z^2 \le \mathrm{range}^2 \le 2 N \sigma^2`). A
column equal to one value in every sample is recognised exactly (its minimum and maximum are
kept) and has variance exactly 0, so :meth:`GaussianMoments.pid` recognises it as constant, as
:func:`pidkit.estimate.pid_from_samples` does (a constant target: zero atoms and a warning; a
constant source: an error naming it).

**Merging.** Statistics about different shifts are re-expressed about one of them: with
:math:`d = c_1 - c_2`, rows about :math:`c_2` are :math:`z + d`, so

.. math::

    S_2 = S_1 + N d, \qquad C_2 = C_1 + d S_1^\top + S_1 d^\top + N d d^\top,

computed in the scaled columns (the exponents raised to cover the new range, so nothing
overflows). The rule for the shift kept by ``a + b``: an explicit ``shift=`` wins (two explicit
shifts must be equal; an explicit and an automatic one give the explicit one, so ``sum`` and
``cross`` stay in the coordinates the user chose; ``GaussianMoments(shift=c) + stat`` therefore
re-expresses ``stat`` about ``c``); between automatic shifts the statistic with more samples
keeps its own (the left one on a tie), so the terms of the conversion scale with the smaller
sample and :math:`d` is of the order of the spread of the data for shards of one distribution.
:meth:`GaussianMoments.all_reduce` applies the same rule across processes (the process with the
most samples, the lowest rank on a tie, gives the shift).

**Exactness.** In exact arithmetic a merged statistic equals the statistic of the whole data set
about the kept shift. In float64, when every shifted sample, product, partial sum and
conversion term is representable (e.g. integer or dyadic data of moderate size: the automatic
shifts are short binary fractions, tested), the merged ``sum`` and ``cross`` are bit for bit
those of the whole data set accumulated in one pass about the same shift
(``GaussianMoments(shift=merged.shift).update(...)``), whatever the grouping and order of the
merges once re-expressed about one shift; statistics about different shifts, and generic data,
agree within the rounding of float64 (relative ~1e-16 per batch or merge, times the factor
above). With one explicit shift throughout, nothing is converted and the sums are exactly
those of the former implementation.

:meth:`GaussianMoments.pid` is the Gaussian estimator of :mod:`pidkit.estimate.gaussian_route`
(bias-corrected by default, the same numbers as :func:`pidkit.estimate.pid_from_samples` with
``estimator="gaussian"``) applied to the accumulated covariance, without resampling.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .._backend import get_namespace, is_torch
from ..errors import PIDTypeError, caller_stacklevel
from ..validation import (
    as_float_array,
    check_aligned,
    check_flag,
    check_int,
    fail,
    reject_meta,
)
from ._checks import refuse_labels, to_numpy
from ._distributed import agree, all_reduce_sum, comm_device, distributed
from .gaussian_route import class_counts, gaussian_from_covariance, label_entropy, times_pow2

__all__ = ["GaussianMoments"]

_GRID_BITS = 8          # the automatic shift is a multiple of 2^k <= range / 2^_GRID_BITS
_HALF_MAX = np.finfo(np.float64).max / 2


#: The advice for labels (strings, objects) passed as the target, or as a source.
_LABELS_FIX = (
    "GaussianMoments reads numbers: pass class labels one-hot encoded, one_hot(codes, "
    "n_classes=k), with codes from one mapping of the labels to 0..k-1 shared by every batch "
    "(encode() of a batch numbers only the labels that batch holds), or count labels with "
    "JointCounts, which reads labels of any kind",
    "GaussianMoments reads numbers: one-hot encode the categories with one mapping of the "
    "labels shared by every batch, or count labels with JointCounts, which reads labels of "
    "any kind")


def _warn_integer_target(target: Any, use_torch: bool) -> None:
    """Warn when the first batch's target is one column of integers (or booleans): read here
    as one continuous variable, while :func:`pidkit.estimate.pid_from_samples` one-hot encodes
    the same labels (``target_encoding="auto"``), which gives other atoms. Looks at the dtype
    only (no host read)."""
    integer = (not (target.dtype.is_floating_point or target.dtype.is_complex) if use_torch
               else target.dtype.kind in "biu")
    if not integer or int(target.shape[1]) != 1:
        return
    warnings.warn("target: integer values are accumulated as one continuous Gaussian variable; "
                  "pid_from_samples(..., estimator='gaussian') one-hot encodes integer labels, "
                  "which gives other atoms. If they are class labels, pass "
                  "one_hot(labels, n_classes=k); pass floats (labels.astype(float)) to keep "
                  "this reading without the warning", UserWarning,
                  stacklevel=caller_stacklevel())


class GaussianMoments:
    r"""Running :math:`(N, \sum z, \sum z z^\top)` of concatenated blocks, mergeable by ``+``.

    Feed batches with :meth:`update` (numpy arrays or torch tensors on any device; each block
    ``(batch, d_i)`` or ``(batch,)``); the state stays in float64 in the backend and on the
    device of the first batch. For a discrete target pass its one-hot encoding with one column
    dropped (:func:`pidkit.estimate.one_hot` with a fixed ``n_classes``). The rows are
    accumulated about a shift :math:`c` (module notes), so that the results do not depend on
    where the data sit: the covariance and the PID are the same (within float64 rounding) for
    the samples and for the samples plus any constant.

    Parameters
    ----------
    shift : array_like, optional
        Vector of length ``sum(dims)`` subtracted from every sample before accumulating. By
        default it is chosen automatically from the first batch (the centre of each column's
        range, rounded to a short binary fraction), which is what you want; pass one only to
        fix the coordinates of :attr:`sum` and :attr:`cross`. Statistics with different
        automatic shifts merge (one is re-expressed about the other's shift); an explicit shift
        wins over an automatic one in a merge; two explicit shifts must be equal.

    Attributes
    ----------
    dims : tuple of int
        Width of each block (target first).
    n_samples : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m, x, y = rng.normal(size=(3, 1000, 1))
    >>> a = GaussianMoments().update(m[:600], x[:600], y[:600])
    >>> b = GaussianMoments().update(m[600:] + 1e7, x[600:], y[600:])
    >>> (a + b).dims, (a + b).n_samples, (a + b).to_covariance().shape
    ((1, 1, 1), 1000, (3, 3))
    """

    def __init__(self, shift: Any = None):
        if shift is not None:
            shift = as_float_array(shift, "shift", "shifts, one per column").ravel()
            if not np.isfinite(shift).all():
                raise fail("shift", "contains NaN or infinite values",
                           "Pass a finite vector, e.g. the mean of a first batch")
            shift = shift.astype(np.float64, copy=True)
        self._shift: np.ndarray | None = shift
        self._fixed = shift is not None     # an explicit (user-given) shift
        self.dims: tuple[int, ...] = ()
        self.n_samples = 0
        self._sum: Any = None
        self._cross: Any = None
        self._exp: np.ndarray | None = None  # per-column power-of-two exponents of the state
        self._lo: np.ndarray | None = None   # per-column minimum and maximum of the samples
        self._hi: np.ndarray | None = None
        self._shift_on_device: Any = None    # the shift as an array beside the state (a cache)

    def _check_batch(self, blocks: list[Any]) -> list[Any]:
        torch_in = {is_torch(b) for b in blocks}
        if len(torch_in) > 1:
            raise fail("update", "mixes numpy arrays and torch tensors",
                       "Pass every block in the same array library", kind=PIDTypeError)
        use_torch = torch_in.pop()
        if self._sum is not None and is_torch(self._sum) != use_torch:
            raise fail("update", "switches between numpy and torch batches",
                       "Keep one array library per GaussianMoments", kind=PIDTypeError)
        out = []
        for i, b in enumerate(blocks):
            name = "target" if i == 0 else f"sources[{i - 1}]"
            if not use_torch:
                refuse_labels(b, name, _LABELS_FIX[min(i, 1)])
                b = to_numpy(b, name)
            reject_meta(b, name)
            if b.dtype.is_complex if use_torch else b.dtype.kind not in "biuf":
                raise fail(name, f"must hold real numbers, not {b.dtype}",
                           "Pass a real-valued array", kind=PIDTypeError)
            b = b.reshape(b.shape[0], -1)
            xp = get_namespace(b)
            if not xp.all(xp.isfinite(b)):
                raise fail(name, "contains NaN or infinite values",
                           "Drop or impute those samples before accumulating")
            out.append(b)
        if len({int(b.shape[0]) for b in out}) > 1:
            raise fail("update", f"blocks have different lengths {[int(b.shape[0]) for b in out]}",
                       "Pass one row per sample for every block")
        dims = tuple(int(b.shape[1]) for b in out)
        if self.dims and dims != self.dims:
            fix = "Pass the same variables in every batch"
            if dims[0] != self.dims[0]:
                fix += (" (a one-hot target: one_hot(labels, n_classes=k) with the same k in "
                        "every batch, since a batch may miss a class)")
            raise fail("update", f"block widths {dims} differ from earlier batches {self.dims}",
                       fix)
        if not self.dims:
            _warn_integer_target(out[0], use_torch)
        return out

    def update(self, target: Any, *sources: Any) -> GaussianMoments:
        """Add one batch: ``target`` and every source, one row per sample. Returns ``self``.

        One small host read per batch (the column minima and maxima, which give the scale
        exponents and, on the first batch, the automatic shift); the sums stay on the device.
        """
        if not sources:
            raise fail("sources", "none given", "Pass the target and at least one source")
        check_aligned([target, *sources],
                      ["target"] + [f"sources[{i}]" for i in range(len(sources))])
        blocks = self._check_batch([target, *sources])
        xp = get_namespace(*blocks)
        r = xp.concatenate([xp.float64(b) for b in blocks], axis=1)
        dims = tuple(int(b.shape[1]) for b in blocks)
        if self._shift is not None and self._shift.shape[0] != sum(dims):
            raise fail("shift", f"has length {self._shift.shape[0]}, the samples have "
                       f"{sum(dims)} columns", "Pass one shift per column")
        if int(r.shape[0]) == 0:
            return self
        width = int(r.shape[1])
        host = xp.to_numpy(xp.concatenate([xp.min(r, axis=0), xp.max(r, axis=0)]))
        lo, hi = host[:width].astype(np.float64), host[width:].astype(np.float64)
        if self._shift is None:
            self._shift = _auto_shift(lo, hi)
        reach = _reach(lo, hi, self._shift)        # max |r - c| / 2 per column
        exp = _exponent(reach, 1)
        new = exp if self._sum is None else np.maximum(self._exp, exp)
        if self._shift_on_device is None:        # copied to the device once, not per batch
            self._shift_on_device = xp.asarray(self._shift, like=r)
        shift = self._shift_on_device
        if (reach <= _HALF_MAX).all():
            z = times_pow2(r - shift, -new)
        else:                                      # r - c overflows: subtract halves
            z = times_pow2(r * 0.5 - shift * 0.5, 1 - new)
        if self._sum is None:
            self.dims, self._exp, self._lo, self._hi = dims, new, lo, hi
            self._sum = z.sum(0)
            self._cross = z.T @ z
        else:
            self._rescale(new)
            self._lo, self._hi = np.minimum(self._lo, lo), np.maximum(self._hi, hi)
            self._sum = self._sum + z.sum(0)
            self._cross = self._cross + z.T @ z
        self.n_samples += int(r.shape[0])
        return self

    def _rescale(self, exp: np.ndarray) -> None:
        """Express the state in the exponents ``exp >= self._exp`` (exact powers of two)."""
        self._sum, self._cross = _rescaled(self._sum, self._cross, self._exp, exp)
        self._exp = exp

    def _reshift(self, shift: np.ndarray) -> None:
        """Re-express the state about ``shift`` (module notes): with :math:`d = c - c'`,
        :math:`S' = S + N d`, :math:`C' = C + d S^\\top + S d^\\top + N d d^\\top`, in scaled
        columns whose exponents cover the new range (no overflow)."""
        old = self._shift
        if old is not None and np.array_equal(old, shift):
            return
        self._shift_on_device = None
        if self._sum is None or old is None:
            self._shift = shift.copy()
            return
        exp = np.maximum(self._exp, _exponent(_reach(self._lo, self._hi, shift), 1))
        self._rescale(exp)
        # d / 2^exp, from halves so that c - c' cannot overflow (|d| <= 2 * 2^exp)
        d = np.ldexp(old * 0.5 - shift * 0.5, 1 - exp)
        xp = get_namespace(self._sum)
        n = float(self.n_samples)
        both = xp.asarray(np.stack([d, n * d]), like=self._sum)   # one copy to the device
        dv, ndv = both[0], both[1]
        outer = dv[:, None] * self._sum[None, :]
        self._cross = self._cross + (outer + outer.T) + ndv[:, None] * dv[None, :]
        self._sum = self._sum + ndv
        self._shift = shift.copy()

    def _copy(self) -> GaussianMoments:
        out = GaussianMoments()
        out._shift = None if self._shift is None else self._shift.copy()
        out._fixed = self._fixed
        out.dims, out.n_samples = self.dims, self.n_samples
        if self._sum is not None:
            out._sum, out._cross = self._sum * 1, self._cross * 1
            out._exp, out._lo, out._hi = self._exp.copy(), self._lo.copy(), self._hi.copy()
        return out

    def __radd__(self, other: Any) -> GaussianMoments:
        """``0 + moments``: a copy, so that ``sum(parts)`` merges a list of statistics."""
        if isinstance(other, int) and other == 0:
            return self + GaussianMoments()
        return NotImplemented

    def __add__(self, other: GaussianMoments) -> GaussianMoments:
        if not isinstance(other, GaussianMoments):
            return NotImplemented
        if self._fixed and other._fixed and not _same_shift(self._shift, other._shift):
            raise fail("other", "was accumulated with a different explicit shift",
                       "Use the same shift= for statistics you merge, or leave shift=None "
                       "(automatic shifts merge)")
        if self._sum is not None and other._sum is not None:
            if is_torch(self._sum) != is_torch(other._sum):
                raise fail("other", "holds torch statistics while these are numpy (or the "
                           "reverse)", "Merge statistics from the same array library",
                           kind=PIDTypeError)
            if self.dims != other.dims:
                raise fail("other", f"has block widths {other.dims}, these have {self.dims}",
                           "Merge statistics of the same variables")
        keep = _kept(self, other)
        for side in (self, other):
            if side._sum is not None and keep._shift is not None \
                    and keep._shift.shape[0] != sum(side.dims):
                raise fail("shift", f"has length {keep._shift.shape[0]}, the samples have "
                           f"{sum(side.dims)} columns", "Pass one shift per column")
        a, b = self._copy(), other._copy()
        a._fixed = b._fixed = self._fixed or other._fixed
        if keep._shift is not None:
            a._reshift(keep._shift)
            b._reshift(keep._shift)
        if a._sum is None or b._sum is None:
            return b if a._sum is None else a
        out = a
        out.n_samples = a.n_samples + b.n_samples
        exp = np.maximum(a._exp, b._exp)
        a._rescale(exp)
        sb, cb = _rescaled(b._sum, b._cross, b._exp, exp)
        out._sum = a._sum + sb
        out._cross = a._cross + cb
        out._lo, out._hi = np.minimum(a._lo, b._lo), np.maximum(a._hi, b._hi)
        return out

    def all_reduce(self, group: Any = None) -> GaussianMoments:
        """Sum the statistics over every process of ``torch.distributed`` (in place).

        Without an initialised process group this does nothing. Every process must call it
        and all must use the same block widths. The processes agree on one shift first, by the
        rule of ``+`` (module notes): an explicit ``shift=`` if any process has one (those that
        do must have the same), otherwise the automatic shift of the process with the most
        samples (the lowest rank on a tie); each process re-expresses its sums about it, then
        the sums are added.
        """
        dist = distributed()
        if dist is None:
            return self
        device = comm_device(dist, group, self._sum)
        dims = tuple(int(d) for d in agree(None if self._sum is None else list(self.dims),
                                           "dims", dist, group, device))
        if not dims:                               # no process has samples
            return self
        width = sum(dims)
        fixed = agree([float(self._fixed)], "explicit shift", dist, group, device,
                      reduce="max")[0] > 0
        if fixed:
            shift = np.asarray(agree(self._shift.tolist() if self._fixed else None, "shift",
                                     dist, group, device), dtype=np.float64)
        else:
            n_max = agree([float(self.n_samples)], "sample count", dist, group, device,
                          reduce="max")[0]
            rank, world = dist.get_rank(group), dist.get_world_size(group)
            mine = rank if self._sum is not None and self.n_samples == n_max else world
            root = -agree([-float(mine)], "root", dist, group, device, reduce="max")[0]
            pick = self._shift if rank == root else np.zeros(width)
            shift = np.asarray(all_reduce_sum(np.asarray(pick, dtype=np.float64), dist, group,
                                              device), dtype=np.float64)
        if shift.shape[0] != width:
            raise fail("shift", f"has length {shift.shape[0]}, the samples have {width} "
                       "columns", "Pass one shift per column")
        self._fixed = fixed
        self._reshift(shift)
        have = self._sum is not None
        hi = agree(self._hi.tolist() if have else None, "column maxima", dist, group, device,
                   reduce="max")
        neg_lo = agree((-self._lo).tolist() if have else None, "column minima", dist, group,
                       device, reduce="max")
        exp = agree(self._exp.tolist() if have else None, "scale exponents", dist, group,
                    device, reduce="max")
        exp = np.asarray(exp, dtype=np.int64)
        if not have:
            self.dims = dims
            self._sum, self._cross = np.zeros(width), np.zeros((width, width))
            self._exp = exp
        self._lo = -np.asarray(neg_lo, dtype=np.float64)
        self._hi = np.asarray(hi, dtype=np.float64)
        self._rescale(exp)
        n = all_reduce_sum(np.array([self.n_samples], dtype=np.int64), dist, group, device)
        self.n_samples = int(n[0])
        self._sum = all_reduce_sum(self._sum, dist, group, device)
        self._cross = all_reduce_sum(self._cross, dist, group, device)
        return self

    # -- results -----------------------------------------------------------------------------
    @property
    def shift(self) -> np.ndarray | None:
        """The shift :math:`c` the sums are taken about (float64 numpy; ``None`` before the
        first batch when chosen automatically). It may change when statistics are merged with
        ``+`` or :meth:`all_reduce`; :attr:`sum` and :attr:`cross` change with it."""
        return None if self._shift is None else self._shift.copy()

    @property
    def sum(self) -> np.ndarray:
        """:math:`\\sum_i (r_i - c)` about :attr:`shift` :math:`c`, float64 numpy (infinite
        where it exceeds float64)."""
        return _unscaled(self._scaled_sum(), self._exp)

    @property
    def cross(self) -> np.ndarray:
        """:math:`\\sum_i (r_i - c)(r_i - c)^\\top` about :attr:`shift` :math:`c`, float64
        numpy (infinite where it exceeds float64)."""
        return _unscaled(self._scaled_cross(), self._exp, self._exp)

    def _scaled_sum(self) -> np.ndarray:
        return to_numpy(self._require(self._sum), "sum").astype(np.float64, copy=True)

    def _scaled_cross(self) -> np.ndarray:
        return to_numpy(self._require(self._cross), "cross").astype(np.float64, copy=True)

    def _require(self, value: Any) -> Any:
        if value is None:
            raise fail("GaussianMoments", "has no samples yet", "Call update(...) first")
        return value

    def to_mean(self) -> np.ndarray:
        """Sample mean (in the original, unshifted coordinates)."""
        mean = _unscaled(self._scaled_sum()[None] / self.n_samples, self._exp)[0]
        return mean + self._shift

    def _scaled_covariance(self, ddof: int) -> np.ndarray:
        n = self.n_samples
        if n - ddof <= 0:
            raise fail("ddof", f"leaves no degrees of freedom with {n} samples",
                       "Accumulate more samples or lower ddof", ddof)
        mean = self._scaled_sum() / n
        cov = (self._scaled_cross() - n * np.outer(mean, mean)) / (n - ddof)
        cov = (cov + cov.T) / 2
        const = self._lo == self._hi               # one value in every sample: exactly 0
        cov[const, :] = 0.0
        cov[:, const] = 0.0
        return cov

    def to_covariance(self, ddof: int = 0) -> np.ndarray:
        """Sample covariance, blocks ordered (target, sources...); ``ddof=0`` divides by N
        (maximum likelihood), ``ddof=1`` by N - 1. Entries beyond the range of float64 (samples
        of 1e160) are infinite; :meth:`pid` works on the scaled statistic and is not affected.
        The rows and columns of a variable with one value in every sample are exactly 0."""
        ddof = check_int(ddof, "ddof", 0)      # ddof="a" was a bare TypeError, True read as 1
        return _unscaled(self._scaled_covariance(ddof), self._exp, self._exp)

    def pid(self, measure: str = "broja", base: float = 2, *, bias_correction: bool = True):
        """Gaussian PID of the accumulated samples (a target and two sources): the estimator of
        :mod:`pidkit.estimate.gaussian_route` (Wishart-bias-corrected unless
        ``bias_correction=False``) on the accumulated covariance, without resampling. The same
        atoms and details as :func:`pidkit.estimate.pid_from_samples` with
        ``estimator="gaussian"``, ``n_boot=0``, ``n_perm=0`` on the same rows, whatever
        constant is added to any variable. A constant target (one value in every sample, every
        column) gives exact zeros with a warning, as on every route; a constant source is an
        error naming its argument (``sources[i]``), as on the batch Gaussian route.

        A one-hot target (0/1 columns, at most one 1 per row: :func:`~pidkit.estimate.one_hot`
        of class labels, found exactly from the statistic) is class labels, whose entropy
        :math:`H(Y)` bounds every information about them: ``details["label_entropy"]`` holds
        it, with the warning of the batch route where the Gaussian :math:`I(Y;X_0,X_1)`
        exceeds it (:func:`~pidkit.estimate.gaussian_route.label_entropy`). The sums are exact
        for 0/1 data about the automatic shift; about an explicit shift that is not a short
        binary fraction they carry rounding, and a one-hot target is then not recognised (no
        ``label_entropy``)."""
        self._require(self._sum)            # no samples: say so, not "has -1 sources"
        if len(self.dims) != 3:
            raise fail("GaussianMoments", f"has {len(self.dims) - 1} sources",
                       "The Gaussian PID takes a target and two sources")
        bias_correction = check_flag(bias_correction, "bias_correction")
        dims = (self.dims[0], self.dims[1], self.dims[2])
        result = gaussian_from_covariance(
            self._scaled_covariance(0), self.n_samples, dims, measure=measure, base=base,
            bias_correction=bias_correction,
            details={"estimator": "gaussian", "dims": list(dims), "n_samples": self.n_samples})
        counts = self._class_counts()
        if counts is not None:
            result.details["label_entropy"] = label_entropy(
                counts, float(result.mutual_information) * math.log(result.base), result.base,
                "target")
        return result

    def _class_counts(self) -> np.ndarray | None:
        """The class counts of a one-hot target block, from the statistic (the sums about the
        shift re-expressed about 0, exact for 0/1 data about the automatic shifts, which are 0,
        1/2 or 1 there), or None when the target is not one-hot
        (:func:`~pidkit.estimate.gaussian_route.class_counts`)."""
        d, n = self.dims[0], self.n_samples

        def sums() -> tuple[np.ndarray, np.ndarray]:
            c, total, cross = self._shift[:d], self.sum[:d], self.cross[:d, :d]
            outer = np.outer(c, total)
            return total + n * c, cross + outer + outer.T + n * np.outer(c, c)

        return class_counts(self._lo[:d], self._hi[:d], sums, n)

    def __repr__(self) -> str:
        return f"GaussianMoments(dims={self.dims}, n_samples={self.n_samples})"


def _same_shift(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _kept(a: GaussianMoments, b: GaussianMoments) -> GaussianMoments:
    """The operand of ``a + b`` whose shift the sum keeps (module notes): an explicit shift,
    else the automatic shift of the one with more samples, ``a`` on a tie or when neither has
    a shift yet."""
    if a._fixed or b._fixed:
        return a if a._fixed else b
    if a._shift is None or b._shift is None:
        return b if a._shift is None else a
    return b if b.n_samples > a.n_samples else a


def _exponent(half: np.ndarray, extra: int = 0) -> np.ndarray:
    """Binary exponents ``e`` with ``half`` in :math:`[2^{e-1}, 2^e)` (``numpy.frexp``), plus
    ``extra``; 0 where ``half`` is 0."""
    _, e = np.frexp(half)
    return np.where(half > 0, e + extra, 0).astype(np.int64)


def _reach(lo: np.ndarray, hi: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Half the largest :math:`|r - c|` over samples in ``[lo, hi]`` (in halves: no overflow;
    rounding is monotonic, so this is half the largest computed :math:`|r - c|` exactly,
    normal numbers assumed)."""
    return np.maximum(hi * 0.5 - shift * 0.5, shift * 0.5 - lo * 0.5)


def _auto_shift(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The automatic shift from a first batch's column minima and maxima: the centre of the
    range rounded to a multiple of :math:`2^k \\le` range / 2^_GRID_BITS (a short binary
    fraction), or the value itself in a column constant in the batch."""
    centre = lo * 0.5 + hi * 0.5
    half_range = hi * 0.5 - lo * 0.5
    k = _exponent(half_range, -_GRID_BITS)         # 2^k <= (hi - lo) / 2^_GRID_BITS
    with np.errstate(over="ignore", under="ignore"):
        grid = np.ldexp(np.rint(np.ldexp(centre, -k)), k)
    grid = np.clip(grid, lo, hi)                   # stays inside the range (and finite)
    return np.where(half_range > 0, grid, lo)


def _rescaled(total: Any, cross: Any, old: np.ndarray, new: np.ndarray) -> tuple[Any, Any]:
    """Sums stored in exponents ``old`` re-expressed in exponents ``new`` (exact)."""
    k = old - new
    if not k.any():
        return total, cross
    total = times_pow2(total[None], k)[0]
    cross = times_pow2(times_pow2(cross, k).T, k).T
    return total, cross


def _unscaled(a: np.ndarray, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """Scaled statistics back in the original units: columns times :math:`2^{E}` (and rows,
    for a matrix)."""
    with np.errstate(over="ignore"):
        out = times_pow2(a if a.ndim == 2 else a[None], rows)
        if cols is not None:
            out = times_pow2(out.T, cols).T
    return out if a.ndim == 2 else out[0]
