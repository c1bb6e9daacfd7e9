r"""The trainer: Algorithm 1 of the RID paper (and one-stage baselines), on any device, under
``torchrun`` too.

Schedule (two-phase methods such as RID; :mod:`pidkit_distill.schedule`), epochs counted from 0:

- ``epoch < warmup`` (:math:`n_w`): **warmup** - the teacher-side filters and heads train on
  cross-entropy only (no V term); the student does not train, or, with
  ``warmup_student=True``, trains at the same time on its own cross-entropy;
- then cycles of :math:`q` epochs: the first :math:`\lceil r q\rceil` epochs of each cycle are
  **teacher** epochs (phase 1: teacher-side filters and heads on :math:`L_t`), the rest
  **student** epochs (phase 2: student, student filters and sigma on :math:`L_s`).

Left at ``None``, ``warmup``, ``cycle`` and ``ratio`` are scaled to ``epochs`` with the paper's
proportions (:func:`~pidkit_distill.schedule.resolve_schedule`); a schedule without a teacher
or a student epoch is refused. One-stage methods (none, KD, FitNets, VID, TED, PID) are in the
student phase every epoch. Each phase has its own optimizer and, optionally, scheduler.

Data parallel: under ``torchrun`` (or any initialised process group) each process takes
``batch_size / world_size`` samples of every global batch and the step runs inside
:class:`~torch.nn.parallel.DistributedDataParallel` (one wrapper per phase,
:mod:`pidkit_distill.distributed`); the losses use global-batch statistics where a mean over
labelled samples or a covariance enters, so a run on W processes makes the same updates as one
process on the same global batches (up to float rounding; with ``sync_batchnorm=True`` the
batch-norm statistics are global too).

No host synchronisation happens inside a training step: losses, accuracies and the finiteness
check accumulate on the device and are read once per epoch (the progress bar reads the loss
every ``log_every`` steps).

Examples
--------
>>> from pidkit_distill import data, models, distill
>>> train, test = data.load_digits()
>>> teacher = models.untrained_teacher("digits_cnn", seed=0, width=8)
>>> student = models.get_model("digits_cnn", width=4)
>>> result = distill(teacher, student, train, method="rid", epochs=3, val_data=test,
...                  progress=False)
>>> [h["phase"] for h in result.history]
['warmup', 'teacher', 'student']
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import math
import os
import pickle
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import distributed as dist
from torch import nn

from pidkit.errors import CheckpointError, PIDKitError, PIDTypeError, caller_stacklevel
from pidkit.result import to_plain
from pidkit.validation import check_choice, check_flag, check_int, check_positive, fail

from .batches import (
    BatchFormat,
    as_dataset,
    check_data,
    check_input_dtypes,
    check_label_values,
    check_reiterable,
    class_labels,
    collate_samples,
    device_batches,
    eval_loader,
    first_forward,
    has_batchnorm,
    loader_generators,
    peek_batch,
    to_device,
    train_loader,
)
from .distributed import init_distributed, phase_ddp
from .features import (
    FeatureHooks,
    check_feature_batch,
    check_layer_pairs,
    check_module_paths,
    eval_mode,
    inner_model,
)
from .losses import (
    UNLABELLED,
    Batch,
    DistillLoss,
    available_methods,
    cross_entropy,
    labelled_mask,
    make_loss,
)
from .models import default_layers, freeze, module_device, module_dtype, resolve_device
from .optim import build_optimizer, build_scheduler, param_groups
from .schedule import Schedule, check_ratio, learning_rate, resolve_schedule

__all__ = [
    "TrainConfig",
    "Trainer",
    "DistillStep",
    "Callback",
    "LambdaCallback",
    "DistillResult",
    "distill",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
    "METRIC_UNITS",
    "RESUME_FIXED",
    "RUN_FILES",
    "check_run_folder",
]

CHECKPOINT_FORMAT = "pidkit_distill.checkpoint/1"
#: Options a resumed run must share with the checkpoint's run (they fix the data order and the
#: loss); see :meth:`Trainer.load_state_dict`.
RESUME_FIXED = ("method", "batch_size", "seed", "drop_last")
METRICS_FORMAT = "pidkit_distill.metrics/1"
#: The files a run writes into ``out_dir`` (:func:`check_run_folder` guards them).
RUN_FILES = ("checkpoint.pt", "metrics.json", "metrics.csv")

#: Units of the trainer's own metrics and of the loss parts it logs (``train_<part>``). Training
#: terms are in nats (natural-log cross-entropies and information); audits add quantities in
#: bits (their keys say so); feature-matching terms (FitNets' hint, TED's mse, RID's V term and
#: regulariser) are mean squared feature distances. Keys not listed here are dimensionless.
METRIC_UNITS = {
    "epoch": "index", "phase": "name", "lr": "learning rate", "time_s": "s",
    "train_loss": "nats (total objective: cross-entropies in nats plus weighted terms)",
    "train_acc": "fraction", "train_head_acc": "fraction", "val_acc": "fraction",
    "val_head_acc": "fraction", "val_loss": "nats", "train_ce": "nats", "train_head_ce": "nats",
    "train_kd": "nats", "train_redundancy": "nats", "train_certified_gap": "nats",
    "train_vid": "nats (Gaussian negative log-likelihood per feature entry, up to a constant)",
    **{f"train_{part}": "squared feature units"
       for part in ("hint", "mse", "v_term", "rid_reg")},
}


@dataclass
class TrainConfig:
    """Every training option (defaults follow the paper's CIFAR-10 setting where it has one).

    Attributes
    ----------
    method : str
        ``"none"``, ``"kd"``, ``"fitnets"``, ``"vid"``, ``"ted"``, ``"rid"``, ``"pid"``,
        ``"broja"`` or a registered name; case-insensitive (stored in lower case, as
        :func:`~pidkit_distill.make_loss` reads it).
    method_options : dict
        Passed to the loss (e.g. ``{"lambda2": 10.0}`` for RID, ``{"temperature": 4}`` for KD).
    epochs : int
    batch_size : int
        Global batch size (split evenly over data-parallel processes); ignored when
        ``train_data`` is a DataLoader (its own batch size is used).
    lr, teacher_lr : float
        Learning rates of the student-phase and teacher-phase optimizers (``teacher_lr=None``:
        same as ``lr``); ignored by optimizer factories, which set their own.
    optimizer, teacher_optimizer : str or optimizer class or callable
        ``"sgd"``, ``"adam"``, ``"adamw"``, any ``torch.optim.Optimizer`` class, or a factory
        ``param_groups -> Optimizer`` (:mod:`pidkit_distill.optim`); ``teacher_optimizer=None``
        uses ``optimizer`` for the teacher phase too.
    scheduler, teacher_scheduler : callable or None
        Factories ``optimizer -> LRScheduler`` per phase, stepped after every epoch of that
        phase (``scheduler_interval="epoch"``) or every step (``"step"``). When given, the
        built-in ``schedule`` is not applied to that phase. A
        ``torch.optim.lr_scheduler.ReduceLROnPlateau`` is stepped after each epoch of its
        phase with the metric ``scheduler_monitor`` of that epoch (after validation).
    scheduler_interval : {"epoch", "step"}
        ``"step"`` is refused for a ``ReduceLROnPlateau`` (it watches a per-epoch metric).
    scheduler_monitor : str or None
        The epoch metric a ``ReduceLROnPlateau`` watches (a key of :attr:`Trainer.history`,
        e.g. ``"val_loss"``, ``"val_acc"`` with ``mode="max"``, ``"train_loss"``); ``None``:
        ``"val_loss"`` with ``val_data``, else ``"train_loss"``; a metric a callback adds to
        the epoch's metrics works too, on the main process alone under data parallelism
        (:class:`~pidkit_distill.AuditCallback`'s ``audit_*``): every process steps with the
        main process's value, broadcast once per epoch. For a two-phase method, note that
        the student's ``val_loss`` does not move in teacher epochs (the student does not
        train), whereas ``train_loss`` is then the teacher-phase objective.
    momentum, nesterov, weight_decay : SGD momentum options and the decoupled/L2 decay.
    decay_1d : bool
        Also decay parameters with fewer than 2 dimensions (biases, norm layers, RID's sigma);
        default ``False``.
    schedule : {"multistep", "cosine", "constant"}; milestones, gamma : multistep options.
        The built-in per-epoch learning-rate schedule (global epoch index).
    warmup, cycle, ratio : int, int, float or None
        Algorithm 1's :math:`n_w`, :math:`q`, :math:`r` (two-phase methods only); ``None``:
        scaled to ``epochs`` (:func:`~pidkit_distill.schedule.resolve_schedule`). One-stage
        methods ignore them with a ``UserWarning`` (so that one configuration can sweep over
        methods).
    warmup_student : bool
        Also train the student (on cross-entropy alone) during the warm-up epochs (two-phase
        methods only; ignored with a warning otherwise).
    grad_clip : float or None
        Max gradient norm per step and optimizer (the authors use 100).
    amp : bool
        Mixed precision (float16 + grad scaling on CUDA, bfloat16 elsewhere).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; under torchrun with CUDA each process
        uses ``cuda:LOCAL_RANK``.
    seed : int
        Seeds the data order and the loss's initial weights through their own generators; the
        global torch RNG is neither seeded nor advanced by the trainer (seed it yourself for
        reproducible model initialisation and dropout).
    drop_last : bool
    input_key, label_key, output_key :
        Which entries of a batch are the input and the label, and which part of a model's
        output are the logits (:class:`~pidkit_distill.batches.BatchFormat`).
    sync_batchnorm : bool
        Under data parallelism on CUDA, convert the student's (and the loss's) batch norms to
        :class:`torch.nn.SyncBatchNorm` (global batch statistics; torch runs it on GPUs only).
    find_unused_parameters : bool
        Passed to DistributedDataParallel (needed if the student has parameters that receive
        no gradient in a step).
    out_dir : str or None
        Where ``metrics.csv``, ``metrics.json`` and ``checkpoint.pt`` are written. A folder
        that already holds one of them (an earlier run) is refused before training
        (:func:`check_run_folder`) unless the run resumes a checkpoint inside it
        (``resume=``) or ``overwrite=True``.
    overwrite : bool
        Replace the files of an earlier run in ``out_dir`` (default ``False``: refuse them).
    checkpoint_every : int
        Save every this many epochs (and after the last one); 0 disables.
    progress : bool
        tqdm progress bar over batches (main process only).
    log_every : int
        Show the running loss on the progress bar every this many steps (each read is one
        device-to-host copy); 0: never.
    num_workers : int
        DataLoader workers (for data sets the trainer batches).
    restore_on_nonfinite : bool
        Keep a restore point, a copy on the device of the student's and the loss's states, the
        optimizers', the schedulers' and the gradient scaler's, taken at the start of every
        epoch (no host read), and put it back when the epoch ends with a non-finite loss or
        non-finite inputs, before the error is raised: the models then hold the weights of
        the end of the previous epoch, not the NaN the epoch's updates wrote. The same point
        is put back when a batch is refused in the middle of an epoch (labels outside the
        classes, ...: a typed error after some of the epoch's steps). Costs device
        memory for one copy of the student, the loss and the optimizer states (momentum: one
        more copy of the parameters; Adam: two). ``False``: no copy; the failed epoch's updates
        stay applied. Default ``True``.
    """

    method: str = "rid"
    method_options: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    teacher_lr: float | None = None
    optimizer: Any = "sgd"
    teacher_optimizer: Any = None
    scheduler: Callable | None = None
    teacher_scheduler: Callable | None = None
    scheduler_interval: str = "epoch"
    scheduler_monitor: str | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decay_1d: bool = False
    schedule: str = "multistep"
    milestones: tuple = ()
    gamma: float = 0.2
    warmup: int | None = None
    cycle: int | None = None
    ratio: float | None = None
    warmup_student: bool = False
    grad_clip: float | None = 100.0
    amp: bool = False
    device: str = "cpu"
    seed: int = 0
    drop_last: bool = False
    input_key: Any = None
    label_key: Any = None
    output_key: Any = None
    sync_batchnorm: bool = False
    find_unused_parameters: bool = False
    out_dir: str | None = None
    overwrite: bool = False
    checkpoint_every: int = 1
    progress: bool = True
    log_every: int = 50
    num_workers: int = 0
    restore_on_nonfinite: bool = True

    def __post_init__(self) -> None:
        """Check every option (typed errors naming it). Nothing is rounded or guessed: flags
        are stored as Python bools (numpy bools accepted) and ``milestones`` as a tuple of
        ints; a value not of the documented type is refused.

        Integers: ``epochs, batch_size >= 1``; ``checkpoint_every, log_every, num_workers,
        seed >= 0``; ``warmup >= 0`` and ``cycle >= 1`` or None; ``milestones`` integers
        ``>= 0``. Finite numbers: ``lr > 0`` and ``teacher_lr > 0`` (or None),
        ``weight_decay >= 0``, ``0 <= momentum < 1`` (SGD's momentum; 1 and above make the
        updates grow without bound), ``gamma > 0``, ``grad_clip > 0`` (or None: no clipping; a
        negative norm would flip the gradient's sign), ``ratio`` in [0, 1]. Flags are bools.
        """
        check_choice(self.schedule, "schedule", ("multistep", "cosine", "constant"))
        check_choice(self.scheduler_interval, "scheduler_interval", ("epoch", "step"))
        if self.scheduler_monitor is not None and not isinstance(self.scheduler_monitor, str):
            raise fail("scheduler_monitor", "must be the name of an epoch metric or None",
                       "Example: scheduler_monitor='val_loss' (or 'val_acc' with "
                       "ReduceLROnPlateau(mode='max'))", self.scheduler_monitor,
                       kind=PIDTypeError)
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("checkpoint_every", 0),
                              ("log_every", 0), ("num_workers", 0), ("seed", 0),
                              ("warmup", 0), ("cycle", 1)):
            value = getattr(self, name)
            if value is not None or name not in ("warmup", "cycle"):
                check_int(value, name, minimum)
        for name, optional, allow_zero in (("lr", False, False), ("teacher_lr", True, False),
                                           ("weight_decay", False, True),
                                           ("momentum", False, True), ("gamma", False, False),
                                           ("grad_clip", True, False)):
            value = getattr(self, name)
            if value is not None or not optional:
                check_positive(value, name, allow_zero=allow_zero)
        if not self.momentum < 1:
            raise fail("momentum", "must be < 1 (SGD's velocity grows without bound otherwise)",
                       "Use e.g. momentum=0.9, or 0 for plain SGD", self.momentum)
        for name in ("nesterov", "decay_1d", "warmup_student", "amp", "drop_last",
                     "sync_batchnorm", "find_unused_parameters", "progress", "overwrite",
                     "restore_on_nonfinite"):
            setattr(self, name, check_flag(getattr(self, name), name))
        if not isinstance(self.method, str):
            raise fail("method", "must be a method name (str)", "Use one of "
                       f"{available_methods()}", self.method, kind=PIDTypeError)
        self.method = self.method.lower()     # names are case-insensitive, as in make_loss
        if not isinstance(self.method_options, dict):
            raise fail("method_options", "must be a dict of the loss's options",
                       "Example: method_options={'lambda2': 10.0}", self.method_options,
                       kind=PIDTypeError)
        if self.ratio is not None:
            check_ratio(self.ratio)
        if isinstance(self.milestones, (str, bytes)) or not isinstance(self.milestones,
                                                                        Iterable):
            raise fail("milestones", "must be a sequence of epoch indices", "Example: "
                       "milestones=(150, 225)", self.milestones, kind=PIDTypeError)
        self.milestones = tuple(check_int(m, "milestones", 0) for m in self.milestones)
        if self.out_dir is not None and not isinstance(self.out_dir, (str, os.PathLike)):
            raise fail("out_dir", "must be a folder path or None", "Pass a str or a "
                       "pathlib.Path", self.out_dir, kind=PIDTypeError)
        if self.out_dir is not None and Path(self.out_dir).exists() and \
                not Path(self.out_dir).is_dir():
            raise fail("out_dir", "is an existing file, not a folder (metrics and checkpoints "
                       "are written inside it)", "Pass a folder path (it is created if "
                       "missing)", self.out_dir)
        self.format = BatchFormat(self.input_key, self.label_key, self.output_key)


#: How :func:`check_run_folder` spells the options in its message: the Python API's and the
#: command line's (``pidkit-distill train``).
API_SPELLING = {"out_dir": "out_dir", "resume": "resume={path!r}",
                "overwrite": "overwrite=True"}
CLI_SPELLING = {"out_dir": "--out", "resume": "--resume {path}", "overwrite": "--overwrite"}


def check_run_folder(out_dir: str | os.PathLike | None,
                     resume: str | os.PathLike | None = None, overwrite: bool = False, *,
                     spelling: dict[str, str] = API_SPELLING) -> None:
    """Refuse, before training, an ``out_dir`` holding an earlier run's files
    (:data:`RUN_FILES`), which a new run would replace after its first epoch.

    The one rule of the Python API (:meth:`Trainer.fit`, :func:`distill`) and of
    ``pidkit-distill train --out``: a folder holding ``checkpoint.pt``, ``metrics.json`` or
    ``metrics.csv`` is written to only by a run that continues it (``resume`` is a checkpoint
    inside ``out_dir``, e.g. ``out_dir/checkpoint.pt``) or with ``overwrite=True``. A missing
    or empty folder, or one holding other files only, is accepted.

    Parameters
    ----------
    out_dir : path or None
        The run's output folder (``None``: nothing is written, nothing to check).
    resume : path or None
        The checkpoint the run continues.
    overwrite : bool
        Replace the earlier run's files.
    spelling : dict
        How the message names ``out_dir``, ``resume`` (a format with ``{path}``) and
        ``overwrite``: :data:`API_SPELLING` or :data:`CLI_SPELLING`.

    Raises
    ------
    pidkit.errors.PIDValueError
        ``out_dir`` holds an earlier run's files and the run neither continues it nor
        overwrites it. The message names ``out_dir`` (or ``--out``), the files found, and the
        fixes: resume its checkpoint, overwrite it, or write to another folder.
    """
    if out_dir is None or overwrite:
        return
    folder = Path(out_dir)
    found = [name for name in RUN_FILES if (folder / name).exists()]
    if not found:
        return
    if resume is not None and Path(resume).resolve().parent == folder.resolve():
        return                              # continues the run of that folder
    name = spelling["out_dir"]
    checkpoint = folder / "checkpoint.pt"
    elsewhere = (f"; {spelling['resume'].format(path=str(resume))} continues a checkpoint "
                 f"of another folder" if resume is not None else "")
    fixes = ([f"Continue it with {spelling['resume'].format(path=str(checkpoint))}"]
             if checkpoint.exists() else [])
    fixes += [f"pass {spelling['overwrite']} to replace it", f"write to another {name}"]
    fixes[0] = fixes[0][0].upper() + fixes[0][1:]
    raise fail(name, f"{folder} holds an earlier run ({', '.join(found)}), whose files this "
               f"run would replace after its first epoch{elsewhere}",
               ", ".join(fixes[:-1]) + f" or {fixes[-1]}")


@runtime_checkable
class Callback(Protocol):
    """Called by :meth:`Trainer.fit` after every epoch on every process.

    ``metrics`` is the epoch's dict (already reduced over processes); a callback may add keys to
    it (they are logged; name their units in ``trainer.metric_units``, e.g.
    ``trainer.metric_units["my_mi"] = "bits"``, for ``metrics.json`` and the CSV header) and
    may set ``trainer.stop = True``. Use ``trainer.is_main`` to do
    expensive or file-writing work on one process only. Optional methods
    ``on_train_begin(trainer)`` and ``on_train_end(trainer)`` are called if present.
    """

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None: ...


class LambdaCallback:
    """Wrap ``fn(trainer, epoch, metrics)`` as a :class:`Callback`, run every ``every`` epochs."""

    def __init__(self, fn, every: int = 1):
        if not callable(fn):
            raise fail("fn", f"is a {type(fn).__name__}, not a function", "Pass "
                       "fn(trainer, epoch, metrics)", None, kind=PIDTypeError)
        self.fn, self.every = fn, check_int(every, "every", 1)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            self.fn(trainer, epoch, metrics)


def _check_callbacks(callbacks: Any) -> list:
    """``callbacks`` as a list, each with an ``on_epoch_end`` method (typed error otherwise,
    before training rather than after the first epoch)."""
    if callable(callbacks) or isinstance(callbacks, (str, bytes)) or \
            not isinstance(callbacks, Iterable):
        raise fail("callbacks", f"is a {type(callbacks).__name__}, not a list of callbacks",
                   "Pass a list, e.g. callbacks=[LambdaCallback(fn)]", None, kind=PIDTypeError)
    out = list(callbacks)
    for cb in out:
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise fail("callbacks", f"holds a {type(cb).__name__} without an on_epoch_end "
                       "method", "Wrap a function fn(trainer, epoch, metrics) as "
                       "LambdaCallback(fn), or give the object on_epoch_end(trainer, epoch, "
                       "metrics)", None, kind=PIDTypeError)
    return out


def _modes_and_grads(model: nn.Module) -> tuple[list, list]:
    """The train/eval mode of every submodule of ``model`` and the ``requires_grad`` flag of
    every parameter, for :func:`_restore_modes_and_grads`."""
    return ([(m, m.training) for m in model.modules()],
            [(p, p.requires_grad) for p in model.parameters()])


def _restore_modes_and_grads(kept: tuple[list, list]) -> None:
    modes, grads = kept
    for module, mode in modes:
        module.training = mode
    for param, flag in grads:
        param.requires_grad_(flag)


def _check_nothing_shared(teacher: nn.Module, student: nn.Module) -> None:
    """Refuse a student that trains parameters of the teacher (the same tensors, e.g.
    ``nn.Sequential(teacher.backbone, head)``): freezing the teacher would silently stop them
    training (and training them would change the teacher). Shared parameters the user froze
    already (``requires_grad=False``: a frozen backbone under a new head) are fine."""
    owned = {id(p) for p in teacher.parameters()}
    shared = [name for name, p in student.named_parameters()
              if p.requires_grad and id(p) in owned]
    if shared:
        raise fail("student", f"shares {len(shared)} trainable parameter(s) with the teacher "
                   f"(e.g. {shared[:3]}): the trainer freezes the teacher, so they would "
                   "silently stop training, and training them would change the teacher",
                   "Build the student from a copy of the shared part, e.g. "
                   "copy.deepcopy(teacher.backbone), or freeze the shared part yourself "
                   "(requires_grad_(False)) if it is not meant to train")


@dataclass(frozen=True)
class SavedFile:
    """What a file read by :func:`read_saved` should be, for its error messages.

    Attributes
    ----------
    argument : str
        The argument or command-line flag named in errors (``"checkpoint"``,
        ``"--teacher-weights"``).
    what : str
        The kind of file, as in "is not a weights file written by torch.save".
    writer : str
        What writes such files (the advice of most errors: "Pass a file written by ...").
    inner : str or None
        For a directory given instead of a file: the name of the file to suggest inside it
        (``"checkpoint.pt"``, what :meth:`Trainer.save_checkpoint` writes), or None.
    legacy : bool
        Also read :func:`torch.save`'s legacy (pre-zip) format, which has no checksums.
    """

    argument: str = "checkpoint"
    what: str = "checkpoint file"
    writer: str = "Trainer.save_checkpoint"
    inner: str | None = "checkpoint.pt"
    legacy: bool = False


#: A trainer checkpoint (:func:`load_checkpoint`).
CHECKPOINT_FILE = SavedFile()


def read_saved(path: str | os.PathLike, spec: SavedFile = CHECKPOINT_FILE,
               map_location: Any = "cpu") -> Any:
    """What :func:`torch.save` wrote to ``path``, read once with
    ``torch.load(weights_only=True)``: tensors and plain containers only, so reading never runs
    code. The one reader of saved files (:func:`load_checkpoint`, the CLI's weight files).

    Before anything is unpickled the file is checked to be what :func:`torch.save` writes, a
    zip archive (or, with ``spec.legacy``, its pre-zip format), and each record is checked
    against its CRC-32 (one extra read of the bytes, no unpickling), so that a missing, empty,
    truncated or corrupted file is reported as such.

    Raises
    ------
    pidkit.errors.CheckpointError
        ``path`` is missing, a directory, unreadable, empty, truncated, corrupted, not written
        by ``torch.save``, or holds pickled objects other than tensors and plain data. The
        message names ``spec.argument``, the path and what to do; the low-level error is
        chained (``__cause__``).
    pidkit.errors.PIDTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    """
    import zipfile

    if not isinstance(path, (str, os.PathLike)):
        raise fail(spec.argument, "must be a file path", f"Pass the path of a file written by "
                   f"{spec.writer}", path, kind=PIDTypeError)
    file = Path(path)
    redo = ("The save was cut short or the file was damaged (disk full, a killed process, an "
            "incomplete copy): copy it again, resume from an earlier checkpoint or train again")
    written_by = f"Pass a file written by {spec.writer}"

    def error(problem: str, fix: str) -> CheckpointError:
        return fail(spec.argument, f"{file} {problem}", fix, kind=CheckpointError)

    if file.is_dir():
        inner = file / spec.inner if spec.inner else None
        raise error("is a directory", f"Pass the file inside it: {inner}"
                    if inner is not None and inner.is_file() else f"Pass the {spec.what} itself"
                    + (f" ({spec.writer} writes out_dir/{spec.inner})" if spec.inner else ""))
    if not file.exists():
        near = (sorted(p.name for p in file.parent.glob("*.pt"))[:5]
                if file.parent.is_dir() else [])
        raise error("does not exist", "Check the path" + (
            f"; {file.parent} holds {near}" if near else
            f"; the folder {file.parent} does not exist either" if not file.parent.is_dir()
            else f"; {file.parent} holds no .pt files"))
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(4)
        is_zip = zipfile.is_zipfile(file)
    except OSError as exc:
        raise error(f"cannot be read ({exc.strerror or exc})",
                    "Check its permissions and that the disk is readable") from exc
    if size == 0:
        raise error("is empty (0 bytes)", redo)
    legacy = head.startswith(b"\x80\x02\x8a")  # _use_new_zipfile_serialization=False
    if not is_zip and not (legacy and spec.legacy):
        if head == b"PK\x03\x04":  # a zip that lost its end (central directory)
            raise error(f"is truncated ({size} bytes, the end of the zip archive is missing)",
                        redo)
        if legacy:
            raise error(f"is in torch.save's legacy (pre-zip) format, which {spec.writer} "
                        "never writes", written_by)
        raise error(f"is not a {spec.what} written by torch.save ({size} bytes starting with "
                    f"{head!r}, not a zip archive): it is corrupted or another kind of file",
                    written_by)
    if is_zip:
        try:  # read every record: a bad CRC-32 (or a damaged header) means corrupted data
            with zipfile.ZipFile(file) as archive:
                for info in archive.infolist():
                    if info.CRC == 0:  # written with torch.serialization.set_crc32_options(False)
                        continue
                    with archive.open(info) as record:
                        while record.read(1 << 22):
                            pass
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise error(f"is corrupted ({exc})", redo) from exc
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():    # torch 2.13: "unsupported GLOBAL"
            raise error("holds objects other than tensors and plain data, which are never "
                        "unpickled (weights_only=True)", f"Only load files written by "
                        f"{spec.writer}; pidkit_distill never unpickles code") from exc
        raise error("is corrupted (its pickled data cannot be read)", redo) from exc
    except EOFError as exc:
        raise error("is truncated (unexpected end of the pickled data)", redo) from exc
    except RuntimeError as exc:
        text = str(exc)
        if "unexpected EOF" in text:  # the legacy format's storages, cut short
            raise error("is truncated (unexpected end of its tensor data)", redo) from exc
        if is_zip and "PytorchStreamReader" not in text:
            raise  # e.g. map_location names a device this machine lacks
        raise error(f"is corrupted ({text.split('. ')[0][:120]})", redo) from exc
    except Exception as exc:
        if is_zip:
            raise
        # the legacy format has no checksums: its damaged bytes fail in many ways
        # (UnicodeDecodeError, KeyError, IndexError, ...) inside the unpickler
        raise error(f"is corrupted ({type(exc).__name__}: "
                    f"{(str(exc).splitlines() or [''])[0][:120]})", redo) from exc


def is_checkpoint(state: Any) -> bool:
    """Whether ``state`` (what :func:`read_saved` returned) is a pidkit_distill checkpoint of
    any format version."""
    return isinstance(state, dict) and str(state.get("format", "")).startswith(
        CHECKPOINT_FORMAT.rsplit("/", 1)[0] + "/")


def check_checkpoint_version(state: dict, path: str | os.PathLike,
                             spec: SavedFile = CHECKPOINT_FILE) -> dict:
    """``state`` (a checkpoint: :func:`is_checkpoint`) if this version reads its format; a
    :class:`~pidkit.errors.CheckpointError` naming ``spec.argument`` and ``path`` otherwise."""
    if state["format"] != CHECKPOINT_FORMAT:
        raise fail(spec.argument, f"{Path(path)} has format {state['format']!r}; this version "
                   f"reads {CHECKPOINT_FORMAT!r}", "Load it with the pidkit_distill version that "
                   "wrote it", kind=CheckpointError)
    return state


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a trainer checkpoint with ``torch.load(weights_only=True)``: tensors and plain
    containers only, so loading never runs code (:func:`read_saved`).

    Before anything is unpickled the file is checked to be what :func:`torch.save` writes, a
    zip archive, and each record is checked against its CRC-32 (one extra read of the file),
    so that a missing, empty, truncated or corrupted file is reported as such.

    Raises
    ------
    pidkit.errors.CheckpointError
        (a :class:`~pidkit.errors.PIDValueError`) ``path`` is missing, a directory, empty,
        truncated, corrupted, holds pickled objects other than tensors and plain data, or is
        not a pidkit_distill checkpoint. The message names ``checkpoint``, the path and what to
        do; the low-level error is chained (``__cause__``).
    pidkit.errors.PIDTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    """
    if isinstance(map_location, (str, torch.device)):   # a device this machine has
        map_location = resolve_device(map_location, "map_location")
    state = read_saved(path, CHECKPOINT_FILE, map_location)
    if not is_checkpoint(state):
        raise fail("checkpoint", f"{Path(path)} is not a pidkit_distill checkpoint",
                   "Pass a file written by Trainer.save_checkpoint (plain weights load with "
                   "model.load_state_dict(torch.load(path, weights_only=True)))",
                   kind=CheckpointError)
    return check_checkpoint_version(state, path)


class DistillStep(nn.Module):
    """Forward pass and loss of one training step: the student's forward (with its features
    hooked) and the method's loss of the given phase. One module so that
    DistributedDataParallel sees the student and the loss's own parameters together; usable in
    a custom loop as well.

    Parameters
    ----------
    student : nn.Module
    loss_fn : DistillLoss
    student_layers : sequence of str
        Hooked student layers, one per layer pair.
    batch_format : BatchFormat
        Selects the logits from the student's output.
    warmup_student : bool
        Train the student on its cross-entropy during warm-up.

    Notes
    -----
    ``forward(x, y, teacher_logits, teacher_features, phase)`` returns the scalar loss, its
    parts (detached tensors) and the logits whose accuracy is logged (the student's in the
    student phase, the teacher-side head's otherwise, or None).
    """

    def __init__(self, student: nn.Module, loss_fn: DistillLoss, student_layers: Sequence[str],
                 batch_format: BatchFormat, warmup_student: bool = False):
        super().__init__()
        self.student, self.loss_fn = student, loss_fn
        self.student_layers = list(student_layers)
        self.batch_format = batch_format
        self.warmup_student = warmup_student

    def forward(self, x: Any, y: torch.Tensor, teacher_logits: torch.Tensor | None,
                teacher_features: list[torch.Tensor], phase: str):
        batch = Batch(y=y, teacher_logits=teacher_logits, teacher_features=teacher_features)
        trains_student = phase == "student" or (phase == "warmup" and self.warmup_student)
        if trains_student or phase == "teacher":
            grad = torch.enable_grad() if trains_student else torch.no_grad()
            with grad, FeatureHooks(self.student, self.student_layers, name="student") as hooks:
                batch.student_logits = self.batch_format.logits(self.student(x))
                batch.student_features = hooks.collect() if self.student_layers else []
        if phase == "student":
            loss, parts = self.loss_fn.student_loss(batch)
            return loss, parts, batch.student_logits
        loss, parts = self.loss_fn.teacher_loss(batch, distill=phase == "teacher")
        if trains_student:
            ce = cross_entropy(batch.student_logits, batch.y)
            loss = loss + self.loss_fn.student_ce_weight * ce
            parts = {**parts, "ce": ce.detach()}
        return loss, parts, batch.head_logits


def epoch_sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the per-epoch sums the trainer keeps on ``device`` (losses, counts,
    accuracies; read once per epoch): float64, except on MPS, which has no float64 (float32:
    exact counts up to 2**24 samples an epoch, sums of losses to 7 digits)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_no_float64(device: torch.device, **parts: Any) -> None:
    """MPS has no float64: on ``device`` "mps", refuse models or a loss that hold float64
    tensors (e.g. the PID losses' running statistics) before they move there, naming them."""
    if device.type != "mps":
        return
    holding = [name for name, part in parts.items() if isinstance(part, nn.Module)
               and any(t.dtype == torch.float64
                       for t in itertools.chain(part.parameters(), part.buffers()))]
    if holding:
        what = (f"{type(parts['loss']).__name__} keeps float64 running statistics"
                if holding == ["loss"] else f"the {' and the '.join(holding)} "
                f"{'holds' if len(holding) == 1 else 'hold'} float64 tensors")
        raise fail("device", f"'mps' has no float64, and {what}", "Train on device='cpu' or "
                   "'cuda' (or cast float64 models with .float())", "mps")


class Trainer:
    """Distil ``student`` from a frozen ``teacher`` with a method chosen by name.

    Parameters
    ----------
    teacher : nn.Module or None
        Frozen in eval mode (its parameters get ``requires_grad=False``); ``None`` only for
        ``method="none"``.
    student : nn.Module
        Returns logits ``(N, classes)``, or a tuple/mapping holding them (``output_key``).
    train_data : Dataset, IterableDataset, DataLoader or (inputs, labels)
        Batches of ``(x, y, ...)`` or mappings (``input_key``, ``label_key``); see
        :mod:`pidkit_distill.batches`. A tuple ``(inputs, labels)`` of equal-length tensors
        or numpy arrays is read as ``TensorDataset(inputs, labels)``, as :func:`audit` reads
        it (:func:`~pidkit_distill.batches.as_dataset`; numpy arrays keep their dtype, so pass
        ``float32`` inputs to a ``float32`` student); other tuples of arrays (three entries,
        lengths that differ) are typed errors naming the argument.
    layers : sequence of (str, str), optional
        ``(teacher_path, student_path)`` pairs (see :mod:`pidkit_distill.features`); default:
        the last ``min`` entries of both models' ``feature_layers``, paired in order. A path
        whose output has its channels last, such as a transformer layer's tokens
        ``(N, T, C)``, takes the suffix ``":channels_last"``
        (``("layer3", "encoder.layers.encoder_layer_1:channels_last")``), so that the loss
        sees ``C`` channels at ``T`` positions (:class:`~pidkit_distill.features.FeatureHooks`).
    config : TrainConfig, optional
        Options; keyword arguments override its fields.
    val_data : Dataset, IterableDataset, DataLoader or (inputs, labels), optional
        Same forms as ``train_data``. Evaluated after every epoch (student accuracy, and the
        teacher head's for RID/TED).
    callbacks : iterable of Callback
    loss : DistillLoss, optional
        A ready loss instance instead of building ``config.method``.
    num_classes : int, optional
        Must equal the width ``K`` of the student's logits (the default).

    Notes
    -----
    Set-up checks, on the first batch of ``train_data`` (and of ``val_data``), so that a
    mistake is a typed error naming it before any step, not a torch error inside one (no
    check reads the device inside a training step):

    - labels are one class index per sample, shape ``(N,)``, of an integer dtype; ``uint8``,
      ``int16`` and ``int32`` labels are converted to ``int64`` (exactly), float, boolean and
      one-hot labels are refused (:func:`~pidkit_distill.batches.class_labels`). Their values
      are in ``[0, K)`` or ``-1`` (:data:`~pidkit_distill.losses.UNLABELLED`); the values are
      checked on the first batch, and on every later batch whose labels the loader yields on
      the CPU (a host read, no device synchronisation), so a label out of range halfway
      through an epoch is a typed error naming ``train_data`` or ``val_data``;
    - floating-point inputs have the student's dtype (unless ``amp``); the teacher may have
      another precision (e.g. a ``float64`` or ``bfloat16`` teacher): its inputs are cast to
      its dtype and its logits and features to the student's;
    - for KD the teacher's and the student's logits have the same width;
    - the loss (its filters, heads and buffers) is moved to the student's device and cast to
      the student's floating dtype, so ``float64`` models train in ``float64`` throughout.

    A training epoch without any labelled sample is an error for a method that learns from
    labels only (``method="none"``); accuracies and validation losses over no labelled
    sample are NaN, not 0.

    Attributes
    ----------
    teacher, student, loss_fn, step_module, device, config, schedule, history (list of
    per-epoch metric dicts), metric_units (units of metrics callbacks add: key -> unit, read
    by :meth:`units`), teacher_layers, student_layers, rank, world_size, is_main, epoch
    (next epoch to run), stop, loader, student_optimizer, teacher_optimizer, num_classes
    (the width of the student's logits), dtype (the student's floating dtype, which the loss
    is cast to; None for a model mixing precisions).
    """

    def __init__(self, teacher: nn.Module | None, student: nn.Module, train_data: Any, *,
                 layers: Sequence[tuple[str, str]] | None = None,
                 config: TrainConfig | None = None, val_data: Any = None,
                 callbacks: Iterable[Callback] = (), loss: DistillLoss | None = None,
                 num_classes: int | None = None, **overrides: Any):
        # the set-up freezes the teacher (eval mode, no gradients) before it checks the layers,
        # the data and the options: a refused set-up gives the teacher back as it came
        kept = _modes_and_grads(teacher) if isinstance(teacher, nn.Module) else None
        try:
            self._setup(teacher, student, train_data, layers=layers, config=config,
                        val_data=val_data, callbacks=callbacks, loss=loss,
                        num_classes=num_classes, **overrides)
        except BaseException:
            if kept is not None:
                _restore_modes_and_grads(kept)
            raise

    def _setup(self, teacher: nn.Module | None, student: nn.Module, train_data: Any, *,
               layers: Sequence[tuple[str, str]] | None, config: TrainConfig | None,
               val_data: Any, callbacks: Iterable[Callback], loss: DistillLoss | None,
               num_classes: int | None, **overrides: Any) -> None:
        names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise fail("config", f"unknown options {unknown}",
                       f"Use TrainConfig fields: {sorted(names)}")
        if config is not None and not isinstance(config, TrainConfig):
            raise fail("config", f"is a {type(config).__name__}, not a TrainConfig",
                       "Pass TrainConfig(**options), or the options themselves as keyword "
                       "arguments (Trainer(teacher, student, data, **options))",
                       kind=PIDTypeError)
        base = ({f.name: getattr(config, f.name) for f in fields(TrainConfig)}
                if config is not None else {})
        self.config = cfg = TrainConfig(**{**base, **overrides})
        if not isinstance(student, nn.Module):
            raise fail("student", f"is a {type(student).__name__}, not an nn.Module",
                       "Pass the student network", kind=PIDTypeError)
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise fail("teacher", f"is a {type(teacher).__name__}, not an nn.Module",
                       "Pass the teacher network (or None with method='none')",
                       kind=PIDTypeError)
        if teacher is student:
            raise fail("teacher", "is the student itself: the trainer freezes the teacher, so "
                       "the student could not train", "Pass a separate teacher, e.g. a frozen "
                       "copy.deepcopy(student) for self-distillation")
        if teacher is not None:
            _check_nothing_shared(teacher, student)
        if not any(p.requires_grad for p in student.parameters()):
            raise fail("student", f"{type(student).__name__} has no trainable parameter (none, "
                       "or all with requires_grad=False)", "Pass a model with parameters to "
                       "train, or unfreeze them with p.requires_grad_(True)")
        self.device = self._resolve_device(cfg.device)
        self._sum_dtype = epoch_sum_dtype(self.device)
        _check_no_float64(self.device, student=student, teacher=teacher)
        self.rank, self.world_size = init_distributed(self.device)
        self.is_main = self.rank == 0
        if cfg.out_dir and self.is_main:     # now, not after the first epoch's training
            try:
                Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise fail("out_dir", f"cannot be created ({err.strerror or err})",
                           "Pass a folder path you can write to", cfg.out_dir) from err
        if cfg.batch_size % self.world_size:
            raise fail("batch_size", f"{cfg.batch_size} is not divisible by the "
                       f"{self.world_size} processes", "Use a global batch size that is a "
                       "multiple of the world size", cfg.batch_size)
        train_data = as_dataset(train_data, "train_data")   # (inputs, labels) as audit reads it
        check_data(train_data, "train_data")
        check_reiterable(train_data, "train_data")
        if val_data is not None:
            val_data = as_dataset(val_data, "val_data")
            check_data(val_data, "val_data")
            check_reiterable(val_data, "val_data")
        self.train_data, self.val_data = train_data, val_data
        module_device(student, "student")          # meta tensors, a model split over devices
        if teacher is not None:
            module_device(teacher, "teacher")
        self.student = student.to(self.device)
        self.teacher = freeze(teacher.to(self.device)) if teacher is not None else None
        self.dtype = module_dtype(self.student)
        self._teacher_dtype = (module_dtype(self.teacher) if self.teacher is not None else None)
        if loss is not None and not isinstance(loss, DistillLoss):
            raise fail("loss", f"is a {type(loss).__name__}, not a DistillLoss", "Pass a loss "
                       "instance (e.g. make_loss('kd', [], [], num_classes)), or method='kd' "
                       "to build one by name", kind=PIDTypeError)
        if loss is not None and cfg.method_options:
            raise fail("method_options", f"configures the loss built from method="
                       f"{cfg.method!r}, but loss= gives a ready {type(loss).__name__}, so "
                       "they would be ignored", "Build the loss with these options (e.g. "
                       "make_loss(name, teacher_shapes, student_shapes, num_classes, "
                       "**options)), or drop loss= and pass method= with method_options=",
                       cfg.method_options)
        self.loss_fn = loss
        if loss is None and cfg.method not in available_methods():
            raise fail("method", f"{cfg.method!r} is not a distillation method",
                       f"Use one of {available_methods()}", cfg.method)
        needs_teacher = loss.uses_teacher if loss is not None else cfg.method != "none"
        if self.teacher is None and needs_teacher:
            raise fail("teacher", f"method {cfg.method!r} needs a teacher",
                       "Pass a teacher model, or method='none'")
        self.teacher_layers, self.student_layers = self._resolve_layers(layers)
        t_shapes, s_shapes = self._probe(num_classes, needs_teacher)
        if self.loss_fn is None:
            self.loss_fn = self._build_loss(t_shapes, s_shapes)
        if self.loss_fn.uses_features and not self.student_layers:
            raise fail("layers", f"is empty, but {type(self.loss_fn).__name__} distils "
                       "intermediate features", "Give at least one (teacher_path, student_path) "
                       "pair, or leave layers=None for the models' feature_layers", layers)
        if (self.loss_fn.uses_teacher_logits
                and self._teacher_classes not in (None, self.num_classes)):
            raise fail("teacher", f"outputs {self._teacher_classes} logits per sample but the "
                       f"student {self.num_classes}; {type(self.loss_fn).__name__} compares "
                       "their softmaxes class by class", "Give both models the same classes, "
                       "or use a feature method (e.g. method='fitnets' or 'rid')", None)
        # the loss's filters, heads and buffers in the student's device and precision (its
        # float64 running statistics stay float64)
        _check_no_float64(self.device, loss=self.loss_fn)
        self.loss_fn.to(self.device).match_precision(self.dtype)
        two_phase = self.loss_fn.two_phase
        self.schedule = (resolve_schedule(cfg.epochs, cfg.warmup, cfg.cycle, cfg.ratio)
                         if two_phase else Schedule(0, 1, 0.0))
        ignored = [name for name in ("warmup", "cycle", "ratio") if getattr(cfg, name) is not None]
        ignored += ["warmup_student"] if cfg.warmup_student else []
        if ignored and not two_phase:
            warnings.warn(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} "
                          f"ignored: only two-phase methods such as RID have a schedule, "
                          f"{type(self.loss_fn).__name__} trains the student every epoch",
                          UserWarning, stacklevel=caller_stacklevel())
        if cfg.sync_batchnorm and self.device.type != "cuda":
            raise fail("sync_batchnorm", f"needs CUDA devices (torch's SyncBatchNorm runs on "
                       f"GPUs only), not {self.device.type!r}", "Train on GPUs under torchrun, "
                       "or leave sync_batchnorm=False", cfg.sync_batchnorm)
        if self.world_size > 1 and cfg.sync_batchnorm:
            self.student = nn.SyncBatchNorm.convert_sync_batchnorm(self.student)
            self.loss_fn = nn.SyncBatchNorm.convert_sync_batchnorm(self.loss_fn)
        self.step_module = DistillStep(self.student, self.loss_fn, self.student_layers,
                                       cfg.format, cfg.warmup_student)
        self._phase_params = self._phase_parameters()
        self._wrappers: dict[str, nn.Module] = {}
        self.student_optimizer, self.teacher_optimizer = self._optimizers()
        self.student_scheduler = build_scheduler(cfg.scheduler, self.student_optimizer)
        self.teacher_scheduler = build_scheduler(
            cfg.teacher_scheduler or cfg.scheduler, self.teacher_optimizer, "teacher_scheduler")
        for name, sched in (("scheduler", self.student_scheduler),
                            ("teacher_scheduler", self.teacher_scheduler)):
            if _on_plateau(sched) and cfg.scheduler_interval == "step":
                raise fail("scheduler_interval", f"is 'step', but {name} builds a "
                           "ReduceLROnPlateau, which watches a metric once per epoch",
                           "Use scheduler_interval='epoch' (the plateau scheduler is then "
                           "stepped with the epoch's scheduler_monitor metric), or a "
                           "per-step scheduler such as OneCycleLR", cfg.scheduler_interval)
            if _on_plateau(sched) and val_data is None and \
                    str(cfg.scheduler_monitor).startswith("val_"):
                raise fail("scheduler_monitor", f"{cfg.scheduler_monitor!r} is a validation "
                           f"metric, which {name}'s ReduceLROnPlateau would watch, but there "
                           "is no val_data", "Pass val_data=..., or watch a training metric "
                           "(scheduler_monitor='train_loss')", cfg.scheduler_monitor)
        use_scaler = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.callbacks = _check_callbacks(callbacks)
        self.history: list[dict[str, Any]] = []
        self.metric_units: dict[str, str] = {}     # units of metrics callbacks add
        self.epoch = 0
        self.stop = False
        self._resumed_from: str | os.PathLike | None = None  # the checkpoint loaded, if any
        self._run_folder: Path | None = None    # the out_dir this trainer's fit writes to
        one_sample_breaks = has_batchnorm(self.student, self.loss_fn)
        self.loader = train_loader(
            train_data, cfg.batch_size, seed=cfg.seed, rank=self.rank, world=self.world_size,
            drop_last=cfg.drop_last, num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda", one_sample_breaks=one_sample_breaks)
        # an iterable data set's last batch is known only when it arrives
        self._drop_single_tail = (one_sample_breaks and not cfg.drop_last
                                  and not isinstance(train_data, torch.utils.data.DataLoader)
                                  and check_data(train_data, "train_data") is None)

    # ------------------------------------------------------------------ setup helpers
    def _resolve_device(self, device: str | torch.device) -> torch.device:
        dev = resolve_device(device)
        if dev.type == "cuda" and dev.index is None and int(os.environ.get("WORLD_SIZE",
                                                                           "1")) > 1:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return dev

    def _resolve_layers(self, layers) -> tuple[list[str], list[str]]:
        """The teacher and student layer paths of the pairs. A method that distils no
        features (none, KD) ignores ``layers`` with a ``UserWarning``, as one-stage methods
        ignore the schedule options, so that one configuration can sweep over methods."""
        uses_features = self.loss_fn.uses_features if self.loss_fn is not None else \
            self.config.method not in ("none", "kd")
        if not uses_features:
            if layers is not None and len(layers):
                method = (type(self.loss_fn).__name__ if self.loss_fn is not None
                          else f"method {self.config.method!r}")
                warnings.warn(f"layers is ignored: {method} distils no intermediate features",
                              UserWarning, stacklevel=caller_stacklevel())
            return [], []
        if layers is None:
            t, s = default_layers(self.teacher), default_layers(self.student)
            k = min(len(t), len(s))
            return list(t[-k:]), list(s[-k:])
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise fail("layers", "must be a list of (teacher_path, student_path) pairs",
                       "Example: layers=[('layer3', 'layer3')]", layers, kind=PIDTypeError)
        pairs = [tuple(p) if isinstance(p, (tuple, list)) else (p,) for p in layers]
        if any(len(p) != 2 for p in pairs):
            raise fail("layers", "must be a list of (teacher_path, student_path) pairs",
                       "Example: layers=[('layer3', 'layer3')]", layers)
        t_paths, s_paths = [p[0] for p in pairs], [p[1] for p in pairs]
        # an empty path would hook the whole model (its logits), not a layer: refused, as the
        # CLI's --layer and the teacher cache refuse it
        if self.teacher is not None:
            check_module_paths(self.teacher, t_paths, name="teacher")
        check_module_paths(self.student, s_paths, name="student")
        return t_paths, s_paths

    def _first_batch(self, data: Any, argument: str) -> tuple[Any, torch.Tensor]:
        """The first batch of ``data`` on the device, labels as int64 (:func:`class_labels`):
        a DataLoader's own first batch (read with the global RNG and the loader's generators
        restored afterwards, :func:`~pidkit_distill.batches.peek_batch`), else the
        first ``batch_size / world_size`` samples (the size of a training batch)."""
        size = max(self.config.batch_size // self.world_size, 1)
        if isinstance(data, torch.utils.data.DataLoader):
            batch = peek_batch(data, argument)  # the loader's first epoch unchanged
        elif isinstance(data, torch.utils.data.IterableDataset) or not hasattr(data,
                                                                               "__len__"):
            samples = list(itertools.islice(iter(data), size))
            batch = collate_samples(samples, argument) if samples else None
        else:
            n = check_data(data, argument)
            batch = collate_samples([data[i] for i in range(min(n, size))], argument)
        if batch is None:
            raise fail(argument, "yields no batch", "Pass a data set with samples")
        x, y = self.config.format.split(batch, argument)
        if (isinstance(data, torch.utils.data.DataLoader) and data.batch_size is None
                and data.batch_sampler is None and y.ndim == 0):
            # batch_size=None serves a data set that yields whole batches; this one yields
            # single samples (the label error would only say 'labels of shape ()')
            raise fail(argument, "is a DataLoader with batch_size=None over samples: it "
                       "yields single samples, not batches", "Build it with a batch size "
                       "(DataLoader(dataset, batch_size=64, shuffle=True)), or pass the "
                       "Dataset itself (the trainer batches it with batch_size=)")
        return to_device(x, self.device), class_labels(y, argument).to(self.device)

    def _check_inputs(self, x: Any, argument: str) -> None:
        """Floating-point inputs must have the student's dtype (without ``amp``, where autocast
        casts them): :func:`~pidkit_distill.batches.check_input_dtypes`."""
        if not self.config.amp:
            check_input_dtypes(x, self.dtype, argument, fix="; or train with amp=True")

    def _probe(self, num_classes: int | None, needs_teacher: bool):
        """Run the models once on the first batch (eval mode, no gradient) and check what a
        training step would otherwise fail on deep inside torch: input dtypes, the labels
        (shape, dtype, values in ``[0, K)`` or -1, ``K`` the width of the student's logits,
        equal to ``num_classes`` when given), the teacher's logits width for KD, and the
        feature shapes of the layer pairs. Returns the per-sample teacher and student feature
        shapes; sets :attr:`num_classes`. The global RNG is not used (eval mode)."""
        cfg = self.config
        x, y = self._first_batch(self.train_data, "train_data")
        self._check_inputs(x, "train_data")
        with torch.no_grad(), eval_mode(self.student):
            with FeatureHooks(self.student, self.student_layers, name="student") as hooks:
                logits = cfg.format.logits(first_forward(self.student, x, "student",
                                                         "train_data"))
                s_feats = hooks.collect()
            t_logits, t_feats = None, []
            if self.teacher is not None and needs_teacher:
                with FeatureHooks(self.teacher, self.teacher_layers, name="teacher") as hooks:
                    t_logits = cfg.format.logits(first_forward(
                        self.teacher, to_device(x, self.device, self._teacher_dtype), "teacher",
                        "train_data"))
                    t_feats = hooks.collect() if self.teacher_layers else []
        k = int(logits.shape[1])
        if k < 2:
            raise fail("student", f"outputs {k} logit per sample; a classifier over K >= 2 "
                       "classes outputs K logits", "Give the student one output per class "
                       "(2 for a binary task)", None)
        if num_classes is not None and check_int(num_classes, "num_classes", 2) != k:
            raise fail("num_classes", f"is {num_classes} but the student's logits have {k} "
                       "columns", "Leave num_classes=None (the logits' width), or give the "
                       f"student {num_classes} outputs", num_classes)
        check_label_values(y, k, "train_data")
        if self.val_data is not None:
            x_val, y_val = self._first_batch(self.val_data, "val_data")
            self._check_inputs(x_val, "val_data")
            if torch.is_tensor(x_val) and x_val.is_floating_point() and \
                    not torch.isfinite(x_val).all():      # now, not after the first epoch
                raise fail("val_data", "holds NaN or infinite inputs in its first batch: the "
                           "validation loss would be NaN and those samples' accuracy "
                           "meaningless", "Clean or impute the inputs (e.g. torch.nan_to_num, "
                           "or drop the rows) of the validation data")
            check_label_values(y_val, k, "val_data")
            with torch.no_grad(), eval_mode(self.student):   # now, not after the first epoch
                first_forward(self.student, x_val, "student", "val_data")
        self._teacher_classes = None if t_logits is None else int(t_logits.shape[1])
        pairs = list(zip(self.teacher_layers, self.student_layers, strict=True))
        if t_feats:
            check_feature_batch(y, t_feats, s_feats, pairs)
        t_shapes = [tuple(f.shape[1:]) for f in t_feats]
        s_shapes = [tuple(f.shape[1:]) for f in s_feats]
        check_layer_pairs(t_shapes, s_shapes, pairs)
        self.num_classes = k
        return t_shapes, s_shapes

    def _build_loss(self, t_shapes, s_shapes) -> DistillLoss:
        """Build the loss of ``config.method`` for the probed feature shapes under the config's
        seed (the global RNG is left as it was), after checking ``method_options`` against
        the options the method's loss accepts."""
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return make_loss(cfg.method, t_shapes, s_shapes, self.num_classes,
                             **cfg.method_options)

    def _phase_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per phase (``warmup`` includes the student with
        ``warmup_student``)."""
        student = [*self.student.parameters(), *self.loss_fn.student_parameters()]
        teacher = list(self.loss_fn.teacher_parameters()) if self.loss_fn.two_phase else []
        warm = teacher + (list(self.student.parameters()) if self.config.warmup_student else [])
        return {k: [p for p in v if p.requires_grad]
                for k, v in (("student", student), ("teacher", teacher), ("warmup", warm))}

    def _optimizers(self):
        cfg = self.config
        student_groups = param_groups(
            [("student", self.student.parameters()), ("loss", self.loss_fn.student_parameters())],
            cfg.weight_decay, cfg.decay_1d)
        student = build_optimizer(cfg.optimizer, student_groups, lr=cfg.lr,
                                  momentum=cfg.momentum, nesterov=cfg.nesterov)
        teacher = None
        if self._phase_params["teacher"]:
            groups = param_groups([("loss_teacher_side", self._phase_params["teacher"])],
                                  cfg.weight_decay, cfg.decay_1d)
            teacher = build_optimizer(cfg.teacher_optimizer or cfg.optimizer, groups,
                                      lr=cfg.teacher_lr or cfg.lr, momentum=cfg.momentum,
                                      nesterov=cfg.nesterov, argument="teacher_optimizer")
        return student, teacher

    def _wrapped(self, phase: str) -> nn.Module:
        """The step module, inside DistributedDataParallel for this phase when data parallel."""
        if self.world_size == 1:
            return self.step_module
        if phase not in self._wrappers:
            self._wrappers[phase] = phase_ddp(self.step_module, self._phase_params[phase],
                                              self.device, self.config.find_unused_parameters)
        return self._wrappers[phase]

    # ------------------------------------------------------------------ one epoch
    def phase_of(self, epoch: int) -> str:
        """Phase of ``epoch`` for this method (always ``"student"`` for one-stage methods)."""
        if not self.loss_fn.two_phase:
            return "student"
        return self.schedule.phase(epoch)

    def _optimizers_of(self, phase: str):
        """``[(optimizer, scheduler, parameters), ...]`` stepped in ``phase``."""
        if phase == "student":
            return [(self.student_optimizer, self.student_scheduler,
                     self._phase_params["student"])]
        steps = [(self.teacher_optimizer, self.teacher_scheduler,
                  self._phase_params["teacher"])]
        if phase == "warmup" and self.config.warmup_student:
            steps.append((self.student_optimizer, self.student_scheduler,
                          list(self.student.parameters())))
        return [step for step in steps if step[0] is not None]

    def _set_learning_rates(self, epoch: int) -> None:
        """The built-in ``schedule`` for optimizers built by name or class without a scheduler
        (factories and schedulers own their learning rates)."""
        cfg = self.config
        for opt, sched, spec, base in (
                (self.student_optimizer, self.student_scheduler, cfg.optimizer, cfg.lr),
                (self.teacher_optimizer, self.teacher_scheduler,
                 cfg.teacher_optimizer or cfg.optimizer, cfg.teacher_lr or cfg.lr)):
            if opt is None or sched is not None or not isinstance(spec, (str, type)):
                continue
            lr = learning_rate(epoch, base, cfg.schedule, cfg.milestones, cfg.gamma, cfg.epochs)
            for group in opt.param_groups:
                group["lr"] = lr

    def _teacher_pass(self, x: Any) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        if self.teacher is None or not self.loss_fn.uses_teacher:
            return None, []
        cast = self._teacher_dtype not in (None, self.dtype) and self.dtype is not None
        if cast:  # a teacher in another precision: its inputs in its dtype, outputs in ours
            x = to_device(x, self.device, self._teacher_dtype)
        with torch.no_grad(), FeatureHooks(self.teacher, self.teacher_layers,
                                           name="teacher") as hooks:
            logits = self.config.format.logits(self.teacher(x))
            feats = hooks.collect() if self.teacher_layers else []
        if cast:
            logits, feats = logits.to(self.dtype), [f.to(self.dtype) for f in feats]
        return logits, feats

    def _restart_point(self) -> str:
        """Where a run stopped by non-finite values can restart: the last checkpoint of
        ``out_dir`` with its epoch, if any, else the initial weights."""
        if self.config.out_dir:
            path = Path(self.config.out_dir) / "checkpoint.pt"
            if path.is_file():
                done = len(self.history)
                return (f"the last checkpoint, {path} (resume=..., written after epoch "
                        f"{done - 1} or earlier)" if done else f"the checkpoint {path}")
        return "the initial weights or a checkpoint"

    def _restore_point(self) -> dict[str, Any] | None:
        """A copy of everything an epoch's steps change in the trainer: the student's and the
        loss's states (parameters and buffers), the loss's run state, the optimizers', the
        schedulers' and the scaler's (``None`` with ``restore_on_nonfinite=False``). Tensors
        are cloned on their device, so taking it reads nothing on the host (the scaler's
        state, with AMP on CUDA, reads its scale once)."""
        if not self.config.restore_on_nonfinite:
            return None
        parts = {"student": self.student, "loss": self.loss_fn,
                 "student_optimizer": self.student_optimizer,
                 "teacher_optimizer": self.teacher_optimizer,
                 "student_scheduler": self.student_scheduler,
                 "teacher_scheduler": self.teacher_scheduler, "scaler": self.scaler}
        point = {name: _cloned(part.state_dict()) for name, part in parts.items()
                 if part is not None}
        point["loss_run_state"] = _cloned(self.loss_fn.run_state())
        return point

    def _restore(self, point: dict[str, Any] | None) -> bool:
        """Put back a :meth:`_restore_point` (in place: the parameters keep their identity,
        so optimizers and DDP wrappers still hold them); whether there was one."""
        if point is None:
            return False
        for name, state in point.items():
            if name != "loss_run_state":
                getattr(self, name if name != "loss" else "loss_fn").load_state_dict(state)
        self.loss_fn.load_run_state(point["loss_run_state"])
        return True

    def _nonfinite_advice(self, epoch: int, restored: bool) -> str:
        """What a non-finite epoch's error says about the models' state and where to go on."""
        if restored:
            where = (f"the end of epoch {epoch - 1}" if epoch else "the start of training")
            return (f"The student, the loss and the optimizers were put back to their state at "
                    f"{where} (restore_on_nonfinite=True), so they hold no NaN: fix the cause, "
                    f"then restart from {self._restart_point()}, or call fit() again")
        return (f"Then restart from {self._restart_point()} (this epoch's updates were "
                "applied: restore_on_nonfinite=False)")

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Run one epoch of the scheduled phase; return its training metrics (read from the
        device once, at the end of the epoch).

        An epoch that ends with a non-finite loss or non-finite inputs raises a
        :class:`~pidkit.errors.PIDValueError` naming the epoch and ``loss`` or ``train_data``;
        with ``restore_on_nonfinite`` (the default) the student, the loss, the optimizers,
        the schedulers and the scaler are first put back to their state at the start of the
        epoch (a copy on the device taken then, :meth:`_restore_point`)."""
        cfg = self.config
        point = self._restore_point()      # before the learning rates of this epoch are set
        phase = self.phase_of(epoch)
        self._set_learning_rates(epoch)
        trains_student = phase == "student" or (phase == "warmup" and cfg.warmup_student)
        self.student.train(trains_student)
        self.loss_fn.set_phase(phase)
        steps = self._optimizers_of(phase)
        if not steps:
            raise fail("loss", f"{type(self.loss_fn).__name__} trains no parameter in its "
                       f"{phase} phase", "Give a two-phase loss teacher_parameters(), or "
                       "set two_phase = False")
        lr = steps[0][0].param_groups[0]["lr"]   # the rate this epoch trains with
        module = self._wrapped(phase)
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        sums: dict[str, torch.Tensor] = {}
        zero = torch.zeros((), dtype=self._sum_dtype, device=self.device)
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        bad_input = torch.zeros((), dtype=torch.bool, device=self.device)
        bar = self._progress(self.loader, f"epoch {epoch} [{phase}]")
        batches = device_batches(bar, cfg.format, self.device,
                                 drop_single_tail=self._drop_single_tail,
                                 num_classes=self.num_classes)
        try:
            for step, (x, y) in enumerate(batches):
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=cfg.amp):
                    t_logits, t_feats = self._teacher_pass(x)
                    loss, parts, logits = module(x, y, t_logits, t_feats, phase)
                for opt, _, _ in steps:
                    opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                for opt, sched, ps in steps:
                    if cfg.grad_clip is not None:
                        self.scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(ps, cfg.grad_clip)
                    self.scaler.step(opt)
                    if sched is not None and cfg.scheduler_interval == "step":
                        sched.step()
                self.scaler.update()
                n = y.shape[0]
                loss = loss.detach()
                nonfinite |= ~torch.isfinite(loss)
                if torch.is_tensor(x) and x.is_floating_point():    # on the device: no sync
                    bad_input |= ~torch.isfinite(x).all()
                terms = {"n": n, "loss": loss * n}
                if logits is not None:  # accuracy on the labelled samples (y != UNLABELLED)
                    terms["correct"] = (logits.detach().argmax(1) == y).sum()
                    terms["labelled"] = labelled_mask(y).sum()
                terms.update({k: (v.detach() if isinstance(v, torch.Tensor) else v) * n
                              for k, v in parts.items()})
                for key, value in terms.items():
                    sums[key] = sums.get(key, zero) + value
                if (cfg.log_every and hasattr(bar, "set_postfix")
                        and (step + 1) % cfg.log_every == 0):
                    bar.set_postfix(loss=f"{float(loss):.4f}")
        except PIDKitError as exc:      # a batch refused mid-epoch (labels out of range)
            if self._restore(point):
                exc.add_note(f"The student, the loss and the optimizers were put back to "
                             f"their state at the start of epoch {epoch} "
                             f"(restore_on_nonfinite=True): the epoch's earlier steps "
                             f"are undone.")
            raise
        for _, sched, _ in steps:     # ReduceLROnPlateau: after validation, in fit()
            if sched is not None and cfg.scheduler_interval == "epoch" and \
                    not _on_plateau(sched):
                sched.step()
        if not sums:
            raise fail("train_data", f"yielded no batch in epoch {epoch}",
                       "Pass a data set with samples (an iterable data set must restart "
                       "when iterated again)")
        keys = sorted(sums)
        totals = torch.stack([sums[k].to(self._sum_dtype) for k in keys]
                             + [nonfinite.to(self._sum_dtype), bad_input.to(self._sum_dtype)])
        if self.world_size > 1:
            dist.all_reduce(totals)
        values = dict(zip(keys + ["nonfinite", "bad_input"], totals.tolist(), strict=True))
        if values["bad_input"] or values["nonfinite"]:
            restored, point = self._restore(point), None   # the traceback keeps no copy
            advice = self._nonfinite_advice(epoch, restored)
            if values["bad_input"]:
                raise fail("train_data", f"held NaN or infinite inputs in epoch {epoch} "
                           f"({phase} phase)",
                           "Clean or impute the inputs (e.g. torch.nan_to_num, or drop the "
                           f"rows). {advice}")
            terms = [key for key in keys if key not in ("n", "loss", "correct", "labelled")
                     and not math.isfinite(values[key])]
            which = (f"; non-finite terms: {', '.join(f'train_{t}' for t in terms)}"
                     if terms else "")
            raise fail("loss", f"became NaN or infinite during epoch {epoch} ({phase} "
                       f"phase{which})", "Lower the learning rate or the distillation weight, "
                       f"or set grad_clip. {advice}")
        del values["bad_input"], values["nonfinite"], point
        n = max(values.pop("n"), 1.0)
        metrics: dict[str, Any] = {"epoch": epoch, "phase": phase, "lr": lr,
                                   "train_loss": values.pop("loss") / n}
        if "correct" in values:  # NaN when no sample of the epoch carries a label
            acc_key = "train_acc" if phase == "student" else "train_head_acc"
            labelled = values.pop("labelled")
            if not labelled and phase == "student" and not self.loss_fn.uses_teacher:
                raise fail("train_data", f"has no labelled sample in epoch {epoch} (every label "
                           f"is {UNLABELLED}) and {type(self.loss_fn).__name__} learns from "
                           "labels only, so the student had nothing to learn from", "Give "
                           "labels, or distil from a teacher (e.g. method='kd'), which uses "
                           "unlabelled samples", None)
            metrics[acc_key] = values.pop("correct") / labelled if labelled else math.nan
        metrics.update({f"train_{k}": v / n for k, v in values.items()})
        return metrics

    def _progress(self, iterable, desc: str):
        if not (self.config.progress and self.is_main):
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, leave=False)

    def _has_head(self) -> bool:
        return self.teacher is not None and type(self.loss_fn).teacher_head_logits is not \
            DistillLoss.teacher_head_logits

    @torch.no_grad()
    def evaluate(self, data: Any = None) -> dict[str, float]:
        """Student accuracy and cross-entropy (nats) on ``data`` (default: ``val_data``), plus
        the teacher-side head's accuracy for methods that have one; reduced over processes.

        All are means over the labelled samples (label != ``UNLABELLED``); they are NaN when
        ``data`` has no labelled sample (there is nothing to score), not 0.

        The global torch RNG is left as it was (iterating a user's ``DataLoader`` without a
        ``generator=`` draws its workers' base seed from it), so that validating every epoch
        does not change a training run's dropout draws or shuffling.

        Floating-point inputs with a NaN or an infinity are a
        :class:`~pidkit.errors.PIDValueError` naming ``val_data`` (flagged on the device, read
        once with the metrics): they made the loss NaN and counted as misclassified."""
        data = data if data is not None else self.val_data
        if data is None:
            return {}
        with torch.random.fork_rng(devices=[]):
            return self._evaluate(data)

    def _evaluate(self, data: Any) -> dict[str, float]:
        """:meth:`evaluate` on ``data``, without restoring the global RNG."""
        cfg = self.config
        loader = eval_loader(data, max(cfg.batch_size // self.world_size, 1), rank=self.rank,
                             world=self.world_size, num_workers=cfg.num_workers,
                             pin_memory=self.device.type == "cuda")
        head = self._has_head()
        zero = torch.zeros((), dtype=self._sum_dtype, device=self.device)
        sums = {"n": zero, "labelled": zero, "correct": zero, "ce": zero, "head_correct": zero,
                "bad_input": zero}
        with eval_mode(self.student, self.loss_fn):
            for x, y in device_batches(loader, cfg.format, self.device, argument="val_data",
                                       num_classes=self.num_classes):
                logits = cfg.format.logits(self.student(x))
                if torch.is_tensor(x) and x.is_floating_point():    # on the device: no sync
                    bad = ~torch.isfinite(x).all()
                    sums["bad_input"] = sums["bad_input"] + bad.to(zero.dtype)
                sums["n"] = sums["n"] + y.shape[0]
                sums["labelled"] = sums["labelled"] + labelled_mask(y).sum()
                sums["correct"] = sums["correct"] + (logits.argmax(1) == y).sum()
                sums["ce"] = sums["ce"] + nn.functional.cross_entropy(
                    logits.float(), y, ignore_index=-1, reduction="sum")
                if head:
                    _, feats = self._teacher_pass(x)
                    head_logits = self.loss_fn.teacher_head_logits(
                        Batch(y=y, teacher_features=feats))
                    sums["head_correct"] = sums["head_correct"] + (head_logits.argmax(1)
                                                                   == y).sum()
        totals = torch.stack(list(sums.values()))
        if self.world_size > 1:
            dist.all_reduce(totals)
        values = dict(zip(sums, totals.tolist(), strict=True))
        if values["bad_input"]:
            raise fail("val_data", f"held NaN or infinite inputs in {int(values['bad_input'])} "
                       "batch(es): the validation loss would be NaN and those samples' accuracy "
                       "meaningless", "Clean or impute the inputs (e.g. torch.nan_to_num, or "
                       "drop the rows) of the validation data")
        labelled = values["labelled"] or math.nan  # no labelled sample: NaN, not 0
        out = {"val_acc": values["correct"] / labelled, "val_loss": values["ce"] / labelled}
        if head:
            out["val_head_acc"] = values["head_correct"] / labelled
        return out

    # ------------------------------------------------------------------ loop
    def fit(self, resume: str | os.PathLike | None = None) -> list[dict[str, Any]]:
        """Train from ``self.epoch`` (or from checkpoint ``resume``) up to ``config.epochs``;
        return the history (one metrics dict per epoch).

        Before anything is loaded or trained, an ``out_dir`` holding an earlier run's files is
        refused (:func:`check_run_folder`) unless ``resume`` (or the checkpoint given to
        :meth:`load_checkpoint`) lies inside it or ``config.overwrite`` is set; a later
        ``fit`` of the same trainer continues its own run there."""
        folder = Path(self.config.out_dir).resolve() if self.config.out_dir else None
        if folder is not None and folder != self._run_folder:    # not this trainer's own run
            check_run_folder(self.config.out_dir, resume if resume is not None
                             else self._resumed_from, self.config.overwrite)
        if resume is not None:
            self.load_checkpoint(resume)
        self._run_folder = folder               # this trainer's run: later fits continue it
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
            self._step_on_plateau(metrics)     # may watch a metric a callback added
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

    def _step_on_plateau(self, metrics: dict[str, Any]) -> None:
        """Step the ``ReduceLROnPlateau`` schedulers of the epoch's phase with the epoch's
        ``scheduler_monitor`` metric (``val_loss`` with validation data, else
        ``train_loss``).

        Under data parallelism every process steps with the main process's value, broadcast
        once per epoch (one collective, after validation): a metric a callback adds on the
        main process only (:class:`~pidkit_distill.AuditCallback`'s ``audit_*``) made the
        other processes stop with a missing-metric error while the main one waited for them,
        and a metric that differs between processes would make their learning rates
        diverge. Whether the metric exists is the main process's answer too, so every process
        raises the same error or none."""
        plateaus = [sched for _, sched, _ in self._optimizers_of(metrics["phase"])
                    if _on_plateau(sched)]
        if not plateaus:
            return
        key = self.config.scheduler_monitor or ("val_loss" if self.val_data is not None
                                                else "train_loss")
        status, value = MISSING, math.nan
        if key in metrics:
            try:
                status, value = FOUND, float(metrics[key])
            except (TypeError, ValueError, RuntimeError):   # a str, a tensor of 2 values
                status = NOT_A_NUMBER
        if self.world_size > 1:     # the main process's answer, on every process
            shared = torch.tensor([status, value], dtype=torch.float64, device=self.device)
            dist.broadcast(shared, src=0)
            status, value = shared.tolist()
        if status == NOT_A_NUMBER:
            shown = (f"a {type(metrics[key]).__name__}" if self.is_main
                     else "not a number on the main process")
            raise fail("scheduler_monitor", f"{key!r} is {shown} in epoch "
                       f"{metrics['epoch']}, not a number ReduceLROnPlateau can watch",
                       "Name a numeric metric", key, kind=PIDTypeError)
        if status == MISSING:
            where = "" if self.is_main else " on the main process"
            raise fail("scheduler_monitor", f"{key!r} is not a metric of epoch "
                       f"{metrics['epoch']} ({metrics['phase']} phase){where}, which "
                       f"ReduceLROnPlateau needs; the epoch has {sorted(metrics)}", "Name one "
                       "of these metrics (a val_* metric needs val_data; an AuditCallback's "
                       "audit_* metrics exist only in the epochs it audits: every=1 for all)",
                       key)
        for sched in plateaus:
            sched.step(value)

    def units(self) -> dict[str, str]:
        """Unit of every key in :attr:`history` (:data:`METRIC_UNITS`; the units callbacks
        declared in :attr:`metric_units`, such as :class:`~pidkit_distill.AuditCallback`'s
        ``audit_*`` quantities in bits; keys that name their unit, such as ``*_bits``; and the
        rest, which are dimensionless)."""
        keys = [k for row in self.history for k in row]
        out = {}
        for key in dict.fromkeys(keys):
            if key in self.metric_units:
                out[key] = self.metric_units[key]
            elif key in METRIC_UNITS:
                out[key] = METRIC_UNITS[key]
            elif key.endswith("_bits"):
                out[key] = "bits"
            elif key.endswith("_nats"):
                out[key] = "nats"
            else:
                out[key] = "dimensionless"
        return out

    def _write_metrics(self) -> None:
        """``metrics.json`` (history plus units) and ``metrics.csv`` (one column per key, its
        unit in the header, e.g. ``val_loss [nats]``), each written to a temporary file and
        renamed over the previous one, so a write cut short (a full disk, a killed process)
        leaves the previous epoch's file whole."""
        if not (self.config.out_dir and self.is_main):
            return
        out = Path(self.config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        units = self.units()
        _replace_text(out / "metrics.json", json.dumps(
            {"format": METRICS_FORMAT, "units": units,
             "history": to_plain(self.history, strict=True)},
            indent=1))
        header = {k: k if u in ("dimensionless", "name", "index") else f"{k} [{u.split(' (')[0]}]"
                  for k, u in units.items()}
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(header.values())
        for row in self.history:
            writer.writerow([row.get(k, "") for k in header])
        _replace_text(out / "metrics.csv", table.getvalue())

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimizer and scaler states, the epoch,
        the global RNG states (restored on resume, so that dropout continues its sequence), the
        states of the training loader's generators (a ``DataLoader(generator=...)``'s order and
        workers' seeds, :func:`~pidkit_distill.batches.loader_generators`), the loss's
        :meth:`~pidkit_distill.losses.DistillLoss.run_state` (the exact regulariser's warm
        start) and the history (tensors and plain data only)."""
        rng = {"torch": torch.get_rng_state(),
               "loader": [g.get_state() for g in loader_generators(self.loader)]}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "student": inner_model(self.student).state_dict(),  # the keys of the user's model
            "loss": self.loss_fn.state_dict(),
            "loss_run_state": self.loss_fn.run_state(),
            "student_optimizer": self.student_optimizer.state_dict(),
            "teacher_optimizer": (self.teacher_optimizer.state_dict()
                                  if self.teacher_optimizer is not None else None),
            "student_scheduler": (self.student_scheduler.state_dict()
                                  if self.student_scheduler is not None else None),
            "teacher_scheduler": (self.teacher_scheduler.state_dict()
                                  if self.teacher_scheduler is not None else None),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": to_plain(self.history, strict=True),
            "metric_units": dict(self.metric_units),
            "config": to_plain({f.name: getattr(self.config, f.name)
                              for f in fields(TrainConfig)}, strict=True),
        }

    def _student_target(self, weights: Mapping[str, Any]) -> nn.Module:
        """The module a checkpoint's student weights load into: the model inside the
        student's wrappers (:func:`~pidkit_distill.features.inner_model`), whose keys
        checkpoints hold, so that a run resumes with or without ``torch.compile`` or
        ``nn.DataParallel``; the wrapper itself for weights with its keys (the checkpoints of
        a wrapped student written before)."""
        inner = inner_model(self.student)
        if inner is self.student or set(weights) == set(inner.state_dict()):
            return inner
        return self.student

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the models must have the same architecture).

        The resumed run continues the stored one: the options that fix the data order and the
        loss (:data:`RESUME_FIXED`: ``method``, ``batch_size``, ``seed``, ``drop_last``) must be
        the stored ones, and ``epochs`` at least the number of epochs already trained (more
        epochs extend the run). Every other option (learning rates, schedules, ``warmup``,
        ``cycle``, ``ratio``, ``out_dir``, ...) takes the resuming trainer's value.

        Raises
        ------
        CheckpointError
            If the student, the loss (method, its options, the layer pairs) or an optimizer's
            parameter groups differ from the run that wrote the state, an option of
            :data:`RESUME_FIXED` differs, or ``epochs`` is below the epochs already trained.
        """
        # the options first: a refused resume leaves the trainer as it was
        stored = state.get("config") or {}
        for name in RESUME_FIXED:
            mine = to_plain(getattr(self.config, name), strict=True)
            if name in stored and stored[name] != mine:
                raise fail("checkpoint", f"was written with {name}={stored[name]!r}, this "
                           f"trainer has {name}={mine!r}", f"Resume with {name}="
                           f"{stored[name]!r} (it fixes the data order or the loss), or start "
                           "a new run without resume", kind=CheckpointError)
        if int(state["epoch"]) > self.config.epochs:
            raise fail("epochs", f"is {self.config.epochs} but the checkpoint has already "
                       f"trained {int(state['epoch'])} epochs", f"Pass epochs >= "
                       f"{int(state['epoch'])} (the total, counting the epochs already done)",
                       self.config.epochs, kind=CheckpointError)
        generators = self._loader_generators_for(state["rng"].get("loader"))
        parts = [("student", self._student_target(state["student"])), ("loss", self.loss_fn),
                 ("student_optimizer", self.student_optimizer)]
        if self.teacher_optimizer is not None and state["teacher_optimizer"] is not None:
            parts.append(("teacher_optimizer", self.teacher_optimizer))
        for part, target in parts:
            try:
                target.load_state_dict(state[part])
            except (RuntimeError, ValueError, KeyError) as exc:
                # torch's first line only names the module: keep the first reasons too
                reason = " ".join(line.strip() for line in str(exc).strip().splitlines()[:3])
                reason = reason[:400]
                raise fail("checkpoint", f"its {part} state does not fit this trainer's "
                           f"({reason})", "Resume with the same student architecture, method, "
                           "method_options, layers and optimizer as the run that wrote it",
                           kind=CheckpointError) from exc
        self.loss_fn.load_run_state(state.get("loss_run_state"))  # absent in older files
        for name in ("student_scheduler", "teacher_scheduler"):
            scheduler = getattr(self, name)
            if scheduler is not None and state.get(name) is not None:
                scheduler.load_state_dict(state[name])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        for generator, saved in generators:
            generator.set_state(saved.cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.history = list(state["history"])
        self.metric_units.update(state.get("metric_units") or {})   # absent in older files
        self.epoch = int(state["epoch"])

    def _loader_generators_for(self, states: list[torch.Tensor] | None):
        """``[(generator, saved state), ...]`` of the training loader's generators and the
        checkpoint's ``states`` of them (``[]`` for a checkpoint written before they were
        saved: the loader then starts afresh).

        Raises
        ------
        CheckpointError
            The checkpoint holds another number of generator states than the loader has.
        """
        if states is None:
            return []
        generators = loader_generators(self.loader)
        if len(states) != len(generators):
            raise fail("checkpoint", f"holds the states of {len(states)} data-loader "
                       f"generator(s), but this trainer's training loader draws from "
                       f"{len(generators)}", "Resume with train_data built as in the run that "
                       "wrote it (the same DataLoader options, generator= included)",
                       kind=CheckpointError)
        return list(zip(generators, states, strict=True))

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` (main process only; atomic rename)."""
        if not self.is_main:
            return
        path = Path(path)
        if path.is_dir():
            raise fail("path", f"{path} is a folder", "Pass a file path, e.g. "
                       f"{path / 'checkpoint.pt'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise fail("path", f"its folder {path.parent} cannot be created ({err.strerror})",
                       "Pass a path in a folder you can write to") from err
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)     # no half-written file left behind on failure

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Resume from a file written by :meth:`save_checkpoint` (``weights_only=True``); a
        later :meth:`fit` continues that run (into its folder, if ``out_dir`` is it)."""
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
        self._resumed_from = path



def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic
    rename (no half-written file is left behind on failure)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cloned(state: Any) -> Any:
    """``state`` (a state dict: containers of tensors and plain values) with every tensor
    cloned on its device (no host read) and every other value deep-copied."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        out = {key: _cloned(value) for key, value in state.items()}
        if hasattr(state, "_metadata"):    # a module's state dict: its layers' versions
            out = OrderedDict(out)
            out._metadata = copy.deepcopy(state._metadata)
        return out
    if isinstance(state, (list, tuple)) and not hasattr(state, "_fields"):
        return type(state)(_cloned(value) for value in state)
    return copy.deepcopy(state)


#: Whether the main process's epoch metrics hold the metric a ``ReduceLROnPlateau`` watches,
#: as :meth:`Trainer._step_on_plateau` broadcasts it (a float64 entry).
MISSING, FOUND, NOT_A_NUMBER = 0.0, 1.0, 2.0


def _on_plateau(scheduler: Any) -> bool:
    """Whether ``scheduler`` is a ``ReduceLROnPlateau`` (stepped with a metric)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


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


def distill(teacher: nn.Module | None, student: nn.Module, train_data: Any, *,
            method: str = "rid", layers: Sequence[tuple[str, str]] | None = None,
            val_data: Any = None, callbacks: Iterable[Callback] = (),
            loss: DistillLoss | None = None, resume: str | os.PathLike | None = None,
            **config: Any) -> DistillResult:
    """Distil ``student`` from ``teacher`` on ``train_data`` and return a :class:`DistillResult`.

    Keyword arguments are :class:`TrainConfig` fields (``epochs``, ``lr``, ``optimizer``,
    ``warmup``, ``cycle``, ``ratio``, ``method_options``, ``device``, ``out_dir``, ...). See
    :class:`Trainer` for the other parameters. ``train_data`` and ``val_data`` may be a
    ``Dataset``, an ``IterableDataset``, a ``DataLoader``, or a tuple ``(inputs, labels)`` of
    equal-length tensors or numpy arrays (read as ``TensorDataset(inputs, labels)``, as
    :func:`audit` reads it).
    """
    trainer = Trainer(teacher, student, train_data, layers=layers, val_data=val_data,
                      callbacks=callbacks, loss=loss, method=method, **config)
    history = trainer.fit(resume=resume)
    return DistillResult(trainer.student, history, trainer)
