"""Labels of any kind on the discrete routes: strings, objects, pandas string and categorical
columns are labels, read by pid_from_samples (plugin; the target of discretize), joint_pmf and
JointCounts.update with the same results as integer codes (the discrete PID is label-free),
intervals and p-values of a seed included. They were refused with the advice to encode them
(JointCounts' advice, encode() per batch, numbered the labels of each batch differently). The
routes that need numbers (Gaussian, GaussianMoments, the discretiser) refuse them with a typed
error that says what to do instead."""

import os

import numpy as np
import pandas as pd
import pytest
import torch.distributed as dist
from _spawn import spawn_and_load

import pidkit
from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.estimate import (
    Discretizer,
    GaussianMoments,
    JointCounts,
    gaussian_pid_from_samples,
    pid_from_samples,
)

RNG = np.random.default_rng(21)
N = 400
Y = RNG.integers(0, 3, N)
X0 = RNG.integers(0, 2, N)
X1 = (Y + X0 * RNG.integers(0, 2, N)) % 3
ANIMALS = np.array(["cat", "dog", "eel"])
# a relabelling that does not keep the order of the classes: 0 -> "zebra", 1 -> "ant", ...
SHUFFLED = np.array(["zebra", "ant", "moth"])
KW = {"measure": "broja", "n_boot": 30, "n_perm": 30, "seed": 7}
T = RNG.normal(size=(N, 6)) + Y[:, None]
S = RNG.normal(size=(N, 4))


def _same(a, b):
    assert a.atoms == b.atoms and a.mutual_information == b.mutual_information
    assert a.intervals == b.intervals
    assert a.details["p_values"] == b.details["p_values"]
    assert a.details["bias"] == b.details["bias"]


@pytest.mark.parametrize("form", ["numpy str", "object", "pandas string", "pandas category",
                                  "shuffled names"])
def test_labels_give_the_integer_codes_result(form):
    names = SHUFFLED if form == "shuffled names" else ANIMALS

    def labelled(codes, kinds=names):
        values = kinds[codes]
        if form == "object":
            return values.astype(object)
        if form.startswith("pandas"):
            return pd.Series(values, dtype="string" if form == "pandas string" else "category")
        return values

    reference = pid_from_samples(Y, X0, X1, **KW)
    assert reference.synergy > 0.05
    _same(pid_from_samples(labelled(Y), labelled(X0, np.array(["no", "yes"])), labelled(X1),
                           **KW), reference)


def test_composite_variable_of_labels():
    """Rows of labels, one composite variable (each distinct row an outcome)."""
    both = np.column_stack([np.array(["a", "b"])[X0], ANIMALS[X1]])
    _same(pid_from_samples(Y, both, X0, **KW),
          pid_from_samples(Y, np.column_stack([X0, X1]), X0, **KW))


def test_discretize_route_reads_a_labelled_target():
    opts = {"estimator": "discretize", "n_clusters": 3, "n_components": 2, "measure": "mmi",
            "n_boot": 10, "n_perm": 10, "seed": 1}
    labelled = pid_from_samples(pd.Series(SHUFFLED[Y], dtype="category"), T, S, **opts)
    _same(labelled, pid_from_samples(Y, T, S, **opts))
    assert labelled.mutual_information > 0.3


def test_joint_pmf_indexes_labels_in_sorted_order():
    p = pidkit.joint_pmf(SHUFFLED[Y], X0, pd.Series(ANIMALS[X1], dtype="category"))
    ranks = np.array([2, 0, 1])[Y]            # zebra, ant, moth -> sorted: ant, moth, zebra
    np.testing.assert_array_equal(p, pidkit.joint_pmf(ranks, X0, X1))
    # pidkit.pid of a pmf does not reorder its axes: renamed rows round differently
    assert list(pidkit.pid(p, measure="mmi").atoms.values()) == pytest.approx(
        list(pidkit.pid(pidkit.joint_pmf(Y, X0, X1), measure="mmi").atoms.values()), abs=1e-12)


def test_joint_pmf_reads_whole_number_floats_as_codes_as_the_other_discrete_routes_do():
    """joint_pmf refused [0., 1., 1.] ("must hold integer codes") where pid_from_samples and
    JointCounts.update read whole-number floats as codes; a non-integer float stays an error
    naming the argument, and the range checks see the float (1e20 is no wrapped int)."""
    p = pidkit.joint_pmf([0., 1., 1.], [0, 1, 0])
    np.testing.assert_array_equal(p, pidkit.joint_pmf([0, 1, 1], [0, 1, 0]))
    np.testing.assert_array_equal(pidkit.joint_pmf(Y.astype(np.float32), X0, X1.astype(float)),
                                  pidkit.joint_pmf(Y, X0, X1))
    np.testing.assert_array_equal(JointCounts().update(Y.astype(float), X0, X1).counts / N,
                                  pidkit.joint_pmf(Y.astype(float), X0, X1))
    with pytest.raises(PIDTypeError, match=r"^columns\[1\]: holds non-integer values"):
        pidkit.joint_pmf([0, 1], [0., 0.5])
    with pytest.raises(PIDValueError, match=r"^columns\[0\]: contains negative codes \(min -1\)"):
        pidkit.joint_pmf([-1., 0.], [0, 1])
    with pytest.raises(PIDValueError, match=r"^columns\[0\]: holds code 10+, so the joint"):
        pidkit.joint_pmf([1e20, 0.], [0, 1])
    with pytest.raises(PIDValueError, match=r"^columns\[0\]: contains NaN or infinite"):
        pidkit.joint_pmf([np.inf, 0.], [0, 1])


def test_joint_counts_keep_one_row_per_label_across_batches_and_merges():
    """Batches that see different labels (the second starts with labels the first lacks)."""
    y = ANIMALS[Y]
    first = slice(0, 150)
    second = slice(150, N)
    y[first] = np.where(y[first] == "eel", "cat", y[first])        # no "eel" in batch 1
    y_codes = np.unique(y, return_inverse=True)[1]
    stream = JointCounts()
    for part in (first, second):
        stream.update(y[part], X0[part], ANIMALS[X1[part]])
    assert stream.labels == (("cat", "dog", "eel"), None, ("cat", "dog", "eel"))
    expected = pid_from_samples(y_codes, X0, X1, **KW)
    _same(stream.pid(**KW), expected)
    a = JointCounts().update(y[second], X0[second], ANIMALS[X1[second]])
    b = JointCounts().update(y[first], X0[first], ANIMALS[X1[first]])
    merged = a + b
    assert merged.n_samples == N and merged.labels[0] == ("cat", "dog", "eel")
    _same(merged.pid(**KW), expected)
    # the same counts cell by cell: a label's row is where .labels puts it
    for table, labels in ((stream.counts, stream.labels), (merged.counts, merged.labels)):
        row = {label: i for i, label in enumerate(labels[0])}
        assert table[row["dog"]].sum() == int((y == "dog").sum())


def test_joint_counts_with_a_fixed_shape_and_labels():
    counts = JointCounts(shape=(3, 2, 3)).update(ANIMALS[Y[:50]], X0[:50], X1[:50])
    assert counts.counts.shape == (3, 2, 3) and counts.labels[0] == ("cat", "dog", "eel")
    with pytest.raises(PIDValueError, match=r"^target: holds 4 distinct labels, more than the "
                                            r"fixed size 3"):
        counts.update(np.array(["gnu"]), [0], [0])
    assert counts.n_samples == 50 and counts.labels[0] == ("cat", "dog", "eel")   # unchanged


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
def test_missing_labels_are_refused_naming_the_argument(missing):
    y = ANIMALS[Y].astype(object)
    y[5] = missing
    for call, name in [(lambda: pid_from_samples(y, X0, X1, **KW), "target"),
                       (lambda: pidkit.joint_pmf(X0, y), r"columns\[1\]"),
                       (lambda: JointCounts().update(X0, X1, y), r"sources\[1\]")]:
        with pytest.raises(PIDValueError, match=rf"^{name}: holds missing values \(None, NaN or "
                                                r"pandas NA; the first at row 5\)"):
            call()


def test_labels_of_mixed_kinds_and_changes_of_form_are_typed_errors():
    mixed = np.array(["a", 1] * (N // 2), dtype=object)
    with pytest.raises(PIDTypeError, match=r"^sources\[0\]: holds labels that cannot be sorted"):
        pid_from_samples(Y, mixed, X1, **KW)
    counts = JointCounts().update(ANIMALS[Y], X0, X1)
    with pytest.raises(PIDTypeError, match=r"^target: holds integer codes \(dtype int64\), "
                                           "earlier batches held labels"):
        counts.update(Y, X0, X1)
    with pytest.raises(PIDTypeError, match=r"^other: holds target as integer codes, these "
                                           "counts as labels"):
        counts + JointCounts().update(Y, X0, X1)


def test_routes_that_need_numbers_refuse_labels_with_their_advice():
    labels = ANIMALS[Y]
    cases = [
        (lambda: pid_from_samples(labels, T, S, estimator="gaussian"), "target",
         "one-hot encodes"),
        (lambda: gaussian_pid_from_samples(labels, T, S), "m", "encode(m)[0]"),
        (lambda: pid_from_samples(Y, labels, S, estimator="gaussian"), r"sources\[0\]",
         "one_hot(pidkit.estimate.encode(sources[0])[0])"),
        (lambda: GaussianMoments().update(labels, T, S), "target", "shared by every batch"),
        (lambda: GaussianMoments().update(T, pd.Series(labels, dtype="category"), S),
         r"sources\[0\]", "JointCounts"),
        (lambda: Discretizer().fit(labels, name="T"), "T", "already discrete"),
        (lambda: pid_from_samples(Y, labels, S, estimator="discretize"), r"sources\[0\]",
         "estimator='plugin'"),
        (lambda: pid_from_samples(labels, T, S, estimator="discretize",
                                  discretize_target=True), "target", "discretize_target=False"),
    ]
    for call, name, advice in cases:
        with pytest.raises(PIDTypeError, match=rf"^{name}: holds labels \(dtype (<U3|object)\), "
                                               "not numbers") as err:
            call()
        assert advice in str(err.value)


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        mine = slice(0, 150) if rank == 0 else slice(150, N)
        y = ANIMALS[Y[mine]]
        if rank == 0:
            y = np.where(y == "eel", "cat", y)                      # rank 0 never sees "eel"
        counts = JointCounts().update(y, X0[mine], X1[mine])
        counts.all_reduce()
        empty = JointCounts()
        if rank == 1:
            empty.update(y, X0[mine], X1[mine])
        empty.all_reduce()                 # rank 0 has no samples: it adopts the labels
        clash = JointCounts().update(y if rank == 0 else Y[mine], X0[mine], X1[mine])
        try:                               # labels on rank 0, codes on rank 1: both raise
            clash.all_reduce()
            error = ""
        except PIDTypeError as exc:
            error = str(exc)
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), counts=counts.counts,
                 labels=np.array(counts.labels[0]), empty=empty.counts,
                 empty_labels=np.array(empty.labels[0]), error=np.array(error))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_gathers_the_labels_of_every_process():
    results = spawn_and_load(_worker)
    y = ANIMALS[Y]
    y[:150] = np.where(y[:150] == "eel", "cat", y[:150])
    expected = JointCounts().update(y, X0, X1)
    for res in results:
        assert res["labels"].tolist() == ["cat", "dog", "eel"]
        np.testing.assert_array_equal(res["counts"], expected.counts)
        assert res["empty_labels"].tolist() == ["cat", "dog", "eel"]
        assert int(res["empty"].sum()) == N - 150
        assert str(res["error"]).startswith("all_reduce: target is held as labels on one "
                                            "process and as integer codes on another")
