"""HARQ for any link that sends CRC-protected 5G LDPC code blocks: resend what failed, combine.

Shared by the classical link (a row is an image's frame), BER links (a row is one code block)
and digital semantic links (a row is an image's quantised embedding). After the first send, a
row with a code block whose CRC failed is sent again over fresh channel uses (the channel's next
draw), up to ``max_transmissions`` sends in all:

- ``chase``: the same symbols; the receiver combines every copy of a symbol by maximum-ratio
  combining (:func:`modulation.combining.chase_combine`) before demapping and decodes again;
- ``ir``: incremental redundancy; each send carries the code blocks' next redundancy version
  (:data:`modulation.ldpc.REDUNDANCY_VERSIONS`: 0, 2, 3, 1, then again) and the decoder adds
  every send's LLRs in each block's circular buffer.

Deciding which rows to resend reads one value per round back to the host; without
retransmissions (``max_transmissions`` 1) nothing is read.
"""
from __future__ import annotations

import torch

from channels._checks import check_int, check_one_of, check_type
from modulation.combining import chase_combine
from modulation.ldpc import REDUNDANCY_VERSIONS, CodeBlockDecoder, CodeBlockEncoder

__all__ = ["HARQ_COMBINING", "MAX_TRANSMISSIONS", "check_harq", "harq_settings", "retransmit"]

#: Most sends of one row (the first included).
MAX_TRANSMISSIONS = 16
#: How the sends of a row are combined.
HARQ_COMBINING = ("chase", "ir")


def check_harq(max_transmissions: int, combining: str) -> None:
    """Raise unless ``max_transmissions`` is an int in [1, 16] and ``combining`` one of
    :data:`HARQ_COMBINING`."""
    check_int(max_transmissions, name="max_transmissions", low=1, high=MAX_TRANSMISSIONS)
    check_type(combining, str, name="combining")
    check_one_of(combining, HARQ_COMBINING, name="combining")


def harq_settings(harq) -> dict[str, object]:
    """``max_transmissions`` and ``combining`` of a scenario's ``harq`` section, as
    :func:`retransmit` takes them; one send (no retransmission) for None."""
    if harq is None:
        return {"max_transmissions": 1, "combining": "chase"}
    return {"max_transmissions": harq.max_transmissions, "combining": harq.combining}


def retransmit(*, max_transmissions: int, combining: str, bits: torch.Tensor,
               x: torch.Tensor, x_hat: torch.Tensor, no_eff: torch.Tensor,
               received: torch.Tensor, block_ok: torch.Tensor, channel,
               snr_db: float | torch.Tensor, encoder: CodeBlockEncoder, mapper, demapper,
               decoder: CodeBlockDecoder) -> torch.Tensor:
    """Resend the rows whose first send left a failed code block, as the module says.

    :param max_transmissions: int in [1, 16]; sends of a row at most.
    :param combining: ``"chase"`` or ``"ir"``.
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
    :output transmissions: [rows] int64; sends of each row, the first included.
    """
    check_harq(max_transmissions, combining)
    transmissions = torch.ones(len(x), dtype=torch.int64, device=x.device)
    ir = combining == "ir" and max_transmissions > 1
    if ir:  # every send's LLRs, decoded together
        llrs = no_eff.new_zeros((len(x), max_transmissions, encoder.plan.num_coded_bits))
        llrs[:, 0] = demapper(x_hat, no_eff)
    for send in range(1, max_transmissions):
        pending = (~block_ok.all(dim=1)).nonzero().squeeze(1)  # a host read per round
        if len(pending) == 0:
            break
        snr = snr_db[pending] if isinstance(snr_db, torch.Tensor) and snr_db.ndim else snr_db
        if ir:
            versions = [REDUNDANCY_VERSIONS[i % len(REDUNDANCY_VERSIONS)]
                        for i in range(send + 1)]
            resent = mapper(encoder(bits[pending], rv=versions[-1]))
            llrs[pending, send] = demapper(*channel(resent, snr))
            decoded, passed = decoder(llrs[pending, :send + 1], rv=versions)
        else:
            x_hat[pending], no_eff[pending] = chase_combine(x_hat[pending], no_eff[pending],
                                                            *channel(x[pending], snr))
            decoded, passed = decoder(demapper(x_hat[pending], no_eff[pending]))
        received[pending], block_ok[pending] = decoded, passed
        transmissions[pending] += 1
    return transmissions
