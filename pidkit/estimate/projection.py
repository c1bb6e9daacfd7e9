r"""Scaling and PCA of high-dimensional samples, fitted once and applied in chunks.

A fitted :class:`Projector` maps a sample :math:`x \in \mathbb{R}^D` (trailing axes flattened) to

.. math::

    z = W^\top (s(x) - \mu) \in \mathbb{R}^k,

with :math:`s` the scaling (``"l2"``: :math:`x / \lVert x \rVert_2`, a zero row stays zero;
``"standard"``: per-feature :math:`(x - m) / \sigma`, features of zero spread left unscaled;
``None``: identity), :math:`\mu` the mean of the scaled fitting data and :math:`W` its top
:math:`k` principal axes (scikit-learn's ``PCA``; ``n_components=None`` skips the PCA). Fitting
may use a random subsample of rows (:func:`subsample`); the transform runs in chunks of
``chunk_size`` rows in ``dtype`` (float32 halves memory traffic on large inputs). scikit-learn is
imported only when fitting a PCA.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_int, fail
from ..errors import PIDValueError
from ._checks import as_matrix, check_finite, rows

__all__ = ["Projector", "SCALINGS"]

SCALINGS = ("l2", "standard", None)


def _sklearn(what: str):
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs scikit-learn: pip install scikit-learn") from exc


class Projector:
    """Scaling followed by PCA, fitted once and reusable on new data (e.g. a test split).

    Parameters
    ----------
    n_components : int or None, default 10
        Number of principal components kept (None: no PCA).
    scaling : {"l2", "standard", None}, default "l2"
        Per-sample L2 normalisation (as in the paper's audit), per-feature standardisation, or
        none.
    pca_solver : str, default "auto"
        ``svd_solver`` of scikit-learn's PCA ("randomized" is fastest for wide inputs).
    dtype : str, default "float32"
        Precision of the transform.
    chunk_size : int, default 65536
        Rows per chunk in :meth:`transform`.
    random_state : int or None
        Seed of the subsample and of the randomized solver.
    """

    def __init__(self, n_components: int | None = 10, *, scaling: str | None = "l2",
                 pca_solver: str = "auto",
                 dtype: str = "float32", chunk_size: int = 65536,
                 random_state: int | None = None):
        self.n_components = n_components
        self.scaling = scaling
        self.pca_solver = pca_solver
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.n_components is not None:
            check_int(self.n_components, "n_components", 1)
        if self.scaling not in SCALINGS:
            raise fail("scaling", "is not a known scaling", "Use 'l2', 'standard' or None",
                       self.scaling)
        check_int(self.chunk_size, "chunk_size", 1)
        if np.dtype(self.dtype).kind != "f":
            raise fail("dtype", "must be a floating dtype", "Use 'float32' or 'float64'",
                       self.dtype)

    def _scale(self, x: np.ndarray) -> np.ndarray:
        if self.scaling == "l2":
            norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
            return x / np.where(norm > 0, norm, 1)
        if self.scaling == "standard":
            return (x - self.center_) / self.scale_
        return x

    def fit(self, x: Any, name: str = "X") -> Projector:
        """Fit on samples ``x`` of shape ``(n, ...)`` (trailing axes are flattened)."""
        self._check_params()
        sample = as_matrix(x, name, np.dtype(self.dtype))
        self.n_features_in_ = sample.shape[1]
        if self.scaling == "standard":
            self.center_ = sample.mean(axis=0)
            spread = sample.std(axis=0)
            self.scale_ = np.where(spread > 0, spread, 1).astype(sample.dtype)
        sample = self._scale(sample)
        if self.n_components is None:
            self.mean_, self.components_ = None, None
            return self
        limit = min(sample.shape)
        if self.n_components > limit:
            raise fail("n_components", f"exceeds min(samples, features) = {limit} of the "
                       "fitting data", f"Use at most {limit} components or more samples",
                       self.n_components)
        _sklearn("PCA")
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.n_components, svd_solver=self.pca_solver,
                  random_state=self.random_state).fit(sample)
        self.mean_ = pca.mean_.astype(self.dtype)
        self.components_ = pca.components_.astype(self.dtype)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        return self

    def transform(self, x: Any, name: str = "X") -> np.ndarray:
        """Projected samples ``(n, k)`` in ``dtype`` (``k = D`` without PCA)."""
        if not hasattr(self, "n_features_in_"):
            raise fail(name, "cannot be transformed before fitting", "Call fit(...) first")
        arr = rows(x, name)
        if arr.shape[1] != self.n_features_in_:
            raise fail(name, f"has {arr.shape[1]} features per sample, the fit had "
                       f"{self.n_features_in_}", "Pass samples of the same layer/shape")
        width = arr.shape[1] if self.components_ is None else self.components_.shape[0]
        out = np.empty((arr.shape[0], width), dtype=self.dtype)
        for start in range(0, arr.shape[0], self.chunk_size):
            chunk = arr[start:start + self.chunk_size].astype(self.dtype, copy=False)
            check_finite(chunk, name)
            chunk = self._scale(chunk)
            if self.components_ is not None:
                chunk = (chunk - self.mean_) @ self.components_.T
            out[start:start + self.chunk_size] = chunk
        return out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Settings, as plain data (``deep`` is accepted for scikit-learn compatibility)."""
        return {"n_components": self.n_components, "scaling": self.scaling,
                "pca_solver": self.pca_solver,
                "dtype": str(np.dtype(self.dtype)), "chunk_size": self.chunk_size,
                "random_state": self.random_state}


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
