"""pidkit: partial information decomposition, exact and fast.

>>> import pidkit
>>> r = pidkit.pid(pidkit.gates.gate("AND"), target=0, measure="broja")
>>> round(r.redundancy, 6), round(r.synergy, 6)
(0.311278, 0.5)
"""

from . import errors, gates, information, validation
from .decompose import pid
from .discrete import available_measures
from .discrete.broja import broja
from .errors import ConvergenceWarning, PIDKitError, PIDTypeError, PIDValueError
from .estimate import gaussian_pid_from_samples, pid_from_samples
from .gaussian import gaussian_pid
from .interop import from_dit, to_dit
from .lattice import Lattice, lattice, node_label, parse_node
from .result import AtomMap, Certificate, PIDResult, SolverInfo
from .samples import joint_pmf

__version__ = "0.1.0"

__all__ = [
    "gaussian_pid",
    "gaussian_pid_from_samples",
    "broja",
    "to_dit",
    "joint_pmf",
    "gates",
    "information",
    "from_dit",
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
    "estimate",
    "lattice",
    "node_label",
    "parse_node",
    "pid",
    "pid_from_samples",
    "validation",
]
