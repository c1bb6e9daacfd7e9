"""Shared by the audit tests: run each audit test module with one BLAS and one torch thread.

On a loaded machine multi-threaded OpenBLAS can spin: a 450 x 256 SVD took seconds with 2
threads and 0.13 s with 1. Import ``single_thread`` into a test module to apply it there.
"""

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
