"""``pidkit-distill train``: distil a student from a teacher by name, on a data set by name.

Example::

    pidkit-distill train --dataset digits --teacher digits_cnn --teacher-weights t.pt \\
        --student digits_cnn --student-kw width=8 --method rid --epochs 12 --out runs/rid

A ``--teacher`` needs either ``--teacher-weights`` (a ``state_dict`` file, read with
``torch.load(weights_only=True)``) or ``--untrained-teacher`` (a random frozen teacher, on
purpose): without either the command stops with an error rather than distil from a randomly
initialised network. Missing, unreadable or mismatched weight files and model options the
model does not accept are reported in one line (exit status 2), naming the flag.
"""

from __future__ import annotations

import argparse
import json

NAME = "train"
HELP = ("distil a student from a frozen teacher (RID, KD, FitNets, VID, TED, the Gaussian PID "
        "or exact BROJA regulariser, or none)")


def _kv(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _seed(text: str) -> int:
    """A seed for torch, numpy and scikit-learn alike: an integer in ``[0, 2**32)``
    (:func:`pidkit.validation.check_seed`)."""
    from pidkit.errors import PIDKitError
    from pidkit.validation import check_seed

    try:
        return check_seed(int(text), maximum=2**32 - 1)
    except (ValueError, PIDKitError) as exc:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}"
                                         ) from exc


def _pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected TEACHER_LAYER=STUDENT_LAYER, got {text!r}")
    t, s = (part.strip() for part in text.split("=", 1))
    if not t or not s:          # an empty module path names the whole model (its logits)
        raise argparse.ArgumentTypeError(f"expected two module names, e.g. layer3=layer3, got "
                                         f"{text!r}")
    return t, s


def _grad_clip(text: str) -> float | None:
    """``--grad-clip``: a maximum gradient norm, or ``none`` (also ``off``) for no clipping
    (``grad_clip=None``). The norm's range is checked by the trainer (named ``--grad-clip``)."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, or 'none' for no clipping, "
                                         f"got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help="digits, mnist1d, cifar10, cifar100")
    p.add_argument("--root", help="folder with the CIFAR files (never downloaded)")
    p.add_argument("--samples-per-class", type=int, help="subsample the training set")
    p.add_argument("--augment", action="store_true", help="CIFAR crop + flip")
    p.add_argument("--teacher", help="teacher model name (see pidkit_distill.models)")
    p.add_argument("--teacher-kw", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--teacher-weights", help="state_dict file for the teacher (weights only); "
                   "required with --teacher unless --untrained-teacher")
    p.add_argument("--untrained-teacher", action="store_true",
                   help="random-init frozen teacher (seed --teacher-seed) instead of weights")
    p.add_argument("--teacher-seed", type=_seed, default=0)
    p.add_argument("--nuisance-channels", type=int, default=0,
                   help="append this many random channels G to each teacher layer")
    p.add_argument("--nuisance-kind", choices=("noise", "random_features"), default="noise",
                   help="G: fresh Gaussian noise, or a fixed random projection of the input")
    p.add_argument("--nuisance-scale", type=float, default=1.0)
    p.add_argument("--student", required=True, help="student model name")
    p.add_argument("--student-kw", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--method", default="rid",
                   help="rid (default), kd, fitnets, vid, ted, pid, broja, none, or a name "
                        "registered with register_method")
    p.add_argument("--option", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="method option, e.g. lambda2=10")
    p.add_argument("--layer", type=_pair, action="append", metavar="T=S",
                   help="teacher=student layer pair (repeat; PATH:channels_last reads "
                   "tokens (N, T, C) as C channels); default: feature_layers")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--teacher-lr", type=float)
    # the names of pidkit_distill.optim.OPTIMIZERS, spelt out: the parser must not import torch
    p.add_argument("--optimizer", default="sgd", choices=["adam", "adamw", "sgd"])
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", default="multistep", choices=["multistep", "cosine", "constant"])
    p.add_argument("--milestones", type=int, nargs="*", default=[])
    p.add_argument("--gamma", type=float, default=0.2)
    p.add_argument("--warmup", type=int, help="RID warm-up epochs n_w (default: scaled to "
                   "--epochs with the paper's proportions, n_w = q = epochs/10, r = 1/4)")
    p.add_argument("--cycle", type=int, help="RID cycle length q (default: scaled)")
    p.add_argument("--ratio", type=float, help="RID share r of teacher epochs per cycle "
                   "(default 0.25)")
    p.add_argument("--grad-clip", type=_grad_clip, default=100.0, metavar="NORM",
                   help="clip each step's gradient norm to NORM (default 100, the authors' "
                   "setting); 'none' turns clipping off")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the models' initial weights, the data order, the digits "
                   "train/test split and --samples-per-class (MNIST-1D and CIFAR have fixed "
                   "splits)")
    p.add_argument("--out", help="output folder (metrics.csv/json, checkpoint.pt); one that "
                   "already holds a run's files needs --resume (a checkpoint inside it) or "
                   "--overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out folder that holds an earlier run")
    p.add_argument("--resume", help="checkpoint to resume from")
    p.add_argument("--save-student", help="write the student's state_dict here at the end")
    p.add_argument("--no-progress", action="store_true")


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before training, outputs that would destroy a file the run depends on or an
    earlier run: ``--save-student`` onto ``--teacher-weights``, ``--resume`` or the run's own
    checkpoint, and an ``--out`` folder holding an earlier run's files unless ``--resume``
    names a checkpoint inside it or ``--overwrite`` is given
    (:func:`pidkit_distill.train.check_run_folder`, the rule of the Python API); warn that
    ``--resume`` without ``--out`` saves nothing of the continued
    run."""
    from pathlib import Path

    from pidkit.validation import check_output_file, fail

    from ..train import CLI_SPELLING, check_run_folder

    out = Path(args.out) if args.out else None
    if args.save_student:
        target = Path(args.save_student).resolve()
        kept = [(flag, Path(path)) for flag, path in (
            ("--teacher-weights", args.teacher_weights), ("--resume", args.resume),
            ("--out", out / "checkpoint.pt" if out else None)) if path]
        for flag, path in kept:
            if path.resolve() == target:
                raise fail("--save-student", f"{args.save_student} is the file of {flag}, "
                           "which it would overwrite", "Save the student to another file")
        check_output_file(args.save_student, "--save-student", "student.pt")
    if args.resume and out is None:
        import warnings

        warnings.warn(f"--resume without --out: the continued run writes no checkpoint and no "
                      f"metrics files (only --save-student and the final metrics line). Pass "
                      f"--out {Path(args.resume).parent} to continue the run in its folder",
                      UserWarning, stacklevel=2)
    # the trainer's own rule (distill checks it again, naming out_dir): here with the flags
    check_run_folder(args.out, args.resume, args.overwrite, spelling=CLI_SPELLING)


def run(args: argparse.Namespace) -> int:
    import torch

    from pidkit.validation import fail

    from .. import data, models
    from ..train import distill
    from ._flags import flag_errors, flags_of
    from ._models import build_model, build_teacher

    with flag_errors(flags_of(args, name="dataset", n_per_class="samples_per_class")):
        train, test = data.get_dataset(args.dataset, args.root, seed=args.seed,
                                       samples_per_class=args.samples_per_class,
                                       augment=args.augment)
    k = data.num_classes_of([train, test])
    torch.manual_seed(args.seed)  # the models' initial weights follow --seed
    teacher = build_teacher(args, k)
    if args.nuisance_channels:
        if teacher is None:
            raise fail("--nuisance-channels", "needs --teacher", "Name the teacher model with "
                       "--teacher NAME (and its --teacher-weights)")
        with flag_errors(flags_of(args, channels="nuisance_channels", kind="nuisance_kind",
                                  scale="nuisance_scale", seed="teacher_seed")):
            teacher = models.NuisanceTeacher(teacher, channels=args.nuisance_channels,
                                             kind=args.nuisance_kind,
                                             scale=args.nuisance_scale, seed=args.teacher_seed)
    student = build_model(args.student, k, args.student_kw, "student")
    _check_outputs(args)
    options = dict(args.option)
    with flag_errors(flags_of(args, options, out_dir="out", method_options="option",
                              layers="layer", checkpoint="resume")):
        result = distill(
            teacher, student, train, method=args.method, layers=args.layer, val_data=test,
            resume=args.resume, method_options=options, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, teacher_lr=args.teacher_lr,
            optimizer=args.optimizer, weight_decay=args.weight_decay, schedule=args.schedule,
            milestones=tuple(args.milestones), gamma=args.gamma, warmup=args.warmup,
            cycle=args.cycle, ratio=args.ratio, grad_clip=args.grad_clip, amp=args.amp,
            device=args.device, seed=args.seed, out_dir=args.out, overwrite=args.overwrite,
            progress=not args.no_progress)
    if args.save_student and result.trainer.is_main:
        torch.save(result.student.state_dict(), args.save_student)
    if result.trainer.is_main:
        print(json.dumps(result.final))
    return 0
