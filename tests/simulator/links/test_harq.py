"""HARQ on the classical link, Chase combining and incremental redundancy: the draws of each
round recomputed by hand, what retransmissions buy and cost, and 5G code block groups (the
combining rule itself: tests/modulation/test_combining.py)."""
from __future__ import annotations

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.modulation.combining import chase_combine
from semlink.images import load_images
from semlink.links.classical import ClassicalLink
from semlink.links.harq import group_code_blocks
from tests.corrupt_blocks import CorruptBlocks

SIZE = 64
N = 288  # 16-QAM rate 1/2: a 72-byte budget


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_images("sample", SIZE, count=8)[0]


def _link(max_transmissions: int, **kwargs) -> ClassicalLink:
    return ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE),
                         max_transmissions=max_transmissions, **kwargs)


def test_one_transmission_is_the_link_without_harq(images):
    """max_transmissions = 1 sends once: the outputs and the channel's draws are the plain
    link's (its generator ends in the same state)."""
    runs = []
    for link in (ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE)), _link(1)):
        gen = torch.Generator().manual_seed(3)
        out = link.send(images, AWGNChannel(generator=gen), 4.0)
        runs.append((out, torch.rand(1, generator=gen)))
    (plain, after_plain), (once, after_once) = runs
    assert torch.equal(after_plain, after_once)
    assert torch.equal(plain.images, once.images) and bool(plain.failed.all())
    assert torch.equal(once.transmissions, torch.ones(8, dtype=torch.int64))


def test_each_round_resends_the_failed_frames_and_combines_them(images):
    """Recomputed by hand: round 1 sends all frames; round 2 sends the frames with a failed
    block through the same channel object (its next draws), the receiver combines the two
    copies (chase_combine) and decodes again."""
    link = _link(2)
    out = link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(7)), 6.0)
    channel = AWGNChannel(generator=torch.Generator().manual_seed(7))
    sent, _ = link.encode_frames(images)
    x = link.modulate(sent)
    x_hat, no_eff = channel(x, 6.0)
    bits, ok = link.demodulate(x_hat, no_eff)
    pending = ~ok.all(dim=1)
    assert 0 < int(pending.sum()) < 8  # 6 dB: in the waterfall
    again, again_no = channel(x[pending], 6.0)
    bits2, ok2 = link.demodulate(*chase_combine(x_hat[pending], no_eff[pending], again,
                                                again_no))
    bits[pending], ok[pending] = bits2, ok2
    assert torch.equal(out.transmissions, 1 + pending.long())
    assert torch.equal(out.block_errors, (~ok).sum(dim=1))
    assert torch.equal(out.bit_errors, (bits != sent).sum(dim=1))
    assert torch.equal(out.failed, ~ok.all(dim=1))


def test_retransmissions_carry_frames_through_below_the_cliff(images):
    """At 2 dB one send of 16-QAM rate 1/2 loses every frame; three sends combine to ~6.8 dB
    and deliver them all, at the cost of the channel uses of every send; at 20 dB one send
    suffices."""
    channel = AWGNChannel(generator=torch.Generator().manual_seed(1))
    assert bool(_link(1).send(images, channel, 2.0).failed.all())
    harq = _link(4).send(images, AWGNChannel(generator=torch.Generator().manual_seed(1)), 2.0)
    assert not bool(harq.failed.any()) and bool((harq.transmissions >= 2).all())
    assert int(harq.transmissions.max()) <= 4
    clean = _link(4).send(images, AWGNChannel(generator=torch.Generator().manual_seed(1)),
                              20.0)
    assert torch.equal(clean.transmissions, torch.ones(8, dtype=torch.int64))


def test_incremental_redundancy_sends_the_next_version_and_decodes_them_together(images):
    """Recomputed by hand: round 2 sends the failed frames' code blocks in redundancy version
    2, and the decoder gets both transmissions' LLRs (versions 0 and 2) at once."""
    link = _link(2, combining="ir")
    out = link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(7)), 6.0)
    channel = AWGNChannel(generator=torch.Generator().manual_seed(7))
    chain = link._chain
    sent, _ = link.encode_frames(images)
    x_hat, no_eff = channel(link.modulate(sent), 6.0)
    llr0 = chain.demapper(x_hat, no_eff)
    bits, ok = link.demodulate(x_hat, no_eff)
    pending = ~ok.all(dim=1)
    assert 0 < int(pending.sum()) < 8
    llr2 = chain.demapper(*channel(link.modulate(sent[pending], rv=2), 6.0))
    bits2, ok2 = chain.decoder(torch.stack([llr0[pending], llr2], dim=1), rv=[0, 2])
    bits[pending], ok[pending] = bits2, ok2
    assert torch.equal(out.transmissions, 1 + pending.long())
    assert torch.equal(out.block_errors, (~ok).sum(dim=1))
    assert torch.equal(out.bit_errors, (bits != sent).sum(dim=1))


def test_incremental_redundancy_beats_chase_at_a_high_code_rate(images):
    """16-QAM at rate 3/4, two sends at 5 dB: resending the same symbols (3 dB of combining
    gain) loses every frame, the second redundancy version (a rate-3/8 code in all) none."""
    results = {}
    for combining in ("chase", "ir"):
        link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), code_rate=0.75,
                             max_transmissions=2, combining=combining)
        out = link.send(images, AWGNChannel(generator=torch.Generator().manual_seed(0)), 5.0)
        results[combining] = int(out.failed.sum())
        assert torch.equal(out.transmissions, torch.full((8,), 2))
    assert results == {"chase": 8, "ir": 0}


def test_bad_max_transmissions():
    with pytest.raises(ValueError, match=r"`max_transmissions` must be in \[1, 16\]; got 0"):
        _link(0)
    with pytest.raises(ValueError, match=r"`max_transmissions` must be in \[1, 16\]; got 17"):
        _link(17)
    with pytest.raises(ValueError, match=r"`combining` must be one of 'chase', 'ir'; got 'mrc'"):
        _link(2, combining="mrc")


# ------------------------------------------------------------------ code block groups (CBG)

def test_code_block_groups_follow_ts_38_214():
    """M = min(N, C) groups; the first C mod M hold ceil(C / M) blocks, the others
    floor(C / M): C = 9, N = 6 gives sizes 2, 2, 2, 1, 1, 1; fewer blocks than groups, one
    block each; N = 1 is the whole row."""
    assert group_code_blocks(9, 6) == [0, 0, 1, 1, 2, 2, 3, 4, 5]
    assert group_code_blocks(8, 4) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert group_code_blocks(3, 8) == [0, 1, 2]
    assert group_code_blocks(5, 1) == [0] * 5


class _Scripted:
    """First call: the symbols of the chosen blocks negated (the CRC fails there); later calls:
    every symbol intact and 100 times as reliable, so one Chase combination repairs them."""

    def __init__(self, bad: dict[int, list[int]], block_symbols: int) -> None:
        self.first = CorruptBlocks(bad, block_symbols)
        self.calls = []

    def __call__(self, x, snr_db):
        self.calls.append(x.shape)
        if len(self.calls) == 1:
            return self.first(x, snr_db)
        return x.clone(), torch.full(x.shape, 1e-4)


def test_cbg_resends_only_the_groups_with_a_failed_block():
    """128 px at 1152 channel uses: 3 code blocks of 384 16-QAM symbols, in 2 groups (blocks
    0-1 and 2). A failure in block 0 resends group 0 (768 symbols), one in block 2 group 1
    (384); a clean frame is sent once. Whole-frame HARQ resends all 1152 of a failed frame."""
    images = load_images("sample", 128, count=3)[0]
    uses = {}
    for groups in (2, None):
        link = ClassicalLink(channel_uses=1152, image_size=(128, 128), max_transmissions=3,
                             code_block_groups=groups)
        assert link.code_plan.num_blocks == 3 and link.budget.coded_symbols == 1152
        out = link.send(images, _Scripted({0: [0], 1: [2]}, 384), 30.0)
        assert not bool(out.failed.any()) and int(out.block_errors.sum()) == 0
        assert out.transmissions.tolist() == [2, 2, 1]
        uses[groups] = out.channel_uses.tolist()
    assert uses == {2: [1152 + 768, 1152 + 384, 1152], None: [2304, 2304, 1152]}


def test_cbg_costs_fewer_channel_uses_for_the_same_frames():
    """Over AWGN at 6 dB, in the waterfall (3 code blocks per 128 px frame, 4 groups: one
    block each), every frame needs a second send; CBG delivers them all as whole-frame HARQ
    does for fewer channel uses: the blocks that arrived are not sent again. Chase and IR
    alike."""
    pictures = load_images("sample", 128, count=8)[0]
    for combining in ("chase", "ir"):
        runs = {}
        for groups in (None, 4):
            link = ClassicalLink(channel_uses=1152, image_size=(128, 128), max_transmissions=4,
                                 combining=combining, code_block_groups=groups)
            out = link.send(pictures, AWGNChannel(generator=torch.Generator().manual_seed(2)),
                                6.0)
            runs[groups] = out
        whole, cbg = runs[None], runs[4]
        assert int(whole.transmissions.min()) == 2  # the waterfall: every frame resent once
        assert int(cbg.failed.sum()) == int(whole.failed.sum()) == 0
        assert int(cbg.channel_uses.sum()) < 0.9 * int(whole.channel_uses.sum())  # 16 % here
        assert bool((cbg.channel_uses >= 1152).all())
