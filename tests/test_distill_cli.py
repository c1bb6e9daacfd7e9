"""``pidkit-distill train``: trains a teacher, distils a student from its saved weights, writes
metrics and checkpoints; errors exit with status 2 and one readable line."""

import json

import torch

from pidkit_distill.cli import build_parser, main

torch.set_num_threads(1)


def test_cli_lists_subcommands():
    names = build_parser()._subparsers._group_actions[0].choices
    assert "train" in names and "audit" in names
    # experiments are scripts under benchmarks/, not subcommands of the installed package
    assert "benchmark" not in names


def test_cli_train_teacher_then_rid_student(tmp_path, capsys):
    teacher_file = tmp_path / "teacher.pt"
    assert main(["train", "--dataset", "digits", "--student", "digits_mlp", "--student-kw",
                 "hidden=[32]", "--method", "none", "--epochs", "2", "--batch-size", "32",
                 "--save-student", str(teacher_file), "--no-progress"]) == 0
    teacher_metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert teacher_metrics["val_acc"] > 0.8
    assert set(torch.load(teacher_file, weights_only=True)) >= {"layer1.0.weight", "fc.weight"}
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--teacher", "digits_mlp", "--teacher-kw",
                 "hidden=[32]", "--teacher-weights", str(teacher_file), "--student",
                 "digits_mlp", "--student-kw", "hidden=[8]", "--method", "rid", "--layer",
                 "layer1=layer1", "--option", "lambda2=1", "--epochs", "3", "--warmup", "1",
                 "--batch-size", "32", "--out", str(out), "--no-progress"]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stored = json.loads((out / "metrics.json").read_text())
    history = stored["history"]
    assert [h["phase"] for h in history] == ["warmup", "teacher", "student"]
    assert stored["units"]["val_loss"] == "nats" and stored["units"]["val_acc"] == "fraction"
    assert final["val_acc"] == history[-1]["val_acc"]
    # the warm-up head sits on f_t of a trained teacher: it classifies well already
    assert history[0]["val_head_acc"] > 0.7
    assert (out / "checkpoint.pt").is_file() and (out / "metrics.csv").is_file()


def test_cli_errors_are_one_line(capsys):
    assert main(["train", "--student", "no_such_model", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "name: is not a known model" in err and "Traceback" not in err


def test_cli_resume_without_out_warns_that_nothing_is_saved(tmp_path, capsys):
    # --resume without --out trained on silently and wrote no checkpoint or metrics
    out = tmp_path / "run"
    base = ["train", "--dataset", "digits", "--student", "digits_mlp", "--student-kw",
            "hidden=[8]", "--method", "none", "--batch-size", "64", "--no-progress"]
    assert main(base + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(base + ["--epochs", "2", "--resume", str(out / "checkpoint.pt")]) == 0
    err = capsys.readouterr().err
    assert "--resume without --out" in err and f"--out {out}" in err
    assert main(base + ["--epochs", "3", "--resume", str(out / "checkpoint.pt"),
                        "--out", str(out)]) == 0
    assert "--resume without --out" not in capsys.readouterr().err
