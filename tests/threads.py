"""Run a block of a test with a given number of torch CPU threads, restored afterwards."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Tiny models and LDPC decoding run fastest on one thread of a shared 2-core machine;
    the real-size models are worth both."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
