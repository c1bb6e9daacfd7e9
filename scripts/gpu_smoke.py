"""GPU smoke test of pidkit_distill: run on a lent device in about a minute.

    python scripts/gpu_smoke.py --device cuda            # on the device machine
    python scripts/gpu_smoke.py --device cpu --quick     # a quick check anywhere

Checks (each prints PASS/FAIL; exit status 1 if any fails):

1. the RID phase-1 and phase-2 losses of a WRN-40-2 -> WRN-16-1 pair (paper's CIFAR-10 setting)
   on one batch agree between the device and the CPU (float32, TF32 off);
2. every method trains one epoch on the device with finite losses;
3. RID with the Algorithm-1 schedule (warm-up, teacher and student phases) in float32 and with
   mixed precision (float16 + grad scaling on CUDA, bfloat16 elsewhere);
4. a checkpoint round trip: resuming gives the same weights as an uninterrupted run;
5. timing: seconds per epoch and images per second for each phase.

Data are random CIFAR-shaped tensors (or ``--cifar-root`` with the real files). Results go to
``--out`` (JSON) as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from pidkit_distill import data, models
from pidkit_distill.features import forward_with_features
from pidkit_distill.losses import Batch, make_loss
from pidkit_distill.train import Trainer

RESULTS: list[dict] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}", flush=True)


PAIR = {"teacher": "wrn-40-2", "student": "wrn-16-1", "size": 32}


def random_cifar(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    size = PAIR["size"]
    return TensorDataset(torch.randn(n, 3, size, size, generator=g), torch.arange(n) % 10)


def loss_parity(device: torch.device, batch_size: int) -> None:
    torch.manual_seed(0)
    teacher = models.untrained_teacher(PAIR["teacher"], seed=0)
    student = models.get_model(PAIR["student"])
    layers = list(teacher.feature_layers)
    x = torch.randn(batch_size, 3, PAIR["size"], PAIR["size"])
    y = torch.arange(batch_size) % 10
    with torch.no_grad():
        shapes_t = [tuple(f.shape[1:]) for f in forward_with_features(teacher, x[:2], layers)[1]]
        shapes_s = [tuple(f.shape[1:])
                    for f in forward_with_features(student.eval(), x[:2], layers)[1]]
    loss = make_loss("rid", shapes_t, shapes_s, 10)
    values = {}
    for dev in (torch.device("cpu"), device):
        t, s, lf = teacher.to(dev), student.to(dev).eval(), loss.to(dev).eval()
        xb, yb = x.to(dev), y.to(dev)
        with torch.no_grad():
            lt, ft = forward_with_features(t, xb, layers)
            ls, fs = forward_with_features(s, xb, layers)
            b = Batch(y=yb, student_logits=ls, teacher_logits=lt, student_features=fs,
                      teacher_features=ft)
            values[dev.type] = (float(lf.teacher_loss(b, distill=True)[0]),
                                float(lf.student_loss(b)[0]))
    cpu, dev = values["cpu"], values[device.type]
    rel = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu, dev, strict=True))
    check(f"RID losses device == CPU ({PAIR['teacher']} -> {PAIR['student']})", rel < 1e-4,
          f"phase1 {dev[0]:.6g} vs {cpu[0]:.6g}, phase2 {dev[1]:.6g} vs {cpu[1]:.6g}, "
          f"max rel diff {rel:.2e}")


def make_trainer(device, train, test, epochs, batch_size, **kw) -> Trainer:
    torch.manual_seed(0)
    teacher = models.untrained_teacher(PAIR["teacher"], seed=0)
    student = models.get_model(PAIR["student"])
    opts = dict(method="rid", epochs=epochs, warmup=1, cycle=2, ratio=0.5, lr=0.05,
                batch_size=batch_size, device=str(device), progress=False, seed=1)
    opts.update(kw)
    if opts["method"] != "rid":     # one-stage methods have no schedule (they warn if given)
        for key in ("warmup", "cycle", "ratio"):
            opts.pop(key)
    return Trainer(teacher, student, train, val_data=test, **opts)


def sync_free_steps(device: torch.device, bs: int) -> None:
    """CUDA's sync debug mode warns at every device-to-host synchronisation: the number of
    warnings in an epoch of 8 steps minus that of an epoch of 4 steps, over 4, is the number of
    synchronisations per training step. Expected: 0, except for the PID regulariser with the
    BROJA measure, whose ``torch.linalg.eigvalsh`` checks its convergence flag on the host
    once per step (torch has no variant without that check)."""
    import warnings

    cases = [("rid", {}, 0, 0), ("rid", {}, 1, 0), ("vid", {}, 0, 0),
             ("pid", {"measure": "broja"}, 0, 1), ("pid", {"measure": "mmi"}, 0, 0)]
    for method, options, epoch, expected in cases:
        counts = []
        for steps in (4, 8):
            tr = make_trainer(device, random_cifar(steps * bs, 2), None, 2, bs, method=method,
                              warmup=0, method_options=options)
            tr.train_epoch(epoch)          # warm-up: cuDNN autotuning, allocator growth
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    tr.train_epoch(epoch)
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            counts.append(sum("synchroniz" in str(w.message) for w in caught))
        per_step = (counts[1] - counts[0]) / 4
        check(f"host syncs per step: {method} {options or ''} {tr.phase_of(epoch)} phase",
              per_step <= expected, f"{per_step:g} per step (expected {expected}); per epoch "
              f"of 4 / 8 steps: {counts}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: WRN-10-2 -> WRN-10-1 on 16x16 inputs (CPU check)")
    ap.add_argument("--cifar-root", help="use real CIFAR-10 files from this folder")
    ap.add_argument("--out", default="gpu_smoke.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    n, bs, epochs = (32, 16, 3) if args.quick else (4096, 128, 3)
    if args.quick:
        PAIR.update(teacher="wrn-10-2", student="wrn-10-1", size=16)
    info = {"torch": torch.__version__, "device": str(device), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    print(json.dumps(info), flush=True)
    if args.cifar_root:
        train, test = data.load_cifar(args.cifar_root, 10)
        train = data.subset_per_class(train, n // 10)
        test = data.subset_per_class(test, max(n // 40, 1))
    else:
        train, test = random_cifar(n, 0), random_cifar(max(n // 4, bs), 1)

    loss_parity(device, 8 if args.quick else 64)

    for method in ("none", "kd", "fitnets", "vid", "ted", "rid", "pid"):
        try:   # RID: one teacher and one student epoch
            tr = make_trainer(device, train, test, 2 if method == "rid" else 1, bs,
                              method=method, warmup=0,
                              method_options={"measure": "mmi"} if method == "pid" else {})
            hist = tr.fit()
            check(f"method {method} trains one epoch", all(
                torch.isfinite(torch.tensor(h["train_loss"])) for h in hist),
                f"train_loss {hist[-1]['train_loss']:.4g}, {hist[-1]['time_s']:.2f}s")
        except Exception as exc:  # report and continue with the other checks
            check(f"method {method} trains one epoch", False, repr(exc))

    if device.type == "cuda":
        sync_free_steps(device, bs)

    timings = {}
    for amp in (False, True):
        tr = make_trainer(device, train, test, epochs, bs, amp=amp)
        hist = tr.fit()
        phases = [h["phase"] for h in hist]
        finite = all(torch.isfinite(torch.tensor(h["train_loss"])) for h in hist)
        check(f"RID schedule amp={amp}", phases == ["warmup", "teacher", "student"] and finite,
              f"phases {phases}, losses {[round(h['train_loss'], 4) for h in hist]}")
        for h in hist:
            timings[f"amp={amp} {h['phase']}"] = {"s_per_epoch": round(h["time_s"], 3),
                                                   "img_per_s": round(n / h["time_s"], 1)}

    # Resume check under deterministic kernels: a difference is then a resume bug, not
    # floating-point nondeterminism amplified by training.
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    with tempfile.TemporaryDirectory() as tmp:
        full = make_trainer(device, train, test, 3, bs)
        full.fit()
        part = make_trainer(device, train, test, 3, bs, out_dir=tmp)

        class Stop:
            def on_epoch_end(self, trainer, epoch, metrics):
                trainer.stop = epoch == 1

        part.callbacks.append(Stop())
        part.fit()
        resumed = make_trainer(device, train, test, 3, bs)
        resumed.fit(resume=Path(tmp) / "checkpoint.pt")
        diffs = {f"{owner}.{name}": float((a - b).abs().max())
                 for owner in ("student", "loss_fn")
                 for (name, a), b in zip(getattr(full, owner).state_dict().items(),
                                         getattr(resumed, owner).state_dict().values(),
                                         strict=True) if a.is_floating_point()}
        worst = max(diffs, key=diffs.get)
        check("resume == uninterrupted (max abs weight diff, deterministic kernels)",
              diffs[worst] < 1e-4, f"{diffs[worst]:.2e} in {worst}")
    torch.use_deterministic_algorithms(False)

    print(f"\ntimings (random CIFAR-shaped data, batch {bs}, {n} images/epoch):")
    for k, v in timings.items():
        print(f"  {k:28s} {v['s_per_epoch']:8.3f} s/epoch  {v['img_per_s']:10.1f} img/s")
    Path(args.out).write_text(json.dumps({"info": info, "checks": RESULTS,
                                          "timings": timings}, indent=1))
    failed = [r["check"] for r in RESULTS if not r["ok"]]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
