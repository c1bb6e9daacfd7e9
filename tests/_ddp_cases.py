"""Cases of the data-parallel equivalence test (tests/test_distill_ddp.py), shared by the test
and the worker processes it starts with ``torchrun --nproc_per_node 2``.

Run as a script under torchrun, it trains every case on its shard and rank 0 saves the final
student and loss states to the file named by its first argument.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from pidkit_distill import models
from pidkit_distill.losses import UNLABELLED
from pidkit_distill.train import Trainer

HERE = Path(__file__).resolve().parent

METHODS = {
    "none": {},
    "kd": {},
    "vid": {},
    "rid": {"norm": False, "lambda2": 1.0},
    "pid": {"measure": "broja", "beta": 1.0, "momentum": 0.0},
    "pid+momentum": {"measure": "broja"},
    "broja": {"codes": 3, "beta": 1.0},
    "broja+impute": {"codes": 3, "beta": 1.0, "unlabelled": "impute"},
}
#: Epochs per case (default 3). With running moments a PID trajectory is sensitive to rounding
#: (measured: a 1e-7 relative change of the student's initial weights moves its weights by
#: 2e-4 after 3 epochs, by 1e-6 with momentum 0), so that case is compared after 1 epoch.
EPOCHS = {"pid+momentum": 1}
#: The cases train in float64: the two runs sum the same terms in another order, and in float32
#: that rounding (1e-7 relative per step) grew to 3e-4 relative in three epochs, above or below
#: any fixed tolerance depending on the machine's kernels (seen: Intel Xeon within 1e-4, AMD
#: EPYC 3.2e-4 on one PID bias); in float64 the same growth stays near 1e-12.
DTYPE = torch.float64
#: (method, unlabelled) pairs: every method with full labels and with a third unlabelled.
CASES = [(m, u) for m in METHODS for u in (False, True)]


def case_name(method: str, unlabelled: bool) -> str:
    return f"{method}-{'semi' if unlabelled else 'full'}"


def blobs(n: int, seed: int, unlabelled: bool) -> TensorDataset:
    """Three Gaussian classes in 16 dimensions; with ``unlabelled`` every third label hidden
    (global batches of 24 then hold 16 labels, spread unevenly over the two processes)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    x = (centers[y] + 0.8 * torch.randn(n, 16, generator=g)).to(DTYPE)
    if unlabelled:
        y = torch.where(torch.arange(n) % 3 == 1, torch.full_like(y, UNLABELLED), y)
    return TensorDataset(x, y)


def trainer(method: str, unlabelled: bool) -> Trainer:
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", hidden=(24, 12), in_features=16,
                               num_classes=3).to(DTYPE)
    torch.manual_seed(1)
    student = models.get_model("digits_mlp", hidden=(8, 6), in_features=16,
                               num_classes=3).to(DTYPE)
    options = dict(method=method.split("+")[0], epochs=EPOCHS.get(method, 3), batch_size=24,
                   lr=0.05, seed=5, progress=False, method_options=METHODS[method],
                   checkpoint_every=0)
    if method == "rid":
        options.update(warmup=1, cycle=2, ratio=0.5)
    return Trainer(None if method == "none" else teacher, student, blobs(96, 1, unlabelled),
                   val_data=blobs(30, 2, False), **options)


def states(t: Trainer) -> dict:
    return {"student": t.student.state_dict(), "loss": t.loss_fn.state_dict(),
            "val_acc": torch.tensor([h["val_acc"] for h in t.history], dtype=torch.float64),
            "train_loss": torch.tensor([h["train_loss"] for h in t.history],
                                       dtype=torch.float64)}


def main(out: str) -> None:
    import gc

    import torch.distributed as dist

    torch.set_num_threads(1)
    results = {}
    for method, unlabelled in CASES:
        t = trainer(method, unlabelled)
        assert t.world_size == 2 and t.loader.batch_size == 12
        t.fit()
        results[case_name(method, unlabelled)] = states(t)
        del t           # its DistributedDataParallel wrappers, before the next case's
        gc.collect()
    if dist.get_rank() == 0:
        torch.save(results, out)
    # no destroy_process_group: the group the trainer started is torn down at exit by
    # pidkit_distill.distributed (tests/test_distill_shutdown.py)


def run_torchrun(script: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script args`` under ``torchrun --nproc_per_node 2`` on a free loopback port (parallel
    test workers each start their own), with this folder on the path and one thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")])}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
           "2", "--master_addr", "127.0.0.1", "--master_port", str(port), str(script), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
    main(sys.argv[1])
