"""The Trainer's training steps make no host synchronisation: over a whole epoch the only
device-to-host read is the one at its end (the epoch's summed metrics), however many steps it
has, for RID (warm-up, teacher and student phases), VID and the PID regulariser, with labelled
and partly unlabelled data. (Iterating the DataLoader does host-side index work of PyTorch's
sampler, on CPU tensors, in ``batches.device_batches``: not a device synchronisation.)"""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from pidkit_distill import Trainer, models
from pidkit_distill.losses import UNLABELLED
from pidkit_distill.sync_check import count_host_syncs

torch.set_num_threads(1)


def _data(n, unlabelled):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 16, generator=g) + y[:, None].float()
    if unlabelled:
        y = torch.where(torch.arange(n) % 4 == 0, torch.full_like(y, UNLABELLED), y)
    return TensorDataset(x, y)


@pytest.mark.parametrize("unlabelled", [False, True], ids=["labelled", "semi"])
@pytest.mark.parametrize(("method", "options"), [
    ("rid", {}), ("vid", {}), ("pid", {"measure": "broja"}), ("pid", {"measure": "mmi"})],
    ids=["rid", "vid", "pid-broja", "pid-mmi"])
def test_an_epoch_reads_the_device_once(method, options, unlabelled):
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", hidden=(24, 12), in_features=16, num_classes=3)
    student = models.get_model("digits_mlp", hidden=(8, 6), in_features=16, num_classes=3)
    trainer = Trainer(teacher, student, _data(96, unlabelled), method=method, epochs=3,
                      batch_size=16, progress=False, method_options=options, optimizer="sgd",
                      warmup=1, cycle=2, ratio=0.5)
    assert len(trainer.loader) == 6
    for epoch in range(3 if method == "rid" else 1):
        with count_host_syncs() as syncs:
            metrics = trainer.train_epoch(epoch)
        in_steps = [e for e in syncs.events if "batches.py" not in e.site]
        assert len(in_steps) == 1, syncs.report()
        assert in_steps[0].op.endswith("tolist") and "train.py" in in_steps[0].site
        assert math.isfinite(metrics["train_loss"])
