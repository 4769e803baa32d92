"""Source codecs for the classical link: JPEG2000 fitted to a byte budget, robust decoding."""
from simulator.codecs.jpeg2000 import (
    Jpeg2000Decoded,
    Jpeg2000Encoded,
    decode,
    decode_prefix,
    encode_to_budget,
    minimum_codestream_bytes,
)

__all__ = [
    "Jpeg2000Encoded",
    "Jpeg2000Decoded",
    "encode_to_budget",
    "decode",
    "decode_prefix",
    "minimum_codestream_bytes",
]
