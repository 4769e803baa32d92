"""Model bundles: encoder, stage B and stage A of one preset (or a DeepJSCC autoencoder, part
``deepjscc``) in one safetensors file.

semlink ships the trained ``small`` preset this way (``simulator/data/weights/small/model.safetensors``)
and training writes its checkpoints the same way. Keys are the modules' own state-dict keys
prefixed with ``encoder.``, ``stage_b.`` and ``stage_a.``; the file's metadata holds the preset
name and a JSON ``info`` dict (how the weights were made).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from semlink.errors import InputError
from semlink.models.weights import check_finite

__all__ = ["BUNDLE_FILE", "PARTS", "save_bundle", "load_bundle", "read_bundle_info",
           "bundle_prediction"]

BUNDLE_FILE = "model.safetensors"
PARTS = ("encoder", "stage_b", "stage_a", "deepjscc")


def save_bundle(path: str | Path, modules: Mapping[str, torch.nn.Module], *, preset: str,
                info: Mapping[str, Any] | None = None) -> Path:
    """Write the parts in ``modules`` (keys from :data:`PARTS`) to one safetensors file.

    Tensors are stored contiguous, on the CPU, in their own dtype.
    """
    unknown = set(modules) - set(PARTS)
    if unknown:
        raise ValueError(f"`modules` keys must be among {PARTS}; got {sorted(unknown)}.")
    tensors = {f"{part}.{key}": value.detach().to("cpu").contiguous()
               for part, module in modules.items() for key, value in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"preset": preset, "info": json.dumps(dict(info or {}))})
    tmp.replace(path)
    return path


def read_bundle_info(path: str | Path) -> dict[str, Any]:
    """``{"preset": ..., "info": {...}, "parts": [...]}`` of a bundle, without reading tensors."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            parts = sorted({k.split(".", 1)[0] for k in f.keys()})
    except FileNotFoundError:
        raise InputError(f"{path}: model bundle not found") from None
    except (OSError, SafetensorError, ValueError) as err:
        raise InputError(f"{path}: not a readable safetensors bundle ({err})") from None
    try:
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError:
        info = {}
    return {"preset": meta.get("preset"), "info": info, "parts": parts}


def load_bundle(path: str | Path, modules: Mapping[str, torch.nn.Module], *,
                preset: str | None = None) -> dict[str, Any]:
    """Load the parts in ``modules`` from a bundle, strictly (every key, every shape).

    :param preset: If given, the bundle's preset must equal it.
    :output info: The bundle's info (as :func:`read_bundle_info`).
    :raises InputError: Naming the file and the first mismatching keys.
    """
    path = Path(path)
    info = read_bundle_info(path)
    if preset is not None and info["preset"] != preset:
        raise InputError(f"{path}: holds weights of preset {info['preset']!r}, not {preset!r}")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for part, module in modules.items():
            target = module.state_dict()
            prefix = f"{part}."
            have = {k[len(prefix):] for k in keys if k.startswith(prefix)}
            missing, unexpected = sorted(set(target) - have), sorted(have - set(target))
            if missing or unexpected:
                raise InputError(f"{path}: {part} keys do not match the model: missing "
                                 f"{missing[:3]}, unexpected {unexpected[:3]}")
            state = {}
            for key, ref in target.items():
                value = f.get_tensor(prefix + key)
                if value.shape != ref.shape:
                    raise InputError(f"{path}: {prefix}{key} has shape {tuple(value.shape)}; "
                                     f"the model expects {tuple(ref.shape)}")
                state[key] = value.to(device=ref.device, dtype=ref.dtype)
            check_finite(state, f"{path}: {part}")
            module.load_state_dict(state, strict=True)
    return info


def bundle_prediction(info: Mapping[str, Any]) -> str:
    """What the bundle's stage B predicts, from :func:`read_bundle_info`'s output.

    Training records it in ``info["architecture"]["prediction"]``; bundles written before that
    field existed were trained on the noise, so the default is ``"epsilon"``.

    :raises InputError: If the recorded value is not one the sampler knows.
    """
    from semlink.models.sampler import PREDICTION_TYPES

    arch = (info.get("info") or {}).get("architecture") or {}
    prediction = arch.get("prediction", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise InputError(f"bundle info: architecture.prediction {prediction!r} is not one of "
                         f"{list(PREDICTION_TYPES)}")
    return prediction
