"""A constant target carries no information: every route from samples (plug-in, discretise,
Gaussian, counts, streaming counts and moments) returns exactly 0 for every atom, the mutual
information and every replicate, with one warning naming the target. pid_from_samples raised
'target: is constant' where JointCounts.pid returned zeros; the Gaussian routes raised too."""

import math
import warnings

import numpy as np
import pytest
import torch

import pidkit
from pidkit.estimate import (
    GaussianMoments,
    JointCounts,
    gaussian_pid_from_samples,
    pid_from_counts,
    pid_from_samples,
)

RNG = np.random.default_rng(3)
N = 300
X0 = RNG.integers(0, 3, N)
X1 = RNG.integers(0, 2, N)
T = RNG.normal(size=(N, 6))
S = RNG.normal(size=(N, 4))
KW = {"n_boot": 20, "n_perm": 20, "seed": 5}


def _only_warning(call, name="target"):
    """``call()``'s result and the one warning it issued, which names the constant target."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    constant = [w for w in caught if "is constant" in str(w.message)]
    assert len(constant) == 1, [str(w.message) for w in caught]
    assert str(constant[0].message).startswith(f"{name}: is constant (one value in every "
                                               "sample)")
    assert constant[0].filename == __file__       # points at the caller's line
    return result


def _assert_zero(r, interval="percentile"):
    assert list(r.atoms.values()) == [0.0] * len(r.atoms)
    assert r.mutual_information == 0.0
    p = r.details["p_values"]
    assert p["mutual_information"] == 1.0 and set(p["atoms"].values()) == {1.0}
    half = 0.0 if interval != "normal" else 1e-9 * (1 / math.log(2))   # tie tolerance, bits
    assert set(r.intervals.values()) == {(-half, half)}
    assert r.details["bias"]["mutual_information"] == 0.0


@pytest.mark.parametrize("measure", ["broja", "mmi", "ig"])
def test_counts_and_samples_agree_on_zeros(measure):
    """BROJA and I_ig left 1.6e-16 bits of round-off on the table of a constant target, and
    its replicates up to 8e-17 bits."""
    y = np.full(N, 7)
    counts = _only_warning(lambda: JointCounts().update(y, X0, X1).pid(measure=measure, **KW))
    samples = _only_warning(lambda: pid_from_samples(y, X0, X1, measure=measure, **KW))
    _assert_zero(counts)
    assert samples.intervals == counts.intervals
    assert samples.details["p_values"] == counts.details["p_values"]
    assert samples.atoms == counts.atoms
    table = np.zeros((1, 3, 2), dtype=int)
    np.add.at(table, (0, X0, X1), 1)
    _assert_zero(_only_warning(lambda: pid_from_counts(table, measure=measure, **KW)))


@pytest.mark.parametrize("interval", ["percentile", "basic", "normal"])
def test_every_interval_kind_of_a_constant_target(interval):
    _assert_zero(_only_warning(lambda: pid_from_samples(np.zeros(N, dtype=int), X0, X1,
                                                        measure="mmi", interval=interval,
                                                        **KW)), interval)


def test_three_sources_and_a_constant_target():
    r = _only_warning(lambda: pid_from_samples(np.ones(N, dtype=int), X0, X1, X0 ^ X1,
                                               measure="mmi", **KW))
    _assert_zero(r)
    assert len(r.atoms) == 18


def test_discretize_route_with_a_constant_target():
    """Labels, and a continuous target discretised (the discretiser has no clusters to fit
    to one point: the target gets one code)."""
    opts = {"estimator": "discretize", "n_clusters": 3, "n_components": 2, "measure": "mmi",
            **KW}
    _assert_zero(_only_warning(lambda: pid_from_samples(np.full(N, 2), T, S, **opts)))
    _assert_zero(_only_warning(lambda: pid_from_samples(np.full((N, 3), 0.25), T, S,
                                                        discretize_target=True, **opts)))


@pytest.mark.parametrize("target", [np.zeros(N, dtype=int), np.full(N, 0.1),
                                    np.full((N, 2), -3.0)], ids=["one class", "float", "2 cols"])
def test_gaussian_routes_with_a_constant_target(target):
    x, y = T[:, :2], S[:, :1]
    r = _only_warning(lambda: gaussian_pid_from_samples(target, x, y, **KW), "m")
    _assert_zero(r)
    assert r.details["plugin"] == {"red": 0.0, "uni_x": 0.0, "uni_y": 0.0, "syn": 0.0}
    assert set(r.details["mutual_information_bias_wishart"].values()) == {0.0}
    assert r.solver.details["constant_target"] is True
    same = _only_warning(lambda: pid_from_samples(target, x, y, estimator="gaussian", **KW))
    assert same.intervals == r.intervals and same.atoms == r.atoms
    block = target.reshape(N, -1).astype(float)
    if target.dtype.kind == "i":
        block = np.zeros((N, 0))                 # one class: no one-hot column
    stat = GaussianMoments().update(block if block.shape[1] else np.ones((N, 1)), x, y)
    streamed = _only_warning(stat.pid)
    assert list(streamed.atoms.values()) == [0.0] * 4 and streamed.mutual_information == 0.0


def test_one_class_has_zero_label_entropy():
    r = _only_warning(lambda: pid_from_samples(np.full(N, 4), T[:, :2], S[:, :2],
                                               estimator="gaussian", **KW))
    assert r.details["label_entropy"] == 0.0
    assert math.copysign(1.0, r.details["label_entropy"]) == 1.0      # not -0.0


def test_torch_atoms_of_a_constant_target_are_zero_tensors_with_zero_gradient():
    x = torch.tensor(T[:, :2], requires_grad=True)
    y = torch.tensor(S[:, :1])
    r = _only_warning(lambda: gaussian_pid_from_samples(torch.zeros(N, dtype=torch.long), x, y,
                                                        seed=0, n_boot=0, n_perm=0), "m")
    assert isinstance(r.synergy, torch.Tensor) and r.synergy.item() == 0.0
    (r.synergy + r.mutual_information).backward()
    assert x.grad is not None and not x.grad.any()


def test_constant_source_still_refused_where_it_must_be_fitted():
    with pytest.raises(pidkit.PIDValueError, match=r"^sources\[0\]: has constant column"):
        pid_from_samples(X0, np.ones(N), S[:, 0], estimator="gaussian", **KW)


@pytest.mark.parametrize("measure", pidkit.available_measures())
def test_pid_of_a_constant_target_pmf_is_exactly_zero(measure):
    # the target on the last axis, its one outcome of positive probability at index 1; BROJA and
    # I_IG returned 1.6e-16 nats of round-off for the redundancy
    cells = np.random.default_rng(1).dirichlet(np.ones(9)).reshape(3, 3)
    p = np.zeros((3, 3, 2))
    p[:, :, 1] = cells
    r = pidkit.pid(p, target=2, measure=measure)
    assert r.mutual_information == 0.0
    assert all(value == 0.0 for value in r.atoms.values())
    if measure == "pm":      # its parts are kept: equal informative and misinformative lattices
        informative, misinformative = (r.solver.parts[k] for k in ("informative",
                                                                     "misinformative"))
        assert informative["{0}{1}"] > 0.1
        assert all(informative[n] == pytest.approx(misinformative[n], abs=1e-15)
                   for n in informative)
