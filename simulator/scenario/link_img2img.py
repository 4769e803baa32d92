"""Scenario config of the ``img2img-sc`` link: Cicchetti et al.'s Img2Img-SC (Stable Diffusion
1.5 img2img from a received VAE latent and caption), docs/img2img-sc.md.

Example::

    links:
      img2img:
        type: img2img-sc
        weights: ~/weights/stable-diffusion-v1-5   # diffusers layout
        transmission: as_published                 # or analog
        captions: photos/captions.csv              # CSV image,caption (or captioner: BLIP folder)

Loads without torch (``semlink validate``); ``build`` imports the link.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from semlink.scenario.limits import CHANNEL_IMPAIRMENTS, QAM_ORDERS, CodeRate, _Frozen, parse_rate

if TYPE_CHECKING:
    from semlink.links.protocol import Dimensionality, LinkContext

__all__ = ["Img2ImgSCLinkConfig", "IMG2IMG_TRANSMISSIONS", "as_published_channel_problem"]

#: How the latent and caption cross the channel (docs/img2img-sc.md).
IMG2IMG_TRANSMISSIONS = ("as_published", "analog")
_ANALOG_ONLY = ("code_rate", "codeword_length")


def as_published_channel_problem(channel: Any, where: str) -> str | None:
    """Why ``transmission: as_published`` cannot run over the scenario's ``channel`` (a channel
    config): it flips bits with the uncoded QAM BER over AWGN and simulates no symbols, so
    anything but plain AWGN would be ignored. None when the channel is plain AWGN.

    :param where: The link's key in messages (``links.NAME``).
    """
    kind = getattr(channel, "type", None)
    extras = [f for f in (*CHANNEL_IMPAIRMENTS, "phase_tracking") if getattr(channel, f, None)]
    if kind == "awgn" and not extras:
        return None
    what = kind if kind != "awgn" else f"awgn with {', '.join(extras)}"
    return (f"{where}.transmission: as_published flips bits with the uncoded QAM BER over "
            f"plain AWGN (no symbols simulated); the scenario's channel is {what}: use channel "
            "type awgn without impairments, or transmission: analog")


class Img2ImgSCLinkConfig(_Frozen):
    """Img2Img-SC: the Stable Diffusion 1.5 VAE latent and a caption cross the channel; the
    receiver runs SD img2img from the noisy latent with the noisy caption.

    ``transmission``: ``as_published`` (the authors': every latent value as its 64-bit float,
    every caption byte as 8 bits, through a binary symmetric channel with the uncoded Gray
    M-QAM bit error rate over AWGN; the scenario's channel must be plain AWGN) or ``analog``
    (the latent as analog symbols through the scenario's channel, the caption through CRC +
    LDPC + QAM).
    """

    kind: ClassVar[str] = "image"
    scoring: ClassVar[str] = "concealed"

    type: Literal["img2img-sc"]
    model: Literal["sd15", "tiny"] = Field(
        "sd15", description="sd15: Stable Diffusion 1.5 from `weights`; tiny: tiny random models "
        "of the same classes (tests and CPU demos; the images are noise).")
    weights: str | None = Field(None, description="Stable Diffusion 1.5 folder in diffusers "
                                "layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/), "
                                "relative to the scenario's folder; model sd15 only.")
    transmission: Literal[IMG2IMG_TRANSMISSIONS] = "as_published"
    steps: int = Field(50, ge=1, le=1000, description="DDIM schedule length.")
    strength: float = Field(0.6, ge=0.0, le=1.0, description="Share of the schedule denoised "
                            "from the received latent: int(steps * strength) steps.")
    guidance: float = Field(9.0, ge=1.0, le=100.0, description="Classifier-free guidance "
                            "scale; 1 = none.")
    negative_prompt: str = Field("", max_length=1000, description="The unconditional prompt.")
    captions: str | None = Field(None, description="CSV file image,caption (the images' file "
                                 "names), relative to the scenario's folder.")
    captioner: str | None = Field(None, description="BLIP captioning model folder (needs "
                                  "transformers: pip install 'semlink[blip]').")
    caption_bytes: int = Field(128, ge=1, le=1024, description="Longest caption, UTF-8 bytes; "
                               "analog sends a caption frame of this size.")
    modulation: int = Field(16, description="QAM order: as_published, the uncoded Gray QAM "
                            "whose BER flips the bits (bits / log2 M channel uses); analog, the "
                            "caption's QAM.")
    # None rather than a default value: as_published has no code (and a dumped config reloads).
    code_rate: CodeRate | None = Field(None, description="LDPC rate of the caption (analog); "
                                       "None = 1/2.")
    codeword_length: int | None = Field(None, ge=64, le=8448, description="Longest LDPC "
                                        "codeword of the caption, bits (analog); None = 2048.")

    _rate = field_validator("code_rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    @field_validator("modulation")
    @classmethod
    def _qam(cls, m: int) -> int:
        if m not in QAM_ORDERS:
            raise ValueError(f"must be one of {', '.join(map(str, QAM_ORDERS))} (QAM order M); "
                             f"got {m}")
        return m

    @model_validator(mode="after")
    def _consistent(self) -> "Img2ImgSCLinkConfig":
        if self.model == "sd15" and self.weights is None:
            raise ValueError("weights: model sd15 needs a Stable Diffusion 1.5 folder in "
                             "diffusers layout (unet/, vae/, text_encoder/, tokenizer/, "
                             "scheduler/); or model: tiny (random weights, for tests)")
        if self.model == "tiny" and self.weights is not None:
            raise ValueError("weights: model tiny builds random models; remove weights or use "
                             "model: sd15")
        if (self.captions is None) == (self.captioner is None):
            raise ValueError("give one of captions: (a CSV file image,caption beside the "
                             "images) or captioner: (a BLIP model folder, needs transformers); "
                             f"got {'both' if self.captions else 'neither'}")
        if self.transmission == "as_published":
            given = [k for k in _ANALOG_ONLY if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: apply to transmission analog (the "
                                 "caption's CRC + LDPC); as_published sends uncoded bits")
        return self

    def build(self, context: LinkContext) -> Any:
        """The link (:class:`semlink.links.img2img.Img2ImgSCLink`), models loaded."""
        from semlink.links.img2img import Img2ImgSCLink

        return Img2ImgSCLink.from_config(self, context)

    def dimensionality(self, context: LinkContext) -> Dimensionality:
        """The latent ``[4, H/8, W/8]`` and the channel uses, without the models
        (:func:`semlink.links.img2img.img2img_dimensionality`)."""
        from semlink.links.img2img import img2img_dimensionality

        return img2img_dimensionality(self, context.image_shape)

    def channel_uses(self, context: LinkContext) -> int:
        """Complex channel uses per image, from :meth:`dimensionality` (as_published: with a
        caption of ``caption_bytes``)."""
        return self.dimensionality(context).channel_uses

    def check_scenario(self, scenario: Any, name: str) -> None:
        """as_published runs over plain AWGN only."""
        if self.transmission == "as_published":
            problem = as_published_channel_problem(scenario.channel, f"links.{name}")
            if problem is not None:
                raise ValueError(problem)

    def referenced_paths(self) -> dict[str, str]:
        """The weights folder, captions file or BLIP folder, by field."""
        return {k: v for k in ("weights", "captions", "captioner")
                if (v := getattr(self, k)) is not None}
