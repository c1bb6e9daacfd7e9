"""The Python examples of the README and the user guide run as written, in order, one namespace
per page (as a reader pastes them), and give the values their comments state. docs/distill.md
has its own test (tests/test_distill_docs.py)."""

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LN2 = np.log(2)


def run_page(path: str, tmp_path, monkeypatch, replace: dict[str, str] | None = None) -> dict:
    """Execute every ```python block of ``path`` in one namespace, in a scratch directory
    (pages write reports and figures); ``replace``: text substitutions (e.g. fewer epochs)."""
    import matplotlib

    matplotlib.use("Agg")
    text = (ROOT / path).read_text()
    for old, new in (replace or {}).items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, path
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(blocks):
        exec(compile(textwrap.dedent(block), f"{path} block {i}", "exec"), namespace)
    return namespace


def test_readme(tmp_path, monkeypatch):
    ns = run_page("README.md", tmp_path, monkeypatch)
    r = ns["r"]
    # AND gate: Red = H(1/4) - 3/4 H(1/3) ... the comment's 0.311, (0.0, 0.0), 0.5
    assert r.redundancy == pytest.approx(0.311278, abs=1e-6)
    assert r.unique == pytest.approx((0.0, 0.0), abs=1e-9)
    assert r.synergy == pytest.approx(0.5, abs=1e-9)
    assert 0 <= r.solver.certificate.gap <= 1e-9


def test_quickstart(tmp_path, monkeypatch, capsys):
    ns = run_page("docs/quickstart.md", tmp_path, monkeypatch)
    out = capsys.readouterr().out
    # the Gaussian example: Red = 0.5, Uni = (0.292481, 0), Syn = 0.207519 bits (closed form:
    # I(M;X) = 1/2 log2 3, I(M;Y) = 1/2 log2 2, MMI and BROJA agree for a scalar source pair)
    assert "0.5 [0.292481, 0.0] 0.207519" in out       # the degraded unique atom is +0
    r = ns["r"]                            # the plug-in AND gate from 5000 samples
    assert r.redundancy == pytest.approx(0.311278, abs=0.03)
    assert r.synergy == pytest.approx(0.5, abs=0.03)


def test_broja_page(tmp_path, monkeypatch):
    import torch

    ns = run_page("docs/broja.md", tmp_path, monkeypatch)
    rb, rt, p_batch = ns["rb"], ns["rt"], ns["p_batch"]
    # numpy and torch batches give the same atoms, each within its certificate
    np.testing.assert_allclose(rt.redundancy.detach().numpy(), rb.redundancy, atol=1e-8)
    assert ns["torch_p"].grad is not None and torch.isfinite(ns["torch_p"].grad).all()
    assert ns["torch_p"].grad.shape == p_batch.shape
    assert ns["pidkit"].pid(p_batch[0], measure="broja").redundancy == pytest.approx(
        float(rb.redundancy[0]), abs=1e-8)
    assert ns["r"].solver.state is not None                   # the warm-start state


def test_estimators_page(tmp_path, monkeypatch):
    ns = run_page("docs/estimators.md", tmp_path, monkeypatch)
    counts, total = ns["counts"], ns["total"]
    np.testing.assert_array_equal(total.counts, counts.counts)   # merged == one pass
    assert counts.n_samples == 2000
    # "same result as one shot": the streamed counts against the codes of all samples at once
    y, t, s, d_t, d_s = (ns[k] for k in ("y", "t", "s", "d_t", "d_s"))
    one_shot = ns["pid_from_samples"](y, d_t.transform(t), d_s.transform(s), estimator="plugin",
                                      measure="broja", n_boot=200, n_perm=100, seed=0)
    assert ns["r"].redundancy == pytest.approx(one_shot.redundancy, abs=1e-9)
    assert ns["r"].intervals.keys() == one_shot.intervals.keys()
    for node, bounds in one_shot.intervals.items():
        assert ns["r"].intervals[node] == pytest.approx(bounds, abs=1e-9)
    assert ns["g"].redundancy > 0          # both layers carry the label


def test_gaussian_page(tmp_path, monkeypatch):
    ns = run_page("docs/gaussian.md", tmp_path, monkeypatch)
    loss = ns["loss"]
    assert loss.ndim == 0 and loss.requires_grad
    loss.backward()
    assert ns["a"].grad is not None and np.isfinite(ns["a"].grad.numpy()).all()


@pytest.mark.slow
def test_audit_page(tmp_path, monkeypatch):
    # the training example runs 12 epochs per student; 4 and 1 here (the page's code otherwise
    # as written)
    ns = run_page("docs/audit.md", tmp_path, monkeypatch,
                  replace={"epochs=12, warmup=2": "epochs=4, warmup=2",
                           "epochs=12, callbacks=[other]": "epochs=1, callbacks=[other]"})
    assert (tmp_path / "audit" / "audit.json").exists()
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (len(ns["cb"].history), len(ns["other"].history)) == (4, 1)
    values = ns["report"].pairs[0].values
    # the lattice relations hold: I(Y;T) = Red + Uni(Y:T\S), I(Y;S) = Red + Uni(Y:S\T)
    assert values["mi_teacher"] == pytest.approx(
        values["redundancy"] + values["unique_teacher"], abs=1e-9)
    assert values["mi_student"] == pytest.approx(
        values["redundancy"] + values["unique_student"], abs=1e-9)
    assert values["redundancy"] > 0.5       # even untrained conv features carry the digit
