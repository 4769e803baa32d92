"""Classical link: budget arithmetic by hand, bit-exact frames, failure policies on injected
block losses, errors."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.codecs.jpeg2000 import decode, decode_prefix
from semlink.errors import InputError
from semlink.images import load_images
from semlink.links.classical import HEADER_BYTES, ClassicalLink, plan_budget
from tests.corrupt_blocks import CorruptBlocks

SIZE = 128
N = 1152  # 16-QAM rate 1/2: 3 blocks of n = 1536, k = 768 -> 744 payload bits per block


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_images("sample", SIZE, count=2)[0]  # [2, 3, 128, 128]


def _link(policy: str = "paper", header: str = "implicit", **kwargs) -> ClassicalLink:
    return ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), failure_policy=policy,
                         jpeg2000_header=header, **kwargs)


# ------------------------------------------------------------------------------ plan_budget
# (channel_uses, M, rate) -> (blocks, n, k, payload_bytes, codestream_bytes, coded_symbols),
# worked out by hand: C = N log2 M; blocks = ceil(C / 2048); n = floor(C / blocks) rounded down
# to a multiple of log2 M; k = round(rate n); payload = floor(blocks (k - 24) / 8).
HAND = [
    ((1152, 16, 0.5), (3, 1536, 768, 279, 273, 1152)),  # 3 x 744 = 2232 bit = 279 B exactly
    ((1152, 4, 0.5), (2, 1152, 576, 138, 132, 1152)),  # 2 x 552 = 1104 bit
    ((1152, 4, 1 / 3), (2, 1152, 384, 90, 84, 1152)),  # 2 x 360 = 720 bit
    ((1152, 64, 0.75), (4, 1728, 1296, 636, 630, 1152)),  # 4 x 1272 = 5088 bit
    ((1152, 256, 0.75), (5, 1840, 1380, 847, 841, 1150)),  # 9216 / 5 = 1843.2 -> 1840; 6780 bit
    ((288, 16, 0.5), (1, 1152, 576, 69, 63, 288)),  # the semantic link's 256 px budget
    ((100_000, 256, 0.9), (391, 2040, 1836, 88561, 65535, 99705)),  # 16-bit length field caps
    # C a multiple of 2048: exactly C / 2048 full-length blocks, no extra shorter one
    ((1024, 16, 0.5), (2, 2048, 1024, 250, 244, 1024)),  # 2 x 1000 = 2000 bit
    ((2048, 4, 0.75), (2, 2048, 1536, 378, 372, 2048)),  # 2 x 1512 = 3024 bit
]


@pytest.mark.parametrize(("args", "expected"), HAND)
def test_plan_budget_by_hand(args, expected):
    channel_uses, m, rate = args
    b = plan_budget(channel_uses, modulation=m, code_rate=rate)
    got = (b.plan.num_blocks, b.plan.n, b.plan.k, b.payload_bytes, b.codestream_bytes,
           b.coded_symbols)
    assert got == expected
    assert b.channel_uses == channel_uses and b.bits_per_symbol == m.bit_length() - 1
    assert b.plan.num_payload_bits == 8 * b.payload_bytes
    assert b.coded_symbols <= channel_uses
    assert b.payload_rate == pytest.approx(8 * b.payload_bytes / channel_uses)


def test_plan_budget_rejects_blocks_too_short_for_crc():
    # 16 uses x 2 bit = one block of n = 32, k = 16 <= 24 CRC + 8 bit.
    with pytest.raises(InputError, match=r"bandwidth: 16 channel uses at 4-QAM rate 0\.5 give "
                                         r"code blocks of 16 information bits; need more than 32"):
        plan_budget(16, modulation=4, code_rate=0.5)


def test_plan_budget_bad_arguments():
    with pytest.raises(ValueError, match=r"`code_rate` must be in \[0\.2, 0\.92"):
        plan_budget(N, modulation=16, code_rate=0.95)
    with pytest.raises(TypeError, match=r"`code_rate` must be int or float; got True\."):
        plan_budget(N, modulation=16, code_rate=True)
    with pytest.raises(ValueError, match=r"`modulation_order` must be one of .*; got 8\."):
        plan_budget(N, modulation=8, code_rate=0.5)
    with pytest.raises(ValueError, match=r"`channel_uses` must be in \[1, inf\]; got 0\."):
        plan_budget(0, modulation=16, code_rate=0.5)
    with pytest.raises(ValueError, match=r"`codeword_length` must be in \[4, inf\]; got 2\."):
        plan_budget(N, modulation=16, code_rate=0.5, codeword_length=2)


# ------------------------------------------------------------------------------ the link
@pytest.mark.parametrize("header", ["implicit", "explicit"])
def test_noiseless_link_is_bit_exact(images, header):
    link = _link(header=header)
    sent, streams = link.encode_frames(images)
    assert sent.shape == (2, 8 * 279) and sent.dtype == torch.float32
    x = link.modulate(sent)
    assert x.shape == (2, N) and x.dtype == torch.complex64
    x_hat, no_eff = AWGNChannel()(x, float("inf"))
    received, block_ok = link.demodulate(x_hat, no_eff)
    assert bool(block_ok.all()) and torch.equal(received, sent)
    frames = np.packbits(received.to(torch.uint8).numpy(), axis=1)
    for frame, stream in zip(frames, streams):
        assert len(stream) <= link.budget.codestream_bytes
        expected = struct.pack(">HHH", SIZE, SIZE, len(stream)) + stream  # written by hand
        assert frame.tobytes() == expected + bytes(279 - len(expected))


@pytest.mark.parametrize(("policy", "header"), [("paper", "implicit"), ("paper", "explicit"),
                                               ("error-concealment", "implicit"),
                                               ("mean-image", "explicit")])
def test_noiseless_transmit_equals_error_free_decode(images, policy, header):
    link = _link(policy, header)
    _, streams = link.encode_frames(images)
    out = link.send(images, AWGNChannel(), torch.tensor([float("inf")] * 2))
    assert out.images.shape == (2, 3, SIZE, SIZE) and out.images.dtype == torch.float32
    assert out.failure_policy == policy
    for name in ("failed", "concealed"):
        assert getattr(out, name).dtype == torch.bool and not getattr(out, name).any()
    for name in ("block_errors", "bit_errors", "bytes_used"):
        assert getattr(out, name).dtype == torch.int64 and getattr(out, name).shape == (2,)
    assert out.block_errors.tolist() == out.bit_errors.tolist() == [0, 0]
    assert out.bytes_used.tolist() == [len(s) for s in streams]
    for image, stream in zip(out.images, streams):
        assert torch.equal(image, decode(stream, height=SIZE, width=SIZE, header=header).image)


def test_implicit_headers_buy_quality_at_equal_channel_uses(images):
    implicit, explicit = _link(header="implicit"), _link(header="explicit")
    assert (implicit.minimum_frame_bytes, explicit.minimum_frame_bytes) == (6 + 18, 6 + 136)
    inf = float("inf")
    a = implicit.send(images, AWGNChannel(), inf)
    b = explicit.send(images, AWGNChannel(), inf)
    # The same 273 codestream bytes carry ~118 more bytes of packet data without the headers
    # (bytes_used: packet data in implicit mode, whole codestream in explicit mode).
    assert torch.all(a.bytes_used - (b.bytes_used - 118) > 80)  # less the rate search slack
    mse_a = ((a.images - images) ** 2).flatten(1).mean(1)
    mse_b = ((b.images - images) ** 2).flatten(1).mean(1)
    assert torch.all(mse_a < 0.9 * mse_b)


def test_256px_fits_the_semantic_budget_with_implicit_headers():
    image = load_images("sample", 256, count=1)[0]
    link = ClassicalLink(channel_uses=288, image_size=(256, 256))  # 69-byte frames
    _, streams = link.encode_frames(image)
    assert 18 <= len(streams[0]) <= 63
    out = link.send(image, AWGNChannel(), float("inf"))
    assert not out.failed[0]
    expected = decode(streams[0], height=256, width=256, header="implicit").image
    assert torch.equal(out.images[0], expected)
    grey_mse = float(((image - 0.5) ** 2).mean())
    assert float(((out.images - image) ** 2).mean()) < 0.5 * grey_mse


@pytest.mark.parametrize("policy", ["paper", "mean-image"])
def test_any_lost_block_loses_the_image(images, policy):
    link = _link(policy)
    _, streams = link.encode_frames(images)
    spb = link.budget.plan.n // 4  # 384 symbols per block
    out = link.send(images, CorruptBlocks({0: [2]}, spb), 0.0)  # only the last block of row 0
    assert out.block_errors.tolist() == [1, 0]
    assert out.failed.tolist() == [True, False] and out.bytes_used[0] == 0
    assert torch.all(out.images[0] == 0.5)  # mid grey
    clean = decode(streams[1], height=SIZE, width=SIZE, header="implicit")
    assert torch.equal(out.images[1], clean.image)
    assert 0 < int(out.bit_errors[0]) <= 744 and out.bit_errors[1] == 0


@pytest.mark.parametrize("header", ["implicit", "explicit"])
def test_concealment_decodes_the_prefix_before_the_first_lost_block(images, header):
    link = _link("error-concealment", header)
    _, streams = link.encode_frames(images)
    full = decode(streams[0], height=SIZE, width=SIZE, header=header).image
    out = link.send(images, CorruptBlocks({0: [2], 1: [0, 2]}, link.budget.plan.n // 4), 0.0)
    assert out.block_errors.tolist() == [1, 2]
    # Row 0: block 2 starts at payload bit 2 x 744 = byte 186 of the frame, byte 180 of the
    # codestream; the prefix before it is decoded.
    expected = decode_prefix(streams[0], 186 - HEADER_BYTES, height=SIZE, width=SIZE,
                             header=header)
    assert not out.failed[0] and out.concealed[0]
    assert 0 < int(out.bytes_used[0]) == expected.num_bytes_used <= 180
    assert torch.equal(out.images[0], expected.image)
    mse_prefix = float(((out.images[0] - images[0]) ** 2).mean())
    mse_full = float(((full - images[0]) ** 2).mean())
    mse_grey = float(((0.5 - images[0]) ** 2).mean())
    assert mse_full < mse_prefix < mse_grey
    # Row 1: block 0 carries the frame header: nothing to decode.
    assert out.failed[1] and not out.concealed[1] and out.bytes_used[1] == 0
    assert torch.all(out.images[1] == 0.5)


def test_concealment_stops_at_the_first_of_several_lost_blocks(images):
    """Blocks 1 and 2 of row 0 lost: the prefix ends where block 1 starts (frame byte 93,
    codestream byte 87); the later loss does not move it, and block 1's garbage is never read."""
    link = _link("error-concealment", "implicit")
    _, streams = link.encode_frames(images[:1])
    out = link.send(images[:1], CorruptBlocks({0: [1, 2]}, link.budget.plan.n // 4), 0.0)
    expected = decode_prefix(streams[0], 87, height=SIZE, width=SIZE, header="implicit")
    assert out.block_errors.tolist() == [2]
    assert out.failed.tolist() == [False] and out.concealed.tolist() == [True]
    assert int(out.bytes_used[0]) == expected.num_bytes_used <= 87
    assert torch.equal(out.images[0], expected.image)


def test_loss_of_padding_only_is_no_loss_under_concealment_but_loses_under_paper():
    """A smooth ramp needs a short codestream (6 + 130 bytes < 186, where block 2 starts), so a
    lost block 2 holds only zero padding: error concealment decodes the whole codestream, not
    a prefix (concealed stays False); the paper policy still loses the image."""
    ramp = torch.linspace(0, 1, SIZE).expand(1, 3, SIZE, SIZE).contiguous()
    link = _link("error-concealment", "implicit")
    _, streams = link.encode_frames(ramp)
    assert HEADER_BYTES + len(streams[0]) <= 2 * 744 // 8
    bad = CorruptBlocks({0: [2]}, link.budget.plan.n // 4)
    out = link.send(ramp, bad, 0.0)
    assert out.block_errors.tolist() == [1]
    assert out.failed.tolist() == [False] and out.concealed.tolist() == [False]
    assert out.bytes_used.tolist() == [len(streams[0])]
    full = decode(streams[0], height=SIZE, width=SIZE, header="implicit").image
    assert torch.equal(out.images[0], full)
    paper = _link("paper", "implicit").send(ramp, bad, 0.0)
    assert paper.failed.tolist() == [True] and torch.all(paper.images == 0.5)


def test_concealment_of_a_block_inside_the_jpeg2000_headers_fails(images):
    # Block 1 starts at frame byte 93 = codestream byte 87, inside the 116 bytes of JPEG2000
    # main header + tile-part header: explicit headers are lost with it.
    link = _link("error-concealment", "explicit")
    out = link.send(images[:1], CorruptBlocks({0: [1]}, link.budget.plan.n // 4), 0.0)
    assert out.failed.tolist() == [True] and out.block_errors.tolist() == [1]


def test_implicit_headers_cannot_be_lost_so_block_1_is_concealed(images):
    link = _link("error-concealment", "implicit")
    _, streams = link.encode_frames(images[:1])
    out = link.send(images[:1], CorruptBlocks({0: [1]}, link.budget.plan.n // 4), 0.0)
    expected = decode_prefix(streams[0], 87, height=SIZE, width=SIZE, header="implicit")
    assert out.failed.tolist() == [False] and out.concealed.tolist() == [True]
    assert torch.equal(out.images[0], expected.image)
    assert 0 < int(out.bytes_used[0]) == expected.num_bytes_used <= 87


def test_same_generator_same_output_in_the_waterfall(images):
    """At 6 dB some code blocks fail and some decode (the waterfall, where every bit of the
    noise matters): the same generator seed reproduces everything, another seed changes it."""
    link = _link("error-concealment")
    runs = [link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(seed)), 6.0)
            for seed in (5, 5, 6)]
    for name in ("images", "failed", "block_errors", "bit_errors", "bytes_used"):
        assert torch.equal(getattr(runs[0], name), getattr(runs[1], name))
    blocks = runs[0].block_errors
    assert int(blocks.sum()) > 0 and bool((blocks < link.budget.plan.num_blocks).any())
    assert not torch.equal(runs[0].bit_errors, runs[2].bit_errors)


def test_budget_too_small_for_a_frame_names_budget_and_minimum():
    with pytest.raises(InputError, match=r"bandwidth: 288 channel uses at 16-QAM rate 0\.5 carry "
                                         r"69 bytes per image; a 256x256 \(width x height\) "
                                         r"JPEG2000 frame needs at least 142 bytes \(6 header "
                                         r"\+ 136 codestream with explicit JPEG2000 headers\)"):
        ClassicalLink(channel_uses=288, image_size=(256, 256), jpeg2000_header="explicit")
    # 64 uses x 4 bit: one block n = 256, k = 128 -> 104 payload bits = 13 bytes < 6 + 18.
    with pytest.raises(InputError, match=r"64 channel uses at 16-QAM rate 0\.5 carry 13 bytes "
                                         r"per image; a 512x512 \(width x height\) JPEG2000 "
                                         r"frame needs at least 24 bytes \(6 header \+ 18 "
                                         r"codestream with implicit"):
        ClassicalLink(channel_uses=64, image_size=(512, 512))


def test_link_bad_arguments(images):
    with pytest.raises(ValueError, match=r"`failure_policy` must be one of 'paper', "
                                         r"'error-concealment', 'mean-image'; got 'conceal'\."):
        _link("conceal")
    with pytest.raises(ValueError, match=r"`jpeg2000_header` must be one of 'explicit', "
                                         r"'implicit'; got 'none'\."):
        _link(header="none")
    with pytest.raises(ValueError, match=r"`image_size` must be \(height, width\); got \(128,\)\."):
        ClassicalLink(channel_uses=N, image_size=(128,))
    with pytest.raises(ValueError, match=r"`image_size height` must be in \[1, 65535\]; got 0\."):
        ClassicalLink(channel_uses=N, image_size=(0, 128))
    with pytest.raises(TypeError, match=r"`image_size width` must be int; got 128\.0\."):
        ClassicalLink(channel_uses=N, image_size=(128, 128.0))
    with pytest.raises(ValueError, match=r"`images` must be \[batch, 3, 128, 128\]; "
                                         r"got \(3, 128, 128\)\."):
        _link().encode_frames(images[0])

