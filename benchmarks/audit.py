"""Audit time: 10,000 samples, 3 layer pairs of 4,096-dimensional features, 10 classes.

Goal (issue 7): under 30 s on 2 cores for the paper's estimator (L2-normalise, PCA 10,
KMeans 10, exact BROJA). Rows:

- ``audit_features`` on features held in memory: point estimates only (the preset's float64
  projection, and float32), then with bootstrap intervals (``n_boot`` = 100, the default);
- ``audit`` on two models whose three hooked layers output 4,096 features each, streamed in
  batches of 256 through forward hooks (the whole path a user runs);
- the anchor, timed in the same run: scikit-learn's PCA + KMeans fitted once on each of the six
  feature matrices, the least any discretising audit must do.

Also writes ``docs/figures/audit_example.png`` (the figure of the point-estimate audit) for the
guide ``docs/audit.md``. Run from the repository root: ``python benchmarks/audit.py``.

``python benchmarks/audit.py --curves`` instead trains digits students (no distillation,
FitNets, RID) from one trained teacher with an :class:`~pidkit_distill.AuditCallback` and writes
the over-training curves to ``docs/figures/audit_curves.png`` and
``benchmarks/results/audit_curves.json`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import RESULTS_DIR, Timer, blas_threads, environment, format_seconds, write_results

N, DIM, PAIRS, CLASSES = 10_000, 4096, 3, 10
THREADS = 2
ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "docs" / "figures" / "audit_example.png"
CURVES = ROOT / "docs" / "figures" / "audit_curves.png"


def synthetic_features(seed: int = 0):
    """Labels and per-pair teacher/student features (float32).

    A latent class ``c`` is uniform on 10 values; the label is ``y = c`` with probability 0.8,
    else uniform (so I(Y;c) is about 2.07 bits). Each teacher layer shows ``c`` as well-separated
    class means in a random 16-dimensional subspace plus isotropic noise. The student layer of
    pair ``k`` shows ``c`` for a share (k+1)/4 of the samples and a random class otherwise, so it
    holds a garbled copy of the teacher's knowledge: Red = I(Y;S) < I(Y;T), growing with k.
    """
    rng = np.random.default_rng(seed)
    c = rng.integers(0, CLASSES, N)
    y = np.where(rng.random(N) < 0.8, c, rng.integers(0, CLASSES, N))

    def layer(codes):
        basis = rng.normal(size=(16, DIM)).astype(np.float32) / 4
        means = rng.normal(size=(CLASSES, 16)).astype(np.float32) * 1.5
        return means[codes] @ basis + rng.standard_normal((N, DIM), dtype=np.float32)

    teacher, student = [], []
    for k in range(PAIRS):
        share = (k + 1) / (PAIRS + 1)
        teacher.append(layer(c))
        student.append(layer(np.where(rng.random(N) < share, c, rng.integers(0, CLASSES, N))))
    return y, teacher, student


def models(teacher_feats, student_feats):
    """Two torch models with three hooked 4,096-wide layers, for the streamed ``audit``."""
    import torch

    class Taps(torch.nn.Module):
        def __init__(self, seed: int):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.layers = torch.nn.ModuleList(torch.nn.Linear(64, DIM) for _ in range(PAIRS))
            for layer in self.layers:
                torch.nn.init.normal_(layer.weight, generator=g)
            self.head = torch.nn.Linear(DIM, CLASSES)

        def forward(self, x):
            return self.head(sum(torch.tanh(layer(x)) for layer in self.layers))

    return Taps(0), Taps(1)


def anchor(features) -> float:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    with Timer() as t:
        for x in features:
            z = PCA(n_components=10, random_state=0).fit_transform(x)
            KMeans(n_clusters=10, n_init="auto", random_state=0).fit(z)
    return t.seconds


def curves() -> int:
    """Over-training audits of three digits students distilled from one trained teacher."""
    import json

    import torch

    import pidkit_distill as pd

    torch.set_num_threads(THREADS)
    train, test = pd.data.load_digits()
    torch.manual_seed(0)
    teacher = pd.models.get_model("digits_cnn", width=16)
    opt = torch.optim.Adam(teacher.parameters(), 1e-2)
    x, y = train.tensors
    for _ in range(8):
        for idx in torch.randperm(len(y)).split(64):
            loss = torch.nn.functional.cross_entropy(teacher(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    runs = {}
    settings = {"none": {}, "fitnets": {}, "rid": {"warmup": 2, "cycle": 2, "ratio": 0.5}}
    with blas_threads(THREADS) as blas:
        for method, extra in settings.items():
            torch.manual_seed(1)
            student = pd.models.get_model("digits_cnn", width=4)
            cb = pd.AuditCallback(test, every=1, n_boot=25, layers=[("layer3", "layer3")],
                                  add_metrics=False)
            pd.distill(teacher, student, train, method=method, epochs=12, batch_size=64,
                       lr=0.05, layers=[("layer3", "layer3")], callbacks=[cb],
                       progress=False, **extra)
            runs[method] = cb.history
    fig = pd.plot_curves(runs, path=CURVES)
    fig.clf()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"name": "audit_curves", **environment(("pidkit", "numpy", "torch", "sklearn")),
               "blas": blas, "runs": {m: h.to_dict() for m, h in runs.items()}}
    (RESULTS_DIR / "audit_curves.json").write_text(json.dumps(payload, indent=1) + "\n")
    for method, h in runs.items():
        s = {q: h.series(q)["value"] for q in ("redundancy", "unique_teacher", "mi_student")}
        print(method, {q: [round(v, 3) for v in vals] for q, vals in s.items()})
    return 0


def main() -> int:
    import torch

    from pidkit_distill.audit import audit, audit_features

    torch.set_num_threads(THREADS)
    y, teacher, student = synthetic_features()
    names = [(f"t{k}", f"s{k}") for k in range(PAIRS)]
    rows, reports = [], {}
    load = os.getloadavg()[0]
    with blas_threads(THREADS) as blas:
        cpu = time.process_time()
        anchor_s = anchor(teacher + student)
        anchor_cpu = time.process_time() - cpu
        print(f"anchor: {anchor_s:.1f} s", flush=True)
        cases = [("audit_features, point estimates", {"ci": None}),
                 ("audit_features, point estimates, float32 projection",
                  {"ci": None, "estimator_options": {"dtype": "float32"}}),
                 ("audit_features, n_boot=100 (default)", {})]
        for label, options in cases:
            cpu = time.process_time()
            with Timer() as t:
                reports[label] = audit_features(y, teacher, student, layers=names, seed=0,
                                                **options)
            rows.append({"case": label, "seconds": t.seconds,
                         "cpu_seconds": time.process_time() - cpu})
            print(f"{label}: {t.seconds:.1f} s", flush=True)
        t_model, s_model = models(teacher, student)
        x = torch.randn(N, 64, generator=torch.Generator().manual_seed(0))
        labels = torch.as_tensor(y)
        layers = [(f"layers.{k}", f"layers.{k}") for k in range(PAIRS)]
        cpu = time.process_time()
        with Timer() as t:
            reports["audit"] = audit(t_model, s_model, (x, labels), layers, ci=None, seed=0)
        rows.append({"case": "audit (models, hooks, streamed), point estimates",
                     "seconds": t.seconds, "cpu_seconds": time.process_time() - cpu})
    for row in rows:
        row["time"] = format_seconds(row["seconds"])
        row["vs_anchor"] = row["seconds"] / anchor_s
        row["goal_30s"] = "met" if row["seconds"] < 30 else "missed"
    rows.append({"case": "anchor: sklearn PCA(10) + KMeans(10) on the 6 matrices",
                 "seconds": anchor_s, "cpu_seconds": anchor_cpu,
                 "time": format_seconds(anchor_s), "vs_anchor": 1.0, "goal_30s": "-"})
    for row in rows:
        row["cpu"] = format_seconds(row["cpu_seconds"])
    point = reports["audit_features, n_boot=100 (default)"]
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    from pidkit_distill.audit_report import figure_png

    FIGURE.write_bytes(figure_png(point.plot(title="Audit of a synthetic teacher-student "
                                                    "pair (paper estimator, 95% intervals)")))
    print(point)
    write_results(
        "audit", rows, blas=blas,
        title="Knowledge audit time: 10,000 samples, 3 layer pairs of 4,096 features",
        columns=["case", "time", "cpu", "vs_anchor", "goal_30s"],
        headers={"time": "wall time", "cpu": "CPU time (all threads)",
                 "vs_anchor": "wall / anchor", "goal_30s": "goal < 30 s (wall)"},
        notes=[f"estimator 'paper' (L2-normalise, PCA 10, KMeans 10, exact BROJA), "
               f"{CLASSES} classes; torch threads {THREADS}; synthetic float32 features "
               "(generation not timed)",
               "intervals: multinomial bootstrap of each count table, one BROJA solve per "
               "replicate and pair; n_perm=0 (no shuffle null)",
               "anchor: the PCA + KMeans fits alone, same data, same run",
               f"1-minute load average at the start: {load:.1f} on "
               f"{os.cpu_count()} logical cores (the machine was shared with other jobs; "
               "wall times above the CPU time / threads show the contention)"],
        extra={"report_with_intervals": point.to_dict(),
               "report_streamed": reports["audit"].to_dict()},
        packages=("pidkit", "numpy", "scipy", "torch", "sklearn", "threadpoolctl"))
    return 0


if __name__ == "__main__":
    sys.exit(curves() if "--curves" in sys.argv[1:] else main())
