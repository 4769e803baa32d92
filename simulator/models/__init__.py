"""Semantic receiver models: stage B (diffusion UNet), stage A (VQGAN), the sampler, presets.

Public names are re-exported lazily: ``import semlink.models`` imports neither torch's
model code nor diffusers; a name's module is imported on first access
(``from semlink.models import SemanticReceiver``).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "stage_b": ("STAGE_B_CONFIG_NAMES", "stage_b_config", "build_stage_b", "null_text_pooled",
                "predict_noise"),
    "stage_a": ("ORIGINAL_SCALE_FACTOR", "DIFFUSERS_SCALE_FACTOR", "STAGE_A_CONFIG_NAMES",
                "stage_a_config", "build_stage_a", "scale_factor_for_layout", "encode_latents",
                "decode_latents"),
    "sampler": ("COSINE_S", "PREDICTION_TYPES", "alpha_cumprod", "sampling_schedule", "add_noise",
                "training_target", "sample_latents"),
    "presets": ("PRESET_NAMES", "Preset", "get_preset"),
    "receiver": ("SemanticReceiver",),
}

_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
