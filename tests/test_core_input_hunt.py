"""Inputs users pass to the core API that broke or were read inconsistently (a third sweep,
after test_adversarial_inputs.py and test_core_user_bugs.py): each case compares against the
array route or a closed form, or checks the typed error names the argument."""

import numpy as np
import pytest

import pidkit
from pidkit.errors import PIDTypeError
from pidkit.estimate import GaussianMoments, JointCounts, pid_from_samples

torch = pytest.importorskip("torch")

Y = np.array([0, 1, 1, 0, 2, 1, 0, 2] * 5)
A = np.array([0, 1, 0, 1, 1, 1, 0, 0] * 5)
B = np.array([1, 1, 0, 0, 2, 2, 0, 1] * 5)
QUICK = {"estimator": "plugin", "measure": "mmi", "ci": None, "n_perm": 0}


def re_name(name):
    """``name`` as a regular expression (``sources[0]``)."""
    return name.replace("[", r"\[").replace("]", r"\]")


# --- float tensors of whole numbers: codes for every count route ------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_float_tensor_codes_count_as_their_integers_everywhere(dtype):
    y, a, b = (torch.tensor(v, dtype=dtype) for v in (Y, A, B))
    np.testing.assert_array_equal(pidkit.joint_pmf(y, a, b), pidkit.joint_pmf(Y, A, B))
    expected = np.zeros((3, 2, 3), dtype=np.int64)
    np.add.at(expected, (Y, A, B), 1)
    np.testing.assert_array_equal(JointCounts().update(y, a, b).counts, expected)
    assert (pid_from_samples(y, a, b, **QUICK).atoms
            == pid_from_samples(Y, A, B, **QUICK).atoms)


def test_float_tensor_codes_merge_with_integer_batches():
    counts = JointCounts().update(torch.tensor(Y[:20], dtype=torch.float32),
                                  torch.tensor(A[:20]), torch.tensor(B[:20], dtype=torch.float64))
    counts.update(torch.tensor(Y[20:]), torch.tensor(A[20:], dtype=torch.float16),
                  torch.tensor(B[20:]))
    np.testing.assert_array_equal(counts.counts, JointCounts().update(Y, A, B).counts)


@pytest.mark.parametrize(("bad", "kind", "words"), [
    ([0.5, 1.0], PIDTypeError, "non-integer"),
    ([float("nan"), 1.0], pidkit.PIDValueError, "NaN"),
    ([float("inf"), 1.0], pidkit.PIDValueError, "NaN or infinite"),
    ([1e20, 0.0], pidkit.PIDValueError, "cells"),
    ([-1.0, 0.0], pidkit.PIDValueError, "negative"),
])
def test_float_tensors_that_are_not_codes_are_refused_by_name(bad, kind, words):
    other = torch.tensor([0, 1])
    for call, name in ((JointCounts().update, "sources[0]"), (pidkit.joint_pmf, "columns[1]")):
        with pytest.raises(kind, match=rf"^{re_name(name)}: ") as info:
            call(other, torch.tensor(bad))
        assert words in str(info.value)


# --- meta tensors: no values to read ------------------------------------------------------------
META = "is a torch tensor on the meta device, which holds no values"


@pytest.mark.parametrize(("call", "name"), [
    (lambda m: pidkit.pid(m), "p"),
    (lambda m: pidkit.broja(m), "p"),
    (lambda m: pidkit.information.entropy(m), "p"),
    (lambda m: pidkit.to_dit(m), "p"),
    (lambda m: pidkit.gaussian_pid(torch.empty(3, 3, device="meta"), (1, 1, 1)), "cov"),
    (lambda m: pidkit.joint_pmf(m.reshape(-1).long(), m.reshape(-1).long()), "columns[0]"),
    (lambda m: JointCounts().update(m.reshape(-1).long(), m.reshape(-1).long()), "target"),
    (lambda m: pid_from_samples(m.reshape(-1).long(), m.reshape(-1), m.reshape(-1), **QUICK),
     "target"),
    (lambda m: pidkit.gaussian_pid_from_samples(m.reshape(-1), m.reshape(-1), m.reshape(-1)),
     "m"),
    (lambda m: GaussianMoments().update(m.reshape(-1), m.reshape(-1), m.reshape(-1)), "target"),
    (lambda m: pidkit.estimate.encode(m.reshape(-1).long()), "labels"),
])
def test_meta_tensors_are_refused_by_name(call, name):
    meta = torch.empty(2, 2, 2, device="meta")
    with pytest.raises(PIDTypeError, match=rf"^{re_name(name)}: {META}"):
        call(meta)


def test_meta_tensor_in_fixed_iterations_mode_keeps_its_shapes():
    """broja(iterations=N) reads nothing on the host: a meta tensor goes through (shape
    inference), as any device does."""
    r = pidkit.broja(torch.empty(3, 2, 2, 2, device="meta"), batch=True, iterations=2)
    assert r.synergy.shape == (3,) and r.synergy.device.type == "meta"


# --- percentages: named as such on every route ---------------------------------------------
@pytest.mark.parametrize("call", [
    lambda p: pidkit.pid(p), lambda p: pidkit.broja(p), lambda p: pidkit.information.entropy(p),
    lambda p: pidkit.pid(torch.tensor(p)), lambda p: pidkit.broja(torch.tensor(p)),
    lambda p: pidkit.pid(torch.tensor(p, dtype=torch.float32)),
])
def test_a_pmf_in_percent_is_named(call):
    with pytest.raises(pidkit.PIDValueError, match=r"^p: sums to 100, not 1 .*It looks like "
                       r"percentages: divide p by 100"):
        call(100 * pidkit.gates.gate("AND"))


def test_a_tensor_batch_names_the_item_and_its_sum():
    """The tensor route said only 'does not sum to 1'; it now says what the sum is, and of
    which item, as the numpy route does."""
    p = np.stack([pidkit.gates.gate("AND"), 2 * pidkit.gates.gate("XOR")])
    for batch in (p, torch.tensor(p)):
        with pytest.raises(pidkit.PIDValueError,
                           match=r"^p: sums to 2 \(item 1 of the batch\), not 1 \(tolerance"):
            pidkit.broja(batch, batch=True)


# --- lists that numpy turns into strings ------------------------------------------------------
@pytest.mark.parametrize(("call", "name"), [
    (lambda c: pidkit.joint_pmf(c, [0, 1, 0, 1]), "columns[0]"),
    (lambda c: pid_from_samples(c * 10, [0, 1, 0, 1] * 10, [0, 0, 1, 1] * 10, **QUICK),
     "target"),
    (lambda c: JointCounts().update(c, [0, 1, 0, 1]), "target"),
    (lambda c: pidkit.estimate.encode(c), "labels"),
])
def test_labels_mixing_strings_and_numbers_are_refused(call, name):
    """np.asarray([1, "1", 2, 1]) is ["1", "1", "2", "1"]: the labels 1 and "1" became one
    (the pmf of [1, "1", 2, 1] against [0, 1, 0, 1] came out with 2 rows, not 3)."""
    with pytest.raises(PIDTypeError, match=rf"^{re_name(name)}: mixes str labels with int"):
        call([1, "1", 2, 1])
    # one kind of label is read as before: the strings "1" and "2" are two labels
    assert call(["1", "1", "2", "1"]) is not None


def test_rows_of_labels_may_hold_one_kind_per_column():
    codes, size = pidkit.estimate.encode([[1, "a"], [2, "b"], [1, "a"]])
    assert size == 2 and codes.tolist() == [0, 1, 0]
    with pytest.raises(PIDTypeError, match=r"^labels: mixes str labels with int values "
                       r"\(column 0 of each row\)"):
        pidkit.estimate.encode([[1, "a"], ["1", "b"]])


# --- dit distributions of one variable ---------------------------------------------------------
def test_dit_scalar_distributions_convert_to_one_axis():
    """dit's scalar distributions (outcomes 0, 1.5, 'ab' rather than tuples) raised a bare
    TypeError ('int' object is not iterable) in from_dit and pidkit.pid."""
    dit = pytest.importorskip("dit")
    p, names = pidkit.from_dit(dit.uniform_scalar_distribution(3))
    np.testing.assert_allclose(p, [1 / 3] * 3, rtol=0, atol=1e-15)
    assert names == ("0",)
    p, _ = pidkit.from_dit(dit.Distribution([1.5, 2.5, 0.5], [0.5, 0.25, 0.25]))
    np.testing.assert_array_equal(p, [0.25, 0.5, 0.25])          # sorted alphabet 0.5, 1.5, 2.5
    with pytest.raises(pidkit.PIDValueError, match=r"^p: needs at least 2 axes"):
        pidkit.pid(dit.uniform_scalar_distribution(3))


def test_cli_names_a_pmf_file_in_percent(capsys, tmp_path):
    from pidkit.cli import main

    path = tmp_path / "and_percent.npy"
    np.save(path, 100 * pidkit.gates.gate("AND"))
    assert main(["pid", str(path), "--measure", "mmi"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: sums to 100, not 1" in err
    assert "divide the array by 100" in err and "Pass --normalize" in err


# --- sources passed as one list -----------------------------------------------------------------
def test_a_list_of_sources_in_one_argument_is_explained():
    """pid_from_samples(y, [x0, x1]) read the list as one source of 2 samples: the message
    listed the lengths only."""
    y, a, b = Y, A, B
    with pytest.raises(pidkit.PIDValueError, match=r"sources\[0\] has shape \(2, 40\), one row "
                       r"per variable: pass each source as its own argument"):
        pid_from_samples(y, [a, b], **QUICK)
    # as separate arguments the same call works, and equals the array route of joint_pmf
    r = pid_from_samples(y, a, b, **QUICK)
    expected = pidkit.pid(pidkit.joint_pmf(y, a, b), measure="mmi").atoms
    assert list(r.atoms.values()) == pytest.approx(list(expected.values()), abs=1e-12)


def test_sources_keyword_is_refused_as_such():
    """sources= was taken for an estimator option ('none given', or "['sources'] are not
    options of estimator 'plugin'")."""
    for call in (lambda: pid_from_samples(Y, sources=[A, B], **QUICK),
                 lambda: pid_from_samples(Y, A, sources=[B], **QUICK)):
        with pytest.raises(PIDTypeError, match=r"^sources: is not a keyword.*"
                           r"pid_from_samples\(y, \*xs\)"):
            call()


# --- numpy.matrix ---------------------------------------------------------------------------------
def test_numpy_matrix_pmf_reads_as_its_array():
    """np.matrix keeps two axes under every reduction: entropy and mutual_information raised a
    bare ValueError (shapes not aligned) and marginal returned a column matrix."""
    p = np.array([[0.4, 0.1], [0.1, 0.4]])
    m = np.matrix(p)
    info = pidkit.information
    assert info.entropy(m) == info.entropy(p)
    assert info.mutual_information(m, [0], [1]) == info.mutual_information(p, [0], [1])
    marginal = info.marginal(m, [0])
    assert type(marginal) is np.ndarray and marginal.tolist() == [0.5, 0.5]
    np.testing.assert_array_equal(info.specific_information(m), info.specific_information(p))
    np.testing.assert_array_equal(info.subset_mutual_information(m),
                                  info.subset_mutual_information(p))
    # closed form: I = ln 2 - h(0.2) nats, h the binary entropy in nats
    h = -(0.2 * np.log(0.2) + 0.8 * np.log(0.8))
    assert info.mutual_information(m, [0], [1]) == pytest.approx(np.log(2) - h, abs=1e-15)


# --- boolean arrays are masks, not pmfs -----------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda p: pidkit.pid(p), lambda p: pidkit.broja(p), lambda p: pidkit.information.entropy(p),
    lambda p: pidkit.information.marginal(p, [0]), lambda p: pidkit.to_dit(p),
])
def test_a_boolean_pmf_is_refused(call):
    """A bool array with one True summed to 1 and was taken for a point mass (gaussian_pid
    already refused bool covariances): most often it is a mask such as p > 0."""
    mask = np.zeros((2, 2, 2), dtype=bool)
    mask[1, 0, 1] = True
    with pytest.raises(PIDTypeError, match=r"^p: has dtype bool.*p / p\.sum\(\)"):
        call(mask)
    # the advice gives the point mass the array route computes
    assert pidkit.pid(mask / mask.sum(), measure="mmi").mutual_information == 0.0


def test_gaussian_dims_as_an_integer_tensor():
    """dims=torch.tensor([1, 1, 1]) was 'a non-integer block size', while pid takes integer
    tensors of axes; a float tensor stays refused."""
    cov = np.array([[3.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])   # M = X + Y + N, iid
    r = pidkit.gaussian_pid(cov, torch.tensor([1, 1, 1]), measure="mmi")
    assert r.atoms == pidkit.gaussian_pid(cov, (1, 1, 1), measure="mmi").atoms
    # closed form: Red = I(M;X) = 1/2 log2(3/2), Syn = 1/2 log2 3 - 2 Red + Red = 1/2 bit
    assert r.redundancy == pytest.approx(0.5 * np.log2(1.5), abs=1e-12)
    assert r.synergy == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(PIDTypeError, match=r"^dims: holds a non-integer block size"):
        pidkit.gaussian_pid(cov, torch.tensor([1.0, 1.0, 1.0]))


# --- df.columns as names --------------------------------------------------------------------------
def test_dataframe_columns_name_the_variables():
    """names=df.columns (a pandas Index: neither a Sequence nor an ndarray) was 'must be a list
    of strings' for pid_from_samples and to_dit."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"y": Y, "a": A, "b": B})
    r = pid_from_samples(df.y, df.a, df.b, names=df.columns, **QUICK)
    assert (r.target_name, r.source_names) == ("y", ("a", "b"))
    assert r.atoms == pid_from_samples(Y, A, B, **QUICK).atoms
    assert pidkit.to_dit(pidkit.gates.gate("AND"), names=pd.Index(["Y", "A", "B"])
                         ).get_rv_names() == ("Y", "A", "B")
    with pytest.raises(PIDTypeError, match=r"^names: must hold strings only"):
        pid_from_samples(Y, A, B, names=pd.Index([0, 1, 2]), **QUICK)


# --- sufficient statistics: fixed shapes and sum() -----------------------------------------------
def test_joint_counts_with_a_fixed_shape_count_the_variables():
    """JointCounts(shape=(2, 2, 2)).update(y, x) raised a bare ValueError from zip()."""
    with pytest.raises(pidkit.PIDValueError, match=r"^update: got 2 variables, shape= fixes 3"):
        JointCounts(shape=(2, 2, 2)).update([0, 1], [1, 0])


def test_sum_merges_a_list_of_statistics():
    """sum(parts) raised TypeError (0 + JointCounts): merging shards by sum() is the idiom of a
    mergeable statistic; the result equals one pass over all samples."""
    parts = [JointCounts().update(Y[i:i + 10], A[i:i + 10], B[i:i + 10]) for i in range(0, 40, 10)]
    merged = sum(parts)
    np.testing.assert_array_equal(merged.counts, JointCounts().update(Y, A, B).counts)
    assert parts[0].counts.sum() == 10                   # the parts are left as they were
    z = np.random.default_rng(0).normal(size=(40, 3))
    whole = GaussianMoments().update(z[:, 0], z[:, 1], z[:, 2])
    merged = sum(GaussianMoments().update(z[i:i + 10, 0], z[i:i + 10, 1], z[i:i + 10, 2])
                 for i in range(0, 40, 10))
    assert merged.n_samples == 40
    np.testing.assert_allclose(merged.to_covariance(), whole.to_covariance(), rtol=1e-12,
                               atol=1e-15)
    with pytest.raises(TypeError):
        1 + parts[0]


# --- lists of tensors that require grad -----------------------------------------------------------
@pytest.mark.parametrize(("call", "name"), [
    (lambda v: pidkit.pid([v * torch.tensor(pidkit.gates.gate("AND")[0]),
                           torch.tensor(pidkit.gates.gate("AND")[1])]), "p"),
    (lambda v: pidkit.information.entropy([v * 0.5, torch.tensor(0.5)]), "p"),
    (lambda v: pidkit.joint_pmf([v * 0, v], [0, 1]), "columns[0]"),
    (lambda v: pid_from_samples([v * 0, v] * 10, [0, 1] * 10, **QUICK), "target"),
])
def test_a_list_of_tensors_requiring_grad_is_a_typed_error(call, name):
    """numpy cannot read a tensor that requires grad: torch's RuntimeError came through."""
    v = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(PIDTypeError, match=rf"^{re_name(name)}: holds elements numpy cannot "
                       r"read .*torch\.stack"):
        call(v)


def test_the_stacked_tensor_is_the_differentiable_route():
    AND = torch.tensor(pidkit.gates.gate("AND"), requires_grad=True)
    rows = [AND[0], AND[1]]
    r = pidkit.pid(torch.stack(rows))
    assert float(r.synergy) == pytest.approx(0.5, abs=1e-8)
    r.synergy.backward()
    assert AND.grad is not None and bool(torch.isfinite(AND.grad).all())
