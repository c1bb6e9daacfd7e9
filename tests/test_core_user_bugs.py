"""Defects a researcher met running pidkit on their own data (real data sets, pandas columns,
files at hand): each test fails on the code before its fix."""

import json
import warnings

import numpy as np
import pytest

import pidkit
from pidkit import cli
from pidkit.errors import ConvergenceWarning, PIDValueError
from pidkit.estimate import pid_from_samples


def _labelled_blocks(seed=0, n=400):
    """Three classes and two 2-D sources that depend on them (a wine-like table)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a = np.eye(3)[y] @ rng.normal(size=(3, 2)) + rng.normal(size=(n, 2))
    b = np.eye(3)[y] @ rng.normal(size=(3, 2)) + 2 * rng.normal(size=(n, 2))
    return y, a, b


def _onehot_reference(y, a, b):
    """Plug-in Gaussian PID, in bits, of (one-hot labels without their last column, a, b):
    ``pidkit.gaussian_pid`` on the maximum-likelihood covariance built here by hand."""
    k = int(y.max()) + 1
    z = np.hstack([np.eye(k)[y][:, :-1], a, b])
    cov = np.cov(z, rowvar=False, bias=True)
    return pidkit.gaussian_pid(cov, dims=(k - 1, a.shape[1], b.shape[1]))


@pytest.mark.parametrize("call", ["pid_from_samples", "gaussian_pid_from_samples"])
def test_gaussian_route_reads_a_label_column_as_labels(call):
    # y of shape (n, 1) (df[["label"]], a label tensor of one column) was read as one
    # continuous variable by target_encoding="auto", silently: other atoms than for y (n,)
    y, a, b = _labelled_blocks()

    def run(target, **kw):
        if call == "pid_from_samples":
            return pid_from_samples(target, a, b, estimator="gaussian", bias_correction=False,
                                    n_boot=0, n_perm=0, **kw)
        return pidkit.gaussian_pid_from_samples(target, a, b, bias_correction=False,
                                                n_boot=0, n_perm=0, **kw)

    ref = _onehot_reference(y, a, b)
    for target in (y, y.reshape(-1, 1), y.reshape(-1, 1).astype(np.int32)):
        r = run(target)
        assert r.details["target_encoding"] == "onehot"
        for node in ref.atoms:
            assert r.atoms[node] == pytest.approx(ref.atoms[node], abs=1e-9)
    forced = run(y.reshape(-1, 1), target_encoding="onehot")
    assert forced.redundancy == pytest.approx(ref.redundancy, abs=1e-9)


def test_gaussian_route_warns_for_a_label_like_float_column():
    # the warning for float labels read as continuous fired for shape (n,) only
    y, a, b = _labelled_blocks()
    with pytest.warns(UserWarning, match="whole numbers"):
        pid_from_samples(y.reshape(-1, 1).astype(float), a, b, estimator="gaussian",
                         n_boot=0, n_perm=0)


def test_results_compare_as_data():
    # r1 == r2 compared the dataclass fields one by one: details holding several
    # eigenvalues (a vector target) raised numpy's "truth value of an array is ambiguous"
    rng = np.random.default_rng(1)
    root = rng.normal(size=(6, 6))
    cov = root @ root.T + np.eye(6)
    first = pidkit.gaussian_pid(cov, dims=(2, 2, 2))
    again = pidkit.gaussian_pid(cov.copy(), dims=(2, 2, 2))
    assert first == again and not first != again
    assert pidkit.PIDResult.from_dict(json.loads(json.dumps(first.to_dict()))) == first
    other = pidkit.gaussian_pid(cov, dims=(2, 1, 3))
    assert first != other and first != "a result"


def _warned_here(record, text):
    files = {w.filename for w in record if text in str(w.message)}
    assert files == {__file__}, files


@pytest.mark.parametrize("measure", ["ccs", "dep", "proj", "ig"])
def test_convergence_warnings_from_samples_point_at_the_users_line(measure):
    # through pid_from_samples / JointCounts.pid they named pidkit's discrete_route.py
    rng = np.random.default_rng(2)
    y, a = rng.integers(0, 2, (2, 300))
    b = (a + rng.integers(0, 2, 300)) % 3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pid_from_samples(y, a, b, measure=measure, measure_options={"max_iter": 1},
                         n_boot=0, n_perm=0)
    _warned_here(record, "stopped after")


@pytest.mark.parametrize("sources", [2, 3])
def test_broja_convergence_warnings_point_at_the_users_line(sources):
    # a fixed stacklevel named pidkit's discrete_route.py through pid_from_samples
    rng = np.random.default_rng(3)
    y, *xs = rng.integers(0, 3, (1 + sources, 400))
    y = (y + xs[0] * xs[1]) % 3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pid_from_samples(y, *xs, measure="broja", measure_options={"max_iter": 1},
                         n_boot=0, n_perm=0)
    _warned_here(record, "certified gap")


def test_replicates_that_stop_early_warn_once():
    # ccs stopped by max_iter warned once per bootstrap replicate (21 warnings for n_boot=20)
    rng = np.random.default_rng(2)
    y, a = rng.integers(0, 2, (2, 300))
    b = (a + rng.integers(0, 2, 300)) % 3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pid_from_samples(y, a, b, measure="ccs", measure_options={"max_iter": 1}, n_boot=20,
                         n_perm=5, seed=0)
    stops = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(stops) == 2, stops                       # the point estimate, the replicates
    assert "of the 25 bootstrap and shuffle replicates" in stops[1]
    _warned_here(record, "replicates")


def test_gaussian_warnings_point_at_the_users_line():
    # the near-singular ridge named pidkit/gaussian/api.py, the bootstrap's summary of
    # regularised replicates gaussian_route.py, and dropped replicates uncertainty.py
    rho = 1 - 1e-11
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pidkit.gaussian_pid(cov, dims=(1, 1, 1))
    _warned_here(record, "near-singular")

    rng = np.random.default_rng(0)
    m = rng.normal(size=40)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pid_from_samples(m, m + 3e-6 * rng.normal(size=40), rng.normal(size=40),
                         estimator="gaussian", n_boot=20, n_perm=0, seed=0)
    _warned_here(record, "near-singular")
    _warned_here(record, "resampled covariances")

    m = rng.normal(size=6)      # 6 rows, 3 variables: many resamples hold too few distinct rows
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pid_from_samples(m, m + rng.normal(size=6), rng.normal(size=6), estimator="gaussian",
                         n_boot=50, n_perm=0, seed=0)
    _warned_here(record, "could not be evaluated")


# Y = X0 xor X1 with uniform inputs, as rows: under MMI every bit is synergy (closed form)
XOR_ROWS = [(0, 0, 0), (1, 0, 1), (1, 1, 0), (0, 1, 1)]


def _cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_reads_a_tsv_file(tmp_path, capsys):
    # a .tsv was an "unknown file type", even with --delimiter '\t'
    path = tmp_path / "samples.tsv"
    path.write_text("y\ta\tb\n" + "".join("\t".join(map(str, r)) + "\n" for r in XOR_ROWS * 5))
    for extra in ([], ["--delimiter", "\\t"]):
        code, out, err = _cli(capsys, "pid", path, "--measure", "mmi", "--json", *extra)
        assert code == 0, err
        data = json.loads(out)
        assert data["source_names"] == ["a", "b"]
        assert data["atoms"] == pytest.approx({"{0}{1}": 0.0, "{0}": 0.0, "{1}": 0.0,
                                               "{0:1}": 1.0}, abs=1e-12)


def test_cli_refuses_a_csv_without_header_row(tmp_path, capsys):
    # the first sample became the column names (silently, when its codes differ): one sample
    # lost and columns named '0', '1', '2'
    path = tmp_path / "samples.csv"
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in [(0, 1, 2)] + XOR_ROWS))
    code, out, err = _cli(capsys, "pid", path, "--measure", "mmi")
    assert code == 2 and out == ""
    assert "holds integer codes, not column names" in err and "y,x0,x1" in err


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_gaussian_moments_warn_for_integer_labels(library):
    # GaussianMoments.update(labels, a, b) read the labels as one continuous variable,
    # silently, where pid_from_samples one-hot encodes the same labels (other atoms)
    from pidkit.estimate import GaussianMoments, one_hot

    y, a, b = _labelled_blocks(seed=3)
    labels = y
    if library == "torch":
        torch = pytest.importorskip("torch")
        labels, a, b = torch.as_tensor(y), torch.as_tensor(a), torch.as_tensor(b)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        GaussianMoments().update(labels, a, b)
    _warned_here(record, "one continuous Gaussian variable")
    target = one_hot(labels, n_classes=3)   # was always numpy: "mixes numpy and torch"
    assert type(target) is type(a) and target.shape == (len(y), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        streamed = GaussianMoments().update(target, a, b)
    ref = _onehot_reference(y, np.asarray(a), np.asarray(b))
    assert float(streamed.pid(bias_correction=False).redundancy) == pytest.approx(
        ref.redundancy, abs=1e-9)


def test_gh_large_support_warning_points_at_the_users_line(monkeypatch):
    # through pid_from_samples a fixed stacklevel named pidkit's own files; a pmf "larger"
    # than the (lowered) threshold warns before solving, at the user's line
    from pidkit.discrete import gh

    monkeypatch.setattr(gh, "LARGE_SUPPORT", 4)
    rng = np.random.default_rng(4)
    y, a = rng.integers(0, 2, (2, 200))
    b = (y + a + (rng.random(200) < 0.2)) % 2
    for compute in (lambda: pidkit.pid(pidkit.joint_pmf(y, a, b), measure="gh"),
                    lambda: pid_from_samples(y, a, b, measure="gh", n_boot=0, n_perm=0)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            compute()
        _warned_here(record, "cells of positive mass")


def test_caller_stacklevel_skips_pidkit_and_its_companion_packages():
    """A warning issued in pidkit under a call from pidkit_distill (or any pidkit_* package)
    names the user's line, not the companion package's."""
    from pidkit.errors import caller_stacklevel

    def module(name, source):
        namespace = {"__name__": name, "warnings": warnings,
                     "caller_stacklevel": caller_stacklevel}
        exec(compile(source, f"<{name}>", "exec"), namespace)
        return namespace

    core = module("pidkit.fake_core", "def solve():\n"
                  "    warnings.warn('deep', UserWarning, stacklevel=caller_stacklevel())\n")
    companion = module("pidkit_companion.loss", "def step(solve):\n    solve()\n")
    other = module("pidkitten.module", "def step(solve):\n    solve()\n")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        companion["step"](core["solve"])
        other["step"](core["solve"])
    assert [w.filename for w in record] == [__file__, "<pidkitten.module>"]


@pytest.mark.parametrize(("sources", "shown"), [([1, 3], r"\[1, 3\]"),
                                               ([[1], [3]], r"\[\[1\], \[3\]\]")])
def test_a_bad_source_axis_error_shows_the_sources_the_user_passed(sources, shown):
    """It showed the wrapped group ('(got [3])'), not the list passed."""
    with pytest.raises(PIDValueError, match=rf"^sources: axis 3 is out of range for a pmf with 3 "
                                            rf"axes \(got {shown}\)"):
        pidkit.pid(pidkit.gates.gate("AND"), sources=sources)


def test_uint64_tensor_codes_beyond_int64_are_too_large_not_negative():
    """torch uint64 codes of 2**63 or more wrapped to negative int64 and were reported as
    negative codes; small uint64 codes count as any integer codes do."""
    torch = pytest.importorskip("torch")
    from pidkit.estimate import JointCounts

    y = torch.tensor([0, 1, 0, 1], dtype=torch.uint64)
    with pytest.raises(PIDValueError, match=r"^sources\[0\]: holds codes of 2\*\*62 or more"):
        JointCounts().update(y, torch.tensor([0, 2**63 + 5, 1, 0], dtype=torch.uint64))
    small = JointCounts().update(y, torch.tensor([0, 3, 1, 0], dtype=torch.uint64))
    same = JointCounts().update(np.array([0, 1, 0, 1]), np.array([0, 3, 1, 0]))
    assert np.array_equal(small.counts, same.counts)
