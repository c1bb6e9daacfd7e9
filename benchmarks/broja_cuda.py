"""Bivariate BROJA on a GPU: the torch backend on CUDA against the numpy solver on the CPU of
the same machine, in one run.

Rows: single pmfs (Dirichlet(1), |Y| = |T| = |S| = k) for k in {4, 8, 16, 32, 64}; the batched
throughput case of ``benchmarks/broja.py`` (10,000 pmfs at k = 4); and a differentiable solve of
a 10 x 10 x 10 pmf with ``backward()``. Each row gives both times, their ratio, the certified gap
on the GPU and the largest difference of the redundancy between the two (bits).

Training-step rows (:func:`training_rows`, the regulariser's case): a batch of 3 pmfs
10 x 10 x 10 walking by a relative step of 1e-2 per cell, each step one ``pidkit.broja`` call
(``batch=True``) plus ``backward()`` of the summed redundancy, timed per step (median over the
steps after the first) on torch CPU and on CUDA: the default certified path (``tol`` 1e-9 and
1e-4 bits, the latter the regulariser's) and the fixed-iteration mode (``iterations=`` 3, 5,
10, 20; no host synchronisation inside the call), each cold and with warm starts chained from the
previous step's result. ``gap_bits`` is the largest certified gap over the steps (fixed mode:
read after the timing), ``red_diff`` the largest difference to the certified CPU solve.

Run on a GPU machine from the repository root::

    python benchmarks/broja_cuda.py            # writes results/broja_cuda.{md,json}
    python benchmarks/broja_cuda.py --quick    # k <= 16 and 1,000 pmfs, no result files
    python benchmarks/broja_cuda.py --training # the training-step rows only (about 1 min),
                                               # writes results/broja_cuda_training.{md,json}
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import Timer, blas_threads, format_seconds, write_results

THREADS = 2


def sync(device) -> None:
    """Wait for the device's queued kernels (no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeat: int = 3):
    """Best of ``repeat`` wall-clock times (after one warm-up call) and the last result."""
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        with Timer() as t:
            result = fn()
        best = min(best, t.seconds)
    return best, result


def rows_single(ks, device) -> list[dict]:
    import torch

    import pidkit

    rows = []
    for k in ks:
        p = np.random.default_rng(k).dirichlet(np.ones(k**3)).reshape(k, k, k)
        gpu = torch.as_tensor(p, device=device)

        def on_gpu(q=gpu):
            r = pidkit.broja(q)
            sync(device)
            return r

        t_cpu, r_cpu = timed(lambda q=p: pidkit.broja(q), repeat=1 if k >= 32 else 3)
        t_gpu, r_gpu = timed(on_gpu, repeat=1 if k >= 32 else 3)
        rows.append({"case": f"one pmf, k={k}", "cpu": format_seconds(t_cpu),
                     "gpu": format_seconds(t_gpu), "cpu_seconds": t_cpu, "gpu_seconds": t_gpu,
                     "speedup": f"{t_cpu / t_gpu:.2f}x",
                     "gap_bits": f"{float(r_gpu.solver.certificate.gap):.1e}",
                     "red_diff": f"{abs(float(r_gpu.redundancy) - r_cpu.redundancy):.1e}"})
        print(rows[-1], flush=True)
    return rows


def row_batched(n: int, k: int, device) -> dict:
    import torch

    import pidkit

    p = np.random.default_rng(0).dirichlet(np.ones(k**3), size=n).reshape((n,) + (k,) * 3)
    gpu = torch.as_tensor(p, device=device)

    def on_gpu():
        r = pidkit.broja(gpu, batch=True)
        sync(device)
        return r

    t_cpu, r_cpu = timed(lambda: pidkit.broja(p, batch=True), repeat=1)
    t_gpu, r_gpu = timed(on_gpu, repeat=2)
    cert = r_gpu.solver.certificate
    gap = float((cert.upper - cert.lower).max())
    diff = float(np.abs(r_gpu.redundancy.cpu().numpy() - r_cpu.redundancy).max())
    row = {"case": f"{n} pmfs at k={k}, batched", "cpu": format_seconds(t_cpu),
           "gpu": format_seconds(t_gpu), "cpu_seconds": t_cpu, "gpu_seconds": t_gpu,
           "speedup": f"{t_cpu / t_gpu:.2f}x", "gap_bits": f"{gap:.1e}",
           "red_diff": f"{diff:.1e}"}
    print(row, flush=True)
    return row


def row_backward(k: int, device) -> dict:
    import torch

    import pidkit

    p = np.random.default_rng(1).dirichlet(np.ones(k**3)).reshape(k, k, k)

    def solve_and_backward(dev):
        q = torch.tensor(p, device=dev, requires_grad=True)
        r = pidkit.broja(q)
        r.redundancy.backward()
        sync(dev)
        return q.grad

    t_cpu, g_cpu = timed(lambda: solve_and_backward(torch.device("cpu")))
    t_gpu, g_gpu = timed(lambda: solve_and_backward(device))
    diff = float((g_gpu.cpu() - g_cpu).abs().max())
    row = {"case": f"solve + backward, k={k}", "cpu": format_seconds(t_cpu),
           "gpu": format_seconds(t_gpu), "cpu_seconds": t_cpu, "gpu_seconds": t_gpu,
           "speedup": f"{t_cpu / t_gpu:.2f}x", "gap_bits": "",
           "red_diff": f"grad {diff:.1e}"}
    print(row, flush=True)
    return row


#: The training-step modes: (label, options of pidkit.broja).
TRAINING_MODES = [("default, tol 1e-9", {}), ("default, tol 1e-4", {"tol": 1e-4}),
                  ("fixed, 3 iterations", {"iterations": 3}),
                  ("fixed, 5 iterations", {"iterations": 5}),
                  ("fixed, 10 iterations", {"iterations": 10}),
                  ("fixed, 20 iterations", {"iterations": 20})]


def walk(n: int = 3, k: int = 10, steps: int = 12, rel: float = 1e-2,
         seed: int = 0) -> list[np.ndarray]:
    """``steps`` batches of ``n`` Dirichlet(1) pmfs ``(k, k, k)``, each moved from the last by a
    relative step ``rel`` per cell (an optimizer step)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k**3), size=n).reshape((n, k, k, k))
    out = []
    for _ in range(steps):
        p = np.abs(p * (1.0 + rel * rng.standard_normal(p.shape)))
        out.append(p / p.sum(axis=(1, 2, 3), keepdims=True))
    return out


def training_steps(tables: list[np.ndarray], device, options: dict, warm: bool) -> dict:
    """One ``pidkit.broja(batch=True, **options)`` call plus ``backward()`` per table on
    ``device``, warm starts chained from the previous step's result if ``warm``: over the
    steps after the first (which is cold either way), the median time (seconds), the largest
    certified gap (bits) and the redundancies (bits, on the host), read after the timed
    steps."""
    import statistics

    import torch

    import pidkit

    times, results, previous = [], [], None
    for p in tables:
        x = torch.tensor(p, device=device, requires_grad=True)
        sync(device)
        with Timer() as t:
            r = pidkit.broja(x, batch=True, warm_start=previous if warm else None, **options)
            r.redundancy.sum().backward()
            sync(device)
        times.append(t.seconds)
        results.append(r)
        previous = r
    cert = [r.solver.certificate for r in results[1:]]
    gap = max(float((c.upper - c.lower).max()) for c in cert)
    return {"seconds": statistics.median(times[1:]), "gap_bits": gap,
            "red": np.stack([r.redundancy.detach().cpu().numpy() for r in results[1:]])}


def cuda_sync_check(device) -> str:
    """Run a cold and a warm fixed-iteration step (solve + backward) under
    ``torch.cuda.set_sync_debug_mode("error")``, which raises at any synchronising CUDA call
    (including those inside torch's kernels that ``pidkit_distill.sync_check`` cannot see):
    ``"none"``, or the error's first line."""
    import torch

    import pidkit

    tables = [torch.tensor(p, device=device, requires_grad=True) for p in walk(steps=2)]
    first = pidkit.broja(tables[0], batch=True, iterations=10)      # load the libraries
    first.redundancy.sum().backward()
    sync(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for x, warm in zip(tables, (None, first), strict=True):
            r = pidkit.broja(x, batch=True, iterations=5, warm_start=warm)
            r.redundancy.sum().backward()
    except RuntimeError as err:
        return str(err).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sync(device)
    return "none"


def training_rows(device) -> list[dict]:
    """The training-step rows (module docstring) on torch CPU and on ``device``."""
    import torch

    import pidkit

    tables = walk()
    exact = np.stack([pidkit.broja(p, batch=True, tol=1e-12).redundancy for p in tables[1:]])
    rows = []
    for label, options in TRAINING_MODES:
        for warm in (False, True):
            cpu = training_steps(tables, torch.device("cpu"), options, warm)
            gpu = training_steps(tables, device, options, warm)
            row = {"case": f"3 x 10^3, {label}, {'warm' if warm else 'cold'}",
                   "cpu": format_seconds(cpu["seconds"]), "gpu": format_seconds(gpu["seconds"]),
                   "cpu_seconds": cpu["seconds"], "gpu_seconds": gpu["seconds"],
                   "speedup": f"{cpu['seconds'] / gpu['seconds']:.2f}x",
                   "gap_bits": f"{gpu['gap_bits']:.1e}",
                   "red_diff": f"{np.abs(gpu['red'] - exact).max():.1e}"}
            rows.append(row)
            print(row, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no result files")
    parser.add_argument("--training", action="store_true",
                        help="only the training-step rows (default and fixed-iteration modes)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("broja_cuda.py needs a CUDA device")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.training:
        with blas_threads(THREADS) as blas:
            torch.set_num_threads(THREADS)
            syncs = cuda_sync_check(device)
            print(f"synchronisations of a fixed-iteration step on CUDA: {syncs}", flush=True)
            rows = training_rows(device)
        gpu = torch.cuda.get_device_name(device)
        write_results("broja_cuda_training", rows, blas=blas,
                      title="BROJA training steps on a GPU: default and fixed-iteration modes",
                      columns=["case", "cpu", "gpu", "speedup", "gap_bits", "red_diff"],
                      headers={"cpu": "torch CPU", "gpu": "torch CUDA", "speedup": "CPU / GPU",
                               "gap_bits": "largest gap GPU (bits)",
                               "red_diff": "|dRed| (bits)"},
                      notes=[f"GPU: {gpu}; float64; a batch of 3 pmfs 10 x 10 x 10, 12 steps "
                             "of a walk with relative step 1e-2; solve + backward per step, "
                             "median over steps 2-12, torch.cuda.synchronize() included.",
                             "fixed: pidkit.broja(..., iterations=N), tol 1e-9 bits for the "
                             "freeze and the reported gap; no host synchronisation in the call.",
                             f"CPU side: torch with {THREADS} threads on the GPU machine's CPU.",
                             "|dRed|: against the certified CPU solve at tol 1e-12 bits.",
                             "Synchronisations of a cold and a warm fixed-iteration step "
                             f"(solve + backward) under torch.cuda.set_sync_debug_mode('error'):"
                             f" {syncs}."],
                      extra={"gpu": gpu, "fixed_step_syncs": syncs})
        return
    ks = (4, 8, 16) if args.quick else (4, 8, 16, 32, 64)
    with blas_threads(THREADS) as blas:
        torch.set_num_threads(THREADS)
        rows = rows_single(ks, device)
        rows.append(row_batched(1000 if args.quick else 10_000, 4, device))
        rows.append(row_backward(10, device))
    if args.quick:
        return
    gpu = torch.cuda.get_device_name(device)
    write_results("broja_cuda", rows, blas=blas, title="Bivariate BROJA on a GPU (torch, CUDA)",
                  columns=["case", "cpu", "gpu", "speedup", "gap_bits", "red_diff"],
                  headers={"cpu": "numpy CPU", "gpu": "torch CUDA", "speedup": "CPU / GPU",
                           "gap_bits": "gap GPU (bits)", "red_diff": "|dRed| (bits)"},
                  notes=[f"GPU: {gpu}; float64 on both sides; default tolerance (1e-9 bits).",
                         f"CPU side: numpy with {THREADS} BLAS threads (threadpoolctl), "
                         "torch CPU for the backward row, on the GPU machine's own CPU.",
                         "Times are the best of 1-3 calls after one warm-up call; GPU "
                         "times include torch.cuda.synchronize()."],
                  extra={"gpu": gpu})


if __name__ == "__main__":
    main()
