"""Img2Img-SC link (Cicchetti et al. 2024, the paper's baseline): the Stable Diffusion 1.5 VAE
latent and a caption cross the channel; the receiver runs SD img2img from the noisy latent with
the noisy caption (:class:`~semlink.models.sd15.SD15Img2Img`). docs/img2img-sc.md.

The latent is ``[4, H/8, W/8]`` float32 (``[4, 64, 64]`` at 512 px), sampled from the VAE's
posterior and scaled by 0.18215; the caption comes from a captions file or BLIP
(:mod:`semlink.links.captions`), at most ``caption_bytes`` UTF-8 bytes. Two transmissions:

- ``as_published`` (the authors' ``scripts/qam.py``): each latent value, in C order, as its
  IEEE 754 double, 64 bits most significant first (sign, 11 exponent bits, 52 mantissa bits:
  :func:`float64_to_bits`), then each caption byte, 8 bits most significant first, cross a
  binary symmetric channel whose crossover probability is the exact uncoded Gray M-QAM bit
  error rate over AWGN at Es/N0 ``snr_db`` (:func:`bsc_crossover_probability`; 16-QAM by
  default). No symbols are simulated, so the scenario's channel must be plain AWGN (refused
  otherwise when the link is built). Received doubles that are NaN, infinite, ``|x| > 10`` or
  ``|x| < 1e-2`` become a standard normal draw (:func:`sanitize_latent`), as the authors'
  ``bin2float`` does - also values that arrived intact (the latent's small values). Channel
  uses: ``ceil((64 * numel + 8 * caption bytes) / log2 M)`` per image, 262,144 + 2 per caption
  byte at 512 px with 16-QAM.
- ``analog``: the latent as analog symbols through the scenario's channel, pairs of values as one
  unit-power complex symbol (:class:`~semlink.modulation.analog.AnalogMapper`; the per-image
  scale is side information, as for the semantic link): 8192 uses at 512 px. The caption,
  zero-padded to ``caption_bytes``, crosses the same channel in CRC + 5G LDPC code blocks and
  Gray QAM (:func:`plan_caption_blocks`); a block whose CRC fails delivers its decoded (wrong)
  bytes. Received caption bytes lose their trailing zeros and are decoded as UTF-8 with
  ``errors="replace"`` (both transmissions).

Every draw comes from the per-image generators of :meth:`Img2ImgSCLink.transmit` (``"vae"``,
``"bsc"``, ``"replace"``, ``"sampler"``), so an image's result does not depend on its batch.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from semlink.errors import InputError
from semlink.links.protocol import Dimensionality, ImageGenerators, LinkContext, Transmitted
from semlink.models.sd15 import SD15Img2Img, SD15Models
from semlink.modulation.analog import AnalogDemapper, AnalogMapper, analog_channel_uses
from semlink.modulation.ldpc import (CRC_LENGTH, CodeBlockDecoder, CodeBlockEncoder,
                                     CodeBlockPlan, information_bits_per_block)
from semlink.modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order

__all__ = ["FLOAT_BITS", "REPLACE_ABOVE", "REPLACE_BELOW", "bsc_crossover_probability",
           "binary_symmetric_channel", "float64_to_bits", "bits_to_float64", "sanitize_latent",
           "bytes_to_bits", "bits_to_bytes", "decode_caption", "plan_caption_blocks",
           "as_published_channel_uses", "img2img_dimensionality", "Received", "Img2ImgSCLink",
           "bench_img2img_sc"]

#: Bits per latent value sent as published (an IEEE 754 double).
FLOAT_BITS = 64
#: Received values with ``|x|`` above this are replaced (the authors' rule).
REPLACE_ABOVE = 10.0
#: Received values with ``|x|`` below this are replaced (the authors' rule).
REPLACE_BELOW = 1e-2

_INT64_MIN = torch.iinfo(torch.int64).min
#: ``captions(images, names) -> list of str`` (:mod:`semlink.links.captions`).
CaptionSource = Callable[[torch.Tensor, Sequence[str] | None], list]


# ----------------------------------------------------------------------------- bits


def bsc_crossover_probability(snr_db: float, modulation: int = 16) -> float:
    """The exact bit error rate of uncoded Gray M-QAM over AWGN at Es/N0 ``snr_db``
    (:func:`semlink.theory.ber_awgn` at Eb/N0 = Es/N0 - 10 log10(log2 M); for 16-QAM
    ``(3 Q(a) + 2 Q(3a) - Q(5a)) / 4`` with ``a = sqrt(Es/N0 / 5)``).

    :param snr_db: Es/N0 per complex symbol, dB; ``inf`` gives 0.
    :param modulation: QAM order (2, 4, 16, 64, 256).

    >>> round(bsc_crossover_probability(10.0), 6)
    0.058993
    """
    from semlink.theory import ber_awgn

    if snr_db == math.inf:
        return 0.0
    bits = bits_per_symbol_for_order(modulation)
    return float(ber_awgn(snr_db - 10.0 * math.log10(bits), modulation))


def float64_to_bits(values: torch.Tensor) -> torch.Tensor:
    """Values as IEEE 754 doubles, 64 bits each, most significant first (sign, exponent,
    mantissa: the big-endian bit string).

    :input values: [batch, n], float (cast to float64 exactly).
    :output bits: [batch, 64 n] float32 0/1; value i's bits at ``64 i .. 64 i + 63``.

    >>> float64_to_bits(torch.tensor([[-2.0]]))[0, :12].int().tolist()  # sign, exponent 1024
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    v = values.to(torch.float64).contiguous().view(torch.int64)  # [batch, n]
    shifts = torch.arange(FLOAT_BITS - 1, -1, -1, device=v.device)
    bits = (v.unsqueeze(-1) >> shifts) & 1  # [batch, n, 64]; arithmetic shift, bit kept
    return bits.reshape(v.shape[0], -1).to(torch.float32)


def bits_to_float64(bits: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`float64_to_bits`.

    :input bits: [batch, 64 n] float 0/1.
    :output values: [batch, n] float64 (any bit pattern: NaN and infinity included).
    """
    if bits.shape[-1] % FLOAT_BITS:
        raise ValueError(f"`bits` must hold whole doubles (a multiple of 64 per row); got "
                         f"shape {tuple(bits.shape)}.")
    b = bits.reshape(bits.shape[0], -1, FLOAT_BITS).to(torch.int64)  # [batch, n, 64]
    low = (b[..., 1:] << torch.arange(FLOAT_BITS - 2, -1, -1, device=b.device)).sum(-1)
    sign = torch.where(b[..., 0] == 1, _INT64_MIN, 0)  # bit 63 without a shift overflow
    return (low | sign).view(torch.float64)


def binary_symmetric_channel(bits: torch.Tensor, p: float,
                             generators: Sequence[torch.Generator]
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each bit independently with probability ``p``: row i draws one uniform number per
    bit from ``generators[i]`` and flips where it is below ``p``.

    :input bits: [batch, n] float 0/1.
    :param p: float in [0, 1]; crossover probability.
    :output received: [batch, n] float32 0/1.
    :output flips: [batch, n] bool; where a bit was flipped.
    """
    flips = torch.stack([torch.rand(bits.shape[1], generator=g, device=bits.device) < p
                         for g in generators])
    return torch.where(flips, 1 - bits, bits).to(torch.float32), flips


def sanitize_latent(values: torch.Tensor, generators: Sequence[torch.Generator]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' rule for received doubles: NaN, infinite, ``|x| > 10`` and ``|x| < 1e-2``
    become a standard normal draw; the rest are kept.

    :input values: [batch, n] float64, the received doubles.
    :param generators: One per row; row i draws all its ``n`` candidates from ``generators[i]``
        (so the draws do not depend on which values are replaced).
    :output latent: [batch, n] float32.
    :output replaced: [batch, n] bool.
    """
    magnitude = values.abs()
    replaced = ~torch.isfinite(values) | (magnitude > REPLACE_ABOVE) | (magnitude < REPLACE_BELOW)
    draws = torch.stack([torch.randn(values.shape[1], generator=g, device=values.device,
                                     dtype=torch.float64) for g in generators])
    return torch.where(replaced, draws, values).to(torch.float32), replaced


def bytes_to_bits(data: bytes, device: str | torch.device = "cpu") -> torch.Tensor:
    """Bytes -> [8 len] float32 0/1, each byte most significant bit first.

    >>> bytes_to_bits(b"A").int().tolist()
    [0, 1, 0, 0, 0, 0, 0, 1]
    """
    raw = torch.tensor(list(data), dtype=torch.int64, device=device)
    shifts = torch.arange(7, -1, -1, device=device)
    return ((raw.unsqueeze(-1) >> shifts) & 1).reshape(-1).to(torch.float32)


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """Inverse of :func:`bytes_to_bits`: [8 m] float 0/1 -> m bytes."""
    b = bits.reshape(-1, 8).to(torch.int64).cpu()
    return bytes((b << torch.arange(7, -1, -1)).sum(-1).tolist())


def decode_caption(data: bytes) -> str:
    """Received caption bytes -> text: trailing zero bytes (a frame's padding) dropped, UTF-8
    with ``errors="replace"`` (a byte that no longer decodes becomes U+FFFD)."""
    return data.rstrip(b"\0").decode("utf-8", errors="replace")


def plan_caption_blocks(caption_bytes: int, *, modulation: int, code_rate: float,
                        codeword_length: int = 2048) -> CodeBlockPlan:
    """CRC + 5G LDPC code blocks of a caption frame: the fewest blocks of at most
    ``codeword_length`` coded bits, each the shortest whole number of QAM symbols whose
    ``k = round(code_rate n)`` (CRC included) carries its share of the ``8 caption_bytes``
    payload bits.

    :output plan: :class:`~semlink.modulation.ldpc.CodeBlockPlan`.
    :raises InputError: If no such code exists.

    >>> p = plan_caption_blocks(128, modulation=16, code_rate=0.5)
    >>> p.num_blocks, p.k, p.n, p.num_coded_bits // 4
    (2, 536, 1072, 536)
    """
    bits_per_symbol = bits_per_symbol_for_order(modulation)
    payload = 8 * caption_bytes
    longest = codeword_length - codeword_length % bits_per_symbol
    for blocks in range(1, payload + 1):
        share = -(-payload // blocks)
        n = bits_per_symbol
        while n <= longest and information_bits_per_block(code_rate, n) - CRC_LENGTH < share:
            n += bits_per_symbol
        if n <= longest:
            try:
                return CodeBlockPlan(num_payload_bits=payload,
                                     k=information_bits_per_block(code_rate, n), n=n)
            except ValueError as err:
                raise InputError(f"caption: {caption_bytes} bytes at {modulation}-QAM rate "
                                 f"{code_rate:g} give no 5G LDPC code ({err})") from None
    raise InputError(f"caption: no code block of at most {codeword_length} bits carries a "
                     f"caption at rate {code_rate:g}; raise codeword_length")


def as_published_channel_uses(numel: int, caption_bytes: int, modulation: int = 16) -> int:
    """Channel uses of one image sent as published: ``ceil((64 numel + 8 caption_bytes) /
    log2 M)``.

    >>> as_published_channel_uses(4 * 64 * 64, 53)  # 512 px, a 53-byte caption, 16-QAM
    262250
    """
    bits = FLOAT_BITS * numel + 8 * caption_bytes
    return -(-bits // bits_per_symbol_for_order(modulation))


def _dimensionality(latent_shape: tuple[int, ...], image_shape: tuple[int, int],
                    channel_uses: int, transmission: str) -> Dimensionality:
    note = ("64-bit floats, uncoded QAM bits" if transmission == "as_published"
            else "analog symbols") + "; plus the caption (not counted)"
    return Dimensionality(tuple(latent_shape), tuple(image_shape), channel_uses, note)


def img2img_dimensionality(cfg: Any, image_shape: tuple[int, int]) -> Dimensionality:
    """The Table 1 row of an :class:`~semlink.scenario.link_img2img.Img2ImgSCLinkConfig` for
    images of ``image_shape`` without its models: SD 1.5's latent ``[4, H/8, W/8]`` (the tiny
    models' too) and the channel uses (as_published: a caption of ``caption_bytes``).
    """
    height, width = image_shape
    shape = (4, height // 8, width // 8)
    if cfg.transmission == "as_published":
        uses = as_published_channel_uses(math.prod(shape), cfg.caption_bytes, cfg.modulation)
    else:
        plan = plan_caption_blocks(cfg.caption_bytes, modulation=cfg.modulation,
                                   code_rate=0.5 if cfg.code_rate is None else cfg.code_rate,
                                   codeword_length=cfg.codeword_length or 2048)
        uses = (analog_channel_uses(shape)
                + plan.num_coded_bits // bits_per_symbol_for_order(cfg.modulation))
    return _dimensionality(shape, (height, width), uses, cfg.transmission)


# ----------------------------------------------------------------------------- the link


class Received(NamedTuple):
    """What the receiver gets of a batch (:meth:`Img2ImgSCLink.send`).

    :ivar latents: [batch, 4, h, w] float32; the received (sanitised) latents.
    :ivar captions: list of str; the received captions.
    :ivar channel_uses: [batch] int64; channel uses of each image (latent + caption).
    :ivar flipped_bits: [batch] int64; bits the BSC flipped (as_published; 0 for analog).
    :ivar replaced_values: [batch] int64; latent values replaced (as_published; 0 for analog).
    :ivar caption_errors: [batch] int64; caption bytes received wrong.
    :ivar caption_block_errors: [batch] int64; caption code blocks whose CRC failed (analog;
        0 for as_published).
    """

    latents: torch.Tensor
    captions: list
    channel_uses: torch.Tensor
    flipped_bits: torch.Tensor
    replaced_values: torch.Tensor
    caption_errors: torch.Tensor
    caption_block_errors: torch.Tensor


class Img2ImgSCLink:
    """The Img2Img-SC link for images of one size (see the module docstring).

    :param models: :class:`~semlink.models.sd15.SD15Models` (``load_sd15`` or ``tiny_sd15``).
    :param image_size: (height, width), px; multiples of the VAE's factor (8).
    :param captions: ``(images, names) -> captions``: a
        :class:`~semlink.links.captions.CaptionsFile` or
        :class:`~semlink.links.captions.BlipCaptioner`.
    :param transmission: ``"as_published"`` or ``"analog"``.
    :param steps, strength, guidance, negative_prompt: The receiver's img2img settings.
    :param caption_bytes: Longest caption, UTF-8 bytes (analog: the caption frame).
    :param modulation: QAM order (as_published: the BER's; analog: the caption's).
    :param code_rate, codeword_length: The caption's LDPC (analog).
    :param device: Torch device (the models' and the generators').
    :ivar channel_uses: int; complex channel uses per image: analog exactly, as_published for a
        caption of ``caption_bytes`` (shorter captions use fewer: the ``channel_uses`` column).
    :ivar receiver: :class:`~semlink.models.sd15.SD15Img2Img`; its VAE encoder serves the
        transmitter (:meth:`encode`).
    :ivar caption_plan: The caption's code blocks (analog); None for as_published.
    """

    kind = "image"
    scoring = "concealed"
    wants_names = True  # captions are looked up by the images' file names

    def __init__(self, *, models: SD15Models, image_size: tuple[int, int],
                 captions: CaptionSource, transmission: str = "as_published", steps: int = 50,
                 strength: float = 0.6, guidance: float = 9.0, negative_prompt: str = "",
                 caption_bytes: int = 128, modulation: int = 16, code_rate: float = 0.5,
                 codeword_length: int = 2048, device: str = "cpu") -> None:
        if transmission not in ("as_published", "analog"):
            raise ValueError(f"`transmission` must be 'as_published' or 'analog'; got "
                             f"{transmission!r}.")
        factor = 2 ** (len(models.vae.config.block_out_channels) - 1)
        height, width = image_size
        if height % factor or width % factor:
            raise InputError(f"images: {height}x{width} px; the VAE needs sides that are "
                             f"multiples of {factor}")
        self.latent_shape = (models.vae.config.latent_channels, height // factor, width // factor)
        self.image_size = (height, width)
        self.receiver = SD15Img2Img(models, steps=steps, strength=strength, guidance=guidance,
                                    negative_prompt=negative_prompt)
        self.captions = captions
        self.transmission = transmission
        self.caption_bytes = caption_bytes
        self.modulation = modulation
        self.device = device
        if transmission == "as_published":
            self.caption_plan = None
            self.channel_uses = self.uses_as_published(caption_bytes)
        else:
            self._analog_mapper = AnalogMapper(shape=self.latent_shape, device=device)
            self._analog_demapper = AnalogDemapper(shape=self.latent_shape, device=device)
            plan = plan_caption_blocks(caption_bytes, modulation=modulation,
                                       code_rate=code_rate, codeword_length=codeword_length)
            bps = bits_per_symbol_for_order(modulation)
            self._ldpc_encoder = CodeBlockEncoder(plan, bits_per_symbol=bps, check_values=False,
                                                  device=device)
            self._ldpc_decoder = CodeBlockDecoder(self._ldpc_encoder, device=device)
            self._qam_mapper = QAMMapper(bits_per_symbol=bps, check_values=False, device=device)
            self._qam_demapper = QAMDemapper(bits_per_symbol=bps, check_values=False,
                                             device=device)
            self.caption_plan = plan
            self.latent_uses = self._analog_mapper.num_symbols
            self.channel_uses = self.latent_uses + plan.num_coded_bits // bps

    def check_names(self, names: Sequence[str]) -> None:
        """Refuse, before any task, images the captions source has no caption for (a captions
        file without their rows); BLIP captions any image.

        :raises InputError: Naming the captions file and the first image without a row.
        """
        check = getattr(self.captions, "check", None)
        if check is not None:
            check(names)

    @classmethod
    def from_config(cls, cfg: Any, context: LinkContext) -> Img2ImgSCLink:
        """Build from an :class:`~semlink.scenario.link_img2img.Img2ImgSCLinkConfig`: paths
        relative to ``context.base_dir``; the tiny models seeded from the scenario's seed and
        the link's name.

        :raises InputError: For as_published over a channel other than plain AWGN, missing
            images, weights, captions or captioner (one line each).
        """
        from semlink.links.captions import BlipCaptioner, CaptionsFile
        from semlink.models.sd15 import load_sd15, tiny_sd15
        from semlink.scenario.link_img2img import as_published_channel_problem
        from semlink.seeding import derive_seed

        where = f"links.{context.name}"
        if context.image_shape is None:
            raise InputError(f"{where}: the img2img-sc link sends images; give images: a size")
        if cfg.transmission == "as_published":
            problem = as_published_channel_problem(context.channel, where)
            if problem is not None:
                raise InputError(problem)

        def path(value: str) -> Path:
            p = Path(value).expanduser()
            return p if p.is_absolute() else Path(context.base_dir) / p

        cuda = str(context.device).startswith("cuda")
        if cfg.model == "tiny":
            models = tiny_sd15(seed=derive_seed(context.seed, context.name, "tiny-weights"),
                               device=context.device)
        else:
            folder = path(cfg.weights)
            if not folder.is_dir():
                raise InputError(f"{folder}: Stable Diffusion 1.5 folder not found "
                                 f"({where}.weights)")
            models = load_sd15(folder, device=context.device,
                               dtype=torch.float16 if cuda else torch.float32)
        if cfg.captions is not None:
            source: CaptionSource = CaptionsFile(path(cfg.captions), max_bytes=cfg.caption_bytes,
                                                 key=f"{where}.captions")
        else:
            source = BlipCaptioner(path(cfg.captioner), max_bytes=cfg.caption_bytes,
                                   device=context.device, key=f"{where}.captioner")
        return cls(models=models, image_size=tuple(context.image_shape), captions=source,
                   transmission=cfg.transmission, steps=cfg.steps, strength=cfg.strength,
                   guidance=cfg.guidance, negative_prompt=cfg.negative_prompt,
                   caption_bytes=cfg.caption_bytes, modulation=cfg.modulation,
                   code_rate=0.5 if cfg.code_rate is None else cfg.code_rate,
                   codeword_length=cfg.codeword_length or 2048, device=context.device)

    # ------------------------------------------------------------------ protocol
    def uses_as_published(self, caption_bytes: int) -> int:
        """as_published channel uses of one image with a caption of ``caption_bytes`` bytes."""
        return as_published_channel_uses(math.prod(self.latent_shape), caption_bytes,
                                         self.modulation)

    def dimensionality(self) -> Dimensionality:
        """The latent ``[4, H/8, W/8]``: 48 image values per value sent (2.08 %), as the
        paper's Table 1 counts it; the caption is not counted there."""
        return _dimensionality(self.latent_shape, self.image_size, self.channel_uses,
                               self.transmission)

    def point_fields(self) -> dict[str, Any]:
        """No point-level fields: the crossover probability is a per-image column."""
        return {}

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generators: Sequence[torch.Generator]
               ) -> torch.Tensor:
        """[batch, 3, H, W] in [0, 1] -> scaled latents [batch, 4, H/8, W/8] float32."""
        return self.receiver.encode_images(images, generators)

    def send(self, latents: torch.Tensor, captions: Sequence[str], channel: Any,
             snr_db: float, generators: ImageGenerators) -> Received:
        """Latents and captions through the transmission; ``channel`` is used by analog only."""
        if self.transmission == "as_published":
            return self._send_as_published(latents, list(captions), snr_db, generators)
        return self._send_analog(latents, list(captions), channel, snr_db)

    def reconstruct(self, latents: torch.Tensor, captions: Sequence[str],
                    generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Received latents and captions -> images [batch, 3, H, W] float32 in [0, 1]."""
        return self.receiver(latents, captions, generators)

    def transmit(self, images: torch.Tensor, channel: Any, snr_db: float,
                 generators: ImageGenerators, *, names: Sequence[str] | None = None
                 ) -> Transmitted:
        """The whole link for one batch. ``names``: the images' file names, which a captions
        file is keyed by (BLIP needs none).

        Columns: ``channel_uses``, ``caption_errors``, ``latent_mse`` (received minus sent
        latent), and ``flipped_bits``, ``replaced_values``, ``bit_error_probability``
        (as_published) or ``caption_block_errors`` (analog).
        """
        images = images.to(self.device)
        latents = self.encode(images, generators("vae"))
        captions = self.captions(images, names)
        rx = self.send(latents, captions, channel, snr_db, generators)
        out = self.reconstruct(rx.latents, rx.captions, generators("sampler"))
        columns = {"channel_uses": rx.channel_uses, "caption_errors": rx.caption_errors,
                   "latent_mse": (rx.latents - latents).square().flatten(1).mean(1)}
        if self.transmission == "as_published":
            p = bsc_crossover_probability(float(snr_db), self.modulation)
            columns.update(flipped_bits=rx.flipped_bits, replaced_values=rx.replaced_values,
                           bit_error_probability=torch.full(
                               (len(images),), p, dtype=torch.float64, device=self.device))
        else:
            columns["caption_block_errors"] = rx.caption_block_errors
        failed = torch.zeros(len(images), dtype=torch.bool, device=self.device)
        return Transmitted(out, failed, columns)

    # ------------------------------------------------------------------ transmissions
    def _send_as_published(self, latents: torch.Tensor, captions: list[str], snr_db: float,
                           generators: ImageGenerators) -> Received:
        p = bsc_crossover_probability(float(snr_db), self.modulation)
        batch = latents.shape[0]
        bits = float64_to_bits(latents.flatten(1))  # [batch, 64 numel]
        flip_gens = generators("bsc")
        rx_bits, flips = binary_symmetric_channel(bits, p, flip_gens)  # [batch, 64 numel]
        values = bits_to_float64(rx_bits)
        received, replaced = sanitize_latent(values, generators("replace"))
        texts, caption_flips, caption_errors, uses = [], [], [], []
        for caption, g in zip(captions, flip_gens):  # the same generator, after the latent's
            data = caption.encode("utf-8")
            rx_bits, cflips = binary_symmetric_channel(bytes_to_bits(data, bits.device)[None],
                                                       p, [g])
            rx = bits_to_bytes(rx_bits)
            texts.append(decode_caption(rx))
            caption_flips.append(int(cflips.sum()))
            caption_errors.append(sum(a != b for a, b in zip(data, rx)))
            uses.append(self.uses_as_published(len(data)))
        counts = torch.tensor([uses, caption_flips, caption_errors], dtype=torch.int64,
                              device=latents.device)  # [3, batch]
        zeros = torch.zeros(batch, dtype=torch.int64, device=latents.device)
        return Received(received.reshape(latents.shape), texts, counts[0],
                        flips.sum(1) + counts[1], replaced.sum(1), counts[2], zeros)

    def _caption_frames(self, captions: list[str], device: torch.device) -> torch.Tensor:
        frames = []
        for caption in captions:
            data = caption.encode("utf-8")
            if len(data) > self.caption_bytes:
                raise InputError(f"caption {caption[:40]!r}... is {len(data)} bytes; "
                                 f"caption_bytes allows {self.caption_bytes}")
            frames.append(bytes_to_bits(data.ljust(self.caption_bytes, b"\0"), device))
        return torch.stack(frames)  # [batch, 8 caption_bytes]

    def _send_analog(self, latents: torch.Tensor, captions: list[str], channel: Any,
                     snr_db: float) -> Received:
        batch = latents.shape[0]
        x, scale = self._analog_mapper(latents)  # [batch, latent_uses], [batch]
        frames = self._caption_frames(captions, latents.device)
        xc = self._qam_mapper(self._ldpc_encoder(frames))  # [batch, caption symbols]
        x_hat, no_eff = channel(torch.cat([x, xc.to(x.dtype)], dim=1), snr_db)
        n = self.latent_uses
        received = self._analog_demapper(x_hat[:, :n], scale)
        rx_bits, block_ok = self._ldpc_decoder(self._qam_demapper(x_hat[:, n:], no_eff[:, n:]))
        sent_bytes = frames.reshape(batch, -1, 8)
        byte_errors = (rx_bits.reshape(batch, -1, 8) != sent_bytes).any(-1).sum(1)
        texts = [decode_caption(bits_to_bytes(row)) for row in rx_bits]
        zeros = torch.zeros(batch, dtype=torch.int64, device=latents.device)
        return Received(received.to(torch.float32), texts, zeros + self.channel_uses, zeros,
                        zeros, byte_errors.to(torch.int64), (~block_ok).sum(1).to(torch.int64))


# ----------------------------------------------------------------------------- bench


def bench_img2img_sc(image_size: int, batch_size: int, *, device: str,
                     transmission: str = "as_published", model: str = "sd15", steps: int = 50,
                     strength: float = 0.6, guidance: float = 9.0, snr_db: float = 10.0,
                     caption: str = "a photograph of a red door next to a window",
                     repeats: int = 2, seed: int = 0) -> dict[str, Any]:
    """Seconds per image of the Img2Img-SC link, after one warm-up call: VAE encoding, the
    transmission (as_published's bits and BSC, or analog symbols, caption code blocks and
    AWGN), the img2img loop and VAE decoding, each timed apart.

    ``model="sd15"``: random weights of SD 1.5's real UNet and VAE
    (:func:`semlink.bench.sd15_models`; float16 on CUDA, float32 on the CPU) and random prompt
    embeddings ``[batch, 77, 768]`` in place of the CLIP text encoder (speed does not depend on
    the weights); ``model="tiny"``: :func:`~semlink.models.sd15.tiny_sd15` (tests).

    :output result: ``{"pipeline", "transmission", "model", "image_size", "batch_size",
        "steps", "strength", "denoising_steps", "guidance", "dtype", "warmup_seconds",
        "channel_uses", "seconds_per_image", "images_per_second", "encode_seconds_per_image",
        "transmission_seconds_per_image", "denoise_seconds_per_image",
        "decode_seconds_per_image", "peak_memory_mib", "random_weights"}``.
    """
    from semlink.bench import _peak_memory_mib, _peak_memory_reset, _sync, sd15_models
    from semlink.channels.awgn import AWGNChannel
    from semlink.models.sd15 import _SD15_SCHEDULER, img2img_timesteps, tiny_sd15
    from semlink.seeding import derive_seed, make_generator

    if model == "sd15":
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        unet, vae = sd15_models(device=device, dtype=dtype)
        models = SD15Models(unet, vae, dict(_SD15_SCHEDULER), None, 0.18215, "random")
    elif model == "tiny":
        models = tiny_sd15(seed=seed, device=device)
    else:
        raise ValueError(f"`model` must be 'sd15' or 'tiny'; got {model!r}.")
    param = next(models.unet.parameters())
    link = Img2ImgSCLink(models=models, image_size=(image_size, image_size),
                         captions=lambda images, names: [caption] * len(images),
                         transmission=transmission, steps=steps, strength=strength,
                         guidance=guidance, device=device)
    dim = models.unet.config.cross_attention_dim
    embed_gen = make_generator(seed, device)
    cond = torch.randn(batch_size, 77, dim, generator=embed_gen, device=device).to(param.dtype)
    uncond = torch.randn(1, 77, dim, generator=embed_gen, device=device).to(param.dtype)
    images = torch.rand(batch_size, 3, image_size, image_size, generator=embed_gen,
                        device=device)
    channel = AWGNChannel(generator=make_generator(seed + 1, device), check_values=False,
                          device=device)

    def generators(purpose: str) -> list:
        return [make_generator(derive_seed(seed, purpose, i), device) for i in range(batch_size)]

    seconds = dict.fromkeys(("encode", "transmission", "denoise", "decode"), 0.0)

    def timed(part: str, fn: Callable[[], Any]) -> Any:
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        seconds[part] += time.perf_counter() - start
        return out

    @torch.no_grad()
    def once() -> None:
        z = timed("encode", lambda: link.encode(images, generators("vae")))
        rx = timed("transmission", lambda: link.send(z, [caption] * batch_size, channel,
                                                     snr_db, generators))
        z = timed("denoise", lambda: link.receiver.denoise(rx.latents, cond,
                                                           generators("sampler"), uncond))
        timed("decode", lambda: link.receiver.decode(z))

    _sync(device)
    warmup = time.perf_counter()
    once()  # warm-up: kernel selection, allocator
    _sync(device)
    warmup = time.perf_counter() - warmup
    seconds = dict.fromkeys(seconds, 0.0)
    _peak_memory_reset(device)
    for _ in range(repeats):
        once()
    per_image = {k: v / (repeats * batch_size) for k, v in seconds.items()}
    total = sum(per_image.values())
    result = {"pipeline": "img2img-sc", "transmission": transmission, "model": model,
              "image_size": image_size, "batch_size": batch_size, "steps": steps,
              "strength": strength,
              "denoising_steps": len(img2img_timesteps(link.receiver.scheduler, steps, strength)),
              "guidance": guidance, "dtype": str(param.dtype).replace("torch.", ""),
              "warmup_seconds": warmup,
              "channel_uses": link.uses_as_published(len(caption.encode()))
              if transmission == "as_published" else link.channel_uses,
              "seconds_per_image": total, "images_per_second": 1.0 / total,
              **{f"{k}_seconds_per_image": v for k, v in per_image.items()},
              "peak_memory_mib": _peak_memory_mib(device), "random_weights": True}
    return result
