r"""The estimators of an audit, one object per layer pair: fitted once, fed batch by batch with
the streamed features, finished into a :class:`~pidkit_distill.audits.report.LayerAudit`.

Both use pidkit's estimators and its one resampling engine
(:mod:`pidkit.estimate.uncertainty`): the six audited quantities are a linear map of the atoms
(:math:`I(Y;T) = \mathrm{Red} + \mathrm{Uni}_T`, :math:`I(Y;S) = \mathrm{Red} + \mathrm{Uni}_S`),
so their intervals and p-values are summaries of the same replicates as the atoms'.

- :class:`DiscretePair` (``"paper"``, ``"paper-cifar10"``, ``"paper-cifar100"``,
  ``"discretize"``): a :class:`pidkit.estimate.Discretizer` per side (flatten, scaling, PCA,
  KMeans), codes accumulated in :class:`pidkit.estimate.JointCounts` (summable), then
  :func:`pidkit.estimate.count_replicates`: the plug-in PID with multinomial bootstrap and
  shuffle-null replicates (as :func:`pidkit.estimate.pid_from_counts`).
- :class:`GaussianPair` (``"gaussian"``): a :class:`pidkit.estimate.Projector` per side (scaling,
  PCA), the target one-hot encoded (last column dropped), moments accumulated in
  :class:`pidkit.estimate.GaussianMoments` (summable), then the Gaussian estimator of
  :mod:`pidkit.estimate.gaussian_route` (Wishart-bias-corrected unless the option
  ``bias_correction`` is False: the same estimator as :func:`pidkit.gaussian_pid_from_samples`).
  Intervals come from the engine's one-pass Poisson bootstrap
  (:func:`pidkit.estimate.uncertainty.poisson_weights`): replicate :math:`b` weighs sample
  :math:`i` by :math:`w_{bi} \sim \mathrm{Poisson}(1)` drawn from the sample's key, so the
  replicates are accumulated while streaming; each is evaluated by the same estimator. The
  shuffle null keeps the projected features (``n x (d_T + d_S)`` floats) and permutes the
  one-hot labels against them, one covariance per permutation.

Intervals are the engine's (:data:`pidkit.estimate.uncertainty.INTERVALS`), never clipped.
The audits' default, :data:`DEFAULT_INTERVAL` = ``"normal"``, is the bias-corrected normal
interval extended to contain 0 where the shuffle null does not reject (valid at the boundary
where a quantity is 0; the reasons and the measured coverage are in the engine's notes and in
docs/audit.md); ``"basic"`` and ``"percentile"`` are the classical alternatives.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from pidkit.errors import caller_stacklevel
from pidkit.estimate.gaussian_route import gaussian_vectors, label_entropy
from pidkit.estimate.uncertainty import (
    INTERVALS,
    Replicates,
    drop_failed,
    permutation_null,
    poisson_weights,
    summarize,
    vector,
)
from pidkit.validation import check_flag, fail

from .report import QUANTITIES, LayerAudit
from .stream import Batch, pair_keys

__all__ = ["DEFAULT_INTERVAL", "DISCRETE_PRESETS", "ESTIMATORS", "FROM_ATOMS", "GAUSSIAN_DEFAULTS",
           "INTERVALS", "layer_settings",
           "MIN_SAMPLES_PER_CELL", "DiscretePair", "GaussianPair",
           "values_of"]

#: Interval kind of an audit unless asked otherwise (see the module notes).
DEFAULT_INTERVAL = "normal"

#: Fewest samples per occupied cell of the (label, teacher code, student code) table below
#: which an audit warns that its plug-in values are dominated by bias.
MIN_SAMPLES_PER_CELL = 5

#: Audit estimator name -> preset of :data:`pidkit.estimate.PRESETS` (``None``: custom).
DISCRETE_PRESETS = {"paper": "paper-cifar10", "paper-cifar10": "paper-cifar10",
                    "paper-cifar100": "paper-cifar100", "discretize": None}

#: Every audit estimator.
ESTIMATORS = (*DISCRETE_PRESETS, "gaussian")

#: Defaults of the Gaussian route: L2-normalise each sample, keep 10 principal components,
#: correct the Wishart bias (as :func:`pidkit.gaussian_pid_from_samples`).
GAUSSIAN_DEFAULTS = {"n_components": 10, "scaling": "l2", "bias_correction": True}

#: Rows: the audited quantities (``report.QUANTITIES``); columns: the PID vector (Red, Uni_T,
#: Uni_S, Syn, I(Y;T,S)). ``reps.map(lambda v: v @ FROM_ATOMS.T)`` gives the replicates of the
#: six quantities from those of the PID vector.
FROM_ATOMS = np.array([[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0],
                        [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=np.float64)


def values_of(result) -> dict[str, float]:
    """The six audited quantities of a bivariate :class:`pidkit.PIDResult` (sources T, S)."""
    red = float(result.redundancy)
    uni_t, uni_s = (float(u) for u in result.unique)
    return {"mi_teacher": red + uni_t, "mi_student": red + uni_s, "redundancy": red,
            "unique_teacher": uni_t, "unique_student": uni_s, "synergy": float(result.synergy)}


def _summarised(reps: Replicates, ci: float | None, interval: str, base: float
                ) -> tuple[dict[str, float], dict[str, tuple[float, float]] | None,
                           dict[str, Any] | None, dict[str, dict[str, float]] | None]:
    """Values, intervals, p-values and chance levels (units of ``base``) of the six quantities
    from the replicates of the PID vector (nats), summarised by the engine. Chance levels:
    ``{"mean": ..., "q95": ...}`` of the null replicates, per quantity (None without a null)."""
    six = reps.map(lambda v: v @ FROM_ATOMS.T)
    s = summarize(six, ci, interval)
    scale = 1 / math.log(base)
    values = {q: float(v) * scale for q, v in zip(QUANTITIES, six.point, strict=True)}
    intervals = None
    if s.lower is not None:
        intervals = {q: (float(lo) * scale, float(hi) * scale)
                     for q, lo, hi in zip(QUANTITIES, s.lower, s.upper, strict=True)}
    p = chance = None
    if s.p_values is not None:
        p = {**dict(zip(QUANTITIES, s.p_values.tolist(), strict=True)),
             "null": "labels shuffled against both layers"}
        mean = six.null.mean(axis=0) * scale
        q95 = np.quantile(six.null, 0.95, axis=0) * scale
        chance = {"mean": dict(zip(QUANTITIES, mean.tolist(), strict=True)),
                  "q95": dict(zip(QUANTITIES, q95.tolist(), strict=True))}
    return values, intervals, p, chance


def _sparse_warning(pair: tuple[str, str], n: int, occupied: int, n_classes: int,
                    n_codes: int) -> None:
    per_cell = n / max(occupied, 1)
    if per_cell >= MIN_SAMPLES_PER_CELL:
        return
    k = max(2, math.isqrt(max(n // (MIN_SAMPLES_PER_CELL * max(n_classes, 1)), 0)))
    warnings.warn(
        f"audit of {pair[0]} -> {pair[1]}: {n} samples over {occupied} occupied cells of the "
        f"(label, teacher code, student code) table, {per_cell:.1f} per cell (fewer than "
        f"{MIN_SAMPLES_PER_CELL}): the plug-in values are dominated by their upward bias; read "
        "them against their chance levels and bias-corrected values. To fix it, use fewer "
        f"clusters (estimator_options={{'n_clusters': {min(k, n_codes)}}}, or "
        "estimator='paper-cifar100') or fewer PCA components, or audit more samples (about "
        f"{MIN_SAMPLES_PER_CELL * occupied} for these settings), or use estimator='gaussian'",
        UserWarning, stacklevel=caller_stacklevel())


def layer_settings(settings: dict[str, Any], given: frozenset, rows: np.ndarray, side: str,
                   pair: tuple[str, str] | None) -> dict[str, Any]:
    r"""The settings of one side's discretiser (projection) for its fitting rows ``(n, d)``.

    The presets were made for wide layers (the paper's PCA to 10 or 5 components of L2-normalised
    features); where a layer is too narrow for them, and only there, the settings the user did
    not give in ``estimator_options`` are adapted, as :class:`pidkit.estimate.Discretizer`'s
    ``"auto"`` settings do:

    - ``n_components`` becomes :math:`\min(k, n, d)` for a preset of :math:`k` components (PCA
      has at most :math:`\min(n, d)` axes; a layer of 10 features or more keeps the paper's 10):
      :func:`pidkit.estimate.discretizer.auto_components`;
    - ``scaling="l2"`` becomes ``"standard"`` below
      :data:`pidkit.estimate.discretizer.L2_FROM` (8) features (L2 normalisation leaves a
      one-feature layer only its sign, and removes one of very few degrees of freedom):
      :func:`pidkit.estimate.discretizer.auto_scaling`.

    A value the user gave is kept; an ``n_components`` above :math:`\min(n, d)` is refused with
    a message naming the ``estimator_options`` key. The values used are in the report's details
    (``n_components``, ``scaling``, teacher then student).
    """
    from pidkit.estimate.discretizer import auto_components, auto_scaling

    out = dict(settings)
    n, d = rows.shape
    limit = min(n, d)
    k = settings.get("n_components")
    if isinstance(k, int) and not isinstance(k, bool) and k > limit:
        if "n_components" in given:
            layer = "" if pair is None else f" {pair[0 if side == 'teacher' else 1]!r}"
            raise fail("estimator_options", f"n_components={k} exceeds min(samples, features) "
                       f"= {limit} of the {side} layer{layer} ({n} fitting samples of {d} "
                       "features)", f"Pass estimator_options={{'n_components': {limit}}} (or "
                       "any value up to it), or leave n_components out: the estimator's "
                       "default is capped at the layer's width")
        out["n_components"] = auto_components(n, d, k)
    if "scaling" not in given and settings.get("scaling") == "l2":
        out["scaling"] = auto_scaling(d)
    return out


def _layer(pair, values, intervals, details, p_values, chance) -> LayerAudit:
    return LayerAudit(pair[0], pair[1], values, intervals, details,
                      chance=None if chance is None else chance["mean"],
                      chance_q95=None if chance is None else chance["q95"],
                      p_values=None if p_values is None
                      else {q: p_values[q] for q in QUANTITIES})


class OneCode:
    """The discretiser of a layer that is constant on the fitting samples: one code, 0, for
    every sample (a constant variable carries no information). Same attributes as a fitted
    :class:`pidkit.estimate.Discretizer` that the audit reads."""

    n_codes_ = 1
    n_components_ = 0
    scaling_ = "constant"

    def __init__(self, random_state: int):
        self.random_state = random_state

    def transform(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        return np.zeros(len(x), dtype=np.int64)


def _constant(rows: np.ndarray) -> bool:
    """Whether every fitting sample of a layer is the same (a dead layer)."""
    return bool(rows.shape[0] and (rows.max(axis=0) == rows.min(axis=0)).all())


def _constant_side_warning(pair: tuple[str, str] | None, side: str, n: int,
                           treatment: str = "gets one code") -> None:
    layer = "" if pair is None else f" {pair[0 if side == 'teacher' else 1]!r}"
    warnings.warn(
        f"audit: the {side} layer{layer} is constant on its {n} fitting samples (e.g. a dead "
        f"layer whose ReLUs are all off): it carries no information about the labels, so it "
        f"{treatment} and the audit gives I(Y;{side[0].upper()}) = Red = Syn = 0. Check the "
        "layer path and the model's training if that is unexpected", UserWarning,
        stacklevel=caller_stacklevel())


class NoProjection:
    """The projector of a layer that is constant on the fitting samples (Gaussian route): no
    column for any sample, so the layer's side is left out of the covariance (a constant
    variable carries no information). Same attributes as a fitted
    :class:`pidkit.estimate.Projector` that the audit reads."""

    n_components = 0
    scaling = "constant"

    def __init__(self, random_state: int):
        self.random_state = random_state

    def transform(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        return np.zeros((len(x), 0), dtype=np.float64)


def _repeat_source(covs: np.ndarray, dims: tuple[int, int]) -> np.ndarray:
    """Covariances ``(B, d_Y + d_X, ...)`` of ``(Y, X)`` as those of ``(Y, X, X)``: the
    Gaussian estimator's :math:`I(Y; X, X)` is its :math:`I(Y; X)` (:func:`pidkit.gaussian_pid`
    computes on the ranks, so the repeated block adds nothing, and the Wishart correction is
    that of :math:`(d_Y, d_X)`)."""
    x = slice(dims[0], dims[0] + dims[1])
    right = np.concatenate([covs, covs[:, :, x]], axis=2)
    return np.concatenate([right, right[:, x, :]], axis=1)


class DiscretePair:
    """Discretise both sides, count, and decompose (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence,
                 given: frozenset = frozenset()):
        fit, boot = seeds.spawn(2)
        # One seed for both sides: identical features get identical codes (a copying student
        # shows Uni(Y:T\S) = Syn = 0 exactly).
        self.settings, self.given = settings, frozenset(given)
        self.state = int(fit.generate_state(1)[0])
        self.discretizers: list = []
        self.boot_seed = int(boot.spawn(1)[0].generate_state(1)[0])
        self.counts = None

    def fit(self, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray, *,
            pair: tuple[str, str] | None = None) -> None:
        """Fit both sides' discretisers (settings of :func:`layer_settings`). A side whose
        fitting rows are all identical (a dead layer: every ReLU off) gets one code
        (:class:`OneCode`) with a warning: it carries no information, so the audit gives
        I(Y;side) = Red = Syn = 0 and the other side's unique information is its whole
        I(Y;other), where the discretiser refused it (and an ``AuditCallback`` stopped the
        training run)."""
        from pidkit.estimate import Discretizer, JointCounts

        self._dims = (teacher.shape[1], student.shape[1])
        self.discretizers = []
        for side, rows in (("teacher", teacher), ("student", student)):
            if _constant(rows):
                _constant_side_warning(pair, side, rows.shape[0])
                self.discretizers.append(OneCode(self.state))
                continue
            self.discretizers.append(
                Discretizer(**layer_settings(self.settings, self.given, rows, side, pair),
                            random_state=self.state).fit(rows, name=f"{side}_features"))
        self.counts = JointCounts()
        self._label_index: dict[int, int] = {}

    def _label_rows(self, labels: np.ndarray) -> np.ndarray:
        """Each class renamed to a row of the count table, in order of first appearance: the
        table has one row per class seen, whatever the labels' values (10**12 is fine), and
        :func:`pidkit.estimate.count_replicates` puts every axis in an order that does not
        depend on this (:func:`pidkit.estimate.discrete_route.canonical_table`)."""
        classes, inverse = np.unique(labels, return_inverse=True)
        rows = np.empty(classes.size, dtype=np.int64)
        for i, c in enumerate(classes.tolist()):
            rows[i] = self._label_index.setdefault(c, len(self._label_index))
        return rows[inverse.reshape(-1)]

    def update(self, batch: Batch, index: int) -> None:
        """Count the codes of layer pair ``index`` of ``batch``."""
        self.counts.update(self._label_rows(batch.labels),
                           self.discretizers[0].transform(batch.teacher[index],
                                                          name="teacher_features"),
                           self.discretizers[1].transform(batch.student[index],
                                                          name="student_features"))

    def finish(self, pair: tuple[str, str], *, measure: str, base: float, ci: float | None,
               n_boot: int, n_perm: int, measure_options: dict[str, Any],
               interval: str = DEFAULT_INTERVAL) -> LayerAudit:
        from pidkit.estimate import count_replicates

        table = self.counts.counts
        point, reps = count_replicates(table, measure, n_boot=n_boot if ci is not None else 0,
                                       n_perm=n_perm, seed=self.boot_seed,
                                       measure_options=measure_options)
        values, intervals, p_values, chance = _summarised(reps, ci, interval, base)
        n, occupied = int(table.sum()), int(np.count_nonzero(table))
        _sparse_warning(pair, n, occupied, table.shape[0],
                        int(self.discretizers[0].n_codes_))
        scale = 1 / math.log(base)
        details = {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                   "n_components": [d.n_components_ for d in self.discretizers],
                   "scaling": [d.scaling_ for d in self.discretizers],
                   "teacher_codes": int(self.discretizers[0].n_codes_),
                   "student_codes": int(self.discretizers[1].n_codes_),
                   "occupied_cells": occupied,
                   "samples_per_cell": n / max(occupied, 1),
                   "joint_mutual_information": float(point.mutual_information) * scale,
                   "solver_status": point.solver.status,
                   "discretizer_seed": self.discretizers[0].random_state,
                   "bootstrap_seed": self.boot_seed,
                   "dropped_replicates": {"bootstrap": reps.dropped_boot,
                                          "null": reps.dropped_null}}
        if point.solver.certificate is not None:
            details["certified_gap"] = float(point.solver.certificate.gap) * scale
        if p_values is not None:
            details["p_values"] = p_values
        return _layer(pair, values, intervals, details, p_values, chance)


class GaussianPair:
    """Project both sides, accumulate moments (and Poisson-bootstrap replicates), and apply the
    Gaussian estimator (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence,
                 classes: np.ndarray, n_boot: int, n_perm: int = 0,
                 given: frozenset = frozenset()):
        fit, boot = seeds.spawn(2)
        self.settings, self.given = settings, frozenset(given)
        self.state = int(fit.generate_state(1)[0])
        self.projectors: list = []
        self.bias_correction = check_flag(
            settings.get("bias_correction", True), "estimator_options['bias_correction']",
            "Pass estimator_options={'bias_correction': False} for plug-in atoms, or leave it "
            "out (True)")
        # classes are renamed to their rank (labels {3, 7} and {0, 1} give the same one-hot
        # block; any other injective renaming permutes its columns, an invertible linear map of
        # the target block that leaves every Gaussian quantity unchanged)
        self.classes = np.asarray(classes, dtype=np.int64)
        self.n_classes = int(self.classes.size)
        self.n_boot = int(n_boot)
        self.n_perm = int(n_perm)
        self.boot_seed = int(boot.generate_state(1)[0])
        self.null_seed = int(boot.spawn(1)[0].generate_state(1)[0])
        self._kept: list[tuple[np.ndarray, np.ndarray]] = []
        self.constant = [False, False]    # per side: constant on the fitting samples
        self._widths = (0, 0, 0)          # (Y, T, S) widths, set by the first batch
        self._class_counts = np.zeros(self.n_classes, dtype=np.int64)
        self.moments = None

    def fit(self, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray, *,
            pair: tuple[str, str] | None = None) -> None:
        """Fit both sides' projections (settings of :func:`layer_settings`). A side whose
        fitting rows are all identical (a dead layer: every ReLU off) gets no column
        (:class:`NoProjection`) with a warning: it carries no information, so the audit gives
        I(Y;side) = Red = Syn = 0 and the other side's unique information is the Gaussian
        I(Y;other) of the (Y, other) block alone, as the discrete routes do with one code
        (the route refused it: its covariance would be singular)."""
        from pidkit.estimate import GaussianMoments, Projector

        self._dims = (teacher.shape[1], student.shape[1])
        self.projectors = []
        self.constant = []
        for side, rows in (("teacher", teacher), ("student", student)):
            dead = _constant(rows)
            self.constant.append(dead)
            if dead:
                _constant_side_warning(pair, side, rows.shape[0], "is left out of the "
                                       "covariance")
                self.projectors.append(NoProjection(self.state))
                continue
            side_settings = layer_settings(self.settings, self.given, rows, side, pair)
            self.projectors.append(Projector(side_settings["n_components"],
                                             scaling=side_settings["scaling"], dtype="float64",
                                             random_state=self.state).fit(rows,
                                                                          f"{side}_features"))
        self.moments = GaussianMoments()
        self.weight_sums = None

    def _rows(self, labels, teacher, student) -> tuple[np.ndarray, ...]:
        from pidkit.estimate import one_hot

        ranks = np.searchsorted(self.classes, labels)
        unknown = (ranks >= self.n_classes) | (self.classes[np.minimum(
            ranks, self.n_classes - 1)] != labels)
        if unknown.any():
            raise fail("labels", f"hold classes absent from the fitting samples "
                       f"{sorted(set(labels[unknown].tolist()))[:5]}",
                       "Pass num_classes=K (labels 0..K-1), or fit on samples of every class")
        return (one_hot(ranks, self.n_classes), self.projectors[0].transform(
            teacher, "teacher_features"), self.projectors[1].transform(student,
                                                                       "student_features"))

    def update(self, batch: Batch, index: int) -> None:
        """Accumulate the moments (and bootstrap replicates) of layer pair ``index``."""
        blocks = self._rows(batch.labels, batch.teacher[index], batch.student[index])
        self._widths = tuple(int(b.shape[1]) for b in blocks)
        self._class_counts += np.bincount(np.searchsorted(self.classes, batch.labels),
                                          minlength=self.n_classes)
        live = [b for b in blocks[1:] if b.shape[1]]
        if live:                # both layers constant: every quantity is 0, no moments needed
            self.moments.update(blocks[0], *live)
        keys = pair_keys(batch, index)
        if self.n_perm:
            self._kept.append((blocks[0], np.concatenate(blocks[1:], axis=1), keys))
        if not self.n_boot:
            return
        z = np.concatenate(blocks, axis=1)
        w = poisson_weights(keys, self.n_boot, self.boot_seed)
        sums = (w.sum(axis=1), w @ z, np.einsum("bn,ni,nj->bij", w, z, z, optimize=True))
        if self.weight_sums is None:
            self.weight_sums = sums
        else:
            self.weight_sums = tuple(a + b for a, b in zip(self.weight_sums, sums, strict=True))

    def finish(self, pair: tuple[str, str], *, measure: str, base: float, ci: float | None,
               n_boot: int, n_perm: int, measure_options: dict[str, Any],
               interval: str = DEFAULT_INTERVAL) -> LayerAudit:
        if measure_options:
            raise fail("measure_options", "are not used by the Gaussian estimator",
                       "Leave measure_options out with estimator='gaussian'", measure_options)
        dims = self._widths
        one_class = np.count_nonzero(self._class_counts) < 2
        if one_class or all(self.constant):
            return self._constant_target(pair, dims, ci, interval, base,
                                         "constant_target" if one_class else
                                         "constant_teacher_and_student")
        if any(self.constant):
            mi = self._evaluate(self.moments.to_covariance()[None], self.moments.n_samples,
                                measure, point=True)[0]
            point, status = mi, "constant_" + ("teacher" if self.constant[0] else "student")
        else:
            with warnings.catch_warnings():
                # the statistic's own H(Y) warning names its target "target"; the audit issues
                # the same check below, naming the layer pair
                warnings.filterwarnings("ignore", r"target: the Gaussian estimate of I\(Y;T,S\)",
                                        UserWarning)
                r = self.moments.pid(measure=measure, base=math.e,
                                     bias_correction=self.bias_correction)
            point, status = vector(r), r.solver.status
        boot, dropped = np.zeros((0, 5)), 0
        if self.n_boot and ci is not None:
            w, s, c = self.weight_sums
            mean = s / w[:, None]
            covs = c / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
            covs = (covs + np.swapaxes(covs, 1, 2)) / 2
            boot, dropped = drop_failed(self._evaluate(covs, w, measure), "bootstrap")
        null, dropped_null = self._null(measure)
        reps = Replicates(point, boot, null, dropped, dropped_null)
        values, intervals, p_values, chance = _summarised(reps, ci, interval, base)
        details = self._details(dims, float(point[4]) / math.log(base), status, dropped,
                                dropped_null)
        details["label_entropy"] = label_entropy(
            self._class_counts, float(point[4]), base,
            "audit" if pair is None else f"audit of {pair[0]} -> {pair[1]}")
        if any(self.constant):
            dead, live = ("teacher", "student") if self.constant[0] else ("student", "teacher")
            layer = "" if pair is None else f" {pair[0 if dead == 'teacher' else 1]!r}"
            details["constant_layer"] = dead
            details["note"] = (f"the {dead} layer{layer} is constant on the fitting samples: "
                               f"it is left out of the covariance and carries no information "
                               f"(I(Y;{dead[0].upper()}) = Red = Syn = 0); Uni(Y:"
                               f"{live[0].upper()}\\{dead[0].upper()}) = I(Y;"
                               f"{live[0].upper()}) is the Gaussian information of the (Y, "
                               f"{live[0].upper()}) block alone, and its intervals and null "
                               f"are that block's")
        if p_values is not None:
            details["p_values"] = p_values
        return _layer(pair, values, intervals, details, p_values, chance)

    def _evaluate(self, covs: np.ndarray, n: Any, measure: str, *,
                  point: bool = False) -> np.ndarray:
        """PID vectors ``(B, 5)`` (nats) of the estimator on covariances of the accumulated
        blocks: the Gaussian PID of (Y, T, S), or, with one layer constant (left out of the
        covariance), ``Red = Syn = 0``, the live side's unique information and ``I(Y;T,S)``
        equal to the estimator's Gaussian :math:`I(Y; live)` of the (Y, live) block, the
        constant side's 0 (NaN rows for covariances the estimator refuses). ``point``: one
        covariance, whose refusal is raised rather than turned into NaN."""
        dims = self._widths
        if not any(self.constant):
            return gaussian_vectors(covs, n, dims, measure, self.bias_correction)
        d_y, d_x = dims[0], max(dims[1:])
        repeated = _repeat_source(covs, (d_y, d_x))
        if point:
            from pidkit.estimate.gaussian_route import gaussian_point

            r, _ = gaussian_point(repeated[0], int(n), (d_y, d_x, d_x), measure,
                                  self.bias_correction)
            mi = np.array([float(r.mutual_information)])
        else:
            mi = gaussian_vectors(repeated, n, (d_y, d_x, d_x), measure,
                                  self.bias_correction)[:, 4]
        out = np.zeros((covs.shape[0], 5))
        out[:, 2 if self.constant[0] else 1] = mi        # lattice order: red, uni_T, uni_S
        out[:, 4] = mi
        return out

    def _details(self, dims, joint_mi: float, status: str, dropped: int,
                 dropped_null: int) -> dict[str, Any]:
        return {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                "n_components": [p.n_components for p in self.projectors],
                "scaling": [p.scaling for p in self.projectors],
                "block_dims": list(dims), "joint_mutual_information": joint_mi,
                "solver_status": status, "bias_correction": self.bias_correction,
                "projector_seed": self.projectors[0].random_state,
                "bootstrap": "poisson", "bootstrap_seed": self.boot_seed,
                "dropped_replicates": {"bootstrap": dropped, "null": dropped_null}}

    def _constant_target(self, pair: tuple[str, str], dims, ci: float | None, interval: str,
                         base: float, status: str = "constant_target") -> LayerAudit:
        """The audit of samples of a single class: the target is constant, so
        :math:`I(Y;T) = I(Y;S) = I(Y;T,S) = 0` and every atom is 0 exactly (as the discrete
        route's counts give). Every bootstrap resample and label shuffle of a constant target
        is the same constant, so their replicates are 0 too (p-values 1, chance 0); the
        covariance estimator is not evaluated (its target block is singular). The same holds
        when both layers are constant on the fitting samples (``status``
        ``"constant_teacher_and_student"``): neither carries information."""
        zeros = np.zeros(5)
        boot = np.zeros((self.n_boot if ci is not None else 0, 5))
        null = np.zeros((self.n_perm, 5))
        values, intervals, p_values, chance = _summarised(
            Replicates(zeros, boot, null, 0, 0), ci, interval, base)
        details = self._details(dims, 0.0, status, 0, 0)
        details["classes_present"] = self.classes[self._class_counts > 0].tolist()
        if p_values is not None:
            details["p_values"] = p_values
        return _layer(pair, values, intervals, details, p_values, chance)

    def _null(self, measure: str) -> tuple[np.ndarray, int]:
        """Shuffle-null replicates: the one-hot labels permuted against the projected features
        (kept in memory, ``n x (d_T + d_S)`` floats), one covariance per permutation, evaluated
        in one batched call through the engine (:func:`pidkit.estimate.uncertainty.
        permutation_null`)."""
        if not self.n_perm or not self._kept:
            return np.zeros((0, 5)), 0
        # rows in key order, ties (duplicated samples) by their label rows: order-free, so the
        # permutations pair the same samples whatever the order of the data
        y = np.concatenate([k[0] for k in self._kept])
        x = np.concatenate([k[1] for k in self._kept])
        order = np.lexsort((*y.T[::-1], np.concatenate([k[2] for k in self._kept])))
        y, x = y[order], x[order]
        n = y.shape[0]
        yc, xc = y - y.mean(axis=0), x - x.mean(axis=0)
        cyy, cxx = yc.T @ yc / n, xc.T @ xc / n

        def reduce(perms: np.ndarray) -> np.ndarray:
            cyx = np.einsum("bni,nj->bij", yc[perms], xc, optimize=True) / n
            top = np.concatenate([np.broadcast_to(cyy, (len(perms), *cyy.shape)), cyx], axis=2)
            bottom = np.concatenate([np.swapaxes(cyx, 1, 2),
                                     np.broadcast_to(cxx, (len(perms), *cxx.shape))], axis=2)
            return np.concatenate([top, bottom], axis=1)

        return permutation_null(reduce, lambda c: self._evaluate(c, float(n), measure), n,
                                self.n_perm, np.random.default_rng(self.null_seed))
