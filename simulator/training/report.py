"""Evaluate a trained bundle on held-out images: PSNR/SSIM per SNR, the constant-colour baseline,
and an image grid (originals vs reconstructions) for the docs."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from semlink.images import load_images, to_uint8
from semlink.metrics.quality import psnr_db, ssim
from semlink.models.bundle import bundle_prediction, load_bundle, read_bundle_info
from semlink.training.config import ModelConfig
from semlink.training.models import TrainingModels, build_training_models
from semlink.training.validation import constant_colour_psnr_db, reconstruct

__all__ = ["load_trained_models", "evaluate_bundle", "image_grid"]


def load_trained_models(bundle: str | Path, *, model: ModelConfig | None = None,
                        device: str = "cpu") -> TrainingModels:
    """The three parts of a bundle written by training, in eval mode, with the bundle's
    stage B parameterisation (:func:`semlink.models.bundle.bundle_prediction`).

    :param model: Architecture (overrides) of the bundle; None = its preset's.
    :raises InputError: If the file is missing, unreadable or does not fit the architecture.
    """
    preset = read_bundle_info(bundle)["preset"]
    models = build_training_models(model or ModelConfig(preset=preset), device=device)
    models.prediction = bundle_prediction(load_bundle(bundle, models.parts(), preset=preset))
    for module in models.parts().values():
        module.eval()
    return models


@torch.no_grad()
def evaluate_bundle(bundle: str | Path, *, snrs_db: Sequence[float] = (1, 5, 10, 15, 20),
                    source: str = "sample", size: int = 256, count: int | None = None,
                    steps: int = 10, guidance: float = 1.1, seed: int = 0,
                    grid: str | Path | None = None, grid_count: int = 4,
                    model: ModelConfig | None = None, device: str = "cpu") -> list[dict[str, float]]:
    """PSNR/SSIM of a bundle's semantic link (analog, AWGN) per SNR, plus the baseline.

    :param bundle: A ``model.safetensors`` written by training (any preset).
    :param model: Architecture (overrides) of the bundle; None = its preset's.
    :param grid: If given, write a PNG: one row per image (first ``grid_count``), columns =
        original, then the reconstruction at each SNR.
    :output rows: One dict per SNR (``snr_db``, ``psnr_db``, ``ssim``: means over images) and a
        last row ``snr_db = nan`` holding the constant-colour baseline (``ssim`` of it too).
    """
    models = load_trained_models(bundle, model=model, device=device)
    images, _ = load_images(source, size, count=count, field="source")
    images = images.to(device)
    rows, recons = [], []
    for k, snr in enumerate(snrs_db):
        x_hat = torch.cat([reconstruct(models.encoder, models.stage_b, models.stage_a,
                                       images[i:i + 4], float(snr),
                                       scale_factor=models.scale_factor, steps=steps,
                                       guidance=guidance, seed=seed + 7919 * k + i,
                                       prediction=models.prediction)
                           for i in range(0, images.shape[0], 4)])
        recons.append(x_hat)
        rows.append({"snr_db": float(snr), "psnr_db": float(psnr_db(images, x_hat).mean()),
                     "ssim": float(ssim(images, x_hat, precision="single").mean())})
    flat = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    rows.append({"snr_db": float("nan"), "psnr_db": float(constant_colour_psnr_db(images).mean()),
                 "ssim": float(ssim(images, flat.contiguous(), precision="single").mean())})
    if grid is not None:
        n = min(grid_count, images.shape[0])
        columns = [images[:n]] + [r[:n] for r in recons]
        image_grid(columns).save(grid)
    return rows


def image_grid(columns: Sequence[torch.Tensor], *, gap: int = 4) -> Image.Image:
    """Tile images: ``columns[j][i]`` goes to row ``i``, column ``j``; white gaps.

    :input columns: Each [rows, 3, H, W], float in [0, 1], same shapes.
    :output grid: PIL RGB image.
    """
    rows, _, h, w = columns[0].shape
    canvas = Image.new("RGB", (len(columns) * (w + gap) - gap, rows * (h + gap) - gap), "white")
    for j, col in enumerate(columns):
        for i in range(rows):
            canvas.paste(Image.fromarray(to_uint8(col[i])), (j * (w + gap), i * (h + gap)))
    return canvas
