"""What defines the nuisance-teacher benchmark on each data set: the :class:`Setup` records
(models, schedules, label budget, nuisance channels, method options), the recorded
:data:`SETUPS`, their smoke-test version, and the method names (with option overrides)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from pidkit.validation import fail

__all__ = ["METHODS", "METHOD_OPTIONS", "TEACHERS", "SETUPS", "PAPER_CIFAR10", "Setup",
           "quick_setup", "parse_method"]

#: Student objectives, in table order.
METHODS = ("none", "kd", "fitnets", "vid", "ted", "rid", "pid", "broja")
#: Teacher kinds, in table order.
TEACHERS = ("trained", "untrained", "nuisance", "relabelled")


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
#: Options per method: the paper's weights (VID 100, RID lambda = (1, 10)); the PID
#: regulariser's and the exact discrete regulariser's library defaults.
METHOD_OPTIONS = {"kd": {"temperature": 4.0, "alpha": 0.9}, "fitnets": {},
                  "vid": {"weight": 100.0}, "ted": {},
                  "rid": {"lambda1": 1.0, "lambda2": 10.0}, "pid": {}, "broja": {},
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
                    nuisance_channels=32, nuisance_scale=5.0, method_options=METHOD_OPTIONS,
                    audit_every=3),
    "mnist1d": Setup("mnist1d", "mnist1d_resnet", student_arch="mnist1d_cnn",
                     teacher_width=32, teacher_epochs=15,
                     student_width=16, labels_per_class=50, unlabelled_per_class=50,
                     epochs=30, batch_size=128, lr=0.01,
                     rid_schedule={"warmup": 3, "cycle": 6, "ratio": 1 / 6,
                                   "warmup_student": True},
                     nuisance_channels=16, nuisance_scale=5.0,
                     method_options={**METHOD_OPTIONS, "rid": {"lambda1": 1.0, "lambda2": 1.0}},
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
                     nuisance_channels=32, nuisance_kind="noise", method_options=METHOD_OPTIONS,
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


def option_value(text: str) -> Any:
    """An option value from the command line, parsed as JSON where it is JSON (``2`` -> 2,
    ``0.1`` -> 0.1, ``true`` -> True), kept as text otherwise (``mmi``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_method(method: str) -> tuple[str, dict[str, Any]]:
    """Split a method name with option overrides, ``"rid:lambda2=1,lambda1=1"`` ->
    ``("rid", {"lambda2": 1, "lambda1": 1})`` (values parsed by :func:`option_value`).

    >>> parse_method("vid:weight=10")
    ('vid', {'weight': 10})
    """
    base, _, rest = method.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or base not in METHODS:
            raise fail("methods", f"{method!r} is not METHOD or METHOD:key=value,...",
                       f"Use a method of {METHODS}, e.g. 'rid:lambda2=1'", method)
        options[key] = option_value(value)
    if base not in METHODS:
        raise fail("methods", f"{method!r} is not a benchmark method",
                   f"Use some of {METHODS} (optionally 'METHOD:key=value')", method)
    return base, options


#: The paper's CIFAR-10 numbers (WRN-40-2 -> WRN-16-1; final test accuracy, 3 runs; read from
#: its Table/Fig.; see docs/nuisance_benchmark.md), for side-by-side tables.
PAPER_CIFAR10 = {"teacher_acc": 0.84, "none": 0.72, "rid_trained": 0.81,
                 "rid_untrained": 0.66, "vid_trained": 0.81, "vid_untrained": 0.40}
