"""Speed of the lattice measures I_min, MMI and I_ccs against dit, in the same run.

Cases: the n-bit parity (Y = X0 xor ... xor X_{n-1}, uniform inputs) and a random pmf over
binary variables (fixed seed), at 3 and 4 sources against dit 2.3 (``PID_WB``, ``PID_MMI``,
``PID_CCS``, whole lattice), and at 5 sources for pidkit alone (dit would take hours). Each
pidkit timing is the best of 3 calls after a warm-up (the lattice is cached after the first
call); each dit timing is one call (they take seconds to minutes). The largest absolute
difference between pidkit's and dit's atoms (bits) is reported next to the speed-up.

Run from the repository root::

    .venv/bin/python benchmarks/lattice_measures.py            # full run (a few minutes)
    .venv/bin/python benchmarks/lattice_measures.py --quick    # 3 sources only, no files

Writes ``benchmarks/results/lattice_measures.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
from _common import blas_threads, format_seconds, time_call, write_results

import pidkit
from pidkit.gates import pmf_from_outcomes
from pidkit.lattice import lattice

MEASURES = ("mmi", "imin", "ccs")


def parity(n: int) -> np.ndarray:
    return pmf_from_outcomes([(sum(bits) % 2, *bits) for bits in itertools.product((0, 1),
                                                                                   repeat=n)])


def random_pmf(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).random((2,) * (n + 1))
    return p / p.sum()


def dit_pid(p: np.ndarray, measure: str):
    """dit's decomposition of p[y, x0, ...] (target moved last), and a node -> atom lookup."""
    import dit
    from dit.pid import PID_CCS, PID_MMI, PID_WB

    outcomes, probs = [], []
    for idx in itertools.product(*(range(s) for s in p.shape)):
        if p[idx] > 0:
            outcomes.append((*idx[1:], idx[0]))
            probs.append(float(p[idx]))
    n = p.ndim - 1
    cls = {"imin": PID_WB, "mmi": PID_MMI, "ccs": PID_CCS}[measure]
    return cls(dit.Distribution(outcomes, probs), sources=[[i] for i in range(n)], target=[n])


def max_difference(ours, theirs, n: int) -> float:
    key = {frozenset(frozenset(m) for m in node): node for node in theirs._lattice}
    return max(abs(ours.atoms[node] - theirs.get_pi(key[frozenset(frozenset(m) for m in node)]))
               for node in lattice(n).nodes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 sources only; write no files")
    args = parser.parse_args(argv)
    sizes_vs_dit = (3,) if args.quick else (3, 4)
    rows = []
    warnings.simplefilter("error", pidkit.ConvergenceWarning)
    import dit.pid  # noqa: F401  (import once, outside the timings)

    with blas_threads(1) as blas:
        for n in sizes_vs_dit:
            dit_pid(parity(n), "mmi")  # untimed: dit builds (and caches) its n-source lattice
            for case, p in (("parity", parity(n)), ("random", random_pmf(n))):
                for measure in MEASURES:
                    ours = time_call(lambda p=p, m=measure: pidkit.pid(p, measure=m), repeat=3)
                    result = pidkit.pid(p, measure=measure)
                    holder = {}

                    def run_dit(p=p, m=measure, holder=holder):
                        holder["pid"] = dit_pid(p, m)

                    theirs = time_call(run_dit, repeat=1, warmup=0)
                    rows.append({"sources": n, "case": case, "measure": measure,
                                 "pidkit_s": ours.best, "dit_s": theirs.best,
                                 "speedup": theirs.best / ours.best,
                                 "max_abs_diff_bits": max_difference(result, holder["pid"], n),
                                 "pidkit": format_seconds(ours.best),
                                 "dit": format_seconds(theirs.best)})
                    print(rows[-1], flush=True)
        if not args.quick:
            for case, p in (("parity", parity(5)), ("random", random_pmf(5))):
                for measure in MEASURES:
                    ours = time_call(lambda p=p, m=measure: pidkit.pid(p, measure=m), repeat=1)
                    rows.append({"sources": 5, "case": case, "measure": measure,
                                 "pidkit_s": ours.best, "dit_s": None, "speedup": None,
                                 "max_abs_diff_bits": None, "pidkit": format_seconds(ours.best),
                                 "dit": "not run"})
                    print(rows[-1], flush=True)
    if args.quick:
        return
    write_results(
        "lattice_measures", rows, blas=blas,
        title="Lattice measures (I_min, MMI, I_ccs): pidkit vs dit",
        columns=["sources", "case", "measure", "pidkit", "dit", "speedup", "max_abs_diff_bits"],
        headers={"max_abs_diff_bits": "max abs diff (bits)", "speedup": "speed-up"},
        notes=["Whole-lattice decompositions (4 / 18 / 166 / 7,579 nodes for 2-5 sources) of "
               "binary pmfs; the parity target is Y = X0 xor ... xor X_{n-1}, the random pmf is "
               "np.random.default_rng(0).random((2,) * (n + 1)), normalised.",
               "pidkit: best of 3 calls after a warm-up (5 sources: one call after a warm-up); "
               "dit 2.3: one call (PID_MMI, PID_WB, PID_CCS), after an untimed call that "
               "builds dit's n-source lattice.",
               "I_ccs: pidkit fits each node's maximum-entropy pmf by batched IPF to 1e-13 "
               "(marginal deviation); dit by IPF to 1e-10, which explains differences of "
               "~1e-10 bits.",
               "Speed-ups are ratios within this run; the machine is shared, absolute times "
               "vary."])


if __name__ == "__main__":
    main()
