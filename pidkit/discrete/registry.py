"""The registry of discrete PID measures: one small module per measure registers itself here.

A measure is a function ``compute(p, **options) -> (atoms, solver_info)`` where ``p`` is a
normalised float64 pmf laid out as ``p[y, x0, ..., x_{n-1}]`` (target first, one axis per
source), ``atoms`` maps every node of :func:`pidkit.lattice.lattice(n) <pidkit.lattice.lattice>`
to its value **in nats**, and ``solver_info`` is a :class:`~pidkit.result.SolverInfo` in nats.
:func:`pidkit.pid` validates inputs, reshapes them to that layout, converts units and wraps the
answer in a :class:`~pidkit.result.PIDResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..lattice import Node
from ..result import SolverInfo

MeasureFunction = Callable[..., tuple[Mapping[Node, float], SolverInfo]]


@dataclass(frozen=True)
class DiscreteMeasure:
    """A registered measure and what it accepts.

    Attributes
    ----------
    name : str
        Public name used in ``pidkit.pid(..., measure=name)``.
    compute : callable
        ``compute(p, **options) -> (atoms in nats, SolverInfo)``.
    max_sources : int or None
        Largest number of sources the measure is defined for (``None``: any, up to the lattice
        limit).
    options : tuple of str
        Keyword options ``compute`` accepts (e.g. ``tol``).
    reference : str
        The paper that defines it.
    summary : str
        One line for tables and the CLI.
    """

    name: str
    compute: MeasureFunction
    max_sources: int | None
    options: tuple[str, ...]
    reference: str
    summary: str


MEASURES: dict[str, DiscreteMeasure] = {}


def register_measure(name: str, *, reference: str, summary: str, max_sources: int | None = None,
                     options: tuple[str, ...] = ()) -> Callable[[MeasureFunction], MeasureFunction]:
    """Decorator adding ``compute`` to :data:`MEASURES` under ``name``."""

    def decorate(compute: MeasureFunction) -> MeasureFunction:
        MEASURES[name] = DiscreteMeasure(name, compute, max_sources, options, reference, summary)
        return compute

    return decorate


def available_measures() -> dict[str, str]:
    """Name -> one-line summary of every registered discrete measure."""
    return {name: m.summary for name, m in sorted(MEASURES.items())}


def lattice_redundancy_min(values_by_mask: np.ndarray, member_masks: np.ndarray) -> np.ndarray:
    """For every lattice node, the minimum of ``values_by_mask`` over the node's members.

    ``values_by_mask`` is indexed by source bitmask on its first axis; any trailing axes (e.g. the
    target value for specific information) are kept.
    """
    return values_by_mask[member_masks].min(axis=1)
