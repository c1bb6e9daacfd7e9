"""One BLAS thread for small and thin linear algebra (the BROJA solvers, the estimators).

The lean single-pmf BROJA iteration and the crossover work on matrices of at most a few hundred
rows, where threads cannot help: on a busy machine OpenBLAS's threads made a k = 8 solve 2.5x
slower (10 ms instead of 4 ms). The batched BROJA solves of the bootstrap (many 10 x 10 LAPACK
calls) and the thin products of the randomized PCA (an ``n x D`` matrix times ``D x 20``,
memory-bound) gain nothing from BLAS threads and lose much to their synchronisation on a shared
machine. Measured on the 2-core benchmark machine under load (``benchmarks/results/audit.md``):
100 batched BROJA solves of 10 x 10 x 10 count tables took 18-20 s with 2 OpenBLAS threads and
3.1-3.4 s with 1; the products ``Q^T X`` of a 10,000 x 4,096 float32 ``X`` 0.22 s with 2 threads
and 0.05 s with 1. threadpoolctl (a scikit-learn dependency) does the pinning; without it
nothing is changed.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["have_threadpoolctl", "one_blas_thread"]

#: The threadpoolctl controller, built on first use (about 10 us per use afterwards; building
#: it scans the loaded libraries), or None without threadpoolctl.
_CONTROLLER: list = []


def _controller() -> Any:
    """The threadpoolctl controller (built once), or None without threadpoolctl."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - depends on the environment
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def have_threadpoolctl() -> bool:
    """Whether threadpoolctl is installed (so that :func:`one_blas_thread` pins threads)."""
    return _controller() is not None


def one_blas_thread() -> Any:
    """A context manager limiting BLAS to one thread (a no-op without threadpoolctl).

    threadpoolctl applies the limit when the limiter is *created*, so call this in the ``with``
    statement itself: a limiter built and never entered is never undone."""
    controller = _controller()
    if controller is None:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
