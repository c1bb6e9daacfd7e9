r"""Sums and cross-products: the sufficient statistic of the Gaussian route, batch by batch.

For samples :math:`z_i = (m_i, x_i, y_i) - c` (blocks concatenated, shifted by a fixed vector
:math:`c`) the statistic is :math:`(N, \sum_i z_i, \sum_i z_i z_i^\top)`, accumulated in float64
on columns scaled by powers of two: column :math:`j` is stored as :math:`z_{ij} 2^{-E_j}`, with
:math:`E_j` the binary exponent of the largest :math:`|z_{ij}|` seen so far (raised, and the
stored sums rescaled exactly, when a larger value arrives). Any finite input therefore
accumulates without overflow or underflow (samples of 1e160 or 1e-160), and the factors are
exact, so they change no bit of the sums below. The covariance follows as

.. math::

    \hat\Sigma = \frac{1}{N - \mathrm{ddof}}\Big(\sum_i z_i z_i^\top - N \bar z \bar z^\top\Big),
    \qquad \bar z = \frac{1}{N}\sum_i z_i .

Merging adds the three terms. In exact arithmetic the merged statistic equals the one of the
whole data set; in float64 the sums are equal bit for bit whenever the partial sums are
representable (e.g. integer or dyadic data, tested) and otherwise within the rounding of float64
addition (relative ~1e-16 per batch). Choose ``shift`` near the mean when the data sit far from
the origin, to avoid cancellation in :math:`\sum z z^\top - N \bar z \bar z^\top`.

:meth:`GaussianMoments.pid` is the Gaussian estimator of :mod:`pidkit.estimate.gaussian_route`
(bias-corrected by default, the same numbers as :func:`pidkit.estimate.pid_from_samples` with
``estimator="gaussian"``) applied to the accumulated covariance, without resampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import get_namespace, is_torch
from ..errors import PIDTypeError
from ..validation import as_float_array, check_flag, fail
from ._checks import to_numpy
from ._distributed import agree, all_reduce_sum, comm_device, distributed
from .gaussian_route import exponents, gaussian_from_covariance, times_pow2

__all__ = ["GaussianMoments"]


class GaussianMoments:
    r"""Running :math:`(N, \sum z, \sum z z^\top)` of concatenated blocks, mergeable by ``+``.

    Feed batches with :meth:`update` (numpy arrays or torch tensors on any device; each block
    ``(batch, d_i)`` or ``(batch,)``); the state stays in float64 in the backend and on the
    device of the first batch. For a discrete target pass its one-hot encoding with one column
    dropped (:func:`pidkit.estimate.one_hot` with a fixed ``n_classes``).

    Parameters
    ----------
    shift : array_like, optional
        Vector of length ``sum(dims)`` subtracted from every sample before accumulating (all
        merged statistics must use the same shift).

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
    >>> b = GaussianMoments().update(m[600:], x[600:], y[600:])
    >>> (a + b).dims, (a + b).n_samples, (a + b).to_covariance().shape
    ((1, 1, 1), 1000, (3, 3))
    """

    def __init__(self, shift: Any = None):
        if shift is not None:
            shift = as_float_array(shift, "shift").ravel()
            if not np.isfinite(shift).all():
                raise fail("shift", "contains NaN or infinite values",
                           "Pass a finite vector, e.g. the mean of a first batch")
        self._shift = shift
        self.dims: tuple[int, ...] = ()
        self.n_samples = 0
        self._sum: Any = None
        self._cross: Any = None
        self._exp: np.ndarray | None = None  # per-column power-of-two exponents of the state

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
                b = to_numpy(b, name)
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
            raise fail("update", f"block widths {dims} differ from earlier batches {self.dims}",
                       "Pass the same variables in every batch")
        return out

    def update(self, target: Any, *sources: Any) -> GaussianMoments:
        """Add one batch: ``target`` and every source, one row per sample. Returns ``self``."""
        if not sources:
            raise fail("sources", "none given", "Pass the target and at least one source")
        blocks = self._check_batch([target, *sources])
        xp = get_namespace(*blocks)
        z = xp.concatenate([xp.float64(b) for b in blocks], axis=1)
        dims = tuple(int(b.shape[1]) for b in blocks)
        if self._shift is not None:
            if self._shift.shape[0] != sum(dims):
                raise fail("shift", f"has length {self._shift.shape[0]}, the samples have "
                           f"{sum(dims)} columns", "Pass one shift per column")
            z = z - xp.asarray(self._shift, like=z)
        exp = exponents(z)
        if self._sum is None:
            self.dims = dims
            self._exp = exp
            z = times_pow2(z, -exp)
            self._sum = z.sum(0)
            self._cross = z.T @ z
        else:
            self._rescale(np.maximum(self._exp, exp))
            z = times_pow2(z, -self._exp)
            self._sum = self._sum + z.sum(0)
            self._cross = self._cross + z.T @ z
        self.n_samples += int(z.shape[0])
        return self

    def _rescale(self, exp: np.ndarray) -> None:
        """Express the state in the exponents ``exp >= self._exp`` (exact powers of two)."""
        self._sum, self._cross = _rescaled(self._sum, self._cross, self._exp, exp)
        self._exp = exp

    def __add__(self, other: GaussianMoments) -> GaussianMoments:
        if not isinstance(other, GaussianMoments):
            return NotImplemented
        if not _same_shift(self._shift, other._shift):
            raise fail("other", "was accumulated with a different shift",
                       "Use the same shift for statistics you merge")
        out = GaussianMoments(self._shift)
        if self._sum is None or other._sum is None:
            src = other if self._sum is None else self
            out.dims, out.n_samples = src.dims, src.n_samples
            out._sum = None if src._sum is None else src._sum * 1
            out._cross = None if src._cross is None else src._cross * 1
            out._exp = None if src._exp is None else src._exp.copy()
            return out
        if is_torch(self._sum) != is_torch(other._sum):
            raise fail("other", "holds torch statistics while these are numpy (or the reverse)",
                       "Merge statistics from the same array library", kind=PIDTypeError)
        if self.dims != other.dims:
            raise fail("other", f"has block widths {other.dims}, these have {self.dims}",
                       "Merge statistics of the same variables")
        out.dims, out.n_samples = self.dims, self.n_samples + other.n_samples
        out._exp = np.maximum(self._exp, other._exp)
        sa, ca = _rescaled(self._sum, self._cross, self._exp, out._exp)
        sb, cb = _rescaled(other._sum, other._cross, other._exp, out._exp)
        out._sum = sa + sb
        out._cross = ca + cb
        return out

    def all_reduce(self, group: Any = None) -> GaussianMoments:
        """Sum the statistics over every process of ``torch.distributed`` (in place).

        Without an initialised process group this does nothing. Every process must call it;
        all must use the same block widths and shift.
        """
        dist = distributed()
        if dist is None:
            return self
        device = comm_device(dist, group, self._sum)
        dims = tuple(int(d) for d in agree(None if self._sum is None else list(self.dims),
                                           "dims", dist, group, device))
        if self._shift is not None:
            agree(self._shift.tolist(), "shift", dist, group, device)
        exp = agree(None if self._exp is None else self._exp.tolist(), "scale exponents", dist,
                    group, device, reduce="max")
        exp = np.asarray(exp, dtype=np.int64)
        if self._sum is None:
            width = sum(dims)
            self.dims = dims
            self._sum, self._cross = np.zeros(width), np.zeros((width, width))
            self._exp = exp
        self._rescale(exp)
        n = all_reduce_sum(np.array([self.n_samples], dtype=np.int64), dist, group, device)
        self.n_samples = int(n[0])
        self._sum = all_reduce_sum(self._sum, dist, group, device)
        self._cross = all_reduce_sum(self._cross, dist, group, device)
        return self

    # -- results -----------------------------------------------------------------------------
    @property
    def sum(self) -> np.ndarray:
        """:math:`\\sum_i z_i` (shifted), float64 numpy (infinite where it exceeds float64)."""
        return _unscaled(self._scaled_sum(), self._exp)

    @property
    def cross(self) -> np.ndarray:
        """:math:`\\sum_i z_i z_i^\\top` (shifted), float64 numpy (infinite where it exceeds
        float64)."""
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
        return mean if self._shift is None else mean + self._shift

    def _scaled_covariance(self, ddof: int) -> np.ndarray:
        n = self.n_samples
        if n - ddof <= 0:
            raise fail("ddof", f"leaves no degrees of freedom with {n} samples",
                       "Accumulate more samples or lower ddof", ddof)
        mean = self._scaled_sum() / n
        cov = (self._scaled_cross() - n * np.outer(mean, mean)) / (n - ddof)
        return (cov + cov.T) / 2

    def to_covariance(self, ddof: int = 0) -> np.ndarray:
        """Sample covariance, blocks ordered (target, sources...); ``ddof=0`` divides by N
        (maximum likelihood), ``ddof=1`` by N - 1. Entries beyond the range of float64 (samples
        of 1e160) are infinite; :meth:`pid` works on the scaled statistic and is not affected."""
        return _unscaled(self._scaled_covariance(ddof), self._exp, self._exp)

    def pid(self, measure: str = "broja", base: float = 2, *, bias_correction: bool = True):
        """Gaussian PID of the accumulated samples (a target and two sources): the estimator of
        :mod:`pidkit.estimate.gaussian_route` (Wishart-bias-corrected unless
        ``bias_correction=False``) on the accumulated covariance, without resampling. The same
        atoms and details as :func:`pidkit.estimate.pid_from_samples` with
        ``estimator="gaussian"``, ``n_boot=0``, ``n_perm=0`` on the same rows."""
        self._require(self._sum)            # no samples: say so, not "has -1 sources"
        if len(self.dims) != 3:
            raise fail("GaussianMoments", f"has {len(self.dims) - 1} sources",
                       "The Gaussian PID takes a target and two sources")
        bias_correction = check_flag(bias_correction, "bias_correction")
        dims = (self.dims[0], self.dims[1], self.dims[2])
        return gaussian_from_covariance(
            self._scaled_covariance(0), self.n_samples, dims, measure=measure, base=base,
            bias_correction=bias_correction,
            details={"estimator": "gaussian", "dims": list(dims), "n_samples": self.n_samples})

    def __repr__(self) -> str:
        return f"GaussianMoments(dims={self.dims}, n_samples={self.n_samples})"


def _same_shift(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


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
