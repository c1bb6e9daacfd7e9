r"""The estimators of an audit, one object per layer pair: fitted once, fed batch by batch with
the streamed features, finished into a :class:`~pidkit_distill.audits.report.LayerAudit`.

- :class:`DiscretePair` (``"paper"``, ``"paper-cifar10"``, ``"paper-cifar100"``,
  ``"discretize"``): a :class:`pidkit.estimate.Discretizer` per side (flatten, scaling, PCA,
  KMeans), codes accumulated in :class:`pidkit.estimate.JointCounts` (summable), then
  :func:`pidkit.estimate.pid_from_counts`: plug-in BROJA with multinomial bootstrap intervals and
  shuffle-null p-values. :math:`I(Y;T)` and :math:`I(Y;S)` get their own multinomial bootstrap on
  the marginal tables.
- :class:`GaussianPair` (``"gaussian"``): a :class:`pidkit.estimate.Projector` per side (scaling,
  PCA), the target one-hot encoded (last column dropped), moments accumulated in
  :class:`pidkit.estimate.GaussianMoments` (summable), then :func:`pidkit.gaussian_pid` of the
  covariance. Intervals come from a one-pass Poisson bootstrap: replicate :math:`b` weighs sample
  :math:`i` by :math:`w_{bi} \sim \mathrm{Poisson}(1)` drawn from the sample's key, so the
  replicates are accumulated while streaming.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .report import LayerAudit
from .stream import Batch, poisson_weights

__all__ = ["DISCRETE_PRESETS", "ESTIMATORS", "GAUSSIAN_DEFAULTS", "INTERVALS", "DiscretePair",
           "GaussianPair", "bootstrap_interval", "values_of"]

#: Audit estimator name -> preset of :data:`pidkit.estimate.PRESETS` (``None``: custom).
DISCRETE_PRESETS = {"paper": "paper-cifar10", "paper-cifar10": "paper-cifar10",
                    "paper-cifar100": "paper-cifar100", "discretize": None}

#: Every audit estimator.
ESTIMATORS = (*DISCRETE_PRESETS, "gaussian")

#: Defaults of the Gaussian route: L2-normalise each sample, keep 10 principal components.
GAUSSIAN_DEFAULTS = {"n_components": 10, "scaling": "l2"}


def values_of(result) -> dict[str, float]:
    """The six audited quantities of a bivariate :class:`pidkit.PIDResult` (sources T, S)."""
    red = float(result.redundancy)
    uni_t, uni_s = (float(u) for u in result.unique)
    return {"mi_teacher": red + uni_t, "mi_student": red + uni_s, "redundancy": red,
            "unique_teacher": uni_t, "unique_student": uni_s, "synergy": float(result.synergy)}


def _mutual_information(tables: np.ndarray) -> np.ndarray:
    r"""Plug-in :math:`I(Y;X)` in nats of a stack of 2-D tables of counts ``(B, k_y, k_x)``:
    :math:`H(Y) + H(X) - H(Y, X)`, clipped at 0, shape ``(B,)``."""
    p = tables / tables.sum(axis=(1, 2), keepdims=True)

    def h(q: np.ndarray) -> np.ndarray:
        q = q.reshape(q.shape[0], -1)
        logs = np.log(np.where(q > 0, q, 1))
        return -(q * logs).sum(axis=1)

    return np.maximum(h(p.sum(axis=2)) + h(p.sum(axis=1)) - h(p), 0.0)


def _percentiles(draws: np.ndarray, ci: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


#: Kinds of bootstrap interval.
INTERVALS = ("basic", "percentile")


def bootstrap_interval(point: float, lo: float, hi: float, kind: str) -> tuple[float, float]:
    r"""The interval of kind ``kind`` from the bootstrap quantiles ``lo``, ``hi`` of a point
    estimate :math:`\hat\theta` of a non-negative quantity.

    ``"percentile"``: :math:`[q_{lo}, q_{hi}]`. ``"basic"`` (Davison and Hinkley 1997, eq. 5.6):
    :math:`[2\hat\theta - q_{hi}, 2\hat\theta - q_{lo}]`, clipped at 0. Plug-in information
    estimates are biased upwards and their bootstrap replicates twice as much; the basic interval
    reflects the replicates around the estimate and so corrects that shift, which the percentile
    interval does not: for an independent student the percentile interval of Red can exclude 0
    while the basic one covers it. The same reflection moves the basic interval of a small atom
    whose bias exceeds its sampling spread entirely below the point estimate (an interval for
    the true value, which the biased estimate overstates); docs/audit.md shows an example.
    """
    if kind == "percentile":
        return lo, hi
    return max(2 * point - hi, 0.0), max(2 * point - lo, 0.0)


class DiscretePair:
    """Discretise both sides, count, and decompose (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence):
        from pidkit.estimate import Discretizer

        fit, self._boot = seeds.spawn(2)
        # One seed for both sides: identical features get identical codes (a copying student
        # shows Uni(Y:T\S) = Syn = 0 exactly).
        state = int(fit.generate_state(1)[0])
        self.discretizers = [Discretizer(**settings, random_state=state) for _ in range(2)]
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
        from pidkit.estimate import pid_from_counts

        table = self.counts.counts
        seed_atoms, seed_mi = (int(s.generate_state(1)[0]) for s in self._boot.spawn(2))
        boots = n_boot if ci is not None else 0
        r = pid_from_counts(table, measure=measure, base=base, ci=ci or 0.95, n_boot=boots,
                            n_perm=n_perm, seed=seed_atoms, measure_options=measure_options)
        values = values_of(r)
        intervals = None
        if boots:
            intervals = {key: bootstrap_interval(values[key], *r.intervals[node], interval)
                         for key, node in (("redundancy", ((0,), (1,))),
                                           ("unique_teacher", ((0,),)),
                                           ("unique_student", ((1,),)), ("synergy", ((0, 1),)))}
            rng = np.random.default_rng(seed_mi)
            n, scale = int(table.sum()), 1 / math.log(base)
            for key, axis in (("mi_teacher", 2), ("mi_student", 1)):
                marginal = table.sum(axis=axis)
                p = (marginal / n).ravel()
                draws = _mutual_information(rng.multinomial(n, p, size=boots).reshape(
                    boots, *marginal.shape))
                lo, hi = _percentiles(draws * scale, ci)
                intervals[key] = bootstrap_interval(values[key], lo, hi, interval)
        details = {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                   "teacher_codes": int(self.discretizers[0].n_codes_),
                   "student_codes": int(self.discretizers[1].n_codes_),
                   "occupied_cells": int(r.details["occupied_cells"]),
                   "joint_mutual_information": float(r.mutual_information),
                   "solver_status": r.solver.status,
                   "discretizer_seed": self.discretizers[0].random_state,
                   "bootstrap_seeds": [seed_atoms, seed_mi]}
        if r.solver.certificate is not None:
            details["certified_gap"] = float(r.solver.certificate.gap)
        if "p_values" in r.details:
            pv = r.details["p_values"]
            details["p_values"] = {"redundancy": pv["redundancy"],
                                   "unique_teacher": pv["unique"][0],
                                   "unique_student": pv["unique"][1], "synergy": pv["synergy"],
                                   "null": pv["null"]}
        return LayerAudit(pair[0], pair[1], values, intervals, details)


class GaussianPair:
    """Project both sides, accumulate moments (and Poisson-bootstrap replicates), decompose the
    covariance with :func:`pidkit.gaussian_pid` (see the module notes)."""

    def __init__(self, settings: dict[str, Any], seeds: np.random.SeedSequence,
                 n_classes: int, n_boot: int):
        from pidkit.estimate import Projector

        fit, boot = seeds.spawn(2)
        state = int(fit.generate_state(1)[0])
        self.projectors = [Projector(settings["n_components"], scaling=settings["scaling"],
                                     dtype="float64", random_state=state) for _ in range(2)]
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
        import pidkit

        dims = self.moments.dims

        def decompose(cov: np.ndarray):
            return pidkit.gaussian_pid(cov, dims=dims, measure=measure, base=base,
                                       **measure_options)

        r = decompose(self.moments.to_covariance())
        values = values_of(r)
        intervals = None
        if self.n_boot and ci is not None:
            w, s, c = self.weight_sums
            draws = []
            for b in range(self.n_boot):
                mean = s[b] / w[b]
                cov = c[b] / w[b] - np.outer(mean, mean)
                draws.append(values_of(decompose((cov + cov.T) / 2)))
            intervals = {k: bootstrap_interval(values[k], *_percentiles(
                np.array([d[k] for d in draws]), ci), interval) for k in values}
        details = {"teacher_dim": self._dims[0], "student_dim": self._dims[1],
                   "block_dims": list(dims), "joint_mutual_information":
                   float(r.mutual_information), "solver_status": r.solver.status,
                   "projector_seed": self.projectors[0].random_state,
                   "bootstrap": "poisson", "bootstrap_seed": self.boot_seed}
        return LayerAudit(pair[0], pair[1], values, intervals, details)

