"""Exact PID of jointly Gaussian variables from a covariance (BROJA in closed form, MMI), with
a torch backend (GPU, batches, autograd). See :func:`gaussian_pid`.

Estimation from samples (bias correction, bootstrap) lives in :mod:`pidkit.estimate`:
:func:`pidkit.gaussian_pid_from_samples`.
"""

from .api import gaussian_pid

__all__ = ["gaussian_pid"]
