"""Named receiver presets: which stage B / stage A / encoder, at which size, sampled how.

- ``"small"``: CPU-sized models at 256 px, trained by semlink (``scenarios/train-small*.yaml``);
  weights shipped in ``simulator/data/weights/small/``. Its stage B predicts v and samples with
  one step by default (the best PSNR on training crops; more steps trade PSNR for detail, see
  docs/training.md).
- ``"stable-cascade-lite"``: stage B lite (699M) + Stable Cascade VQGAN + EfficientNetV2-S
  encoder; weights from a local directory of Stability AI's original files.
- ``"stable-cascade"``: the same with the full stage B (1.56B).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from semlink.channels._checks import check_type
from semlink.models.stage_a import ORIGINAL_SCALE_FACTOR

__all__ = ["PRESET_NAMES", "Preset", "get_preset"]

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named receiver configuration.

    :param name: Preset name.
    :param stage_b: Stage B config name (:func:`semlink.models.stage_b.stage_b_config`).
    :param stage_a: Stage A config name (:func:`semlink.models.stage_a.stage_a_config`).
    :param encoder_width_mult: ``SemanticEncoder(width_mult=...)``.
    :param encoder_depth_mult: ``SemanticEncoder(depth_mult=...)``.
    :param embedding_channels: ``SemanticEncoder(embedding_channels=...)``; channels of Z.
    :param encoder_resize_factor: ``SemanticEncoder(resize_factor=...)``.
    :param native_image_size: int, px; side the models were trained at (the evaluation size
        comes from the scenario).
    :param latent_scale_factor: float > 0; stage A latent scale of the preset's weights
        (0.43 for Stability AI's original ``stage_a.safetensors``).
    :param steps: Default sampling steps.
    :param guidance: Default classifier-free guidance scale.
    :param prediction: What stage B outputs (:data:`semlink.models.sampler.PREDICTION_TYPES`):
        ``"epsilon"`` for Stability AI's weights, ``"v_prediction"`` for the ``small`` preset.
    :param cuda_dtype: Name of the default parameter/autocast dtype on CUDA (``"bfloat16"``;
        float16 overflows in stage B).
    :param shipped_weights: Weights folder relative to ``simulator/data/`` shipped with semlink,
        or None when the weights come from a local directory the user supplies.
    :param single_size: True if the models were trained at :attr:`native_image_size` only, so
        a scenario at another size gets a warning (``small``); Stability AI's models were
        trained at many sizes and the paper runs them at 512 and 1024 px.
    """

    name: str
    stage_b: str
    stage_a: str
    encoder_width_mult: float
    encoder_depth_mult: float
    embedding_channels: int
    encoder_resize_factor: float
    native_image_size: int
    latent_scale_factor: float
    steps: int = 10
    guidance: float = 1.1
    prediction: str = "epsilon"
    cuda_dtype: str = "bfloat16"
    shipped_weights: str | None = None
    single_size: bool = False

    def encoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the encoder engineer's ``SemanticEncoder``."""
        return {"width_mult": self.encoder_width_mult, "depth_mult": self.encoder_depth_mult,
                "embedding_channels": self.embedding_channels,
                "resize_factor": self.encoder_resize_factor}

    def default_dtype(self, device: torch.device | str) -> torch.dtype:
        """Parameter dtype on ``device``: :attr:`cuda_dtype` on CUDA, float32 elsewhere."""
        return getattr(torch, self.cuda_dtype) if torch.device(device).type == "cuda" else torch.float32

    @property
    def shipped_weights_dir(self) -> Path | None:
        """Absolute path of the shipped weights folder (it may not exist yet), or None."""
        return None if self.shipped_weights is None else _DATA_DIR / self.shipped_weights

    def has_shipped_weights(self) -> bool:
        """True if the shipped weights folder exists and holds at least one file."""
        folder = self.shipped_weights_dir
        return folder is not None and folder.is_dir() and any(folder.iterdir())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (for result hashing)."""
        return dataclasses.asdict(self)


_REAL = {
    "encoder_width_mult": 1.0,
    "encoder_depth_mult": 1.0,
    "embedding_channels": 16,
    "encoder_resize_factor": 0.75,
    "native_image_size": 1024,
    "latent_scale_factor": ORIGINAL_SCALE_FACTOR,
}

_PRESETS: dict[str, Preset] = {
    "small": Preset(name="small", stage_b="small", stage_a="small", encoder_width_mult=0.25,
                    encoder_depth_mult=0.25, embedding_channels=16, encoder_resize_factor=0.75,
                    native_image_size=256, latent_scale_factor=1.0, steps=1, guidance=1.0,
                    prediction="v_prediction", shipped_weights="weights/small",
                    single_size=True),
    "stable-cascade-lite": Preset(name="stable-cascade-lite", stage_b="stable-cascade-lite",
                                  stage_a="stable-cascade", **_REAL),
    "stable-cascade": Preset(name="stable-cascade", stage_b="stable-cascade",
                             stage_a="stable-cascade", **_REAL),
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)
"""Names accepted by :func:`get_preset`."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    :param name: One of :data:`PRESET_NAMES`.
    :output preset: :class:`Preset` (frozen).
    :raises TypeError: If ``name`` is not a str.
    :raises ValueError: If ``name`` is unknown; the message lists the allowed names.

    >>> get_preset("stable-cascade-lite").stage_b
    'stable-cascade-lite'
    """
    check_type(name, str, name="name")
    if name not in _PRESETS:
        raise ValueError(f"`name` must be one of {', '.join(map(repr, PRESET_NAMES))}; got {name!r}.")
    return _PRESETS[name]
