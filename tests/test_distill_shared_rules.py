"""One implementation of each check, reused: weight files read by the checkpoint reader, one
label rule, one finiteness check (one scan per feature array per audit), the audits' loaders
built by the trainer's evaluation loader, the audit options checked by one object, and the
losses' numeric options checked by pidkit's validators."""

import dataclasses
import inspect
import re

import numpy as np
import pytest
import torch
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)
from torch import nn
from torch.utils.data import TensorDataset

import pidkit_distill as pd
from pidkit.errors import CheckpointError, PIDTypeError, PIDValueError
from pidkit_distill.audits.callback import AuditCallback
from pidkit_distill.audits.run import AuditOptions, audit, audit_features
from pidkit_distill.audits.stream import as_loader
from pidkit_distill.commands._models import load_weights
from pidkit_distill.labels import as_class_labels
from pidkit_distill.losses import make_loss
from pidkit_distill.losses.base import check_labels
from pidkit_distill.schedule import check_ratio

# ----------------------------------------------------------------- 1. weight files, read once


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    x, y = torch.randn(16, 4), torch.arange(16) % 2
    trainer = pd.Trainer(None, _net(), TensorDataset(x, y), method="none", epochs=1,
                         batch_size=8, progress=False)
    trainer.fit()
    trainer.save_checkpoint(folder / "checkpoint.pt")
    torch.save(_net(1).state_dict(), folder / "weights.pt")
    return folder, trainer


def _spy(monkeypatch, owner, name: str, keyword: str) -> list:
    """Replace ``owner.name`` by a wrapper that records each call's ``keyword`` argument."""
    calls, wrapped = [], getattr(owner, name)

    def spy(*args, **kwargs):
        calls.append(kwargs.get(keyword))
        return wrapped(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def test_a_student_checkpoint_is_read_once(saved, monkeypatch):
    folder, trainer = saved
    calls = _spy(monkeypatch, torch, "load", "weights_only")
    state = load_weights(str(folder / "checkpoint.pt"), "student")
    assert calls == [True]                                # one unpickling, weights only
    assert all(torch.equal(state[k], v) for k, v in trainer.student.state_dict().items())
    calls.clear()
    assert set(load_weights(str(folder / "weights.pt"), "teacher")) == {
        "0.weight", "0.bias", "2.weight", "2.bias"}
    assert calls == [True]


def test_weight_files_get_the_checkpoint_readers_checks(saved, tmp_path):
    folder, _ = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes((folder / "weights.pt").read_bytes()[:-50])
    with pytest.raises(CheckpointError, match=rf"^--teacher-weights: {re.escape(str(cut))} is "
                                              r"truncated .*copy it again"):
        load_weights(str(cut), "teacher")
    with pytest.raises(CheckpointError, match=r"^--teacher-weights: .* is a trainer checkpoint"):
        load_weights(str(folder / "checkpoint.pt"), "teacher")
    with pytest.raises(CheckpointError, match=r"^--student-weights: .* is a directory\. Pass the "
                                              r"file inside it: .*checkpoint\.pt"):
        load_weights(str(folder), "student")
    future = tmp_path / "future.pt"
    torch.save({"format": "pidkit_distill.checkpoint/2", "student": {}}, future)
    with pytest.raises(CheckpointError, match=r"^--student-weights: .* has format "
                                              r"'pidkit_distill\.checkpoint/2'"):
        load_weights(str(future), "student")


def test_plain_weights_in_the_legacy_format_still_load(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(_net().state_dict(), path, _use_new_zipfile_serialization=False)
    state = load_weights(str(path), "teacher")
    assert all(torch.equal(state[k], v) for k, v in _net().state_dict().items())
    # no checksums in that format: damage shows up in the unpickler, as a typed error still
    data = path.read_bytes()
    for n in (len(data) - 10, len(data) // 2, 40):
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=r"^--teacher-weights: .* is (truncated|"
                                                  r"corrupted)"):
            load_weights(str(path), "teacher")


# ----------------------------------------------------------------------- 2. one label rule

def _both(values, dtype):
    """The same labels as a numpy array and as a torch tensor."""
    arr = np.asarray(values, dtype=dtype)
    return [arr, torch.from_numpy(arr.copy())]


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32,
                                   np.float64])
def test_integers_and_whole_number_floats_become_int64(dtype):
    for y in _both([0, 3, 1, 2], dtype):
        out = as_class_labels(y, "labels")
        assert type(out) is type(y) and out.tolist() == [0, 3, 1, 2]
        assert str(out.dtype) in ("int64", "torch.int64")


@pytest.mark.parametrize(("values", "dtype", "kind", "message"), [
    ([0.0, 1.5, 2.0], np.float64, PIDValueError,
     r"^labels: holds labels that are not whole numbers \(float values such as \[1\.5\]\)\. "
     r"Pass class indices 0\.\.K-1; an integer cast would truncate these"),
    ([0.0, np.nan, np.inf], np.float32, PIDValueError,
     r"^labels: holds labels that are not whole numbers \(float values such as \[nan, inf\]\)"),
    ([0.0, 1e19], np.float64, PIDValueError, r"not whole numbers .*1e\+19"),
    ([True, False], np.bool_, PIDTypeError, r"^labels: holds labels of dtype (torch\.)?bool; "
                                            r"class indices of an integer dtype are needed\. "
                                            r"Convert them with y\.long\(\)"),
    ([1 + 0j], np.complex64, PIDTypeError, r"^labels: holds labels of dtype (torch\.)?complex64"),
    ([[0, 1], [1, 0]], np.int64, PIDValueError, r"^labels: holds labels of shape \(2, 2\); "
                                                r".*y\.argmax\(1\)"),
])
def test_one_rule_and_one_message_for_numpy_and_torch(values, dtype, kind, message):
    errors = []
    for y in _both(values, dtype):
        with pytest.raises(kind, match=message) as info:
            as_class_labels(y, "labels")
        errors.append(str(info.value).replace("torch.", ""))
    assert errors[0] == errors[1]


def test_inside_a_step_float_labels_are_refused_by_their_dtype():
    with pytest.raises(PIDTypeError, match=r"^y: holds labels of dtype torch\.float32; .*not read "
                                           r"inside a training step.*y\.long\(\)"):
        check_labels(torch.tensor([0.0, 1.0]))
    assert check_labels(torch.tensor([0, 1], dtype=torch.int32)).dtype == torch.int64


def _features(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = rng.normal(size=(n, 13)) + y[:, None]
    s = rng.normal(size=(n, 17)) - y[:, None]
    return y, t, s


FAST = dict(estimator="gaussian", ci=None, n_perm=0)


def test_audits_read_whole_number_float_labels_as_the_estimators_do():
    y, t, s = _features()
    want = audit_features(y, t, s, **FAST).pairs[0].values
    assert audit_features(y.astype(np.float32), t, s, **FAST).pairs[0].values == want
    assert audit_features(torch.from_numpy(y).double(), t, s, **FAST).pairs[0].values == want
    with pytest.raises(PIDValueError, match=r"^labels: holds labels that are not whole numbers"):
        audit_features(y + 0.25, t, s, **FAST)
    with pytest.raises(PIDValueError, match=r"^labels: holds negative labels"):
        audit_features(y - 2.0, t, s, **FAST)


def test_extract_features_follows_the_rule():
    net = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(8, 4), torch.arange(8) % 2
    loader = [(x, y.double())]
    assert torch.equal(pd.extract_features(net, loader, ["0"]).targets, y)
    with pytest.raises(PIDTypeError, match=r"^loader: holds labels of dtype torch\.bool"):
        pd.extract_features(net, [(x, y > 0)], ["0"])


# ------------------------------------------------------ 3. one finiteness check, one scan

@pytest.fixture
def scanned_rows(monkeypatch):
    """Rows of arrays of width 13 (teacher) and 17 (student features; both project to 10 or
    fewer components) given to np.isfinite."""
    counts = {13: 0, 17: 0}
    isfinite = np.isfinite

    def counting(x, *args, **kwargs):
        shape = np.shape(x)
        if len(shape) == 2 and shape[1] in counts:
            counts[shape[1]] += shape[0]
        return isfinite(x, *args, **kwargs)

    monkeypatch.setattr(np, "isfinite", counting)
    return counts


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
@pytest.mark.parametrize("max_fit_samples", [10_000, 100], ids=["fit-on-all", "fit-on-some"])
def test_audit_features_scan_each_feature_row_once(estimator, max_fit_samples, scanned_rows):
    y, t, s = _features()
    audit_features(y, t, s, estimator=estimator, ci=None, n_perm=0, chunk_size=64,
                   max_fit_samples=max_fit_samples,
                   estimator_options={"n_clusters": 3} if estimator == "paper" else None)
    assert scanned_rows == {13: len(y), 17: len(y)}


def test_model_audits_scan_each_feature_row_once(scanned_rows):
    teacher = nn.Sequential(nn.Linear(5, 13), nn.ReLU(), nn.Linear(13, 3))
    student = nn.Sequential(nn.Linear(5, 17), nn.ReLU(), nn.Linear(17, 3))
    x, y = torch.randn(120, 5), torch.arange(120) % 3
    audit(teacher, student, (x, y), [("0", "0")], batch_size=50, **FAST)
    assert scanned_rows == {13: 120, 17: 120}


def test_the_one_check_keeps_the_row_in_the_users_order():
    y, t, s = _features()
    s[200, 4] = np.nan
    with pytest.raises(PIDValueError, match=r"^student_features: contains NaN or infinite values "
                                            r"in 1 sample\(s\) of the batch starting at row 192, "
                                            r"first at row 200\. Drop or impute those samples "
                                            r"before auditing"):
        audit_features(y, t, s, chunk_size=64, **FAST)


# -------------------------------------------------------- 4. the audits' loaders

def test_as_loader_batches_data_sets_with_the_trainers_eval_loader(monkeypatch):
    from pidkit_distill import batches

    calls = _spy(monkeypatch, batches, "eval_loader", "argument")
    x, y = torch.arange(10.0)[:, None], torch.arange(10) % 2
    state = torch.get_rng_state()
    loader = as_loader((x, y), 4, "fit_data")
    assert calls == ["fit_data"]
    assert [b[1].tolist() for b in loader] == [[0, 1, 0, 1], [0, 1, 0, 1], [0, 1]]
    assert torch.equal(torch.get_rng_state(), state)   # own generator, not the global RNG
    ready = [(x[:5], y[:5])]                           # an iterable of batches: used as it is
    assert as_loader(ready, 4) is ready and calls == ["fit_data"]


# ------------------------------------------------------ 5. the audit options, one source

def test_audit_options_are_keyword_parameters_of_both_entry_points():
    for entry in (audit, audit_features):
        params = inspect.signature(entry).parameters
        for f in dataclasses.fields(AuditOptions):
            assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY, (entry, f.name)
    defaults = [{f.name: inspect.signature(e).parameters[f.name].default
                 for f in dataclasses.fields(AuditOptions)} for e in (audit, audit_features)]
    assert defaults[0] == defaults[1]


@pytest.mark.parametrize(("option", "value", "kind"), [
    ("estimator", "nope", PIDValueError), ("measure", 3, PIDTypeError),
    ("base", 1.0, PIDValueError), ("ci", 2.0, PIDValueError), ("n_boot", 1, PIDValueError),
    ("n_perm", -1, PIDValueError), ("seed", -1, PIDValueError),
    ("max_fit_samples", 1, PIDValueError), ("num_classes", 1, PIDValueError),
    ("interval", "nope", PIDValueError),
])
def test_the_callback_checks_every_audit_option_as_the_audit_does(option, value, kind):
    assert option in {f.name for f in dataclasses.fields(AuditOptions)}
    y, t, s = _features()
    with pytest.raises(kind, match=rf"^{option}: ") as direct:
        audit_features(y, t, s, **{option: value})
    with pytest.raises(kind, match=rf"^{option}: ") as early:
        AuditCallback(**{option: value})
    assert str(early.value) == str(direct.value)


def test_the_callback_refuses_before_training_what_its_first_audit_would():
    """No audit data, or unlabelled samples (-1) in in-memory audit data: refused when
    training starts, not after the first epoch."""
    x = torch.randn(40, 4)
    y = torch.arange(40) % 2
    semi = torch.where(torch.arange(40) % 5 == 0, torch.full_like(y, -1), y)
    for val_data, callback, message in (
            (None, AuditCallback(n_boot=0, n_perm=0), "no val_data"),
            ((x, semi), AuditCallback(n_boot=0, n_perm=0), "unlabelled samples"),
            (None, AuditCallback(TensorDataset(x, semi), n_boot=0, n_perm=0), "unlabelled")):
        trainer = pd.Trainer(_net(1), _net(2), (x, y), val_data=val_data, method="kd",
                             epochs=2, batch_size=8, progress=False, callbacks=[callback])
        with pytest.raises(PIDValueError, match=message):
            trainer.fit()
        assert trainer.history == [] and trainer.epoch == 0
    labelled = semi >= 0                 # the fix the message gives: the labelled samples
    trainer = pd.Trainer(_net(1), _net(2), (x, y), val_data=(x[labelled], semi[labelled]),
                         method="kd", epochs=1, batch_size=8, progress=False,
                         callbacks=[AuditCallback(n_boot=0, n_perm=0, layers=[("1", "1")])])
    with pytest.warns(UserWarning, match="per cell") as record:   # 32 samples: a sparse table
        assert "audit_redundancy" in trainer.fit()[-1]
    # the audit's warnings name the user's line (here), not pidkit_distill's (fixed levels did)
    assert {w.filename for w in record if "per cell" in str(w.message)} == {__file__}
    with pytest.warns(UserWarning, match="too small") as record:
        AuditCallback(n_boot=20, n_perm=5)
    assert {w.filename for w in record} == {__file__}


# ------------------------------------- 6. the losses' numeric options: pidkit's validators

@pytest.mark.parametrize(("method", "options", "kind", "message"), [
    ("kd", {"temperature": 0.0}, PIDValueError, r"^temperature: must be > 0 \(got 0\.0\)"),
    ("kd", {"temperature": float("nan")}, PIDValueError, r"^temperature: must be > 0 \(got nan"),
    ("kd", {"temperature": "4"}, PIDTypeError, r"^temperature: must be a number"),
    ("kd", {"alpha": 1.5}, PIDValueError, r"^alpha: must be a number in \[0, 1\] \(got 1\.5\)"),
    ("kd", {"alpha": "0.5"}, PIDTypeError, r"^alpha: must be a number in \[0, 1\]"),
    ("fitnets", {"beta": -1.0}, PIDValueError, r"^beta: must be >= 0 \(got -1\.0\)"),
    ("rid", {"lambda2": float("inf")}, PIDValueError, r"^lambda2: must be >= 0 \(got inf"),
    ("vid", {"init_variance": 0.0}, PIDValueError, r"^init_variance: must be > 0"),
])
def test_loss_options_read_as_pidkits_checks(method, options, kind, message):
    with pytest.raises(kind, match=message):
        make_loss(method, [(6,)], [(6,)], 3, **options)


def test_the_schedules_ratio_and_kds_alpha_share_one_check():
    with pytest.raises(PIDValueError, match=r"^ratio: must be a number in \[0, 1\] \(got 1\.5\)\. "
                                            r"Pass the share r of each cycle"):
        check_ratio(1.5)
    with pytest.raises(PIDTypeError, match=r"^ratio: must be a number in \[0, 1\]"):
        check_ratio("0.5")
    assert check_ratio(np.float32(0.25)) == 0.25
