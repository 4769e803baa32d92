"""Classical link: JPEG2000 (or JPEG) -> bytes -> CRC + 5G LDPC code blocks -> QAM -> channel
-> back.

Per image the transmitter sends one frame of ``payload_bytes`` (:mod:`semlink.links.framing`):
a 6-byte header (height, width and codestream length, 16 bits each, big-endian), the source
codec's codestream fitted to the rest of the budget, and zero padding. The codec is JPEG2000 or,
with ``codec="jpeg"``, JPEG: the whole file of the largest quality that fits
(:mod:`semlink.codecs.jpeg`; an image whose quality-1 file does not fit is lost). For JPEG2000,
by default the codestream has
implicit headers (``jpeg2000_header="implicit"``): both ends know the codec settings and the image
size, so the 118 bytes of JPEG2000 main header, tile-part header and EOC, identical for every
image of a size at every rate, are not sent and the receiver re-inserts them
(:func:`~semlink.codecs.jpeg2000.restore_header`). The smallest frame is then 6 + 18 bytes
instead of 6 + 136 with ``jpeg2000_header="explicit"`` (512 px or 256 px), which makes a 256 px
image fit the 288 channel uses (69 bytes at 16-QAM rate 1/2) of the semantic link.

The frame is cut into CRC24A-protected 5G LDPC code blocks that fill the given number of complex
channel uses as far as whole blocks go (:func:`plan_budget`), mapped to Gray QAM, sent through any
channel of ``channels/`` and decoded with belief propagation. What the receiver does with lost
code blocks is the failure policy (``paper``, ``error-concealment``, ``mean-image``; see
:mod:`semlink.links.framing`).

With ``max_transmissions > 1`` the link runs HARQ (:mod:`semlink.links.harq`): a frame with
a code block whose CRC fails is sent again over fresh channel uses, up to ``max_transmissions``
times in all, with Chase combining (the same symbols, combined by maximum-ratio combining) or
incremental redundancy (the code blocks' next 5G redundancy version, decoded with the earlier
ones). Every transmission costs the link's ``channel_uses``; with ``code_block_groups`` (5G's
CBG-based retransmission) a retransmission carries only the groups of code blocks with a
failed block and costs only their symbols. The output counts the channel uses per image.

The codec runs on the host (OpenJPEG, libjpeg); everything between bits and bits runs batched
on the link's device (HARQ reads one flag per round back to the host: which frames to resend).

:class:`ClassicalLink` is the ``classical`` link of the protocol (:mod:`semlink.links.protocol`):
``transmit`` is :meth:`ClassicalLink.send` with the per-image columns and code-block counts
the results keep; :meth:`ClassicalLink.from_config` builds a scenario's section, choosing the MCS
per SNR point with ``adaptive`` (:mod:`semlink.links.amc`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import torch

from semlink.channels._checks import check_int, check_type
from semlink.modulation.ldpc import (
    MAX_BLOCK_INFO_BITS,
    MAX_CODE_RATE,
    MIN_CODE_RATE,
    CodeBlockDecoder,
    CodeBlockEncoder,
    CodeBlockPlan,
    information_bits_per_block,
)
from semlink.modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order
from semlink.errors import InputError
from semlink.links.framing import (
    FAILURE_POLICIES,
    HEADER_BYTES,
    MAX_CODESTREAM_BYTES,
    MID_GREY,
    ClassicalOutput,
    ImageFrames,
    check_image_size,
    codec_label,
)
from semlink.links.harq import check_harq, retransmit
from semlink.links.protocol import (BitCounts, Dimensionality, ImageGenerators, LinkContext,
                                    Transmitted)

if TYPE_CHECKING:
    from semlink.links.amc import McsChoice
    from semlink.scenario import ClassicalLinkConfig

__all__ = ["HEADER_BYTES", "FAILURE_POLICIES", "MID_GREY", "ClassicalBudget", "ClassicalOutput",
           "plan_budget", "CodedQAM", "ClassicalLink", "frame_dimensionality"]

_CRC_BITS = 24


@dataclasses.dataclass(frozen=True)
class ClassicalBudget:
    """How ``channel_uses`` complex symbols are spent on one image.

    :ivar channel_uses: Complex channel uses per image (the symbols sent plus at most
        ``num_blocks * bits_per_symbol`` coded bits' worth that carry nothing).
    :ivar bits_per_symbol: log2(M).
    :ivar plan: The code-block plan (``plan.num_payload_bits`` = ``8 * payload_bytes``).
    :ivar payload_bytes: Frame bytes per image (header + codestream budget + padding).
    :ivar codestream_bytes: Bytes available to the JPEG2000 codestream,
        ``min(payload_bytes - HEADER_BYTES, 65535)`` (may be negative: no room at all).
    """

    channel_uses: int
    bits_per_symbol: int
    plan: CodeBlockPlan
    payload_bytes: int
    codestream_bytes: int

    @property
    def coded_symbols(self) -> int:
        """Symbols the code blocks fill and the link sends (<= ``channel_uses``)."""
        return self.plan.num_coded_bits // self.bits_per_symbol

    @property
    def payload_rate(self) -> float:
        """Frame bits per channel use."""
        return 8 * self.payload_bytes / self.channel_uses


def plan_budget(channel_uses: int, *, modulation: int, code_rate: float,
                codeword_length: int = 2048) -> ClassicalBudget:
    """Fill ``channel_uses`` complex symbols with CRC + LDPC code blocks and size the frame.

    The coded bits ``C = channel_uses * log2(M)`` are split into the fewest blocks of at most
    ``codeword_length`` bits (and at most 8448 information bits) of equal length ``n``
    (``floor(C / blocks)`` rounded down to a multiple of log2(M)); ``k = round(code_rate * n)``
    (:func:`~semlink.modulation.ldpc.information_bits_per_block`) includes the 24 CRC bits. The frame is
    the whole bytes that fit into the blocks' payload bits ``blocks * (k - 24)``; what is left
    (< 8 payload bits, ``C - blocks * n`` coded bits) is not used.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param modulation: QAM order M (2 = BPSK, 4, 16, 64, 256).
    :param code_rate: float in [0.2, 0.9258]; LDPC rate k/n (CRC bits count as information).
    :param codeword_length: int >= log2(M); longest codeword n in bits (default 2048).
    :output budget: :class:`ClassicalBudget`.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If ``modulation`` is not a QAM order or ``code_rate`` is out of range.
    :raises InputError: If the code blocks cannot carry a CRC and at least one byte.

    >>> b = plan_budget(1152, modulation=16, code_rate=0.5)   # 3 blocks of n = 1536, k = 768
    >>> b.plan.num_blocks, b.plan.n, b.plan.k, b.payload_bytes
    (3, 1536, 768, 279)
    """
    check_int(channel_uses, name="channel_uses", low=1)
    bits_per_symbol = bits_per_symbol_for_order(modulation)
    check_type(code_rate, (int, float), name="code_rate")
    if not MIN_CODE_RATE <= code_rate <= MAX_CODE_RATE:  # NaN fails too
        raise ValueError(f"`code_rate` must be in [{MIN_CODE_RATE}, {MAX_CODE_RATE}]; "
                         f"got {code_rate!r}.")
    check_int(codeword_length, name="codeword_length", low=bits_per_symbol)
    coded_bits = channel_uses * bits_per_symbol
    num_blocks = max(1, math.ceil(coded_bits / codeword_length))
    while information_bits_per_block(code_rate, coded_bits // num_blocks) > MAX_BLOCK_INFO_BITS:
        num_blocks += 1
    n = coded_bits // num_blocks
    n -= n % bits_per_symbol
    k = information_bits_per_block(code_rate, n)
    where = f"bandwidth: {channel_uses} channel uses at {modulation}-QAM rate {code_rate:g}"
    if k <= _CRC_BITS + 8:
        raise InputError(f"{where} give code blocks of {k} information bits; need more than "
                         f"{_CRC_BITS + 8} (CRC + one byte)")
    payload_bytes = num_blocks * (k - _CRC_BITS) // 8
    try:
        plan = CodeBlockPlan(num_payload_bits=8 * payload_bytes, k=k, n=n)
    except ValueError as err:  # (k, n) that is no 5G LDPC code: too short for this rate
        raise InputError(f"{where} give code blocks (k={k}, n={n}) that are no 5G LDPC code "
                         f"({err})") from None
    assert plan.num_blocks == num_blocks, (plan, num_blocks)
    return ClassicalBudget(channel_uses, bits_per_symbol, plan, payload_bytes,
                           min(payload_bytes - HEADER_BYTES, MAX_CODESTREAM_BYTES))


class CodedQAM:
    """The bit-level chain of a budget: CRC + 5G LDPC code blocks and Gray QAM, both ways.

    Shared by :class:`ClassicalLink` and the BLER estimates of :mod:`semlink.links.amc`.

    :param budget: :class:`ClassicalBudget` from :func:`plan_budget`.
    :param num_iter: int >= 1; LDPC decoder iterations (default 20).
    :param cn_update: The decoder's check-node rule (:data:`semlink.modulation.ldpc.CN_UPDATES`;
        default ``"boxplus"``).
    :param device: Torch device.
    """

    def __init__(self, budget: ClassicalBudget, *, num_iter: int = 20,
                 cn_update: str = "boxplus", device: str = "cpu") -> None:
        check_type(budget, ClassicalBudget, name="budget")
        bits_per_symbol = budget.bits_per_symbol
        self.budget = budget
        self._encoder = CodeBlockEncoder(budget.plan, bits_per_symbol=bits_per_symbol,
                                         check_values=False, device=device)
        self._decoder = CodeBlockDecoder(self._encoder, num_iter=num_iter, cn_update=cn_update,
                                         device=device)
        self._mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                 device=device)
        self._demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                     device=device)

    def modulate(self, bits: torch.Tensor, *, rv: int | None = None) -> torch.Tensor:
        """Frame bits -> QAM symbols of the code blocks.

        :input bits: [batch, 8 * payload_bytes] float 0/1.
        :input rv: Redundancy version of the code blocks (None: 0, the first transmission).
        :output x: [batch, coded_symbols] complex64, Es = 1. The ``channel_uses -
            coded_symbols`` uses that whole code blocks cannot fill are not sent.
        """
        return self._mapper(self._encoder(bits, rv=rv))

    def demodulate(self, x_hat: torch.Tensor, no_eff: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Equalised symbols -> LLRs -> LDPC decoding -> CRC check.

        :input x_hat: [batch, coded_symbols] complex; equalised symbols.
        :input no_eff: [batch, coded_symbols] float; effective noise variance per symbol.
        :output bits: [batch, 8 * payload_bytes] float32 0/1; decoded frame bits.
        :output block_ok: [batch, num_blocks] bool; CRC of each code block matches.
        """
        return self._decoder(self._demapper(x_hat, no_eff))

    @property
    def encoder(self) -> CodeBlockEncoder:
        """CRC + LDPC code blocks of the frame."""
        return self._encoder

    @property
    def decoder(self) -> CodeBlockDecoder:
        """Their BP decoder and CRC check."""
        return self._decoder

    @property
    def mapper(self) -> QAMMapper:
        """Gray QAM mapper."""
        return self._mapper

    @property
    def demapper(self) -> QAMDemapper:
        """Its LLR demapper."""
        return self._demapper


def frame_dimensionality(payload_bytes: int, image_size: tuple[int, int], channel_uses: int,
                         note: str) -> Dimensionality:
    """The Table 1 row of a classical frame: ``(payload_bytes,)`` bytes sent per image, the
    frame's header and padding included. Bytes, because they are the unit of the 8-bit image's
    values: the compression ratio ``3 H W / payload_bytes`` is the usual one (raw image bytes
    per frame byte), comparable with the values a semantic link sends.

    >>> row = frame_dimensionality(279, (512, 512), 1152, "frame bytes")
    >>> round(row.compression_ratio), round(row.percent_of_image, 4)
    (2819, 0.0355)
    """
    return Dimensionality((payload_bytes,), tuple(image_size), channel_uses, note)


class ClassicalLink:
    """JPEG2000 (or JPEG) + CRC + 5G LDPC + QAM for images of one size.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param image_size: Side of square images, or (height, width), pixels; ints in [1, 65535].
    :param modulation: QAM order M (default 16).
    :param code_rate: LDPC rate (default 1/2).
    :param codeword_length: Longest codeword in bits (default 2048).
    :param failure_policy: One of :data:`FAILURE_POLICIES` (default ``paper``).
    :param jpeg2000_header: ``implicit`` (default): the JPEG2000 headers are not sent, the
        receiver knows them; ``explicit``: the whole codestream is sent. See the module docstring.
    :param codec: ``jpeg2000`` (default) or ``jpeg`` (:mod:`semlink.codecs.jpeg`).
    :param num_iter: LDPC decoder iterations (default 20).
    :param cn_update: The LDPC decoder's check-node rule (default ``"boxplus"``).
    :param max_transmissions: int in [1, 16]; HARQ when > 1 (default 1: one transmission, as
        in the paper). See the module docstring.
    :param combining: ``"chase"`` (default: resend the same symbols, combine them) or ``"ir"``
        (incremental redundancy: resend the code blocks' next redundancy version, decode all
        versions together).
    :param code_block_groups: None (default: resend whole frames) or 2, 4, 6 or 8: resend only
        the groups of code blocks with a failed block (5G CBG-based retransmission).
    :param count_sends: Record each image's ``transmissions`` and ``channel_uses`` in the
        results (:meth:`transmit`'s columns); None (default): with HARQ
        (``max_transmissions > 1``).
    :param device: Torch device of the bit-level chain.
    :raises InputError: If the budget cannot hold the frame header and the smallest codestream
        (the message names the budget and the minimum frame bytes).
    :raises ValueError: If a parameter is out of range.
    :raises TypeError: If a parameter has the wrong type.
    :ivar mcs_choice: What adaptive modulation and coding chose (:meth:`from_config` with
        ``adaptive``), or None.
    """

    kind = "image"

    def __init__(self, *, channel_uses: int, image_size: int | tuple[int, int],
                 modulation: int = 16, code_rate: float = 0.5, codeword_length: int = 2048,
                 failure_policy: str = "paper", jpeg2000_header: str = "implicit",
                 codec: str = "jpeg2000", num_iter: int = 20, cn_update: str = "boxplus",
                 max_transmissions: int = 1, combining: str = "chase",
                 code_block_groups: int | None = None, count_sends: bool | None = None,
                 device: str = "cpu") -> None:
        check_image_size(image_size)
        check_harq(max_transmissions, combining, code_block_groups)
        self.max_transmissions = max_transmissions
        self.combining = combining
        self.code_block_groups = code_block_groups
        self.count_sends = max_transmissions > 1 if count_sends is None else bool(count_sends)
        self.budget = plan_budget(channel_uses, modulation=modulation, code_rate=code_rate,
                                  codeword_length=codeword_length)
        self._frames = ImageFrames(image_size=image_size,
                                   payload_bytes=self.budget.payload_bytes,
                                   failure_policy=failure_policy, codec=codec,
                                   jpeg2000_header=jpeg2000_header, device=device)
        self.image_size = self._frames.image_size
        self.jpeg2000_header = jpeg2000_header
        self.codec = codec
        if not self._frames.carries_images:
            minimum = self.minimum_frame_bytes
            smallest = (f"codestream with {jpeg2000_header} JPEG2000 headers"
                        if codec == "jpeg2000" else "file, a flat image at quality 1")
            raise InputError(
                f"bandwidth: {channel_uses} channel uses at {modulation}-QAM rate {code_rate:g} "
                f"carry {self.budget.payload_bytes} bytes per image; a {self.image_size[1]}x"
                f"{self.image_size[0]} (width x height) {codec_label(codec)} frame needs at "
                f"least {minimum} bytes ({HEADER_BYTES} header + {minimum - HEADER_BYTES} "
                f"{smallest})")
        self.mcs_choice: McsChoice | None = None
        self.modulation = modulation
        self.code_rate = code_rate
        self.failure_policy = failure_policy
        self.device = device
        self._chain = CodedQAM(self.budget, num_iter=num_iter, cn_update=cn_update,
                               device=device)

    @classmethod
    def from_config(cls, config: ClassicalLinkConfig, context: LinkContext) -> ClassicalLink:
        """The link a scenario's ``classical`` section (``channel_code: ldpc``) describes: its
        MCS, or with ``adaptive`` the one :func:`~semlink.links.amc.select_mcs` chooses at
        ``context.snr_db`` (one seed for all SNR points, ``derive_seed(seed, name, "amc")``:
        the same noise draws at every SNR keep the choice monotone in SNR).

        :raises InputError: ``links.NAME.bandwidth: ...`` when no frame fits.
        """
        from semlink.links.decoder import decoder_settings
        from semlink.links.harq import harq_settings
        from semlink.seeding import derive_seed

        try:
            channel_uses = config.channel_uses(context)
            modulation, code_rate, choice = config.modulation, config.code_rate, None
            if config.adaptive:
                from semlink.links.amc import select_mcs

                choice = select_mcs(channel_uses, context.image_shape, context.snr_db,
                                    channel_config=context.channel,
                                    bler_target=config.bler_target,
                                    codeword_length=config.codeword_length,
                                    jpeg2000_header=config.jpeg2000_header, codec=config.codec,
                                    **decoder_settings(config.decoder),
                                    seed=derive_seed(context.seed, context.name, "amc"),
                                    device=context.device)
                modulation, code_rate = choice.mcs.modulation, choice.mcs.code_rate
            link = cls(channel_uses=channel_uses, image_size=context.image_shape,
                       modulation=modulation, code_rate=code_rate,
                       codeword_length=config.codeword_length,
                       failure_policy=config.failure_policy,
                       jpeg2000_header=config.jpeg2000_header, codec=config.codec,
                       **harq_settings(config.harq), **decoder_settings(config.decoder),
                       count_sends=config.harq is not None, device=context.device)
        except InputError as err:  # "bandwidth: ..." -> "links.NAME.bandwidth: ..."
            raise InputError(f"links.{context.name}.{err}") from None
        link.mcs_choice = choice
        return link

    @property
    def channel_uses(self) -> int:
        """Complex channel uses per image."""
        return self.budget.channel_uses

    @property
    def scoring(self) -> str:
        """``paper`` under the paper's failure policy (a lost image gets the paper's
        constants), else ``concealed`` (the image the receiver shows is scored)."""
        return "paper" if self.failure_policy == "paper" else "concealed"

    @property
    def code_plan(self) -> CodeBlockPlan:
        """The code blocks of a frame (as :attr:`SemanticLink.code_plan
        <semlink.links.semantic.SemanticLink.code_plan>` for a digital embedding)."""
        return self.budget.plan

    @property
    def minimum_frame_bytes(self) -> int:
        """Smallest frame that carries an image: header + smallest codestream."""
        return self._frames.minimum_frame_bytes

    # ---------------------------------------------------------------- transmitter
    def encode_frames(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bytes]]:
        """Encode each image into the codestream budget and build its frame
        (:meth:`ImageFrames.encode <semlink.links.framing.ImageFrames.encode>`).

        :input images: [batch, 3, H, W] float in [0, 1], ``(H, W) == image_size``.
        :output bits: [batch, 8 * payload_bytes] float32 0/1 (bytes MSB first) on the link's
            device.
        :output codestreams: The codestreams as sent.
        :raises ValueError: If ``images`` has the wrong shape or values outside [0, 1].
        """
        return self._frames.encode(images)

    def modulate(self, bits: torch.Tensor, *, rv: int | None = None) -> torch.Tensor:
        """Frame bits [batch, 8 * payload_bytes] -> symbols [batch, coded_symbols] of
        redundancy version ``rv`` (:meth:`CodedQAM.modulate`)."""
        return self._chain.modulate(bits, rv=rv)

    # ---------------------------------------------------------------- receiver
    def demodulate(self, x_hat: torch.Tensor, no_eff: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat, no_eff) [batch, coded_symbols] -> (frame bits, block_ok [batch, num_blocks])
        (:meth:`CodedQAM.demodulate`)."""
        return self._chain.demodulate(x_hat, no_eff)

    def send(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor
             ) -> ClassicalOutput:
        """Send a batch of images through ``channel`` (``x_hat, no_eff = channel(x, snr_db)``).

        :input images: [batch, 3, H, W] float in [0, 1].
        :input snr_db: float or [batch] tensor; Es/N0 in dB per sent symbol.
        :output out: :class:`ClassicalOutput`; ``transmissions`` counts each frame's sends
            (HARQ), ``channel_uses`` what they took: :attr:`channel_uses` each, or with code
            block groups :attr:`channel_uses` for the first and the resent blocks' symbols
            for the others.
        """
        sent, _ = self.encode_frames(images)
        x = self.modulate(sent)
        x_hat, no_eff = channel(x, snr_db)
        received, block_ok = self.demodulate(x_hat, no_eff)
        chain = self._chain
        sends = retransmit(
            max_transmissions=self.max_transmissions, combining=self.combining, bits=sent, x=x,
            x_hat=x_hat, no_eff=no_eff, received=received, block_ok=block_ok, channel=channel,
            snr_db=snr_db, encoder=chain.encoder, mapper=chain.mapper, demapper=chain.demapper,
            decoder=chain.decoder, code_block_groups=self.code_block_groups)
        if self.code_block_groups is None:
            channel_uses = sends.transmissions * self.channel_uses
        else:
            block_symbols = self.budget.plan.n // self.budget.bits_per_symbol
            channel_uses = self.channel_uses + sends.resent_blocks * block_symbols
        out = self.decode_frames(received, block_ok)
        bit_errors = (received != sent).sum(dim=1)
        return dataclasses.replace(out, bit_errors=bit_errors, transmissions=sends.transmissions,
                                   channel_uses=channel_uses)

    def decode_frames(self, bits: torch.Tensor, block_ok: torch.Tensor) -> ClassicalOutput:
        """Apply the failure policy and decode the codestreams (on the host).

        :input bits: [batch, 8 * payload_bytes] float 0/1; decoded frame bits.
        :input block_ok: [batch, num_blocks] bool; CRC results.
        :output out: :class:`ClassicalOutput`; its ``bit_errors`` are zero here: only
            :meth:`send` knows what was sent.
        """
        return self._frames.decode(bits, block_ok, self.budget.plan.payload_bits_per_block)

    # ---------------------------------------------------------------- protocol
    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor,
                 generators: ImageGenerators) -> Transmitted:
        """:meth:`send`, as the runner keeps it (:class:`~semlink.links.protocol.ImageLink`;
        nothing random beyond the channel: ``generators`` is not used).

        :output out: :class:`~semlink.links.protocol.Transmitted`: the images (mid grey where
            lost), ``failed``; columns ``block_errors``, ``codestream_bytes_used``,
            ``bit_errors``, ``mcs_modulation``, ``mcs_code_rate`` (and ``transmissions``,
            ``channel_uses`` when :attr:`count_sends`); the frames' code-block counts.
        """
        out = self.send(images, channel, snr_db)
        blk, plan = out.block_errors, self.budget.plan
        modulation = 2 ** self.budget.bits_per_symbol
        columns = {"block_errors": blk, "codestream_bytes_used": out.bytes_used,
                   "bit_errors": out.bit_errors,
                   "mcs_modulation": torch.full_like(blk, modulation),
                   "mcs_code_rate": torch.full(blk.shape, plan.code_rate, dtype=torch.float64)}
        if self.count_sends:
            columns.update(transmissions=out.transmissions, channel_uses=out.channel_uses)
        count = len(images)
        ber = BitCounts(modulation, plan.code_rate, count * plan.num_payload_bits,
                        out.bit_errors.sum(), count * plan.num_blocks, blk.sum(),
                        bit_errors_squared=out.bit_errors.square().sum(),
                        block_errors_squared=blk.square().sum())
        return Transmitted(out.images, out.failed, columns, ber)

    def dimensionality(self) -> Dimensionality:
        """The frame in bytes (:func:`frame_dimensionality`)."""
        return frame_dimensionality(
            self.budget.payload_bytes, self.image_size, self.channel_uses,
            f"frame bytes ({codec_label(self.codec)}), {2 ** self.budget.bits_per_symbol}-QAM "
            f"LDPC r={self.code_rate:.3g}")

    def point_fields(self) -> dict[str, Any]:
        """What adaptive modulation and coding chose at this SNR point and the BLER it
        expected of it (``mcs``, ``mcs_estimated_bler``, ``mcs_estimate_blocks``); none
        otherwise."""
        choice = self.mcs_choice
        if choice is None:
            return {}
        return {"mcs": choice.mcs.name, "mcs_estimated_bler": choice.estimate.bler,
                "mcs_estimate_blocks": choice.estimate.blocks}
