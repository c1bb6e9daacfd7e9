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

Two rules keep a loss usable in any training loop, on a GPU and under data parallelism:

- nothing is read back to the host inside a step: no ``.item()``, ``float(t)``, ``if t:``,
  boolean-mask gathers ``t[mask]`` or ``int(mask.sum())`` (each waits for the GPU); masks
  become per-sample weights, guards ``torch.where``, and the logged parts stay tensors
  (:class:`DistillLoss`). :func:`pidkit_distill.sync_check.count_host_syncs` checks it;
- a mean over a data-dependent subset of the batch (the labelled samples) goes through
  :func:`distributed_mean`, and statistics that must cover the global batch through
  :func:`sum_across_processes`, so that W data-parallel processes make the update of one
  process on the global batch. A plain ``.mean()`` over equal-sized local batches already does.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import numbers
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F

from pidkit.errors import PIDTypeError
from pidkit.validation import (
    check_choice,
    check_flag,
    check_fraction,
    check_int,
    check_positive,
    fail,
)

from ..features import check_layer_pairs
from ..labels import UNLABELLED, as_class_labels
from ..schedule import PHASES

__all__ = ["Batch", "DistillLoss", "register_method", "make_loss", "available_methods",
           "Shape", "Parts", "UNLABELLED", "labelled_mask", "cross_entropy", "distributed_mean",
           "sum_across_processes", "running_sum", "check_labels", "check_fraction",
           "check_flag", "check_real", "method_options", "check_batch", "result_dtype"]

Shape = tuple[int, ...]
#: The logged parts of a loss: name -> detached 0-d tensor on the loss's device, in the dtype
#: of the loss's value (:func:`result_dtype`).
Parts = dict[str, torch.Tensor]


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
    head_logits : Tensor ``(N, K)`` or None
        Set by a two-phase loss's :meth:`DistillLoss.teacher_loss` to the teacher-side head's
        logits it computed, so that a trainer logs their accuracy without running the head
        (and its batch norm) a second time.
    """

    y: torch.Tensor
    student_logits: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    student_features: list[torch.Tensor] = field(default_factory=list)
    teacher_features: list[torch.Tensor] = field(default_factory=list)
    head_logits: torch.Tensor | None = None


def _check_phase(phase: Any) -> str:
    """``phase`` as one of :data:`pidkit_distill.schedule.PHASES` (lower-cased); anything else
    is a typed error naming ``phase`` that lists the valid phases."""
    return check_choice(phase, "phase", PHASES, what="training phase")


def _phase_checked(set_phase: Callable[[Any, str], None]) -> Callable[[Any, Any], None]:
    """Wrap a ``set_phase`` so that it sees only a phase :func:`_check_phase` accepted."""
    @functools.wraps(set_phase)
    def checked(self: Any, phase: Any) -> None:
        set_phase(self, _check_phase(phase))
    checked._phase_checked = True  # type: ignore[attr-defined]
    return checked


class DistillLoss(nn.Module, abc.ABC):
    r"""Base class of distillation losses.

    :meth:`student_loss` and :meth:`teacher_loss` return ``(loss, parts)``: ``loss`` the 0-d
    tensor to differentiate, ``parts`` a :data:`Parts` dict of its named terms for logging,
    each a *detached 0-d tensor on the loss's device* (no host read: the caller decides
    when to bring values to the host, e.g. by summing them on the device over an epoch and
    reading once). Both are in the batch's floating dtype (:func:`result_dtype`: the
    student's, float32 for float16 or bfloat16 under mixed precision), whatever precision a
    loss computes in inside (the PID losses' float64 statistics): a float32 model's loss is
    float32. Cross-entropy and information parts are in nats: ``"ce"``, ``"head_ce"``,
    ``"kd"`` (times :math:`\tau^2`), ``"redundancy"``, ``"certified_gap"`` (the exact
    regulariser's solver), and ``"vid"`` (a Gaussian negative log-likelihood per feature
    entry, up to its constant); ``"hint"``, ``"mse"``, ``"v_term"``
    and ``"rid_reg"`` are mean squared (scaled) feature distances, in squared feature units.

    Under data parallelism (``torch.distributed`` initialised with W > 1 processes, gradients
    averaged over them as DDP does) the losses make the update of one process on the global
    batch; a value in ``loss`` or ``parts`` is then one process's share, and its mean over the
    W processes is the global-batch value (see :func:`distributed_mean`).

    Class attributes
    ----------------
    two_phase : bool
        Whether the method alternates teacher-filter and student phases (RID).
    uses_teacher : bool
        Whether the teacher's forward pass (logits / features) is needed at all.
    uses_features : bool
        Whether intermediate features of the layer pairs are needed.
    uses_teacher_logits : bool
        Whether the loss compares the teacher's logits with the student's class by class (KD):
        the trainer then requires both to have the same number of classes.
    """

    two_phase: bool = False
    uses_teacher: bool = True
    uses_features: bool = True
    uses_teacher_logits: bool = False
    #: The per-sample feature shapes ``(teacher, student)`` the loss was built for (one tuple
    #: per layer pair), which :func:`check_batch` holds batches to; ``None``: not checked.
    layer_shapes: tuple[list[Shape], list[Shape]] | None = None

    def record_shapes(self, teacher_shapes: Sequence[Shape],
                      student_shapes: Sequence[Shape]) -> None:
        """Keep the layer pairs' per-sample shapes as :attr:`layer_shapes` (the built-in
        feature losses call it, however they are built). The shapes are checked as
        :func:`make_loss` checks them (lists of int tuples, one per pair on both sides), so a
        loss built directly from its class refuses what ``make_loss`` refuses."""
        t_shapes = _shapes(teacher_shapes, "teacher_shapes")
        s_shapes = _shapes(student_shapes, "student_shapes")
        check_layer_pairs(t_shapes, s_shapes)
        self.layer_shapes = (t_shapes, s_shapes)

    @abc.abstractmethod
    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, Parts]:
        """Loss of the student phase and its parts (detached 0-d tensors, for logging)."""

    def teacher_loss(self, batch: Batch, *, distill: bool) -> tuple[torch.Tensor, Parts]:
        """Loss of the teacher-filter phase (two-phase methods) and its parts;
        ``distill=False`` in warm-up."""
        raise PIDTypeError(f"{type(self).__name__}.teacher_loss: this method has no teacher "
                           "phase (two_phase is False). Only two-phase losses such as RID "
                           "define one; the trainer calls it only for those")

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters of this loss trained together with the student (default: all)."""
        return list(self.parameters())

    def teacher_parameters(self) -> list[nn.Parameter]:
        """Parameters trained in the teacher-filter phase (default: none)."""
        return []

    def run_state(self) -> dict[str, Any] | None:
        """State of a run that is not part of the loss's ``state_dict`` but that a resumed run
        needs to continue exactly (e.g. a solver's warm start), as tensors and plain data
        (loadable with ``torch.load(weights_only=True)``); ``None`` (the default): nothing.
        The trainer saves it in its checkpoints."""
        return None

    def load_run_state(self, state: dict[str, Any] | None) -> None:
        """Restore a :meth:`run_state` (after ``load_state_dict``); ``None``: nothing to
        restore."""

    @torch.no_grad()
    def match_precision(self, dtype: torch.dtype) -> DistillLoss:
        """Cast the floating-point parameters and buffers to ``dtype`` (the student's), in
        place, except float64 buffers: running statistics kept in float64 on purpose (the PID
        losses' moments and soft counts), which ``Module.to(dtype)`` would round. Returns
        ``self``."""
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise fail("dtype", "must be a floating-point torch.dtype (the student's)",
                       "Pass e.g. torch.float32 or next(student.parameters()).dtype", dtype,
                       kind=PIDTypeError)
        for p in self.parameters():
            if p.is_floating_point():
                p.data = p.data.to(dtype)
        for module in self.modules():
            for name, buf in list(module.named_buffers(recurse=False)):
                if buf.is_floating_point() and buf.dtype != torch.float64:
                    setattr(module, name, buf.to(dtype))
        return self

    def set_phase(self, phase: str) -> None:
        """Put submodules in train / eval mode for ``phase`` (``"warmup"``, ``"teacher"``,
        ``"student"``, case-insensitive); the default trains everything in every phase.

        A subclass that overrides it receives ``phase`` already checked by
        the shared phase check (and lower-cased): the check wraps every override, so any other
        value is a :class:`~pidkit.errors.PIDValueError` (a non-string a
        :class:`~pidkit.errors.PIDTypeError`) naming ``phase`` for every loss."""
        _check_phase(phase)
        self.train()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        override = cls.__dict__.get("set_phase")
        if override is not None and not getattr(override, "_phase_checked", False):
            cls.set_phase = _phase_checked(override)

    def teacher_head_logits(self, batch: Batch) -> torch.Tensor | None:
        """Logits of a teacher-side classification head, if the method has one (for metrics)."""
        return None

    @property
    def student_ce_weight(self) -> float:
        """Weight of the student's cross-entropy in this loss (1 unless the method weighs it,
        as RID's and TED's ``lambda1``); a trainer that trains the student on cross-entropy
        during warm-up uses the same weight."""
        return 1.0


def result_dtype(batch: Batch) -> torch.dtype:
    """The floating dtype in which a built-in loss returns its value and parts for ``batch``.

    That of the student's logits or, without them (RID's warm-up), of the first teacher
    feature; float32 for float16 and bfloat16 (mixed precision computes the losses in float32,
    as :func:`_upcast` does); the default dtype when the batch holds neither (a loss without
    layer pairs in RID's warm-up).

    Parameters
    ----------
    batch : Batch

    Returns
    -------
    torch.dtype

    Examples
    --------
    >>> y = torch.tensor([0, 1])
    >>> result_dtype(Batch(y=y, student_logits=torch.zeros(2, 3, dtype=torch.float64)))
    torch.float64
    >>> result_dtype(Batch(y=y, student_logits=torch.zeros(2, 3, dtype=torch.bfloat16)))
    torch.float32
    """
    like = batch.student_logits if torch.is_tensor(batch.student_logits) else next(
        (f for f in batch.teacher_features if torch.is_tensor(f) and f.is_floating_point()),
        None)
    if like is None or not like.is_floating_point():
        return torch.get_default_dtype()
    return torch.float32 if like.dtype in (torch.float16, torch.bfloat16) else like.dtype


def _returned(batch: Batch, loss: torch.Tensor, parts: dict[str, torch.Tensor]
              ) -> tuple[torch.Tensor, Parts]:
    """A loss's ``(loss, parts)`` in :func:`result_dtype` of ``batch``: ``loss`` cast (the
    gradient flows through the cast), ``parts`` detached and cast (no host read)."""
    dtype = result_dtype(batch)
    return loss.to(dtype), {name: value.detach().to(dtype) for name, value in parts.items()}


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if it is in a half-precision dtype (mixed precision), else unchanged
    (float64 stays float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _data_parallel() -> bool:
    """Whether a loss computed now takes part in data-parallel training: ``torch.distributed``
    initialised with more than one process, and autograd recording (evaluation stays local)."""
    return (torch.is_grad_enabled() and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def distributed_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    r"""A mean over a data-dependent subset of the samples, correct under data parallelism.

    ``total`` is a sum over the subset (e.g. the labelled samples) of this process's batch and
    ``count`` its size (a tensor; nothing is read on the host). In one process the result is
    :math:`\mathrm{total} / \max(\mathrm{count}, 1)`. With :math:`W > 1` processes and grad
    mode enabled, the count is summed over the processes on the device,
    :math:`C = \sum_r \mathrm{count}_r` (one ``all_reduce``), and process :math:`r` returns

    .. math::

        m_r = \frac{\mathrm{total}_r}{\max(C, 1) / W},
        \qquad \frac1W \sum_r m_r = \frac{\sum_r \mathrm{total}_r}{\max(C, 1)},

    so that the average over processes (what DDP does to the gradients, and what a trainer
    does to logged values) is the mean over the global batch, however the subset is spread over
    the processes, including processes with none of it. Without grad mode (evaluation) the
    mean stays local. Every process must call it the same number of times per step.

    Parameters
    ----------
    total : Tensor, 0-d
    count : Tensor, 0-d, on ``total``'s device (any numeric dtype)

    Examples
    --------
    >>> distributed_mean(torch.tensor(6.0), torch.tensor(3))
    tensor(2.)
    >>> distributed_mean(torch.tensor(0.0), torch.tensor(0))
    tensor(0.)
    """
    count = count.to(total.dtype)
    if _data_parallel():
        count = count.clone()
        dist.all_reduce(count)
        return total * dist.get_world_size() / count.clamp(min=1)
    return total / count.clamp(min=1)


class _SumAcrossProcesses(torch.autograd.Function):
    """``all_reduce`` (sum) whose backward is again a sum over the processes."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def sum_across_processes(x: torch.Tensor) -> torch.Tensor:
    r""":math:`G = \sum_r x_r` over the data-parallel processes, differentiable; ``x`` itself in
    one process or without grad mode (evaluation stays local).

    For statistics that must cover the global batch (the PID loss's covariance). Derivation:
    every process computes the same :math:`f(G)`; the backward pass of process :math:`r` sums
    the incoming gradients over the processes, :math:`\partial/\partial x_r = \sum_{r'}
    f'(G) = W f'(G)`, so after DDP divides the summed parameter gradients by :math:`W`,

    .. math::

        \frac1W \sum_r W f'(G)\,\frac{\partial x_r}{\partial\theta}
        = f'(G) \sum_r \frac{\partial x_r}{\partial\theta}
        = \frac{\partial f(G)}{\partial\theta},

    the gradient of one process holding the global batch. (This is what
    ``torch.distributed.nn.functional.all_reduce`` does; recent torch releases deprecate it
    with a ``FutureWarning``.) Every process must call it the same number of times per step,
    with tensors of the same shape.
    """
    return _SumAcrossProcesses.apply(x) if _data_parallel() else x


def check_momentum(momentum: float) -> float:
    r"""The weight :math:`m \in [0, 1)` of a :func:`running_sum` (typed error otherwise)."""
    m = check_positive(momentum, "momentum", allow_zero=True)
    if not m < 1.0:
        raise fail("momentum", "must be in [0, 1)", "Use e.g. momentum=0.9", momentum)
    return m


def check_real(value: float, name: str) -> float:
    """A finite real number (typed error otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, "must be a number", "Pass e.g. 5.0", value, kind=PIDTypeError)
    if not math.isfinite(value):
        raise fail(name, "must be finite", "Pass a finite number", value)
    return float(value)


def running_sum(state: torch.Tensor, batch: torch.Tensor, momentum: float,
                update: bool, valid: torch.Tensor | None = None) -> torch.Tensor:
    r"""A moving sum over batches with the gradient through the current batch only:
    returns :math:`m E + b` with the stored :math:`E` (``state``, a buffer, no gradient) and,
    when ``update``, sets :math:`E \leftarrow m E + b` afterwards (``b`` detached). Statistics
    that add up over samples (soft counts, moments) then cover about :math:`1/(1-m)` batches,
    a batch of age :math:`a` weighted by :math:`m^a`.

    A batch whose statistics are not finite (a NaN or inf feature, an overflow under mixed
    precision) leaves the state as it was: the update is
    :math:`E \leftarrow \mathrm{where}(v, m E + b, E)` with the device-side flag ``valid``
    (default: every entry of ``batch`` finite), so nothing is read on the host. The returned
    value of that step is not finite, as its loss should be (a ``GradScaler`` then skips the
    step), but the next batches see a clean state. Callers with several statistics updated in
    one step pass one flag for all of them, so a skipped step updates none.
    """
    out = momentum * state + batch
    if update:
        if valid is None:
            valid = torch.isfinite(batch).all()
        state.copy_(torch.where(valid, out.detach(), state))
    return out


def note_state_without_imputation(state_dict: dict, prefix: str, buffer: str,
                                  error_msgs: list[str]) -> None:
    """For a loss with ``unlabelled="impute"`` loading ``state_dict``: when the state has the
    loss's running statistics but not its imputation ``buffer`` of pair 0 (a state saved with
    ``unlabelled="ignore"``, the earlier default), add an error naming the option to pass
    (``load_state_dict`` raises it with the missing keys)."""
    if f"{prefix}ema_{buffer}_0" not in state_dict and any(
            key.startswith(f"{prefix}ema_") for key in state_dict):
        error_msgs.append(f"the state was saved by a loss with unlabelled='ignore' (no "
                          f"ema_{buffer}_* buffers): build the loss with unlabelled='ignore' "
                          f"to load it")


def labelled_mask(y: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N,)``: which samples carry a label (``y != UNLABELLED``)."""
    return y != UNLABELLED


def check_labels(y: torch.Tensor, name: str = "y") -> torch.Tensor:
    """Refuse labels that are not class indices, one per sample: a tensor of shape ``(N,)``
    and an integer dtype (typed error naming ``name``); return them as int64 (``y`` itself
    when already int64).

    This is the rule of :mod:`pidkit_distill.labels` as it applies inside a training step:
    only the shape and dtype are checked (host metadata: no synchronisation), so floating-point
    labels are refused by their dtype, whole numbers or not (the trainer converts whole-number
    float labels when its batches arrive, where values may be read), and so are boolean ones
    (``True``/``False`` may not mean classes 1 and 0). The *values* are not checked: they must
    lie in ``[0, num_classes)`` or be :data:`UNLABELLED`, and a loss does not read them inside
    a step (that would wait for the device). :class:`~pidkit_distill.Trainer` checks the labels
    of its first batch; in a loop of your own, check them once yourself
    (``y.min() >= -1 and y.max() < num_classes``).

    Raises
    ------
    PIDValueError
        ``y`` is not 1-D (one-hot rows ``(N, K)``, a column ``(N, 1)``, a 0-d label).
    PIDTypeError
        ``y`` is not a tensor, or is floating-point, complex or boolean.
    """
    if not torch.is_tensor(y):
        raise fail(name, "must be a tensor of integer class labels",
                   f"Pass torch.as_tensor({name}, dtype=torch.long)", type(y).__name__,
                   kind=PIDTypeError)
    return as_class_labels(y, name, read_values=False)


def _check_features(features: Any, side: str, n: int, shapes: Sequence[Shape] | None,
                    dtype: torch.dtype | None = None) -> None:
    """One side's feature list of a :class:`Batch` against the loss's layer shapes and, with
    ``dtype`` (the loss's parameters' dtype), the features' floating-point dtype, unless
    autocast is on for the features' device (then it casts them)."""
    name = f"{side}_features"
    if shapes is not None and len(features) != len(shapes):
        raise fail(name, f"holds {len(features)} tensor(s) for the loss's {len(shapes)} layer "
                   "pair(s)", f"Pass one {side} feature tensor per layer pair the loss was "
                   "built for (hook the same layers as for make_loss)")
    for i, f in enumerate(features):
        if not torch.is_tensor(f):
            raise fail(name, f"item {i} is a {type(f).__name__}, not a tensor", "Pass the "
                       "hooked layers' output tensors (FeatureHooks.collect())",
                       kind=PIDTypeError)
        if f.dim() == 0 or f.shape[0] != n:
            raise fail(name, f"item {i} has shape {tuple(f.shape)}, not one row per label "
                       f"({n} labels)", "Pass batch-first features (N, C, ...) of the same batch")
        if shapes is not None and tuple(f.shape[1:]) != tuple(shapes[i]):
            raise fail(name, f"item {i} has per-sample shape {tuple(f.shape[1:])}, but the "
                       f"loss was built for {tuple(shapes[i])}", "Hook the layers the loss was "
                       "built for, or build the loss for these shapes with make_loss")
        if (dtype is not None and f.is_floating_point() and f.dtype != dtype
                and not torch.is_autocast_enabled(f.device.type)):
            raise fail(name, f"item {i} is {f.dtype}, but the loss's parameters are {dtype}",
                       f"Cast the loss to the features' precision (loss.match_precision("
                       f"{f.dtype})), the features to the loss's (f.to({dtype})), or run "
                       "the step under torch.autocast", kind=PIDTypeError)


def check_batch(loss: DistillLoss, batch: Batch, *, student_features: bool = True) -> None:
    """Refuse a :class:`Batch` that ``loss`` cannot use, by metadata only (shapes, dtypes,
    counts: no value is read, so it costs no host synchronisation inside a step): labels that
    are not integer class indices (:func:`check_labels`), teacher logits missing or of another
    shape than the student's for a loss that compares them (KD), feature lists of the wrong
    length or per-sample shape (the shapes are known for losses built by :func:`make_loss`),
    features of another floating-point dtype than the loss's parameters outside autocast, an
    empty batch, and a single-sample batch for a loss whose batch norm trains.

    Called first by every built-in loss, so that a batch assembled in a loop of one's own gets
    a typed error naming the :class:`Batch` field rather than a torch error deep inside.
    """
    if not isinstance(batch, Batch):
        raise fail("batch", f"is a {type(batch).__name__}, not a Batch", "Pass "
                   "pidkit_distill.losses.Batch(y=..., student_logits=..., ...)", None,
                   kind=PIDTypeError)
    y = check_labels(batch.y)
    n = y.shape[0]
    if n == 0:
        raise fail("y", "holds no samples (an empty batch)", "Skip empty batches in the "
                   "training loop (a DataLoader never yields one)")
    if loss.uses_teacher_logits:
        t, s = batch.teacher_logits, batch.student_logits
        if not torch.is_tensor(t):
            raise fail("teacher_logits", f"is {type(t).__name__}, but "
                       f"{type(loss).__name__} compares the teacher's logits with the "
                       "student's", "Pass Batch(teacher_logits=teacher(x)) computed under "
                       "torch.no_grad()", kind=PIDTypeError)
        if torch.is_tensor(s) and t.shape != s.shape:
            raise fail("teacher_logits", f"has shape {tuple(t.shape)} but the student's logits "
                       f"{tuple(s.shape)}", "Give both models the same classes and the same "
                       "batch")
    if loss.uses_features:
        shapes = loss.layer_shapes
        dtype = next((p.dtype for p in loss.parameters() if p.is_floating_point()), None)
        _check_features(batch.teacher_features, "teacher", n, shapes and shapes[0], dtype)
        if student_features:
            _check_features(batch.student_features, "student", n, shapes and shapes[1], dtype)
    if n == 1 and any(m.training for m in loss.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        raise fail("y", f"holds 1 sample, and {type(loss).__name__}'s batch norm cannot train "
                   "on one sample", "Use batches of at least 2 samples (drop_last=True in "
                   "the DataLoader), or build the loss with norm=False")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean cross-entropy in nats over the labelled samples of the batch (computed in float32
    under mixed precision):
    :math:`-\frac{1}{|L|}\sum_{n \in L} \log \mathrm{softmax}(z_n)_{y_n}`,
    :math:`L = \{n : y_n \ne` ``UNLABELLED`` :math:`\}`; exactly 0 (with a gradient graph)
    when the batch has no labelled sample. Under data parallelism :math:`L` is the global
    batch's labelled set (:func:`distributed_mean`); no value is read on the host.

    ``y`` must be 1-D integer class indices (:func:`check_labels`): one-hot or probability
    labels are refused with a typed error rather than read as soft targets, whose mean would
    be over the wrong count. Label values are not checked here (:func:`check_labels`).

    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> float(cross_entropy(z, torch.tensor([0, UNLABELLED]))) == float(
    ...     F.cross_entropy(z[:1], torch.tensor([0])))
    True
    """
    y = check_labels(y)
    if logits.dim() != 2 or logits.shape[0] != y.shape[0]:
        raise fail("logits", f"must have shape (N, K) = ({y.shape[0]}, K) for {y.shape[0]} "
                   f"labels, not {tuple(logits.shape)}", "Pass one row of class scores per "
                   "label")
    total = F.cross_entropy(_upcast(logits), y, ignore_index=UNLABELLED, reduction="sum")
    return distributed_mean(total, labelled_mask(y).sum())


_METHODS: dict[str, Callable[..., DistillLoss]] = {}
#: Parameters every factory receives positionally from make_loss: not options.
_POSITIONAL = ("self", "teacher_shapes", "student_shapes", "num_classes")


def register_method(name: str) -> Callable:
    """Register ``factory(teacher_shapes, student_shapes, num_classes, **kwargs) -> DistillLoss``
    under ``name`` (case-insensitive) for :func:`make_loss` and the trainer's ``method=``.

    The method's options are the factory's keyword parameters after those three or, when it
    forwards ``**kwargs``, those of the loss class named in its return annotation
    (:func:`method_options`)."""
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty method name (str)",
                   "Pass e.g. register_method('cosine')", name, kind=PIDTypeError)

    def decorator(factory: Callable[..., DistillLoss]) -> Callable[..., DistillLoss]:
        if not callable(factory):
            raise fail("factory", f"registered as method {name!r} is a "
                       f"{type(factory).__name__}, not callable", "Register a DistillLoss "
                       "subclass or a function (teacher_shapes, student_shapes, num_classes, "
                       "**options) -> DistillLoss", None, kind=PIDTypeError)
        _METHODS[name.lower()] = factory
        return factory
    return decorator


def method_options(method: str) -> list[str] | None:
    """Names of the options the loss registered as ``method`` accepts: the factory's own
    keyword parameters after ``(teacher_shapes, student_shapes, num_classes)``, or, for a
    factory that forwards ``**kwargs`` and names its loss class in its return annotation, that
    class's ``__init__`` parameters other than those. ``None`` when they cannot be told (an
    unknown method, or ``**kwargs`` all the way down)."""
    factory = _METHODS.get(method.lower()) if isinstance(method, str) else None
    if factory is None:
        return None
    params = list(inspect.signature(factory).parameters.values())[3:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        try:
            cls = typing.get_type_hints(factory).get("return")
        except NameError:  # an annotation naming something that cannot be resolved
            return None
        if not (isinstance(cls, type) and issubclass(cls, DistillLoss)):
            return None
        params = [p for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name not in _POSITIONAL]
        if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params):
            return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


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
        ``"ted"``, ``"rid"``, ``"pid"``, ``"broja"``, or a registered custom name).
    teacher_shapes, student_shapes : sequence of tuple
        Per-sample feature shapes ``(C,)`` or ``(C, *spatial)``, one per layer pair.
    num_classes : int
    **kwargs
        Options of the method (weights, temperature, ...); an option the method does not
        accept is a :class:`~pidkit.errors.PIDValueError` naming ``method_options`` and listing
        the accepted ones.
    """
    if not isinstance(method, str):
        raise fail("method", "must be a method name", f"Use one of {available_methods()}",
                   method, kind=PIDTypeError)
    key = method.lower()
    if key not in _METHODS:
        raise fail("method", "is not a known distillation method",
                   f"Use one of {available_methods()} or register_method() your own", method)
    accepted = method_options(key)
    unknown = sorted(set(kwargs) - set(accepted)) if accepted is not None else []
    if unknown:
        raise fail("method_options", f"{unknown} are not options of method {key!r}",
                   f"Its options are {sorted(accepted)}" if accepted
                   else f"Method {key!r} takes no options: pass method_options={{}}", kwargs)
    t_shapes = _shapes(teacher_shapes, "teacher_shapes")
    s_shapes = _shapes(student_shapes, "student_shapes")
    check_layer_pairs(t_shapes, s_shapes)
    return _METHODS[key](t_shapes, s_shapes, check_int(num_classes, "num_classes", 2), **kwargs)


def _shapes(shapes: Any, name: str) -> list[Shape]:
    """``shapes`` (per-sample feature shapes, one per layer pair) as a list of int tuples."""
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or not all(
            isinstance(s, Sequence) and all(isinstance(d, numbers.Integral)
                                            and not isinstance(d, bool) for d in s)
            for s in shapes):
        raise fail(name, "must be a list of per-sample shapes, one tuple of ints per layer "
                   "pair", "Example: [(64, 8, 8)] for one pair whose feature is (N, 64, 8, 8); "
                   "[] for a method without features", shapes, kind=PIDTypeError)
    return [tuple(int(d) for d in s) for s in shapes]
