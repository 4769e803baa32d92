"""Chase combining: the inverse-variance mean of two estimates, against its variance measured
over draws."""
from __future__ import annotations

import pytest
import torch

from semlink.modulation.combining import chase_combine


def test_chase_combining_is_the_inverse_variance_mean():
    """Two unbiased estimates with noise 1 and 3: the combination is unbiased with noise
    3/4 (measured over draws), the better estimate weighted 3:1; a noiseless one wins."""
    gen = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 0.6 - 0.8j, dtype=torch.complex64)
    no1, no3 = torch.ones(x.shape), torch.full(x.shape, 3.0)
    e1 = torch.randn(x.shape, dtype=torch.complex64, generator=gen)
    e2 = torch.randn(x.shape, dtype=torch.complex64, generator=gen) * 3 ** 0.5
    combined, no = chase_combine(x + e1, no1, x + e2, no3)
    assert torch.allclose(no, torch.full(x.shape, 0.75))
    assert abs(complex((combined - x).mean())) < 0.01
    assert float((combined - x).abs().square().mean()) == pytest.approx(0.75, rel=0.01)
    exact, zero = chase_combine(x, torch.zeros(x.shape), x + e2, no3)
    assert torch.equal(exact, x) and torch.equal(zero, torch.zeros(x.shape))
