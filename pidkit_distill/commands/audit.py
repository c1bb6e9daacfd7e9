"""``pidkit-distill audit``: knowledge audit of saved checkpoints (Red, Uni, Syn per layer pair).

Example::

    pidkit-distill audit --dataset digits --teacher digits_cnn --teacher-kw width=16 \\
        --teacher-weights teacher.pt --student digits_cnn --student-kw width=4 \\
        --student-weights runs/rid/checkpoint.pt --layer layer3=layer3 --report audit/

Weights are read with ``torch.load(weights_only=True)``: a plain ``state_dict`` file, or a
trainer checkpoint (``Trainer.save_checkpoint``; its student weights are used). The teacher
needs ``--teacher-weights`` or ``--untrained-teacher``, the student ``--student-weights`` or
``--untrained-student`` (not neither: that would audit a randomly initialised network nobody
asked for). Missing, unreadable or mismatched weight files
and model options the model does not accept are reported in one line (exit status 2).
Models are named as in :func:`pidkit_distill.models.get_model`: a registered name,
``wrn-D-W``, or an importable factory ``package.module:function``.
"""

from __future__ import annotations

import argparse

from .train import _kv, _pair, _seed

NAME = "audit"
HELP = "knowledge audit of a teacher and a student: Red, Uni, Syn per layer pair, with CIs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help="digits, mnist1d, cifar10, cifar100")
    p.add_argument("--root", help="folder with the CIFAR files (never downloaded)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="split to audit (default: test, as in the paper)")
    p.add_argument("--fit-split", choices=("same", "train", "test"), default="same",
                   help="split the discretisers are fitted on (default: the audited split)")
    p.add_argument("--teacher", required=True, help="teacher model name or module:function")
    p.add_argument("--teacher-kw", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--teacher-weights", help="teacher state_dict file (weights only); "
                   "required unless --untrained-teacher")
    p.add_argument("--untrained-teacher", action="store_true",
                   help="random-init teacher (seed --teacher-seed) instead of weights")
    p.add_argument("--teacher-seed", type=_seed, default=0)
    p.add_argument("--student", required=True, help="student model name or module:function")
    p.add_argument("--student-kw", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--student-weights", help="student state_dict or trainer checkpoint; "
                   "required unless --untrained-student")
    p.add_argument("--untrained-student", action="store_true",
                   help="random-init student (seed --seed) instead of weights")
    p.add_argument("--layer", type=_pair, action="append", metavar="T=S",
                   help="teacher=student layer pair (repeat; PATH:channels_last reads "
                   "tokens (N, T, C) as C channels); default: innermost feature layers")
    p.add_argument("--estimator", default="paper",
                   help="paper, paper-cifar10, paper-cifar100, discretize, gaussian")
    p.add_argument("--option", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="estimator setting, e.g. n_clusters=20")
    p.add_argument("--measure", default="broja")
    p.add_argument("--base", type=float, default=2.0, help="2: bits, 2.718281828459045: nats")
    p.add_argument("--ci", type=float, default=0.95, help="interval level; 0 for none")
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--n-perm", type=int, default=100,  # = audits.run.DEFAULT_N_PERM
                   help="label shuffles of the permutation null (chance levels, p-values); 0: none")
    p.add_argument("--interval", choices=("normal", "basic", "percentile"),  # engine's INTERVALS
                   default="normal",  # = audits.run.DEFAULT_INTERVAL
                   help="bootstrap interval kind (see pidkit.estimate.uncertainty)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--max-fit-samples", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--report", metavar="DIR", help="write JSON, CSV, PNG, Markdown and HTML here")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from pidkit.validation import fail

    from .. import data
    from ..audits import audit
    from ..models import resolve_device
    from ._flags import flag_errors, flags_of
    from ._models import build_model, build_teacher, load_into, load_weights

    if args.report and Path(args.report).exists() and not Path(args.report).is_dir():
        raise fail("--report", f"{args.report} is a file, not a folder", "Pass a folder path "
                   "(created if missing)")          # checked now, not after the audit ran
    with flag_errors(flags_of(args, name="dataset")):
        train, test = data.get_dataset(args.dataset, args.root, seed=args.seed)
    k = data.num_classes_of([train, test])
    split = {"train": train, "test": test}
    teacher = build_teacher(args, k)
    if args.untrained_student == bool(args.student_weights):
        raise fail("--student-weights", "and --untrained-student were both given" if
                   args.student_weights else "is missing: the student would be a randomly "
                   "initialised network", "Pass --student-weights FILE (a state_dict or "
                   "trainer checkpoint), or --untrained-student to audit a random student on "
                   "purpose (seeded by --seed)")
    with torch.random.fork_rng(devices=[]):       # the student's initial weights follow --seed
        torch.manual_seed(args.seed)
        student = build_model(args.student, k, args.student_kw, "student")
    if args.student_weights:
        load_into(student, load_weights(args.student_weights, "student"), args.student_weights,
                  "student", args.student)
    device = resolve_device(args.device, "--device")
    teacher.to(device)
    student.to(device)
    fit_data = None if args.fit_split == "same" else split[args.fit_split]
    options = dict(args.option)
    with flag_errors(flags_of(args, options, layers="layer", estimator_options="option",
                              fit_data="fit_split", data="split")):
        report = audit(
            teacher, student, split[args.split], args.layer, estimator=args.estimator,
            fit_data=fit_data, ci=args.ci or None, n_boot=args.n_boot, n_perm=args.n_perm,
            interval=args.interval, seed=args.seed, measure=args.measure, base=args.base,
            estimator_options=options, max_fit_samples=args.max_fit_samples,
            num_classes=k, batch_size=args.batch_size, device=device,
            metadata={"dataset": args.dataset, "split": args.split, "teacher_name": args.teacher,
                      "student_name": args.student, "teacher_weights": args.teacher_weights,
                      "student_weights": args.student_weights,
                      "untrained_teacher": args.untrained_teacher,
                      "untrained_student": args.untrained_student})
    if args.report:
        report.save(args.report)
    print(report.to_json() if args.json else report)
    return 0
