"""Coverage of the Gaussian route's bootstrap intervals on a known answer: how often the 95 %
interval of each atom contains the true Gaussian PID, for each interval kind.

Data: ``--repeats`` data sets of ``--n`` samples of a scalar Gaussian channel,
X = M + N, Y = 0.6 M + N' (M, N, N' independent standard normals), whose PID (BROJA, bits) is
that of its population covariance, :func:`pidkit.gaussian_pid`. Each data set is decomposed by
:func:`pidkit.gaussian_pid_from_samples` with 200 bootstrap replicates (seed = repeat index) and
``interval`` "percentile", "basic" and "normal" (the last with ``n_perm=100``, which it needs).
The standard error of a coverage near 0.95 is about ``sqrt(0.05 * 0.95 / repeats)``.

Run from the repository root: ``python benchmarks/gaussian_interval_coverage.py`` (about a
minute). Results in ``benchmarks/results/gaussian_interval_coverage.*``.
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
from _common import blas_threads, write_results

KINDS = ("percentile", "basic", "normal")
NODES = {"Red": ((0,), (1,)), "Uni_X": ((0,),), "Uni_Y": ((1,),), "Syn": ((0, 1),)}


def main(repeats: int, n: int) -> None:
    import pidkit

    gain = 0.6
    cov = np.array([[1.0, 1.0, gain], [1.0, 2.0, gain], [gain, gain, gain**2 + 1.0]])
    truth = pidkit.gaussian_pid(cov, dims=(1, 1, 1), measure="broja", base=2)
    true = {name: float(truth.atoms[node]) for name, node in NODES.items()}
    factor = np.linalg.cholesky(cov)
    rng = np.random.default_rng(12345)
    hits = {kind: dict.fromkeys(NODES, 0) for kind in KINDS}
    with blas_threads(1) as blas, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for repeat in range(repeats):
            z = rng.normal(size=(n, 3)) @ factor.T
            for kind in KINDS:
                r = pidkit.gaussian_pid_from_samples(
                    z[:, 0], z[:, 1], z[:, 2], n_boot=200, seed=repeat, interval=kind,
                    n_perm=100 if kind == "normal" else 0)
                for name, node in NODES.items():
                    lo, hi = r.intervals[node]
                    hits[kind][name] += bool(lo <= true[name] <= hi)
    se = math.sqrt(0.05 * 0.95 / repeats)
    rows = [{"interval": kind, **{name: hits[kind][name] / repeats for name in NODES}}
            for kind in KINDS]
    notes = [f"{repeats} data sets of n = {n}; true atoms (bits): "
             + ", ".join(f"{name} {value:.4f}" for name, value in true.items()) + ".",
             f"Entries: share of the data sets whose 95 % interval contains the true atom; "
             f"standard error about {se:.3f} at 0.95.",
             "gaussian_pid_from_samples, 200 bootstrap replicates, seed = repeat index; "
             "'normal' with n_perm = 100 (its extension to 0 needs the shuffle null)."]
    write_results("gaussian_interval_coverage", rows, blas=blas,
                  columns=["interval", *NODES],
                  title="Gaussian route: coverage of 95 % bootstrap intervals", notes=notes,
                  extra={"true_atoms_bits": true, "n": n, "repeats": repeats})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    main(args.repeats, args.n)
