"""The nuisance-teacher benchmark (issue 8, ``benchmarks/nuisance``): helpers against
independent values, and a quick end-to-end run on digits whose outputs are checked for structure
and for facts that could be false (teacher accuracies, the audit identities, trained vs
untrained I(Y;T)). The benchmark is not installed: ``benchmarks/`` goes on ``sys.path``, as
for its scripts."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import nuisance_teacher  # noqa: E402
from nuisance import probes, runner, summary, sweeps, teachers  # noqa: E402
from nuisance.report import _terms  # noqa: E402
from nuisance.setups import SETUPS, TEACHERS, quick_setup  # noqa: E402


def test_t_interval_matches_t_table():
    # t_{0.975, 2} = 4.303 (any t table); mean 2, sd 1, n 3 -> half width 4.303 / sqrt(3).
    mean, sd, lo, hi = summary.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (mean, sd) == (2.0, 1.0)
    assert lo == pytest.approx(2.0 - half, abs=1e-9)
    assert hi == pytest.approx(2.0 + half, abs=1e-9)
    assert math.isnan(summary.t_interval([0.5])[2])


def _mi_nats(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information of two label arrays, written out here (the reference)."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / (pa @ pb)[mask])).sum())


def test_unrelated_labels_are_balanced_and_carry_little_label_information():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat_interleave(300)
    centres = 3.0 * torch.randn(10, 20, generator=g)
    x = centres[y] + torch.randn(len(y), 20, generator=g)
    labels = teachers.unrelated_labels(x, y, 10, seed=1)(x).numpy()
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 290 and counts.max() <= 310  # deciles
    mi_unrelated = _mi_nats(y.numpy(), labels)
    # A control: deciles along the first class-mean direction are very informative.
    proj = (x @ (centres[0] - centres.mean(0))).numpy()
    control = np.searchsorted(np.quantile(proj, np.linspace(0, 1, 11)[1:-1]), proj)
    assert _mi_nats(y.numpy(), control) > 0.5
    assert mi_unrelated < 0.08


def test_summarize_pools_none_over_teachers_and_orders_rows():
    runs = [{"dataset": "d", "teacher": t, "method": m, "seed": s, "test_acc": acc}
            for (t, m, s, acc) in [("trained", "none", 0, 0.5), ("trained", "none", 1, 0.7),
                                   ("untrained", "none", 0, 0.5), ("trained", "rid", 0, 0.9),
                                   ("trained", "rid", 1, 0.8), ("untrained", "vid", 0, 0.1)]]
    rows = summary.summarize(runs)
    keys = [(r["teacher"], r["method"]) for r in rows]
    assert keys == [("-", "none"), ("trained", "rid"), ("untrained", "vid")]
    none = rows[0]
    assert none["values"] == [0.5, 0.7] and none["mean"] == pytest.approx(0.6)
    assert rows[2]["n_seeds"] == 1 and math.isnan(rows[2]["std"])


def test_script_parses_its_options():
    args = nuisance_teacher.build_parser().parse_args(["--quick", "--datasets", "digits",
                                                       "--option", "rid.lambda2=1"])
    assert args.quick and args.datasets == ["digits"] and args.seeds is None
    assert nuisance_teacher.parse_options(args.option) == {"rid": {"lambda2": 1}}
    from pidkit.errors import PIDValueError

    with pytest.raises(PIDValueError, match="METHOD.KEY=VALUE"):
        nuisance_teacher.parse_options(["lambda2=1"])


def test_run_benchmark_rejects_unknown_names():
    from pidkit.errors import PIDValueError

    with pytest.raises(PIDValueError, match="datasets"):
        runner.run_benchmark(["cifar100"], quick=True)
    with pytest.raises(PIDValueError, match="methods"):
        runner.run_benchmark(["digits"], methods=["dkd"], quick=True)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nuisance")
    result = runner.run_benchmark(["digits"], seeds=1, quick=True,
                                  methods=["none", "kd", "vid", "rid"], workers=1,
                                  audit_teachers=["trained", "untrained"], out_dir=out,
                                  name="smoke", command="test", progress=False)
    return result, out


@pytest.mark.slow
def test_quick_run_writes_the_table_figures_and_provenance(quick_run):
    result, out = quick_run
    data = json.loads((out / "smoke.json").read_text())
    assert data["command"] == "test" and data["quick"] is True
    for key in ("date_utc", "machine", "versions", "threads"):
        assert key in data["environment"]
    assert data["environment"]["versions"]["torch"] == torch.__version__
    cells = {(r["teacher"], r["method"]) for r in data["summary"]}
    expected = {("-", "none")} | {(t, m) for t in TEACHERS for m in ("kd", "vid", "rid")}
    assert cells == expected
    for row in data["summary"]:
        assert row["n_seeds"] == 1 and 0.0 <= row["mean"] <= 1.0
    md = (out / "smoke.md").read_text()
    assert "| method | trained | untrained | nuisance | relabelled |" in md
    for name in ("smoke_digits_accuracy.png", "smoke_digits_trained_curves.png",
                 "smoke_digits_untrained_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_teachers_and_audits_are_right(quick_run):
    result, _ = quick_run
    info = result["teachers"]["digits"]
    # A 5-epoch digits CNN is far above chance; the untrained one is not.
    assert info["trained"]["test_acc"] >= 0.90
    assert info["untrained"]["test_acc"] <= 0.35
    # The nuisance teacher's logits are the trained teacher's (only its features change).
    assert info["nuisance"]["test_acc"] == info["trained"]["test_acc"]
    assert info["relabelled"]["label_mi_nats"] < 0.15
    assert info["relabelled"]["own_task_test_acc"] > 0.15
    # Audited I(Y;T): trained above untrained, both at most H(Y) <= ln 10 nats.
    mi = {k: info[k]["audit_mi_teacher_nats"] for k in TEACHERS}
    assert mi["trained"] > mi["untrained"] + 0.2
    assert all(0.0 <= v <= math.log(10) + 1e-6 for v in mi.values())
    # Curves: Red + Uni(Y:T\S) = I(Y;T) and Red + Uni(Y:S\T) = I(Y;S), atoms >= 0.
    curves = result["curves"]["digits"]
    assert set(curves) == {"trained", "untrained"}
    for by_method in curves.values():
        assert set(by_method) == {"none", "kd", "vid", "rid"}
        for hist in by_method.values():
            assert hist["epochs"][-1] == quick_setup(SETUPS["digits"]).epochs - 1
            for report in hist["reports"]:
                v = report["pairs"][0]["values"]
                assert v["redundancy"] + v["unique_teacher"] == pytest.approx(v["mi_teacher"],
                                                                              abs=1e-6)
                assert v["redundancy"] + v["unique_student"] == pytest.approx(v["mi_student"],
                                                                              abs=1e-6)
                assert min(v["redundancy"], v["unique_teacher"], v["synergy"]) >= -1e-6
    # The "none" student is the same network whatever teacher is attached to the run.
    nones = [r["test_acc"] for r in result["runs"] if r["method"] == "none"]
    assert len(nones) == 2 and nones[0] == nones[1]


# ----------------------------------------------------------------------------- semi-supervised
def test_cross_entropy_ignores_unlabelled_samples():
    from torch.nn import functional as F

    from pidkit_distill.losses import UNLABELLED, cross_entropy

    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, UNLABELLED, 3, UNLABELLED, 1, 2])
    keep = y != UNLABELLED
    # Reference: the mean of -log softmax over the labelled rows, written out.
    logp = z[keep] - torch.logsumexp(z[keep], 1, keepdim=True)
    ref = -logp[torch.arange(int(keep.sum())), y[keep]].mean()
    assert float(cross_entropy(z, y)) == pytest.approx(float(ref), abs=1e-6)
    assert float(cross_entropy(z, torch.full((6,), UNLABELLED))) == 0.0
    assert float(cross_entropy(z, y.clamp(min=0))) == pytest.approx(
        float(F.cross_entropy(z, y.clamp(min=0))), abs=1e-6)


def test_semi_supervised_keeps_the_labelled_subset_and_hides_the_other_labels():
    from pidkit_distill import data

    train, _ = data.load_digits()
    labelled = data.subset_per_class(train, 3, seed=4)
    ds = data.semi_supervised(train, 3, 5, seed=4)
    x, y = ds.tensors
    assert len(ds) == 10 * (3 + 5)
    # The first 30 rows are exactly the labelled subset of subset_per_class (same seed).
    ref_x = torch.stack([train[i][0] for i in labelled.indices])
    ref_y = torch.stack([train[i][1] for i in labelled.indices])
    assert torch.equal(x[:30], ref_x) and torch.equal(y[:30], ref_y)
    assert bool((y[30:] == -1).all())
    # The unlabelled rows are other training images: 5 per class, none of the labelled ones.
    full_x, full_y = train.tensors
    flat = full_x.flatten(1)
    rows = [int(torch.nonzero((flat == r).all(1)).flatten()[0]) for r in x[30:].flatten(1)]
    assert not set(rows) & set(labelled.indices)
    assert np.bincount(full_y[rows].numpy(), minlength=10).tolist() == [5] * 10
    everything = data.semi_supervised(train, 3, None, seed=4)
    assert len(everything) == len(train)


def test_split_per_class_is_a_stratified_partition():
    from pidkit_distill import data

    train, _ = data.load_digits()
    rest, held = data.split_per_class(train, 0.2, seed=0)
    assert sorted(rest.indices + held.indices) == list(range(len(train)))
    counts = np.bincount(train.tensors[1].numpy(), minlength=10)
    held_counts = np.bincount(train.tensors[1][held.indices].numpy(), minlength=10)
    assert held_counts.tolist() == [round(0.2 * c) for c in counts]


def test_warmup_student_trains_the_student_only_when_asked():
    from pidkit_distill import Trainer, data, models

    train, _ = data.load_digits()
    small = torch.utils.data.Subset(train, range(64))
    teacher = models.untrained_teacher("digits_cnn", seed=0, width=4)
    changed = {}
    for flag in (False, True):
        torch.manual_seed(0)
        student = models.get_model("digits_cnn", width=2)
        before = [p.detach().clone() for p in student.parameters()]
        trainer = Trainer(teacher, student, small, method="rid", epochs=3, warmup=1, cycle=2,
                          ratio=0.5, batch_size=32, optimizer="adam", lr=0.01, progress=False,
                          warmup_student=flag)
        metrics = trainer.train_epoch(0)          # the warm-up epoch alone
        assert metrics["phase"] == "warmup"
        after = list(student.parameters())
        changed[flag] = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert ("train_ce" in metrics) is flag
    assert changed == {False: False, True: True}


def test_diagnosis_terms_weight_the_logged_parts_and_skip_other_phases():
    hist = [{"epoch": 0, "phase": "warmup", "train_head_ce": 9.0},
            {"epoch": 1, "phase": "student", "train_ce": 2.0, "train_v_term": 0.5,
             "train_vid": 0.3, "train_acc": 0.4},
            {"epoch": 2, "phase": "teacher", "train_v_term": 7.0},
            {"epoch": 3, "phase": "student", "train_ce": 1.0, "train_v_term": 0.25,
             "train_vid": 0.2, "train_acc": 0.8}]
    opts = {"rid": {"lambda2": 10.0}, "vid": {"weight": 100.0}}
    rid = _terms({"method": "rid", "history": hist, "setup": {"method_options": opts}})
    vid = _terms({"method": "vid:weight=100", "history": hist,
                  "setup": {"method_options": opts}})
    assert [t[0] for t in rid] == [1, 3]
    assert rid[0][1:] == (2.0, pytest.approx(5.0), 0.4)
    assert rid[1][2] == pytest.approx(2.5)
    assert vid[0][2] == pytest.approx(30.0) and vid[1][2] == pytest.approx(20.0)
    # A warm-up epoch in which the student trained (warmup_student) counts, with no V term.
    hist[0]["train_ce"] = 2.5
    warm = _terms({"method": "rid", "history": hist, "setup": {"method_options": opts}})
    assert [t[0] for t in warm] == [0, 1, 3] and warm[0][1:3] == (2.5, 0.0)


def test_diagnosis_goes_from_the_previous_regime_to_the_recorded_one():
    variants = sweeps.diagnosis_variants("digits")
    first, last = variants[0][1], variants[-1][1]
    assert (first.student_width, first.unlabelled_per_class, first.batch_size) == (4, 0, 25)
    assert "warmup_student" not in first.rid_schedule
    assert last == SETUPS["digits"]


def test_trained_teacher_does_not_depend_on_the_process_rng():
    from dataclasses import replace

    from pidkit_distill import data

    setup = replace(SETUPS["digits"], teacher_width=2, teacher_epochs=1)
    train = torch.utils.data.Subset(data.load_digits()[0], range(64))
    first = teachers.fit_teacher(setup, train, seed=3)
    torch.rand(17)  # move the global RNG: the teacher must not change
    second = teachers.fit_teacher(setup, train, seed=3)
    other = teachers.fit_teacher(setup, train, seed=4)
    a, b, c = (m.state_dict() for m in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_feature_rms_is_the_root_mean_square_of_the_layer_output():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()).eval()
    x = torch.randn(7, 3)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(7, dtype=torch.long))
    with torch.no_grad():
        expected = float(model(x).pow(2).mean().sqrt())
    assert probes.feature_rms(model, "1", ds) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_sweep_with_another_teacher_model_records_it(tmp_path, monkeypatch):
    # a smoke-sized digits sweep with the shallow CNN as teacher instead of the recorded
    # residual one: the teacher model, the probe and the feature scale end up in the files
    monkeypatch.setitem(SETUPS, "digits", quick_setup(SETUPS["digits"]))
    result = sweeps.run_sweep("digits", widths=[4], labels_per_class=[5], unlabelled=[0],
                              seeds=1, methods=["none", "vid"], teachers=["untrained"],
                              workers=1, teacher_arch="digits_cnn", name="sweep_smoke",
                              out_dir=tmp_path, command="test", progress=False)
    assert result["setup"]["arch"] == "digits_cnn"
    assert result["setup"]["student_arch"] == "digits_cnn"
    assert 0.0 <= result["linear_probe_val_acc"]["untrained"] <= 1.0
    # the untrained shallow CNN's features are small (docs/nuisance_benchmark.md)
    assert 0.0 < result["feature_rms_val"]["untrained"] < 0.5
    md = (tmp_path / "sweep_smoke.md").read_text()
    assert "Teacher model `digits_cnn`, student model `digits_cnn`" in md
    assert "Root-mean-square feature value there: untrained" in md
    assert json.loads((tmp_path / "sweep_smoke.json").read_text())["name"] == "sweep_smoke"
