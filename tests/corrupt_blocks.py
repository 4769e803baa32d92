"""A stand-in channel that destroys chosen code blocks, for tests of what a link does with a
block whose CRC fails (classical concealment, the digital semantic link's fallback)."""
from __future__ import annotations

import torch

__all__ = ["CorruptBlocks"]


class CorruptBlocks:
    """A noiseless 'channel' that negates the symbols of chosen code blocks and reports a small
    noise variance, so the demapper is confidently wrong there and the CRC must fail.

    :param bad: Batch row -> indices of the code blocks to destroy in that row.
    :param symbols_per_block: Channel symbols of one code block (n / log2(M)).
    """

    def __init__(self, bad: dict[int, list[int]], symbols_per_block: int) -> None:
        self.bad = bad
        self.symbols_per_block = symbols_per_block

    def __call__(self, x: torch.Tensor, snr_db: float) -> tuple[torch.Tensor, torch.Tensor]:
        x_hat = x.clone()
        for row, blocks in self.bad.items():
            for b in blocks:
                span = slice(b * self.symbols_per_block, (b + 1) * self.symbols_per_block)
                x_hat[row, span] = -x_hat[row, span]
        return x_hat, torch.full(x.shape, 0.01)
