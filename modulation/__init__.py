"""Bits and reals to channel symbols and back: QAM mapping and LLR demapping, 5G LDPC with CRC,
analog mapping of a real embedding, and uniform quantisation.

- :mod:`semlink.modulation.qam`: Gray BPSK / QPSK / 16- / 64- / 256-QAM (Es = 1), app/maxlog LLRs.
- :mod:`semlink.modulation.ldpc`: code block plan, CRC24 per block + 5G NR LDPC encoder / BP decoder.
- :mod:`semlink.modulation.analog`: real tensor rows to unit-power complex symbols (+ per-row scale).
- :mod:`semlink.modulation.combining`: maximum-ratio combining of repeated transmissions (Chase).
- :mod:`semlink.modulation.quantize`: uniform b-bit quantiser to bits (MSB first) and back.
"""
from semlink.modulation.analog import AnalogDemapper, AnalogMapper, analog_channel_uses
from semlink.modulation.combining import chase_combine
from semlink.modulation.ldpc import (
    CN_UPDATES,
    CRC_LENGTH,
    CRC_TYPES,
    MAX_BLOCK_INFO_BITS,
    MAX_CODE_RATE,
    MIN_CODE_RATE,
    REDUNDANCY_VERSIONS,
    CodeBlockDecoder,
    CodeBlockEncoder,
    CodeBlockPlan,
    information_bits_per_block,
    plan_code_blocks,
)
from semlink.modulation.qam import (
    BITS_PER_SYMBOL,
    MODULATION_ORDERS,
    QAMDemapper,
    QAMMapper,
    bits_per_symbol_for_order,
)
from semlink.modulation.quantize import MAX_QUANT_BITS, UniformDequantizer, UniformQuantizer

__all__ = [
    # qam
    "BITS_PER_SYMBOL",
    "MODULATION_ORDERS",
    "bits_per_symbol_for_order",
    "QAMMapper",
    "QAMDemapper",
    # ldpc
    "CRC_TYPES",
    "CRC_LENGTH",
    "MIN_CODE_RATE",
    "MAX_BLOCK_INFO_BITS",
    "MAX_CODE_RATE",
    "CN_UPDATES",
    "REDUNDANCY_VERSIONS",
    "CodeBlockPlan",
    "information_bits_per_block",
    "plan_code_blocks",
    "CodeBlockEncoder",
    "CodeBlockDecoder",
    # analog
    "analog_channel_uses",
    "AnalogMapper",
    "AnalogDemapper",
    # combining
    "chase_combine",
    # quantize
    "MAX_QUANT_BITS",
    "UniformQuantizer",
    "UniformDequantizer",
]
