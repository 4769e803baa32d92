"""JPEG2000 frames: the codestream capped by the header's length field, a loss that falls only
on padding, checked against the codec's own decode."""
from __future__ import annotations

import struct

import numpy as np
import torch

from semlink.codecs.jpeg2000 import decode
from semlink.links.framing import HEADER_BYTES, ImageFrames

SIZE = 128


def test_a_frame_larger_than_the_length_field_caps_the_codestream_at_65535_bytes():
    """A frame of 200000 bytes (a large ClassicalLink budget can exceed 6 + 65535): uniform noise
    needs far more than 65535 bytes, so the codestream is cut to the 16-bit length field's
    largest value, which its header announces, and decodes whole."""
    noise = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    frames = ImageFrames(image_size=(256, 256), payload_bytes=200_000)
    assert frames.codestream_bytes == 0xFFFF
    bits, streams = frames.encode(noise)
    assert 60_000 < len(streams[0]) <= 0xFFFF
    raw = np.packbits(bits.to(torch.uint8).numpy(), axis=1)[0].tobytes()
    assert struct.unpack(">HHH", raw[:HEADER_BYTES]) == (256, 256, len(streams[0]))
    out = frames.decode(bits, torch.ones(1, 1, dtype=torch.bool), 8 * 200_000)
    assert out.failed.tolist() == [False] and out.bytes_used.tolist() == [len(streams[0])]


def test_a_block_lost_exactly_where_the_codestream_ends_costs_nothing():
    """The first lost block starts at frame byte 6 + len(codestream): only padding is lost, so
    error concealment decodes the whole codestream, not a prefix (concealed stays False)."""
    ramp = torch.linspace(0, 1, SIZE).expand(1, 3, SIZE, SIZE).contiguous()
    frames = ImageFrames(image_size=(SIZE, SIZE), payload_bytes=400,
                            failure_policy="error-concealment")
    bits, streams = frames.encode(ramp)
    end = HEADER_BYTES + len(streams[0])
    assert end < 400
    out = frames.decode(bits, torch.tensor([[True, False]]), 8 * end)
    assert out.failed.tolist() == [False] and out.concealed.tolist() == [False]
    assert out.bytes_used.tolist() == [len(streams[0])] and out.block_errors.tolist() == [1]
    full = decode(streams[0], height=SIZE, width=SIZE, header="implicit").image
    assert torch.equal(out.images[0], full)
