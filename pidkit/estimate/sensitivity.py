"""How a discretised PID depends on the discretisation: a sweep over the number of PCA
components and KMeans clusters, as a tidy table (one dict per setting) and a plot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import PIDTypeError
from ..validation import fail
from .api import pid_from_samples

__all__ = ["sensitivity", "plot_sensitivity"]


def _row(result: Any, n_components: Any, n_clusters: int) -> dict[str, Any]:
    row: dict[str, Any] = {"n_components": n_components, "n_clusters": n_clusters,
                           "redundancy": result.redundancy}
    for i, u in enumerate(result.unique):
        row[f"unique_{i}"] = u
    row["synergy"] = result.synergy
    row["mutual_information"] = result.mutual_information
    if result.intervals is not None:
        nodes = {"redundancy": result.lattice.bottom, "synergy": result.lattice.top}
        nodes.update({f"unique_{i}": ((i,),) for i in range(result.n_sources)})
        for key, node in nodes.items():
            row[f"{key}_lower"], row[f"{key}_upper"] = result.intervals[node]
    if "p_values" in result.details:
        p = result.details["p_values"]
        row["p_redundancy"], row["p_synergy"] = p["redundancy"], p["synergy"]
        for i, v in enumerate(p["unique"]):
            row[f"p_unique_{i}"] = v
    row["unit"] = result.unit
    return row


def sensitivity(target: Any, *sources: Any, n_clusters: Sequence[int] = (5, 10, 20),
                n_components: Sequence[int | None] = (5, 10, 20), measure: str = "broja",
                base: float = 2, seed: int = 0, n_boot: int = 0, n_perm: int = 0,
                ci: float = 0.95, **options: Any) -> list[dict[str, Any]]:
    """Discretised PID for every pair (``n_components``, ``n_clusters``).

    Parameters
    ----------
    target, *sources
        As in :func:`pid_from_samples` with ``estimator="discretize"``.
    n_clusters, n_components : sequences
        Values swept (every combination).
    measure, base, seed, n_boot, n_perm, ci
        As in :func:`pid_from_samples`; the same ``seed`` is used for every setting.
    **options
        Other options of :func:`pid_from_samples` (``scaling``, ``fit_size``, ``method``,
        ``interval``, ...).

    Returns
    -------
    list of dict
        One row per setting with ``n_components``, ``n_clusters``, ``redundancy``,
        ``unique_i``, ``synergy``, ``mutual_information``, ``unit`` and, when ``n_boot`` /
        ``n_perm`` are positive, ``<atom>_lower`` / ``<atom>_upper`` and ``p_<atom>``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> t = y[:, None] + rng.normal(size=(400, 8)); s = rng.normal(size=(400, 8))
    >>> table = sensitivity(y, t, s, n_clusters=[2, 4], n_components=[2], measure="mmi")
    >>> [(r["n_clusters"], r["unique_0"] > r["unique_1"]) for r in table]
    [(2, True), (4, True)]
    """
    if "estimator" in options:     # pid_from_samples got it twice: a bare TypeError
        raise fail("estimator", "is not an argument of sensitivity, which sweeps the "
                   "discretize estimator's settings", "Leave it out; call pid_from_samples for "
                   "another estimator", options["estimator"], kind=PIDTypeError)
    for key in ("preset", "discretizers", "n_clusters", "n_components"):
        if key in options:
            raise fail("options", f"{key!r} cannot be set in a sweep",
                       "Sweep with n_clusters=[...] and n_components=[...]")
    if isinstance(n_clusters, int) or isinstance(n_components, int) or not n_clusters \
            or not n_components:
        raise fail("n_clusters/n_components", "must be non-empty lists of values",
                   "Example: n_clusters=[5, 10, 20], n_components=[5, 10]")
    table = []
    for k in n_components:
        for c in n_clusters:
            result = pid_from_samples(target, *sources, estimator="discretize", measure=measure,
                                      base=base, seed=seed, n_boot=n_boot, n_perm=n_perm, ci=ci,
                                      n_clusters=c, n_components=k, **options)
            table.append(_row(result, k, c))
    return table


def plot_sensitivity(table: Sequence[dict[str, Any]], x: str = "n_clusters",
                     group: str = "n_components",
                     atoms: Sequence[str] = ("redundancy", "unique_0", "unique_1", "synergy"),
                     axes: Any = None) -> Any:
    """One panel per atom: the atom against ``x``, one line per value of ``group``, with the
    bootstrap interval as error bars when the table has one. matplotlib is imported here.

    Returns the array of axes.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot_sensitivity needs matplotlib: pip install matplotlib") from exc
    fix = "Pass the rows returned by sensitivity(...)"
    if (isinstance(table, (str, bytes)) or not isinstance(table, Sequence)
            or not all(isinstance(row, Mapping) for row in table)):
        raise fail("table", "must be a list of dicts, one per setting", fix, table,
                   kind=PIDTypeError)
    if not table:
        raise fail("table", "is empty", fix)
    if isinstance(atoms, str):
        atoms = (atoms,)
    columns = f"Use some of: {', '.join(k for k in table[0] if k not in ('unit',))}"
    for value, name in ((x, "x"), (group, "group")):
        if not isinstance(value, str) or any(value not in row for row in table):
            raise fail(name, "is not a column of the table", columns, value)
    missing = [a for a in atoms if a not in table[0]]
    if missing:
        raise fail("atoms", f"{missing} are not columns of the table", columns)
    panels = list(axes) if isinstance(axes, Iterable) and not isinstance(axes, str) else None
    if axes is not None and (panels is None or len(panels) < len(atoms) or not all(
            callable(getattr(ax, "plot", None)) for ax in panels)):
        raise fail("axes", f"must be a sequence of at least {len(atoms)} matplotlib axes, one "
                   "per atom", "Pass axes=None (new figure) or plt.subplots(1, n)[1]", axes,
                   kind=PIDTypeError)
    if axes is None:
        _, axes = plt.subplots(1, len(atoms), figsize=(3.2 * len(atoms), 3), squeeze=False)
        axes = axes[0]
    groups = sorted({row[group] for row in table}, key=lambda v: (v is None, v or 0))
    for ax, atom in zip(axes, atoms, strict=False):
        for g in groups:
            rows = sorted((r for r in table if r[group] == g), key=lambda r: r[x])
            xs = [r[x] for r in rows]
            ys = [r[atom] for r in rows]
            if f"{atom}_lower" in rows[0]:
                # a percentile interval need not contain the estimate: clip the bars at 0
                err = [[max(y - r[f"{atom}_lower"], 0) for y, r in zip(ys, rows, strict=True)],
                       [max(r[f"{atom}_upper"] - y, 0) for y, r in zip(ys, rows, strict=True)]]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{group}={g}")
            else:
                ax.plot(xs, ys, marker="o", label=f"{group}={g}")
        ax.set_xlabel(x)
        ax.set_title(atom)
        ax.set_ylabel(table[0]["unit"])
    axes[0].legend(fontsize="small")
    return axes
