"""Tests for semlink.channels.ofdm_time and OFDMSISOChannel(domain="time"): the grid comes back as the
channel's frequency response times what was sent when the cyclic prefix covers the channel,
with interference when it does not or when the terminal moves fast, BER against the Rayleigh
closed form, calibrated effective noise, and determinism from the generator alone."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.ofdm import OFDMSISOChannel


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def qpsk(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    b = torch.randint(0, 2, (*shape, 2), generator=gen(seed)).float()
    return b, torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2)


def _sir_db(cp: int, delay_spread_s: float, speed_mps: float) -> float:
    """Signal over interference of the received grid of a noise-free time-domain TDL-C link:
    |y - h x|^2 against |h x|^2, h the frequency response at each symbol's start."""
    ch = OFDMSISOChannel(model="TDL-C", delay_spread_s=delay_spread_s, speed_mps=speed_mps,
                         cyclic_prefix_length=cp, domain="time", generator=gen(1))
    x = qpsk((64, 1, 1, 14, 72), 0)[1]
    y, h = ch._channel(x, torch.zeros(64))
    hx = h[:, :, :, 0, 0] * x
    return 10 * math.log10(float(hx.abs().square().mean() / (y - hx).abs().square().mean()))


def test_a_prefix_longer_than_the_channel_leaves_one_gain_per_resource_element():
    """100 ns TDL-C at 2.16 MHz: the taps span lags -6 .. 8; with a 20-sample prefix (the
    window 6 samples early) every symbol sees only itself: y = h x to 50 dB, what the
    frequency-domain model assumes; with 6 samples the late sinc tails leak into the next
    symbol, without a prefix (the window at the symbol's start) the early ones too: 24 and
    23 dB."""
    sir = {cp: _sir_db(cp, 100e-9, 3.0) for cp in (0, 6, 20)}
    assert sir[20] > 45.0
    assert 18.0 < sir[6] < 30.0 and 18.0 < sir[0] < 30.0


def test_a_longer_channel_needs_a_longer_prefix():
    """1 us of delay spread (TDL-C: 8.7 us, 19 samples, of delays) overruns a 20-sample prefix
    with the window 6 samples early: interference at 32 dB, far below the 50 dB of the 100 ns
    channel; without a prefix at 13 dB, 10 dB worse than the 100 ns channel's."""
    assert 25.0 < _sir_db(20, 1e-6, 3.0) < 40.0
    assert _sir_db(0, 1e-6, 3.0) < 16.0


def test_fast_motion_spreads_the_subcarriers_into_each_other():
    """500 m/s at 3.5 GHz is a Doppler of 5.8 kHz, a fifth of the 30 kHz spacing: the channel
    turns within a symbol and the subcarriers interfere (ICI) though the prefix covers the
    delays, which the frequency-domain model, one gain per element, cannot show."""
    assert _sir_db(20, 100e-9, 500.0) < 10.0  # 6 dB measured
    freq = OFDMSISOChannel(model="TDL-C", delay_spread_s=100e-9, speed_mps=500.0,
                           cyclic_prefix_length=20, channel_estimation="perfect",
                           generator=gen(1))
    x = qpsk((4, 864), 2)[1]
    torch.testing.assert_close(freq(x, float("inf"))[0], x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ebno_db", [4.0, 10.0])
def test_time_domain_ber_with_a_covering_prefix_matches_rayleigh(ebno_db):
    """QPSK with perfect CSI over TDL-A (100 ns, 30 m/s, 20-sample prefix): every element's
    gain is CN(0, 1), so the BER is the flat Rayleigh closed form 0.5 (1 - sqrt(g / (1 + g)))
    with g = Eb/N0 (256 slots; the fades are correlated across a slot, hence 15 %)."""
    b, x = qpsk((8, 32 * 864), 3)
    ch = OFDMSISOChannel(model="TDL-A", delay_spread_s=100e-9, speed_mps=30.0,
                         cyclic_prefix_length=20, channel_estimation="perfect", domain="time",
                         generator=gen(4))
    x_hat, no_eff = ch(x, ebno_db + 10 * math.log10(2))
    b_hat = torch.stack([x_hat.real < 0, x_hat.imag < 0], dim=-1).float()
    g = 10 ** (ebno_db / 10)
    assert float((b_hat != b).float().mean()) == pytest.approx(
        0.5 * (1 - math.sqrt(g / (1 + g))), rel=0.15)
    # the equaliser's noise is what the symbols carry: E[|x_hat - x|^2 / no_eff] = 1
    assert float(((x_hat - x).abs().square() / no_eff).mean()) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("model", ["TDL-B", "CDL-A"])
def test_time_domain_draws_come_from_the_generator(model):
    """The taps and the noise come from the generator: the same seed gives the same output,
    another seed another one; LS estimation works on the received grid as in the frequency
    domain."""
    x = qpsk((2, 900), 5)[1]

    def run(seed: int) -> torch.Tensor:
        return OFDMSISOChannel(model=model, speed_mps=10.0, domain="time",
                               channel_estimation="ls", generator=gen(seed))(x, 15.0)[0]

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    assert float((run(1) - x).abs().square().mean()) < 0.2  # 15 dB, LS: mostly right


def test_domain_is_checked_and_reported():
    assert OFDMSISOChannel(domain="time").domain == "time"
    assert OFDMSISOChannel().domain == "frequency"
    with pytest.raises(ValueError, match=r"`domain` must be one of 'frequency', 'time'"):
        OFDMSISOChannel(domain="delay")
