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
