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
  replicates are accumulated while streaming; each is evaluated by the same estimator. No
  shuffle null (``n_perm`` applies to the discrete route).

Intervals follow the engine's policy: ``"basic"`` (the audits' default) or ``"percentile"``,
never clipped (a basic interval can extend below 0 or lie below the point estimate; see
docs/audit.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pidkit.errors import PIDTypeError
from pidkit.estimate.gaussian_route import gaussian_vectors
from pidkit.estimate.uncertainty import (
    INTERVALS,
    Replicates,
    drop_failed,
    poisson_weights,
    summarize,
    vector,
)
from pidkit.validation import fail

from .report import QUANTITIES, LayerAudit
from .stream import Batch

__all__ = ["DISCRETE_PRESETS", "ESTIMATORS", "GAUSSIAN_DEFAULTS", "INTERVALS", "DiscretePair",
           "GaussianPair", "values_of"]

#: Audit estimator name -> preset of :data:`pidkit.estimate.PRESETS` (``None``: custom).
DISCRETE_PRESETS = {"paper": "paper-cifar10", "paper-cifar10": "paper-cifar10",
                    "paper-cifar100": "paper-cifar100", "discretize": None}

#: Every audit estimator.
ESTIMATORS = (*DISCRETE_PRESETS, "gaussian")

#: Defaults of the Gaussian route: L2-normalise each sample, keep 10 principal components,
#: correct the Wishart bias (as :func:`pidkit.gaussian_pid_from_samples`).
GAUSSIAN_DEFAULTS = {"n_components": 10, "scaling": "l2", "bias_correction": True}

#: Rows: the audited quantities (``report.QUANTITIES``); columns: the PID vector (Red, Uni_T,
#: Uni_S, Syn, I(Y;T,S)).
_FROM_ATOMS = np.array([[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0],
                        [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=np.float64)


def values_of(result) -> dict[str, float]:
    """The six audited quantities of a bivariate :class:`pidkit.PIDResult` (sources T, S)."""
    red = float(result.redundancy)
    uni_t, uni_s = (float(u) for u in result.unique)
    return {"mi_teacher": red + uni_t, "mi_student": red + uni_s, "redundancy": red,
            "unique_teacher": uni_t, "unique_student": uni_s, "synergy": float(result.synergy)}


def _summarised(reps: Replicates, ci: float | None, interval: str, base: float
                ) -> tuple[dict[str, float], dict[str, tuple[float, float]] | None,
                           dict[str, Any] | None]:
    """Values, intervals and p-values (units of ``base``) of the six quantities from the
    replicates of the PID vector (nats), summarised by the engine."""
    six = reps.map(lambda v: v @ _FROM_ATOMS.T)
    s = summarize(six, ci, interval)
    scale = 1 / math.log(base)
    values = {q: float(v) * scale for q, v in zip(QUANTITIES, six.point, strict=True)}
    intervals = None
    if s.lower is not None:
        intervals = {q: (float(lo) * scale, float(hi) * scale)
                     for q, lo, hi in zip(QUANTITIES, s.lower, s.upper, strict=True)}
    p = None
    if s.p_values is not None:
        p = {**dict(zip(QUANTITIES, s.p_values.tolist(), strict=True)),
             "null": "labels shuffled against both layers"}
    return values, intervals, p


class DiscretePair:
    """Discretise both sides, count, and decompose (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence):
        from pidkit.estimate import Discretizer

        fit, boot = seeds.spawn(2)
        # One seed for both sides: identical features get identical codes (a copying student
        # shows Uni(Y:T\S) = Syn = 0 exactly).
        state = int(fit.generate_state(1)[0])
        self.discretizers = [Discretizer(**settings, random_state=state) for _ in range(2)]
        self.boot_seed = int(boot.spawn(1)[0].generate_state(1)[0])
        self.counts = None

    def fit(self, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray) -> None:
        from pidkit.estimate import JointCounts

        self._dims = (teacher.shape[1], student.shape[1])
        self.discretizers[0].fit(teacher, name="teacher features")
        self.discretizers[1].fit(student, name="student features")
        self.counts = JointCounts()

    def update(self, batch: Batch, index: int) -> None:
        """Count the codes of layer pair ``index`` of ``batch``."""
        self.counts.update(batch.labels,
                           self.discretizers[0].transform(batch.teacher[index],
                                                          name="teacher features"),
                           self.discretizers[1].transform(batch.student[index],
                                                          name="student features"))

    def finish(self, pair: tuple[str, str], *, measure: str, base: float, ci: float | None,
               n_boot: int, n_perm: int, measure_options: dict[str, Any],
               interval: str = "basic") -> LayerAudit:
        from pidkit.estimate import count_replicates

        table = self.counts.counts
        point, reps = count_replicates(table, measure, n_boot=n_boot if ci is not None else 0,
                                       n_perm=n_perm, seed=self.boot_seed,
                                       measure_options=measure_options)
        values, intervals, p_values = _summarised(reps, ci, interval, base)
        scale = 1 / math.log(base)
        details = {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                   "teacher_codes": int(self.discretizers[0].n_codes_),
                   "student_codes": int(self.discretizers[1].n_codes_),
                   "occupied_cells": int(np.count_nonzero(table)),
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
        return LayerAudit(pair[0], pair[1], values, intervals, details)


class GaussianPair:
    """Project both sides, accumulate moments (and Poisson-bootstrap replicates), and apply the
    Gaussian estimator (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence,
                 n_classes: int, n_boot: int):
        from pidkit.estimate import Projector

        fit, boot = seeds.spawn(2)
        state = int(fit.generate_state(1)[0])
        self.projectors = [Projector(settings["n_components"], scaling=settings["scaling"],
                                     dtype="float64", random_state=state) for _ in range(2)]
        correction = settings.get("bias_correction", True)
        if not isinstance(correction, bool):
            raise fail("estimator_options", "bias_correction must be True or False",
                       "Pass estimator_options={'bias_correction': False} for plug-in atoms",
                       correction, kind=PIDTypeError)
        self.bias_correction = correction
        self.n_classes = int(n_classes)
        self.n_boot = int(n_boot)
        self.boot_seed = int(boot.generate_state(1)[0])
        self.moments = None

    def fit(self, teacher: np.ndarray, student: np.ndarray, labels: np.ndarray) -> None:
        from pidkit.estimate import GaussianMoments

        self._dims = (teacher.shape[1], student.shape[1])
        self.projectors[0].fit(teacher, "teacher features")
        self.projectors[1].fit(student, "student features")
        self.moments = GaussianMoments()
        self.weight_sums = None

    def _rows(self, labels, teacher, student) -> tuple[np.ndarray, ...]:
        from pidkit.estimate import one_hot

        return (one_hot(labels, self.n_classes), self.projectors[0].transform(
            teacher, "teacher features"), self.projectors[1].transform(student,
                                                                       "student features"))

    def update(self, batch: Batch, index: int) -> None:
        """Accumulate the moments (and bootstrap replicates) of layer pair ``index``."""
        blocks = self._rows(batch.labels, batch.teacher[index], batch.student[index])
        self.moments.update(*blocks)
        if not self.n_boot:
            return
        z = np.concatenate(blocks, axis=1)
        w = poisson_weights(batch.keys, self.n_boot, self.boot_seed)
        sums = (w.sum(axis=1), w @ z, np.einsum("bn,ni,nj->bij", w, z, z, optimize=True))
        if self.weight_sums is None:
            self.weight_sums = sums
        else:
            self.weight_sums = tuple(a + b for a, b in zip(self.weight_sums, sums, strict=True))

    def finish(self, pair: tuple[str, str], *, measure: str, base: float, ci: float | None,
               n_boot: int, n_perm: int, measure_options: dict[str, Any],
               interval: str = "basic") -> LayerAudit:
        if measure_options:
            raise fail("measure_options", "are not used by the Gaussian estimator",
                       "Leave measure_options out with estimator='gaussian'", measure_options)
        dims = self.moments.dims
        r = self.moments.pid(measure=measure, base=math.e,
                             bias_correction=self.bias_correction)
        boot, dropped = np.zeros((0, 5)), 0
        if self.n_boot and ci is not None:
            w, s, c = self.weight_sums
            mean = s / w[:, None]
            covs = c / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
            covs = (covs + np.swapaxes(covs, 1, 2)) / 2
            boot, dropped = drop_failed(gaussian_vectors(covs, w, dims, measure,
                                                         self.bias_correction), "bootstrap")
        reps = Replicates(vector(r), boot, np.zeros((0, 5)), dropped, 0)
        values, intervals, _ = _summarised(reps, ci, interval, base)
        details = {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                   "block_dims": list(dims), "joint_mutual_information":
                   float(r.mutual_information) / math.log(base),
                   "solver_status": r.solver.status,
                   "bias_correction": self.bias_correction,
                   "projector_seed": self.projectors[0].random_state,
                   "bootstrap": "poisson", "bootstrap_seed": self.boot_seed,
                   "dropped_replicates": {"bootstrap": dropped, "null": 0}}
        return LayerAudit(pair[0], pair[1], values, intervals, details)
