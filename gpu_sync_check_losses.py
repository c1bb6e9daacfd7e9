"""Temporary device check (not for commit): syncs per training step on CUDA under
torch.cuda.set_sync_debug_mode("warn"), and step times."""
import collections
import sys
import time
import warnings

import torch
from torch import nn

sys.path.insert(0, ".")
import pidkit  # noqa: E402
from pidkit_distill.losses import UNLABELLED, Batch, make_loss  # noqa: E402

dev = torch.device("cuda")
print(torch.__version__, torch.cuda.get_device_name())


class MLP(nn.Module):
    def __init__(self, hidden, d_in=32, k=10):
        super().__init__()
        self.l1, self.l2, self.head = nn.Linear(d_in, hidden[0]), nn.Linear(*hidden), nn.Linear(hidden[1], k)

    def forward(self, x):
        h1 = self.l1(x).relu()
        h2 = self.l2(h1).relu()
        return self.head(h2), [h1, h2]


g = torch.Generator().manual_seed(0)
ys = [torch.arange(256) % 10, torch.where(torch.arange(256) % 4 == 0, UNLABELLED, torch.arange(256) % 10),
      torch.full((256,), UNLABELLED)]
batches = [(torch.randn(256, 32, generator=g).to(dev), y.to(dev)) for y in ys]
METHODS = [("none", {}), ("kd", {}), ("fitnets", {}), ("vid", {}), ("ted", {}), ("rid", {}),
           ("pid", {"measure": "broja", "dim": 4}), ("pid", {"measure": "mmi", "dim": 4})]


def step(teacher, student, loss_fn, phase, x, y):
    with torch.no_grad():
        tl, tf = teacher(x)
    with torch.set_grad_enabled(phase == "student"):
        sl, sf = student(x)
    b = Batch(y=y, student_logits=sl, teacher_logits=tl, student_features=sf, teacher_features=tf)
    loss, parts = (loss_fn.student_loss(b) if phase == "student"
                   else loss_fn.teacher_loss(b, distill=phase == "teacher"))
    loss.backward()
    return loss, parts


for method, opts in METHODS:
    torch.manual_seed(0)
    teacher, student = MLP((64, 48)).to(dev), MLP((32, 24)).to(dev)
    loss_fn = make_loss(method, [(64,), (48,)], [(32,), (24,)], 10, **opts).to(dev)
    phases = ["warmup", "teacher", "student"] if loss_fn.two_phase else ["student"]
    for phase in phases:
        loss_fn.set_phase(phase)
        for x, y in batches:  # warm-up (lazy CUDA/cuBLAS/cusolver initialisation)
            step(teacher, student, loss_fn, phase, x, y)
        torch.cuda.synchronize()
        where = collections.Counter()
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            for x, y in batches:
                step(teacher, student, loss_fn, phase, x, y)
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        for m in w:
            if "synchroniz" in str(m.message):
                where[f"{m.filename.split('/')[-1]}:{m.lineno}"] += 1
        print(f"{method:8s} {opts.get('measure', ''):6s} {phase:8s} syncs in 3 steps: "
              f"{sum(where.values())} {dict(where)}")
    if method == "pid" or method == "kd":
        loss_fn.set_phase("student")
        x, y = batches[1]
        for _ in range(5):
            step(teacher, student, loss_fn, "student", x, y)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(50):
            step(teacher, student, loss_fn, "student", x, y)
        torch.cuda.synchronize()
        print(f"  {method} {opts.get('measure', '')}: {(time.perf_counter() - t0) / 50 * 1e3:.2f} ms/step")

# sanity: the validated Gaussian PID on CUDA does synchronise; the unvalidated one not (mmi)
cov = torch.eye(6, device=dev, dtype=torch.float64) + 0.3
for validate in (True, False):
    for measure in ("broja", "mmi"):
        kw = {} if validate else {"validate": False}
        pidkit.gaussian_pid(cov, (2, 2, 2), measure=measure, certify=False, **kw)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            pidkit.gaussian_pid(cov, (2, 2, 2), measure=measure, certify=False, **kw)
        torch.cuda.set_sync_debug_mode("default")
        locs = collections.Counter(f"{m.filename.split('/')[-1]}:{m.lineno}" for m in w
                                   if "synchroniz" in str(m.message))
        print(f"gaussian_pid validate={validate} {measure}: {sum(locs.values())} syncs {dict(locs)}")
