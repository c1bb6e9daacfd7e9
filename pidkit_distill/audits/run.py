r"""Knowledge audits: how much of the teacher's task knowledge a student holds, per layer pair.

For labels :math:`Y`, a teacher layer :math:`T` and a student layer :math:`S`, an audit
estimates the bivariate BROJA decomposition (Bertschinger et al. 2014)

.. math::

    I(Y;T) = \underbrace{\mathrm{Red}(Y{:}T,S)}_{\text{transferred}}
           + \underbrace{\mathrm{Uni}(Y{:}T\setminus S)}_{\text{left to distill}},
    \qquad
    I(Y;S) = \mathrm{Red}(Y{:}T,S) + \mathrm{Uni}(Y{:}S\setminus T),

and the synergy :math:`\mathrm{Syn}(Y{:}T,S)`, with confidence intervals, following
Dissanayake et al. (2025). Two entry points:

- :func:`audit` runs a teacher and a student over a data set (features picked by module path
  with forward hooks), batch by batch;
- :func:`audit_features` takes features already computed.

Both fit the estimator's discretiser (or projection) on one split - ``fit_data``, or the audited
data themselves - and apply it to the audited data, streaming them through summable sufficient
statistics (joint counts, or moments), so data sets larger than memory can be audited.

**Invariance.** An audit gives the same numbers (values, intervals, chance levels, p-values; to
1e-9 bits, in practice exactly) when the classes are renamed (any injective relabelling,
non-contiguous labels included), the samples are permuted, the same features are passed as
float32 or float64, or as numpy arrays or torch tensors, and a layer pair's numbers do not
depend on the other pairs audited with it (every pair draws from the same seeds):

- the fitting rows are chosen and ordered by an exact hash of each sample's inputs (of each
  layer's own features for precomputed features, so that one side's codebook does not depend
  on the other side), labels left out (:mod:`pidkit_distill.audits.stream`), and the discretiser is
  fitted and applied in float64 (``dtype="float64"`` unless ``estimator_options`` says
  otherwise), so the codebooks depend on neither the order, the labels nor the dtype;
- the count table is put in a label-free order before resampling
  (:func:`pidkit.estimate.discrete_route.canonical_table`, inside
  :func:`pidkit.estimate.count_replicates`), so bootstrap and null draws do not depend on the
  names of the classes or codes; the Gaussian route renames classes to their
  rank (a permutation of the one-hot columns leaves every Gaussian quantity unchanged).

**Chance levels, by default.** Plug-in information is biased upwards, by about
:math:`(K_{YX} - K_Y - K_X + 1) / (2N)` nats (Miller 1955): with 10 x 10 x 10 cells and a few
hundred samples, features independent of the labels show I(Y;T) = 0.14 and Syn = 1.17 bits.
Every audit therefore draws ``n_perm`` (default :data:`DEFAULT_N_PERM` = 100) shuffle-null
replicates - labels permuted against both layers, discretiser (projection) held fixed,
evaluated in one batched call through pidkit's engine
(:func:`pidkit.estimate.uncertainty.permutation_null`) - and reports per quantity its
**chance level** (the null mean; the 95th percentile is in ``chance_q95``), its **p-value**
(Phipson and Smyth 2010) and a **bias-corrected value**, value minus the null mean
(:attr:`~pidkit_distill.audits.report.LayerAudit.corrected`): exact under the null, conservative
(pulled towards 0) otherwise. A warning is issued when the (label, teacher code, student code)
table has fewer than 5 samples per occupied cell, naming the settings that fix it.

Estimators (``estimator=``):

- ``"paper"`` (= ``"paper-cifar10"``): flatten, L2-normalise, PCA to 10 components, KMeans with
  10 clusters per side (best of 10 starts, :data:`DISCRETE_AUDIT_DEFAULTS`), plug-in histogram
  :math:`p(Y, c_T, c_S)`, exact BROJA; the published audit pipeline. ``"paper-cifar100"``: 5
  components, 3 clusters.
- ``"discretize"``: the same route with any :class:`pidkit.estimate.Discretizer` settings
  (``estimator_options={"n_clusters": 20, ...}``).
- ``"gaussian"``: L2-normalise, PCA to 10 components, one-hot labels, Gaussian BROJA of the
  covariance (:func:`pidkit.gaussian_pid`); a second-order summary, fast and smooth.

**Narrow layers.** Where a layer is too narrow for a preset (fewer features, or fitting samples,
than its PCA components; fewer than 8 features for L2 normalisation), and only there, the
settings not given in ``estimator_options`` are adapted per side: PCA keeps
:math:`\min(k, n, d)` components, and features are standardised instead of L2-normalised
(:func:`~pidkit_distill.audits.estimators.layer_settings`; the values used are in each pair's
``details["n_components"]`` and ``details["scaling"]``). A layer of 10 features or more gets
the paper's settings unchanged. An ``n_components`` given above :math:`\min(n, d)` is refused
with a message naming the ``estimator_options`` key.

References
----------
G. A. Miller, "Note on the bias of information estimates" (1955).
B. Phipson, G. K. Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
Biol. 9 (2010).
P. Dissanayake, F. Hamman, B. Halder, I. Sucholutsky, Q. Zhang, S. Dutta, "Quantifying
Knowledge Distillation Using Partial Information Decomposition", AISTATS 2025.
N. Bertschinger, J. Rauh, E. Olbrich, J. Jost, N. Ay, "Quantifying unique information",
Entropy 16 (2014).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pidkit.errors import PIDTypeError, caller_stacklevel
from pidkit.estimate.uncertainty import check_null_size
from pidkit.validation import (
    assume_finite,
    check_base,
    check_bootstrap,
    check_choice,
    check_int,
    check_options,
    fail,
)

from .estimators import (
    DEFAULT_INTERVAL,
    DISCRETE_PRESETS,
    ESTIMATORS,
    GAUSSIAN_DEFAULTS,
    INTERVALS,
    DiscretePair,
    GaussianPair,
)
from .report import AuditReport, check_pairs
from .stream import Batch, FitSet, SideFitSets, array_batches, as_loader, model_batches

__all__ = ["audit", "audit_features", "AuditOptions", "DEFAULT_INTERVAL", "DEFAULT_N_PERM",
           "DISCRETE_AUDIT_DEFAULTS", "ESTIMATORS"]

#: Shuffle-null replicates drawn by default (chance levels, p-values, bias correction).
DEFAULT_N_PERM = 100

#: Discretiser settings of every discrete audit unless ``estimator_options`` says otherwise:
#: fit in float64 (dtype invariance, module notes) and keep the best of 10 KMeans starts.
#: ``n_init="auto"`` (one k-means++ start, scikit-learn's default since 1.4; it was 10 before)
#: merged two clusters in 1 of 15 repeats of the 10-class known-answer model at n = 10,000
#: (Red 0.2 bits low; benchmarks/results/audit_accuracy.md); 10 starts cost about 1 s more per
#: layer side at 10,000 fitting samples and leave the paper's other settings unchanged.
DISCRETE_AUDIT_DEFAULTS = {"dtype": "float64", "n_init": 10}


def _settings(estimator: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The estimator's full settings: preset values overridden by ``options``."""
    options = check_options(options, "estimator_options")
    if estimator == "gaussian":
        unknown = sorted(set(options) - set(GAUSSIAN_DEFAULTS))
        if unknown:
            raise fail("estimator_options", f"{unknown} are not options of the gaussian "
                       "estimator", f"Options it accepts: {', '.join(GAUSSIAN_DEFAULTS)}")
        return {**GAUSSIAN_DEFAULTS, **options}
    from pidkit.estimate import PRESETS, Discretizer

    accepted = set(Discretizer().get_params()) - {"random_state"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise fail("estimator_options", f"{unknown} are not Discretizer settings",
                   f"Settings it accepts: {', '.join(sorted(accepted))}")
    preset = DISCRETE_PRESETS[estimator]
    base = Discretizer().get_params() if preset is None else PRESETS[preset]
    settings = {**base, **DISCRETE_AUDIT_DEFAULTS, **options}
    settings.pop("random_state", None)
    return settings


def _check_measure(measure: str, estimator: str) -> None:
    """Reject an unknown measure before any data are streamed."""
    if estimator == "gaussian":
        choices: tuple[str, ...] = ("broja", "mmi")
    else:
        from pidkit.discrete import MEASURES

        choices = tuple(sorted(MEASURES))
    check_choice(measure, "measure", choices)


def _run(stream_data: Callable[[], Iterator[Batch]],
         stream_fit: Callable[[], Iterator[Batch]] | None, pairs: tuple[tuple[str, str], ...],
         options: AuditOptions, *, estimator_options: Mapping[str, Any] | None,
         measure_options: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> AuditReport:
    """Fit on the fitting stream (or the data), stream the data through the per-pair
    estimators, finish them into a report.

    The streams refuse non-finite features as they yield them (each batch's rows numbered in
    the user's order; :func:`pidkit.validation.check_finite`), so the estimators, which would
    scan the same features again, run under :func:`pidkit.validation.assume_finite`."""
    o = options
    settings = _settings(o.estimator, estimator_options)
    given = frozenset(estimator_options or {})
    _check_measure(o.measure, o.estimator)
    fit_set = FitSet(o.max_fit_samples)
    side_sets = None                   # precomputed features: each layer keyed by its own
    fit_classes: set[int] = set()
    for batch in (stream_fit or stream_data)():
        _check_classes(batch.labels, o.num_classes)
        fit_set.add(batch)
        if batch.side_keys is not None:
            side_sets = side_sets or SideFitSets(o.max_fit_samples, len(pairs))
            side_sets.add(batch)
        fit_classes.update(np.unique(batch.labels).tolist())
    rows = fit_set.batch
    if rows is None or len(rows) == 0:
        which = "fit_data" if stream_fit is not None else "data"
        raise fail(which, "yielded no samples", "Pass a non-empty data set")
    # the same seeds for every pair: a layer audited in several pairs keeps its codebook (one
    # teacher against several students shows one I(Y;T)) and a pair's numbers do not depend on
    # the other pairs or their order (model audits also resample the same samples for every
    # pair; precomputed features key each pair's draws by its own two layers, stream.pair_keys)
    seeds = [np.random.SeedSequence(o.seed).spawn(1)[0] for _ in pairs]
    if o.estimator == "gaussian":
        classes = (np.arange(o.num_classes) if o.num_classes is not None
                   else np.array(sorted(fit_classes), dtype=np.int64))
        pair_estimators = [GaussianPair(settings, s, classes, o.n_boot if o.ci is not None
                                        else 0, o.n_perm, given=given) for s in seeds]
    else:
        pair_estimators = [DiscretePair(settings, s, given=given) for s in seeds]
    with assume_finite():
        for i, est in enumerate(pair_estimators):
            teacher, student = (
                side_sets.rows(i, rows if fit_set.complete else None) if side_sets is not None
                else (rows.teacher[i], rows.student[i]))
            est.fit(teacher, student, rows.labels, pair=pairs[i])
    del side_sets                      # the batches it references, before the data pass
    reuse = stream_fit is None and fit_set.complete
    batches = [rows] if reuse else stream_data()
    n_samples = 0
    for batch in batches:
        if not reuse:
            _check_classes(batch.labels, o.num_classes)
        n_samples += len(batch)
        with assume_finite():
            for i, est in enumerate(pair_estimators):
                est.update(batch, i)
    if n_samples == 0:
        raise fail("data", "yielded no samples", "Pass a non-empty data set")
    audits = tuple(est.finish(pair, measure=o.measure, base=o.base, ci=o.ci, n_boot=o.n_boot,
                              n_perm=o.n_perm, measure_options=dict(measure_options or {}),
                              interval=o.interval)
                   for est, pair in zip(pair_estimators, pairs, strict=True))
    import pidkit

    full = {"estimator": o.estimator, **settings, "measure": o.measure,
            "n_boot": o.n_boot if o.ci is not None else 0, "interval": o.interval,
            "n_perm": o.n_perm, "max_fit_samples": o.max_fit_samples,
            "fitted_on": "fit_data" if stream_fit is not None else "data",
            "measure_options": dict(measure_options or {})}
    return AuditReport(audits, o.estimator, full, n_samples, base=o.base, ci=o.ci, seed=o.seed,
                       n_fit_samples=len(rows) if stream_fit is not None else None,
                       metadata={"pidkit_version": pidkit.__version__,
                                 "fit_samples_used": len(rows), **dict(metadata)})


def _check_classes(labels: np.ndarray, num_classes: int | None) -> None:
    """With ``num_classes`` given, refuse labels outside ``0..num_classes-1`` (both routes)."""
    if num_classes is not None and labels.size and int(labels.max()) >= num_classes:
        bad = sorted(set(labels[labels >= num_classes].tolist()))
        raise fail("num_classes", f"allows labels 0..{num_classes - 1}, but the labels hold "
                   f"{bad[:5]}{' ...' if len(bad) > 5 else ''}", f"Pass num_classes >= "
                   f"{bad[-1] + 1}, or leave it out (the audit then uses the classes it sees)",
                   num_classes)


@dataclass
class AuditOptions:
    """The options :func:`audit`, :func:`audit_features` and
    :class:`~pidkit_distill.audits.callback.AuditCallback` share, checked and normalised when
    built (one source of their names and checks: the callback checks its options by building
    this object from them, before training starts). The fields are keyword parameters of
    :func:`audit` and :func:`audit_features` (with the same meaning and defaults there).

    Normalised: ``estimator`` lower-case, ``base`` a float, ``ci=None`` when ``n_boot`` is 0 (no
    replicates, no intervals: the report says so instead of naming a level). Building it warns
    when ``n_perm`` is too small for ``ci`` (:func:`check_null_size`).
    """

    estimator: str
    measure: str
    base: float
    ci: float | None
    n_boot: int
    n_perm: int
    seed: int
    max_fit_samples: int
    num_classes: int | None
    interval: str

    def __post_init__(self) -> None:
        self.estimator = check_choice(self.estimator, "estimator", ESTIMATORS)
        check_choice(self.interval, "interval", INTERVALS)
        if not isinstance(self.measure, str):
            raise fail("measure", "must be a measure name", "Use 'broja' (the paper's) or "
                       "'mmi'", self.measure, kind=PIDTypeError)
        self.base = check_base(self.base)
        self.ci, self.n_boot = check_bootstrap(self.ci, self.n_boot)
        if self.n_boot == 0:
            self.ci = None
        self.n_perm = check_int(self.n_perm, "n_perm", 0)
        # + 1: the warning is issued inside check_null_size, one frame below this one
        check_null_size(self.n_perm, self.ci, self.interval,
                        stacklevel=caller_stacklevel() + 1)
        self.seed = check_int(self.seed, "seed", 0)
        self.max_fit_samples = check_int(self.max_fit_samples, "max_fit_samples", 2)
        if self.num_classes is not None:
            self.num_classes = check_int(self.num_classes, "num_classes", 2)


def audit(teacher, student, data: Any, layers: Sequence[tuple[str, str]] | None = None, *,
          estimator: str = "paper", fit_data: Any = None, ci: float | None = 0.95,
          n_boot: int = 100, n_perm: int = DEFAULT_N_PERM, seed: int = 0,
          measure: str = "broja",
          base: float = 2, estimator_options: Mapping[str, Any] | None = None,
          measure_options: Mapping[str, Any] | None = None, max_fit_samples: int = 10_000,
          num_classes: int | None = None, interval: str = DEFAULT_INTERVAL, batch_size: int = 256,
          device: Any = None, metadata: Mapping[str, Any] | None = None,
          input_key: int | str | tuple[str, ...] | None = None,
          label_key: int | str | None = None
          ) -> AuditReport:
    r"""Audit a teacher-student pair: Red, Uni, Syn and both mutual informations per layer pair.

    Runs both models (eval mode, no gradients) over ``data``, takes the outputs of the named
    layers with forward hooks, flattens them, and estimates for each pair ``(T, S)``

    .. math::

        I(Y;T),\ I(Y;S),\ \mathrm{Red}(Y{:}T,S),\ \mathrm{Uni}(Y{:}T\setminus S),\
        \mathrm{Uni}(Y{:}S\setminus T),\ \mathrm{Syn}(Y{:}T,S)

    with the chosen estimator (see :mod:`pidkit_distill.audits.run`), in units of ``base``.

    Parameters
    ----------
    teacher, student : torch.nn.Module
        The models (may be the same object). Their train/eval modes are restored afterwards.
    data : Dataset, IterableDataset, list of samples, DataLoader, iterable of batches, or (X, y)
        The audited samples, in the forms the trainer accepts: a map-style ``Dataset``, a list
        of samples or an ``IterableDataset`` of samples (batched in order, ``batch_size`` at a
        time), or a ``DataLoader`` (used as it is); also any iterable of batches and a tuple
        ``(X, y)`` of tensors or arrays. Items are ``(x, y, ...)`` or mappings (see
        ``input_key``). Labels are non-negative integer classes, or floats that are all whole
        numbers (the rule of :mod:`pidkit_distill.labels`; any names: the audit does not depend
        on them).
    layers : list of (str, str), optional
        ``(teacher_layer, student_layer)`` module paths (``"layer3"``, ``"block.0.conv"``,
        ``"lstm[0]"`` for item 0 of a tuple output, ``"blocks.5:channels_last"`` for tokens
        ``(N, T, C)``: :class:`~pidkit_distill.features.FeatureHooks`). Default: the last
        entries of both models' ``feature_layers`` (the innermost distilled pair, as in the
        paper).
    estimator : {"paper", "paper-cifar10", "paper-cifar100", "discretize", "gaussian"}
        Default ``"paper"``: L2-normalise, PCA 10, KMeans 10, exact BROJA.
    fit_data : same kinds as ``data``, optional
        Fit the discretisers (or projections) on these samples (e.g. the training split) and
        apply them to ``data``. Default: fit on ``data`` itself.
    ci : float or None, default 0.95
        Level of the bootstrap intervals (None: no intervals).
    n_boot, n_perm : int, default 100 and 100
        Bootstrap replicates; shuffle-null replicates for the chance levels, p-values and
        bias-corrected values (both routes; the null shuffles the labels against both layers,
        so it tests "T and S say nothing about Y", not "Red = 0"; ``n_perm=0`` skips it).
        With 100 null replicates the smallest p-value is 1/101; the default audit takes about
        2x the time it takes with ``n_perm=0`` (docs/audit.md).
    interval : {"normal", "basic", "percentile"}, default "normal"
        Kind of bootstrap interval (:mod:`pidkit.estimate.uncertainty`), named in every
        output. ``"normal"`` :math:`\hat\theta - \hat b \mp z\,s^*` (bootstrap bias
        :math:`\hat b`, bootstrap SD :math:`s^*`), extended to contain 0 for each quantity the
        shuffle null does not distinguish from chance (p-value above ``1 - ci``): an interval
        for the true value that stays valid where the truth is 0 (docs/audit.md, "How sure is a
        number?"). It corrects the upward bias of plug-in information estimates, so **for a
        small, biased atom it can lie entirely below the point estimate**. ``"basic"``
        :math:`[2\hat\theta - q_{hi}, 2\hat\theta - q_{lo}]` corrects the bias the same way
        from the replicates' quantiles (noisier with 50-100 replicates); ``"percentile"``
        :math:`[q_{lo}, q_{hi}]` is the spread of the replicates (it can exclude 0 for an atom
        that is 0). Intervals are never clipped: they can extend below 0.
    seed : int, default 0
        Seeds the discretisers and the bootstrap: equal seeds give equal reports. Every layer
        pair uses the same seeds, so a pair's numbers do not depend on the other pairs audited
        with it, and a layer in several pairs gets the same codes in each.
    measure : str, default "broja"
        PID measure (``"broja"``: the paper's; ``"mmi"`` is a fast upper bound on Red).
    base : float, default 2
        Logarithm base (2: bits, ``math.e``: nats as in the paper's figures).
    estimator_options : dict, optional
        Override the estimator's settings (``n_clusters``, ``n_components``, ``scaling``, ...).
    measure_options : dict, optional
        Options of the measure's solver.
    max_fit_samples : int, default 10000
        Fit on at most this many samples (those with the smallest hash keys of their float64
        features: a subsample that depends neither on the order, the labels nor the dtype).
        Memory: ``max_fit_samples * sum of feature widths * 4`` bytes (float32 features).
    num_classes : int, optional
        Number of classes: labels must lie in ``0..num_classes-1`` (both routes refuse others).
        The Gaussian route one-hot encodes all of them (default: the classes present in the
        fitting samples, renamed to their rank); the discrete route counts the classes it
        sees, so an empty class changes nothing.
    batch_size : int, default 256
        Batch size when the audit batches ``data`` (a Dataset, a list or iterable of samples,
        or a tuple).
    device : str or torch.device, optional
        Where the models run (default: the teacher's device).
    metadata : dict, optional
        Extra provenance stored in the report.
    input_key, label_key : int or str, optional
        Position (tuple batches) or key (mapping batches such as ``{"image": x, "label": y}``)
        of the input and the label, as for the trainer
        (:class:`~pidkit_distill.batches.BatchFormat`; default: positions 0 and 1, or the
        usual names of a mapping); ``input_key`` may be a tuple of a mapping batch's entries,
        for models wrapped in :class:`~pidkit_distill.models.KeywordInputs`.

    Returns
    -------
    AuditReport
        Prints as a table; ``to_dict()``/``to_json()``, ``plot()``, ``save(dir)``.

    Notes
    -----
    The global torch RNG (CPU, and ``device`` when it is a CUDA device) is restored when the
    audit returns, so an audit during training (:class:`AuditCallback`) leaves the training's
    random stream (dropout, shuffling) as it was; the audit itself is seeded by ``seed``.

    Examples
    --------
    >>> import pidkit_distill as pd
    >>> train, test = pd.data.load_digits()                                 # doctest: +SKIP
    >>> t = pd.models.get_model("digits_cnn", width=16)                     # doctest: +SKIP
    >>> s = pd.models.get_model("digits_cnn", width=4)                      # doctest: +SKIP
    >>> report = pd.audit(t, s, test, [("layer3", "layer3")], fit_data=train)  # doctest: +SKIP
    >>> print(report)                                                       # doctest: +SKIP
    """
    options = AuditOptions(estimator=estimator, measure=measure, base=base, ci=ci,
                           n_boot=n_boot, n_perm=n_perm, seed=seed,
                           max_fit_samples=max_fit_samples, num_classes=num_classes,
                           interval=interval)
    batch_size = check_int(batch_size, "batch_size", 1)
    from ..models import _check_module

    _check_module(teacher, "teacher")
    _check_module(student, "student")
    if layers is None:
        from ..models import default_layers

        layers = [(default_layers(teacher)[-1], default_layers(student)[-1])]
    pairs = check_pairs(layers)
    if device is None:
        first = next(iter(teacher.parameters()), None)
        device = first.device if first is not None else "cpu"
    else:
        from ..models import resolve_device

        device = resolve_device(device)
    from ..batches import BatchFormat

    batch_format = BatchFormat(input_key, label_key)
    stream = model_batches(teacher, student, pairs, device, batch_format=batch_format)
    meta = {"teacher": type(teacher).__name__, "student": type(student).__name__,
            **_metadata(metadata)}
    with _global_rng_kept(device):
        loader = as_loader(data, batch_size, "data", batch_format)
        fit_loader = (None if fit_data is None
                      else as_loader(fit_data, batch_size, "fit_data", batch_format))
        return _run(lambda: stream(loader, "data"),
                    None if fit_loader is None else (lambda: stream(fit_loader, "fit_data")),
                    pairs, options, estimator_options=estimator_options,
                    measure_options=measure_options, metadata=meta)


@contextlib.contextmanager
def _global_rng_kept(device: Any) -> Iterator[None]:
    """Restore torch's global RNG states (CPU, and the audit's CUDA device) on exit.

    Iterating a ``DataLoader`` without its own ``generator=`` (one the user passed; the audit
    gives its own loaders one) draws the workers' base seed from the global RNG, and a model may
    draw in eval mode; an audit must not shift the random stream of a training run it is called
    from (:class:`~pidkit_distill.audits.callback.AuditCallback`), so a student with dropout
    trains the same with and without audits. The audit's own randomness is seeded by ``seed``.
    """
    import torch

    dev = torch.device(device)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] \
        if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        yield


def _is_array(value: Any) -> bool:
    """A numpy or torch array (or anything else exposing ``__array__``), not a Python list."""
    return isinstance(value, np.ndarray) or hasattr(value, "detach") or (
        hasattr(value, "__array__") and not isinstance(value, (list, tuple, np.generic)))


def _metadata(metadata: Any) -> dict:
    """The ``metadata`` argument as a plain dict (None: empty); anything but a mapping with
    string keys is refused, naming the argument."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise fail("metadata", "must be a mapping of names (str) to values",
                   "Pass e.g. metadata={'run': 'baseline', 'seed': 0}", repr(metadata)[:80],
                   kind=PIDTypeError)
    return dict(metadata)


def _feature_list(value: Any, name: str) -> list:
    """The per-layer arrays of ``value``: one array, a list/tuple of arrays (one per layer
    pair) or a mapping name -> array. A list's entries must be arrays: a nested Python list
    (``T.tolist()``) would otherwise be read as one layer per row."""
    if isinstance(value, Mapping):
        return list(value.values())
    if _is_array(value):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and value:
        plain = [i for i, v in enumerate(value) if not _is_array(v)]
        if plain and len(plain) == len(value):
            first, count = value[0], len(value)
            inner = f" of {len(first)} values" if isinstance(first, Sequence) else ""
            what = f"{count} {type(first).__name__}{'s' * (count > 1)}{inner}"
            raise fail(name, f"is a {'nested ' * bool(inner)}Python {type(value).__name__} "
                       f"({what}), not a list of arrays; a list is read as one array per "
                       f"layer pair, so each of its {count} entries would be a layer",
                       f"Pass np.asarray({name}) for one layer of (n, ...) features, or a "
                       "list of numpy/torch arrays, one per layer", None, kind=PIDTypeError)
        if plain:
            i = plain[0]
            raise fail(f"{name}[{i}]", f"is a {type(value[i]).__name__}, not an array; each "
                       "entry of a list of layers is one (n, ...) array", "Pass numpy or "
                       f"torch arrays (np.asarray({name}[{i}]))", None, kind=PIDTypeError)
        return list(value)
    raise fail(name, "must be an array, a list of arrays or a mapping layer -> array",
               "Pass one (n, ...) array per audited layer", type(value).__name__,
               kind=PIDTypeError)


def _pairs_of(teacher: Any, student: Any, layers: Any, count: int) -> tuple[tuple[str, str], ...]:
    if layers is not None:
        pairs = check_pairs(layers)
    elif isinstance(teacher, Mapping) and isinstance(student, Mapping):
        pairs = tuple(zip(map(str, teacher), map(str, student), strict=True))
    else:
        pairs = tuple((f"T{i}", f"S{i}") for i in range(count))
    if len(pairs) != count:
        raise fail("layers", f"names {len(pairs)} pairs for {count} feature arrays",
                   "Give one (teacher_name, student_name) per pair of arrays", layers)
    return pairs


def audit_features(labels: Any, teacher_features: Any, student_features: Any, *,
                   layers: Sequence[tuple[str, str]] | None = None, fit: tuple | None = None,
                   estimator: str = "paper", ci: float | None = 0.95, n_boot: int = 100,
                   n_perm: int = DEFAULT_N_PERM, seed: int = 0, measure: str = "broja",
                   base: float = 2,
                   estimator_options: Mapping[str, Any] | None = None,
                   measure_options: Mapping[str, Any] | None = None,
                   max_fit_samples: int = 10_000, num_classes: int | None = None,
                   interval: str = DEFAULT_INTERVAL, chunk_size: int = 4096,
                   metadata: Mapping[str, Any] | None = None) -> AuditReport:
    """:func:`audit` on features already computed.

    Parameters not listed here are those of :func:`audit`.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels: non-negative integers, or floats that are all whole numbers
        (:mod:`pidkit_distill.labels`).
    teacher_features, student_features : array, list of arrays, or mapping name -> array
        One array ``(n, ...)`` per layer pair (trailing axes are flattened), numpy or torch.
        A list or tuple is a list of layers, so its entries must be arrays: a nested Python
        list such as ``T.tolist()`` is refused with a typed error (it would read each row as
        a layer); pass ``np.asarray(T)`` for one layer.
    layers : list of (str, str), optional
        Names of the pairs (default: the mappings' keys, or ``("T0", "S0")``, ...).
    fit : tuple (labels, teacher_features, student_features), optional
        A separate split to fit the discretisers on.
    chunk_size : int, default 4096
        Rows per streamed chunk.

    Returns
    -------
    AuditReport
    """
    options = AuditOptions(estimator=estimator, measure=measure, base=base, ci=ci,
                           n_boot=n_boot, n_perm=n_perm, seed=seed,
                           max_fit_samples=max_fit_samples, num_classes=num_classes,
                           interval=interval)
    chunk_size = check_int(chunk_size, "chunk_size", 1)
    t = _feature_list(teacher_features, "teacher_features")
    s = _feature_list(student_features, "student_features")
    if len(t) != len(s):
        raise fail("student_features", f"has {len(s)} arrays, teacher_features has {len(t)}",
                   "Pass one teacher and one student array per layer pair")
    pairs = _pairs_of(teacher_features, student_features, layers, len(t))
    stream_fit = None
    if fit is not None:
        if not isinstance(fit, tuple) or len(fit) != 3:
            raise fail("fit", "must be a tuple (labels, teacher_features, student_features)",
                       "Pass the fitting split in the same form as the audited data",
                       type(fit).__name__, kind=PIDTypeError)
        ft, fs = _feature_list(fit[1], "fit[1]"), _feature_list(fit[2], "fit[2]")
        if len(ft) != len(t) or len(fs) != len(s):
            raise fail("fit", "holds a different number of layer pairs than the audited data",
                       "Pass the same layers for both splits")

        def stream_fit() -> Iterator[Batch]:
            return array_batches(fit[0], ft, fs, chunk_size, ("fit[0]", "fit[1]", "fit[2]"))

    checked = False

    def stream_data() -> Iterator[Batch]:
        """The audited arrays in chunks; their rows are checked for non-finite values on the
        first full pass only (a second pass, when the fitting samples were not all of them,
        reads the same arrays)."""
        nonlocal checked
        yield from array_batches(labels, t, s, chunk_size, check=not checked)
        checked = True

    return _run(stream_data, stream_fit, pairs, options, estimator_options=estimator_options,
                measure_options=measure_options, metadata=_metadata(metadata))
