"""Student accuracies over seeds: mean, standard deviation and Student-t interval per
(data set, teacher, method)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .setups import METHODS, TEACHERS

__all__ = ["summarize", "t_interval"]


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    r"""Mean, sample standard deviation and the two-sided Student-t confidence interval
    :math:`\bar x \pm t_{n-1,(1+\ell)/2}\, s/\sqrt n` of ``values`` (NaN bounds for n < 2).

    >>> m, s, lo, hi = t_interval([1.0, 2.0, 3.0])
    >>> round(lo, 3), round(hi, 3)
    (-0.484, 4.484)
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return mean, sd, mean - half, mean + half



def summarize(runs: Sequence[Mapping[str, Any]], level: float = 0.95) -> list[dict[str, Any]]:
    """Mean, std and t-interval of test accuracy per (data set, teacher, method) over seeds.

    ``none`` does not use its teacher: its rows are pooled over teachers (one value per seed).
    """
    groups: dict[tuple, dict[int, float]] = {}
    for r in runs:
        teacher = "-" if r["method"] == "none" else r["teacher"]
        groups.setdefault((r["dataset"], teacher, r["method"]), {})[r["seed"]] = r["test_acc"]
    rows = []
    for (dataset, teacher, method), by_seed in groups.items():
        values = [by_seed[s] for s in sorted(by_seed)]
        mean, sd, lo, hi = t_interval(values, level)
        rows.append({"dataset": dataset, "teacher": teacher, "method": method,
                     "n_seeds": len(values), "mean": mean, "std": sd, "ci_low": lo,
                     "ci_high": hi, "values": values})
    order = {m: i for i, m in enumerate(METHODS)}
    torder = {t: i for i, t in enumerate(("-", *TEACHERS))}
    rows.sort(key=lambda r: (r["dataset"], torder.get(r["teacher"], 99),
                             order.get(r["method"].partition(":")[0], 99), r["method"]))
    return rows

