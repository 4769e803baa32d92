"""Training configuration: what a ``semlink train`` YAML file may say, validated into frozen models.

A training run has one or more *phases*, each training some parts of a preset's models
(``stage_a``, ``encoder``, ``stage_b``) for a number of optimiser steps; later phases start from
the (EMA) weights the earlier ones left. Problems are reported as scenarios report theirs, one
line ``FILE:LINE: yaml.path: message`` each (:func:`semlink.scenario.validate_yaml`). A recipe
may build on another (``base:``) and change single values of it (``set:``), see docs/training.md.

Example (stage B fine-tuning with channel-noisy conditioning, the paper's recipe)::

    name: paper
    seed: 0
    data: {source: /data/photos, size: 1024}
    model: {preset: stable-cascade-lite, init: /weights/stable-cascade}
    phases:
      - {train: [stage_b], steps: 15000, batch_size: 4, lr: 1.0e-4,
         conditioning: {channel: {type: awgn}, snr_min_db: 1, snr_max_db: 20}}
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from semlink.devices import is_device_name
from semlink.errors import InputError
from semlink.models.presets import PRESET_NAMES
from semlink.models.stage_a import STAGE_A_CONFIG_NAMES
from semlink.models.stage_b import STAGE_B_CONFIG_NAMES
from semlink.scenario import (AWGNConfig, ChannelConfig, FiniteSnrDb, ImageSide, Override, Seed,
                              _Frozen, read_yaml_file, resolve_yaml, validate_yaml)
from semlink.scenario.limits import (MAX_BATCH_SIZE, MAX_GRAD_ACCUM, MAX_GRAD_CLIP, MAX_GUIDANCE,
                                     MAX_IMAGE_COUNT, MAX_LEARNING_RATE, MAX_PHASES,
                                     MAX_SAMPLING_STEPS, MAX_SNR_POINTS, MAX_TRAIN_STEPS,
                                     MAX_WEIGHT_DECAY)

__all__ = [
    "TRAINABLE_PARTS",
    "DataConfig",
    "DeepJSCCArchitecture",
    "ModelConfig",
    "ConditioningConfig",
    "PhaseConfig",
    "ValidationConfig",
    "TrainConfig",
    "load_train_config",
    "parse_train_config",
    "train_config_hash",
]

TRAINABLE_PARTS = ("stage_a", "encoder", "stage_b", "deepjscc")


class DataConfig(_Frozen):
    """Training images: a folder or glob (relative to the config file), random crops.

    Each sample is a random square crop whose side is a fraction in ``[min_crop, 1]`` of the
    image's shorter side (or, with ``whole``, the whole image), resized (bilinear, antialiased)
    to ``size`` pixels and flipped left-right with probability 1/2 when ``flip`` is true.
    """

    source: str = Field(description="your training images: a folder or glob pattern",
                        json_schema_extra={"metavar": "PATH"})
    size: ImageSide = Field(256, description="Training crop side, pixels.")
    min_crop: float = Field(0.6, gt=0, le=1)
    flip: bool = True
    count: int | None = Field(None, ge=1, le=MAX_IMAGE_COUNT,
                              description="Use at most this many images (by name).")
    # None (= false) rather than a default value: see train_config_hash.
    whole: bool | None = Field(None, description="Resize each whole image to size x size "
                               "(aspect ratio changed; min_crop unused), as the paper resizes "
                               "Cityscapes; None = false, random square crops.")


class DeepJSCCArchitecture(_Frozen):
    """A DeepJSCC autoencoder (:class:`semlink.models.deepjscc.DeepJSCC`): ``channels`` of its
    last encoder layer at ``1 / 2^stages`` of the side set the channel uses."""

    channels: int = Field(9, ge=1, le=1024)
    features: int | list[int] = Field(64, description="Hidden channels, one int or one per "
                                      "stride-2 stage from the image inwards.")
    stages: int = Field(5, ge=1, le=8)
    extra_layers: int = Field(2, ge=0, le=16)
    shortcut: bool = Field(False, description="Add the linear thumbnail path beside both "
                           "convolution stacks (semlink's addition; docs/deepjscc.md).")

    @model_validator(mode="after")
    def _widths(self) -> "DeepJSCCArchitecture":
        widths = [self.features] if isinstance(self.features, int) else self.features
        if isinstance(self.features, list) and len(widths) != self.stages:
            raise ValueError(f"features: give one int or {self.stages} (one per stage); got "
                             f"{len(widths)}")
        if not all(1 <= w <= 4096 for w in widths):
            raise ValueError(f"features: each must be in [1, 4096]; got {self.features}")
        if self.shortcut and self.stages < 2:
            raise ValueError(f"shortcut: needs stages >= 2; got stages {self.stages}")
        return self


class ModelConfig(_Frozen):
    """The models: a preset, optional architecture overrides (experiments, tests), initial weights.

    ``init`` is a semlink bundle (a ``model.safetensors`` file or a folder holding one) or, for the
    Stable Cascade presets, a folder of Stability AI's weight files; relative to the config
    file. None = random initialisation (only sensible for the ``small`` preset).

    ``deepjscc`` trains a DeepJSCC link's autoencoder instead of a semantic preset (``preset``,
    ``stage_b``, ``stage_a`` and the encoder multipliers are then unused); its phases train the
    part ``deepjscc``.
    """

    preset: str = "small"
    stage_b: str | None = None
    stage_a: str | None = None
    encoder_width_mult: float | None = Field(None, gt=0, le=4)
    encoder_depth_mult: float | None = Field(None, gt=0, le=4)
    init: str | None = None
    # None (= a semantic preset) rather than a default: see train_config_hash.
    deepjscc: DeepJSCCArchitecture | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in PRESET_NAMES:
            raise ValueError(f"must be one of {', '.join(PRESET_NAMES)}; got {preset!r}")
        return preset

    @field_validator("stage_b")
    @classmethod
    def _known_stage_b(cls, name: str | None) -> str | None:
        if name is not None and name not in STAGE_B_CONFIG_NAMES:
            raise ValueError(f"must be one of {', '.join(STAGE_B_CONFIG_NAMES)}; got {name!r}")
        return name

    @field_validator("stage_a")
    @classmethod
    def _known_stage_a(cls, name: str | None) -> str | None:
        if name is not None and name not in STAGE_A_CONFIG_NAMES:
            raise ValueError(f"must be one of {', '.join(STAGE_A_CONFIG_NAMES)}; got {name!r}")
        return name


class ConditioningConfig(_Frozen):
    """How stage B sees the embedding while training.

    ``noise: channel`` (the paper): Z is mapped to unit-power complex symbols (analog, two values
    per symbol), sent through ``channel`` at an SNR (Es/N0, dB) drawn uniformly per sample from
    ``[snr_min_db, snr_max_db]`` and mapped back. ``noise: none``: stage B sees Z itself (the
    ablation's noise-free model). Either way the embedding is replaced by zeros with probability
    ``drop_prob`` (unconditional rows for classifier-free guidance). ``estimate`` applies the
    receiver's symbol estimate to the channel's output, as the semantic link with the same
    ``transmission.estimate`` does at inference.
    """

    noise: Literal["channel", "none"] = "channel"
    channel: ChannelConfig = Field(default_factory=lambda: AWGNConfig(type="awgn"))
    snr_min_db: FiniteSnrDb = 1.0
    snr_max_db: FiniteSnrDb = 20.0
    drop_prob: float = Field(0.1, ge=0, lt=1)
    # None (= none): an unset estimate leaves the hash of existing checkpoints as it was.
    estimate: Literal["none", "lmmse", "noise-matched"] | None = Field(
        None, description="The receiver's symbol estimate applied to the channel's output, as "
        "a semantic link's transmission.estimate (semlink.modulation.analog.estimate_symbols).")

    @model_validator(mode="after")
    def _ordered(self) -> "ConditioningConfig":
        if self.snr_max_db < self.snr_min_db:
            raise ValueError(f"snr_max_db ({self.snr_max_db}) must be >= snr_min_db "
                             f"({self.snr_min_db})")
        return self


class PhaseConfig(_Frozen):
    """One training phase: which parts learn, for how many optimiser steps, how.

    Parts not listed stay frozen (eval mode). ``stage_a`` learns image reconstruction
    (``recon_loss`` of ``decode(encode(x))``, quantisation bypassed); ``encoder`` and ``stage_b``
    learn the diffusion loss (MSE of stage B's prediction, noise or v as the preset says, on
    stage A latents) jointly, at diffusion times ``t`` drawn uniformly from ``timesteps``
    (``[0, 1]``; a range near 1, where v is ``-x0``, teaches the embedding-to-layout mapping
    first); ``stage_a`` cannot share a phase with them. The learning rate warms up linearly
    over ``warmup_steps`` and then stays constant. One step = ``grad_accum`` micro-batches of
    ``batch_size`` crops of ``size`` pixels (all models are convolutional: e.g. stage A can
    learn on small crops).
    """

    name: str | None = None
    train: list[Literal["stage_a", "encoder", "stage_b", "deepjscc"]] = Field(min_length=1)
    steps: int = Field(ge=1, le=MAX_TRAIN_STEPS)
    size: ImageSide | None = Field(None,
                                   description="Crop side of this phase, px; None = data.size.")
    batch_size: int = Field(8, ge=1, le=MAX_BATCH_SIZE)
    grad_accum: int = Field(1, ge=1, le=MAX_GRAD_ACCUM)
    lr: float = Field(1e-4, gt=0, le=MAX_LEARNING_RATE)
    weight_decay: float = Field(0.01, ge=0, le=MAX_WEIGHT_DECAY)
    warmup_steps: int = Field(0, ge=0, le=MAX_TRAIN_STEPS)
    grad_clip: float | None = Field(1.0, gt=0, le=MAX_GRAD_CLIP)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    recon_loss: Literal["mse", "l1"] = "mse"
    conditioning: ConditioningConfig = Field(default_factory=ConditioningConfig)
    timesteps: list[float] = Field(default_factory=lambda: [0.0, 1.0], min_length=2,
                                   max_length=2, description="[low, high] of diffusion times t.")

    @model_validator(mode="after")
    def _parts(self) -> "PhaseConfig":
        if len(set(self.train)) != len(self.train):
            raise ValueError(f"train lists a part twice: {self.train}")
        low, high = self.timesteps
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"timesteps must be [low, high] with 0 <= low < high <= 1; "
                             f"got {self.timesteps}")
        if "stage_a" in self.train and len(self.train) > 1:
            raise ValueError("stage_a trains alone (reconstruction loss); put encoder/stage_b "
                             "in another phase")
        if "deepjscc" in self.train and len(self.train) > 1:
            raise ValueError("deepjscc trains alone (a DeepJSCC autoencoder, model.deepjscc)")
        if "deepjscc" in self.train and self.conditioning.noise != "channel":
            raise ValueError("conditioning.noise: deepjscc learns through the channel; use "
                             "noise: channel")
        return self


class ValidationConfig(_Frozen):
    """Held-out check: PSNR/SSIM of reconstructions (EMA weights) at a few SNRs, logged to CSV.

    Images are sent analog over AWGN at each SNR with fixed seeds, sampled with ``steps``
    stage B steps and ``guidance``; ``every`` optimiser steps (and at the end of each phase).
    """

    source: str = "sample"
    size: ImageSide = 256
    count: int | None = Field(None, ge=1, le=MAX_IMAGE_COUNT)
    snr_db: list[FiniteSnrDb] = Field(default_factory=lambda: [1.0, 5.0, 10.0, 20.0],
                                      min_length=1, max_length=MAX_SNR_POINTS)
    every: int = Field(500, ge=1, le=MAX_TRAIN_STEPS)
    steps: int = Field(10, ge=1, le=MAX_SAMPLING_STEPS)
    guidance: float = Field(1.1, ge=0, le=MAX_GUIDANCE)


class TrainConfig(_Frozen):
    """A whole training run. ``output`` (relative to the config file) receives the checkpoint,
    logs and the final bundle; ``checkpoint_every`` optimiser steps a checkpoint is written."""

    name: str = "train"
    seed: Seed = 0
    device: str = "cpu"
    output: str = "runs/train"
    checkpoint_every: int = Field(200, ge=1, le=MAX_TRAIN_STEPS)
    log_every: int = Field(10, ge=1, le=MAX_TRAIN_STEPS)
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    phases: list[PhaseConfig] = Field(min_length=1, max_length=MAX_PHASES)
    validation: ValidationConfig | None = Field(default_factory=ValidationConfig)

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if not is_device_name(device):
            raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
        return device

    @model_validator(mode="after")
    def _parts_of_the_model(self) -> "TrainConfig":
        jscc = self.model.deepjscc is not None
        for i, phase in enumerate(self.phases):
            if jscc != (phase.train == ["deepjscc"]):
                what = ("model.deepjscc is set: every phase trains [deepjscc]" if jscc else
                        "train: deepjscc needs model.deepjscc (the autoencoder's architecture)")
                raise ValueError(f"phases.{i}.train: {what}")
        return self

    @property
    def total_steps(self) -> int:
        """Optimiser steps over all phases."""
        return sum(p.steps for p in self.phases)

    def referenced_paths(self) -> dict[str, str]:
        """The files and folders the config names, by field (``data.source``,
        ``validation.source`` unless ``sample``, ``model.init``, ``output``); relative ones
        start from the config file's folder."""
        paths = {"data.source": self.data.source, "output": self.output}
        if self.validation is not None and self.validation.source != "sample":
            paths["validation.source"] = self.validation.source
        if self.model.init is not None:
            paths["model.init"] = self.model.init
        return paths


def parse_train_config(text: str, *, source: str = "<training config>",
                       overrides: Mapping[str, Any] | Sequence[Override] | None = None,
                       overrides_dir: str | Path | None = None,
                       allow_missing: bool = False) -> TrainConfig:
    """Validate training-config YAML ``text``; ``source`` names it in error messages.

    The text may build on another recipe, ``base: OTHER.yaml`` (relative to the folder of
    ``source``), and change values of it with ``set: {dotted.path: value}``
    (:func:`semlink.scenario.validate_yaml`, ``layered``; docs/training.md). A value written
    ``???`` must be given by ``overrides``.

    :param overrides: Values to change last, by dotted path (``--set KEY=VALUE``; a mapping
        such as ``{"data.source": "photos"}``).
    :param overrides_dir: The folder relative paths in ``overrides`` start from (the current
        directory for the command line); None: the folder of ``source``, as the file's own.
    :param allow_missing: Accept ``???`` where a string goes (``semlink validate``).
    :raises semlink.scenario.ScenarioError: One line per problem.
    """
    return validate_yaml(text, TrainConfig, source=source, what="a training config",
                         layered=True, overrides=overrides, overrides_dir=overrides_dir,
                         allow_missing=allow_missing)


def load_train_config(path: str | Path, *,
                      overrides: Mapping[str, Any] | Sequence[Override] | None = None,
                      overrides_dir: str | Path | None = None,
                      allow_missing: bool = False) -> tuple[TrainConfig, str]:
    """Read and validate a training config file (``overrides``, ``overrides_dir``,
    ``allow_missing``: :func:`parse_train_config`).

    :output config: :class:`TrainConfig`.
    :output text: The text stored next to the results: the file's; with ``overrides``, the
        effective config (:func:`semlink.scenario.resolve_yaml`).
    :raises InputError: If the file cannot be read; ScenarioError if it is invalid.
    """
    path = Path(path)
    try:
        text = read_yaml_file(path, what="training config")
    except FileNotFoundError:
        raise InputError(f"{path}: training config not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read training config ({err})") from None
    return resolve_yaml(text, TrainConfig, source=str(path), what="a training config",
                        layered=True, overrides=overrides, overrides_dir=overrides_dir,
                        allow_missing=allow_missing)


def train_config_hash(config: TrainConfig) -> str:
    """SHA-256 of the config's fields that decide the loss curve (everything but ``output``,
    ``device``, logging and checkpoint cadence): a checkpoint resumes only under the same hash."""
    fields = config.model_dump(mode="json", exclude={"output", "device", "log_every",
                                                     "checkpoint_every"})
    for phase in fields["phases"]:  # fields added later, unset: the hash of before
        if phase["conditioning"].get("estimate") is None:
            phase["conditioning"].pop("estimate", None)
    if fields["data"].get("whole") is None:
        fields["data"].pop("whole", None)
    if fields["model"].get("deepjscc") is None:
        fields["model"].pop("deepjscc", None)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
