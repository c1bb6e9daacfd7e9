r"""Uncertainty of an estimated PID: bootstrap intervals and bias, shuffle-null p-values.

An estimator route computes the vector :math:`v = (\text{atoms in lattice order}, I(Y; X))` in
nats for the point estimate, for :math:`B` bootstrap replicates (samples redrawn with
replacement) and for :math:`P` null replicates (the target shuffled against the sources, which
keeps both marginals and destroys every dependence between them), each stack in one batched
solve where the measure allows it, and :func:`assemble` turns them into a result.

- Interval at level :math:`c` from the quantiles :math:`q_{(1-c)/2}, q_{(1+c)/2}` of the
  :math:`B` replicates :math:`v^{*b}`: ``"percentile"`` :math:`[q_{(1-c)/2}, q_{(1+c)/2}]`, or
  ``"basic"`` :math:`[2\hat v - q_{(1+c)/2},\ 2\hat v - q_{(1-c)/2}]` (Davison and Hinkley
  1997, eq. 5.6), which reflects the replicates around the estimate and so undoes the upward
  shift of plug-in replicates; it can extend below 0 for an atom near 0.
- Bias: :math:`\widehat{\mathrm{bias}} = \bar v^{*} - \hat v`, the bootstrap estimate of
  :math:`E[\hat v] - v` (Efron and Tibshirani 1993, ch. 10); ``estimate - bias`` is the
  bias-corrected value.
- p-value of each atom against the shuffle null (Phipson and Smyth 2010):

  .. math::

      p = \frac{1 + \#\{b : v^{0b} \ge \hat v - \tau\}}{1 + P},

  valid (:math:`\Pr(p \le \alpha) \le \alpha`) under independence of target and sources, with a
  tolerance :math:`\tau` = :data:`TIE_TOL` so that atoms equal up to solver round-off count as
  ties.

References
----------
B. Efron, R. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall (1993).
A. C. Davison, D. V. Hinkley, *Bootstrap Methods and their Application*, Cambridge (1997).
B. Phipson, G. K. Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
Biol. 9 (2010).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PIDTypeError
from ..lattice import lattice, node_label
from ..result import PIDResult
from ..validation import fail

#: Absolute tolerance (nats) below which a null replicate counts as tying the observed value.
TIE_TOL = 1e-9

#: Kinds of bootstrap interval.
INTERVALS = ("percentile", "basic")

@dataclass(frozen=True)
class Resampled:
    """Bootstrap and null replicates, shape ``(B, m)`` and ``(P, m)``, in nats."""

    boot: np.ndarray
    null: np.ndarray


def vector(result: PIDResult) -> np.ndarray:
    """Atoms in lattice order followed by the mutual information, as float64."""
    nodes = lattice(result.n_sources).nodes
    return np.array([float(result.atoms[a]) for a in nodes] + [float(result.mutual_information)])


def assemble(point: PIDResult, draws: Resampled, ci: float, details: dict[str, Any],
             base: float, interval: str = "percentile") -> PIDResult:
    """The final result in units of ``base``: the point estimate (computed in nats) with
    bootstrap intervals of kind ``interval``, and p-values, bias and spread in ``details``."""
    scale = 1.0 / math.log(base)
    nodes = lattice(point.n_sources).nodes
    est = vector(point)
    labels = [node_label(a) for a in nodes]
    extra: dict[str, Any] = {}
    intervals = None
    if draws.boot.shape[0]:
        lo, hi = np.quantile(draws.boot, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
        if interval == "basic":
            lo, hi = 2 * est - hi, 2 * est - lo
        lo, hi = lo * scale, hi * scale
        bias = (draws.boot.mean(axis=0) - est) * scale
        spread = draws.boot.std(axis=0, ddof=1) * scale if draws.boot.shape[0] > 1 else bias * 0
        intervals = {a: (float(lo[i]), float(hi[i])) for i, a in enumerate(nodes)}
        extra["mutual_information_interval"] = (float(lo[-1]), float(hi[-1]))
        extra["interval"] = interval
        extra["bias"] = {"method": "bootstrap", "atoms": dict(zip(labels, bias[:-1].tolist(),
                                                                     strict=True)),
                         "mutual_information": float(bias[-1])}
        extra["bootstrap_std"] = {**dict(zip(labels, spread[:-1].tolist(), strict=True)),
                                  "mutual_information": float(spread[-1])}
    if draws.null.shape[0]:
        hits = (draws.null >= est - TIE_TOL).sum(axis=0)
        p = (1 + hits) / (1 + draws.null.shape[0])
        n = point.n_sources
        by_label = dict(zip(labels, p[:-1].tolist(), strict=True))
        extra["p_values"] = {
            "redundancy": by_label[node_label(lattice(n).bottom)],
            "unique": tuple(by_label[node_label(((i,),))] for i in range(n)),
            "synergy": by_label[node_label(lattice(n).top)],
            "mutual_information": float(p[-1]),
            "atoms": by_label,
            "null": "target shuffled against the sources",
        }
    return PIDResult(
        atoms={a: float(est[i]) * scale for i, a in enumerate(nodes)},
        measure=point.measure,
        base=base,
        mutual_information=float(est[-1]) * scale,
        solver=point.solver.scaled(scale),
        source_names=point.source_names,
        target_name=point.target_name,
        intervals=intervals,
        details={**details, **extra},
    )


def seed_sequences(seed: Any) -> tuple[int, list[np.random.SeedSequence]]:
    """The seed actually used (drawn from the OS when ``seed`` is None, so that it can be
    reported and the run repeated) and three independent child sequences: fitting the
    discretisers, the bootstrap and the shuffle null."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise fail("seed", "must be a non-negative integer or None",
                   "Pass e.g. seed=0 for reproducible results", seed, kind=PIDTypeError)
    seed = int(seed)
    return seed, np.random.SeedSequence(seed).spawn(3)
