"""Build a channel model of ``channels/`` from a scenario's channel configuration."""
from __future__ import annotations

import torch
from sionna.phy import Block

from semlink.channels.amplifier import AmplifiedChannel, PowerAmplifier
from semlink.channels.awgn import AWGNChannel
from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.oscillator import OscillatorChannel
from semlink.channels.phase_tracking import PhaseTrackingChannel
from semlink.channels.rayleigh import RayleighChannel
from semlink.channels.rician import RicianChannel
from semlink.scenario import AWGNConfig, ChannelConfig, OFDMConfig, RayleighConfig, RicianConfig

__all__ = ["build_channel", "ChannelConfigKey"]


def build_channel(config: ChannelConfig, *, generator: torch.Generator | None,
                  device: str, check_values: bool = False) -> Block:
    """The channel block for ``config``; call it as ``x_hat, no_eff = channel(x, snr_db)``.

    :param config: A validated channel section of a scenario.
    :param generator: Source of fading and noise on ``device``.
    :param device: Torch device string.
    :param check_values: Check per call that ``snr_db`` is not NaN or -inf. Default False:
        a scenario's SNRs are validated when it is loaded, and the check reads a value back
        from the device, which stalls a CUDA hot path.
    """
    if isinstance(config, AWGNConfig):
        return _impaired(config, AWGNChannel(generator=generator, device=device,
                                              check_values=check_values), generator)
    if isinstance(config, RayleighConfig):  # and RicianConfig, its subclass
        fading = dict(coherence_symbols=config.coherence_symbols, equalizer=config.equalizer,
                      num_rx_antennas=config.num_rx_antennas or 1,
                      num_tx_antennas=config.num_tx_antennas or 1,
                      csi_error_var=config.csi_error_var or 0.0,
                      normalized_doppler=config.normalized_doppler, generator=generator,
                      device=device, check_values=check_values)
        if isinstance(config, RicianConfig):
            return _impaired(config, RicianChannel(k_factor_db=config.k_factor_db, **fading),
                              generator)
        return _impaired(config, RayleighChannel(**fading), generator)
    if isinstance(config, OFDMConfig):
        model = "AWGN" if config.model == "none" else config.model.upper()
        return OFDMSISOChannel(
            model=model, delay_spread_s=config.delay_spread_s, speed_mps=config.speed_mps,
            carrier_frequency_hz=config.carrier_frequency_hz, fft_size=config.fft_size,
            subcarrier_spacing_hz=config.subcarrier_spacing_hz,
            num_ofdm_symbols=config.num_ofdm_symbols,
            cyclic_prefix_length=config.cyclic_prefix_length,
            pilot_pattern="kronecker" if config.pilot_ofdm_symbol_indices else "empty",
            pilot_ofdm_symbol_indices=tuple(config.pilot_ofdm_symbol_indices),
            num_guard_carriers=tuple(config.num_guard_carriers or (0, 0)),
            dc_null=bool(config.dc_null),
            channel_estimation=config.channel_estimation, interpolation=config.interpolation,
            amplifier=_amplifier(config, device), interleave=bool(config.interleave),
            domain=config.domain or "frequency",
            phase_noise_linewidth_hz=config.phase_noise_linewidth_hz,
            frequency_offset_hz=config.frequency_offset_hz,
            ptrs_subcarrier_stride=(None if config.phase_tracking is None
                                    else config.phase_tracking.subcarrier_stride),
            ptrs_estimate_interference=(config.phase_tracking is not None
                                        and config.phase_tracking.estimate_interference),
            estimate_frequency_offset=bool(config.estimate_frequency_offset),
            generator=generator, device=device, check_values=check_values)
    raise TypeError(f"`config` must be a channel configuration; got {type(config).__name__}.")


def _impaired(config: AWGNConfig | RayleighConfig, channel: Block,
               generator: torch.Generator | None) -> Block:
    """``channel``, behind the transmit amplifier of ``config`` when it has one and before the
    receiver oscillator's phase errors when it has some (the phase noise drawn from
    ``generator`` after the channel); all of it inside the pilot-aided phase tracker when
    ``config`` asks for one (its pilots go through the amplifier and the channel too)."""
    amplifier = _amplifier(config, channel.device)
    if amplifier is not None:
        channel = AmplifiedChannel(amplifier, channel)
    if config.phase_noise_linewidth is not None or config.frequency_offset is not None:
        channel = OscillatorChannel(channel, config.phase_noise_linewidth,
                                    normalized_frequency_offset=config.frequency_offset,
                                    generator=generator)
    tracking = config.phase_tracking
    if tracking is not None:
        channel = PhaseTrackingChannel(channel, tracking.pilot_spacing, tracking.pilot_length,
                                       estimate_frequency_offset=tracking.estimate_frequency_offset,
                                       estimate_phase_noise=tracking.estimate_phase_noise)
    return channel


def _amplifier(config: ChannelConfig, device: str) -> PowerAmplifier | None:
    """The transmit amplifier of ``config``, None for a linear transmitter."""
    amp = config.amplifier
    if amp is None:
        return None
    smoothness = {} if amp.smoothness is None else {"smoothness": amp.smoothness}
    return PowerAmplifier(input_backoff_db=amp.input_backoff_db, model=amp.model,
                          device=device, **smoothness)


class ChannelConfigKey:
    """Hashable stand-in for a channel configuration (pydantic models may hold lists), for
    memoising Monte-Carlo estimates per channel (:mod:`semlink.links.amc`,
    :mod:`semlink.links.capacity`); ``.config`` is the configuration."""

    __slots__ = ("config", "_key")

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self._key = (type(config).__name__, config.model_dump_json())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelConfigKey) and self._key == other._key
