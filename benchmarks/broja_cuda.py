"""Bivariate BROJA on a GPU: the torch backend on CUDA against the numpy solver on the CPU of
the same machine, in one run.

Rows: single pmfs (Dirichlet(1), |Y| = |T| = |S| = k) for k in {4, 8, 16, 32, 64}; the batched
throughput case of ``benchmarks/broja.py`` (10,000 pmfs at k = 4); and a differentiable solve of
a 10 x 10 x 10 pmf with ``backward()``. Each row gives both times, their ratio, the certified gap
on the GPU and the largest difference of the redundancy between the two (bits).

Run on a GPU machine from the repository root::

    python benchmarks/broja_cuda.py            # writes results/broja_cuda.{md,json}
    python benchmarks/broja_cuda.py --quick    # k <= 16 and 1,000 pmfs, no result files
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no result files")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("broja_cuda.py needs a CUDA device")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
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
