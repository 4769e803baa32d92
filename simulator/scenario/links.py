"""Link section of the scenario schema: one config class per link ``type`` (semantic, classical,
BER) and the parts they share (LDPC decoder, HARQ, a semantic link's transmission).

``LinkConfig``, the discriminated union of the link classes, is where a link type is registered
(and ``Transmission`` where a semantic link's transmission ``mode`` is): ``LINK_TYPES`` and the
error messages' choices derive from it.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from semlink.scenario.limits import (CODE_BLOCK_INFO_BITS, MAX_HARQ_TRANSMISSIONS, QAM_ORDERS,
                                     CodeRate, _Frozen, parse_rate, union_members)

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
    steps: int | None = Field(None, ge=1, le=1000, description="Sampling steps; None = preset's.")
    guidance: float | None = Field(None, ge=1.0, description="CFG scale; None = preset's.")
    resize_factor: float | None = Field(None, gt=0, le=1.0)
    transmission: Transmission = AnalogTransmission(mode="analog")


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


#: The link types a scenario may name: register a new one here, by its config class.
LinkConfig = Annotated[Union[SemanticLinkConfig, ClassicalLinkConfig, BERLinkConfig],
                       Field(discriminator="type")]
#: Link ``type`` tags a scenario accepts, in the union's order.
LINK_TYPES = tuple(union_members(LinkConfig))
