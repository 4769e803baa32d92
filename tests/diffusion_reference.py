"""The Würstchen / Stable Cascade noise schedule written from its formula, independently of
:mod:`semlink.models.sampler`, for tests of the sampler and of the training loss."""
from __future__ import annotations

import math

__all__ = ["cosine_alpha_cumprod"]


def cosine_alpha_cumprod(t: float, s: float = 0.008) -> float:
    """alpha-bar(t) = cos^2((t + s) / (1 + s) pi / 2) / cos^2(s / (1 + s) pi / 2), clamped to
    [1e-4, 0.9999], in double precision; ``t`` in [0, 1]."""
    acp = math.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    return min(max(acp, 1e-4), 0.9999)
