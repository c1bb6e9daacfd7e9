"""Data-parallel training: two CPU processes on the gloo backend give the same weights as one
process on the same global batch (RID with batch-norm-free filters and MLPs, so that no
per-process batch statistics enter)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import TensorDataset

from pidkit_distill import models
from pidkit_distill.train import Trainer

OPTIONS = dict(method="rid", epochs=3, warmup=1, cycle=2, ratio=0.5, batch_size=64, lr=0.05,
               seed=5, progress=False, method_options={"norm": False, "lambda2": 1.0})


def _blobs(n, seed):
    """Three Gaussian classes in 16 dimensions (no scikit-learn import in the workers)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    return TensorDataset(centers[y] + 0.8 * torch.randn(n, 16, generator=g), y)


def _setup():
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", hidden=(24, 12), in_features=16, num_classes=3)
    torch.manual_seed(1)
    student = models.get_model("digits_mlp", hidden=(8, 6), in_features=16, num_classes=3)
    return teacher, student, _blobs(192, 1), _blobs(90, 2)


def _worker(rank, world, init_file, out_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        teacher, student, train, test = _setup()
        trainer = Trainer(teacher, student, train, val_data=test, **OPTIONS)
        assert (trainer.rank, trainer.world_size) == (rank, world)
        assert trainer.loader.batch_size == 32
        trainer.fit()
        if rank == 0:
            torch.save({"student": trainer.student.state_dict(),
                        "loss": trainer.loss_fn.state_dict(),
                        "val_acc": torch.tensor([h["val_acc"] for h in trainer.history]),
                        "train_loss": torch.tensor([h["train_loss"] for h in trainer.history])},
                       out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    torch.set_num_threads(1)
    teacher, student, train, test = _setup()
    single = Trainer(teacher, student, train, val_data=test, **OPTIONS)
    single.fit()
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "rendezvous"), str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    for name, module in (("student", single.student), ("loss", single.loss_fn)):
        for key, value in module.state_dict().items():
            torch.testing.assert_close(got[name][key], value, rtol=1e-5, atol=1e-6,
                                       msg=f"{name}.{key}")
    # metrics are reduced over both processes: identical to the single-process ones
    torch.testing.assert_close(got["val_acc"], torch.tensor([h["val_acc"]
                                                             for h in single.history]))
    torch.testing.assert_close(got["train_loss"],
                               torch.tensor([h["train_loss"] for h in single.history]),
                               rtol=1e-5, atol=1e-6)
    assert [h["phase"] for h in single.history] == ["warmup", "student", "teacher"]
