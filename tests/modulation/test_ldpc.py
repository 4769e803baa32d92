"""Tests for modulation/ldpc.py: segmentation, CRC against a bitwise CRC, BLER over AWGN."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder

from semlink.modulation.ldpc import (
    MAX_CODE_RATE,
    MIN_CODE_RATE,
    REDUNDANCY_VERSIONS,
    CodeBlockDecoder,
    CodeBlockEncoder,
    CodeBlockPlan,
    information_bits_per_block,
    plan_code_blocks,
)
from semlink.modulation.qam import QAMDemapper, QAMMapper

# TS 38.212 Sec. 5.1 generator polynomials, x^24 term included
_POLY = {"CRC24A": 0x1864CFB, "CRC24B": 0x1800063}


pytestmark = pytest.mark.usefixtures("one_thread")  # BP decoding: faster on one thread


def _crc24_bitwise(bits: list[int], poly: int) -> list[int]:
    """Shift-register CRC (init 0, no reflection, no final xor) of a bit list, MSB first."""
    reg = 0
    for b in bits:
        fb = ((reg >> 23) & 1) ^ b
        reg = (reg << 1) & 0xFFFFFF
        if fb:
            reg ^= poly & 0xFFFFFF
    return [(reg >> (23 - i)) & 1 for i in range(24)]


def _bytes_to_bits(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def _hard_llr(cw: torch.Tensor) -> torch.Tensor:
    return 20.0 * (2.0 * cw - 1.0)  # Sionna sign: positive means 1


@pytest.mark.parametrize("crc_type,check", [("CRC24A", 0xCDE703), ("CRC24B", 0x23EF52)])
def test_bitwise_reference_crc_matches_catalogue_check_value(crc_type, check):
    # CRC-24/LTE-A and CRC-24/LTE-B check values of b"123456789" (reveng CRC catalogue)
    crc = _crc24_bitwise(_bytes_to_bits(b"123456789"), _POLY[crc_type])
    assert int("".join(map(str, crc)), 2) == check


def test_plan_fields_closed_form():
    p = plan_code_blocks(3000, n=2000, code_rate=0.5)
    assert (p.k, p.n, p.crc_length, p.payload_bits_per_block) == (1000, 2000, 24, 976)
    assert p.num_blocks == 4 and p.num_filler_bits == 4 * 976 - 3000
    assert p.num_coded_bits == 8000 and p.code_rate == 0.5
    assert p.effective_rate == pytest.approx(3000 / 8000)
    assert (p.base_graph, p.lifting_size) == ("bg2", 104)  # TS 38.212: k=1000 > 640 -> 10 Z >= k
    assert p == CodeBlockPlan(num_payload_bits=3000, k=1000, n=2000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.k = 500


@pytest.mark.parametrize("rate,n,k", [(1 / 3, 1200, 400), (0.5, 2048, 1024), (2 / 3, 1500, 1000),
                                      (0.75, 2000, 1500), (5 / 6, 1200, 1000)])
def test_plan_k_is_rounded_rate_times_n(rate, n, k):
    p = plan_code_blocks(5000, n=n, code_rate=rate)
    assert p.k == k and p.num_blocks == math.ceil(5000 / (k - 24))


def test_k_at_the_rate_bounds_stays_within_them():
    # round(948/1024 * 2000) = 1852 would be rate 0.926 > 948/1024: no 5G code; likewise
    # round(0.2 * 127) = 25 is fine but the exact bound 1/5 needs k >= ceil(n / 5).
    assert information_bits_per_block(948 / 1024, 2000) == 1851
    clamped = []
    for rate in (MIN_CODE_RATE, 1 / 3, 0.5, 0.9, MAX_CODE_RATE):
        for n in range(125, 9000):
            k = information_bits_per_block(rate, n)
            assert abs(k - rate * n) < 1 and 5 * k >= n and 1024 * k <= 948 * n, (rate, n, k)
            if k != round(rate * n):
                clamped.append((rate, n))
    assert len(clamped) > 100
    for rate, n in clamped[::len(clamped) // 8]:  # each plan builds an encoder: a sample
        plan_code_blocks(10, n=n, code_rate=rate)  # a 5G code: no ValueError


@pytest.mark.parametrize("rate,n,k", [(0.6, 1001, 601), (0.7, 2001, 1401), (1 / 3, 1000, 333),
                                      (0.45, 1111, 500)])
def test_k_rounds_to_nearest_not_down_or_up(rate, n, k):
    """k = round(rate * n): 600.6 -> 601 and 1400.7 -> 1401 (truncation would give 600, 1400),
    333.33 -> 333 and 499.95 -> 500 (rounding up / truncation would be off by one); all well
    inside the rate bounds, so no clamping is involved."""
    assert information_bits_per_block(rate, n) == k
    assert plan_code_blocks(100, n=n, code_rate=rate).k == k


def test_plan_large_k_uses_base_graph_1():
    p = CodeBlockPlan(num_payload_bits=8000, k=8448, n=12672)
    assert (p.base_graph, p.lifting_size, p.num_blocks) == ("bg1", 384, 1)
    # no repetition: n fits the compressed buffer 66 Z (bg1) or 50 Z (bg2) minus fillers
    assert p.ldpc_buffer_bits == 66 * 384 >= p.n


@pytest.mark.parametrize("k", [25, 640, 1040, 3840])
def test_lowest_rate_fits_bg2_buffer(k):
    p = CodeBlockPlan(num_payload_bits=10, k=k, n=5 * k)
    assert p.base_graph == "bg2" and p.n <= p.ldpc_buffer_bits == 50 * p.lifting_size - (
        10 * p.lifting_size - k)


@pytest.mark.parametrize("num_payload_bits", [1, 75, 76, 77, 500, 1003])
def test_noise_free_round_trip(num_payload_bits):
    plan = plan_code_blocks(num_payload_bits, n=200, code_rate=0.5)  # 76 payload bits per block
    enc = CodeBlockEncoder(plan)
    dec = CodeBlockDecoder(enc, num_iter=5)
    g = torch.Generator().manual_seed(num_payload_bits)
    u = torch.randint(0, 2, (3, num_payload_bits), generator=g).float()
    cw = enc(u)
    assert cw.shape == (3, plan.num_blocks * 200) and cw.dtype == torch.float32
    bits, ok = dec(_hard_llr(cw))
    assert bits.shape == u.shape and torch.equal(bits, u)
    assert ok.shape == (3, plan.num_blocks) and ok.dtype == torch.bool and bool(ok.all())


def test_round_trip_with_qam_interleaver_and_leading_dims():
    plan = plan_code_blocks(700, n=2048, code_rate=0.5)
    enc = CodeBlockEncoder(plan, bits_per_symbol=4)
    dec = CodeBlockDecoder(enc, num_iter=5)
    u = torch.randint(0, 2, (2, 3, 700)).float()
    bits, ok = dec(_hard_llr(enc(u)))
    assert torch.equal(bits, u) and ok.shape == (2, 3, 1) and bool(ok.all())


@pytest.mark.parametrize("crc_type", ["CRC24A", "CRC24B"])
def test_codewords_match_bitwise_crc_plus_sionna_ldpc(crc_type):
    # independent truth: segment + zero-fill + bitwise CRC in the test, then plain LDPC5GEncoder
    plan = plan_code_blocks(250, n=300, k=120, crc_type=crc_type)  # 96 payload bits per block
    g = torch.Generator().manual_seed(5)
    u = torch.randint(0, 2, (4, 250), generator=g).float()
    padded = u.tolist()
    blocks = []
    for row in padded:
        row = row + [0.0] * plan.num_filler_bits
        for i in range(plan.num_blocks):
            payload = [int(b) for b in row[i * 96:(i + 1) * 96]]
            blocks.append(payload + _crc24_bitwise(payload, _POLY[crc_type]))
    ref = LDPC5GEncoder(120, 300)(torch.tensor(blocks, dtype=torch.float32)).reshape(4, -1)
    assert torch.equal(CodeBlockEncoder(plan)(u), ref)


def test_redundancy_versions_are_sionnas_rate_matching_per_block():
    """rv picks where each block's n bits start in its circular buffer: version 0 is the
    plain encoding; each version equals Sionna's encoder of that version on the same CRC'd
    blocks (its output per block, concatenated), and the four differ."""
    plan = plan_code_blocks(1400, n=1024, code_rate=0.5)  # 3 blocks of k = 512
    enc = CodeBlockEncoder(plan, bits_per_symbol=4)
    u = torch.randint(0, 2, (3, 1400), generator=torch.Generator().manual_seed(6)).float()
    assert torch.equal(enc(u, rv=0), enc(u))
    blocks = enc.crc_encoder(torch.nn.functional.pad(u, (0, plan.num_filler_bits))
                             .reshape(3, plan.num_blocks, plan.payload_bits_per_block))
    versions = list(REDUNDANCY_VERSIONS)
    reference = enc.ldpc_encoder(blocks, rv=versions)  # [3, blocks, 4, n]
    coded = [enc(u, rv=v) for v in versions]
    for i, code in enumerate(coded):
        assert torch.equal(code, reference[:, :, i].reshape(3, -1))
    assert len({tuple(c[0].tolist()) for c in coded}) == 4


def test_incremental_redundancy_decodes_what_one_version_cannot():
    """Version 2 alone is not self-decodable at rate 1/2 (it leaves out systematic bits); with
    version 0 beside it, or all four, every block decodes. A wrong number of LLR rows is
    refused."""
    plan = plan_code_blocks(1400, n=1024, code_rate=0.5)
    enc = CodeBlockEncoder(plan, bits_per_symbol=4)
    dec = CodeBlockDecoder(enc, num_iter=10)
    u = torch.randint(0, 2, (2, 1400), generator=torch.Generator().manual_seed(7)).float()
    llr = {v: _hard_llr(enc(u, rv=v)) for v in REDUNDANCY_VERSIONS}
    _, ok = dec(llr[2][:, None], rv=[2])
    assert not bool(ok.any())
    bits, ok = dec(torch.stack([llr[0], llr[2]], dim=1), rv=[0, 2])
    assert torch.equal(bits, u) and bool(ok.all())
    bits, ok = dec(torch.stack([llr[v] for v in (0, 2, 3, 1)], dim=1), rv=[0, 2, 3, 1])
    assert torch.equal(bits, u) and bool(ok.all())
    with pytest.raises(ValueError, match=r"`llr` must be \[\.\.\., len\(rv\) = 2, 3072\]"):
        dec(llr[0][:, None], rv=[0, 2])
    with pytest.raises(ValueError, match=r"`rv` must be one of 0, 2, 3, 1; got 4"):
        enc(u, rv=4)


def test_crc_flags_10000_corrupted_blocks():
    # 100 rows x 100 blocks; random error patterns (1..96 flips) in block+CRC before LDPC
    # encoding, so the decoder recovers the corrupted block exactly and only the CRC can
    # notice. Any nonzero pattern of weight <= 3 is always detected; heavier ones miss with
    # probability 2^-24 each (~6e-4 for all 10^4 blocks).
    plan = plan_code_blocks(76 * 100, n=200, k=100)
    enc = CodeBlockEncoder(plan)
    dec = CodeBlockDecoder(enc, num_iter=1)
    g = torch.Generator().manual_seed(99)
    u = torch.randint(0, 2, (100, 100, 76), generator=g).float()
    blocks = enc.crc_encoder(u)  # [100, 100, 100] payload + CRC
    ref_crc = torch.tensor([_crc24_bitwise([int(b) for b in u[0, j].tolist()], _POLY["CRC24A"])
                            for j in range(100)], dtype=torch.float32)
    assert torch.equal(blocks[0, :, 76:], ref_crc)
    weight = torch.randint(1, 97, (100, 100, 1), generator=g)
    rank = torch.rand(100, 100, 100, generator=g).argsort(dim=-1).argsort(dim=-1)
    flips = (rank < weight).float()  # exactly `weight` distinct positions per block
    assert bool((flips.sum(-1) == weight[..., 0]).all())
    corrupted = (blocks + flips) % 2
    cw = enc.ldpc_encoder(corrupted).reshape(100, -1)
    bits, ok = dec(_hard_llr(cw))
    assert not bool(ok.any())
    # ... and the same path reports every uncorrupted block as correct
    _, ok_clean = dec(_hard_llr(enc.ldpc_encoder(blocks).reshape(100, -1)))
    assert bool(ok_clean.all())


def _bler_qpsk(ebno_db: float, num_blocks: int, seed: int) -> tuple[float, float]:
    """(block error rate, CRC failure rate) for one 976-bit payload per block, QPSK, AWGN."""
    plan = plan_code_blocks(976, n=2000, code_rate=0.5)
    enc = CodeBlockEncoder(plan)
    dec = CodeBlockDecoder(enc)  # boxplus, 20 iterations
    # Eb/N0 per payload bit: Es/N0 = Eb/N0 * bits_per_symbol * effective_rate
    no = 1.0 / (10 ** (ebno_db / 10) * 2 * plan.effective_rate)
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (num_blocks, 976), generator=g).float()
    x = QAMMapper(bits_per_symbol=2)(enc(u))
    y = x + math.sqrt(no) * torch.randn(x.shape, dtype=torch.complex64, generator=g)
    bits, ok = dec(QAMDemapper(bits_per_symbol=2)(y, no))
    err = (bits != u).any(dim=-1)
    return err.float().mean().item(), (~ok[:, 0]).float().mean().item()


def test_bler_below_1e2_at_2p5_db():
    # 200 blocks: BLER < 1e-2 means at most 1 block error; measured BLER is ~0 already at 2 dB
    bler, crc_fail = _bler_qpsk(2.5, num_blocks=200, seed=1)
    assert bler < 1e-2 and crc_fail < 1e-2


def test_bler_above_half_at_0_db_and_crc_sees_every_error():
    # BLER is ~1 at 0 dB (waterfall near 1.2 dB); 50 blocks, > 0.5 leaves a ~7 sigma margin
    bler, crc_fail = _bler_qpsk(0.0, num_blocks=50, seed=2)
    assert bler > 0.5
    assert crc_fail == bler  # every block error is flagged (and no false alarm)


def test_double_precision_passthrough():
    plan = plan_code_blocks(100, n=200, code_rate=0.5)
    enc = CodeBlockEncoder(plan, precision="double")
    dec = CodeBlockDecoder(enc, num_iter=2, precision="double")
    u = torch.randint(0, 2, (2, 100)).double()
    cw = enc(u)
    assert cw.dtype == torch.float64
    bits, ok = dec(_hard_llr(cw))
    assert bits.dtype == torch.float64 and torch.equal(bits, u) and bool(ok.all())


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(num_payload_bits=0, k=100, n=200), ValueError, r"`num_payload_bits` must be in \[1, inf\]; got 0"),
    (dict(num_payload_bits=True, k=100, n=200), TypeError, "`num_payload_bits` must be int"),
    (dict(num_payload_bits=10, k=24, n=100), ValueError, r"`k` must be in \[25, 8448\]; got 24"),
    (dict(num_payload_bits=10, k=8449, n=10000), ValueError, r"`k` must be in \[25, 8448\]; got 8449"),
    (dict(num_payload_bits=10, k=100.0, n=200), TypeError, "`k` must be int"),
    (dict(num_payload_bits=10, k=100, n=501), ValueError, r"`n` must be in \[109, 500\] for k=100"),
    (dict(num_payload_bits=10, k=100, n=105), ValueError, r"`n` must be in \[109, 500\] for k=100"),
    (dict(num_payload_bits=10, k=4000, n=14000), ValueError, "`k`, `n` must form a 5G NR LDPC code"),
    (dict(num_payload_bits=10, k=3900, n=19000), ValueError, "`k`, `n` must form a 5G NR LDPC code"),
    (dict(num_payload_bits=10, k=100, n=200, crc_type="CRC16"), ValueError,
     "`crc_type` must be one of 'CRC24A', 'CRC24B'; got 'CRC16'"),
])
def test_invalid_plan_raises(kwargs, err, match):
    with pytest.raises(err, match=match):
        CodeBlockPlan(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=200), "Exactly one of `code_rate` and `k` must be given"),
    (dict(n=200, code_rate=0.5, k=100), "Exactly one of `code_rate` and `k` must be given"),
    (dict(n=200, code_rate=0.1), r"`code_rate` must be in \[0.2, 0.92578125\]; got 0.1"),
    (dict(n=200, code_rate=0.95), r"`code_rate` must be in \[0.2, 0.92578125\]; got 0.95"),
    (dict(n=200, code_rate=float("nan")), r"`code_rate` must be in"),
    (dict(n=0, code_rate=0.5), r"`n` must be in \[1, inf\]; got 0"),
])
def test_invalid_planner_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_code_blocks(100, **kwargs)


def test_invalid_codec_arguments_raise():
    plan = plan_code_blocks(100, n=200, code_rate=0.5)
    with pytest.raises(TypeError, match="`plan` must be CodeBlockPlan"):
        CodeBlockEncoder((100, 200))
    with pytest.raises(ValueError, match="`bits_per_symbol` must divide n=200; got 6"):
        CodeBlockEncoder(plan, bits_per_symbol=6)
    enc = CodeBlockEncoder(plan)
    with pytest.raises(ValueError, match="`cn_update` must be one of .*; got 'minsum'"):
        CodeBlockDecoder(enc, cn_update="minsum")
    with pytest.raises(ValueError, match=r"`num_iter` must be in \[1, inf\]; got 0"):
        CodeBlockDecoder(enc, num_iter=0)
    with pytest.raises(TypeError, match="`encoder` must be CodeBlockEncoder"):
        CodeBlockDecoder(plan)
    with pytest.raises(ValueError, match=r"last dimension num_payload_bits=100; got shape \(2, 99\)"):
        enc(torch.zeros(2, 99))
    with pytest.raises(ValueError, match="`bits` must contain only 0 and 1"):
        enc(torch.full((2, 100), 2.0))
    with pytest.raises(ValueError, match=r"last dimension num_blocks \* n=400; got shape \(2, 100\)"):
        CodeBlockDecoder(enc)(torch.zeros(2, 100))
