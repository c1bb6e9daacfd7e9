"""A ReduceLROnPlateau watching an AuditCallback metric under ``torchrun --nproc_per_node 2``
(gloo). The callback audits on the main process only, so the other process had no
``audit_*`` metric: it stopped with a missing-metric error while the main process waited for it
in the next epoch. Every process now steps its scheduler with the main process's value
(broadcast once per epoch), so their learning rates stay equal."""

import pytest
import torch
from _ddp_cases import HERE, run_torchrun
from torch.utils.data import TensorDataset

import pidkit_distill as pd
from pidkit.errors import PIDTypeError


@pytest.mark.slow
def test_every_process_steps_its_plateau_scheduler_with_the_main_process_value(tmp_path):
    out = tmp_path / "plateau"
    done = run_torchrun(HERE / "_ddp_plateau.py", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-8000:]
    main, other = (torch.load(f"{out}.rank{r}", weights_only=True) for r in (0, 1))
    # the audit ran on the main process only ...
    assert all(isinstance(v, float) for v in main["audited"])
    assert other["audited"] == [None] * len(main["audited"])
    # ... and both schedulers saw its values: the best is the main process's largest
    # redundancy, and the learning rates agree epoch by epoch
    assert other["best"] == main["best"] == max(main["audited"])
    assert other["lr"] == main["lr"] and other["final_lr"] == main["final_lr"]
    # the schedule did react to the metric (a non-improving epoch halved the rate)
    assert main["final_lr"] < 0.5


def test_a_monitored_metric_that_is_not_a_number_is_a_typed_error():
    data = TensorDataset(torch.randn(12, 4), torch.arange(12) % 2)
    tag = pd.LambdaCallback(lambda trainer, epoch, metrics: metrics.update(note="fine"))
    with pytest.raises(PIDTypeError, match=r"^scheduler_monitor: 'note' is a str in epoch 0, "
                                           r"not a number ReduceLROnPlateau can watch"):
        pd.distill(None, torch.nn.Linear(4, 2), data, method="none", epochs=1, batch_size=4,
                   progress=False, scheduler_monitor="note", callbacks=[tag],
                   scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau)
