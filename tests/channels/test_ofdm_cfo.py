"""Tests for the cyclic-prefix frequency-offset estimate of semlink.channels.ofdm_time: unbiased with
the variance 1 / (4 pi^2 M SNR) of M prefix pairs on synthetic samples, an offset up to half a
subcarrier spacing taken out exactly without noise or multipath, most of it over TDL-C with LS
estimation and PT-RS, and errors."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.ofdm_time import cyclic_prefix_frequency_offset


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unit_symbols(rows: int, n: int, seed: int) -> torch.Tensor:
    return torch.polar(torch.ones(rows, n), torch.rand(rows, n, generator=gen(seed)) * 6.28)


def test_the_prefix_estimate_is_unbiased_with_its_closed_form_variance():
    """Rows of 2 slots x 4 symbols of N = 32 unit-power Gaussian samples with an 8-sample
    prefix, the window 3 samples early, an offset of 0.2 subcarrier spacings and noise at
    SNR 100: M = 2 x 3 x 8 = 48 prefix pairs (the last symbol of a slot is left out), each
    step's phase erring by 1/SNR + 1/(2 SNR^2), so the estimate by that over 4 pi^2 M."""
    rows, slots, symbols, n_fft, cp, advance, snr, offset = 3000, 2, 4, 32, 8, 3, 100.0, 0.2
    g = gen(1)
    body = torch.complex(torch.randn(rows * slots, symbols, n_fft, generator=g),
                         torch.randn(rows * slots, symbols, n_fft, generator=g)) / math.sqrt(2)
    sent = torch.cat([body[..., -cp:], body], dim=-1).reshape(rows * slots, -1)
    # the window starts `advance` samples early: noise there, the last symbol's tail cut off
    sent = torch.cat([torch.zeros(rows * slots, advance, dtype=sent.dtype), sent], dim=-1)
    window = sent[:, :symbols * (n_fft + cp)]
    k = torch.arange(slots * window.shape[-1], dtype=torch.float32)
    turn = torch.polar(torch.ones_like(k), 2 * math.pi * offset * k / n_fft)
    window = (window.reshape(rows, -1) * turn).reshape(rows * slots, -1)
    noise = torch.complex(torch.randn(window.shape, generator=g),
                          torch.randn(window.shape, generator=g)) / math.sqrt(2 * snr)
    estimate = cyclic_prefix_frequency_offset(
        (window + noise).reshape(rows * slots, 1, 1, -1), fft_size=n_fft, cp=cp,
        advance=advance, slots_per_row=slots)
    error = (estimate - offset).double()
    pairs = slots * (symbols - 1) * cp
    assert float(error.mean()) == pytest.approx(0.0, abs=3e-4)
    want = (1 / snr + 1 / (2 * snr ** 2)) / (4 * math.pi ** 2 * pairs)
    assert float(error.var()) == pytest.approx(want, rel=0.08)


@pytest.mark.parametrize("offset", [0.05, 0.3, -0.45])
def test_an_offset_within_half_a_spacing_is_taken_out(offset):
    """No noise, no multipath, perfect CSI: untracked the offset leaves nothing of the
    symbols; corrected from the prefixes before the FFT they come back exactly."""
    kw = dict(model="AWGN", domain="time", frequency_offset_hz=offset * 30e3)
    x = unit_symbols(4, 1728, 2)
    corrected, _ = OFDMSISOChannel(estimate_frequency_offset=True, **kw)(x, float("inf"))
    torch.testing.assert_close(corrected, x, atol=1e-4, rtol=0)
    untracked, _ = OFDMSISOChannel(**kw)(x, float("inf"))
    assert float((untracked - x).abs().square().mean()) > 1.0


def test_the_prefix_estimate_carries_a_multipath_link():
    """TDL-C (100 ns) at 30 dB, 0.3 subcarrier spacings off, LS estimation and PT-RS: the
    interference of the offset swamps the data (mean error above 1); with the offset
    estimated on the prefixes (6 samples a symbol, some of them hit by the previous symbol's
    echo) the error falls more than tenfold, the PT-RS taking the rest of the phase."""
    kw = dict(model="TDL-C", delay_spread_s=100e-9, domain="time", channel_estimation="ls",
              interpolation="nn", ptrs_subcarrier_stride=12, frequency_offset_hz=9e3)
    x = unit_symbols(16, 1584, 3)
    errors = [float((OFDMSISOChannel(estimate_frequency_offset=flag, generator=gen(4), **kw)(
        x, 30.0)[0] - x).abs().square().mean()) for flag in (False, True)]
    assert errors[0] > 1.0 and errors[1] < errors[0] / 10


def test_the_prefix_estimate_is_checked():
    with pytest.raises(ValueError, match=r"`estimate_frequency_offset` needs domain='time'"):
        OFDMSISOChannel(estimate_frequency_offset=True)
    with pytest.raises(ValueError, match="needs cyclic_prefix_length >= 1"):
        OFDMSISOChannel(domain="time", cyclic_prefix_length=0, estimate_frequency_offset=True)
    with pytest.raises(TypeError, match="estimate_frequency_offset"):
        OFDMSISOChannel(domain="time", estimate_frequency_offset=1)
