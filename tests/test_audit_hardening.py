"""Audits hardened against an adversarial sweep: the global RNGs are left alone, the shuffle
null must be able to reject at the interval's level, the audit reads the data the trainer reads,
narrow layers work with the default estimators, NaN rows are named in the user's order, and
``num_classes`` is used (or refused) consistently by both routes."""

import copy
import math
import random
import warnings

import numpy as np
import pytest
import torch
from _audit_helpers import single_thread  # noqa: F401
from _gaussian_reference import separated_classes
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import pidkit_distill as pd
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.estimate.uncertainty import interval, p_values, smallest_n_perm
from pidkit_distill import audit_features

FAST = {"n_boot": 0, "n_perm": 0}
SMALL = {"n_clusters": 4, "n_components": 4}


class MLP(nn.Module):
    def __init__(self, d=16, h=16, k=4, out="tensor", drop=False):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.drop = nn.Dropout(0.3) if drop else nn.Identity()
        self.fc2 = nn.Linear(h, h)
        self.head = nn.Linear(h, k)
        self.out = out
        self.feature_layers = ("fc1", "fc2")

    def forward(self, x):
        h = self.fc2(self.drop(torch.relu(self.fc1(x))))
        z = self.head(torch.relu(h))
        if self.out == "tuple":
            return z, h
        if self.out == "dict":
            return {"logits": z, "feat": h}
        return z


def _data(n=120, d=16, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.randn(k, d, generator=g)[y] * 2 + torch.randn(n, d, generator=g)
    return x, y


def _models(seed=0):
    torch.manual_seed(seed)
    return MLP(), MLP(h=12)


def _values(report):
    return report[0].values


def _rng_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002


def _assert_same_states(before, after):
    assert torch.equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]


# -- 1. the global RNGs ------------------------------------------------------------------------

def test_audit_leaves_every_global_rng_alone():
    x, y = _data()
    t, s = _models()
    torch.manual_seed(3)
    np.random.seed(3)  # noqa: NPY002  (the global state a user may rely on)
    random.seed(3)
    before = _rng_states()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)  # no generator
    for data in ((x, y), TensorDataset(x, y), loader):
        pd.audit(t, s, data, layers=[("fc2", "fc2")], estimator_options=SMALL, **FAST)
        _assert_same_states(before, _rng_states())
    audit_features(y, t.fc1(x).detach(), s.fc1(x).detach(), estimator_options=SMALL, **FAST)
    _assert_same_states(before, _rng_states())


def test_a_dropout_student_trains_the_same_with_the_audit_callback():
    x, y = _data(96)
    train, val = TensorDataset(x, y), TensorDataset(*_data(64, seed=1))
    teacher, _ = _models()
    torch.manual_seed(1)
    student0 = MLP(h=12, drop=True)

    def run(callbacks):
        student = copy.deepcopy(student0)
        torch.manual_seed(5)
        pd.distill(teacher, student, train, method="kd", epochs=2, batch_size=32,
                   progress=False, callbacks=callbacks)
        return student

    plain = run([])
    cb = pd.AuditCallback(val, layers=[("fc2", "fc2")], estimator_options=SMALL, n_boot=0,
                          n_perm=0)
    audited = run([cb])
    assert len(cb.history.reports) == 2  # it did audit, after each epoch
    for p, q in zip(plain.parameters(), audited.parameters(), strict=True):
        assert torch.equal(p, q)


# -- 2. resampling settings ----------------------------------------------------------------------

@pytest.mark.parametrize("ci", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_smallest_n_perm_is_the_first_that_can_reject(ci):
    """With every null replicate below the point, p = 1/(n_perm + 1): the engine's "normal"
    interval excludes 0 from ``smallest_n_perm(ci)`` shuffles on, and not with one fewer."""
    n = smallest_n_perm(ci)
    assert abs(n - (1 / (1 - ci) - 1)) < 1 + 1e-9  # 1/(1 - ci) - 1, up to rounding of 1 - ci
    point = np.array([1.0])
    boot = np.array([[0.99], [1.01], [1.0]])

    def lower(n_perm):
        p = p_values(point, np.zeros((n_perm, 1)))
        assert p[0] == pytest.approx(1 / (n_perm + 1))
        return interval(point, boot, ci, "normal", p)[0][0]

    assert lower(n) > 0
    if n > 1:
        assert lower(n - 1) == 0.0


def _strong(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    t = rng.normal(size=(n, 16)) + 3 * y[:, None]
    s = rng.normal(size=(n, 16)) + y[:, None]
    return y, t, s


def test_too_few_shuffles_for_the_normal_interval_warn():
    y, t, s = _strong()
    with pytest.warns(UserWarning, match=r"n_perm=10 is too small .*1/11.*Use n_perm >= 19"):
        r = audit_features(y, t, s, n_boot=20, n_perm=10, estimator_options=SMALL)[0]
    # what the warning says: every interval contains 0, even that of a strong I(Y;T)
    assert r.p_values["mi_teacher"] == pytest.approx(1 / 11)
    assert all(lo <= 0 <= hi for lo, hi in r.intervals.values())
    with pytest.warns(UserWarning, match=r"Use n_perm >= 99"):
        audit_features(y, t, s, ci=0.99, n_boot=20, n_perm=50, estimator_options=SMALL)
    with pytest.warns(UserWarning, match="n_perm=10 is too small"):
        pd.AuditCallback(n_perm=10)  # at construction, before the first epoch
    # the other interval kinds do not use the p-values, and without intervals nothing is wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit_features(y, t, s, n_boot=20, n_perm=10, interval="basic", estimator_options=SMALL)
        audit_features(y, t, s, ci=None, n_perm=10, estimator_options=SMALL)
        audit_features(y, t, s, n_boot=20, n_perm=19, estimator_options=SMALL)


def test_with_enough_shuffles_a_strong_signal_excludes_zero():
    y, t, s = _strong()
    r = audit_features(y, t, s, n_boot=20, n_perm=19, estimator_options=SMALL)[0]
    assert r.p_values["mi_teacher"] == pytest.approx(1 / 20)
    lo, hi = r.intervals["mi_teacher"]
    assert 0 < lo < r.values["mi_teacher"] < hi


def test_n_boot_zero_means_no_intervals_and_one_is_refused():
    y, t, s = _strong(200)
    with pytest.raises(PIDValueError, match="n_boot: must be 0 .* or at least 2"):
        audit_features(y, t, s, n_boot=1, n_perm=0, estimator_options=SMALL)
    with pytest.raises(PIDValueError, match="n_boot"):
        pd.audit(*_models(), _data(), n_boot=1, n_perm=0)
    r = audit_features(y, t, s, ci=0.95, n_boot=0, n_perm=0, estimator_options=SMALL)
    assert r.ci is None and r[0].intervals is None and r.settings["n_boot"] == 0
    assert "no intervals" in str(r)


# -- 3. the data the trainer reads -----------------------------------------------------------

class DictSet(Dataset):
    def __init__(self, x, y, keys=("image", "label")):
        self.x, self.y, self.keys = x, y, keys

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i]}


class Samples(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y, strict=True))


def test_every_form_of_data_the_trainer_reads_gives_the_same_audit():
    x, y = _data()
    t, s = _models()

    def audit(data, **kw):
        return _values(pd.audit(t, s, data, layers=[("fc2", "fc2")], batch_size=25,
                                estimator_options=SMALL, **FAST, **kw))

    ref = audit((x, y))
    assert audit(DictSet(x, y)) == ref
    assert audit(DictSet(x, y, ("px", "cls")), input_key="px", label_key="cls") == ref
    assert audit([(x[i], y[i]) for i in range(len(y))]) == ref
    assert audit([(x[i], int(y[i])) for i in range(len(y))]) == ref
    assert audit(Samples(x, y)) == ref
    assert audit([(x[i:i + 30], y[i:i + 30]) for i in range(0, len(y), 30)]) == ref  # batches
    with pytest.raises(PIDValueError, match="input_key: was not given"):
        audit(DictSet(x, y, ("px", "cls")))


def test_unbatchable_samples_and_odd_items_get_typed_errors():
    x, y = _data(40)
    t, s = _models()
    one_shot = ((x[i], y[i]) for i in range(len(y)))  # a generator cannot be peeked at
    with pytest.raises(PIDTypeError, match=r"data: yields single samples .*DataLoader"):
        pd.audit(t, s, one_shot, layers=[("fc2", "fc2")], **FAST)
    with pytest.raises(PIDTypeError, match="data: yields batches of type Tensor"):
        pd.audit(t, s, [x[:10], x[10:20]], layers=[("fc2", "fc2")], **FAST)


def test_the_callback_reads_batches_with_the_trainers_keys():
    x, y = _data(96)
    teacher, student = _models()
    train, val = DictSet(x, y, ("px", "cls")), DictSet(*_data(64, seed=1), ("px", "cls"))
    cb = pd.AuditCallback(val, layers=[("fc2", "fc2")], estimator_options=SMALL, **FAST)
    pd.distill(teacher, student, train, method="kd", epochs=1, batch_size=32, progress=False,
               input_key="px", label_key="cls", callbacks=[cb])
    vx, vy = _data(64, seed=1)
    direct = pd.audit(teacher, student, (vx, vy), layers=[("fc2", "fc2")],
                      estimator_options=SMALL, **FAST)
    assert _values(cb.history.reports[0]) == _values(direct)


@pytest.mark.parametrize("out", ["tuple", "dict"])
def test_extract_features_reads_tuple_and_mapping_outputs(out):
    x, y = _data(40)
    torch.manual_seed(0)
    net = MLP(out=out)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    ex = pd.extract_features(net, loader, ["fc2"])
    with torch.no_grad():
        z = net(x)
    logits = z[0] if out == "tuple" else z["logits"]
    torch.testing.assert_close(ex.logits, logits)
    torch.testing.assert_close(ex.features["fc2"], net.fc2(torch.relu(net.fc1(x))).detach())
    assert torch.equal(ex.targets, y)


def test_extract_features_refuses_fractional_float_labels():
    x, y = _data(40)
    net = MLP()
    whole = DataLoader(TensorDataset(x, y.float()), batch_size=16)
    assert torch.equal(pd.extract_features(net, whole, ["fc2"]).targets, y)
    for bad in (y.float() + 0.7, torch.where(y == 0, float("nan"), y.float())):
        with pytest.raises(PIDValueError, match=r"^loader: holds labels that are not whole "
                                                r"numbers \(float values such as \[(nan|0\.7), "):
            pd.extract_features(net, DataLoader(TensorDataset(x, bad), batch_size=16), ["fc2"])
    mapping = DataLoader(DictSet(x, y), batch_size=16)
    assert torch.equal(pd.extract_features(net, mapping, ["fc2"]).targets, y)


# -- 4. narrow layers ------------------------------------------------------------------------------

def _narrow(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    t = (10.0 * y + rng.normal(scale=0.1, size=n))[:, None]  # one feature, classes apart
    s = rng.normal(size=(n, 3)) + y[:, None] * np.array([1.0, 0.0, 0.0])
    return y, t, s


def _entropy_bits(y):
    p = np.bincount(y) / y.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_paper_audit_of_narrow_layers_caps_the_preset():
    y, t, s = _narrow()
    r = audit_features(y, t, s, **FAST)[0]
    assert r.details["n_components"] == [1, 3]
    assert r.details["scaling"] == ["standard", "standard"]
    # every KMeans cell of a one-feature teacher whose classes are 10 apart is pure: I(Y;T) is
    # the plug-in entropy of the labels
    assert r.values["mi_teacher"] == pytest.approx(_entropy_bits(y), abs=1e-9)
    explicit = audit_features(y, t, s, estimator_options={"n_components": 1,
                                                          "scaling": "standard"}, **FAST)
    # the teacher side settings are what the default resolves to (the student side differs)
    assert explicit[0].details["n_components"] == [1, 1]


def test_narrow_defaults_equal_the_explicit_settings():
    y, t, s = _narrow()
    t8 = np.concatenate([t, np.random.default_rng(1).normal(size=(len(y), 7))], axis=1)
    for estimator in ("paper", "gaussian"):
        default = audit_features(y, t8, s, estimator=estimator, **FAST)[0]
        assert default.details["n_components"] == [8, 3]
        assert default.details["scaling"] == ["l2", "standard"]
        # the student alone is narrow: the same audit with its settings given explicitly
        same = audit_features(y, s, s, estimator=estimator,
                              estimator_options={"n_components": 3, "scaling": "standard"},
                              **FAST)[0]
        auto = audit_features(y, s, s, estimator=estimator, **FAST)[0]
        assert auto.values == same.values


def test_wide_layers_keep_the_papers_settings():
    y, t, s = _strong(300)
    r = audit_features(y, t, s, **FAST)[0]
    assert r.details["n_components"] == [10, 10] and r.details["scaling"] == ["l2", "l2"]


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
def test_a_given_n_components_above_the_width_names_the_option(estimator):
    y, t, s = _narrow()
    with pytest.raises(PIDValueError, match=r"estimator_options: n_components=5 exceeds .* = 3 "
                       r"of the student layer 'S0'.*\{'n_components': 3\}"):
        wide = t + np.random.default_rng(2).normal(size=(len(y), 8))
        audit_features(y, wide, s, estimator=estimator,
                       estimator_options={"n_components": 5}, **FAST)


# -- 5. NaN rows in the user's order ---------------------------------------------------------------

@pytest.mark.parametrize("row", [0, 5, 241])
def test_nan_rows_are_named_in_the_users_order(row):
    y, t, s = _strong(300)
    t = t.copy()
    t[row, 3] = np.nan
    with pytest.raises(PIDValueError, match=rf"teacher_features: contains NaN .* first at row "
                       rf"{row}\b"):
        audit_features(y, t, s, chunk_size=64, **FAST)
    with pytest.raises(PIDValueError, match=rf"student_features: contains NaN .* row {row}\b"):
        audit_features(y, s, torch.as_tensor(t), **FAST)
    with pytest.raises(PIDValueError, match=rf"fit\[1\]: contains NaN .* row {row}\b"):
        audit_features(y, s, s, fit=(y, t, s), **FAST)


def test_nan_inputs_are_named_by_sample_and_layer():
    x, y = _data()
    x[5, 0] = float("nan")
    with pytest.raises(PIDValueError, match=r"data: teacher layer 'fc2': contains NaN .* first "
                       r"at row 5\b"):
        pd.audit(*_models(), (x, y), layers=[("fc2", "fc2")], batch_size=4, **FAST)


# -- 6. classes ------------------------------------------------------------------------------------

def test_a_class_missing_from_the_gaussian_fit_is_a_value_error():
    y, t, s = _strong(300)
    fit = (y[y < 3], t[y < 3], s[y < 3])
    with pytest.raises(PIDValueError, match=r"labels: hold classes absent from the fitting "
                       r"samples \[3\].*num_classes=K"):
        audit_features(y, t, s, estimator="gaussian", fit=fit, **FAST)
    r = audit_features(y, t, s, estimator="gaussian", fit=fit, num_classes=4, **FAST)
    assert r[0].values["mi_teacher"] > 0


@pytest.mark.parametrize("estimator", ["paper", "gaussian"])
def test_num_classes_is_checked_by_both_routes(estimator):
    y, t, s = _strong(300)
    with pytest.raises(PIDValueError, match=r"num_classes: allows labels 0..1, but the labels "
                       r"hold \[2, 3\].*num_classes >= 4"):
        audit_features(y, t, s, estimator=estimator, num_classes=2, **FAST)


def test_num_classes_with_empty_classes_changes_nothing_in_the_discrete_route():
    y, t, s = _strong(300)
    ref = audit_features(y, t, s, estimator_options=SMALL, **FAST)
    more = audit_features(y, t, s, estimator_options=SMALL, num_classes=7, **FAST)
    assert _values(more) == _values(ref)


def test_gaussian_audit_warns_where_its_information_exceeds_the_label_entropy():
    # the Gaussian estimator reads one-hot labels as Gaussian: well separated classes gave
    # I(Y;T) of many bits for a 3-class label (at most log2 3), without a word
    y, entropy, layer = separated_classes(np.random.default_rng(0), 600)
    with pytest.warns(UserWarning, match=r"audit of T0 -> S0: the Gaussian estimate of "
                                         r"I\(Y;T,S\) = \S+ exceeds the labels' entropy "
                                         rf"H\(Y\) = {entropy:.4g} \(units of base 2\)"):
        r = audit_features(y, layer(10.0), layer(10.0), estimator="gaussian", ci=None,
                           n_perm=0)
    assert r.pairs[0].values["mi_teacher"] > entropy
    assert r.pairs[0].details["label_entropy"] == pytest.approx(entropy, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # weak signal: within H(Y), no warning
        weak = audit_features(y, layer(0.3), layer(0.3), estimator="gaussian", ci=None,
                              n_perm=0, base=math.e)
    assert weak.pairs[0].details["label_entropy"] == pytest.approx(entropy * math.log(2))
