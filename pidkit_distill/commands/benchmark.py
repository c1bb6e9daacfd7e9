"""``pidkit-distill benchmark``: reproducible benchmarks of the distillation methods.

Example::

    pidkit-distill benchmark nuisance --quick --out benchmarks/results
    pidkit-distill benchmark nuisance --datasets digits mnist1d --seeds 5 --workers 2
    pidkit-distill benchmark nuisance --sweep digits --widths 4 8 --labels 10 --unlabelled 0 -1

See :mod:`pidkit_distill.bench_nuisance` and ``docs/nuisance_benchmark.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

NAME = "benchmark"
HELP = "run a benchmark (nuisance: RID vs baselines under trained and nuisance teachers)"

_METHODS = ("none", "kd", "fitnets", "vid", "ted", "rid", "pid")
_TEACHERS = ("trained", "untrained", "nuisance", "relabelled")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    n = sub.add_parser("nuisance", help="the nuisance-teacher benchmark on digits and MNIST-1D",
                       description="Students trained without distillation and with KD, FitNets, "
                                   "VID, TED, RID and the PID regularizer, under trained, "
                                   "untrained, nuisance-channel and relabelled teachers.")
    n.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"],
                   choices=["digits", "mnist1d", "cifar10"],
                   help="cifar10 is the paper's full setting (needs --root; use a GPU)")
    n.add_argument("--root", help="folder with the CIFAR-10 files (never downloaded)")
    n.add_argument("--device", default="cpu", help="cpu, cuda, mps (use --workers 1 on GPUs)")
    n.add_argument("--seeds", type=int, help="student seeds 0..N-1 (default 5; 1 with --quick; "
                   "2 with --sweep)")
    n.add_argument("--quick", action="store_true",
                   help="smoke run: 1 seed (unless --seeds), few epochs")
    n.add_argument("--methods", nargs="+", default=list(_METHODS),
                   help=f"some of {', '.join(_METHODS)}; a variant with other options is "
                        "written METHOD:key=value,... (e.g. rid:lambda2=1)")
    n.add_argument("--teachers", nargs="+", default=list(_TEACHERS), choices=_TEACHERS)
    n.add_argument("--audit-teachers", nargs="*", default=["trained", "untrained"],
                   choices=_TEACHERS, help="teachers whose seed-0 runs get audit curves")
    n.add_argument("--workers", type=int, default=2, help="processes (1 thread each)")
    n.add_argument("--teacher-seed", type=int, default=0)
    n.add_argument("--out", default="benchmarks/results", help="output folder")
    n.add_argument("--name", help="result file stem (default nuisance_teacher[_quick]; "
                   "nuisance_sweep_DATASET with --sweep)")
    n.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="override a method option, e.g. rid.lambda2=1 (repeatable)")
    n.add_argument("--sweep", choices=["digits", "mnist1d"],
                   help="instead: the student-width / label-count / unlabelled-data sweep on "
                        "this data set, evaluated on a validation split of the training split")
    n.add_argument("--widths", nargs="+", type=int, default=[4, 8])
    n.add_argument("--labels", nargs="+", type=int, default=[10, 20],
                   help="labels per class (sweep)")
    n.add_argument("--unlabelled", nargs="+", type=int, default=[0, -1],
                   help="unlabelled training inputs per class (sweep; -1: all the others)")
    n.add_argument("--sweep-methods", nargs="+", default=["none", "kd", "vid", "rid"],
                   help="methods of the sweep (METHOD:key=value variants allowed)")
    n.add_argument("--sweep-teachers", nargs="+", default=["trained", "untrained"],
                   choices=_TEACHERS)
    n.add_argument("--epochs", type=int, help="student epochs (sweep; default: the setup's)")
    n.add_argument("--teacher-arch", help="teacher model of the sweep or diagnosis (default: "
                   "the setup's), e.g. digits_cnn against the recorded digits_resnet")
    n.add_argument("--diagnose", choices=["digits", "mnist1d"],
                   help="instead: loss terms per epoch (CE vs distillation term) and "
                        "validation accuracy from the previous regime to the recorded one")
    n.add_argument("--no-progress", action="store_true")


def _options(specs: list[str]) -> dict[str, dict]:
    import json

    from pidkit._validation import fail

    out: dict[str, dict] = {}
    for spec in specs:
        if "=" not in spec or "." not in spec.split("=", 1)[0]:
            raise fail("option", "must look like METHOD.KEY=VALUE", "Example: rid.lambda2=1",
                       spec)
        key, value = spec.split("=", 1)
        method, name = key.split(".", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method, {})[name] = parsed
    return out


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .. import bench_nuisance as bn

    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "pidkit-distill"
    if prog.endswith(".py"):
        prog = f"python {sys.argv[0]}"
    command = " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])
    overrides = _options(args.option)

    def with_options(setup):
        merged = {m: {**o, **overrides.get(m, {})} for m, o in setup.method_options.items()}
        return replace(setup, method_options=merged)

    if args.diagnose:
        result = bn.run_diagnosis(args.diagnose, teacher_arch=args.teacher_arch,
                                  out_dir=args.out, command=command,
                                  progress=not args.no_progress)
        print(f"diagnosis written to {args.out}/nuisance_diagnosis_{args.diagnose}.md "
              f"({result['timing']['wall_s']:.0f} s wall)")
        return 0
    if args.sweep:
        bn.SETUPS[args.sweep] = with_options(bn.SETUPS[args.sweep])
        result = bn.run_sweep(args.sweep, widths=args.widths, labels_per_class=args.labels,
                              unlabelled=args.unlabelled, seeds=args.seeds or 2,
                              methods=args.sweep_methods, teachers=args.sweep_teachers,
                              epochs=args.epochs, teacher_arch=args.teacher_arch,
                              name=args.name, workers=args.workers, teacher_seed=args.teacher_seed,
                              out_dir=args.out, command=command,
                              progress=not args.no_progress)
        print(f"sweep written to {args.out}/{result['name']}.md "
              f"({result['timing']['wall_s']:.0f} s wall, {result['timing']['cpu_s']:.0f} s CPU)")
        return 0
    seeds = args.seeds or (1 if args.quick else 5)
    name = args.name or ("nuisance_teacher_quick" if args.quick else "nuisance_teacher")
    setups = [with_options(replace(bn.SETUPS[d], root=args.root) if d == "cifar10"
                           else bn.SETUPS[d]) for d in args.datasets]
    result = bn.run_benchmark(setups, seeds=seeds,
                              quick=args.quick, methods=args.methods, teachers=args.teachers,
                              workers=args.workers, audit_teachers=args.audit_teachers,
                              teacher_seed=args.teacher_seed, device=args.device,
                              out_dir=args.out, name=name, command=command,
                              progress=not args.no_progress)
    from ..bench_nuisance_report import accuracy_table

    for dataset in args.datasets:
        print(f"\n{dataset}: student test accuracy (%)\n")
        print(accuracy_table(result["summary"], dataset))
    t = result["timing"]
    print(f"\n{t['student_runs']} student runs, {t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU; "
          f"results in {args.out}/{name}.md")
    return 0
