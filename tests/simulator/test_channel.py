"""build_channel: the channel a scenario's ``channel`` section asks for, with its settings (the
channel models themselves are tested in tests/channels)."""
from __future__ import annotations

import pytest
import torch

from semlink.channel import build_channel
from semlink.scenario import parse_scenario
from semlink.seeding import make_generator


def _channel(section: str):
    text = f"channel: {section}\nsnr: {{points_db: [1]}}\nlinks: {{b: {{type: ber}}}}"
    return build_channel(parse_scenario(text).channel, generator=make_generator(0), device="cpu")


def test_rayleigh_fades_in_blocks_of_coherence_symbols():
    """coherence_symbols: 4 gives one fading coefficient per 4 symbols: the effective noise
    N0 / |h|^2 is constant within each block of 4 and differs between blocks."""
    ch = _channel("{type: rayleigh, coherence_symbols: 4, equalizer: mmse}")
    assert ch.coherence_symbols == 4 and ch.equalizer == "mmse"
    _, no_eff = ch(torch.ones(2, 12, dtype=torch.complex64), 10.0)
    blocks = no_eff.reshape(2, 3, 4)
    assert torch.equal(blocks, blocks[..., :1].expand(2, 3, 4))
    assert len(set(blocks[..., 0].flatten().tolist())) == 6


def test_rayleigh_receive_antennas_are_the_scenarios():
    """num_rx_antennas: 4 reaches the channel (MRC of 4 branches: the mean of 1 / no_eff is
    4 / N0, against 1 / N0 for one antenna); unset means one antenna."""
    ch = _channel("{type: rayleigh, num_rx_antennas: 4}")
    assert ch.num_rx_antennas == 4 and _channel("{type: rayleigh}").num_rx_antennas == 1
    _, no_eff = ch(torch.ones(4, 5000, dtype=torch.complex64), 0.0)
    assert float((1 / no_eff).mean()) == pytest.approx(4.0, rel=0.03)


def test_rician_channel_is_the_scenarios():
    """type: rician builds the Rician channel with the scenario's K factor, blocks and
    antennas (the line-of-sight mean of h is sqrt(K / (K + 1)))."""
    from semlink.channels.rician import RicianChannel

    ch = _channel("{type: rician, k_factor_db: 10, coherence_symbols: 2, num_rx_antennas: 2, "
                  "csi_error_var: 0.05}")
    assert isinstance(ch, RicianChannel)
    assert (ch.k_factor_db, ch.coherence_symbols, ch.num_rx_antennas, ch.csi_error_var) == (
        10.0, 2, 2, 0.05)
    assert _channel("{type: rayleigh, csi_error_var: 0.3}").csi_error_var == 0.3
    assert _channel("{type: rician, k_factor_db: 0, num_tx_antennas: 2}").num_tx_antennas == 2
    assert _channel("{type: rayleigh}").num_tx_antennas == 1
    assert _channel("{type: rayleigh}").csi_error_var == 0.0


def test_the_amplifier_is_the_scenarios_and_sits_before_the_channel():
    """channel.amplifier wraps the channel in its amplifier (model, back-off, smoothness: 2
    when unset); without it the channel is built bare."""
    from semlink.channels.amplifier import AmplifiedChannel
    from semlink.channels.rician import RicianChannel

    ch = _channel("{type: rician, k_factor_db: 3, amplifier: {input_backoff_db: 4.5}}")
    assert isinstance(ch, AmplifiedChannel) and isinstance(ch.channel, RicianChannel)
    assert (ch.amplifier.model, ch.amplifier.input_backoff_db, ch.amplifier.smoothness) == (
        "rapp", 4.5, 2.0)
    clip = _channel("{type: awgn, amplifier: {model: clip, input_backoff_db: -1}}")
    assert (clip.amplifier.model, clip.amplifier.input_backoff_db) == ("clip", -1.0)
    assert _channel("{type: rayleigh, amplifier: {input_backoff_db: 0, smoothness: 5}}"
                    ).amplifier.smoothness == 5.0
    assert not isinstance(_channel("{type: awgn}"), AmplifiedChannel)
    # phase noise comes after the channel (and its amplifier), at the receiver
    from semlink.channels.oscillator import OscillatorChannel

    noisy = _channel("{type: rayleigh, phase_noise_linewidth: 0.01, "
                     "amplifier: {input_backoff_db: 2}}")
    assert isinstance(noisy, OscillatorChannel) and noisy.normalized_linewidth == 0.01
    assert isinstance(noisy.channel, AmplifiedChannel)
    # the phase tracker holds it all: its pilots pass the amplifier, channel and oscillator
    from semlink.channels.phase_tracking import PhaseTrackingChannel

    tracked = _channel("{type: rician, k_factor_db: 3, frequency_offset: 0.001, "
                       "amplifier: {input_backoff_db: 2}, phase_tracking: {pilot_spacing: 20}}")
    assert isinstance(tracked, PhaseTrackingChannel)
    assert (tracked.pilot_spacing, tracked.pilot_length) == (20, 1)
    assert isinstance(tracked.channel, OscillatorChannel)
    assert isinstance(tracked.channel.channel, AmplifiedChannel)
    assert _channel("{type: awgn, phase_tracking: {pilot_spacing: 9, pilot_length: 3}}"
                    ).pilot_length == 3
    assert not tracked.estimate_frequency_offset
    assert _channel("{type: awgn, phase_tracking: {pilot_spacing: 9, pilot_length: 2, "
                    "estimate_frequency_offset: true}}").estimate_frequency_offset
    assert _channel("{type: awgn, phase_tracking: {pilot_spacing: 9, "
                    "estimate_phase_noise: true}}").estimate_phase_noise
    assert not tracked.estimate_phase_noise
    offset = _channel("{type: awgn, frequency_offset: -0.002}")
    assert offset.normalized_frequency_offset == -0.002 and offset.normalized_linewidth is None
    ofdm = _channel("{type: ofdm, domain: time, frequency_offset_hz: 300, "
                    "phase_noise_linewidth_hz: 10}")
    assert (ofdm._channel._frequency_offset, ofdm._channel._phase_noise) == pytest.approx(
        (300 / 2.16e6, 10 / 2.16e6))
    # OFDM takes it inside: it acts on the time-domain signal, not on the subcarriers
    ofdm = _channel("{type: ofdm, amplifier: {model: clip, input_backoff_db: 2}}")
    assert not isinstance(ofdm, AmplifiedChannel)
    assert (ofdm.amplifier.model, ofdm.amplifier.input_backoff_db) == ("clip", 2.0)
    assert _channel("{type: ofdm}").amplifier is None
    assert _channel("{type: ofdm, interleave: true}").interleave
    assert _channel("{type: ofdm, domain: time}").domain == "time"
    assert _channel("{type: ofdm, phase_tracking: {subcarrier_stride: 6}}"
                    ).ptrs_subcarrier_stride == 6
    assert _channel("{type: ofdm}").ptrs_subcarrier_stride is None
    assert _channel("{type: ofdm, domain: time, estimate_frequency_offset: true}"
                    )._channel._estimate_frequency_offset
    assert not _channel("{type: ofdm, domain: time}")._channel._estimate_frequency_offset
    assert _channel("{type: ofdm, phase_tracking: {subcarrier_stride: 6, "
                    "estimate_interference: true}}").ptrs_estimate_interference
    assert not _channel("{type: ofdm, phase_tracking: {subcarrier_stride: 6}}"
                        ).ptrs_estimate_interference
    assert _channel("{type: ofdm}").domain == "frequency"
    # guard bands and the DC null leave 72 - 11 - 1 = 60 subcarriers; no pilots, 14 data
    # symbols on them
    grid = _channel("{type: ofdm, num_guard_carriers: [5, 6], dc_null: true, "
                    "pilot_ofdm_symbol_indices: [], channel_estimation: perfect}").resource_grid
    assert grid.num_effective_subcarriers == 60 and grid.num_data_symbols == 14 * 60
    assert not _channel("{type: ofdm}").interleave


def test_ofdm_channel_estimation_is_the_scenarios():
    """With no fading (model none) and perfect estimation the effective noise is N0 itself,
    10^(-10/10) = 0.1 at 10 dB on every symbol; the default LS estimation adds its own error,
    which varies from symbol to symbol. The grid is the one the section describes."""
    perfect = _channel("{type: ofdm, model: none, channel_estimation: perfect}")
    x = torch.ones(2, perfect.num_data_symbols, dtype=torch.complex64)
    _, no_eff = perfect(x, 10.0)
    torch.testing.assert_close(no_eff, torch.full_like(no_eff, 0.1))
    ls = _channel("{type: ofdm, model: none}")
    _, no_eff = ls(x, 10.0)
    assert no_eff.std() > 0.01
    grid = _channel("{type: ofdm, model: tdl-c, fft_size: 48, num_ofdm_symbols: 7, "
                    "pilot_ofdm_symbol_indices: [1], cyclic_prefix_length: 4}").resource_grid
    assert (grid.fft_size, grid.num_ofdm_symbols, grid.cyclic_prefix_length) == (48, 7, 4)


# One section per registered channel type and the channels/ block it must build: a type added
# to the schema's union without a section here fails the first test below.
SECTIONS = {"awgn": ("{type: awgn}", "semlink.channels.awgn.AWGNChannel"),
            "rayleigh": ("{type: rayleigh}", "semlink.channels.rayleigh.RayleighChannel"),
            "rician": ("{type: rician, k_factor_db: 3}", "semlink.channels.rician.RicianChannel"),
            "ofdm": ("{type: ofdm}", "semlink.channels.ofdm.OFDMSISOChannel")}


def test_every_registered_channel_type_is_built():
    from semlink.scenario import CHANNEL_TYPES

    assert set(SECTIONS) == set(CHANNEL_TYPES)


@pytest.mark.parametrize("tag", sorted(SECTIONS))
def test_each_channel_type_builds_its_channels_block_that_runs(tag):
    """build_channel hands the section to its config class, which builds the block named
    for it; same seed, same output."""
    import importlib

    section, block = SECTIONS[tag]
    module, name = block.rsplit(".", 1)
    ch = _channel(section)
    assert type(ch) is getattr(importlib.import_module(module), name)
    x = torch.ones(2, 2016, dtype=torch.complex64)
    y, no_eff = ch(x, 10.0)
    again, _ = _channel(section)(x, 10.0)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.equal(y, again)


def test_build_channel_refuses_what_is_not_a_channel_config():
    from semlink.scenario import ImagesConfig

    with pytest.raises(TypeError, match=r"`config` must be a channel configuration; got dict\."):
        build_channel({"type": "awgn"}, generator=None, device="cpu")
    with pytest.raises(TypeError, match=r"got ImagesConfig\."):
        build_channel(ImagesConfig(), generator=None, device="cpu")
