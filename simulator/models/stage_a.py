"""Stable Cascade stage A: the f=4 VQGAN between pixels and the 4-channel latent stage B generates.

Stage A is diffusers' ``PaellaVQModel`` (imported here only: the one import site of diffusers'
deprecated Würstchen package). Images at this API are float ``[batch, 3, H, W]`` in [0, 1], the
range the VQGAN was trained on (Stable Cascade feeds it [0, 1] pixels and clamps its output to
[0, 1]); latents are ``[batch, 4, H/4, W/4]``.

Latent scaling: stage B works on ``latent = raw / scale_factor`` where ``raw`` is the VQGAN
encoder output, and the decoder gets ``latent * scale_factor``. The factor belongs to the weights:

- original ``stage_a.safetensors`` with Stability AI's code: ``0.43``
  (:data:`ORIGINAL_SCALE_FACTOR`, the value stage B was trained with in that code);
- diffusers ``vqgan/`` folder: its ``config.json`` value, ``0.3764``
  (:data:`DIFFUSERS_SCALE_FACTOR`, what ``StableCascadeDecoderPipeline`` multiplies by).

:func:`scale_factor_for_layout` maps a weights layout to its factor.
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from semlink.channels._checks import check_one_of, check_positive, check_type

__all__ = [
    "ORIGINAL_SCALE_FACTOR",
    "DIFFUSERS_SCALE_FACTOR",
    "STAGE_A_CONFIG_NAMES",
    "stage_a_config",
    "build_stage_a",
    "scale_factor_for_layout",
    "encode_latents",
    "decode_latents",
]

ORIGINAL_SCALE_FACTOR = 0.43
"""Latent scale of Stability AI's ``StageA`` (original ``stage_a.safetensors``)."""

DIFFUSERS_SCALE_FACTOR = 0.3764
"""``scale_factor`` in the diffusers ``vqgan/config.json`` of stabilityai/stable-cascade."""

_CONFIGS: dict[str, dict[str, Any]] = {
    # Hugging Face stabilityai/stable-cascade, vqgan/config.json (18.4M parameters).
    "stable-cascade": {
        "in_channels": 3,
        "out_channels": 3,
        "up_down_scale_factor": 2,
        "levels": 2,
        "bottleneck_blocks": 12,
        "embed_dim": 384,
        "latent_channels": 4,
        "num_vq_embeddings": 8192,
        "scale_factor": DIFFUSERS_SCALE_FACTOR,
    },
    # CPU-sized VQGAN with the same f=4 geometry and 4 latent channels.
    "small": {
        "in_channels": 3,
        "out_channels": 3,
        "up_down_scale_factor": 2,
        "levels": 2,
        "bottleneck_blocks": 2,
        "embed_dim": 64,
        "latent_channels": 4,
        "num_vq_embeddings": 256,
        "scale_factor": 1.0,
    },
    # Test-sized.
    "tiny": {
        "in_channels": 3,
        "out_channels": 3,
        "up_down_scale_factor": 2,
        "levels": 2,
        "bottleneck_blocks": 1,
        "embed_dim": 32,
        "latent_channels": 4,
        "num_vq_embeddings": 64,
        "scale_factor": 1.0,
    },
}

STAGE_A_CONFIG_NAMES: tuple[str, ...] = tuple(_CONFIGS)
"""Names accepted by :func:`stage_a_config`."""

_LAYOUT_SCALES = {"original": ORIGINAL_SCALE_FACTOR, "diffusers": DIFFUSERS_SCALE_FACTOR}


def stage_a_config(name: str) -> dict[str, Any]:
    """Keyword arguments of ``PaellaVQModel`` for a named stage A.

    :param name: One of :data:`STAGE_A_CONFIG_NAMES`.
    :output config: dict, JSON-serialisable; a fresh copy.
    :raises TypeError: If ``name`` is not a str.
    :raises ValueError: If ``name`` is unknown.

    >>> stage_a_config("stable-cascade")["embed_dim"]
    384
    """
    check_type(name, str, name="name")
    check_one_of(name, STAGE_A_CONFIG_NAMES, name="name")
    return copy.deepcopy(_CONFIGS[name])


def build_stage_a(config: dict[str, Any] | str, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32, meta: bool = False) -> torch.nn.Module:
    """Build a randomly initialised stage A VQGAN in eval mode.

    :param config: A name of :data:`STAGE_A_CONFIG_NAMES` or a dict of ``PaellaVQModel``
        keyword arguments.
    :param device: Where the parameters live; None = CPU. Ignored when ``meta`` is True.
    :param dtype: Parameter dtype; default float32.
    :param meta: Build on the meta device.
    :output vq: ``PaellaVQModel``.
    :raises TypeError: If ``config`` is neither a str nor a dict, or ``meta`` is not a bool.
    :raises ValueError: If ``config`` names an unknown configuration.
    """
    # The package __init__ hides the class without transformers; the module itself needs none.
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel

    check_type(meta, bool, name="meta")
    check_type(dtype, torch.dtype, name="dtype")
    if isinstance(config, str):
        kwargs = stage_a_config(config)
    else:
        check_type(config, dict, name="config")
        kwargs = copy.deepcopy(config)
    target = torch.device("meta") if meta else torch.device("cpu" if device is None else device)
    with target:
        vq = PaellaVQModel(**kwargs)
    return torch.nn.Module.to(vq, dtype=dtype).eval()


def scale_factor_for_layout(layout: str) -> float:
    """The latent scale factor that goes with a stage A weights layout.

    :param layout: ``"original"`` (``stage_a.safetensors``, 0.43) or ``"diffusers"``
        (``vqgan/`` folder, 0.3764).
    :output scale_factor: float > 0.
    :raises ValueError: If ``layout`` is unknown.

    >>> scale_factor_for_layout("original")
    0.43
    """
    check_type(layout, str, name="layout")
    check_one_of(layout, tuple(_LAYOUT_SCALES), name="layout")
    return _LAYOUT_SCALES[layout]


def encode_latents(vq: torch.nn.Module, images: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Encode images to scaled stage A latents (no quantisation): ``vq.encode(images) / scale_factor``.

    :param vq: A ``PaellaVQModel``.
    :param scale_factor: float > 0; see :func:`scale_factor_for_layout`.
    :input images: [batch, 3, H, W], float in [0, 1]; H and W multiples of 4.
    :output latents: [batch, 4, H/4, W/4], ``vq``'s dtype.
    :raises ValueError: If ``images`` is not [batch, 3, H, W] with H, W multiples of 4,
        or ``scale_factor <= 0``.
    """
    scale_factor = check_positive(scale_factor, name="scale_factor")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2] % 4 or images.shape[-1] % 4:
        raise ValueError("`images` must be [batch, 3, H, W] with H and W multiples of 4; "
                         f"got {tuple(images.shape)}.")
    return vq.encode(images).latents / scale_factor


def decode_latents(vq: torch.nn.Module, latents: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Decode scaled stage A latents to images: ``clamp(vq.decode(latents * scale_factor), 0, 1)``.

    The latent is used as is (``force_not_quantize=True``), as Stable Cascade does.

    :param vq: A ``PaellaVQModel``.
    :param scale_factor: float > 0; the factor the latents were scaled with.
    :input latents: [batch, 4, h, w], float.
    :output images: [batch, 3, 4h, 4w], ``vq``'s dtype, in [0, 1].
    :raises ValueError: If ``latents`` is not 4-D with ``vq``'s latent channels,
        or ``scale_factor <= 0``.
    """
    scale_factor = check_positive(scale_factor, name="scale_factor")
    channels = vq.config.latent_channels
    if latents.dim() != 4 or latents.shape[1] != channels:
        raise ValueError(f"`latents` must be [batch, {channels}, h, w]; got {tuple(latents.shape)}.")
    images = vq.decode(latents * scale_factor, force_not_quantize=True).sample
    return images.clamp(0.0, 1.0)
