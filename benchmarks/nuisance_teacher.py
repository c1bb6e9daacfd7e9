"""The nuisance-teacher benchmark (issue 8): RID and the baselines under trained and nuisance
teachers on digits and MNIST-1D, with audits over training.

Same as ``pidkit-distill benchmark nuisance`` (all its options are accepted), e.g.::

    python benchmarks/nuisance_teacher.py                 # full run: 5 seeds, both data sets
    python benchmarks/nuisance_teacher.py --quick         # smoke run (1 seed, few epochs)
    python benchmarks/nuisance_teacher.py --sweep mnist1d # width / label / unlabelled sweep
    python benchmarks/nuisance_teacher.py --diagnose digits  # loss terms, old -> new regime

Results go to ``benchmarks/results/nuisance_teacher.{json,md}`` and
``nuisance_teacher_<dataset>_*.png`` (machine, date, versions, thread settings and the exact command
are recorded inside). Workers use one torch thread and one BLAS thread each; the timing block
reports wall-clock and CPU seconds (on a shared machine the CPU seconds are the honest cost).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from pidkit_distill.cli import main as cli_main

    return cli_main(["benchmark", "nuisance", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
