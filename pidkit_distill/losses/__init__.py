"""Distillation losses, one module each, and the registry of methods by name.

``make_loss("rid", teacher_shapes, student_shapes, num_classes, **options)`` builds any of
``none``, ``kd``, ``fitnets``, ``vid``, ``ted``, ``rid``, ``pid``, ``broja``;
:func:`register_method` adds your own (see ``docs/distill.md``).
"""

# each module registers its method
from . import discrete_pid, fitnets, kd, pid, rid, ted, vid  # noqa: F401
from .base import (
    UNLABELLED,
    Batch,
    DistillLoss,
    Parts,
    available_methods,
    cross_entropy,
    distributed_mean,
    labelled_mask,
    make_loss,
    method_options,
    register_method,
    result_dtype,
    sum_across_processes,
)
from .discrete_pid import (
    DiscretePIDLoss,
    discrete_redundancy,
    kmeans_codebook,
    label_posterior,
    soft_assign,
)
from .fitnets import FitNetsLoss, hint_loss
from .kd import KDLoss, NoDistillation, kd_divergence
from .pid import (
    PIDLoss,
    batch_covariance,
    correlation_from_moments,
    covariance_from_moments,
    gaussian_redundancy,
    imputed_moments,
    redundancy_from_moments,
    weighted_moments,
)
from .rid import RIDLoss, RIDPair, sigma_from_raw, weighted_residual
from .ted import TEDLoss
from .vid import VIDLoss, gaussian_nll

__all__ = [
    "Batch",
    "DiscretePIDLoss",
    "DistillLoss",
    "FitNetsLoss",
    "KDLoss",
    "NoDistillation",
    "PIDLoss",
    "Parts",
    "RIDLoss",
    "RIDPair",
    "TEDLoss",
    "UNLABELLED",
    "VIDLoss",
    "available_methods",
    "batch_covariance",
    "correlation_from_moments",
    "covariance_from_moments",
    "cross_entropy",
    "discrete_redundancy",
    "distributed_mean",
    "gaussian_nll",
    "gaussian_redundancy",
    "hint_loss",
    "imputed_moments",
    "kd_divergence",
    "kmeans_codebook",
    "label_posterior",
    "labelled_mask",
    "make_loss",
    "method_options",
    "redundancy_from_moments",
    "register_method",
    "result_dtype",
    "sigma_from_raw",
    "soft_assign",
    "sum_across_processes",
    "weighted_moments",
    "weighted_residual",
]
