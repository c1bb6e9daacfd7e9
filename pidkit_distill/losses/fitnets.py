r"""FitNets: Romero et al. (2015), "FitNets: Hints for Thin Deep Nets".

A learned adapter :math:`r` (a 1x1 convolution, student channels -> teacher channels) regresses
the teacher's hint layer from the student's guided layer:

.. math::

    L = \mathrm{CE}(Y, \hat Y) + \beta \sum_{\text{pairs}} \operatorname{mean}
        \big((r(S) - T)^2\big)

trained in one stage with the student (the original paper pre-trains on the hint first; the
one-stage form is the common benchmark variant). Maps are pooled to their common spatial size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pidkit.validation import check_positive

from .base import (
    Batch,
    DistillLoss,
    Parts,
    Shape,
    _returned,
    _upcast,
    check_batch,
    cross_entropy,
    register_method,
)
from .filters import ChannelLinear, SpatialAlign

__all__ = ["hint_loss", "FitNetsLoss"]


def hint_loss(adapted: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error over batch, channels and positions."""
    return ((_upcast(adapted) - _upcast(teacher)) ** 2).mean()


class FitNetsLoss(DistillLoss):
    """Hint regression with one learned adapter per layer pair; ``beta`` (finite, >= 0)
    weighs the hints."""

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 beta: float = 1.0):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        self.beta = check_positive(beta, "beta", allow_zero=True)
        self.aligns = nn.ModuleList(SpatialAlign(t, s)
                                    for t, s in zip(teacher_shapes, student_shapes, strict=True))
        self.adapters = nn.ModuleList(ChannelLinear(s[0], t[0])
                                      for t, s in zip(teacher_shapes, student_shapes,
                                                      strict=True))

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        hint = sum(hint_loss(adapter(align(s)), align(t)) for adapter, align, s, t in
                   zip(self.adapters, self.aligns, batch.student_features,
                       batch.teacher_features, strict=True))
        return _returned(batch, ce + self.beta * hint, {"ce": ce, "hint": hint})


@register_method("fitnets")
def _make_fitnets(teacher_shapes, student_shapes, num_classes, **kwargs) -> FitNetsLoss:
    return FitNetsLoss(teacher_shapes, student_shapes, **kwargs)
