"""Workflows of a new user of pidkit, followed from the documentation: each test is a defect
such a user met (a wrong sign, docs that disagree with the output, ...), fixed."""

import json
import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest

import pidkit

ROOT = Path(__file__).resolve().parents[1]

# M scalar, X = M + N(0, 1), Y = 0.5 M + noise correlated with X's: Y is degraded (I(M;Y) <
# I(M;X)), so Uni(M: Y \ X) = 0 for both Gaussian measures
DEGRADED_COV = np.array([[1.0, 1.0, 0.5], [1.0, 2.0, 0.8], [0.5, 0.8, 1.5]])


@pytest.mark.parametrize("measure", ["mmi", "broja"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_gaussian_degraded_unique_atom_is_exactly_zero(measure, library):
    # the unique atom of a degraded source was I(M;Y) - Red with Red averaged from both sides:
    # -2e-17 bits (printed as "-0.0" in the quickstart, below 0 for measures whose atoms are
    # non-negative, outside a bootstrap interval [0, 0])
    cov = DEGRADED_COV
    if library == "torch":
        torch = pytest.importorskip("torch")
        cov = torch.tensor(cov)
    r = pidkit.gaussian_pid(cov, dims=(1, 1, 1), measure=measure)
    uni = [float(u) for u in r.unique]
    assert uni[1] == 0.0 and np.copysign(1.0, uni[1]) == 1.0
    i_y = 0.5 * np.log2(1.5 / (1.5 - 0.25))            # I(M;Y), closed form
    i_x = 0.5 * np.log2(2.0)                            # I(M;X)
    assert float(r.redundancy) == pytest.approx(i_y, abs=1e-12)
    assert uni[0] == pytest.approx(i_x - i_y, abs=1e-12)


def _console_examples(path="docs/cli.md"):
    """``(argv, expected lines)`` of every ``$ pidkit ...`` line of the page's console blocks,
    the expected lines being those up to the next ``$`` line or the block's end."""
    text = (ROOT / path).read_text()
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        commands = re.split(r"^\$ ", block, flags=re.M)[1:]
        for command in commands:
            line, *expected = command.rstrip("\n").split("\n")
            if line.startswith("pidkit "):
                examples.append((shlex.split(line)[1:], expected))
    return examples


def _cli_files(directory):
    """The files the examples read: ``samples.csv`` (1,000 samples of independent bits a, b, a
    three-valued c and y = a and b; the page shows its first lines) and ``and.npy``."""
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 2, 1000), rng.integers(0, 2, 1000), rng.integers(0, 3, 1000)
    np.savetxt(directory / "samples.csv", np.c_[a, b, c, a & b], fmt="%d", delimiter=",",
               header="a,b,c,y", comments="")
    np.save(directory / "and.npy", pidkit.gates.gate("AND"))


def test_cli_page_examples_print_what_the_page_shows(tmp_path, monkeypatch, capsys):
    # the page showed `pidkit demo --gate AND W` with four measure columns; the command prints
    # all eleven registered measures (the example now names the four it shows)
    from pidkit.cli import main

    monkeypatch.chdir(tmp_path)
    _cli_files(tmp_path)
    assert (tmp_path / "samples.csv").read_text().splitlines()[:3] == [
        "a,b,c,y", "1,1,2,1", "1,0,0,0"]                  # the page's `head -3 samples.csv`
    examples = _console_examples()
    assert len(examples) == 6
    for argv, expected in examples:
        code = main(argv)
        out, err = capsys.readouterr()
        if "--json" in argv:                            # abridged on the page: shown keys only
            shown = json.loads("\n".join(expected).replace("},\n  ...\n}", "}\n}"))
            got = json.loads(out)
            for key, value in shown.items():
                approx = isinstance(value, (float, dict))
                assert got[key] == (pytest.approx(value, abs=1e-12) if approx else value), key
        else:
            assert (out + err).rstrip("\n").split("\n") == expected, argv
        assert code == (2 if err else 0), argv


@pytest.mark.parametrize("estimator", ["plugin", "gaussian"])
def test_normal_interval_warns_when_the_null_is_too_small_to_reject(estimator):
    # with 5 shuffles every p-value is >= 1/6 > 0.05, so the "normal" interval of every atom
    # was silently extended to 0: AND's 0.31 bits of redundancy got [0, 0.32] (the audits warn)
    from pidkit.estimate import pid_from_samples

    rng = np.random.default_rng(0)
    x0, x1 = rng.integers(0, 2, (2, 2000))
    kwargs = dict(estimator=estimator, measure="mmi", n_boot=50, seed=0, interval="normal")
    with pytest.warns(UserWarning, match=r"n_perm=5 is too small .* n_perm >= 19"):
        r = pid_from_samples(x0 & x1, x0, x1, n_perm=5, **kwargs)
    assert r.intervals["{0}{1}"][0] <= 0.0 < 0.2 < r.redundancy   # the extension it warns of
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pid_from_samples(x0 & x1, x0, x1, n_perm=19, **kwargs)   # 1/20 <= 0.05: no warning
        pid_from_samples(x0 & x1, x0, x1, n_perm=5, ci=0.8, **kwargs)   # 1/6 <= 0.2
        pid_from_samples(x0 & x1, x0, x1, n_perm=0, **kwargs)           # no null, no rule
        pid_from_samples(x0 & x1, x0, x1, n_perm=5, **{**kwargs, "interval": "basic"})
    assert r.intervals["{0}{1}"][0] > 0.2               # the null rejects: not extended


def test_pid_from_counts_warns_for_a_small_null_with_the_normal_interval():
    from pidkit.estimate import pid_from_counts

    counts = np.zeros((2, 2, 2), dtype=int)
    counts[0, 0, 0] = counts[1, 0, 1] = counts[1, 1, 0] = counts[0, 1, 1] = 250      # XOR
    with pytest.warns(UserWarning, match=r"n_perm=98 is too small for ci=0.99.* >= 99"):
        pid_from_counts(counts, measure="mmi", n_boot=20, n_perm=98, ci=0.99, seed=0,
                        interval="normal")


def test_cli_csv_sources_without_target_say_the_first_column_is_the_target(tmp_path, capsys):
    # `pidkit pid samples.csv --sources a b` said "a column is used twice" though the user
    # named each column once: the default target is the first column, a
    from pidkit.cli import main

    _cli_files(tmp_path)
    assert main(["pid", str(tmp_path / "samples.csv"), "--sources", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert "['a'] used twice" in err and "the first column, 'a'; pass --target" in err
    assert main(["pid", str(tmp_path / "samples.csv"), "--target", "y", "--sources", "a+y",
                 "b"]) == 2
    err = capsys.readouterr().err
    assert "['y'] used twice" in err and "first column" not in err


def _outputs_shown(path):
    """``(code, printed text)`` of each ```python block of a page that a ```text block follows."""
    text = (ROOT / path).read_text()
    fences = re.findall(r"```(python|text)\n(.*?)```", text, flags=re.S)
    pairs = zip(fences[:-1], fences[1:], strict=True)
    return [(code, shown) for (kind, code), (next_kind, shown) in pairs
            if kind == "python" and next_kind == "text"]


def _masked_gap(text):
    """``text`` with each certified gap (the solver's last iterate, not a property of the
    decomposition) replaced by a mark, and the gaps as floats."""
    pattern = r"certified gap ([0-9.e+-]+) bits"
    return re.sub(pattern, "certified gap <gap> bits", text), [
        float(g) for g in re.findall(pattern, text)]


def test_quickstart_prints_what_the_page_shows(tmp_path, monkeypatch, capsys):
    # the page's tables (the six measures on three sources, the intervals from samples) were
    # compared with nothing, and the Gaussian line printed "-0.0" where the page shows "0.0"
    # (its gaps, the solver's last iterates, had also gone stale: 5.77e-10 shown, 6.0e-11 run)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/quickstart.md").read_text(),
                        flags=re.S)
    shown = dict(_outputs_shown("docs/quickstart.md"))
    assert len(shown) == 5
    for i, code in enumerate(blocks):
        exec(compile(code, f"quickstart block {i}", "exec"), namespace)
        out = capsys.readouterr().out
        if code in shown:
            printed, gaps = _masked_gap(out)
            expected, shown_gaps = _masked_gap(shown[code])
            assert printed.rstrip("\n") == expected.rstrip("\n"), f"block {i}"
            assert all(0 <= g <= 1e-9 for g in gaps) and len(gaps) == len(shown_gaps)


@pytest.mark.parametrize("call", [
    lambda p: pidkit.information.entropy(p),
    lambda p: pidkit.information.mutual_information(p, [0], [1]),
    lambda p: pidkit.information.marginal(p, (0,)),
])
def test_information_sum_error_offers_a_fix_the_function_takes(call):
    # the error said "Pass normalize=True", which these functions do not accept (TypeError)
    with pytest.raises(pidkit.PIDValueError, match=r"sums to 4, not 1") as info:
        call(np.ones((2, 2)))
    assert "normalize" not in str(info.value) and "p / p.sum()" in str(info.value)


@pytest.mark.parametrize("seed", [2, 8])
def test_proj_unique_atoms_are_never_negative(seed):
    # the projected informations are each at most I(Y; X_i); computed apart from the mutual
    # informations they exceeded them by 4e-16 on these pmfs (a unique atom of -4e-16)
    shape = [(2, 2, 2), (3, 2, 2), (2, 3, 3), (3, 3, 3)][seed % 4]
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(int(np.prod(shape)), [0.3, 1.0][seed % 2])).reshape(shape)
    r = pidkit.pid(p, measure="proj")
    assert min(r.unique) >= 0.0 and r.redundancy >= 0.0
    cert = r.solver.certificate
    assert cert.lower <= r.redundancy <= cert.upper


def test_gaussian_route_warns_when_a_float_target_looks_like_labels():
    # float labels 0., 1., 2. are one continuous variable for target_encoding="auto" (the
    # plug-in route reads them as classes): the reading stays, with a warning naming the fix
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    x0, x1 = y + rng.normal(size=500), rng.normal(size=500)
    with pytest.warns(UserWarning, match=r"target: float values that are all whole numbers"):
        as_float = pidkit.pid_from_samples(y.astype(float), x0, x1, estimator="gaussian",
                                           ci=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        onehot = pidkit.pid_from_samples(y.astype(float), x0, x1, estimator="gaussian", ci=None,
                                         target_encoding="onehot")
        labels = pidkit.pid_from_samples(y, x0, x1, estimator="gaussian", ci=None)
        continuous = pidkit.pid_from_samples(y + 0.5, x0, x1, estimator="gaussian", ci=None)
    assert onehot.unique[0] == pytest.approx(labels.unique[0], abs=1e-12)
    assert as_float.unique[0] == pytest.approx(continuous.unique[0], abs=1e-12)


def test_small_null_warning_points_at_the_users_line():
    # the warning is raised deep inside pidkit's engine; it must name the caller's line
    rng = np.random.default_rng(3)
    x0, x1 = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    y = x0 & x1
    calls = [lambda: pidkit.pid_from_samples(y, x0, x1, n_perm=5, n_boot=20, interval="normal"),
             lambda: pidkit.pid_from_samples(y.astype(float), x0.astype(float),
                                             x1.astype(float), estimator="gaussian",
                                             n_perm=5, n_boot=20, interval="normal",
                                             target_encoding="continuous")]
    for call in calls:
        with pytest.warns(UserWarning, match="n_perm=5 is too small") as caught:
            call()
        assert {Path(w.filename).name for w in caught} == {Path(__file__).name}
