"""pidkit_distill: knowledge distillation on PyTorch with PID-based regularizers.

>>> import pidkit_distill as pd
>>> train, test = pd.data.load_digits()                               # doctest: +SKIP
>>> teacher = pd.models.get_model("digits_cnn", width=32)             # doctest: +SKIP
>>> student = pd.models.get_model("digits_cnn", width=8)              # doctest: +SKIP
>>> res = pd.distill(teacher, student, train, method="rid", epochs=12,
...                  val_data=test)                                    # doctest: +SKIP

Public API: :func:`distill`, :class:`Trainer`, :class:`TrainConfig`, :class:`Callback`,
:func:`phase_of_epoch`, :func:`resolve_schedule`, :class:`BatchFormat`, :class:`DistillStep`,
:func:`extract_features`, :class:`FeatureHooks`, the model registry
(:func:`get_model`, :func:`register_model`, :func:`untrained_teacher`,
:class:`NuisanceTeacher`, :class:`CachedTeacher`), the data sets (:mod:`pidkit_distill.data`)
and the losses (:mod:`pidkit_distill.losses`, :func:`make_loss`, :func:`register_method`).
"""

from . import audits, data, features, losses, models
from .audits import (
    AuditCallback,
    AuditHistory,
    AuditReport,
    LayerAudit,
    audit,
    audit_features,
    nuisance_teacher_example,
    plot_curves,
)
from .batches import BatchFormat
from .features import ExtractedFeatures, FeatureHooks, extract_features, forward_with_features
from .losses import DistillLoss, available_methods, make_loss, register_method
from .models import NuisanceTeacher, get_model, register_model, untrained_teacher
from .schedule import Schedule, phase_of_epoch, resolve_schedule
from .teacher_cache import CachedTeacher
from .train import (
    Callback,
    DistillResult,
    DistillStep,
    LambdaCallback,
    TrainConfig,
    Trainer,
    distill,
    load_checkpoint,
)

__all__ = [
    "AuditCallback",
    "AuditHistory",
    "AuditReport",
    "BatchFormat",
    "CachedTeacher",
    "Callback",
    "DistillLoss",
    "DistillResult",
    "DistillStep",
    "ExtractedFeatures",
    "FeatureHooks",
    "LambdaCallback",
    "LayerAudit",
    "NuisanceTeacher",
    "Schedule",
    "TrainConfig",
    "Trainer",
    "audit",
    "audit_features",
    "audits",
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
    "resolve_schedule",
    "untrained_teacher",
]
