"""AuditReport / AuditHistory data, files and figures; Theorem 3.1 of Dissanayake et al. (2025)
in exact numbers (closed forms computed here from entropies of Bernoulli variables)."""

import base64
import csv
import html
import io
import json
import math

import numpy as np
import pytest
from _audit_helpers import single_thread  # noqa: F401  (autouse: one thread)

from pidkit.errors import PIDTypeError, PIDValueError
from pidkit.estimate.uncertainty import INTERVAL_NAMES, INTERVALS
from pidkit_distill.audits.curves import AuditHistory, plot_curves
from pidkit_distill.audits.nuisance import nuisance_pmf, nuisance_teacher_example
from pidkit_distill.audits.report import QUANTITIES, AuditReport, LayerAudit


def _h(p):
    """Binary entropy in bits."""
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _report(shift=0.0, intervals=True):
    pairs = []
    for k, (t, s) in enumerate([("layer3", "block.2"), ("fc", "fc")]):
        red, ut, us, syn = 0.8 + shift - 0.1 * k, 0.3 - shift, 0.1, 0.05
        values = {"mi_teacher": red + ut, "mi_student": red + us, "redundancy": red,
                  "unique_teacher": ut, "unique_student": us, "synergy": syn}
        iv = {q: (v - 0.02, v + 0.03) for q, v in values.items()} if intervals else None
        pairs.append(LayerAudit(t, s, values, iv, {"teacher_codes": 10}))
    return AuditReport(tuple(pairs), "paper", {"n_clusters": 10, "measure": "broja"}, 1234,
                       base=2.0, ci=0.95 if intervals else None, seed=7,
                       metadata={"epoch": 3})


def test_json_round_trip_is_exact(tmp_path):
    r = _report()
    assert AuditReport.from_json(r.to_json()) == r
    path = tmp_path / "a.json"
    r.to_json(path)
    assert AuditReport.from_json(path) == r
    assert AuditReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    r2 = _report(intervals=False)
    assert AuditReport.from_json(r2.to_json()) == r2


def test_table_lists_every_pair_and_value():
    text = str(_report())
    for label in ("I(Y;T)", "I(Y;S)", "Red(Y:T,S)", "Uni(Y:T\\S)", "Uni(Y:S\\T)", "Syn(Y:T,S)"):
        assert label in text
    assert "layer3 -> block.2" in text and "fc -> fc" in text
    assert "1.1000 [1.080, 1.130]" in text  # I(Y;T) of the first pair with its interval
    assert "1234 samples" in text and "seed=7" in text and "bits" in text


def test_access_by_name_and_position():
    r = _report()
    assert r["fc -> fc"] is r[1] is r[("fc", "fc")]
    assert r.values("redundancy") == pytest.approx([0.8, 0.7])
    with pytest.raises(KeyError):
        r["nope"]
    with pytest.raises(PIDValueError, match="quantity"):
        r.values("red")


def test_layer_audit_needs_every_quantity():
    with pytest.raises(PIDValueError, match="misses"):
        LayerAudit("a", "b", {"redundancy": 1.0})


def test_csv_rows():
    rows = list(csv.DictReader(io.StringIO(_report().to_csv())))
    assert len(rows) == 2 * len(QUANTITIES)
    first = rows[0]
    assert first["quantity"] == "mi_teacher" and float(first["value"]) == pytest.approx(1.1)
    assert float(first["lower"]) == pytest.approx(1.08)


def test_save_writes_report_with_embedded_figure(tmp_path):
    paths = _report().save(tmp_path / "rep")
    assert {p.suffix for p in paths.values()} == {".json", ".csv", ".png", ".md", ".html"}
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG")
    html = paths["html"].read_text()
    assert "data:image/png;base64," + base64.b64encode(png).decode() in html
    md = paths["md"].read_text()
    assert "](audit.png)" in md and "| fc -> fc |" in md
    assert AuditReport.from_json(paths["json"]) == _report()


def test_plot_stacks_red_and_uni_to_the_mutual_information():
    r = _report()
    ax = r.plot()
    heights = {}
    for patch in ax.patches:
        x = round(patch.get_x() + patch.get_width() / 2, 6)
        heights[x] = max(heights.get(x, 0.0), patch.get_y() + patch.get_height())
    tops = [heights[x] for x in sorted(heights)]
    # per pair: T bar = Red + Uni_T = I(Y;T), S bar = I(Y;S), joint bar = all four atoms
    first = r[0].values
    assert tops[0] == pytest.approx(first["mi_teacher"])
    assert tops[1] == pytest.approx(first["mi_student"])
    assert tops[2] == pytest.approx(first["redundancy"] + first["unique_teacher"]
                                    + first["unique_student"] + first["synergy"])
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def _chance_report():
    base = _report()
    pairs = []
    for item in base.pairs:
        chance = {q: 0.01 * (i + 1) for i, q in enumerate(QUANTITIES)}
        pairs.append(LayerAudit(item.teacher_layer, item.student_layer, item.values,
                                item.intervals, item.details, chance=chance,
                                chance_q95={q: 2 * v for q, v in chance.items()},
                                p_values={q: 1 / 101 for q in QUANTITIES}))
    return AuditReport(tuple(pairs), base.estimator, {**base.settings, "n_perm": 100,
                                                      "interval": "basic"},
                       base.n_samples, base=2.0, ci=0.95, seed=7)


def test_chance_levels_p_values_and_corrected_values_everywhere(tmp_path):
    """Issue 17: chance level (null mean), bias-corrected value and p-value next to every
    quantity in the table, JSON, CSV, Markdown, HTML and the figure (a marker per bar)."""
    r = _chance_report()
    item = r[0]
    assert item.corrected["synergy"] == pytest.approx(item.values["synergy"] - 0.06)
    text = str(r)
    for needle in ("chance (null mean)", "corrected (- chance)", "p-value", "basic bootstrap",
                   "mean of 100 label shuffles"):
        assert needle in text
        assert needle in r.to_markdown() and needle in r.to_html()
    line = next(ln for ln in text.splitlines() if "corrected" in ln and "0." in ln)
    assert f"{item.corrected['mi_teacher']:.4f}" in line
    data = json.loads(r.to_json())
    assert data["pairs"][0]["chance"]["synergy"] == pytest.approx(0.06)
    assert data["pairs"][0]["p_values"]["redundancy"] == pytest.approx(1 / 101)
    assert data["pairs"][0]["corrected"]["synergy"] == pytest.approx(item.corrected["synergy"])
    assert AuditReport.from_json(r.to_json()) == r
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert {"chance", "chance_q95", "corrected", "p_value"} <= set(rows[0])
    assert float(rows[0]["chance"]) == pytest.approx(0.01)
    # without a null the columns are NaN in the CSV and absent from the table
    plain = list(csv.DictReader(io.StringIO(_report().to_csv())))
    assert math.isnan(float(plain[0]["p_value"])) and "chance" not in str(_report())
    ax = r.plot()
    markers = [c for c in ax.collections if c.get_label() == "chance (null mean)"]
    assert len(markers) == 1
    segments = [seg for c in ax.collections if c.get_linestyle() and hasattr(c, "get_segments")
                for seg in c.get_segments() if len(seg) == 2 and seg[0][1] == seg[1][1]]
    levels = sorted({round(float(seg[0][1]), 9) for seg in segments})
    # per pair: I(Y;T) 0.01, I(Y;S) 0.02, all four atoms 0.03 + 0.04 + 0.05 + 0.06
    assert levels == [0.01, 0.02, 0.18]
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    paths = r.save(tmp_path / "rep")
    assert "chance (null mean)" in paths["html"].read_text()


@pytest.mark.parametrize("kind", INTERVALS)
def test_interval_kind_named_wherever_intervals_are_shown(kind):
    """Issue 17: the table's legend, the Markdown and HTML reports, the bar figure's legend and
    the curves' title all name the interval kind and level."""
    base = _report()
    r = AuditReport(base.pairs, base.estimator, {**base.settings, "interval": kind},
                    base.n_samples, base=2.0, ci=0.95, seed=7)
    named = f"95% {INTERVAL_NAMES[kind]} (interval='{kind}')"
    assert named in str(r) and named in r.to_markdown()
    assert html.escape(named) in r.to_html()
    assert {row["interval"] for row in csv.DictReader(io.StringIO(r.to_csv()))} == {kind}
    ax = r.plot()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"95% interval ('{kind}')" in legend
    fig = plot_curves({"rid": AuditHistory("rid", [0], [r])})
    assert f"bands: 95% interval ('{kind}')" in fig._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    plt.close(fig)


def test_history_curves_carry_chance_levels(tmp_path):
    h = AuditHistory("rid", [1, 2], [_chance_report(), _chance_report()])
    s = h.series("redundancy")
    assert s["chance"] == [pytest.approx(0.03)] * 2 and s["p_value"] == [pytest.approx(1 / 101)] * 2
    assert all(math.isnan(v) for v in AuditHistory("kd", [1], [_report()]).series(
        "redundancy")["chance"])
    fig = h.plot()
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert "rid (chance)" in labels
    rows = list(csv.DictReader(io.StringIO(h.to_csv())))
    assert float(rows[0]["chance"]) == pytest.approx(0.01)


def test_history_curves_data_and_figure(tmp_path):
    runs = {}
    for method, slope in (("rid", 0.1), ("vid", 0.02)):
        h = AuditHistory(method)
        for epoch in range(3):
            h.append(epoch, _report(shift=slope * epoch))
        runs[method] = h
    s = runs["rid"].series("redundancy")
    assert s["epoch"] == [0, 1, 2]
    assert s["value"] == pytest.approx([0.8, 0.9, 1.0])
    assert s["lower"] == pytest.approx([0.78, 0.88, 0.98])
    with pytest.raises(PIDValueError, match="epoch"):
        runs["rid"].append(1, _report())
    paths = runs["rid"].save(tmp_path)
    assert AuditHistory.load(paths["json"]).to_dict() == runs["rid"].to_dict()
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 3 * 2 * len(QUANTITIES) and rows[0]["method"] == "rid"
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    fig = plot_curves(runs, path=tmp_path / "both.png")
    assert len(fig.axes) == 3
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.8, 0.9, 1.0])
    assert (tmp_path / "both.png").exists()
    with pytest.raises(PIDTypeError):
        plot_curves("rid")


@pytest.mark.parametrize("p_z,p_g,flip", [(0.2, 0.5, 0.0), (0.3, 0.45, 0.1), (0.1, 0.6, 0.05)])
def test_theorem_3_1_in_numbers(p_z, p_g, flip):
    ex = nuisance_teacher_example(p_z, p_g, flip)
    p_y = p_z * (1 - flip) + (1 - p_z) * flip
    i_yz = _h(p_y) - _h(flip) if flip else _h(p_z)
    z, g = ex.rows["Z"], ex.rows["G"]
    assert z["I(T;S)"] == pytest.approx(_h(p_z), abs=1e-9)
    assert g["I(T;S)"] == pytest.approx(_h(p_g), abs=1e-9)
    assert z["Red(Y:T,S)"] == pytest.approx(i_yz, abs=1e-7)
    assert g["Red(Y:T,S)"] == pytest.approx(0.0, abs=1e-7)
    assert g["Uni(Y:T\\S)"] == pytest.approx(i_yz, abs=1e-7)
    assert ex.preferred_by_mutual_information == "G"
    assert ex.preferred_by_redundancy == "Z"
    assert "I(T;S) prefers S = G; Red(Y:T,S) prefers S = Z" in str(ex)


def test_theorem_3_1_pmf_and_errors():
    p = nuisance_pmf("G", 0.2, 0.5)
    assert p.shape == (2, 2, 2, 2) and p.sum() == pytest.approx(1.0)
    assert p[:, :, 1, 0].sum() == 0 and p[:, :, 0, 1].sum() == 0  # S is G
    with pytest.raises(PIDValueError, match="copy"):
        nuisance_pmf("T")
    with pytest.raises(PIDValueError, match="p_z"):
        nuisance_pmf("Z", p_z=1.0)
    with pytest.raises(PIDValueError, match="flip"):
        nuisance_pmf("Z", flip=0.5)
