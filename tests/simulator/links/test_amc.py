"""Adaptive modulation and coding: choices against capacity, monotone in SNR, never above the
BLER target on the estimate, deterministic, cached; BLER estimates at the extremes; errors."""
from __future__ import annotations

import math

import pytest

from semlink.errors import InputError
from semlink.links import amc
from semlink.links.amc import DEFAULT_MCS_TABLE, Mcs, estimate_bler, select_mcs
from semlink.scenario import RayleighConfig

N = 288  # one code block per frame for every default entry: n = 576, 1152 or 1728
SIZE = (128, 128)
QUICK = {"min_block_errors": 5, "max_blocks": 40, "batch_blocks": 10}  # resolution 1/40


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def choices() -> dict[float, amc.McsChoice]:
    return {snr: select_mcs(N, SIZE, snr, seed=1, **QUICK) for snr in (-5.0, 4.0, 8.0, 12.0, 25.0)}


def test_default_table():
    assert [(m.modulation, m.code_rate) for m in DEFAULT_MCS_TABLE] == [
        (4, 0.5), (4, 0.75), (16, 0.5), (16, 0.75), (64, 0.5), (64, 0.75)]
    assert DEFAULT_MCS_TABLE[2].name == "16-QAM r=0.5"


def test_choice_grows_with_snr_and_stays_below_capacity(choices):
    payloads = [choices[s].payload_bytes for s in sorted(choices)]
    assert payloads == sorted(payloads)
    assert choices[-5.0].mcs == Mcs(4, 0.5) and not choices[-5.0].meets_target
    assert choices[25.0].mcs == Mcs(64, 0.75) and choices[25.0].meets_target
    for snr, choice in choices.items():
        if choice.meets_target:
            # A code of ~1000 bits cannot beat Shannon: log2(M) * rate < log2(1 + SNR).
            efficiency = math.log2(choice.mcs.modulation) * choice.mcs.code_rate
            assert efficiency < math.log2(1 + 10 ** (snr / 10)), (snr, choice.mcs)


def test_pick_meets_the_target_and_nothing_larger_does(choices):
    for choice in choices.values():
        assert choice.bler_target == 0.1
        assert choice.estimate in choice.evaluated
        assert choice.meets_target == (choice.estimate.bler <= 0.1)
        larger = [e for e in choice.evaluated if e.payload_bytes > choice.payload_bytes]
        assert all(e.bler > 0.1 for e in larger)
        # Entries are tried from the largest frame down.
        sizes = [e.payload_bytes for e in choice.evaluated]
        assert sizes == sorted(sizes, reverse=True)


def test_without_a_feasible_entry_the_most_robust_is_reported(choices):
    choice = choices[-5.0]
    assert len(choice.evaluated) == len(DEFAULT_MCS_TABLE)  # all tried, all missed
    assert choice.estimate.bler == min(e.bler for e in choice.evaluated)
    assert choice.index == 0 and choice.payload_bytes == 33  # (576 / 2 - 24) / 8


def test_estimates_at_the_extremes_and_monotone_in_snr():
    mcs = Mcs(16, 0.5)
    est = [estimate_bler(N, mcs, snr, seed=3, **QUICK) for snr in (-5.0, 5.0, 6.5, 8.0, 30.0)]
    assert est[0].bler == 1.0 and est[0].blocks == 10  # stops after one batch: 10 errors >= 5
    assert est[-1].block_errors == 0 and est[-1].blocks == 40
    # Common random numbers: the same noise draw, scaled, at every SNR.
    blers = [e.bler for e in est]
    assert blers == sorted(blers, reverse=True)
    assert (est[2].payload_bytes, est[2].blocks_per_image) == (69, 1)
    assert est[2].image_loss_rate == pytest.approx(est[2].bler)


def test_block_fading_bler_is_the_outage_probability():
    # One Rayleigh fade per frame (= per block): the block fails when |h|^2 SNR falls below the
    # code's threshold, so BLER = P(|h|^2 < g / SNR) = 1 - exp(-g / SNR). The AWGN waterfall of
    # 16-QAM 1/2 at n = 1152 lies at g = 6.5 +- 1 dB (0 errors at 8 dB on AWGN).
    snr_db, blocks = 8.0, 80
    awgn = estimate_bler(N, Mcs(16, 0.5), snr_db, seed=3, **QUICK)
    fading = estimate_bler(N, Mcs(16, 0.5), snr_db, seed=3, min_block_errors=blocks,
                           max_blocks=blocks, batch_blocks=40,
                           channel_config=RayleighConfig(type="rayleigh", coherence_symbols=N))
    assert awgn.bler <= 0.05 and fading.blocks == blocks

    def outage(threshold_db: float) -> float:
        return 1 - math.exp(-10 ** ((threshold_db - snr_db) / 10))

    low, high = outage(5.5), outage(7.5)  # 0.43, 0.59
    sigma = math.sqrt(0.25 / blocks)
    assert low - 5 * sigma < fading.bler < high + 5 * sigma, fading


def test_same_seed_same_choice_and_memoised():
    a = select_mcs(N, SIZE, 10.0, seed=7, **QUICK)
    assert select_mcs(N, SIZE, 10.0, seed=7, **QUICK).estimate is a.estimate  # cached
    amc._estimate.cache_clear()
    b = select_mcs(N, SIZE, 10, seed=7, **QUICK)  # recomputed; int SNR = same point
    assert b == a and b.estimate is not a.estimate


def test_explicit_headers_leave_only_large_frames():
    # 128 px explicit frames need 142 bytes: of the default entries only 64-QAM 3/4 (159 B).
    choice = select_mcs(N, SIZE, 0.0, jpeg2000_header="explicit", seed=1, **QUICK)
    assert choice.mcs == Mcs(64, 0.75) and not choice.meets_target
    assert len(choice.evaluated) == 1


def test_errors():
    with pytest.raises(InputError, match=r"bandwidth: 64 channel uses carry no frame of at least "
                                         r"142 bytes \(a 768x512 \(width x height\) JPEG2000 "
                                         r"frame\) with any of"):
        select_mcs(64, (512, 768), 10.0, jpeg2000_header="explicit")
    with pytest.raises(ValueError, match=r"`bler_target` must be in \(0, 1\); got 0\."):
        select_mcs(N, SIZE, 10.0, bler_target=0)
    with pytest.raises(ValueError, match=r"`table` must hold at least one Mcs"):
        select_mcs(N, SIZE, 10.0, table=())
    with pytest.raises(TypeError, match=r"`table entry` must be Mcs; got \(16, 0\.5\)\."):
        select_mcs(N, SIZE, 10.0, table=[(16, 0.5)])
    with pytest.raises(ValueError, match=r"`jpeg2000_header` must be one of"):
        select_mcs(N, SIZE, 10.0, jpeg2000_header="none")
    with pytest.raises(ValueError, match=r"`modulation_order` must be one of .*; got 8\."):
        Mcs(8, 0.5)
    with pytest.raises(ValueError, match=r"`code_rate` must be in \[0\.2, 0\.92.*; got 0\.1\."):
        Mcs(4, 0.1)
    with pytest.raises(ValueError, match=r"`snr_db` must be a number or \+inf; got nan\."):
        estimate_bler(N, Mcs(4, 0.5), float("nan"))
    with pytest.raises(ValueError, match=r"`max_blocks` must be in \[1, inf\]; got 0\."):
        estimate_bler(N, Mcs(4, 0.5), 1.0, max_blocks=0)
    with pytest.raises(InputError, match=r"bandwidth: 8 channel uses at 4-QAM rate 0\.5"):
        estimate_bler(8, Mcs(4, 0.5), 1.0)


def test_equal_frames_the_lowest_bler_wins_then_table_order():
    # 16-QAM 3/4 and 64-QAM 1/2 both carry k = 864 bits in N symbols: the same frame. The
    # documented rule picks, among entries of that size meeting the target, the lowest
    # estimated BLER, and only on a tie the earlier table entry; both must be estimated.
    pair = {Mcs(16, 0.75), Mcs(64, 0.5)}
    choice = select_mcs(N, SIZE, 11.0, seed=1, **QUICK)
    same = [e for e in choice.evaluated if e.mcs in pair]
    assert len(same) == 2 and all(e.bler <= 0.1 for e in same)
    assert same[0].bler != same[1].bler  # the case under test: no tie at 11 dB, seed 1
    assert choice.meets_target and choice.estimate.bler == min(e.bler for e in same)
    # At 25 dB both are error-free: the earlier of the two in the table wins, either order.
    for table in ((Mcs(16, 0.75), Mcs(64, 0.5)), (Mcs(64, 0.5), Mcs(16, 0.75))):
        tied = select_mcs(N, SIZE, 25.0, table=table, seed=1, **QUICK)
        assert [e.bler for e in tied.evaluated] == [0.0, 0.0]
        assert tied.index == 0 and tied.mcs == table[0]


def test_a_bler_equal_to_the_target_meets_it():
    # "At most the target": an estimate exactly at the target is accepted, one just above not.
    est = estimate_bler(N, Mcs(16, 0.75), 10.0, seed=1, **QUICK)
    assert 0.0 < est.bler < 1.0
    target = est.block_errors / est.blocks
    at = select_mcs(N, SIZE, 10.0, table=(Mcs(16, 0.75),), bler_target=target, seed=1, **QUICK)
    assert at.meets_target and at.estimate is est
    below = select_mcs(N, SIZE, 10.0, table=(Mcs(16, 0.75),), bler_target=target * 0.999,
                       seed=1, **QUICK)
    assert not below.meets_target


def test_when_every_entry_fails_ties_go_to_the_smaller_frame():
    # At -20 dB every block fails (BLER 1 for all): the smaller frame is the more robust
    # report, whatever the table order.
    table = (Mcs(64, 0.75), Mcs(4, 0.5))
    choice = select_mcs(N, SIZE, -20.0, table=table, seed=1, **QUICK)
    assert [e.bler for e in choice.evaluated] == [1.0, 1.0]
    assert choice.mcs == Mcs(4, 0.5) and choice.index == 1 and not choice.meets_target
    assert choice.payload_bytes == 33  # (576 / 2 - 24) / 8


def test_a_frame_exactly_the_minimum_jpeg2000_frame_is_feasible():
    # 216 symbols of 4-QAM 1/2: one block of n = 432, k = 216, so (216 - 24) / 8 = 24 bytes,
    # exactly header + the smallest 32x32 implicit-header codestream.
    from semlink.codecs.jpeg2000 import minimum_codestream_bytes
    from semlink.links.classical import HEADER_BYTES
    assert HEADER_BYTES + minimum_codestream_bytes(32, 32, header="implicit") == 24
    choice = select_mcs(216, (32, 32), 30.0, table=(Mcs(4, 0.5),), seed=1, **QUICK)
    assert choice.payload_bytes == 24 and choice.meets_target


def test_stop_rule_and_batches_of_whole_frames():
    # At -5 dB every block fails. With min_block_errors = batch_blocks = 10 one batch of 10
    # errors already reaches the rule: exactly 10 blocks are sent, not 20.
    est = estimate_bler(N, Mcs(16, 0.5), -5.0, seed=3, min_block_errors=10, max_blocks=400,
                        batch_blocks=10)
    assert (est.blocks, est.block_errors) == (10, 10)
    # 1152 symbols of 16-QAM 1/2 are 3 blocks per frame; a batch of 4 blocks is rounded up to
    # 2 whole frames = 6 blocks (one batch suffices for one error).
    est = estimate_bler(1152, Mcs(16, 0.5), -5.0, seed=3, min_block_errors=1, batch_blocks=4)
    assert est.blocks_per_image == 3 and (est.blocks, est.block_errors) == (6, 6)
