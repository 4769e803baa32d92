"""Scenario schema: what a YAML scenario may say, validated by pydantic into frozen models.

A scenario names the images, the links to compare (semantic, classical, or plain BER links), the
channel, the SNR points, the Monte-Carlo stop rules and where results go. Every problem in a file is
reported as one line ``FILE:LINE: yaml.path: message``, all problems at once.

Example::

    name: quickstart
    images: {source: sample, size: 256}
    channel: {type: awgn}
    snr: {points_db: [1, 5, 10, 15, 20]}
    links:
      semantic: {type: semantic, preset: small}
      jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {match: semantic}}
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import typing
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from semlink.devices import is_device_name
from semlink.errors import InputError

__all__ = [
    "ImageSide",
    "METRICS",
    "SET_METRICS",
    "parse_rate",
    "Scenario",
    "ScenarioError",
    "ImagesConfig",
    "SNRConfig",
    "MonteCarloConfig",
    "AmplifierConfig",
    "CHANNEL_IMPAIRMENTS",
    "PhaseTrackingConfig",
    "OFDMPhaseTrackingConfig",
    "LDPCDecoderConfig",
    "LDPC_CHECK_NODES",
    "AWGNConfig",
    "RayleighConfig",
    "RicianConfig",
    "OFDMConfig",
    "ChannelConfig",
    "AnalogTransmission",
    "DigitalTransmission",
    "SemanticLinkConfig",
    "BandwidthConfig",
    "HarqConfig",
    "ClassicalLinkConfig",
    "BERLinkConfig",
    "LinkConfig",
    "CHANNEL_TYPES",
    "LINK_TYPES",
    "union_members",
    "load_scenario",
    "parse_scenario",
    "validate_yaml",
    "scenario_hash",
]


def _multiple_of_32(size: int) -> int:
    if size % 32:
        raise ValueError(f"must be a multiple of 32 (encoder stride); got {size}")
    return size


ImageSide = Annotated[int, Field(ge=64, le=4096), AfterValidator(_multiple_of_32)]
"""An image or crop side in pixels: 64..4096 and a multiple of the encoder's stride (32)."""

_M = TypeVar("_M", bound=BaseModel)
QAM_ORDERS = (2, 4, 16, 64, 256)
METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")
SET_METRICS = ("fid", "kid")  # scored per link and SNR over all images, from Inception features
OFDM_MODELS = ("none", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e",
               "cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e")
MAX_SNR_POINTS = 1000
MAX_RX_ANTENNAS = 64
ENCODER_STRIDE = 32  # px: the smallest image the semantic encoder turns into one embedding cell
LINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # names folders of reconstructions
# The ranges the components accept (modulation/ldpc.py, channels/), written out here so
# that a scenario is checked without importing torch; tests/simulator/test_scenario.py keeps
# them equal to the components' own constants.
CODE_RATE_RANGE = (1 / 5, 948 / 1024)
CODE_BLOCK_INFO_BITS = (25, 8448)  # k of one 5G LDPC code block, its 24 CRC bits included
OFDM_CARRIER_RANGE_HZ = (0.5e9, 100e9)  # TR 38.901 validity range
OFDM_SUBCARRIER_SPACING_RANGE_HZ = (1e3, 1e6)
OFDM_MAX_DELAY_SPREAD_S = 10e-6
OFDM_MAX_SPEED_MPS = 500.0
OFDM_MAX_FFT_SIZE = 4096
OFDM_MAX_OFDM_SYMBOLS = 140
MAX_NORMALIZED_DOPPLER = 0.5  # f_D T_s (channels/doppler.py)
MAX_HARQ_TRANSMISSIONS = 16  # simulator/links/harq.py
MAX_PHASE_NOISE_LINEWIDTH = 0.1  # channels/oscillator.py
#: Channel fields of transmitter and receiver impairments (amplifier, oscillator), which the
#: ideal code's mutual information and the BER closed forms leave out.
CHANNEL_IMPAIRMENTS = ("amplifier", "phase_noise_linewidth", "phase_noise_linewidth_hz",
                       "frequency_offset", "frequency_offset_hz")
AMPLIFIER_BACKOFF_RANGE_DB = (-20.0, 40.0)  # input back-offs a scenario may ask for


class ScenarioError(InputError):
    """A scenario file with one or more problems; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Frozen(BaseModel):
    # No NaN or infinity in any number of a file (an SNR point may be .inf: SnrDb).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _snr_db(value: float) -> float:
    """An SNR in dB: a number, or ``.inf`` for a noiseless channel; never NaN or -inf."""
    if math.isnan(value) or value == -math.inf:
        raise ValueError(f"must be a number of dB (.inf for a noiseless channel); got {value}")
    return value


SnrDb = Annotated[float, Field(allow_inf_nan=True), AfterValidator(_snr_db)]
CodeRate = Annotated[float, Field(ge=CODE_RATE_RANGE[0], le=CODE_RATE_RANGE[1])]
"""A 5G LDPC code rate k/n: 1/5 .. 948/1024 (a number or a fraction such as ``"1/2"``)."""


def parse_rate(value: Any) -> Any:
    """Accept a code rate as a number or a fraction string such as ``"1/2"``."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"must be a number or a fraction like '1/2'; got {value!r}") from None
    return value


class ImagesConfig(_Frozen):
    """Which images a run transmits.

    ``source`` is ``sample`` (the 8 photos shipped with semlink), a folder, or a glob pattern;
    relative paths are relative to the scenario file. Images are centre-cropped to the output's
    aspect ratio (or resized whole when ``center_crop`` is false) and resized to ``size`` x
    ``size`` pixels, or to ``width`` x ``height`` when those are given (e.g. Kodak's 768 x 512).
    """

    source: str = "sample"
    size: ImageSide = Field(256, description="Side of the square image, pixels.")
    # None rather than a default value: see scenario_hash.
    width: ImageSide | None = Field(None, description="Width of a non-square image, pixels "
                                                      "(with height; replaces size).")
    height: ImageSide | None = Field(None, description="Height of a non-square image, pixels "
                                                       "(with width; replaces size).")
    count: int | None = Field(None, ge=1, description="Use at most this many images (sorted by name).")
    center_crop: bool = True

    @model_validator(mode="after")
    def _one_shape(self) -> "ImagesConfig":
        if (self.width is None) != (self.height is None):
            given, missing = ("width", "height") if self.height is None else ("height", "width")
            raise ValueError(f"{given} needs {missing} (or give size alone for a square image)")
        if self.width is not None and "size" in self.model_fields_set:
            raise ValueError("give either size (a square image) or width and height, not both")
        return self

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the transmitted images, pixels."""
        if self.width is None:
            return self.size, self.size
        return self.height, self.width

    @property
    def side_field(self) -> str:
        """What sets the images' smallest side, as error messages name it."""
        return "images.size" if self.width is None else "each of images.width and height"

    def describe(self) -> str:
        """The image size as messages print it: ``256`` (square) or ``768x512`` (width x
        height)."""
        height, width = self.shape
        return f"{self.size}" if self.width is None else f"{width}x{height}"


class SNRConfig(_Frozen):
    """SNR points, either listed or as an inclusive range; ``kind`` says what the dB values mean."""

    kind: Literal["esno", "ebno"] = "esno"
    points_db: list[SnrDb] | None = None
    start_db: float | None = None
    stop_db: float | None = None
    step_db: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_form(self) -> "SNRConfig":
        ranged = (self.start_db, self.stop_db, self.step_db)
        if self.points_db is not None and any(v is not None for v in ranged):
            raise ValueError("give either points_db or start_db/stop_db/step_db, not both")
        if self.points_db is None:
            if any(v is None for v in ranged):
                raise ValueError("give points_db, or all of start_db, stop_db and step_db")
            if self.stop_db < self.start_db:
                raise ValueError(f"stop_db ({self.stop_db}) must be >= start_db ({self.start_db})")
            count = (self.stop_db - self.start_db) / self.step_db + 1
            if count > MAX_SNR_POINTS:
                raise ValueError(f"start_db..stop_db in steps of step_db gives {count:.0f} SNR "
                                 f"points; at most {MAX_SNR_POINTS}")
        elif not self.points_db:
            raise ValueError("points_db must not be empty")
        return self

    def values_db(self) -> list[float]:
        """The SNR points in dB, in the order given (a range is inclusive of ``stop_db``)."""
        if self.points_db is not None:
            return [float(v) for v in self.points_db]
        count = int(math.floor((self.stop_db - self.start_db) / self.step_db + 1e-9)) + 1
        return [round(self.start_db + i * self.step_db, 10) for i in range(count)]


class MonteCarloConfig(_Frozen):
    """Stop rules for BER/BLER points: run until enough errors, never below ``min_bits``,
    never above ``max_bits``."""

    target_bit_errors: int = Field(1000, ge=1)
    target_block_errors: int = Field(100, ge=1)
    min_bits: int = Field(100_000, ge=1)
    max_bits: int = Field(10_000_000, ge=1)
    batch_bits: int = Field(200_000, ge=1000, description="Bits simulated per batch.")

    @model_validator(mode="after")
    def _ordered(self) -> "MonteCarloConfig":
        if self.max_bits < self.min_bits:
            raise ValueError(f"max_bits ({self.max_bits}) must be >= min_bits ({self.min_bits})")
        return self


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


class AWGNConfig(_Frozen):
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


class RayleighConfig(_Frozen):
    """Rayleigh flat fading, perfect CSI unless ``csi_error_var``; ``coherence_symbols`` 1 =
    fast fading, or ``normalized_doppler`` for time-correlated fading; ``num_rx_antennas`` > 1
    = receive diversity with maximum-ratio combining."""

    type: Literal["rayleigh"]
    coherence_symbols: int = Field(1, ge=1)
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


class RicianConfig(RayleighConfig):
    """Rician flat fading: a line-of-sight ray and Rayleigh scattering, K = LOS / scattered
    power; the other fields as for ``rayleigh``."""

    type: Literal["rician"]
    k_factor_db: float = Field(allow_inf_nan=False, description="Rician K factor, dB.")

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


class OFDMConfig(_Frozen):
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
    cyclic_prefix_length: int = Field(6, ge=0)
    pilot_ofdm_symbol_indices: list[int] = Field(default_factory=lambda: [2, 11])
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
    num_guard_carriers: list[Annotated[int, Field(ge=0)]] | None = Field(
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


ChannelConfig = Annotated[Union[AWGNConfig, RayleighConfig, RicianConfig, OFDMConfig],
                          Field(discriminator="type")]


#: Check-node rules of the LDPC decoder (semlink.modulation.ldpc.CN_UPDATES; the schema loads without
#: torch, so they are written here too, and tests/simulator/test_scenario.py compares them).
LDPC_CHECK_NODES = ("boxplus", "boxplus-phi", "offset-minsum")


class LDPCDecoderConfig(_Frozen):
    """Belief-propagation decoder of the 5G LDPC code blocks."""

    iterations: int = Field(20, ge=1, le=200, description="Iterations (flooding schedule, no "
                            "early stop).")
    check_node: Literal[LDPC_CHECK_NODES] = Field(
        "boxplus", description="Check-node rule: boxplus (exact sum-product), boxplus-phi "
        "(the same in the log domain), offset-minsum (the hardware approximation).")


class HarqConfig(_Frozen):
    """HARQ: frames with a failed code block are sent again, with Chase combining or
    incremental redundancy."""

    max_transmissions: int = Field(ge=1, le=MAX_HARQ_TRANSMISSIONS, description="Sends of a "
                                   "frame at most, the first included.")
    combining: Literal["chase", "ir"] = Field("chase", description="chase: the same symbols "
                                              "again, combined; ir: the next redundancy "
                                              "version, decoded with the earlier ones.")
    # None (= whole frames) rather than a default value: see scenario_hash.
    code_block_groups: Literal[2, 4, 6, 8] | None = Field(
        None, description="5G CBG-based retransmission: a frame's (an embedding's) code "
        "blocks in at most this many groups and only the groups with a failed block resent; "
        "None = whole frames.")


class AnalogTransmission(_Frozen):
    """The paper's transmission: pairs of embedding values as one unit-power complex symbol."""

    mode: Literal["analog"]
    # None (= none) rather than a default value: see scenario_hash.
    estimate: Literal["none", "lmmse", "noise-matched"] | None = Field(
        None, description="What the receiver makes of the equalised symbols before stage B "
        "(semlink.modulation.analog.estimate_symbols); None = none, the paper's.")
    # None (= 1) rather than a default value: see scenario_hash.
    repetitions: int | None = Field(
        None, ge=1, le=MAX_HARQ_TRANSMISSIONS, description="Sends of every symbol, combined by "
        "maximum-ratio combining (R times the channel uses); None = 1, the paper's.")


class DigitalTransmission(_Frozen):
    """Quantise the embedding to ``bits_per_value`` bits, protect with CRC + LDPC, send with QAM."""

    mode: Literal["digital"]
    bits_per_value: int = Field(6, ge=1, le=16)
    clip: list[float] = Field(default_factory=lambda: [-4.0, 4.0], description="[low, high].")
    modulation: int = 16
    code_rate: CodeRate = 0.5
    codeword_length: int = Field(2048, ge=64)
    fallback: Literal["zeros"] = "zeros"
    # None (= one transmission) rather than a default value: see scenario_hash.
    harq: HarqConfig | None = Field(None, description="Retransmissions of an embedding with a "
                                    "failed code block; None = one transmission.")
    # None (= 20 boxplus iterations) rather than a default value: see scenario_hash.
    decoder: LDPCDecoderConfig | None = Field(None, description="LDPC decoder; None = 20 "
                                              "iterations of boxplus.")

    _rate = field_validator("code_rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    @field_validator("modulation")
    @classmethod
    def _qam(cls, m: int) -> int:
        return _check_qam(m)

    @field_validator("clip")
    @classmethod
    def _clip(cls, clip: list[float]) -> list[float]:
        if len(clip) != 2 or not clip[0] < clip[1]:
            raise ValueError(f"must be [low, high] with low < high; got {list(clip)}")
        return clip

    @model_validator(mode="after")
    def _code_block(self) -> "DigitalTransmission":
        _check_code_block(self.code_rate, self.codeword_length, self.modulation)
        return self


def _check_code_block(code_rate: float, codeword_length: int, modulation: int) -> None:
    """k = round(code_rate * n) information bits per block, n the codeword length rounded down
    to whole QAM symbols (as modulation/ldpc.py plans it), must be a 5G LDPC block size."""
    n = codeword_length - codeword_length % int(math.log2(modulation))
    k = round(code_rate * n)
    low, high = CODE_BLOCK_INFO_BITS
    if not low <= k <= high:
        raise ValueError(f"code_rate x codeword_length gives {k} information bits per code "
                         f"block (CRC included); a 5G LDPC block holds {low} to {high}: "
                         f"codeword_length {'<=' if k > high else '>='} "
                         f"{(high if k > high else low) / code_rate:.0f} at this code_rate")


def _check_qam(m: int) -> int:
    if m not in QAM_ORDERS:
        raise ValueError(f"must be one of {', '.join(map(str, QAM_ORDERS))} (QAM order M); got {m}")
    return m


class SemanticLinkConfig(_Frozen):
    """Stable Cascade semantic link: encoder -> channel -> stage B + stage A.

    ``steps`` and ``guidance`` default to the preset's (10 and 1.1 for the Stable Cascade
    presets, as in the paper; 1 and 1.0 for ``small``, see docs/training.md).
    """

    type: Literal["semantic"]
    preset: Literal["small", "stable-cascade-lite", "stable-cascade"] = "small"
    weights: str | None = Field(None, description="Weights directory (real presets).")
    steps: int | None = Field(None, ge=1, le=1000, description="Sampling steps; None = preset's.")
    guidance: float | None = Field(None, ge=1.0, description="CFG scale; None = preset's.")
    resize_factor: float | None = Field(None, gt=0, le=1.0)
    transmission: Annotated[Union[AnalogTransmission, DigitalTransmission],
                            Field(discriminator="mode")] = AnalogTransmission(mode="analog")


class BandwidthConfig(_Frozen):
    """Channel uses per image: match another link, give a number, or a ratio N / (3 H W)."""

    match: str | None = None
    channel_uses: int | None = Field(None, ge=1)
    ratio: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> "BandwidthConfig":
        given = [k for k in ("match", "channel_uses", "ratio") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of match, channel_uses, ratio; got {given or 'none'}")
        return self


class ClassicalLinkConfig(_Frozen):
    """JPEG2000 + CRC + 5G LDPC + QAM, with a failure policy for lost code blocks; or JPEG2000
    over an ideal code at the channel's capacity (``channel_code: capacity``)."""

    type: Literal["classical"]
    codec: Literal["jpeg2000"] = "jpeg2000"
    # None (= ldpc) rather than a default value: see scenario_hash.
    channel_code: Literal["ldpc", "capacity"] | None = Field(
        None, description="ldpc (default): CRC + 5G LDPC + QAM; capacity: an ideal code at the "
        "AWGN capacity of each SNR point, or with adaptive: true at the largest rate whose "
        "outage probability over the channel is <= bler_target.")
    modulation: int = 16
    code_rate: CodeRate = 0.5
    codeword_length: int = Field(2048, ge=64)
    bandwidth: BandwidthConfig
    failure_policy: Literal["paper", "error-concealment", "mean-image"] = "paper"
    jpeg2000_header: Literal["implicit", "explicit"] = Field(
        "implicit", description="implicit: the receiver knows the codec settings, the JPEG2000 "
        "main header is not sent; explicit: the whole codestream is sent.")
    adaptive: bool = Field(False, description="Adaptive modulation and coding: per SNR, the MCS "
                           "with the largest frame whose estimated BLER is <= bler_target "
                           "(modulation and code_rate are then ignored).")
    bler_target: float = Field(0.1, gt=0, lt=1)
    # None (= one transmission) rather than a default value: see scenario_hash.
    harq: HarqConfig | None = Field(None, description="Retransmissions, Chase combining or "
                                    "incremental redundancy (LDPC only); None = one "
                                    "transmission, as in the paper.")
    # None (= 20 boxplus iterations) rather than a default value: see scenario_hash.
    decoder: LDPCDecoderConfig | None = Field(None, description="LDPC decoder (ldpc only); "
                                              "None = 20 iterations of boxplus.")

    _rate = field_validator("code_rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    @field_validator("modulation")
    @classmethod
    def _qam(cls, m: int) -> int:
        return _check_qam(m)

    @model_validator(mode="after")
    def _ideal_code_has_no_mcs(self) -> "ClassicalLinkConfig":
        if self.channel_code == "capacity" and self.harq is not None:
            raise ValueError("harq: applies to channel_code ldpc (an ideal code has no CRC to "
                             "ask for a retransmission)")
        if self.channel_code == "capacity" and self.decoder is not None:
            raise ValueError("decoder: applies to channel_code ldpc (an ideal code has no "
                             "decoder to set)")
        if self.channel_code == "capacity":
            given = [k for k in ("modulation", "code_rate", "codeword_length")
                     if k in self.model_fields_set]
            if given:
                raise ValueError(f"{', '.join(given)}: not used with channel_code: capacity "
                                 "(an ideal code: no QAM, no LDPC)")
        return self


class BERLinkConfig(_Frozen):
    """Random bits -> (LDPC) -> QAM -> channel -> demapper -> (decoder): BER/BLER curves."""

    type: Literal["ber"]
    modulation: int = 4
    code_rate: CodeRate | None = None
    codeword_length: int = Field(2048, ge=64)
    demapping: Literal["app", "maxlog"] = "app"
    # None (= one transmission) rather than a default value: see scenario_hash.
    harq: HarqConfig | None = Field(None, description="Retransmissions of each code block whose "
                                    "CRC fails (coded links only); None = one transmission.")
    # None (= 20 boxplus iterations) rather than a default value: see scenario_hash.
    decoder: LDPCDecoderConfig | None = Field(None, description="LDPC decoder (coded links "
                                              "only); None = 20 iterations of boxplus.")

    _rate = field_validator("code_rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    @field_validator("modulation")
    @classmethod
    def _qam(cls, m: int) -> int:
        return _check_qam(m)

    @field_validator("harq")
    @classmethod
    def _one_block_rows(cls, harq: HarqConfig | None) -> HarqConfig | None:
        if harq is not None and harq.code_block_groups is not None:
            raise ValueError("code_block_groups: applies to frames of several code blocks (a "
                             "BER link's rows are single code blocks)")
        return harq

    @model_validator(mode="after")
    def _code_block(self) -> "BERLinkConfig":
        if self.code_rate is not None:
            _check_code_block(self.code_rate, self.codeword_length, self.modulation)
        elif self.harq is not None:
            raise ValueError("harq: needs code_rate (a CRC-protected code block to resend)")
        elif self.decoder is not None:
            raise ValueError("decoder: needs code_rate (an uncoded link decodes nothing)")
        return self


LinkConfig = Annotated[Union[SemanticLinkConfig, ClassicalLinkConfig, BERLinkConfig],
                       Field(discriminator="type")]


def union_members(union: Any) -> dict[str, type[BaseModel]]:
    """The config classes of a discriminated union (``ChannelConfig``, ``LinkConfig``) by their
    ``type`` tag, in the union's order: the one list that choices and messages derive from.

    >>> list(union_members(ChannelConfig))
    ['awgn', 'rayleigh', 'rician', 'ofdm']
    """
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in members}


#: Channel and link ``type`` tags a scenario accepts, derived from the unions above.
CHANNEL_TYPES = tuple(union_members(ChannelConfig))
LINK_TYPES = tuple(union_members(LinkConfig))


class Scenario(_Frozen):
    """A whole scenario file."""

    name: str = "scenario"
    description: str = ""
    seed: int = Field(0, ge=0)
    device: str = "auto"
    batch_size: int = Field(4, ge=1)
    repeats: int = Field(1, ge=1, description="Transmissions per image (predictability).")
    images: ImagesConfig | None = None
    channel: ChannelConfig = AWGNConfig(type="awgn")
    snr: SNRConfig
    links: dict[str, LinkConfig] = Field(min_length=1)
    metrics: list[Literal["psnr", "ssim", "ms_ssim", "lpips", "fid", "kid"]] = Field(
        default_factory=lambda: ["psnr", "ssim"])
    monte_carlo: MonteCarloConfig = MonteCarloConfig()
    output: str = Field("results/scenario.h5", min_length=1)
    save_reconstructions: bool = False
    fid_reference: str | None = Field(
        None, description="pytorch-fid statistics (.npz) FID is measured against instead of "
                          "the transmitted originals; relative to the scenario file.")

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if is_device_name(device):
            return device
        raise ValueError(f"must be auto, cpu, cuda or cuda:N; got {device!r}")

    @field_validator("links")
    @classmethod
    def _link_names(cls, links: dict[str, Any]) -> dict[str, Any]:
        # Names become folder names of reconstructions and labels in results files.
        for name in links:
            if not LINK_NAME.fullmatch(name):
                raise ValueError(f"link name {name!r}: use letters, digits and _ . + - (not "
                                 "first), as it names folders and rows of the results")
        return links

    @model_validator(mode="after")
    def _links_consistent(self) -> "Scenario":
        for name, link in self.links.items():
            match = getattr(getattr(link, "bandwidth", None), "match", None)
            if match is None:
                continue
            if match not in self.links:
                raise ValueError(f"links.{name}.bandwidth.match: no link named {match!r}; "
                                 f"links are {', '.join(self.links)}")
            if not isinstance(self.links[match], SemanticLinkConfig):
                raise ValueError(f"links.{name}.bandwidth.match: {match!r} must be a semantic link")
        impairments = [f"channel.{field}" for field in CHANNEL_IMPAIRMENTS
                       if getattr(self.channel, field, None) is not None]
        if impairments:
            for name, link in self.links.items():
                if getattr(link, "channel_code", None) == "capacity":
                    what = "distortion" if impairments[0].endswith("amplifier") else "phase"
                    raise ValueError(f"links.{name}.channel_code: capacity counts only the "
                                     f"channel's noise, not {impairments[0]}'s {what}; use "
                                     f"ldpc, or no {impairments[0].split('.')[1]}")
        if self.fid_reference is not None and "fid" not in self.metrics:
            raise ValueError("fid_reference: set, but fid is not among the metrics")
        needs_images = any(not isinstance(l, BERLinkConfig) for l in self.links.values())
        if needs_images and self.images is None:
            raise ValueError("images: required when a semantic or classical link is present")
        if needs_images and not self.metrics:
            raise ValueError("metrics: empty; semantic and classical links need at least one "
                             f"of {', '.join(METRICS)}")
        for metric in SET_METRICS:
            if needs_images and metric in self.metrics and self.images.count == 1:
                raise ValueError(f"metrics: {metric} needs at least 2 images; images.count is 1")
            if not needs_images and metric in self.metrics:
                raise ValueError(f"metrics: {metric} needs a semantic or classical link (images); "
                                 "this scenario has BER links only")
        for name, link in self.links.items():
            if isinstance(link, SemanticLinkConfig):
                self._check_semantic(name, link)
        if needs_images and "ms_ssim" in self.metrics:
            from semlink.metrics.quality import MS_SSIM_BETAS, ms_ssim_max_scales

            if ms_ssim_max_scales(*self.images.shape) < len(MS_SSIM_BETAS):
                raise ValueError(f"metrics: ms_ssim (5 scales, as published) needs "
                                 f"{self.images.side_field} >= 192; got {self.images.describe()}")
        if needs_images and self.snr.kind == "ebno":
            raise ValueError("snr.kind: ebno (per information bit) applies to BER links only; "
                             "semantic and classical links are compared at the same Es/N0 "
                             "(kind: esno)")
        return self

    def _check_semantic(self, name: str, link: SemanticLinkConfig) -> None:
        if link.preset != "small" and link.weights is None:
            raise ValueError(f"links.{name}.weights: preset {link.preset!r} needs the folder of "
                             "its weights (semlink weights DIR --download fetches them)")
        if link.resize_factor is not None:
            side = min(self.images.shape) * link.resize_factor
            if round(side) < ENCODER_STRIDE:
                raise ValueError(f"links.{name}.resize_factor: {self.images.side_field} x "
                                 f"resize_factor must be >= {ENCODER_STRIDE} px (the encoder's "
                                 f"stride); got {side:g}")

    def referenced_paths(self) -> dict[str, str]:
        """The files and folders the scenario names, by field (``images.source`` unless
        ``sample``, each semantic link's ``weights``, ``fid_reference``); relative ones start
        from the scenario file's folder."""
        paths: dict[str, str] = {}
        if self.images is not None and self.images.source != "sample":
            paths["images.source"] = self.images.source
        for name, link in self.links.items():
            if isinstance(link, SemanticLinkConfig) and link.weights is not None:
                paths[f"links.{name}.weights"] = link.weights
        if self.fid_reference is not None:
            paths["fid_reference"] = self.fid_reference
        return paths


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-9`` and ``300e-9`` as floats (YAML 1.1 needs a dot) and
    refuses a key given twice in one mapping (YAML keeps the last silently: a second ``snr:``
    or link of the same name would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the constructor below reports it
                continue
            if first is not None:  # also within one line: {a: 1, a: 2}
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {first + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 (hex) of the resolved scenario and semlink's version: results are keyed by it.

    The ``device`` field is left out: where a run executes is checked on resume by the device
    type it resolved to (see :func:`semlink.sweep.open_store`), so ``auto`` and ``cuda``, or a
    ``--device`` given on the command line, resume the same results. So are fields that are
    unset (null): an optional field added to the schema later leaves the hashes of existing
    results files, and their resumes, as they were.
    """
    from semlink import __version__

    content = scenario.model_dump(mode="json", exclude={"device"}, exclude_none=True)
    payload = json.dumps({"scenario": content, "semlink": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def load_scenario(path: str | Path) -> tuple[Scenario, str]:
    """Read and validate a scenario file.

    :param path: YAML file.
    :output: ``(scenario, text)``: the validated scenario and the file's text (stored with results).
    :raises ScenarioError: With one line per problem, ``FILE:LINE: yaml.path: message``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{path}: scenario file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError([f"{path}: cannot read scenario file ({err})"]) from None
    return parse_scenario(text, source=str(path)), text


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML ``text``; ``source`` names it in error messages."""
    return validate_yaml(text, Scenario, source=source)


def validate_yaml(text: str, model: type[_M], *, source: str, what: str = "a scenario") -> _M:
    """Validate YAML ``text`` into the pydantic ``model`` (scenarios, training configs, ...).

    :param source: Names the text in messages (a file path).
    :param what: What the file is, for the message about a non-mapping document.
    :raises ScenarioError: One line per problem, ``SOURCE:LINE: yaml.path: message``.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError([f"{source}{line}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: {what} must be a mapping of keys; got "
                             f"{type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ScenarioError([_format_problem(e, root, source, model)
                             for e in err.errors()]) from None


def _format_problem(error: dict[str, Any], root: yaml.Node | None, source: str,
                    model: type[BaseModel]) -> str:
    loc = list(error["loc"])
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    # Cross-field messages carry their own path ("links.x.bandwidth.match: ...").
    head = msg.split(": ", 1)[0]
    if ": " in msg and all(part.replace("_", "").isalnum() for part in head.split(".")) and \
            head.split(".")[0] in model.model_fields:
        loc = [int(p) if p.isdigit() else p for p in head.split(".")]
        msg = msg.split(": ", 1)[1]
    if error["type"] == "extra_forbidden":
        msg = f"unknown key; allowed: {', '.join(_parent_model(model, loc).model_fields)}"
    elif error["type"] == "union_tag_invalid":
        msg = f"must be one of {error['ctx']['expected_tags']}; got {error['ctx']['tag']!r}"
    if "input" in error and error["type"] not in ("missing", "extra_forbidden") and \
            not isinstance(error["input"], (dict, list)) and "; got " not in msg:
        msg = f"{msg}; got {error['input']!r}"
    loc, line = _resolve(root, loc)
    where = ".".join(str(p) for p in loc) or "(top level)"
    return f"{source}:{line}: {where}: {msg}"


def _resolve(root: yaml.Node | None, loc: list[Any]) -> tuple[list[Any], int]:
    """Follow ``loc`` through the YAML tree: the 1-based line of the deepest node reached and the
    path without the union tags pydantic inserts (a tag is skipped when it is not a key there)."""
    node, line, path = root, 1, []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    path.append(part)
                    break
            else:
                if isinstance(part, str) and (part in _UNION_TAGS or "[" in part):
                    continue
                path.extend(loc[i:])
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
            path.append(part)
        else:
            path.extend(p for p in loc[i:] if not (isinstance(p, str) and p in _UNION_TAGS))
            break
    return path, line


def _parent_model(root: type[BaseModel], loc: list[Any]) -> type[BaseModel]:
    """The model class that holds the last key of ``loc`` (for listing its allowed keys):
    follow nested model fields from ``root``; a union tag names its class directly."""
    cls = root
    for part in loc[:-1]:
        if isinstance(part, str) and part in _MODEL_AT and part not in cls.model_fields:
            cls = _MODEL_AT[part]
        elif isinstance(part, str) and part in cls.model_fields:
            nested = [t for t in (cls.model_fields[part].annotation,
                                  *typing.get_args(cls.model_fields[part].annotation))
                      if isinstance(t, type) and issubclass(t, BaseModel)]
            if nested:
                cls = nested[0]
    return cls


_MODEL_AT: dict[str, type[BaseModel]] = {
    "semantic": SemanticLinkConfig, "classical": ClassicalLinkConfig, "ber": BERLinkConfig,
    "awgn": AWGNConfig, "rayleigh": RayleighConfig, "rician": RicianConfig, "ofdm": OFDMConfig,
    "analog": AnalogTransmission, "digital": DigitalTransmission, "images": ImagesConfig,
    "snr": SNRConfig, "monte_carlo": MonteCarloConfig, "bandwidth": BandwidthConfig,
}
_UNION_TAGS = frozenset({"semantic", "classical", "ber", "awgn", "rayleigh", "rician", "ofdm",
                         "analog", "digital"})
