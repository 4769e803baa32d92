"""Fuzzing the JPEG2000 decoder: corrupted, truncated and garbage codestreams never raise,
never print, stay fast and do not leak memory."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semlink.codecs import decode, decode_prefix, encode_to_budget, strip_header

SAMPLES = sorted((Path(__file__).parents[3] / "simulator" / "data" / "sample").glob("*.png"))
KINDS = ("flip", "cut", "zero_run", "garbage", "header_then_garbage", "empty")
IMPLICIT_KINDS = ("flip", "cut", "zero_run", "garbage", "empty")  # no headers to keep
MAX_DECODE_S = 2.0
MAX_RSS_GROWTH_KB = 20_000  # 20 MB; one 512 x 512 decode allocates ~4 MB transiently


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _crop(path: Path, size: int) -> torch.Tensor:
    rgb = np.array(Image.open(path).convert("RGB"))
    top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    crop = rgb[top:top + size, left:left + size]  # [size, size, 3], uint8
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255


def _streams(size: int, budgets: tuple[int, ...], header: str = "explicit") -> list[bytes]:
    return [encode_to_budget(_crop(path, size), budget, header=header).codestream
            for path in SAMPLES[::2] for budget in budgets]


def _corrupt(stream: bytes, kind: str, rng: np.random.Generator) -> bytes:
    data = bytearray(stream)
    if kind == "flip":
        for bit in rng.integers(0, 8 * len(data), size=int(rng.integers(1, 9))):
            data[bit // 8] ^= 1 << int(bit % 8)
    elif kind == "cut":
        data = data[:int(rng.integers(0, len(data) - 2))]  # at least the EOC is lost
    elif kind == "zero_run":
        start, length = int(rng.integers(0, len(data))), int(rng.integers(1, 65))
        data[start:start + length] = bytes(len(data[start:start + length]))
    elif kind == "garbage":
        data = bytearray(rng.bytes(int(rng.integers(1, 3000))))
    elif kind == "header_then_garbage":  # headers intact: the garbage reaches OpenJPEG
        keep = stream.index(b"\xff\x93") + 2
        data = data[:keep] + rng.bytes(int(rng.integers(0, 3000)))
    else:
        data = bytearray()
    return bytes(data)


def _fuzz(streams: list[bytes], size: int, num_cases: int, seed: int, capfd,
          header: str = "explicit") -> Counter:
    rng = np.random.default_rng(seed)
    kinds = KINDS if header == "explicit" else IMPLICIT_KINDS
    outcomes: Counter = Counter()
    for _ in range(50):  # warm up Pillow/OpenJPEG and the allocator before measuring RSS
        decode(streams[0], height=size, width=size, header=header)
    rss_before = _rss_kb()
    slowest = 0.0
    for case in range(num_cases):
        kind = kinds[case % len(kinds)]
        data = _corrupt(streams[int(rng.integers(len(streams)))], kind, rng)
        start = time.perf_counter()
        result = decode(data, height=size, width=size, header=header)  # no exception may escape
        slowest = max(slowest, time.perf_counter() - start)
        assert result.failed == (result.image is None) == (result.reason != "")
        if not result.failed:
            assert result.image.shape == (3, size, size)
            pixels = result.image.numpy()  # NumPy: cheap on a busy machine
            assert 0.0 <= pixels.min() <= pixels.max() <= 1.0
        outcomes[kind, result.failed] += 1
    growth = _rss_kb() - rss_before
    assert slowest < MAX_DECODE_S, slowest
    assert growth < MAX_RSS_GROWTH_KB, growth
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # OpenJPEG prints nothing
    return outcomes


def test_fuzz_decode_2400_damaged_codestreams(capfd):
    outcomes = _fuzz(_streams(128, (300, 1500)), 128, 2400, seed=20240, capfd=capfd)
    assert sum(outcomes.values()) == 2400
    # Strict OpenJPEG: a truncated codestream (EOC lost or more) is rejected, never half-read.
    assert outcomes["cut", False] == 0
    assert outcomes["empty", False] == 0 and outcomes["garbage", False] == 0
    # Bit flips often decode silently into a damaged image: detection is the CRC's job.
    assert outcomes["flip", False] > 50 and outcomes["flip", True] > 50


def test_fuzz_decode_1500_damaged_implicit_header_codestreams(capfd):
    """Implicit headers: damaged packet data is wrapped in the intact reference headers, so it
    reaches OpenJPEG more often; still nothing escapes, hangs or leaks."""
    streams = _streams(128, (300 - 118, 1500 - 118), header="implicit")
    assert strip_header(encode_to_budget(_crop(SAMPLES[0], 128), 300).codestream,
                        height=128, width=128) == streams[0]
    outcomes = _fuzz(streams, 128, 1500, seed=4711, capfd=capfd, header="implicit")
    assert sum(outcomes.values()) == 1500
    # With the reference headers around it, most damaged packet data (garbage included)
    # decodes into some image: only the CRCs can tell. An empty body lacks even the 18
    # empty-packet bytes and is rejected.
    assert outcomes["flip", False] > 150 and outcomes["garbage", False] > 150
    assert outcomes["empty", True] == 300


@pytest.mark.slow
def test_fuzz_decode_512px_10000_damaged_codestreams(capfd):
    outcomes = _fuzz(_streams(512, (280, 4000)), 512, 10_000, seed=7, capfd=capfd)
    assert outcomes["cut", False] == 0


@pytest.mark.parametrize("header", ["explicit", "implicit"])
def test_fuzz_prefix_ignores_what_follows_the_offset(header):
    """Concealment with garbage after the first corrupted byte equals concealment of the clean
    codestream cut at the same offset: nothing past the offset is read."""
    streams = _streams(128, (1500,), header=header)
    rng = np.random.default_rng(99)
    slowest = 0.0
    for _ in range(60):
        stream = streams[int(rng.integers(len(streams)))]
        offset = int(rng.integers(0, len(stream) + 1))
        damaged = stream[:offset] + rng.bytes(int(rng.integers(0, 200)))
        start = time.perf_counter()
        got = decode_prefix(damaged, offset, height=128, width=128, header=header)
        slowest = max(slowest, time.perf_counter() - start)
        clean = decode_prefix(stream, offset, height=128, width=128, header=header)
        assert got.failed == clean.failed and got.num_bytes_used == clean.num_bytes_used
        assert got.num_bytes_used <= offset
        if not got.failed:
            assert torch.equal(got.image, clean.image)
        else:
            assert header == "explicit"  # implicit headers cannot be hit: always an image
    assert slowest < MAX_DECODE_S, slowest
