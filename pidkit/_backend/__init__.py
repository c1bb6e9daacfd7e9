"""One array API, several libraries: numerical code is written once for numpy and torch.

Numerical kernels take their backend from their inputs, ``xp = get_namespace(a, b)``, and use
only the methods of :class:`Backend` (and the operators ``+ - * / @`` and indexing, which both
libraries share). Each library implements the interface once, in its own module:

- :mod:`pidkit._backend._base`: :class:`Backend`, the abstract interface, and the methods
  written once on top of it;
- :mod:`pidkit._backend.numpy`: :class:`NumpyBackend` (the backend of numpy arrays, Python
  scalars and array-likes);
- :mod:`pidkit._backend.torch`: :class:`TorchBackend` (any device, autograd); torch is imported
  only when a torch tensor is passed, so ``pidkit`` imports without torch.

A backend keeps its inputs' dtype and device: arrays it creates (``zeros``, ``asarray``) take
them from a reference array. This package imports nothing from the rest of pidkit but
:mod:`pidkit.errors` (a leaf): input validation imports it, never the other way round.

>>> import numpy as np
>>> from pidkit._backend import get_namespace
>>> xp = get_namespace(np.ones(3))
>>> xp.name, float(xp.sum(np.ones(3), axis=0))
('numpy', 3.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import PIDTypeError, PIDValueError
from ._base import Backend, Factor
from .numpy import SHORT_SUM, NumpyBackend
from .torch import TorchBackend, is_torch

__all__ = ["Backend", "Factor", "NumpyBackend", "TorchBackend", "NUMPY",
           "SHORT_SUM", "get_namespace", "is_torch"]

#: The numpy backend (one instance, stateless).
NUMPY = NumpyBackend()
_TORCH: TorchBackend | None = None


def get_namespace(*arrays: Any) -> Backend:
    """The backend of ``arrays``: numpy for numpy arrays, Python scalars and array-likes, torch
    for tensors. ``None`` entries are ignored.

    Raises
    ------
    PIDTypeError
        If numpy arrays and torch tensors are mixed.
    PIDValueError
        If torch tensors live on different devices.
    """
    global _TORCH
    tensors = [a for a in arrays if is_torch(a)]
    if not tensors:
        return NUMPY
    if len(tensors) != len([a for a in arrays if a is not None and not np.isscalar(a)]):
        raise PIDTypeError("arrays: mix numpy arrays and torch tensors. Convert them all to one "
                           "library (torch.as_tensor or tensor.numpy())")
    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise PIDValueError(f"arrays: torch tensors on different devices ({sorted(devices)}). "
                            "Move them to one device with .to(device)")
    if _TORCH is None:
        _TORCH = TorchBackend()
    return _TORCH
