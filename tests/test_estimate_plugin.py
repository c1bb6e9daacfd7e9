"""pid_from_samples, plug-in route: convergence to exact atoms, bias, bootstrap spread,
calibration of the shuffle-null p-values, reproducibility."""

import math

import numpy as np
import pytest
from scipy import stats

import pidkit
from pidkit.discrete import MEASURES
from pidkit.estimate import miller_madow_mi_bias, pid_from_counts, pid_from_samples
from pidkit.estimate.discrete_route import canonical_table

#: Measures exercised: the closed-form MMI always, BROJA once it is registered.
MEASURES_UNDER_TEST = [m for m in ("mmi", "broja") if m in MEASURES]

# AND gate (Y = X0 AND X1, inputs uniform): BROJA atoms in bits from the literature
# (Bertschinger et al. 2014; Griffith & Koch 2014), as listed in the project's reference table.
# MMI gives the same values here: red = min_i I(Y;X_i) = I(Y;X0), syn = I(Y;X0,X1) - I(Y;X0).
AND_ATOMS = {"{0}{1}": 0.3112781244, "{0}": 0.0, "{1}": 0.0, "{0:1}": 0.5}


def _entropy_bits(p):
    p = np.asarray(p, dtype=float).ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _mi_bits(p_yx):
    """I(Y;X) of a 2-D pmf p[y, x], computed directly (independent of pidkit)."""
    return _entropy_bits(p_yx.sum(1)) + _entropy_bits(p_yx.sum(0)) - _entropy_bits(p_yx)


def _sample(p, n, rng):
    """n samples (y, x0, x1) from the pmf p[y, x0, x1]."""
    flat = rng.choice(p.size, size=n, p=p.ravel())
    return np.unravel_index(flat, p.shape)


def _random_pmf(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(27) * 0.7).reshape(3, 3, 3)
    return p


def test_and_gate_samples_converge_to_literature_atoms():
    rng = np.random.default_rng(11)
    x0, x1 = rng.integers(0, 2, size=(2, 200_000))
    for measure in MEASURES_UNDER_TEST:
        r = pid_from_samples(x0 & x1, x0, x1, measure=measure, n_boot=0, n_perm=0, seed=0)
        for label, value in AND_ATOMS.items():
            assert r.atoms[label] == pytest.approx(value, abs=5e-3), (measure, label)


@pytest.mark.parametrize("measure", MEASURES_UNDER_TEST)
def test_error_shrinks_with_sample_size(measure):
    p = _random_pmf(3)
    exact = pidkit.pid(p, measure=measure)
    exact_vec = np.array([exact.atoms[a] for a in exact.atoms])
    rng = np.random.default_rng(5)
    rmse = {}
    for n in (500, 50_000):
        errors = []
        for _ in range(12):
            y, x0, x1 = _sample(p, n, rng)
            r = pid_from_samples(y, x0, x1, measure=measure, n_boot=0, n_perm=0, seed=0)
            errors.append(np.array([r.atoms[a] for a in exact.atoms]) - exact_vec)
        rmse[n] = float(np.sqrt(np.mean(np.square(errors))))
    # Sampling error falls like 1/sqrt(n) (factor 10 here) plus a 1/n bias: demand a factor 4.
    assert rmse[50_000] < rmse[500] / 4
    assert rmse[50_000] < 0.01


def test_mmi_closed_form_from_samples():
    """Plug-in MMI atoms equal the closed form computed from the empirical pmf in the test."""
    rng = np.random.default_rng(8)
    y, x0, x1 = _sample(_random_pmf(4), 3000, rng)
    r = pid_from_samples(y, x0, x1, measure="mmi", n_boot=0, n_perm=0, seed=0)
    counts = np.zeros((3, 3, 3))
    np.add.at(counts, (y, x0, x1), 1)
    p = counts / counts.sum()
    i0, i1 = _mi_bits(p.sum(2)), _mi_bits(p.sum(1))
    i01 = _mi_bits(p.reshape(3, 9))
    assert r.redundancy == pytest.approx(min(i0, i1), abs=1e-10)
    assert r.unique == pytest.approx((i0 - min(i0, i1), i1 - min(i0, i1)), abs=1e-10)
    assert r.synergy == pytest.approx(i01 - max(i0, i1), abs=1e-10)
    assert r.mutual_information == pytest.approx(i01, abs=1e-10)


def test_bias_estimates_match_the_plugin_bias_under_independence():
    """Y uniform on 3, X0 on 4 values, X1 constant-free noise, all independent: the true
    I(Y;X0,X1) is 0 and the plug-in bias is about (Ky-1)(Kx-1)/(2n) nats."""
    rng = np.random.default_rng(2)
    n, reps = 400, 40
    mi, mm, boot_bias = [], [], []
    for _ in range(reps):
        y, x0, x1 = rng.integers(0, 3, n), rng.integers(0, 4, n), rng.integers(0, 2, n)
        r = pid_from_samples(y, x0, x1, measure="mmi", base=math.e, n_boot=30, n_perm=0,
                             seed=int(rng.integers(1 << 30)))
        mi.append(r.mutual_information)
        mm.append(r.details["mutual_information_bias_miller_madow"])
        boot_bias.append(r.details["bias"]["mutual_information"])
    expected = (3 - 1) * (8 - 1) / (2 * n)
    assert np.mean(mi) == pytest.approx(expected, rel=0.15)
    assert np.mean(mm) == pytest.approx(expected, rel=0.1)
    # The bootstrap bias is smaller than the true bias (it sees p-hat, not p) but same order.
    assert 0.4 * expected < np.mean(boot_bias) < 1.2 * expected


def test_bootstrap_std_tracks_the_sampling_spread():
    p = _random_pmf(6)
    rng = np.random.default_rng(9)
    estimates, stds = [], []
    for _ in range(25):
        y, x0, x1 = _sample(p, 2000, rng)
        r = pid_from_samples(y, x0, x1, measure="mmi", n_boot=40, n_perm=0,
                             seed=int(rng.integers(1 << 30)))
        estimates.append(r.mutual_information)
        stds.append(r.details["bootstrap_std"]["mutual_information"])
        lo, hi = r.intervals[r.lattice.top]
        assert lo <= hi
    assert np.mean(stds) == pytest.approx(np.std(estimates, ddof=1), rel=0.35)


def test_shuffle_null_pvalues_are_uniform_under_independence():
    """Calibration: with target and sources independent, p-values of continuous statistics are
    uniform (KS test), and every p-value is valid: P(p <= a) <= a."""
    rng = np.random.default_rng(2024)
    pvals = {"redundancy": [], "synergy": [], "mutual_information": [], "unique": []}
    for _ in range(100):
        y, x0, x1 = rng.integers(0, 3, 150), rng.integers(0, 3, 150), rng.integers(0, 3, 150)
        r = pid_from_samples(y, x0, x1, measure="mmi", n_boot=0, n_perm=19,
                             seed=int(rng.integers(1 << 30)))
        p = r.details["p_values"]
        for key in ("redundancy", "synergy", "mutual_information"):
            pvals[key].append(p[key])
        pvals["unique"].extend(p["unique"])
    for key in ("redundancy", "synergy", "mutual_information"):
        assert stats.kstest(pvals[key], "uniform").pvalue > 1e-3, key
    # Unique MMI atoms are 0 for one source in every sample (ties): conservative, still valid.
    for key, values in pvals.items():
        frac = np.mean(np.asarray(values) <= 0.1)
        assert frac <= 0.1 + 3 * math.sqrt(0.09 / len(values)), key


def test_null_detects_dependence():
    rng = np.random.default_rng(1)
    x0, x1 = rng.integers(0, 2, size=(2, 600))
    r = pid_from_samples(x0 ^ x1, x0, x1, measure="mmi", n_boot=0, n_perm=99, seed=0)
    assert r.details["p_values"]["synergy"] == pytest.approx(0.01)
    assert r.details["p_values"]["redundancy"] > 0.05


def test_seed_reproduces_everything_and_none_records_the_seed():
    rng = np.random.default_rng(0)
    y, x0, x1 = rng.integers(0, 3, size=(3, 500))
    kw = dict(measure="mmi", n_boot=30, n_perm=30)
    a = pid_from_samples(y, x0, x1, seed=7, **kw).to_dict()
    b = pid_from_samples(y, x0, x1, seed=7, **kw).to_dict()
    c = pid_from_samples(y, x0, x1, seed=8, **kw).to_dict()
    assert a == b
    assert a["intervals"] != c["intervals"]
    d = pid_from_samples(y, x0, x1, seed=None, **kw)
    e = pid_from_samples(y, x0, x1, seed=d.details["seed"], **kw)
    assert d.to_dict() == e.to_dict()


def test_counts_route_equals_samples_route_and_units():
    rng = np.random.default_rng(3)
    y, x0, x1 = rng.integers(0, 2, size=(3, 800))
    counts = np.zeros((2, 2, 2), dtype=int)
    np.add.at(counts, (y, x0, x1), 1)
    kw = dict(measure="mmi", n_boot=20, n_perm=20, seed=4)
    from_samples = pid_from_samples(y, x0, x1, **kw)
    from_counts = pid_from_counts(counts, **kw)
    assert from_samples.to_dict()["atoms"] == from_counts.to_dict()["atoms"]
    assert from_samples.intervals == from_counts.intervals
    nats = pid_from_counts(counts, base=math.e, **kw)
    assert nats.synergy == pytest.approx(from_counts.synergy * math.log(2), rel=1e-12)
    assert nats.details["p_values"] == from_counts.details["p_values"]
    assert miller_madow_mi_bias(counts) == pytest.approx(
        (np.count_nonzero(counts) - 2 - 4 + 1) / (2 * 800))


def test_arbitrary_integer_labels_and_composite_sources():
    """Labels are recoded (any integers); a 2-column source is one composite variable."""
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 2, size=(2, 1000))
    y = np.where(a ^ b, 10, -3)
    r = pid_from_samples(y, np.stack([a, b], axis=1), rng.integers(0, 2, 1000), measure="mmi",
                         n_boot=0, n_perm=0, seed=0)
    assert r.unique[0] > 0.98  # all of I(Y; X0, X1) = 1 bit is unique to the composite source
    assert r.mutual_information == pytest.approx(1.0, abs=0.01)
    assert r.details["alphabet_sizes"] == [2, 4, 2]


def test_names_and_result_table():
    rng = np.random.default_rng(5)
    y, t, s = rng.integers(0, 2, size=(3, 300))
    r = pid_from_samples(y, t, s, measure="mmi", n_boot=10, n_perm=10, seed=0,
                         names=("Y", "T", "S"))
    assert r.source_names == ("T", "S") and r.target_name == "Y"
    assert "interval" in str(r)
    assert set(r.to_dict()["intervals"]) == {"{0}{1}", "{0}", "{1}", "{0:1}"}


def test_batched_broja_bootstrap_equals_one_solve_per_replicate():
    """The bootstrap and null replicates of BROJA are solved as one batch; the reference redraws
    the same tables (same seeds) and solves each one alone with pidkit.pid (trimmed table),
    then takes the same quantiles and p-values."""
    rng = np.random.default_rng(11)
    counts = rng.multinomial(400, rng.dirichlet(np.full(27, 0.5))).reshape(3, 3, 3)
    counts[2, 2, :] = 0      # zero cells, some outcomes rare: replicates lose whole outcomes
    seed, n_boot, n_perm = 5, 25, 10
    r = pid_from_counts(counts, base=math.e, n_boot=n_boot, n_perm=n_perm, seed=seed,
                        interval="percentile", measure_options={"tol": 1e-10})
    _, boot_seed, null_seed = np.random.SeedSequence(seed).spawn(3)
    n = int(counts.sum())
    counts = canonical_table(counts)       # the replicates are drawn from the canonical order

    def atoms(table):
        t = table[np.ix_(*(table.sum(axis=tuple(a for a in range(3) if a != ax)) > 0
                           for ax in range(3)))]
        res = pidkit.pid(t / t.sum(), measure="broja", base=math.e, tol=1e-10)
        return [res.redundancy, *res.unique, res.synergy]

    draw = np.random.default_rng(boot_seed)
    boot = np.array([atoms(draw.multinomial(n, (counts / n).ravel()).reshape(counts.shape))
                     for _ in range(n_boot)])
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
    got = [r.intervals[node] for node in (((0,), (1,)), ((0,),), ((1,),), ((0, 1),))]
    np.testing.assert_allclose(np.array(got), np.stack([lo, hi], axis=1), atol=1e-8)
    # null replicates: the same permutations of the target rows
    shuffle = np.random.default_rng(null_seed)
    flat_x = counts.reshape(3, -1)
    y_rows = np.repeat(np.arange(3), flat_x.sum(axis=1))
    x_rows = np.concatenate([np.repeat(np.arange(9), flat_x[y]) for y in range(3)])
    nulls = np.array([atoms(np.bincount(shuffle.permutation(y_rows) * 9 + x_rows,
                                        minlength=27).reshape(3, 3, 3))
                      for _ in range(n_perm)])
    point = np.array([r.redundancy, *r.unique, r.synergy])
    expected = (1 + (nulls >= point - 1e-9).sum(axis=0)) / (1 + n_perm)
    pv = r.details["p_values"]
    assert [pv["redundancy"], *pv["unique"], pv["synergy"]] == pytest.approx(expected.tolist())


@pytest.mark.parametrize("measure", ["mmi", "broja"])
def test_relabelled_samples_give_the_same_intervals_and_p_values_with_the_same_seed(measure):
    # the bootstrap drew its multinomial over the cells in the order of the sorted labels, so
    # renaming the outcomes of any variable changed the intervals and p-values (statistically
    # equivalent, not reproducible); the table is now put in a label-free order first
    rng = np.random.default_rng(3)
    n = 150
    y = rng.integers(0, 3, n)
    a = (y + rng.integers(0, 2, n)) % 4
    b = rng.integers(0, 3, n)
    perm_a, perm_b = rng.permutation(4), rng.permutation(3)
    kwargs = {"measure": measure, "seed": 1, "n_boot": 40, "n_perm": 20}
    r = pid_from_samples(y, a, b, **kwargs)
    s = pid_from_samples(100 - 7 * y, perm_a[a] * 3 + 10, perm_b[b], **kwargs)
    assert s.redundancy == r.redundancy and s.unique == r.unique and s.synergy == r.synergy
    assert s.intervals == r.intervals and s.details["p_values"] == r.details["p_values"]
    assert s.details["bias"] == r.details["bias"]


def test_canonical_table_is_the_same_for_every_relabelling():
    # random count tables (sparse ones, with symmetries, included), each variable relabelled at
    # random: one table in the end, holding the same counts
    rng = np.random.default_rng(0)
    for shape in [(2, 2, 2), (3, 4, 5), (4, 3), (3, 3, 3, 2), (6, 2, 2)]:
        for _ in range(30):
            table = rng.poisson(rng.choice([0.2, 0.5, 2.0, 20.0]), size=shape)
            canonical = canonical_table(table)
            assert sorted(canonical.ravel()) == sorted(table.ravel())
            for _ in range(3):
                perms = [rng.permutation(k) for k in shape]
                np.testing.assert_array_equal(canonical_table(table[np.ix_(*perms)]), canonical)
    xor = np.zeros((2, 2, 2), dtype=int)
    xor[0, 0, 0] = xor[0, 1, 1] = xor[1, 0, 1] = xor[1, 1, 0] = 5
    np.testing.assert_array_equal(canonical_table(xor[::-1]), canonical_table(xor))
