"""Time per training step of each distillation method, as a ratio to the plain cross-entropy
step (method ``none``) timed in the same run.

Cases (model pairs):

* ``resnet``: a ResNet-18 student and a ResNet-34 teacher (``pidkit_distill.models``, the same
  architecture and parameter counts as ``torchvision.models.resnet18`` / ``resnet34``, ImageNet
  stem), 32x32 CIFAR-shaped random inputs, 10 classes, batch 64 on the CPU (256 on a GPU);
  layer pairs ``layer2``, ``layer3``, ``layer4`` (the models' ``feature_layers``);
* ``resnet-cifar`` (GPU only by default): the same pair with the CIFAR stem (3x3 conv, no
  max-pool), so the maps are 16x16 / 8x8 / 4x4 as in CIFAR distillation papers;
* ``digits``: a ``digits_cnn`` student (width 8) and teacher (width 32) on the scikit-learn
  digits training images (8x8), pairs ``layer1..3``.

Methods: ``none`` (the anchor), ``kd``, ``vid``, ``rid`` (its teacher phase and its student
phase timed separately, plus their mean over the paper's schedule, 1/4 of the cycle's epochs in
the teacher phase), ``pid`` and the exact discrete regulariser ``broja`` (every step, and with
``solve_every=10``, and in the solver's fixed-iteration mode, ``iterations=3``, which reads
nothing back from the device: the mode meant for GPUs), each through the public
:class:`pidkit_distill.train.Trainer` (SGD, default method options). ``rid`` and ``pid`` are
timed a second time with the teacher wrapped in :class:`pidkit_distill.CachedTeacher` (its
logits and features computed once for the fixed training pool, then replayed), which is what a
user with a fixed, un-augmented pool can do: it shows the cost of the method itself once the
teacher's forward pass, which every distillation method pays, is gone; ``kd`` and ``rid`` once
more with a bfloat16 copy of the teacher (``teacher.to(torch.bfloat16)``, which the trainer
accepts as it is: it casts the teacher's inputs to bfloat16, its outputs to the student's
dtype), the
cheaper live teacher for augmented data on CPUs with bfloat16 instructions (and GPUs). One
timed unit is
``trainer.train_epoch(epoch)`` over a fixed number of batches, with ``epoch`` chosen by
``trainer.phase_of`` to be in the wanted phase; the first epoch of each trainer is an untimed
warm-up; the methods are interleaved within every repeat so that load from other processes
spreads evenly; the ratio uses the best (least) time per step. Goals (issues 13 and 16): RID <=
1.3x, PID and the exact regulariser <= 1.5x the plain step.

To explain the ratios, the teacher's forward pass (no gradient) and the student's plain
forward + backward (cross-entropy, no optimizer step) are also timed outside the trainer.

Run from the repository root::

    .venv/bin/python benchmarks/train_step.py                 # CPU, writes results/train_step.*
    .venv/bin/python benchmarks/train_step.py --device cuda   # GPU, writes train_step_cuda.*
    .venv/bin/python benchmarks/train_step.py --quick         # a few steps, no result files
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from _common import blas_threads, format_seconds, write_results
from torch import nn

from pidkit_distill import CachedTeacher, data, models
from pidkit_distill.train import Trainer

#: Timed variants: label -> (method, method options, teacher form). The teacher is run live
#: in float32 ("live"), replayed by CachedTeacher ("cached"), or run live as a bfloat16 copy
#: (``teacher.to(torch.bfloat16)``, "bfloat16"; the trainer casts its inputs to bfloat16 and
#: its outputs to the student's dtype).
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "none": ("none", {}, "live"), "kd": ("kd", {}, "live"), "vid": ("vid", {}, "live"),
    "rid": ("rid", {}, "live"), "pid": ("pid", {}, "live"), "broja": ("broja", {}, "live"),
    "broja solve_every=10": ("broja", {"solve_every": 10}, "live"),
    "broja iterations=3": ("broja", {"iterations": 3}, "live"),
    "rid, cached teacher": ("rid", {}, "cached"), "pid, cached teacher": ("pid", {}, "cached"),
    "kd, bfloat16 teacher": ("kd", {}, "bfloat16"),
    "rid, bfloat16 teacher": ("rid", {}, "bfloat16"),
}
GOALS = {"rid": 1.3, "pid": 1.5, "broja": 1.5, "broja solve_every=10": 1.5,
         "broja iterations=3": 1.5, "rid, cached teacher": 1.3, "pid, cached teacher": 1.5,
         "rid, bfloat16 teacher": 1.3}
#: Share of a cycle's epochs in RID's teacher phase in the paper's schedule (r = 1/4).
RID_TEACHER_SHARE = 0.25
#: Schedule handed to every trainer (explicit, so that changes of the defaults do not move it).
SCHEDULE = {"epochs": 20, "warmup": 2, "cycle": 4, "ratio": 0.25}


@dataclass
class Case:
    """A model pair and its data: ``make()`` returns ``(teacher, student)`` (fresh, seeded)."""

    name: str
    label: str
    make: Callable[[], tuple[nn.Module, nn.Module]]
    inputs: torch.Tensor
    labels: torch.Tensor
    layers: list[tuple[str, str]]
    extra: dict[str, Any] = field(default_factory=dict)


def _resnet_case(name: str, batch: int, steps: int, cifar_stem: bool) -> Case:
    def make():
        torch.manual_seed(0)
        teacher = models.get_model("resnet34", num_classes=10, cifar_stem=cifar_stem)
        student = models.get_model("resnet18", num_classes=10, cifar_stem=cifar_stem)
        return teacher, student

    g = torch.Generator().manual_seed(0)
    n = batch * steps
    stem = "CIFAR stem" if cifar_stem else "ImageNet stem"
    return Case(name, f"ResNet-18 <- ResNet-34, 32x32, {stem}",
                make, torch.randn(n, 3, 32, 32, generator=g),
                torch.randint(0, 10, (n,), generator=g),
                [(p, p) for p in ("layer2", "layer3", "layer4")])


def _digits_case(batch: int, steps: int) -> Case:
    def make():
        torch.manual_seed(0)
        return (models.get_model("digits_cnn", width=32), models.get_model("digits_cnn", width=8))

    train, _ = data.load_digits()
    x, y = train.tensors
    n = batch * steps
    if n > len(x):
        raise SystemExit(f"digits has {len(x)} training images, fewer than {steps} x {batch}")
    return Case("digits", "digits_cnn w8 <- w32, 8x8", make, x[:n].clone(), y[:n].clone(),
                [(p, p) for p in ("layer1", "layer2", "layer3")])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _first_epoch(trainer: Trainer, phase: str) -> int:
    for epoch in range(trainer.config.epochs):
        if trainer.phase_of(epoch) == phase:
            return epoch
    raise RuntimeError(f"no {phase} epoch in the schedule {SCHEDULE}")


def _rows_of(case: Case, batch: int, steps: int, repeats: int,
             device: torch.device) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dataset = torch.utils.data.TensorDataset(case.inputs, case.labels)
    units: list[tuple[str, str, Trainer, int]] = []  # (method, phase, trainer, epoch)
    for label, (method, options, form) in VARIANTS.items():
        teacher, student = case.make()
        if form == "bfloat16":
            teacher = teacher.to(torch.bfloat16)
        elif form == "cached":
            teacher = CachedTeacher(teacher.to(device), case.inputs.to(device),
                                    [t for t, _ in case.layers])
        trainer = Trainer(None if method == "none" else teacher, student, dataset,
                          method=method, layers=None if method in ("none", "kd")
                          else case.layers, batch_size=batch, lr=0.01, progress=False,
                          device=str(device), seed=0, method_options=options, **SCHEDULE)
        phases = ("teacher", "student") if method == "rid" else ("student",)
        units += [(label, phase, trainer, _first_epoch(trainer, phase)) for phase in phases]
    times: dict[tuple[str, str], list[float]] = {(m, p): [] for m, p, _, _ in units}
    for _, _, trainer, epoch in units:  # warm-up: allocator, autograd graph, caches
        trainer.train_epoch(epoch)
    for _ in range(repeats):  # interleaved, so that background load hits every method alike
        for method, phase, trainer, epoch in units:
            times[(method, phase)].append(
                _timed(lambda t=trainer, e=epoch: t.train_epoch(e), device) / steps)

    parts = _parts(case, batch, steps, repeats, device)
    anchor = min(times[("none", "student")])
    kd = min(times[("kd", "student")])
    rows = []
    for (method, phase), runs in times.items():
        best = min(runs)
        rows.append(_row(case, method, phase, best, statistics.median(runs), anchor, kd))
    for label in ("rid", "rid, cached teacher", "rid, bfloat16 teacher"):
        teacher_phase = min(times[(label, "teacher")])
        student_phase = min(times[(label, "student")])
        mean = RID_TEACHER_SHARE * teacher_phase + (1 - RID_TEACHER_SHARE) * student_phase
        rows.append(_row(case, label, "schedule mean", mean, None, anchor, kd))
    order = {m: i for i, m in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (order[r["method"]], r["phase"] != "teacher",
                             r["phase"] == "schedule mean"))
    raw = {f"{m}/{p}": runs for (m, p), runs in times.items()}
    return rows, {"per_step_runs_s": raw, **parts}


def _row(case: Case, method: str, phase: str, best: float, median: float | None,
         anchor: float, kd: float) -> dict[str, Any]:
    goal = GOALS.get(method)
    ratio = best / anchor
    row = {"case": case.name, "method": method, "phase": phase, "step_s": best,
           "step_median_s": median, "ratio": ratio, "ratio_kd": best / kd,
           "goal": f"<= {goal}x" if goal else "", "met": "" if goal is None else
           ("yes" if ratio <= goal else "no"),
           "step": format_seconds(best), "step_median": format_seconds(median)}
    return row


def _parts(case: Case, batch: int, steps: int, repeats: int,
           device: torch.device) -> dict[str, Any]:
    """Teacher forward (eval, no grad) and student forward + backward (plain CE, no optimizer
    step), per step, outside the trainer."""
    teacher, student = case.make()
    teacher, student = teacher.to(device).eval(), student.to(device).train()
    xs = case.inputs.split(batch)
    ys = case.labels.split(batch)

    def teacher_pass():
        with torch.no_grad():
            for x in xs:
                teacher(x.to(device))

    def student_pass():
        for x, y in zip(xs, ys, strict=True):
            student.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(student(x.to(device)), y.to(device)).backward()

    teacher_pass()
    student_pass()
    t_runs = [_timed(teacher_pass, device) / steps for _ in range(repeats)]
    s_runs = [_timed(student_pass, device) / steps for _ in range(repeats)]
    return {"teacher_forward_s": min(t_runs), "student_forward_backward_s": min(s_runs),
            "teacher_forward_runs_s": t_runs, "student_forward_backward_runs_s": s_runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="a few steps, no result files")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads and BLAS threads on the CPU (default 1)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated subset of resnet, resnet-cifar, digits")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    batch = 256 if cuda else 64
    if args.quick:
        steps, repeats = {"resnet": 2, "resnet-cifar": 2, "digits": 4}, 2
    elif cuda:
        steps, repeats = {"resnet": 20, "resnet-cifar": 20, "digits": 5}, 5
    else:
        steps, repeats = {"resnet": 6, "resnet-cifar": 2, "digits": 20}, 5
    default_cases = "resnet,resnet-cifar,digits" if cuda else "resnet,digits"
    names = (args.cases or default_cases).split(",")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    digits_batch = min(batch, 64)  # 1,347 training images: 5 x 256 on a GPU would be all
    builders = {
        "resnet": lambda: _resnet_case("resnet", batch, steps["resnet"], cifar_stem=False),
        "resnet-cifar": lambda: _resnet_case("resnet-cifar", batch, steps["resnet-cifar"],
                                             cifar_stem=True),
        "digits": lambda: _digits_case(digits_batch, steps["digits"]),
    }
    unknown = sorted(set(names) - set(builders))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; use {sorted(builders)}")
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"settings": {}, "parts": {}}
    start = time.perf_counter()
    with blas_threads(args.threads) as blas:
        for name in names:
            case = builders[name]()
            case_batch = digits_batch if name == "digits" else batch
            case_rows, parts = _rows_of(case, case_batch, steps[name], repeats, device)
            t_fwd, s_step = parts["teacher_forward_s"], parts["student_forward_backward_s"]
            for row in case_rows:
                row["batch"] = case_batch
            rows += case_rows
            extra["parts"][name] = parts
            extra["settings"][name] = {"label": case.label, "batch": case_batch,
                                       "steps_per_timed_epoch": steps[name],
                                       "repeats": repeats, "layers": case.layers}
            print(f"{name}: {case.label}, batch {case_batch}, {steps[name]} steps x {repeats} "
                  f"repeats; teacher forward {format_seconds(t_fwd)}, student fwd+bwd "
                  f"{format_seconds(s_step)} per step", flush=True)
    elapsed = time.perf_counter() - start
    summary = _summary(rows, extra["parts"])
    columns = ["case", "method", "phase", "batch", "step", "step_median", "ratio", "goal", "met",
               "ratio_kd"]
    headers = {"step": "step (best)", "step_median": "step (median)",
               "ratio": "x plain step", "ratio_kd": "x kd step"}
    notes = [
        f"Per-step time: best and median over {repeats} timed epochs of each trainer, after one "
        "untimed warm-up epoch; methods interleaved within each repeat. Steps per timed epoch: "
        + ", ".join(f"{n} {steps[n]}" for n in names) + ".",
        "x plain step: best time per step / best time per step of method none (cross-entropy "
        "only, no teacher) measured in the same run. Goals (issues 13, 16): RID <= 1.3x, PID "
        "and broja <= 1.5x. x kd step: the same against method kd, whose step is the plain "
        "step plus the teacher's forward pass, so it shows what a method costs beyond running "
        "the teacher.",
        f"rid schedule mean: {RID_TEACHER_SHARE:g} x teacher phase + "
        f"{1 - RID_TEACHER_SHARE:g} x student phase (the paper's r = 1/4; warm-up epochs cost "
        "about a teacher-phase epoch).",
        *summary,
        f"Trainer: SGD lr 0.01, default method options, {SCHEDULE}; "
        f"torch.set_num_threads({args.threads}); device {device}. Total run {elapsed:.0f} s.",
    ]
    if cuda:
        extra["gpu"] = torch.cuda.get_device_name(device)
        notes.append(f"GPU: {extra['gpu']}; timers read after torch.cuda.synchronize().")
    extra["torch_threads"] = args.threads
    extra["elapsed_s"] = elapsed
    if args.quick:
        from _common import markdown_table

        print(markdown_table(rows, columns, headers))
        print("\n".join(f"- {n}" for n in notes))
        print(f"(--quick: no result files; {elapsed:.0f} s)")
        return
    write_results("train_step_cuda" if cuda else "train_step", rows, blas=blas,
                  title="Training step time per distillation method"
                  + (" (GPU)" if cuda else " (CPU)"),
                  columns=columns, headers=headers, notes=notes, extra=extra)


def _summary(rows: list[dict[str, Any]], parts: dict[str, Any]) -> list[str]:
    """One line per case: where the plain step's time goes (teacher forward vs student step)."""
    out = []
    for name, p in parts.items():
        plain = next(r["step_s"] for r in rows if r["case"] == name and r["method"] == "none")
        fwd, both = p["teacher_forward_s"], p["student_forward_backward_s"]
        out.append(f"{name}: teacher forward (no grad) {format_seconds(fwd)} = "
                   f"{fwd / plain:.2f}x the plain step; student forward+backward outside the "
                   f"trainer {format_seconds(both)} = {both / plain:.2f}x (the rest of the "
                   "plain step is the optimizer, gradient clipping, data loading and "
                   "bookkeeping).")
    return out


if __name__ == "__main__":
    main()
