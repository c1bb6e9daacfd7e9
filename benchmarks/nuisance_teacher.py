"""The nuisance-teacher benchmark (issue 8): RID and the baselines under trained and nuisance
teachers on digits and MNIST-1D, with audits over training (see :mod:`nuisance`)::

    python benchmarks/nuisance_teacher.py                 # full run: 5 seeds, both data sets
    python benchmarks/nuisance_teacher.py --quick         # smoke run (1 seed, few epochs)
    python benchmarks/nuisance_teacher.py --sweep mnist1d # width / label / unlabelled sweep
    python benchmarks/nuisance_teacher.py --diagnose digits  # loss terms, old -> new regime
    python benchmarks/nuisance_teacher.py --datasets cifar10 --root DIR --device cuda --workers 1

Results go to ``benchmarks/results/nuisance_teacher.{json,md}`` and
``nuisance_teacher_<dataset>_*.png`` (machine, date, versions, thread settings and the exact command
are recorded inside). Workers use one torch thread and one BLAS thread each; the timing block
reports wall-clock and CPU seconds (on a shared machine the CPU seconds are the honest cost).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

from nuisance import runner, sweeps
from nuisance.report import accuracy_table
from nuisance.setups import METHODS, SETUPS, TEACHERS, Setup, option_value

from pidkit.errors import PIDKitError
from pidkit.validation import fail


def build_parser() -> argparse.ArgumentParser:
    """The command line of the benchmark, its sweep and its diagnosis."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/nuisance_teacher.py",
        description="Students trained without distillation and with KD, FitNets, VID, TED, RID "
                    "and the PID regularizer, under trained, untrained, nuisance-channel and "
                    "relabelled teachers.")
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"],
                   choices=["digits", "mnist1d", "cifar10"],
                   help="cifar10 is the paper's full setting (needs --root; use a GPU)")
    p.add_argument("--root", help="folder with the CIFAR-10 files (never downloaded)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps (use --workers 1 on GPUs)")
    p.add_argument("--seeds", type=int, help="student seeds 0..N-1 (default 5; 1 with --quick; "
                   "2 with --sweep)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 seed (unless --seeds), few epochs")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help=f"some of {', '.join(METHODS)}; a variant with other options is "
                        "written METHOD:key=value,... (e.g. rid:lambda2=1)")
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=TEACHERS)
    p.add_argument("--audit-teachers", nargs="*", default=["trained", "untrained"],
                   choices=TEACHERS, help="teachers whose seed-0 runs get audit curves")
    p.add_argument("--workers", type=int, default=2, help="processes (1 thread each)")
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--name", help="result file stem (default nuisance_teacher[_quick]; "
                   "nuisance_sweep_DATASET with --sweep)")
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="override a method option, e.g. rid.lambda2=1 (repeatable)")
    p.add_argument("--sweep", choices=["digits", "mnist1d"],
                   help="instead: the student-width / label-count / unlabelled-data sweep on "
                        "this data set, evaluated on a validation split of the training split")
    p.add_argument("--widths", nargs="+", type=int, default=[4, 8])
    p.add_argument("--labels", nargs="+", type=int, default=[10, 20],
                   help="labels per class (sweep)")
    p.add_argument("--unlabelled", nargs="+", type=int, default=[0, -1],
                   help="unlabelled training inputs per class (sweep; -1: all the others)")
    p.add_argument("--sweep-methods", nargs="+", default=["none", "kd", "vid", "rid"],
                   help="methods of the sweep (METHOD:key=value variants allowed)")
    p.add_argument("--sweep-teachers", nargs="+", default=["trained", "untrained"],
                   choices=TEACHERS)
    p.add_argument("--epochs", type=int, help="student epochs (sweep; default: the setup's)")
    p.add_argument("--teacher-arch", help="teacher model of the sweep or diagnosis (default: "
                   "the setup's), e.g. digits_cnn against the recorded digits_resnet")
    p.add_argument("--diagnose", choices=["digits", "mnist1d"],
                   help="instead: loss terms per epoch (CE vs distillation term) and "
                        "validation accuracy from the previous regime to the recorded one")
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_options(specs: list[str]) -> dict[str, dict]:
    """``["rid.lambda2=1", ...]`` -> ``{"rid": {"lambda2": 1}}`` (values parsed as JSON where
    they are JSON, kept as strings otherwise)."""
    out: dict[str, dict] = {}
    for spec in specs:
        if "=" not in spec or "." not in spec.split("=", 1)[0]:
            raise fail("option", "must look like METHOD.KEY=VALUE", "Example: rid.lambda2=1",
                       spec)
        key, value = spec.split("=", 1)
        method, name = key.split(".", 1)
        out.setdefault(method, {})[name] = option_value(value)
    return out


def run(args: argparse.Namespace) -> int:
    """Run what ``args`` asks for (the benchmark, a sweep or the diagnosis) and print where the
    results went."""
    command = " ".join(["python", *(shlex.quote(a) for a in sys.argv)])
    overrides = parse_options(args.option)

    def with_options(setup: Setup) -> Setup:
        merged = {m: {**o, **overrides.get(m, {})} for m, o in setup.method_options.items()}
        return replace(setup, method_options=merged)

    if args.diagnose:
        result = sweeps.run_diagnosis(args.diagnose, teacher_arch=args.teacher_arch,
                                      out_dir=args.out, command=command,
                                      progress=not args.no_progress)
        print(f"diagnosis written to {args.out}/nuisance_diagnosis_{args.diagnose}.md "
              f"({result['timing']['wall_s']:.0f} s wall)")
        return 0
    if args.sweep:
        SETUPS[args.sweep] = with_options(SETUPS[args.sweep])
        result = sweeps.run_sweep(args.sweep, widths=args.widths, labels_per_class=args.labels,
                                  unlabelled=args.unlabelled, seeds=args.seeds or 2,
                                  methods=args.sweep_methods, teachers=args.sweep_teachers,
                                  epochs=args.epochs, teacher_arch=args.teacher_arch,
                                  name=args.name, workers=args.workers,
                                  teacher_seed=args.teacher_seed, out_dir=args.out,
                                  command=command, progress=not args.no_progress)
        print(f"sweep written to {args.out}/{result['name']}.md "
              f"({result['timing']['wall_s']:.0f} s wall, {result['timing']['cpu_s']:.0f} s CPU)")
        return 0
    seeds = args.seeds or (1 if args.quick else 5)
    name = args.name or ("nuisance_teacher_quick" if args.quick else "nuisance_teacher")
    setups = [with_options(replace(SETUPS[d], root=args.root) if d == "cifar10" else SETUPS[d])
              for d in args.datasets]
    result = runner.run_benchmark(setups, seeds=seeds, quick=args.quick, methods=args.methods,
                                  teachers=args.teachers, workers=args.workers,
                                  audit_teachers=args.audit_teachers,
                                  teacher_seed=args.teacher_seed, device=args.device,
                                  out_dir=args.out, name=name, command=command,
                                  progress=not args.no_progress)
    for dataset in args.datasets:
        print(f"\n{dataset}: student test accuracy (%)\n")
        print(accuracy_table(result["summary"], dataset))
    t = result["timing"]
    print(f"\n{t['student_runs']} student runs, {t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU; "
          f"results in {args.out}/{name}.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run; errors raised on purpose by pidkit
    are printed as one line with exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except PIDKitError as exc:
        print(f"nuisance_teacher.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
