"""Discrete PID measures on pmfs. Importing this package registers every measure."""

from . import broja, ccs, dep, gh, ig, imin, mmi, pm, proj, sx, wedge  # noqa: F401  (registers the measures)
from .registry import MEASURES, available_measures, register_measure

__all__ = ["MEASURES", "available_measures", "register_measure"]
