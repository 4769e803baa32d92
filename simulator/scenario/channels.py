"""Channel section of the scenario schema: one config class per channel ``type``, each carrying
how its channel is built (:meth:`build`) and its closed-form BER (:meth:`theory_ber`).

``ChannelConfig``, the discriminated union of the classes, is where a channel type is registered:
``CHANNEL_TYPES``, the error messages' choices, :func:`semlink.channel.build_channel` and the
plots' theory curves all derive from it. The classes import their ``semlink.channels`` blocks and
the closed forms only when asked, so that the schema loads without torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from semlink.scenario.limits import (AMPLIFIER_BACKOFF_RANGE_DB, CHANNEL_IMPAIRMENTS,
                                     K_FACTOR_RANGE_DB, MAX_COHERENCE_SYMBOLS,
                                     MAX_NORMALIZED_DOPPLER, MAX_PHASE_NOISE_LINEWIDTH,
                                     MAX_RX_ANTENNAS, OFDM_CARRIER_RANGE_HZ,
                                     OFDM_MAX_DELAY_SPREAD_S, OFDM_MAX_FFT_SIZE,
                                     OFDM_MAX_OFDM_SYMBOLS, OFDM_MAX_SPEED_MPS, OFDM_MODELS,
                                     OFDM_SUBCARRIER_SPACING_RANGE_HZ, _Frozen, union_members)

if TYPE_CHECKING:
    import numpy as np
    import torch
    from sionna.phy import Block

    from semlink.channels.amplifier import PowerAmplifier

__all__ = [
    "AmplifierConfig",
    "PhaseTrackingConfig",
    "OFDMPhaseTrackingConfig",
    "AWGNConfig",
    "RayleighConfig",
    "RicianConfig",
    "OFDMConfig",
    "ChannelConfig",
    "CHANNEL_TYPES",
]


class AmplifierConfig(_Frozen):
    """Transmit power amplifier in front of the channel (channels/amplifier.py)."""

    model: Literal["rapp", "clip"] = "rapp"
    input_backoff_db: float = Field(ge=AMPLIFIER_BACKOFF_RANGE_DB[0],
                                    le=AMPLIFIER_BACKOFF_RANGE_DB[1],
                                    description="Saturation power over the mean input power, dB.")
    # None (= 2) rather than a default value: unset for the clipper.
    smoothness: float | None = Field(None, gt=0, le=100, description="Rapp's p; None = 2.")

    @model_validator(mode="after")
    def _smoothness_is_rapps(self) -> "AmplifierConfig":
        if self.model == "clip" and self.smoothness is not None:
            raise ValueError("smoothness: applies to model rapp (the clipper is its limit)")
        return self


class PhaseTrackingConfig(_Frozen):
    """Pilot blocks between the data and the receiver's phase tracked on them
    (channels/phase_tracking.py)."""

    pilot_spacing: int = Field(ge=1, le=100_000, description="Data symbols between two pilot "
                               "blocks.")
    pilot_length: int = Field(1, ge=1, le=1000, description="Pilots per block.")
    estimate_frequency_offset: bool = Field(False, description="Estimate a frequency offset "
                                            "from the steps within the blocks first (needs "
                                            "pilot_length >= 2).")
    estimate_phase_noise: bool = Field(False, description="Estimate the phase noise's step "
                                       "variance from the block phases and count the drift "
                                       "between the blocks in the data's effective noise.")

    @model_validator(mode="after")
    def _pairs_for_the_offset(self) -> "PhaseTrackingConfig":
        if self.estimate_frequency_offset and self.pilot_length < 2:
            raise ValueError("estimate_frequency_offset: measures the steps within a pilot "
                             f"block; needs pilot_length >= 2, got {self.pilot_length}")
        return self


class OFDMPhaseTrackingConfig(_Frozen):
    """Phase-tracking reference signals on OFDM (5G NR's PT-RS; channels/ofdm.py)."""

    subcarrier_stride: int = Field(ge=1, le=OFDM_MAX_FFT_SIZE, description="Effective "
                                   "subcarriers from one PT-RS to the next, on every OFDM "
                                   "symbol without pilots.")
    estimate_interference: bool = Field(False, description="Also measure the interference "
                                        "between subcarriers on the PT-RS residuals and count "
                                        "it in the data's effective noise.")


class _Channel(_Frozen):
    """What every channel config offers besides its fields."""

    def build(self, *, generator: torch.Generator | None, device: str,
              check_values: bool = False) -> Block:
        """The channel block; call it as ``x_hat, no_eff = channel(x, snr_db)``. See
        :func:`semlink.channel.build_channel`, which the simulator calls."""
        raise NotImplementedError(f"{type(self).__name__} does not say how to build its channel")

    def theory_ber(self, modulation: int, ebno_db: np.ndarray) -> np.ndarray | None:
        """The closed-form BER of an uncoded Gray ``modulation``-QAM link at ``ebno_db`` (dB,
        per information bit) over this channel, or None where there is none here (the default)."""
        return None

    def _beyond_closed_forms(self) -> bool:
        """True with a transmit amplifier, oscillator phase errors or a phase tracker (whose
        estimation noise the closed forms leave out)."""
        return any(getattr(self, field, None) for field in (*CHANNEL_IMPAIRMENTS, "phase_tracking"))


class AWGNConfig(_Channel):
    """Additive white Gaussian noise, optionally behind a transmit amplifier, with receiver
    oscillator phase errors and a pilot-aided phase tracker."""

    type: Literal["awgn"]
    # None (= no amplifier) rather than a default value: see scenario_hash.
    amplifier: AmplifierConfig | None = Field(None, description="Transmit amplifier; None = "
                                              "linear.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_noise_linewidth: float | None = Field(
        None, gt=0, le=MAX_PHASE_NOISE_LINEWIDTH, description="Receiver oscillator linewidth "
        "times symbol period: Wiener phase noise, increments of variance 2 pi times it; "
        "None = none.")
    # None (= none) rather than a default value: see scenario_hash.
    frequency_offset: float | None = Field(
        None, ge=-0.5, le=0.5, description="Receiver oscillator frequency offset times symbol "
        "period: a phase ramp of 2 pi times it per symbol; None = none.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_tracking: PhaseTrackingConfig | None = Field(
        None, description="Pilot-aided phase tracking at the receiver; None = the phase is "
        "not tracked.")

    def build(self, *, generator: torch.Generator | None, device: str,
              check_values: bool = False) -> Block:
        from semlink.channels.awgn import AWGNChannel

        return _impaired(self, AWGNChannel(generator=generator, device=device,
                                           check_values=check_values), generator)

    def theory_ber(self, modulation: int, ebno_db: np.ndarray) -> np.ndarray | None:
        """Cho and Yoon's exact BER of Gray M-QAM (:func:`semlink.theory.ber_awgn`)."""
        if self._beyond_closed_forms():
            return None
        from semlink.theory import ber_awgn

        return ber_awgn(ebno_db, modulation)


class RayleighConfig(_Channel):
    """Rayleigh flat fading, perfect CSI unless ``csi_error_var``; ``coherence_symbols`` 1 =
    fast fading, or ``normalized_doppler`` for time-correlated fading; ``num_rx_antennas`` > 1
    = receive diversity with maximum-ratio combining."""

    type: Literal["rayleigh"]
    coherence_symbols: int = Field(1, ge=1, le=MAX_COHERENCE_SYMBOLS)
    equalizer: Literal["zf", "mmse"] = "zf"
    # None (= 1) rather than a default value: see scenario_hash.
    num_rx_antennas: int | None = Field(None, ge=1, le=MAX_RX_ANTENNAS,
                                        description="Receive antennas, each at the mean SNR, "
                                        "combined by MRC; None = 1.")
    # None (= 1) rather than a default value: see scenario_hash.
    num_tx_antennas: int | None = Field(None, ge=1, le=2, description="Transmit antennas: 2 "
                                        "sends Alamouti's space-time block code (each pair of "
                                        "symbols over two channel uses, half the power per "
                                        "antenna); None = 1.")
    # None (= 0, perfect CSI) rather than a default value: see scenario_hash.
    csi_error_var: float | None = Field(None, ge=0, lt=1, description="Variance of the "
                                        "receiver's channel-estimation error (E|h|^2 = 1); "
                                        "None = 0, perfect CSI.")
    # None (= no amplifier) rather than a default value: see scenario_hash.
    amplifier: AmplifierConfig | None = Field(None, description="Transmit amplifier; None = "
                                              "linear.")
    # None (= block fading) rather than a default value: see scenario_hash.
    normalized_doppler: float | None = Field(
        None, gt=0, le=MAX_NORMALIZED_DOPPLER, description="Maximum Doppler shift times the "
        "symbol period, f_D T_s: time-correlated (Jakes) fading instead of blocks.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_noise_linewidth: float | None = Field(
        None, gt=0, le=MAX_PHASE_NOISE_LINEWIDTH, description="As for awgn.")
    # None (= none) rather than a default value: see scenario_hash.
    frequency_offset: float | None = Field(None, ge=-0.5, le=0.5, description="As for awgn.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_tracking: PhaseTrackingConfig | None = Field(None, description="As for awgn.")

    @model_validator(mode="after")
    def _doppler_or_blocks(self) -> "RayleighConfig":
        if self.normalized_doppler is not None and self.coherence_symbols != 1:
            raise ValueError("give either coherence_symbols (block fading) or normalized_doppler "
                             "(time-correlated fading), not both")
        return self

    def build(self, *, generator: torch.Generator | None, device: str,
              check_values: bool = False) -> Block:
        from semlink.channels.rayleigh import RayleighChannel

        return _impaired(self, RayleighChannel(**self._fading(generator, device, check_values)),
                         generator)

    def _fading(self, generator: torch.Generator | None, device: str,
                check_values: bool) -> dict:
        """Keyword arguments of the fading channel's constructor (Rayleigh's and Rician's)."""
        return dict(coherence_symbols=self.coherence_symbols, equalizer=self.equalizer,
                    num_rx_antennas=self.num_rx_antennas or 1,
                    num_tx_antennas=self.num_tx_antennas or 1,
                    csi_error_var=self.csi_error_var or 0.0,
                    normalized_doppler=self.normalized_doppler, generator=generator,
                    device=device, check_values=check_values)

    def theory_ber(self, modulation: int, ebno_db: np.ndarray) -> np.ndarray | None:
        """BPSK/QPSK with MRC of the receive antennas (:func:`semlink.theory.ber_rayleigh`).
        Alamouti's code over fades that hold for its pairs is ``2 A`` branches of MRC at half
        the SNR each; under faster fading or with CSI errors it has none here."""
        if self._beyond_closed_forms():
            return None
        import numpy as np

        antennas = self.num_rx_antennas or 1
        csi_error = float(self.csi_error_var or 0.0)
        if (self.num_tx_antennas or 1) == 2:
            if csi_error or self.normalized_doppler or self.coherence_symbols % 2:
                return None
            antennas, ebno_db = 2 * antennas, ebno_db - 10.0 * np.log10(2.0)
        if modulation not in (2, 4):
            return None
        return self._fading_ber(ebno_db, modulation, antennas, csi_error)

    def _fading_ber(self, ebno_db: np.ndarray, modulation: int, antennas: int,
                    csi_error: float) -> np.ndarray:
        from semlink.theory import ber_rayleigh

        return ber_rayleigh(ebno_db, modulation, antennas, csi_error)


class RicianConfig(RayleighConfig):
    """Rician flat fading: a line-of-sight ray and Rayleigh scattering, K = LOS / scattered
    power; the other fields as for ``rayleigh``."""

    type: Literal["rician"]
    k_factor_db: float = Field(ge=K_FACTOR_RANGE_DB[0], le=K_FACTOR_RANGE_DB[1],
                               description="Rician K factor, dB.")

    @staticmethod
    def scattered_power(k_factor_db: float) -> float:
        """``1 / (K + 1)``: the power of the scattered part, the bound of ``csi_error_var``
        (semlink.channels.rician has the same split)."""
        return 1.0 / (1.0 + 10.0 ** (k_factor_db / 10.0))

    @model_validator(mode="after")
    def _error_within_the_scattering(self) -> "RicianConfig":
        scattered = self.scattered_power(self.k_factor_db)
        if self.csi_error_var is not None and self.csi_error_var >= scattered:
            raise ValueError(f"csi_error_var ({self.csi_error_var:g}) must be below the "
                             f"scattered power 1 / (K + 1) = {scattered:.4g} (the line of sight "
                             "is known to the receiver)")
        return self


    def build(self, *, generator: torch.Generator | None, device: str,
              check_values: bool = False) -> Block:
        from semlink.channels.rician import RicianChannel

        return _impaired(self, RicianChannel(k_factor_db=self.k_factor_db,
                                             **self._fading(generator, device, check_values)),
                         generator)

    def _fading_ber(self, ebno_db: np.ndarray, modulation: int, antennas: int,
                    csi_error: float) -> np.ndarray:
        from semlink.theory import ber_rician

        return ber_rician(ebno_db, modulation, float(self.k_factor_db), antennas, csi_error)


class OFDMConfig(_Channel):
    """OFDM SISO over a 3GPP TR 38.901 TDL/CDL model (or ``none``: static unit gain)."""

    type: Literal["ofdm"]
    model: str = "tdl-a"
    delay_spread_s: float = Field(100e-9, ge=0, le=OFDM_MAX_DELAY_SPREAD_S)
    speed_mps: float = Field(0.0, ge=0, le=OFDM_MAX_SPEED_MPS)
    carrier_frequency_hz: float = Field(3.5e9, ge=OFDM_CARRIER_RANGE_HZ[0],
                                        le=OFDM_CARRIER_RANGE_HZ[1])
    fft_size: int = Field(72, ge=12, le=OFDM_MAX_FFT_SIZE)
    subcarrier_spacing_hz: float = Field(30e3, ge=OFDM_SUBCARRIER_SPACING_RANGE_HZ[0],
                                         le=OFDM_SUBCARRIER_SPACING_RANGE_HZ[1])
    num_ofdm_symbols: int = Field(14, ge=2, le=OFDM_MAX_OFDM_SYMBOLS)
    cyclic_prefix_length: int = Field(6, ge=0, le=OFDM_MAX_FFT_SIZE)
    pilot_ofdm_symbol_indices: list[int] = Field(default_factory=lambda: [2, 11],
                                                 max_length=OFDM_MAX_OFDM_SYMBOLS)
    channel_estimation: Literal["ls", "perfect"] = "ls"
    interpolation: Literal["nn", "lin"] = "lin"
    # None (= no amplifier) rather than a default value: see scenario_hash.
    amplifier: AmplifierConfig | None = Field(None, description="Transmit amplifier on the "
                                              "time-domain OFDM signal; None = linear.")
    # None (= false) rather than a default value: see scenario_hash.
    interleave: bool | None = Field(None, description="Permute each image's symbols "
                                    "pseudo-randomly across the slots; None = false.")
    # None (= frequency) rather than a default value: see scenario_hash.
    domain: Literal["frequency", "time"] | None = Field(
        None, description="frequency: one gain per resource element; time: the waveform "
        "through the multipath taps, cyclic prefix and FFT window (ISI, ICI); None = "
        "frequency.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_noise_linewidth_hz: float | None = Field(
        None, gt=0, description="Receiver oscillator linewidth, Hz: Wiener phase noise on the "
        "time-domain samples (domain time only); None = none.")
    # None (= none) rather than a default value: see scenario_hash.
    frequency_offset_hz: float | None = Field(
        None, allow_inf_nan=False, description="Receiver oscillator frequency offset, Hz: a "
        "phase ramp on the time-domain samples (domain time only); None = none.")
    # None (= [0, 0]) rather than a default value: see scenario_hash.
    num_guard_carriers: list[Annotated[int, Field(ge=0, le=OFDM_MAX_FFT_SIZE)]] | None = Field(
        None, min_length=2, max_length=2, description="[left, right] nulled subcarriers at the "
        "band's edges; None = [0, 0].")
    # None (= false) rather than a default value: see scenario_hash.
    dc_null: bool | None = Field(None, description="Null the DC subcarrier; None = false.")
    # None (= none) rather than a default value: see scenario_hash.
    phase_tracking: OFDMPhaseTrackingConfig | None = Field(
        None, description="PT-RS: each OFDM symbol's common phase error measured and taken "
        "out; None = none.")
    # None (= false) rather than a default value: see scenario_hash.
    estimate_frequency_offset: bool | None = Field(
        None, description="Estimate each image's frequency offset on the cyclic prefixes and "
        "correct the samples before the FFT (domain time only); None = false.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        model = model.lower()
        if model not in OFDM_MODELS:
            raise ValueError(f"must be one of {', '.join(OFDM_MODELS)}; got {model!r}")
        return model

    @model_validator(mode="after")
    def _fits_the_slot(self) -> "OFDMConfig":
        if self.cyclic_prefix_length > self.fft_size:
            raise ValueError(f"cyclic_prefix_length ({self.cyclic_prefix_length}) must be <= "
                             f"fft_size ({self.fft_size})")
        pilots, symbols = self.pilot_ofdm_symbol_indices, self.num_ofdm_symbols
        if not pilots and self.channel_estimation != "perfect":
            raise ValueError("pilot_ofdm_symbol_indices: an empty list (no pilots) needs "
                             "channel_estimation perfect; LS estimates from the pilots")
        if len(pilots) >= symbols:
            raise ValueError(f"pilot_ofdm_symbol_indices must hold at most {symbols - 1} "
                             f"indices (one of the {symbols} OFDM symbols must carry data); "
                             f"got {pilots}")
        if any(not 0 <= i < symbols for i in pilots) or len(set(pilots)) != len(pilots):
            raise ValueError(f"pilot_ofdm_symbol_indices must be distinct OFDM symbols in "
                             f"0..{symbols - 1} (num_ofdm_symbols {symbols}); got {pilots}")
        sample_rate = self.fft_size * self.subcarrier_spacing_hz
        for field, value in (("phase_noise_linewidth_hz", self.phase_noise_linewidth_hz),
                             ("frequency_offset_hz", self.frequency_offset_hz),
                             ("estimate_frequency_offset", self.estimate_frequency_offset or None)):
            if value is not None and self.domain != "time":
                raise ValueError(f"{field}: acts on the time-domain samples; set domain: time")
        if self.estimate_frequency_offset and self.cyclic_prefix_length < 1:
            raise ValueError("estimate_frequency_offset: correlates the cyclic prefixes; needs "
                             "cyclic_prefix_length >= 1")
        if self.phase_noise_linewidth_hz is not None:
            highest = MAX_PHASE_NOISE_LINEWIDTH * sample_rate
            if self.phase_noise_linewidth_hz > highest:
                raise ValueError(f"phase_noise_linewidth_hz ({self.phase_noise_linewidth_hz:g}) "
                                 f"must be <= {highest:g} Hz, 0.1 of the sample rate")
        if self.frequency_offset_hz is not None and \
                abs(self.frequency_offset_hz) > sample_rate / 2:
            raise ValueError(f"frequency_offset_hz ({self.frequency_offset_hz:g}) must be within "
                             f"+-{sample_rate / 2:g} Hz, half the sample rate")
        nulled = sum(self.num_guard_carriers or (0, 0)) + bool(self.dc_null)
        if nulled >= self.fft_size:
            raise ValueError(f"num_guard_carriers and dc_null null {nulled} of the "
                             f"{self.fft_size} subcarriers; at least one must carry data")
        if self.phase_tracking is not None and \
                self.phase_tracking.subcarrier_stride > self.fft_size - nulled:
            raise ValueError(f"phase_tracking.subcarrier_stride "
                             f"({self.phase_tracking.subcarrier_stride}) must be at most the "
                             f"{self.fft_size - nulled} effective subcarriers")
        return self

    def build(self, *, generator: torch.Generator | None, device: str,
              check_values: bool = False) -> Block:
        from semlink.channels.ofdm import OFDMSISOChannel

        return OFDMSISOChannel(
            model="AWGN" if self.model == "none" else self.model.upper(),
            delay_spread_s=self.delay_spread_s, speed_mps=self.speed_mps,
            carrier_frequency_hz=self.carrier_frequency_hz, fft_size=self.fft_size,
            subcarrier_spacing_hz=self.subcarrier_spacing_hz,
            num_ofdm_symbols=self.num_ofdm_symbols,
            cyclic_prefix_length=self.cyclic_prefix_length,
            pilot_pattern="kronecker" if self.pilot_ofdm_symbol_indices else "empty",
            pilot_ofdm_symbol_indices=tuple(self.pilot_ofdm_symbol_indices),
            num_guard_carriers=tuple(self.num_guard_carriers or (0, 0)),
            dc_null=bool(self.dc_null),
            channel_estimation=self.channel_estimation, interpolation=self.interpolation,
            amplifier=_amplifier(self, device), interleave=bool(self.interleave),
            domain=self.domain or "frequency",
            phase_noise_linewidth_hz=self.phase_noise_linewidth_hz,
            frequency_offset_hz=self.frequency_offset_hz,
            ptrs_subcarrier_stride=(None if self.phase_tracking is None
                                    else self.phase_tracking.subcarrier_stride),
            ptrs_estimate_interference=(self.phase_tracking is not None
                                        and self.phase_tracking.estimate_interference),
            estimate_frequency_offset=bool(self.estimate_frequency_offset),
            generator=generator, device=device, check_values=check_values)


#: The channel types a scenario may name: register a new one here, by its config class.
ChannelConfig = Annotated[Union[AWGNConfig, RayleighConfig, RicianConfig, OFDMConfig],
                          Field(discriminator="type")]
#: Channel ``type`` tags a scenario accepts, in the union's order.
CHANNEL_TYPES = tuple(union_members(ChannelConfig))


def _impaired(config: AWGNConfig | RayleighConfig, channel: Block,
              generator: torch.Generator | None) -> Block:
    """``channel``, behind the transmit amplifier of ``config`` when it has one and before the
    receiver oscillator's phase errors when it has some (the phase noise drawn from
    ``generator`` after the channel); all of it inside the pilot-aided phase tracker when
    ``config`` asks for one (its pilots go through the amplifier and the channel too)."""
    from semlink.channels.amplifier import AmplifiedChannel
    from semlink.channels.oscillator import OscillatorChannel
    from semlink.channels.phase_tracking import PhaseTrackingChannel

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


def _amplifier(config: AWGNConfig | RayleighConfig | OFDMConfig,
               device: str) -> PowerAmplifier | None:
    """The transmit amplifier of ``config``, None for a linear transmitter."""
    amp = config.amplifier
    if amp is None:
        return None
    from semlink.channels.amplifier import PowerAmplifier

    smoothness = {} if amp.smoothness is None else {"smoothness": amp.smoothness}
    return PowerAmplifier(input_backoff_db=amp.input_backoff_db, model=amp.model,
                          device=device, **smoothness)
