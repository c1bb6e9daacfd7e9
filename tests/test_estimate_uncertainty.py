"""The one resampling engine (pidkit.estimate.uncertainty): intervals and p-values against hand
computations, the draws, dropped replicates, and that every estimator and the audits take their
intervals and p-values from it (same numbers as a direct call of the engine on the same
replicates, and a spy on the engine's interval function)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)

import pidkit
from pidkit.estimate import (
    GaussianMoments,
    JointCounts,
    count_replicates,
    discrete_route,
    pid_from_counts,
    pid_from_samples,
    uncertainty,
)
from pidkit.estimate.gaussian_route import gaussian_vectors, standardized
from pidkit.estimate.uncertainty import (
    INTERVALS,
    Replicates,
    bootstrap,
    bootstrap_counts,
    drop_failed,
    interval,
    p_values,
    permutations,
    summarize,
)
from pidkit_distill import audit_features
from pidkit_distill.audits.run import DEFAULT_INTERVAL


# -- hand computations ---------------------------------------------------------------------------
def test_percentile_and_basic_intervals_by_hand():
    """Replicates 1..11 (one quantity): numpy's linear quantiles at 0.05 and 0.95 are
    1 + 0.05 * 10 = 1.5 and 1 + 0.95 * 10 = 10.5; basic = 2 * point - reversed."""
    boot = np.arange(1.0, 12.0)[:, None]
    point = np.array([4.0])
    lo, hi = interval(point, boot, 0.9, "percentile")
    assert (lo[0], hi[0]) == pytest.approx((1.5, 10.5))
    lo, hi = interval(point, boot, 0.9, "basic")
    assert (lo[0], hi[0]) == pytest.approx((8.0 - 10.5, 8.0 - 1.5))   # (-2.5, 6.5)
    assert lo[0] < 0                                                    # never clipped
    assert INTERVALS == ("percentile", "basic", "normal")


def test_normal_interval_by_hand():
    """Replicates 1..11: mean 6, SD (ddof 1) sqrt(11); the bias 6 - 4 = 2 moves the centre to
    4 - 2 = 2; half width z_0.95 sqrt(11) + TIE_TOL; never clipped (lower end below 0)."""
    boot = np.arange(1.0, 12.0)[:, None]
    point = np.array([4.0])
    half = 1.6448536269514722 * math.sqrt(11.0) + uncertainty.TIE_TOL
    lo, hi = interval(point, boot, 0.9, "normal")
    assert (lo[0], hi[0]) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-12)
    assert lo[0] < 0
    # one replicate: no spread, only the round-off margin
    lo, hi = interval(point, boot[:1], 0.9, "normal")
    assert (lo[0], hi[0]) == pytest.approx((7.0 - 1e-9, 7.0 + 1e-9), abs=1e-15)


def test_normal_interval_contains_zero_where_the_null_does_not_reject():
    """The boundary rule: 0 joins the interval of each quantity with p > 1 - ci, and only
    those; the other intervals are unchanged (the rule only ever extends an interval)."""
    rng = np.random.default_rng(0)
    point = np.array([0.30, 0.30, 0.002])
    boot = point + 0.01 + 0.02 * rng.standard_normal((200, 3))
    plain_lo, plain_hi = interval(point, boot, 0.95, "normal")
    assert plain_lo[0] > 0 and plain_lo[2] < 0 < plain_hi[2]
    p = np.array([0.01, 0.2, 0.9])
    lo, hi = interval(point, boot, 0.95, "normal", p)
    assert (lo[0], hi[0]) == (plain_lo[0], plain_hi[0])          # p <= 0.05: as computed
    assert lo[1] == 0.0 and hi[1] == plain_hi[1]                  # p > 0.05: extended to 0
    assert (lo[2], hi[2]) == (plain_lo[2], plain_hi[2])           # already contains 0
    # an interval entirely below 0 (bias larger than the estimate) extends up to 0
    lo, hi = interval(np.array([0.001]), np.array([[0.1], [0.11], [0.12]]), 0.95, "normal",
                      np.array([0.5]))
    assert lo[0] < 0 and hi[0] == 0.0
    # summarize feeds the null's p-values into the rule
    reps = Replicates(point, boot, np.full((19, 3), 0.25))
    s = summarize(reps, 0.95, "normal")
    np.testing.assert_allclose(s.p_values, [1 / 20, 1 / 20, 1.0])
    assert s.lower[0] == plain_lo[0] and s.lower[1] == plain_lo[1]
    assert s.lower[2] == plain_lo[2]


def test_exact_zero_estimates_keep_zero_inside():
    """Estimate and replicates at 0 up to round-off (a copied layer's Uni): the basic
    reflection can end at -1e-16 and miss a truth of 0; the normal interval's round-off margin
    TIE_TOL keeps 0 inside."""
    point = np.array([2e-16])
    boot = np.array([[5e-16], [5e-16], [6e-16], [7e-16]])
    lo, hi = interval(point, boot, 0.95, "basic")
    assert hi[0] < 0
    lo, hi = interval(point, boot, 0.95, "normal")
    assert lo[0] < 0 < hi[0] and hi[0] - lo[0] < 3e-9


def test_permutation_p_value_convention():
    """p = (1 + #{null >= observed}) / (1 + P): never 0, 1 / (P + 1) at the smallest."""
    null = np.array([[0.1, 5.0], [0.2, 6.0], [0.3, 7.0], [0.4, 8.0]])
    point = np.array([0.25, 9.0])
    np.testing.assert_allclose(p_values(point, null), [(1 + 2) / 5, 1 / 5])
    # a tie within TIE_TOL counts as reaching the observed value
    tie = np.array([[0.25 - 0.5 * uncertainty.TIE_TOL]])
    assert p_values(np.array([0.25]), tie)[0] == 1.0


def test_summary_bias_and_spread():
    boot = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    reps = Replicates(np.array([2.0, 1.0]), boot, np.zeros((0, 2)))
    s = summarize(reps, 0.5, "percentile")
    np.testing.assert_allclose(s.bias, [1.0, 1.0])
    np.testing.assert_allclose(s.std, [2.0, 2.0])
    np.testing.assert_allclose(s.lower, [2.0, 1.0])
    np.testing.assert_allclose(s.upper, [4.0, 3.0])
    assert s.p_values is None
    assert summarize(reps, None).lower is None
    doubled = reps.map(lambda v: np.column_stack([v.sum(axis=1)]))
    np.testing.assert_allclose(doubled.boot[:, 0], [1.0, 5.0, 9.0])
    assert doubled.point.tolist() == [3.0]


# -- draws -------------------------------------------------------------------------------------
def test_bootstrap_counts_resample_indices_or_cells():
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    counts = bootstrap_counts(rng, np.ones(10, dtype=int), 3)
    expected = np.stack([np.bincount(ref.integers(0, 10, 10), minlength=10) for _ in range(3)])
    np.testing.assert_array_equal(counts, expected)
    assert (counts.sum(axis=1) == 10).all()
    rng, ref = np.random.default_rng(8), np.random.default_rng(8)
    cells = np.array([5, 0, 3, 2])
    counts = bootstrap_counts(rng, cells, 4)
    expected = np.stack([ref.multinomial(10, cells / 10) for _ in range(4)])
    np.testing.assert_array_equal(counts, expected)
    assert (counts[:, 1] == 0).all()
    perms = permutations(np.random.default_rng(1), 5, 2)
    assert sorted(perms[0]) == list(range(5))


def test_results_do_not_depend_on_the_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    y, x0, x1 = rng.integers(0, 3, size=(3, 400))
    kw = dict(measure="mmi", n_boot=25, n_perm=15, seed=4)
    whole = pid_from_samples(y, x0, x1, **kw)
    z = rng.standard_normal((300, 3))
    g_whole = pid_from_samples(z[:, 0], z[:, 1], z[:, 2], estimator="gaussian", **kw)
    monkeypatch.setattr(uncertainty, "CHUNK_ELEMENTS", 7)
    assert pid_from_samples(y, x0, x1, **kw).to_dict() == whole.to_dict()
    g = pid_from_samples(z[:, 0], z[:, 1], z[:, 2], estimator="gaussian", **kw)
    assert g.intervals == g_whole.intervals and g.details == g_whole.details


def test_failed_replicates_are_dropped_counted_and_all_failed_is_an_error():
    values = np.arange(20.0).reshape(10, 2)
    values[[2, 5], 1] = np.nan
    with pytest.warns(UserWarning, match="2 of 10 replicates"):
        kept, dropped = drop_failed(values, "bootstrap")
    assert dropped == 2 and kept.shape == (8, 2)
    kept, dropped = drop_failed(values[:1], "bootstrap")
    assert dropped == 0
    with pytest.raises(pidkit.PIDValueError, match="none of the 4 replicates"):
        bootstrap(lambda w: w, lambda s: np.full((len(s), 3), np.nan), np.ones(6, dtype=int), 4,
                  np.random.default_rng(0))


# -- one engine, used everywhere ------------------------------------------------------------------
def test_discrete_route_intervals_are_the_engines_on_its_replicates():
    rng = np.random.default_rng(3)
    counts = rng.multinomial(500, rng.dirichlet(np.ones(8))).reshape(2, 2, 2)
    kw = dict(n_boot=30, n_perm=20, seed=9)
    r = pid_from_counts(counts, measure="mmi", base=math.e, interval="basic", **kw)
    point, reps = count_replicates(counts, "mmi", **kw)
    s = summarize(reps, 0.95, "basic")
    nodes = r.lattice.nodes
    for i, node in enumerate(nodes):
        assert r.intervals[node] == pytest.approx((s.lower[i], s.upper[i]), abs=1e-15)
        assert r.details["p_values"]["atoms"][pidkit.node_label(node)] == s.p_values[i]


def test_gaussian_route_intervals_are_the_engines_on_hand_drawn_replicates():
    """Redraw the bootstrap of the Gaussian route with the engine's primitives (index resampling
    from the bootstrap stream of the seed), evaluate with the estimator's hook, and summarise."""
    rng = np.random.default_rng(4)
    z = rng.standard_normal((150, 3)) @ np.linalg.cholesky(
        np.array([[1.0, 0.5, 0.4], [0.5, 1.0, 0.2], [0.4, 0.2, 1.0]])).T
    r = pidkit.gaussian_pid_from_samples(z[:, 0], z[:, 1], z[:, 2], base=math.e, n_boot=40,
                                         n_perm=0, seed=11, interval="basic")
    _, (_, boot_seed, _) = uncertainty.seed_sequences(11)
    draw = np.random.default_rng(boot_seed)
    c = standardized(z[np.lexsort(z.T[::-1])])   # the route draws for rows in lexicographic order
    covs = []
    for _ in range(40):
        idx = draw.integers(0, 150, 150)
        cc = c[idx] - c[idx].mean(axis=0)
        covs.append(cc.T @ cc / 150)
    boot = gaussian_vectors(np.array(covs), 150, (1, 1, 1), "broja", True)
    point = np.array([r.redundancy, *r.unique, r.synergy, r.mutual_information])
    lo, hi = interval(point, boot, 0.95, "basic")
    for i, node in enumerate(r.lattice.nodes):
        assert r.intervals[node] == pytest.approx((lo[i], hi[i]), abs=1e-10)


def test_every_estimator_and_audit_goes_through_the_engine(monkeypatch):
    """A spy on the engine's interval function: every estimator with intervals calls it, once
    per result (the audits once per layer pair)."""
    calls = []
    real = uncertainty.interval

    def spy(*args, **kwargs):
        calls.append(args[2:])
        return real(*args, **kwargs)

    monkeypatch.setattr(uncertainty, "interval", spy)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    t = y[:, None] + rng.standard_normal((300, 3))
    s = rng.standard_normal((300, 3))
    kw = dict(n_boot=10, n_perm=5, seed=0)
    runs = {
        "plugin": lambda: pid_from_samples(y, y, rng.integers(0, 2, 300), **kw),
        "discretize": lambda: pid_from_samples(y, t, s, estimator="discretize", n_clusters=2,
                                               n_components=2, **kw),
        "gaussian": lambda: pid_from_samples(y, t, s, estimator="gaussian", **kw),
        "gaussian_pid_from_samples": lambda: pidkit.gaussian_pid_from_samples(y, t, s, **kw),
        "counts": lambda: JointCounts().update(y, y, y).pid(**kw),
        "audit discrete": lambda: audit_features(y, t, s, estimator="discretize", n_boot=10,
                                                 estimator_options={"n_clusters": 2,
                                                                    "n_components": 2}),
        "audit gaussian": lambda: audit_features(y, t, s, estimator="gaussian", n_boot=10,
                                                 estimator_options={"n_components": 2}),
    }
    for name, run in runs.items():
        before = len(calls)
        run()
        assert len(calls) == before + 1, name


def test_audit_intervals_are_the_engines_on_the_atoms_replicates(monkeypatch):
    """The audit's six quantities are summaries of the same replicates as the atoms (captured
    from the audit's call of count_replicates): I(Y;T) = Red + Uni_T replicate by replicate;
    the audit's default (normal) intervals are never clipped."""
    import pidkit.estimate as estimate

    captured = []
    real = estimate.count_replicates

    def capture(*args, **kwargs):
        out = real(*args, **kwargs)
        captured.append(out[1])
        return out

    monkeypatch.setattr(estimate, "count_replicates", capture)
    rng = np.random.default_rng(6)
    n = 400
    y = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, 4)) * 5
    t = centres[y] + 0.01 * rng.standard_normal((n, 4))
    s = rng.standard_normal((n, 4))                 # an independent student: Red = 0
    r = audit_features(y, t, s, estimator="discretize", n_boot=40, n_perm=10, seed=5,
                       base=math.e, measure="mmi",
                       estimator_options={"n_clusters": 3, "n_components": 3})[0]
    (reps,) = captured
    assert reps.boot.shape == (40, 5) and reps.null.shape == (10, 5)
    six = reps.map(lambda v: np.column_stack([v[:, 0] + v[:, 1], v[:, 0] + v[:, 2], v[:, 0],
                                              v[:, 1], v[:, 2], v[:, 3]]))
    summary = summarize(six, 0.95, DEFAULT_INTERVAL)
    for i, q in enumerate(("mi_teacher", "mi_student", "redundancy", "unique_teacher",
                           "unique_student", "synergy")):
        assert r.values[q] == pytest.approx(six.point[i], abs=1e-12)
        assert r.intervals[q] == pytest.approx((summary.lower[i], summary.upper[i]), abs=1e-12)
        assert r.details["p_values"][q] == summary.p_values[i]
    assert r.intervals["redundancy"][0] < 0 < r.intervals["redundancy"][1]   # not clipped


def test_gaussian_audit_is_the_gaussian_estimator():
    """The audit's Gaussian point estimate is the estimator of gaussian_pid_from_samples (bias
    corrected by default) on the same rows; bias_correction=False gives gaussian_pid of the
    maximum-likelihood covariance."""
    from pidkit.estimate import one_hot

    rng = np.random.default_rng(2)
    n = 1000
    y = rng.integers(0, 3, n)
    t = np.eye(3)[y][:, :2] + rng.standard_normal((n, 2))
    s = t[:, :1] + 0.5 * rng.standard_normal((n, 1))
    opts = {"n_components": None, "scaling": None}
    r = audit_features(y, t, s, estimator="gaussian", estimator_options=opts, ci=None)[0]
    ref = pidkit.gaussian_pid_from_samples(y, t, s, ci=None, n_perm=0)
    assert r.values["redundancy"] == pytest.approx(ref.redundancy, abs=1e-10)
    assert r.values["synergy"] == pytest.approx(ref.synergy, abs=1e-10)
    raw = audit_features(y, t, s, estimator="gaussian", ci=None,
                         estimator_options={**opts, "bias_correction": False})[0]
    z = np.concatenate([one_hot(y, 3), t, s], axis=1)
    plug = pidkit.gaussian_pid(np.cov(z.T, bias=True), dims=(2, 2, 1))
    assert raw.values["synergy"] == pytest.approx(plug.synergy, abs=1e-10)
    moments = GaussianMoments().update(one_hot(y, 3), t, s).pid()
    assert moments.synergy == pytest.approx(ref.synergy, abs=1e-10)


# -- the shuffle null of a count table, drawn as tables --------------------------------------------
def test_shuffled_tables_keep_both_margins_and_skip_empty_rows_and_columns():
    table = np.array([[30, 5, 0, 0], [0, 0, 0, 0], [2, 40, 0, 10], [0, 3, 0, 20]])
    draws = uncertainty.shuffled_tables(np.random.default_rng(0), table, 500)
    assert draws.shape == (500, 4, 4) and draws.dtype == np.int64 and (draws >= 0).all()
    assert (draws.sum(axis=2) == table.sum(axis=1)).all()
    assert (draws.sum(axis=1) == table.sum(axis=0)).all()
    assert (draws[:, 1] == 0).all() and (draws[:, :, 2] == 0).all()
    assert uncertainty.shuffled_tables(np.random.default_rng(0), table, 0).shape == (0, 4, 4)
    with pytest.raises(pidkit.PIDValueError, match="^table: must be a 2-D table"):
        uncertainty.shuffled_tables(np.random.default_rng(0), table.reshape(2, 2, 4), 3)


def test_shuffled_tables_are_the_permutation_distribution():
    """Cell (i, j) of a shuffled table is hypergeometric: mean r_i c_j / N and variance
    r_i c_j (N - r_i)(N - c_j) / (N^2 (N - 1)); and the 2 x 2 corner has the hypergeometric pmf
    of Fisher's exact test. Margins: 5 standard errors of the M draws (deterministic seed)."""
    table = np.array([[30, 5, 1], [2, 40, 10], [0, 3, 20]])
    m = 20_000
    draws = uncertainty.shuffled_tables(np.random.default_rng(1), table, m).astype(float)
    r, c, n = table.sum(1)[:, None], table.sum(0)[None, :], table.sum()
    mean = r * c / n
    var = r * c * (n - r) * (n - c) / (n**2 * (n - 1))
    assert np.all(np.abs(draws.mean(0) - mean) <= 5 * np.sqrt(var / m))
    # the sample variance of M draws has standard error about var * sqrt(2 / M) (near-normal)
    assert np.all(np.abs(draws.var(0, ddof=1) - var) <= 5 * var * np.sqrt(2 / m) + 1e-12)
    two = np.array([[7, 3], [2, 8]])
    x = uncertainty.shuffled_tables(np.random.default_rng(2), two, m)[:, 0, 0]
    r0, c0, n = 10, 9, 20
    exact = np.array([math.comb(r0, k) * math.comb(n - r0, c0 - k) / math.comb(n, c0)
                      for k in range(c0 + 1)])
    freq = np.bincount(x, minlength=c0 + 1) / m
    assert np.all(np.abs(freq - exact) <= 5 * np.sqrt(exact * (1 - exact) / m) + 1e-12)


def test_large_count_tables_draw_their_null_as_tables_with_the_chance_level_of_theory():
    """N = 10^6 samples in 4 x 16 cells: the null takes the table sampler (milliseconds; the
    per-sample permutations took seconds), and 2 N I(Y;X) of the null replicates is about
    chi-square with (4 - 1)(16 - 1) = 45 degrees of freedom: mean 45, standard deviation
    sqrt(90); the mean of 200 replicates within 5 standard errors."""
    rng = np.random.default_rng(3)
    counts = rng.multinomial(10**6, rng.dirichlet(np.ones(64) * 5)).reshape(4, 4, 4)
    assert discrete_route._draws_tables(counts.reshape(4, -1))
    small = rng.multinomial(400, np.ones(27) / 27).reshape(3, 3, 3)
    assert not discrete_route._draws_tables(small.reshape(3, -1))   # 400 < 30 x 2 x 8
    _, reps = count_replicates(counts, "mmi", n_boot=0, n_perm=200, seed=0)
    chi2 = 2 * 10**6 * reps.null[:, -1]
    assert abs(chi2.mean() - 45) <= 5 * math.sqrt(90 / 200)


def test_a_null_between_the_two_limits_is_drawn_and_does_not_depend_on_the_chunking(
        monkeypatch):
    """2e8 samples: above the per-sample limit (10^8), below numpy's hypergeometric one
    (10^9): drawn as tables; the replicates do not depend on CHUNK_ELEMENTS."""
    counts = np.array([[[5, 1], [2, 3]], [[1, 4], [3, 1]]]) * 10**7
    assert counts.sum() > discrete_route.MAX_PERMUTED_SAMPLES
    first = count_replicates(counts, "mmi", n_boot=0, n_perm=30, seed=1)[1].null
    monkeypatch.setattr(uncertainty, "CHUNK_ELEMENTS", 7)
    again = count_replicates(counts, "mmi", n_boot=0, n_perm=30, seed=1)[1].null
    np.testing.assert_array_equal(first, again)
    assert first.shape == (30, 5) and np.all(np.isfinite(first))
