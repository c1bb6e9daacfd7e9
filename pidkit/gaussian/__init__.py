"""Exact PID of jointly Gaussian variables from a covariance (BROJA in closed form, MMI), with
a torch backend (GPU, batches, autograd), and estimators from samples with bias correction.

See :func:`gaussian_pid` and :func:`gaussian_pid_from_samples`.
"""

from .api import gaussian_pid
from .samples import gaussian_pid_from_samples

__all__ = ["gaussian_pid", "gaussian_pid_from_samples"]
