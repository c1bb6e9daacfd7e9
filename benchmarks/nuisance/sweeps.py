"""Choosing the recorded configuration on a validation split: the student-size /
label-count / unlabelled-data sweep (:func:`run_sweep`) and the loss-term diagnosis from the
previous regime to the recorded one (:func:`run_diagnosis`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .jobs import load_data, map_jobs, materialise, student_job, teacher_job
from .probes import feature_rms, linear_probe
from .report import write_diagnosis, write_sweep
from .runner import cpu_seconds, environment
from .setups import METHOD_OPTIONS, SETUPS, Setup
from .summary import summarize
from .teachers import teacher_layers

__all__ = ["diagnosis_variants", "run_diagnosis", "run_sweep"]


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
    scale (:func:`feature_rms`) at the innermost distilled layer are recorded. Writes
    ``<name>.json`` and ``.md`` (default ``nuisance_sweep_<dataset>``) into ``out_dir``.
    """
    base = replace(SETUPS[dataset], validation=validation)
    if teacher_arch is not None:
        base = replace(base, arch=teacher_arch)
    if epochs is not None:
        base = replace(base, epochs=epochs)
    env = environment(1, workers)
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    teacher_res = map_jobs(teacher_job, [{"setup": base, "seed": teacher_seed,
                                          "kinds": list(teachers)}], 1, progress)[0]
    train, val = load_data(base)
    probes, scales = {}, {}
    for kind in teachers:
        model = materialise(base, kind, teacher_res["states"], teacher_seed)
        probes[kind] = linear_probe(model, teacher_layers(kind, base)[-1], train, val)
        scales[kind] = feature_rms(model, teacher_layers(kind, base)[-1], val)
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
    runs = map_jobs(student_job, jobs, workers, progress)
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
        write_sweep(result, Path(out_dir))
    return result


def _validation_header(kind: str, dataset: str, command: str | None, env: dict,
                       wall0: float, cpu0: float, validation: float) -> dict[str, Any]:
    """The common head of a sweep's or diagnosis's result: what ran, where, how long, and the
    validation split it was scored on."""
    return {"benchmark": kind, "dataset": dataset, "command": command or " ".join(sys.argv),
            "environment": env,
            "timing": {"wall_s": time.perf_counter() - wall0, "cpu_s": cpu_seconds() - cpu0},
            "evaluated_on": f"validation split ({validation:.0%} of every class of the "
                            "training split)"}


def _previous(setup: Setup) -> Setup:
    """The regime recorded before the diagnosis (digits): student width 4, labelled samples
    only (batch 25), 40 epochs, RID schedule (4, 8, 1/4) with the student frozen during the
    warm-up, the paper's weights."""
    return replace(setup, student_width=4, unlabelled_per_class=0, batch_size=25, epochs=40,
                   rid_schedule={"warmup": 4, "cycle": 8, "ratio": 0.25},
                   method_options=METHOD_OPTIONS)


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
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    base = variants[0][1]
    teacher_res = map_jobs(teacher_job, [{"setup": base, "seed": teacher_seed,
                                          "kinds": ["trained", "nuisance"]}], 1, progress)[0]
    jobs = [{"setup": setup, "seed": seed, "method": method, "teacher": teacher,
             "states": teacher_res["states"], "teacher_seed": teacher_seed, "audit": False,
             "history": True} for _, setup, method, teacher in variants]
    runs = map_jobs(student_job, jobs, 1, progress)
    for (label, setup, _, _), r in zip(variants, runs, strict=True):
        r["variant"] = label
        r["setup"] = asdict(setup)
    result = {**_validation_header("nuisance_diagnosis", dataset, command, env, wall0, cpu0,
                                   validation),
              "teachers": teacher_res["info"], "runs": runs}
    if out_dir is not None:
        write_diagnosis(result, Path(out_dir))
    return result
