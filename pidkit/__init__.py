"""pidkit: partial information decomposition, exact and fast.

>>> import pidkit
>>> r = pidkit.pid(p, target=0, measure="broja")   # doctest: +SKIP
>>> r.redundancy, r.unique, r.synergy               # doctest: +SKIP
"""

from . import errors
from .decompose import pid
from .discrete import available_measures
from .errors import ConvergenceWarning, PIDKitError, PIDTypeError, PIDValueError
from .lattice import Lattice, lattice, node_label, parse_node
from .result import AtomMap, Certificate, PIDResult, SolverInfo

__version__ = "0.1.0"

__all__ = [
    "AtomMap",
    "Certificate",
    "ConvergenceWarning",
    "Lattice",
    "PIDKitError",
    "PIDResult",
    "PIDTypeError",
    "PIDValueError",
    "SolverInfo",
    "available_measures",
    "errors",
    "lattice",
    "node_label",
    "parse_node",
    "pid",
]
