"""Limits and shared types of the scenario schema: the ranges a scenario may ask for, the frozen
base model, the annotated field types (image side, SNR, code rate) and :func:`union_members`.

The ranges are the components' own (modulation/ldpc.py, channels/), written out here so that a
scenario is checked without importing torch; tests/simulator/test_scenario.py keeps them equal.
"""
from __future__ import annotations

import math
import re
import typing
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "ImageSide",
    "SnrDb",
    "CodeRate",
    "METRICS",
    "SET_METRICS",
    "CHANNEL_IMPAIRMENTS",
    "parse_rate",
    "union_members",
]


def _multiple_of_32(size: int) -> int:
    if size % 32:
        raise ValueError(f"must be a multiple of 32 (encoder stride); got {size}")
    return size


ImageSide = Annotated[int, Field(ge=64, le=4096), AfterValidator(_multiple_of_32)]
"""An image or crop side in pixels: 64..4096 and a multiple of the encoder's stride (32)."""

QAM_ORDERS = (2, 4, 16, 64, 256)
METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")
SET_METRICS = ("fid", "kid")  # scored per link and SNR over all images, from Inception features
OFDM_MODELS = ("none", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e",
               "cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e")
MAX_SNR_POINTS = 1000
MAX_RX_ANTENNAS = 64
ENCODER_STRIDE = 32  # px: the smallest image the semantic encoder turns into one embedding cell
LINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # names folders of reconstructions
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


def union_members(union: Any) -> dict[str, type[BaseModel]]:
    """The config classes of a discriminated union (``ChannelConfig``, ``LinkConfig``, a
    semantic link's transmission) by their tag (the union's discriminator field, ``type`` or
    ``mode``), in the union's order: the one list that choices and messages derive from.

    :param union: ``Annotated[Union[...], Field(discriminator=...)]``.

    >>> from semlink.scenario import ChannelConfig
    >>> list(union_members(ChannelConfig))
    ['awgn', 'rayleigh', 'rician', 'ofdm']
    """
    members, *metadata = typing.get_args(union)
    (discriminator,) = [m.discriminator for m in metadata if getattr(m, "discriminator", None)]
    return members_by_tag(typing.get_args(members), discriminator)


def members_by_tag(members: tuple[type[BaseModel], ...],
                   discriminator: str) -> dict[str, type[BaseModel]]:
    """``{tag: class}`` of union ``members`` whose ``discriminator`` field is a one-value
    ``Literal`` (as a discriminated union's members are)."""
    return {typing.get_args(cls.model_fields[discriminator].annotation)[0]: cls
            for cls in members}
