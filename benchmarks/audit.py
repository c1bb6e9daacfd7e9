"""Audit time: 10,000 samples, 3 layer pairs of 4,096-dimensional features, 10 classes.

Goal (issue 7): under 30 s on 2 cores for the paper's estimator (L2-normalise, PCA 10,
KMeans 10 with the audits' 10 starts, exact BROJA), with the defaults. Cases (``--cases``):

- ``point``: ``audit_features`` on features held in memory, point estimates only (``ci=None``);
- ``float32``: the same with ``estimator_options={"dtype": None}``: the projection in the
  features' own dtype (float32), the previous default (results then depend on the dtype);
- ``boot``: ``audit_features`` with the defaults (``"normal"`` bootstrap intervals,
  ``n_boot=100``, and the permutation null, ``n_perm=100``);
- ``model``: ``audit`` with the defaults on two models whose three hooked layers output 4,096
  features each, streamed in batches of 256 through forward hooks (the whole path a user runs);
- ``forward``: the two models' forward passes alone over the same data (the model path's
  floor);
- ``anchor``, timed in the same run: scikit-learn's PCA + KMeans (10 starts, as the audits)
  fitted once on each of the six feature matrices, the least any discretising audit must do.

Also writes ``docs/figures/audit_example.png`` (the figure of the ``boot`` audit) for the guide
``docs/audit.md``. Run from the repository root: ``python benchmarks/audit.py`` (all cases,
about a minute and a half on 2 cores), ``python benchmarks/audit.py --quick`` (1,000 samples of
512 features, a few seconds; writes nothing unless ``--write``), ``--help`` for the options.

``python benchmarks/audit.py --curves`` instead trains digits students (no distillation,
FitNets, RID) from one trained teacher with an :class:`~pidkit_distill.AuditCallback` and writes
the over-training curves to ``docs/figures/audit_curves.png`` and
``benchmarks/results/audit_curves.json`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import RESULTS_DIR, Timer, blas_threads, environment, format_seconds, write_results

CLASSES = 10
ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "docs" / "figures" / "audit_example.png"
CURVES = ROOT / "docs" / "figures" / "audit_curves.png"
CASES = ("point", "float32", "boot", "model", "forward", "anchor")
LABELS = {
    "point": "audit_features, point estimates (ci=None)",
    "float32": "audit_features, point estimates, float32 projection (dtype=None)",
    "boot": "audit_features, defaults (n_boot=100 bootstrap intervals)",
    "model": "audit (models, hooks, streamed), defaults (n_boot=100)",
    "forward": "forward passes of both models alone (model path floor)",
    "anchor": "anchor: sklearn PCA(10) + KMeans(10, n_init=10) on the 6 matrices",
}


def synthetic_features(n: int, dim: int, pairs: int, seed: int = 0):
    """Labels and per-pair teacher/student features (float32).

    A latent class ``c`` is uniform on 10 values; the label is ``y = c`` with probability 0.8,
    else uniform (so I(Y;c) is about 2.07 bits). Each teacher layer shows ``c`` as well-separated
    class means in a random 16-dimensional subspace plus isotropic noise. The student layer of
    pair ``k`` shows ``c`` for a share (k+1)/(pairs+1) of the samples and a random class
    otherwise, so it holds a garbled copy of the teacher's knowledge: Red = I(Y;S) < I(Y;T),
    growing with k.
    """
    rng = np.random.default_rng(seed)
    c = rng.integers(0, CLASSES, n)
    y = np.where(rng.random(n) < 0.8, c, rng.integers(0, CLASSES, n))

    def layer(codes):
        basis = rng.normal(size=(16, dim)).astype(np.float32) / 4
        means = rng.normal(size=(CLASSES, 16)).astype(np.float32) * 1.5
        return means[codes] @ basis + rng.standard_normal((n, dim), dtype=np.float32)

    teacher, student = [], []
    for k in range(pairs):
        share = (k + 1) / (pairs + 1)
        teacher.append(layer(c))
        student.append(layer(np.where(rng.random(n) < share, c, rng.integers(0, CLASSES, n))))
    return y, teacher, student


def models(dim: int, pairs: int):
    """Two torch models with ``pairs`` hooked ``dim``-wide layers, for the streamed ``audit``."""
    import torch

    class Taps(torch.nn.Module):
        def __init__(self, seed: int):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.layers = torch.nn.ModuleList(torch.nn.Linear(64, dim) for _ in range(pairs))
            for layer in self.layers:
                torch.nn.init.normal_(layer.weight, generator=g)
            self.head = torch.nn.Linear(dim, CLASSES)

        def forward(self, x):
            return self.head(sum(torch.tanh(layer(x)) for layer in self.layers))

    return Taps(0), Taps(1)


def anchor(features) -> None:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    for x in features:
        z = PCA(n_components=10, random_state=0).fit_transform(x)
        KMeans(n_clusters=10, n_init=10, random_state=0).fit(z)


def curves(threads: int) -> int:
    """Over-training audits of three digits students distilled from one trained teacher."""
    import json

    import torch

    import pidkit_distill as pd

    torch.set_num_threads(threads)
    train, test = pd.data.load_digits()
    runs = {}
    settings = {"none": {}, "fitnets": {}, "rid": {"warmup": 2, "cycle": 2, "ratio": 0.5}}
    with blas_threads(threads) as blas:
        torch.manual_seed(0)
        teacher = pd.distill(None, pd.models.get_model("digits_cnn", width=16), train,
                             method="none", epochs=8, batch_size=64, optimizer="adam",
                             lr=1e-2, seed=0, progress=False).student
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time knowledge audits (paper estimator) on synthetic features and "
                    "models; write benchmarks/results/audit.md and .json.")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 samples of 512 features (smoke run; writes nothing unless "
                             "--write)")
    parser.add_argument("--n", type=int, default=None, help="samples (default 10,000)")
    parser.add_argument("--dim", type=int, default=None, help="features per layer (4,096)")
    parser.add_argument("--pairs", type=int, default=3, help="layer pairs (default 3)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)} (default: all)")
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS and torch threads (default 2)")
    parser.add_argument("--write", action="store_true",
                        help="write results even with --quick or a subset of cases")
    parser.add_argument("--curves", action="store_true",
                        help="instead, train digits students and write the audit curves")
    args = parser.parse_args(argv)
    args.n = args.n or (1000 if args.quick else 10_000)
    args.dim = args.dim or (512 if args.quick else 4096)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.curves:
        return curves(args.threads)
    import torch

    from pidkit_distill import audit, audit_features

    torch.set_num_threads(args.threads)
    y, teacher, student = synthetic_features(args.n, args.dim, args.pairs)
    names = [(f"t{k}", f"s{k}") for k in range(args.pairs)]
    layers = [(f"layers.{k}", f"layers.{k}") for k in range(args.pairs)]
    t_model, s_model = models(args.dim, args.pairs)
    x = torch.randn(args.n, 64, generator=torch.Generator().manual_seed(0))
    labels = torch.as_tensor(y)
    load = os.getloadavg()

    def forward():
        with torch.no_grad():
            for start in range(0, args.n, 256):
                t_model(x[start:start + 256])
                s_model(x[start:start + 256])

    runs = {
        "point": lambda: audit_features(y, teacher, student, layers=names, ci=None, seed=0),
        "float32": lambda: audit_features(y, teacher, student, layers=names, ci=None, seed=0,
                                          estimator_options={"dtype": None}),
        "boot": lambda: audit_features(y, teacher, student, layers=names, seed=0),
        "model": lambda: audit(t_model, s_model, (x, labels), layers, seed=0),
        "forward": forward,
        "anchor": lambda: anchor(teacher + student),
    }
    # scikit-learn and scipy imports (about 3 s) are not part of any timing
    import sklearn.cluster  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    rows, reports = [], {}
    with blas_threads(args.threads) as blas:
        for case in args.cases:
            cpu = time.process_time()
            with Timer() as t:
                reports[case] = runs[case]()
            rows.append({"case": LABELS[case], "key": case, "seconds": t.seconds,
                         "cpu_seconds": time.process_time() - cpu,
                         "load_1min_after": round(os.getloadavg()[0], 2)})
            print(f"{LABELS[case]}: {t.seconds:.1f} s", flush=True)
    anchor_s = next((r["seconds"] for r in rows if r["key"] == "anchor"), None)
    for row in rows:
        row["time"] = format_seconds(row["seconds"])
        row["cpu"] = format_seconds(row["cpu_seconds"])
        row["vs_anchor"] = row["seconds"] / anchor_s if anchor_s else None
        audited = row["key"] in ("point", "float32", "boot", "model")
        row["goal_30s"] = ("met" if row["seconds"] < 30 else "missed") if audited else "-"
    for case in ("boot", "model", "point"):
        if case in reports:
            print(reports[case])
            break
    if (args.quick or set(args.cases) != set(CASES)) and not args.write:
        print("(--quick or a subset of cases: nothing written; pass --write to record)")
        return 0
    if "boot" in reports:
        from pidkit_distill.audits.report import figure_png

        FIGURE.parent.mkdir(parents=True, exist_ok=True)
        FIGURE.write_bytes(figure_png(reports["boot"].plot(
            title="Audit of a synthetic teacher-student pair (paper estimator, 95% intervals)")))
    size = f"{args.n:,} samples, {args.pairs} layer pairs of {args.dim:,} features"
    write_results(
        "audit", rows, blas=blas,
        title=f"Knowledge audit time: {size}",
        columns=["case", "time", "cpu", "vs_anchor", "goal_30s", "load_1min_after"],
        headers={"time": "wall time", "cpu": "CPU time (all threads)",
                 "vs_anchor": "wall / anchor", "goal_30s": "goal < 30 s (wall)",
                 "load_1min_after": "load (1 min) after"},
        notes=[f"estimator 'paper' (L2-normalise, PCA 10, KMeans 10, exact BROJA) with its "
               f"defaults: best of 10 KMeans starts, projection in float64, randomized PCA "
               f"with 4 power iterations, {CLASSES} classes; BLAS and torch threads "
               f"{args.threads}; synthetic float32 features (generation not timed); "
               f"command: python benchmarks/audit.py {' '.join(sys.argv[1:])}".rstrip(),
               "intervals (interval='normal'): multinomial bootstrap of each count table, all "
               "100 replicates of a layer pair in one batched BROJA solve; point rows: ci=None "
               "and the default n_perm=100 label shuffles (chance levels), also batched",
               "anchor: scikit-learn's PCA + KMeans fits alone, same data, same run; "
               "imports (about 3 s for scikit-learn and scipy) happen before any timing",
               f"load average (1/5/15 min) at the start: {[round(v, 2) for v in load]} on "
               f"{os.cpu_count()} logical cores (and after each row, in the table): a load above "
               "the thread count, or wall times above CPU time / threads, show other jobs"],
        extra={"report_with_intervals": reports["boot"].to_dict() if "boot" in reports
               else None,
               "report_streamed": reports["model"].to_dict() if "model" in reports else None,
               "n": args.n, "dim": args.dim, "pairs": args.pairs, "threads": args.threads},
        packages=("pidkit", "numpy", "scipy", "torch", "sklearn", "threadpoolctl"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
