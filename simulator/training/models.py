"""The models a training run works on: a preset's encoder, stage B and stage A, with initial weights."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from semlink.errors import InputError
from semlink.models.bundle import BUNDLE_FILE, bundle_prediction, load_bundle
from semlink.models.deepjscc import DEEPJSCC_PRESET, DeepJSCC
from semlink.models.encoder import SemanticEncoder
from semlink.models.presets import get_preset
from semlink.models.stage_a import build_stage_a
from semlink.models.stage_b import build_stage_b
from semlink.training.config import ModelConfig

__all__ = ["DeepJSCCTrainingModels", "TrainingModels", "build_training_models"]


@dataclasses.dataclass
class TrainingModels:
    """The three parts (float32 parameters), the stage A latent scale they work with and what
    stage B predicts (the preset's ``prediction``)."""

    encoder: SemanticEncoder
    stage_b: torch.nn.Module
    stage_a: torch.nn.Module
    scale_factor: float
    init_source: str
    prediction: str = "epsilon"

    def parts(self) -> dict[str, torch.nn.Module]:
        """``{"encoder": ..., "stage_b": ..., "stage_a": ...}`` (the bundle's part names)."""
        return {"encoder": self.encoder, "stage_b": self.stage_b, "stage_a": self.stage_a}

    @property
    def device(self) -> torch.device:
        """Where the parameters are."""
        return next(self.stage_b.parameters()).device

    def architecture(self) -> dict[str, Any]:
        """JSON description of the architectures (for the bundle's info)."""
        return {"encoder": self.encoder.config, "stage_b": dict(self.stage_b.config),
                "stage_a": dict(self.stage_a.config), "latent_scale_factor": self.scale_factor,
                "prediction": self.prediction}


@dataclasses.dataclass
class DeepJSCCTrainingModels:
    """A DeepJSCC autoencoder in training (float32 parameters), the one part ``deepjscc``."""

    deepjscc: DeepJSCC
    init_source: str

    def parts(self) -> dict[str, torch.nn.Module]:
        """``{"deepjscc": ...}`` (the bundle's part name)."""
        return {"deepjscc": self.deepjscc}

    @property
    def device(self) -> torch.device:
        """Where the parameters are."""
        return next(self.deepjscc.parameters()).device

    def architecture(self) -> dict[str, Any]:
        """JSON description of the architecture (for the bundle's info)."""
        return {"deepjscc": self.deepjscc.config}


def build_training_models(config: ModelConfig, *, device: str,
                          base_dir: str | Path | None = None
                          ) -> TrainingModels | DeepJSCCTrainingModels:
    """Build the preset's models (with ``config``'s overrides) and load ``config.init``.

    The encoder is built trainable (``frozen=False``, no per-call pixel check); the loop
    freezes what a phase does not train.

    :param device: Torch device string of the parameters.
    :param base_dir: Folder a relative ``config.init`` starts from.
    :raises InputError: If the initial weights are missing or do not fit.
    """
    if config.deepjscc is not None:
        return _build_deepjscc(config, device=device, base_dir=base_dir)
    preset = get_preset(config.preset)
    enc_kwargs = preset.encoder_kwargs()
    if config.encoder_width_mult is not None:
        enc_kwargs["width_mult"] = config.encoder_width_mult
    if config.encoder_depth_mult is not None:
        enc_kwargs["depth_mult"] = config.encoder_depth_mult
    encoder = SemanticEncoder(**enc_kwargs, frozen=False, check_values=False).to(device)
    stage_b = build_stage_b(config.stage_b or preset.stage_b, device=device)
    stage_a = build_stage_a(config.stage_a or preset.stage_a, device=device)
    models = TrainingModels(encoder, stage_b, stage_a, preset.latent_scale_factor, "random",
                            preset.prediction)
    if config.init is None:
        return models
    path = _init_path(config.init, base_dir)
    bundle = path / BUNDLE_FILE if path.is_dir() else path
    if bundle.is_file():
        models.prediction = bundle_prediction(load_bundle(bundle, models.parts(),
                                                          preset=config.preset))
        models.init_source = str(bundle)
        return models
    if not path.is_dir():
        raise InputError(f"model.init: {path} is neither a bundle file nor a weights folder")
    if preset.shipped_weights is not None:
        raise InputError(f"model.init: {path} holds no {BUNDLE_FILE} (preset {preset.name!r} "
                         "loads semlink bundles only)")
    from semlink.models import weights as real_weights

    models.scale_factor = real_weights.load_stable_cascade(encoder, stage_b, stage_a, path,
                                                          preset=preset.name)
    models.init_source = str(path)
    return models


def _init_path(init: str, base_dir: str | Path | None) -> Path:
    path = Path(init).expanduser()
    return Path(base_dir) / path if not path.is_absolute() and base_dir is not None else path


def _build_deepjscc(config: ModelConfig, *, device: str, base_dir: str | Path | None
                    ) -> DeepJSCCTrainingModels:
    """The DeepJSCC autoencoder of ``config.deepjscc``, random or from a bundle (``init``)."""
    arch = config.deepjscc
    model = DeepJSCC(channels=arch.channels, features=arch.features, stages=arch.stages,
                     extra_layers=arch.extra_layers, shortcut=arch.shortcut).to(device)
    models = DeepJSCCTrainingModels(model, "random")
    if config.init is None:
        return models
    path = _init_path(config.init, base_dir)
    bundle = path / BUNDLE_FILE if path.is_dir() else path
    if not bundle.is_file():
        raise InputError(f"model.init: {path} is neither a bundle file nor a folder holding "
                         f"{BUNDLE_FILE}")
    load_bundle(bundle, models.parts(), preset=DEEPJSCC_PRESET)
    models.init_source = str(bundle)
    return models
