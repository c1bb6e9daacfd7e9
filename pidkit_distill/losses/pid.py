r"""A PID regularizer: maximise the Gaussian redundancy :math:`\mathrm{Red}(Y; f_t(T), f_s(S))`
estimated on each mini-batch with :func:`pidkit.gaussian_pid` (torch backend, autograd).

What it optimises. For each layer pair the features are average-pooled over space to vectors;
the teacher side is projected to ``dim`` coordinates by a fixed (seeded, orthonormal) random
projection :math:`P_t`, the student side by a *learned* linear map :math:`A_s`. With the label
one-hot encoded (last column dropped, so the block is non-singular), the batch covariance
:math:`\hat\Sigma` of :math:`(Y, P_t\bar T, A_s\bar S)` (plus ``ridge`` times the identity) is
treated as the covariance of a jointly Gaussian triple and

.. math::

    L = \mathrm{CE}(Y, \hat Y) - \beta \sum_{\text{pairs}}
        \mathrm{Red}_{\mathrm{Gauss}}\big(Y; P_t \bar T, A_s \bar S\big)\ \text{(nats)}.

Since the teacher side is frozen, :math:`I(Y; P_t\bar T)` is fixed and raising Red lowers
:math:`\mathrm{Uni}(Y: T \setminus S)`: the student is pushed to carry the teacher's
label-relevant (linear-Gaussian) information, and nothing else. This differs from RID, which
maximises a lower bound on the redundancy through learned filters and a regression residual;
here the PID measure itself (``measure="broja"`` or ``"mmi"``) is the objective, under a
Gaussian approximation of the pooled features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pidkit._validation import check_choice

from .base import (
    Batch,
    DistillLoss,
    Shape,
    _f,
    cross_entropy,
    labelled_mask,
    register_method,
)
from .filters import SpatialAlign

__all__ = ["batch_covariance", "gaussian_redundancy", "PIDLoss"]


def batch_covariance(*blocks: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    r"""Unbiased covariance of the concatenated columns of ``blocks`` (each ``(N, d_i)``), plus
    ``ridge`` times the identity: :math:`\hat\Sigma = \frac{1}{N-1} X_c^\top X_c + rI`.

    Computed in float64 and symmetrised exactly (``(C + C^T) / 2``)."""
    x = torch.cat([b.double() for b in blocks], dim=1)
    xc = x - x.mean(0, keepdim=True)
    cov = xc.T @ xc / (x.shape[0] - 1)
    cov = 0.5 * (cov + cov.T)
    return cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)


def one_hot_reduced(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot labels without the last column ``(N, K-1)`` (the dropped column is implied)."""
    return nn.functional.one_hot(y, num_classes)[:, :-1].float()


def gaussian_redundancy(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, num_classes: int,
                        measure: str = "broja", ridge: float = 1e-3) -> torch.Tensor:
    r"""Batch estimate of :math:`\mathrm{Red}(Y; A, B)` in nats, differentiable in ``a``, ``b``.

    Parameters
    ----------
    y : Tensor ``(N,)`` int64 labels.
    a, b : Tensor ``(N, d_a)``, ``(N, d_b)``
    num_classes : int
    measure : {"broja", "mmi"}
    ridge : float
        Added to the covariance diagonal.
    """
    import math

    import pidkit

    target = one_hot_reduced(y, num_classes)
    cov = batch_covariance(target, a, b, ridge=ridge)
    result = pidkit.gaussian_pid(cov, dims=(target.shape[1], a.shape[1], b.shape[1]),
                                 measure=measure, base=math.e, certify=False)
    return result.redundancy


class PIDLoss(DistillLoss):
    """CE minus ``beta`` times the batch Gaussian redundancy per layer pair (module docstring).

    Parameters
    ----------
    teacher_shapes, student_shapes : sequence of tuple
    num_classes : int
    beta : float
        Weight of the redundancy term.
    dim : int
        Coordinates kept on each side (teacher: random orthonormal projection; student:
        learned linear map).
    measure : {"broja", "mmi"}
    ridge : float
    seed : int
        Seed of the teacher-side projection.
    """

    def __init__(self, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
                 num_classes: int, beta: float = 1.0, dim: int = 4, measure: str = "broja",
                 ridge: float = 1e-3, seed: int = 0):
        super().__init__()
        self.num_classes, self.beta, self.ridge = int(num_classes), float(beta), float(ridge)
        self.measure = check_choice(measure, "measure", ("broja", "mmi"))
        self.aligns = nn.ModuleList(SpatialAlign(t[:1], s[:1])
                                    for t, s in zip(teacher_shapes, student_shapes, strict=True))
        g = torch.Generator().manual_seed(seed)
        for i, t in enumerate(teacher_shapes):
            q, _ = torch.linalg.qr(torch.randn(t[0], max(dim, t[0]), generator=g))
            self.register_buffer(f"teacher_projection_{i}", q[:, :min(dim, t[0])].contiguous())
        self.adapters = nn.ModuleList(nn.Linear(s[0], min(dim, t[0]))
                                      for t, s in zip(teacher_shapes, student_shapes,
                                                      strict=True))

    def redundancies(self, batch: Batch) -> list[torch.Tensor]:
        """Batch redundancy (nats) per layer pair, on the labelled samples of the batch (it
        needs Y); 0 when fewer than 3 of them are labelled."""
        keep = labelled_mask(batch.y)
        n_labelled = int(keep.sum())
        out = []
        for i, (t, s) in enumerate(zip(batch.teacher_features, batch.student_features,
                                       strict=True)):
            if n_labelled < 3:
                out.append(s.float().sum() * 0.0)
                continue
            t_vec = self.aligns[i](t[keep]) @ getattr(self, f"teacher_projection_{i}")
            s_vec = self.adapters[i](self.aligns[i](s[keep]))
            out.append(gaussian_redundancy(batch.y[keep], t_vec, s_vec, self.num_classes,
                                           self.measure, self.ridge))
        return out

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        ce = cross_entropy(batch.student_logits, batch.y)
        red = sum(self.redundancies(batch))
        return ce - self.beta * red, {"ce": _f(ce), "redundancy": _f(red)}


@register_method("pid")
def _make_pid(teacher_shapes, student_shapes, num_classes, **kwargs) -> PIDLoss:
    return PIDLoss(teacher_shapes, student_shapes, num_classes, **kwargs)
