"""Tests for semlink.channels.phase_tracking: the pilot layout against a frame written out by hand, a
frequency offset removed exactly while the step between pilot blocks stays within +-pi (and a
cycle slip beyond), the Wiener residual against the Brownian bridge's mean variance
2 pi v (D + 1) / 6, the block estimate's noise against its maximum-likelihood closed form
1 / (2 sum 1/no), the interpolated estimate's cost in the data's error, and errors."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.channels.oscillator import OscillatorChannel
from semlink.channels.phase_tracking import (PhaseTrackingChannel, frequency_offset_estimate,
                                     interpolate_phase, phase_noise_estimate, pilot_layout,
                                     pilot_overhead, pilot_phase)
from semlink.channels.rayleigh import RayleighChannel


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def qpsk(rows: int, n: int, seed: int) -> torch.Tensor:
    """[rows, n] complex64 unit-power QPSK symbols."""
    bits = torch.randint(0, 2, (rows, n, 2), generator=gen(seed)).float()
    return torch.complex(1 - 2 * bits[..., 0], 1 - 2 * bits[..., 1]) / math.sqrt(2)


@pytest.mark.parametrize("n,spacing,length", [(5, 2, 1), (12, 4, 3), (13, 4, 2), (3, 10, 4),
                                              (1, 1, 1)])
def test_layout_matches_a_frame_written_out(n, spacing, length):
    """A pilot block, up to ``spacing`` data symbols, a pilot block, ... ending on a pilot
    block: the positions agree with a frame built symbol by symbol."""
    frame = []  # ("p", block) or ("d", index)
    block, index = 0, 0
    while index < n:
        frame += [("p", block)] * length
        block += 1
        for _ in range(min(spacing, n - index)):
            frame.append(("d", index))
            index += 1
    frame += [("p", block)] * length
    sent, data_index, pilot_index = pilot_layout(n, spacing, length)
    assert sent == len(frame)
    assert data_index.tolist() == [k for k, (kind, _) in enumerate(frame) if kind == "d"]
    pilots = [k for k, (kind, _) in enumerate(frame) if kind == "p"]
    assert pilot_index.flatten().tolist() == pilots
    assert pilot_index.shape == (block + 1, length)
    assert pilot_overhead(n, spacing, length) == pytest.approx(len(pilots) / len(frame))


@pytest.mark.parametrize("offset,spacing,length", [(0.04, 10, 1), (-0.02, 16, 4), (0.2, 1, 1)])
def test_a_frequency_offset_is_removed_while_steps_stay_within_pi(offset, spacing, length):
    """Noise-free AWGN behind a phase ramp of 2 pi f_o per symbol: between pilot blocks the
    phase steps by 2 pi f_o (spacing + length), less than pi here although the row turns
    many times over (0.04 x 400 = 16 turns); linear interpolation of a ramp is exact, and a
    symmetric block's estimate is its centre's phase."""
    x = qpsk(3, 400, 0)
    turned = OscillatorChannel(AWGNChannel(), normalized_frequency_offset=offset)
    untracked, _ = turned(x, float("inf"))
    assert float((untracked - x).abs().max()) > 1.0
    x_hat, no_eff = PhaseTrackingChannel(turned, spacing, length)(x, float("inf"))
    torch.testing.assert_close(x_hat, x, atol=2e-3, rtol=0)
    assert no_eff.shape == x.shape


def test_a_step_beyond_pi_between_blocks_slips():
    """At f_o = 0.06 and 10 data symbols per pilot the ramp steps 2 pi 0.66 rad from block to
    block, taken for -2 pi 0.34: the tracker follows a ramp of the wrong sign and the data
    come back turned (the limit the docstring states)."""
    x = qpsk(2, 200, 1)
    turned = OscillatorChannel(AWGNChannel(), normalized_frequency_offset=0.06)
    x_hat, _ = PhaseTrackingChannel(turned, 10)(x, float("inf"))
    assert float((x_hat - x).abs().mean()) > 0.5


@pytest.mark.parametrize("offset,spacing", [(0.06, 10), (0.4, 30), (-0.45, 60)])
def test_a_coarse_frequency_estimate_unlocks_large_offsets(offset, spacing):
    """Blocks of two pilots: the step within a block gives the offset up to half the symbol
    rate, so ramps that slip between blocks (2 pi f_o (spacing + 2) far beyond pi here) are
    taken out before the blocks track the rest; without the estimate they slip."""
    x = qpsk(2, 300, 14)
    turned = OscillatorChannel(AWGNChannel(), normalized_frequency_offset=offset)
    x_hat, _ = PhaseTrackingChannel(turned, spacing, 2, estimate_frequency_offset=True)(
        x, float("inf"))
    torch.testing.assert_close(x_hat, x, atol=2e-3, rtol=0)
    slipped, _ = PhaseTrackingChannel(turned, spacing, 2)(x, float("inf"))
    assert float((slipped - x).abs().mean()) > 0.5


def test_frequency_estimate_noise_is_one_over_pairs_times_snr():
    """Pairs of pilots at Es/N0 = 20 dB: each step's phase errs by 1/(2 SNR) + 1/(2 SNR), and
    the estimate over M = 10 independent pairs by 1 / (M SNR) = 1e-3 rad^2 (high SNR)."""
    rows, blocks, snr = 4000, 10, 100.0
    positions = torch.arange(blocks).unsqueeze(1) * 12 + torch.arange(2)  # [blocks, 2]
    omega, start = 0.2, torch.rand(rows, 1, 1, generator=gen(15)) * 6.28
    phase = start + omega * positions
    noise = torch.complex(torch.randn(rows, blocks, 2, generator=gen(16)),
                          torch.randn(rows, blocks, 2, generator=gen(17))) / math.sqrt(2 * snr)
    y = torch.polar(torch.ones_like(phase), phase) + noise
    estimate = frequency_offset_estimate(y, torch.ones(1), torch.full((rows, blocks, 2),
                                                                      1 / snr))
    error = (estimate - omega).double()
    assert float(error.mean()) == pytest.approx(0.0, abs=3e-3)
    assert float(error.var()) == pytest.approx(1 / (blocks * snr), rel=0.06)


@pytest.mark.parametrize("blocks,v", [(41, 0.004), (5, 0.02)])
def test_phase_noise_estimate_is_the_wiener_step_variance(blocks, v):
    """Block phases 8 symbols apart (the last gap 5) following a ramp of 0.05 rad a symbol, a
    Wiener walk of step variance 0.002 and estimation errors of variance v each: the moment
    estimate with the ramp fitted recovers 0.002 on average over many rows, also from only
    4 steps, where the fitted ramp takes a quarter of the residual and the errors neighbouring
    steps share weigh (uncorrected they would lift the estimate by a quarter)."""
    rows, s2 = 20000, 0.002
    centres = torch.cat([torch.arange(blocks - 1) * 8.0, torch.tensor([8.0 * blocks - 11])])
    gaps = centres.diff()
    walk = torch.cat([torch.zeros(rows, 1),
                      (torch.randn(rows, blocks - 1, generator=gen(18)) * (s2 * gaps).sqrt()
                       ).cumsum(dim=-1)], dim=-1)
    phi = 0.05 * centres + walk + torch.randn(rows, blocks, generator=gen(19)) * math.sqrt(v)
    estimate = phase_noise_estimate(phi, torch.full((rows, blocks), v), centres).double()
    assert float(estimate.mean()) == pytest.approx(s2, rel=0.02 if blocks > 5 else 0.08)


@pytest.mark.parametrize("snr_db,offset", [(float("inf"), None), (20.0, 0.01)])
def test_with_the_phase_noise_estimated_no_eff_is_calibrated(snr_db, offset):
    """A 1e-3 Wiener phase tracked on a pilot every 7 symbols: no_eff adds the Brownian
    bridge the estimate gives, and at each position between the pilots the errors' mean
    power equals the mean no_eff there (with or without noise and a frequency offset)."""
    x = qpsk(1000, 700, 20)
    turned = OscillatorChannel(AWGNChannel(generator=gen(21)), 1e-3,
                               normalized_frequency_offset=offset, generator=gen(22))
    x_hat, no_eff = PhaseTrackingChannel(turned, 7, estimate_phase_noise=True)(x, snr_db)
    error = (x_hat - x).abs().square().double()
    for t in range(7):
        assert float(error[:, t::7].mean()) == pytest.approx(float(no_eff[:, t::7].mean()),
                                                             rel=0.04)
    _, blind = PhaseTrackingChannel(turned, 7)(x, snr_db)
    assert float(blind.mean()) < 0.8 * float(no_eff.mean())


def test_wiener_residual_is_the_brownian_bridge():
    """Noise-free pilots one symbol long, D = 8 symbols apart: between two pilots the
    untracked Wiener phase (step variance 2 pi v) less the line through its ends is a Brownian
    bridge, of variance 2 pi v t (D - t) / D at t symbols from the last pilot; its mean over
    the D - 1 data symbols is 2 pi v (D + 1) / 6 = 0.00942 rad^2 at v = 1e-3."""
    v, spacing = 1e-3, 7
    x = qpsk(1000, 700, 2)
    turned = OscillatorChannel(AWGNChannel(), v, generator=gen(3))
    x_hat, _ = PhaseTrackingChannel(turned, spacing)(x, float("inf"))
    residual = torch.angle(x_hat * x.conj()).double()
    expected = 2 * math.pi * v * (spacing + 2) / 6
    assert float(residual.square().mean()) == pytest.approx(expected, rel=0.03)
    # the first data symbol after a pilot: t = 1, variance 2 pi v (D - 1) / D
    assert float(residual[:, ::spacing].square().mean()) == pytest.approx(
        2 * math.pi * v * spacing / (spacing + 1), rel=0.05)


def test_block_estimate_is_maximum_likelihood():
    """L pilots with known noise variances no_l: weighing each by 1/no_l, the block's phase
    error has variance 1 / (2 sum_l 1/no_l) at high SNR (the Cramer-Rao bound), less than the
    unweighted sum's sum_l no_l / (2 L^2)."""
    no = torch.tensor([0.001, 0.01, 0.1, 0.004])
    rows, blocks = 4000, 5
    theta = torch.rand(rows, blocks, 1, generator=gen(4)) * 0.5  # steps well within pi
    pilots = torch.full((1, 1, 4), complex(0.6, 0.8))
    noise = torch.complex(torch.randn(rows, blocks, 4, generator=gen(5)),
                          torch.randn(rows, blocks, 4, generator=gen(6))) * (no / 2).sqrt()
    y = pilots * torch.polar(torch.ones_like(theta), theta) + noise
    phi, variance = pilot_phase(y, pilots, no.expand(rows, blocks, 4))
    error = (phi - theta.squeeze(-1)).double()
    bound = float(1 / (2 * (1 / no).sum()))
    assert float(error.var()) == pytest.approx(bound, rel=0.05)
    torch.testing.assert_close(variance, torch.full_like(variance, bound))
    assert bound < float(no.sum()) / (2 * 16) / 3


def test_interpolation_is_linear_between_block_centres():
    """Against numpy's interp on block centres 1.5, 7.5, 13.5 (blocks of two pilots)."""
    import numpy as np

    _, data_index, pilot_index = pilot_layout(8, 4, 2)
    centres = pilot_index.double().mean(dim=1)
    phi = torch.tensor([[0.3, -1.0, 2.5]], dtype=torch.float64)
    got = interpolate_phase(phi, centres, data_index.double())
    want = np.interp(data_index.numpy(), centres.numpy(), phi[0].numpy())
    np.testing.assert_allclose(got[0].numpy(), want)


def test_estimation_noise_costs_the_data_its_interpolated_variance():
    """AWGN at 20 dB, a pilot every 4 data symbols, no phase impairment: each pilot's phase
    errs by N0/2 rad^2, and a data symbol t/5 of the way between two pilots by
    N0/2 ((1 - t/5)^2 + (t/5)^2), 0.6 N0/2 on average; the data's error power is
    N0 (1 + 0.3) instead of N0. The receiver knows it: no_eff is N0 (1 + (1 - a)^2 / 2 +
    a^2 / 2) at a = t/5, and the errors are calibrated to it at every t."""
    x = qpsk(2000, 400, 7)
    channel = PhaseTrackingChannel(AWGNChannel(generator=gen(8)), 4)
    x_hat, no_eff = channel(x, 20.0)
    error = (x_hat - x).abs().square().double()
    assert float(error.mean()) == pytest.approx(0.01 * 1.3, rel=0.03)
    a = torch.arange(1, 5, dtype=torch.float64) / 5
    want = 0.01 * (1 + ((1 - a) ** 2 + a ** 2) / 2)
    torch.testing.assert_close(no_eff[0, :4].double(), want, rtol=1e-5, atol=0)
    for t in range(4):  # E|x_hat - x|^2 = no_eff at each position between the pilots
        assert float(error[:, t::4].mean()) == pytest.approx(float(want[t]), rel=0.03)


def test_pilots_take_the_rows_mean_power():
    """The pilots have the row's mean data power, so the channel's N0 is the data's: data of
    power 4 at 10 dB see N0 = 0.4, and the tracker's pilots add no power; its estimate of a
    block of two pilots errs by N0 / (2 x 2 x 4) rad^2, at most 0.025 x 4 = 0.1 of no_eff
    next to a block."""
    x = 2 * qpsk(3, 50, 9)
    captured = {}

    class Spy(AWGNChannel):
        def call(self, frame, snr_db):
            captured["frame"] = frame
            return super().call(frame, snr_db)

    _, no_eff = PhaseTrackingChannel(Spy(generator=gen(10)), 5, 2)(x, 10.0)
    # the first data symbol sits 1.5 symbols after its block's centre, 6.5 before the next
    a = 1.5 / 7
    torch.testing.assert_close(no_eff[:, 0], torch.full((3,), 0.4 + 0.1 * ((1 - a) ** 2 +
                                                                            a ** 2)))
    frame = captured["frame"]
    assert frame.shape == (3, 50 + 2 * 11)
    torch.testing.assert_close(frame.abs().square().mean(dim=1), torch.full((3,), 4.0))


def test_tracking_works_behind_an_equaliser():
    """Fast Rayleigh fading equalised with perfect CSI, then a frequency offset: the tracker
    sees the equalised pilots and removes the ramp (noise-free)."""
    x = qpsk(4, 300, 11)
    turned = OscillatorChannel(RayleighChannel(generator=gen(12)),
                               normalized_frequency_offset=-0.01)
    x_hat, _ = PhaseTrackingChannel(turned, 12)(x, float("inf"))
    torch.testing.assert_close(x_hat, x, atol=2e-3, rtol=0)


def test_a_silent_row_stays_finite():
    x = torch.zeros(2, 20, dtype=torch.complex64)
    x_hat, no_eff = PhaseTrackingChannel(AWGNChannel(generator=gen(13)), 4)(x, 10.0)
    assert bool(torch.isfinite(x_hat).all()) and bool(torch.isfinite(no_eff).all())


@pytest.mark.parametrize("kwargs,match", [({"pilot_spacing": 0}, "pilot_spacing"),
                                          ({"pilot_spacing": 4,
                                            "estimate_frequency_offset": True},
                                           "needs pilot_length >= 2"),
                                          ({"pilot_spacing": 4, "pilot_length": 2,
                                            "estimate_frequency_offset": 1},
                                           "estimate_frequency_offset"),
                                          ({"pilot_spacing": 4, "estimate_phase_noise": "y"},
                                           "estimate_phase_noise"),
                                          ({"pilot_spacing": 4, "pilot_length": 0},
                                           "pilot_length"),
                                          ({"pilot_spacing": 2.5}, "pilot_spacing")])
def test_bad_settings_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PhaseTrackingChannel(AWGNChannel(), **kwargs)
