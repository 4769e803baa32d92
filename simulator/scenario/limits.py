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
    "FiniteSnrDb",
    "Seed",
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

# Practical bounds of a file and of its numbers (docs/scenarios.md, "Limits"): a file beyond
# them is a mistake or an attack, refused in one line before it costs minutes or gigabytes.
MAX_YAML_BYTES = 1 << 20  # 1 MiB: the shipped scenarios and recipes are under 2 KiB
MAX_YAML_VALUES = 20_000  # lists, mappings and scalars of one file, aliases expanded
MAX_YAML_DEPTH = 64  # nested lists and mappings (a scenario needs about 6)
SNR_RANGE_DB = (-50.0, 100.0)  # an SNR point (or .inf), a range's ends, a training SNR
K_FACTOR_RANGE_DB = (-50.0, 50.0)  # Rician K: -50 dB is Rayleigh, 50 dB AWGN, to 1e-5
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64 bits; seeds are derived to 63
MAX_BATCH_SIZE = 1024  # images per task or training micro-batch
MAX_REPEATS = 1000  # transmissions of each image at each SNR
MAX_IMAGE_COUNT = 10_000_000  # images of a set (ImageNet's training set is 1.3 million)
MAX_LINKS = 100  # links of one scenario
MAX_GUIDANCE = 100.0  # classifier-free guidance scale (the paper uses 1.1)
MAX_SAMPLING_STEPS = 1000  # stage B sampling steps
MAX_COHERENCE_SYMBOLS = 10**9  # beyond any image's symbols: quasi-static fading
MAX_CHANNEL_USES = 3 * 4096 * 4096  # one per real value of the largest image (ratio 1)
MAX_CODEWORD_LENGTH = 8448 * 5  # coded bits of the longest block at the lowest rate, 1/5
MAX_MONTE_CARLO_BITS = 10**13  # bits of one BER point (days at 10^8 bits per second)
MAX_MONTE_CARLO_ERRORS = 10**9  # errors that end a BER point
MAX_BATCH_BITS = 10**8  # bits per BER batch (a few GB of LLRs)
MAX_TRAIN_STEPS = 10**8  # optimiser steps of a phase, warm-up, cadences
MAX_GRAD_ACCUM = 1024  # micro-batches per optimiser step
MAX_LEARNING_RATE = 1.0
MAX_WEIGHT_DECAY = 1.0
MAX_GRAD_CLIP = 1e6
MAX_PHASES = 100  # phases of a training recipe
CLIP_RANGE = (-1000.0, 1000.0)  # a digital embedding's quantiser range (default [-4, 4])


class _Frozen(BaseModel):
    # No NaN or infinity in any number of a file (an SNR point may be .inf: SnrDb).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _snr_db(value: float) -> float:
    """An SNR in dB: a number in :data:`SNR_RANGE_DB`, or ``.inf`` for a noiseless channel;
    never NaN or -inf."""
    if math.isnan(value) or value == -math.inf:
        raise ValueError(f"must be a number of dB (.inf for a noiseless channel); got {value}")
    low, high = SNR_RANGE_DB
    if value != math.inf and not low <= value <= high:
        raise ValueError(f"must be in [{low:g}, {high:g}] dB (or .inf for a noiseless channel); "
                         f"got {value:g}")
    return value


SnrDb = Annotated[float, Field(allow_inf_nan=True), AfterValidator(_snr_db)]
"""An SNR point in dB: -50..100, or ``.inf`` (no noise)."""
FiniteSnrDb = Annotated[float, Field(ge=SNR_RANGE_DB[0], le=SNR_RANGE_DB[1])]
"""A finite SNR in dB, -50..100: a range's ends, a training SNR."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A random seed: 0..2^63 - 1."""
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
