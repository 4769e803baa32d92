"""Combining repeated transmissions of the same symbols at the receiver (Chase combining)."""
from __future__ import annotations

import torch

__all__ = ["chase_combine"]


def chase_combine(x_hat1: torch.Tensor, no_eff1: torch.Tensor, x_hat2: torch.Tensor,
                  no_eff2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-ratio combining of two unbiased estimates of the same symbols.

    ``x_hat_i = x + e_i`` with independent ``e_i ~ CN(0, no_eff_i)``: the inverse-variance
    weighted mean ``(x_hat1 / no1 + x_hat2 / no2) / (1 / no1 + 1 / no2)`` is again unbiased,
    with noise ``no1 no2 / (no1 + no2)`` (Chase combining of a retransmission). A noiseless
    estimate (``no_eff = 0``) is kept as it is.

    :input x_hat1: [..., n] complex.
    :input no_eff1: [..., n] float >= 0.
    :input x_hat2: [..., n] complex.
    :input no_eff2: [..., n] float >= 0.
    :output x_hat: [..., n] complex; the combined estimate.
    :output no_eff: [..., n] float; its noise variance.

    >>> x, no = chase_combine(torch.tensor([1 + 1j]), torch.tensor([1.0]),
    ...                       torch.tensor([3 + 1j]), torch.tensor([3.0]))
    >>> x, no
    (tensor([1.5000+1.j]), tensor([0.7500]))
    """
    total = no_eff1 + no_eff2
    safe = torch.where(total > 0, total, torch.ones_like(total))
    weight1 = torch.where(total > 0, no_eff2 / safe, torch.ones_like(total))
    x_hat = weight1 * x_hat1 + (1 - weight1) * x_hat2
    return x_hat, no_eff1 * no_eff2 / safe
