"""JPEG2000 frames: the codestream capped by the header's length field, a loss that falls only
on padding, checked against the codec's own decode; a batch coded on several threads gives the
same bytes and images as on one."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from semlink.codecs.jpeg2000 import decode
from semlink.links.framing import CODEC_THREADS_ENV, HEADER_BYTES, ImageFrames, codec_threads

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


@pytest.mark.parametrize("codec,policy", [("jpeg2000", "error-concealment"), ("jpeg", "paper"),
                                          ("jpeg2000", "paper")])
def test_threads_give_the_same_frames_and_images_as_one_thread(codec, policy):
    """A batch of 5 different images (noise of 5 seeds: 5 different codestreams) coded on 1 and
    on 3 threads: the same codestreams, frame bits in the batch's order, and after losing a
    block in two of the frames the same decoded images, failures and bytes used."""
    images = torch.stack([torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i))
                          for i in range(5)])
    one = ImageFrames(image_size=64, payload_bytes=1200, codec=codec, failure_policy=policy,
                      threads=1)
    three = ImageFrames(image_size=64, payload_bytes=1200, codec=codec, failure_policy=policy,
                        threads=3)
    bits1, streams1 = one.encode(images)
    bits3, streams3 = three.encode(images)
    assert streams1 == streams3 and len(set(streams1)) == 5
    assert torch.equal(bits1, bits3)
    ok = torch.ones(5, 4, dtype=torch.bool)
    ok[1, 2] = ok[3, 1] = False
    out1, out3 = one.decode(bits1, ok, 2400), three.decode(bits3, ok, 2400)
    assert torch.equal(out1.images, out3.images) and torch.equal(out1.failed, out3.failed)
    assert torch.equal(out1.bytes_used, out3.bytes_used)
    assert torch.equal(out1.concealed, out3.concealed)
    assert out1.failed.tolist()[0] is False  # an intact frame decodes


def test_codec_threads_default_environment_and_checks(monkeypatch):
    import os

    monkeypatch.delenv(CODEC_THREADS_ENV, raising=False)
    assert codec_threads() == min(4, os.cpu_count() or 1)
    assert ImageFrames(image_size=64, payload_bytes=100).threads == codec_threads()
    monkeypatch.setenv(CODEC_THREADS_ENV, "7")
    assert codec_threads() == 7 and codec_threads(2) == 2
    monkeypatch.setenv(CODEC_THREADS_ENV, "0")
    with pytest.raises(ValueError, match="`SEMLINK_CODEC_THREADS` must be an int >= 1; got '0'"):
        codec_threads()
    with pytest.raises(ValueError, match="threads"):
        codec_threads(0)
    with pytest.raises(TypeError, match="threads"):
        codec_threads(True)
