"""dit 2.3 as an independent reference for the measure tests: a pmf ``p[y, x0, ...]`` as a
``dit.Distribution`` with the target as the LAST variable, built here from the array
(independently of :func:`pidkit.to_dit`)."""

from __future__ import annotations

import itertools

import numpy as np


def dit_distribution(p: np.ndarray, *, string_symbols: bool = False):
    """The support of ``p[y, x0, ...]`` as outcomes ``(x0, ..., y)``. ``string_symbols``: each
    symbol as a string (dit's ``PID_Proj`` looks outcomes up by value and fails on integer
    tuples)."""
    import dit

    outcomes, probs = [], []
    for idx in itertools.product(*(range(s) for s in p.shape)):
        if p[idx] > 0:
            outcome = (*idx[1:], idx[0])
            outcomes.append(tuple(str(v) for v in outcome) if string_symbols else outcome)
            probs.append(float(p[idx]))
    return dit.Distribution(outcomes, probs)


def random_pmf(rng: np.random.Generator, shape: tuple[int, ...], zeros: float = 0.0) -> np.ndarray:
    """A random pmf of ``shape`` (squared uniforms), about ``zeros`` of its cells set to 0 (the
    first cell never, so it is never all zero)."""
    p = rng.random(shape) ** 2
    p[rng.random(shape) < zeros] = 0.0
    p[(0,) * len(shape)] += 0.01
    return p / p.sum()
