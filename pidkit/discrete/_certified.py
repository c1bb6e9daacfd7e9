"""What the discrete measures with an iterative solver share: their options (``tol``,
``max_iter``), and, for the certified two-source redundancy measures (I_proj, I_GH, I_IG), the
atoms and :class:`~pidkit.result.SolverInfo` of a redundancy known within a certified bracket.

Each measure brackets its redundancy :math:`I_\\cap(\\{0\\}\\{1\\})` by ``[lower, upper]`` (nats);
the other nodes of the two-source lattice are mutual informations, so Moebius inversion gives
every atom, and the bracket's width bounds the error of every atom (each is
:math:`\\pm I_\\cap` plus mutual informations).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, caller_stacklevel
from ..information import _mutual_information
from ..lattice import Node, lattice
from ..result import CERTIFIED_REDUNDANCY, Certificate, SolverInfo
from ..validation import check_positive

__all__ = ["check_solver_options", "redundancy_result"]


def check_solver_options(tol: Any, max_iter: Any) -> tuple[float, int]:
    """``tol`` (> 0) and ``max_iter`` (a positive integer), checked with typed errors."""
    return check_positive(tol, "tol"), check_positive(max_iter, "max_iter", integer=True)


def redundancy_result(p: np.ndarray, value: float, lower: float, upper: float, *, tol: float,
                      iterations: int, measure: str, stopped: str,
                      details: Mapping[str, Any],
                      advice: str = "Increase max_iter or loosen tol",
                      approximate: str | None = None
                      ) -> tuple[dict[Node, float], SolverInfo]:
    """Atoms (nats) of ``p[y, x0, x1]`` with redundancy ``value`` certified in
    ``[lower, upper]``, and their :class:`~pidkit.result.SolverInfo`; warns
    (:class:`~pidkit.errors.ConvergenceWarning`, naming ``measure`` and what ``stopped``,
    ending with ``advice``) when the bracket is wider than ``tol``. ``tol`` is a width in nats
    for these measures (BROJA's is in bits): the details record it as ``tol_nats``, next to a
    certificate that :func:`pidkit.pid` converts to the result's unit. ``approximate``: why
    the bracket is not a proof on this ``p``: a :class:`~pidkit.errors.ConvergenceWarning`
    says it, the status is ``"approximate"`` (not converged), and there is no certificate (the
    bracket is in ``details["approximate_bracket_nats"]``)."""
    if approximate is not None:
        if upper - lower > tol:
            approximate += (f"; {stopped} after {iterations} iterations with a bracket "
                            f"{upper - lower:.2e} nats wide > tol={tol:g} ({advice})")
        warnings.warn(f"{measure}: {approximate}", ConvergenceWarning,
                      stacklevel=caller_stacklevel())
        info = SolverInfo("approximate", False, iterations, None, None,
                          {"tol_nats": tol, "approximate_bracket_nats": [lower, upper],
                           **details})
        return _atoms(p, value), info
    converged = upper - lower <= tol
    if not converged:
        warnings.warn(f"{measure}: {stopped} after {iterations} iterations with a certified gap "
                      f"of {upper - lower:.2e} nats > tol={tol:g}; the redundancy is within the "
                      f"certificate. {advice}", ConvergenceWarning,
                      stacklevel=caller_stacklevel())
    info = SolverInfo("optimal" if converged else "max_iter", converged, iterations,
                      Certificate(CERTIFIED_REDUNDANCY, lower, upper), None,
                      {"tol_nats": tol, **details})
    return _atoms(p, value), info


def _atoms(p: np.ndarray, redundancy: float) -> dict[Node, float]:
    """The two-source atoms (nats) of ``p[y, x0, x1]`` with this redundancy."""
    red = {((0,), (1,)): redundancy, ((0,),): _mutual_information(p, (0,), (1,)),
           ((1,),): _mutual_information(p, (0,), (2,)),
           ((0, 1),): _mutual_information(p, (0,), (1, 2))}
    return lattice(2).moebius(red)
