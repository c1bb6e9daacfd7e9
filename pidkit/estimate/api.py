"""``pid_from_samples``: the one entry point from samples to a PID with its uncertainty, and
``gaussian_pid_from_samples``, its Gaussian route under the Gaussian API's names (it calls
``pid_from_samples``, so both give the same numbers)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import is_torch
from ..errors import PIDTypeError
from ..gaussian.api import MEASURES as GAUSSIAN_MEASURES
from ..lattice import lattice
from ..result import TARGET_NAME, PIDResult, default_source_names
from ..validation import (
    check_aligned,
    check_base,
    check_bootstrap,
    check_choice,
    check_finite,
    check_flag,
    check_int,
    check_options,
    fail,
    pandas_as_list,
    reject_meta,
)
from ._checks import as_labels, check_lengths, refuse_labels, rows, samples_or_labels
from .codes import encode
from .counts import JointCounts
from .discrete_route import pid_from_counts
from .discretizer import DISCRETIZER_LABELS_FIX, PRESETS, Discretizer
from .gaussian_route import (
    class_counts,
    gaussian_blocks,
    gaussian_estimate,
    gaussian_point,
    label_entropy,
    row_order,
    scaled_covariance,
    target_block,
)
from .uncertainty import INTERVALS, seed_sequences

__all__ = ["pid_from_samples", "gaussian_pid_from_samples", "ESTIMATORS"]

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
                     measure: str = "broja", base: float = 2, ci: float | None = 0.95,
                     n_boot: int = 200, n_perm: int = 100, seed: int | None = None,
                     measure_options: dict[str, Any] | None = None,
                     names: Sequence[str] | None = None, interval: str = "percentile",
                     **options: Any) -> PIDResult:
    r"""Partial information decomposition estimated from samples, with its uncertainty.

    Three estimators:

    - ``"plugin"``: discrete samples (integer codes, or labels of any kind: strings, a pandas
      categorical) -> joint counts -> plug-in pmf :math:`\hat p = N(y, x)/N` -> any discrete
      ``measure``.
    - ``"discretize"``: continuous, high-dimensional sources -> scaling -> PCA -> KMeans (or
      quantile bins) per source (:class:`Discretizer`) -> the plug-in route on the codes. The
      target is taken as integer labels (``discretize_target=True`` discretises it too).
    - ``"gaussian"``: (optionally PCA-reduced) continuous samples -> sample covariance ->
      :func:`pidkit.gaussian_pid`, Wishart-bias-corrected by default; a discrete target is
      one-hot encoded with its last column dropped (see :mod:`pidkit.estimate.gaussian_route`).
      :func:`pidkit.gaussian_pid_from_samples` is this route.

    Uncertainty: bootstrap intervals for every atom (``intervals``), p-values of every atom
    against a null in which the target is shuffled against the sources, bootstrap bias and
    spread (``details``), all from one engine (:mod:`pidkit.estimate.uncertainty`). The
    discretisers are fitted once on the data; bootstrap and null resample the resulting codes
    (the variability of the discretisation itself is explored by :func:`sensitivity`).

    A constant target (one value in every sample) carries no information: every route returns
    exact zeros (atoms, mutual information and every replicate, so p-values 1) with a
    :class:`UserWarning` naming it, as :meth:`JointCounts.pid` and :meth:`GaussianMoments.pid`
    do. A constant source is counted on the plug-in route (its information is 0; the same
    warning), but refused by the discretiser (no clusters to fit) and by the Gaussian route
    (its covariance block is singular).

    Parameters
    ----------
    target : array_like or torch.Tensor, shape (n,) or (n, ...)
        Target samples: labels for "plugin" and "discretize" (integers, whole-number floats,
        or strings and other objects of one kind, e.g. a pandas string or categorical column;
        only which samples share a label matters), numbers for "gaussian" (which refuses
        strings: pass integer labels, which it one-hot encodes).
    *sources : array_like or torch.Tensor, shape (n,) or (n, ...)
        One array per source, rows aligned with ``target``; trailing axes are flattened.
        Labels as for the target on "plugin"; numbers for "discretize" and "gaussian".
    estimator : {"plugin", "discretize", "gaussian"}, default "plugin"
    measure : str, default "broja"
        Discrete measure (:func:`pidkit.available_measures`) or Gaussian measure
        ("broja", "mmi").
    base : float, default 2
        Logarithm base of every value (2: bits, ``math.e``: nats).
    ci : float or None, default 0.95
        Level of the bootstrap intervals; ``None`` skips the bootstrap (no intervals).
    n_boot, n_perm : int, default 200 and 100
        Bootstrap and shuffle-null replicates (0 skips them; a bootstrap needs at least 2).
    seed : int, optional
        Seeds the discretisers, the bootstrap and the null; ``details["seed"]`` records the seed
        used (drawn from the OS when None), so every result can be reproduced.
    measure_options : dict, optional
        Options of the measure (solver tolerances, ...).
    names : sequence of str, optional
        Names of the target and the sources, for tables (default "Y", "X0", "X1", ...): a
        list, tuple, 1-d array or pandas Index (``df.columns``) of strings.
    interval : {"percentile", "basic", "normal"}, default "percentile"
        Kind of bootstrap interval (:mod:`pidkit.estimate.uncertainty`): "basic" reflects the
        replicates around the estimate; "normal" is the bias-corrected normal interval,
        extended to contain 0 where the shuffle null (``n_perm > 0``) does not reject, which
        covers atoms at 0 at their nominal rate (the audits' default). Intervals are never
        clipped: a basic or normal interval can extend below 0.
    **options
        Estimator options. ``"discretize"``: ``n_clusters`` (10), ``n_components`` ("auto":
        min(10, samples, features)), ``scaling`` ("auto": L2 from 8 features, else
        "standard"), ``method`` ("kmeans" | "quantile"), ``n_bins``, ``fit_size``,
        ``kmeans`` ("full" | "minibatch"), ``n_init``, ``pca_solver``, ``dtype``, ``chunk_size``,
        ``kmeans_threads``,
        ``preset`` ("paper-cifar10" | "paper-cifar100", see :data:`PRESETS`), ``discretizers``
        (one :class:`Discretizer` per source, fitted ones are only applied: reuse the fit of a
        training split on a test split), ``discretize_target`` (False). ``"gaussian"``:
        ``target_encoding`` ("auto" | "onehot" | "continuous"), ``n_components`` (None),
        ``scaling`` (None), ``fit_size``, ``bias_correction`` (True: the Wishart-bias-corrected
        atoms, see :mod:`pidkit.estimate.gaussian_route`; False: the plug-in atoms).

    Returns
    -------
    PIDResult
        Atoms (point estimates), ``intervals``, and ``details`` with ``p_values``
        (``redundancy``, ``unique``, ``synergy``, ``mutual_information``, ``atoms``), ``bias``,
        ``bootstrap_std``, ``dropped_replicates``, ``n_samples``, ``seed``, ``estimator`` and its
        settings; the Gaussian route adds ``bias_correction``,
        ``ranks`` (the numbers of independent variables of the target, each source and both
        sources, below ``dims`` when a variable is an exact copy or linear function of others),
        ``mutual_information_bias_wishart`` (for those ranks) and ``plugin`` (the uncorrected
        atoms).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x0, x1 = rng.integers(0, 2, size=(2, 2000))
    >>> r = pid_from_samples(x0 ^ x1, x0, x1, measure="mmi", n_boot=50, n_perm=50, seed=1)
    >>> abs(r.synergy - 1) < 0.01, r.details["p_values"]["synergy"] <= 0.05
    (True, True)
    """
    return _estimate(target, sources, estimator=estimator, measure=measure, base=base, ci=ci,
                     n_boot=n_boot, n_perm=n_perm, seed=seed, measure_options=measure_options,
                     names=names, interval=interval, options=options,
                     arg_names=("target",) + tuple(f"sources[{i}]" for i in range(len(sources))))


def _estimate(target: Any, sources: tuple[Any, ...], *, estimator: str, measure: str,
              base: float, ci: float | None, n_boot: int, n_perm: int, seed: int | None,
              measure_options: dict[str, Any] | None, names: Sequence[str] | None,
              interval: str, options: dict[str, Any], arg_names: tuple[str, ...]) -> PIDResult:
    """:func:`pid_from_samples`, with ``arg_names`` naming the arrays in error messages."""
    estimator = check_choice(estimator, "estimator", tuple(ESTIMATORS))
    base = check_base(base)
    ci, n_boot = check_bootstrap(ci, n_boot)          # ci=None: no bootstrap
    n_perm = check_int(n_perm, "n_perm", 0)
    interval = check_choice(interval, "interval", INTERVALS)
    measure_options = check_options(measure_options, "measure_options")
    if "sources" in options:        # sources= would be taken for an estimator option
        raise fail("sources", "is not a keyword: the sources follow the target as positional "
                   "arguments", "Call pid_from_samples(y, x0, x1), or pid_from_samples(y, *xs) "
                   "for a list xs", kind=PIDTypeError)
    if not sources:
        raise fail("sources", "none given", "Pass the target and at least one source array")
    unknown = sorted(set(options) - set(ESTIMATORS[estimator]))
    if unknown:
        accepted = ", ".join(ESTIMATORS[estimator]) or "none"
        raise fail("options", f"{unknown} are not options of estimator {estimator!r}",
                   f"Options it accepts: {accepted}")
    all_names = _names(names, len(sources))
    check_aligned([target, *sources], arg_names)
    # one conversion (torch -> numpy copies once); later steps take views of these arrays.
    # Labels (strings, objects) are kept: the discrete routes read them, the others refuse them
    target = samples_or_labels(target, arg_names[0])
    sources = tuple(samples_or_labels(s, name)
                    for s, name in zip(sources, arg_names[1:], strict=True))
    check_lengths([target, *sources], list(arg_names))
    seed, (fit_seed, _, _) = seed_sequences(seed)
    common = {"measure": measure, "base": base, "ci": ci, "n_boot": n_boot, "n_perm": n_perm,
              "seed": seed, "measure_options": measure_options, "interval": interval}
    if estimator == "gaussian":
        result = _gaussian(target, sources, fit_seed, options, arg_names, **common)
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
        return (TARGET_NAME, *default_source_names(n_sources))
    names = pandas_as_list(names)           # df.columns
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise fail("names", "must be a list of strings", "Example: names=('Y', 'T', 'S')",
                   names, kind=PIDTypeError)
    if len(names) != n_sources + 1:
        raise fail("names", f"must name the target and the {n_sources} source(s)",
                   "Example: names=('Y', 'T', 'S')", names)
    if not all(isinstance(n, str) for n in names):
        raise fail("names", "must hold strings only", "Example: names=('Y', 'T', 'S')", names,
                   kind=PIDTypeError)
    return tuple(str(n) for n in names)


def _renamed(result: PIDResult, names: tuple[str, ...]) -> PIDResult:
    from dataclasses import replace

    return replace(result, target_name=names[0], source_names=names[1:])


def _labels(x: Any, name: str, fix: str | None = None) -> np.ndarray:
    return encode(as_labels(x, name, fix))[0]


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
        check_choice(preset, "preset", tuple(PRESETS), exact=True, what="preset")
        settings = {**PRESETS[preset], **settings}
    states = fit_seed.generate_state(count)
    return [Discretizer(**settings, random_state=int(s)) for s in states]


def _discretized_codes(target: Any, sources: tuple[Any, ...], fit_seed: np.random.SeedSequence,
                       options: dict[str, Any]) -> tuple[list[np.ndarray], dict]:
    """The codes of the target and every source. Each discretiser is fitted on the rows of its
    variable in their :func:`~pidkit.estimate.gaussian_route.row_order`: the fit (the
    ``fit_size`` subsample, PCA, KMeans' initialisation), and so the codes of a seed, depend on
    the multiset of that variable's rows alone, not on the order in which the samples were
    passed, nor on the names of the target's classes. Non-finite values are refused before
    sorting, at their own rows."""
    with_target = check_flag(options.get("discretize_target", False), "discretize_target")
    columns = ([target] if with_target else []) + list(sources)
    names = (["target"] if with_target else []) + [f"sources[{i}]" for i in range(len(sources))]
    fitters = _discretizers(fit_seed, options, len(columns))
    for x, name in zip(columns, names, strict=True):
        refuse_labels(x, name, "Labels are already discrete: leave discretize_target=False, "
                      "which reads the target as labels" if name == "target"
                      else DISCRETIZER_LABELS_FIX)
    labels = None if with_target else _labels(
        target, "target", "estimator='discretize' discretises the sources; pass "
        "discretize_target=True to discretise a continuous target too, or use "
        "estimator='gaussian'")
    fitted = [hasattr(d, "n_codes_") for d in fitters]
    for x, name, done in zip(columns, names, fitted, strict=True):
        if not done:
            check_finite(rows(x, name), name)
    codes = [] if labels is None else [labels]
    for d, x, name, done in zip(fitters, columns, names, fitted, strict=True):
        if done:                                              # fitted: only applied
            codes.append(d.transform(x, name=name))
            continue
        if name == "target" and _constant_rows(x):
            codes.append(np.zeros(len(x), dtype=np.int64))   # no clusters to fit: one code
            continue
        d.fit(x[row_order([rows(x, name)])], name=name)
        codes.append(d.transform(x, name=name))     # row by row: the given order
    info = {"discretizers": [d.get_params() for d in fitters],
            "preset": options.get("preset"), "discretize_target": with_target}
    return codes, info


def _constant_rows(x: np.ndarray) -> bool:
    """Whether every sample (row) of ``x`` is the same."""
    flat = rows(x, "target")
    return bool((flat == flat[0]).all())


def _gaussian(target: Any, sources: tuple[Any, ...], fit_seed: np.random.SeedSequence,
              options: dict[str, Any], arg_names: tuple[str, ...], *, measure: str,
              base: float, ci: float | None, n_boot: int, n_perm: int, seed: int,
              measure_options: dict[str, Any] | None, interval: str) -> PIDResult:
    if measure_options:
        raise fail("measure_options", "are not used by the Gaussian route",
                   "Leave measure_options out with estimator='gaussian'", measure_options)
    measure = check_choice(measure, "measure", GAUSSIAN_MEASURES)
    correction = check_flag(options.get("bias_correction", True), "bias_correction")
    z, dims, settings = gaussian_blocks(
        target, sources, target_encoding=options.get("target_encoding", "auto"),
        n_components=options.get("n_components"), scaling=options.get("scaling"),
        fit_size=options.get("fit_size"), random_state=int(fit_seed.generate_state(1)[0]),
        names=arg_names)
    details = {"estimator": "gaussian", **settings, "dims": list(dims), "n_samples": z.shape[0],
               "seed": seed, "ci": ci, "n_boot": n_boot, "n_perm": n_perm}
    result = gaussian_estimate(z, dims, measure=measure, base=base, ci=ci, n_boot=n_boot,
                               n_perm=n_perm, seed=seed, bias_correction=correction,
                               details=details, interval=interval, names=arg_names)
    block = z[:, :dims[0]]     # integer labels one-hot encoded, or a one-hot block passed
    counts = class_counts(block.min(axis=0), block.max(axis=0),
                          lambda: (block.sum(axis=0), block.T @ block), z.shape[0])
    if counts is not None:
        result.details["label_entropy"] = label_entropy(
            counts, float(result.mutual_information) * math.log(base), base, arg_names[0])
    return result


def _host(v: Any, name: str) -> Any:
    """A torch tensor as a numpy array (floating types as float64, so that float16 and bfloat16
    convert); anything else unchanged (checked by :func:`pid_from_samples`)."""
    if not is_torch(v):
        return v
    import torch

    reject_meta(v, name)
    if v.dtype.is_complex:
        raise fail(name, f"must hold real numbers, not dtype {v.dtype}",
                   "Pass a real-valued tensor", kind=PIDTypeError)
    v = v.detach()
    return (v.to(torch.float64) if v.dtype.is_floating_point else v).cpu().numpy()


def gaussian_pid_from_samples(m: Any, x: Any, y: Any, measure: str = "broja", base: float = 2,
                              *, bias_correction: bool = True, ci: float | None = 0.95,
                              n_boot: int = 200, n_perm: int = 100, seed: int | None = None,
                              interval: str = "percentile",
                              target_encoding: str = "auto") -> PIDResult:
    r"""Gaussian PID of samples of a target ``m`` and sources ``x``, ``y``, bias-corrected, with
    bootstrap intervals and shuffle-null p-values.

    The same estimator as :func:`pid_from_samples` with ``estimator="gaussian"`` (the same code
    runs with the same arguments, so both give identical values, intervals and details): the
    maximum-likelihood covariance of the rows :math:`(m_i, x_i, y_i)` goes through
    :func:`pidkit.gaussian_pid`, and with ``bias_correction`` the exact Wishart bias of each
    Gaussian mutual information is subtracted (see :mod:`pidkit.estimate.gaussian_route` for
    the formula, the BROJA union information and the choice of divisor). Torch tensors
    additionally get differentiable atoms (below).

    Parameters
    ----------
    m, x, y : array_like or torch.Tensor, shape ``(n,)`` or ``(n, d_*)``
        Samples in rows (trailing axes are flattened). Integer labels ``m`` are one-hot encoded
        (``target_encoding``). A constant ``m`` gives exact zeros with a warning
        (:func:`pid_from_samples`). Torch tensors give torch atoms and mutual information
        (float64, on the input's device) with autograd through the covariance (the correction
        is a constant shift); intervals, p-values and details come from detached copies.
    measure : {"broja", "mmi"}
    base : float, default 2
    bias_correction : bool, default True
        Subtract the exact digamma bias of each mutual information and the closed-form estimate
        of the union information's bias; ``False``: plug-in atoms.
    ci : float or None, default 0.95
        Level of the bootstrap intervals (``result.intervals``); ``None`` skips the bootstrap.
    n_boot, n_perm : int, default 200 and 100
        Bootstrap and shuffle-null replicates (0 skips them).
    seed : int, optional
        Seed of the bootstrap and the null; ``details["seed"]`` records the seed used.
    interval : {"percentile", "basic", "normal"}, default "percentile"
        Kind of bootstrap interval (:mod:`pidkit.estimate.uncertainty`); never clipped.
    target_encoding : {"auto", "onehot", "continuous"}, default "auto"
        ``"auto"``: one-hot for an integer target of one label per sample (shape ``(n,)``
        or ``(n, 1)``), continuous otherwise.

    Returns
    -------
    PIDResult
        Named as every pidkit result (target ``"Y"``, sources ``"X0"``, ``"X1"``; the formulas
        write them :math:`M, X, Y`). ``details`` as in :func:`pid_from_samples`: ``n_samples``,
        ``dims``, ``ranks``, ``bias_correction``, ``mutual_information_bias_wishart`` (the
        Wishart biases of :math:`I(M;X)`, :math:`I(M;Y)`, :math:`I(M;X,Y)` in the result's
        units), ``plugin`` (the uncorrected atoms), ``bias`` and ``bootstrap_std``
        (bootstrap), ``p_values``, ``dropped_replicates``, ``seed``.

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> rng = np.random.default_rng(0)
    >>> m = rng.normal(size=2000)
    >>> x, y = m + rng.normal(size=2000), m + rng.normal(size=2000)
    >>> r = pidkit.gaussian_pid_from_samples(m, x, y, seed=0)
    >>> bool(abs(r.redundancy - 0.5) < 0.1)    # true redundancy: 0.5 bit
    True
    >>> same = pidkit.pid_from_samples(m, x, y, estimator="gaussian", seed=0)
    >>> same.intervals == r.intervals
    True

    References
    ----------
    T. T. Cai, T. Liang, H. H. Zhou, "Law of log determinant of sample covariance matrix and
    optimal estimation of differential entropy for high-dimensional Gaussian distributions",
    J. Multivariate Anal. 137 (2015).
    """
    blocks = (m, x, y)
    kinds = {is_torch(v) for v in blocks}
    if len(kinds) > 1:
        raise fail("m, x, y", "mix numpy arrays and torch tensors",
                   "Convert them all to one library", kind=PIDTypeError)
    arg_names = ("m", "x", "y")
    check_aligned(blocks, arg_names)
    host = [_host(v, name) for v, name in zip(blocks, arg_names, strict=True)]
    result = _estimate(host[0], tuple(host[1:]), estimator="gaussian", measure=measure,
                       base=base, ci=ci, n_boot=n_boot, n_perm=n_perm, seed=seed,
                       measure_options=None, names=None, interval=interval,
                       options={"bias_correction": bias_correction,
                                "target_encoding": target_encoding}, arg_names=arg_names)
    if kinds == {True}:
        result = _differentiable(result, blocks, host[0])
    return result


def _differentiable(result: PIDResult, blocks: tuple[Any, ...], m_host: Any) -> PIDResult:
    """``result`` with its atoms and mutual information recomputed from the torch ``blocks`` by
    the same estimator (torch tensors with autograd)."""
    from dataclasses import replace

    import torch

    ref = blocks[1]
    n = int(ref.shape[0])
    if result.details["target_encoding"] == "onehot":
        target = torch.as_tensor(target_block(m_host, "onehot")[0], device=ref.device)
    else:
        target = blocks[0].reshape(n, -1).to(torch.float64)
    z = torch.cat([target.to(device=ref.device, dtype=torch.float64)]
                  + [b.reshape(n, -1).to(torch.float64) for b in blocks[1:]], dim=1)
    if result.solver.details.get("constant_target"):
        zero = (z * 0.0).sum()     # exactly 0, a tensor of the graph (its gradient is 0)
        return replace(result, atoms=dict.fromkeys(lattice(2).nodes, zero),
                       mutual_information=zero)
    dims = tuple(result.details["dims"])
    point, _ = gaussian_point(scaled_covariance(z), n, dims, result.measure,
                              result.details["bias_correction"])
    unit = 1 / math.log(result.base)
    atoms = {a: point.atoms[a] * unit for a in lattice(2).nodes}
    return replace(result, atoms=atoms, mutual_information=point.mutual_information * unit)
