"""The benchmark run: the teachers of every data set, then every (teacher, method, seed)
student, summarised into the result dict and written as JSON, Markdown and PNG
(:func:`run_benchmark`); machine, versions and CPU time for the result files."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import environment as machine_environment

from pidkit.validation import fail
from pidkit_distill import audit

from .jobs import (
    audit_options,
    init_worker,
    load_data,
    map_jobs,
    materialise,
    student_job,
    teacher_job,
)
from .probes import linear_probe
from .report import write_outputs
from .setups import METHODS, PAPER_CIFAR10, SETUPS, TEACHERS, Setup, parse_method, quick_setup
from .summary import summarize
from .teachers import teacher_layers

__all__ = ["cpu_seconds", "environment", "run_benchmark"]

#: Packages whose versions the result files record.
PACKAGES = ("pidkit", "torch", "numpy", "scipy", "sklearn", "mnist1d", "matplotlib")


def environment(torch_threads: int, workers: int) -> dict[str, Any]:
    """Machine, date and versions (:func:`_common.environment`) and the thread settings, for
    the result files."""
    return {**machine_environment(PACKAGES),
            "threads": {"torch_per_worker": torch_threads, "blas_per_worker": 1,
                        "workers": workers}}


def cpu_seconds() -> float:
    """CPU seconds (user and system) of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _student_jobs(setups: Sequence[Setup], seeds: Sequence[int], methods: Sequence[str],
                  teachers: Sequence[str], states: Mapping[str, dict],
                  audit_seeds: Sequence[int], audit_teachers: Sequence[str], teacher_seed: int,
                  device: str) -> list[dict]:
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
    for setup in setups:
        train, test = load_data(setup)
        res = teacher_results[setup.dataset]
        for kind in kinds:
            model = materialise(setup, kind, res["states"], teacher_seed).to(device)
            layer = teacher_layers(kind, setup)[-1]
            report = audit(model, model, test, [(layer, layer)], device=device,
                           **audit_options(0))
            info = res["info"][kind]
            info["audit_mi_teacher_nats"] = float(report[0].values["mi_teacher"])
            if probe_samples:
                info["probe_acc"] = linear_probe(model, layer, train, test, probe_samples,
                                                 device=device)
                if kind == "nuisance":
                    info["probe_g_acc"] = linear_probe(model, layer, train, test, probe_samples,
                                                       channels=-setup.nuisance_channels,
                                                       device=device)


def run_benchmark(datasets: Sequence[str | Setup] = ("digits", "mnist1d"), *, seeds: int = 5,
                  quick: bool = False, methods: Sequence[str] = METHODS,
                  teachers: Sequence[str] = TEACHERS, workers: int = 2,
                  audit_seeds: Sequence[int] = (0,), audit_teachers: Sequence[str] = TEACHERS,
                  teacher_seed: int = 0, device: str = "cpu", probe_samples: int = 5000,
                  out_dir: str | Path | None = None, name: str = "nuisance_teacher",
                  command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark and (with ``out_dir``) write ``<name>.json``, ``<name>.md`` and PNG
    figures there. Returns the result dict (see :mod:`nuisance`).

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
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    teacher_out = map_jobs(teacher_job, [{"setup": s, "seed": teacher_seed, "kinds": teachers,
                                          "device": device} for s in setups], workers, progress)
    teacher_results = {r["dataset"]: r for r in teacher_out}
    init_worker()
    _teacher_audits(setups, teacher_results, teachers, teacher_seed, probe_samples, device)
    wall_teachers = time.perf_counter() - wall0
    states = {d: r["states"] for d, r in teacher_results.items()}
    jobs = _student_jobs(setups, list(range(seeds)), list(methods), teachers, states,
                         list(audit_seeds), list(audit_teachers), teacher_seed, device)
    runs = map_jobs(student_job, jobs, workers, progress)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
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
        write_outputs(result, Path(out_dir), name)
    return result
