"""Result files of the nuisance-teacher benchmark (:mod:`nuisance.runner`):
JSON, a Markdown report with the tables, and PNG figures (accuracy per method and teacher; the
audit curves Red, Uni(Y:T\\S), I(Y;S) over training per method, the paper's Fig. 5 shape)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pidkit.result import to_plain

__all__ = ["write_outputs", "write_sweep", "write_diagnosis", "accuracy_table", "teacher_table",
           "audit_table"]

_TEACHER_NOTE = {
    "trained": "trained on the full training split",
    "untrained": "random init, never trained",
    "nuisance": "trained + random-feature channels G = s tanh(Wx)",
    "relabelled": "trained on an unrelated labelling (deciles of u'x, u orthogonal to class means)",
}


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def accuracy_table(summary: Sequence[Mapping[str, Any]], dataset: str) -> str:
    """Markdown table: one row per method, one column per teacher, cells
    ``mean +- std [CI low, high]`` in percent."""
    rows = [r for r in summary if r["dataset"] == dataset]
    teachers = [t for t in ("trained", "untrained", "nuisance", "relabelled")
                if any(r["teacher"] == t for r in rows)]
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    head = "| method | " + " | ".join(teachers) + " |"
    lines = [head, "|" + "---|" * (len(teachers) + 1)]
    for m in methods:
        cells = []
        for t in teachers:
            match = [r for r in rows if r["method"] == m and r["teacher"] in (t, "-")]
            if not match:
                cells.append("")
                continue
            r = match[0]
            ci = (f" [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]"
                  if r["n_seeds"] > 1 else "")
            sd = f" +- {_pct(r['std'])}" if r["n_seeds"] > 1 else ""
            cells.append(f"{_pct(r['mean'])}{sd}{ci}")
        label = "none (no distillation; teacher unused)" if m == "none" else m
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def teacher_table(teachers: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of the teachers: test accuracy of their logits, linear-probe accuracy of
    the innermost distilled layer, and its audited I(Y;T) (nats)."""
    lines = ["| teacher | what | test acc (%) | probe acc (%) | I(Y;T) (nats) | notes |",
             "|---|---|---|---|---|---|"]
    for kind in [k for k in _TEACHER_NOTE if k in teachers]:
        info = teachers[kind]
        notes = []
        if "own_task_test_acc" in info:
            notes.append(f"own-task test acc {_pct(info['own_task_test_acc'])}%")
        if "label_mi_nats" in info:
            notes.append(f"I(Y; new labels) = {info['label_mi_nats']:.3f} nats")
        if "probe_g_acc" in info:
            notes.append(f"probe on G alone {_pct(info['probe_g_acc'])}%")
        mi = info.get("audit_mi_teacher_nats")
        lines.append(f"| {kind} | {_TEACHER_NOTE.get(kind, '')} | {_pct(info['test_acc'])} | "
                     f"{_pct(info.get('probe_acc'))} | "
                     f"{'n/a' if mi is None else f'{mi:.3f}'} | {'; '.join(notes)} |")
    return "\n".join(lines)


def audit_table(curves: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of the final audit of each curve: I(Y;T), Red, Uni(Y:T\\S), I(Y;S)."""
    lines = ["| teacher | method | epoch | I(Y;T) | Red(Y:T,S) | Uni(Y:T\\S) | I(Y;S) |",
             "|---|---|---|---|---|---|---|"]
    for teacher, by_method in curves.items():
        for method, hist in by_method.items():
            if not hist["reports"]:
                continue
            v = hist["reports"][-1]["pairs"][0]["values"]
            lines.append(f"| {teacher} | {method} | {hist['epochs'][-1]} | "
                         f"{v['mi_teacher']:.3f} | {v['redundancy']:.3f} | "
                         f"{v['unique_teacher']:.3f} | {v['mi_student']:.3f} |")
    return "\n".join(lines)


def _plot_accuracy(result: Mapping[str, Any], dataset: str, path: Path) -> None:
    from matplotlib.figure import Figure

    rows = [r for r in result["summary"] if r["dataset"] == dataset]
    teachers = [t for t in ("trained", "untrained", "nuisance", "relabelled")
                if any(r["teacher"] == t for r in rows)]
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "none"]
    base = [r for r in rows if r["method"] == "none"]
    fig = Figure(figsize=(1.2 + 1.1 * len(methods), 3.8))
    ax = fig.subplots()
    width = 0.8 / max(len(teachers), 1)
    for j, t in enumerate(teachers):
        means, errs = [], []
        for m in methods:
            r = next((r for r in rows if r["method"] == m and r["teacher"] == t), None)
            means.append(100 * r["mean"] if r else math.nan)
            half = (r["ci_high"] - r["mean"]) if r and r["n_seeds"] > 1 else 0.0
            errs.append(100 * half)
        xs = [i + (j - (len(teachers) - 1) / 2) * width for i in range(len(methods))]
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=t)
    if base:
        b = base[0]
        ax.axhline(100 * b["mean"], color="k", linestyle="--", linewidth=1,
                   label="no distillation")
        if b["n_seeds"] > 1:
            ax.axhspan(100 * b["ci_low"], 100 * b["ci_high"], color="k", alpha=0.08)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("student test accuracy (%)")
    lo = min([100 * r["mean"] for r in rows] or [0])
    ax.set_ylim(max(0, lo - 15), 100)
    ax.set_title(f"{dataset}: student accuracy by method and teacher (mean, 95% CI)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=5, frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _plot_curves(result: Mapping[str, Any], dataset: str, teacher: str, path: Path) -> bool:
    from matplotlib import pyplot as plt

    from pidkit_distill import AuditHistory, plot_curves

    by_method = result["curves"].get(dataset, {}).get(teacher, {})
    histories = [AuditHistory.from_dict(h) for h in by_method.values() if h["reports"]]
    if not histories:
        return False
    fig = plot_curves(histories)
    fig.suptitle(f"{dataset}, {teacher} teacher: knowledge audit over training "
                 f"(innermost pair, paper estimator)", fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def _unlabelled_text(u: int | None) -> str:
    """How many unlabelled inputs the students get, in words."""
    if u == 0:
        return " (no unlabelled inputs)"
    what = "every other training input" if u is None else f"{u} more inputs per class"
    return f" plus {what} without labels (teacher-matching terms only)"


def write_outputs(result: Mapping[str, Any], out_dir: Path, name: str) -> dict[str, Path]:
    """Write ``<name>.json``, ``<name>.md`` and the PNG figures
    ``<name>_<dataset>_accuracy.png``, ``<name>_<dataset>_<teacher>_curves.png`` into
    ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md"}
    paths["json"].write_text(json.dumps(to_plain(result, strict=True), indent=1) + "\n")
    env, timing = result["environment"], result["timing"]
    md = [f"# Nuisance-teacher benchmark{' (quick mode)' if result['quick'] else ''}", "",
          f"Command: `{result['command']}`", "",
          f"Date: {env['date_utc']}; machine: {env['machine']['cpu']}, "
          f"{env['machine']['logical_cores']} logical cores, {env['machine']['os']}, Python "
          f"{env['machine']['python']}; load average at start "
          f"{', '.join(f'{x:.1f}' for x in env['machine']['load_average'] or [])} "
          f"(shared machine).", "",
          "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), "",
          f"Threads: {env['threads']['workers']} worker processes, torch "
          f"{env['threads']['torch_per_worker']} thread and BLAS "
          f"{env['threads']['blas_per_worker']} thread each.", "",
          f"Time: {timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU (all processes), "
          f"{timing['student_runs']} student runs; teachers {timing['teachers_wall_s']:.0f} s "
          f"wall.", ""]
    for dataset, setup in result["setups"].items():
        md += [f"## {dataset}", "",
               f"Teacher `{setup['arch']}` width {setup['teacher_width']}, "
               f"{setup['teacher_epochs']} epochs on the full training split. Student "
               f"`{_student_arch(setup)}` width "
               f"{setup['student_width']}, {setup['labels_per_class']} labels per class"
               f"{_unlabelled_text(setup.get('unlabelled_per_class', 0))}, "
               f"{setup['epochs']} epochs, Adam lr {setup['lr']}, batch "
               f"{setup['batch_size']}, cosine schedule. Distilled layers "
               f"{', '.join(setup['layers'])}; RID schedule {setup['rid_schedule']}.", "",
               "### Teachers", "", teacher_table(result["teachers"][dataset]), "",
               "### Student test accuracy (%): mean +- std [95% t-interval] over seeds", "",
               accuracy_table(result["summary"], dataset), "",
               f"![accuracy]({name}_{dataset}_accuracy.png)", ""]
        acc_png = out_dir / f"{name}_{dataset}_accuracy.png"
        _plot_accuracy(result, dataset, acc_png)
        paths[f"{dataset}_accuracy"] = acc_png
        curves = result["curves"].get(dataset, {})
        if curves:
            md += ["### Final audits of the audited runs (nats; seed 0)", "",
                   audit_table(curves), ""]
        for teacher in curves:
            png = out_dir / f"{name}_{dataset}_{teacher}_curves.png"
            if _plot_curves(result, dataset, teacher, png):
                paths[f"{dataset}_{teacher}_curves"] = png
                md += [f"![{teacher} curves]({png.name})", ""]
    paths["md"].write_text("\n".join(md))
    return paths


def write_sweep(result: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``<name>.json`` and ``.md`` (the student-size / label sweep; name default
    ``nuisance_sweep_<dataset>``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / result.get("name", f"nuisance_sweep_{result['dataset']}")
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps(to_plain(result, strict=True), indent=1) + "\n")
    rows = result["summary"]
    cols = list(dict.fromkeys((r["method"], r["teacher"]) for r in rows))
    head = "| width | labels/class | unlabelled/class | " + " | ".join(
        f"{m} ({t})" if t != "-" else m for m, t in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    key = ("student_width", "labels_per_class", "unlabelled_per_class")
    keys = list(dict.fromkeys(tuple(r.get(k) for k in key) for r in rows))
    for cell in keys:
        cells = []
        for m, t in cols:
            r = next((r for r in rows if tuple(r.get(k) for k in key) == cell
                      and (r["method"], r["teacher"]) == (m, t)), None)
            cells.append("" if r is None else
                         f"{_pct(r['mean'])}" + (f" +- {_pct(r['std'])}" if r["n_seeds"] > 1
                                                 else ""))
        w, k, u = cell
        u_text = "all" if u is None else str(u)
        lines.append(f"| {w} | {k} | {u_text} | " + " | ".join(cells) + " |")
    env = result["environment"]
    probes = result.get("linear_probe_val_acc", result.get("linear_probe_test_acc", {}))
    setup = result["setup"]
    where = result.get("evaluated_on", "test split")
    md = [f"# Student-size / label-count sweep: {result['dataset']}", "",
          f"Command: `{result['command']}`", "",
          f"Date: {env['date_utc']}; {env['machine']['cpu']}; "
          f"{result['timing']['wall_s']:.0f} s wall, {result['timing']['cpu_s']:.0f} s CPU.", "",
          f"Evaluated on: {where}.", "",
          "Teachers (accuracy on the same split): "
          + "; ".join(f"{k} {_pct(v['test_acc'])}%" for k, v in result["teachers"].items()
                      if not k.startswith("_")), "",
          f"Teacher model `{setup['arch']}`, student model `{_student_arch(setup)}`.", "",
          "Linear probe on the innermost teacher layer: "
          + "; ".join(f"{k} {_pct(v)}%" for k, v in probes.items()),
          *(["", "Root-mean-square feature value there: " + "; ".join(
              f"{k} {v:.3g}" for k, v in result["feature_rms_val"].items())]
            if "feature_rms_val" in result else []),
          "", "Student accuracy (%), mean +- std over seeds:", "", *lines, ""]
    paths["md"].write_text("\n".join(md))
    return paths


def _student_arch(setup: Mapping[str, Any]) -> str:
    """The student's model name in a recorded setup (the teacher's when not set)."""
    return setup.get("student_arch") or setup["arch"]


def _terms(run: Mapping[str, Any]) -> list[tuple[int, float, float, float]]:
    """Per epoch in which the student trained (student phase, or a warm-up epoch with
    ``warmup_student``, which logs the student's ``train_ce``): (epoch, CE, weighted
    distillation term, train accuracy)."""
    setup = run["setup"]
    base = run["method"].partition(":")[0]
    opts = setup["method_options"].get(base, {})
    out = []
    for h in run["history"]:
        if h.get("phase") == "warmup" and "train_ce" in h:
            out.append((h["epoch"], h["train_ce"], 0.0, math.nan))
            continue
        if h.get("phase") != "student":
            continue
        if base == "vid":
            term = opts.get("weight", 100.0) * h.get("train_vid", 0.0)
        elif base == "rid":
            term = opts.get("lambda2", 10.0) * h.get("train_v_term", 0.0)
        else:
            term = 0.0
        out.append((h["epoch"], h.get("train_ce", math.nan), term, h.get("train_acc", math.nan)))
    return out


def write_diagnosis(result: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``nuisance_diagnosis_<dataset>.json`` and ``.md``: per variant, the cross-entropy
    and the weighted distillation term at the first and last student epoch, the training
    accuracy at the end, the student epochs and the validation accuracy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"nuisance_diagnosis_{result['dataset']}"
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps(to_plain(result, strict=True), indent=1) + "\n")
    lines = ["| variant | method | teacher | student epochs | CE first -> last | "
             "weighted distillation term first -> last | train acc (%) | val acc (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for run in result["runs"]:
        t = _terms(run)
        first, last = t[0], t[-1]
        term = "-" if run["method"] == "none" else f"{first[2]:.2f} -> {last[2]:.2f}"
        lines.append(f"| {run['variant']} | {run['method']} | {run['teacher']} | {len(t)} of "
                     f"{len(run['history'])} | {first[1]:.2f} -> {last[1]:.2f} | {term} | "
                     f"{_pct(last[3])} | {_pct(run['test_acc'])} |")
    env = result["environment"]
    md = [f"# Loss-term diagnosis: {result['dataset']}", "",
          f"Command: `{result['command']}`", "",
          f"Date: {env['date_utc']}; {env['machine']['cpu']}; "
          f"{result['timing']['wall_s']:.0f} s wall, {result['timing']['cpu_s']:.0f} s CPU.", "",
          f"Evaluated on: {result['evaluated_on']}; one seed. Weighted distillation term: "
          "lambda_VID x mean Gaussian NLL (VID); lambda2 x mean V^2 / sigma (RID, without "
          "the ||sigma||^2 part, which does not reach the student). CE and the term are "
          "epoch means over the batches of the epochs in which the student trains (CE over "
          "labelled samples only; the V term is off in the warm-up).", "",
          *lines, ""]
    paths["md"].write_text("\n".join(md))
    return paths
