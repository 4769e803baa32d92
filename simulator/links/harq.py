"""HARQ for any link that sends CRC-protected 5G LDPC code blocks: resend what failed, combine.

Shared by the classical link (a row is an image's frame), BER links (a row is one code block)
and digital semantic links (a row is an image's quantised embedding). After the first send, a
row with a code block whose CRC failed is sent again over fresh channel uses (the channel's next
draw), up to ``max_transmissions`` sends in all:

- ``chase``: the same symbols; the receiver combines every copy of a symbol by maximum-ratio
  combining (:func:`semlink.modulation.combining.chase_combine`) before demapping and decodes again;
- ``ir``: incremental redundancy; each send carries the code blocks' next redundancy version
  (:data:`semlink.modulation.ldpc.REDUNDANCY_VERSIONS`: 0, 2, 3, 1, then again) and the decoder adds
  every send's LLRs in each block's circular buffer.

With ``code_block_groups`` (5G's CBG-based retransmission, TS 38.214 5.1.7) a row's code
blocks fall into at most that many groups (:func:`group_code_blocks`), and a retransmission
carries only the groups with a failed block; the others keep what they had. Without it the
whole row is sent again.

Deciding which rows to resend reads one value per round back to the host; without
retransmissions (``max_transmissions`` 1) nothing is read.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from semlink.channels._checks import check_int, check_one_of, check_type
from semlink.modulation.combining import chase_combine
from semlink.modulation.ldpc import REDUNDANCY_VERSIONS, CodeBlockDecoder, CodeBlockEncoder

__all__ = ["CODE_BLOCK_GROUPS", "HARQ_COMBINING", "MAX_TRANSMISSIONS", "HarqSends",
           "check_harq", "group_code_blocks", "harq_settings", "retransmit"]

#: Most sends of one row (the first included).
MAX_TRANSMISSIONS = 16
#: How the sends of a row are combined.
HARQ_COMBINING = ("chase", "ir")
#: Most code block groups per row 5G allows (maxCodeBlockGroupsPerTransportBlock).
CODE_BLOCK_GROUPS = (2, 4, 6, 8)


class HarqSends(NamedTuple):
    """What :func:`retransmit` sent of each row.

    :ivar transmissions: [rows] int64; sends of the row, the first included.
    :ivar resent_blocks: [rows] int64; code blocks carried by its retransmissions (the whole
        row's blocks per retransmission without code block groups).
    """

    transmissions: torch.Tensor
    resent_blocks: torch.Tensor


def check_harq(max_transmissions: int, combining: str,
               code_block_groups: int | None = None) -> None:
    """Raise unless ``max_transmissions`` is an int in [1, 16], ``combining`` one of
    :data:`HARQ_COMBINING` and ``code_block_groups`` None or one of :data:`CODE_BLOCK_GROUPS`."""
    check_int(max_transmissions, name="max_transmissions", low=1, high=MAX_TRANSMISSIONS)
    check_type(combining, str, name="combining")
    check_one_of(combining, HARQ_COMBINING, name="combining")
    if code_block_groups is not None:
        check_one_of(code_block_groups, CODE_BLOCK_GROUPS, name="code_block_groups")


def harq_settings(harq) -> dict[str, object]:
    """``max_transmissions``, ``combining`` and ``code_block_groups`` of a scenario's ``harq``
    section, as :func:`retransmit` takes them; one send (no retransmission) for None."""
    if harq is None:
        return {"max_transmissions": 1, "combining": "chase", "code_block_groups": None}
    return {"max_transmissions": harq.max_transmissions, "combining": harq.combining,
            "code_block_groups": harq.code_block_groups}


def group_code_blocks(num_blocks: int, max_groups: int) -> list[int]:
    """The group of each code block (TS 38.214 5.1.7.1): ``M = min(max_groups, C)`` groups of
    consecutive blocks, the first ``C mod M`` of ``ceil(C / M)`` blocks, the rest of
    ``floor(C / M)``.

    :param num_blocks: int >= 1; code blocks ``C`` of a row.
    :param max_groups: int >= 1; most groups.
    :output groups: list of ``C`` ints in [0, M - 1], non-decreasing.

    >>> group_code_blocks(7, 4), group_code_blocks(3, 8)
    ([0, 0, 1, 1, 2, 2, 3], [0, 1, 2])
    """
    check_int(num_blocks, name="num_blocks", low=1)
    check_int(max_groups, name="max_groups", low=1)
    groups = min(max_groups, num_blocks)
    larger = num_blocks % groups  # groups of ceil(C / M) blocks, first
    sizes = [-(-num_blocks // groups)] * larger + [num_blocks // groups] * (groups - larger)
    return [g for g, size in enumerate(sizes) for _ in range(size)]


def retransmit(*, max_transmissions: int, combining: str, bits: torch.Tensor,
               x: torch.Tensor, x_hat: torch.Tensor, no_eff: torch.Tensor,
               received: torch.Tensor, block_ok: torch.Tensor, channel,
               snr_db: float | torch.Tensor, encoder: CodeBlockEncoder, mapper, demapper,
               decoder: CodeBlockDecoder, code_block_groups: int | None = None) -> HarqSends:
    """Resend the rows whose first send left a failed code block, as the module says.

    :param max_transmissions: int in [1, 16]; sends of a row at most.
    :param combining: ``"chase"`` or ``"ir"``.
    :param code_block_groups: None (default: resend whole rows) or one of
        :data:`CODE_BLOCK_GROUPS` (resend the groups with a failed block). The channel is
        still drawn for a whole row; the blocks not resent ignore their part of it, which
        for a channel that treats symbols alike (AWGN, fast or block fading of whole
        blocks) is the same as not sending them.
    :input bits: [rows, num_payload_bits] float 0/1; what the rows carry.
    :input x: [rows, coded_symbols] complex; the first send's symbols (version 0).
    :input x_hat: [rows, coded_symbols] complex; what the channel delivered of them (updated in
        place with the Chase combination).
    :input no_eff: [rows, coded_symbols] float; its noise (updated in place likewise).
    :input received: [rows, num_payload_bits] float; the decoded bits, updated in place.
    :input block_ok: [rows, num_blocks] bool; the CRC results, updated in place.
    :param channel: ``x_hat, no_eff = channel(x, snr_db)``; each call is a new draw.
    :input snr_db: float or [rows] tensor.
    :param encoder, mapper, demapper, decoder: The link's code blocks and QAM.
    :output sends: :class:`HarqSends`.
    """
    check_harq(max_transmissions, combining, code_block_groups)
    transmissions = torch.ones(len(x), dtype=torch.int64, device=x.device)
    resent_blocks = torch.zeros_like(transmissions)
    if max_transmissions == 1:  # one send: no groups to copy to the device, nothing to read
        return HarqSends(transmissions, resent_blocks)
    plan = encoder.plan
    groups = group_code_blocks(plan.num_blocks, code_block_groups or 1)  # 1: the whole row
    group_of = torch.tensor(groups, device=x.device)  # [num_blocks]
    ir = combining == "ir"
    if ir:  # every send's LLRs, decoded together
        llrs = no_eff.new_zeros((len(x), max_transmissions, plan.num_coded_bits))
        llrs[:, 0] = demapper(x_hat, no_eff)
    for send in range(1, max_transmissions):
        pending = (~block_ok.all(dim=1)).nonzero().squeeze(1)  # a host read per round
        if len(pending) == 0:
            break
        snr = snr_db[pending] if isinstance(snr_db, torch.Tensor) and snr_db.ndim else snr_db
        resend = _blocks_to_resend(block_ok[pending], group_of, groups[-1] + 1)
        if ir:
            versions = [REDUNDANCY_VERSIONS[i % len(REDUNDANCY_VERSIONS)]
                        for i in range(send + 1)]
            resent = mapper(encoder(bits[pending], rv=versions[-1]))
            fresh = demapper(*channel(resent, snr))
            llrs[pending, send] = fresh * resend.repeat_interleave(plan.n, dim=1)
            decoded, passed = decoder(llrs[pending, :send + 1], rv=versions)
        else:
            combined = chase_combine(x_hat[pending], no_eff[pending], *channel(x[pending], snr))
            symbols = resend.repeat_interleave(x.shape[1] // plan.num_blocks, dim=1)
            x_hat[pending] = torch.where(symbols, combined[0], x_hat[pending])
            no_eff[pending] = torch.where(symbols, combined[1], no_eff[pending])
            decoded, passed = decoder(demapper(x_hat[pending], no_eff[pending]))
        received[pending], block_ok[pending] = decoded, passed
        transmissions[pending] += 1
        resent_blocks[pending] += resend.sum(dim=1)
    return HarqSends(transmissions, resent_blocks)


def _blocks_to_resend(block_ok: torch.Tensor, group_of: torch.Tensor,
                      num_groups: int) -> torch.Tensor:
    """[rows, num_blocks] bool: the blocks of every group that holds a failed block."""
    failed = (~block_ok).to(torch.int64)
    failed_groups = failed.new_zeros((len(failed), num_groups)).index_add_(1, group_of, failed)
    return failed_groups[:, group_of] > 0
