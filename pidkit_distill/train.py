r"""The trainer: Algorithm 1 of the RID paper (and one-stage baselines), on any device, under
``torchrun`` too.

Schedule (two-phase methods such as RID), epochs counted from 0:

- ``epoch < warmup``  (:math:`n_w`): **warmup** - the teacher filters and heads train on
  cross-entropy only (no V term); the student does not train, or, with
  ``warmup_student=True``, trains at the same time on its own cross-entropy
  (:math:`\lambda_1\,\mathrm{CE}(Y, \hat Y)`, no V term; the two parameter sets are
  disjoint, so this is the same as running both warm-up phases of the first cycle at once);
- otherwise, with cycle length :math:`q` and ratio :math:`r`: **teacher** phase (phase 1: teacher
  filters and heads on :math:`L_t`) when ``epoch mod q < r * q``, else **student** phase
  (phase 2: student, student filters and sigma on :math:`L_s`).

One-stage methods (none, KD, FitNets, VID, TED, PID) are in the student phase every epoch. Each
phase has its own optimizer; learning rates follow a per-epoch schedule set at the start of every
epoch from the global epoch index.

Data parallel: when ``torch.distributed`` is initialised (e.g. by ``torchrun``), each process
takes ``batch_size / world_size`` samples of every global batch (same permutation everywhere),
the parameters are broadcast from rank 0 at start and the gradients of the trained parameters
are averaged across processes with ``all_reduce`` before clipping and stepping, which is the
same update as one process on the global batch (up to float rounding; batch-norm statistics
are per process).

Examples
--------
>>> from pidkit_distill import data, models, distill
>>> train, test = data.load_digits()
>>> teacher = models.untrained_teacher("digits_cnn", seed=0, width=8)
>>> student = models.get_model("digits_cnn", width=4)
>>> result = distill(teacher, student, train, method="rid", epochs=2, warmup=1, cycle=1,
...                  ratio=0.0, val_data=test, progress=False)
>>> len(result.history)
2
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from pidkit._validation import check_choice, fail

from .data import num_classes_of
from .features import FeatureHooks, eval_mode, feature_shapes
from .losses import Batch, DistillLoss, cross_entropy, labelled_mask, make_loss
from .models import default_layers, freeze

__all__ = [
    "TrainConfig",
    "Trainer",
    "Callback",
    "LambdaCallback",
    "DistillResult",
    "distill",
    "phase_of_epoch",
    "learning_rate",
    "EpochSampler",
    "init_distributed",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "pidkit_distill.checkpoint/1"
PHASES = ("warmup", "teacher", "student")


def phase_of_epoch(epoch: int, warmup: int, cycle: int, ratio: float) -> str:
    """Phase of 0-based ``epoch`` in Algorithm 1: ``"warmup"`` if ``epoch < warmup``, else
    ``"teacher"`` if ``epoch mod cycle < ratio * cycle``, else ``"student"``.

    Examples
    --------
    >>> [phase_of_epoch(i, 2, 4, 0.25) for i in range(8)]
    ['warmup', 'warmup', 'student', 'student', 'teacher', 'student', 'student', 'student']
    """
    if epoch < warmup:
        return "warmup"
    return "teacher" if epoch % cycle < ratio * cycle else "student"


def learning_rate(epoch: int, base_lr: float, schedule: str = "multistep",
                  milestones: Sequence[int] = (), gamma: float = 0.2, epochs: int = 1) -> float:
    r"""Learning rate at 0-based ``epoch``.

    ``"multistep"``: :math:`\eta\,\gamma^{\#\{m \le e\}}`; ``"cosine"``:
    :math:`\eta\,(1 + \cos(\pi e / E))/2`; ``"constant"``: :math:`\eta`.
    """
    if schedule == "multistep":
        return base_lr * gamma ** sum(1 for m in milestones if m <= epoch)
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    return base_lr


@dataclass
class TrainConfig:
    """Every training option (defaults follow the paper's CIFAR-10 setting where it has one).

    Attributes
    ----------
    method : str
        ``"none"``, ``"kd"``, ``"fitnets"``, ``"vid"``, ``"ted"``, ``"rid"``, ``"pid"`` or a
        registered name.
    method_options : dict
        Passed to the loss (e.g. ``{"lambda2": 10.0}`` for RID, ``{"temperature": 4}`` for KD).
    epochs : int
    batch_size : int
        Global batch size (split evenly over data-parallel processes).
    lr, teacher_lr : float
        Learning rates of the student-phase and teacher-phase optimizers (``teacher_lr=None``:
        same as ``lr``).
    optimizer : {"sgd", "adam"}
    momentum, nesterov, weight_decay : SGD options (Adam uses ``weight_decay`` only).
    schedule : {"multistep", "cosine", "constant"}; milestones, gamma : multistep options.
    warmup, cycle, ratio : int, int, float
        Algorithm 1's :math:`n_w`, :math:`q`, :math:`r` (two-phase methods only).
    warmup_student : bool
        Also train the student (on cross-entropy alone, its own optimizer) during the warm-up
        epochs of a two-phase method. Default ``False``: the student is frozen until the
        warm-up ends (Algorithm 1 as printed).
    grad_clip : float or None
        Max gradient norm per step (the authors use 100).
    amp : bool
        Mixed precision (float16 + grad scaling on CUDA, bfloat16 elsewhere).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; under torchrun with CUDA each process
        uses ``cuda:LOCAL_RANK``.
    seed : int
        Seeds the loss initialisation, the data order and the torch RNG.
    drop_last : bool
    out_dir : str or None
        Where ``metrics.csv``, ``metrics.json`` and ``checkpoint.pt`` are written.
    checkpoint_every : int
        Save every this many epochs (and after the last one); 0 disables.
    progress : bool
        tqdm progress bar over batches (main process only).
    num_workers : int
        DataLoader workers.
    """

    method: str = "rid"
    method_options: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    teacher_lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: tuple = ()
    gamma: float = 0.2
    warmup: int = 0
    cycle: int = 1
    ratio: float = 0.0
    warmup_student: bool = False
    grad_clip: float | None = 100.0
    amp: bool = False
    device: str = "cpu"
    seed: int = 0
    drop_last: bool = False
    out_dir: str | None = None
    checkpoint_every: int = 1
    progress: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_choice(self.optimizer, "optimizer", ("sgd", "adam"))
        check_choice(self.schedule, "schedule", ("multistep", "cosine", "constant"))
        for name in ("epochs", "batch_size", "cycle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(name, "must be a positive integer", "Pass an int >= 1", value)
        if not 0.0 <= float(self.ratio) <= 1.0:
            raise fail("ratio", "must lie in [0, 1]", "Pass the fraction r of each cycle spent "
                       "on the teacher phase", self.ratio)
        if self.warmup < 0:
            raise fail("warmup", "must be >= 0", "Pass the number of warm-up epochs", self.warmup)
        self.milestones = tuple(int(m) for m in self.milestones)


@runtime_checkable
class Callback(Protocol):
    """Called by :meth:`Trainer.fit` after every epoch on every process.

    ``metrics`` is the epoch's dict (already reduced over processes); a callback may add keys to
    it (they are logged) and may set ``trainer.stop = True``. Use ``trainer.is_main`` to do
    expensive or file-writing work on one process only. Optional methods
    ``on_train_begin(trainer)`` and ``on_train_end(trainer)`` are called if present.
    """

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None: ...


class LambdaCallback:
    """Wrap ``fn(trainer, epoch, metrics)`` as a :class:`Callback`, run every ``every`` epochs."""

    def __init__(self, fn, every: int = 1):
        self.fn, self.every = fn, int(every)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            self.fn(trainer, epoch, metrics)


class EpochSampler(Sampler[int]):
    """Indices of one process for one epoch: a permutation seeded with ``seed + epoch`` (or the
    identity), padded to a multiple of ``world`` and strided ``[rank::world]``, so that
    consecutive local batches of ``B / world`` form the global batches of size ``B``."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world: int = 1, pad: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world, self.pad, self.epoch = rank, world, pad, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            idx = torch.randperm(self.n, generator=g).tolist()
        else:
            idx = list(range(self.n))
        if self.pad and self.n % self.world:
            idx += idx[: self.world - self.n % self.world]
        return idx[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Initialise ``torch.distributed`` from torchrun's environment variables if they are set
    and it is not initialised yet; return ``(rank, world_size)`` (``(0, 1)`` otherwise)."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE",
                                                                                   "1")) > 1:
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a trainer checkpoint with ``torch.load(weights_only=True)``: tensors and plain
    containers only; a file that holds pickled code or objects is refused with
    :class:`~pidkit.errors.PIDValueError`."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise fail("checkpoint", f"{path} holds objects other than tensors and plain data",
                   "Only load checkpoints written by Trainer.save_checkpoint; pidkit_distill "
                   "never unpickles code") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise fail("checkpoint", f"{path} is not a pidkit_distill checkpoint",
                   "Pass a file written by Trainer.save_checkpoint")
    return state


def _as_dataset_loader(data, batch_size: int, sampler: Sampler, drop_last: bool,
                       num_workers: int) -> DataLoader:
    return DataLoader(data, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


class Trainer:
    """Distil ``student`` from a frozen ``teacher`` with a method chosen by name.

    Parameters
    ----------
    teacher : nn.Module or None
        Frozen in eval mode (its parameters get ``requires_grad=False``); ``None`` only for
        ``method="none"``.
    student : nn.Module
    train_data : Dataset
        Map-style data set of ``(x, y)``; batching, shuffling and sharding are done here.
    layers : sequence of (str, str), optional
        ``(teacher_path, student_path)`` pairs (see :mod:`pidkit_distill.features`); default:
        the last ``min`` entries of both models' ``feature_layers``, paired in order.
    config : TrainConfig, optional
        Options; keyword arguments override its fields.
    val_data : Dataset, optional
        Evaluated after every epoch (student accuracy, and the teacher head's for RID/TED).
    callbacks : iterable of Callback
    loss : DistillLoss, optional
        A ready loss instance instead of building ``config.method``.
    num_classes : int, optional
        Default: inferred from the labels.

    Attributes
    ----------
    teacher, student, loss_fn, device, config, history (list of per-epoch metric dicts),
    teacher_layers, student_layers, rank, world_size, is_main, epoch (next epoch to run), stop.
    """

    def __init__(self, teacher: nn.Module | None, student: nn.Module, train_data: Dataset, *,
                 layers: Sequence[tuple[str, str]] | None = None,
                 config: TrainConfig | None = None, val_data: Dataset | None = None,
                 callbacks: Iterable[Callback] = (), loss: DistillLoss | None = None,
                 num_classes: int | None = None, **overrides: Any):
        names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise fail("config", f"unknown options {unknown}",
                       f"Use TrainConfig fields: {sorted(names)}")
        base = asdict(config) if config is not None else {}
        self.config = TrainConfig(**{**base, **overrides})
        cfg = self.config
        self.rank, self.world_size = init_distributed()
        self.is_main = self.rank == 0
        self.device = self._resolve_device(cfg.device)
        if cfg.batch_size % self.world_size:
            raise fail("batch_size", f"{cfg.batch_size} is not divisible by the "
                       f"{self.world_size} processes", "Use a global batch size that is a "
                       "multiple of the world size", cfg.batch_size)
        torch.manual_seed(cfg.seed)
        self.train_data, self.val_data = train_data, val_data
        self.num_classes = num_classes or num_classes_of([d for d in (train_data, val_data)
                                                           if d is not None])
        self.student = student.to(self.device)
        self.teacher = freeze(teacher.to(self.device)) if teacher is not None else None
        self.loss_fn = loss
        method_needs_teacher = loss.uses_teacher if loss is not None else cfg.method != "none"
        if self.teacher is None and method_needs_teacher:
            raise fail("teacher", f"method {cfg.method!r} needs a teacher",
                       "Pass a teacher model, or method='none'")
        self.teacher_layers, self.student_layers = self._resolve_layers(layers)
        if self.loss_fn is None:
            t_shapes, s_shapes = self._probe_shapes()
            self.loss_fn = make_loss(cfg.method, t_shapes, s_shapes, self.num_classes,
                                     **cfg.method_options)
        self.loss_fn.to(self.device)
        self._sync_initial_parameters()
        self.student_optimizer = self._optimizer([*self.student.parameters(),
                                                  *self.loss_fn.student_parameters()], cfg.lr)
        teacher_params = self.loss_fn.teacher_parameters() if self.loss_fn.two_phase else []
        self.teacher_optimizer = (self._optimizer(teacher_params, cfg.teacher_lr or cfg.lr)
                                  if teacher_params else None)
        use_scaler = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.callbacks = list(callbacks)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.stop = False
        self.sampler = EpochSampler(len(train_data), cfg.seed, True, self.rank, self.world_size)
        self.loader = _as_dataset_loader(train_data, cfg.batch_size // self.world_size,
                                         self.sampler, cfg.drop_last, cfg.num_workers)

    # ------------------------------------------------------------------ setup helpers
    def _resolve_device(self, device: str) -> torch.device:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None and self.world_size > 1:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise fail("device", "CUDA is not available", "Use device='cpu'", device)
        return dev

    def _resolve_layers(self, layers) -> tuple[list[str], list[str]]:
        uses_features = self.loss_fn.uses_features if self.loss_fn is not None else \
            self.config.method not in ("none", "kd")
        if layers is None:
            if not uses_features:
                return [], []
            t, s = default_layers(self.teacher), default_layers(self.student)
            k = min(len(t), len(s))
            return list(t[-k:]), list(s[-k:])
        pairs = [tuple(p) for p in layers]
        if any(len(p) != 2 for p in pairs):
            raise fail("layers", "must be a list of (teacher_path, student_path) pairs",
                       "Example: layers=[('layer3', 'layer3')]", layers)
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _probe_shapes(self) -> tuple[list[tuple], list[tuple]]:
        if not self.teacher_layers:
            return [], []
        x = torch.stack([torch.as_tensor(self.train_data[i][0]) for i in range(2)])
        x = x.to(self.device)
        return (feature_shapes(self.teacher, x, self.teacher_layers),
                feature_shapes(self.student, x, self.student_layers))

    def _optimizer(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)

    def _sync_initial_parameters(self) -> None:
        if self.world_size == 1:
            return
        for module in (self.student, self.loss_fn):
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    # ------------------------------------------------------------------ one epoch
    def phase_of(self, epoch: int) -> str:
        """Phase of ``epoch`` for this method (always ``"student"`` for one-stage methods)."""
        if not self.loss_fn.two_phase:
            return "student"
        cfg = self.config
        return phase_of_epoch(epoch, cfg.warmup, cfg.cycle, cfg.ratio)

    def _set_learning_rates(self, epoch: int) -> None:
        cfg = self.config
        for opt, base in ((self.student_optimizer, cfg.lr),
                          (self.teacher_optimizer, cfg.teacher_lr or cfg.lr)):
            if opt is None:
                continue
            lr = learning_rate(epoch, base, cfg.schedule, cfg.milestones, cfg.gamma, cfg.epochs)
            for group in opt.param_groups:
                group["lr"] = lr

    def _forward(self, x: torch.Tensor, y: torch.Tensor, phase: str) -> Batch:
        batch = Batch(y=y)
        if self.teacher is not None and self.loss_fn.uses_teacher:
            with torch.no_grad(), FeatureHooks(self.teacher, self.teacher_layers) as hooks:
                batch.teacher_logits = self.teacher(x)
                batch.teacher_features = hooks.collect() if self.teacher_layers else []
        if phase == "warmup" and not self.config.warmup_student:
            return batch
        trains_student = phase == "student" or phase == "warmup"
        grad = torch.enable_grad() if trains_student else torch.no_grad()
        with grad, FeatureHooks(self.student, self.student_layers) as hooks:
            batch.student_logits = self.student(x)
            batch.student_features = hooks.collect() if self.student_layers else []
        return batch

    def _allreduce_gradients(self, params: list[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if self.world_size == 1 or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def _reduce_sums(self, sums: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1:
            return sums
        keys = sorted(sums)
        t = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist(), strict=True))

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Run one epoch of the scheduled phase; return its training metrics."""
        cfg = self.config
        phase = self.phase_of(epoch)
        self._set_learning_rates(epoch)
        warm_student = phase == "warmup" and cfg.warmup_student
        self.student.train(phase == "student" or warm_student)
        self.loss_fn.set_phase(phase)
        if phase == "student":
            steps = [(self.student_optimizer,
                      [*self.student.parameters(), *self.loss_fn.student_parameters()])]
        else:
            steps = [(self.teacher_optimizer, self.loss_fn.teacher_parameters())]
            if warm_student:
                steps.append((self.student_optimizer, list(self.student.parameters())))
        steps = [(opt, [p for p in ps if p.requires_grad]) for opt, ps in steps]
        params = [p for _, ps in steps for p in ps]
        self.sampler.set_epoch(epoch)
        sums: dict[str, float] = {"n": 0.0, "loss": 0.0, "correct": 0.0, "labelled": 0.0}
        bar = self._progress(self.loader, f"epoch {epoch} [{phase}]")
        for x, y in bar:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=cfg.amp):
                batch = self._forward(x, y, phase)
                if phase == "student":
                    loss, parts = self.loss_fn.student_loss(batch)
                    logits = batch.student_logits
                else:
                    loss, parts = self.loss_fn.teacher_loss(batch, distill=phase == "teacher")
                    logits = self.loss_fn.teacher_head_logits(batch)
                    if warm_student:
                        ce = cross_entropy(batch.student_logits, batch.y)
                        loss = loss + getattr(self.loss_fn, "lambda1", 1.0) * ce
                        parts = {**parts, "ce": float(ce.detach())}
            if not torch.isfinite(loss):
                raise fail("loss", f"became {float(loss)} at epoch {epoch}",
                           "Lower the learning rate or the distillation weight, or set grad_clip")
            for opt, _ in steps:
                opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self._allreduce_gradients(params)
            for opt, ps in steps:
                if cfg.grad_clip is not None:
                    self.scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(ps, cfg.grad_clip)
                self.scaler.step(opt)
            self.scaler.update()
            n = float(len(y))
            sums["n"] += n
            sums["loss"] += float(loss.detach()) * n
            if logits is not None:  # accuracy on the labelled samples (y != UNLABELLED)
                sums["correct"] += float((logits.argmax(1) == y).sum())
                sums["labelled"] += float(labelled_mask(y).sum())
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value * n
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        sums = self._reduce_sums(sums)
        n = max(sums.pop("n"), 1.0)
        n_labelled = max(sums.pop("labelled"), 1.0)
        acc_key = "train_acc" if phase == "student" else "train_head_acc"
        metrics: dict[str, Any] = {"epoch": epoch, "phase": phase,
                                   "lr": steps[0][0].param_groups[0]["lr"],
                                   "train_loss": sums.pop("loss") / n,
                                   acc_key: sums.pop("correct") / n_labelled}
        metrics.update({f"train_{k}": v / n for k, v in sums.items()})
        return metrics

    def _progress(self, iterable, desc: str):
        if not (self.config.progress and self.is_main):
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, leave=False)

    @torch.no_grad()
    def evaluate(self, data: Dataset | None = None) -> dict[str, float]:
        """Student accuracy and cross-entropy on ``data`` (default: ``val_data``), plus the
        teacher-side head's accuracy for methods that have one; reduced over processes."""
        data = data if data is not None else self.val_data
        if data is None:
            return {}
        sampler = EpochSampler(len(data), shuffle=False, rank=self.rank, world=self.world_size,
                               pad=False)
        loader = DataLoader(data, batch_size=self.config.batch_size, sampler=sampler,
                            num_workers=self.config.num_workers)
        head = self.teacher is not None and type(self.loss_fn).teacher_head_logits is not \
            DistillLoss.teacher_head_logits
        sums = {"n": 0.0, "correct": 0.0, "ce": 0.0, "head_correct": 0.0}
        with eval_mode(self.student, self.loss_fn):
            for x, y in loader:
                x, y = x.to(self.device), y.to(self.device)
                logits = self.student(x)
                sums["n"] += len(y)
                sums["correct"] += float((logits.argmax(1) == y).sum())
                sums["ce"] += float(nn.functional.cross_entropy(logits.float(), y,
                                                                reduction="sum"))
                if head:
                    with FeatureHooks(self.teacher, self.teacher_layers) as hooks:
                        self.teacher(x)
                        feats = hooks.collect()
                    head_logits = self.loss_fn.teacher_head_logits(
                        Batch(y=y, teacher_features=feats))
                    sums["head_correct"] += float((head_logits.argmax(1) == y).sum())
        sums = self._reduce_sums(sums)
        n = max(sums["n"], 1.0)
        out = {"val_acc": sums["correct"] / n, "val_loss": sums["ce"] / n}
        if head:
            out["val_head_acc"] = sums["head_correct"] / n
        return out

    # ------------------------------------------------------------------ loop
    def fit(self, resume: str | os.PathLike | None = None) -> list[dict[str, Any]]:
        """Train from ``self.epoch`` (or from checkpoint ``resume``) up to ``config.epochs``;
        return the history (one metrics dict per epoch)."""
        if resume is not None:
            self.load_checkpoint(resume)
        for cb in self.callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self)
        while self.epoch < self.config.epochs and not self.stop:
            start = time.perf_counter()
            epoch = self.epoch
            metrics = self.train_epoch(epoch)
            metrics.update(self.evaluate())
            if hasattr(self.loss_fn, "sigma_summary"):
                metrics.update(self.loss_fn.sigma_summary())
            metrics["time_s"] = time.perf_counter() - start
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, metrics)
            self.history.append(metrics)
            self.epoch = epoch + 1
            self._write_metrics()
            every = self.config.checkpoint_every
            if self.config.out_dir and every and (self.epoch % every == 0
                                                  or self.epoch == self.config.epochs):
                self.save_checkpoint(Path(self.config.out_dir) / "checkpoint.pt")
        for cb in self.callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(self)
        return self.history

    def _write_metrics(self) -> None:
        if not (self.config.out_dir and self.is_main):
            return
        out = Path(self.config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(_plain(self.history), indent=1))
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        with open(out / "metrics.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimizer and scaler states, the epoch,
        the RNG states and the history (tensors and plain data only)."""
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "student": self.student.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "student_optimizer": self.student_optimizer.state_dict(),
            "teacher_optimizer": (self.teacher_optimizer.state_dict()
                                  if self.teacher_optimizer is not None else None),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": _plain(self.history),
            "config": _plain(asdict(self.config)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the models must have the same architecture)."""
        self.student.load_state_dict(state["student"])
        self.loss_fn.load_state_dict(state["loss"])
        self.student_optimizer.load_state_dict(state["student_optimizer"])
        if self.teacher_optimizer is not None and state["teacher_optimizer"] is not None:
            self.teacher_optimizer.load_state_dict(state["teacher_optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` (main process only; atomic rename)."""
        if not self.is_main:
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Resume from a file written by :meth:`save_checkpoint` (``weights_only=True``)."""
        self.load_state_dict(load_checkpoint(path, map_location=self.device))


@dataclass
class DistillResult:
    """What :func:`distill` returns: the trained ``student``, the per-epoch ``history`` and the
    ``trainer`` (for further training, evaluation or checkpoints)."""

    student: nn.Module
    history: list[dict[str, Any]]
    trainer: Trainer

    @property
    def final(self) -> dict[str, Any]:
        """Metrics of the last epoch."""
        return self.history[-1] if self.history else {}


def distill(teacher: nn.Module | None, student: nn.Module, train_data: Dataset, *,
            method: str = "rid", layers: Sequence[tuple[str, str]] | None = None,
            val_data: Dataset | None = None, callbacks: Iterable[Callback] = (),
            loss: DistillLoss | None = None, resume: str | os.PathLike | None = None,
            **config: Any) -> DistillResult:
    """Distil ``student`` from ``teacher`` on ``train_data`` and return a :class:`DistillResult`.

    Keyword arguments are :class:`TrainConfig` fields (``epochs``, ``lr``, ``warmup``,
    ``cycle``, ``ratio``, ``method_options``, ``device``, ``out_dir``, ...). See
    :class:`Trainer` for the other parameters.
    """
    trainer = Trainer(teacher, student, train_data, layers=layers, val_data=val_data,
                      callbacks=callbacks, loss=loss, method=method, **config)
    history = trainer.fit(resume=resume)
    return DistillResult(trainer.student, history, trainer)
