r"""The benchmark's models: fresh students and the four kinds of teacher (:data:`TEACHERS`),
trained, untrained, with nuisance channels, and trained on an unrelated labelling."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import TensorDataset

import pidkit
from pidkit.information import mutual_information
from pidkit_distill import NuisanceTeacher, distill, get_model, untrained_teacher
from pidkit_distill.models import freeze

from .probes import accuracy
from .setups import TEACHERS, Setup

__all__ = ["add_nuisance", "as_tensors", "build_teachers", "fit_teacher", "make_student",
           "make_teacher", "make_untrained", "teacher_layers", "unrelated_labels"]


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
    return get_model(setup.arch, **_width(setup.arch, setup.teacher_width))


def make_student(setup: Setup):
    """A fresh student of ``setup``."""
    arch = setup.student_arch or setup.arch
    return get_model(arch, **_width(arch, setup.student_width))


def make_untrained(setup: Setup, seed: int):
    """The ``untrained`` teacher: ``setup``'s teacher model, frozen at its random
    initialisation (seed ``seed + 1000``)."""
    return untrained_teacher(setup.arch, seed=seed + 1000,
                             **_width(setup.arch, setup.teacher_width))


def add_nuisance(setup: Setup, trained, seed: int) -> NuisanceTeacher:
    """The ``nuisance`` teacher: ``trained`` with ``setup``'s nuisance channels :math:`G`
    appended to every distilled layer (seed ``seed + 2000``)."""
    return NuisanceTeacher(trained, layers=setup.layers, channels=setup.nuisance_channels,
                           kind=setup.nuisance_kind, scale=setup.nuisance_scale,
                           seed=seed + 2000)


def teacher_layers(kind: str, setup: Setup) -> list[str]:
    """Teacher-side module paths of the distilled layers for a teacher ``kind``."""
    if kind == "nuisance":
        return [f"taps.{i}" for i in range(len(setup.layers))]
    return list(setup.layers)


def as_tensors(dataset):
    """``(inputs, labels)`` of ``dataset`` as two stacked tensors (labels int64)."""
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack([torch.as_tensor(v) for v in xs]), torch.as_tensor(ys).long()


def fit_teacher(setup: Setup, train, seed: int, device: str = "cpu"):
    """A teacher trained on ``train``; its initialisation is drawn from a forked RNG seeded
    with ``seed`` (torch's own start-up seed differs between processes)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20_000 + seed)
        model = make_teacher(setup)
    options = {"lr": 3e-3, **setup.teacher_options}
    distill(None, model, train, method="none", epochs=setup.teacher_epochs,
            batch_size=setup.teacher_batch_size, progress=False, seed=seed, device=device,
            **options)
    return freeze(model.cpu())


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
    start = time.perf_counter()
    teachers: dict[str, Any] = {}
    info: dict[str, dict[str, Any]] = {}
    if "trained" in kinds or "nuisance" in kinds:
        trained = fit_teacher(setup, train, seed, device)
        if "trained" in kinds:
            teachers["trained"] = trained
        if "nuisance" in kinds:
            teachers["nuisance"] = add_nuisance(setup, copy.deepcopy(trained), seed)
    if "untrained" in kinds:
        teachers["untrained"] = make_untrained(setup, seed)
    if "relabelled" in kinds:
        xtr, ytr = as_tensors(train)
        label = unrelated_labels(xtr, ytr, 10, seed)
        teachers["relabelled"] = fit_teacher(setup, TensorDataset(xtr, label(xtr)), seed + 1,
                                             device)
        joint = pidkit.joint_pmf(ytr.numpy(), label(xtr).numpy())
        info["relabelled"] = {
            "own_task_test_acc": accuracy(teachers["relabelled"], test, device, label),
            "label_mi_nats": mutual_information(joint, (0,), (1,))}
    for kind in [k for k in TEACHERS if k in teachers]:
        info.setdefault(kind, {})["test_acc"] = accuracy(teachers[kind], test, device)
    info["_build_s"] = time.perf_counter() - start
    return {k: teachers[k] for k in TEACHERS if k in teachers}, info
