"""Discretizer (scaling -> PCA -> KMeans, quantile bins), the paper preset, the discretise
route, and the sensitivity sweep."""

import math

import numpy as np
import pytest

from pidkit.estimate import (
    PRESETS,
    Discretizer,
    Projector,
    pid_from_samples,
    plot_sensitivity,
    sensitivity,
)


def _blobs(latent, dim, seed, spread=0.05, n_centres=None):
    """Points near well-separated random centres, one centre per latent value."""
    rng = np.random.default_rng(seed)
    k = int(latent.max()) + 1 if n_centres is None else n_centres
    centres = rng.normal(size=(k, dim)) * 3
    return centres[latent] + spread * rng.normal(size=(latent.shape[0], dim))


def _bijective(a, b):
    """Whether the two labelings agree up to a renaming of the labels."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_discretizer_fitted_on_train_applies_to_test_split():
    rng = np.random.default_rng(0)
    latent = rng.integers(0, 5, 3000)
    x = _blobs(latent, 64, seed=1).reshape(3000, 4, 16)  # trailing axes are flattened
    train, test = slice(0, 2000), slice(2000, 3000)
    d = Discretizer(n_clusters=5, n_components=4, random_state=0).fit(x[train])
    centres = d.cluster_centers_.copy()
    codes_test = d.transform(x[test])
    assert _bijective(codes_test, latent[test])
    np.testing.assert_array_equal(d.cluster_centers_, centres)  # transform never refits
    np.testing.assert_array_equal(d.transform(x[train]), d.fit_transform(x[train]))
    # a fitted discretiser passed to pid_from_samples is applied, not refitted
    y = latent % 2
    r = pid_from_samples(y[test], x[test], x[test], estimator="discretize", measure="mmi",
                         discretizers=[d, d], n_boot=0, n_perm=0, seed=0)
    by_codes = pid_from_samples(y[test], codes_test, codes_test, measure="mmi", n_boot=0,
                                n_perm=0, seed=0)
    assert r.to_dict()["atoms"] == by_codes.to_dict()["atoms"]


def test_chunked_float32_transform_matches_float64():
    rng = np.random.default_rng(1)
    spectrum = np.diag([8.0, 6.0, 4.5, 3.0, 2.0])  # well-separated principal axes
    x = rng.normal(size=(1000, 5)) @ spectrum @ rng.normal(size=(5, 128))
    x += 0.1 * rng.normal(size=(1000, 128))
    d32 = Discretizer(n_clusters=6, n_components=5, chunk_size=97, random_state=3).fit(x)
    d64 = Discretizer(n_clusters=6, n_components=5, dtype="float64", random_state=3).fit(x)
    z32, z64 = d32.projector_.transform(x), d64.projector_.transform(x)
    np.testing.assert_allclose(z32, z64, atol=1e-5)
    # hand-written reference: L2 rows, centre, project on the principal axes
    xs = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(z64, (xs - xs.mean(0)) @ d64.projector_.components_.T,
                               atol=1e-12)
    _, _, vt = np.linalg.svd(xs - xs.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(d64.projector_.components_), np.abs(vt[:5]), atol=1e-8)


def test_paper_preset_settings_and_pipeline():
    """Paper: flatten, L2-normalise, PCA 10 / KMeans 10 (CIFAR-10), 5 / 3 (CIFAR-100)."""
    assert PRESETS["paper-cifar10"]["n_components"] == 10
    assert PRESETS["paper-cifar10"]["n_clusters"] == 10
    assert PRESETS["paper-cifar100"]["n_components"] == 5
    assert PRESETS["paper-cifar100"]["n_clusters"] == 3
    for preset in PRESETS.values():
        assert preset["scaling"] == "l2" and preset["fit_size"] is None
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 3, 8, 8)) + np.repeat(rng.normal(size=(10, 192)), 60, 0).reshape(
        600, 3, 8, 8)
    for name, (k, c) in {"paper-cifar10": (10, 10), "paper-cifar100": (5, 3)}.items():
        codes = Discretizer.from_preset(name, random_state=5).fit_transform(x)
        flat = normalize(x.reshape(600, -1))
        # exact PCA as the reference: scikit-learn's "auto" picks its randomized solver here,
        # whose 10th axis (at the noise floor) is 2% off in variance
        z = PCA(n_components=k, svd_solver="full").fit(flat).transform(flat)
        reference = KMeans(n_clusters=c, random_state=5).fit(z).labels_
        np.testing.assert_array_equal(codes, reference)


def test_paper_preset_in_nats():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 1200)
    t = _blobs(y, 40, seed=4, spread=0.3)
    s = rng.normal(size=(1200, 40))
    bits = pid_from_samples(y, t, s, estimator="discretize", preset="paper-cifar10",
                            measure="mmi", n_boot=0, n_perm=0, seed=1)
    nats = pid_from_samples(y, t, s, estimator="discretize", preset="paper-cifar10",
                            measure="mmi", base=math.e, n_boot=0, n_perm=0, seed=1)
    assert nats.unit == "nats"
    assert nats.mutual_information == pytest.approx(bits.mutual_information * math.log(2))
    assert bits.details["discretizers"][0]["n_clusters"] == 10
    assert bits.details["preset"] == "paper-cifar10"
    # T's clusters recover the 10 labels: I(Y;T) = H(Y) = log2(10) up to sampling
    assert bits.unique[0] + bits.redundancy == pytest.approx(
        _plugin_entropy_bits(y), abs=0.02)


def _plugin_entropy_bits(y):
    p = np.bincount(y) / y.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_discretize_route_recovers_the_latent_pid_exactly():
    """Sources are noisy embeddings of discrete latents; with the right number of clusters the
    codes are the latents relabelled, so the estimate equals the plug-in PID of the latents."""
    rng = np.random.default_rng(4)
    n = 2000
    u_t, u_s = rng.integers(0, 3, n), rng.integers(0, 4, n)
    y = (u_t + u_s) % 3
    t, s = _blobs(u_t, 100, seed=5), _blobs(u_s, 100, seed=6)
    exact = pid_from_samples(y, u_t, u_s, measure="mmi", n_boot=0, n_perm=0, seed=0)
    estimated = pid_from_samples(
        y, t, s, estimator="discretize", measure="mmi", n_boot=0, n_perm=0, seed=0,
        discretizers=[Discretizer(3, 5, random_state=0), Discretizer(4, 5, random_state=0)])
    for node in exact.atoms:
        assert estimated.atoms[node] == pytest.approx(exact.atoms[node], abs=1e-12)


def test_quantile_binning_low_dimensions():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4000, 2))
    d = Discretizer(method="quantile", n_bins=4, n_components=None, scaling=None).fit(x)
    codes = d.transform(x)
    assert d.n_codes_ == 16
    # reference: per-column quartiles, combined row-major
    q = [np.quantile(x[:, j], [0.25, 0.5, 0.75]) for j in range(2)]
    ref = np.searchsorted(q[0], x[:, 0], side="right") * 4 + np.searchsorted(q[1], x[:, 1],
                                                                              side="right")
    np.testing.assert_array_equal(codes, ref)
    marginal = np.bincount(codes // 4, minlength=4)
    assert marginal.min() >= 990 and marginal.max() <= 1010  # equal mass
    y = (x[:, 0] > np.median(x[:, 0])).astype(int)  # exactly the lower/upper half
    r = pid_from_samples(y, x[:, :1], x[:, 1:], estimator="discretize", method="quantile",
                         n_bins=2, n_components=None, scaling=None, measure="mmi", n_boot=0,
                         n_perm=0, seed=0)
    assert r.unique[0] + r.redundancy == pytest.approx(1.0, abs=1e-12)  # I(Y; X0) = 1 bit


def test_fit_size_subsample_and_minibatch_are_reproducible():
    rng = np.random.default_rng(7)
    latent = rng.integers(0, 4, 5000)
    x = _blobs(latent, 32, seed=8).astype(np.float32)
    kw = dict(n_clusters=4, n_components=3, fit_size=800, kmeans="minibatch", random_state=2)
    a, b = Discretizer(**kw).fit_transform(x), Discretizer(**kw).fit_transform(x)
    np.testing.assert_array_equal(a, b)
    assert _bijective(a, latent)


def test_sensitivity_table_and_plot():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, 900)
    t = _blobs(y, 30, seed=10, spread=1.0)
    s = rng.normal(size=(900, 30))
    table = sensitivity(y, t, s, n_clusters=[2, 4], n_components=[2, 3], measure="mmi",
                        n_boot=5, n_perm=5, seed=3)
    assert [(r["n_components"], r["n_clusters"]) for r in table] == [(2, 2), (2, 4), (3, 2),
                                                                       (3, 4)]
    single = pid_from_samples(y, t, s, estimator="discretize", measure="mmi", n_clusters=4,
                              n_components=3, n_boot=5, n_perm=5, seed=3)
    assert table[3]["unique_0"] == single.unique[0]
    assert table[3]["redundancy_lower"] == single.intervals[single.lattice.bottom][0]
    assert table[3]["p_synergy"] == single.details["p_values"]["synergy"]
    for row in table:
        total = row["redundancy"] + row["unique_0"] + row["unique_1"] + row["synergy"]
        assert total == pytest.approx(row["mutual_information"], abs=1e-9)
    axes = plot_sensitivity(table)
    assert len(axes) == 4 and len(axes[0].lines) + len(axes[0].containers) >= 2


@pytest.mark.parametrize("scaling", ["l2", "standard", None])
@pytest.mark.parametrize("solver", ["randomized", "covariance"])
def test_projector_solvers_match_numpy_svd_and_keep_the_dtype(scaling, solver):
    """Reference: scale explicitly, centre, numpy SVD. Both solvers (the randomized one works
    on the implicit scaled, centred operator) give the same axes, variances and projections;
    float32 input stays float32 and agrees with float64 to float32 round-off (1e-4 relative)."""
    rng = np.random.default_rng(7)
    spectrum = np.diag([9.0, 7.0, 5.0, 3.5, 2.5])
    x = rng.normal(size=(800, 5)) @ spectrum @ rng.normal(size=(5, 300)) + 3.0
    x += 0.2 * rng.normal(size=(800, 300))
    if scaling == "l2":
        xs = x / np.linalg.norm(x, axis=1, keepdims=True)
    elif scaling == "standard":
        xs = (x - x.mean(0)) / x.std(0)
    else:
        xs = x
    xc = xs - xs.mean(0)
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    p64 = Projector(5, scaling=scaling, pca_solver=solver, random_state=0).fit(x)
    assert p64.dtype_ == np.float64
    np.testing.assert_allclose(np.abs(p64.components_), np.abs(vt[:5]), atol=1e-8)
    np.testing.assert_allclose(p64.explained_variance_, sv[:5] ** 2 / 799, rtol=1e-8)
    np.testing.assert_allclose(p64.explained_variance_ratio_, sv[:5] ** 2 / (sv ** 2).sum(),
                               rtol=1e-8)
    np.testing.assert_allclose(p64.transform(x), xc @ p64.components_.T, atol=1e-10)
    x32 = x.astype(np.float32)
    p32 = Projector(5, scaling=scaling, pca_solver=solver, random_state=0).fit(x32)
    z32 = p32.transform(x32)
    assert z32.dtype == np.float32 and p32.components_.dtype == np.float32
    z64 = p64.transform(x)
    np.testing.assert_allclose(z32, z64, atol=1e-4 * np.abs(z64).max())


def test_projector_does_not_modify_or_copy_its_input():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    before = x.copy()
    p = Projector(4, random_state=0).fit(x)
    p.transform(x)
    np.testing.assert_array_equal(x, before)
    assert p.get_params()["dtype"] is None and p.dtype_ == np.float32


def test_auto_scaling_standardises_few_features_and_l2_normalises_embeddings():
    """scaling="auto": a one-feature source keeps its magnitude (standardised), so its codes
    separate more than the sign would; a 16-feature source is L2-normalised, as in the
    audits (the codes equal those of an explicit scaling="l2" fit)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 1))
    d = Discretizer(n_clusters=6, random_state=0).fit(x)
    assert d.scaling_ == "standard" and d.n_components_ == 1
    assert len(np.unique(d.transform(x))) == 6          # l2 would leave 2 values (the sign)
    wide = rng.normal(size=(400, 16))
    auto = Discretizer(n_clusters=5, random_state=0).fit(wide)
    explicit = Discretizer(n_clusters=5, scaling="l2", random_state=0).fit(wide)
    assert auto.scaling_ == "l2"
    np.testing.assert_array_equal(auto.transform(wide), explicit.transform(wide))


def test_scalar_sources_work_with_the_discretize_defaults():
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(2, 600))
    y = (x + z > 0).astype(int)
    r = pid_from_samples(y, x, z, estimator="discretize", measure="mmi", n_boot=0, n_perm=0,
                         seed=0)
    assert r.mutual_information > 0.5                  # y is a function of x + z


@pytest.mark.parametrize("scaling", ["l2", "standard", None])
@pytest.mark.parametrize(("dtype", "exponent"), [("float64", 300), ("float64", -300),
                                                 ("float32", 70), ("float32", -70)])
def test_projector_is_unchanged_by_data_in_extreme_units(scaling, dtype, exponent):
    # the squares of such values overflow or underflow the dtype: "l2" row norms came out
    # inf (every row scaled to 0) or 0 (rows left unscaled), "standard" spreads inf or 0;
    # a power of two 2**k is exact, so the output is the same to the bit ("l2", "standard")
    # or that of the data in other units, the same times a power of two (None)
    x = np.random.default_rng(1).normal(size=(120, 12)).astype(dtype)
    far = x * np.asarray(2.0**exponent, dtype=dtype)
    for k in (3, None):
        z = Projector(k, scaling=scaling, random_state=0).fit(x).transform(x)
        z_far = Projector(k, scaling=scaling, random_state=0).fit(far).transform(far)
        assert z_far.dtype == np.dtype(dtype) and np.isfinite(z_far).all()
        if scaling is None:
            unit = z_far.flat[np.abs(z_far).argmax()] / z.flat[np.abs(z).argmax()]
            assert unit == 2.0 ** round(math.log2(abs(unit)))   # a power of two
            z_far = z_far / unit
        np.testing.assert_array_equal(z_far, z)


@pytest.mark.parametrize("scaling", ["auto", "standard", None])
def test_discretize_route_is_invariant_to_the_units_of_a_source(scaling):
    # each source times 1e160 or 1e-300: the same atoms (the l2 and standard scalings squared
    # the raw values: "has 1 distinct samples" at 1e160, information silently lost at 1e-300)
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    t = np.eye(3)[y] @ rng.normal(size=(3, 20)) + rng.normal(size=(n, 20))
    s = np.eye(3)[y] @ rng.normal(size=(3, 5)) + rng.normal(size=(n, 5))

    def atoms(a, b):
        r = pid_from_samples(y, a, b, estimator="discretize", n_clusters=3, measure="mmi",
                             scaling=scaling, n_boot=0, n_perm=0, seed=0)
        return [r.redundancy, *r.unique, r.synergy]

    expected = atoms(t, s[:, 3:])
    assert expected[0] > 0.1 and expected[1] > 0.5
    for unit in (1e160, 1e-300):
        np.testing.assert_allclose(atoms(t * unit, s[:, 3:] / unit), expected, rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("options", [
    {"n_clusters": 4, "n_components": 3},
    {"n_clusters": 3, "n_components": 2, "fit_size": 150, "kmeans": "minibatch"},
    {"n_clusters": 3, "n_components": 2, "discretize_target": True},
])
def test_discretize_route_does_not_depend_on_the_row_order(options):
    """KMeans, PCA and the fit_size subsample saw the rows in input order: permuted rows with
    the same seed gave other codes (MI 0.9810 vs 0.9771 bits in the report). The fits
    now see the rows in a canonical order, so atoms, intervals and p-values are identical."""
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 3, n)
    t = rng.normal(size=(n, 8)) + y[:, None]
    s = (rng.normal(size=(n, 5)) + (y == 1)[:, None]).astype(np.float32)
    if options.get("discretize_target"):
        y = y[:, None] + 0.3 * rng.normal(size=(n, 2))
    kw = {"estimator": "discretize", "measure": "broja", "n_boot": 20, "n_perm": 20,
          "seed": 0, **options}
    a = pid_from_samples(y, t, s, **kw)
    for seed in (1, 2):
        p = np.random.default_rng(seed).permutation(n)
        b = pid_from_samples(y[p], t[p], s[p], **kw)
        assert a.atoms == b.atoms and a.mutual_information == b.mutual_information
        assert a.intervals == b.intervals
        assert a.details["p_values"] == b.details["p_values"]


def test_discretize_route_names_the_row_of_a_non_finite_sample_as_passed():
    """The rows are sorted before fitting; a NaN is reported at its row in the input."""
    rng = np.random.default_rng(0)
    t = rng.normal(size=(50, 3))
    t[37, 1] = np.nan
    with pytest.raises(ValueError, match=r"^sources\[0\]: .*first at row 37"):
        pid_from_samples(rng.integers(0, 2, 50), t, rng.normal(size=50),
                         estimator="discretize", n_clusters=2, ci=None, n_perm=0)


def test_kmeans_too_few_separable_clusters_is_pidkits_warning_naming_the_variable():
    # distinct int64 samples that standard scaling squeezes next to one extreme row: KMeans
    # cannot tell 3 clusters apart in float64 (scikit-learn's own warning said so, unnamed)
    import warnings

    from pidkit.errors import ConvergenceWarning

    x = np.r_[np.arange(19), 2**62].astype(np.int64)[:, None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = Discretizer(n_clusters=3, random_state=0).fit(x, name="layer3")
    assert [w.category for w in caught] == [ConvergenceWarning]
    message = str(caught[0].message)
    assert message.startswith("layer3: KMeans separated only 2 clusters of the n_clusters=3")
    assert "Pass n_clusters=2" in message
    assert np.unique(d.transform(x)).tolist() == [0, 1]
