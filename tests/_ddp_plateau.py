"""Worker script of tests/test_distill_ddp_plateau.py, run with ``torchrun --nproc_per_node 2``
(gloo): a ReduceLROnPlateau watching an AuditCallback metric, which only the main process
computes. Every rank saves its learning rates and its scheduler's best value to
``<out>.rank<r>``.
"""

import sys

import torch
from torch.utils.data import TensorDataset

import pidkit_distill as pd
from pidkit_distill import models
from pidkit_distill.audits.callback import AuditCallback

EPOCHS = 4


def blobs(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    return TensorDataset(centers[y] + 0.8 * torch.randn(n, 16, generator=g), y)


def plateau(optimizer):
    # every epoch whose redundancy is not a new maximum halves the learning rate
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                      patience=0, threshold=0.0)


def main(out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    teacher = models.get_model("digits_mlp", hidden=(24, 12), in_features=16, num_classes=3)
    torch.manual_seed(1)
    student = models.get_model("digits_mlp", hidden=(8, 6), in_features=16, num_classes=3)
    audit_data = blobs(90, 2)
    callback = AuditCallback(audit_data, estimator="gaussian", ci=None, n_perm=0)
    trainer = pd.Trainer(teacher, student, blobs(96, 1), method="kd", epochs=EPOCHS,
                         batch_size=24, lr=0.5, seed=5, progress=False, checkpoint_every=0,
                         scheduler=plateau, scheduler_monitor="audit_redundancy",
                         callbacks=[callback])
    assert trainer.world_size == 2
    trainer.fit()
    torch.save({"lr": [h["lr"] for h in trainer.history],
                "final_lr": trainer.student_optimizer.param_groups[0]["lr"],
                "best": float(trainer.student_scheduler.best),
                "audited": [h.get("audit_redundancy") for h in trainer.history]},
               f"{out}.rank{trainer.rank}")


if __name__ == "__main__":
    main(sys.argv[1])
