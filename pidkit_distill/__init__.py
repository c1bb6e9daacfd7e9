"""pidkit_distill: knowledge distillation on PyTorch with PID-based regularizers.

>>> import pidkit_distill as pd
>>> train, test = pd.data.load_digits()                               # doctest: +SKIP
>>> teacher = pd.models.get_model("digits_cnn", width=32)             # doctest: +SKIP
>>> student = pd.models.get_model("digits_cnn", width=8)              # doctest: +SKIP
>>> res = pd.distill(teacher, student, train, method="rid", epochs=12,
...                  warmup=2, cycle=2, ratio=0.5, val_data=test)      # doctest: +SKIP

Public API: :func:`distill`, :class:`Trainer`, :class:`TrainConfig`, :class:`Callback`,
:func:`phase_of_epoch`, :func:`extract_features`, :class:`FeatureHooks`, the model registry
(:func:`get_model`, :func:`register_model`, :func:`untrained_teacher`,
:class:`NuisanceTeacher`, :class:`CachedTeacher`), the data sets (:mod:`pidkit_distill.data`)
and the losses (:mod:`pidkit_distill.losses`, :func:`make_loss`, :func:`register_method`).
"""

from . import data, features, losses, models
from .audit_callback import AuditCallback
from .audit_curves import AuditHistory, plot_curves
from .audit_nuisance import nuisance_teacher_example
from .audit_report import AuditReport, LayerAudit
from .audit_run import audit, audit_features
from .features import ExtractedFeatures, FeatureHooks, extract_features, forward_with_features
from .losses import DistillLoss, available_methods, make_loss, register_method
from .models import NuisanceTeacher, get_model, register_model, untrained_teacher
from .teacher_cache import CachedTeacher
from .train import (
    Callback,
    DistillResult,
    LambdaCallback,
    TrainConfig,
    Trainer,
    distill,
    load_checkpoint,
    phase_of_epoch,
)

__all__ = [
    "AuditCallback",
    "AuditHistory",
    "AuditReport",
    "CachedTeacher",
    "Callback",
    "DistillLoss",
    "DistillResult",
    "ExtractedFeatures",
    "FeatureHooks",
    "LambdaCallback",
    "LayerAudit",
    "NuisanceTeacher",
    "TrainConfig",
    "Trainer",
    "audit",
    "audit_features",
    "available_methods",
    "data",
    "distill",
    "extract_features",
    "features",
    "forward_with_features",
    "get_model",
    "load_checkpoint",
    "losses",
    "make_loss",
    "models",
    "nuisance_teacher_example",
    "phase_of_epoch",
    "plot_curves",
    "register_method",
    "register_model",
    "untrained_teacher",
]
