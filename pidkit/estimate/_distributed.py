"""The few torch.distributed calls the sufficient statistics need (torch imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import is_torch
from ..validation import fail


def distributed() -> Any:
    """``torch.distributed`` when torch is installed and a process group is initialised, else
    ``None`` (a single process already holds the global statistics)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def comm_device(dist: Any, group: Any, state: Any) -> Any:
    """Device for collective calls: the state's own device for a tensor, otherwise the current
    CUDA device under NCCL and the CPU for any other backend."""
    import torch

    if is_torch(state):
        return state.device
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(state: Any, dist: Any, group: Any, device: Any) -> Any:
    """Sum ``state`` (ndarray or tensor) over all processes; returns the same kind of object."""
    import torch

    tensor = state if is_torch(state) else torch.from_numpy(np.ascontiguousarray(state))
    tensor = tensor.to(device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)
    return tensor if is_torch(state) else tensor.cpu().numpy()


def agree(values: list[float] | None, what: str, dist: Any, group: Any, device: Any,
          *, reduce: str = "same") -> list[float]:
    """Combine a short vector over processes. ``values`` is ``None`` on a process without samples
    yet, which adopts the others' vector. ``reduce="same"`` checks that every other process holds
    the same vector (e.g. the variables' dimensions) and raises otherwise; ``reduce="max"`` returns
    the element-wise maximum (e.g. alphabet sizes that grew differently on each process)."""
    import torch

    length = torch.tensor([0 if values is None else len(values)], dtype=torch.int64,
                          device=device)
    dist.all_reduce(length, op=dist.ReduceOp.MAX, group=group)
    size = int(length.item())
    if values is not None and len(values) != size:
        raise fail(what, f"differs between processes ({len(values)} entries here, {size} "
                   "elsewhere)", "Update every process with the same variables")
    hi = torch.tensor([-np.inf] * size if values is None else list(values), dtype=torch.float64,
                      device=device)
    lo = torch.tensor([np.inf] * size if values is None else list(values), dtype=torch.float64,
                      device=device)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX, group=group)
    if reduce == "max":
        return hi.tolist()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN, group=group)
    if not torch.equal(hi, lo):
        raise fail(what, f"differs between processes (max {hi.tolist()}, min {lo.tolist()})",
                   "Use the same variables and settings on every process")
    return hi.tolist()
