"""Stable Cascade stage B: the diffusion UNet that turns the semantic embedding into a stage A latent.

Stage B is diffusers' ``StableCascadeUNet`` predicting the noise ``eps`` of a 4-channel stage A
latent. semlink conditions it on the (noisy) semantic embedding only; the pooled-text input
the class requires is fed zeros (the paper drops text), see :func:`predict_noise`.

Configurations (keyword arguments of ``StableCascadeUNet``):

- ``"stable-cascade-lite"``: the published ``decoder_lite`` (stage B lite, 699,471,248 parameters).
- ``"stable-cascade"``: the published ``decoder`` (stage B, 1,562,941,136 parameters).
- ``"small"``: same class and layout, narrow widths, for CPU runs at 256 px (2,463,568 parameters).
- ``"tiny"``: two narrow levels, for tests.

diffusers is imported inside the functions: importing this module stays cheap.
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from semlink.channels._checks import check_one_of, check_type

__all__ = [
    "STAGE_B_CONFIG_NAMES",
    "stage_b_config",
    "build_stage_b",
    "null_text_pooled",
    "predict_noise",
]

_CT = ["SDCascadeResBlock", "SDCascadeTimestepBlock"]
_CTA = ["SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"]

# Fields shared by every stage B configuration: 4-channel latents, effnet (16 channels) and
# pixel conditioning, pooled CLIP text input (fed zeros), "sca" timestep conditioning.
_COMMON: dict[str, Any] = {
    "in_channels": 4,
    "out_channels": 4,
    "timestep_ratio_embedding_dim": 64,
    "patch_size": 2,
    "block_types_per_layer": [_CT, _CT, _CTA, _CTA],
    "clip_text_in_channels": None,
    "clip_text_pooled_in_channels": 1280,
    "clip_image_in_channels": None,
    "clip_seq": 4,
    "effnet_in_channels": 16,
    "pixel_mapper_in_channels": 3,
    "kernel_size": 3,
    "dropout": [0.0, 0.0, 0.1, 0.1],
    "self_attn": True,
    "timestep_conditioning_type": ["sca"],
    "switch_level": None,
}

_CONFIGS: dict[str, dict[str, Any]] = {
    # Hugging Face stabilityai/stable-cascade, decoder_lite/config.json.
    "stable-cascade-lite": {
        **_COMMON,
        "conditioning_dim": 1280,
        "block_out_channels": [320, 576, 1152, 1152],
        "num_attention_heads": [0, 9, 18, 18],
        "down_num_layers_per_block": [2, 4, 14, 4],
        "up_num_layers_per_block": [4, 14, 4, 2],
        "down_blocks_repeat_mappers": [1, 1, 1, 1],
        "up_blocks_repeat_mappers": [2, 2, 2, 2],
    },
    # Hugging Face stabilityai/stable-cascade, decoder/config.json.
    "stable-cascade": {
        **_COMMON,
        "conditioning_dim": 1280,
        "block_out_channels": [320, 640, 1280, 1280],
        "num_attention_heads": [0, 0, 20, 20],
        "down_num_layers_per_block": [2, 6, 28, 6],
        "up_num_layers_per_block": [6, 28, 6, 2],
        "down_blocks_repeat_mappers": [1, 1, 1, 1],
        "up_blocks_repeat_mappers": [3, 3, 2, 2],
    },
    # CPU-sized: attention (heads of 32 channels) only in the two deepest levels.
    "small": {
        **_COMMON,
        "conditioning_dim": 128,
        "clip_text_pooled_in_channels": 32,
        "block_out_channels": [32, 64, 128, 128],
        "num_attention_heads": [0, 0, 4, 4],
        "down_num_layers_per_block": [1, 1, 2, 2],
        "up_num_layers_per_block": [2, 2, 1, 1],
        "down_blocks_repeat_mappers": [1, 1, 1, 1],
        "up_blocks_repeat_mappers": [1, 1, 1, 1],
    },
    # Test-sized: two levels, one layer each, attention in the deeper one.
    "tiny": {
        **_COMMON,
        "conditioning_dim": 64,
        "clip_text_pooled_in_channels": 32,
        "block_out_channels": [32, 64],
        "block_types_per_layer": [_CT, _CTA],
        "num_attention_heads": [0, 2],
        "down_num_layers_per_block": [1, 1],
        "up_num_layers_per_block": [1, 1],
        "down_blocks_repeat_mappers": [1, 1],
        "up_blocks_repeat_mappers": [1, 1],
        "dropout": [0.0, 0.0],
    },
}

STAGE_B_CONFIG_NAMES: tuple[str, ...] = tuple(_CONFIGS)
"""Names accepted by :func:`stage_b_config`."""


def stage_b_config(name: str) -> dict[str, Any]:
    """Keyword arguments of ``StableCascadeUNet`` for a named stage B.

    :param name: One of :data:`STAGE_B_CONFIG_NAMES`.
    :output config: dict, JSON-serialisable; a fresh copy (safe to modify).
    :raises TypeError: If ``name`` is not a str.
    :raises ValueError: If ``name`` is unknown.

    >>> stage_b_config("stable-cascade-lite")["block_out_channels"]
    [320, 576, 1152, 1152]
    """
    check_type(name, str, name="name")
    check_one_of(name, STAGE_B_CONFIG_NAMES, name="name")
    return copy.deepcopy(_CONFIGS[name])


def build_stage_b(config: dict[str, Any] | str, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32, meta: bool = False) -> torch.nn.Module:
    """Build a randomly initialised stage B UNet in eval mode.

    :param config: A name of :data:`STAGE_B_CONFIG_NAMES` or a dict of ``StableCascadeUNet``
        keyword arguments.
    :param device: Where the parameters live; None = CPU. Ignored when ``meta`` is True.
    :param dtype: Parameter dtype; default float32.
    :param meta: Build on the meta device (no memory; for counting parameters or for
        ``load_state_dict(..., assign=True)``).
    :output unet: ``diffusers.models.StableCascadeUNet``.
    :raises TypeError: If ``config`` is neither a str nor a dict, or ``meta`` is not a bool.
    :raises ValueError: If ``config`` names an unknown configuration.
    """
    from diffusers.models import StableCascadeUNet

    check_type(meta, bool, name="meta")
    check_type(dtype, torch.dtype, name="dtype")
    kwargs = _resolve(config)
    target = torch.device("meta") if meta else torch.device("cpu" if device is None else device)
    with target:
        unet = StableCascadeUNet(**kwargs)
    # nn.Module.to: ModelMixin.to warns about fp32-kept modules this class does not have.
    return torch.nn.Module.to(unet, dtype=dtype).eval()


def null_text_pooled(unet: torch.nn.Module, batch: int, *, device: torch.device,
                     dtype: torch.dtype) -> torch.Tensor:
    """The all-zero pooled-text input that stands in for the dropped text conditioning.

    :param unet: A ``StableCascadeUNet``; its ``clip_text_pooled_in_channels`` sets ``C``.
    :param batch: int >= 1.
    :output clip_text_pooled: [batch, 1, C], ``dtype``, zeros.
    """
    channels = unet.config.clip_text_pooled_in_channels
    return torch.zeros(batch, 1, channels, device=device, dtype=dtype)


def predict_noise(unet: torch.nn.Module, latents: torch.Tensor, timestep_ratio: torch.Tensor,
                  effnet: torch.Tensor, clip_text_pooled: torch.Tensor | None = None) -> torch.Tensor:
    """One stage B evaluation: the predicted noise ``eps`` of a noisy latent.

    :param unet: A ``StableCascadeUNet``.
    :input latents: [batch, 4, h, w], float; noisy stage A latent (scaled, see
        :mod:`semlink.models.stage_a`).
    :input timestep_ratio: [batch], float in [0, 1]; 1 = pure noise.
    :input effnet: [batch, 16, h_z, w_z], float; semantic embedding (any size, the UNet
        resizes it bilinearly to ``[h/patch_size, w/patch_size]``); zeros = unconditional.
    :input clip_text_pooled: [batch, 1, C] or None (= zeros from :func:`null_text_pooled`).
    :output eps: [batch, 4, h, w], the UNet's output dtype.
    :raises ValueError: If batch sizes differ or ``latents`` is not 4-D.
    """
    if latents.dim() != 4 or effnet.dim() != 4:
        raise ValueError(f"`latents` and `effnet` must be 4-D; got {tuple(latents.shape)} "
                         f"and {tuple(effnet.shape)}.")
    batch = latents.shape[0]
    if effnet.shape[0] != batch or timestep_ratio.shape != (batch,):
        raise ValueError(f"`latents` {tuple(latents.shape)}, `effnet` {tuple(effnet.shape)} and "
                         f"`timestep_ratio` {tuple(timestep_ratio.shape)} must share the batch.")
    if clip_text_pooled is None:
        clip_text_pooled = null_text_pooled(unet, batch, device=latents.device, dtype=latents.dtype)
    return unet(latents, timestep_ratio, clip_text_pooled, effnet=effnet, return_dict=False)[0]


def _resolve(config: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(config, str):
        return stage_b_config(config)
    check_type(config, dict, name="config")
    return copy.deepcopy(config)
