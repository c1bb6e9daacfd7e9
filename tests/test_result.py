"""PIDResult: plain data, table, plot, label lookup (issue 2, point 3)."""

import json
import math

import numpy as np
import pytest

import pidkit
from pidkit.gates import gate
from pidkit.result import (
    CERTIFIED_UNIQUE,
    AtomMap,
    Certificate,
    PIDResult,
    SolverInfo,
    default_source_names,
    to_plain,
    unit_name,
)


@pytest.fixture
def and_mmi():
    # MMI on AND (bits): red = I(Y;X0) = h(1/4) - 1/2, syn = I(Y;X0,X1) - I(Y;X0) = 1/2.
    return pidkit.pid(gate("AND"), measure="mmi")


def _h(q):
    return -q * math.log2(q) - (1 - q) * math.log2(1 - q)


def test_two_source_views(and_mmi):
    r = and_mmi
    assert r.redundancy == pytest.approx(_h(0.25) - 0.5, abs=1e-12)
    assert r.unique == pytest.approx((0.0, 0.0), abs=1e-12)
    assert r.synergy == pytest.approx(0.5, abs=1e-12)
    assert r.mutual_information == pytest.approx(_h(0.25), abs=1e-12)
    assert r.n_sources == 2
    assert r.unit == "bits"
    assert r.source_names == ("X0", "X1")   # by position, matching the labels {0}, {1}
    assert r.details["source_axes"] == [[1], [2]]


def test_label_lookup(and_mmi):
    atoms = and_mmi.atoms
    assert atoms["{0}{1}"] == atoms[((0,), (1,))] == and_mmi.redundancy
    assert atoms["{0:1}"] == and_mmi.synergy
    assert "{0}" in atoms and ((1,),) in atoms
    assert "{0}{2}" not in atoms and "not a label" not in atoms
    assert len(atoms) == 4
    with pytest.raises(KeyError):
        atoms["{0}{2}"]


def test_to_dict_is_json_serialisable_and_complete(and_mmi):
    d = json.loads(json.dumps(and_mmi.to_dict()))
    assert d["measure"] == "mmi" and d["unit"] == "bits" and d["base"] == 2
    assert set(d["atoms"]) == {"{0}{1}", "{0}", "{1}", "{0:1}"}
    assert d["atoms"]["{0:1}"] == pytest.approx(0.5)
    assert d["redundancy"] == pytest.approx(and_mmi.redundancy)
    assert d["unique"] == pytest.approx(list(and_mmi.unique))
    assert d["solver"]["status"] == "closed_form"
    assert d["mutual_information"] == pytest.approx(and_mmi.mutual_information)


def test_to_dict_handles_numpy_values_and_intervals():
    r = PIDResult(atoms={((0,), (1,)): np.float32(0.25), ((0,),): np.float64(0.0),
                         ((1,),): np.array(0.0), ((0, 1),): np.float64(0.5)},
                  measure="x", base=math.e, mutual_information=np.float64(0.75),
                  solver=SolverInfo("optimal", True, 3, Certificate("uni", 0.1, 0.1 + 1e-9),
                                    details={"tol": np.float64(1e-9)}),
                  intervals={node: (np.float64(0.0), np.float64(1.0))
                             for node in pidkit.lattice(2).nodes})
    d = json.loads(json.dumps(r.to_dict()))
    assert d["unit"] == "nats"
    assert d["intervals"]["{0}"] == [0.0, 1.0]
    assert d["solver"]["certificate"]["gap"] == pytest.approx(1e-9)
    assert "interval" in str(r)


def test_str_table_has_labels_and_values(and_mmi):
    text = str(and_mmi)
    assert "measure=mmi" in text and "in bits" in text
    lines = {line.split()[0]: line.split()[1] for line in text.splitlines()[2:-1]}
    assert float(lines["{0}{1}"]) == pytest.approx(_h(0.25) - 0.5, abs=1e-6)
    assert float(lines["{0:1}"]) == pytest.approx(0.5, abs=1e-6)
    assert float(lines["I(Y;all)"]) == pytest.approx(_h(0.25), abs=1e-6)
    assert text.splitlines()[-1].strip() == "solver: closed_form"


def test_three_source_views():
    r = pidkit.pid(gate("COPY3"), measure="imin")
    # I_min on the 3-bit copy: 1 bit at the bottom, at {0:1}{0:2}{1:2} and at the top.
    assert r.n_sources == 3 and len(r.atoms) == 18
    assert r.redundancy == pytest.approx(1.0)
    assert r.atoms["{0:1}{0:2}{1:2}"] == pytest.approx(1.0)
    assert r.synergy == pytest.approx(1.0)
    assert r.unique == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)


def test_base_conversion():
    bits = pidkit.pid(gate("AND"), measure="imin")
    nats = pidkit.pid(gate("AND"), measure="imin", base=math.e)
    assert nats.redundancy == pytest.approx(bits.redundancy * math.log(2))
    assert nats.unit == "nats"


def test_solver_info_scaled():
    info = SolverInfo("optimal", True, 5, Certificate("uni", 1.0, 2.0), residual=0.5)
    s = info.scaled(2.0)
    assert (s.certificate.lower, s.certificate.upper, s.residual) == (2.0, 4.0, 1.0)
    assert s.certificate.gap == 2.0


def test_plot_bar_heights(and_mmi):
    """Drawn on axes of a bare Figure: no pyplot, and the user's backend is never switched."""
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    ax = and_mmi.plot(ax=Figure().subplots())
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, list(and_mmi.atoms.values()), atol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["{0}{1}", "{0}", "{1}", "{0:1}"]
    assert "bits" in ax.get_ylabel()
    assert matplotlib.get_backend() == backend


def test_atommap_repr():
    m = AtomMap({((0,),): 1.0})
    assert repr(m) == "AtomMap({'{0}': 1.0})"


def test_str_of_a_batch_reports_the_largest_gap():
    atoms = {node: np.array([0.1, 0.2]) for node in pidkit.lattice(2).nodes}
    r = PIDResult(atoms=atoms, measure="broja", base=2.0, mutual_information=np.array([0.4, 0.8]),
                  solver=SolverInfo("optimal", True, 3,
                                    Certificate("uni", np.array([0.1, 0.2]),
                                                np.array([0.1 + 1e-10, 0.2 + 3e-10]))))
    text = str(r)
    assert "mean 0.150000 (n=2)" in text
    assert text.splitlines()[-1].strip() == "solver: optimal, certified gap max 3.00e-10 (n=2) bits"


# --- the one helper for units, names and plain data ------------------------------------------
@pytest.mark.parametrize(("base", "unit"), [(2, "bits"), (2.0, "bits"), (math.e, "nats"),
                                            (10, "hartleys"), (3, "log base 3"),
                                            (np.float64(2.0), "bits")])
def test_unit_name(base, unit):
    assert unit_name(base) == unit
    r = PIDResult(atoms={node: 0.0 for node in pidkit.lattice(2).nodes}, measure="mmi",
                  base=float(base), mutual_information=0.0)
    assert r.unit == unit and r.to_dict()["unit"] == unit


def test_names_are_by_position_for_numpy_and_torch():
    """A pmf gives sources X0, X1 (its lattice labels {0}, {1}) and target Y whatever the axes."""
    p = np.moveaxis(gate("AND"), 0, 2)            # target on the last axis
    r = pidkit.pid(p, target=2, measure="mmi")
    assert (r.target_name, r.source_names) == ("Y", ("X0", "X1")) == ("Y", default_source_names(2))
    grouped = pidkit.pid(gate("PARITY3"), sources=[[1, 2], 3], measure="mmi")
    assert grouped.source_names == ("X0", "X1")
    assert CERTIFIED_UNIQUE == "unique[0]"
    assert pidkit.pid(gate("AND")).solver.certificate.quantity == CERTIFIED_UNIQUE


def test_names_are_by_position_for_torch_tensors():
    torch = pytest.importorskip("torch")
    r = pidkit.pid(torch.tensor(gate("AND")))
    assert (r.target_name, r.source_names) == ("Y", ("X0", "X1"))
    r = pidkit.pid(torch.tensor(np.moveaxis(gate("AND"), 0, 2)), target=2)
    assert r.source_names == ("X0", "X1")


def test_to_plain_tensors_results_and_strict_json():
    torch = pytest.importorskip("torch")
    half = torch.tensor([0.5, 0.25], dtype=torch.bfloat16, requires_grad=True)
    assert to_plain(half) == [0.5, 0.25]
    assert to_plain({"x": torch.tensor(1.5, dtype=torch.float16)}) == {"x": 1.5}
    r = pidkit.pid(gate("XOR"), measure="mmi")
    assert to_plain({"result": r}) == {"result": to_plain(r.to_dict())}
    data = {"nan": float("nan"), "inf": np.float32(np.inf), "arr": np.array([1.0, np.nan]),
            "set": {2, 1}, "path": __import__("pathlib").Path("a/b"), 3: None}
    plain = to_plain(data, strict=True)
    assert plain == {"nan": None, "inf": None, "arr": [1.0, None], "set": [1, 2],
                     "path": "a/b", "3": None}
    json.dumps(plain, allow_nan=False)
    loose = to_plain(data)
    assert math.isnan(loose["nan"]) and loose["path"] == data["path"]


def test_results_round_trip_through_json():
    import warnings

    import torch

    from pidkit.errors import PIDTypeError, PIDValueError
    from pidkit.result import PIDResult

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(27)).reshape(3, 3, 3)
    y = rng.integers(0, 2, 300)
    x0, x1 = (y ^ (rng.random(300) < 0.1)).astype(int), rng.integers(0, 2, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # the plug-in estimate's bias notes
        sampled = pidkit.pid_from_samples(y, x0, x1, n_boot=20, seed=0)
    results = [pidkit.pid(p, measure="broja"), pidkit.pid(gate("PARITY3"), measure="sx"),
               pidkit.broja(torch.tensor(p)), pidkit.broja(np.stack([p, p]), batch=True),
               sampled]
    for r in results:
        data = r.to_dict()
        back = PIDResult.from_dict(json.loads(json.dumps(data)))
        assert back.to_dict() == data
        assert str(back) == str(PIDResult.from_dict(data))
    broja = PIDResult.from_dict(results[0].to_dict())
    assert broja.solver.certificate.gap == pytest.approx(results[0].solver.certificate.gap,
                                                         abs=1e-15)
    assert broja.redundancy == pytest.approx(results[0].redundancy, abs=1e-15)
    with pytest.raises(PIDTypeError, match=r"^data: is a int"):
        PIDResult.from_dict(5)
    with pytest.raises(PIDValueError, match=r"^data: is not a PID result \(KeyError: 'atoms'\)"):
        PIDResult.from_dict({})
