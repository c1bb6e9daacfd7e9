"""CIFAR-10 nuisance-teacher run for a lent GPU: the paper's WRN-40-2 -> WRN-16-1 setting on a
class-balanced subset with a shortened schedule, sized for a 10-minute device run.

The full paper configuration is ``SETUPS["cifar10"]`` of ``benchmarks/nuisance/setups.py`` (300
student epochs, SGD lr 0.05 x0.2 at 150/200, RID n_w = q = 30, r = 1/4, lambda = (1, 10), VID
100, three layer pairs, no augmentation); run it with
``python benchmarks/nuisance_teacher.py --datasets cifar10 --root DIR --device cuda --workers 1``.
This script keeps every ratio of that schedule and scales its length::

    python benchmarks/gpu_cifar10.py --root /data/cifar --device cuda            # ~5-8 min
    python benchmarks/gpu_cifar10.py --synthetic /tmp/fake --device cpu --tiny   # pipeline check

It prints the student accuracies next to the paper's (no distillation 0.72; RID 0.81 / 0.66 and
VID 0.81 / 0.40 with the trained / untrained teacher) and writes
``benchmarks/results/nuisance_cifar10_gpu.{json,md}`` plus figures. ``--synthetic DIR`` first
writes a random CIFAR-format file set (binary version) into DIR and uses it as the root: the
numbers are then meaningless, only the pipeline is checked.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path


def write_synthetic_cifar(root: Path, n_train: int = 500, n_test: int = 200,
                          seed: int = 0) -> Path:
    """Random images and labels in the official CIFAR-10 binary layout under ``root``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)

    def records(n):
        labels = np.arange(n, dtype=np.uint8) % 10
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        return np.concatenate([labels[:, None], pixels], axis=1).tobytes()

    per = -(-n_train // 5)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(records(per))
    (folder / "test_batch.bin").write_bytes(records(n_test))
    return root


def shortened(setup, *, root: str, per_class: int, teacher_epochs: int, epochs: int,
              amp: bool):
    """The paper's schedule scaled to ``epochs`` (same ratios) on ``per_class`` images/class."""
    def at(fracs, n):
        return tuple(max(1, round(f * n)) for f in fracs)

    q = max(1, round(epochs / 10))
    return replace(
        setup, root=root, train_per_class=per_class, teacher_epochs=teacher_epochs,
        epochs=epochs, rid_schedule={"warmup": q, "cycle": q, "ratio": 0.25},
        audit_every=max(1, epochs // 3),
        train_options={**setup.train_options, "milestones": at((0.5, 2 / 3), epochs),
                       "amp": amp},
        teacher_options={**setup.teacher_options,
                         "milestones": at((0.3, 0.6, 0.8), teacher_epochs), "amp": amp})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", help="folder holding cifar-10-batches-bin/ or -py/")
    src.add_argument("--synthetic", help="write a random CIFAR-format set here and use it")
    p.add_argument("--device", default="cuda")
    p.add_argument("--per-class", type=int, default=1000, help="training images per class")
    p.add_argument("--teacher-epochs", type=int, default=30)
    p.add_argument("--epochs", type=int, default=30, help="student epochs")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--methods", nargs="+", default=["none", "kd", "vid", "rid"])
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    p.add_argument("--tiny", action="store_true",
                   help="pipeline check: 2 epochs, 20 images per class, no probes")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--name", default="nuisance_cifar10_gpu")
    args = p.parse_args(argv)

    from nuisance.report import accuracy_table
    from nuisance.runner import run_benchmark
    from nuisance.setups import SETUPS

    root = args.root
    if args.synthetic:
        root = str(write_synthetic_cifar(Path(args.synthetic)))
    per_class, t_epochs, epochs = args.per_class, args.teacher_epochs, args.epochs
    if args.tiny:
        per_class, t_epochs, epochs = 20, 2, 2
    setup = shortened(SETUPS["cifar10"], root=root, per_class=per_class,
                      teacher_epochs=t_epochs, epochs=epochs, amp=args.amp)
    start = time.perf_counter()
    result = run_benchmark([setup], seeds=args.seeds, methods=args.methods,
                           teachers=["trained", "untrained"], workers=1,
                           audit_teachers=["trained", "untrained"], device=args.device,
                           probe_samples=0 if args.tiny else 2000, out_dir=args.out,
                           name=args.name, command=" ".join(["python", *sys.argv]))
    teachers = result["teachers"]["cifar10"]
    paper = result["paper"]
    print(f"\nCIFAR-10 subset ({per_class}/class), teacher {t_epochs} epochs, students "
          f"{epochs} epochs, device {args.device}, {time.perf_counter() - start:.0f} s")
    print(f"teacher test accuracy: trained {teachers['trained']['test_acc']:.3f} "
          f"(paper 0.84), untrained {teachers['untrained']['test_acc']:.3f}")
    print(accuracy_table(result["summary"], "cifar10"))
    rows = {(r["teacher"], r["method"]): r["mean"] for r in result["summary"]}
    print("\n| quantity | this run | paper (full schedule) |\n|---|---|---|")
    for key, label in (("none", ("-", "none")), ("rid_trained", ("trained", "rid")),
                       ("rid_untrained", ("untrained", "rid")),
                       ("vid_trained", ("trained", "vid")),
                       ("vid_untrained", ("untrained", "vid"))):
        ours = rows.get(label)
        print(f"| {key} | {'n/a' if ours is None else f'{ours:.3f}'} | {paper[key]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
