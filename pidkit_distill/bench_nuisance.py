r"""The nuisance-teacher benchmark (Dissanayake et al., AISTATS 2025, Sec. 5 and Fig. 5) on data
that ships offline: scikit-learn's digits and MNIST-1D.

A small student learns from few labels with one of seven objectives (no distillation, KD,
FitNets, VID, TED-style, RID, the Gaussian PID regularizer) and one of four frozen teachers:

- ``trained``: the teacher architecture trained on the full training split;
- ``untrained``: the same architecture, randomly initialised and never trained (the paper's
  nuisance teacher);
- ``nuisance``: the trained teacher with extra channels :math:`G` appended to every distilled
  layer, :math:`T = (Z, G)`, where :math:`G = s \tanh(W x)` are fixed random features of the
  input at a large amplitude :math:`s` (:class:`pidkit_distill.models.NuisanceTeacher`);
- ``relabelled``: the architecture trained on a *different labelling* of the same inputs, the
  deciles of a random projection :math:`u^\top x` with :math:`u` orthogonal to every class mean
  (so :math:`\mathbb E[u^\top x \mid Y]` does not depend on :math:`Y`; :func:`unrelated_labels`).

The student sees ``labels_per_class`` labelled inputs per class and, by default, a further
pool of training inputs *without labels* (:func:`pidkit_distill.data.semi_supervised`): the
teacher can be queried on any input, labels are the scarce part. Unlabelled inputs enter the
teacher-matching terms only (KD, FitNets, VID, TED, RID; the PID regularizer needs labels).

Every student run uses the package's trainer (:func:`pidkit_distill.distill`) and losses; the
audits use :func:`pidkit_distill.audit` (the paper's estimator: L2-normalise, PCA 10,
KMeans 10, exact BROJA, in nats) through :class:`pidkit_distill.audit_callback.AuditCallback`.
Outputs: a table of test accuracy (mean, standard deviation, 95% t-interval over seeds) per
method and teacher, the teachers' accuracies and audits, the over-training curves (Red, Uni,
I(Y;S) per method) as JSON and PNG, with machine, date, versions and the exact command.

Run it with ``pidkit-distill benchmark nuisance`` (``--quick`` for a smoke run) or
``python benchmarks/nuisance_teacher.py``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pidkit._validation import fail


def _no_grad(fn):
    """Run ``fn`` under ``torch.no_grad()`` (torch imported lazily)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)
    return wrapper

__all__ = [
    "METHODS",
    "TEACHERS",
    "SETUPS",
    "Setup",
    "quick_setup",
    "unrelated_labels",
    "build_teachers",
    "parse_method",
    "run_student",
    "run_benchmark",
    "run_sweep",
    "run_diagnosis",
    "summarize",
    "t_interval",
]

#: Student objectives, in table order.
METHODS = ("none", "kd", "fitnets", "vid", "ted", "rid", "pid")
#: Teacher kinds, in table order.
TEACHERS = ("trained", "untrained", "nuisance", "relabelled")
#: Largest training pool whose teacher outputs a student job stores (see :func:`_replayable`).
REPLAY_MAX = 20_000


@dataclass(frozen=True)
class Setup:
    """Everything that defines the benchmark on one data set.

    Attributes
    ----------
    dataset : str
        ``"digits"`` or ``"mnist1d"`` (see :func:`pidkit_distill.data.get_dataset`).
    arch : str
        Teacher model name (:func:`pidkit_distill.models.get_model`); also the student's unless
        ``student_arch`` is set.
    teacher_width, student_width : int
        ``width`` of the teacher and of the student (not used for ``"wrn-D-W"`` names, whose
        width is in the name).
    teacher_epochs : int
        Epochs of teacher training on the full training split (Adam, cosine schedule).
    labels_per_class : int or None
        Labelled training samples per class seen by the student (drawn per seed; ``None``:
        the whole training split).
    epochs, batch_size, lr : int, int, float
        Student training (Adam, cosine schedule, no weight decay, gradient clipping 100).
    layers : tuple of str
        Distilled layers (same path in teacher and student; innermost last, audited).
    rid_schedule : dict
        ``warmup``, ``cycle``, ``ratio`` of Algorithm 1 for RID.
    nuisance_channels, nuisance_scale, nuisance_kind : int, float, str
        Channels, amplitude and kind (``"random_features"`` or ``"noise"``, see
        :class:`~pidkit_distill.models.NuisanceTeacher`) of :math:`G` in the ``nuisance``
        teacher.
    method_options : dict
        Options per method passed to the losses.
    audit_every : int
        Audit the innermost pair every this many epochs (curves; seeds in ``audit_seeds``).
    train_options, teacher_options : dict
        Further :class:`~pidkit_distill.train.TrainConfig` fields for the students and for
        teacher training (optimizer, schedule, milestones, weight decay, ...).
    root : str or None
        Data folder (CIFAR only; nothing is downloaded).
    student_arch : str or None
        Student model name (default: ``arch``).
    teacher_batch_size : int
    train_per_class : int or None
        Use only this many training samples per class for everything (teachers included);
        ``None``: the full training split. ``labels_per_class=None``: students train on all of
        it.
    unlabelled_per_class : int or None
        Further training inputs per class given to the student *without* labels
        (:func:`pidkit_distill.data.semi_supervised`): they enter the teacher-matching terms
        (KD, FitNets, VID, TED, RID) but no cross-entropy. ``0``: labelled samples only;
        ``None``: every other training input.
    validation : float or None
        Tuning mode: hold out this share of every class of the training split
        (:func:`pidkit_distill.data.split_per_class`) and evaluate there instead of on the
        test split; teachers and students never see the held-out part.
    """

    dataset: str
    arch: str
    teacher_width: int
    teacher_epochs: int
    student_width: int
    labels_per_class: int | None
    epochs: int
    batch_size: int
    lr: float
    layers: tuple = ("layer2", "layer3")
    rid_schedule: dict = field(default_factory=dict)
    nuisance_channels: int = 32
    nuisance_scale: float = 5.0
    nuisance_kind: str = "random_features"
    method_options: dict = field(default_factory=dict)
    audit_every: int = 10
    train_options: dict = field(default_factory=lambda: dict(_ADAM))
    teacher_options: dict = field(default_factory=lambda: {**_ADAM, "lr": 3e-3})
    root: str | None = None
    student_arch: str | None = None
    teacher_batch_size: int = 64
    train_per_class: int | None = None
    unlabelled_per_class: int | None = 0
    validation: float | None = None


_ADAM = {"optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine"}
_SGD = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
        "schedule": "multistep", "gamma": 0.2}
_OPTIONS = {"kd": {"temperature": 4.0, "alpha": 0.9}, "fitnets": {}, "vid": {"weight": 100.0},
            "ted": {}, "rid": {"lambda1": 1.0, "lambda2": 10.0}, "pid": {"beta": 1.0},
            "none": {}}

#: The recorded configuration, chosen on a validation split with the sweeps in
#: ``benchmarks/results/nuisance_sweep*`` (see docs/nuisance_benchmark.md): few labels, a
#: pool of unlabelled inputs for the teacher-matching terms, a student half the teacher's
#: width, the paper's weights (VID 100, RID lambda = (1, 10); lambda2 = 1 on MNIST-1D, chosen on
#: the validation split), RID's student trained on CE
#: during the warm-up (``warmup_student``); schedules short enough for the CPU budget.
#: Teachers are deep pre-activation residual nets (``digits_resnet`` / ``mnist1d_resnet``,
#: 3 blocks per group, :class:`~pidkit_distill.models.SmallResNet`), students the shallow
#: ``digits_cnn`` / ``mnist1d_cnn`` with the same feature-map shapes: randomly initialised,
#: the residual teacher has O(1)-scale, hard-to-imitate features like the paper's WRN-40-2,
#: while an untrained shallow CNN's are about 40 times smaller than its trained features
#: (chosen on the validation split; see docs/nuisance_benchmark.md).
SETUPS: dict[str, Setup] = {
    "digits": Setup("digits", "digits_resnet", student_arch="digits_cnn", teacher_width=16,
                    teacher_epochs=10,
                    student_width=8, labels_per_class=10, unlabelled_per_class=40,
                    epochs=30, batch_size=128, lr=0.01,
                    rid_schedule={"warmup": 3, "cycle": 6, "ratio": 1 / 6,
                                  "warmup_student": True},
                    nuisance_channels=32, nuisance_scale=5.0, method_options=_OPTIONS,
                    audit_every=3),
    "mnist1d": Setup("mnist1d", "mnist1d_resnet", student_arch="mnist1d_cnn",
                     teacher_width=32, teacher_epochs=15,
                     student_width=16, labels_per_class=50, unlabelled_per_class=50,
                     epochs=30, batch_size=128, lr=0.01,
                     rid_schedule={"warmup": 3, "cycle": 6, "ratio": 1 / 6,
                                   "warmup_student": True},
                     nuisance_channels=16, nuisance_scale=5.0,
                     method_options={**_OPTIONS, "rid": {"lambda1": 1.0, "lambda2": 1.0}},
                     audit_every=3),
    # The paper's CIFAR-10 setting (PAPER.md): WRN-40-2 -> WRN-16-1, full training set, no
    # augmentation, 300 epochs of SGD (lr 0.05, x0.2 at 150 and 200, Nesterov momentum 0.9,
    # weight decay 5e-4, batch 128), RID n_w = q = 30, r = 1/4, lambda = (1, 10), VID 100,
    # three layer pairs. The teacher schedule is not given in the paper: 200 epochs of SGD
    # lr 0.1, x0.2 at 60, 120, 160 (no augmentation; the paper's teacher reaches 0.84).
    "cifar10": Setup("cifar10", "wrn-40-2", student_arch="wrn-16-1", teacher_width=2,
                     teacher_epochs=200, student_width=1, labels_per_class=None, epochs=300,
                     batch_size=128, lr=0.05, layers=("block1", "block2", "block3"),
                     rid_schedule={"warmup": 30, "cycle": 30, "ratio": 0.25},
                     nuisance_channels=32, nuisance_kind="noise", method_options=_OPTIONS,
                     audit_every=30,
                     train_options={**_SGD, "milestones": (150, 200)},
                     teacher_options={**_SGD, "lr": 0.1, "milestones": (60, 120, 160)},
                     teacher_batch_size=128),
}


def quick_setup(setup: Setup) -> Setup:
    """A smoke-test version of ``setup``: few epochs everywhere (same models and data)."""
    return replace(setup, teacher_epochs=min(setup.teacher_epochs, 3),
                   epochs=min(setup.epochs, 10),
                   rid_schedule={**setup.rid_schedule, "warmup": 2, "cycle": 6, "ratio": 1 / 6},
                   audit_every=6)


# ----------------------------------------------------------------------------- statistics
def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    r"""Mean, sample standard deviation and the two-sided Student-t confidence interval
    :math:`\bar x \pm t_{n-1,(1+\ell)/2}\, s/\sqrt n` of ``values`` (NaN bounds for n < 2).

    >>> m, s, lo, hi = t_interval([1.0, 2.0, 3.0])
    >>> round(lo, 3), round(hi, 3)
    (-0.484, 4.484)
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return mean, sd, mean - half, mean + half


# ----------------------------------------------------------------------------- teachers
def unrelated_labels(x, y, num_classes: int, seed: int = 0):
    r"""A labelling of the inputs unrelated to ``y``: deciles (``num_classes`` bins) of
    :math:`u^\top x`, with :math:`u` a random direction orthogonal to every centred class mean.

    Then :math:`\mathbb E[u^\top x \mid Y = c]` is the same for every class, so the new labels
    carry little information about ``y`` (their plug-in mutual information is reported by the
    benchmark).

    Parameters
    ----------
    x : Tensor ``(N, ...)``; y : Tensor ``(N,)`` int64; num_classes : int; seed : int

    Returns
    -------
    callable
        ``label(x) -> Tensor (N,)`` int64, the same rule for any inputs (fitted on ``x``).
    """
    import torch

    flat = x.reshape(len(x), -1).double()
    centre = flat.mean(0)
    means = torch.stack([flat[y == c].mean(0) - centre for c in range(num_classes)], 1)
    q, _ = torch.linalg.qr(means)
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(flat.shape[1], generator=g, dtype=torch.float64)
    u = u - q @ (q.T @ u)
    u = u / u.norm()
    proj = flat @ u
    edges = torch.quantile(proj, torch.linspace(0, 1, num_classes + 1,
                                                dtype=torch.float64)[1:-1])

    def label(inputs):
        p = inputs.reshape(len(inputs), -1).double() @ u
        return torch.bucketize(p, edges).long()

    return label


def _width(arch: str, width: int) -> dict[str, int]:
    """``{"width": width}`` for the small nets; ``{}`` for names that carry their width."""
    return {} if arch.lower().startswith(("wrn-", "resnet", "torchvision:")) else {"width": width}


def make_teacher(setup: Setup):
    """A fresh (untrained, trainable) teacher of ``setup``."""
    from . import models

    return models.get_model(setup.arch, **_width(setup.arch, setup.teacher_width))


def make_student(setup: Setup):
    """A fresh student of ``setup``."""
    from . import models

    arch = setup.student_arch or setup.arch
    return models.get_model(arch, **_width(arch, setup.student_width))


def _untrained(setup: Setup, seed: int):
    from . import models

    return models.untrained_teacher(setup.arch, seed=seed + 1000,
                                    **_width(setup.arch, setup.teacher_width))


def _tensors(dataset):
    import torch

    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack([torch.as_tensor(v) for v in xs]), torch.as_tensor(ys).long()


def _fit_teacher(setup: Setup, train, seed: int, device: str = "cpu"):
    """A teacher trained on ``train``; its initialisation is drawn from a forked RNG seeded
    with ``seed`` (torch's own start-up seed differs between processes)."""
    import torch

    from . import models
    from .train import distill

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20_000 + seed)
        model = make_teacher(setup)
    options = {"lr": 3e-3, **setup.teacher_options}
    distill(None, model, train, method="none", epochs=setup.teacher_epochs,
            batch_size=setup.teacher_batch_size, progress=False, seed=seed, device=device,
            **options)
    return models.freeze(model.cpu())


@_no_grad
def _accuracy(model, dataset, device: str = "cpu", label=None, batch_size: int = 500) -> float:
    """Accuracy of ``model``'s logits on ``dataset`` (against ``label(x)`` when given)."""
    from torch.utils.data import DataLoader

    model = model.to(device)
    correct = total = 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        target = label(x) if label is not None else y
        pred = model(x.to(device)).argmax(1).cpu()
        correct += int((pred == target).sum())
        total += len(y)
    model.cpu()
    return correct / max(total, 1)


def teacher_layers(kind: str, setup: Setup) -> list[str]:
    """Teacher-side module paths of the distilled layers for a teacher ``kind``."""
    if kind == "nuisance":
        return [f"taps.{i}" for i in range(len(setup.layers))]
    return list(setup.layers)


def _nuisance(setup: Setup, trained, seed: int):
    from . import models

    return models.NuisanceTeacher(trained, layers=setup.layers,
                                  channels=setup.nuisance_channels, kind=setup.nuisance_kind,
                                  scale=setup.nuisance_scale, seed=seed + 2000)


def build_teachers(setup: Setup, train, test, seed: int = 0,
                   kinds: Sequence[str] = TEACHERS, device: str = "cpu") -> tuple[dict, dict]:
    """Train / build the teachers of ``kinds`` (from :data:`TEACHERS`) for one data set.

    Returns
    -------
    (teachers, info) : dict kind -> frozen nn.Module (on CPU), dict kind -> accuracies
        ``info[kind]["test_acc"]``: the teacher's own logits on the test labels;
        ``"own_task_test_acc"`` for the relabelled teacher (on its own labels);
        ``"label_mi_nats"``: plug-in I(Y; new labels) on the training split.
    """
    from sklearn.metrics import mutual_info_score
    from torch.utils.data import TensorDataset


    start = time.perf_counter()
    teachers: dict[str, Any] = {}
    info: dict[str, dict[str, Any]] = {}
    if "trained" in kinds or "nuisance" in kinds:
        trained = _fit_teacher(setup, train, seed, device)
        if "trained" in kinds:
            teachers["trained"] = trained
        if "nuisance" in kinds:
            teachers["nuisance"] = _nuisance(setup, copy.deepcopy(trained), seed)
    if "untrained" in kinds:
        teachers["untrained"] = _untrained(setup, seed)
    if "relabelled" in kinds:
        xtr, ytr = _tensors(train)
        label = unrelated_labels(xtr, ytr, 10, seed)
        teachers["relabelled"] = _fit_teacher(setup, TensorDataset(xtr, label(xtr)), seed + 1,
                                              device)
        info["relabelled"] = {
            "own_task_test_acc": _accuracy(teachers["relabelled"], test, device, label),
            "label_mi_nats": float(mutual_info_score(ytr.numpy(), label(xtr).numpy()))}
    for kind in [k for k in TEACHERS if k in teachers]:
        info.setdefault(kind, {})["test_acc"] = _accuracy(teachers[kind], test, device)
    info["_build_s"] = time.perf_counter() - start
    return {k: teachers[k] for k in TEACHERS if k in teachers}, info


# ----------------------------------------------------------------------------- students
def _audit_options(seed: int) -> dict[str, Any]:
    """The paper's estimator in nats, no intervals; BROJA solved to a certified gap of 1e-6
    bits (far below the plug-in estimate's sampling error)."""
    return {"estimator": "paper", "ci": None, "n_perm": 0, "base": math.e, "seed": seed,
            "measure_options": {"tol": 1e-6}}


def parse_method(method: str) -> tuple[str, dict[str, Any]]:
    """Split a method name with option overrides, ``"rid:lambda2=1,lambda1=1"`` ->
    ``("rid", {"lambda2": 1.0, "lambda1": 1.0})`` (values parsed as floats where possible).

    >>> parse_method("vid:weight=10")
    ('vid', {'weight': 10.0})
    """
    base, _, rest = method.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or base not in METHODS:
            raise fail("methods", f"{method!r} is not METHOD or METHOD:key=value,...",
                       f"Use a method of {METHODS}, e.g. 'rid:lambda2=1'", method)
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = value
    if base not in METHODS:
        raise fail("methods", f"{method!r} is not a benchmark method",
                   f"Use some of {METHODS} (optionally 'METHOD:key=value')", method)
    return base, options


def run_student(setup: Setup, method: str, teacher_kind: str, teacher, train, test, seed: int,
                *, audit: bool = False, device: str = "cpu",
                history: bool = False) -> dict[str, Any]:
    """Train one student and return its test accuracy (and audit curve if ``audit``; the
    trainer's per-epoch metrics, loss terms included, if ``history``).

    The student is :func:`make_student` initialised from ``seed``; ``train`` is its labelled
    subset. With ``audit=True`` an :class:`~pidkit_distill.audit_callback.AuditCallback` audits
    the innermost layer pair on ``test`` every ``setup.audit_every`` epochs and after the last
    one.
    """
    import torch

    from .train import distill

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10_000 + seed)
        student = make_student(setup)
    pairs = list(zip(teacher_layers(teacher_kind, setup), setup.layers, strict=True))
    callbacks = []
    if audit:
        from . import AuditCallback

        callbacks.append(AuditCallback(test, every=setup.audit_every, layers=[pairs[-1]],
                                       method=method, add_metrics=False,
                                       **_audit_options(seed)))
    base, overrides = parse_method(method)
    extra = dict(setup.rid_schedule) if base == "rid" else {}
    start = time.perf_counter()
    result = distill(teacher, student, train, method=base,
                     method_options={**setup.method_options.get(base, {}), **overrides},
                     layers=None if base in ("none", "kd") else pairs, callbacks=callbacks,
                     epochs=setup.epochs, batch_size=setup.batch_size, lr=setup.lr,
                     progress=False, seed=seed, device=device,
                     **{**setup.train_options, **extra})
    acc = result.trainer.evaluate(test)["val_acc"]
    out = {"dataset": setup.dataset, "teacher": teacher_kind, "method": method, "seed": seed,
           "test_acc": float(acc), "train_s": time.perf_counter() - start}
    if audit and callbacks[0].history is not None:
        out["curve"] = callbacks[0].history.to_dict()
    if history:
        out["history"] = [{k: v for k, v in h.items() if isinstance(v, (int, float, str))}
                          for h in result.history]
    return out


# ----------------------------------------------------------------------------- orchestration
_WORKER_CACHE: dict[str, Any] = {}


def _init_worker() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _WORKER_CACHE["limits"] = threadpool_limits(limits=1)


def _data(setup: Setup):
    """``(train, test)`` of ``setup``'s data set, cached per process."""
    from . import data

    key = ("data", setup.dataset, setup.root, setup.train_per_class, setup.validation)
    if key not in _WORKER_CACHE:
        train, test = data.get_dataset(setup.dataset, setup.root)
        if setup.train_per_class is not None:
            train = data.subset_per_class(train, setup.train_per_class, seed=0)
        if setup.validation is not None:  # tuning: the test split is not used at all
            train, test = data.split_per_class(train, setup.validation, seed=0)
        _WORKER_CACHE[key] = (train, test)
    return _WORKER_CACHE[key]


def _teacher_job(job: dict) -> dict:
    setup, seed = job["setup"], job["seed"]
    train, test = _data(setup)
    teachers, info = build_teachers(setup, train, test, seed, job["kinds"],
                                    job.get("device", "cpu"))
    states = {}
    if "trained" in teachers or "nuisance" in teachers:
        trained = teachers.get("trained") or teachers["nuisance"].teacher
        states["trained"] = trained.state_dict()
    if "relabelled" in teachers:
        states["relabelled"] = teachers["relabelled"].state_dict()
    return {"dataset": setup.dataset, "states": states, "info": info}


def _materialise(setup: Setup, kind: str, states: dict, seed: int):
    """Rebuild a teacher of ``kind`` from the trained state dicts (cached per process)."""
    from . import models

    key = ("teacher", setup.dataset, setup.arch, kind, seed, setup.validation)
    if key in _WORKER_CACHE:
        return _WORKER_CACHE[key]
    if kind == "untrained":
        model = _untrained(setup, seed)
    else:
        model = make_teacher(setup)
        model.load_state_dict(states["relabelled" if kind == "relabelled" else "trained"])
        model = models.freeze(model)
        if kind == "nuisance":
            model = _nuisance(setup, model, seed)
    _WORKER_CACHE[key] = model
    return model


def _student_job(job: dict) -> dict:
    from . import data

    setup: Setup = job["setup"]
    train, test = _data(setup)
    if setup.labels_per_class is None:
        subset = train
    elif setup.unlabelled_per_class != 0:
        subset = data.semi_supervised(train, setup.labels_per_class,
                                      setup.unlabelled_per_class, seed=job["seed"])
    else:  # materialised: indexing a TensorDataset is much cheaper than a Subset
        from torch.utils.data import TensorDataset

        subset = TensorDataset(*_tensors(data.subset_per_class(train, setup.labels_per_class,
                                                               seed=job["seed"])))
    teacher = _materialise(setup, job["teacher"], job["states"], job["teacher_seed"])
    if _replayable(setup, job["teacher"], subset, job.get("device", "cpu")):
        from .teacher_cache import CachedTeacher

        teacher = CachedTeacher(teacher, _tensors(subset)[0], teacher_layers(job["teacher"], setup))
    return run_student(setup, job["method"], job["teacher"], teacher, subset, test, job["seed"],
                       audit=job["audit"], device=job.get("device", "cpu"),
                       history=job.get("history", False))


def _replayable(setup: Setup, kind: str, subset, device: str) -> bool:
    """Whether a student job evaluates its teacher once on its training pool and replays it
    (:class:`~pidkit_distill.teacher_cache.CachedTeacher`): on CPU, for pools up to
    :data:`REPLAY_MAX` inputs, unless the teacher draws fresh noise (nuisance ``"noise"``).
    Replayed and recomputed outputs agree up to rounding (the batch sizes differ)."""
    noisy = kind == "nuisance" and setup.nuisance_kind == "noise"
    return device == "cpu" and not noisy and len(subset) <= REPLAY_MAX



def _map(fn, jobs: list, workers: int, progress: bool) -> list:
    """Run ``fn`` over ``jobs`` on ``workers`` processes (in-process when 1), in job order."""
    done = []
    if workers <= 1:
        _init_worker()
        for i, job in enumerate(jobs):
            done.append(fn(job))
            _report(progress, i + 1, len(jobs), done[-1])
        return done
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker) as pool:
        for i, out in enumerate(pool.imap(fn, jobs)):
            done.append(out)
            _report(progress, i + 1, len(jobs), out)
    return done


def _report(progress: bool, i: int, n: int, out: dict) -> None:
    if progress:
        what = (f"{out['dataset']} {out.get('teacher', '')} {out.get('method', 'teachers')} "
                f"seed {out.get('seed', '')}")
        acc = f" acc {out['test_acc']:.3f}" if "test_acc" in out else ""
        print(f"[{i}/{n}] {what}{acc}", file=sys.stderr, flush=True)


def _jobs(setups: Sequence[Setup], seeds: Sequence[int], methods: Sequence[str],
          teachers: Sequence[str], states: Mapping[str, dict], audit_seeds: Sequence[int],
          audit_teachers: Sequence[str], teacher_seed: int, device: str) -> list[dict]:
    """One job per (data set, teacher, method, seed); "none" ignores the teacher, so it runs
    once per seed (attached to the first teacher) plus, on audited seeds, once per audited
    teacher (for its audit curve)."""
    jobs = []
    for setup in setups:
        for seed in seeds:
            for method in methods:
                for kind in teachers:
                    audited = seed in audit_seeds and kind in audit_teachers
                    if method == "none" and kind != teachers[0] and not audited:
                        continue
                    jobs.append({"setup": setup, "seed": seed, "method": method,
                                 "teacher": kind, "states": states[setup.dataset],
                                 "teacher_seed": teacher_seed, "audit": audited,
                                 "device": device})
    return jobs


def _teacher_audits(setups: Sequence[Setup], teacher_results: Mapping[str, dict],
                    kinds: Sequence[str], teacher_seed: int, probe_samples: int,
                    device: str = "cpu") -> None:
    """Per teacher, on the innermost distilled layer: its audited I(Y;T) on the test split
    (the paper's estimator, teacher against itself) and a linear probe's test accuracy (fitted
    on at most ``probe_samples`` training samples); for the nuisance teacher also the probe on
    G alone. Stored into the teachers' info."""
    from . import audit

    for setup in setups:
        train, test = _data(setup)
        res = teacher_results[setup.dataset]
        for kind in kinds:
            model = _materialise(setup, kind, res["states"], teacher_seed).to(device)
            layer = teacher_layers(kind, setup)[-1]
            report = audit(model, model, test, [(layer, layer)], device=device,
                           **_audit_options(0))
            info = res["info"][kind]
            info["audit_mi_teacher_nats"] = float(report[0].values["mi_teacher"])
            if probe_samples:
                info["probe_acc"] = _linear_probe(model, layer, train, test, probe_samples,
                                                  device=device)
                if kind == "nuisance":
                    info["probe_g_acc"] = _linear_probe(model, layer, train, test, probe_samples,
                                                        channels=-setup.nuisance_channels,
                                                        device=device)


def summarize(runs: Sequence[Mapping[str, Any]], level: float = 0.95) -> list[dict[str, Any]]:
    """Mean, std and t-interval of test accuracy per (data set, teacher, method) over seeds.

    ``none`` does not use its teacher: its rows are pooled over teachers (one value per seed).
    """
    groups: dict[tuple, dict[int, float]] = {}
    for r in runs:
        teacher = "-" if r["method"] == "none" else r["teacher"]
        groups.setdefault((r["dataset"], teacher, r["method"]), {})[r["seed"]] = r["test_acc"]
    rows = []
    for (dataset, teacher, method), by_seed in groups.items():
        values = [by_seed[s] for s in sorted(by_seed)]
        mean, sd, lo, hi = t_interval(values, level)
        rows.append({"dataset": dataset, "teacher": teacher, "method": method,
                     "n_seeds": len(values), "mean": mean, "std": sd, "ci_low": lo,
                     "ci_high": hi, "values": values})
    order = {m: i for i, m in enumerate(METHODS)}
    torder = {t: i for i, t in enumerate(("-", *TEACHERS))}
    rows.sort(key=lambda r: (r["dataset"], torder.get(r["teacher"], 99),
                             order.get(r["method"].partition(":")[0], 99), r["method"]))
    return rows


def environment(torch_threads: int, workers: int) -> dict[str, Any]:
    """Machine, date, versions and thread settings for the result files."""
    import importlib

    versions = {}
    for name in ("pidkit", "torch", "numpy", "scipy", "sklearn", "mnist1d", "matplotlib"):
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except ImportError:
            versions[name] = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "machine": {"cpu": cpu, "logical_cores": os.cpu_count(),
                        "os": f"{platform.system()} {platform.release()}",
                        "python": platform.python_version(),
                        "load_average_at_start": list(os.getloadavg())},
            "versions": versions,
            "threads": {"torch_per_worker": torch_threads, "blas_per_worker": 1,
                        "workers": workers}}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_benchmark(datasets: Sequence[str | Setup] = ("digits", "mnist1d"), *, seeds: int = 5,
                  quick: bool = False, methods: Sequence[str] = METHODS,
                  teachers: Sequence[str] = TEACHERS, workers: int = 2,
                  audit_seeds: Sequence[int] = (0,), audit_teachers: Sequence[str] = TEACHERS,
                  teacher_seed: int = 0, device: str = "cpu", probe_samples: int = 5000,
                  out_dir: str | Path | None = None, name: str = "nuisance_teacher",
                  command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark and (with ``out_dir``) write ``<name>.json``, ``<name>.md`` and PNG
    figures there. Returns the result dict (see the module docstring).

    Parameters
    ----------
    datasets : sequence of names in :data:`SETUPS`, or :class:`Setup` objects
    seeds : int
        Student seeds ``0..seeds-1`` (label subset, initialisation, data order).
    quick : bool
        :func:`quick_setup` of every data set (smoke test).
    methods, teachers : sequences of names from :data:`METHODS`, :data:`TEACHERS`
    workers : int
        Processes (one torch thread and one BLAS thread each).
    audit_seeds, audit_teachers : which runs get audit curves.
    teacher_seed : int
        Seed of the teachers (trained, untrained, nuisance, relabelled).
    device : str
        Where teachers and students train (``"cuda"`` with ``workers=1``).
    probe_samples : int
        Training samples for the teachers' linear probes (0: no probes).
    """
    setups = []
    for d in datasets:
        if isinstance(d, Setup):
            setups.append(d)
        elif d in SETUPS:
            setups.append(SETUPS[d])
        else:
            raise fail("datasets", f"{d!r} is not a benchmark data set",
                       f"Use some of {sorted(SETUPS)} or pass Setup objects", datasets)
    for m in methods:
        parse_method(m)
    for t in (*teachers, *audit_teachers):
        if t not in TEACHERS:
            raise fail("teachers", f"{t!r} is not a teacher kind", f"Use some of {TEACHERS}",
                       t)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise fail("seeds", "must be a positive integer", "Pass e.g. seeds=5", seeds)
    if quick:
        setups = [quick_setup(s) for s in setups]
    teachers = [t for t in TEACHERS if t in teachers]
    env = environment(1, workers)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    teacher_out = _map(_teacher_job, [{"setup": s, "seed": teacher_seed, "kinds": teachers,
                                       "device": device} for s in setups], workers, progress)
    teacher_results = {r["dataset"]: r for r in teacher_out}
    _init_worker()
    _teacher_audits(setups, teacher_results, teachers, teacher_seed, probe_samples, device)
    wall_teachers = time.perf_counter() - wall0
    states = {d: r["states"] for d, r in teacher_results.items()}
    jobs = _jobs(setups, list(range(seeds)), list(methods), teachers, states,
                 list(audit_seeds), list(audit_teachers), teacher_seed, device)
    runs = _map(_student_job, jobs, workers, progress)
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    curves: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        if "curve" in r:
            curves.setdefault(r["dataset"], {}).setdefault(r["teacher"], {})[r["method"]] = \
                r.pop("curve")
    result = {
        "benchmark": "nuisance_teacher",
        "command": command or " ".join(sys.argv),
        "quick": quick,
        "environment": env,
        "timing": {"wall_s": wall, "cpu_s": cpu, "teachers_wall_s": wall_teachers,
                   "student_runs": len(runs), "load_average_at_end": list(os.getloadavg())},
        "setups": {s.dataset: asdict(s) for s in setups},
        "teachers": {d: r["info"] for d, r in teacher_results.items()},
        "summary": summarize(runs),
        "runs": runs,
        "curves": curves,
        "paper": PAPER_CIFAR10,
    }
    if out_dir is not None:
        from .bench_nuisance_report import write_outputs

        write_outputs(result, Path(out_dir), name)
    return result


#: The paper's CIFAR-10 numbers (WRN-40-2 -> WRN-16-1; final test accuracy, 3 runs; read from
#: its Table/Fig.; see docs/nuisance_benchmark.md), for side-by-side tables.
PAPER_CIFAR10 = {"teacher_acc": 0.84, "none": 0.72, "rid_trained": 0.81,
                 "rid_untrained": 0.66, "vid_trained": 0.81, "vid_untrained": 0.40}


# ----------------------------------------------------------------------------- sweep
def run_sweep(dataset: str, *, widths: Sequence[int], labels_per_class: Sequence[int],
              unlabelled: Sequence[int | None] = (0,), seeds: int = 2,
              methods: Sequence[str] = ("none", "kd", "vid", "rid"),
              teachers: Sequence[str] = ("trained", "untrained"), workers: int = 2,
              teacher_seed: int = 0, epochs: int | None = None, validation: float = 0.2,
              teacher_arch: str | None = None, name: str | None = None,
              out_dir: str | Path | None = None, command: str | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Student-size / label-count / unlabelled-data sweep used to choose :data:`SETUPS`:
    accuracy of the student without distillation and with the given methods, per
    (width, labels per class, unlabelled inputs per class), **on a validation split** held
    out of the training split (``validation`` of every class; teachers and students never
    train on it, and the test split is not used), so that choices are not made on the test
    split.

    ``unlabelled`` entries: ``0`` labelled samples only, ``None`` (``-1`` on the command line)
    every other training input, ``k`` that many per class. ``teacher_arch`` replaces the
    setup's teacher model (e.g. the shallow ``digits_cnn`` against the recorded
    ``digits_resnet``). Besides accuracies, the teachers' linear-probe accuracy and feature
    scale (:func:`_feature_rms`) at the innermost distilled layer are recorded. Writes
    ``<name>.json`` and ``.md`` (default ``nuisance_sweep_<dataset>``) into ``out_dir``.
    """
    base = replace(SETUPS[dataset], validation=validation)
    if teacher_arch is not None:
        base = replace(base, arch=teacher_arch)
    if epochs is not None:
        base = replace(base, epochs=epochs)
    env = environment(1, workers)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    teacher_res = _map(_teacher_job, [{"setup": base, "seed": teacher_seed,
                                       "kinds": list(teachers)}], 1, progress)[0]
    train, val = _data(base)
    probes, scales = {}, {}
    for kind in teachers:
        model = _materialise(base, kind, teacher_res["states"], teacher_seed)
        probes[kind] = _linear_probe(model, teacher_layers(kind, base)[-1], train, val)
        scales[kind] = _feature_rms(model, teacher_layers(kind, base)[-1], val)
    cells = [(int(w), int(k), None if u is None or u < 0 else int(u))
             for w in widths for k in labels_per_class for u in unlabelled]
    jobs = []
    for width, k, u in cells:
        setup = replace(base, student_width=width, labels_per_class=k, unlabelled_per_class=u)
        if u == 0:  # labelled samples only: keep at least 4 steps per epoch
            setup = replace(setup, batch_size=min(base.batch_size, max(10, 10 * k // 4)))
        for seed in range(seeds):
            for method in methods:
                for kind in (teachers[:1] if method == "none" else teachers):
                    jobs.append({"setup": setup, "seed": seed, "method": method,
                                 "teacher": kind, "states": teacher_res["states"],
                                 "teacher_seed": teacher_seed, "audit": False})
    runs = _map(_student_job, jobs, workers, progress)
    for job, r in zip(jobs, runs, strict=True):
        r["student_width"] = job["setup"].student_width
        r["labels_per_class"] = job["setup"].labels_per_class
        r["unlabelled_per_class"] = job["setup"].unlabelled_per_class
    rows = []
    for width, k, u in cells:
        sel = [r for r in runs if (r["student_width"], r["labels_per_class"],
                                   r["unlabelled_per_class"]) == (width, k, u)]
        for row in summarize(sel):
            rows.append({"student_width": width, "labels_per_class": k,
                         "unlabelled_per_class": u, **row})
    result = {**_validation_header("nuisance_sweep", dataset, command, env, wall0, cpu0,
                                   validation),
              "name": name or f"nuisance_sweep_{dataset}", "setup": asdict(base),
              "teachers": teacher_res["info"], "linear_probe_val_acc": probes,
              "feature_rms_val": scales, "summary": rows, "runs": runs}
    if out_dir is not None:
        from .bench_nuisance_report import write_sweep

        write_sweep(result, Path(out_dir))
    return result


def _validation_header(kind: str, dataset: str, command: str | None, env: dict,
                       wall0: float, cpu0: float, validation: float) -> dict[str, Any]:
    """The common head of a sweep's or diagnosis's result: what ran, where, how long, and the
    validation split it was scored on."""
    return {"benchmark": kind, "dataset": dataset, "command": command or " ".join(sys.argv),
            "environment": env,
            "timing": {"wall_s": time.perf_counter() - wall0, "cpu_s": _cpu_seconds() - cpu0},
            "evaluated_on": f"validation split ({validation:.0%} of every class of the "
                            "training split)"}


def _previous(setup: Setup) -> Setup:
    """The regime recorded before the diagnosis (digits): student width 4, labelled samples
    only (batch 25), 40 epochs, RID schedule (4, 8, 1/4) with the student frozen during the
    warm-up, the paper's weights."""
    return replace(setup, student_width=4, unlabelled_per_class=0, batch_size=25, epochs=40,
                   rid_schedule={"warmup": 4, "cycle": 8, "ratio": 0.25},
                   method_options=_OPTIONS)


def diagnosis_variants(dataset: str = "digits") -> list[tuple[str, Setup, str, str]]:
    """``(label, setup, method, teacher)`` of :func:`run_diagnosis`: the previous regime, then
    one change at a time up to the recorded one (:data:`SETUPS`)."""
    final = SETUPS[dataset]
    prev = _previous(final)
    steps = [("previous regime", prev),
             ("+ unlabelled inputs (all, batch 128)",
              replace(prev, unlabelled_per_class=None, batch_size=128)),
             ("+ width 8, 40 unlabelled/class, 30 epochs",
              replace(final, rid_schedule={**final.rid_schedule, "warmup_student": False})),
             ("+ RID student trains on CE during warm-up (recorded)", final)]
    out = []
    for label, setup in steps:
        for method, teacher in (("none", "trained"), ("vid", "trained"), ("rid", "trained"),
                                ("vid", "nuisance"), ("rid", "nuisance")):
            if method != "rid" and "warm-up" in label:
                continue  # same as the rows above: warmup_student only changes RID
            out.append((label, setup, method, teacher))
    return out


def run_diagnosis(dataset: str = "digits", *, seed: int = 0, validation: float = 0.2,
                  teacher_seed: int = 0, teacher_arch: str | None = None,
                  out_dir: str | Path | None = None,
                  command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Loss terms per epoch (cross-entropy against the distillation term) and validation
    accuracy for the variants of :func:`diagnosis_variants`, one seed, on a validation split
    of the training split (the test split is not used); ``teacher_arch`` replaces the teacher
    model (the recorded diagnosis ran with ``digits_cnn``, the teacher before
    ``digits_resnet``). Writes ``nuisance_diagnosis_<dataset>.json`` and ``.md`` into
    ``out_dir``."""
    arch = {} if teacher_arch is None else {"arch": teacher_arch}
    variants = [(label, replace(setup, validation=validation, **arch), method, teacher)
                for label, setup, method, teacher in diagnosis_variants(dataset)]
    env = environment(1, 1)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    base = variants[0][1]
    teacher_res = _map(_teacher_job, [{"setup": base, "seed": teacher_seed,
                                       "kinds": ["trained", "nuisance"]}], 1, progress)[0]
    jobs = [{"setup": setup, "seed": seed, "method": method, "teacher": teacher,
             "states": teacher_res["states"], "teacher_seed": teacher_seed, "audit": False,
             "history": True} for _, setup, method, teacher in variants]
    runs = _map(_student_job, jobs, 1, progress)
    for (label, setup, _, _), r in zip(variants, runs, strict=True):
        r["variant"] = label
        r["setup"] = asdict(setup)
    result = {**_validation_header("nuisance_diagnosis", dataset, command, env, wall0, cpu0,
                                   validation),
              "teachers": teacher_res["info"], "runs": runs}
    if out_dir is not None:
        from .bench_nuisance_report import write_diagnosis

        write_diagnosis(result, Path(out_dir))
    return result


@_no_grad
def _layer_features(model, layer: str, dataset, limit: int | None = None,
                    channels: int | None = None, device: str = "cpu"):
    """Flattened outputs of ``layer`` on the first ``limit`` samples of ``dataset``, as
    ``(features (N, D) numpy, labels (N,))``; ``channels=-k`` keeps the last ``k`` channels
    only (G of a nuisance teacher)."""
    from torch.utils.data import DataLoader, Subset

    from .features import FeatureHooks

    if limit is not None and len(dataset) > limit:
        dataset = Subset(dataset, range(limit))
    fs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=500):
        with FeatureHooks(model, [layer]) as hooks:
            model(x.to(device))
            f = hooks.collect()[0].float().cpu()
        if channels is not None:
            f = f[:, channels:]
        fs.append(f.flatten(1).numpy())
        ys.append(y.numpy())
    return np.concatenate(fs), np.concatenate(ys)


def _linear_probe(model, layer: str, train, test, max_train: int = 5000,
                  channels: int | None = None, device: str = "cpu") -> float:
    """Test accuracy of a logistic regression on the standardised, flattened features of
    ``layer`` (:func:`_layer_features`), fitted on at most ``max_train`` training samples:
    how usable a teacher's features are."""
    from sklearn.linear_model import LogisticRegression

    a, ya = _layer_features(model, layer, train, max_train, channels, device)
    b, yb = _layer_features(model, layer, test, None, channels, device)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    clf = LogisticRegression(max_iter=300).fit((a - mu) / sd, ya)
    return float(clf.score((b - mu) / sd, yb))


def _feature_rms(model, layer: str, dataset) -> float:
    r"""Root-mean-square activation :math:`\sqrt{\mathrm{mean}(T^2)}` of ``layer`` over
    ``dataset``: the scale a feature-matching student must regress (an untrained shallow
    CNN's features are far smaller than a trained one's; see docs/nuisance_benchmark.md)."""
    feats, _ = _layer_features(model, layer, dataset)
    return float(np.sqrt(np.mean(np.square(feats, dtype=np.float64))))
