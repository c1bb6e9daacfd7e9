r"""``Discretizer``: continuous (high-dimensional) samples -> integer codes, scikit-learn style.

Two methods:

- ``"kmeans"``: scaling -> PCA -> KMeans (:class:`~pidkit.estimate.projection.Projector`, then
  scikit-learn's ``KMeans`` or ``MiniBatchKMeans``); a sample's code is its nearest centroid,

  .. math::

      c(x) = \arg\min_j \lVert z(x) - \mu_j \rVert_2^2 .

- ``"quantile"``: per-dimension quantile bins (``n_bins`` equal-mass bins of the fitting data,
  optionally after scaling/PCA), combined into one code per sample. Meant for one to three
  dimensions.

Fit once (on a subsample if ``fit_size`` is set), then :meth:`Discretizer.transform` any data of
the same shape, e.g. a test split, in chunks. The ``"paper-cifar10"`` and ``"paper-cifar100"``
presets reproduce the audit pipeline of Dissanayake et al. (AISTATS 2025): flatten, L2-normalise,
PCA with 10 (5) components, KMeans with 10 (3) clusters (scikit-learn's defaults), all fitted on
the full data, in the features' own dtype (float32 for network features).
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, PIDTypeError, caller_stacklevel
from ..validation import check_choice, check_int, check_seed, fail
from ._checks import refuse_labels, rows
from .projection import SEED_MAX, Projector, check_dtype, subsample, too_few

__all__ = ["DISCRETIZER_LABELS_FIX", "Discretizer", "PRESETS", "auto_components",
           "auto_scaling"]

#: Published settings (Dissanayake et al., AISTATS 2025, section 5 and appendix).
PRESETS: dict[str, dict[str, Any]] = {
    "paper-cifar10": {"method": "kmeans", "scaling": "l2", "n_components": 10,
                      "n_clusters": 10, "fit_size": None, "dtype": None,
                      "kmeans": "full", "n_init": "auto", "pca_solver": "auto"},
    "paper-cifar100": {"method": "kmeans", "scaling": "l2", "n_components": 5,
                       "n_clusters": 3, "fit_size": None, "dtype": None,
                       "kmeans": "full", "n_init": "auto", "pca_solver": "auto"},
}

#: PCA components kept by ``n_components="auto"``, at most ``min(samples, features)``.
AUTO_COMPONENTS = 10
#: Fewest features for which ``scaling="auto"`` normalises each sample to unit L2 norm.
L2_FROM = 8

#: Largest number of cells the quantile method may create (n_bins ** dimensions).
MAX_QUANTILE_CELLS = 1 << 20

#: The advice for labels (strings, objects) given to a discretiser.
DISCRETIZER_LABELS_FIX = ("Labels are already discrete, with nothing to discretise: pass them "
                          "as a label column of the plug-in route (pid_from_samples(..., "
                          "estimator='plugin'), JointCounts.update)")


def auto_components(n: int, d: int, wanted: int = AUTO_COMPONENTS) -> int:
    """PCA components kept of fitting rows ``(n, d)`` when ``wanted`` is a default, not the
    user's choice: ``min(wanted, n, d)`` (PCA has at most ``min(n, d)`` axes).

    >>> auto_components(500, 64), auto_components(500, 3), auto_components(500, 64, 5)
    (10, 3, 5)
    """
    return min(wanted, n, d)


def auto_scaling(d: int) -> str:
    """Scaling of ``d`` features when the L2 normalisation is a default, not the user's
    choice: ``"l2"`` from :data:`L2_FROM` features on (embeddings), else ``"standard"`` (L2
    normalisation discards each sample's norm, and leaves a one-feature source only its sign).

    >>> auto_scaling(64), auto_scaling(3)
    ('l2', 'standard')
    """
    return "l2" if d >= L2_FROM else "standard"


class Discretizer:
    r"""Map continuous samples to integer codes: scaling -> PCA -> KMeans, or quantile bins.

    Parameters
    ----------
    n_clusters : int, default 10
        Number of KMeans clusters (method "kmeans").
    n_components : int, "auto" or None, default "auto"
        PCA components kept before clustering/binning (None: no PCA). ``"auto"`` keeps
        :math:`\min(10, n, d)` for fitting data of ``n`` samples and ``d`` features (PCA has
        at most :math:`\min(n, d)` axes), so that a source of one or a few features needs no
        setting; an explicit integer above :math:`\min(n, d)` is an error. The number used is
        :attr:`n_components_`.
    scaling : {"auto", "l2", "standard", None}, default "auto"
        Per-sample L2 normalisation, per-feature standardisation, or none. ``"auto"``: L2
        for sources of at least :data:`L2_FROM` features (embeddings, the audits' setting),
        standardisation below (L2 normalisation discards each sample's norm: negligible for an
        embedding, but it leaves a one-feature source only its sign). The scaling used is
        :attr:`scaling_`.
    method : {"kmeans", "quantile"}, default "kmeans"
    n_bins : int, default 4
        Bins per dimension (method "quantile").
    fit_size : int or None
        Fit on a random subsample of this many rows (None: all). Transform always sees all rows.
    kmeans : {"full", "minibatch"}, default "full"
        scikit-learn ``KMeans`` or ``MiniBatchKMeans``.
    n_init : int or "auto", default "auto"
        KMeans restarts.
    pca_solver : {"auto", "randomized", "covariance"}, default "auto"
        How the PCA axes are computed (:class:`~pidkit.estimate.projection.Projector`).
    dtype : str or None, default None
        Precision of the projection and clustering; None keeps the input's floating dtype
        (float32 network features stay float32, float64 stays float64).
    chunk_size : int, default 65536
        Rows per chunk in :meth:`transform`.
    kmeans_threads : int or None, default 1
        OpenMP threads of the KMeans fit (threadpoolctl). The clustered data are low-dimensional
        after PCA, where one thread is as fast and avoids oversubscription on shared machines
        (measured 5-10x faster than scikit-learn's all-core default on a loaded 2-core machine);
        None keeps scikit-learn's default.
    random_state : int or None
        Seed of subsampling, PCA and KMeans, in ``[0, 2**32 - 1]`` (scikit-learn's range); a
        numpy Generator is refused (draw an integer from it).

    Attributes
    ----------
    n_components_ : int or None
        PCA components actually kept (``n_components`` resolved against the fitting data).
    scaling_ : str or None
        The scaling actually used (``scaling`` resolved against the fitting data).
    n_codes_ : int
        Number of possible codes after fitting (``n_clusters`` or the number of quantile cells).
    projector_ : Projector
    cluster_centers_ : ndarray (method "kmeans")
    bin_edges_ : list of ndarray (method "quantile")

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> train, test = rng.normal(size=(500, 64)), rng.normal(size=(200, 64))
    >>> d = Discretizer(n_clusters=4, n_components=3, random_state=0).fit(train)
    >>> codes = d.transform(test)
    >>> codes.shape, int(codes.max()) < 4
    ((200,), True)
    """

    def __init__(self, n_clusters: int = 10, n_components: int | str | None = "auto", *,
                 scaling: str | None = "auto", method: str = "kmeans", n_bins: int = 4,
                 fit_size: int | None = None, kmeans: str = "full", n_init: int | str = "auto",
                 pca_solver: str = "auto", dtype: str | None = None, chunk_size: int = 65536,
                 kmeans_threads: int | None = 1, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.scaling = scaling
        self.method = method
        self.n_bins = n_bins
        self.fit_size = fit_size
        self.kmeans = kmeans
        self.n_init = n_init
        self.pca_solver = pca_solver
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.kmeans_threads = kmeans_threads
        self.random_state = random_state

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Discretizer:
        """A discretiser with published settings: ``"paper-cifar10"`` or ``"paper-cifar100"``.

        >>> Discretizer.from_preset("paper-cifar100").get_params()["n_clusters"]
        3
        """
        check_choice(name, "preset", tuple(PRESETS), exact=True, what="preset")
        unknown = sorted(set(overrides) - set(inspect.signature(cls).parameters))
        if unknown:
            raise fail(unknown[0], "is not a Discretizer setting",
                       f"Settings: {', '.join(inspect.signature(cls).parameters)}",
                       kind=PIDTypeError)
        return cls(**{**PRESETS[name], **overrides})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Settings, as plain data (``deep`` is accepted for scikit-learn compatibility)."""
        return {"n_clusters": self.n_clusters, "n_components": self.n_components,
                "scaling": self.scaling, "method": self.method, "n_bins": self.n_bins,
                "fit_size": self.fit_size, "kmeans": self.kmeans, "n_init": self.n_init,
                "pca_solver": self.pca_solver,
                "dtype": _dtype_name(self.dtype),
                "chunk_size": self.chunk_size, "kmeans_threads": self.kmeans_threads,
                "random_state": self.random_state}

    def _projector(self, n_components: int | None, scaling: str | None) -> Projector:
        return Projector(n_components, scaling=scaling, pca_solver=self.pca_solver,
                         dtype=self.dtype, chunk_size=self.chunk_size,
                         random_state=self.random_state)

    @property
    def n_components_(self) -> int | None:
        """PCA components actually kept (``n_components`` resolved against the fitting data:
        ``"auto"`` -> :func:`auto_components`)."""
        return self.projector_.n_components

    @property
    def scaling_(self) -> str | None:
        """The scaling actually used (``scaling`` resolved against the fitting data:
        ``"auto"`` -> :func:`auto_scaling`)."""
        return self.projector_.scaling

    def _check_params(self) -> None:
        check_choice(self.method, "method", ("kmeans", "quantile"), exact=True, what="method",
                     fix="Use 'kmeans' or 'quantile'")
        check_choice(self.kmeans, "kmeans", ("full", "minibatch"), exact=True, what="variant",
                     fix="Use 'full' or 'minibatch'")
        # both, whichever the method: an invalid setting is an error even where unused
        check_int(self.n_clusters, "n_clusters", 2)
        check_int(self.n_bins, "n_bins", 2)
        if not (isinstance(self.n_init, str) and self.n_init == "auto"):
            check_int(self.n_init, "n_init", 1)
        if self.kmeans_threads is not None:
            check_int(self.kmeans_threads, "kmeans_threads", 1)
        if isinstance(self.n_components, str) and self.n_components != "auto":
            raise fail("n_components", "is not a known setting",
                       "Use a positive integer, 'auto' (min(10, samples, features)) or None "
                       "(no PCA)", self.n_components)
        check_dtype(self.dtype)
        check_seed(self.random_state, "random_state", maximum=SEED_MAX)

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, x: Any, y: Any = None, *, name: str = "X") -> Discretizer:
        """Fit on samples ``x`` of shape ``(n, ...)``; ``y`` is ignored (scikit-learn API)."""
        self._check_params()
        refuse_labels(x, name, DISCRETIZER_LABELS_FIX)
        arr = rows(x, name)
        if self.method == "kmeans" and arr.shape[0] < self.n_clusters:
            raise too_few(name, "samples", arr.shape[0], self.n_clusters)
        if self.fit_size is not None:
            check_int(self.fit_size, "fit_size", 2)
        rng = np.random.default_rng(self.random_state)
        sample = subsample(arr, self.fit_size, rng)
        if self.method == "kmeans" and sample.shape[0] < self.n_clusters:
            raise too_few("fit_size", "samples", sample.shape[0], self.n_clusters)
        if (sample.max(axis=0) == sample.min(axis=0)).all():
            raise fail(name, "is constant (every sample identical)",
                       "Check the array; a constant variable carries no information")
        n, d = sample.shape
        # isinstance: a setting may be anything (an array is not compared with "auto")
        n_components = (auto_components(n, d) if isinstance(self.n_components, str)
                        and self.n_components == "auto" else self.n_components)
        scaling = (auto_scaling(d) if isinstance(self.scaling, str) and self.scaling == "auto"
                   else self.scaling)
        self.projector_ = self._projector(n_components, scaling).fit(sample, name)
        z = self.projector_.transform(sample, name)
        if self.method == "kmeans":
            distinct = _distinct_rows(z, self.n_clusters)
            if distinct < self.n_clusters:
                raise too_few(name, "distinct samples", distinct, self.n_clusters)
            self._fit_kmeans(z, name)
        else:
            self._fit_quantiles(z, name)
        return self

    def _fit_kmeans(self, z: np.ndarray, name: str) -> None:
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
        from threadpoolctl import threadpool_limits

        if self.kmeans == "full":
            model = KMeans(n_clusters=self.n_clusters, n_init=self.n_init,
                           random_state=self.random_state)
        else:
            model = MiniBatchKMeans(n_clusters=self.n_clusters, n_init=self.n_init,
                                    random_state=self.random_state, batch_size=4096)
        with threadpool_limits(limits=self.kmeans_threads, user_api="openmp"), \
                warnings.catch_warnings():
            # said below in pidkit's words, with the variable's name: samples distinct after
            # scaling can still be too close for KMeans' float64 distances (an extreme value
            # squeezes the others together), so it finds fewer clusters than requested
            warnings.filterwarnings("ignore", "Number of distinct clusters",
                                    SklearnConvergenceWarning)
            model.fit(z)
        found = int(np.unique(model.labels_).shape[0])
        if found < self.n_clusters:
            warnings.warn(f"{name}: KMeans separated only {found} clusters of the "
                          f"n_clusters={self.n_clusters} requested (its samples, distinct after "
                          f"scaling, are too close together in float64 for it to tell more "
                          f"apart, as when an extreme value squeezes the others together); "
                          f"its codes take {found} values. Pass n_clusters={found}, or "
                          f"transform the variable (clip, log or rank its extreme values)",
                          ConvergenceWarning, stacklevel=caller_stacklevel())
        self.cluster_centers_ = model.cluster_centers_.astype(self.projector_.dtype_)
        self.n_codes_ = int(self.n_clusters)

    def _fit_quantiles(self, z: np.ndarray, name: str) -> None:
        levels = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        self.bin_edges_ = [np.unique(np.quantile(z[:, j], levels)) for j in range(z.shape[1])]
        cells = math.prod(len(e) + 1 for e in self.bin_edges_)
        if cells > MAX_QUANTILE_CELLS:
            raise fail(name, f"would need {cells} quantile cells ({z.shape[1]} dimensions)",
                       "Quantile binning is for 1-3 dimensions: set n_components, or use "
                       "method='kmeans'")
        self.n_codes_ = int(cells)

    # -- transforming --------------------------------------------------------------------------
    def transform(self, x: Any, *, name: str = "X") -> np.ndarray:
        """Integer codes ``(n,)`` (int64, in ``0 .. n_codes_-1``) of samples ``(n, ...)``."""
        if not hasattr(self, "n_codes_"):
            raise fail(name, "cannot be discretised before fitting", "Call fit(...) first")
        refuse_labels(x, name, DISCRETIZER_LABELS_FIX)
        z = self.projector_.transform(x, name)
        if self.method == "quantile":
            codes = np.zeros(z.shape[0], dtype=np.int64)
            for j, edges in enumerate(self.bin_edges_):
                codes = codes * (len(edges) + 1) + np.searchsorted(edges, z[:, j], side="right")
            return codes
        centers = self.cluster_centers_
        c2 = np.einsum("ij,ij->i", centers, centers)
        codes = np.empty(z.shape[0], dtype=np.int64)
        for start in range(0, z.shape[0], self.chunk_size):
            chunk = z[start:start + self.chunk_size]
            codes[start:start + self.chunk_size] = np.argmin(c2 - 2 * chunk @ centers.T, axis=1)
        return codes

    def fit_transform(self, x: Any, y: Any = None, *, name: str = "X") -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same samples."""
        return self.fit(x, name=name).transform(x, name=name)

    def __repr__(self) -> str:
        defaults = Discretizer().get_params()
        # identity first: a setting may be an array, whose == is element-wise
        changed = {k: v for k, v in self.get_params().items()
                   if not (v is defaults[k] or (type(v) is type(defaults[k])
                                                and v == defaults[k]))}
        return "Discretizer(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


def _dtype_name(dtype: Any) -> Any:
    """``dtype`` as a plain name (``"float32"``), or as given when it is not a numpy dtype."""
    try:
        return None if dtype is None else str(np.dtype(dtype))
    except TypeError:
        return dtype


def _distinct_rows(z: np.ndarray, needed: int) -> int:
    """Number of distinct rows of ``z``, counted on a head of the rows first (cheap) and on all
    rows only when the head has fewer than ``needed``."""
    head = z[: max(10 * needed, 10_000)]
    distinct = np.unique(head, axis=0).shape[0]
    if distinct >= needed or head.shape[0] == z.shape[0]:
        return distinct
    return np.unique(z, axis=0).shape[0]
