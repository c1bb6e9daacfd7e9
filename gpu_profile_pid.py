"""Temporary device check (not for commit): where the PID loss's step time goes."""
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, ".")
import pidkit  # noqa: E402
from gpu_sync_check_losses import MLP, batches, step  # noqa: E402
from pidkit_distill.losses import make_loss  # noqa: E402

dev = torch.device("cuda")


def timed(fn, n=50):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1e3


x = torch.randn(256, 17, device=dev, dtype=torch.float64)
cov = (x.T @ x / 255 + 1e-3 * torch.eye(17, device=dev, dtype=torch.float64)).requires_grad_()
for measure in ("mmi", "broja"):
    f = lambda: pidkit.gaussian_pid(cov, (9, 4, 4), measure=measure, validate=False).redundancy  # noqa: E731
    print(measure, "gaussian_pid fwd ms", round(timed(f), 3))
    print(measure, "gaussian_pid fwd+bwd ms", round(timed(lambda: torch.autograd.grad(f(), cov)), 3))
    print(measure, "cpu-only fwd ms", round(timed(lambda: pidkit.gaussian_pid(
        cov.detach().cpu(), (9, 4, 4), measure=measure, validate=False).redundancy), 3))
torch.manual_seed(0)
teacher, student = MLP((64, 48)).to(dev), MLP((32, 24)).to(dev)
loss_fn = make_loss("pid", [(64,), (48,)], [(32,), (24,)], 10, measure="mmi", dim=4).to(dev)
xb, yb = batches[1]
for _ in range(5):
    step(teacher, student, loss_fn, "student", xb, yb)
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        step(teacher, student, loss_fn, "student", xb, yb)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12))
