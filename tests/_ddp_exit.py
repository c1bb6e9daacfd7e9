"""A user's training script under ``torchrun --nproc_per_node 2`` that ends without tearing
anything down (tests/test_distill_shutdown.py).

``python _ddp_exit.py ours``: the trainer starts the process group from torchrun's environment;
``python _ddp_exit.py user``: the script starts it itself. Either way the script trains RID
with unlabelled samples and exits with the trainer (and its DistributedDataParallel wrappers)
still alive. A check registered before the trainer's exit handler runs after it and prints
whether the group is still initialised; a script that started its own group then destroys it
there, as PyTorch asks of the owner of a group (a gloo group left to the interpreter's
finalisation can abort the process there, whoever made the wrappers: torch's own behaviour).
"""

import atexit
import sys

import torch
import torch.distributed as dist
from _ddp_cases import trainer


def _at_exit() -> None:
    print(f"group initialised at exit: {dist.is_initialized()}", flush=True)
    if sys.argv[1] == "user" and dist.is_initialized():
        dist.destroy_process_group()


atexit.register(_at_exit)
torch.set_num_threads(1)
if sys.argv[1] == "user":
    dist.init_process_group("gloo")
t = trainer("rid", True)
t.fit()
