"""Source codecs for the classical link: JPEG2000 fitted to a byte budget, robust decoding
(re-exported here); JPEG (:mod:`semlink.codecs.jpeg`, imported by its module name)."""
from semlink.codecs.jpeg2000 import (
    HEADER_MODES,
    Jpeg2000Decoded,
    Jpeg2000Encoded,
    decode,
    decode_prefix,
    encode_to_budget,
    implicit_header_bytes,
    minimum_codestream_bytes,
    restore_header,
    strip_header,
)

__all__ = [
    "HEADER_MODES",
    "Jpeg2000Encoded",
    "Jpeg2000Decoded",
    "encode_to_budget",
    "decode",
    "decode_prefix",
    "minimum_codestream_bytes",
    "implicit_header_bytes",
    "strip_header",
    "restore_header",
]
