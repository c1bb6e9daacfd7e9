r"""KD: Hinton, Vinyals, Dean (2015), "Distilling the Knowledge in a Neural Network".

.. math::

    L = (1 - \alpha)\,\mathrm{CE}(Y, z_s) + \alpha\,\tau^2\,
        \mathrm{KL}\big(\mathrm{softmax}(z_t/\tau)\,\Vert\,\mathrm{softmax}(z_s/\tau)\big)

with logits :math:`z_t, z_s`, temperature :math:`\tau` and the KL averaged over the batch
(nats). The :math:`\tau^2` keeps the soft-target gradients on the scale of the hard ones.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from pidkit.validation import check_fraction, check_positive

from .base import (
    Batch,
    DistillLoss,
    Parts,
    _returned,
    _upcast,
    check_batch,
    cross_entropy,
    register_method,
)

__all__ = ["kd_divergence", "KDLoss"]


def kd_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  temperature: float = 4.0) -> torch.Tensor:
    r""":math:`\tau^2\,\mathrm{KL}(p_t^\tau \Vert p_s^\tau)`, mean over the batch, in nats.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor ``(N, K)``
    temperature : float, > 0
        :math:`\tau`; the logits are divided by it (0 would divide by zero).
    """
    temperature = check_positive(temperature, "temperature")
    log_ps = F.log_softmax(_upcast(student_logits) / temperature, dim=1)
    log_pt = F.log_softmax(_upcast(teacher_logits) / temperature, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(1).mean()
    return temperature ** 2 * kl


class KDLoss(DistillLoss):
    r"""Hinton KD: ``(1 - alpha) CE + alpha tau^2 KL`` (no features, no parameters).

    Parameters
    ----------
    temperature : float, > 0, default 4
        :math:`\tau`, the softening temperature of both softmaxes.
    alpha : float in [0, 1], default 0.9
        Weight of the soft-target term; ``1 - alpha`` weighs the cross-entropy (outside
        ``[0, 1]`` one term would enter with a negative weight).
    """

    uses_features = False
    uses_teacher_logits = True

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9):
        super().__init__()
        self.temperature = check_positive(temperature, "temperature")
        self.alpha = check_fraction(alpha, "alpha")

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        kd = kd_divergence(batch.student_logits, batch.teacher_logits, self.temperature)
        return _returned(batch, (1 - self.alpha) * ce + self.alpha * kd, {"ce": ce, "kd": kd})


class NoDistillation(DistillLoss):
    """Plain cross-entropy training of the student (the "no distillation" baseline)."""

    uses_teacher = False
    uses_features = False

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        return _returned(batch, ce, {"ce": ce})


@register_method("kd")
def _make_kd(teacher_shapes, student_shapes, num_classes, **kwargs) -> KDLoss:
    return KDLoss(**kwargs)


@register_method("none")
def _make_none(teacher_shapes, student_shapes, num_classes) -> NoDistillation:
    return NoDistillation()
