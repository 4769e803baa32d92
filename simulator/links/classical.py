"""Classical link: JPEG2000 -> bytes -> CRC + 5G LDPC code blocks -> QAM -> channel -> back.

Per image the transmitter sends one frame of ``payload_bytes``: a 6-byte header (height, width and
codestream length, 16 bits each, big-endian), the JPEG2000 codestream fitted to the rest of the
budget, and zero padding. By default the codestream has implicit headers
(``jpeg2000_header="implicit"``): both ends know the codec settings and the image size, so the
118 bytes of JPEG2000 main header, tile-part header and EOC, identical for every image of a size
at every rate, are not sent and the receiver re-inserts them
(:func:`~simulator.codecs.jpeg2000.restore_header`). The smallest frame is then 6 + 18 bytes
instead of 6 + 136 with ``jpeg2000_header="explicit"`` (512 px or 256 px), which makes a 256 px
image fit the 288 channel uses (69 bytes at 16-QAM rate 1/2) of the semantic link.

The frame is cut into CRC24A-protected 5G LDPC code blocks that fill the given number of complex
channel uses as far as whole blocks go (:func:`plan_budget`), mapped to Gray QAM, sent through any
channel of ``channels/`` and decoded with belief propagation.

What a receiver does with lost code blocks is the failure policy:

- ``paper``: any block whose CRC fails loses the image (scored PSNR 0, SSIM 0, LPIPS 1 as in the
  paper); the reconstruction is the mid-grey image.
- ``error-concealment``: JPEG2000 is progressive, so the codestream up to the first failed block
  is decoded (:func:`~simulator.codecs.jpeg2000.decode_prefix`); it fails only when the frame
  header (first block) is lost, or with explicit headers the JPEG2000 headers.
- ``mean-image``: a failed image is replaced by mid grey and scored as it is.

The codec runs on the host (OpenJPEG); everything between bits and bits runs batched on the
link's device.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from channels._checks import check_int, check_one_of, check_type
from modulation.ldpc import (
    MAX_BLOCK_INFO_BITS,
    MAX_CODE_RATE,
    MIN_CODE_RATE,
    CodeBlockDecoder,
    CodeBlockEncoder,
    CodeBlockPlan,
    information_bits_per_block,
)
from modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order
from simulator.codecs.jpeg2000 import (
    HEADER_MODES,
    decode,
    decode_prefix,
    encode_to_budget,
    minimum_codestream_bytes,
)
from simulator.errors import InputError

__all__ = ["HEADER_BYTES", "FAILURE_POLICIES", "MID_GREY", "ClassicalBudget", "ClassicalOutput",
           "plan_budget", "CodedQAM", "ClassicalLink"]

#: Frame header: image height, width and codestream length, 16 bits each, big-endian.
HEADER_BYTES = 6
#: What a receiver does when code blocks are lost (see the module docstring).
FAILURE_POLICIES = ("paper", "error-concealment", "mean-image")
#: Pixel value of the image shown for a lost image.
MID_GREY = 0.5
_CRC_BITS = 24
_MAX_FIELD = 0xFFFF  # largest value of a 16-bit header field


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
    (:func:`~modulation.ldpc.information_bits_per_block`) includes the 24 CRC bits. The frame is the whole bytes that fit into the blocks' payload
    bits ``blocks * (k - 24)``; what is left (< 8 payload bits, ``C - blocks * n`` coded bits)
    is not used.

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
                           min(payload_bytes - HEADER_BYTES, _MAX_FIELD))


class CodedQAM:
    """The bit-level chain of a budget: CRC + 5G LDPC code blocks and Gray QAM, both ways.

    Shared by :class:`ClassicalLink` and the BLER estimates of :mod:`simulator.links.amc`.

    :param budget: :class:`ClassicalBudget` from :func:`plan_budget`.
    :param num_iter: int >= 1; LDPC decoder iterations (default 20).
    :param device: Torch device.
    """

    def __init__(self, budget: ClassicalBudget, *, num_iter: int = 20,
                 device: str = "cpu") -> None:
        check_type(budget, ClassicalBudget, name="budget")
        bits_per_symbol = budget.bits_per_symbol
        self.budget = budget
        self._encoder = CodeBlockEncoder(budget.plan, bits_per_symbol=bits_per_symbol,
                                         check_values=False, device=device)
        self._decoder = CodeBlockDecoder(self._encoder, num_iter=num_iter, device=device)
        self._mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                 device=device)
        self._demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                     device=device)

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        """Frame bits -> QAM symbols of the code blocks.

        :input bits: [batch, 8 * payload_bytes] float 0/1.
        :output x: [batch, coded_symbols] complex64, Es = 1. The ``channel_uses -
            coded_symbols`` uses that whole code blocks cannot fill are not sent.
        """
        return self._mapper(self._encoder(bits))

    def demodulate(self, x_hat: torch.Tensor, no_eff: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Equalised symbols -> LLRs -> LDPC decoding -> CRC check.

        :input x_hat: [batch, coded_symbols] complex; equalised symbols.
        :input no_eff: [batch, coded_symbols] float; effective noise variance per symbol.
        :output bits: [batch, 8 * payload_bytes] float32 0/1; decoded frame bits.
        :output block_ok: [batch, num_blocks] bool; CRC of each code block matches.
        """
        return self._decoder(self._demapper(x_hat, no_eff))


@dataclasses.dataclass(frozen=True)
class ClassicalOutput:
    """What the receiver made of a batch.

    :ivar images: [batch, 3, H, W] float32 in [0, 1], on the link's device (mid grey where lost).
    :ivar failed: [batch] bool; the decode failed (under ``paper`` and ``mean-image``: any block
        lost; under ``error-concealment``: nothing decodable).
    :ivar block_errors: [batch] int64; code blocks whose CRC failed.
    :ivar bit_errors: [batch] int64; frame bit errors after decoding (counted against the
        sent frame, for BER curves).
    :ivar bytes_used: [batch] int64; codestream bytes the decoder used (0 where failed).
    :ivar concealed: [batch] bool; decoded from a prefix of a damaged codestream
        (``error-concealment`` only).
    :ivar failure_policy: The policy that produced this output.
    """

    images: torch.Tensor
    failed: torch.Tensor
    block_errors: torch.Tensor
    bit_errors: torch.Tensor
    bytes_used: torch.Tensor
    concealed: torch.Tensor
    failure_policy: str


class ClassicalLink:
    """JPEG2000 + CRC + 5G LDPC + QAM for images of one size.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param image_size: (height, width) in pixels, ints in [1, 65535].
    :param modulation: QAM order M (default 16).
    :param code_rate: LDPC rate (default 1/2).
    :param codeword_length: Longest codeword in bits (default 2048).
    :param failure_policy: One of :data:`FAILURE_POLICIES` (default ``paper``).
    :param jpeg2000_header: ``implicit`` (default): the JPEG2000 headers are not sent, the
        receiver knows them; ``explicit``: the whole codestream is sent. See the module docstring.
    :param num_iter: LDPC decoder iterations (default 20).
    :param device: Torch device of the bit-level chain.
    :raises InputError: If the budget cannot hold the frame header and the smallest codestream
        (the message names the budget and the minimum frame bytes).
    :raises ValueError: If a parameter is out of range.
    :raises TypeError: If a parameter has the wrong type.
    """

    def __init__(self, *, channel_uses: int, image_size: tuple[int, int], modulation: int = 16,
                 code_rate: float = 0.5, codeword_length: int = 2048,
                 failure_policy: str = "paper", jpeg2000_header: str = "implicit",
                 num_iter: int = 20, device: str = "cpu") -> None:
        check_type(image_size, (tuple, list), name="image_size")
        if len(image_size) != 2:
            raise ValueError(f"`image_size` must be (height, width); got {image_size!r}.")
        for name, side in zip(("height", "width"), image_size):
            check_int(side, name=f"image_size {name}", low=1, high=_MAX_FIELD)
        check_type(failure_policy, str, name="failure_policy")
        check_one_of(failure_policy, FAILURE_POLICIES, name="failure_policy")
        check_type(jpeg2000_header, str, name="jpeg2000_header")
        check_one_of(jpeg2000_header, HEADER_MODES, name="jpeg2000_header")
        self.jpeg2000_header = jpeg2000_header
        self.budget = plan_budget(channel_uses, modulation=modulation, code_rate=code_rate,
                                  codeword_length=codeword_length)
        self.image_size = (image_size[0], image_size[1])
        minimum = self.minimum_frame_bytes
        if self.budget.payload_bytes < minimum:
            raise InputError(
                f"bandwidth: {channel_uses} channel uses at {modulation}-QAM rate {code_rate:g} "
                f"carry {self.budget.payload_bytes} bytes per image; a {self.image_size[0]}x"
                f"{self.image_size[1]} JPEG2000 frame needs at least {minimum} bytes "
                f"({HEADER_BYTES} header + {minimum - HEADER_BYTES} codestream with "
                f"{jpeg2000_header} JPEG2000 headers)")
        self.modulation = modulation
        self.code_rate = code_rate
        self.failure_policy = failure_policy
        self.device = device
        self._chain = CodedQAM(self.budget, num_iter=num_iter, device=device)

    @property
    def channel_uses(self) -> int:
        """Complex channel uses per image."""
        return self.budget.channel_uses

    @property
    def minimum_frame_bytes(self) -> int:
        """Smallest frame that carries an image: header + smallest codestream."""
        return HEADER_BYTES + minimum_codestream_bytes(*self.image_size,
                                                       header=self.jpeg2000_header)

    # ---------------------------------------------------------------- transmitter
    def encode_frames(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bytes]]:
        """JPEG2000-encode each image into the codestream budget and build its frame.

        :input images: [batch, 3, H, W] float in [0, 1], ``(H, W) == image_size``.
        :output bits: [batch, 8 * payload_bytes] float32 0/1 (bytes MSB first) on the link's
            device.
        :output codestreams: The codestreams as sent (for error-free reference decodes; with
            implicit headers the packet data only).
        :raises ValueError: If ``images`` has the wrong shape or values outside [0, 1].
        """
        height, width = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, height, width):
            raise ValueError(f"`images` must be [batch, 3, {height}, {width}]; "
                             f"got {tuple(images.shape)}.")
        frames, codestreams = [], []
        for image in images:
            stream = encode_to_budget(image, self.budget.codestream_bytes,
                                      header=self.jpeg2000_header).codestream
            header = np.array([height, width, len(stream)], dtype=">u2").tobytes()
            frame = header + stream
            frames.append(frame + bytes(self.budget.payload_bytes - len(frame)))
            codestreams.append(stream)
        raw = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), -1)
        bits = np.unpackbits(raw, axis=1).astype(np.float32)  # [batch, 8 * payload_bytes]
        return torch.from_numpy(bits).to(self.device), codestreams

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        """Frame bits [batch, 8 * payload_bytes] -> symbols [batch, coded_symbols]
        (:meth:`CodedQAM.modulate`)."""
        return self._chain.modulate(bits)

    # ---------------------------------------------------------------- receiver
    def demodulate(self, x_hat: torch.Tensor, no_eff: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat, no_eff) [batch, coded_symbols] -> (frame bits, block_ok [batch, num_blocks])
        (:meth:`CodedQAM.demodulate`)."""
        return self._chain.demodulate(x_hat, no_eff)

    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor
                 ) -> ClassicalOutput:
        """Send a batch of images through ``channel`` (``x_hat, no_eff = channel(x, snr_db)``).

        :input images: [batch, 3, H, W] float in [0, 1].
        :input snr_db: float or [batch] tensor; Es/N0 in dB per sent symbol.
        :output out: :class:`ClassicalOutput`.
        """
        sent, _ = self.encode_frames(images)
        x_hat, no_eff = channel(self.modulate(sent), snr_db)
        received, block_ok = self.demodulate(x_hat, no_eff)
        out = self.decode_frames(received, block_ok)
        bit_errors = (received != sent).sum(dim=1)
        return dataclasses.replace(out, bit_errors=bit_errors)

    def decode_frames(self, bits: torch.Tensor, block_ok: torch.Tensor) -> ClassicalOutput:
        """Apply the failure policy and decode the JPEG2000 codestreams (on the host).

        :input bits: [batch, 8 * payload_bytes] float 0/1; decoded frame bits.
        :input block_ok: [batch, num_blocks] bool; CRC results.
        :output out: :class:`ClassicalOutput`; its ``bit_errors`` are zero here: only
            :meth:`transmit` knows what was sent.
        """
        height, width = self.image_size
        frames = np.packbits(bits.to(torch.uint8).cpu().numpy(), axis=1)  # [batch, payload_bytes]
        ok = block_ok.cpu().numpy()  # [batch, num_blocks]
        block_bits = self.budget.plan.payload_bits_per_block
        images, failed, used, concealed = [], [], [], []
        for frame, ok_row in zip(frames, ok):
            first_bad = None if ok_row.all() else int(np.argmin(ok_row))
            image, n_used, from_prefix = self._decode_one(frame.tobytes(), first_bad, block_bits)
            images.append(image if image is not None
                          else torch.full((3, height, width), MID_GREY))
            failed.append(image is None)
            used.append(n_used)
            concealed.append(from_prefix)
        batch = len(frames)
        return ClassicalOutput(
            images=torch.stack(images).to(self.device),
            failed=torch.tensor(failed, dtype=torch.bool, device=self.device),
            block_errors=torch.from_numpy((~ok).sum(axis=1).astype(np.int64)).to(self.device),
            bit_errors=torch.zeros(batch, dtype=torch.int64, device=self.device),
            bytes_used=torch.tensor(used, dtype=torch.int64, device=self.device),
            concealed=torch.tensor(concealed, dtype=torch.bool, device=self.device),
            failure_policy=self.failure_policy)

    def _decode_one(self, frame: bytes, first_bad: int | None, block_bits: int
                    ) -> tuple[torch.Tensor | None, int, bool]:
        """(image or None if lost, codestream bytes used, decoded from a prefix) of a frame."""
        height, width = self.image_size
        lost = None, 0, False
        if first_bad is not None and self.failure_policy != "error-concealment":
            return lost
        corrupt_at = len(frame) if first_bad is None else first_bad * block_bits // 8
        if corrupt_at < HEADER_BYTES:
            return lost
        h, w, length = np.frombuffer(frame[:HEADER_BYTES], dtype=">u2").tolist()
        if (h, w) != (height, width) or length > len(frame) - HEADER_BYTES:
            return lost  # a header the CRC did not catch
        stream = frame[HEADER_BYTES:HEADER_BYTES + length]
        if corrupt_at >= HEADER_BYTES + length:  # nothing lost, or only padding
            out = decode(stream, height=height, width=width, header=self.jpeg2000_header)
            return out.image, out.num_bytes_used, False
        out = decode_prefix(stream, corrupt_at - HEADER_BYTES, height=height, width=width,
                            header=self.jpeg2000_header)
        return out.image, out.num_bytes_used, not out.failed
