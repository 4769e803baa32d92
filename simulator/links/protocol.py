"""The link protocol: what every link of a scenario implements, so that the task runner
(:mod:`semlink.tasks`) has one dispatch and a new link is one config class plus its
implementation.

**The config class** (torch-free, in :mod:`semlink.scenario`; registered by adding it to
``LINK_CONFIGS`` in :mod:`semlink.scenario.links`, which makes its ``type`` tag a member of the
schema's link union, of ``LINK_TYPES`` and of the error messages) has:

- ``type``: ``Literal["NAME"]``, the tag a scenario names it by;
- ``kind``: a class attribute, ``"image"`` or ``"bits"`` (:data:`LINK_KINDS`);
- ``build(context: LinkContext)``: the built link, an :class:`ImageLink` or a :class:`BitLink`
  (import the implementation inside ``build``, so the schema loads without torch).

and may have (the defaults hold where it does not; :func:`per_snr`, :func:`scoring_rule` and
:func:`sends_waveform` read them):

- ``per_snr`` (False): the link is built once per SNR point (``context.snr_db`` set), because
  what it sends depends on the SNR: adaptive modulation and coding, the ideal code;
- ``scoring`` (``"concealed"``): how failed decodes are scored (:data:`SCORING_RULES`); the
  built link's ``scoring`` must say the same (FID reads it from the config, after the tasks);
- ``waveform`` (True): what crosses the channel is a transmitted signal (``semlink papr``
  leaves the ideal code's placeholders out);
- ``channel_uses(context) -> int``: complex channel uses per image without building the link
  (bandwidth matching, ``semlink info``); else the built link's ``channel_uses``;
- ``dimensionality(context) -> Dimensionality | None``: the Table 1 row without building the
  link (``semlink info`` then needs no weights); where it is missing or gives None, the built
  link's :meth:`ImageLink.dimensionality` (a per-SNR link's at an SNR point);
- ``check_scenario(scenario, name)``: checks that need the whole scenario (image size,
  channel), raising ``ValueError("links.NAME.FIELD: ...")`` at load;
- ``referenced_paths() -> dict[str, str]``: files it names, by field, for ``semlink validate``;
- ``scenario_warnings(scenario, name) -> list[str]``: what is valid but likely not meant, one
  ``links.NAME: ...`` line each, which ``validate`` and ``run`` print (a preset run at an image
  size it was not trained on);
- ``trained_image_size() -> int``: the side its models were trained at, px, recorded in the
  results file (``preset_training_sizes``).

**The built link** is built once per run (or once per SNR point); the runner draws the channel
and the generators from the task's coordinates and calls :meth:`ImageLink.transmit` once per
batch and repetition (:meth:`BitLink.simulate` once per SNR point). The channel an image link
gets times its calls (:class:`semlink.stage_times.TimedChannel`: the task's seconds per stage
are split at them); it is called as the channel block, but is not an instance of its class.
Metrics, failure scoring, reconstructions, features and predictability are the runner's, the
same for every link.
``transmit`` gets the same batch again for each repetition: a link recomputes its transmitter
each call (the semantic link encodes each time; its encoder is deterministic, so every
repetition sends the same embedding, bit for bit; the encoder takes about 8 % of a transmission
with the ``small`` preset on a CPU, less with the 10 sampling steps of Stable Cascade's, and
reads its input's range back once).

Channel uses are complex symbols per image, the unit every link of a comparison is charged in
(docs/conventions.md); a link's :class:`Dimensionality` is the paper's Table 1 row: the shape it
sends, the compression ratio ``3 H W / numel`` and the share of the image.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from semlink.stage_times import StageTimer

__all__ = ["LINK_KINDS", "SCORING_RULES", "BitCounts", "BitLink", "Dimensionality",
           "ImageGenerators", "ImageLink", "LinkContext", "Transmitted", "per_snr",
           "scoring_rule", "sends_waveform"]

#: What a link carries: random payload bits (BER curves) or images.
LINK_KINDS = ("bits", "image")

#: How a failed decode is scored (:mod:`semlink.metrics.failure`): the paper's constants
#: (PSNR 0, SSIM 0, LPIPS 1, FID 500), or the image the receiver actually shows.
SCORING_RULES = ("paper", "concealed")


@dataclasses.dataclass(frozen=True)
class LinkContext:
    """What a link's ``build`` may use.

    :param name: The link's name in the scenario (seeds and messages use it).
    :param image_shape: (height, width) of the scenario's images, px; None for bit links.
    :param device: Torch device string the link runs on.
    :param seed: The scenario's seed; links derive their own streams from it with
        :func:`semlink.seeding.derive_seed` and their name.
    :param base_dir: Folder relative paths of the scenario (weights, captions) start from.
    :param channel: The scenario's channel section (a validated channel config).
    :param channel_uses_of: Complex channel uses per image of another link of the scenario
        (``bandwidth: {match: NAME}``).
    :param snr_db: The SNR point (Es/N0, dB) for a link built per SNR; None otherwise.
    """

    name: str
    image_shape: tuple[int, int] | None
    device: str
    seed: int
    base_dir: Path
    channel: Any
    channel_uses_of: Callable[[str], int]
    snr_db: float | None = None


@dataclasses.dataclass(frozen=True)
class Dimensionality:
    """What a link sends per image, as the paper's Table 1 counts it.

    :param sent_shape: Shape of the values sent per image (e.g. ``(16, 12, 12)``; a
        codestream or a bit frame as ``(bits,)``).
    :param image_shape: (height, width) of the image, px.
    :param channel_uses: Complex channel uses per image.
    :param note: What the values are (e.g. ``"analog symbols"``, ``"64-bit floats"``).

    >>> d = Dimensionality((16, 12, 12), (512, 512), 1152, "analog")
    >>> round(d.compression_ratio), round(d.percent_of_image, 2)
    (341, 0.29)
    """

    sent_shape: tuple[int, ...]
    image_shape: tuple[int, int]
    channel_uses: int
    note: str = ""

    @property
    def values(self) -> int:
        """Number of values sent per image."""
        return math.prod(self.sent_shape)

    @property
    def compression_ratio(self) -> float:
        """``3 H W / values``: image values per value sent."""
        height, width = self.image_shape
        return 3 * height * width / self.values

    @property
    def percent_of_image(self) -> float:
        """Values sent as a percentage of the image's ``3 H W`` values."""
        return 100.0 / self.compression_ratio

    def row(self) -> dict[str, Any]:
        """The Table 1 row as plain values (for ``semlink info`` and the docs)."""
        return {"sent_shape": list(self.sent_shape), "values": self.values,
                "compression_ratio": self.compression_ratio,
                "percent_of_image": self.percent_of_image, "channel_uses": self.channel_uses,
                "note": self.note}


@dataclasses.dataclass(frozen=True)
class BitCounts:
    """Payload bit and code-block error counts of one batch of a coded link (one ``ber`` row).

    The runner adds the counts of a task's batches and repetitions and reads them back once:
    error counts may be ints or 0-dim integer tensors on the link's device.

    :param modulation: QAM order.
    :param code_rate: LDPC rate ``k / n``; NaN uncoded.
    :param bits: Payload bits sent.
    :param bit_errors: Payload bits in error after decoding.
    :param blocks: Code blocks sent.
    :param block_errors: Code blocks whose CRC failed.
    :param bit_errors_squared: Each image's payload bit errors squared, summed over the batch
        (its images are the independent units of the error rates' intervals,
        :mod:`semlink.error_rates`; every image carries ``bits / batch`` bits); None: not
        known, the summary then treats the bits as independent.
    :param block_errors_squared: The same of each image's failed code blocks.
    """

    modulation: int
    code_rate: float
    bits: int
    bit_errors: int | torch.Tensor
    blocks: int
    block_errors: int | torch.Tensor
    bit_errors_squared: int | torch.Tensor | None = None
    block_errors_squared: int | torch.Tensor | None = None


@dataclasses.dataclass
class Transmitted:
    """What an image link's receiver made of a batch.

    :ivar images: [batch, 3, H, W] float32 in [0, 1], on the link's device.
    :ivar failed: [batch] bool; the decode failed (scored by the link's :attr:`ImageLink.scoring`).
    :ivar columns: Extra per-image columns of the ``images`` table, each [batch] (real or
        integer numbers), in the order they should appear. ``transmissions`` and
        ``channel_uses`` (a link that resends: what each image took) replace the runner's
        ``channel_uses`` column of :attr:`ImageLink.channel_uses`.
    :ivar ber: Error counts of a coded transmission (a ``ber`` row), or None.
    """

    images: torch.Tensor
    failed: torch.Tensor
    columns: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    ber: BitCounts | None = None


#: ``generators(purpose)``: one generator per image of the batch for ``purpose`` (e.g.
#: ``"sampler"``), seeded from (scenario seed, link, SNR point, image, repetition, purpose), so
#: an image's draws do not depend on the batch it was sent in.
ImageGenerators = Callable[[str], list]


@runtime_checkable
class ImageLink(Protocol):
    """The built image link the task runner drives.

    :ivar kind: ``"image"``.
    :ivar channel_uses: Complex channel uses per image (int >= 1), per transmission.
    :ivar scoring: One of :data:`SCORING_RULES`.

    Optional: a link whose transmitter needs the images' file names (Img2Img-SC looks up
    captions by name) sets ``wants_names = True``; the runner then calls
    ``transmit(..., names=[file name per image])``, and, where the link has a
    ``check_names(names)`` method, calls it once with every image's file name before the first
    task (so a captions file without a row for an image is refused before anything is written).
    """

    kind: str
    channel_uses: int
    scoring: str

    def dimensionality(self) -> Dimensionality:
        """What is sent per image (the paper's Table 1 row)."""

    def transmit(self, images: torch.Tensor, channel: Any, snr_db: float,
                 generators: ImageGenerators) -> Transmitted:
        """Send ``images`` [batch, 3, H, W] (float32 in [0, 1]) through ``channel``
        (``x_hat, no_eff = channel(x, snr_db)``, seeded by the runner) at Es/N0 ``snr_db``."""

    def point_fields(self) -> dict[str, Any]:
        """Extra fields of the task's ``points`` row (e.g. the MCS adaptive coding chose)."""


@runtime_checkable
class BitLink(Protocol):
    """The built bit link (BER curves): random payload bits through the PHY, counted.

    :ivar kind: ``"bits"``.
    """

    kind: str

    def simulate(self, snr_db: float, *, snr_kind: str, monte_carlo: Any,
                 seed: int, timer: StageTimer | None = None) -> dict[str, Any]:
        """One SNR point until the scenario's Monte-Carlo stop rule (``monte_carlo``) holds:
        the fields of its ``ber`` row after ``link`` and ``snr_db`` (``modulation``,
        ``code_rate``, then the counts), ``snr_db`` read as ``snr_kind`` (``esno`` or ``ebno``),
        every draw seeded by ``seed``; its seconds per stage switched in ``timer`` (a
        :class:`semlink.stage_times.StageTimer`; None: not kept)."""


def per_snr(config: Any) -> bool:
    """Whether a link config is built once per SNR point (its ``per_snr``; default False)."""
    return bool(getattr(config, "per_snr", False))


def scoring_rule(config: Any) -> str:
    """How a link config's failed decodes are scored (its ``scoring``; default
    ``"concealed"``): one of :data:`SCORING_RULES`."""
    return getattr(config, "scoring", "concealed")


def sends_waveform(config: Any) -> bool:
    """Whether what a link config's link sends through the channel is a transmitted signal (its
    ``waveform``; default True; False for the ideal code's placeholders)."""
    return bool(getattr(config, "waveform", True))
