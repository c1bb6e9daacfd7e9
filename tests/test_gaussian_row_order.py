"""The Gaussian route's bootstrap and shuffle null do not depend on the order of the rows: with
the same seed, permuted rows give the same intervals, p-values, bias and atoms. The resample
indices and permutations were drawn for the rows in the order given, so shuffling the rows of a
data set changed its intervals (by 0.02 bits here) although nothing about the data changed. The
rows are now put in lexicographic order (target block, then the sources) first; identical rows
are interchangeable, so ties need no rule."""

import numpy as np
import pytest
import torch

from pidkit.estimate import gaussian_pid_from_samples, pid_from_samples
from pidkit.estimate.gaussian_route import gaussian_blocks

RNG = np.random.default_rng(11)
N = 240
LABELS = RNG.integers(0, 3, N)
M = RNG.normal(size=N) + LABELS
X = np.column_stack([M + RNG.normal(size=N), RNG.normal(size=N)])
Y = 0.5 * M + RNG.normal(size=N)
KW = {"n_boot": 40, "n_perm": 40, "seed": 3}


def _same(a, b):
    assert a.intervals == b.intervals
    assert a.details["p_values"] == b.details["p_values"]
    assert a.details["bias"] == b.details["bias"]
    assert a.details["bootstrap_std"] == b.details["bootstrap_std"]
    assert a.atoms == b.atoms and a.mutual_information == b.mutual_information


@pytest.mark.parametrize("interval", ["percentile", "normal"])
@pytest.mark.parametrize("target", ["continuous", "labels"])
def test_permuted_rows_give_the_same_intervals_and_p_values(target, interval):
    m = M if target == "continuous" else LABELS
    perm = np.random.default_rng(0).permutation(N)
    a = gaussian_pid_from_samples(m, X, Y, interval=interval, **KW)
    b = gaussian_pid_from_samples(m[perm], X[perm], Y[perm], interval=interval, **KW)
    _same(a, b)
    assert a.intervals[next(iter(a.atoms))][1] > a.intervals[next(iter(a.atoms))][0]


def test_permuted_rows_with_a_pca_fitted_on_a_subsample():
    """The projection is fitted after the rows are ordered: its subsample (fit_size) and its
    sums see the same rows in the same order."""
    wide = np.column_stack([X, RNG.normal(size=(N, 4)) + M[:, None]])
    other = np.column_stack([Y, RNG.normal(size=(N, 3))])
    perm = np.random.default_rng(1).permutation(N)
    opts = {"estimator": "gaussian", "n_components": 2, "fit_size": 150, **KW}
    a = pid_from_samples(LABELS, wide, other, **opts)
    b = pid_from_samples(LABELS[perm], wide[perm], other[perm], **opts)
    _same(a, b)


def test_duplicated_rows_in_any_order():
    """Rows repeated many times (ties in every column) are interchangeable."""
    idx = np.random.default_rng(2).integers(0, 60, N)
    m, x, y = M[idx], X[idx], Y[idx]
    perm = np.random.default_rng(3).permutation(N)
    _same(gaussian_pid_from_samples(m, x, y, **KW),
          gaussian_pid_from_samples(m[perm], x[perm], y[perm], **KW))


def test_torch_inputs_get_the_same_uncertainty_in_any_row_order():
    perm = np.random.default_rng(4).permutation(N)
    a = gaussian_pid_from_samples(*(torch.tensor(v) for v in (M, X, Y)), **KW)
    b = gaussian_pid_from_samples(*(torch.tensor(v[perm]) for v in (M, X, Y)), **KW)
    assert a.intervals == b.intervals and a.details["p_values"] == b.details["p_values"]
    assert float(a.synergy) == pytest.approx(float(b.synergy), abs=1e-12)


def test_blocks_come_in_lexicographic_row_order():
    z, dims, _ = gaussian_blocks(LABELS, (X, Y))
    assert dims == (2, 2, 1)
    keys = [tuple(row) for row in z]
    assert keys == sorted(keys)
