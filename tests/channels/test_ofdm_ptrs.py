"""Tests for semlink.channels.ofdm_ptrs, the phase-tracking reference signals (PT-RS) of the OFDM
channel, through semlink.channels.ofdm: where they sit and what they leave to the data, the
common phase error of a frequency offset removed down to the closed form
(1 - D)^2 + (1 - D^2)(1 + 1 / (2 P)) with D the Dirichlet gain, their estimation noise
N0 / (2 P) against the closed form, phase noise under LS estimation, guard carriers, the
interference estimate's calibration of no_eff, and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.ofdm_ptrs import pilot_mask, pilot_pattern


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unit_symbols(rows: int, n: int, seed: int) -> torch.Tensor:
    return torch.polar(torch.ones(rows, n), torch.rand(rows, n, generator=gen(seed)) * 6.28)


def test_ptrs_sit_on_every_kth_subcarrier_of_the_symbols_without_pilots():
    """72 subcarriers, pilot symbols 2 and 11, K = 12: PT-RS on subcarriers 6, 18, ..., 66 of
    the other 12 symbols, 72 of them, leaving 864 - 72 = 792 data resource elements; the
    pilot symbols carry the same pilots as without PT-RS. Without pilot symbols (perfect CSI)
    every symbol has them: 14 x 66 = 924."""
    plain = OFDMSISOChannel()
    ch = OFDMSISOChannel(ptrs_subcarrier_stride=12)
    assert ch.ptrs_subcarrier_stride == 12 and plain.ptrs_subcarrier_stride is None
    mask = ch.resource_grid.pilot_pattern.mask[0, 0].cpu().numpy().astype(bool)
    want = np.zeros((14, 72), bool)
    want[:, 6::12] = True
    want[[2, 11], :] = True
    np.testing.assert_array_equal(mask, want)
    assert ch.num_data_symbols == 792 and plain.num_data_symbols == 864
    pilots = ch.resource_grid.pilot_pattern.pilots[0, 0]
    # The mask's pilots in row-major order: symbol 2's come after the PT-RS of symbols 0, 1.
    order = np.flatnonzero(want.flatten())
    symbol_of = order // 72
    ours = pilots[torch.as_tensor(np.isin(symbol_of, [2, 11]))]
    torch.testing.assert_close(ours, plain.resource_grid.pilot_pattern.pilots[0, 0])
    empty = OFDMSISOChannel(pilot_pattern="empty", ptrs_subcarrier_stride=12)
    assert empty.num_data_symbols == 14 * 66


def test_the_modules_pilot_functions_make_the_channels_grid():
    """pilot_mask and pilot_pattern of semlink.channels.ofdm_ptrs give the mask and pilots the
    channel maps (fixed values: the same on every call)."""
    ch = OFDMSISOChannel(ptrs_subcarrier_stride=12)
    rg = ch.resource_grid
    np.testing.assert_array_equal(pilot_mask(rg, [2, 11], 12),
                                  rg.pilot_pattern.mask[0, 0].cpu().numpy().astype(bool))
    again = pilot_pattern(rg, [2, 11], 12, precision=None, device=None)
    torch.testing.assert_close(again.pilots, rg.pilot_pattern.pilots, rtol=0, atol=0)


@pytest.mark.parametrize("offset", [0.05, 0.1])
def test_ptrs_take_out_a_frequency_offsets_common_phase(offset):
    """No noise, no multipath, every subcarrier loaded, an offset of e subcarrier spacings:
    each OFDM symbol keeps D = sin(pi e) / (N sin(pi e / N)) of each subcarrier times a common
    phase, and 1 - D^2 of interference. Untracked the phase runs away; with a PT-RS every 12
    subcarriers (P = 6 per symbol) the data come back as D x + interference, the phase
    estimate erring by (1 - D^2) / (2 P) rad^2: a mean error (1 - D)^2 + (1 - D^2)(1 + 1/12)."""
    n_fft, stride = 72, 12
    kw = dict(model="AWGN", domain="time", pilot_pattern="empty", channel_estimation="perfect",
              frequency_offset_hz=offset * 30e3)
    tracked = OFDMSISOChannel(ptrs_subcarrier_stride=stride, **kw)
    x = unit_symbols(16, 2 * tracked.num_data_symbols, 1)
    x_hat, _ = tracked(x, float("inf"))
    d = math.sin(math.pi * offset) / (n_fft * math.sin(math.pi * offset / n_fft))
    interference = 1 - d ** 2
    want = (1 - d) ** 2 + interference * (1 + 1 / (2 * (n_fft // stride)))
    error = float((x_hat - x).abs().square().double().mean())
    assert error == pytest.approx(want, rel=0.03)
    untracked, _ = OFDMSISOChannel(**kw)(x, float("inf"))
    assert float((untracked - x).abs().square().mean()) > 10 * error


def test_ptrs_estimation_noise_is_n0_over_2p():
    """AWGN at 20 dB, nothing to track: the PT-RS still estimate a phase, erring by N0 / (2 P)
    with P = 6 per symbol, so the data's error power is N0 (1 + 1/12) instead of N0, and
    no_eff says so; P = 18 (every 4th subcarrier) brings it to N0 (1 + 1/36)."""
    kw = dict(model="AWGN", pilot_pattern="empty", channel_estimation="perfect")
    for stride, pilots in ((12, 6), (4, 18)):
        ch = OFDMSISOChannel(ptrs_subcarrier_stride=stride, generator=gen(2), **kw)
        x = unit_symbols(32, 2 * ch.num_data_symbols, 3)
        x_hat, no_eff = ch(x, 20.0)
        error = float((x_hat - x).abs().square().double().mean())
        assert error == pytest.approx(0.01 * (1 + 1 / (2 * pilots)), rel=0.015)
        # the receiver counts its estimate's error in no_eff
        torch.testing.assert_close(no_eff, torch.full_like(no_eff, 0.01 * (1 + 1 / (2 * pilots))),
                                   rtol=1e-4, atol=0)
    plain = OFDMSISOChannel(generator=gen(2), **kw)
    x = unit_symbols(32, 2 * plain.num_data_symbols, 3)
    x_hat, _ = plain(x, 20.0)
    assert float((x_hat - x).abs().square().double().mean()) == pytest.approx(0.01, rel=0.015)


def test_ptrs_follow_phase_noise_between_the_pilot_symbols():
    """LS estimation on pilot symbols 2 and 11 (nearest-neighbour in time) sees the phase
    noise only there; a PT-RS every 12 subcarriers measures it on every other symbol and takes
    most of the error away (a 1 kHz linewidth at 2.16 Msample/s, no noise)."""
    kw = dict(model="AWGN", domain="time", channel_estimation="ls", interpolation="nn",
              phase_noise_linewidth_hz=1e3)
    plain = OFDMSISOChannel(generator=gen(4), **kw)
    tracked = OFDMSISOChannel(ptrs_subcarrier_stride=12, generator=gen(4), **kw)
    x = unit_symbols(8, 4000, 5)
    errors = [float((ch(x, float("inf"))[0] - x).abs().square().mean())
              for ch in (plain, tracked)]
    assert errors[1] < errors[0] / 3


def test_ptrs_stride_is_checked():
    with pytest.raises(ValueError, match=r"`ptrs_subcarrier_stride` must be in \[1, 60\]"):
        OFDMSISOChannel(num_guard_carriers=(6, 6), ptrs_subcarrier_stride=61)
    with pytest.raises(ValueError, match="ptrs_subcarrier_stride"):
        OFDMSISOChannel(ptrs_subcarrier_stride=0)
    with pytest.raises(ValueError, match="`ptrs_estimate_interference` needs"):
        OFDMSISOChannel(ptrs_estimate_interference=True)


def test_ptrs_follow_the_right_symbols_around_guard_carriers():
    """With guard bands and a DC null (61 effective subcarriers) each data resource element
    still takes its own symbol's phase: a frequency offset comes out as it does on the full
    band (untracked, the ramp leaves nothing of the symbols)."""
    kw = dict(model="AWGN", domain="time", pilot_pattern="empty", channel_estimation="perfect",
              frequency_offset_hz=0.05 * 30e3, num_guard_carriers=(5, 5), dc_null=True)
    tracked = OFDMSISOChannel(ptrs_subcarrier_stride=12, **kw)
    x = unit_symbols(8, 2 * tracked.num_data_symbols, 6)
    error = float((tracked(x, float("inf"))[0] - x).abs().square().mean())
    assert error < 0.02
    assert float((OFDMSISOChannel(**kw)(x, float("inf"))[0] - x).abs().square().mean()) > 1.0


@pytest.mark.parametrize("estimation", ["perfect", "ls"])
def test_ptrs_interference_estimate_calibrates_no_eff(estimation):
    """A frequency offset of 0.1 subcarrier spacings leaves about 3 % of interference at 30 dB
    (N0 = 0.001): the equaliser's no_eff alone understates the data's error some thirtyfold;
    with the PT-RS residuals measured, E|x_hat - x|^2 / no_eff is about 1. Without any
    interference the estimate adds next to nothing (no_eff within 5 % of the noise's)."""
    kw = dict(model="AWGN", domain="time", channel_estimation=estimation, interpolation="nn",
              ptrs_subcarrier_stride=12, frequency_offset_hz=3e3)
    blind = OFDMSISOChannel(generator=gen(7), **kw)
    aware = OFDMSISOChannel(ptrs_estimate_interference=True, generator=gen(7), **kw)
    x = unit_symbols(8, 2 * aware.num_data_symbols, 8)
    ratios = []
    for ch in (blind, aware):
        x_hat, no_eff = ch(x, 30.0)
        ratios.append(float(((x_hat - x).abs().square() / no_eff).mean()))
    assert ratios[0] > 10 and 0.8 < ratios[1] < 1.25
    kw.pop("frequency_offset_hz")
    quiet = [OFDMSISOChannel(generator=gen(9), ptrs_estimate_interference=flag, **kw)(x, 30.0)[1]
             for flag in (False, True)]
    assert float(quiet[1].mean()) == pytest.approx(float(quiet[0].mean()), rel=0.05)
    assert bool((quiet[1] >= quiet[0]).all())


def test_ptrs_interference_estimate_is_the_dirichlet_leakage_without_noise():
    """No noise, no multipath, every subcarrier loaded, an offset of 0.1 subcarrier spacings:
    the PT-RS residual is the interference alone, 1 - D^2 = 0.0325 of the power (D the
    Dirichlet gain), and that is the data's no_eff (the phase estimate adds nothing without
    noise)."""
    ch = OFDMSISOChannel(model="AWGN", domain="time", pilot_pattern="empty",
                         channel_estimation="perfect", ptrs_subcarrier_stride=12,
                         ptrs_estimate_interference=True, frequency_offset_hz=3e3)
    x = unit_symbols(16, 2 * ch.num_data_symbols, 10)
    _, no_eff = ch(x, float("inf"))
    d = math.sin(math.pi * 0.1) / (72 * math.sin(math.pi * 0.1 / 72))
    assert float(no_eff.mean()) == pytest.approx(1 - d ** 2, rel=0.04)


def test_ptrs_interference_estimate_follows_the_fades():
    """Over TDL-C fading (perfect CSI) the interference reaches each data symbol over its own
    channel gain, I / |h_hat|^2, so the errors stay calibrated symbol by symbol on average."""
    ch = OFDMSISOChannel(model="TDL-C", delay_spread_s=100e-9, domain="time",
                         ptrs_subcarrier_stride=12, ptrs_estimate_interference=True,
                         frequency_offset_hz=3e3, generator=gen(11))
    x = unit_symbols(16, 2 * ch.num_data_symbols, 12)
    x_hat, no_eff = ch(x, 30.0)
    assert 0.85 < float(((x_hat - x).abs().square() / no_eff).mean()) < 1.2
