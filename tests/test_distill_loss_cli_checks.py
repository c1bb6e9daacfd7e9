"""Input checks of the distillation losses and of the ``pidkit-distill`` commands: non-finite
batches leave the running statistics clean, loss options and labels get typed errors, and bad
weight files or model options end the CLI with one line and exit status 2."""

import argparse
import copy
import math

import pytest
import torch
from torch.nn import functional as F

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import models
from pidkit_distill.cli import main
from pidkit_distill.commands._models import build_teacher
from pidkit_distill.losses import (
    UNLABELLED,
    Batch,
    DiscretePIDLoss,
    KDLoss,
    PIDLoss,
    cross_entropy,
    make_loss,
)
from pidkit_distill.losses.base import running_sum
from pidkit_distill.sync_check import count_host_syncs

torch.set_num_threads(1)

N, K = 48, 3


def _batch(seed: int, *, bad: float | None = None) -> Batch:
    """A batch of teacher (8-d) and student (6-d) features whose teacher side carries the
    label; ``bad`` is written into one teacher entry (NaN or inf)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % K
    t = torch.randn(N, 8, generator=g) + 2 * F.one_hot(y, 8)
    if bad is not None:
        t[5, 2] = bad
    s = (torch.randn(N, 6, generator=g) + F.one_hot(y, 6)).requires_grad_(True)
    return Batch(y=y, student_logits=torch.randn(N, K, generator=g), teacher_features=[t],
                 student_features=[s])


def _losses():
    return [PIDLoss([(8,)], [(6,)], K), DiscretePIDLoss([(8,)], [(6,)], K, codes=3, seed=0)]


def _buffers(loss):
    return {k: v.clone() for k, v in loss.named_buffers() if k.startswith("ema_")}


# ---------------------------------------------------------------- item 1: non-finite batches

def test_running_sum_skips_a_non_finite_batch():
    state = torch.tensor([1.0, 2.0])
    out = running_sum(state, torch.tensor([3.0, math.nan]), 0.5, update=True)
    assert out[0] == 3.5 and math.isnan(out[1])
    assert state.tolist() == [1.0, 2.0]                       # left as it was
    out = running_sum(state, torch.tensor([3.0, 4.0]), 0.5, update=True)
    assert out.tolist() == state.tolist() == [3.5, 5.0]      # m E + b
    # a joint flag given by the caller: a finite batch is not stored when the flag says so
    running_sum(state, torch.tensor([1.0, 1.0]), 0.5, True, valid=torch.tensor(False))
    assert state.tolist() == [3.5, 5.0]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("index", [0, 1], ids=["pid", "broja"])
def test_a_non_finite_batch_leaves_the_running_statistics_clean(index, bad):
    loss = _losses()[index]
    loss.student_loss(_batch(0))                  # fits the codebook, fills the running stats
    clean = copy.deepcopy(loss)
    before = _buffers(loss)
    poisoned = _batch(1, bad=bad)
    value, parts = loss.student_loss(poisoned)    # no error, and a non-finite step ...
    assert not torch.isfinite(value) and not torch.isfinite(parts["redundancy"])
    value.backward()                              # ... whose gradients a GradScaler rejects
    assert not torch.isfinite(poisoned.student_features[0].grad).all()
    after = _buffers(loss)
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the next clean batch gives what it gives without the bad batch
    got, got_parts = loss.student_loss(_batch(2))
    want, want_parts = clean.student_loss(_batch(2))
    assert torch.isfinite(got) and got.item() == want.item()
    assert got_parts["redundancy"].item() == want_parts["redundancy"].item()


def test_lagged_duals_survive_a_non_finite_solve():
    loss = DiscretePIDLoss([(8,)], [(6,)], K, codes=3, seed=0, solve_every=2)
    loss.student_loss(_batch(0))                  # solve: duals
    loss.student_loss(_batch(1))                  # lagged
    duals = [(g.clone(), c.clone()) for g, c in loss._duals]
    loss.student_loss(_batch(2, bad=math.nan))    # a solve on a non-finite table
    assert all(torch.equal(g, g0) and torch.equal(c, c0)
               for (g, c), (g0, c0) in zip(loss._duals, duals, strict=True))
    assert torch.isfinite(loss.student_loss(_batch(3))[0])   # lagged step on the kept duals


def test_the_finiteness_guard_reads_nothing_on_the_host():
    loss = PIDLoss([(8,)], [(6,)], K)
    with count_host_syncs() as syncs:
        loss.student_loss(_batch(1, bad=math.nan))[0].backward()
    assert syncs.count == 0, syncs.report()


# ------------------------------------------------------------------- item 2: loss options

@pytest.mark.parametrize("method, option, value, kind", [
    ("kd", "temperature", 0, PIDValueError),
    ("kd", "temperature", -1.0, PIDValueError),
    ("kd", "temperature", math.nan, PIDValueError),
    ("kd", "alpha", 2.0, PIDValueError),
    ("kd", "alpha", -0.1, PIDValueError),
    ("kd", "alpha", "x", PIDTypeError),
    ("fitnets", "beta", -1.0, PIDValueError),
    ("fitnets", "beta", math.inf, PIDValueError),
    ("vid", "weight", -1.0, PIDValueError),
    ("vid", "init_variance", 0.0, PIDValueError),
    ("vid", "hidden", 0, PIDValueError),
    ("vid", "hidden", 2.5, PIDTypeError),
    ("ted", "lambda1", -1.0, PIDValueError),
    ("ted", "lambda2", math.nan, PIDValueError),
    ("ted", "norm", "false", PIDTypeError),
    ("rid", "lambda1", math.inf, PIDValueError),
    ("rid", "lambda2", -2.0, PIDValueError),
    ("rid", "sigma_init", math.nan, PIDValueError),
    ("rid", "norm", 1, PIDTypeError),
    ("pid", "beta", -1.0, PIDValueError),
    ("pid", "beta", math.inf, PIDValueError),
    ("broja", "beta", -1.0, PIDValueError),
    ("broja", "tau", 0.0, PIDValueError),
    ("broja", "tol", math.inf, PIDValueError),
])
def test_bad_loss_options_are_typed_errors_naming_the_option(method, option, value, kind):
    with pytest.raises(kind, match=f"^{option}: must"):
        make_loss(method, [(8,)], [(6,)], K, **{option: value})


def test_unknown_loss_options_list_the_accepted_ones():
    with pytest.raises(PIDValueError, match=r"\['temp'\].*'kd'.*\['alpha', 'temperature'\]"):
        make_loss("kd", [], [], K, temp=2.0)
    with pytest.raises(PIDValueError, match=r"method 'none'.*takes no options"):
        make_loss("none", [], [], K, alpha=0.5)


def test_kd_weights_at_the_ends_of_their_range():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(10, K, generator=g), torch.randn(10, K, generator=g)
    y = torch.arange(10) % K
    batch = Batch(y=y, student_logits=zs, teacher_logits=zt)
    ce = -F.log_softmax(zs, 1)[torch.arange(10), y].mean()
    pt, log_ps = F.softmax(zt / 2, 1), F.log_softmax(zs / 2, 1)
    kl = (pt * (pt.log() - log_ps)).sum(1).mean() * 4
    assert KDLoss(temperature=2.0, alpha=0.0).student_loss(batch)[0].item() == pytest.approx(
        ce.item(), rel=1e-6)
    assert KDLoss(temperature=2.0, alpha=1.0).student_loss(batch)[0].item() == pytest.approx(
        kl.item(), rel=1e-6)


# ----------------------------------------------------------------------- item 3: labels

def test_cross_entropy_refuses_one_hot_and_float_labels():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 3, 1, 0])
    with pytest.raises(PIDValueError, match=r"^y: holds labels of shape.*y\.argmax\(1\)"):
        cross_entropy(z, F.one_hot(y, 4).float())
    with pytest.raises(PIDTypeError, match=r"y\.long\(\)"):
        cross_entropy(z, y.float())
    with pytest.raises(PIDValueError, match="shape"):
        cross_entropy(z, y[:, None])
    with pytest.raises(PIDValueError, match="^logits"):
        cross_entropy(z[:5], y)
    # integer labels: the mean of -log softmax over the labelled samples
    y_semi = y.clone()
    y_semi[2] = UNLABELLED
    keep = y_semi != UNLABELLED
    want = -(z[keep].log_softmax(1)[torch.arange(5), y_semi[keep]]).mean()
    assert cross_entropy(z, y_semi).item() == pytest.approx(want.item(), rel=1e-6)


def test_label_checks_read_nothing_on_the_host():
    z, y = torch.randn(6, 4, requires_grad=True), torch.tensor([0, 1, 2, 3, 1, 0])
    with count_host_syncs() as syncs:
        cross_entropy(z, y).backward()
    assert syncs.count == 0, syncs.report()


@pytest.mark.parametrize("index", [0, 1], ids=["pid", "broja"])
def test_regularisers_refuse_one_hot_labels(index):
    batch = _batch(0)
    batch.y = F.one_hot(batch.y, K).float()
    with pytest.raises(PIDValueError, match=r"^batch\.y: holds labels of shape"):
        _losses()[index].redundancies(batch)


# ----------------------------------------------------------------------- item 4: the CLI

TRAIN = ["train", "--dataset", "digits", "--student", "digits_mlp", "--student-kw",
         "hidden=[8]", "--method", "kd", "--epochs", "1", "--no-progress"]
AUDIT = ["audit", "--dataset", "digits", "--student", "digits_mlp", "--student-kw",
         "hidden=[8]", "--n-boot", "2", "--n-perm", "0"]


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A digits_mlp (hidden=[16]) state_dict, a junk file and a pickled module."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", 10, hidden=[16])
    torch.save(teacher.state_dict(), folder / "teacher.pt")
    (folder / "junk.pt").write_bytes(b"not a torch file\n")
    torch.save({"model": torch.nn.Linear(2, 2)}, folder / "module.pt")
    return folder, teacher


def _one_line_error(capsys, command: str, flag: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"pidkit-distill {command}: error: {flag}: "), err
    return err


@pytest.mark.parametrize("command", ["train", "audit"])
@pytest.mark.parametrize("case, match", [
    ("missing.pt", "does not exist"),
    ("junk.pt", "is not a weights file written by torch.save"),
    ("module.pt", "holds objects other than tensors"),
    (".", "is a directory"),
])
def test_bad_teacher_weight_files(command, case, match, weight_files, capsys):
    folder = weight_files[0]
    args = (TRAIN if command == "train" else AUDIT) + [
        "--teacher", "digits_mlp", "--teacher-kw", "hidden=[16]",
        "--teacher-weights", str(folder / case)]
    assert main(args) == 2
    assert match in _one_line_error(capsys, command, "--teacher-weights")


@pytest.mark.parametrize("command", ["train", "audit"])
def test_teacher_weights_of_another_architecture(command, weight_files, capsys):
    args = (TRAIN if command == "train" else AUDIT) + [
        "--teacher", "digits_mlp", "--teacher-kw", "hidden=[32]",
        "--teacher-weights", str(weight_files[0] / "teacher.pt")]
    assert main(args) == 2
    err = _one_line_error(capsys, command, "--teacher-weights")
    assert "does not fit model 'digits_mlp'" in err
    assert "layer1.0.weight (16, 64) vs (32, 64)" in err and "--teacher-kw" in err


def test_student_weights_of_another_architecture(weight_files, capsys):
    args = AUDIT + ["--teacher", "digits_mlp", "--untrained-teacher",
                    "--student-weights", str(weight_files[0] / "teacher.pt")]
    assert main(args) == 2
    assert "(16, 64) vs (8, 64)" in _one_line_error(capsys, "audit", "--student-weights")


def test_teacher_weights_are_loaded(weight_files):
    folder, saved = weight_files
    args = argparse.Namespace(teacher="digits_mlp", teacher_kw=[("hidden", [16])],
                              teacher_weights=str(folder / "teacher.pt"),
                              untrained_teacher=False, teacher_seed=0)
    loaded = build_teacher(args, 10)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                  saved.state_dict().values(), strict=True))


@pytest.mark.parametrize("command", ["train", "audit"])
def test_a_named_teacher_needs_weights_or_untrained(command, capsys):
    assert main((TRAIN if command == "train" else AUDIT) + ["--teacher", "digits_mlp"]) == 2
    assert "--untrained-teacher" in _one_line_error(capsys, command, "--teacher-weights")


def test_untrained_teacher_with_weights_is_refused(weight_files, capsys):
    assert main(TRAIN + ["--teacher", "digits_mlp", "--untrained-teacher", "--teacher-weights",
                         str(weight_files[0] / "teacher.pt")]) == 2
    _one_line_error(capsys, "train", "--untrained-teacher")


@pytest.mark.parametrize("flag", ["--student-kw", "--teacher-kw"])
def test_unknown_model_options(flag, capsys):
    args = TRAIN + ["--teacher", "digits_mlp", "--untrained-teacher", flag, "depth=3"]
    assert main(args) == 2
    err = _one_line_error(capsys, "train", flag)
    assert "'depth'" in err and "Accepted options of 'digits_mlp': hidden, in_features" in err


def test_unknown_method_option(capsys):
    args = TRAIN + ["--teacher", "digits_mlp", "--untrained-teacher", "--option", "temp=2"]
    assert main(args) == 2
    err = _one_line_error(capsys, "train", "--option")      # was method_options, the API's
    assert "temperature" in err and "alpha" in err


# ---------------------------------------------------------------- outputs and silent defaults
def test_save_student_never_overwrites_the_files_of_the_run(weight_files, tmp_path, capsys):
    folder = weight_files[0]
    teacher = ["--teacher", "digits_mlp", "--teacher-kw", "hidden=[16]"]
    before = (folder / "teacher.pt").read_bytes()
    assert main(TRAIN + teacher + ["--teacher-weights", str(folder / "teacher.pt"),
                                   "--save-student", str(folder / "teacher.pt")]) == 2
    assert "is the file of --teacher-weights" in _one_line_error(capsys, "train",
                                                                  "--save-student")
    assert (folder / "teacher.pt").read_bytes() == before
    run = tmp_path / "run"
    untrained = teacher + ["--untrained-teacher"]
    assert main(TRAIN + untrained + ["--out", str(run), "--save-student",
                                     str(run / "checkpoint.pt")]) == 2
    assert "is the file of --out" in _one_line_error(capsys, "train", "--save-student")
    assert main(TRAIN + untrained + ["--out", str(run)]) == 0
    capsys.readouterr()
    first = (run / "checkpoint.pt").read_bytes()
    assert main(TRAIN + untrained + ["--out", str(run)]) == 2       # an earlier run is there
    assert "holds an earlier run" in _one_line_error(capsys, "train", "--out")
    assert (run / "checkpoint.pt").read_bytes() == first
    assert main(TRAIN + untrained + ["--out", str(run), "--overwrite"]) == 0


def test_audit_needs_student_weights_or_an_explicit_untrained_student(capsys):
    base = AUDIT + ["--teacher", "digits_mlp", "--untrained-teacher"]
    assert main(base) == 2
    assert "--untrained-student" in _one_line_error(capsys, "audit", "--student-weights")
    values = []
    for _ in range(2):      # seeded by --seed: the same random student twice
        assert main(base + ["--untrained-student", "--json", "--seed", "4"]) == 0
        values.append(capsys.readouterr().out)
    assert values[0] == values[1]


@pytest.mark.parametrize("pair", ["=", "layer1=", "=layer1", " = layer1"])
def test_layer_pairs_need_two_module_names(pair, capsys):
    with pytest.raises(SystemExit) as stop:
        main(TRAIN + ["--teacher", "digits_mlp", "--untrained-teacher", "--method", "fitnets",
                      "--layer", pair])
    assert stop.value.code == 2
    assert "expected two module names" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", str(2**32), "x"])
def test_seeds_are_checked_by_the_parser(seed, capsys):
    with pytest.raises(SystemExit) as stop:
        main(TRAIN + ["--seed", seed])
    assert stop.value.code == 2 and "--seed" in capsys.readouterr().err


def test_sizes_torch_refuses_and_a_report_path_that_is_a_file(tmp_path, capsys):
    assert main(TRAIN + ["--student-kw", "hidden=[-1]"]) == 2
    assert "cannot be built with" in _one_line_error(capsys, "train", "--student-kw")
    report = tmp_path / "report.txt"
    report.write_text("x")
    args = AUDIT + ["--teacher", "digits_mlp", "--untrained-teacher", "--untrained-student",
                    "--report", str(report)]
    assert main(args) == 2            # before the audit runs
    assert "is a file, not a folder" in _one_line_error(capsys, "audit", "--report")


class _Shell:
    """Pickles as a call of os.system: loading it without weights_only would run a command."""

    def __reduce__(self):
        import os

        return os.system, ("touch /nonexistent/pidkit-ran-code",)


def test_a_weights_file_that_would_run_code_is_named_so(tmp_path, capsys):
    # torch 2.13 words it "unsupported GLOBAL posix.system": it was reported as corrupted
    path = tmp_path / "evil.pt"
    torch.save({"x": _Shell()}, path)
    args = TRAIN + ["--teacher", "digits_mlp", "--teacher-weights", str(path)]
    assert main(args) == 2
    assert "holds objects other than tensors" in _one_line_error(capsys, "train",
                                                                 "--teacher-weights")


def test_warnings_are_one_line_each_and_the_callers_handler_is_kept(capsys):
    import warnings

    handler = warnings.showwarning
    assert main(TRAIN + ["--teacher", "digits_mlp", "--untrained-teacher", "--warmup", "1"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pidkit-distill train: warning: warmup is ignored: only two-phase methods "
                   "such as RID have a schedule, KDLoss trains the student every epoch"]
    assert warnings.showwarning is handler
