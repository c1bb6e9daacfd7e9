r"""Scaling and PCA of high-dimensional samples, fitted once and applied in chunks.

A fitted :class:`Projector` maps a sample :math:`x \in \mathbb{R}^D` (trailing axes flattened) to

.. math::

    z = W^\top (s(x) - \mu) \in \mathbb{R}^k,

with :math:`s` the scaling (``"l2"``: :math:`x / \lVert x \rVert_2`, a zero row stays zero;
``"standard"``: per-feature :math:`(x - m) / \sigma`, features of zero spread left unscaled;
``None``: identity), :math:`\mu` the mean of the scaled fitting data and :math:`W` its top
:math:`k` principal axes (``n_components=None`` skips the PCA).

Both scalings are diagonal, :math:`s(X) = R\,(X - \mathbf 1 m^\top)\,C` (row scales :math:`R`,
column scales :math:`C`), so the centred, scaled data :math:`X_c = s(X) - \mathbf 1 \mu^\top`
never has to be formed: products with it are

.. math::

    X_c V = R\,X\,(C V) - \mathbf 1 (\mu' ^\top V), \qquad
    X_c^\top U = C\,X^\top (R U) - \mu'' (\mathbf 1^\top U),

one BLAS call on the caller's array each (no copy of a large input, which keeps its dtype).
The principal axes come from

- ``"randomized"``: a randomized range finder with power iterations (Halko, Martinsson, Tropp
  2011, algorithms 4.3-4.4 and 5.1): :math:`Y = X_c\Omega` for a Gaussian :math:`\Omega` with
  :math:`k + 10` columns, ``n_iter`` rounds of re-orthonormalised :math:`Y \leftarrow X_c X_c^\top
  Y`, then the SVD of the small :math:`Q^\top X_c`. ``n_iter="auto"`` is 4, :math:`2\,n_{iter}
  + 2 = 10` passes over the data (scikit-learn takes 7 when :math:`k < 0.1\min(n, D)`; on the
  audit benchmark's 10,000 x 4,096 features the top-9 axes, those above the noise floor, lie
  within a principal angle of :math:`4\cdot 10^{-6}` of the exact ones after 4, against
  :math:`10^{-7}` after 7, far below what changes a KMeans code).
- ``"covariance"``: the exact eigenvectors of :math:`X_c^\top X_c`, formed with one BLAS call
  (:math:`O(nD^2)`; for :math:`D` up to a few thousand it is the faster exact route).
- ``"auto"`` (default): ``"covariance"`` when :math:`D \le 1024` or :math:`k \ge 0.8\min(n, D)`,
  else ``"randomized"``.

Squares of the raw values never decide a scale: where they would overflow or underflow the
working dtype (magnitudes beyond :math:`2^{\pm m/4}`, ``m`` the dtype's largest binary exponent:
about :math:`10^{\pm 77}` in float64, :math:`4 \cdot 10^{\pm 9}` in float32), the row norms of
``"l2"`` and the means and spreads of ``"standard"`` are computed on the values multiplied by a
power of two (exact), and ``None`` folds one power of two into the row scales :math:`R`, so the
output is that of the data in other units, which the estimators downstream are invariant to
(:func:`power_of_two_scale`). Data in the safe range, the usual case, are not touched.

The transform folds the scaling into the projection, :math:`z = R(XC W) - \mathrm{const}`, in
chunks of ``chunk_size`` rows, in the working dtype: the input's floating dtype unless
``dtype`` is given (float32 network features stay float32). The randomized solver and the
transform run with one BLAS thread (:mod:`pidkit._threads`: their thin products are
memory-bound, and BLAS threads only slow them on a shared machine).

References
----------
N. Halko, P. G. Martinsson, J. A. Tropp, "Finding structure with randomness: probabilistic
algorithms for constructing approximate matrix decompositions", SIAM Review 53 (2011).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._threads import one_blas_thread
from ..errors import PIDValueError
from ..validation import check_choice, check_int, check_seed, fail
from ._checks import check_finite, rows

__all__ = ["Projector", "SCALINGS", "PCA_SOLVERS", "working_dtype"]

SCALINGS = ("l2", "standard", None)

#: PCA solvers of :class:`Projector`.
PCA_SOLVERS = ("auto", "randomized", "covariance")

#: Power iterations of the randomized solver when ``n_iter="auto"``.
AUTO_POWER_ITERATIONS = 4

#: Widest input for which ``pca_solver="auto"`` forms the covariance matrix.
COVARIANCE_MAX_FEATURES = 1024


#: Largest ``random_state`` (scikit-learn's estimators take seeds in ``[0, 2**32 - 1]``).
SEED_MAX = 2**32 - 1


def power_of_two_scale(magnitude: Any, dtype: Any) -> Any:
    """``2**-e`` for each ``magnitude = f 2**e`` (``0.5 <= f < 1``) outside the range where
    squares of values of that size neither overflow nor underflow ``dtype``,
    ``2**(-m/4) <= magnitude <= 2**(m/4)`` (``m = finfo(dtype).maxexp``), else 1 (float64; 1
    for a magnitude of 0). Multiplying by it is exact and brings the magnitude to [0.5, 1)."""
    magnitude = np.asarray(magnitude, dtype=np.float64)
    exponent = np.frexp(magnitude)[1]
    unsafe = (magnitude > 0) & (np.abs(exponent) > np.finfo(dtype).maxexp // 4)
    return np.where(unsafe, np.ldexp(1.0, -exponent), 1.0)


def _largest_magnitude(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``max |x|`` along ``axis`` (float64), from the maximum and the minimum: no temporary
    array of ``x``'s size."""
    return np.maximum(np.abs(x.max(axis=axis).astype(np.float64)),
                      np.abs(x.min(axis=axis).astype(np.float64)))


def check_dtype(dtype: Any) -> None:
    """``dtype`` must be None or a floating numpy dtype (a name such as ``"float32"``)."""
    if dtype is None:
        return
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = None
    if kind != "f":
        raise fail("dtype", "must be a floating dtype or None",
                   "Use 'float32', 'float64', or None to keep the input's dtype", dtype)


def working_dtype(dtype: Any, data: np.ndarray) -> np.dtype:
    """The dtype computations run in: ``dtype`` if given, else the data's floating dtype
    (float32 and float64 kept; float16 widened to float32; integers to float64)."""
    if dtype is not None:
        return np.dtype(dtype)
    if data.dtype == np.float16:
        return np.dtype(np.float32)
    return data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)


class Projector:
    """Scaling followed by PCA, fitted once and reusable on new data (e.g. a test split).

    Parameters
    ----------
    n_components : int or None, default 10
        Number of principal components kept (None: no PCA).
    scaling : {"l2", "standard", None}, default "l2"
        Per-sample L2 normalisation (as in the paper's audit), per-feature standardisation, or
        none.
    pca_solver : {"auto", "randomized", "covariance"}, default "auto"
        How the principal axes are computed (see the module notes).
    n_iter : int or "auto", default "auto"
        Power iterations of the randomized solver.
    dtype : str or None, default None
        Working precision; None keeps the input's floating dtype (float32 features stay float32).
    chunk_size : int, default 65536
        Rows per chunk in :meth:`transform`.
    random_state : int or None
        Seed of the randomized solver, in ``[0, 2**32 - 1]``.

    Attributes
    ----------
    dtype_ : numpy.dtype
        The working dtype chosen at fit.
    mean_, components_ : ndarray
        :math:`\\mu` ``(D,)`` and :math:`W^\\top` ``(k, D)`` in ``dtype_``.
    explained_variance_ratio_ : ndarray ``(k,)``

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 50)).astype(np.float32)
    >>> p = Projector(3, random_state=0).fit(x)
    >>> z = p.transform(x)
    >>> z.shape, z.dtype
    ((200, 3), dtype('float32'))
    """

    def __init__(self, n_components: int | None = 10, *, scaling: str | None = "l2",
                 pca_solver: str = "auto", n_iter: int | str = "auto",
                 dtype: str | None = None, chunk_size: int = 65536,
                 random_state: int | None = None):
        self.n_components = n_components
        self.scaling = scaling
        self.pca_solver = pca_solver
        self.n_iter = n_iter
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.n_components is not None:
            check_int(self.n_components, "n_components", 1)
        check_choice(self.scaling, "scaling", SCALINGS, exact=True, what="scaling",
                     fix="Use 'l2', 'standard' or None")
        check_choice(self.pca_solver, "pca_solver", PCA_SOLVERS, exact=True, what="PCA solver")
        if not (isinstance(self.n_iter, str) and self.n_iter == "auto"):
            check_int(self.n_iter, "n_iter", 0)
        check_int(self.chunk_size, "chunk_size", 1)
        check_dtype(self.dtype)
        check_seed(self.random_state, "random_state", maximum=SEED_MAX)

    # -- the implicit operator X_c = R (X - 1 m^T) C - 1 mu^T -------------------------------------
    def _row_scales(self, x: np.ndarray) -> np.ndarray | None:
        """Per-row factors of the scaling (``1/||x||`` for "l2"; for None the power of two
        ``unit_`` chosen at fit where the data's magnitude needs one), or None."""
        if self.scaling is None:
            return None if self.unit_ == 1 else np.full(x.shape[0], self.unit_, self.dtype_)
        if self.scaling != "l2":
            return None
        norm = self._row_norms(x)
        return (1 / np.where(norm > 0, norm, 1)).astype(self.dtype_)

    def _row_norms(self, x: np.ndarray) -> np.ndarray:
        """Euclidean norms of the rows of ``x``; rows whose sum of squares overflowed or
        underflowed (:func:`power_of_two_scale`) are recomputed scaled by a power of two."""
        norm = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=self.dtype_))
        info = np.finfo(self.dtype_)
        suspect = np.flatnonzero(~np.isfinite(norm) | (norm < np.sqrt(info.tiny / info.eps)))
        if suspect.size:
            factor = power_of_two_scale(_largest_magnitude(x[suspect], 1), self.dtype_)
            scaled = x[suspect] * factor.astype(self.dtype_)[:, None]
            norm[suspect] = np.sqrt(np.einsum("ij,ij->i", scaled, scaled,
                                              dtype=self.dtype_)) / factor
        return norm

    def _matmul(self, x: np.ndarray, r: np.ndarray | None, v: np.ndarray) -> np.ndarray:
        """:math:`s(X) V` for a chunk ``x`` with row scales ``r`` (before centring)."""
        if self.scaling == "standard":
            out = x @ (v * self.scale_inv_[:, None]) - (self.center_ * self.scale_inv_) @ v
        else:
            out = x @ v
        if r is not None:
            out *= r[:, None]
        return out

    def _rmatmul(self, x: np.ndarray, r: np.ndarray | None, u: np.ndarray) -> np.ndarray:
        """:math:`s(X)^\\top U` (before centring)."""
        out = x.T @ (u if r is None else u * r[:, None])
        if self.scaling == "standard":
            out = (out - np.outer(self.center_, u.sum(axis=0))) * self.scale_inv_[:, None]
        return out

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, x: Any, name: str = "X") -> Projector:
        """Fit on samples ``x`` of shape ``(n, ...)`` (trailing axes are flattened). ``x`` is
        read, never copied or modified (except a dtype conversion when ``dtype`` differs)."""
        self._check_params()
        arr = rows(x, name)
        if arr.shape[1] == 0:
            raise fail(name, "has zero features per sample", "Pass at least one feature",
                       arr.shape)
        check_finite(arr, name)
        self.dtype_ = working_dtype(self.dtype, arr)
        arr = arr.astype(self.dtype_, copy=False)
        n, d = arr.shape
        self.n_features_in_ = d
        self.unit_ = 1.0
        if self.scaling == "standard":
            # features whose squares would overflow or underflow: moments of the feature times
            # a power of two (a copy of the data only then), divided back
            factor = power_of_two_scale(_largest_magnitude(arr, 0), self.dtype_)
            unsafe = factor != 1
            scaled = arr * factor.astype(self.dtype_) if unsafe.any() else arr
            center = scaled.mean(axis=0, dtype=np.float64) / factor
            spread = scaled.std(axis=0, dtype=np.float64) / factor
            self.center_ = center.astype(self.dtype_)
            self.scale_inv_ = (1 / np.where(spread > 0, spread, 1)).astype(self.dtype_)
            self._varying = int(np.count_nonzero(spread > 0))
        elif self.scaling is None and arr.size:
            self.unit_ = float(power_of_two_scale(_largest_magnitude(arr, None), self.dtype_))
        if self.n_components is None:
            self.mean_, self.components_ = None, None
            return self
        limit = min(n, d)
        if self.n_components > limit:
            raise fail("n_components", f"exceeds min(samples, features) = {limit} of the "
                       "fitting data", f"Use at most {limit} components or more samples",
                       self.n_components)
        r = self._row_scales(arr)
        ones = (np.ones(n, dtype=self.dtype_) if r is None else r)[:, None]
        mean = self._rmatmul(arr, None, ones)[:, 0] / n        # mean of s(X), shape (d,)
        k = self.n_components
        solver = self.pca_solver
        if solver == "auto":
            solver = ("covariance" if d <= COVARIANCE_MAX_FEATURES or k >= 0.8 * limit
                      else "randomized")
        if solver == "covariance":
            axes, var = self._covariance_axes(arr, r, mean, n)
        else:
            with one_blas_thread():          # thin, memory-bound products (see pidkit._threads)
                axes, var = self._randomized_axes(arr, r, mean, n)
        total = self._total_variance(arr, r, mean, n)
        self.mean_ = mean.astype(self.dtype_)
        self.components_ = np.ascontiguousarray(axes[:k].astype(self.dtype_))
        self.explained_variance_ = var[:k]
        self.explained_variance_ratio_ = var[:k] / total if total > 0 else var[:k] * 0
        return self

    def _total_variance(self, arr, r, mean, n) -> float:
        """Sum of the per-feature variances of s(X) (denominator n - 1)."""
        if self.scaling == "l2":      # every non-zero row has unit norm after scaling
            sq = float(np.count_nonzero(self._row_norms(arr) > 0))
        elif self.scaling == "standard":     # unit variance (ddof 0) per non-constant feature
            sq = float(n * self._varying)
        else:
            scaled = arr if r is None else arr * r[:, None]
            sq = float(np.einsum("ij,ij->", scaled, scaled, dtype=np.float64))
        mean = mean.astype(np.float64)
        return (sq - n * float(mean @ mean)) / max(n - 1, 1)

    def _covariance_axes(self, arr, r, mean, n):
        """Exact principal axes: eigenvectors of the scatter matrix (one BLAS call)."""
        scaled = arr if r is None else arr * r[:, None]
        if self.scaling == "standard":
            scaled = (scaled - self.center_) * self.scale_inv_
        scatter = (scaled.T @ scaled).astype(np.float64) - n * np.outer(mean, mean)
        values, vectors = np.linalg.eigh((scatter + scatter.T) / 2)
        order = np.argsort(values)[::-1]
        return _signed(vectors[:, order].T), np.maximum(values[order], 0) / max(n - 1, 1)

    def _randomized_axes(self, arr, r, mean, n):
        """Principal axes from a randomized range finder with power iterations."""
        k, d = self.n_components, arr.shape[1]
        width = min(k + 10, min(n, d))
        n_iter = self.n_iter
        if n_iter == "auto":
            n_iter = AUTO_POWER_ITERATIONS
        rng = np.random.default_rng(self.random_state)
        omega = rng.standard_normal((d, width)).astype(self.dtype_)

        def mul(v):                                   # X_c V
            return self._matmul(arr, r, v) - mean @ v

        def rmul(u):                                  # X_c^T U
            return self._rmatmul(arr, r, u) - np.outer(mean, u.sum(axis=0))

        q = np.linalg.qr(mul(omega))[0]
        for _ in range(n_iter):
            q = np.linalg.qr(rmul(q))[0]
            q = np.linalg.qr(mul(q))[0]
        small = rmul(q).T.astype(np.float64)          # Q^T X_c, (width, d)
        _, sv, vt = np.linalg.svd(small, full_matrices=False)
        return _signed(vt), sv ** 2 / max(n - 1, 1)

    # -- transforming -----------------------------------------------------------------------------
    def transform(self, x: Any, name: str = "X") -> np.ndarray:
        """Projected samples ``(n, k)`` in ``dtype_`` (``k = D`` without PCA)."""
        if not hasattr(self, "n_features_in_"):
            raise fail(name, "cannot be transformed before fitting", "Call fit(...) first")
        arr = rows(x, name)
        if arr.shape[1] != self.n_features_in_:
            raise fail(name, f"has {arr.shape[1]} features per sample, the fit had "
                       f"{self.n_features_in_}", "Pass samples of the same layer/shape")
        check_finite(arr, name)
        width = arr.shape[1] if self.components_ is None else self.components_.shape[0]
        out = np.empty((arr.shape[0], width), dtype=self.dtype_)
        with one_blas_thread():              # thin products (see pidkit._threads)
            for start in range(0, arr.shape[0], self.chunk_size):
                chunk = arr[start:start + self.chunk_size].astype(self.dtype_, copy=False)
                r = self._row_scales(chunk)
                if self.components_ is None:
                    z = chunk if r is None else chunk * r[:, None]
                    if self.scaling == "standard":
                        z = (z - self.center_) * self.scale_inv_
                else:
                    z = self._matmul(chunk, r, self.components_.T)
                    z -= self.mean_ @ self.components_.T
                out[start:start + self.chunk_size] = z
        return out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Settings, as plain data (``deep`` is accepted for scikit-learn compatibility)."""
        return {"n_components": self.n_components, "scaling": self.scaling,
                "pca_solver": self.pca_solver, "n_iter": self.n_iter,
                "dtype": None if self.dtype is None else str(np.dtype(self.dtype)),
                "chunk_size": self.chunk_size, "random_state": self.random_state}


def _signed(axes: np.ndarray) -> np.ndarray:
    """Axes (rows) with a deterministic sign: the largest-magnitude entry positive."""
    signs = np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])
    return axes * np.where(signs == 0, 1, signs)[:, None]


def subsample(x: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows of ``x`` drawn without replacement, in their original order; ``x`` itself
    (no copy) when ``size`` is None or at least the number of rows."""
    if size is None or size >= x.shape[0]:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=size, replace=False))]


def too_few(name: str, what: str, have: int, need: int) -> PIDValueError:
    """The error for fitting ``need`` clusters/bins on ``have`` distinct points."""
    return fail(name, f"has {have} {what}, fewer than the {need} clusters requested",
                f"Use n_clusters <= {have}, or pass more (distinct) samples")
