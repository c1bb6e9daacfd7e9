"""The interface every distillation loss implements, and the method registry.

A loss is an ``nn.Module`` (it may own trainable filters, heads, scales) built from the
per-sample feature shapes of the chosen layer pairs. The trainer calls it with a
:class:`Batch` and steps the parameters it declares for each phase:

- one-stage methods (``two_phase = False``: none, KD, FitNets, VID, TED, PID) train the student
  and :meth:`DistillLoss.student_parameters` on :meth:`DistillLoss.student_loss` every epoch;
- two-phase methods (RID) also define :meth:`DistillLoss.teacher_loss` and
  :meth:`DistillLoss.teacher_parameters`, and follow the warm-up / cycle schedule of
  :func:`pidkit_distill.train.phase_of_epoch`.

Plug in a custom loss by subclassing :class:`DistillLoss` and registering a factory
``factory(teacher_shapes, student_shapes, num_classes, **kwargs)`` with :func:`register_method`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from pidkit._validation import fail
from pidkit.errors import PIDTypeError

__all__ = ["Batch", "DistillLoss", "register_method", "make_loss", "available_methods",
           "Shape", "UNLABELLED", "labelled_mask", "cross_entropy"]

Shape = tuple[int, ...]


@dataclass
class Batch:
    """What the trainer hands a loss for one mini-batch.

    Attributes
    ----------
    y : Tensor ``(N,)`` int64 labels.
    student_logits : Tensor ``(N, K)`` or None (not computed in RID's teacher phases).
    teacher_logits : Tensor ``(N, K)`` or None (computed without gradient).
    student_features, teacher_features : list of Tensor
        One per layer pair, ``(N, C)`` or ``(N, C, *spatial)``; teacher ones carry no gradient,
        student ones carry one in the student phase.
    """

    y: torch.Tensor
    student_logits: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    student_features: list[torch.Tensor] = field(default_factory=list)
    teacher_features: list[torch.Tensor] = field(default_factory=list)


class DistillLoss(nn.Module, abc.ABC):
    """Base class of distillation losses.

    Class attributes
    ----------------
    two_phase : bool
        Whether the method alternates teacher-filter and student phases (RID).
    uses_teacher : bool
        Whether the teacher's forward pass (logits / features) is needed at all.
    uses_features : bool
        Whether intermediate features of the layer pairs are needed.
    """

    two_phase: bool = False
    uses_teacher: bool = True
    uses_features: bool = True

    @abc.abstractmethod
    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of the student phase and its parts (floats, for logging)."""

    def teacher_loss(self, batch: Batch, *, distill: bool) -> tuple[torch.Tensor,
                                                                    dict[str, float]]:
        """Loss of the teacher-filter phase (two-phase methods); ``distill=False`` in warm-up."""
        raise PIDTypeError(f"{type(self).__name__}.teacher_loss: this method has no teacher "
                           "phase (two_phase is False). Only two-phase losses such as RID "
                           "define one; the trainer calls it only for those")

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters of this loss trained together with the student (default: all)."""
        return list(self.parameters())

    def teacher_parameters(self) -> list[nn.Parameter]:
        """Parameters trained in the teacher-filter phase (default: none)."""
        return []

    def set_phase(self, phase: str) -> None:
        """Put submodules in train / eval mode for ``phase`` (``"warmup"``, ``"teacher"``,
        ``"student"``); the default trains everything in every phase."""
        self.train()

    def teacher_head_logits(self, batch: Batch) -> torch.Tensor | None:
        """Logits of a teacher-side classification head, if the method has one (for metrics)."""
        return None


def _f(value: torch.Tensor) -> float:
    """A loss part as a Python float for logging (detached)."""
    return float(value.detach())


#: Label value of an unlabelled sample (semi-supervised distillation): such samples enter
#: every teacher-matching term of a loss but no cross-entropy.
UNLABELLED = -1


def labelled_mask(y: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N,)``: which samples carry a label (``y != UNLABELLED``)."""
    return y != UNLABELLED


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean cross-entropy in nats over the labelled samples of the batch (computed in float32
    under mixed precision):
    :math:`-\frac{1}{|L|}\sum_{n \in L} \log \mathrm{softmax}(z_n)_{y_n}`,
    :math:`L = \{n : y_n \ne` ``UNLABELLED`` :math:`\}`; exactly 0 (with a gradient graph)
    when the batch has no labelled sample.

    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> float(cross_entropy(z, torch.tensor([0, UNLABELLED]))) == float(
    ...     F.cross_entropy(z[:1], torch.tensor([0])))
    True
    """
    return F.cross_entropy(logits.float(), y, ignore_index=UNLABELLED, reduction="sum") / \
        labelled_mask(y).sum().clamp(min=1)


_METHODS: dict[str, Callable[..., DistillLoss]] = {}


def register_method(name: str) -> Callable:
    """Register ``factory(teacher_shapes, student_shapes, num_classes, **kwargs) -> DistillLoss``
    under ``name`` (case-insensitive) for :func:`make_loss` and the trainer's ``method=``."""
    def decorator(factory: Callable[..., DistillLoss]) -> Callable[..., DistillLoss]:
        _METHODS[name.lower()] = factory
        return factory
    return decorator


def available_methods() -> list[str]:
    """Names accepted by :func:`make_loss`."""
    return sorted(_METHODS)


def make_loss(method: str, teacher_shapes: Sequence[Shape], student_shapes: Sequence[Shape],
              num_classes: int, **kwargs) -> DistillLoss:
    """Build the loss of ``method`` for layer pairs with the given per-sample shapes.

    Parameters
    ----------
    method : str
        One of :func:`available_methods` (``"none"``, ``"kd"``, ``"fitnets"``, ``"vid"``,
        ``"ted"``, ``"rid"``, ``"pid"``, or a registered custom name).
    teacher_shapes, student_shapes : sequence of tuple
        Per-sample feature shapes ``(C,)`` or ``(C, *spatial)``, one per layer pair.
    num_classes : int
    **kwargs
        Options of the method (weights, temperature, ...).
    """
    if not isinstance(method, str):
        raise fail("method", "must be a method name", f"Use one of {available_methods()}",
                   method, kind=PIDTypeError)
    key = method.lower()
    if key not in _METHODS:
        raise fail("method", "is not a known distillation method",
                   f"Use one of {available_methods()} or register_method() your own", method)
    if len(teacher_shapes) != len(student_shapes):
        raise fail("layers", f"{len(teacher_shapes)} teacher layers but {len(student_shapes)} "
                   "student layers", "Give (teacher, student) layer pairs")
    return _METHODS[key]([tuple(s) for s in teacher_shapes], [tuple(s) for s in student_shapes],
                         int(num_classes), **kwargs)
