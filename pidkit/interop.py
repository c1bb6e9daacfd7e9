"""Conversion between pidkit's ndarray pmfs and ``dit.Distribution`` (dit is optional)."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_dit_distribution(obj: Any) -> bool:
    """Whether ``obj`` is a ``dit`` distribution, checked without importing dit."""
    return any(cls.__module__.split(".")[0] == "dit" for cls in type(obj).__mro__)


def from_dit(dist: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dense pmf (one axis per random variable) and variable names of a ``dit.Distribution``."""
    raise NotImplementedError("filled in by the foundation work")
