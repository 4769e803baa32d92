"""JPEG for the classical link: the highest-quality JPEG file that fits a byte budget, and
decoding that survives corrupted or truncated files.

Codec: Pillow's libjpeg binding, baseline sequential JFIF, 4:2:0 chroma subsampling (Pillow's
default), Huffman tables optimised per image (``optimize=True``), qualities 1 to 95 on Pillow's
scale (above 95 Pillow disables parts of the compression and files grow for little gain). This is
the DeepJSCC paper's "JPEG + LDPC" source codec: the whole file is sent, headers included. Unlike
JPEG2000's (:mod:`semlink.codecs.jpeg2000`), a JPEG header cannot be left implicit: its
quantisation tables change with the quality and its Huffman tables with the image.

Fitting: :func:`encode_to_budget` returns the file of the largest quality whose size is at most
the budget. File size grows with quality almost everywhere but not strictly (at 128 and 256 px
some photos give a file one or two bytes smaller at quality 2 than at 1), so the search encodes
from quality 95 down and keeps the first that fits: exact, at a cost of one encode per quality
above the answer (about 1 ms each at 256 px, 4 ms at 512 px). When no quality fits (a budget
below the image's quality-1 file) nothing is sent and the image is lost (:class:`JpegEncoded`
says so with ``quality=None``).

Decoding never raises for bad data: the file must declare the expected size and three
components before Pillow decodes it (no allocation from a corrupted header), and whatever
Pillow refuses is a failed decode. :func:`decode_prefix` conceals: the entropy-coded data up to
the first corrupted byte, closed by an EOI marker, decodes to the image's top (whole rows of
8 x 8 or 16 x 16 blocks in scan order) with the rest mid grey (libjpeg fills the missing
blocks with zero coefficients).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from semlink.channels._checks import check_int
from semlink.codecs._pillow import DecodedImage, check_encoded, decode_rgb, to_uint8_hwc

__all__ = ["MAX_QUALITY", "MIN_QUALITY", "JpegEncoded", "JpegDecoded", "encode_to_budget",
           "encode_at_quality", "decode", "decode_prefix", "minimum_file_bytes"]

#: Qualities the search tries, Pillow's scale.
MIN_QUALITY, MAX_QUALITY = 1, 95
_SOI, _EOI, _SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
# Exceptions Pillow raises for a file it cannot decode (see the tests' fuzzing).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
                  Image.DecompressionBombError)


@dataclass(frozen=True)
class JpegEncoded:
    """A JPEG file that fits a byte budget.

    :param data: The JFIF file (SOI ... EOI), ``len(data) <= budget_bytes``; empty when no
        quality fits.
    :param num_bytes: ``len(data)``.
    :param budget_bytes: The budget it was fitted to.
    :param quality: The quality it was encoded at, in [1, 95]; None when none fits.
    :param num_encodes: Encodes the search ran.
    """

    data: bytes
    num_bytes: int
    budget_bytes: int
    quality: int | None
    num_encodes: int


#: Outcome of a decode (the codecs share :class:`~semlink.codecs._pillow.DecodedImage`).
JpegDecoded = DecodedImage


def encode_at_quality(image: torch.Tensor, quality: int) -> bytes:
    """The JPEG file of ``image`` at ``quality`` (the settings of the module docstring).

    :param quality: int in [1, 95].
    :input image: [3, height, width], float in [0, 1], any device; quantised to 8 bits per
        channel by rounding ``255 * image``.
    :output data: bytes; deterministic.
    :raises TypeError: If ``image`` is not a floating-point tensor or ``quality`` not an int.
    :raises ValueError: If ``image`` is not [3, height, width] with values in [0, 1], or
        ``quality`` is out of range.
    """
    check_int(quality, name="quality", low=MIN_QUALITY, high=MAX_QUALITY)
    return _encode(to_uint8_hwc(image), quality)


def encode_to_budget(image: torch.Tensor, budget_bytes: int) -> JpegEncoded:
    """Encode one image into the JPEG file of the largest quality whose size is at most
    ``budget_bytes`` (qualities tried from 95 down; see the module docstring).

    :param budget_bytes: int >= 0; bytes.
    :input image: [3, height, width], float in [0, 1], any device.
    :output encoded: :class:`JpegEncoded`; ``quality`` None and ``data`` empty when even
        quality 1 does not fit. Deterministic.
    :raises TypeError: If ``image`` is not a floating-point tensor or ``budget_bytes`` not an
        int.
    :raises ValueError: If ``image`` is not [3, height, width] with values in [0, 1], or
        ``budget_bytes`` < 0.
    """
    pixels = to_uint8_hwc(image)
    check_int(budget_bytes, name="budget_bytes", low=0)
    encodes = 0
    for quality in range(MAX_QUALITY, MIN_QUALITY - 1, -1):
        data = _encode(pixels, quality)
        encodes += 1
        if len(data) <= budget_bytes:
            return JpegEncoded(data, len(data), budget_bytes, quality, encodes)
    return JpegEncoded(b"", 0, budget_bytes, None, encodes)


def minimum_file_bytes(height: int, width: int) -> int:
    """Size of the smallest JPEG file of a ``height`` x ``width`` image: a flat image at quality
    1 (every block only a zero DC difference and an end-of-block, one-symbol Huffman tables).
    A frame smaller than this (plus its header) can carry no image at all.

    :param height: int in [1, 65535]; pixels.
    :param width: int in [1, 65535]; pixels.
    :output num_bytes: int.
    :raises TypeError: If a size is not an int.
    :raises ValueError: If a size is out of range.
    """
    check_int(height, name="height", low=1, high=65535)
    check_int(width, name="width", low=1, high=65535)
    return len(_encode(np.full((height, width, 3), 128, dtype=np.uint8), MIN_QUALITY))


def decode(data: bytes, *, height: int, width: int) -> JpegDecoded:
    """Decode a JPEG file that may be corrupted: never raises for bad data.

    :param height: int >= 1; expected image height in pixels.
    :param width: int >= 1; expected image width in pixels.
    :input data: bytes or bytearray, any content.
    :output decoded: :class:`JpegDecoded`; ``failed`` unless an RGB image of exactly
        ``height`` x ``width`` came out (bit errors in the entropy-coded data mostly decode
        into a damaged image; a damaged header or a truncated file fails), then
        ``num_bytes_used = len(data)``.
    :raises TypeError: If ``data`` is not bytes-like or a size not an int.
    :raises ValueError: If ``height`` or ``width`` < 1.
    """
    data = check_encoded(data, height, width, name="data")
    return _decode_checked(data, height, width, len(data))


def decode_prefix(data: bytes, corrupt_offset: int, *, height: int, width: int) -> JpegDecoded:
    """Conceal errors: decode the file's bytes before ``corrupt_offset``, closed by an EOI.

    :param corrupt_offset: int >= 0; index of the first corrupted byte (``len(data)`` or more:
        nothing corrupted, the whole file is decoded).
    :param height: int >= 1; expected image height in pixels.
    :param width: int >= 1; expected image width in pixels.
    :input data: bytes or bytearray, as received (bytes from ``corrupt_offset`` on are
        ignored).
    :output decoded: :class:`JpegDecoded`; ``failed`` if the corruption starts inside the
        headers (before the entropy-coded data of the scan) or the prefix does not decode;
        ``num_bytes_used`` = the kept prefix's length.
    :raises TypeError: If ``data`` is not bytes-like or an argument not an int.
    :raises ValueError: If ``height`` or ``width`` < 1 or ``corrupt_offset`` < 0.
    """
    data = check_encoded(data, height, width, name="data")
    check_int(corrupt_offset, name="corrupt_offset", low=0)
    if corrupt_offset >= len(data):
        return decode(data, height=height, width=width)
    start = _scan_data_start(data[:corrupt_offset])
    if start is None:
        return _failed(f"the corruption at byte {corrupt_offset} leaves no intact JPEG "
                       "headers (up to the start of scan)")
    prefix = data[:corrupt_offset]
    if prefix.endswith(b"\xff"):  # half a marker or a stuffed byte: drop it
        prefix = prefix[:-1]
    return _decode_checked(prefix + _EOI, height, width, len(prefix))


# ------------------------------------------------------------------------------ internals
def _encode(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def _scan_data_start(data: bytes) -> int | None:
    """Offset of the first entropy-coded byte (after the SOS segment), or None if ``data``
    does not hold SOI, well-formed marker segments and a whole SOS segment."""
    if not data.startswith(_SOI):
        return None
    pos = len(_SOI)
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos:pos + 2]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")  # includes its own 2 bytes
        if length < 2:
            return None
        end = pos + 2 + length
        if marker == _SOS:
            return end if end < len(data) else None
        pos = end
    return None


def _frame_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) of the first SOF segment, or None if there is none before
    the scan (read without Pillow, so a corrupted size allocates nothing)."""
    pos = len(_SOI)
    while data.startswith(_SOI) and pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2) and pos + 10 <= len(data):
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return height, width, data[pos + 9]
        if marker == 0xDA or length < 2:
            return None
        pos += 2 + length
    return None


def _decode_checked(data: bytes, height: int, width: int, num_bytes: int) -> JpegDecoded:
    frame = _frame_header(data)
    if frame != (height, width, 3):
        return _failed(f"no JPEG frame header of a {height}x{width} RGB image (read {frame})")
    image, reason = decode_rgb(data, image_format="JPEG", height=height, width=width,
                               errors=_DECODE_ERRORS, decoder="Pillow")
    return _failed(reason) if image is None else JpegDecoded(image, False, "", num_bytes)


def _failed(reason: str) -> JpegDecoded:
    return JpegDecoded(None, True, reason, 0)
