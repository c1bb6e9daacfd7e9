"""``pidkit.pid``: the partial information decomposition of a discrete joint pmf."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._backend import is_torch
from .discrete import MEASURES
from .errors import PIDValueError
from .information import _mutual_information
from .lattice import check_n_sources, lattice
from .result import TARGET_NAME, PIDResult, SolverInfo, default_source_names
from .validation import (
    check_base,
    check_choice,
    check_flag,
    check_pmf,
    check_target_sources,
    fail,
)

__all__ = ["pid", "arrange_pmf", "check_measure_options"]


def check_measure_options(measure: Any, options: Mapping[str, Any], name: str = "options"
                          ) -> str:
    """``measure`` as a registered discrete measure (case-insensitive; returned lower-cased),
    once every key of ``options`` is checked to be one of its options.

    Parameters
    ----------
    measure : str
        The measure's name (:func:`pidkit.available_measures`).
    options : mapping
        The measure's options, e.g. ``{"tol": 1e-10}``.
    name : str, default "options"
        The argument that holds ``options``, named in the error (``"measure_options"`` for the
        estimators from samples).

    Raises
    ------
    PIDValueError, PIDTypeError
        ``measure`` is not a known measure, or ``options`` has a key it does not take.
    """
    measure = check_choice(measure, "measure", tuple(sorted(MEASURES)))
    spec = MEASURES[measure]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(spec.options) or "none"
        raise fail(name, f"{unknown} are not options of measure {measure!r}",
                   f"Options it accepts: {accepted}")
    return measure


def arrange_pmf(p: np.ndarray, target: tuple[int, ...],
                sources: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Lay a pmf out as ``q[y, x0, ..., x_{n-1}]``: the target axes merged into axis 0, each
    source's axes merged into one axis, and every other axis summed out."""
    used = target + tuple(ax for group in sources for ax in group)
    if used == tuple(range(p.ndim)) and len(used) == 1 + len(sources):
        return np.ascontiguousarray(p)          # one axis per variable, in order already
    unused = tuple(ax for ax in range(p.ndim) if ax not in used)
    q = p.sum(axis=unused) if unused else p
    kept = [ax for ax in range(p.ndim) if ax in used]
    position = {ax: i for i, ax in enumerate(kept)}
    q = np.transpose(q, [position[ax] for ax in used])
    sizes = [math.prod(p.shape[ax] for ax in group) for group in (target, *sources)]
    return np.ascontiguousarray(q.reshape(sizes))


def _names(target: tuple[int, ...], groups: tuple[tuple[int, ...], ...],
           names: tuple[str, ...] | None) -> tuple[str, tuple[str, ...]]:
    """Target and source names: ``Y`` and ``X<position>`` (:func:`~pidkit.result.
    default_source_names`, matching the lattice labels, whatever the axes), or the dit variable
    names of each group joined by ``+``."""
    if names is None:
        return TARGET_NAME, default_source_names(len(groups))
    return ("+".join(names[ax] for ax in target),
            tuple("+".join(names[ax] for ax in group) for group in groups))


def pid(p: Any, target: Any = 0, sources: Any = None, measure: str = "broja", base: float = 2,
        *, normalize: bool = False, **options: Any) -> PIDResult:
    r"""Partial information decomposition of a discrete joint distribution.

    Splits the mutual information :math:`I(Y; X_0, \dots, X_{n-1})` between a target
    :math:`Y` and ``n`` sources into the atoms of the redundancy lattice (Williams and Beer 2010):
    for two sources, redundancy, one unique information per source and synergy,

    .. math::

        I(Y; X_0, X_1) = \mathrm{Red} + \mathrm{Uni}_0 + \mathrm{Uni}_1 + \mathrm{Syn}.

    With one source the lattice has one node, whose atom is :math:`I(Y; X_0)`, for every
    measure (no solver runs). A constant target (one outcome of positive probability) has
    every atom exactly 0, for every measure.

    Parameters
    ----------
    p : array_like, mapping or dit.Distribution
        Joint pmf with one axis per variable (``p[y, x0, x1]``); a mapping from outcome tuples
        to probabilities, ``{(y, x0, x1): probability}`` as BROJA_2PID takes it, whose key
        positions play the role of axes (labels of any kind; missing outcomes have probability
        0; :func:`~pidkit.validation.pmf_from_mapping`), also as a pandas Series indexed by
        outcome tuples (``df.value_counts(normalize=True)``, one key position per column); or
        a ``dit.Distribution`` whose random variables play the role of axes.
    target : int or list of int, default 0
        Axis (or axes, merged into one variable) of the target; for a mapping, the position
        of the target's label in each key. BROJA_2PID puts the target first,
        ``(target, source 0, source 1)``: the default ``target=0``.
    sources : list, optional
        Sources in order; each item an axis or a list of axes merged into one composite source,
        e.g. ``sources=[[1, 2], [3]]``. Default: every non-target axis is a source. Axes that are
        neither target nor source are summed out.
    measure : str, default "broja"
        Redundancy measure; see :func:`pidkit.available_measures`.
    base : float, default 2
        Logarithm base of the results (2: bits, ``math.e``: nats).
    normalize : bool, default False
        Divide ``p`` by its sum instead of rejecting a pmf that does not sum to 1.
    **options
        Measure-specific options, e.g. ``tol`` for BROJA.

    Returns
    -------
    PIDResult
        Atoms over the lattice, redundancy, unique, synergy, mutual information and solver
        information, in units of ``base``.

    Examples
    --------
    >>> import numpy as np, pidkit
    >>> p = np.zeros((2, 2, 2))
    >>> for x0 in (0, 1):
    ...     for x1 in (0, 1):
    ...         p[x0 ^ x1, x0, x1] = 0.25
    >>> r = pidkit.pid(p, measure="mmi")
    >>> round(r.synergy, 9), round(r.redundancy, 9)
    (1.0, 0.0)
    >>> xor = {(0, 0, 0): 0.25, (1, 0, 1): 0.25, (1, 1, 0): 0.25, (0, 1, 1): 0.25}  # (y, x0, x1)
    >>> round(pidkit.pid(xor, measure="mmi").synergy, 9)
    1.0
    """
    from .interop import dit_pmf, is_dit_distribution

    measure = check_measure_options(measure, options)
    base = check_base(base)
    normalize = check_flag(normalize, "normalize", "Pass normalize=True to rescale p")
    if is_torch(p):  # torch tensors: BROJA's namespace-generic, differentiable path
        from .discrete.broja import pid_tensor

        return pid_tensor(p, target, sources, measure, base, normalize=normalize, **options)
    names = None
    if is_dit_distribution(p):
        p, names = dit_pmf(p, "p", normalize)
    spec = MEASURES[measure]
    p = check_pmf(p, "p", normalize=normalize)
    target_axes, groups = check_target_sources(p.ndim, target, sources)
    if spec.max_sources is not None and len(groups) > spec.max_sources:
        raise PIDValueError(
            f"sources: measure {measure!r} is defined for at most {spec.max_sources} sources, "
            f"got {len(groups)}. Group axes into composite sources (sources=[[1, 2], [3]]) or "
            f"use a measure for any number of sources ("
            f"{', '.join(sorted(n for n, m in MEASURES.items() if m.max_sources is None))})")
    check_n_sources(len(groups), "sources")
    q = arrange_pmf(p, target_axes, groups)
    mi = _mutual_information(q, (0,), tuple(range(1, q.ndim)))
    if len(groups) == 1:  # every measure's lattice is one node, holding I(Y; X0)
        atoms, info = {lattice(1).nodes[0]: mi}, SolverInfo("closed_form")
    else:
        atoms, info = spec.compute(q, **options)
        if np.count_nonzero(q.sum(axis=tuple(range(1, q.ndim)))) == 1:
            # a constant target carries no information: every atom of every measure is 0
            # (BROJA's and I_IG's entropy differences left 1.6e-16 nats); the solver's
            # parts (I_pm's informative and misinformative lattices) are kept as computed
            mi, atoms = 0.0, dict.fromkeys(atoms, 0.0)
    scale = 1.0 / math.log(base)
    target_name, source_names = _names(target_axes, groups, names)
    return PIDResult(
        atoms={node: value * scale for node, value in atoms.items()},
        measure=measure,
        base=base,
        mutual_information=mi * scale,
        solver=info.scaled(scale),
        source_names=source_names,
        target_name=target_name,
        details={"target_axes": list(target_axes), "source_axes": [list(g) for g in groups]},
    )
