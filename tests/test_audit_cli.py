"""The audit CLI over checkpoints written here, the training callback, and the Gaussian route."""

import json
import math

import numpy as np
import pytest
import torch
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)

import pidkit
import pidkit_distill as pd
from pidkit.estimate import one_hot
from pidkit_distill import audit, audit_features
from pidkit_distill.audits.callback import CALLBACK_N_PERM, AuditCallback
from pidkit_distill.audits.curves import plot_curves
from pidkit_distill.audits.report import AuditReport
from pidkit_distill.audits.run import DEFAULT_INTERVAL
from pidkit_distill.cli import main

SMALL = {"n_clusters": 4, "n_components": 4}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A teacher state_dict and a one-epoch distillation checkpoint on digits."""
    out = tmp_path_factory.mktemp("run")
    train, test = pd.data.load_digits()
    teacher = pd.models.untrained_teacher("digits_cnn", 3, width=8)
    torch.save(teacher.state_dict(), out / "teacher.pt")
    torch.manual_seed(0)
    student = pd.models.get_model("digits_cnn", width=4)
    cb = AuditCallback(test, every=1, out_dir=out / "curves", estimator="discretize",
                       estimator_options=SMALL, n_boot=10, layers=[("layer3", "layer3")],
                       measure_options={"tol": 1e-7})
    result = pd.distill(teacher, student, train, method="fitnets", epochs=2, batch_size=128,
                        lr=0.05, out_dir=str(out), progress=False, callbacks=[cb],
                        layers=[("layer3", "layer3")], val_data=test)
    return out, teacher, result, cb, test


def test_cli_audit_of_checkpoints_matches_the_api(run_dir, capsys):
    out, teacher, result, _, test = run_dir
    args = ["audit", "--teacher", "digits_cnn", "--teacher-kw", "width=8",
            "--teacher-weights", str(out / "teacher.pt"), "--student", "digits_cnn",
            "--student-kw", "width=4", "--student-weights", str(out / "checkpoint.pt"),
            "--layer", "layer3=layer3", "--estimator", "discretize", "--option", "n_clusters=4",
            "--option", "n_components=4", "--n-boot", "10", "--json",
            "--report", str(out / "report")]
    assert main(args) == 0
    printed = AuditReport.from_json(capsys.readouterr().out)
    direct = audit(teacher, result.student, test, [("layer3", "layer3")],
                   estimator="discretize", estimator_options=SMALL, n_boot=10, num_classes=10)
    assert printed[0].values == pytest.approx(direct[0].values, abs=1e-12)
    assert printed.metadata["student_weights"].endswith("checkpoint.pt")
    assert AuditReport.from_json(out / "report" / "audit.json") == printed
    assert (out / "report" / "audit.html").read_text().count("data:image/png;base64,") == 1


def test_cli_untrained_teacher_and_table(run_dir, capsys):
    out = run_dir[0]
    code = main(["audit", "--teacher", "digits_cnn", "--teacher-kw", "width=8",
                 "--untrained-teacher", "--teacher-seed", "3", "--student", "digits_cnn",
                 "--student-kw", "width=8", "--student-weights", str(out / "teacher.pt"),
                 "--layer", "layer3=layer3", "--estimator", "discretize", "--option",
                 "n_clusters=4", "--option", "n_components=4", "--ci", "0"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Knowledge audit" in text and "no intervals" in text
    # the student holds the same weights as the untrained teacher (same seed): a copy
    row = [line for line in text.splitlines() if "layer3 -> layer3" in line][0].split()
    mi_t, mi_s, red, uni_t = map(float, row[3:7])
    assert mi_t == pytest.approx(red, abs=1e-7) and uni_t == pytest.approx(0.0, abs=1e-7)


def test_cli_refuses_pickled_objects_and_teacher_checkpoints(run_dir, tmp_path, capsys):
    out = run_dir[0]
    bad = tmp_path / "bad.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, bad)  # a pickled module, not weights
    base = ["audit", "--teacher", "digits_cnn", "--teacher-kw", "width=8", "--student",
            "digits_cnn", "--student-kw", "width=4", "--layer", "layer3=layer3"]
    assert main(base + ["--untrained-teacher", "--student-weights", str(bad)]) == 2
    assert "holds objects other than tensors" in capsys.readouterr().err
    assert main(base + ["--teacher-weights", str(out / "checkpoint.pt")]) == 2
    assert "trainer checkpoint" in capsys.readouterr().err


def test_callback_curves(run_dir):
    out, _, result, cb, _ = run_dir
    assert cb.history.method == "fitnets" and cb.history.epochs == [0, 1]
    assert all(f"audit_{k}" in row for row in result.history
               for k in ("redundancy", "unique_teacher", "mi_student"))
    assert result.history[-1]["audit_redundancy"] == cb.history.reports[-1][0]["redundancy"]
    saved = json.loads((out / "curves" / "fitnets_curves.json").read_text())
    assert saved["epochs"] == [0, 1]
    assert (out / "curves" / "fitnets_curves.png").read_bytes().startswith(b"\x89PNG")
    # I(Y;T) is the frozen teacher's: identical at every audit
    mi_t = [r[0]["mi_teacher"] for r in cb.history.reports]
    assert mi_t[0] == pytest.approx(mi_t[1], abs=1e-12)


def test_callback_curves_show_the_chance_level(run_dir):
    """Chance levels are on by default per epoch (n_perm=CALLBACK_N_PERM): in every report,
    in the history's series, in the saved curves, in the epoch metrics and as a dotted line
    per run in the figure."""
    out, _, result, cb, _ = run_dir
    assert CALLBACK_N_PERM == 50 and cb.audit_options["n_perm"] == CALLBACK_N_PERM
    for report in cb.history.reports:
        assert report.settings["n_perm"] == CALLBACK_N_PERM
        assert report.settings["interval"] == DEFAULT_INTERVAL
        assert report[0].chance is not None and report[0].p_values is not None
        assert min(report[0].p_values.values()) >= 1 / (CALLBACK_N_PERM + 1)
    series = cb.history.series("redundancy")
    assert len(series["chance"]) == 2 and all(math.isfinite(c) for c in series["chance"])
    assert series["chance"] == [r[0].chance["redundancy"] for r in cb.history.reports]
    for row, report in zip(result.history, cb.history.reports, strict=True):
        assert row["audit_redundancy_chance"] == report[0].chance["redundancy"]
    saved = json.loads((out / "curves" / "fitnets_curves.json").read_text())
    assert all(r["pairs"][0]["chance"] is not None for r in saved["reports"])
    fig = plot_curves({"fitnets": cb.history})
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert labels.count("fitnets (chance)") == len(fig.axes)


def test_gaussian_route_equals_gaussian_pid_of_the_covariance():
    """Plug-in (bias_correction=False): gaussian_pid of the maximum-likelihood covariance; the
    default, corrected estimate is tested against gaussian_pid_from_samples in
    test_estimate_uncertainty.py."""
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 3, n)
    t = np.eye(3)[y][:, :2] + rng.normal(size=(n, 2))
    s = t[:, :1] + 0.5 * rng.normal(size=(n, 1))
    opts = {"estimator": "gaussian", "n_boot": 60,
            "estimator_options": {"n_components": None, "scaling": None,
                                  "bias_correction": False}}
    r = audit_features(y, t, s, chunk_size=500, **opts)
    z = np.concatenate([one_hot(y, 3), t, s], axis=1)
    ref = pidkit.gaussian_pid(np.cov(z.T, bias=True), dims=(2, 2, 1))
    v = r[0].values
    assert v["redundancy"] == pytest.approx(ref.redundancy, abs=1e-9)
    assert v["unique_teacher"] == pytest.approx(ref.unique[0], abs=1e-9)
    assert v["synergy"] == pytest.approx(ref.synergy, abs=1e-9)
    for q in ("mi_teacher", "redundancy", "unique_teacher"):
        lo, hi = r[0].intervals[q]
        assert lo < v[q] < hi
    perm = rng.permutation(n)
    b = audit_features(y[perm], t[perm], s[perm], chunk_size=777, **opts)
    for q in v:
        assert b[0].values[q] == pytest.approx(v[q], abs=1e-9)
        assert b[0].intervals[q] == pytest.approx(r[0].intervals[q], abs=1e-9)
