r"""The one resampling engine: bootstrap and permutation-null replicates, intervals, bias,
spread and p-values, used by every estimator from samples and by the knowledge audits.

An estimator computes a vector :math:`v` of quantities in nats (for a PID: the atoms in lattice
order, then :math:`I(Y; X)`) for the point estimate, for :math:`B` bootstrap replicates and for
:math:`P` null replicates. This module draws the replicates, evaluates them through the
estimator's hooks and summarises them; the estimator only says how to reduce one draw to its
sufficient statistic (a count table, a covariance) and how to evaluate a stack of those in one
batched call.

Resampling (all from a :class:`numpy.random.Generator`; :func:`seed_sequences` derives
independent streams from one integer seed):

- :func:`bootstrap_counts`: ``N`` rows drawn with replacement, returned as the number of times
  each row (or each group of identical rows, e.g. a cell of a count table) is drawn. For
  single rows the indices are drawn uniformly (``Generator.integers``) and counted; for groups
  of ``w_k`` rows the counts are one draw of :math:`\mathrm{Multinomial}(N, w/N)`, the same
  distribution at a cost independent of ``N``.
- :func:`permutations`: the shuffle null permutes the target rows against the sources, which
  keeps both marginals and destroys every dependence between them. For a table of counts,
  :func:`shuffled_tables` draws the shuffled table itself (multivariate hypergeometric, cell by
  cell), the same distribution at a cost independent of ``N``.
- :func:`poisson_weights`: the one-pass Poisson bootstrap of a stream (weights
  :math:`w_{bi} \sim \mathrm{Poisson}(1)` drawn from a hash of each sample's key), for
  statistics accumulated batch by batch where the rows cannot be revisited.

Evaluation: :func:`bootstrap` and :func:`permutation_null` draw replicates in chunks of bounded
memory (:data:`CHUNK_ELEMENTS`), reduce each chunk with the estimator's ``reduce`` hook and
evaluate all reduced replicates with one call of its ``evaluate`` hook. A replicate that the
estimator cannot evaluate (``evaluate`` returns a row of NaN, e.g. a covariance that became
singular because a small resample holds too few distinct rows) is **dropped**: the count is
returned (and reported as ``details["dropped_replicates"]``), a warning is issued when more than
:data:`DROP_WARN` of the replicates are dropped, and an error is raised when none is left.

Summaries, for a level :math:`c` and the quantiles :math:`q_{(1-c)/2}, q_{(1+c)/2}` of the
replicates :math:`v^{*b}` (:func:`numpy.quantile`, linear interpolation):

- ``"percentile"`` interval :math:`[q_{(1-c)/2},\ q_{(1+c)/2}]`: the spread of the estimator.
- ``"basic"`` interval :math:`[2\hat v - q_{(1+c)/2},\ 2\hat v - q_{(1-c)/2}]` (Davison and
  Hinkley 1997, eq. 5.6): the replicates reflected around the estimate, which undoes the shift
  of biased (e.g. plug-in) replicates; an interval for the true value.
- ``"normal"`` interval, bias-corrected and boundary-aware: an interval for the true value,

  .. math::

      [\hat v - \hat b - z\, s^{*} - \tau,\ \hat v - \hat b + z\, s^{*} + \tau],
      \qquad \hat b = \bar v^{*} - \hat v,\quad z = \Phi^{-1}\!\left(\tfrac{1+c}{2}\right),

  with :math:`s^{*}` the standard deviation of the replicates (Davison and Hinkley 1997,
  eq. 5.5), then **extended to contain 0** for every quantity whose permutation p-value
  exceeds :math:`1 - c` (when null replicates exist; :func:`assemble` warns when they are too
  few for any p-value to be at most :math:`1 - c`, below :func:`smallest_n_perm`, 19 at
  :math:`c = 0.95`, since every interval then contains 0; :func:`check_null_size`). Why each
  part:

  * *bias-corrected centre, spread from the SD*: the plug-in bias is the main error of these
    estimators, and :math:`\hat b` removes it to first order, as the basic interval does; but
    the mean and SD of :math:`B` replicates are stable at the small :math:`B` of an audit
    (50-100), while the :math:`(1 \pm c)/2` quantiles of the basic and percentile intervals
    rest on the 2-3 most extreme replicates (Efron and Tibshirani 1993, sec. 19.3: about 1,000
    replicates for quantile-based intervals, 50-200 for a standard error). On count tables of
    a known-answer pmf with every atom nonzero (3 x 10 x 10, n = 10,000, 200 repeats; the
    knowledge audits' ``benchmarks/results/audit_interval_coverage.md``) the basic interval
    covered the truth in 89-94% of the repeats per quantity and this one in 90.5-94.5%.
  * *boundary*: PID atoms and informations are :math:`\ge 0`; where the truth is 0 the
    bootstrap is not consistent (Andrews 2000): the replicates, drawn from a table whose
    estimate is positive, do not reproduce how the estimator behaves at 0; and plug-in atoms
    have a point mass at 0, where the estimate and most replicates are 0 up to solver round-off
    (e.g. Uni(Y:T\S) of a parity, where 26% of the basic intervals of 200 repeats ended a
    round-off (about :math:`-10^{-16}`) below 0 and so missed a truth of 0). Two remedies:
    the bounds are widened by the solver round-off :math:`\tau` = :data:`TIE_TOL`, and 0 is
    added to the interval whenever the shuffle null does not reject at level :math:`1 - c`.
    The second is a test inversion with an exact test: under the null (target independent of
    the sources) every quantity is 0 and :math:`\Pr(p \le 1 - c) \le 1 - c`, so the interval
    contains the truth with probability at least :math:`c` whatever the bootstrap does; the
    same holds for :math:`I(Y; X_i) = 0` alone (the joint shuffle permutes the target against
    :math:`X_i` too). Elsewhere the interval is only extended, so its coverage can only rise; and a
    quantity reported as indistinguishable from chance never gets an interval that excludes 0.
- **No interval is ever clipped.** A basic or normal interval of a non-negative quantity can
  extend below 0 (the data are then consistent with 0 at that level) or lie entirely below the
  estimate (when the bias exceeds the sampling spread); both are reported as computed, so that
  the interval keeps its meaning and its coverage, and the reader sees how far the correction
  went. :data:`INTERVAL_NAMES` holds a short description of each kind for reports.
- Bias :math:`\bar v^{*} - \hat v` (Efron and Tibshirani 1993, ch. 10), and the spread
  (standard deviation, ``ddof=1``) of the replicates.
- p-value of each quantity against the null replicates :math:`v^{0b}` (Phipson and Smyth 2010):

  .. math::

      p = \frac{1 + \#\{b : v^{0b} \ge \hat v - \tau\}}{1 + P},

  valid (:math:`\Pr(p \le \alpha) \le \alpha`) when the null holds; :math:`\tau` =
  :data:`TIE_TOL` counts values equal up to solver round-off as ties.

Public names: :data:`INTERVALS`, :data:`INTERVAL_NAMES`, :data:`TIE_TOL`, :data:`DROP_WARN`,
:data:`CHUNK_ELEMENTS`, :data:`TABLE_BLOCK_ELEMENTS`, :func:`seed_sequences`,
:func:`bootstrap_counts`, :func:`permutations`, :func:`shuffled_tables`, :func:`poisson_weights`,
:func:`bootstrap`, :func:`permutation_null`, :func:`table_null`, :func:`drop_failed`,
:class:`Replicates`,
:func:`interval`, :func:`p_values`, :class:`Summary`, :func:`summarize`, :func:`vector`,
:func:`assemble`.

References
----------
A. Agresti, *Categorical Data Analysis*, 2nd ed., Wiley (2002).
D. W. K. Andrews, "Inconsistency of the bootstrap when a parameter is on the boundary of the
parameter space", Econometrica 68 (2000).
B. Efron, R. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall (1993).
A. C. Davison, D. V. Hinkley, *Bootstrap Methods and their Application*, Cambridge (1997).
B. Phipson, G. K. Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
Biol. 9 (2010).
J. A. Hanley, B. J. MacGibbon, "Creating non-parametric bootstrap samples using Poisson
frequencies", Comput. Methods Programs Biomed. 83 (2006).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ..errors import PIDTypeError, caller_stacklevel
from ..lattice import lattice, node_label
from ..result import PIDResult
from ..validation import check_choice, check_int, check_level, check_positive, check_seed, fail

__all__ = ["CHUNK_ELEMENTS", "DROP_WARN", "INTERVALS", "INTERVAL_NAMES", "TABLE_BLOCK_ELEMENTS",
           "TIE_TOL", "Replicates",
           "Summary", "assemble", "bootstrap", "bootstrap_counts", "check_null_size",
           "drop_failed", "interval", "p_values", "permutation_null", "permutations",
           "poisson_weights", "seed_sequences", "shuffled_tables", "smallest_n_perm", "summarize",
           "table_null", "vector"]

#: Kinds of bootstrap interval (see the module notes).
INTERVALS = ("percentile", "basic", "normal")

#: Short description of each interval kind, for the legends of reports and tables.
INTERVAL_NAMES = {
    "percentile": "percentile bootstrap interval (spread of the estimator)",
    "basic": "basic bootstrap interval (replicates reflected around the estimate)",
    "normal": "bias-corrected normal bootstrap interval, extended to 0 where the shuffle null "
              "does not reject",
}

#: Absolute tolerance (nats): solver round-off. A null replicate within it of the observed value
#: counts as a tie; the bounds of a ``"normal"`` interval are widened by it.
TIE_TOL = 1e-9

#: Fraction of dropped (unevaluable) replicates above which a warning is issued.
DROP_WARN = 0.05

#: Largest number of entries of one chunk of draws (``chunk size x rows``) held in memory.
CHUNK_ELEMENTS = 1 << 22

#: Entries of one block of shuffled tables drawn together by :func:`table_null` (``block x
#: R C``): the draws of :func:`shuffled_tables` depend on how many tables one call draws, so
#: the block is fixed by the table's size alone.
TABLE_BLOCK_ELEMENTS = 1 << 22


# -- seeds and draws ---------------------------------------------------------------------------
def seed_sequences(seed: Any) -> tuple[int, list[np.random.SeedSequence]]:
    """The seed actually used (checked by :func:`pidkit.validation.check_seed`; drawn from the
    OS when ``seed`` is None, so that it can be reported and the run repeated) and three
    independent child sequences: fitting (e.g. the discretisers), the bootstrap and the null."""
    seed = check_seed(seed)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    return seed, np.random.SeedSequence(seed).spawn(3)


def bootstrap_counts(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    r"""Multiplicities ``(size, K)`` (int64) of ``K`` groups of ``weights[k]`` identical rows in
    ``size`` resamples of the ``N = sum(weights)`` rows with replacement.

    All weights 1 (plain rows): ``N`` indices drawn by ``rng.integers(0, N, N)`` and counted.
    Otherwise one draw of :math:`\mathrm{Multinomial}(N, w / N)` per resample (same
    distribution, cost independent of ``N``). Resamples are drawn one after the other, so the
    result does not depend on how the draws are chunked.
    """
    size = check_int(size, "size", 0)
    _check_rng(rng)
    given = np.asarray(weights)
    if given.dtype.kind not in "biuf" or (given < 0).any() or (given != np.round(given)).any():
        raise fail("weights", "must be non-negative integer multiplicities",
                   "Pass one count of identical rows per group, e.g. np.ones(n, dtype=int)")
    weights = given.astype(np.int64)
    n = int(weights.sum())
    if n == 0:      # multinomial(0, 0/0): numpy's "pvals contains NaNs" and a RuntimeWarning
        raise fail("weights", "hold no rows (every multiplicity is 0)",
                   "Pass at least one row to resample")
    if size == 0:
        return np.zeros((0, weights.size), dtype=np.int64)
    if (weights == 1).all():
        return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)])
    p = weights / n
    return np.stack([rng.multinomial(n, p) for _ in range(size)]).astype(np.int64)


def permutations(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` permutations of ``range(n)``, shape ``(size, n)``, one ``rng.permutation(n)``
    each."""
    n, size = check_int(n, "n", 0), check_int(size, "size", 0)
    _check_rng(rng)
    if size == 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack([rng.permutation(n) for _ in range(size)])


def shuffled_tables(rng: np.random.Generator, table: np.ndarray, size: int) -> np.ndarray:
    r"""``size`` tables ``(size, R, C)`` (int64) of the counts of a ``R x C`` table ``table``
    (target rows, source cells) after a uniformly random permutation of the target labels
    against the sources: the same distribution as counting the rows of :func:`permutations`,
    at a cost independent of ``N``.

    The shuffled table keeps the row totals :math:`r_i` and the column totals :math:`c_j` and is
    multivariate hypergeometric (Fisher's exact-test distribution, Agresti 2002, sec. 3.5),
    drawn column by column and, within a column, row by row from the samples not yet placed:

    .. math::

        x_{ij} \sim \mathrm{Hypergeometric}\Big(\text{good} = r_i - \sum_{l<j} x_{il},\
        \text{bad} = \sum_{k>i} \big(r_k - \sum_{l<j} x_{kl}\big),\
        \text{draws} = c_j - \sum_{k<i} x_{kj}\Big);

    the last row and the last column take what is left. One ``rng.hypergeometric``
    call per cell (empty rows and columns skipped) draws it for all ``size`` tables at once,
    so the draws depend on ``size`` (:func:`table_null` fixes it by the table's size).
    numpy's sampler takes totals below :math:`10^9`.
    """
    size = check_int(size, "size", 0)
    _check_rng(rng)
    given = np.asarray(table)
    if (given.ndim != 2 or given.dtype.kind not in "biuf" or (given < 0).any()
            or (given != np.round(given)).any()):
        raise fail("table", f"must be a 2-D table of non-negative integer counts (got shape "
                   f"{given.shape}, dtype {given.dtype})", "Pass the counts as target rows x "
                   "source cells, e.g. counts.reshape(counts.shape[0], -1)")
    table = given.astype(np.int64)
    out = np.zeros((size, *table.shape), dtype=np.int64)
    rows, cols = np.flatnonzero(table.sum(axis=1)), np.flatnonzero(table.sum(axis=0))
    if size == 0 or rows.size == 0:
        return out
    left = np.tile(table.sum(axis=1)[rows], (size, 1))      # (size, live rows) not yet placed
    for j in cols[:-1]:
        need = np.full(size, table[:, j].sum())
        bad = left.sum(axis=1)
        for k, i in enumerate(rows[:-1]):
            bad -= left[:, k]
            drawn = rng.hypergeometric(left[:, k], bad, need)
            out[:, i, j] = drawn
            left[:, k] -= drawn
            need -= drawn
        out[:, rows[-1], j] = need
        left[:, -1] -= need
    out[:, rows, cols[-1]] = left
    return out


def _check_rng(rng: Any) -> None:
    """The draws come from a :class:`numpy.random.Generator` (an integer seed has no
    ``permutation``: a bare AttributeError)."""
    if not isinstance(rng, np.random.Generator):
        raise fail("rng", f"must be a numpy Generator, not {type(rng).__name__}",
                   "Pass e.g. np.random.default_rng(seed)", kind=PIDTypeError)


_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)

#: Cumulative probabilities of Poisson(1) at 0, 1, ..., 19 (beyond: weight 20, prob < 1e-19).
_POISSON_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=float))
                          for k in range(20)])


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective mixing of 64-bit integers (Steele et al. 2014)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def poisson_weights(keys: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    r"""Poisson bootstrap weights ``(n_boot, n)``: :math:`w_{bi} \sim \mathrm{Poisson}(1)` drawn
    from a hash of ``(seed, b, keys[i])`` (``keys``: uint64, one per sample), so each sample gets
    the same weights wherever it sits in a stream. Approximates resampling with replacement
    (Hanley and MacGibbon 2006) in one pass over the data; the size of replicate ``b`` is
    :math:`\sum_i w_{bi}` (about ``n``)."""
    n_boot, seed = check_int(n_boot, "n_boot", 0), check_int(seed, "seed", 0)
    rows = np.arange(n_boot, dtype=np.uint64)[:, None]
    keys = np.asarray(keys, dtype=np.uint64)
    with np.errstate(over="ignore"):
        u = _splitmix(_splitmix(keys[None, :] ^ _splitmix(rows + np.uint64(seed) * np.uint64(
            0x2545F4914F6CDD1D))))
    uniform = (u >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return np.searchsorted(_POISSON_CDF, uniform, side="right").astype(np.float64)


# -- evaluation --------------------------------------------------------------------------------
def _chunk(rows: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(rows, 1))


def drop_failed(values: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """The rows of ``values (B, m)`` without NaN, and how many were dropped (module notes):
    a warning above :data:`DROP_WARN` of ``B``, an error when none is left."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise fail(what, f"replicates must form a 2-D array (B, m), got shape {values.shape}",
                   "Return one row of quantities per replicate from evaluate")
    size = values.shape[0]
    ok = ~np.isnan(values).any(axis=1)
    dropped = int(size - ok.sum())
    if size and dropped == size:
        raise fail(what, f"none of the {size} replicates could be evaluated (every resample "
                   "gives a degenerate statistic, e.g. a singular covariance because it holds "
                   "too few distinct samples)",
                   "Pass more samples, or skip the resampling (n_boot=0 / n_perm=0)")
    if dropped > DROP_WARN * size:
        warnings.warn(f"{what}: {dropped} of {size} replicates could not be evaluated (a "
                      "degenerate statistic, e.g. a singular covariance of a small resample) "
                      "and were dropped; the intervals and p-values use the other "
                      f"{size - dropped}. Pass more samples for reliable uncertainty",
                      UserWarning, stacklevel=caller_stacklevel())
    return values[ok], dropped


def _evaluated(draw: Callable[[int], np.ndarray], reduce: Callable[[np.ndarray], Any],
               evaluate: Callable[[Any], np.ndarray], size: int, rows: int, what: str,
               step: int | None = None) -> tuple[np.ndarray, int]:
    """Draw ``size`` replicates chunk by chunk (``step`` at a time, default
    :data:`CHUNK_ELEMENTS` ``// rows``), reduce them, evaluate them in one call, and
    :func:`drop_failed`."""
    if size == 0:
        return np.zeros((0, 0)), 0
    parts = []
    step = _chunk(rows) if step is None else step
    for start in range(0, size, step):
        parts.append(reduce(draw(min(step, size - start))))
    stats = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return drop_failed(evaluate(stats), what)


def bootstrap(reduce: Callable[[np.ndarray], Any], evaluate: Callable[[Any], np.ndarray],
              weights: np.ndarray, n_boot: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, int]:
    """Bootstrap replicates ``(n_boot - dropped, m)`` and the number dropped.

    ``reduce(counts)`` turns a chunk of multiplicities ``(b, K)`` (:func:`bootstrap_counts` of
    ``weights``) into the sufficient statistics of those ``b`` replicates (an array whose first
    axis is ``b``: count tables, covariances); ``evaluate(stats)`` returns their vectors
    ``(B, m)`` in one batched call, a row of NaN for a replicate it cannot evaluate.
    """
    weights = np.asarray(weights)
    n_boot = check_int(n_boot, "n_boot", 0)
    return _evaluated(lambda k: bootstrap_counts(rng, weights, k), reduce, evaluate, n_boot,
                      weights.size, "bootstrap")


def permutation_null(reduce: Callable[[np.ndarray], Any], evaluate: Callable[[Any], np.ndarray],
                     n: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Null replicates ``(n_perm - dropped, m)`` and the number dropped: ``reduce(perms)``
    gets a chunk of :func:`permutations` ``(b, n)`` of the target rows; ``evaluate`` as in
    :func:`bootstrap`."""
    n_perm = check_int(n_perm, "n_perm", 0)
    return _evaluated(lambda k: permutations(rng, n, k), reduce, evaluate, n_perm, n,
                      "permutation null")


def table_null(reduce: Callable[[np.ndarray], Any], evaluate: Callable[[Any], np.ndarray],
               table: np.ndarray, n_perm: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, int]:
    """Null replicates as :func:`permutation_null`'s for a table of counts ``(R, C)`` (target
    rows, source cells), drawn by :func:`shuffled_tables`: ``reduce`` gets a chunk of shuffled
    tables ``(b, R, C)``, drawn :data:`TABLE_BLOCK_ELEMENTS` ``// (R C)`` at a time (a number
    fixed by the table, so that the replicates do not depend on :data:`CHUNK_ELEMENTS`)."""
    n_perm = check_int(n_perm, "n_perm", 0)
    table = np.asarray(table)
    block = max(1, TABLE_BLOCK_ELEMENTS // table.size)
    return _evaluated(lambda k: shuffled_tables(rng, table, k), reduce, evaluate, n_perm,
                      table.size, "permutation null", step=block)


@dataclass(frozen=True)
class Replicates:
    """The point estimate ``(m,)`` and the valid bootstrap ``(B, m)`` and null ``(P, m)``
    replicates of one vector of quantities (nats), with the numbers of dropped replicates."""

    point: np.ndarray
    boot: np.ndarray
    null: np.ndarray
    dropped_boot: int = 0
    dropped_null: int = 0

    def map(self, f: Callable[[np.ndarray], np.ndarray]) -> Replicates:
        """The replicates of derived quantities: ``f`` maps a stack ``(k, m)`` to ``(k, m')``
        (e.g. a linear map to sums of atoms)."""
        def apply(a: np.ndarray) -> np.ndarray:
            return f(a) if a.shape[0] else np.zeros((0, f(self.point[None]).shape[1]))
        return Replicates(f(self.point[None])[0], apply(self.boot), apply(self.null),
                          self.dropped_boot, self.dropped_null)


# -- summaries ---------------------------------------------------------------------------------
def _spread(boot: np.ndarray) -> np.ndarray:
    """Standard deviation (``ddof=1``) of the replicates ``(B, m)``; 0 for a single one."""
    return boot.std(axis=0, ddof=1) if boot.shape[0] > 1 else np.zeros(boot.shape[1])


def interval(point: np.ndarray, boot: np.ndarray, ci: float, kind: str = "percentile",
             p: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the ``kind`` interval at level ``ci`` (module notes); never
    clipped. ``p``: the permutation p-values of the quantities, used by ``"normal"`` only (0 is
    added to the interval of every quantity with ``p > 1 - ci``)."""
    kind = check_choice(kind, "interval", INTERVALS)
    ci = check_level(ci)
    point, boot = _matched(point, boot, "boot")
    if boot.shape[0] == 0:
        raise fail("boot", "holds no bootstrap replicates",
                   "Draw at least 2 replicates, or skip the interval (ci=None)")
    if kind == "normal":
        return _normal(point, boot, ci, p)
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    if kind == "basic":
        return 2 * point - hi, 2 * point - lo
    return lo, hi


def _normal(point: np.ndarray, boot: np.ndarray, ci: float, p: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray]:
    r"""The bias-corrected normal interval :math:`\hat v - \hat b \mp (z s^* + \tau)`,
    extended to 0 where ``p > 1 - ci`` (module notes)."""
    centre = 2 * point - boot.mean(axis=0)
    half = NormalDist().inv_cdf((1 + ci) / 2) * _spread(boot) + TIE_TOL
    lo, hi = centre - half, centre + half
    if p is not None:
        at_chance = p > 1 - ci
        lo = np.where(at_chance, np.minimum(lo, 0.0), lo)
        hi = np.where(at_chance, np.maximum(hi, 0.0), hi)
    return lo, hi


def _matched(point: Any, reps: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``point (m,)`` and replicates ``reps (B, m)`` as float arrays of matching widths, with
    no NaN: a NaN row marks a replicate that could not be evaluated, which :func:`drop_failed`
    removes before any summary (a quantile or p-value over it would be NaN or wrong)."""
    point, reps = np.asarray(point, dtype=np.float64), np.asarray(reps, dtype=np.float64)
    if reps.ndim != point.ndim + 1 or reps.shape[1:] != point.shape:
        raise fail(name, f"must hold one row of {point.shape} per replicate, has shape "
                   f"{reps.shape}", "Stack replicates of the same quantities as the point "
                   "estimate")
    if np.isnan(point).any():
        raise fail("point", "holds NaN", "Summarise a point estimate that could be evaluated")
    failed = np.isnan(reps).any(axis=tuple(range(1, reps.ndim)))
    if failed.any():
        raise fail(name, f"holds {int(failed.sum())} replicate(s) with NaN (replicates that "
                   "could not be evaluated)", "Drop them first with "
                   "pidkit.estimate.uncertainty.drop_failed, as bootstrap and "
                   "permutation_null do")
    return point, reps


def p_values(point: np.ndarray, null: np.ndarray, tol: float = TIE_TOL) -> np.ndarray:
    """Permutation p-values :math:`(1 + \\#\\{v^0 \\ge \\hat v - \\tau\\}) / (1 + P)`."""
    point, null = _matched(point, null, "null")
    tol = check_positive(tol, "tol", allow_zero=True)
    return (1 + (null >= point - tol).sum(axis=0)) / (1 + null.shape[0])


@dataclass(frozen=True)
class Summary:
    """Per quantity: interval bounds, bootstrap bias and spread (``None`` without bootstrap
    replicates), p-values (``None`` without null replicates); all in the units of the
    replicates."""

    lower: np.ndarray | None
    upper: np.ndarray | None
    bias: np.ndarray | None
    std: np.ndarray | None
    p_values: np.ndarray | None


def smallest_n_perm(ci: float) -> int:
    r"""The fewest shuffles whose smallest p-value, :math:`1 / (n_\mathrm{perm} + 1)`, is at most
    :math:`1 - \mathrm{ci}` (19 for ``ci=0.95``, 99 for ``ci=0.99``), with the comparison of
    :func:`interval` (it extends the ``"normal"`` interval to 0 where ``p > 1 - ci``)."""
    ci = check_level(ci)
    n = max(1, math.ceil(1 / (1 - ci)) - 2)       # the closed form, less one for rounding
    while 1 / (n + 1) > 1 - ci:                   # at most two steps of the same comparison
        n += 1
    return n


def check_null_size(n_perm: int, ci: float | None, kind: str,
                    stacklevel: int | None = None) -> None:
    r"""Warn when the shuffle null is too small for the boundary rule of the ``"normal"``
    interval.

    That interval is extended to contain 0 for every quantity whose permutation p-value exceeds
    ``1 - ci``; with ``n_perm`` shuffles no p-value is below :math:`1 / (n_\mathrm{perm} + 1)`,
    so for ``0 < n_perm <`` :func:`smallest_n_perm` every interval contains 0, whatever the
    data (with 10 shuffles every p-value is at least 1/11 > 0.05; an AND gate's 0.31-bit
    redundancy got the interval [0, 0.32] from 5). The estimate still stands (its values and
    p-values are valid; only the intervals are uninformative about 0), with a
    :class:`UserWarning` naming the smallest ``n_perm`` that works (``stacklevel``: of
    :func:`warnings.warn`; by default the first frame outside pidkit,
    :func:`pidkit.errors.caller_stacklevel`)."""
    n_perm = check_int(n_perm, "n_perm", 0)
    kind = check_choice(kind, "interval", INTERVALS)
    if ci is None or kind != "normal" or n_perm == 0:
        return
    needed = smallest_n_perm(ci)
    if n_perm < needed:
        warnings.warn(f"n_perm={n_perm} is too small for ci={ci:g}: the smallest p-value of "
                      f"{n_perm} shuffles is 1/{n_perm + 1} = {1 / (n_perm + 1):.3g}, above "
                      f"1 - ci = {1 - ci:.3g}, so every 'normal' interval is extended to "
                      f"contain 0 whatever the data. Use n_perm >= {needed}, or n_perm=0 (no "
                      "shuffle null), or interval='basic' or 'percentile' (not extended)",
                      UserWarning,
                      stacklevel=caller_stacklevel() if stacklevel is None else stacklevel)


def summarize(reps: Replicates, ci: float | None, kind: str = "percentile") -> Summary:
    """Intervals (level ``ci``, kind ``kind``; none when ``ci`` is None or no bootstrap replicate
    exists), bias, spread and p-values of ``reps`` (the p-values also feed the boundary rule of
    the ``"normal"`` interval)."""
    if not isinstance(reps, Replicates):
        raise fail("reps", f"must be Replicates, not {type(reps).__name__}",
                   "Pass the replicates of count_replicates or of the bootstrap engine",
                   kind=PIDTypeError)
    lo = hi = bias = std = p = None
    if reps.null.shape[0]:
        p = p_values(reps.point, reps.null)
    if reps.boot.shape[0] and ci is not None:
        lo, hi = interval(reps.point, reps.boot, ci, kind, p)
        bias = reps.boot.mean(axis=0) - reps.point
        std = _spread(reps.boot)
    return Summary(lo, hi, bias, std, p)


def vector(result: PIDResult) -> np.ndarray:
    """Atoms in lattice order followed by the mutual information, as float64."""
    if not isinstance(result, PIDResult):
        raise fail("result", f"must be a PIDResult, not {type(result).__name__}",
                   "Pass the result of pidkit.pid or pid_from_samples", kind=PIDTypeError)
    nodes = lattice(result.n_sources).nodes
    return np.array([float(result.atoms[a]) for a in nodes] + [float(result.mutual_information)])


def assemble(point: PIDResult, reps: Replicates, ci: float | None, details: dict[str, Any],
             base: float, kind: str = "percentile") -> PIDResult:
    """The final result in units of ``base``: the point estimate (computed in nats, ``reps``
    of :func:`vector`) with intervals of kind ``kind``, and p-values, bias, spread and dropped
    replicates in ``details``."""
    scale = 1.0 / math.log(base)
    nodes = lattice(point.n_sources).nodes
    labels = [node_label(a) for a in nodes]
    s = summarize(reps, ci, kind)
    est = reps.point
    extra: dict[str, Any] = {}
    intervals = None
    if s.lower is not None:
        check_null_size(reps.null.shape[0], ci, kind)
        lo, hi = s.lower * scale, s.upper * scale
        bias, spread = s.bias * scale, s.std * scale
        intervals = {a: (float(lo[i]), float(hi[i])) for i, a in enumerate(nodes)}
        extra["mutual_information_interval"] = (float(lo[-1]), float(hi[-1]))
        extra["interval"] = kind
        extra["bias"] = {"method": "bootstrap", "atoms": dict(zip(labels, bias[:-1].tolist(),
                                                                     strict=True)),
                         "mutual_information": float(bias[-1])}
        extra["bootstrap_std"] = {**dict(zip(labels, spread[:-1].tolist(), strict=True)),
                                  "mutual_information": float(spread[-1])}
    if s.p_values is not None:
        p = s.p_values
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
    extra["dropped_replicates"] = {"bootstrap": reps.dropped_boot, "null": reps.dropped_null}
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
