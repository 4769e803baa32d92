"""The classical link with ``codec: jpeg``: frames of whole JPEG files, decoded as Pillow
decodes them; an image whose file cannot fit is lost; concealment of a cut file; the smallest
frame in messages, AMC and the ideal code."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from semlink.channels.awgn import AWGNChannel
from semlink.codecs.jpeg import decode_prefix
from semlink.errors import InputError
from semlink.images import load_images
from semlink.links.amc import Mcs, select_mcs
from semlink.links.capacity import CapacityLink
from semlink.links.classical import HEADER_BYTES, ClassicalLink, plan_budget
from tests.corrupt_blocks import CorruptBlocks

SIZE = 128
N = 4000  # 16-QAM rate 1/2: 8 blocks of n = 2000, k = 1000 -> 976 payload bits each, 976 B

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_images("sample", SIZE, count=2)[0]  # [2, 3, 128, 128]


def _pillow(stream: bytes) -> torch.Tensor:
    """The file decoded by Pillow directly: [3, H, W] float32."""
    pixels = np.asarray(Image.open(io.BytesIO(stream)).convert("RGB"))
    return torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32) / 255)


def _flat_file_bytes(size: int) -> int:
    """The smallest JPEG file, worked out here: a flat image at quality 1."""
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(buf, format="JPEG", quality=1,
                                                                  optimize=True)
    return len(buf.getvalue())


def test_noiseless_frames_carry_whole_jpeg_files(images):
    link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), codec="jpeg")
    assert link.budget.payload_bytes == 976  # 8 x 976 bits
    bits, streams = link.encode_frames(images)
    frames = np.packbits(bits.to(torch.uint8).numpy(), axis=1)
    for frame, stream in zip(frames, streams):
        assert stream[:2] == b"\xff\xd8" and stream[-2:] == b"\xff\xd9"  # SOI ... EOI
        assert int.from_bytes(frame[4:6].tobytes(), "big") == len(stream) <= 976 - HEADER_BYTES
        assert frame[HEADER_BYTES:HEADER_BYTES + len(stream)].tobytes() == stream
    out = link.send(images, AWGNChannel(), float("inf"))
    assert not out.failed.any() and out.bytes_used.tolist() == [len(s) for s in streams]
    for row, stream in enumerate(streams):
        assert torch.equal(out.images[row], _pillow(stream))


def test_an_image_whose_smallest_file_does_not_fit_is_lost(images):
    """A frame above the flat image's file but below a photo's quality-1 file: nothing is sent
    for that photo (length 0) and it is lost, under every policy."""
    q1 = []
    for image in images:
        buf = io.BytesIO()
        pixels = np.rint(image.numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
        Image.fromarray(pixels).save(buf, format="JPEG", quality=1, optimize=True)
        q1.append(len(buf.getvalue()))
    uses = 1250  # 64-QAM 1/2: 4 blocks of k = 936 -> 456 bytes
    budget = plan_budget(uses, modulation=64, code_rate=0.5)
    assert HEADER_BYTES + _flat_file_bytes(SIZE) <= budget.payload_bytes
    assert budget.codestream_bytes < min(q1)
    for policy in ("paper", "error-concealment", "mean-image"):
        link = ClassicalLink(channel_uses=uses, image_size=(SIZE, SIZE), modulation=64,
                             codec="jpeg", failure_policy=policy)
        _, streams = link.encode_frames(images)
        assert streams == [b"", b""]
        out = link.send(images, AWGNChannel(), float("inf"))
        assert out.failed.tolist() == [True, True] and torch.all(out.images == 0.5)
        assert out.block_errors.tolist() == [0, 0]


def test_concealment_decodes_the_file_before_the_first_lost_block(images):
    link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), codec="jpeg",
                         failure_policy="error-concealment")
    _, streams = link.encode_frames(images[:1])
    out = link.send(images[:1], CorruptBlocks({0: [3]}, link.budget.plan.n // 4), 0.0)
    # Block 3 starts at payload bit 3 x 976 = frame byte 366, file byte 360.
    expected = decode_prefix(streams[0], 366 - HEADER_BYTES, height=SIZE, width=SIZE)
    assert len(streams[0]) > 360 and not expected.failed
    assert out.failed.tolist() == [False] and out.concealed.tolist() == [True]
    assert int(out.bytes_used[0]) == expected.num_bytes_used
    assert torch.equal(out.images[0], expected.image)
    paper = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), codec="jpeg")
    lost = paper.send(images[:1], CorruptBlocks({0: [3]}, link.budget.plan.n // 4), 0.0)
    assert lost.failed.tolist() == [True]


def test_a_frame_too_small_for_any_jpeg_file_is_refused_with_the_minimum():
    minimum = HEADER_BYTES + _flat_file_bytes(SIZE)
    with pytest.raises(InputError, match=rf"bandwidth: 1152 channel uses at 16-QAM rate 0\.5 "
                                         rf"carry 279 bytes per image; a 128x128 \(width x "
                                         rf"height\) JPEG frame needs at least {minimum} bytes "
                                         rf"\(6 header \+ {minimum - 6} file, a flat image at "
                                         rf"quality 1\)"):
        ClassicalLink(channel_uses=1152, image_size=(SIZE, SIZE), codec="jpeg")


def test_amc_leaves_out_the_frames_no_jpeg_file_fits():
    """At 800 channel uses only 64-QAM r=3/4 (3 blocks of k = 1197: 439 B) holds the smallest
    128 px JPEG frame; JPEG2000's is held by all six entries."""
    minimum = HEADER_BYTES + _flat_file_bytes(SIZE)
    fits = [m for m in (Mcs(4, 0.5), Mcs(4, 0.75), Mcs(16, 0.5), Mcs(16, 0.75), Mcs(64, 0.5),
                        Mcs(64, 0.75))
            if plan_budget(800, modulation=m.modulation, code_rate=m.code_rate).payload_bytes
            >= minimum]
    assert fits == [Mcs(64, 0.75)]
    choice = select_mcs(800, (SIZE, SIZE), 30.0, codec="jpeg", max_blocks=40)
    assert choice.mcs == Mcs(64, 0.75) and len(choice.evaluated) == 1
    with pytest.raises(InputError, match=r"bandwidth: 300 channel uses carry no frame of at least "
                                         rf"{minimum} bytes \(a 128x128 \(width x height\) JPEG "
                                         r"frame\)"):
        select_mcs(300, (SIZE, SIZE), 30.0, codec="jpeg")


def test_the_ideal_code_carries_jpeg_frames(images):
    # 700 uses carry 700 log2(1 + 10^4) = 9302 bits at 40 dB, 700 bits at 0 dB: 8000 needed.
    link = CapacityLink(channel_uses=700, image_size=(SIZE, SIZE), payload_bytes=1000,
                        codec="jpeg")
    _, streams = link.encode_frames(images)
    out = link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(0)), 40.0)
    assert not out.failed.any()
    for row, stream in enumerate(streams):
        assert torch.equal(out.images[row], _pillow(stream))
    outage = link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(0)), 0.0)
    assert outage.failed.all()
