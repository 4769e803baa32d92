"""Send images through one link and one channel at one SNR: what ``semlink transmit`` does,
for Python.

:func:`transmit` writes the link and the channel into a one-link scenario, validates it as a
YAML scenario is validated (an error names the field: ``link.code_rate``, ``channel.k_factor_db``)
and builds them as a sweep's tasks do (:class:`semlink.tasks.TaskRunner`,
:func:`semlink.channel.build_channel`). Its seeds are its own (``derive_seed(seed, "transmit",
...)``), not a sweep task's: the same call gives the same images, and ``semlink transmit`` of a
file is this function on that one image.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semlink.errors import InputError, first_line
from semlink.scenario import CHANNEL_TYPES, ScenarioError

if TYPE_CHECKING:
    from semlink.scenario import ChannelConfig, LinkConfig

__all__ = ["LINKS", "DEFAULT_IMAGE_SIZE", "TransmitResult", "transmit"]

#: Channel uses per image of the ``classical`` and ``capacity`` links given by name: the
#: ``small`` semantic preset's at 256 px.
DEFAULT_CHANNEL_USES = 288
#: What a link given by name is: a scenario's link section, its other fields at their defaults.
LINKS: dict[str, dict[str, Any]] = {
    "semantic": {"type": "semantic"},
    "classical": {"type": "classical", "bandwidth": {"channel_uses": DEFAULT_CHANNEL_USES}},
    "capacity": {"type": "classical", "channel_code": "capacity",
                 "bandwidth": {"channel_uses": DEFAULT_CHANNEL_USES}},
}
#: Side images read from files are resized to unless ``size`` says otherwise, pixels.
DEFAULT_IMAGE_SIZE = 256

_NAME = "link"  # the link's name in the one-link scenario
_SOURCE = "<transmit>"


@dataclasses.dataclass(frozen=True)
class TransmitResult:
    """What :func:`transmit` returns; per-image numbers are tuples of Python numbers.

    :ivar images: [batch, 3, H, W] float32 in [0, 1] on the device: the reconstructions (a
        failed decode as the link shows it: a classical link's failure policy, mid grey under
        ``paper``).
    :ivar psnr_db: [batch] floats, dB, of each reconstruction against its original.
    :ivar ssim: [batch] floats in [-1, 1].
    :ivar failed: [batch] bools; the decode failed (classical links; always False for
        semantic links; a user's link says).
    :ivar channel_uses: [batch] ints; complex channel uses each image took, retransmissions
        included.
    :ivar transmissions: [batch] ints; sends of each image (1 without HARQ).
    :ivar link: The validated link section.
    :ivar channel: The validated channel section.
    :ivar snr_db: Es/N0 in dB per complex channel use.
    """

    images: torch.Tensor
    psnr_db: tuple[float, ...]
    ssim: tuple[float, ...]
    failed: tuple[bool, ...]
    channel_uses: tuple[int, ...]
    transmissions: tuple[int, ...]
    link: LinkConfig
    channel: ChannelConfig
    snr_db: float

    @property
    def link_label(self) -> str:
        """``semantic``, ``classical``, or ``capacity`` for a classical link over the ideal
        code: how ``semlink transmit`` names the link."""
        return "capacity" if getattr(self.link, "channel_code", None) == "capacity" \
            else self.link.type

    @property
    def max_transmissions(self) -> int:
        """Most sends of an image the link allows (its HARQ section's; 1 without)."""
        harq = getattr(self.link, "harq", None) or getattr(
            getattr(self.link, "transmission", None), "harq", None)
        return 1 if harq is None else harq.max_transmissions

    def describe(self, index: int = 0) -> str:
        """One line on image ``index``, as ``semlink transmit`` prints it after the file name:
        ``classical link, 288 channel uses, awgn at 10 dB: PSNR 21.37 dB, SSIM 0.6120``."""
        from semlink.sweep import channel_words

        uses = f"{self.channel_uses[index]} channel uses"
        if self.max_transmissions > 1:
            uses += f" ({self.transmissions[index]} of at most {self.max_transmissions} sends)"
        return (f"{self.link_label} link, {uses}, {self.channel.type}"
                f"{channel_words(self.channel.model_dump())} at {self.snr_db:g} dB: PSNR "
                f"{self.psnr_db[index]:.2f} dB, SSIM {self.ssim[index]:.4f}"
                + (" (decoding failed)" if self.failed[index] else ""))


def transmit(images: torch.Tensor | str | os.PathLike[str], *,
             link: str | Mapping[str, Any] = "semantic",
             channel: str | Mapping[str, Any] = "awgn", snr_db: float, seed: int = 0,
             device: str = "auto", size: int | tuple[int, int] | None = None) -> TransmitResult:
    """Send ``images`` once through ``link`` over ``channel`` at ``snr_db``.

    The whole batch goes through the link at once: one channel generator draws its noise and
    fading (an image's draws depend on the batch it is in, as in a sweep), and image ``i`` of
    a semantic link samples from its own generator, seeded ``derive_seed(seed, "transmit",
    "sampler", i)`` (the first image's without the ``i``).

    :param images: [batch, 3, H, W] float in [0, 1], H and W each 64..4096 and a multiple of
        32; or image files named as a scenario's ``images.source`` (a file, a folder, a glob
        pattern or ``"sample"``), centre-cropped and resized to ``size``.
    :param link: ``semantic`` (the ``small`` preset), ``classical`` (JPEG2000 + LDPC 1/2 +
        16-QAM) or ``capacity`` (JPEG2000 over an ideal code at the AWGN capacity of
        ``snr_db``), the last two over 288 channel uses; or a scenario's link section, such as
        ``{"type": "classical", "modulation": 4, "bandwidth": {"channel_uses": 1000}}``.
    :param channel: A channel ``type`` (``awgn``, ``rayleigh``, ``rician``, ``ofdm``) with its
        defaults, or a scenario's channel section such as ``{"type": "rician",
        "k_factor_db": 6}``.
    :param snr_db: Es/N0 in dB per complex channel use; ``inf`` = no noise.
    :param seed: int >= 0; seeds the channel and the sampler.
    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    :param size: Image files only: side (square) or ``(height, width)`` in pixels; default 256.
    :output result: :class:`TransmitResult`.
    :raises ScenarioError: The link or channel breaks the scenario schema: one line per problem,
        ``link.FIELD: message`` or ``channel.FIELD: message``.
    :raises InputError: Images that cannot be read or sent (shape, range, size), weights that
        do not fit, a frame that does not fit the channel uses, an unavailable device.
    :raises TypeError: For arguments of the wrong type.

    >>> import torch
    >>> from semlink.transmission import transmit
    >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    >>> result = transmit(images, link={"type": "classical", "modulation": 4,
    ...                                 "bandwidth": {"channel_uses": 6000}},
    ...                   snr_db=10, device="cpu")
    >>> result.images.shape, result.failed
    (torch.Size([2, 3, 64, 64]), (False, False))
    >>> print(result.describe(0))  # doctest: +ELLIPSIS
    classical link, 6000 channel uses, awgn at 10 dB: PSNR ... dB, SSIM ...
    >>> try:
    ...     transmit(images, channel="rician", snr_db=10, device="cpu")
    ... except ScenarioError as err:
    ...     print(err)
    channel.k_factor_db: Field required
    """
    from semlink.devices import resolve_device
    from semlink.metrics.quality import psnr_db, ssim
    from semlink.seeding import derive_seed, make_generator

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int >= 0; got {seed!r}.")
    if isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)):
        raise TypeError(f"`snr_db` must be a number; got {snr_db!r}.")
    snr_db = float(snr_db)
    batch = _images(images, size)  # [batch, 3, H, W]
    scenario = _scenario(_section(link, "link"), _section(channel, "channel"),
                         shape=tuple(batch.shape[-2:]), snr_db=snr_db, seed=seed, device=device)
    device = resolve_device(device)
    built, channel_block = _build(scenario, snr_db=snr_db, seed=seed, device=device)
    batch = batch.to(device)
    count = len(batch)
    cfg = scenario.links[_NAME]

    def generators(purpose: str) -> list[torch.Generator]:
        return [make_generator(derive_seed(seed, "transmit", purpose, *([i] if i else [])),
                               device) for i in range(count)]

    out = built.transmit(batch, channel_block, snr_db, generators)
    # A link that resends says what each image took; else one send of its channel uses.
    uses = out.columns.get("channel_uses", torch.full((count,), built.channel_uses))
    sends = out.columns.get("transmissions", torch.ones(count, dtype=torch.int64))
    return TransmitResult(
        images=out.images, psnr_db=tuple(psnr_db(batch, out.images).tolist()),
        ssim=tuple(ssim(batch, out.images).tolist()), failed=tuple(out.failed.tolist()),
        channel_uses=tuple(int(u) for u in uses.tolist()),
        transmissions=tuple(int(t) for t in sends.tolist()), link=cfg,
        channel=scenario.channel, snr_db=snr_db)


def _images(images: torch.Tensor | str | os.PathLike[str],
            size: int | tuple[int, int] | None) -> torch.Tensor:
    """``images`` as a [batch, 3, H, W] float32 tensor in [0, 1] (files read at ``size``)."""
    if isinstance(images, (str, os.PathLike)):
        from semlink.images import load_images

        batch, _ = load_images(os.fspath(images), DEFAULT_IMAGE_SIZE if size is None else size,
                               field="images")
        return batch
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"`images` must be a tensor or image files (a path); got "
                        f"{type(images).__name__}.")
    if size is not None:
        raise TypeError("`size` applies to image files; a tensor is sent at its own size.")
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise InputError(f"images: must be a float tensor [batch, 3, height, width]; got "
                         f"{images.dtype} {list(images.shape)}")
    height, width = images.shape[-2:]
    if not all(_is_image_side(side) for side in (height, width)):
        raise InputError(f"images: height and width must each be 64..4096 pixels and a "
                         f"multiple of 32; got {height} x {width}")
    if len(images) == 0 or not bool(((images >= 0) & (images <= 1)).all()):  # NaN fails too
        raise InputError("images: must hold at least one image with every value in [0, 1]")
    return images.float()


def _is_image_side(side: int) -> bool:
    """True for an image side a scenario's ``images.size`` takes."""
    from pydantic import TypeAdapter, ValidationError

    from semlink.scenario import ImageSide

    try:
        TypeAdapter(ImageSide).validate_python(side)
    except ValidationError:
        return False
    return True


def _section(value: str | Mapping[str, Any], what: str) -> dict[str, Any]:
    """The scenario section a ``link`` or ``channel`` argument stands for."""
    names = LINKS if what == "link" else {name: {"type": name} for name in CHANNEL_TYPES}
    if isinstance(value, str):
        if value not in names:
            raise InputError(f"{what}: must be one of {', '.join(names)} or a scenario's "
                             f"{what} section (a mapping); got {value!r}")
        return dict(names[value])
    if not isinstance(value, Mapping):
        raise TypeError(f"`{what}` must be a name or a mapping; got {type(value).__name__}.")
    if what == "link" and value.get("type") == "ber":
        raise InputError("link.type: ber sends random bits, not images; run a scenario with "
                         "it (semlink run)")
    return dict(value)


# "<transmit>:LINE: links.link.code_rate: ..." -> "link.code_rate: ...", and the SNR point
# -> snr_db: a problem names the argument of transmit() it comes from.
_RENAMES = ((re.compile(rf"^{_SOURCE}:\d+: "), ""), (re.compile(rf"^links\.{_NAME}\b"), "link"),
            (re.compile(r"^snr\.points_db\.0\b"), "snr_db"))


def _rename(problem: str) -> str:
    for pattern, replacement in _RENAMES:
        problem = pattern.sub(replacement, problem)
    return problem


def _scenario(link: dict[str, Any], channel: dict[str, Any], *, shape: tuple[int, int],
              snr_db: float, seed: int, device: str):
    """The one-link scenario, validated as a YAML file is."""
    from semlink.scenario import parse_scenario, yaml_text

    height, width = shape
    # The runner that builds the link lists the scenario's images when it is made; transmit
    # sends its own, so the scenario names one shipped sample (listed, never read).
    images = {"source": "sample", "count": 1,
              **({"size": height} if height == width else {"width": width, "height": height})}
    data = {"name": "transmit", "seed": seed, "device": device, "images": images,
            "channel": channel, "snr": {"points_db": [snr_db]}, "links": {_NAME: link}}
    text = yaml_text(data, name="link` and `channel")
    try:  # a python link's module is looked for in the current folder first
        return parse_scenario(text, source=_SOURCE, base_dir=Path())
    except ScenarioError as err:
        raise ScenarioError([_rename(p) for p in err.problems]) from None


def _build(scenario, *, snr_db: float, seed: int, device: str):
    """The link (built as a sweep builds it) and the channel block, seeded for transmit;
    ``(link, channel)``.

    :raises InputError: Naming ``link`` or ``channel`` for settings a component refuses.
    """
    from semlink.channel import build_channel
    from semlink.seeding import derive_seed, make_generator
    from semlink.tasks import TaskRunner

    try:
        block = build_channel(scenario.channel, generator=make_generator(
            derive_seed(seed, "transmit", "channel"), device), device=device, check_values=True)
    except ValueError as err:
        raise InputError(f"channel: {first_line(err)}") from None
    runner = TaskRunner(scenario, base_dir=Path(), device=device)
    try:
        built = runner.link(_NAME, snr_db)
    except InputError as err:  # "links.link.bandwidth: ..." -> "link.bandwidth: ..."
        raise InputError(_rename(first_line(err))) from None
    except ValueError as err:
        raise InputError(f"link: {first_line(err)}") from None
    return built, block
