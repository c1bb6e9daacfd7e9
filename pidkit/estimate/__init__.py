"""PID from samples: plug-in, discretisation (PCA + KMeans), Gaussian; bootstrap intervals,
shuffle-null p-values, bias estimates; streaming sufficient statistics.

scikit-learn, torch and matplotlib are imported only by the functions that need them, so this
package imports with numpy and scipy alone.

>>> from pidkit.estimate import pid_from_samples, Discretizer, JointCounts, GaussianMoments
"""

from . import uncertainty
from .api import ESTIMATORS, gaussian_pid_from_samples, pid_from_samples
from .codes import encode, one_hot
from .counts import JointCounts
from .discrete_route import count_replicates, miller_madow_mi_bias, pid_from_counts
from .discretizer import PRESETS, Discretizer
from .moments import GaussianMoments
from .projection import Projector
from .sensitivity import plot_sensitivity, sensitivity

__all__ = [
    "ESTIMATORS",
    "PRESETS",
    "Discretizer",
    "GaussianMoments",
    "JointCounts",
    "Projector",
    "count_replicates",
    "encode",
    "gaussian_pid_from_samples",
    "miller_madow_mi_bias",
    "one_hot",
    "pid_from_counts",
    "pid_from_samples",
    "plot_sensitivity",
    "sensitivity",
    "uncertainty",
]
