r"""RID: Redundant Information Distillation (Dissanayake et al., AISTATS 2025).

For each layer pair, a teacher filter :math:`f_t` (with classification head :math:`g_t`), a
student filter :math:`f_s` and a per-channel scale :math:`\sigma_c = \mathrm{softplus}(a_c) +
10^{-3}` (``a`` initialised to 5). With :math:`V = f_t(T) - f_s(S)` of shape ``(C, *spatial)``:

.. math::

    L_t &= \mathrm{CE}(Y, g_t(f_t(T))) + \textstyle\sum_{c,h,w} \mathbb E[V_{chw}^2/\sigma_c]
    \qquad\text{(phase 1: } f_t, g_t\text{)}\\
    L_s &= \lambda_1\,\mathrm{CE}(Y, \hat Y) + \lambda_2\big(\lVert\sigma\rVert^2 +
    \textstyle\sum_{c,h,w} \mathbb E[V_{chw}^2/\sigma_c]\big)
    \qquad\text{(phase 2: student, } f_s, \sigma\text{)}

summed over layer pairs. With ``reduction="mean"`` (default, as in the authors' code) the sums
over channels and positions become means (the batch expectation is always a mean); with
``"sum"`` they are the sums of the formulas above. During warm-up the V term is off. Filters:
teacher ``1x1 conv (C_T->C_T), BN, ReLU, 1x1 conv (C_T->C_S)``; student ``1x1 conv
(C_S->2C_S), BN, ReLU, 1x1 conv (->C_S)``; head ``flatten, ReLU, linear``; teacher and student
maps are average-pooled to their common spatial size first.

Reference: P. Dissanayake, F. Hamman, B. Halder, I. Sucholutsky, Q. Zhang, S. Dutta,
"Quantifying Knowledge Distillation Using Partial Information Decomposition", AISTATS 2025.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pidkit.validation import check_choice, check_int, check_positive

from .base import (
    Batch,
    DistillLoss,
    Parts,
    Shape,
    _returned,
    _upcast,
    check_batch,
    check_flag,
    check_real,
    cross_entropy,
    register_method,
)
from .filters import Filter, SpatialAlign

__all__ = ["RIDLoss", "RIDPair", "weighted_residual", "sigma_from_raw"]

#: Added to softplus(a) so that sigma stays away from 0.
SIGMA_EPS = 1e-3


def sigma_from_raw(a: torch.Tensor) -> torch.Tensor:
    r""":math:`\sigma = \mathrm{softplus}(a) + 10^{-3}`, elementwise."""
    return F.softplus(a) + SIGMA_EPS


def weighted_residual(v: torch.Tensor, sigma: torch.Tensor, reduction: str = "mean"
                      ) -> torch.Tensor:
    r"""The distillation term :math:`\sum_{c,\ldots} \mathbb E_n[V_{n,c,\ldots}^2 / \sigma_c]`.

    Parameters
    ----------
    v : Tensor ``(N, C)`` or ``(N, C, *spatial)``
    sigma : Tensor ``(C,)``, positive
    reduction : {"mean", "sum"}
        Mean over batch, channels and positions, or mean over the batch and sum over the rest.
    """
    w = sigma.view(1, -1, *([1] * (v.dim() - 2)))
    per_sample = (_upcast(v) ** 2 / w).flatten(1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum(1).mean()


class RIDPair(nn.Module):
    """Filters, head and scale of one teacher / student layer pair.

    Parameters
    ----------
    t_shape, s_shape : tuple
        Per-sample feature shapes ``(C, *spatial)`` of the teacher and student layer.
    num_classes : int
    norm : bool
        Batch norm inside the filters (as the authors); ``False`` for exact DDP equality.
    sigma_init : float
        Initial raw value ``a`` (sigma = softplus(a) + 1e-3).
    """

    def __init__(self, t_shape: Shape, s_shape: Shape, num_classes: int, norm: bool = True,
                 sigma_init: float = 5.0):
        super().__init__()
        ct, cs = t_shape[0], s_shape[0]
        self.align = SpatialAlign(t_shape, s_shape)
        self.teacher_filter = Filter(ct, ct, cs, norm)
        self.student_filter = Filter(cs, 2 * cs, cs, norm)
        self.head = nn.Sequential(nn.Flatten(), nn.ReLU(),
                                  nn.Linear(cs * self.align.numel, num_classes))
        self.raw_sigma = nn.Parameter(torch.full((cs,), float(sigma_init)))

    @property
    def sigma(self) -> torch.Tensor:
        """Per-channel scale ``(C_S,)``."""
        return sigma_from_raw(self.raw_sigma)

    def teacher_side(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`f_t(T)` after spatial alignment."""
        return self.teacher_filter(self.align(t))

    def student_side(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`f_s(S)` after spatial alignment."""
        return self.student_filter(self.align(s))


class RIDLoss(DistillLoss):
    r"""RID over several layer pairs (see the module docstring for the formulas).

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
        Per-sample feature shapes per pair.
    num_classes : int
    lambda1, lambda2 : float, >= 0
        Weights of the student's cross-entropy and of the distillation term (the paper uses
        1 and 10 on CIFAR-10).
    reduction : {"mean", "sum"}
    norm : bool
        Batch norm in the filters.
    sigma_init : float, finite
        Initial raw scale ``a`` (any real: :math:`\sigma = \mathrm{softplus}(a) + 10^{-3}`).

    Examples
    --------
    >>> loss = RIDLoss([(8, 4, 4)], [(4, 4, 4)], num_classes=10)
    >>> [p.shape for p in loss.student_parameters()][-1]
    torch.Size([4])
    """

    two_phase = True

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 num_classes: int, lambda1: float = 1.0, lambda2: float = 10.0,
                 reduction: str = "mean", norm: bool = True, sigma_init: float = 5.0):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        num_classes = check_int(num_classes, "num_classes", 2)
        self.lambda1 = check_positive(lambda1, "lambda1", allow_zero=True)
        self.lambda2 = check_positive(lambda2, "lambda2", allow_zero=True)
        norm, sigma_init = check_flag(norm, "norm"), check_real(sigma_init, "sigma_init")
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum"))
        self.pairs = nn.ModuleList(RIDPair(t, s, num_classes, norm, sigma_init)
                                   for t, s in zip(teacher_shapes, student_shapes, strict=True))

    def teacher_parameters(self) -> list[nn.Parameter]:
        """Phase 1: the teacher filters and heads."""
        return [p for pair in self.pairs
                for m in (pair.teacher_filter, pair.head) for p in m.parameters()]

    def student_parameters(self) -> list[nn.Parameter]:
        """Phase 2: the student filters and the scales (the student itself is added by the
        trainer)."""
        return [p for pair in self.pairs
                for p in (*pair.student_filter.parameters(), pair.raw_sigma)]

    def set_phase(self, phase: str) -> None:
        """Teacher filters and heads train in warm-up and teacher phases, student filters in
        the student phase (the others are put in eval mode)."""
        for pair in self.pairs:
            teacher_side = phase in ("warmup", "teacher")
            pair.teacher_filter.train(teacher_side)
            pair.head.train(teacher_side)
            pair.student_filter.train(not teacher_side)

    def _norm_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        sq = _upcast(sigma) ** 2
        return sq.mean() if self.reduction == "mean" else sq.sum()

    def teacher_loss(self, batch: Batch, *, distill: bool) -> tuple[torch.Tensor, Parts]:
        distill = check_flag(distill, "distill")
        check_batch(self, batch, student_features=distill)
        ce_total = torch.zeros((), device=batch.y.device)
        v_total = torch.zeros((), device=batch.y.device)
        for i, pair in enumerate(self.pairs):
            ft = pair.teacher_side(batch.teacher_features[i])
            batch.head_logits = pair.head(ft)   # the innermost pair's, kept for metrics
            ce_total = ce_total + cross_entropy(batch.head_logits, batch.y)
            if distill:
                with torch.no_grad():
                    fs = pair.student_side(batch.student_features[i])
                    sigma = pair.sigma
                v_total = v_total + weighted_residual(ft - fs, sigma, self.reduction)
        loss = ce_total + v_total
        return _returned(batch, loss, {"head_ce": ce_total, "v_term": v_total})

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        reg = torch.zeros((), device=batch.y.device)
        v_total = torch.zeros((), device=batch.y.device)
        for i, pair in enumerate(self.pairs):
            with torch.no_grad():
                ft = pair.teacher_side(batch.teacher_features[i])
            fs = pair.student_side(batch.student_features[i])
            sigma = pair.sigma
            v = weighted_residual(ft - fs, sigma, self.reduction)
            reg = reg + self._norm_sigma(sigma) + v
            v_total = v_total + v.detach()
        loss = self.lambda1 * ce + self.lambda2 * reg
        return _returned(batch, loss, {"ce": ce, "v_term": v_total, "rid_reg": reg})

    @property
    def student_ce_weight(self) -> float:
        """``lambda1``."""
        return self.lambda1

    def teacher_head_logits(self, batch: Batch) -> torch.Tensor:
        """Logits of the innermost pair's head ``g_t(f_t(T))``."""
        pair = self.pairs[-1]
        return pair.head(pair.teacher_side(batch.teacher_features[-1]))

    def sigma_summary(self) -> dict[str, float]:
        """Mean sigma per pair, as Python floats for logging: this reads the parameters on
        the host (one GPU synchronisation), so call it once per epoch, not per step."""
        return {f"sigma_{i}": float(p.sigma.detach().mean()) for i, p in enumerate(self.pairs)}


@register_method("rid")
def _make_rid(teacher_shapes, student_shapes, num_classes, **kwargs) -> RIDLoss:
    return RIDLoss(teacher_shapes, student_shapes, num_classes, **kwargs)

