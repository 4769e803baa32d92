"""Tests for modulation/quantize.py: closed-form MSE, exact bin centres, clipping, bit order."""
from __future__ import annotations

import pytest
import torch

from semlink.modulation.quantize import UniformDequantizer, UniformQuantizer


def _pair(num_bits, lo, hi, shape, **kw):
    return (UniformQuantizer(num_bits=num_bits, lo=lo, hi=hi, **kw),
            UniformDequantizer(num_bits=num_bits, lo=lo, hi=hi, shape=shape, **kw))


@pytest.mark.parametrize("num_bits", [1, 2, 4, 8, 12])
def test_mse_of_uniform_data_is_step_squared_over_12(num_bits):
    # e uniform on [-step/2, step/2]: Var(e^2)/E(e^2)^2 = 0.8, so 10^5 values give a relative
    # sigma of 0.28 %; rel=0.02 is ~7 sigma.
    lo, hi = -3.0, 5.0
    q, dq = _pair(num_bits, lo, hi, (1000,))
    g = torch.Generator().manual_seed(num_bits)
    z = lo + (hi - lo) * torch.rand(100, 1000, generator=g, dtype=torch.float64)
    z = z.float()
    z_hat = dq(q(z))
    step = (hi - lo) / 2**num_bits
    mse = (z_hat.double() - z.double()).square().mean().item()
    assert mse == pytest.approx(step**2 / 12, rel=0.02)
    # float32 centres near |z| = 5 are rounded by up to half an ulp (2.4e-7)
    assert (z_hat.double() - z.double()).abs().max().item() <= step / 2 + 1e-6


@pytest.mark.parametrize("num_bits", list(range(1, 17)))
def test_bin_centres_round_trip_exactly(num_bits):
    lo, hi = -1.0, 1.0  # step = 2**(1 - num_bits): centres are exact in float32
    levels = 2**num_bits
    idx = torch.arange(levels) if levels <= 4096 else torch.randint(0, levels, (4096,))
    centres = (lo + (idx.double() + 0.5) * (hi - lo) / levels).float().reshape(1, -1)
    q, dq = _pair(num_bits, lo, hi, (centres.shape[1],))
    bits = q(centres)
    assert bits.shape == (1, centres.shape[1] * num_bits) and bits.dtype == torch.float32
    assert torch.equal(dq(bits), centres)
    # MSB-first binary of the bin index, computed independently
    ref = [[(int(i) >> (num_bits - 1 - j)) & 1 for j in range(num_bits)] for i in idx]
    assert torch.equal(bits.reshape(-1, num_bits), torch.tensor(ref, dtype=torch.float32))


def test_clipping_to_first_and_last_bin():
    q, dq = _pair(2, 0.0, 1.0, (6,))  # step 0.25, centres 0.125 ... 0.875
    z = torch.tensor([[-5.0, -0.0, 0.0, 1.0, 1.2, 1e9]])
    out = dq(q(z))
    torch.testing.assert_close(out, torch.tensor([[0.125, 0.125, 0.125, 0.875, 0.875, 0.875]]))


def test_bit_layout_by_hand_and_shape():
    q, dq = _pair(3, 0.0, 8.0, (2, 2))
    z = torch.tensor([[[5.3, 0.2], [7.99, 3.0]]])  # bins 5, 0, 7, 3
    bits = q(z)
    expect = torch.tensor([[1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1]], dtype=torch.float32)
    assert torch.equal(bits, expect)
    torch.testing.assert_close(dq(bits), torch.tensor([[[5.5, 0.5], [7.5, 3.5]]]))


def test_double_precision():
    q, dq = _pair(16, -2.0, 2.0, (3,), precision="double")
    z = torch.tensor([[0.1, -1.7, 1.99]], dtype=torch.float64)
    bits = q(z)
    assert bits.dtype == torch.float64
    z_hat = dq(bits)
    assert z_hat.dtype == torch.float64 and (z_hat - z).abs().max() <= 4 / 2**17


@pytest.mark.parametrize("num_bits,err,match", [
    (0, ValueError, r"`num_bits` must be in \[1, 16\]; got 0"),
    (17, ValueError, r"`num_bits` must be in \[1, 16\]; got 17"),
    (True, TypeError, "`num_bits` must be int"),
    (8.0, TypeError, "`num_bits` must be int"),
])
def test_num_bits_out_of_range_raises(num_bits, err, match):
    with pytest.raises(err, match=match):
        UniformQuantizer(num_bits=num_bits, lo=0.0, hi=1.0)
    with pytest.raises(err, match=match):
        UniformDequantizer(num_bits=num_bits, lo=0.0, hi=1.0, shape=(2,))


@pytest.mark.parametrize("lo,hi,err,match", [
    (1.0, 1.0, ValueError, r"`hi` must be finite and > lo=1.0; got 1.0"),
    (1.0, 0.0, ValueError, r"`hi` must be finite and > lo=1.0; got 0.0"),
    (0.0, float("inf"), ValueError, "`hi` must be finite"),
    (float("nan"), 1.0, ValueError, "`lo` must be finite"),
    ("0", 1.0, TypeError, "`lo` must be int or float"),
])
def test_invalid_range_raises(lo, hi, err, match):
    with pytest.raises(err, match=match):
        UniformQuantizer(num_bits=4, lo=lo, hi=hi)


def test_call_and_shape_errors():
    q, dq = _pair(2, 0.0, 1.0, (3,))
    with pytest.raises(TypeError, match="`z` must be real"):
        q(torch.zeros(1, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="`z` must be"):
        q(torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"`bits` must be real \[batch, 6\]; got shape \(1, 5\)"):
        dq(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="`bits` must contain only 0 and 1"):
        dq(torch.full((1, 6), 0.5))
    with pytest.raises(TypeError, match="`shape` must be tuple"):
        UniformDequantizer(num_bits=2, lo=0.0, hi=1.0, shape=[3])
    with pytest.raises(ValueError, match=r"`shape\[0\]` must be in \[1, inf\]; got 0"):
        UniformDequantizer(num_bits=2, lo=0.0, hi=1.0, shape=(0,))
    with pytest.raises(ValueError, match="`shape` must have at least one dimension"):
        UniformDequantizer(num_bits=2, lo=0.0, hi=1.0, shape=())
