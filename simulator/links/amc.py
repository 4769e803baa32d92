"""Adaptive modulation and coding for the classical link: pick the (QAM order, LDPC rate) per SNR.

For a given SNR each entry of an MCS table gets a Monte-Carlo estimate of its code-block error
rate (BLER) at the block length the classical link would use for ``channel_uses`` (the code
blocks of :func:`~semlink.links.classical.plan_budget`, random payload bits, Gray QAM and the
scenario's channel, decoded and CRC-checked exactly as in the link). The chosen entry is the one
with the largest frame (hence the largest JPEG2000 codestream and the highest quality) whose
estimated BLER is at most the target; if none meets it, the entry with the lowest estimated BLER
(the smaller frame on ties) is chosen and reported as missing the target.

The estimates are deterministic functions of their arguments (seeded; the payload bits and the
noise are drawn from generators seeded with ``seed`` alone, so every SNR sees the same noise
draw, scaled: common random numbers make the estimate, and the choice, monotone in SNR up to
rare exceptions of BP decoding). They are memoised per (entry, SNR, settings), so sweeping the
SNRs of a scenario estimates every (entry, SNR) at most once.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import torch

from semlink.channels._checks import check_int, check_type
from semlink.modulation.ldpc import MAX_CODE_RATE, MIN_CODE_RATE
from semlink.modulation.qam import bits_per_symbol_for_order
from semlink.channel import ChannelConfigKey, build_channel
from semlink.errors import InputError
from semlink.links.classical import HEADER_BYTES, ClassicalBudget, CodedQAM, plan_budget
from semlink.links.framing import codec_label, minimum_codestream_bytes
from semlink.scenario import AWGNConfig, ChannelConfig
from semlink.seeding import make_generator

__all__ = ["Mcs", "DEFAULT_MCS_TABLE", "BlerEstimate", "McsChoice", "estimate_bler",
           "select_mcs"]


@dataclasses.dataclass(frozen=True)
class Mcs:
    """One modulation and coding scheme.

    :param modulation: QAM order M (2, 4, 16, 64, 256).
    :param code_rate: LDPC rate k/n in [0.2, 0.9258] (CRC bits count as information).
    :raises TypeError: If a field has the wrong type.
    :raises ValueError: If a field is out of range.
    """

    modulation: int
    code_rate: float

    def __post_init__(self) -> None:
        bits_per_symbol_for_order(self.modulation)
        check_type(self.code_rate, (int, float), name="code_rate")
        if not MIN_CODE_RATE <= self.code_rate <= MAX_CODE_RATE:  # NaN fails too
            raise ValueError(f"`code_rate` must be in [{MIN_CODE_RATE}, {MAX_CODE_RATE}]; "
                             f"got {self.code_rate!r}.")

    @property
    def name(self) -> str:
        """E.g. ``16-QAM r=0.5``."""
        return f"{self.modulation}-QAM r={self.code_rate:.3g}"


#: 4-, 16- and 64-QAM at LDPC rates 1/2 and 3/4, most robust first.
DEFAULT_MCS_TABLE: tuple[Mcs, ...] = tuple(
    Mcs(m, r) for m in (4, 16, 64) for r in (0.5, 0.75))


@dataclasses.dataclass(frozen=True)
class BlerEstimate:
    """Monte-Carlo code-block error counts of one MCS at one SNR.

    :ivar mcs: The entry.
    :ivar snr_db: Es/N0 in dB per sent symbol.
    :ivar payload_bytes: Frame bytes per image of this entry (header + codestream + padding).
    :ivar blocks_per_image: Code blocks per frame.
    :ivar blocks: Code blocks simulated.
    :ivar block_errors: Blocks whose CRC failed.
    """

    mcs: Mcs
    snr_db: float
    payload_bytes: int
    blocks_per_image: int
    blocks: int
    block_errors: int

    @property
    def bler(self) -> float:
        """``block_errors / blocks``."""
        return self.block_errors / self.blocks

    @property
    def image_loss_rate(self) -> float:
        """``1 - (1 - bler)^blocks_per_image``: images lost under the ``paper`` policy if the
        blocks of a frame fail independently."""
        return 1.0 - (1.0 - self.bler) ** self.blocks_per_image


@dataclasses.dataclass(frozen=True)
class McsChoice:
    """The MCS picked for one SNR.

    :ivar mcs: The chosen entry; build the link with its ``modulation`` and ``code_rate``.
    :ivar index: Its position in the table.
    :ivar snr_db: The SNR it was chosen for.
    :ivar bler_target: The target it was chosen against.
    :ivar meets_target: ``estimate.bler <= bler_target``; False when no entry met it (then the
        entry with the lowest estimated BLER was chosen).
    :ivar estimate: Its BLER estimate.
    :ivar evaluated: Estimates of every entry that was simulated, largest frame first
        (entries with larger frames than the chosen one all missed the target).
    """

    mcs: Mcs
    index: int
    snr_db: float
    bler_target: float
    meets_target: bool
    estimate: BlerEstimate
    evaluated: tuple[BlerEstimate, ...]

    @property
    def payload_bytes(self) -> int:
        """Frame bytes per image of the chosen entry."""
        return self.estimate.payload_bytes


def estimate_bler(channel_uses: int, mcs: Mcs, snr_db: float, *,
                  channel_config: ChannelConfig | None = None, codeword_length: int = 2048,
                  num_iter: int = 20, cn_update: str = "boxplus",
                  min_block_errors: int = 20, max_blocks: int = 400, batch_blocks: int = 40,
                  seed: int = 0, device: str = "cpu") -> BlerEstimate:
    """Code-block error rate of ``mcs`` at ``snr_db`` with the classical link's code blocks.

    Frames of uniformly random payload bits are sent in batches of about ``batch_blocks`` code
    blocks until ``min_block_errors`` blocks failed or ``max_blocks`` were sent (classic stop
    rule: relative precision ~1/sqrt(min_block_errors) where the BLER is high, a resolution of
    1/max_blocks where it is low). Memoised: the same arguments return the cached estimate.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param mcs: :class:`Mcs`.
    :param snr_db: float, finite or ``+inf``; Es/N0 in dB per sent symbol.
    :param channel_config: The scenario's channel section; None = AWGN.
    :param codeword_length: Longest codeword in bits (default 2048), as for the link.
    :param num_iter: LDPC decoder iterations (default 20), as for the link.
    :param cn_update: The decoder's check-node rule (default ``"boxplus"``), as for the link.
    :param min_block_errors: int >= 1; stop after this many block errors (default 20).
    :param max_blocks: int >= 1; stop after this many blocks (default 400).
    :param batch_blocks: int >= 1; blocks per simulated batch (rounded up to whole frames).
    :param seed: int; seeds the payload and channel generators.
    :param device: Torch device.
    :output estimate: :class:`BlerEstimate`.
    :raises InputError: If ``channel_uses`` cannot hold code blocks of this MCS.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument is out of range.
    """
    check_type(mcs, Mcs, name="mcs")
    check_type(snr_db, (int, float), name="snr_db")
    if snr_db != snr_db or snr_db == -math.inf:
        raise ValueError(f"`snr_db` must be a number or +inf; got {snr_db!r}.")
    for name, value in (("min_block_errors", min_block_errors), ("max_blocks", max_blocks),
                        ("batch_blocks", batch_blocks)):
        check_int(value, name=name, low=1)
    check_int(seed, name="seed")
    config = AWGNConfig(type="awgn") if channel_config is None else channel_config
    return _estimate(channel_uses, mcs, float(snr_db), ChannelConfigKey(config), codeword_length,
                     num_iter, cn_update, min_block_errors, max_blocks, batch_blocks, seed,
                     str(device))


def select_mcs(channel_uses: int, image_size: tuple[int, int], snr_db: float, *,
               channel_config: ChannelConfig | None = None,
               table: Sequence[Mcs] = DEFAULT_MCS_TABLE, bler_target: float = 0.1,
               codeword_length: int = 2048, jpeg2000_header: str = "implicit",
               codec: str = "jpeg2000", num_iter: int = 20, cn_update: str = "boxplus",
               min_block_errors: int = 20, max_blocks: int = 400, batch_blocks: int = 40,
               seed: int = 0, device: str = "cpu") -> McsChoice:
    """Pick the MCS with the largest frame whose estimated BLER at ``snr_db`` is <= the target.

    Entries whose frame cannot hold the smallest frame of ``image_size`` (JPEG2000's, or
    JPEG's with ``codec="jpeg"``) are skipped.
    The others are estimated (:func:`estimate_bler`) from the largest frame down, stopping at
    the first frame size where an entry meets the target; among entries of that size (e.g.
    16-QAM 3/4 and 64-QAM 1/2) the lowest estimated BLER wins, then the table order.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param image_size: (height, width) in pixels.
    :param snr_db: float; Es/N0 in dB per sent symbol.
    :param channel_config: The scenario's channel section; None = AWGN.
    :param table: Non-empty sequence of :class:`Mcs` (default :data:`DEFAULT_MCS_TABLE`).
    :param bler_target: float in (0, 1); largest acceptable code-block error rate (default 0.1).
    :param codeword_length: Longest codeword in bits, as for the link.
    :param jpeg2000_header: ``implicit`` or ``explicit``, as for the link (sets the smallest
        frame).
    :param codec: ``jpeg2000`` (default) or ``jpeg``, as for the link (sets the smallest
        frame).
    :param num_iter: LDPC decoder iterations, as for the link (default 20).
    :param cn_update: The decoder's check-node rule, as for the link (default boxplus).
    :param min_block_errors: Stop rule of :func:`estimate_bler`.
    :param max_blocks: Stop rule of :func:`estimate_bler`.
    :param batch_blocks: Batch size of :func:`estimate_bler`.
    :param seed: int; seed of every estimate.
    :param device: Torch device.
    :output choice: :class:`McsChoice`.
    :raises InputError: If no entry's frame holds the smallest frame of ``image_size``.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument is out of range or ``table`` is empty.
    """
    check_type(table, (tuple, list), name="table")
    if not table:
        raise ValueError("`table` must hold at least one Mcs; got an empty sequence.")
    for entry in table:
        check_type(entry, Mcs, name="table entry")
    check_type(bler_target, (int, float), name="bler_target")
    if not 0.0 < bler_target < 1.0:  # NaN fails too
        raise ValueError(f"`bler_target` must be in (0, 1); got {bler_target!r}.")
    check_type(image_size, (tuple, list), name="image_size")
    if len(image_size) != 2:
        raise ValueError(f"`image_size` must be (height, width); got {image_size!r}.")
    minimum = HEADER_BYTES + minimum_codestream_bytes(tuple(image_size), codec=codec,
                                                      jpeg2000_header=jpeg2000_header)
    feasible = []  # (payload_bytes, table index)
    for index, entry in enumerate(table):
        budget = _budget(channel_uses, entry, codeword_length)
        if budget is not None and budget.payload_bytes >= minimum:
            feasible.append((budget.payload_bytes, index))
    if not feasible:
        raise InputError(f"bandwidth: {channel_uses} channel uses carry no frame of at least "
                         f"{minimum} bytes (a {image_size[1]}x{image_size[0]} (width x height) "
                         f"{codec_label(codec)} frame) "
                         f"with any of {[e.name for e in table]}")
    feasible.sort(key=lambda item: (-item[0], item[1]))
    evaluated: list[tuple[BlerEstimate, int]] = []
    for i, (payload, index) in enumerate(feasible):
        estimate = estimate_bler(channel_uses, table[index], snr_db,
                                 channel_config=channel_config, codeword_length=codeword_length,
                                 num_iter=num_iter, cn_update=cn_update,
                                 min_block_errors=min_block_errors, max_blocks=max_blocks,
                                 batch_blocks=batch_blocks, seed=seed, device=device)
        evaluated.append((estimate, index))
        last_of_size = i + 1 == len(feasible) or feasible[i + 1][0] != payload
        same_size = [(e, j) for e, j in evaluated if e.payload_bytes == payload]
        meeting = [(e, j) for e, j in same_size if e.bler <= bler_target]
        if last_of_size and meeting:
            estimate, index = min(meeting, key=lambda item: (item[0].bler, item[1]))
            return McsChoice(table[index], index, float(snr_db), float(bler_target), True,
                             estimate, tuple(e for e, _ in evaluated))
    # Nothing meets the target: the most robust estimate, the smaller frame on ties.
    estimate, index = min(evaluated, key=lambda item: (item[0].bler, item[0].payload_bytes,
                                                       item[1]))
    return McsChoice(table[index], index, float(snr_db), float(bler_target), False,
                     estimate, tuple(e for e, _ in evaluated))


# ------------------------------------------------------------------------------ internals
def _budget(channel_uses: int, mcs: Mcs, codeword_length: int) -> ClassicalBudget | None:
    """The link's budget for ``mcs``, or None if its code blocks cannot exist."""
    try:
        return plan_budget(channel_uses, modulation=mcs.modulation, code_rate=mcs.code_rate,
                           codeword_length=codeword_length)
    except InputError:
        return None


@functools.lru_cache(maxsize=64)
def _chain(channel_uses: int, mcs: Mcs, codeword_length: int, num_iter: int, cn_update: str,
           device: str) -> CodedQAM:
    budget = plan_budget(channel_uses, modulation=mcs.modulation, code_rate=mcs.code_rate,
                         codeword_length=codeword_length)
    return CodedQAM(budget, num_iter=num_iter, cn_update=cn_update, device=device)


@functools.lru_cache(maxsize=4096)
def _estimate(channel_uses: int, mcs: Mcs, snr_db: float, config: ChannelConfigKey,
              codeword_length: int, num_iter: int, cn_update: str, min_block_errors: int,
              max_blocks: int, batch_blocks: int, seed: int, device: str) -> BlerEstimate:
    chain = _chain(channel_uses, mcs, codeword_length, num_iter, cn_update, device)
    plan = chain.budget.plan
    rows = -(-batch_blocks // plan.num_blocks)  # whole frames per batch
    bits_gen = make_generator(seed, device)
    channel = build_channel(config.config, generator=make_generator(seed + 1, device),
                            device=device)
    blocks = errors = 0
    while errors < min_block_errors and blocks < max_blocks:
        payload = torch.randint(0, 2, (rows, plan.num_payload_bits), generator=bits_gen,
                                device=device, dtype=torch.float32)
        x_hat, no_eff = channel(chain.modulate(payload), snr_db)
        _, ok = chain.demodulate(x_hat, no_eff)  # [rows, num_blocks]
        blocks += ok.numel()
        errors += int((~ok).sum())  # one sync per batch, for the stop rule
    return BlerEstimate(mcs, snr_db, chain.budget.payload_bytes, plan.num_blocks, blocks,
                        errors)
