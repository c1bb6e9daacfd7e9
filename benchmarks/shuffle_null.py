"""The two samplers of the shuffle null of a count table (``pidkit.estimate``): permuting the
``N`` samples one by one (``uncertainty.permutations``, cost proportional to ``N``) against
drawing the shuffled tables themselves (``uncertainty.shuffled_tables``, one hypergeometric draw
per cell, cost independent of ``N``), and the choice ``count_replicates`` makes between them
(``discrete_route.TABLE_NULL_RATIO``: tables when ``N > 30 (R - 1)(C - 1)``, ``R`` occupied
target values, ``C`` occupied source cells).

One row per table: ``R x C`` cells (uniform multinomial counts of ``N`` samples), the time to
draw and count 100 null tables with each sampler (the PID solves of the replicates are not
timed: they are the same for both), and which one ``count_replicates`` takes. BLAS pinned to
one thread (threadpoolctl). Results in ``benchmarks/results/shuffle_null.*``.

Run from the repository root: ``python benchmarks/shuffle_null.py`` (``--quick``: smaller N,
no result files).
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import blas_threads, format_seconds, markdown_table, time_call, write_results

from pidkit.estimate import discrete_route, uncertainty

REPLICATES = 100
#: (R, C, N): target values, source cells, samples.
CASES = ((4, 16, 10**4), (4, 16, 10**6), (10, 256, 10**4), (10, 256, 10**5),
         (10, 256, 10**6), (100, 256, 5 * 10**4), (10, 10_000, 10**5))


def permuted_tables(rng: np.random.Generator, flat: np.ndarray, size: int) -> np.ndarray:
    """The shuffled tables by permuting the samples, as ``count_replicates`` counts them."""
    y_rows = np.repeat(np.arange(flat.shape[0]), flat.sum(axis=1))
    x_rows = np.concatenate([np.repeat(np.arange(flat.shape[1]), flat[y])
                             for y in range(flat.shape[0])])
    codes = y_rows[uncertainty.permutations(rng, len(y_rows), size)] * flat.shape[1] + x_rows
    return np.stack([np.bincount(c, minlength=flat.size) for c in codes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N / 100, no result files")
    args = parser.parse_args()
    rows = []
    with blas_threads(1) as blas:
        for r, c, n in CASES:
            n = n // 100 if args.quick else n
            rng = np.random.default_rng(0)
            flat = rng.multinomial(n, np.full(r * c, 1 / (r * c))).reshape(r, c)
            tables = time_call(lambda f=flat: uncertainty.shuffled_tables(
                np.random.default_rng(1), f, REPLICATES), repeat=3)
            perms = time_call(lambda f=flat: permuted_tables(np.random.default_rng(1), f,
                                                             REPLICATES), repeat=3)
            chosen = "tables" if discrete_route._draws_tables(flat) else "permutations"
            faster = "tables" if tables.best < perms.best else "permutations"
            rows.append({"cells": f"{r} x {c}", "samples": n, "tables_s": tables.best,
                         "permutations_s": perms.best, "chosen": chosen, "faster": faster,
                         "tables": format_seconds(tables.best),
                         "permutations": format_seconds(perms.best)})
    columns = ["cells", "samples", "tables", "permutations", "chosen", "faster"]
    headers = {"cells": "R x C", "samples": "N", "tables": "shuffled tables",
               "permutations": "permuted samples", "chosen": "count_replicates takes",
               "faster": "faster here"}
    notes = [f"Best of 3 draws of {REPLICATES} null tables each (no PID solves); "
             f"TABLE_NULL_RATIO = {discrete_route.TABLE_NULL_RATIO}.",
             "The load average above shows whether other jobs shared the 2 cores."]
    if args.quick:
        print(markdown_table(rows, columns, headers))
        return
    write_results("shuffle_null", rows, title="Shuffle null of a count table: two samplers",
                  blas=blas, columns=columns, headers=headers, notes=notes)


if __name__ == "__main__":
    main()
