"""Seeds derived from the scenario seed and a task's coordinates, and generators made from them.

Every random draw of a run comes from a generator seeded by :func:`derive_seed`, so a task's
result depends only on its coordinates: the scenario seed, link, SNR index and transmission, the
batch for the channel (one generator draws a whole batch's noise and fading) and the image for
the sampler. Never on the order tasks run in, on which worker or shard runs them, or on a resume;
another ``batch_size`` gives other channel draws (docs/scenarios.md).
"""
from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "make_generator"]


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from ``seed`` and any coordinates (str/int), stable across runs and machines.

    >>> derive_seed(0, "semantic", 3) == derive_seed(0, "semantic", 3) != derive_seed(1, "semantic", 3)
    True
    """
    text = "/".join([str(int(seed))] + [str(p) for p in parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)
