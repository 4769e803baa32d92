"""Weights folders in Stability AI's published layouts, written from models' state dicts by code
independent of :mod:`semlink.models.weights` (for loader and link tests)."""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

__all__ = ["to_original_stage_b", "to_original_stage_a", "randomize", "save",
           "assert_state_equal", "write_diffusers"]


def to_original_stage_b(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers StableCascadeUNet keys -> Stability AI StageB keys (nn.MultiheadAttention)."""
    out = {}
    for key, t in sd.items():
        if ".to_q." in key:
            base, suffix = key.split(".to_q.")
            out[f"{base}.attn.in_proj_{suffix}"] = torch.cat(
                [sd[f"{base}.{n}.{suffix}"] for n in ("to_q", "to_k", "to_v")], dim=0)
        elif ".to_k." in key or ".to_v." in key:
            continue
        elif ".to_out.0." in key:
            out[key.replace(".to_out.0.", ".attn.out_proj.")] = t
        elif key.startswith("clip_txt_pooled_mapper"):
            out[key.replace("clip_txt_pooled_mapper", "clip_mapper")] = t
        else:
            out[key] = t
    return out


def to_original_stage_a(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.replace("vquantizer.embedding", "vquantizer.codebook"): t for k, t in sd.items()}


def randomize(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Fill every floating tensor with distinct random values; return a detached copy."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.fill_(seed)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save(sd: dict[str, torch.Tensor], path, dtype: torch.dtype | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
               for k, v in sd.items()}, str(path))


def assert_state_equal(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k].dtype == v.dtype, k
        assert torch.equal(got[k], v), k


def write_diffusers(folder, model, sd, shards: int = 1, variant: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(model.config)))
    dot = f".{variant}" if variant else ""
    if shards == 1:
        save(sd, folder / f"diffusion_pytorch_model{dot}.safetensors")
        return
    keys = list(sd)
    weight_map = {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}{dot}.safetensors"
        part = keys[i::shards]
        save({k: sd[k] for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / f"diffusion_pytorch_model.safetensors.index{dot}.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))
