"""A user's training script under ``torchrun --nproc_per_node 2`` that ends without tearing
anything down (tests/test_distill_shutdown.py).

``python _ddp_exit.py ours``: the trainer starts the process group from torchrun's environment;
``python _ddp_exit.py user``: the script starts it itself. Either way the script trains RID
with unlabelled samples and exits with the trainer (and its DistributedDataParallel wrappers)
still alive. A check registered before the trainer's exit handler runs after it and prints
whether the group is still initialised.
"""

import atexit
import sys

import torch
import torch.distributed as dist
from _ddp_cases import trainer

atexit.register(lambda: print(f"group initialised at exit: {dist.is_initialized()}",
                              flush=True))
torch.set_num_threads(1)
if sys.argv[1] == "user":
    dist.init_process_group("gloo")
t = trainer("rid", True)
t.fit()
