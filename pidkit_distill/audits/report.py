r"""The result of a knowledge audit: six information quantities per teacher-student layer pair.

For a task label :math:`Y`, a teacher representation :math:`T` and a student representation
:math:`S`, the bivariate BROJA decomposition (Bertschinger et al. 2014) splits

.. math::

    I(Y;T) &= \mathrm{Red}(Y{:}T,S) + \mathrm{Uni}(Y{:}T\setminus S), \\
    I(Y;S) &= \mathrm{Red}(Y{:}T,S) + \mathrm{Uni}(Y{:}S\setminus T), \\
    I(Y;T,S) &= \mathrm{Red} + \mathrm{Uni}(Y{:}T\setminus S) + \mathrm{Uni}(Y{:}S\setminus T)
               + \mathrm{Syn}(Y{:}T,S).

Dissanayake et al. (2025) read :math:`\mathrm{Red}` as the task knowledge already transferred
to the student and :math:`\mathrm{Uni}(Y{:}T\setminus S)` as the knowledge left to distill.
:class:`AuditReport` holds these quantities for several layer pairs with their confidence
intervals and everything needed to reproduce them; it prints as a table, converts to JSON,
plots, and writes a self-contained report.

References
----------
P. Dissanayake, F. Hamman, B. Halder, I. Sucholutsky, Q. Zhang, S. Dutta, "Quantifying
Knowledge Distillation Using Partial Information Decomposition", AISTATS 2025.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import operator
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pidkit.errors import PIDIndexError, PIDKeyError, PIDTypeError, PIDValueError
from pidkit.estimate.uncertainty import INTERVAL_NAMES
from pidkit.result import to_plain, unit_name
from pidkit.validation import check_base, check_output_file, check_positive, fail

__all__ = ["QUANTITIES", "LABELS", "LayerAudit", "AuditReport", "unit_name"]

#: Keys of the six audited quantities, in display order.
QUANTITIES = ("mi_teacher", "mi_student", "redundancy", "unique_teacher", "unique_student",
              "synergy")

#: Human-readable label of each quantity.
LABELS = {
    "mi_teacher": "I(Y;T)",
    "mi_student": "I(Y;S)",
    "redundancy": "Red(Y:T,S)",
    "unique_teacher": "Uni(Y:T\\S)",
    "unique_student": "Uni(Y:S\\T)",
    "synergy": "Syn(Y:T,S)",
}

#: Colours of the atoms in every audit figure (colour-blind safe palette).
ATOM_COLORS = {"redundancy": "#0072B2", "unique_teacher": "#E69F00",
               "unique_student": "#009E73", "synergy": "#CC79A7"}


@dataclass(frozen=True)
class LayerAudit:
    """The six quantities of one teacher-student layer pair.

    Attributes
    ----------
    teacher_layer, student_layer : str
        Module paths of the audited layers.
    values : mapping
        Quantity key (see :data:`QUANTITIES`) -> point estimate, in the report's unit.
    intervals : mapping or None
        Quantity key -> ``(lower, upper)`` confidence interval, when one was computed.
    details : mapping
        Estimator extras for this pair: numbers of clusters, feature dimensions, the solver's
        certificate gap, ...
    chance : mapping or None
        Quantity key -> chance level: the mean of the quantity under the permutation null
        (labels shuffled against both layers, discretiser or projection held fixed), i.e. the
        value that features independent of the labels give at this sample size. ``None`` when
        no null was drawn (``n_perm=0``).
    chance_q95 : mapping or None
        Quantity key -> 95th percentile of the null replicates.
    p_values : mapping or None
        Quantity key -> permutation p-value ``(1 + #{null >= value}) / (1 + P)``
        (Phipson and Smyth 2010).
    """

    teacher_layer: str
    student_layer: str
    values: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    chance: Mapping[str, float] | None = None
    chance_q95: Mapping[str, float] | None = None
    p_values: Mapping[str, float] | None = None

    def __post_init__(self):
        missing = [q for q in QUANTITIES if q not in self.values]
        if missing:
            raise fail("values", f"misses the quantities {missing}",
                       f"Give a value for each of {list(QUANTITIES)}")
        object.__setattr__(self, "values", {q: float(self.values[q]) for q in QUANTITIES})
        if self.intervals is not None:
            object.__setattr__(self, "intervals", {
                q: (float(self.intervals[q][0]), float(self.intervals[q][1]))
                for q in QUANTITIES if q in self.intervals})
        for name in ("chance", "chance_q95", "p_values"):
            mapping = getattr(self, name)
            if mapping is not None:
                object.__setattr__(self, name, {q: float(mapping[q]) for q in QUANTITIES})

    @property
    def corrected(self) -> dict[str, float] | None:
        r"""Bias-corrected values: value minus chance level (the null mean),

        .. math:: \tilde v = \hat v - \mathbb{E}_0[\hat v].

        The plug-in bias of an information estimate depends on the sample size and on the
        occupied cells, which the permutation null keeps. Under the null (Y independent of
        T and S) :math:`\mathbb{E}_0[\hat v]` is exactly the bias, so the correction is exact
        there; when Y depends on T and S the plug-in bias is smaller than under independence
        (fewer effective cells per class), so the corrected value is conservative (biased
        towards 0). ``None`` without a null."""
        if self.chance is None:
            return None
        return {q: self.values[q] - self.chance[q] for q in QUANTITIES}

    @property
    def name(self) -> str:
        """``"teacher_layer -> student_layer"``."""
        return f"{self.teacher_layer} -> {self.student_layer}"

    def __getitem__(self, quantity: str) -> float:
        """The point estimate of ``quantity`` (a key of :data:`QUANTITIES`); any other key is
        a :class:`~pidkit.errors.PIDKeyError` (a ``KeyError``) listing them."""
        try:
            return self.values[quantity]
        except (KeyError, TypeError):
            raise fail("quantity", f"{quantity!r} is not an audited quantity of the pair "
                       f"{self.name}", f"Use one of {list(QUANTITIES)} (a report's pairs are "
                       "picked by report[position] or report['teacher -> student'])",
                       kind=PIDKeyError) from None

    def to_dict(self) -> dict[str, Any]:
        return {"teacher_layer": self.teacher_layer, "student_layer": self.student_layer,
                "values": dict(self.values),
                "intervals": None if self.intervals is None
                else {q: list(v) for q, v in self.intervals.items()},
                "details": to_plain(dict(self.details)),
                "chance": None if self.chance is None else dict(self.chance),
                "chance_q95": None if self.chance_q95 is None else dict(self.chance_q95),
                "p_values": None if self.p_values is None else dict(self.p_values),
                "corrected": self.corrected}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerAudit:
        if not isinstance(data, Mapping):
            raise fail("data", f"is a {type(data).__name__}, not a layer pair's dict",
                       "Pass what LayerAudit.to_dict() returned", kind=PIDTypeError)
        missing = [k for k in ("teacher_layer", "student_layer", "values") if k not in data]
        if missing:
            raise fail("data", f"is not a layer pair's audit (missing {missing})",
                       "Pass what LayerAudit.to_dict() returned")
        intervals = data.get("intervals")
        return cls(data["teacher_layer"], data["student_layer"], data["values"],
                   None if intervals is None else {q: tuple(v) for q, v in intervals.items()},
                   data.get("details", {}), chance=data.get("chance"),
                   chance_q95=data.get("chance_q95"), p_values=data.get("p_values"))


@dataclass(frozen=True)
class AuditReport:
    """A knowledge audit of a teacher-student pair (see :func:`pidkit_distill.audit`).

    Attributes
    ----------
    pairs : tuple of LayerAudit
        One entry per audited layer pair, in the order requested.
    estimator : str
        Name of the estimator (``"paper"``, ``"discretize"``, ``"gaussian"``, ...).
    settings : mapping
        Every setting of the estimator (components, clusters, normalisation, measure, ...).
    n_samples : int
        Samples the quantities were estimated on.
    base : float
        Logarithm base of every value (2: bits, e: nats).
    ci : float or None
        Confidence level of the intervals (e.g. 0.95); ``None`` when none were computed.
    seed : int or None
        Seed of every random step (discretiser fit, bootstrap).
    n_fit_samples : int or None
        Samples the discretiser was fitted on, when it was fitted on a separate split.
    metadata : mapping
        Free-form provenance (model names, checkpoint paths, epoch, pidkit version, ...).
    """

    pairs: tuple[LayerAudit, ...]
    estimator: str
    settings: Mapping[str, Any]
    n_samples: int
    base: float = 2.0
    ci: float | None = None
    seed: int | None = None
    n_fit_samples: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "pairs", tuple(self.pairs))
        for item in self.pairs:
            if not isinstance(item, LayerAudit):
                raise fail("pairs", "must hold LayerAudit objects",
                           "Build each pair with LayerAudit(...)", item, kind=PIDTypeError)

    # -- access --------------------------------------------------------------------------
    @property
    def unit(self) -> str:
        return unit_name(self.base)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self):
        return iter(self.pairs)

    def __getitem__(self, key: int | str | tuple[str, str]) -> LayerAudit:
        """A pair by position (an integer, numpy's included; negative from the end), by
        ``"teacher -> student"`` name or by ``(teacher, student)``.

        Raises
        ------
        pidkit.errors.PIDIndexError
            (an ``IndexError``, as for a sequence) a position out of range.
        pidkit.errors.PIDKeyError
            (a ``KeyError``, as for a mapping) a name, tuple or other key that is no pair's.
            Both messages name the positions and the pairs there are.
        """
        names = [item.name for item in self.pairs]
        n = len(names)
        fix = (f"Pass one of positions 0 to {n - 1} (or -{n} to -1), names {names}, or "
               "(teacher_layer, student_layer) tuples" if n else "The report holds no pair")
        if not isinstance(key, bool):      # True is no position
            try:
                position = operator.index(key)      # int, numpy integers
            except TypeError:
                position = None
            if position is not None:
                if -n <= position < n:
                    return self.pairs[position]
                raise fail("key", f"position {position} is out of range: the report holds "
                           f"{n} layer pair(s)", fix, kind=PIDIndexError)
        for item in self.pairs:
            if (isinstance(key, str) and key == item.name) or (
                    isinstance(key, tuple) and key == (item.teacher_layer, item.student_layer)):
                return item
        shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
        raise fail("key", f"{shown} is not a layer pair of this report", fix, kind=PIDKeyError)

    def values(self, quantity: str) -> list[float]:
        """One quantity (a key of :data:`QUANTITIES`) for every pair, in order."""
        if quantity not in QUANTITIES:
            raise fail("quantity", "is not an audited quantity", f"Use one of {list(QUANTITIES)}",
                       quantity)
        return [item.values[quantity] for item in self.pairs]

    # -- plain data ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data; :meth:`from_dict` inverts it exactly."""
        return {"estimator": self.estimator, "settings": to_plain(dict(self.settings)),
                "n_samples": int(self.n_samples), "n_fit_samples": self.n_fit_samples,
                "base": float(self.base), "unit": self.unit, "ci": self.ci, "seed": self.seed,
                "metadata": to_plain(dict(self.metadata)),
                "pairs": [item.to_dict() for item in self.pairs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditReport:
        """The report :meth:`to_dict` returned; a typed error naming ``data`` and the missing
        entries for anything else."""
        required = ("pairs", "estimator", "settings", "n_samples", "base", "ci", "seed")
        if not isinstance(data, Mapping):
            raise fail("data", f"is a {type(data).__name__}, not a report dict",
                       "Pass what AuditReport.to_dict() returned", kind=PIDTypeError)
        missing = [k for k in required if k not in data]
        pair_keys = ("teacher_layer", "student_layer", "values")
        if missing or not isinstance(data["pairs"], (list, tuple)) or not all(
                isinstance(d, Mapping) and all(k in d for k in pair_keys)
                for d in data["pairs"]):
            lacking = missing or f"{list(pair_keys)} in its pairs"
            raise fail("data", f"is not an audit report (missing {lacking})", "Pass what "
                       "AuditReport.to_dict() / to_json() wrote")
        try:
            check_base(data["base"])
            ci = data["ci"]
            if ci is not None and not 0.0 < float(ci) < 1.0:
                raise ValueError(f"ci {ci!r} is not in (0, 1)")
            report = cls(pairs=tuple(LayerAudit.from_dict(d) for d in data["pairs"]),
                         estimator=data["estimator"], settings=dict(data["settings"]),
                         n_samples=int(data["n_samples"]), base=float(data["base"]), ci=ci,
                         seed=data["seed"], n_fit_samples=data.get("n_fit_samples"),
                         metadata=dict(data.get("metadata", {})))
            str(report)                 # every entry formats: the table reads them all
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise fail("data", f"is not an audit report (an entry is malformed: "
                       f"{type(exc).__name__}: {exc})", "Pass what AuditReport.to_dict() / "
                       "to_json() wrote, unedited") from exc
        return report

    def to_json(self, path: str | Path | None = None, **dump_kwargs: Any) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        dump_kwargs.setdefault("indent", 2)
        text = json.dumps(self.to_dict(), **dump_kwargs)
        if path is not None:
            check_output_file(path, example="audit.json").write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> AuditReport:
        """Read a report from JSON text or from a ``.json`` file written by :meth:`to_json`."""
        if not isinstance(text_or_path, (str, Path)):
            raise fail("text_or_path", f"is a {type(text_or_path).__name__}, not JSON text or "
                       "a path", "Pass the text or the path AuditReport.to_json() wrote",
                       kind=PIDTypeError)
        text = str(text_or_path)
        where = "the JSON text"
        if not text.lstrip().startswith(("{", "[")):
            path = Path(text_or_path)
            if not path.is_file():
                raise fail("text_or_path", "is neither JSON text nor an existing file",
                           "Pass the text or the path AuditReport.to_json() wrote",
                           text[:80])
            try:
                where, text = str(path), path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise fail("text_or_path", f"{path} is not a UTF-8 text file", "Pass the "
                           "file AuditReport.to_json() wrote") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail("text_or_path", f"{where} is not valid JSON ({exc})", "Pass the text or "
                       "the file AuditReport.to_json() wrote") from exc
        return cls.from_dict(data)

    def rows(self) -> list[dict[str, Any]]:
        """A tidy table: one row per (pair, quantity) with value, interval bounds and kind, chance
        level (null mean) and its 95th percentile, bias-corrected value and p-value (NaN where
        not computed)."""
        kind = self.settings.get("interval", "percentile") if self.ci is not None else ""
        out = []
        for item in self.pairs:
            for q in QUANTITIES:
                lo, hi = (item.intervals or {}).get(q, (math.nan, math.nan))
                nan = math.nan
                out.append({"teacher_layer": item.teacher_layer,
                            "student_layer": item.student_layer, "quantity": q,
                            "label": LABELS[q], "value": item.values[q], "lower": lo,
                            "upper": hi, "interval": kind,
                            "chance": (item.chance or {}).get(q, nan),
                            "chance_q95": (item.chance_q95 or {}).get(q, nan),
                            "corrected": (item.corrected or {}).get(q, nan),
                            "p_value": (item.p_values or {}).get(q, nan),
                            "unit": self.unit})
        return out

    def to_csv(self, path: str | Path | None = None) -> str:
        """:meth:`rows` as CSV text; also written to ``path`` when given."""
        buffer = io.StringIO()
        rows = self.rows()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["quantity"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        if path is not None:
            check_output_file(path, example="audit.json").write_text(buffer.getvalue())
        return buffer.getvalue()

    # -- text ----------------------------------------------------------------------------
    def _header(self) -> str:
        ci = "no intervals" if self.ci is None else f"{100 * self.ci:g}% intervals"
        fit = ("" if self.n_fit_samples is None
               else f", discretiser fitted on {self.n_fit_samples} other samples")
        return (f"Knowledge audit: estimator={self.estimator}, {self.n_samples} samples{fit}, "
                f"{ci}, seed={self.seed}, in {self.unit}")

    def _table(self) -> list[tuple[str, list[str]]]:
        """Rows of the displayed table: per pair the values with their intervals, then, when a
        null was drawn, the chance levels, the bias-corrected values and the p-values."""
        out = []
        for item in self.pairs:
            out.append((item.name, [_cell(item, q) for q in QUANTITIES]))
            if item.chance is not None:
                corrected = item.corrected
                out.append(("  chance (null mean)", [f"{item.chance[q]:.4f}" for q in QUANTITIES]))
                out.append(("  corrected (- chance)", [f"{corrected[q]:.4f}" for q in QUANTITIES]))
                out.append(("  p-value", [f"{item.p_values[q]:.3g}" for q in QUANTITIES]))
        return out

    def interval_label(self) -> str | None:
        """Short name of the intervals for figures, e.g. ``95% interval ('normal')``; None
        without intervals."""
        if self.ci is None:
            return None
        return f"{100 * self.ci:g}% interval ('{self.settings.get('interval', 'percentile')}')"

    def _intervals_named(self) -> str:
        """The level and kind of the intervals, e.g. ``95% bias-corrected normal bootstrap
        interval, ... (interval='normal')`` (:data:`pidkit.estimate.uncertainty.INTERVAL_NAMES`).
        """
        kind = self.settings.get("interval", "percentile")
        return f"{100 * self.ci:g}% {INTERVAL_NAMES.get(kind, kind)} (interval='{kind}')"

    def _legend(self) -> str:
        """What the columns are: interval kind, chance level, correction, p-value."""
        parts = []
        if self.ci is not None:
            parts.append(f"brackets: {self._intervals_named()}")
        if any(item.chance is not None for item in self.pairs):
            n_perm = self.settings.get("n_perm", "?")
            parts.append(f"chance: mean of {n_perm} label shuffles (permutation null, "
                         "discretiser fixed); corrected = value - chance; p-value: share of "
                         "shuffles >= value, (1 + #) / (1 + n_perm)")
        return "; ".join(parts)

    def __str__(self) -> str:
        table = self._table()
        width = max([len(name) for name, _ in table] + [len("layer pair")])
        col = [max([len(LABELS[q])] + [len(row[j]) for _, row in table])
               for j, q in enumerate(QUANTITIES)]
        lines = [self._header(),
                 "  " + f"{'layer pair':<{width}}  "
                 + "  ".join(f"{LABELS[q]:>{col[j]}}" for j, q in enumerate(QUANTITIES))]
        for name, row in table:
            lines.append("  " + f"{name:<{width}}  "
                         + "  ".join(f"{c:>{col[j]}}" for j, c in enumerate(row)))
        legend = self._legend()
        if legend:
            lines.append("  (" + legend + ")")
        return "\n".join(lines)

    def to_markdown(self, figure: str | None = None) -> str:
        """A Markdown report: settings, the table, and ``figure`` (an image path or data URI)."""
        head = "| layer pair | " + " | ".join(LABELS[q] for q in QUANTITIES) + " |"
        rule = "|---|" + "---:|" * len(QUANTITIES)
        body = ["| " + name.strip().replace("|", "\\|") + " | " + " | ".join(row) + " |"
                for name, row in self._table()]
        settings = "\n".join(f"- `{k}`: `{v}`" for k, v in sorted(to_plain(dict(self.settings))
                                                                   .items()))
        meta = "\n".join(f"- `{k}`: `{v}`" for k, v in sorted(to_plain(dict(self.metadata))
                                                              .items()))
        parts = ["# Knowledge audit", "", self._header().split(": ", 1)[1] + ".", "",
                 f"Values in {self.unit}; brackets: "
                 + ("none computed." if self.ci is None else f"{self._intervals_named()}."),
                 "", self._legend() + ".",
                 "", head, rule, *body, ""]
        if figure is not None:
            parts += [f"![Audit: I(Y;T) split into Red and Uni per layer pair]({figure})", ""]
        parts += [_READING, "", "## Estimator settings", "",
                  settings or "- none"]
        if meta:
            parts += ["", "## Provenance", "", meta]
        return "\n".join(parts) + "\n"

    def to_html(self, figure: str | None = None) -> str:
        """A standalone HTML page with the same content as :meth:`to_markdown`; ``figure`` may
        be a ``data:`` URI so that the page embeds the image."""
        esc = html.escape
        head = "".join(f"<th>{esc(LABELS[q])}</th>" for q in QUANTITIES)
        body = "".join("<tr><td>" + esc(name.strip()) + "</td>"
                       + "".join(f"<td>{esc(c)}</td>" for c in row)
                       + "</tr>" for name, row in self._table())

        def listing(mapping: Mapping[str, Any]) -> str:
            return "<ul>" + "".join(f"<li><code>{esc(str(k))}</code>: <code>{esc(str(v))}"
                                    "</code></li>" for k, v in sorted(to_plain(dict(mapping))
                                                                      .items())) + "</ul>"

        image = ("" if figure is None else
                 f'<p><img alt="audit figure" src="{esc(figure)}" style="max-width:100%"></p>')
        style = ("body{font-family:sans-serif;max-width:64em;margin:2em auto}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
                 "text-align:right}td:first-child{text-align:left}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Knowledge audit"
                f"</title><style>{style}</style></head><body>\n<h1>Knowledge audit</h1>\n"
                f"<p>{esc(self._header())}</p>\n<table><tr><th>layer pair</th>{head}</tr>"
                f"{body}</table>\n<p>{esc(self._legend())}</p>\n{image}\n<p>{esc(_READING)}</p>\n"
                f"<h2>Estimator settings</h2>{listing(self.settings)}\n"
                f"<h2>Provenance</h2>{listing(self.metadata)}\n</body></html>\n")

    # -- figures -------------------------------------------------------------------------
    def plot(self, ax=None, title: str | None = None):
        """Stacked bars per layer pair: I(Y;T) split into Red and Uni(Y:T\\S), I(Y;S) into Red
        and Uni(Y:S\\T), and I(Y;T,S) into all four atoms, with confidence intervals on the
        totals where available (their kind in the legend), and a dashed marker per bar at its
        chance level (the total's mean under the permutation null) when one was computed. Needs
        matplotlib (imported here only). Returns the axes."""
        if ax is None:
            ax = new_figure(figsize=(max(4.5, 2.6 * len(self.pairs) + 1.5), 3.8)).subplots()
        bars = (("T", ("redundancy", "unique_teacher"), "mi_teacher"),
                ("S", ("redundancy", "unique_student"), "mi_student"),
                ("T,S", ("redundancy", "unique_teacher", "unique_student", "synergy"), None))
        width = 0.26
        seen = set()
        for i, item in enumerate(self.pairs):
            for j, (_, atoms, total) in enumerate(bars):
                x = i + (j - 1) * (width + 0.03)
                bottom = 0.0
                for q in atoms:
                    value = max(item.values[q], 0.0)
                    ax.bar(x, value, width, bottom=bottom, color=ATOM_COLORS[q],
                           edgecolor="white", linewidth=0.5,
                           label=None if q in seen else LABELS[q])
                    seen.add(q)
                    bottom += value
                chance = _bar_chance(item, atoms, total)
                if chance is not None:
                    ax.hlines(chance, x - width / 2, x + width / 2, colors="black",
                              linestyles="dashed", linewidth=1.2,
                              label=None if "chance" in seen else "chance (null mean)")
                    seen.add("chance")
                if total is not None and item.intervals and total in item.intervals:
                    lo, hi = item.intervals[total]
                    ax.errorbar(x, item.values[total], yerr=[[max(item.values[total] - lo, 0)],
                                                            [max(hi - item.values[total], 0)]],
                                fmt="none", ecolor="black", capsize=3, linewidth=1,
                                label=None if "interval" in seen else self.interval_label())
                    seen.add("interval")
        ticks, labels = [], []
        for i in range(len(self.pairs)):
            for j, (name, _, _) in enumerate(bars):
                ticks.append(i + (j - 1) * (width + 0.03))
                labels.append(name)
        ax.set_xticks(ticks, labels, fontsize=8)
        for i, item in enumerate(self.pairs):
            ax.annotate(item.name, (i, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, -22), textcoords="offset points", ha="center", va="top",
                        fontsize=8)
        ax.set_ylabel(f"information ({self.unit})")
        ax.set_title(title or f"Knowledge audit ({self.estimator}, n={self.n_samples})")
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.figure.tight_layout()
        return ax

    def save(self, directory: str | Path, *, name: str = "audit", dpi: int = 120) -> dict[str,
                                                                                          Path]:
        """Write ``name.json``, ``name.csv``, ``name.png``, ``name.md`` (figure linked) and
        ``name.html`` (self-contained, figure embedded) into ``directory``; returns their paths.
        """
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise fail("name", "must be a plain file name (no folders, not empty)", "Put "
                       "folders into `directory`, e.g. save('runs/audit', name='epoch_10')",
                       repr(name),
                       kind=PIDTypeError if not isinstance(name, str) else PIDValueError)
        check_positive(dpi, "dpi")
        if not isinstance(directory, (str, os.PathLike)):
            raise fail("directory", "must be a folder path", "Pass a str or a pathlib.Path",
                       directory, kind=PIDTypeError)
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise fail("directory", f"{directory} is a file, not a folder", "Pass a folder path "
                       "(it is created if missing)")
        directory.mkdir(parents=True, exist_ok=True)
        paths = {ext: directory / f"{name}.{ext}" for ext in ("json", "csv", "png", "md", "html")}
        self.to_json(paths["json"])
        self.to_csv(paths["csv"])
        png = figure_png(self.plot(), dpi=dpi)
        paths["png"].write_bytes(png)
        paths["md"].write_text(self.to_markdown(figure=paths["png"].name))
        paths["html"].write_text(self.to_html(
            figure="data:image/png;base64," + base64.b64encode(png).decode("ascii")))
        return paths


_READING = ("How to read it: Red(Y:T,S) is the task knowledge the student shares with the "
            "teacher (transferred); Uni(Y:T\\S) is what the teacher knows about Y that the "
            "student lacks (left to distill); the two add up to I(Y;T).")


def _bar_chance(item: LayerAudit, atoms: tuple[str, ...], total: str | None) -> float | None:
    """Chance level (null mean) of the total a bar shows: I(Y;T), I(Y;S) or, for the bar of
    all four atoms, their sum I(Y;T,S)."""
    if item.chance is None:
        return None
    if total is not None:
        return item.chance[total]
    return sum(item.chance[q] for q in atoms)


def _cell(item: LayerAudit, quantity: str) -> str:
    value = f"{item.values[quantity]:.4f}"
    if item.intervals and quantity in item.intervals:
        lo, hi = item.intervals[quantity]
        value += f" [{lo:.3f}, {hi:.3f}]"
    return value


def new_figure(**options):
    """A matplotlib figure that never changes the user's backend: through pyplot when the
    caller already uses pyplot (so it shows in their notebook or window), else a bare
    :class:`matplotlib.figure.Figure` (no backend needed; renders to files)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("audit plots need matplotlib: pip install 'pidkit[distill]'") from exc
    if "matplotlib.pyplot" in sys.modules:
        return sys.modules["matplotlib.pyplot"].figure(**options)
    return Figure(**options)


def figure_png(ax, dpi: int = 120) -> bytes:
    """Render the figure holding ``ax`` to PNG bytes (and close it if pyplot manages it)."""
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(ax.figure)
    return buffer.getvalue()


def check_pairs(layers: Any) -> tuple[tuple[str, str], ...]:
    """Validate ``layers=[(teacher_layer, student_layer), ...]`` (module paths)."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise fail("layers", "must be a non-empty list of (teacher_layer, student_layer) pairs",
                   "Example: layers=[('layer3', 'layer3'), ('fc', 'fc')]", layers,
                   kind=PIDTypeError)
    out = []
    for pair in layers:
        if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2
                or not all(isinstance(p, str) for p in pair)):
            raise fail("layers", "holds an item that is not a pair of module paths",
                       "Give each pair as (teacher_layer, student_layer), both strings", pair,
                       kind=PIDTypeError)
        out.append((pair[0], pair[1]))
    return tuple(out)
