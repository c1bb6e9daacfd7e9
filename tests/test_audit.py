"""Knowledge audits with known answers.

References used here, independent of the audit code: the latent cluster labels of well-separated
synthetic features (any correct discretiser recovers them, so the audit must equal the PID of
the latent count table); a test-local plug-in mutual information; exact identities of BROJA
(a copied source has Uni = Syn = 0 and Red = I(Y;T)); independence (Red = 0).
"""

import math

import numpy as np
import pytest
import torch
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit_distill import audit, audit_features

SMALL = {"n_clusters": 4, "n_components": 4}
#: BROJA's certified gap (bits): far below every tolerance asserted here.
TOL = {"tol": 1e-7}


def _mi_bits(y, x):
    """Plug-in I(Y;X) in bits of two integer code arrays (test-local reference)."""
    table = np.zeros((y.max() + 1, x.max() + 1))
    np.add.at(table, (y, x), 1)
    p = table / table.sum()
    py, px = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (py @ px)[nz])).sum())


def _clusters(codes, dim, rng, spread=0.01):
    """Well-separated features: a random unit centre per code plus tiny noise."""
    centres = rng.normal(size=(codes.max() + 1, dim)) * 5
    return centres[codes] + spread * rng.normal(size=(codes.size, dim))


@pytest.fixture(scope="module")
def latent():
    """Labels y (4 classes) and latent codes c_t, c_s (4 values each) with overlap:
    c_t = y except 20% resampled, c_s = c_t for half the samples, random otherwise."""
    rng = np.random.default_rng(0)
    n = 1200
    y = rng.integers(0, 4, n)
    c_t = np.where(rng.random(n) < 0.8, y, rng.integers(0, 4, n))
    c_s = np.where(rng.random(n) < 0.5, c_t, rng.integers(0, 4, n))
    return y, c_t, c_s, _clusters(c_t, 24, rng), _clusters(c_s, 16, rng)


def _latent_pid(y, c_t, c_s, measure="broja"):
    counts = np.zeros((4, 4, 4))
    np.add.at(counts, (y, c_t, c_s), 1)
    return pidkit.pid(counts / counts.sum(), measure=measure)


def test_equals_pid_of_latent_counts(latent):
    y, c_t, c_s, t, s = latent
    r = audit_features(y, t, s, estimator="discretize", estimator_options=SMALL, n_boot=30,
                       n_perm=0, seed=1, measure_options=TOL)
    ref = _latent_pid(y, c_t, c_s)
    got = r[0].values
    assert got["redundancy"] == pytest.approx(ref.redundancy, abs=1e-6)
    assert got["unique_teacher"] == pytest.approx(ref.unique[0], abs=1e-6)
    assert got["unique_student"] == pytest.approx(ref.unique[1], abs=1e-6)
    assert got["synergy"] == pytest.approx(ref.synergy, abs=1e-6)
    assert got["mi_teacher"] == pytest.approx(_mi_bits(y, c_t), abs=1e-9)
    assert got["mi_student"] == pytest.approx(_mi_bits(y, c_s), abs=1e-9)
    for q, (lo, hi) in r[0].intervals.items():
        assert lo <= hi, q            # never clipped: a basic bound may fall below 0
    # large quantities lie inside their intervals (small ones may not: the basic interval
    # corrects the upward bias of the plug-in estimate)
    for q in ("mi_teacher", "redundancy"):
        lo, hi = r[0].intervals[q]
        assert lo <= got[q] <= hi, q
    assert r.n_samples == y.size and r.settings["n_clusters"] == 4


def test_copying_student_has_no_unique_information(latent):
    y, _, _, t, _ = latent
    r = audit_features(y, t, t.copy(), estimator="discretize", estimator_options=SMALL,
                       n_boot=30, n_perm=0)
    v = r[0].values
    assert v["unique_teacher"] == pytest.approx(0.0, abs=1e-7)
    assert v["unique_student"] == pytest.approx(0.0, abs=1e-7)
    assert v["synergy"] == pytest.approx(0.0, abs=1e-7)
    assert v["redundancy"] == pytest.approx(v["mi_teacher"], abs=1e-7)
    assert v["mi_teacher"] > 1.0


def test_random_feature_student_shares_nothing(latent):
    y, _, _, t, _ = latent
    noise = np.random.default_rng(5).normal(size=(y.size, 20))
    r = audit_features(y, t, noise, estimator="discretize", estimator_options=SMALL, n_boot=60,
                       n_perm=0, seed=3, measure_options=TOL)
    v, (lo, hi) = r[0].values, r[0].intervals["redundancy"]
    assert lo < 0.0 < hi                            # Red = 0 lies within the (unclipped) interval
    assert v["redundancy"] < 0.03                   # plug-in bias only (bits)
    assert v["unique_teacher"] > 1.0                # the teacher's knowledge is left to distill


def test_model_copy_student_and_teacher_as_student():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    x = torch.randn(600, 6)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    r = audit(net, net, (x, y), [("1", "1")], estimator="discretize",
              estimator_options=SMALL, ci=None, batch_size=128)
    v = r[0].values
    assert v["unique_teacher"] == pytest.approx(0.0, abs=1e-7)
    assert v["redundancy"] == pytest.approx(v["mi_teacher"], abs=1e-7)
    assert r.n_samples == 600 and r[0].intervals is None


def test_invariant_to_data_order_and_batching(latent):
    y, _, _, t, s = latent
    perm = np.random.default_rng(9).permutation(y.size)
    opts = {"estimator": "discretize", "estimator_options": SMALL, "n_boot": 10, "n_perm": 5,
            "measure_options": TOL}
    a = audit_features(y, t, s, **opts)
    b = audit_features(y[perm], t[perm], s[perm], chunk_size=97, **opts)
    c = audit_features(y[perm], t[perm], s[perm], max_fit_samples=500, **opts)
    d = audit_features(y, t, s, max_fit_samples=500, chunk_size=200, **opts)
    assert a[0].values == b[0].values and a[0].intervals == b[0].intervals
    assert a[0].details["p_values"] == b[0].details["p_values"]
    assert c[0].values == d[0].values and c[0].intervals == d[0].intervals


def test_model_audit_invariant_to_order():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    x = torch.randn(500, 5)
    y = (x[:, 0] + x[:, 2] > 0).long()
    perm = torch.randperm(500)
    opts = {"estimator": "discretize", "estimator_options": SMALL, "n_boot": 20, "n_perm": 0,
            "measure_options": TOL}
    a = audit(net, net, (x, y), [("1", "1")], batch_size=64, **opts)
    b = audit(net, net, (x[perm], y[perm]), [("1", "1")], batch_size=100, **opts)
    for q, value in a[0].values.items():
        assert b[0].values[q] == pytest.approx(value, abs=1e-12)


def test_fit_on_one_split_apply_to_another(latent):
    y, c_t, c_s, t, s = latent
    rng = np.random.default_rng(11)
    # the fitting split: other samples of the same clusters (same centres)
    idx = rng.permutation(y.size)
    fit_idx, audit_idx = idx[:500], idx[500:]
    r = audit_features(y[audit_idx], t[audit_idx], s[audit_idx],
                       fit=(y[fit_idx], t[fit_idx], s[fit_idx]), estimator="discretize",
                       estimator_options=SMALL, ci=None, n_perm=0, measure_options=TOL)
    ref = _latent_pid(y[audit_idx], c_t[audit_idx], c_s[audit_idx])
    assert r.n_fit_samples == 500 and r.n_samples == 700
    assert r.settings["fitted_on"] == "fit_data"
    assert r[0]["redundancy"] == pytest.approx(ref.redundancy, abs=1e-6)


def test_nuisance_teacher_in_samples():
    """T = (Z, G): Z carries the label, G is high-entropy noise. A student holding Z shares the
    task knowledge (Red = I(Y;T)); one holding G shares none (Red ~ 0), although it shares more
    with T in the I(T;S) sense."""
    rng = np.random.default_rng(2)
    n = 1500
    z = (rng.random(n) < 0.3).astype(int)
    g = rng.integers(0, 4, n)
    y = z
    zf, gf = _clusters(z, 6, rng), _clusters(g, 6, rng)
    teacher = np.concatenate([zf, gf], axis=1)
    opts = {"estimator": "discretize", "ci": None, "n_perm": 0, "measure": "broja"}
    rz = audit_features(y, teacher, zf, estimator_options={"n_clusters": 8, "n_components": 6,
                                                            "scaling": None}, **opts)
    # student = G: the discretiser of S needs only 4 clusters
    rg = audit_features(y, [teacher], [gf], estimator_options={"n_clusters": 8,
                                                                "n_components": 6,
                                                                "scaling": None}, **opts)
    h_z = -(0.3 * math.log2(0.3) + 0.7 * math.log2(0.7))
    assert rz[0]["redundancy"] == pytest.approx(rz[0]["mi_teacher"], abs=1e-6)
    assert rz[0]["mi_teacher"] == pytest.approx(_mi_bits(y, z), abs=1e-9)
    assert abs(rz[0]["mi_teacher"] - h_z) < 0.02
    assert rg[0]["redundancy"] < 0.01
    assert rg[0]["unique_teacher"] == pytest.approx(rg[0]["mi_teacher"], abs=0.01)
    # I(T;S) is larger for S = G: H(G) = 2 bits vs H(Z) = 0.88 bits
    assert _mi_bits(g, g) > _mi_bits(z, z)


def test_trained_teacher_knows_more_than_untrained(digits_teachers):
    trained, untrained, test = digits_teachers
    opts = {"estimator": "paper", "ci": None, "n_perm": 0, "measure": "mmi"}
    rt = audit(trained, trained, test, [("fc", "fc")], **opts)
    ru = audit(untrained, untrained, test, [("fc", "fc")], **opts)
    h_y = math.log2(10)
    assert rt[0]["mi_teacher"] > 0.75 * h_y          # trained: most of H(Y) = 3.32 bits
    assert ru[0]["mi_teacher"] < 0.35 * h_y           # random weights: little of it
    assert rt[0]["mi_teacher"] - ru[0]["mi_teacher"] > 1.5


@pytest.fixture(scope="module")
def digits_teachers():
    import pidkit_distill as pd

    train, test = pd.data.load_digits()
    torch.manual_seed(0)
    trained = pd.distill(None, pd.models.get_model("digits_cnn", width=8), train, method="none",
                         epochs=4, batch_size=64, optimizer="adam", lr=1e-2, seed=0,
                         progress=False).student
    untrained = pd.models.untrained_teacher("digits_cnn", 0, width=8)
    return trained, untrained, test


@pytest.mark.parametrize("kwargs,match,kind", [
    ({"estimator": "kmeans"}, "estimator", PIDValueError),
    ({"ci": 1.5}, "ci", PIDValueError),
    ({"n_boot": -1}, "n_boot", PIDValueError),
    ({"seed": 1.5}, "seed", PIDTypeError),
    ({"interval": "bca"}, "interval", PIDValueError),
    ({"measure": "ccs", "estimator": "gaussian"}, "measure", PIDValueError),
    ({"measure": "brojaa"}, "measure", PIDValueError),
    ({"estimator_options": {"clusters": 3}}, "estimator_options", PIDValueError),
    ({"layers": [("a",)]}, "layers", PIDTypeError),
])
def test_bad_arguments(latent, kwargs, match, kind):
    y, _, _, t, s = latent
    with pytest.raises(kind, match=match):
        audit_features(y, t, s, **kwargs)


def test_bad_models_and_data():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3))
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    with pytest.raises(PIDValueError, match="not found"):
        audit(net, net, (x, y), [("0", "nope")])
    with pytest.raises(PIDValueError, match=r"^data: holds labels that are not whole numbers"):
        audit(net, net, (x, y.float() + 0.5), [("0", "0")])
    with pytest.raises(PIDTypeError, match=r"^data: holds labels of dtype bool"):
        audit(net, net, (x, y > 0), [("0", "0")])
    with pytest.raises(PIDValueError, match="labels"):
        audit(net, net, (x, y[:10]), [("0", "0")])
    with pytest.raises(PIDValueError, match="samples"):
        audit_features(np.zeros(5, int), np.zeros((6, 2)), np.zeros((5, 2)))


def test_float32_features_audit_like_float64():
    """Float32 network features are audited in float64 (the default ``dtype``; widening is
    exact), so the same features passed as float32 or float64 give the same report exactly.
    Class structure in a 16-dimensional subspace under isotropic noise (the benchmark's
    construction), so some samples sit near cluster boundaries."""
    rng = np.random.default_rng(21)
    n, dim = 1500, 128
    c = rng.integers(0, 6, n)
    y = np.where(rng.random(n) < 0.8, c, rng.integers(0, 6, n))

    def layer(codes):
        basis = rng.normal(size=(16, dim)) / 4
        return (rng.normal(size=(6, 16)) * 1.5)[codes] @ basis + rng.normal(size=(n, dim))

    t = layer(c).astype(np.float32)
    s = layer(np.where(rng.random(n) < 0.5, c, rng.integers(0, 6, n))).astype(np.float32)
    opts = dict(ci=None, seed=3, measure_options=TOL,
                estimator_options={"n_clusters": 6, "n_components": 6})
    r32 = audit_features(y, t, s, **opts)
    r64 = audit_features(y, t.astype(np.float64), s.astype(np.float64), **opts)
    assert r32.settings["dtype"] == "float64"
    assert r32.pairs[0].values == r64.pairs[0].values
    assert r32.pairs[0].chance == r64.pairs[0].chance
    assert r64.pairs[0].values["redundancy"] > 0.3      # a non-trivial audit


def test_basic_interval_is_the_percentile_one_reflected(latent):
    """interval="basic" and "percentile" come from the same replicates (same seed):
    basic = [2v - q_hi, 2v - q_lo], never clipped, so a basic interval lies below the estimate
    exactly when the percentile one lies above it (docs/audit.md)."""
    y, _, _, t, s = latent
    opts = dict(estimator="discretize", estimator_options=SMALL, n_boot=40, seed=2,
                measure_options=TOL)
    basic = audit_features(y, t, s, interval="basic", **opts)[0]
    pct = audit_features(y, t, s, interval="percentile", **opts)[0]
    assert basic.values == pct.values
    for key, v in basic.values.items():
        lo, hi = pct.intervals[key]
        assert basic.intervals[key] == pytest.approx((2 * v - hi, 2 * v - lo), abs=1e-12), key
        if lo > v:
            assert basic.intervals[key][1] < v


def test_audit_leaves_every_submodule_in_its_own_mode():
    # A wrapper in training mode around a frozen teacher (eval): the audit must not switch the
    # inner teacher to training (its BatchNorm would then use batch statistics and drift).
    from pidkit_distill import data, models

    _, test = data.load_digits()
    inner = models.freeze(models.get_model("digits_cnn", width=4))
    teacher = models.NuisanceTeacher(inner, layers=["layer3"], channels=4,
                                     kind="random_features", scale=2.0)
    x = torch.stack([test[i][0] for i in range(32)])
    with torch.no_grad():
        before = teacher(x).clone()
    running = inner.layer3[1].running_mean.clone()
    audit(teacher, teacher, test, [("taps.0", "taps.0")], ci=None)
    assert teacher.training and not any(m.training for m in inner.modules())
    with torch.no_grad():
        assert torch.equal(teacher(x), before)
    assert torch.equal(inner.layer3[1].running_mean, running)


# -- chance levels, p-values, bias correction, sparse-cell warning (issue 17) ---------------------
CHANCE = {"estimator": "discretize", "estimator_options": {"n_clusters": 3, "n_components": 3},
          "ci": None, "n_perm": 39, "measure_options": TOL}


@pytest.mark.parametrize("estimator", ["discretize", "gaussian"])
def test_independent_features_are_at_chance(estimator):
    """Features independent of the labels: across 20 seeds, for every quantity, p < 0.05 at
    most 4 times (a valid p-value gives p < 0.05 with probability <= 0.05; Binomial(20, 0.05)
    exceeds 4 with probability 0.003), and the bias-corrected values sit within twice the
    null's spread (95th percentile - mean) of 0 and average to about 0."""
    opts = dict(CHANCE, estimator=estimator)
    if estimator == "gaussian":
        opts.pop("estimator_options")
        opts.pop("measure_options")
    low = dict.fromkeys(("mi_teacher", "mi_student", "redundancy", "unique_teacher",
                         "unique_student", "synergy"), 0)
    corrected_mi, raw_synergy = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        n = 300
        y = rng.integers(0, 3, n)
        r = audit_features(y, rng.normal(size=(n, 16)), rng.normal(size=(n, 16)), seed=seed,
                           **opts)[0]
        for q, p in r.p_values.items():
            assert 1 / 40 <= p <= 1
            low[q] += p < 0.05
        for q in r.values:
            assert r.corrected[q] == r.values[q] - r.chance[q]
        raw_synergy.append(r.values["synergy"])
        corrected_mi.append(r.corrected["mi_teacher"])
        for q in ("mi_teacher", "synergy"):
            assert abs(r.corrected[q]) < 2 * (r.chance_q95[q] - r.chance[q]), (seed, q)
    assert max(low.values()) <= 4, low
    assert abs(np.mean(corrected_mi)) < 0.01
    if estimator == "discretize":               # plug-in bias: the raw synergy sits above 0
        assert min(raw_synergy) > 0 and np.mean(raw_synergy) > 0.005


def test_real_structure_gets_the_smallest_p_value(latent):
    y, _, _, t, s = latent
    r = audit_features(y, t, s, estimator="discretize", estimator_options=SMALL, ci=None,
                       n_perm=20, seed=0, measure_options=TOL)[0]
    for q in ("mi_teacher", "mi_student", "redundancy", "unique_teacher"):
        assert r.p_values[q] == 1 / 21, q
        assert r.corrected[q] > 0.1, q
        assert r.chance[q] < r.chance_q95[q] < r.values[q]


def test_chance_levels_are_on_by_default(latent):
    from pidkit_distill.audits.run import DEFAULT_INTERVAL, DEFAULT_N_PERM
    from pidkit_distill.commands.audit import add_arguments

    y, _, _, t, s = latent
    for estimator in ("discretize", "gaussian"):
        r = audit_features(y[:400], t[:400], s[:400], estimator=estimator, n_boot=10,
                           estimator_options=SMALL if estimator == "discretize" else None)
        assert r.settings["n_perm"] == DEFAULT_N_PERM == 100
        assert r[0].chance is not None and r[0].p_values is not None
        assert r[0].details["dropped_replicates"]["null"] == 0
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(["--teacher", "t", "--student", "s"])
    assert parsed.n_perm == DEFAULT_N_PERM
    assert parsed.interval == DEFAULT_INTERVAL == "normal"


def test_sparse_cells_warn_with_the_fix():
    rng = np.random.default_rng(5)
    n = 450
    y = rng.integers(0, 10, n)
    t, s = rng.normal(size=(n, 64)), rng.normal(size=(n, 64))
    with pytest.warns(UserWarning, match=r"per cell \(fewer than 5\).*n_clusters': 3"):
        r = audit_features(y, t, s, ci=None, n_perm=5, seed=0)
    assert r[0].details["samples_per_cell"] < 5
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        r = audit_features(y % 2, t, s, ci=None, n_perm=5, seed=0,
                           estimator_options={"n_clusters": 2, "n_components": 2})
    assert r[0].details["samples_per_cell"] >= 5
