"""Semantic link: Stable Cascade encoder -> Z -> channel -> Zhat -> stage B + stage A -> image.

Transmission of Z (``[batch, 16, h, w]``):

- ``analog`` (the paper): pairs of values form one complex symbol, each row normalised to unit
  power (:class:`~semlink.modulation.analog.AnalogMapper`); the receiver scales back with the row's RMS
  amplitude, which is assumed known (side information of a few bytes per image, not counted in
  the channel uses). Channel uses = ceil(numel(Z) / 2): 1152 for a 512 px image. Before
  demapping, the receiver may replace the equalised symbols by an estimate that uses the
  channel's noise per symbol (``estimate``: ``lmmse`` or ``noise-matched``,
  :func:`~semlink.modulation.analog.estimate_symbols`); by default (``none``) it takes them as they are.
  With ``repetitions`` R the symbols are sent R times (R times the channel uses, each send a
  new channel draw) and combined by maximum-ratio combining first
  (:func:`~semlink.modulation.combining.chase_combine`): the bandwidth a retransmitting classical link
  spends, spent by the semantic link up front.
- ``digital``: Z is clipped and quantised to ``bits_per_value`` bits, protected by CRC + 5G LDPC
  code blocks, sent with Gray QAM and decoded; values carried by a block whose CRC fails are
  replaced by 0, the unconditional (all-zero) embedding stage B was trained to fall back on.
  With ``harq`` an embedding with a failed block is resent first (:mod:`semlink.links.harq`),
  each send costing the link's channel uses, or with ``code_block_groups`` only the groups of
  blocks with a failed one, costing their symbols.

Everything from the channel output to the image stays on the model's device.

:class:`SemanticLink` is the ``semantic`` link of the protocol (:mod:`semlink.links.protocol`):
its ``transmit`` encodes, sends and reconstructs a batch, with the per-image columns
``block_errors``, ``embedding_mse`` and ``embedding_power`` (and ``bit_errors``, digital;
``transmissions`` and ``channel_uses``, with ``harq``); :func:`semantic_dimensionality` is its
Table 1 row without building the models.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from semlink.modulation.analog import AnalogDemapper, AnalogMapper, estimate_symbols
from semlink.modulation.combining import chase_combine
from semlink.modulation.ldpc import CodeBlockDecoder, CodeBlockEncoder, plan_code_blocks
from semlink.modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order
from semlink.modulation.quantize import UniformDequantizer, UniformQuantizer
from semlink.errors import InputError
from semlink.images import image_shape
from semlink.links.decoder import decoder_settings
from semlink.links.harq import harq_settings, retransmit
from semlink.links.protocol import (BitCounts, Dimensionality, ImageGenerators, LinkContext,
                                    Transmitted)
from semlink.models.bundle import BUNDLE_FILE, bundle_prediction, load_bundle
from semlink.models.encoder import SemanticEncoder, embedding_shape
from semlink.models.presets import get_preset
from semlink.models.receiver import SemanticReceiver
from semlink.modulation.analog import analog_channel_uses
from semlink.scenario import AnalogTransmission, DigitalTransmission

if TYPE_CHECKING:
    from semlink.scenario import SemanticLinkConfig

__all__ = ["SentEmbedding", "SemanticLink", "semantic_dimensionality"]


class SentEmbedding(NamedTuple):
    """The embedding as the receiver gets it (:meth:`SemanticLink.send`).

    :ivar zhat: [batch, C, h, w] float32; values of failed code blocks are 0 (digital).
    :ivar block_errors: [batch] int64; code blocks whose CRC failed (digital; 0 for analog).
    :ivar bit_errors: [batch] int64; quantised-embedding bits decoded wrong (digital; 0 for
        analog). Together with :attr:`SemanticLink.code_plan` they give the link's coded BER
        and BLER.
    :ivar transmissions: [batch] int64; sends of each embedding (digital with ``harq``: 1 plus
        its retransmissions; else 1).
    :ivar channel_uses: [batch] int64; channel uses the sends took: :attr:`SemanticLink.
        channel_uses` each, or with code block groups that for the first send and the resent
        blocks' symbols for the others.
    """

    zhat: torch.Tensor
    block_errors: torch.Tensor
    bit_errors: torch.Tensor
    transmissions: torch.Tensor
    channel_uses: torch.Tensor


class SemanticLink:
    """Encoder, transmission of Z and receiver of one preset, for images of one size.

    :param preset: ``small``, ``stable-cascade-lite`` or ``stable-cascade``.
    :param image_size: Side of square images, or ``(height, width)``, pixels.
    :param transmission: Analog or digital transmission settings (scenario models).
    :param steps: Sampling steps; None = the preset's.
    :param guidance: Classifier-free guidance; None = the preset's.
    :param resize_factor: Encoder pre-resize; None = the preset's (0.75).
    :param weights: Weights directory (required for the real presets); for ``small``, None uses
        the shipped weights (random, with a warning, where none are shipped).
    :param device: Torch device.
    :param dtype: Parameter dtype of the models; None = the preset's on ``device`` (bfloat16
        on CUDA, float32 on CPU). Channel symbols, Zhat and images stay float32 / complex64.
    :param compiled: Stage B through ``torch.compile``
        (:class:`~semlink.models.receiver.SemanticReceiver`'s ``compiled``).
    :raises InputError: If weights are missing or do not fit the preset.
    :ivar channel_uses: int; complex channel uses per image.
    :ivar code_plan: :class:`~semlink.modulation.ldpc.CodeBlockPlan` of a digital transmission (payload
        bits = quantised embedding, code blocks, LDPC rate); None for analog.
    """

    kind = "image"
    #: Nothing fails to decode: the image stage B makes of Zhat is scored.
    scoring = "concealed"

    def __init__(self, *, preset: str, image_size: int | tuple[int, int],
                 transmission: AnalogTransmission | DigitalTransmission,
                 steps: int | None = None, guidance: float | None = None,
                 resize_factor: float | None = None, weights: str | Path | None = None,
                 device: str = "cpu", dtype: torch.dtype | None = None,
                 compiled: bool = False) -> None:
        self.preset = get_preset(preset)
        self.image_size = image_shape(image_size)  # (height, width)
        self.device = device
        weights_dir = self._weights_dir(weights)  # before building: fail fast and cheaply
        kwargs = self.preset.encoder_kwargs()
        if resize_factor is not None:
            kwargs["resize_factor"] = resize_factor
        dtype = self.preset.default_dtype(device) if dtype is None else dtype
        self.encoder = SemanticEncoder(**kwargs).to(device=device, dtype=dtype)
        self.receiver = SemanticReceiver.from_preset(preset, device=device, dtype=dtype,
                                                     compiled=compiled)
        if steps is not None:
            self.receiver.steps = steps
        if guidance is not None:
            self.receiver.guidance = guidance
        self.weights_source = self._load_weights(weights_dir)
        self.embedding_shape = self.encoder.embedding_shape(*self.image_size)
        self.transmission = transmission
        # A harq section, even of one send, records each image's sends and channel uses.
        self._counts_sends = getattr(transmission, "harq", None) is not None
        if isinstance(transmission, AnalogTransmission):
            self._analog_mapper = AnalogMapper(shape=self.embedding_shape, device=device)
            self._analog_demapper = AnalogDemapper(shape=self.embedding_shape, device=device)
            self._repetitions = transmission.repetitions or 1
            self.channel_uses = self._analog_mapper.num_symbols * self._repetitions
            self.code_plan = None
        else:
            self._setup_digital(transmission)

    @classmethod
    def from_config(cls, config: SemanticLinkConfig, context: LinkContext) -> SemanticLink:
        """The link a scenario's ``semantic`` section describes, for its images and device
        (``weights`` relative to the scenario's folder)."""
        weights = config.weights
        if weights is not None and not Path(weights).expanduser().is_absolute():
            weights = str(context.base_dir / weights)
        return cls(preset=config.preset, image_size=context.image_shape,
                   transmission=config.transmission, steps=config.steps,
                   guidance=config.guidance, resize_factor=config.resize_factor,
                   weights=weights, device=context.device, compiled=bool(config.compile))

    # ------------------------------------------------------------------ set-up
    def _weights_dir(self, weights: str | Path | None) -> Path | None:
        """The weights folder to load, or None for random weights (small preset, none shipped)."""
        if self.preset.shipped_weights is not None and weights is None:
            if not self.preset.has_shipped_weights():
                warnings.warn(f"preset {self.preset.name!r}: no trained weights are shipped yet; "
                              "running with random weights (images will be noise)",
                              RuntimeWarning, stacklevel=4)
                return None
            return self.preset.shipped_weights_dir
        if weights is None:
            raise InputError(f"links: preset {self.preset.name!r} needs `weights:` (a directory "
                             "with the Stable Cascade files; see `semlink weights --help`)")
        folder = Path(weights).expanduser()
        if not folder.is_dir():
            raise InputError(f"{folder}: weights directory not found (preset {self.preset.name!r})")
        return folder

    def _load_weights(self, folder: Path | None) -> str:
        from semlink.models import weights as real_weights

        if folder is None:
            return "random"
        bundle = folder / BUNDLE_FILE
        if bundle.is_file():
            info = load_bundle(bundle, {"encoder": self.encoder, "stage_b": self.receiver.stage_b,
                                        "stage_a": self.receiver.stage_a}, preset=self.preset.name)
            # The weights, not the preset, know what their stage B was trained to predict.
            self.receiver.prediction = bundle_prediction(info)
            self.receiver.random_weights = False
            return str(bundle)
        if self.preset.name not in real_weights.PRESET_VARIANTS:
            raise InputError(f"{folder}: holds no {BUNDLE_FILE} (preset {self.preset.name!r} "
                             "loads the bundle semlink train writes, not Stable Cascade files)")
        self.receiver.latent_scale_factor = real_weights.load_stable_cascade(
            self.encoder, self.receiver.stage_b, self.receiver.stage_a, folder,
            preset=self.preset.name)
        self.receiver.random_weights = False
        return str(folder)

    def _setup_digital(self, cfg: DigitalTransmission) -> None:
        numel = math.prod(self.embedding_shape)
        self._bits_per_value = cfg.bits_per_value
        bits_per_symbol = bits_per_symbol_for_order(cfg.modulation)
        n = cfg.codeword_length - cfg.codeword_length % bits_per_symbol
        plan = plan_code_blocks(numel * cfg.bits_per_value, n=n, code_rate=cfg.code_rate)
        lo, hi = cfg.clip
        dev = self.device
        self._quantizer = UniformQuantizer(num_bits=cfg.bits_per_value, lo=lo, hi=hi, device=dev)
        self._dequantizer = UniformDequantizer(num_bits=cfg.bits_per_value, lo=lo, hi=hi,
                                               shape=self.embedding_shape, check_values=False,
                                               device=dev)
        self._encoder_ldpc = CodeBlockEncoder(plan, bits_per_symbol=bits_per_symbol,
                                              check_values=False, device=dev)
        self._decoder_ldpc = CodeBlockDecoder(self._encoder_ldpc,
                                              **decoder_settings(cfg.decoder), device=dev)
        self._mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False, device=dev)
        self._demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, check_values=False,
                                     device=dev)
        self.channel_uses = plan.num_coded_bits // bits_per_symbol
        self.code_plan = plan

    # ------------------------------------------------------------------ link
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[batch, 3, H, W] in [0, 1] -> Z [batch, C, h, w] float32 on the link's device."""
        images = images.to(device=self.device, dtype=next(self.encoder.parameters()).dtype)
        return self.encoder(images).float()

    def send(self, z: torch.Tensor, channel, snr_db: float | torch.Tensor) -> SentEmbedding:
        """Z through ``channel`` (``x_hat, no_eff = channel(x, snr_db)``) -> what arrives."""
        if isinstance(self.transmission, AnalogTransmission):
            x, scale = self._analog_mapper(z)
            x_hat, no_eff = channel(x, snr_db)
            for _ in range(1, self._repetitions):  # the same symbols again, each a new draw
                x_hat, no_eff = chase_combine(x_hat, no_eff, *channel(x, snr_db))
            x_hat = estimate_symbols(x_hat, no_eff, self.transmission.estimate or "none")
            zhat = self._analog_demapper(x_hat, scale)
            zeros = torch.zeros(z.shape[0], dtype=torch.int64, device=z.device)
            return SentEmbedding(zhat, zeros, zeros, zeros + 1, zeros + self.channel_uses)
        bits = self._quantizer(z)  # [batch, numel * b]
        x = self._mapper(self._encoder_ldpc(bits))
        x_hat, no_eff = channel(x, snr_db)
        rx_bits, block_ok = self._decoder_ldpc(self._demapper(x_hat, no_eff))
        # With harq, which embeddings to resend is read back to the host once per round.
        sends = retransmit(
            **harq_settings(self.transmission.harq), bits=bits, x=x, x_hat=x_hat, no_eff=no_eff,
            received=rx_bits, block_ok=block_ok, channel=channel, snr_db=snr_db,
            encoder=self._encoder_ldpc, mapper=self._mapper, demapper=self._demapper,
            decoder=self._decoder_ldpc)
        zhat = self._dequantizer(rx_bits)
        plan = self._encoder_ldpc.plan
        # The code blocks fill the channel uses exactly: a whole resend is every block again.
        uses = self.channel_uses + sends.resent_blocks * (self.channel_uses // plan.num_blocks)
        bit_ok = block_ok.repeat_interleave(plan.payload_bits_per_block, dim=1)
        value_ok = bit_ok[:, :plan.num_payload_bits].reshape(z.shape[0], -1, self._bits_per_value)
        value_ok = value_ok.all(dim=-1).reshape(zhat.shape)
        return SentEmbedding(torch.where(value_ok, zhat, torch.zeros_like(zhat)),
                             (~block_ok).sum(dim=1), (rx_bits != bits).sum(dim=1),
                             sends.transmissions, uses)

    @torch.no_grad()
    def reconstruct(self, zhat: torch.Tensor,
                    generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Zhat [batch, C, h, w] -> images [batch, 3, H, W] float32 in [0, 1]; one generator per
        row makes each transmission reproducible whatever batch it is in."""
        dtype = next(self.receiver.stage_b.parameters()).dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # random weights were announced once
            return self.receiver(zhat.to(dtype), list(generators), image_size=self.image_size)

    # ------------------------------------------------------------------ protocol
    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor,
                 generators: ImageGenerators) -> Transmitted:
        """The whole link for one batch: encode, :meth:`send`, :meth:`reconstruct` (one
        transmission of each image; :class:`~semlink.links.protocol.ImageLink`).

        :input images: [batch, 3, H, W] float in [0, 1].
        :input snr_db: float or [batch] tensor; Es/N0 in dB per sent symbol.
        :param generators: ``generators("sampler")``: one generator per image for stage B's
            sampler (each transmission reproducible whatever batch it is in).
        :output out: :class:`~semlink.links.protocol.Transmitted`: nothing fails; columns
            ``block_errors``, ``embedding_mse`` and ``embedding_power`` (mean over Z's values
            of ``(Zhat - Z)^2`` and ``Z^2``), and ``bit_errors`` (digital), ``transmissions``
            and ``channel_uses`` (with ``harq``); the code blocks' counts (digital).
        """
        z = self.encode(images)
        sent = self.send(z, channel, snr_db)
        recon = self.reconstruct(sent.zhat, generators("sampler"))
        columns = {"block_errors": sent.block_errors,
                   "embedding_mse": ((sent.zhat - z) ** 2).flatten(1).mean(1),
                   "embedding_power": (z ** 2).flatten(1).mean(1)}
        ber = None
        plan = self.code_plan
        if plan is not None:
            columns["bit_errors"] = sent.bit_errors
            count = len(images)
            ber = BitCounts(self.transmission.modulation, plan.code_rate,
                            count * plan.num_payload_bits, sent.bit_errors.sum(),
                            count * plan.num_blocks, sent.block_errors.sum(),
                            bit_errors_squared=sent.bit_errors.square().sum(),
                            block_errors_squared=sent.block_errors.square().sum())
        if self._counts_sends:
            columns.update(transmissions=sent.transmissions, channel_uses=sent.channel_uses)
        failed = torch.zeros(len(images), dtype=torch.bool, device=recon.device)
        return Transmitted(recon, failed, columns, ber)

    def dimensionality(self) -> Dimensionality:
        """Z's shape per image and the channel uses it takes (the paper's Table 1 row)."""
        return Dimensionality(tuple(self.embedding_shape), self.image_size, self.channel_uses,
                              _note(self.transmission))

    def point_fields(self) -> dict[str, Any]:
        """None: the link is the same at every SNR point."""
        return {}


def semantic_dimensionality(config: SemanticLinkConfig,
                            image_shape: tuple[int, int]) -> Dimensionality:
    """The Table 1 row of a ``semantic`` section at ``image_shape`` (height, width), from the
    preset's encoder settings alone (no models, no weights): Z's shape, and its channel uses
    (analog: ``ceil(numel / 2)`` per repetition; digital: the code blocks' symbols), as
    :meth:`SemanticLink.dimensionality` gives them.

    >>> from semlink.scenario import SemanticLinkConfig
    >>> row = semantic_dimensionality(SemanticLinkConfig(type="semantic"), (512, 512))
    >>> row.sent_shape, round(row.compression_ratio), round(row.percent_of_image, 2)
    ((16, 12, 12), 341, 0.29)
    """
    preset = get_preset(config.preset)
    resize = preset.encoder_resize_factor if config.resize_factor is None \
        else config.resize_factor
    shape = embedding_shape(*image_shape, channels=preset.embedding_channels,
                            resize_factor=resize)
    tx = config.transmission
    if isinstance(tx, AnalogTransmission):
        uses = analog_channel_uses(shape) * (tx.repetitions or 1)
    else:
        bits_per_symbol = bits_per_symbol_for_order(tx.modulation)
        n = tx.codeword_length - tx.codeword_length % bits_per_symbol
        plan = plan_code_blocks(math.prod(shape) * tx.bits_per_value, n=n,
                                code_rate=tx.code_rate)
        uses = plan.num_coded_bits // bits_per_symbol
    return Dimensionality(shape, tuple(image_shape), uses, _note(tx))


def _note(tx: AnalogTransmission | DigitalTransmission) -> str:
    """What a transmission sends, in words."""
    if isinstance(tx, AnalogTransmission):
        times = f", each sent {tx.repetitions} times" if (tx.repetitions or 1) > 1 else ""
        return f"analog: two values per complex symbol{times}"
    return (f"digital: {tx.bits_per_value}-bit values, LDPC r={tx.code_rate:.3g}, "
            f"{tx.modulation}-QAM")
