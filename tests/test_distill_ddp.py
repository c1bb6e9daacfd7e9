"""Data-parallel training with ``torchrun --nproc_per_node 2`` on the gloo backend (CPU): the
two processes make the same updates as one process on the same global batches, for none, KD,
VID, RID, the PID loss and the exact discrete regulariser, with full labels and with a third
of the labels hidden (batch-norm free models and filters, so that no per-process batch
statistics enter)."""

import pytest
import torch
from _ddp_cases import CASES, HERE, case_name, run_torchrun, trainer


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "rank0.pt"
    done = run_torchrun(HERE / "_ddp_cases.py", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-8000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "unlabelled"), CASES,
                         ids=[case_name(m, u) for m, u in CASES])
def test_two_processes_make_the_updates_of_one(two_processes, method, unlabelled):
    torch.set_num_threads(1)
    single = trainer(method, unlabelled)
    single.fit()
    got = two_processes[case_name(method, unlabelled)]
    for name, module in (("student", single.student), ("loss", single.loss_fn)):
        for key, value in module.state_dict().items():
            # float64 training (_ddp_cases.DTYPE): the two runs sum the same terms in another
            # order, and three epochs of SGD carry that rounding (1e-16 relative per step)
            # into ~1e-12; running sums (PID's moments, BROJA's soft counts) add up products
            # over every row seen: an entry that cancels to a small value carries the absolute
            # error of its largest terms, so their tolerance is relative to the largest entry
            atol = 1e-9 * float(value.abs().max()) if key.startswith("ema_") else 1e-10
            torch.testing.assert_close(got[name][key], value, rtol=1e-9, atol=atol,
                                       msg=lambda m, k=key: f"{k}: {m}")
    # metrics are reduced over both processes: identical to the single-process ones
    torch.testing.assert_close(got["val_acc"], torch.tensor(
        [h["val_acc"] for h in single.history], dtype=torch.float64))
    torch.testing.assert_close(got["train_loss"], torch.tensor(
        [h["train_loss"] for h in single.history], dtype=torch.float64), rtol=1e-9, atol=1e-10)
