"""Data-parallel training with PyTorch's own machinery (``torchrun`` +
:class:`~torch.nn.parallel.DistributedDataParallel`).

:func:`init_distributed` starts the process group from ``torchrun``'s environment variables with
the backend that fits the device (``nccl`` for CUDA, ``gloo`` otherwise) and, on CUDA, pins each
process to ``cuda:LOCAL_RANK`` with :func:`torch.cuda.set_device`.

:func:`phase_ddp` wraps the trainer's step module once per phase, each wrapper tracking exactly
the parameters that phase trains (two-phase methods such as RID train disjoint parameter sets in
their teacher and student phases; a DDP wrapper whose parameters get no gradient would wait
forever for them). Only the wrapper whose ``forward`` ran in an iteration reduces gradients
(DDP's reducer ignores autograd hooks it was not prepared for), so sharing parameters between
the wrappers is safe.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["init_distributed", "world_info", "phase_ddp", "backend_for"]


def backend_for(device: torch.device | str) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` for anything else."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def world_info() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialised process group, ``(0, 1)`` otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device | str = "cpu",
                     backend: str | None = None) -> tuple[int, int]:
    """Initialise ``torch.distributed`` from ``torchrun``'s environment variables
    (``WORLD_SIZE > 1``) if it is not initialised yet; return ``(rank, world_size)``.

    The backend follows ``device`` (:func:`backend_for`) unless ``backend`` is given; with a
    CUDA device each process calls ``torch.cuda.set_device(LOCAL_RANK)`` first.
    """
    device = torch.device(device)
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if dist.is_available() and not dist.is_initialized() and launched:
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend or backend_for(device))
    return world_info()


@contextlib.contextmanager
def _only_trainable(module: nn.Module, params: Iterable[nn.Parameter]) -> Iterator[None]:
    keep = {id(p) for p in params}
    saved = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in saved:
        p.requires_grad_(id(p) in keep and p.requires_grad)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def phase_ddp(module: nn.Module, params: Iterable[nn.Parameter], device: torch.device,
              find_unused_parameters: bool = False) -> DistributedDataParallel:
    """``DistributedDataParallel(module)`` reducing the gradients of ``params`` only (the
    parameters one phase trains). Module states are broadcast from rank 0 on construction and
    buffers (batch-norm statistics) at every forward."""
    with _only_trainable(module, list(params)):
        return DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters)
