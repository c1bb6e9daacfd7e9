"""Count host synchronisations in a block of torch code, on any device (CPU included).

A GPU runs asynchronously from the Python process until the process needs a value: ``.item()``,
``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``, or an operation whose output *size* depends
on the data (``t[mask]``, ``nonzero``, ``unique``). Each such call makes the host wait for every
queued kernel, which stalls training steps. :func:`count_host_syncs` records these calls as
they are made (a :class:`torch.overrides.TorchFunctionMode`), so a test on a CPU-only machine
catches the ones that would synchronise a GPU:

>>> import torch
>>> from pidkit_distill.sync_check import count_host_syncs
>>> x = torch.randn(8)
>>> with count_host_syncs() as syncs:
...     y = (x * 2).relu().sum()            # pure tensor operations: not counted
...     value = float(y)                    # a host read: counted
...     picked = x[x > 0]                   # a boolean-mask gather: counted
>>> syncs.count
2
>>> print(syncs.report())  # doctest: +ELLIPSIS
2 host synchronisation(s):
  Tensor.__float__ at <doctest ...>:3 (<module>)
  Tensor.__getitem__ with a boolean mask at <doctest ...>:4 (<module>)

What is counted (outermost calls only: an operation inside a counted one is not counted again):

- device-to-host reads: ``Tensor.item``, ``tolist``, ``cpu``, ``numpy``, ``__array__``,
  ``__bool__``, ``__float__``, ``__int__``, ``__index__``, ``__complex__``, ``__format__``,
  ``__repr__``, ``__contains__``, ``is_nonzero``, ``torch.allclose``, ``torch.equal``;
- data-dependent output sizes: ``nonzero``, ``argwhere``, one-argument ``torch.where``,
  ``masked_select``, ``unique``, ``unique_consecutive``, ``bincount``, ``repeat_interleave``
  with tensor repeats and no ``output_size``, indexing or index assignment with a boolean mask
  or with a Python list (host data copied to the device);
- host-to-device copies of host data: ``torch.tensor`` / ``torch.as_tensor`` /
  ``torch.asarray`` of non-tensor data with an explicit ``device`` (on CUDA, a synchronising
  copy).

Not seen: synchronisations inside torch's C++ kernels that no Python call reveals, such as the
status check of ``torch.linalg.cholesky`` / ``eigh`` / ``eigvalsh`` / ``inv`` on CUDA, and
``Tensor.to(device)`` (the device of the data cannot be told on a CPU). On a GPU,
``torch.cuda.set_sync_debug_mode("error")`` catches those too.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["HostSyncCounter", "SyncEvent", "count_host_syncs"]


def _functions(*names: str) -> list[Callable]:
    """``torch.Tensor`` methods and ``torch`` functions by name (``"Tensor.item"``,
    ``"torch.nonzero"``), skipping any this torch version lacks."""
    out = []
    for name in names:
        owner, attr = name.split(".")
        fn = getattr(torch.Tensor if owner == "Tensor" else torch, attr, None)
        if fn is not None:
            out.append(fn)
    return out


#: Calls that always read a value on the host.
_READS = _functions(
    "Tensor.item", "Tensor.tolist", "Tensor.cpu", "Tensor.numpy", "Tensor.__array__",
    "Tensor.__bool__", "Tensor.__float__", "Tensor.__int__", "Tensor.__index__",
    "Tensor.__complex__", "Tensor.__format__", "Tensor.__repr__", "Tensor.__contains__",
    "Tensor.is_nonzero", "torch.is_nonzero", "Tensor.allclose", "torch.allclose",
    "Tensor.equal", "torch.equal",
    # output size known only from the data
    "Tensor.nonzero", "torch.nonzero", "Tensor.argwhere", "torch.argwhere",
    "Tensor.masked_select", "torch.masked_select", "Tensor.unique", "torch.unique",
    "Tensor.unique_consecutive", "torch.unique_consecutive", "Tensor.bincount",
    "torch.bincount")
_INDEXING = _functions("Tensor.__getitem__", "Tensor.__setitem__")
_REPEAT = _functions("Tensor.repeat_interleave", "torch.repeat_interleave")
_FROM_HOST = _functions("torch.tensor", "torch.as_tensor", "torch.asarray")
_WHERE = _functions("torch.where")

#: Files whose frames are skipped when looking for the call site (torch and this module).
_SKIP = (os.path.dirname(torch.__file__) + os.sep, os.path.abspath(__file__))


def _name(func: Callable) -> str:
    owner = "Tensor" if getattr(torch.Tensor, func.__name__, None) is func else "torch"
    return f"{owner}.{func.__name__}"


def _host_index(index: Any) -> str | None:
    """Why an index synchronises (a boolean mask, host data), or None."""
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, torch.Tensor) and item.dtype in (torch.bool, torch.uint8):
            return "with a boolean mask"
        if isinstance(item, list):
            return "with a Python list"
    return None


def _reason(func: Callable, args: tuple, kwargs: dict) -> str | None:
    """A description of the synchronisation ``func(*args, **kwargs)`` makes, or None."""
    if func in _READS:
        return _name(func)
    if func in _INDEXING:
        why = _host_index(args[1]) if len(args) > 1 else None
        return f"{_name(func)} {why}" if why else None
    if func in _WHERE and len(args) + len(kwargs) == 1:
        return "torch.where with one argument"
    if func in _REPEAT:
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        if (repeats is None or isinstance(repeats, torch.Tensor)) and \
                kwargs.get("output_size") is None:
            return f"{_name(func)} without output_size"
        return None
    if func in _FROM_HOST and kwargs.get("device") is not None and args and \
            not isinstance(args[0], torch.Tensor):
        return f"{_name(func)} of host data with device="
    return None


def _call_site() -> str:
    """``file:line (function)`` of the innermost frame outside torch and this module."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} ({code.co_name})"


@dataclass(frozen=True)
class SyncEvent:
    """One counted call: what it was and where it was made."""

    op: str
    site: str


class HostSyncCounter(TorchFunctionMode):
    """The context manager of :func:`count_host_syncs`; ``events`` lists the counted calls
    (:class:`SyncEvent`) in order."""

    def __init__(self):
        super().__init__()
        self.events: list[SyncEvent] = []

    @property
    def count(self) -> int:
        """Number of counted calls."""
        return len(self.events)

    def report(self) -> str:
        """The counted calls grouped by operation and call site, most frequent first."""
        if not self.events:
            return "no host synchronisation"
        lines = [f"{self.count} host synchronisation(s):"]
        for (op, site), k in Counter((e.op, e.site) for e in self.events).most_common():
            lines.append(f"  {op} x{k} at {site}" if k > 1 else f"  {op} at {site}")
        return "\n".join(lines)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        reason = _reason(func, args, kwargs)
        if reason is not None:
            self.events.append(SyncEvent(reason, _call_site()))
        return func(*args, **kwargs)


def count_host_syncs() -> HostSyncCounter:
    """A context manager counting the calls in its block that synchronise a GPU with the host
    (on tensors of any device; see the module docstring for what is counted).

    Examples
    --------
    >>> import torch
    >>> with count_host_syncs() as syncs:
    ...     total = torch.ones(3).sum()
    >>> assert syncs.count == 0, syncs.report()
    """
    return HostSyncCounter()
