r"""The Gaussian route: samples -> (optionally PCA-reduced) blocks -> sample covariance ->
:func:`pidkit.gaussian_pid`, with row bootstrap intervals and a shuffle null.

The sample covariance of :math:`z_i = (m_i, x_i, y_i)` is
:math:`\hat\Sigma = \frac1N \sum_i (z_i - \bar z)(z_i - \bar z)^\top` (the Gaussian PID is
invariant to a common scale factor, so the choice between :math:`N` and :math:`N-1` does not
matter).

A discrete target (integer labels) is encoded one-hot with its last column dropped
(:func:`~pidkit.estimate.codes.one_hot`), giving a target block of width :math:`k-1`. The
resulting numbers are the PID of the Gaussian with the same covariance as the (one-hot target,
sources) vector: a second-order summary of the dependence. Gaussian mutual information depends
only on the canonical correlations between the blocks, which any invertible linear map of a block
leaves unchanged, so the dropped column, and any re-coding of the classes, do not matter.
For a Gaussian target this route is consistent for the exact Gaussian PID (tested against the
population covariance); for a discrete target it converges to the Gaussian PID of the population
covariance of the one-hot encoding, not to the discrete PID.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..lattice import lattice
from ..result import PIDResult
from ..validation import fail
from ._checks import as_labels, as_matrix
from .codes import encode, one_hot
from .projection import Projector, subsample
from .uncertainty import Resampled, assemble, vector

__all__ = ["gaussian_blocks", "covariance", "gaussian_estimate", "TARGET_ENCODINGS"]

TARGET_ENCODINGS = ("auto", "onehot", "continuous")


def covariance(z: np.ndarray) -> np.ndarray:
    """Maximum-likelihood covariance of the rows of ``z`` (float64)."""
    centred = z - z.mean(axis=0)
    cov = centred.T @ centred / z.shape[0]
    return (cov + cov.T) / 2


def target_block(target: Any, encoding: str) -> tuple[np.ndarray, str]:
    """The target as a float64 block, and the encoding actually used."""
    if encoding not in TARGET_ENCODINGS:
        raise fail("target_encoding", "is not a known encoding",
                   f"Use one of: {', '.join(TARGET_ENCODINGS)}", encoding)
    raw = np.asarray(target.detach().cpu().numpy() if hasattr(target, "detach") else target)
    if encoding == "auto":
        encoding = "onehot" if raw.dtype.kind in "biu" and raw.ndim == 1 else "continuous"
    if encoding == "onehot":
        labels = as_labels(target, "target")
        if labels.ndim != 1:
            raise fail("target", "must be one label per sample for a one-hot encoding",
                       "Pass labels of shape (n,)", labels.shape)
        codes, k = encode(labels)
        if k < 2:
            raise fail("target", "is constant (one class in every sample)",
                       "A constant target carries no information; check the labels")
        return one_hot(codes, k), encoding
    return as_matrix(target, "target"), encoding


def gaussian_blocks(target: Any, sources: tuple[Any, ...], *, target_encoding: str = "auto",
                    n_components: int | None = None, scaling: str | None = None,
                    fit_size: int | None = None, random_state: int | None = None
                    ) -> tuple[np.ndarray, tuple[int, ...], dict[str, Any]]:
    """Rows ``z = (target block, source blocks)`` in float64, block widths, and settings.

    Each source is optionally scaled and reduced to ``n_components`` principal components
    (:class:`~pidkit.estimate.projection.Projector`, fitted on ``fit_size`` rows). Columns of zero
    variance make the covariance singular and raise an error.
    """
    m, used = target_block(target, target_encoding)
    blocks = [m]
    rng = np.random.default_rng(random_state)
    for i, s in enumerate(sources):
        name = f"sources[{i}]"
        x = as_matrix(s, name)
        if x.shape[0] != m.shape[0]:
            raise fail("samples", f"target has {m.shape[0]} samples, {name} has {x.shape[0]}",
                       "Pass one row per sample for the target and every source, aligned")
        if n_components is not None or scaling is not None:
            proj = Projector(n_components, scaling=scaling, dtype="float64",
                             random_state=random_state)
            proj.fit(subsample(x, fit_size, rng), name)
            x = proj.transform(x, name)
        blocks.append(x)
    for i, b in enumerate(blocks):
        flat = np.flatnonzero(b.std(axis=0) == 0)
        if flat.size:
            name = "target" if i == 0 else f"sources[{i - 1}]"
            raise fail(name, f"has constant column(s) {flat[:5].tolist()} (zero variance), so "
                       "the covariance is singular", "Drop constant features, or reduce with "
                       "n_components=...")
    settings = {"target_encoding": used, "n_components": n_components, "scaling": scaling,
                "fit_size": fit_size}
    return np.concatenate(blocks, axis=1), tuple(b.shape[1] for b in blocks), settings


def _vectors(covs: np.ndarray, dims: tuple[int, ...], measure: str) -> np.ndarray:
    """Atoms (lattice order) and mutual information, nats, of a batch of covariances ``(B, d, d)``
    in one call of :func:`pidkit.gaussian_pid`; shape ``(B, 5)``."""
    from .. import gaussian_pid

    if covs.shape[0] == 0:
        return np.zeros((0, 5))
    r = gaussian_pid(covs, dims=dims, measure=measure, base=math.e, certify=False)
    columns = [np.asarray(r.atoms[a], dtype=float) for a in lattice(2).nodes]
    return np.column_stack(columns + [np.asarray(r.mutual_information, dtype=float)])


def gaussian_estimate(z: np.ndarray, dims: tuple[int, ...], *, measure: str, base: float,
                      ci: float, n_boot: int, n_perm: int, seeds: tuple[Any, Any],
                      bias_correction: bool, details: dict[str, Any],
                      interval: str = "percentile") -> PIDResult:
    """Gaussian PID of the rows ``z`` with row-bootstrap intervals and a shuffle null.

    Replicate covariances are evaluated as one batch. With ``bias_correction`` the point estimate
    is :func:`pidkit.gaussian_pid_from_samples`' Wishart-bias-corrected value and the bootstrap
    replicates are shifted by the same correction (constant in the replicates for the mutual
    informations; an approximation for the BROJA union term, see :mod:`pidkit.gaussian.samples`).
    """
    from .. import gaussian_pid, gaussian_pid_from_samples

    if len(dims) != 3:
        raise fail("sources", f"the Gaussian route takes two sources, got {len(dims) - 1}",
                   "Pass a target and two sources (concatenate columns to group variables)")
    n, d_m = z.shape[0], dims[0]
    if n <= z.shape[1] + 1:
        raise fail("samples", f"{n} samples are too few for {z.shape[1]} Gaussian variables",
                   f"Pass more than {z.shape[1] + 1} samples, or reduce with n_components")
    plugin = gaussian_pid(covariance(z), dims=dims, measure=measure, base=math.e)
    blocks = np.split(z, np.cumsum(dims)[:-1], axis=1)
    corrected = gaussian_pid_from_samples(*blocks, measure=measure, base=math.e,
                                          bias_correction=True, ci=None)
    point = corrected if bias_correction else plugin
    shift = vector(point) - vector(plugin)
    rng_boot, rng_null = (np.random.default_rng(s) for s in seeds)
    boot = np.stack([covariance(z[rng_boot.integers(0, n, n)]) for _ in range(n_boot)]) \
        if n_boot else np.zeros((0,) + (z.shape[1],) * 2)
    null = np.stack([covariance(np.concatenate([z[rng_null.permutation(n), :d_m], z[:, d_m:]],
                                               axis=1)) for _ in range(n_perm)]) \
        if n_perm else np.zeros((0,) + (z.shape[1],) * 2)
    draws = Resampled(_vectors(boot, dims, measure) + shift, _vectors(null, dims, measure) + shift)
    wishart = {k: v / math.log(base) for k, v in zip(
        ("I(M;X)", "I(M;Y)", "I(M;X,Y)"), _wishart_biases(corrected), strict=True)}
    info = {**details, "bias_correction": bias_correction,
            "mutual_information_bias_wishart": wishart}
    return assemble(point, draws, ci, info, base, interval)


def _wishart_biases(result: PIDResult) -> list[float]:
    bias = result.details["bias"]
    values = bias.values() if isinstance(bias, dict) else bias
    return [float(v) for v in values]
