r"""VID: Ahn, Hu, Damianou, Lawrence, Dai (2019), "Variational Information Distillation for
Knowledge Transfer".

A regressor :math:`\mu(s)` (three 1x1 convolutions with ReLU between) predicts the teacher
feature :math:`t` under a Gaussian with input-independent per-channel variance
:math:`\sigma_c^2 = \mathrm{softplus}(\alpha_c) + \epsilon` (initialised to 5). The loss is the
negative log-likelihood up to a constant, a variational lower bound on :math:`I(T;S)`:

.. math::

    L = \mathrm{CE}(Y, \hat Y) + \lambda \sum_{\text{pairs}} \operatorname{mean}_{n,c,h,w}
        \tfrac12\Big(\frac{(\mu(s)_{c,h,w} - t_{c,h,w})^2}{\sigma_c^2} + \log \sigma_c^2\Big)

(PAPER.md uses :math:`\lambda = 100`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pidkit.validation import check_int, check_positive, fail

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
from .filters import ChannelLinear, ChannelSequential, SpatialAlign

__all__ = ["gaussian_nll", "VIDPair", "VIDLoss"]


def gaussian_nll(mu: torch.Tensor, target: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    r"""Mean over batch, channels, positions of
    :math:`\tfrac12((\mu - t)^2/\sigma_c^2 + \log\sigma_c^2)`; ``variance`` is ``(C,)``."""
    var = variance.view(1, -1, *([1] * (mu.dim() - 2)))
    return (0.5 * ((_upcast(mu) - _upcast(target)) ** 2 / var + torch.log(var))).mean()


class VIDPair(nn.Module):
    """Regressor and variance of one pair: ``mu = conv(h->C_T)(relu(conv(h->h)(relu(conv(C_S->h)
    (s)))))`` with ``h = hidden`` (an int >= 1; ``None``: ``C_T``); the variance starts at
    ``init_variance``, which
    must exceed its floor ``eps > 0`` (``softplus(raw) + eps`` can only reach values above
    it)."""

    def __init__(self, t_shape: Shape, s_shape: Shape, hidden: int | None = None,
                 init_variance: float = 5.0, eps: float = 1e-5):
        super().__init__()
        ct, cs = t_shape[0], s_shape[0]
        h = ct if hidden is None else check_int(hidden, "hidden", 1)
        eps = check_positive(eps, "eps")
        if not check_positive(init_variance, "init_variance") > eps:
            raise fail("init_variance", f"must be above the variance floor eps={eps:g}",
                       "Pass e.g. init_variance=5.0", init_variance)
        self.align = SpatialAlign(t_shape, s_shape)
        self.regressor = ChannelSequential(ChannelLinear(cs, h), nn.ReLU(), ChannelLinear(h, h),
                                           nn.ReLU(), ChannelLinear(h, ct))
        self.eps = eps
        v = init_variance - eps     # softplus^{-1}(v) = v + log(1 - e^{-v}), finite for large v
        raw = v + math.log(-math.expm1(-v))
        self.raw_variance = nn.Parameter(torch.full((ct,), raw))

    @property
    def variance(self) -> torch.Tensor:
        return F.softplus(self.raw_variance) + self.eps

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(self.regressor(self.align(s)), self.align(t), self.variance)


class VIDLoss(DistillLoss):
    r"""VID over several layer pairs.

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
    weight : float, >= 0, default 100
        :math:`\lambda` of the formula.
    hidden : int >= 1, optional
        Width of the regressor's hidden layers (default: the teacher's channels).
    init_variance : float, > 1e-5, default 5
        Initial :math:`\sigma_c^2`.
    """

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 weight: float = 100.0, hidden: int | None = None, init_variance: float = 5.0):
        super().__init__()
        self.record_shapes(teacher_shapes, student_shapes)
        self.weight = check_positive(weight, "weight", allow_zero=True)
        self.pairs = nn.ModuleList(VIDPair(t, s, hidden, init_variance)
                                   for t, s in zip(teacher_shapes, student_shapes, strict=True))

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        check_batch(self, batch)
        ce = cross_entropy(batch.student_logits, batch.y)
        vid = sum(pair(t, s) for pair, t, s in zip(self.pairs, batch.teacher_features,
                                                    batch.student_features, strict=True))
        return _returned(batch, ce + self.weight * vid, {"ce": ce, "vid": vid})


@register_method("vid")
def _make_vid(teacher_shapes, student_shapes, num_classes, **kwargs) -> VIDLoss:
    return VIDLoss(teacher_shapes, student_shapes, **kwargs)
