"""JPEG codec: the largest quality that fits (against a brute-force search), a second decoder,
concealment of a cut file, corrupted and hostile files, errors."""
from __future__ import annotations

import io
import time
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from PIL import Image

from semlink.codecs.jpeg import (MAX_QUALITY, decode, decode_prefix, encode_at_quality,
                                 encode_to_budget, minimum_file_bytes)
from semlink.images import load_image

SAMPLES = sorted((Path(__file__).parents[3] / "simulator" / "data" / "sample").glob("*.png"))


def _crop(path: Path, size: int) -> torch.Tensor:
    return load_image(path, (size, size), center_crop=True)  # [3, size, size] in [0, 1]


def _pillow_size(image: torch.Tensor, quality: int) -> int:
    """The file size of the codec's settings, written out here: baseline JFIF, 4:2:0,
    optimised Huffman tables."""
    pixels = np.rint(image.numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, optimize=True,
                                 subsampling="4:2:0")
    return len(buf.getvalue())


def _psnr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    a = np.rint(x.numpy() * 255).astype(np.float64)
    b = np.rint(y.numpy() * 255).astype(np.float64)
    return 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2))


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    return [_crop(path, 128) for path in SAMPLES]


@pytest.fixture(scope="module")
def sizes(photos) -> list[list[int]]:
    """File size at every quality 1..95 of each photo, by brute force."""
    return [[_pillow_size(photo, q) for q in range(1, MAX_QUALITY + 1)] for photo in photos]


def test_the_quality_is_the_largest_whose_file_fits(photos, sizes):
    """Against a brute-force search over all 95 qualities, at budgets on and between the
    photos' file sizes (including where a higher quality gives a smaller file)."""
    checked = 0
    for photo, by_quality in list(zip(photos, sizes))[:4]:
        budgets = {by_quality[0] - 1, by_quality[0], by_quality[9], by_quality[9] + 1,
                   by_quality[49] - 1, by_quality[-1], by_quality[-1] + 500}
        for budget in sorted(budgets):
            fitting = [q for q, size in enumerate(by_quality, start=1) if size <= budget]
            enc = encode_to_budget(photo, budget)
            if not fitting:
                assert enc.quality is None and enc.data == b"" and enc.num_bytes == 0
                continue
            assert enc.quality == max(fitting), (budget, enc.quality)
            assert enc.num_bytes == len(enc.data) == by_quality[enc.quality - 1] <= budget
            assert enc.data == encode_at_quality(photo, enc.quality)
            assert enc.num_encodes == MAX_QUALITY + 1 - enc.quality  # from 95 down
            checked += 1
    assert checked >= 20


def test_a_smaller_file_at_a_higher_quality_is_found(photos, sizes):
    """Sizes are not monotone in quality everywhere (measured: 1 or 2 bytes smaller at quality
    2 than at 1 for some photos); a budget between the two must give quality 2, which a
    bisection assuming monotone sizes misses (the astronaut at 128 px: 685 and 684 bytes)."""
    cases = [(photo, by_quality) for photo, by_quality in zip(photos, sizes)
             if by_quality[1] < by_quality[0]]
    assert cases, "no sample photo at 128 px has a smaller file at quality 2 than at 1"
    photo, by_quality = cases[0]
    assert encode_to_budget(photo, by_quality[1]).quality == 2


def test_round_trip_equals_a_second_decoder_and_is_close_to_the_original(photos):
    for photo in photos[:4]:
        enc = encode_to_budget(photo, 10_000)
        out = decode(enc.data, height=128, width=128)
        assert not out.failed and out.num_bytes_used == enc.num_bytes
        assert out.image.shape == (3, 128, 128) and out.image.dtype == torch.float32
        other = imagecodecs.jpeg8_decode(enc.data)  # [128, 128, 3] uint8, libjpeg-turbo
        ours = np.rint(out.image.numpy() * 255).astype(np.int16).transpose(1, 2, 0)
        assert np.abs(ours - other.astype(np.int16)).max() <= 1
        assert _psnr_db(photo, out.image) > 30.0


def test_the_smallest_file_is_a_flat_image_at_quality_1(photos, sizes):
    """A flat image's file has only zero coefficients: the same size at every quality (the
    tables are as long), and no photo's file is smaller."""
    minimum = minimum_file_bytes(128, 128)
    assert all(minimum < min(by_quality) for by_quality in sizes)
    flat = torch.full((3, 128, 128), 0.5)
    assert encode_to_budget(flat, minimum).quality == MAX_QUALITY
    assert encode_to_budget(flat, minimum - 1).quality is None


def test_a_cut_file_decodes_its_top_and_mid_grey_below(photos):
    """Sequential JPEG: the blocks before the cut are the full decode's (MCU rows of 16 px
    with 4:2:0), the missing ones mid grey (zero coefficients)."""
    photo = photos[0]
    data = encode_to_budget(photo, 6000).data
    full = decode(data, height=128, width=128).image
    out = decode_prefix(data, len(data) * 2 // 3, height=128, width=128)
    assert not out.failed and 0 < out.num_bytes_used <= len(data) * 2 // 3
    torch.testing.assert_close(out.image[:, :16], full[:, :16], atol=1 / 255, rtol=0)
    assert torch.all(out.image[:, -8:, -8:] == 128 / 255)
    nothing_lost = decode_prefix(data, len(data), height=128, width=128)
    assert torch.equal(nothing_lost.image, full)


def test_a_cut_inside_the_headers_fails(photos):
    data = encode_to_budget(photos[0], 6000).data
    out = decode_prefix(data, 100, height=128, width=128)  # quantisation tables
    assert out.failed and out.image is None and "headers" in out.reason


@pytest.mark.parametrize("kind", ["flip", "cut", "garbage", "empty", "zero_run"])
def test_corrupted_files_never_raise(photos, kind):
    rng = np.random.default_rng(7)
    streams = [encode_to_budget(photo, 3000).data for photo in photos[:4]]
    outcomes = set()
    for data in streams:
        for _ in range(25):
            damaged = bytearray(data)
            if kind == "flip":
                for i in rng.integers(0, len(damaged), 3):
                    damaged[i] ^= 1 << int(rng.integers(0, 8))
            elif kind == "cut":
                damaged = damaged[:int(rng.integers(0, len(damaged)))]
            elif kind == "garbage":
                damaged = bytearray(rng.integers(0, 256, len(damaged), dtype=np.uint8).tobytes())
            elif kind == "empty":
                damaged = bytearray()
            else:
                start = int(rng.integers(0, len(damaged) - 50))
                damaged[start:start + 50] = bytes(50)
            for out in (decode(bytes(damaged), height=128, width=128),
                        decode_prefix(bytes(damaged), int(rng.integers(0, len(data))),
                                      height=128, width=128)):
                assert out.failed == (out.image is None)
                if not out.failed:
                    assert out.image.shape == (3, 128, 128)
                    assert 0 <= float(out.image.min()) <= float(out.image.max()) <= 1
                outcomes.add(out.failed)
    if kind in ("garbage", "empty"):
        assert outcomes == {True}


def test_a_header_announcing_a_huge_image_fails_without_decoding(photos):
    """The frame header is read before Pillow sees the file: a corrupted size allocates
    nothing."""
    data = bytearray(encode_to_budget(photos[0], 3000).data)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (65000).to_bytes(2, "big") * 2  # height, width
    started = time.perf_counter()
    out = decode(bytes(data), height=128, width=128)
    assert out.failed and "frame header" in out.reason
    assert time.perf_counter() - started < 0.5


def test_errors():
    image = torch.rand(3, 32, 32)
    with pytest.raises(ValueError, match=r"`quality` must be"):
        encode_at_quality(image, 96)
    with pytest.raises(ValueError, match=r"`budget_bytes` must be"):
        encode_to_budget(image, -1)
    with pytest.raises(ValueError, match=r"`image` values must be in \[0, 1\]"):
        encode_to_budget(image + 1, 1000)
    with pytest.raises(TypeError, match=r"`data` must be"):
        decode("abc", height=32, width=32)
    with pytest.raises(ValueError, match=r"`corrupt_offset` must be"):
        decode_prefix(b"", -1, height=32, width=32)
