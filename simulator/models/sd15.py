"""Stable Diffusion 1.5 for the Img2Img-SC baseline: the models and img2img from a latent.

:func:`load_sd15` loads a folder in diffusers layout (checked by
:mod:`semlink.models.sd15_files`, whose names this module re-exports), checking each file's keys
and shapes against the model built from its config before reading any data. The text encoder
needs ``transformers`` (``pip install 'semlink[blip]'``); the UNet and VAE need only diffusers.

The receiver (:class:`SD15Img2Img`) takes prompt embeddings ``[batch, 77, dim]``: encoding
text is a separate step (:class:`CLIPPromptEncoder` for the real weights, :class:`TinyTextEncoder`,
a byte-level embedding with the same call, for :func:`tiny_sd15`'s random test models).
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semlink.errors import InputError, describe_error
from semlink.models.sd15_files import (_CONFIG_FILES, SD15_COMPONENTS, SD15_REPO_ID,
                                       SD15Component, SD15Report, describe_sd15_dir,
                                       scan_sd15_dir)
from semlink.models.weight_files import _keys

__all__ = ["SD15_COMPONENTS", "SD15_REPO_ID", "SD15_SCALING_FACTOR", "PROMPT_TOKENS",
           "SD15Component", "SD15Report", "scan_sd15_dir", "describe_sd15_dir", "SD15Models",
           "load_sd15", "tiny_sd15", "TinyTextEncoder", "CLIPPromptEncoder",
           "img2img_timesteps", "SD15Img2Img"]

SD15_SCALING_FACTOR = 0.18215
"""Latent scale of SD 1.5's VAE: the UNet works on ``raw * 0.18215``."""

PROMPT_TOKENS = 77
"""Tokens of a CLIP prompt embedding."""

# Attention blocks of VAEs saved before diffusers 0.14 (query/key/value/proj_attn).
_DEPRECATED_ATTENTION = re.compile(r"^(.*\.attentions\.\d+)\.(query|key|value|proj_attn)\."
                                   r"(weight|bias)$")
_NEW_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


@dataclasses.dataclass(eq=False)
class SD15Models:
    """The parts of Stable Diffusion 1.5 img2img.

    :ivar unet: diffusers ``UNet2DConditionModel``, eval mode.
    :ivar vae: diffusers ``AutoencoderKL``, eval mode.
    :ivar scheduler_config: The scheduler's config (a DDIM scheduler is built from it).
    :ivar text_encoder: ``prompts -> [batch, 77, dim]`` embeddings, or None when not loaded.
    :ivar scaling_factor: The VAE's latent scale (0.18215 for SD 1.5).
    :ivar source: The weights folder, or ``"tiny-random"``.
    """

    unet: nn.Module
    vae: nn.Module
    scheduler_config: dict[str, Any]
    text_encoder: Callable[[Sequence[str]], torch.Tensor] | None
    scaling_factor: float
    source: str


def load_sd15(path: str | Path, *, device: str = "cpu", dtype: torch.dtype = torch.float32,
              text_encoder: bool = True) -> SD15Models:
    """Load Stable Diffusion 1.5 from a folder in diffusers layout.

    Each model is built from its ``config.json`` on the meta device, the safetensors header is
    checked against it (keys and shapes; VAE attention keys saved before diffusers 0.14 are
    renamed), then the tensors are read and loaded strictly.

    :param path: The folder.
    :param device: Torch device of the models.
    :param dtype: Parameter dtype (float32 on the CPU; float16 on CUDA, as the authors' autocast).
    :param text_encoder: Load the CLIP text encoder and tokenizer (needs ``transformers``).
    :output models: :class:`SD15Models`.
    :raises InputError: One line naming the file and the fix, for every problem
        :func:`scan_sd15_dir` finds, a key or shape that does not fit, non-finite weights,
        or ``transformers`` missing when ``text_encoder`` is True.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    report = scan_sd15_dir(path)
    report.check(("unet", "vae", "scheduler") + (("text_encoder", "tokenizer")
                                                   if text_encoder else ()))
    unet = _load_model(UNet2DConditionModel, report["unet"], device, dtype)
    vae = _load_model(AutoencoderKL, report["vae"], device, dtype)
    encoder = CLIPPromptEncoder(report, device=device, dtype=dtype) if text_encoder else None
    scale = float(report["vae"].config.get("scaling_factor", SD15_SCALING_FACTOR))
    return SD15Models(unet, vae, dict(report["scheduler"].config), encoder, scale,
                      str(report.root))


def _renamed(key: str) -> str:
    m = _DEPRECATED_ATTENTION.match(key)
    return f"{m[1]}.{_NEW_ATTENTION[m[2]]}.{m[3]}" if m else key


def _load_model(cls: type, found: SD15Component, device: str, dtype: torch.dtype) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from semlink.models.weights import check_finite

    config_path = found.folder / _CONFIG_FILES[found.component]
    try:
        with torch.device("meta"):
            model = cls.from_config(found.config)
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(f"{config_path}: cannot build {cls.__name__} from it "
                         f"({describe_error(err)}).") from err
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shown = found.files[0] if len(found.files) == 1 else found.folder
    header = {_renamed(k): v for k, v in found.tensors.items()}
    missing = [k for k in expected if k not in header]
    unexpected = [k for k in header if k not in expected]
    if missing or unexpected:
        parts = ([f"{len(missing)} key(s) missing: {_keys(missing)}"] if missing else []) + \
                ([f"{len(unexpected)} unexpected key(s): {_keys(unexpected)}"] if unexpected
                 else [])
        raise InputError(f"{shown}: {'; '.join(parts)} (not the {cls.__name__} its "
                         f"{config_path.name} describes).")
    wrong = [k for k, shape in expected.items() if header[k][1] != shape]
    if wrong:
        raise InputError(f"{shown}: wrong shape for `{wrong[0]}`: expected "
                         f"{list(expected[wrong[0]])}, got {list(header[wrong[0]][1])}; the "
                         f"weights do not match {config_path.name}.")
    state: dict[str, torch.Tensor] = {}
    for f in found.files:
        try:
            state.update({_renamed(k): v for k, v in load_file(f, device="cpu").items()})
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise InputError(f"{f}: cannot load ({describe_error(err)}).") from err
    check_finite(state, shown)
    model.load_state_dict(state, strict=True, assign=True)
    return nn.Module.to(model, device=device, dtype=dtype).eval()


def _tiny_configs() -> tuple[dict[str, Any], dict[str, Any]]:
    """UNet and VAE configs of the same classes as SD 1.5's, about a thousand times smaller:
    a latent of 4 channels at 1/8 of the image side, cross-attention on SD 1.5's
    ``[batch, 77, 768]`` prompt embeddings."""
    unet = {"sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
            "block_out_channels": (16, 32), "norm_num_groups": 8, "cross_attention_dim": 768,
            "attention_head_dim": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D")}
    vae = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
           "block_out_channels": (8, 16, 16, 16), "norm_num_groups": 4, "sample_size": 64,
           "down_block_types": ("DownEncoderBlock2D",) * 4,
           "up_block_types": ("UpDecoderBlock2D",) * 4, "scaling_factor": SD15_SCALING_FACTOR}
    return unet, vae


#: SD 1.5's scheduler settings (its ``scheduler_config.json``), for the tiny models.
_SD15_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                   "beta_schedule": "scaled_linear", "clip_sample": False,
                   "set_alpha_to_one": False, "steps_offset": 1, "prediction_type": "epsilon"}


def _fill(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Deterministic random weights from ``generator`` (torch's global RNG untouched): matrices
    and kernels N(0, 1 / fan_in), norm scales 1, biases 0."""
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.dim() >= 2:
                fan_in = math.prod(t.shape[1:])
                t.copy_(torch.randn(t.shape, generator=generator) / math.sqrt(fan_in))
            else:
                t.fill_(1.0 if name.endswith("weight") else 0.0)
    return model


def tiny_sd15(*, seed: int = 0, device: str = "cpu",
              dtype: torch.dtype = torch.float32) -> SD15Models:
    """Tiny random UNet and VAE of SD 1.5's classes, SD 1.5's scheduler, and a
    :class:`TinyTextEncoder` (``[batch, 77, 768]`` embeddings, as CLIP's), for tests and CPU
    demos: the images they make are noise. The same ``seed`` gives the same weights on every
    machine.

    >>> m = tiny_sd15(seed=0)
    >>> type(m.unet).__name__, m.unet.config.cross_attention_dim, m.text_encoder(["a"]).shape
    ('UNet2DConditionModel', 768, torch.Size([1, 77, 768]))
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet_cfg, vae_cfg = _tiny_configs()
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**unet_cfg), AutoencoderKL(**vae_cfg)
    models = []
    for m in (unet, vae):
        m = _fill(nn.Module.to_empty(m, device="cpu"), generator)
        models.append(nn.Module.to(m, device=device, dtype=dtype).eval())
    text = TinyTextEncoder(dim=unet_cfg["cross_attention_dim"], seed=seed + 1).to(
        device=device, dtype=dtype)
    return SD15Models(models[0], models[1], dict(_SD15_SCHEDULER), text, SD15_SCALING_FACTOR,
                      "tiny-random")


class TinyTextEncoder(nn.Module):
    """A stand-in for CLIP's text encoder with its call: prompts -> ``[batch, 77, dim]``.

    The UTF-8 bytes of a prompt (at most 75, then cut) between a start token (256) and end
    tokens (257, also the padding, as CLIP's SD 1.5 tokenizer pads), embedded by a random
    ``nn.Embedding`` plus a random position embedding. Different prompts give different
    embeddings, so caption errors reach the receiver in tests without ``transformers``.

    :param dim: int >= 1; embedding width (the UNet's ``cross_attention_dim``).
    :param seed: int; the weights' seed.
    :input prompts: Sequence of str.
    :output embeddings: [batch, 77, dim], the module's dtype, on its device.
    """

    def __init__(self, *, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.config = {"dim": dim, "seed": seed}
        generator = torch.Generator().manual_seed(seed)
        self.tokens = nn.Parameter(torch.randn(258, dim, generator=generator))
        self.positions = nn.Parameter(0.1 * torch.randn(PROMPT_TOKENS, dim, generator=generator))

    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        if isinstance(prompts, str):
            raise TypeError("`prompts` must be a sequence of str, not one str.")
        ids = torch.full((len(prompts), PROMPT_TOKENS), 257, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            data = list(prompt.encode("utf-8"))[:PROMPT_TOKENS - 2]
            ids[i, 0] = 256
            ids[i, 1:1 + len(data)] = torch.tensor(data, dtype=torch.long)
        ids = ids.to(self.tokens.device)
        return self.tokens[ids] + self.positions  # [batch, 77, dim]


class CLIPPromptEncoder:
    """SD 1.5's text path: CLIP tokenizer (padded to 77 tokens, longer prompts cut) and
    ``CLIPTextModel``'s last hidden state, from a checked folder (needs ``transformers``).

    :param report: :func:`scan_sd15_dir` of the folder (text_encoder/ and tokenizer/ usable).
    :input prompts: Sequence of str.
    :output embeddings: [batch, 77, 768], ``dtype``, on ``device``.
    :raises InputError: If ``transformers`` is missing or cannot load the files.
    """

    def __init__(self, report: SD15Report, *, device: str, dtype: torch.dtype) -> None:
        try:
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError as err:
            raise InputError(f"{report.root}: the CLIP text encoder needs transformers "
                             "(pip install 'semlink[blip]').") from err
        found = report["text_encoder"]
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(str(report.root / "tokenizer"))
            model = CLIPTextModel.from_pretrained(str(found.folder), variant=found.variant or None,
                                                  use_safetensors=True, torch_dtype=dtype)
        except Exception as err:  # noqa: BLE001 - a library's multi-line failure: one line
            raise InputError(f"{found.folder}: transformers cannot load the CLIP text encoder "
                             f"({describe_error(err)}).") from err
        self.model = model.to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length,
                             return_tensors="pt").input_ids.to(self.device)
        return self.model(ids)[0]


# ----------------------------------------------------------------------------- img2img


def img2img_timesteps(scheduler: Any, steps: int, strength: float, device: str = "cpu"
                      ) -> torch.Tensor:
    """The timesteps img2img denoises through, as diffusers' ``StableDiffusionImg2ImgPipeline``:
    a schedule of ``steps``, of which the last ``int(steps * strength)`` (SD 1.5's DDIM with 50
    steps at strength 0.6: the 30 from 581 down to 1).

    :param scheduler: A diffusers DDIM scheduler (``set_timesteps`` is called on it).
    :output timesteps: [int(steps * strength)] int64, descending; empty at strength 0.

    >>> from diffusers import DDIMScheduler
    >>> s = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    ...                   steps_offset=1, set_alpha_to_one=False, clip_sample=False)
    >>> t = img2img_timesteps(s, 50, 0.6)
    >>> len(t), int(t[0]), int(t[-1])
    (30, 581, 1)
    """
    scheduler.set_timesteps(steps, device=device)
    start = steps - min(int(steps * strength), steps)
    return scheduler.timesteps[start * scheduler.order:]


def _per_row_randn(shape: Sequence[int], generators: Sequence[torch.Generator],
                   device: str | torch.device) -> torch.Tensor:
    """[len(generators), *shape] float32 standard normal, row i from ``generators[i]``."""
    return torch.stack([torch.randn(tuple(shape), generator=g, device=device)
                        for g in generators])


class SD15Img2Img:
    """Stable Diffusion img2img from a (received) latent: noise it to the schedule's start
    timestep, denoise with the UNet and classifier-free guidance under a DDIM schedule, decode
    with the VAE (diffusers' ``StableDiffusionImg2ImgPipeline``, from a latent, not an image).

    :param models: :class:`SD15Models`.
    :param steps: int >= 1; DDIM schedule length (50, the authors').
    :param strength: float in [0, 1]; share of the schedule denoised (0.6: 30 steps). At 0
        the latent is decoded as it is.
    :param guidance: float >= 1; guidance scale (9, the authors'); 1 = no unconditional pass.
    :param negative_prompt: The unconditional prompt ("" as the authors).
    """

    def __init__(self, models: SD15Models, *, steps: int = 50, strength: float = 0.6,
                 guidance: float = 9.0, negative_prompt: str = "") -> None:
        from diffusers import DDIMScheduler

        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"`steps` must be an int >= 1; got {steps!r}.")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"`strength` must be in [0, 1]; got {strength!r}.")
        if not guidance >= 1.0:
            raise ValueError(f"`guidance` must be >= 1; got {guidance!r}.")
        self.models = models
        self.steps, self.strength, self.guidance = steps, strength, guidance
        self.negative_prompt = negative_prompt
        self.scheduler = DDIMScheduler.from_config(models.scheduler_config)
        self._uncond: torch.Tensor | None = None
        param = next(models.unet.parameters())
        self.device, self.dtype = param.device, param.dtype

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor,
                      generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Images -> scaled latents, sampled from the VAE's posterior (as the authors' LDM code
        and diffusers' img2img do), row i's draw from ``generators[i]``.

        :input images: [batch, 3, H, W] float in [0, 1].
        :output latents: [batch, 4, H/8, W/8] float32, times the scaling factor.
        """
        x = images.to(device=self.device, dtype=self.dtype) * 2 - 1
        dist = self.models.vae.encode(x).latent_dist
        noise = _per_row_randn(dist.mean.shape[1:], generators, self.device)
        return (dist.mean.float() + dist.std.float() * noise) * self.models.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents [batch, 4, h, w] -> images [batch, 3, 8h, 8w] float32 in [0, 1]."""
        x = self.models.vae.decode((latents / self.models.scaling_factor).to(self.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> [batch, 77, dim] embeddings with the models' text encoder."""
        if self.models.text_encoder is None:
            raise ValueError("these models have no text encoder: pass prompt embeddings.")
        return self.models.text_encoder(list(prompts)).to(self.dtype)

    @torch.no_grad()
    def denoise(self, latents: torch.Tensor, embeddings: torch.Tensor,
                generators: Sequence[torch.Generator],
                uncond_embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """The img2img loop: noise ``latents`` to the first timestep of
        :func:`img2img_timesteps` (row i's noise from ``generators[i]``), then DDIM (eta 0, no
        further noise) with classifier-free guidance ``eps_u + g (eps_c - eps_u)``.

        :input latents: [batch, 4, h, w] float, scaled latents (the received ones).
        :input embeddings: [batch, 77, dim]; the prompts' embeddings.
        :input uncond_embeddings: [1 or batch, 77, dim]; None = the negative prompt's.
        :output latents: [batch, 4, h, w] float32; ``latents`` unchanged at strength 0.
        """
        latents = latents.to(device=self.device, dtype=torch.float32)
        if embeddings.shape[0] != latents.shape[0] or len(generators) != latents.shape[0]:
            raise ValueError(f"`embeddings` {tuple(embeddings.shape)}, `latents` "
                             f"{tuple(latents.shape)} and {len(generators)} generators must "
                             "have one row per image.")
        timesteps = img2img_timesteps(self.scheduler, self.steps, self.strength, self.device)
        if len(timesteps) == 0:
            return latents
        batch = latents.shape[0]
        noise = _per_row_randn(latents.shape[1:], generators, self.device)
        x = self.scheduler.add_noise(latents, noise, timesteps[:1].repeat(batch))
        cond = embeddings.to(self.dtype)
        guided = self.guidance != 1.0
        if guided:
            if uncond_embeddings is None:
                uncond_embeddings = self._negative_embedding()
            cond = torch.cat([uncond_embeddings.to(self.dtype).expand(batch, -1, -1), cond])
        for t in timesteps:
            inputs = torch.cat([x, x]) if guided else x
            eps = self.models.unet(inputs.to(self.dtype), t, encoder_hidden_states=cond
                                   ).sample.float()
            if guided:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + self.guidance * (eps_c - eps_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        return x

    def _negative_embedding(self) -> torch.Tensor:
        if self._uncond is None:  # one text encoding per receiver
            self._uncond = self.encode_prompts([self.negative_prompt])
        return self._uncond

    def __call__(self, latents: torch.Tensor, prompts: Sequence[str],
                 generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Received latents and prompts -> images [batch, 3, 8h, 8w] float32 in [0, 1]."""
        return self.decode(self.denoise(latents, self.encode_prompts(prompts), generators))
