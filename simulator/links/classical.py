"""Classical link: JPEG2000 -> bytes -> CRC + 5G LDPC code blocks -> QAM -> channel -> back.

Per image the transmitter sends one frame of ``payload_bytes``: a 6-byte header (height, width and
codestream length, 16 bits each, big-endian), the JPEG2000 codestream fitted to the rest of the
budget, and zero padding. The frame is cut into CRC24A-protected 5G LDPC code blocks that exactly
fill the given number of complex channel uses (:func:`plan_budget`), mapped to Gray QAM, sent
through any channel of ``channels/`` and decoded with belief propagation.

What a receiver does with lost code blocks is the failure policy:

- ``paper``: any block whose CRC fails loses the image (scored PSNR 0, SSIM 0, LPIPS 1 as in the
  paper); the reconstruction is the mid-grey image.
- ``error-concealment``: JPEG2000 is progressive, so the codestream up to the first failed block
  is decoded (:func:`~simulator.codecs.jpeg2000.decode_prefix`); it fails only when the header
  block is lost.
- ``mean-image``: a failed image is replaced by mid grey and scored as it is.

The codec runs on the host (OpenJPEG); everything between bits and bits runs batched on the
link's device.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from channels._checks import check_int, check_one_of
from modulation.ldpc import CodeBlockDecoder, CodeBlockEncoder, CodeBlockPlan
from modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order
from simulator.codecs.jpeg2000 import decode, decode_prefix, encode_to_budget
from simulator.errors import InputError

__all__ = ["HEADER_BYTES", "FAILURE_POLICIES", "ClassicalBudget", "ClassicalOutput", "plan_budget",
           "ClassicalLink"]

#: Frame header: image height, width and codestream length, 16 bits each.
HEADER_BYTES = 6
FAILURE_POLICIES = ("paper", "error-concealment", "mean-image")
_MAX_K = 8448  # largest 5G LDPC information block (base graph 1)
_CRC_BITS = 24


@dataclasses.dataclass(frozen=True)
class ClassicalBudget:
    """How ``channel_uses`` complex symbols are spent on one image.

    :ivar channel_uses: Complex channel uses per image (sent symbols, padding included).
    :ivar bits_per_symbol: log2(M).
    :ivar plan: The code-block plan (``plan.num_payload_bits`` = ``8 * payload_bytes``).
    :ivar payload_bytes: Frame bytes per image (header + codestream budget).
    :ivar codestream_bytes: Bytes available to the JPEG2000 codestream.
    """

    channel_uses: int
    bits_per_symbol: int
    plan: CodeBlockPlan
    payload_bytes: int
    codestream_bytes: int

    @property
    def coded_symbols(self) -> int:
        """Symbols the code blocks fill (<= ``channel_uses``; the rest carry nothing)."""
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
    (a multiple of log2(M)); ``k = round(code_rate * n)`` includes the 24 CRC bits. The frame is
    the whole bytes that fit into the blocks' payload bits; what is left (< 8 bits, plus
    ``C - blocks * n`` coded bits) is reported by the plan, not hidden.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param modulation: QAM order M (4, 16, 64, 256; 2 = BPSK).
    :param code_rate: LDPC rate k/n, in [0.2, 0.925].
    :param codeword_length: Longest codeword n in bits (default 2048).
    :raises InputError: If the code blocks cannot carry a CRC and at least one byte.
    """
    check_int(channel_uses, name="channel_uses", low=1)
    bits_per_symbol = bits_per_symbol_for_order(modulation)
    coded_bits = channel_uses * bits_per_symbol
    num_blocks = max(1, math.ceil(coded_bits / codeword_length))
    while round(code_rate * (coded_bits // num_blocks)) > _MAX_K:
        num_blocks += 1
    n = coded_bits // num_blocks
    n -= n % bits_per_symbol
    k = round(code_rate * n)
    if k <= _CRC_BITS + 8:
        raise InputError(f"bandwidth: {channel_uses} channel uses at {modulation}-QAM rate "
                         f"{code_rate:g} give code blocks of {k} information bits; need more than "
                         f"{_CRC_BITS + 8} (CRC + one byte)")
    payload_bytes = num_blocks * (k - _CRC_BITS) // 8
    plan = CodeBlockPlan(num_payload_bits=8 * payload_bytes, k=k, n=n)
    return ClassicalBudget(channel_uses, bits_per_symbol, plan, payload_bytes,
                           payload_bytes - HEADER_BYTES)


@dataclasses.dataclass(frozen=True)
class ClassicalOutput:
    """What the receiver made of a batch.

    :ivar images: [batch, 3, H, W] float32 in [0, 1], on the link's device (mid grey where lost).
    :ivar failed: [batch] bool; the decode failed (under ``paper`` and ``mean-image``: any block
        lost; under ``error-concealment``: nothing decodable).
    :ivar block_errors: [batch] int64; code blocks whose CRC failed.
    :ivar bit_errors: [batch] int64; payload bit errors after decoding (counted against the
        sent frame, for BER curves).
    :ivar bytes_used: [batch] int64; codestream bytes the decoder used.
    """

    images: torch.Tensor
    failed: torch.Tensor
    block_errors: torch.Tensor
    bit_errors: torch.Tensor
    bytes_used: torch.Tensor


class ClassicalLink:
    """JPEG2000 + CRC + 5G LDPC + QAM for images of one size.

    :param channel_uses: Complex channel uses per image.
    :param image_size: (height, width) in pixels.
    :param modulation: QAM order M.
    :param code_rate: LDPC rate.
    :param codeword_length: Longest codeword in bits.
    :param failure_policy: One of :data:`FAILURE_POLICIES`.
    :param num_iter: LDPC decoder iterations.
    :param device: Torch device of the bit-level chain.
    :raises InputError: If the budget cannot hold the header and the smallest codestream.
    """

    def __init__(self, *, channel_uses: int, image_size: tuple[int, int], modulation: int = 16,
                 code_rate: float = 0.5, codeword_length: int = 2048,
                 failure_policy: str = "paper", num_iter: int = 20, device: str = "cpu") -> None:
        from simulator.codecs.jpeg2000 import minimum_codestream_bytes

        check_one_of(failure_policy, FAILURE_POLICIES, name="failure_policy")
        self.budget = plan_budget(channel_uses, modulation=modulation, code_rate=code_rate,
                                  codeword_length=codeword_length)
        self.image_size = tuple(image_size)
        minimum = minimum_codestream_bytes(*self.image_size) + HEADER_BYTES
        if self.budget.payload_bytes < minimum:
            raise InputError(
                f"bandwidth: {channel_uses} channel uses at {modulation}-QAM rate {code_rate:g} "
                f"carry {self.budget.payload_bytes} bytes per image; a {self.image_size[0]}x"
                f"{self.image_size[1]} JPEG2000 frame needs at least {minimum} bytes "
                f"({HEADER_BYTES} header + {minimum - HEADER_BYTES} codestream)")
        self.failure_policy = failure_policy
        self.device = device
        bits_per_symbol = self.budget.bits_per_symbol
        self._encoder = CodeBlockEncoder(self.budget.plan, bits_per_symbol=bits_per_symbol,
                                         check_values=False, device=device)
        self._decoder = CodeBlockDecoder(self._encoder, num_iter=num_iter, device=device)
        self._mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                 device=device)
        self._demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                     device=device)

    @property
    def channel_uses(self) -> int:
        return self.budget.channel_uses

    # ---------------------------------------------------------------- transmitter
    def encode_frames(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bytes]]:
        """JPEG2000-encode each image into the codestream budget and build its frame.

        :input images: [batch, 3, H, W] float in [0, 1].
        :output bits: [batch, 8 * payload_bytes] float32 0/1 on the link's device.
        :output codestreams: The codestreams (for error-free reference decodes).
        """
        height, width = self.image_size
        if tuple(images.shape[-2:]) != (height, width):
            raise ValueError(f"`images` must be [batch, 3, {height}, {width}]; "
                             f"got {tuple(images.shape)}.")
        frames, codestreams = [], []
        for image in images:
            stream = encode_to_budget(image, self.budget.codestream_bytes).codestream
            header = np.array([height, width, len(stream)], dtype=">u2").tobytes()
            frame = header + stream
            frames.append(frame + bytes(self.budget.payload_bytes - len(frame)))
            codestreams.append(stream)
        raw = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), -1)
        bits = np.unpackbits(raw, axis=1).astype(np.float32)  # MSB first
        return torch.from_numpy(bits).to(self.device), codestreams

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        """[batch, payload_bits] -> [batch, channel_uses] complex64 (unused uses carry 0)."""
        symbols = self._mapper(self._encoder(bits))  # [batch, coded_symbols]
        pad = self.budget.channel_uses - symbols.shape[-1]
        return torch.nn.functional.pad(symbols, (0, pad))

    # ---------------------------------------------------------------- receiver
    def demodulate(self, x_hat: torch.Tensor, no_eff: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Equalised symbols -> (payload bits [batch, payload_bits], block_ok [batch, blocks])."""
        used = self.budget.coded_symbols
        llr = self._demapper(x_hat[:, :used], no_eff[:, :used])
        return self._decoder(llr)

    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor
                 ) -> ClassicalOutput:
        """Send a batch of images through ``channel`` (``x_hat, no_eff = channel(x, snr_db)``).

        :input images: [batch, 3, H, W] float in [0, 1].
        :input snr_db: float or [batch] tensor; Es/N0 in dB.
        """
        sent, _ = self.encode_frames(images)
        x_hat, no_eff = channel(self.modulate(sent), snr_db)
        received, block_ok = self.demodulate(x_hat, no_eff)
        out = self.decode_frames(received, block_ok)
        bit_errors = (received != sent).sum(dim=1)
        return dataclasses.replace(out, bit_errors=bit_errors)

    def decode_frames(self, bits: torch.Tensor, block_ok: torch.Tensor) -> ClassicalOutput:
        """Apply the failure policy and decode the JPEG2000 codestreams (on the host).

        ``bit_errors`` of the result is zero here: only :meth:`transmit` knows what was sent.
        """
        height, width = self.image_size
        frames = np.packbits(bits.to(torch.uint8).cpu().numpy(), axis=1)  # [batch, payload_bytes]
        ok = block_ok.cpu().numpy()
        block_bits = self.budget.plan.payload_bits_per_block
        images, failed, used = [], [], []
        for frame, ok_row in zip(frames, ok):
            first_bad = int(np.argmin(ok_row)) if not ok_row.all() else None
            image, lost, n_used = self._decode_one(frame.tobytes(), first_bad, block_bits)
            images.append(image if image is not None else torch.full((3, height, width), 0.5))
            failed.append(lost)
            used.append(n_used)
        return ClassicalOutput(
            images=torch.stack(images).to(self.device),
            failed=torch.tensor(failed, device=self.device),
            block_errors=torch.from_numpy((~ok).sum(axis=1)).to(self.device),
            bit_errors=torch.zeros(len(frames), dtype=torch.int64, device=self.device),
            bytes_used=torch.tensor(used, dtype=torch.int64, device=self.device))

    def _decode_one(self, frame: bytes, first_bad: int | None, block_bits: int
                    ) -> tuple[torch.Tensor | None, bool, int]:
        height, width = self.image_size
        if first_bad is not None and self.failure_policy != "error-concealment":
            return None, True, 0
        corrupt_at = len(frame) if first_bad is None else first_bad * block_bits // 8
        if corrupt_at < HEADER_BYTES:
            return None, True, 0
        h, w, length = np.frombuffer(frame[:HEADER_BYTES], dtype=">u2").tolist()
        if (h, w) != (height, width) or length > len(frame) - HEADER_BYTES:
            return None, True, 0  # a header the CRC did not catch
        stream = frame[HEADER_BYTES:HEADER_BYTES + length]
        if first_bad is None:
            out = decode(stream, height=height, width=width)
        else:
            out = decode_prefix(stream, corrupt_at - HEADER_BYTES, height=height, width=width)
        return out.image, out.failed, out.num_bytes_used
