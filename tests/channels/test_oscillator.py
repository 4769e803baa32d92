"""Tests for semlink.channels.oscillator and the phase noise of the time-domain OFDM channel: the
Wiener increments' variance 2 pi df T against the draws, a phase that only turns the symbols,
its spread growing linearly along the row, OFDM's common phase and interference growing with
the linewidth, and errors."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.oscillator import OscillatorChannel, wiener_phase


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_wiener_increments_have_variance_two_pi_linewidth():
    """theta starts at 0, its steps are N(0, 2 pi v): for v = 0.01 the steps' variance is
    0.0628, and theta_k has variance k times that (checked at k = 100 over 4000 rows)."""
    theta = wiener_phase((4000,), 101, 0.01, generator=gen(0), dtype=torch.float64)
    assert bool((theta[:, 0] == 0).all())
    steps = theta.diff(dim=1)
    assert float(steps.var()) == pytest.approx(2 * math.pi * 0.01, rel=0.02)
    assert float(steps.mean()) == pytest.approx(0.0, abs=0.002)
    assert float(theta[:, 100].var()) == pytest.approx(100 * 2 * math.pi * 0.01, rel=0.06)


def test_phase_noise_turns_the_symbols_and_leaves_no_eff():
    """Noise-free AWGN behind phase noise: every symbol keeps its magnitude and turns by a
    phase whose steps from symbol to symbol are N(0, 2 pi v); no_eff is the channel's, 0."""
    x = torch.polar(torch.ones(200, 500), torch.rand(200, 500, generator=gen(1)) * 6.28)
    ch = OscillatorChannel(AWGNChannel(generator=gen(2)), 0.005, generator=gen(3))
    x_hat, no_eff = ch(x, float("inf"))
    torch.testing.assert_close(x_hat.abs(), x.abs(), rtol=1e-5, atol=1e-5)
    turn = torch.angle(x_hat * x.conj())
    assert float(turn[:, 0].abs().max()) < 1e-5
    steps = torch.remainder(turn.diff(dim=1) + math.pi, 2 * math.pi) - math.pi
    assert float(steps.var()) == pytest.approx(2 * math.pi * 0.005, rel=0.03)
    assert float(no_eff.abs().max()) == 0.0


@pytest.mark.parametrize("estimation", ["perfect", "ls"])
def test_ofdm_phase_noise_grows_with_the_linewidth(estimation):
    """Time-domain OFDM without multipath, no noise: without phase noise the symbols come back
    exactly. With it the error grows about in proportion to the linewidth (over a row's three
    0.5 ms slots the phase's variance reaches 2 pi df 1.5 ms: 0.09 rad^2 at 10 Hz, 9 at
    1 kHz); LS estimation, which sees the phase at each slot's pilot symbols and interpolates
    between them, takes most of it away (over 90 % here)."""
    x = torch.polar(torch.ones(2, 2000), torch.rand(2, 2000, generator=gen(4)) * 6.28)
    error = {}
    for linewidth in (None, 10.0, 100.0, 1e3):
        ch = OFDMSISOChannel(model="AWGN", domain="time", channel_estimation=estimation,
                             phase_noise_linewidth_hz=linewidth, generator=gen(5))
        x_hat, _ = ch(x, float("inf"))
        error[linewidth] = float((x_hat - x).abs().square().mean())
    assert error[None] < 1e-10
    assert 3 < error[100.0] / error[10.0] < 30 and error[1e3] > 2 * error[100.0]
    if estimation == "perfect":
        assert 0.02 < error[10.0] < 0.2
    else:
        assert 0.001 < error[10.0] < 0.01


def test_phase_noise_arguments_are_checked():
    with pytest.raises(ValueError, match=r"`normalized_linewidth` must be in \(0, 0.1\]"):
        OscillatorChannel(AWGNChannel(), 0.2)
    with pytest.raises(ValueError, match=r"`phase_noise_linewidth_hz` needs domain=.time."):
        OFDMSISOChannel(phase_noise_linewidth_hz=100.0)
    with pytest.raises(ValueError, match=r"`phase_noise_linewidth_hz` must be in \(0, 216000\]"):
        OFDMSISOChannel(domain="time", phase_noise_linewidth_hz=1e6)


def test_ofdm_phase_noise_runs_on_through_a_rows_slots():
    """One Wiener path per row from its first sample: over two slots the phase's variance grows
    linearly, so for small angles the second slot's mean squared error is three times the
    first's (time averages T / 2 and 3 T / 2), not equal as it would be with a restart."""
    ch = OFDMSISOChannel(model="AWGN", domain="time", channel_estimation="perfect",
                         phase_noise_linewidth_hz=5.0, generator=gen(6))
    per_slot = ch.num_data_symbols
    x = torch.polar(torch.ones(256, 2 * per_slot),
                    torch.rand(256, 2 * per_slot, generator=gen(7)) * 6.28)
    x_hat, _ = ch(x, float("inf"))
    error = (x_hat - x).abs().square()
    ratio = float(error[:, per_slot:].mean() / error[:, :per_slot].mean())
    assert 2.4 < ratio < 3.6


def test_a_frequency_offset_turns_the_symbols_along_a_ramp():
    """Single carrier: an offset of 0.01 symbol rates turns symbol k by 2 pi 0.01 k, exactly
    (and nothing else: magnitudes kept, no_eff the channel's)."""
    x = torch.polar(torch.ones(3, 400), torch.rand(3, 400, generator=gen(8)) * 6.28)
    ch = OscillatorChannel(AWGNChannel(generator=gen(9)), normalized_frequency_offset=0.01)
    x_hat, no_eff = ch(x, float("inf"))
    want = x * torch.polar(torch.ones(400), 2 * math.pi * 0.01 * torch.arange(400.0))
    torch.testing.assert_close(x_hat, want, rtol=1e-4, atol=1e-4)
    assert float(no_eff.abs().max()) == 0.0


@pytest.mark.parametrize("offset", [0.05, 0.2])
def test_an_ofdm_frequency_offset_keeps_the_dirichlet_share_of_each_subcarrier(offset):
    """OFDM in the time domain, no multipath, no noise, no pilots, an offset of e subcarrier
    spacings: within each OFDM symbol every subcarrier keeps the gain sin(pi e) / (N sin(pi e /
    N)) (times a common phase) and the rest of its power, 1 - that squared, lands on the others
    (the rotation keeps each symbol's energy): 0.9920 and 0.8752 of the power for N = 72."""
    n_fft = 72
    ch = OFDMSISOChannel(model="AWGN", domain="time", pilot_pattern="empty",
                         channel_estimation="perfect", frequency_offset_hz=offset * 30e3)
    x = torch.polar(torch.ones(16, 2 * ch.num_data_symbols),
                    torch.rand(16, 2 * ch.num_data_symbols, generator=gen(10)) * 6.28)
    x_hat, _ = ch(x, float("inf"))
    y, s = x_hat.reshape(-1, n_fft), x.reshape(-1, n_fft)  # one OFDM symbol per row
    gain = (y * s.conj()).sum(dim=1) / s.abs().square().sum(dim=1)
    kept = math.sin(math.pi * offset) / (n_fft * math.sin(math.pi * offset / n_fft))
    assert float(gain.abs().mean()) == pytest.approx(kept, rel=2e-3)
    spread = (y - gain[:, None] * s).abs().square().mean()
    assert float(spread) == pytest.approx(1 - kept ** 2, rel=0.05)
    with pytest.raises(ValueError, match=r"`frequency_offset_hz` needs domain='time'"):
        OFDMSISOChannel(frequency_offset_hz=100.0)
    with pytest.raises(ValueError, match=r"neither"):
        OscillatorChannel(AWGNChannel())
