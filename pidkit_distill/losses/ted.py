r"""TED-style unweighted filter matching (Liang et al. 2023, "Less is More: Task-aware
Layer-wise Distillation"), trained in one stage.

The same filters and head as RID (:class:`~pidkit_distill.losses.rid.RIDPair`, without sigma)
are trained jointly with the student on

.. math::

    L = \lambda_1\,\mathrm{CE}(Y, \hat Y) + \sum_{\text{pairs}}\Big(\mathrm{CE}(Y, g_t(f_t(T)))
        + \lambda_2 \operatorname{mean}\big((f_t(T) - f_s(S))^2\big)\Big)

i.e. an unweighted MSE between filtered features; the head keeps :math:`f_t` task-aware so the
filters cannot collapse to a constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pidkit.validation import check_int, check_positive

from .base import (
    Batch,
    DistillLoss,
    Parts,
    Shape,
    _returned,
    _upcast,
    check_batch,
    check_flag,
    cross_entropy,
    register_method,
)
from .rid import RIDPair

__all__ = ["TEDLoss"]


class TEDLoss(DistillLoss):
    """One-stage unweighted filter matching (see the module docstring).

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
    num_classes : int
    lambda1, lambda2 : float, >= 0
        Weights of the student's cross-entropy and of the filter-matching MSE.
    norm : bool
        Batch norm inside the filters.
    """

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 num_classes: int, lambda1: float = 1.0, lambda2: float = 10.0,
                 norm: bool = True):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        num_classes = check_int(num_classes, "num_classes", 2)
        self.lambda1 = check_positive(lambda1, "lambda1", allow_zero=True)
        self.lambda2 = check_positive(lambda2, "lambda2", allow_zero=True)
        norm = check_flag(norm, "norm")
        self.pairs = nn.ModuleList(RIDPair(t, s, num_classes, norm)
                                   for t, s in zip(teacher_shapes, student_shapes, strict=True))
        for pair in self.pairs:
            pair.raw_sigma.requires_grad_(False)  # unused: TED is unweighted

    def student_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        head_ce = torch.zeros((), device=batch.y.device)
        mse = torch.zeros((), device=batch.y.device)
        for pair, t, s in zip(self.pairs, batch.teacher_features, batch.student_features,
                              strict=True):
            ft = pair.teacher_side(t)
            head_ce = head_ce + cross_entropy(pair.head(ft), batch.y)
            mse = mse + ((_upcast(ft) - _upcast(pair.student_side(s))) ** 2).mean()
        loss = self.lambda1 * ce + head_ce + self.lambda2 * mse
        return _returned(batch, loss, {"ce": ce, "head_ce": head_ce, "mse": mse})

    @property
    def student_ce_weight(self) -> float:
        """``lambda1``."""
        return self.lambda1

    def teacher_head_logits(self, batch: Batch) -> torch.Tensor:
        pair = self.pairs[-1]
        return pair.head(pair.teacher_side(batch.teacher_features[-1]))


@register_method("ted")
def _make_ted(teacher_shapes, student_shapes, num_classes, **kwargs) -> TEDLoss:
    return TEDLoss(teacher_shapes, student_shapes, num_classes, **kwargs)
