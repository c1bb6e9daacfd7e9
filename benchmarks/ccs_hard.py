"""I_ccs on hard sparse 4-source pmfs: time per call, against an earlier revision in the same run.

The pmfs are Dirichlet(alpha) over 2-3 states per axis (target and four sources), the kind on
which the maximum-entropy fits of every lattice node need the exact support, Newton's method and
sometimes the primal finish (``pidkit/discrete/_maxent.py``). Each case is timed with the
current tree and, in a subprocess with ``PYTHONPATH`` on an exported copy of ``--baseline``
(default ``720d0de``, the solver with a 9,950-sweep second IPF round and a least-squares dual
Newton), with BLAS pinned to one thread in both. The table gives the best of ``--repeat`` calls,
whether the fit converged, and the largest atom difference between the two (bits).

Usage::

    python benchmarks/ccs_hard.py [--baseline REV] [--repeat N] [--cases N]

Results in ``benchmarks/results/ccs_hard.*``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _common import blas_threads, write_results

SHAPES = [(2, 3, 2, 3, 3), (3, 2, 2, 3, 3), (3, 2, 3, 3, 2), (3, 2, 3, 3, 3)]
ALPHAS = [0.02, 0.05, 0.1]


def cases(n: int) -> list[tuple[str, np.ndarray]]:
    """``n`` seeded pmfs, cycling through SHAPES and ALPHAS."""
    out = []
    for i in range(n):
        shape, alpha = SHAPES[i % len(SHAPES)], ALPHAS[i % len(ALPHAS)]
        p = np.random.default_rng(i).dirichlet(np.full(math.prod(shape), alpha)).reshape(shape)
        out.append((f"{'x'.join(map(str, shape))} a={alpha} seed={i}", p))
    return out


def run(n: int, repeat: int) -> list[dict]:
    """Time pidkit.pid(p, measure='ccs') on each case with the pidkit on ``sys.path``."""
    from threadpoolctl import threadpool_limits

    import pidkit
    from pidkit.errors import ConvergenceWarning

    rows = []
    with threadpool_limits(1):
        for name, p in cases(n):
            best = math.inf
            for _ in range(repeat):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    start = time.perf_counter()
                    r = pidkit.pid(p, measure="ccs")
                    best = min(best, time.perf_counter() - start)
            rows.append({"case": name, "time_s": best, "converged": r.solver.converged,
                         "warnings": sum(issubclass(w.category, ConvergenceWarning)
                                         for w in caught),
                         "atoms": [float(v) / math.log(2) for v in r.atoms.values()]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="720d0de")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:  # the baseline subprocess
        print(json.dumps(run(args.cases, args.repeat)))
        return
    root = pathlib.Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    with blas_threads(1) as blas:
        ours = run(args.cases, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", args.baseline, "pidkit"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=tmp, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, __file__, "--json", "--cases", str(args.cases),
                              "--repeat", str(args.repeat)], check=True, capture_output=True,
                             text=True, env=env, cwd=tmp).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    rows = []
    for a, b in zip(theirs, ours, strict=True):
        diff = max(abs(x - y) for x, y in zip(a["atoms"], b["atoms"], strict=True))
        rows.append({"case": b["case"], "baseline_s": a["time_s"], "current_s": b["time_s"],
                     "speedup": round(a["time_s"] / b["time_s"], 1),
                     "converged": f"{a['converged']}/{b['converged']}",
                     "warnings": f"{a['warnings']}/{b['warnings']}",
                     "max_atom_diff_bits": f"{diff:.1e}",
                     "baseline": f"{a['time_s']:.2f} s", "current": f"{b['time_s']:.2f} s"})
    write_results("ccs_hard", rows, title="I_ccs on hard sparse 4-source pmfs", blas=blas,
                  columns=["case", "baseline", "current", "speedup", "converged", "warnings",
                           "max_atom_diff_bits"],
                  headers={"baseline": f"{args.baseline} (baseline)", "current": "current",
                           "converged": "converged (baseline/current)",
                           "warnings": "warnings (baseline/current)",
                           "max_atom_diff_bits": "largest atom difference (bits)"},
                  notes=[f"Best of {args.repeat} call(s) of pidkit.pid(p, measure='ccs') per "
                         "case, one BLAS thread; the baseline runs in a subprocess on an "
                         f"exported copy of revision {args.baseline}.",
                         "Atom differences above 1e-11 bits were traced to the baseline's "
                         "fits (KKT check of the node fits, session 19)."])


if __name__ == "__main__":
    main()
