"""Temporary alias of :mod:`pidkit.validation` for modules not yet moved to the public name.

Remove once ``pidkit/gaussian/*.py`` and ``pidkit_distill/{train,features,data,models}.py``,
``pidkit_distill/losses/*.py`` import from :mod:`pidkit.validation`.
"""

from .validation import check_base, check_choice, check_positive, check_samples, fail

__all__ = ["check_base", "check_choice", "check_positive", "check_samples", "fail"]
