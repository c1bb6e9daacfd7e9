"""The benchmark's units of work and how they run: one job trains the teachers of a data set
or one student; jobs run in order on worker processes (one torch and one BLAS thread each),
which cache data sets and rebuilt teachers."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch
from torch.utils.data import TensorDataset

from pidkit_distill import AuditCallback, CachedTeacher, data, distill
from pidkit_distill.models import freeze

from .setups import Setup, parse_method
from .teachers import (
    add_nuisance,
    as_tensors,
    build_teachers,
    make_student,
    make_teacher,
    make_untrained,
    teacher_layers,
)

__all__ = ["REPLAY_MAX", "audit_options", "init_worker", "load_data", "map_jobs",
           "materialise", "run_student", "student_job", "teacher_job"]

#: Largest training pool whose teacher outputs a student job stores (see :func:`_replayable`).
REPLAY_MAX = 20_000

_WORKER_CACHE: dict[Any, Any] = {}


def audit_options(seed: int) -> dict[str, Any]:
    """The paper's estimator in nats, no intervals; BROJA solved to a certified gap of 1e-6
    bits (far below the plug-in estimate's sampling error)."""
    return {"estimator": "paper", "ci": None, "n_perm": 0, "base": math.e, "seed": seed,
            "measure_options": {"tol": 1e-6}}


def run_student(setup: Setup, method: str, teacher_kind: str, teacher, train, test, seed: int,
                *, audit: bool = False, device: str = "cpu",
                history: bool = False) -> dict[str, Any]:
    """Train one student and return its test accuracy (and audit curve if ``audit``; the
    trainer's per-epoch metrics, loss terms included, if ``history``).

    The student is :func:`~nuisance.teachers.make_student` initialised from ``seed``; ``train``
    is its labelled subset. With ``audit=True`` an
    :class:`~pidkit_distill.audits.callback.AuditCallback` audits the innermost layer pair on
    ``test`` every ``setup.audit_every`` epochs and after the last one.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10_000 + seed)
        student = make_student(setup)
    pairs = list(zip(teacher_layers(teacher_kind, setup), setup.layers, strict=True))
    callbacks = []
    if audit:
        callbacks.append(AuditCallback(test, every=setup.audit_every, layers=[pairs[-1]],
                                       method=method, add_metrics=False,
                                       **audit_options(seed)))
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


def init_worker() -> None:
    """One torch thread and one BLAS thread in this process."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _WORKER_CACHE["limits"] = threadpool_limits(limits=1)


def load_data(setup: Setup):
    """``(train, test)`` of ``setup``'s data set, cached per process."""
    key = ("data", setup.dataset, setup.root, setup.train_per_class, setup.validation)
    if key not in _WORKER_CACHE:
        train, test = data.get_dataset(setup.dataset, setup.root)
        if setup.train_per_class is not None:
            train = data.subset_per_class(train, setup.train_per_class, seed=0)
        if setup.validation is not None:  # tuning: the test split is not used at all
            train, test = data.split_per_class(train, setup.validation, seed=0)
        _WORKER_CACHE[key] = (train, test)
    return _WORKER_CACHE[key]


def teacher_job(job: dict) -> dict:
    """Build the teachers ``job["kinds"]`` of ``job["setup"]``; return their state dicts (to
    ship to the student jobs) and their accuracies."""
    setup, seed = job["setup"], job["seed"]
    train, test = load_data(setup)
    teachers, info = build_teachers(setup, train, test, seed, job["kinds"],
                                    job.get("device", "cpu"))
    states = {}
    if "trained" in teachers or "nuisance" in teachers:
        trained = teachers.get("trained") or teachers["nuisance"].teacher
        states["trained"] = trained.state_dict()
    if "relabelled" in teachers:
        states["relabelled"] = teachers["relabelled"].state_dict()
    return {"dataset": setup.dataset, "states": states, "info": info}


def materialise(setup: Setup, kind: str, states: dict, seed: int):
    """Rebuild a teacher of ``kind`` from the trained state dicts (cached per process)."""
    key = ("teacher", setup.dataset, setup.arch, kind, seed, setup.validation)
    if key in _WORKER_CACHE:
        return _WORKER_CACHE[key]
    if kind == "untrained":
        model = make_untrained(setup, seed)
    else:
        model = make_teacher(setup)
        model.load_state_dict(states["relabelled" if kind == "relabelled" else "trained"])
        model = freeze(model)
        if kind == "nuisance":
            model = add_nuisance(setup, model, seed)
    _WORKER_CACHE[key] = model
    return model


def student_job(job: dict) -> dict:
    """Train the student of ``job`` (:func:`run_student`) on its labelled subset, plus its
    unlabelled inputs when the setup has them."""
    setup: Setup = job["setup"]
    train, test = load_data(setup)
    if setup.labels_per_class is None:
        subset = train
    elif setup.unlabelled_per_class != 0:
        subset = data.semi_supervised(train, setup.labels_per_class,
                                      setup.unlabelled_per_class, seed=job["seed"])
    else:  # materialised: indexing a TensorDataset is much cheaper than a Subset
        subset = TensorDataset(*as_tensors(data.subset_per_class(train, setup.labels_per_class,
                                                                 seed=job["seed"])))
    teacher = materialise(setup, job["teacher"], job["states"], job["teacher_seed"])
    if _replayable(setup, job["teacher"], subset, job.get("device", "cpu")):
        teacher = CachedTeacher(teacher, as_tensors(subset)[0],
                                teacher_layers(job["teacher"], setup))
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


def map_jobs(fn, jobs: list, workers: int, progress: bool) -> list:
    """Run ``fn`` over ``jobs`` on ``workers`` processes (in-process when 1), in job order."""
    done = []
    if workers <= 1:
        init_worker()
        for i, job in enumerate(jobs):
            done.append(fn(job))
            _report(progress, i + 1, len(jobs), done[-1])
        return done
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=init_worker) as pool:
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
