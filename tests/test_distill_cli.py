"""``pidkit-distill train``: trains a teacher, distils a student from its saved weights, writes
metrics and checkpoints; errors exit with status 2 and one readable line."""

import json
import re

import pytest
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
    # the error names the flag typed, not get_model's parameter (it said "name: ...")
    assert "--student: is not a known model" in err and "Traceback" not in err


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


# A bad value for every option of every subcommand (or the reason it has none): the error
# names the flag typed. They named the Python parameter (--samples-per-class 0 gave
# "n_per_class: must be >= 1", --dataset foo "name: is not a known data set", --grad-clip 0
# "grad_clip: must be > 0"). A new option must be added here.
_TRAIN = ["train", "--dataset", "digits", "--student", "digits_mlp", "--student-kw",
          "hidden=[8]", "--method", "none", "--epochs", "1", "--batch-size", "32",
          "--no-progress"]
_UNTRAINED = ["--teacher", "digits_mlp", "--untrained-teacher"]
_AUDIT = ["audit", "--dataset", "digits", "--teacher", "digits_mlp", "--untrained-teacher",
          "--student", "digits_mlp", "--untrained-student", "--n-boot", "0", "--n-perm", "0"]
_BAD = {
    "train": {
        "--dataset": ["foo"], "--root": ["/no/such/folder", "--dataset", "cifar10"],
        "--samples-per-class": ["0"], "--teacher": ["nosuch", "--untrained-teacher"],
        "--teacher-kw": ["bogus=1", *_UNTRAINED], "--teacher-weights": ["/no/such.pt",
                                                                        "--teacher", "digits_mlp"],
        "--untrained-teacher": [], "--teacher-seed": ["-1"],
        "--nuisance-channels": ["-1", *_UNTRAINED], "--nuisance-kind": ["bogus", *_UNTRAINED],
        "--nuisance-scale": ["nan", "--nuisance-channels", "2", *_UNTRAINED],
        "--student": ["nosuch"], "--student-kw": ["bogus=1"], "--method": ["bogus"],
        "--option": ["temperature=-1", "--method", "kd", *_UNTRAINED],
        "--layer": ["layer1=nosuch", "--method", "fitnets", *_UNTRAINED],
        "--epochs": ["0"], "--batch-size": ["0"], "--lr": ["-1"], "--teacher-lr": ["0"],
        "--optimizer": ["bogus"], "--weight-decay": ["-1"], "--schedule": ["bogus"],
        "--milestones": ["-1"], "--gamma": ["0"], "--warmup": ["-1", "--method", "rid",
                                                               *_UNTRAINED],
        "--cycle": ["0"], "--ratio": ["2"], "--grad-clip": ["0"], "--device": ["bogus"],
        "--seed": ["-1"], "--resume": ["/no/such.pt"], "--save-student": ["/no/such/dir/s.pt"],
        "--out": None, "--overwrite": None, "--amp": None, "--augment": None,
        "--no-progress": None},
    "audit": {
        "--dataset": ["foo"], "--root": ["/no/such/folder", "--dataset", "cifar10"],
        "--split": ["bogus"], "--fit-split": ["bogus"], "--teacher": ["nosuch"],
        "--teacher-kw": ["bogus=1"], "--teacher-weights": ["/no/such.pt"],
        "--untrained-teacher": ["--teacher-weights", "/no/such.pt"], "--teacher-seed": ["-1"],
        "--student": ["nosuch"], "--student-kw": ["bogus=1"],
        "--student-weights": ["/no/such.pt", "--untrained-student"],
        "--untrained-student": ["--student-weights", "/no/such.pt"],
        "--layer": ["layer1=nosuch"], "--estimator": ["bogus"],
        "--option": ["n_clusters=0", "--estimator", "discretize"], "--measure": ["bogus"],
        "--base": ["1"], "--ci": ["2"], "--n-boot": ["-1"], "--n-perm": ["-1"],
        "--interval": ["bogus"], "--seed": ["-1"], "--max-fit-samples": ["0"],
        "--batch-size": ["0"], "--device": ["bogus"], "--report": None, "--json": None},
}
#: The error's flag where it is another flag than the one given a bad value (the flags these
#: name are the ones that are wrong together).
_NAMED = {("audit", "--untrained-student"): "--student-weights",
          ("audit", "--teacher-weights"): "--untrained-teacher",
          ("audit", "--student-weights"): "--student-weights"}


def _options(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return {s for a in sub._actions for s in a.option_strings if s.startswith("--")} - {"--help"}


def test_every_option_of_every_subcommand_is_swept():
    for command, table in _BAD.items():
        assert set(table) == _options(command), command


@pytest.mark.parametrize(("command", "flag"), [(c, f) for c, table in _BAD.items()
                                               for f, bad in table.items() if bad is not None])
def test_cli_errors_name_the_flag_typed(command, flag, capsys):
    extra = [flag, *_BAD[command][flag]]
    base = _TRAIN if command == "train" else _AUDIT
    try:
        status = main(base + extra)
    except SystemExit as exc:           # argparse's own errors: "argument --flag: ..."
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    named = _NAMED.get((command, flag), flag)
    assert re.search(rf"pidkit-distill {command}: error: (argument )?{named}(:| \w+:) ",
                     err), err
    for dest in ("n_per_class", "grad_clip", "batch_size", "method_options", "out_dir",
                 "max_fit_samples", "n_boot", "estimator_options", "name:"):
        assert dest not in err, err


def test_cli_grad_clip_none_turns_clipping_off(tmp_path, capsys, monkeypatch):
    import pidkit_distill.train as train_module

    seen = []
    real = train_module.Trainer.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.append(self.config.grad_clip)

    monkeypatch.setattr(train_module.Trainer, "__init__", spy)
    for text, clip in (("none", None), ("None", None), ("off", None), ("5", 5.0)):
        assert main(_TRAIN + ["--grad-clip", text]) == 0
        assert seen[-1] == clip
    assert main(_TRAIN) == 0 and seen[-1] == 100.0                # the default
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(_TRAIN + ["--grad-clip", "abc"])
    assert "argument --grad-clip: expected a number > 0, or 'none'" in capsys.readouterr().err
    # the advice is spelt as flags too
    assert main(_TRAIN + ["--samples-per-class", "1000"]) == 2
    err = capsys.readouterr().err
    assert "--samples-per-class: class 0 has only" in err and "Lower --samples-per-class" in err


def test_cli_out_follows_the_trainer_rule(tmp_path, capsys):
    """--out refuses a folder holding an earlier run's files (metrics only, too) unless
    --resume names a checkpoint inside it or --overwrite; the same rule as distill(out_dir=)
    (pidkit_distill.train.check_run_folder), spelt with the flags."""
    run, other = tmp_path / "run", tmp_path / "other"
    assert main(_TRAIN + ["--out", str(run)]) == 0
    assert main(_TRAIN + ["--out", str(other)]) == 0
    capsys.readouterr()
    assert main(_TRAIN + ["--out", str(run), "--epochs", "2", "--resume",
                          str(other / "checkpoint.pt")]) == 2
    err = capsys.readouterr().err
    assert f"error: --out: {run} holds an earlier run (checkpoint.pt, metrics.json, " \
           "metrics.csv)" in err and "continues a checkpoint of another folder" in err
    assert f"Continue it with --resume {run / 'checkpoint.pt'}, pass --overwrite" in err
    assert main(_TRAIN + ["--out", str(run), "--epochs", "2", "--resume",
                          str(run / "checkpoint.pt")]) == 0
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 2
    (run / "checkpoint.pt").unlink()                   # the metrics alone are a run too
    assert main(_TRAIN + ["--out", str(run)]) == 2
    assert "error: --out: " in capsys.readouterr().err
    assert main(_TRAIN + ["--out", str(run), "--overwrite"]) == 0
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 1
