"""Frames of the classical links: header + codestream + padding, and back to images.

One image is one frame of ``payload_bytes``: a 6-byte header (height, width and codestream
length, 16 bits each, big-endian), the source codec's codestream fitted to the rest of the budget,
and zero padding. The codec (``codec``) is JPEG2000 (:mod:`semlink.codecs.jpeg2000`, with
implicit or explicit headers) or JPEG (:mod:`semlink.codecs.jpeg`: the whole file, the largest
quality that fits; an image whose quality-1 file does not fit is not sent, length 0, and lost).
The receiver side applies the link's failure policy to a frame whose code blocks
(:class:`~semlink.links.classical.ClassicalLink`) or whole codeword
(:class:`~semlink.links.capacity.CapacityLink`) may be lost:

- ``paper``: any lost block loses the image (scored PSNR 0, SSIM 0, LPIPS 1 as in the paper);
  the reconstruction is the mid-grey image.
- ``error-concealment``: the codestream up to the first lost block is decoded. JPEG2000 is
  progressive (:func:`~semlink.codecs.jpeg2000.decode_prefix`: a blurrier image); JPEG is
  sequential (:func:`~semlink.codecs.jpeg.decode_prefix`: the top of the image, mid grey
  below). It fails only when the frame header is lost, or the codec's headers (with explicit
  JPEG2000 headers, or JPEG's tables up to the start of scan).
- ``mean-image``: a failed image is replaced by mid grey and scored as it is.

The codecs run on the host (OpenJPEG, libjpeg); bits come and go as tensors on the link's device.
A batch's images are encoded and decoded on up to ``threads`` threads at once (Pillow releases
the GIL while its codecs run, so a GPU run's host work overlaps), with the same bytes and
images as one thread: each image is coded alone, the results kept in the batch's order.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from semlink.channels._checks import check_int, check_one_of, check_type
from semlink.codecs import jpeg, jpeg2000
from semlink.codecs.jpeg2000 import HEADER_MODES

__all__ = ["HEADER_BYTES", "FAILURE_POLICIES", "CODECS", "MID_GREY", "MAX_CODESTREAM_BYTES",
           "CODEC_THREADS_ENV", "ClassicalOutput", "ImageFrames", "check_image_size",
           "codec_label", "codec_threads", "minimum_codestream_bytes"]

#: Frame header: image height, width and codestream length, 16 bits each, big-endian.
HEADER_BYTES = 6
#: What a receiver does when code blocks are lost (see the module docstring).
FAILURE_POLICIES = ("paper", "error-concealment", "mean-image")
#: Source codecs of the classical links.
CODECS = ("jpeg2000", "jpeg")
#: Pixel value of the image shown for a lost image.
MID_GREY = 0.5
#: Largest codestream the 16-bit length field of the header can announce.
MAX_CODESTREAM_BYTES = 0xFFFF
#: Environment variable: threads that encode or decode a batch's images (default min(4, CPUs)).
CODEC_THREADS_ENV = "SEMLINK_CODEC_THREADS"

_T = TypeVar("_T")
_R = TypeVar("_R")


def codec_threads(threads: int | None = None) -> int:
    """Threads for a batch's codec work: ``threads``, else ``SEMLINK_CODEC_THREADS``, else
    ``min(4, os.cpu_count())``.

    :raises TypeError: If ``threads`` is not an int (a bool neither).
    :raises ValueError: If ``threads`` is below 1, or the variable holds no int >= 1.
    """
    if threads is None:
        text = os.environ.get(CODEC_THREADS_ENV, "").strip()
        if not text:
            return min(4, os.cpu_count() or 1)
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"`{CODEC_THREADS_ENV}` must be an int >= 1; got {text!r}.")
        return int(text)
    check_int(threads, name="threads", low=1)
    return threads


def _map(fn: Callable[[_T], _R], items: Sequence[_T], threads: int) -> list[_R]:
    """``[fn(x) for x in items]``, on up to ``threads`` threads, in the items' order."""
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclasses.dataclass(frozen=True)
class ClassicalOutput:
    """What the receiver made of a batch.

    :ivar images: [batch, 3, H, W] float32 in [0, 1], on the link's device (mid grey where lost).
    :ivar failed: [batch] bool; the decode failed (under ``paper`` and ``mean-image``: any block
        lost; under ``error-concealment``: nothing decodable).
    :ivar block_errors: [batch] int64; code blocks whose CRC failed (the capacity link: 1 where
        its one codeword was in outage).
    :ivar bit_errors: [batch] int64; frame bit errors after decoding (counted against the
        sent frame, for BER curves; 0 for the capacity link, which has no bit errors to count).
    :ivar bytes_used: [batch] int64; codestream bytes the decoder used (0 where failed).
    :ivar concealed: [batch] bool; decoded from a prefix of a damaged codestream
        (``error-concealment`` only).
    :ivar failure_policy: The policy that produced this output.
    :ivar mutual_information_bits: [batch] float64 or None; the capacity link's realised mutual
        information over the frame's channel uses, bits (None for coded links).
    :ivar transmissions: [batch] int64 or None; how often each frame was sent (HARQ: 1 plus
        its retransmissions; None where the link does not count them).
    :ivar channel_uses: [batch] int64 or None; channel uses each frame took, retransmissions
        included (None where the link does not count them).
    """

    images: torch.Tensor
    failed: torch.Tensor
    block_errors: torch.Tensor
    bit_errors: torch.Tensor
    bytes_used: torch.Tensor
    concealed: torch.Tensor
    failure_policy: str
    mutual_information_bits: torch.Tensor | None = None
    transmissions: torch.Tensor | None = None
    channel_uses: torch.Tensor | None = None


def check_image_size(image_size: object) -> tuple[int, int]:
    """``image_size`` as ``(height, width)``, each in [1, 65535] (the header's 16-bit fields):
    a side of a square (an int, as :class:`~semlink.links.semantic.SemanticLink` takes it) or
    a ``(height, width)`` pair.

    :raises TypeError: If it is neither an int nor a pair of ints.
    :raises ValueError: If it has not two entries or a side is out of range.

    >>> check_image_size(512), check_image_size((512, 768))
    ((512, 512), (512, 768))
    """
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    check_type(image_size, (tuple, list), name="image_size")
    if len(image_size) != 2:
        raise ValueError(f"`image_size` must be (height, width); got {image_size!r}.")
    for name, side in zip(("height", "width"), image_size):
        check_int(side, name=f"image_size {name}", low=1, high=MAX_CODESTREAM_BYTES)
    return image_size[0], image_size[1]


def codec_label(codec: str) -> str:
    """How messages name a codec: ``JPEG2000`` or ``JPEG``."""
    return codec.upper()


def minimum_codestream_bytes(image_size: tuple[int, int], *, codec: str = "jpeg2000",
                             jpeg2000_header: str = "implicit") -> int:
    """Smallest codestream of ``codec`` for an image of ``image_size`` (height, width): for
    JPEG2000 the empty packets (with explicit headers the headers too,
    :func:`semlink.codecs.jpeg2000.minimum_codestream_bytes`), for JPEG the file of a flat image
    at quality 1 (:func:`semlink.codecs.jpeg.minimum_file_bytes`). A frame needs
    :data:`HEADER_BYTES` more.

    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument is out of range.

    >>> minimum_codestream_bytes((256, 256)), minimum_codestream_bytes((256, 256), codec="jpeg")
    (18, 665)
    """
    height, width = check_image_size(image_size)
    _check_codec(codec, jpeg2000_header)
    if codec == "jpeg":
        return jpeg.minimum_file_bytes(height, width)
    return jpeg2000.minimum_codestream_bytes(height, width, header=jpeg2000_header)


def _check_codec(codec: str, jpeg2000_header: str) -> None:
    check_type(codec, str, name="codec")
    check_one_of(codec, CODECS, name="codec")
    check_type(jpeg2000_header, str, name="jpeg2000_header")
    check_one_of(jpeg2000_header, HEADER_MODES, name="jpeg2000_header")


class ImageFrames:
    """Frames of one image size, payload size and codec, both ways, with a failure policy.

    :param image_size: Side of square images, or (height, width), pixels; ints in [1, 65535].
    :param payload_bytes: int >= 0; frame bytes per image (header + codestream + padding).
        A frame smaller than :attr:`minimum_frame_bytes` carries no image: every image is lost.
    :param failure_policy: One of :data:`FAILURE_POLICIES`.
    :param codec: One of :data:`CODECS` (default ``jpeg2000``).
    :param jpeg2000_header: JPEG2000 only: ``implicit`` (the JPEG2000 headers are not sent, the
        receiver knows them) or ``explicit`` (the whole codestream is sent).
    :param device: Torch device of the bits and the decoded images.
    :param threads: int >= 1; threads that encode or decode a batch's images at once (the
        results do not depend on it); None = :func:`codec_threads`'s default.
    :raises TypeError: If a parameter has the wrong type.
    :raises ValueError: If a parameter is out of range.
    """

    def __init__(self, *, image_size: int | tuple[int, int], payload_bytes: int,
                 failure_policy: str = "paper", codec: str = "jpeg2000",
                 jpeg2000_header: str = "implicit", device: str = "cpu",
                 threads: int | None = None) -> None:
        self.image_size = check_image_size(image_size)
        check_int(payload_bytes, name="payload_bytes", low=0)
        check_type(failure_policy, str, name="failure_policy")
        check_one_of(failure_policy, FAILURE_POLICIES, name="failure_policy")
        _check_codec(codec, jpeg2000_header)
        self.payload_bytes = payload_bytes
        self.failure_policy = failure_policy
        self.codec = codec
        self.jpeg2000_header = jpeg2000_header
        self.device = device
        self.threads = codec_threads(threads)

    @property
    def codestream_bytes(self) -> int:
        """Bytes available to the codestream: ``min(payload_bytes - 6, 65535)`` (may be
        negative: no room at all)."""
        return min(self.payload_bytes - HEADER_BYTES, MAX_CODESTREAM_BYTES)

    @property
    def minimum_frame_bytes(self) -> int:
        """Smallest frame that carries an image: header + smallest codestream."""
        return HEADER_BYTES + minimum_codestream_bytes(self.image_size, codec=self.codec,
                                                       jpeg2000_header=self.jpeg2000_header)

    @property
    def carries_images(self) -> bool:
        """The frame holds at least the smallest codestream."""
        return self.payload_bytes >= self.minimum_frame_bytes

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bytes]]:
        """Encode each image into the codestream budget and build its frame.

        :input images: [batch, 3, H, W] float in [0, 1], ``(H, W) == image_size``.
        :output bits: [batch, 8 * payload_bytes] float32 0/1 (bytes MSB first) on the device;
            all zero when the frame carries no image.
        :output codestreams: The codestreams as sent (for error-free reference decodes; with
            implicit JPEG2000 headers the packet data only; empty when the frame carries no
            image, or for JPEG when the image's quality-1 file does not fit).
        :raises ValueError: If ``images`` has the wrong shape or values outside [0, 1].
        """
        height, width = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, height, width):
            raise ValueError(f"`images` must be [batch, 3, {height}, {width}]; "
                             f"got {tuple(images.shape)}.")
        frames, codestreams = [], []
        if self.carries_images:
            host = images.detach().cpu()  # the codecs run on the host: one copy per batch
            streams = _map(self._encode_one, list(host), self.threads)
        else:
            streams = [None] * len(images)
        for stream in streams:
            if stream is None:
                frames.append(bytes(self.payload_bytes))
                codestreams.append(b"")
                continue
            header = np.array([height, width, len(stream)], dtype=">u2").tobytes()
            frame = header + stream
            frames.append(frame + bytes(self.payload_bytes - len(frame)))
            codestreams.append(stream)
        raw = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), -1)
        bits = np.unpackbits(raw, axis=1).astype(np.float32)  # [batch, 8 * payload_bytes]
        return torch.from_numpy(bits).to(self.device), codestreams

    def _encode_one(self, image: torch.Tensor) -> bytes:
        if self.codec == "jpeg":
            return jpeg.encode_to_budget(image, self.codestream_bytes).data
        return jpeg2000.encode_to_budget(image, self.codestream_bytes,
                                         header=self.jpeg2000_header).codestream

    def decode(self, bits: torch.Tensor, block_ok: torch.Tensor, block_payload_bits: int
               ) -> ClassicalOutput:
        """Apply the failure policy and decode the codestreams (on the host).

        :input bits: [batch, 8 * payload_bytes] float 0/1; decoded frame bits.
        :input block_ok: [batch, num_blocks] bool; block ``i`` (frame bits ``i *
            block_payload_bits`` onwards) arrived intact.
        :param block_payload_bits: int >= 1; frame bits per block.
        :output out: :class:`ClassicalOutput`; its ``bit_errors`` are zero here: only the link
            knows what was sent.
        """
        height, width = self.image_size
        frames = np.packbits(bits.to(torch.uint8).cpu().numpy(), axis=1)  # [batch, payload_bytes]
        ok = block_ok.cpu().numpy()  # [batch, num_blocks]
        images, failed, used, concealed = [], [], [], []
        jobs = [(frame.tobytes(), None if ok_row.all() else int(np.argmin(ok_row)))
                for frame, ok_row in zip(frames, ok)]
        decoded = _map(lambda job: self._decode_one(*job, block_payload_bits), jobs,
                       self.threads)
        for image, n_used, from_prefix in decoded:
            images.append(image if image is not None
                          else torch.full((3, height, width), MID_GREY))
            failed.append(image is None)
            used.append(n_used)
            concealed.append(from_prefix)
        batch = len(ok)
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
        if not self.carries_images:
            return lost
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
            out = self._decode(stream)
            return out.image, out.num_bytes_used, False
        out = self._decode_prefix(stream, corrupt_at - HEADER_BYTES)
        return out.image, out.num_bytes_used, not out.failed

    def _decode(self, stream: bytes):
        height, width = self.image_size
        if self.codec == "jpeg":
            return jpeg.decode(stream, height=height, width=width)
        return jpeg2000.decode(stream, height=height, width=width, header=self.jpeg2000_header)

    def _decode_prefix(self, stream: bytes, corrupt_offset: int):
        height, width = self.image_size
        if self.codec == "jpeg":
            return jpeg.decode_prefix(stream, corrupt_offset, height=height, width=width)
        return jpeg2000.decode_prefix(stream, corrupt_offset, height=height, width=width,
                                      header=self.jpeg2000_header)
