"""JPEG2000 over an ideal channel code: the classical link at the rate the capacity allows.

The bound of separate source and channel coding with JPEG2000, which no practical code reaches:
each image's frame (:mod:`semlink.links.framing`) is one codeword of a capacity-achieving
Gaussian codebook over the link's ``N`` complex channel uses, decoded without error if the mutual
information the channel gave it,

    I = sum_k log2(1 + P / no_eff_k)   bits, over the N channel uses,

is at least the frame's ``8 * payload_bytes`` bits (``P`` the sent power, ``no_eff_k`` the
receiver's effective noise variance of use ``k`` after equalisation, with whatever channel
estimate the channel model gives it), and lost as a whole otherwise (an outage; the failure
policy then says what is shown). The symbols sent do not change ``no_eff`` for any channel of
``channels/`` (noise, fading and channel estimates do not depend on the data), so the link
sends unit-power placeholders and reads the channel's ``no_eff``.

How many bytes a frame gets at an SNR (Es/N0 per complex channel use):

- :func:`capacity_payload_bytes`: the AWGN capacity, ``floor(N log2(1 + SNR) / 8)`` bytes: what
  a transmitter that knows the mean SNR and nothing else would send. On AWGN every frame
  arrives; on fading channels the frames whose channel is worse than average are lost.
- :func:`estimate_outage_rate`: the epsilon-outage rate, the largest frame whose outage
  probability over the scenario's channel is at most ``epsilon``, estimated by Monte Carlo over
  channel realisations (the empirical epsilon-quantile of ``I``). On AWGN it is the capacity
  again; over block Rayleigh fading (one fade per frame) ``N log2(1 + SNR ln(1 / (1 -
  epsilon)))``; with fast fading over many channel uses it tends to the ergodic capacity.

The frame header field holds at most 65535 codestream bytes, so frames are capped at
``6 + 65535`` bytes (reached only at very high SNR or with many channel uses).

Header convention: by default (``jpeg2000_header: implicit``) the JPEG2000 main and tile-part
headers (118 bytes, :func:`semlink.codecs.jpeg2000.implicit_header_bytes`) are not sent, the
receiver knows them, as in the classical link: the bound is that of a system whose receiver
knows the codec settings. ``explicit`` sends them inside the frame, which leaves exactly 118
bytes fewer for the image data at the same channel uses: the header-inclusive bound
(docs/classical-link.md compares the two). :func:`header_convention` says which, in
``semlink info`` and the plots' legends.

:class:`CapacityLink` is the ``classical`` link with ``channel_code: capacity`` of the protocol
(:mod:`semlink.links.protocol`), built per SNR point (:meth:`CapacityLink.from_config`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any

import torch

from semlink.channels._checks import check_int, check_type
from semlink.channel import ChannelConfigKey, build_channel
from semlink.links.classical import frame_dimensionality
from semlink.links.framing import (
    HEADER_BYTES,
    MAX_CODESTREAM_BYTES,
    ClassicalOutput,
    ImageFrames,
    codec_label,
)
from semlink.links.protocol import Dimensionality, ImageGenerators, LinkContext, Transmitted
from semlink.scenario import AWGNConfig, ChannelConfig
from semlink.seeding import derive_seed, make_generator

if TYPE_CHECKING:
    from semlink.scenario import ClassicalLinkConfig

__all__ = ["MAX_PAYLOAD_BYTES", "capacity_bits_per_use", "capacity_payload_bytes",
           "mutual_information_bits", "OutageRate", "estimate_outage_rate", "CapacityLink",
           "header_convention"]

#: Largest frame: the header and the largest codestream its length field can announce.
MAX_PAYLOAD_BYTES = HEADER_BYTES + MAX_CODESTREAM_BYTES
# A frame of exactly the capacity must not be lost to the float32 rounding of no_eff.
_RELATIVE_TOLERANCE = 1e-6


def header_convention(codec: str = "jpeg2000", jpeg2000_header: str = "implicit") -> str:
    """What the ideal code's frame leaves out, in words (``semlink info``, plot legends).

    :param codec: ``jpeg2000`` or ``jpeg``.
    :param jpeg2000_header: ``implicit`` or ``explicit``.

    >>> header_convention()
    'ideal code, JPEG2000 headers not sent (implicit)'
    >>> header_convention("jpeg2000", "explicit")
    'ideal code, JPEG2000 headers sent (explicit)'
    """
    if codec == "jpeg":
        return "ideal code, JPEG file sent whole"
    sent = "not sent" if jpeg2000_header == "implicit" else "sent"
    return f"ideal code, JPEG2000 headers {sent} ({jpeg2000_header})"


def capacity_bits_per_use(snr_db: float) -> float:
    """AWGN capacity ``log2(1 + 10^(snr_db / 10))`` in bits per complex channel use.

    :param snr_db: float, not NaN; Es/N0 in dB (``+inf`` gives ``inf``, ``-inf`` gives 0).
    :raises TypeError: If ``snr_db`` is not a number.
    :raises ValueError: If ``snr_db`` is NaN.
    """
    check_type(snr_db, (int, float), name="snr_db")
    if snr_db != snr_db:
        raise ValueError("`snr_db` must be a number; got nan.")
    if snr_db == math.inf:
        return math.inf
    return math.log2(1.0 + 10.0 ** (snr_db / 10.0))


def capacity_payload_bytes(channel_uses: int, snr_db: float) -> int:
    """Whole frame bytes ``N`` channel uses carry at the AWGN capacity, at most
    :data:`MAX_PAYLOAD_BYTES`: ``min(floor(N log2(1 + SNR) / 8), 6 + 65535)``.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param snr_db: float; Es/N0 in dB.

    >>> capacity_payload_bytes(288, 0.0)   # 1 bit per use
    36
    """
    check_int(channel_uses, name="channel_uses", low=1)
    bits = channel_uses * capacity_bits_per_use(snr_db)
    return MAX_PAYLOAD_BYTES if bits >= 8 * MAX_PAYLOAD_BYTES else int(bits // 8)


def mutual_information_bits(x: torch.Tensor, no_eff: torch.Tensor) -> torch.Tensor:
    """Mutual information a Gaussian codeword gets over each row's channel uses.

    :input x: [batch, n] complex; the sent symbols (their mean power per row is ``P``).
    :input no_eff: [batch, n] float; effective noise variance per use after equalisation
        (0 = noiseless).
    :output bits: [batch] float64; ``sum_k log2(1 + P / no_eff_k)`` (``inf`` if a use is
        noiseless).
    """
    power = x.abs().square().double().mean(dim=-1, keepdim=True)  # [batch, 1]
    return torch.log2(1.0 + power / no_eff.double()).sum(dim=-1)


@dataclasses.dataclass(frozen=True)
class OutageRate:
    """The epsilon-outage frame of one SNR and channel (:func:`estimate_outage_rate`).

    :ivar channel_uses: Complex channel uses per image.
    :ivar snr_db: Es/N0 in dB per complex channel use.
    :ivar outage_target: epsilon: the largest acceptable outage probability.
    :ivar payload_bytes: Frame bytes per image; build :class:`CapacityLink` with it.
    :ivar frames: Channel realisations the estimate drew.
    :ivar outages: Realisations whose mutual information falls short of that frame.
    """

    channel_uses: int
    snr_db: float
    outage_target: float
    payload_bytes: int
    frames: int
    outages: int

    @property
    def outage(self) -> float:
        """Estimated outage probability of the frame, ``outages / frames`` (<= the target)."""
        return self.outages / self.frames

    @property
    def bits_per_use(self) -> float:
        """Frame bits per channel use, ``8 * payload_bytes / N``."""
        return 8 * self.payload_bytes / self.channel_uses


def estimate_outage_rate(channel_uses: int, snr_db: float, *, outage_target: float = 0.1,
                         channel_config: ChannelConfig | None = None, frames: int = 10000,
                         batch_frames: int = 1000, seed: int = 0,
                         device: str = "cpu") -> OutageRate:
    """The largest frame whose estimated outage probability at ``snr_db`` is <= the target.

    Draws ``frames`` realisations of the scenario's channel over ``channel_uses`` uses, computes
    each one's mutual information ``I_f`` (:func:`mutual_information_bits`), and returns the
    largest whole number of bytes ``B`` with ``#{f : I_f < 8 B} <= floor(epsilon * frames)``,
    i.e. ``8 B <=`` the ``floor(epsilon * frames)``-th smallest ``I_f`` (capped at
    :data:`MAX_PAYLOAD_BYTES`; both comparisons with the link's allowance for the float32
    rounding of ``no_eff``, so that over AWGN it is exactly :func:`capacity_payload_bytes`).
    Deterministic in its arguments and memoised.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param snr_db: float, finite or ``+inf``; Es/N0 in dB.
    :param outage_target: float in (0, 1); epsilon.
    :param channel_config: The scenario's channel section; None = AWGN.
    :param frames: int >= 1; channel realisations (default 10000: the epsilon-quantile of
        block Rayleigh fading's gain at epsilon = 0.1 to about 3 %, one standard deviation).
    :param batch_frames: int >= 1; realisations per channel call.
    :param seed: int; seeds the channel.
    :param device: Torch device.
    :output rate: :class:`OutageRate`.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument is out of range.
    """
    check_int(channel_uses, name="channel_uses", low=1)
    check_type(snr_db, (int, float), name="snr_db")
    if snr_db != snr_db or snr_db == -math.inf:
        raise ValueError(f"`snr_db` must be a number or +inf; got {snr_db!r}.")
    check_type(outage_target, (int, float), name="outage_target")
    if not 0.0 < outage_target < 1.0:  # NaN fails too
        raise ValueError(f"`outage_target` must be in (0, 1); got {outage_target!r}.")
    check_int(frames, name="frames", low=1)
    check_int(batch_frames, name="batch_frames", low=1)
    check_int(seed, name="seed")
    config = AWGNConfig(type="awgn") if channel_config is None else channel_config
    return _estimate(channel_uses, float(snr_db), float(outage_target), ChannelConfigKey(config),
                     frames, batch_frames, seed, str(device))


@functools.lru_cache(maxsize=1024)
def _estimate(channel_uses: int, snr_db: float, outage_target: float, config: ChannelConfigKey,
              frames: int, batch_frames: int, seed: int, device: str) -> OutageRate:
    channel = build_channel(config.config, generator=make_generator(seed, device), device=device)
    info = []
    for start in range(0, frames, batch_frames):
        x = _placeholders(min(batch_frames, frames - start), channel_uses, device)
        info.append(mutual_information_bits(x, channel(x, snr_db)[1]))
    info = torch.cat(info).sort().values.cpu()  # [frames] float64, ascending
    allowed = math.floor(outage_target * frames)
    # The largest B the decoder accepts for that frame: 8 B (1 - tolerance) <= I.
    limit = float(info[allowed]) / (1.0 - _RELATIVE_TOLERANCE)
    payload = MAX_PAYLOAD_BYTES if limit >= 8 * MAX_PAYLOAD_BYTES else int(limit // 8)
    outages = int((~_decodable(info, 8 * payload)).sum())
    return OutageRate(channel_uses, snr_db, outage_target, payload, frames, outages)


def _placeholders(batch: int, channel_uses: int, device: str) -> torch.Tensor:
    """Unit-power symbols standing in for the codeword (see the module docstring)."""
    return torch.ones(batch, channel_uses, dtype=torch.complex64, device=device)


def _decodable(information_bits: torch.Tensor, frame_bits: int) -> torch.Tensor:
    """[batch] bool: the mutual information reaches the frame's bits (to float32 rounding)."""
    return information_bits >= frame_bits * (1.0 - _RELATIVE_TOLERANCE)


class CapacityLink:
    """JPEG2000 (or JPEG) frames over an ideal channel code, for images of one size.

    :param channel_uses: int >= 1; complex channel uses per image.
    :param image_size: Side of square images, or (height, width), pixels; ints in [1, 65535].
    :param payload_bytes: int in [0, :data:`MAX_PAYLOAD_BYTES`]; frame bytes per image
        (:func:`capacity_payload_bytes` or :attr:`OutageRate.payload_bytes`). A frame smaller
        than :attr:`minimum_frame_bytes` carries no image: every image is then lost.
    :param failure_policy: ``paper``, ``error-concealment`` or ``mean-image``; the frame is one
        codeword, so an outage loses everything and ``error-concealment`` has no prefix to
        decode.
    :param jpeg2000_header: ``implicit`` (default) or ``explicit``, as for
        :class:`~semlink.links.classical.ClassicalLink`.
    :param codec: ``jpeg2000`` (default) or ``jpeg``, as for
        :class:`~semlink.links.classical.ClassicalLink`.
    :param device: Torch device.
    :raises TypeError: If a parameter has the wrong type.
    :raises ValueError: If a parameter is out of range.
    :ivar outage_rate: The :class:`OutageRate` the frame was sized by
        (:meth:`from_config` with ``adaptive``), or None.
    """

    kind = "image"

    def __init__(self, *, channel_uses: int, image_size: int | tuple[int, int],
                 payload_bytes: int, failure_policy: str = "paper",
                 jpeg2000_header: str = "implicit", codec: str = "jpeg2000",
                 device: str = "cpu") -> None:
        check_int(channel_uses, name="channel_uses", low=1)
        check_int(payload_bytes, name="payload_bytes", low=0, high=MAX_PAYLOAD_BYTES)
        self.channel_uses = channel_uses
        self.payload_bytes = payload_bytes
        self._frames = ImageFrames(image_size=image_size, payload_bytes=payload_bytes,
                                   failure_policy=failure_policy, codec=codec,
                                   jpeg2000_header=jpeg2000_header, device=device)
        self.image_size = self._frames.image_size
        self.failure_policy = failure_policy
        self.jpeg2000_header = jpeg2000_header
        self.codec = codec
        self.device = device
        self.outage_rate: OutageRate | None = None

    @classmethod
    def from_config(cls, config: ClassicalLinkConfig, context: LinkContext) -> CapacityLink:
        """The link of a scenario's ``classical`` section with ``channel_code: capacity`` at
        ``context.snr_db``: the frame of the AWGN capacity, or with ``adaptive`` of the
        estimated outage rate (:func:`estimate_outage_rate`, one seed for all SNR points,
        ``derive_seed(seed, name, "outage")``, as for AMC)."""
        channel_uses = config.channel_uses(context)
        rate = None
        if config.adaptive:
            rate = estimate_outage_rate(channel_uses, context.snr_db,
                                        outage_target=config.bler_target,
                                        channel_config=context.channel,
                                        seed=derive_seed(context.seed, context.name, "outage"),
                                        device=context.device)
        payload = rate.payload_bytes if rate else capacity_payload_bytes(channel_uses,
                                                                         context.snr_db)
        link = cls(channel_uses=channel_uses, image_size=context.image_shape,
                   payload_bytes=payload, failure_policy=config.failure_policy,
                   jpeg2000_header=config.jpeg2000_header, codec=config.codec,
                   device=context.device)
        link.outage_rate = rate
        return link

    @property
    def scoring(self) -> str:
        """``paper`` under the paper's failure policy, else ``concealed``."""
        return "paper" if self.failure_policy == "paper" else "concealed"

    @property
    def minimum_frame_bytes(self) -> int:
        """Smallest frame that carries an image: header + smallest codestream."""
        return self._frames.minimum_frame_bytes

    @property
    def carries_images(self) -> bool:
        """``payload_bytes`` holds at least the smallest frame."""
        return self._frames.carries_images

    def encode_frames(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bytes]]:
        """Frames of a batch (:meth:`ImageFrames.encode
        <semlink.links.framing.ImageFrames.encode>`): ``[batch, 8 * payload_bytes]``
        bits and the codestreams."""
        return self._frames.encode(images)

    def send(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor
             ) -> ClassicalOutput:
        """Send a batch of images through ``channel`` (``x_hat, no_eff = channel(x, snr_db)``).

        :input images: [batch, 3, H, W] float in [0, 1].
        :input snr_db: float or [batch] tensor; Es/N0 in dB per channel use.
        :output out: :class:`~semlink.links.framing.ClassicalOutput`: ``block_errors`` is 1
            where the codeword was in outage, ``mutual_information_bits`` what each got.
        """
        sent, _ = self.encode_frames(images)
        x = _placeholders(len(images), self.channel_uses, self.device)
        info = mutual_information_bits(x, channel(x, snr_db)[1])  # [batch] float64
        ok = _decodable(info, 8 * self.payload_bytes)
        out = self._frames.decode(sent, ok.unsqueeze(-1), max(1, 8 * self.payload_bytes))
        return dataclasses.replace(out, mutual_information_bits=info)

    # ---------------------------------------------------------------- protocol
    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor,
                 generators: ImageGenerators) -> Transmitted:
        """:meth:`send`, as the runner keeps it (:class:`~semlink.links.protocol.ImageLink`;
        ``generators`` is not used).

        :output out: :class:`~semlink.links.protocol.Transmitted`: columns ``block_errors`` (1
            in outage), ``codestream_bytes_used``, ``mutual_information_bits`` and
            ``frame_bits``; no code blocks to count.
        """
        out = self.send(images, channel, snr_db)
        blk = out.block_errors
        columns = {"block_errors": blk, "codestream_bytes_used": out.bytes_used,
                   "mutual_information_bits": out.mutual_information_bits,
                   "frame_bits": torch.full_like(blk, 8 * self.payload_bytes)}
        return Transmitted(out.images, out.failed, columns)

    def dimensionality(self) -> Dimensionality:
        """The frame in bytes at this SNR point
        (:func:`~semlink.links.classical.frame_dimensionality`)."""
        return frame_dimensionality(
            self.payload_bytes, self.image_size, self.channel_uses,
            f"frame bytes ({codec_label(self.codec)}), "
            f"{header_convention(self.codec, self.jpeg2000_header)}")

    def point_fields(self) -> dict[str, Any]:
        """The frame's size at this SNR point (``frame_bits``) and, sized by the outage rate,
        its estimated outage probability (``outage_estimate``, ``outage_estimate_frames``)."""
        point = {"frame_bits": 8 * self.payload_bytes}
        if self.outage_rate is not None:
            point.update(outage_estimate=self.outage_rate.outage,
                         outage_estimate_frames=self.outage_rate.frames)
        return point
