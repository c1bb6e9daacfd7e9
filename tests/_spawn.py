"""Two-process tests without torchrun: start ``worker(rank, world, init_file, out_dir)`` in
``world`` processes (``torch.multiprocessing.spawn``, file rendezvous), wait for them with a
deadline (killing them and failing the test past it) and load what each rank saved as
``rank{r}.npz`` in ``out_dir``."""

import os
import tempfile
import time

import numpy as np
import pytest
import torch.multiprocessing as mp


def spawn_and_load(worker, world: int = 2, timeout: float = 300.0) -> list:
    """The ``world`` ranks' ``rank{r}.npz`` contents, loaded in memory, after ``worker``
    ran in every process."""
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        ctx = mp.spawn(worker, args=(world, init_file, tmp), nprocs=world, join=False)
        deadline = time.monotonic() + timeout
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                for proc in ctx.processes:
                    proc.kill()
                pytest.fail(f"the {world} worker processes did not finish within "
                            f"{timeout:g} s")
        return [dict(np.load(os.path.join(tmp, f"rank{r}.npz"))) for r in range(world)]
