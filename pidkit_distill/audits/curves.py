r"""Audits over training: one :class:`~pidkit_distill.audits.report.AuditReport` per audited
epoch, saved as data (JSON, CSV) and drawn as curves (the paper's Fig. 5: Red, Uni and I(Y;S)
per distillation method against epochs).

The curves show knowledge transfer as it happens: under a useful teacher, a method that
distils task knowledge raises :math:`\mathrm{Red}(Y{:}T,S)` and lowers
:math:`\mathrm{Uni}(Y{:}T\setminus S)` while :math:`I(Y;T) = \mathrm{Red} + \mathrm{Uni}` stays
fixed (the teacher is frozen).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pidkit.errors import PIDTypeError
from pidkit.validation import check_int, fail

from .report import LABELS, QUANTITIES, AuditReport, figure_png, new_figure

__all__ = ["AuditHistory", "plot_curves", "CURVE_QUANTITIES"]

#: Quantities drawn by default: transferred knowledge, knowledge left, the student's knowledge.
CURVE_QUANTITIES = ("redundancy", "unique_teacher", "mi_student")


@dataclass
class AuditHistory:
    """Audits of one training run (one ``method``), indexed by epoch.

    Attributes
    ----------
    method : str
        Name of the run, used as the curve label (``"rid"``, ``"vid"``, ``"baseline"``, ...).
    epochs : list of int
        Audited epochs (0-based, as the trainer counts them), increasing.
    reports : list of AuditReport
        One report per audited epoch.
    """

    method: str
    epochs: list[int] = field(default_factory=list)
    reports: list[AuditReport] = field(default_factory=list)

    def append(self, epoch: int, report: AuditReport) -> None:
        """Add the audit of ``epoch`` (epochs must increase)."""
        epoch = check_int(epoch, "epoch", 0)
        if not isinstance(report, AuditReport):
            raise fail("report", f"is a {type(report).__name__}, not an AuditReport",
                       "Pass what audit() or audit_features() returned", kind=PIDTypeError)
        if self.epochs and epoch <= self.epochs[-1]:
            raise fail("epoch", f"must exceed the last audited epoch {self.epochs[-1]}",
                       "Append audits in training order", epoch)
        self.epochs.append(int(epoch))
        self.reports.append(report)

    def __len__(self) -> int:
        return len(self.epochs)

    def series(self, quantity: str, pair: int | str = 0) -> dict[str, list[float]]:
        """``{"epoch", "value", "lower", "upper", "chance", "p_value"}`` lists for one quantity
        of one layer pair (bounds are NaN where no interval was computed; chance level, the
        null mean, and p-value are NaN where no permutation null was drawn)."""
        if quantity not in QUANTITIES:
            raise fail("quantity", "is not an audited quantity", f"Use one of {list(QUANTITIES)}",
                       quantity)
        out: dict[str, list[float]] = {"epoch": [], "value": [], "lower": [], "upper": [],
                                       "chance": [], "p_value": []}
        for epoch, report in zip(self.epochs, self.reports, strict=True):
            item = _pair_of(report, pair)
            lo, hi = (item.intervals or {}).get(quantity, (math.nan, math.nan))
            out["epoch"].append(epoch)
            out["value"].append(item.values[quantity])
            out["lower"].append(lo)
            out["upper"].append(hi)
            out["chance"].append((item.chance or {}).get(quantity, math.nan))
            out["p_value"].append((item.p_values or {}).get(quantity, math.nan))
        return out

    # -- data ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "epochs": list(self.epochs),
                "reports": [r.to_dict() for r in self.reports]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditHistory:
        """The history :meth:`to_dict` returned; a typed error naming ``data`` otherwise."""
        try:
            epochs, reports = list(data["epochs"]), list(data["reports"])
            if len(epochs) != len(reports):
                raise ValueError(f"{len(epochs)} epochs for {len(reports)} reports")
            return cls(str(data["method"]), [int(e) for e in epochs],
                       [AuditReport.from_dict(r) for r in reports])
        except (KeyError, TypeError, ValueError) as exc:
            raise fail("data", f"is not an audit history ({type(exc).__name__}: {exc})",
                       "Pass what AuditHistory.to_dict() / save() wrote") from exc

    @classmethod
    def load(cls, path: str | Path) -> AuditHistory:
        """Read a history written by :meth:`save` (its ``.json`` file)."""
        file = Path(path)
        if not file.is_file():
            raise fail("path", f"{file} is not a file", "Pass the .json file "
                       "AuditHistory.save() wrote")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise fail("path", f"{file} is not a JSON file ({exc})", "Pass the .json file "
                       "AuditHistory.save() wrote") from exc
        return cls.from_dict(data)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: method, epoch, layer pair, quantity, value, interval bounds, unit."""
        out = []
        for epoch, report in zip(self.epochs, self.reports, strict=True):
            for row in report.rows():
                out.append({"method": self.method, "epoch": epoch, **row})
        return out

    def to_csv(self, path: str | Path | None = None) -> str:
        buffer = io.StringIO()
        rows = self.rows()
        fields = list(rows[0]) if rows else ["method", "epoch"]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        if path is not None:
            Path(path).write_text(buffer.getvalue())
        return buffer.getvalue()

    def save(self, directory: str | Path, *, pair: int | str = 0) -> dict[str, Path]:
        """Write ``<method>_curves.json``, ``.csv`` and ``.png`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"{_safe(self.method)}_curves"
        paths = {ext: stem.with_suffix(f".{ext}") for ext in ("json", "csv", "png")}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        self.to_csv(paths["csv"])
        if self.reports:
            fig = plot_curves([self], pair=pair)
            paths["png"].write_bytes(figure_png(fig.axes[0]))
        else:                           # nothing to draw: no figure, and no path to one
            del paths["png"]
        return paths

    def plot(self, pair: int | str = 0, quantities: Sequence[str] = CURVE_QUANTITIES):
        """Curves of this run alone; see :func:`plot_curves`."""
        return plot_curves([self], pair=pair, quantities=quantities)


def _pair_of(report: AuditReport, pair: int | str):
    """``report[pair]``, or a typed error naming ``pair`` and the report's pairs."""
    names = [item.name for item in report.pairs]
    try:
        return report[pair]
    except (IndexError, KeyError, TypeError):
        raise fail("pair", f"is not one of the {len(names)} audited pair(s) {names}",
                   f"Pass an index below {len(names)} or one of the names", pair) from None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"


def plot_curves(histories: Sequence[AuditHistory] | Mapping[str, AuditHistory], *,
                pair: int | str = 0, quantities: Sequence[str] = CURVE_QUANTITIES,
                path: str | Path | None = None, dpi: int = 120):
    """Over-training curves of several runs on one figure: one panel per quantity, one line per
    method, shaded confidence bands where the audits have intervals (level and kind in the
    title), and a dotted line at the chance level (null mean) where the audits drew a
    permutation null.

    Parameters
    ----------
    histories : list of AuditHistory, or mapping label -> AuditHistory
        The runs to compare (e.g. RID, VID and no distillation with the same teacher).
    pair : int or str, default 0
        Layer pair to draw (position, or ``"teacher -> student"`` name).
    quantities : sequence of str
        Keys of :data:`~pidkit_distill.audits.report.QUANTITIES`; default Red, Uni(Y:T\\S), I(Y;S).
    path : str or Path, optional
        Also save the figure there (PNG).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(histories, Mapping):
        runs = list(histories.items())
    elif isinstance(histories, Sequence) and not isinstance(histories, (str, bytes)):
        runs = [(getattr(h, "method", None), h) for h in histories]
    else:
        raise fail("histories", "must be a list of AuditHistory or a mapping label -> history",
                   "Collect them with AuditCallback(...).history", histories, kind=PIDTypeError)
    strays = sorted({type(h).__name__ for _, h in runs if not isinstance(h, AuditHistory)})
    if strays:
        raise fail("histories", f"holds {strays}, not AuditHistory objects (one per training "
                   "run: its audits over the epochs)", "Collect them with "
                   "AuditCallback(...).history; a single AuditReport is drawn with "
                   "report.plot()", kind=PIDTypeError)
    if not runs or any(not h.reports for _, h in runs):
        raise fail("histories", "must hold non-empty AuditHistory objects",
                   "Audit at least one epoch per run")
    if isinstance(quantities, str) or not quantities:
        raise fail("quantities", "must be a non-empty list of audited quantities",
                   f"Use keys of {list(QUANTITIES)}", quantities)
    for q in quantities:
        if q not in QUANTITIES:
            raise fail("quantities", f"{q!r} is not an audited quantity",
                       f"Use keys of {list(QUANTITIES)}", quantities)
    dpi = check_int(dpi, "dpi", 1)
    if path is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        target = Path(path)
        if not target.parent.is_dir():
            raise fail("path", f"the folder {target.parent} does not exist", "Create it first, "
                       "or pass a path in an existing folder", str(path))
        formats = FigureCanvasBase.get_supported_filetypes()
        if target.suffix and target.suffix.lstrip(".").lower() not in formats:
            raise fail("path", f"has the extension {target.suffix!r}, which matplotlib cannot "
                       "write", f"Use one of {sorted(formats)}", str(path))
    for _, history in runs:
        for report in history.reports:
            _pair_of(report, pair)
    fig = new_figure(figsize=(3.6 * len(quantities), 3.2))
    axes = fig.subplots(1, len(quantities), squeeze=False, sharex=True)
    unit = runs[0][1].reports[0].unit
    for ax, q in zip(axes[0], quantities, strict=True):
        for label, history in runs:
            s = history.series(q, pair)
            (line,) = ax.plot(s["epoch"], s["value"], marker="o", markersize=3, label=label)
            if not all(math.isnan(v) for v in s["lower"]):
                ax.fill_between(s["epoch"], s["lower"], s["upper"], color=line.get_color(),
                                alpha=0.2, linewidth=0)
            if not all(math.isnan(v) for v in s["chance"]):
                ax.plot(s["epoch"], s["chance"], linestyle=":", linewidth=1,
                        color=line.get_color(), label=f"{label} (chance)")
        ax.set_title(LABELS[q])
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{unit}")
    axes[0][-1].legend(fontsize=8, frameon=False)
    first = runs[0][1].reports[0]
    bands = first.interval_label()
    fig.suptitle(f"Knowledge audit over training ({first[pair].name})"
                 + (f"; bands: {bands}" if bands else ""), fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig
