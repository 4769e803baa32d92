"""Link section of the scenario schema: one config class per link ``type`` (semantic, classical,
BER, Img2Img-SC, DeepJSCC, a user's Python class) and the parts they share (LDPC decoder, HARQ, a semantic link's
transmission).

``LINK_CONFIGS`` is where a link type is registered, by its config class (the link protocol of
:mod:`semlink.links.protocol`: ``type``, ``kind``, ``build(context)``); ``LinkConfig``, their
discriminated union, ``LINK_TYPES`` and the error messages' choices derive from it (and
``Transmission`` is where a semantic link's transmission ``mode`` is registered). A link type
that lives in its own module (the torch-free schema of its link: ``link_img2img.py``,
``link_deepjscc.py``, ``link_python.py``) is imported here to be registered.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from semlink.scenario.limits import (CHANNEL_IMPAIRMENTS, CLIP_RANGE, CODE_BLOCK_INFO_BITS,
                                     ENCODER_STRIDE, MAX_CHANNEL_USES, MAX_CODEWORD_LENGTH,
                                     MAX_GUIDANCE, MAX_HARQ_TRANSMISSIONS, MAX_SAMPLING_STEPS,
                                     QAM_ORDERS, CodeRate, _Frozen, parse_rate, union_members)
from semlink.scenario.link_deepjscc import DeepJSCCLinkConfig
from semlink.scenario.link_img2img import Img2ImgSCLinkConfig
from semlink.scenario.link_python import PythonLinkConfig

if TYPE_CHECKING:
    from semlink.links.protocol import Dimensionality, LinkContext

__all__ = [
    "LDPCDecoderConfig",
    "LDPC_CHECK_NODES",
    "HarqConfig",
    "AnalogTransmission",
    "DigitalTransmission",
    "Transmission",
    "SemanticLinkConfig",
    "BandwidthConfig",
    "ClassicalLinkConfig",
    "BERLinkConfig",
    "PythonLinkConfig",
    "LINK_CONFIGS",
    "LinkConfig",
    "LINK_TYPES",
]

#: Check-node rules of the LDPC decoder (semlink.modulation.ldpc.CN_UPDATES; the schema loads
#: without torch, so they are written here too, and tests/simulator/test_scenario.py compares them).
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
    clip: list[Annotated[float, Field(ge=CLIP_RANGE[0], le=CLIP_RANGE[1])]] = Field(
        default_factory=lambda: [-4.0, 4.0], description="[low, high].")
    modulation: int = 16
    code_rate: CodeRate = 0.5
    codeword_length: int = Field(2048, ge=64, le=MAX_CODEWORD_LENGTH)
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


#: A semantic link's transmission modes: register a new one here, by its config class.
Transmission = Annotated[Union[AnalogTransmission, DigitalTransmission],
                         Field(discriminator="mode")]


class SemanticLinkConfig(_Frozen):
    """Stable Cascade semantic link: encoder -> channel -> stage B + stage A.

    ``steps`` and ``guidance`` default to the preset's (10 and 1.1 for the Stable Cascade
    presets, as in the paper; 1 and 1.0 for ``small``, see docs/training.md).
    """

    type: Literal["semantic"]
    preset: Literal["small", "stable-cascade-lite", "stable-cascade"] = "small"
    weights: str | None = Field(None, description="Weights directory (real presets).")
    steps: int | None = Field(None, ge=1, le=MAX_SAMPLING_STEPS,
                              description="Sampling steps; None = preset's.")
    guidance: float | None = Field(None, ge=1.0, le=MAX_GUIDANCE,
                                   description="CFG scale; None = preset's.")
    resize_factor: float | None = Field(None, gt=0, le=1.0)
    transmission: Transmission = AnalogTransmission(mode="analog")
    # None (= false) rather than a default value: the hashes of scenarios without it stay.
    compile: bool | None = Field(None, description="Run stage B through torch.compile: faster "
                                 "after a compilation per batch shape; images differ from "
                                 "eager's by float rounding; None = false.")

    kind: ClassVar[str] = "image"
    scoring: ClassVar[str] = "concealed"

    def build(self, context: LinkContext):
        """The link (:class:`semlink.links.semantic.SemanticLink`), its models loaded."""
        from semlink.links.semantic import SemanticLink

        return SemanticLink.from_config(self, context)

    def dimensionality(self, context: LinkContext) -> Dimensionality:
        """Z's shape and channel uses without the models
        (:func:`semlink.links.semantic.semantic_dimensionality`)."""
        from semlink.links.semantic import semantic_dimensionality

        return semantic_dimensionality(self, context.image_shape)

    def channel_uses(self, context: LinkContext) -> int:
        """Complex channel uses per image, from :meth:`dimensionality`."""
        return self.dimensionality(context).channel_uses

    def check_scenario(self, scenario: Any, name: str) -> None:
        """Weights for the real presets; an encoder input of at least 32 px."""
        if self.preset != "small" and self.weights is None:
            raise ValueError(f"links.{name}.weights: preset {self.preset!r} needs the folder of "
                             "its weights (semlink weights DIR --download fetches them)")
        if self.resize_factor is not None:
            side = min(scenario.images.shape) * self.resize_factor
            if round(side) < ENCODER_STRIDE:
                raise ValueError(f"links.{name}.resize_factor: {scenario.images.side_field} x "
                                 f"resize_factor must be >= {ENCODER_STRIDE} px (the encoder's "
                                 f"stride); got {side:g}")

    def referenced_paths(self) -> dict[str, str]:
        """The weights folder, if given."""
        return {} if self.weights is None else {"weights": self.weights}

    def trained_image_size(self) -> int:
        """Side of the square images the preset's models were trained on, px
        (:attr:`semlink.models.presets.Preset.native_image_size`: 256 for ``small``)."""
        from semlink.models.presets import get_preset

        return get_preset(self.preset).native_image_size

    def scenario_warnings(self, scenario: Any, name: str) -> list[str]:
        """A line when the scenario's images are not the size the preset was trained on: the
        link runs (its models are convolutional), but not as it was made to. None for
        presets trained at many sizes (:attr:`~semlink.models.presets.Preset.single_size`)."""
        from semlink.models.presets import get_preset

        side = self.trained_image_size()
        if (scenario.images is None or scenario.images.shape == (side, side)
                or not get_preset(self.preset).single_size):
            return []
        height, width = scenario.images.shape
        return [f"links.{name}: preset {self.preset!r} was trained on {side}x{side} px images; "
                f"this scenario runs it at {width}x{height} px, a size it was not made for "
                "(its results there may fall short of its own)"]


class BandwidthConfig(_Frozen):
    """Channel uses per image: match another image link (one built once, not per SNR point),
    give a number, or a ratio N / (3 H W)."""

    match: str | None = None
    channel_uses: int | None = Field(None, ge=1, le=MAX_CHANNEL_USES)
    ratio: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> "BandwidthConfig":
        given = [k for k in ("match", "channel_uses", "ratio") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of match, channel_uses, ratio; got {given or 'none'}")
        return self

    def resolve(self, context: LinkContext) -> int:
        """Complex channel uses per image: the matched link's, the number, or
        ``max(1, round(ratio * 3 H W))``."""
        if self.match is not None:
            return context.channel_uses_of(self.match)
        if self.channel_uses is not None:
            return self.channel_uses
        height, width = context.image_shape
        return max(1, round(self.ratio * 3 * height * width))


class ClassicalLinkConfig(_Frozen):
    """JPEG2000 (or JPEG) + CRC + 5G LDPC + QAM, with a failure policy for lost code blocks; or
    the same frames over an ideal code at the channel's capacity (``channel_code: capacity``)."""

    type: Literal["classical"]
    # "jpeg2000" rather than None: the hashes of the files before JPEG hold codec: jpeg2000.
    codec: Literal["jpeg2000", "jpeg"] = Field(
        "jpeg2000", description="Source codec: jpeg2000 (OpenJPEG, fitted to the frame); jpeg "
        "(libjpeg, the largest quality 1..95 whose whole file fits).")
    # None (= ldpc) rather than a default value: see scenario_hash.
    channel_code: Literal["ldpc", "capacity"] | None = Field(
        None, description="ldpc (default): CRC + 5G LDPC + QAM; capacity: an ideal code at the "
        "AWGN capacity of each SNR point, or with adaptive: true at the largest rate whose "
        "outage probability over the channel is <= bler_target.")
    modulation: int = 16
    code_rate: CodeRate = 0.5
    codeword_length: int = Field(2048, ge=64, le=MAX_CODEWORD_LENGTH)
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

    kind: ClassVar[str] = "image"

    @property
    def per_snr(self) -> bool:
        """The frame depends on the SNR point: AMC, or the ideal code."""
        return self.adaptive or self.channel_code == "capacity"

    @property
    def scoring(self) -> str:
        """``paper`` under the paper's failure policy (a lost image gets the paper's constants,
        FID 500 for its share), ``concealed`` otherwise (the image the receiver shows)."""
        return "paper" if self.failure_policy == "paper" else "concealed"

    @property
    def waveform(self) -> bool:
        """False over the ideal code: it sends placeholders, not a signal."""
        return self.channel_code != "capacity"

    def build(self, context: LinkContext):
        """The link of the MCS (or at ``context.snr_db``, of the MCS AMC chose, or over the
        ideal code): :class:`semlink.links.classical.ClassicalLink` or
        :class:`semlink.links.capacity.CapacityLink`."""
        if self.channel_code == "capacity":
            from semlink.links.capacity import CapacityLink

            return CapacityLink.from_config(self, context)
        from semlink.links.classical import ClassicalLink

        return ClassicalLink.from_config(self, context)

    def channel_uses(self, context: LinkContext) -> int:
        """Complex channel uses per image: the ``bandwidth`` section resolved."""
        return self.bandwidth.resolve(context)

    def dimensionality(self, context: LinkContext) -> Dimensionality | None:
        """The frame in bytes without building the link; None for a per-SNR link (its frame
        is the one built at an SNR point: AMC's needs its BLER estimates)."""
        if self.per_snr:
            return None
        from semlink.links.classical import frame_dimensionality, plan_budget
        from semlink.links.framing import codec_label

        budget = plan_budget(self.channel_uses(context), modulation=self.modulation,
                             code_rate=self.code_rate, codeword_length=self.codeword_length)
        return frame_dimensionality(
            budget.payload_bytes, context.image_shape, budget.channel_uses,
            f"frame bytes ({codec_label(self.codec)}), {self.modulation}-QAM LDPC "
            f"r={self.code_rate:.3g}")

    def check_scenario(self, scenario: Any, name: str) -> None:
        """The ideal code counts only the channel's noise: no impairments."""
        impairments = [f"channel.{field}" for field in CHANNEL_IMPAIRMENTS
                       if getattr(scenario.channel, field, None) is not None]
        if impairments and self.channel_code == "capacity":
            what = "distortion" if impairments[0].endswith("amplifier") else "phase"
            raise ValueError(f"links.{name}.channel_code: capacity counts only the "
                             f"channel's noise, not {impairments[0]}'s {what}; use "
                             f"ldpc, or no {impairments[0].split('.')[1]}")

    @field_validator("modulation")
    @classmethod
    def _qam(cls, m: int) -> int:
        return _check_qam(m)

    @model_validator(mode="after")
    def _ideal_code_has_no_mcs(self) -> "ClassicalLinkConfig":
        if self.codec == "jpeg" and "jpeg2000_header" in self.model_fields_set:
            raise ValueError("jpeg2000_header: applies to codec jpeg2000 (a JPEG file is sent "
                             "whole, its headers included)")
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
    codeword_length: int = Field(2048, ge=64, le=MAX_CODEWORD_LENGTH)
    demapping: Literal["app", "maxlog"] = "app"
    # None (= one transmission) rather than a default value: see scenario_hash.
    harq: HarqConfig | None = Field(None, description="Retransmissions of each code block whose "
                                    "CRC fails (coded links only); None = one transmission.")
    # None (= 20 boxplus iterations) rather than a default value: see scenario_hash.
    decoder: LDPCDecoderConfig | None = Field(None, description="LDPC decoder (coded links "
                                              "only); None = 20 iterations of boxplus.")

    _rate = field_validator("code_rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    kind: ClassVar[str] = "bits"

    def build(self, context: LinkContext):
        """The link (:class:`semlink.links.ber.BERLink`), its code blocks planned."""
        from semlink.links.ber import BERLink

        return BERLink(self, context)

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


#: The link types a scenario may name: register a new one here, by its config class (its
#: module imported above).
LINK_CONFIGS = (SemanticLinkConfig, ClassicalLinkConfig, BERLinkConfig, Img2ImgSCLinkConfig,
                DeepJSCCLinkConfig, PythonLinkConfig)
LinkConfig = Annotated[Union[LINK_CONFIGS], Field(discriminator="type")]
#: Link ``type`` tags a scenario accepts, in the union's order.
LINK_TYPES = tuple(union_members(LinkConfig))
