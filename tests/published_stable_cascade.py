"""Stable Cascade's published weight layouts, re-derived from the published sources, not from semlink.

Each function below re-implements, as key -> shape, the ``state_dict()`` of a published module
(or a published conversion script's renaming), from the source named in its docstring. Nothing
here imports semlink: tests compare semlink's loaders against these, so a naming difference
between semlink and the real files fails a test instead of every user's run.

Sources, as read through the public code index (commit = the version read):

- [SC-B]  github.com/Stability-AI/StableCascade @ cf967c6156355d18c58b57d60401e25f43e1b439
          ``modules/stage_b.py`` (``StageB``) and ``modules/common.py`` (``ResBlock``,
          ``TimestepBlock``, ``AttnBlock`` with ``nn.MultiheadAttention``, ``GlobalResponseNorm``).
- [SC-T]  github.com/Stability-AI/StableCascade @ 32cd6c0deac1b7d20781332af160fb076e9abff5
          ``train/train_b.py``: ``StageB(...)`` arguments of ``model_version`` ``'3B'`` (full,
          ``stage_b[_bf16].safetensors``) and ``'700M'`` (lite, ``stage_b_lite[_bf16].safetensors``).
- [SC-A]  github.com/Stability-AI/StableCascade @ 6c695205823039da56845b39d55f2c1d853535e4
          ``modules/stage_a.py`` (``StageA``, ``ResBlock``; ``VectorQuantize`` from torchtools).
- [TT]    github.com/pabloppp/pytorch-tools @ 9e99b8396321e934a1d21e69a79b364a86f98a81
          ``torchtools/nn/vq.py``: ``VectorQuantize.codebook = nn.Embedding(k, embedding_size)``.
- [SC-E]  github.com/Stability-AI/StableCascade @ d693a9c21219e7dc618bd2f78f1021423e893ccf
          ``modules/effnet.py``: ``EfficientNetEncoder`` = ``backbone`` (torchvision
          ``efficientnet_v2_s().features``) + ``mapper`` (1x1 conv 1280 -> 16, no bias;
          ``BatchNorm2d(16, affine=False)``).
- [TV]    github.com/pytorch/vision ``torchvision/models/efficientnet.py`` (torchvision >= 0.13:
          ``_efficientnet_conf("efficientnet_v2_s")``, ``FusedMBConv``, ``MBConv``,
          ``Conv2dNormActivation``) and ``torchvision/ops/misc.py`` (``SqueezeExcitation``:
          ``fc1``, ``fc2``, 1x1 convs with bias). The index's pytorch/vision copy (53938452)
          predates V2; the V2 text was read from a verbatim copy of that file in the index.
- [DS]    github.com/huggingface/diffusers @ 068abab0963d381789f1b80ca901f0b1e8dbc4d1
          ``scripts/convert_stable_cascade.py`` and ``scripts/convert_stable_cascade_lite.py``:
          the decoder (stage B) renaming loop and the ``StableCascadeUNet(...)`` arguments.
- [DW]    github.com/huggingface/diffusers @ 83d1e6aeb14a7d06ac8bce93bb5c716a07b94917
          ``scripts/convert_wuerstchen.py``: ``vquantizer.codebook.weight`` ->
          ``vquantizer.embedding.weight`` (the only stage A rename; the Paella VQGAN modules
          are the same as ``StageA``'s, see ``modeling_paella_vq_model.py`` @ 19921e93).
- [HF]    huggingface.co/stabilityai/stable-cascade: ``decoder_lite/config.json`` (revision
          edf1afbbed593aa7ca78025e774fe3558c9e40ee), ``decoder/config.json`` (refs/pr/68; same
          as huggingface.co/diffusers/stable-cascade-configs ``decoder/config.json`` @ 78c321e),
          ``vqgan/config.json`` (revision 1b70b878d78ddfbae8fabb00f9df2a04e4b936a9), read through
          the documentation index.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

Shape = tuple[int, ...]
Layout = dict[str, Shape]

__all__ = [
    "ORIGINAL_FILES", "DIFFUSERS_DIRS", "STAGE_B_ORIGINAL_ARGS", "DECODER_CONFIGS", "VQGAN_CONFIG",
    "effnet_encoder_layout", "stage_a_original_layout", "stage_a_to_diffusers",
    "stage_b_original_layout", "stage_b_to_diffusers", "diffusers_config_from_original",
    "make_tensors", "write_file", "write_sparse_file", "write_diffusers_folder",
]

# File names at the root of huggingface.co/stabilityai/stable-cascade (also StableCascade
# models/download_models.sh @ d58c1cb0 and configs/inference/stage_b_3b.yaml @ 5ecc2783).
ORIGINAL_FILES = {
    "encoder": "effnet_encoder.safetensors",
    "stage_a": "stage_a.safetensors",
    "lite": "stage_b_lite_bf16.safetensors",  # also stage_b_lite.safetensors (float32)
    "full": "stage_b_bf16.safetensors",  # also stage_b.safetensors (float32)
}
# diffusers subfolders of huggingface.co/stabilityai/stable-cascade [HF].
DIFFUSERS_DIRS = {"stage_a": "vqgan", "lite": "decoder_lite", "full": "decoder"}

# ---------------------------------------------------------------- stage B

# [SC-T] train_b.py setup_models: StageB(...) per model_version; other arguments are StageB's
# defaults [SC-B]: c_in=4, c_out=4, c_r=64, patch_size=2, c_cond=1280, c_clip=1280,
# c_clip_seq=4, c_effnet=16, c_pixels=3, kernel_size=3, level_config=['CT','CT','CTA','CTA'],
# t_conds=['sca'].
STAGE_B_ORIGINAL_ARGS = {
    "full": {"c_hidden": [320, 640, 1280, 1280], "nhead": [-1, -1, 20, 20],
             "blocks": [[2, 6, 28, 6], [6, 28, 6, 2]], "block_repeat": [[1, 1, 1, 1], [3, 3, 2, 2]]},
    "lite": {"c_hidden": [320, 576, 1152, 1152], "nhead": [-1, 9, 18, 18],
             "blocks": [[2, 4, 14, 4], [4, 14, 4, 2]], "block_repeat": [[1, 1, 1, 1], [2, 2, 2, 2]]},
}

_CT = ["SDCascadeResBlock", "SDCascadeTimestepBlock"]
_CTA = ["SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"]
# [HF] decoder_lite/config.json and decoder/config.json (the same values as the
# StableCascadeUNet(...) calls of [DS]), "_class_name": "StableCascadeUNet".
DECODER_CONFIGS = {
    "lite": {
        "block_out_channels": [320, 576, 1152, 1152],
        "block_types_per_layer": [_CT, _CT, _CTA, _CTA],
        "clip_image_in_channels": None, "clip_seq": 4, "clip_text_in_channels": None,
        "clip_text_pooled_in_channels": 1280, "conditioning_dim": 1280,
        "down_blocks_repeat_mappers": [1, 1, 1, 1], "down_num_layers_per_block": [2, 4, 14, 4],
        "dropout": [0, 0, 0.1, 0.1], "effnet_in_channels": 16, "in_channels": 4,
        "kernel_size": 3, "num_attention_heads": [0, 9, 18, 18], "out_channels": 4,
        "patch_size": 2, "pixel_mapper_in_channels": 3, "self_attn": True, "switch_level": None,
        "timestep_conditioning_type": ["sca"], "timestep_ratio_embedding_dim": 64,
        "up_blocks_repeat_mappers": [2, 2, 2, 2], "up_num_layers_per_block": [4, 14, 4, 2],
    },
    "full": {
        "block_out_channels": [320, 640, 1280, 1280],
        "block_types_per_layer": [_CT, _CT, _CTA, _CTA],
        "clip_image_in_channels": None, "clip_seq": 4, "clip_text_in_channels": None,
        "clip_text_pooled_in_channels": 1280, "conditioning_dim": 1280,
        "down_blocks_repeat_mappers": [1, 1, 1, 1], "down_num_layers_per_block": [2, 6, 28, 6],
        "dropout": [0, 0, 0.1, 0.1], "effnet_in_channels": 16, "in_channels": 4,
        "kernel_size": 3, "num_attention_heads": [0, 0, 20, 20], "out_channels": 4,
        "patch_size": 2, "pixel_mapper_in_channels": 3, "self_attn": True, "switch_level": None,
        "timestep_conditioning_type": ["sca"], "timestep_ratio_embedding_dim": 64,
        "up_blocks_repeat_mappers": [3, 3, 2, 2], "up_num_layers_per_block": [6, 28, 6, 2],
    },
}


def stage_b_original_layout(*, c_hidden, nhead, blocks, block_repeat,
                            level_config=("CT", "CT", "CTA", "CTA"), c_in=4, c_out=4, c_r=64,
                            patch_size=2, c_cond=1280, c_clip=1280, c_clip_seq=4, c_effnet=16,
                            c_pixels=3, kernel_size=3, t_conds=("sca",)) -> Layout:
    """key -> shape of ``StageB(...).state_dict()`` [SC-B], module by module in __init__ order."""
    out: Layout = {}
    c0 = c_hidden[0]
    for name, c_src in (("effnet_mapper", c_effnet), ("pixels_mapper", c_pixels)):
        # Sequential(Conv2d(c_src, 4*c0, 1), GELU, Conv2d(4*c0, c0, 1), LayerNorm2d(no affine))
        out |= {f"{name}.0.weight": (4 * c0, c_src, 1, 1), f"{name}.0.bias": (4 * c0,),
                f"{name}.2.weight": (c0, 4 * c0, 1, 1), f"{name}.2.bias": (c0,)}
    out |= {"clip_mapper.weight": (c_cond * c_clip_seq, c_clip),  # nn.Linear(c_clip, c_cond*seq)
            "clip_mapper.bias": (c_cond * c_clip_seq,)}
    # embedding: Sequential(PixelUnshuffle, Conv2d(c_in*p^2, c0, 1), LayerNorm2d)
    out |= {"embedding.1.weight": (c0, c_in * patch_size ** 2, 1, 1), "embedding.1.bias": (c0,)}

    def block(prefix: str, kind: str, c: int, c_skip: int = 0) -> None:
        if kind == "C":  # ResBlock: depthwise Conv2d, LayerNorm2d, channelwise Sequential
            out.update({f"{prefix}.depthwise.weight": (c, 1, kernel_size, kernel_size),
                        f"{prefix}.depthwise.bias": (c,),
                        f"{prefix}.channelwise.0.weight": (4 * c, c + c_skip),
                        f"{prefix}.channelwise.0.bias": (4 * c,),
                        f"{prefix}.channelwise.2.gamma": (1, 1, 1, 4 * c),  # GlobalResponseNorm
                        f"{prefix}.channelwise.2.beta": (1, 1, 1, 4 * c),
                        f"{prefix}.channelwise.4.weight": (c, 4 * c),
                        f"{prefix}.channelwise.4.bias": (c,)})
        elif kind == "T":  # TimestepBlock: mapper + mapper_<cond>, Linear(c_r, 2c)
            for m in ("mapper", *(f"mapper_{t}" for t in t_conds)):
                out.update({f"{prefix}.{m}.weight": (2 * c, c_r), f"{prefix}.{m}.bias": (2 * c,)})
        elif kind == "A":  # AttnBlock: attention.attn = nn.MultiheadAttention(c, nhead, bias=True)
            out.update({f"{prefix}.attention.attn.in_proj_weight": (3 * c, c),
                        f"{prefix}.attention.attn.in_proj_bias": (3 * c,),
                        f"{prefix}.attention.attn.out_proj.weight": (c, c),
                        f"{prefix}.attention.attn.out_proj.bias": (c,),
                        f"{prefix}.kv_mapper.1.weight": (c, c_cond),  # Sequential(SiLU, Linear)
                        f"{prefix}.kv_mapper.1.bias": (c,)})
        else:
            raise ValueError(kind)

    levels = len(c_hidden)
    for i in range(levels):
        if i > 0:  # Sequential(LayerNorm2d, Conv2d(c[i-1], c[i], 2, stride 2))
            out |= {f"down_downscalers.{i}.1.weight": (c_hidden[i], c_hidden[i - 1], 2, 2),
                    f"down_downscalers.{i}.1.bias": (c_hidden[i],)}
        n = 0
        for _ in range(blocks[0][i]):
            for kind in level_config[i]:
                block(f"down_blocks.{i}.{n}", kind, c_hidden[i])
                n += 1
        for r in range(block_repeat[0][i] - 1):
            out |= {f"down_repeat_mappers.{i}.{r}.weight": (c_hidden[i], c_hidden[i], 1, 1),
                    f"down_repeat_mappers.{i}.{r}.bias": (c_hidden[i],)}
    for u, i in enumerate(reversed(range(levels))):
        if i > 0:  # Sequential(LayerNorm2d, ConvTranspose2d(c[i], c[i-1], 2, stride 2))
            out |= {f"up_upscalers.{u}.1.weight": (c_hidden[i], c_hidden[i - 1], 2, 2),
                    f"up_upscalers.{u}.1.bias": (c_hidden[i - 1],)}
        n = 0
        for j in range(blocks[1][::-1][i]):
            for k, kind in enumerate(level_config[i]):
                c_skip = c_hidden[i] if i < levels - 1 and j == k == 0 else 0
                block(f"up_blocks.{u}.{n}", kind, c_hidden[i], c_skip)
                n += 1
        for r in range(block_repeat[1][::-1][i] - 1):
            out |= {f"up_repeat_mappers.{u}.{r}.weight": (c_hidden[i], c_hidden[i], 1, 1),
                    f"up_repeat_mappers.{u}.{r}.bias": (c_hidden[i],)}
    # clf: Sequential(LayerNorm2d, Conv2d(c0, c_out*p^2, 1), PixelShuffle)
    out |= {"clf.1.weight": (c_out * patch_size ** 2, c0, 1, 1), "clf.1.bias": (c_out * patch_size ** 2,)}
    return out


def stage_b_to_diffusers(state: dict) -> dict:
    """The decoder renaming loop of [DS], verbatim in logic, on key -> tensor or key -> shape.

    ``*attn.in_proj_weight/bias`` -> ``to_q``/``to_k``/``to_v`` (``chunk(3, 0)``);
    ``*attn.out_proj.*`` -> ``to_out.0.*``; ``clip_mapper.*`` -> ``clip_txt_pooled_mapper.*``.
    """
    def chunks(v):
        if isinstance(v, tuple):
            return [(v[0] // 3, *v[1:])] * 3
        return v.chunk(3, 0)

    out = {}
    for key, v in state.items():
        if key.endswith("in_proj_weight"):
            for name, part in zip(("to_q", "to_k", "to_v"), chunks(v)):
                out[key.replace("attn.in_proj_weight", f"{name}.weight")] = part
        elif key.endswith("in_proj_bias"):
            for name, part in zip(("to_q", "to_k", "to_v"), chunks(v)):
                out[key.replace("attn.in_proj_bias", f"{name}.bias")] = part
        elif key.endswith("out_proj.weight"):
            out[key.replace("attn.out_proj.weight", "to_out.0.weight")] = v
        elif key.endswith("out_proj.bias"):
            out[key.replace("attn.out_proj.bias", "to_out.0.bias")] = v
        elif key.endswith("clip_mapper.weight"):
            out[key.replace("clip_mapper.weight", "clip_txt_pooled_mapper.weight")] = v
        elif key.endswith("clip_mapper.bias"):
            out[key.replace("clip_mapper.bias", "clip_txt_pooled_mapper.bias")] = v
        else:
            out[key] = v
    return out


def diffusers_config_from_original(*, c_hidden, nhead, blocks, block_repeat,
                                   level_config=("CT", "CT", "CTA", "CTA"), c_cond=1280,
                                   c_clip=1280, c_effnet=16, c_pixels=3,
                                   dropout=(0, 0, 0.1, 0.1)) -> dict:
    """``StableCascadeUNet`` keyword arguments for ``StageB(...)`` arguments, by the correspondence
    of [HF] decoder/config.json (the earlier ``c_hidden``/``nhead``/``blocks`` revision, 4daea2d,
    and the renamed one) and [DS]: nhead -1 -> 0, 'C'/'T'/'A' -> SDCascade{Res,Timestep,Attn}Block."""
    names = {"C": "SDCascadeResBlock", "T": "SDCascadeTimestepBlock", "A": "SDCascadeAttnBlock"}
    return {
        "in_channels": 4, "out_channels": 4, "timestep_ratio_embedding_dim": 64, "patch_size": 2,
        "conditioning_dim": c_cond, "block_out_channels": list(c_hidden),
        "num_attention_heads": [max(h, 0) for h in nhead],
        "down_num_layers_per_block": list(blocks[0]), "up_num_layers_per_block": list(blocks[1]),
        "down_blocks_repeat_mappers": list(block_repeat[0]),
        "up_blocks_repeat_mappers": list(block_repeat[1]),
        "block_types_per_layer": [[names[t] for t in level] for level in level_config],
        "clip_text_in_channels": None, "clip_text_pooled_in_channels": c_clip,
        "clip_image_in_channels": None, "clip_seq": 4, "effnet_in_channels": c_effnet,
        "pixel_mapper_in_channels": c_pixels, "kernel_size": 3,
        "dropout": list(dropout), "self_attn": True,
        "timestep_conditioning_type": ["sca"], "switch_level": None,
    }


# ---------------------------------------------------------------- stage A

# [HF] vqgan/config.json, "_class_name": "PaellaVQModel".
VQGAN_CONFIG = {"bottleneck_blocks": 12, "embed_dim": 384, "in_channels": 3, "latent_channels": 4,
                "levels": 2, "num_vq_embeddings": 8192, "out_channels": 3, "scale_factor": 0.3764,
                "up_down_scale_factor": 2}


def stage_a_original_layout(*, levels=2, bottleneck_blocks=12, c_hidden=384, c_latent=4,
                            codebook_size=8192, bn_counter=True) -> Layout:
    """key -> shape of ``StageA(...).state_dict()`` [SC-A] (defaults = the published model,
    ``StageA()`` in train_b.py [SC-T]); ``vquantizer`` is torchtools' ``VectorQuantize`` [TT]."""
    out: Layout = {}
    c_levels = [c_hidden // (2 ** i) for i in reversed(range(levels))]

    def res_block(prefix: str, c: int) -> None:  # ResBlock(c, c * 4)
        out.update({f"{prefix}.depthwise.1.weight": (c, 1, 3, 3),  # Seq(ReplicationPad2d, Conv2d)
                    f"{prefix}.depthwise.1.bias": (c,),
                    f"{prefix}.channelwise.0.weight": (4 * c, c),  # Seq(Linear, GELU, Linear)
                    f"{prefix}.channelwise.0.bias": (4 * c,),
                    f"{prefix}.channelwise.2.weight": (c, 4 * c),
                    f"{prefix}.channelwise.2.bias": (c,),
                    f"{prefix}.gammas": (6,)})

    # in_block: Sequential(PixelUnshuffle(2), Conv2d(3*4, c_levels[0], 1))
    out |= {"in_block.1.weight": (c_levels[0], 12, 1, 1), "in_block.1.bias": (c_levels[0],)}
    n = 0
    for i in range(levels):
        if i > 0:  # Conv2d(c_levels[i-1], c_levels[i], 4, stride 2, padding 1)
            out |= {f"down_blocks.{n}.weight": (c_levels[i], c_levels[i - 1], 4, 4),
                    f"down_blocks.{n}.bias": (c_levels[i],)}
            n += 1
        res_block(f"down_blocks.{n}", c_levels[i])
        n += 1
    # Sequential(Conv2d(c_levels[-1], c_latent, 1, bias=False), BatchNorm2d(c_latent))
    out[f"down_blocks.{n}.0.weight"] = (c_latent, c_levels[-1], 1, 1)
    for name in ("weight", "bias", "running_mean", "running_var"):
        out[f"down_blocks.{n}.1.{name}"] = (c_latent,)
    if bn_counter:
        out[f"down_blocks.{n}.1.num_batches_tracked"] = ()
    out["vquantizer.codebook.weight"] = (codebook_size, c_latent)  # nn.Embedding(k, c_latent)
    # up_blocks[0]: Sequential(Conv2d(c_latent, c_levels[-1], 1))
    out |= {"up_blocks.0.0.weight": (c_levels[-1], c_latent, 1, 1), "up_blocks.0.0.bias": (c_levels[-1],)}
    n = 1
    for i in range(levels):
        for _ in range(bottleneck_blocks if i == 0 else 1):
            res_block(f"up_blocks.{n}", c_levels[levels - 1 - i])
            n += 1
        if i < levels - 1:  # ConvTranspose2d(c_levels[L-1-i], c_levels[L-2-i], 4, stride 2)
            out |= {f"up_blocks.{n}.weight": (c_levels[levels - 1 - i], c_levels[levels - 2 - i], 4, 4),
                    f"up_blocks.{n}.bias": (c_levels[levels - 2 - i],)}
            n += 1
    # out_block: Sequential(Conv2d(c_levels[0], 3*4, 1), PixelShuffle(2))
    out |= {"out_block.0.weight": (12, c_levels[0], 1, 1), "out_block.0.bias": (12,)}
    return out


def stage_a_to_diffusers(state: dict) -> dict:
    """[DW]: ``vquantizer.codebook.weight`` -> ``vquantizer.embedding.weight``; all else equal."""
    return {("vquantizer.embedding.weight" if k == "vquantizer.codebook.weight" else k): v
            for k, v in state.items()}


# ---------------------------------------------------------------- encoder

# [TV] _efficientnet_conf("efficientnet_v2_s"): (block, expand_ratio, kernel, stride,
# input_channels, out_channels, num_layers); last_channel = 1280.
_V2_S = (("fused", 1, 3, 1, 24, 24, 2), ("fused", 4, 3, 2, 24, 48, 4),
         ("fused", 4, 3, 2, 48, 64, 4), ("mb", 4, 3, 2, 64, 128, 6),
         ("mb", 6, 3, 1, 128, 160, 9), ("mb", 6, 3, 2, 160, 256, 15))
_V2_S_LAST = 1280


def effnet_encoder_layout(*, c_latent: int = 16, bn_counter: bool = True) -> Layout:
    """key -> shape of ``EfficientNetEncoder().state_dict()`` [SC-E]: torchvision's
    ``efficientnet_v2_s().features`` [TV] under ``backbone.``, then ``mapper.``.

    ``bn_counter``: include BatchNorm ``num_batches_tracked`` (torch writes it; a file may
    lack it, torch's BatchNorm loading fills it in).
    """
    out: Layout = {}

    def bn(prefix: str, c: int, affine: bool = True) -> None:
        if affine:
            out.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)})
        out.update({f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,)})
        if bn_counter:
            out[f"{prefix}.num_batches_tracked"] = ()

    def conv_norm_act(prefix: str, c_in: int, c_out: int, k: int, groups: int = 1) -> None:
        # Conv2dNormActivation: Sequential(Conv2d(bias=False as a norm follows), BatchNorm2d, act)
        out[f"{prefix}.0.weight"] = (c_out, c_in // groups, k, k)
        bn(f"{prefix}.1", c_out)

    conv_norm_act("backbone.0", 3, _V2_S[0][4], 3)  # stem, stride 2
    for s, (kind, expand, k, _, c_in_stage, c_out, n) in enumerate(_V2_S, start=1):
        for b in range(n):
            c_in = c_in_stage if b == 0 else c_out
            exp = c_in * expand  # _make_divisible(c_in * expand, 8): all multiples of 8 here
            assert exp % 8 == 0
            p = f"backbone.{s}.{b}.block"
            if kind == "fused":  # FusedMBConv
                if exp != c_in:
                    conv_norm_act(f"{p}.0", c_in, exp, k)
                    conv_norm_act(f"{p}.1", exp, c_out, 1)
                else:
                    conv_norm_act(f"{p}.0", c_in, c_out, k)
            else:  # MBConv: [expand 1x1], depthwise, SqueezeExcitation(exp, max(1, c_in // 4)), project
                i = 0
                if exp != c_in:
                    conv_norm_act(f"{p}.0", c_in, exp, 1)
                    i = 1
                conv_norm_act(f"{p}.{i}", exp, exp, k, groups=exp)
                sq = max(1, c_in // 4)
                out.update({f"{p}.{i + 1}.fc1.weight": (sq, exp, 1, 1), f"{p}.{i + 1}.fc1.bias": (sq,),
                            f"{p}.{i + 1}.fc2.weight": (exp, sq, 1, 1), f"{p}.{i + 1}.fc2.bias": (exp,)})
                conv_norm_act(f"{p}.{i + 2}", exp, c_out, 1)
    conv_norm_act(f"backbone.{len(_V2_S) + 1}", _V2_S[-1][5], _V2_S_LAST, 1)
    out["mapper.0.weight"] = (c_latent, _V2_S_LAST, 1, 1)  # Conv2d(1280, c_latent, 1, bias=False)
    bn("mapper.1", c_latent, affine=False)  # BatchNorm2d(c_latent, affine=False)
    return out


# ---------------------------------------------------------------- files


def make_tensors(layout: Layout, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Values distinct per tensor and per row (dim 0) in float32 (``n + row / 1024``), so that a
    tensor landing on the wrong parameter, or q/k/v chunks in the wrong order, are detected
    (half precision rounds them: no longer all distinct). ``num_batches_tracked`` (shape ()) is
    an int64 counter."""
    out = {}
    for n, (key, shape) in enumerate(sorted(layout.items())):
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(n, dtype=torch.int64)
            continue
        rows = torch.arange(shape[0], dtype=torch.float32).reshape(-1, *([1] * (len(shape) - 1)))
        out[key] = (n + rows / 1024).expand(shape).to(dtype).contiguous()  # exact in float32
    return out


def write_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def write_sparse_file(path: Path, layout: Layout, dtype_code: str = "BF16") -> Path:
    """A safetensors file with ``layout``'s header and no data written (a sparse file of zeros):
    full-size published headers without gigabytes on disk."""
    item = {"BF16": 2, "F16": 2, "F32": 4}[dtype_code]
    header, offset = {}, 0
    for key, shape in layout.items():
        code, size = ("I64", 8) if key.endswith("num_batches_tracked") else (dtype_code, item)
        n = size
        for s in shape:
            n *= s
        header[key] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def write_diffusers_folder(folder: Path, config: dict, class_name: str, weights_file: str) -> Path:
    """``config.json`` as diffusers writes it ("_class_name" + arguments); returns the
    weights path ``folder / weights_file`` for the caller to write."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": class_name,
                                                    "_diffusers_version": "0.27.0.dev0", **config}))
    return folder / weights_file
