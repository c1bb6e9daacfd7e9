"""``pid_from_samples``: the one entry point from samples to a PID with its uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import PIDTypeError
from ..result import PIDResult
from ..validation import check_base, check_choice, check_int, fail
from ._checks import (
    as_labels,
    check_lengths,
    check_level,
    check_not_constant,
    to_numpy,
)
from .codes import encode
from .counts import JointCounts
from .discrete_route import pid_from_counts
from .discretizer import PRESETS, Discretizer
from .gaussian_route import gaussian_blocks, gaussian_estimate
from .uncertainty import INTERVALS, seed_sequences

__all__ = ["pid_from_samples", "ESTIMATORS"]

#: Estimator -> the keyword options it accepts.
ESTIMATORS: dict[str, tuple[str, ...]] = {
    "plugin": (),
    "discretize": ("n_clusters", "n_components", "scaling", "method", "n_bins", "fit_size",
                   "kmeans", "n_init", "pca_solver", "dtype", "chunk_size", "kmeans_threads",
                   "preset", "discretizers", "discretize_target"),
    "gaussian": ("target_encoding", "n_components", "scaling", "fit_size", "bias_correction"),
}

_DISCRETIZER_KEYS = ("n_clusters", "n_components", "scaling", "method", "n_bins", "fit_size",
                     "kmeans", "n_init", "pca_solver", "dtype", "chunk_size", "kmeans_threads")


def pid_from_samples(target: Any, *sources: Any, estimator: str = "plugin",
                     measure: str = "broja", base: float = 2, ci: float = 0.95,
                     n_boot: int = 200, n_perm: int = 100, seed: int | None = None,
                     measure_options: dict[str, Any] | None = None,
                     names: Sequence[str] | None = None, interval: str = "percentile",
                     **options: Any) -> PIDResult:
    r"""Partial information decomposition estimated from samples, with its uncertainty.

    Three estimators:

    - ``"plugin"``: integer-coded discrete samples -> joint counts -> plug-in pmf
      :math:`\hat p = N(y, x)/N` -> any discrete ``measure``.
    - ``"discretize"``: continuous, high-dimensional sources -> scaling -> PCA -> KMeans (or
      quantile bins) per source (:class:`Discretizer`) -> the plug-in route on the codes. The
      target is taken as integer labels (``discretize_target=True`` discretises it too).
    - ``"gaussian"``: (optionally PCA-reduced) continuous samples -> sample covariance ->
      :func:`pidkit.gaussian_pid`; a discrete target is one-hot encoded with its last column
      dropped (see :mod:`pidkit.estimate.gaussian_route`).

    Uncertainty: percentile bootstrap intervals for every atom (``intervals``), p-values of every
    atom against a null in which the target is shuffled against the sources, bootstrap bias and
    spread (``details``); see :mod:`pidkit.estimate.uncertainty`. The discretisers are fitted
    once on the data; bootstrap and null resample the resulting codes (the variability of the
    discretisation itself is explored by :func:`sensitivity`).

    Parameters
    ----------
    target : array_like or torch.Tensor, shape (n,) or (n, ...)
        Target samples (labels for "plugin" and "discretize").
    *sources : array_like or torch.Tensor, shape (n,) or (n, ...)
        One array per source, rows aligned with ``target``; trailing axes are flattened.
    estimator : {"plugin", "discretize", "gaussian"}, default "plugin"
    measure : str, default "broja"
        Discrete measure (:func:`pidkit.available_measures`) or Gaussian measure
        ("broja", "mmi").
    base : float, default 2
        Logarithm base of every value (2: bits, ``math.e``: nats).
    ci : float, default 0.95
        Level of the bootstrap intervals.
    n_boot, n_perm : int, default 200 and 100
        Bootstrap and shuffle-null replicates (0 skips them).
    seed : int, optional
        Seeds the discretisers, the bootstrap and the null; ``details["seed"]`` records the seed
        used (drawn from the OS when None), so every result can be reproduced.
    measure_options : dict, optional
        Options of the measure (solver tolerances, ...).
    names : sequence of str, optional
        Names of the target and the sources, for tables (default "Y", "X0", "X1", ...).
    interval : {"percentile", "basic"}, default "percentile"
        Kind of bootstrap interval; "basic" reflects the replicates around the estimate, which
        covers atoms near 0 better (:mod:`pidkit.estimate.uncertainty`).
    **options
        Estimator options. ``"discretize"``: ``n_clusters`` (10), ``n_components`` (10),
        ``scaling`` ("l2"), ``method`` ("kmeans" | "quantile"), ``n_bins``, ``fit_size``,
        ``kmeans`` ("full" | "minibatch"), ``n_init``, ``pca_solver``, ``dtype``, ``chunk_size``,
        ``kmeans_threads``,
        ``preset`` ("paper-cifar10" | "paper-cifar100", see :data:`PRESETS`), ``discretizers``
        (one :class:`Discretizer` per source, fitted ones are only applied: reuse the fit of a
        training split on a test split), ``discretize_target`` (False). ``"gaussian"``:
        ``target_encoding`` ("auto" | "onehot" | "continuous"), ``n_components`` (None),
        ``scaling`` (None), ``fit_size``, ``bias_correction`` (False: plug-in atoms; True: the
        Wishart-corrected atoms of :func:`pidkit.gaussian_pid_from_samples`).

    Returns
    -------
    PIDResult
        Atoms (point estimates), ``intervals``, and ``details`` with ``p_values``
        (``redundancy``, ``unique``, ``synergy``, ``mutual_information``, ``atoms``), ``bias``,
        ``bootstrap_std``, ``n_samples``, ``seed``, ``estimator`` and its settings.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x0, x1 = rng.integers(0, 2, size=(2, 2000))
    >>> r = pid_from_samples(x0 ^ x1, x0, x1, measure="mmi", n_boot=50, n_perm=50, seed=1)
    >>> abs(r.synergy - 1) < 0.01, r.details["p_values"]["synergy"] <= 0.05
    (True, True)
    """
    estimator = check_choice(estimator, "estimator", tuple(ESTIMATORS))
    base = check_base(base)
    ci = check_level(ci)
    n_boot = check_int(n_boot, "n_boot", 0)
    n_perm = check_int(n_perm, "n_perm", 0)
    interval = check_choice(interval, "interval", INTERVALS)
    if not sources:
        raise fail("sources", "none given", "Pass the target and at least one source array")
    unknown = sorted(set(options) - set(ESTIMATORS[estimator]))
    if unknown:
        accepted = ", ".join(ESTIMATORS[estimator]) or "none"
        raise fail("options", f"{unknown} are not options of estimator {estimator!r}",
                   f"Options it accepts: {accepted}")
    all_names = _names(names, len(sources))
    # one conversion (torch -> numpy copies once); later steps take views of these arrays
    target = to_numpy(target, "target")
    sources = tuple(to_numpy(s, f"sources[{i}]") for i, s in enumerate(sources))
    check_lengths([target, *sources],
                  ["target"] + [f"sources[{i}]" for i in range(len(sources))])
    seed, (fit_seed, _, _) = seed_sequences(seed)
    common = {"measure": measure, "base": base, "ci": ci, "n_boot": n_boot, "n_perm": n_perm,
              "seed": seed, "measure_options": measure_options, "interval": interval}
    if estimator == "gaussian":
        result = _gaussian(target, sources, fit_seed, options, **common)
    else:
        if estimator == "plugin":
            codes, info = _plugin_codes(target, sources)
        else:
            codes, info = _discretized_codes(target, sources, fit_seed, options)
        counts = JointCounts().update(*codes).counts
        result = pid_from_counts(counts, details={"estimator": estimator, **info}, **common)
    return _renamed(result, all_names)


def _names(names: Sequence[str] | None, n_sources: int) -> tuple[str, ...]:
    if names is None:
        return ("Y",) + tuple(f"X{i}" for i in range(n_sources))
    if isinstance(names, str) or len(names) != n_sources + 1:
        raise fail("names", f"must name the target and the {n_sources} source(s)",
                   "Example: names=('Y', 'T', 'S')", names)
    return tuple(str(n) for n in names)


def _renamed(result: PIDResult, names: tuple[str, ...]) -> PIDResult:
    from dataclasses import replace

    return replace(result, target_name=names[0], source_names=names[1:])


def _labels(x: Any, name: str) -> np.ndarray:
    codes, _ = encode(as_labels(x, name))
    check_not_constant(codes, name)
    return codes


def _plugin_codes(target: Any, sources: tuple[Any, ...]) -> tuple[list[np.ndarray], dict]:
    codes = [_labels(target, "target")]
    codes += [_labels(s, f"sources[{i}]") for i, s in enumerate(sources)]
    return codes, {}


def _discretizers(fit_seed: np.random.SeedSequence,
                  options: dict[str, Any], count: int) -> list[Discretizer]:
    given = options.get("discretizers")
    settings = {k: options[k] for k in _DISCRETIZER_KEYS if k in options}
    preset = options.get("preset")
    if given is not None:
        if settings or preset is not None:
            raise fail("discretizers", "were given together with discretisation settings "
                       f"{sorted(settings) + (['preset'] if preset else [])}",
                       "Set those on the Discretizer objects, or drop discretizers=")
        if isinstance(given, Discretizer):
            given = [given]
        if len(given) != count or not all(isinstance(d, Discretizer) for d in given):
            raise fail("discretizers", f"must be a list of {count} Discretizer objects, one per "
                       "discretised variable", "Pass discretizers=[d_T, d_S]", given)
        return list(given)
    if preset is not None:
        if preset not in PRESETS:
            raise fail("preset", "is not a known preset", f"Use one of: {', '.join(PRESETS)}",
                       preset)
        settings = {**PRESETS[preset], **settings}
    states = fit_seed.generate_state(count)
    return [Discretizer(**settings, random_state=int(s)) for s in states]


def _discretized_codes(target: Any, sources: tuple[Any, ...], fit_seed: np.random.SeedSequence,
                       options: dict[str, Any]) -> tuple[list[np.ndarray], dict]:
    with_target = bool(options.get("discretize_target", False))
    columns = ([target] if with_target else []) + list(sources)
    names = (["target"] if with_target else []) + [f"sources[{i}]" for i in range(len(sources))]
    fitters = _discretizers(fit_seed, options, len(columns))
    codes = []
    for d, x, name in zip(fitters, columns, names, strict=True):
        if not hasattr(d, "n_codes_"):
            d.fit(x, name=name)
        codes.append(d.transform(x, name=name))
    if not with_target:
        codes.insert(0, _labels(target, "target"))
    info = {"discretizers": [d.get_params() for d in fitters],
            "preset": options.get("preset"), "discretize_target": with_target}
    return codes, info


def _gaussian(target: Any, sources: tuple[Any, ...], fit_seed: np.random.SeedSequence,
              options: dict[str, Any], *, measure: str, base: float, ci: float, n_boot: int,
              n_perm: int, seed: int, measure_options: dict[str, Any] | None,
              interval: str) -> PIDResult:
    if measure_options:
        raise fail("measure_options", "are not used by the Gaussian route",
                   "Leave measure_options out with estimator='gaussian'", measure_options)
    z, dims, settings = gaussian_blocks(
        target, sources, target_encoding=options.get("target_encoding", "auto"),
        n_components=options.get("n_components"), scaling=options.get("scaling"),
        fit_size=options.get("fit_size"), random_state=int(fit_seed.generate_state(1)[0]))
    correction = options.get("bias_correction", False)
    if not isinstance(correction, bool):
        raise fail("bias_correction", "must be True or False", "Pass True or False", correction,
                   kind=PIDTypeError)
    _, boot_seed, null_seed = np.random.SeedSequence(seed).spawn(3)
    details = {"estimator": "gaussian", **settings, "dims": list(dims), "n_samples": z.shape[0],
               "seed": seed, "ci": ci, "n_boot": n_boot, "n_perm": n_perm}
    return gaussian_estimate(z, dims, measure=measure, base=base, ci=ci, n_boot=n_boot,
                             n_perm=n_perm, seeds=(boot_seed, null_seed),
                             bias_correction=correction, details=details, interval=interval)
