"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def general_solver_calls(monkeypatch):
    """The shapes of the batches that the general BROJA solver (``_ipm.solve``) is called on
    from now on in the test (it still runs): empty when only the lean driver solved."""
    from pidkit.discrete.broja import _ipm

    calls = []
    original = _ipm.solve

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(_ipm, "solve", spy)
    return calls


@pytest.fixture(autouse=True)
def seeded_global_numpy_rng():
    """Every test starts from the same global numpy RNG state, restored afterwards. dit's
    optimisers (the references of several tests) draw their starting points from it, so their
    last digits depended on the tests that ran before in the same worker: dit's I_ccs of a
    sparse pmf moved by 1.9e-7 to 7.9e-7 over 80 seeds, and past a test's 1e-6 once under
    ``-n 2``. pidkit itself never reads this RNG (tests check that)."""
    import numpy as np

    state = np.random.get_state()  # noqa: NPY002  (the legacy global RNG dit draws from)
    np.random.seed(0)  # noqa: NPY002
    yield
    np.random.set_state(state)  # noqa: NPY002
