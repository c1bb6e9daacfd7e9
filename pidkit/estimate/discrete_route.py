r"""The discrete route: a table of joint counts -> plug-in pmf -> any discrete measure, with
bootstrap intervals, shuffle-null p-values and bias estimates computed from the table alone.

The resampling is the engine's (:mod:`pidkit.estimate.uncertainty`): the cells are groups of
identical rows, so a bootstrap replicate is one draw of :math:`\mathrm{Multinomial}(N, \hat p)`
over the cells, whatever :math:`N`; a null replicate permutes the target codes against the source
codes (rows rebuilt from the table). The plug-in mutual information is biased upwards; the
Miller-Madow approximation of that bias is

.. math::

    E[\hat I] - I \approx \frac{K_{YX} - K_Y - K_X + 1}{2N}\ \text{nats},

with :math:`K` the number of occupied cells of each (marginal) table (Miller 1955; Paninski
2003). It is reported next to the bootstrap bias of every atom.

References
----------
G. A. Miller, "Note on the bias of information estimates" (1955).
L. Paninski, "Estimation of entropy and mutual information", Neural Comput. 15 (2003).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from .._threads import one_blas_thread
from ..decompose import check_measure_options, pid
from ..errors import ConvergenceWarning, PIDTypeError, caller_stacklevel
from ..lattice import lattice
from ..result import PIDResult, SolverInfo
from ..validation import (
    as_host_array,
    check_base,
    check_bootstrap,
    check_choice,
    check_int,
    check_options,
    fail,
)
from ._checks import warn_constant
from .uncertainty import (
    INTERVALS,
    Replicates,
    assemble,
    bootstrap,
    permutation_null,
    seed_sequences,
    table_null,
    vector,
)

__all__ = ["pid_from_counts", "count_replicates", "miller_madow_mi_bias", "MAX_NULL_SAMPLES",
           "MAX_PERMUTED_SAMPLES", "TABLE_NULL_RATIO", "REPLICATE_TOL_BITS"]

#: Certified gap (bits) of BROJA on bootstrap and null replicates unless ``measure_options``
#: set ``tol`` (the point estimate keeps the measure's default, 1e-9 bits). A replicate only
#: feeds an interval, a bias or a p-value, whose resolution is the sampling spread (about
#: 1e-3 bits at N = 10^6), so 1e-7 bits loses nothing and spares replicates of sparse tables
#: iterations (and, before the solver's crossover, ConvergenceWarnings at gaps near 1e-9).
#: Atoms clipped at the end of their admissible interval stay exact; a null replicate of a
#: unique information that is 0 reads at most this high, which only makes p-values
#: conservative.
REPLICATE_TOL_BITS = 1e-7


def _trimmed(counts: np.ndarray) -> np.ndarray:
    """The table without outcomes that never occur (the PID does not depend on them)."""
    for axis in range(counts.ndim):
        other = tuple(a for a in range(counts.ndim) if a != axis)
        keep = counts.sum(axis=other) > 0
        if not keep.all():
            counts = np.compress(keep, counts, axis=axis)
    return counts


def _pid_of_counts(counts: np.ndarray, measure: str, options: dict[str, Any]) -> PIDResult:
    table = _trimmed(counts)
    return pid(table / table.sum(), measure=measure, base=math.e, **options)


def _vectors(tables: np.ndarray, measure: str, options: dict[str, Any],
             width: int) -> np.ndarray:
    """Atoms (lattice order) and mutual information, nats, of a stack of count tables
    ``(B, k_y, k_0, ...)``: shape ``(B, width)``. Bivariate BROJA solves the whole stack in one
    batched call of :func:`pidkit.discrete.broja.broja` (zero cells and unused outcomes are
    handled exactly, so no trimming is needed), with one BLAS thread (:mod:`pidkit._threads`); other
    measures solve table by table. BROJA runs at :data:`REPLICATE_TOL_BITS` unless
    ``options`` set ``tol``."""
    if tables.shape[0] == 0:
        return np.zeros((0, width))
    if measure.lower() == "broja" and tables.ndim == 4:
        from ..discrete.broja import broja

        p = tables / tables.sum(axis=(1, 2, 3), keepdims=True)
        with one_blas_thread():
            r = broja(p, base=math.e, batch=True, **{"tol": REPLICATE_TOL_BITS, **options})
        columns = [r.atoms[a] for a in lattice(2).nodes] + [r.mutual_information]
        return np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)
    return np.array([vector(_pid_of_counts(t, measure, options)) for t in tables])


def miller_madow_mi_bias(counts: np.ndarray) -> float:
    """Miller-Madow approximation (nats) of the bias of the plug-in :math:`I(Y; X_0, ...)` of a
    table of counts ``counts[y, x0, ...]`` (checked by :func:`check_counts`)."""
    counts = check_counts(counts)
    n = counts.sum()
    k_yx = np.count_nonzero(counts)
    k_y = np.count_nonzero(counts.sum(axis=tuple(range(1, counts.ndim))))
    k_x = np.count_nonzero(counts.sum(axis=0))
    return float((k_yx - k_y - k_x + 1) / (2 * n))


def check_counts(counts: Any) -> np.ndarray:
    """A table of non-negative integer counts with a target axis and at least one source axis."""
    arr = as_host_array(counts, "counts", must="an array of counts",
                        fix="Pass counts[y, x0, x1, ...]",
                        ragged_fix="Give every axis the same length (pad with zero counts)")
    if arr.dtype.kind not in "biuf":
        raise fail("counts", f"must hold numbers, not dtype {arr.dtype}",
                   "Pass an integer array of counts", kind=PIDTypeError)
    if arr.ndim < 2:
        raise fail("counts", f"needs a target axis and source axes, has {arr.ndim} axes",
                   "Pass counts[y, x0, x1, ...]")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
        raise fail("counts", "holds non-integer values",
                   "Pass counts of samples (integers); for a pmf use pidkit.pid")
    if (arr < 0).any():
        raise fail("counts", "holds negative counts", "Counts must be >= 0")
    if arr.size and float(arr.max()) >= 2.0**63:  # would wrap in int64
        raise fail("counts", f"holds a count of {arr.max():.3g}, more than int64 holds",
                   "Pass counts of samples (at most 2**63 - 1 per cell)")
    total = float(arr.sum(dtype=np.float64))
    if total >= 2.0**63:  # the int64 sum would wrap (to a negative or small total)
        raise fail("counts", f"hold {total:.3g} samples in all, more than int64 holds",
                   "Pass counts of at most 2**63 - 1 samples in all (divide them by a common "
                   "factor, or pass their pmf to pidkit.pid)")
    arr = arr.astype(np.int64)
    if arr.sum() < 2:
        raise fail("counts", "hold fewer than 2 samples", "Count more samples", int(arr.sum()))
    return arr


def canonical_table(table: np.ndarray) -> np.ndarray:
    """The count table with the outcomes of every variable in an order that does not depend on
    their labels, so that any relabelling of any variable (which permutes the indices of its
    axis) gives the same table: the same point estimate, and with the same seed the same
    bootstrap and null replicates.

    The order is that of colour refinement (Weisfeiler-Leman): every index of every axis starts
    with one colour; a round gives each index a new colour from its old one and the multiset of
    pairs (count, colours of the other axes' indices) over its slice, and rounds repeat until no
    colour class splits; indices then sort by colour. A multiset is summarised by a sum of
    64-bit hashes of its pairs (:func:`_mix`, order-free, no sorting), and colours are ranks of
    those sums: functions of the counts alone, never of the labels (a hash collision only
    merges two classes). Where indices with different slices keep one colour (a symmetric
    table, e.g. the counts of XOR), the first of them gets a colour of its own and refinement
    resumes (individualisation-refinement, as in graph canonisation; McKay and Piperno 2014):
    such indices are exchanged by a symmetry of the table, so the choice does not change the
    result (checked on 2,100 relabelled random tables, sparse and symmetric ones included).
    Cost: a few passes over the table per round (0.2 s for 2 x 10^6 cells); each
    individualisation costs a few more, so at most :data:`INDIVIDUALISATION_CELLS` divided by
    the number of cells are made (a 500-state copy, 500 x 500 x 2, needed 500 of them: 7.8 s),
    and ties left after that keep their input order.

    References
    ----------
    B. D. McKay, A. Piperno, "Practical graph isomorphism, II", J. Symb. Comput. 60 (2014).
    """
    counts = _mix(table.astype(np.uint64))
    colors = _stable([np.zeros(k, dtype=np.uint64) for k in table.shape], counts)
    for _ in range(min(sum(table.shape), max(1, INDIVIDUALISATION_CELLS // table.size))):
        tie = _first_tie(table, colors)
        if tie is None:
            break
        axis, chosen = tie
        colors[axis] = colors[axis] * np.uint64(2) + np.uint64(1)
        colors[axis][chosen] -= np.uint64(1)
        colors = _stable(colors, counts)
    order = [np.lexsort((np.arange(k), c)) for k, c in zip(table.shape, colors, strict=True)]
    return table[np.ix_(*order)]


#: Budget of :func:`canonical_table`'s individualisations, in cells: about 30 ns per cell each
#: (2-core AMD EPYC), so at most about 0.3 s whatever the table.
INDIVIDUALISATION_CELLS = 10_000_000


def _stable(colors: list[np.ndarray], counts: np.ndarray) -> list[np.ndarray]:
    """Refinement rounds (:func:`_refined`) until no colour class splits."""
    classes = [len(np.unique(c)) for c in colors]
    for _ in range(sum(counts.shape)):                # each round splits a class, or stops
        colors = [_refined(counts, colors, axis) for axis in range(counts.ndim)]
        split = [int(c.max()) + 1 for c in colors]
        if split == classes:
            break
        classes = split
    return colors


def _first_tie(table: np.ndarray, colors: list[np.ndarray]) -> tuple[int, int] | None:
    """The first colour class (by axis, then colour) whose indices hold different slices, as
    ``(axis, its first index)``, or None. Its indices are interchangeable for every label-free
    rule so far, which in tables (unlike some regular graphs) means a symmetry of the table:
    picking any of them, then refining again, gives the same table."""
    for axis, c in enumerate(colors):
        values, first, sizes = np.unique(c, return_index=True, return_counts=True)
        slices = np.moveaxis(table, axis, 0).reshape(table.shape[axis], -1)
        for value, start, size in zip(values, first, sizes, strict=True):
            if size > 1:
                members = np.flatnonzero(c == value)
                if not (slices[members] == slices[members[0]]).all():
                    return axis, int(start)
    return None


#: Multipliers of the 64-bit finaliser of SplitMix64 (Steele, Lea, Flood 2014), and the
#: constants that tell apart the uses of :func:`_mix` in :func:`_refined`.
_MIX_A, _MIX_B = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_CELL, _OWN = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of ``x`` (uint64, wrapping arithmetic): a bijection of 64-bit
    integers whose outputs of nearby inputs look unrelated."""
    x = (x ^ (x >> np.uint64(30))) * _MIX_A
    x = (x ^ (x >> np.uint64(27))) * _MIX_B
    return x ^ (x >> np.uint64(31))


def _refined(counts: np.ndarray, colors: list[np.ndarray], axis: int) -> np.ndarray:
    """One refinement round of :func:`canonical_table` for ``axis``: the new colour of each
    index is the rank of ``mix(old colour) + sum over its slice of mix(count hash, colours of
    the cell's other indices)`` (uint64 sums wrap)."""
    ndim = counts.ndim
    cell = np.zeros((1,) * ndim, dtype=np.uint64)
    for b in range(ndim):
        if b != axis:
            shape = [1] * ndim
            shape[b] = -1
            cell = _mix(cell * _CELL + colors[b].reshape(shape) + np.uint64(1))
    pairs = _mix(counts ^ cell)
    total = np.moveaxis(pairs, axis, 0).reshape(counts.shape[axis], -1).sum(
        axis=1, dtype=np.uint64)
    signature = total + _mix(colors[axis] + _OWN)
    return np.unique(signature, return_inverse=True)[1].reshape(-1).astype(np.uint64)


#: Most samples of a count table whose shuffle null :func:`count_replicates` draws by permuting
#: the samples one by one (index arrays of 8 bytes per sample: about 32 bytes per sample in all,
#: 3 GiB at this size); larger tables always take the shuffled tables of
#: :func:`~pidkit.estimate.uncertainty.shuffled_tables`.
MAX_PERMUTED_SAMPLES = 10**8

#: Most samples of a count table with a shuffle null: numpy's hypergeometric sampler, which
#: draws the shuffled tables, takes totals below 10^9 (a table of 1e15 samples was a
#: MemoryError); larger tables are refused naming ``n_perm``.
MAX_NULL_SAMPLES = 10**9 - 1

#: The shuffle null of a table of ``N`` samples with ``R`` occupied target rows and ``C``
#: occupied source cells draws shuffled tables (one hypergeometric draw per cell, about 0.4 us
#: per replicate) rather than permuting the samples (about 15 ns per sample and replicate)
#: when ``N > TABLE_NULL_RATIO * (R - 1) * (C - 1)``: the cheaper of two samplers of the same
#: distribution (on this project's 2-core AMD EPYC: 10 x 256 cells, 100 replicates: 0.12 s
#: against 0.16 s at N = 10^5; 4 x 16 cells at N = 10^6: 1 ms against 10 s).
TABLE_NULL_RATIO = 30


def _draws_tables(flat: np.ndarray) -> bool:
    """Whether the shuffle null of the count table ``flat`` (target rows x source cells) is
    drawn as shuffled tables (:data:`TABLE_NULL_RATIO`) rather than as permuted samples."""
    n = int(flat.sum())
    cells = (np.count_nonzero(flat.sum(axis=1)) - 1) * (np.count_nonzero(flat.sum(axis=0)) - 1)
    return n > MAX_PERMUTED_SAMPLES or n > TABLE_NULL_RATIO * cells


def count_replicates(table: Any, measure: str, *, n_boot: int, n_perm: int,
                     seed: int, measure_options: dict[str, Any] | None = None
                     ) -> tuple[PIDResult, Replicates]:
    """The plug-in PID (nats) of a table of counts (checked by :func:`check_counts`) and its
    bootstrap and null :class:`~pidkit.estimate.uncertainty.Replicates` (atoms in lattice order,
    then the mutual information), drawn by the engine from the bootstrap and null streams of
    :func:`~pidkit.estimate.uncertainty.seed_sequences` ``(seed)``. The building block of
    :func:`pid_from_counts` and of the knowledge audits (which summarise derived quantities of
    the same replicates). The table is first put in the order of :func:`canonical_table`, so
    that relabelling any variable changes nothing, the replicates included.

    A constant target (one occupied row) carries no information: every atom, the mutual
    information (exactly 0 from :func:`pidkit.pid`, which still checks the measure and its
    options) and every replicate are then 0; nothing is drawn."""
    table = canonical_table(check_counts(table))
    n_boot = check_int(n_boot, "n_boot", 0)
    n_perm = check_int(n_perm, "n_perm", 0)
    options = check_options(measure_options, "measure_options")
    measure = check_measure_options(measure, options, "measure_options")
    _, (_, boot_seed, null_seed) = seed_sequences(seed)
    n = int(table.sum())
    point = _pid_of_counts(table, measure, options)
    width = len(vector(point))
    if np.count_nonzero(table.sum(axis=tuple(range(1, table.ndim)))) == 1:
        point = replace(point, solver=SolverInfo(details={"constant_target": True}))
        return point, Replicates(vector(point), np.zeros((n_boot, width)),
                                 np.zeros((n_perm, width)))
    flat_x = table.reshape(table.shape[0], -1)
    if n_perm and n > MAX_NULL_SAMPLES:
        raise fail("n_perm", f"asks for a shuffle null of a table of {n:.3g} samples; its "
                   f"sampler takes at most {MAX_NULL_SAMPLES:.3g}", "Pass n_perm=0 (intervals "
                   "from the bootstrap only), or the counts of a random subsample of the "
                   "samples", n_perm)
    by_tables = bool(n_perm) and _draws_tables(flat_x)
    if n_perm and not by_tables:  # one entry per sample (a table of 1e8 samples: 1.6 GB)
        y_rows = np.repeat(np.arange(table.shape[0]), flat_x.sum(axis=1))
        x_rows = np.concatenate([np.repeat(np.arange(flat_x.shape[1]), flat_x[y])
                                 for y in range(table.shape[0])])

    def tables(counts: np.ndarray) -> np.ndarray:
        return counts.reshape(counts.shape[0], *table.shape)

    def shuffled(perms: np.ndarray) -> np.ndarray:
        flat = y_rows[perms] * flat_x.shape[1] + x_rows
        return np.stack([np.bincount(f, minlength=table.size) for f in flat]).reshape(
            perms.shape[0], *table.shape)

    def evaluate(stack: np.ndarray) -> np.ndarray:
        return _vectors(stack, measure, options, width)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        boot, dropped_boot = bootstrap(tables, evaluate, table.ravel(), n_boot,
                                       np.random.default_rng(boot_seed))
        null_rng = np.random.default_rng(null_seed)
        null, dropped_null = (table_null(tables, evaluate, flat_x, n_perm, null_rng)
                              if by_tables else
                              permutation_null(shuffled, evaluate, n, n_perm, null_rng))
    _summarise_replicate_warnings(caught, measure, n_boot + n_perm)
    return point, Replicates(vector(point), boot, null, dropped_boot, dropped_null)


def _summarise_replicate_warnings(caught: list[warnings.WarningMessage], measure: str,
                                  replicates: int) -> None:
    """Re-issue the warnings of the replicates' solves, the solver's convergence warnings as
    one (a measure stopped by ``max_iter`` warned once per replicate: hundreds of lines)."""
    stops = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in stops:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if stops:
        warnings.warn(f"{measure}: {len(stops)} solve(s) of the {replicates} bootstrap and "
                      f"shuffle replicates stopped before convergence; their values, within "
                      f"the solver's bounds, enter the intervals and p-values. The first: "
                      f"{stops[0].message}", ConvergenceWarning,
                      stacklevel=caller_stacklevel())


def pid_from_counts(counts: Any, measure: str = "broja", base: float = 2, *,
                    ci: float | None = 0.95, n_boot: int = 200, n_perm: int = 100,
                    seed: int | None = None, measure_options: dict[str, Any] | None = None,
                    details: dict[str, Any] | None = None,
                    interval: str = "percentile") -> PIDResult:
    r"""Plug-in PID of a table of joint counts, with bootstrap intervals and shuffle-null p-values.

    Parameters
    ----------
    counts : array_like of int, shape ``(k_y, k_0, ..., k_{n-1})``
        Number of samples in each cell, target axis first (e.g. :attr:`JointCounts.counts`).
    measure : str, default "broja"
        Discrete redundancy measure (:func:`pidkit.available_measures`).
    base : float, default 2
        Logarithm base of every value (2: bits, ``math.e``: nats).
    ci : float or None, default 0.95
        Level of the bootstrap intervals; ``None`` skips the bootstrap.
    n_boot, n_perm : int
        Bootstrap and shuffle-null replicates (0 skips them; a bootstrap needs at least 2).
    seed : int, optional
        Seed of every random draw; reported in ``details["seed"]`` (drawn when None).
    measure_options : dict, optional
        Options of the measure (e.g. a solver tolerance).
    details : dict, optional
        Extra entries for the result's ``details``.
    interval : {"percentile", "basic", "normal"}, default "percentile"
        Kind of bootstrap interval (:mod:`pidkit.estimate.uncertainty`): the spread of the
        replicates; ``"basic"``, reflected around the estimate to undo the plug-in bias (an
        interval for the true value; for a small, biased atom it can lie entirely below the
        point estimate, or extend below 0: intervals are never clipped); or ``"normal"``, the
        bias-corrected normal interval, extended to 0 where the shuffle null does not reject.

    Returns
    -------
    PIDResult
        Plug-in atoms; ``intervals`` per atom; ``details`` with ``p_values``, ``bias`` (bootstrap,
        per atom), ``mutual_information_bias_miller_madow``, ``bootstrap_std``,
        ``dropped_replicates``, ``n_samples``, ``seed`` and the settings.

    Warns
    -----
    UserWarning
        A variable takes one value in every sample (one occupied outcome on its axis), naming
        it as ``target`` or ``sources[i]``. A constant target carries no information: every
        atom, the mutual information and every replicate are exactly 0 (p-values 1), without
        any draw (:func:`count_replicates`). A constant source is computed as any other (its
        information about the target is 0).

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.zeros((2, 2, 2), dtype=int)
    >>> counts[0, 0, 0] = counts[1, 0, 1] = counts[1, 1, 0] = counts[0, 1, 1] = 250   # XOR
    >>> r = pid_from_counts(counts, measure="mmi", n_boot=50, n_perm=50, seed=0)
    >>> round(r.synergy, 6), r.details["p_values"]["synergy"] < 0.05
    (1.0, True)
    """
    table = check_counts(counts)
    base = check_base(base)
    ci, n_boot = check_bootstrap(ci, n_boot)          # ci=None: no bootstrap
    n_perm = check_int(n_perm, "n_perm", 0)
    interval = check_choice(interval, "interval", INTERVALS)
    measure_options = check_options(measure_options, "measure_options")
    options = dict(measure_options or {})
    if details is not None and not isinstance(details, Mapping):
        raise fail("details", f"must be a dict of extra entries, not {type(details).__name__}",
                   "Pass e.g. details={'split': 'test'}, or None", details, kind=PIDTypeError)
    seed, _ = seed_sequences(seed)
    for axis in range(table.ndim):
        other = tuple(a for a in range(table.ndim) if a != axis)
        if np.count_nonzero(table.sum(axis=other)) == 1:
            warn_constant("target" if axis == 0 else f"sources[{axis - 1}]", target=axis == 0)
    point, reps = count_replicates(table, measure, n_boot=n_boot, n_perm=n_perm, seed=seed,
                                   measure_options=options)
    info = {
        "estimator": "plugin",
        **(details or {}),
        "n_samples": int(table.sum()),
        "alphabet_sizes": list(table.shape),
        "occupied_cells": int(np.count_nonzero(table)),
        "mutual_information_bias_miller_madow": miller_madow_mi_bias(table) / math.log(base),
        "seed": seed,
        "ci": ci,
        "n_boot": n_boot,
        "n_perm": n_perm,
        "measure_options": options,
    }
    return assemble(point, reps, ci, info, base, interval)
