"""Validation and report helpers against independent truth."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semlink.models.bundle import save_bundle
from semlink.training.config import ModelConfig
from semlink.training.models import build_training_models
from semlink.training.report import evaluate_bundle, image_grid
from semlink.training.validation import constant_colour_psnr_db, reconstruct

TINY = ModelConfig(preset="small", stage_b="tiny", stage_a="tiny")


def test_constant_colour_psnr_closed_form():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    got = constant_colour_psnr_db(x)
    arr = x.numpy().astype(np.float64)
    for i in range(2):
        mean = arr[i].mean(axis=(1, 2), keepdims=True)
        # psnr_db scores 8-bit images: round both to 1/255 steps as it does
        a = np.round(arr[i] * 255) / 255
        b = np.round(np.broadcast_to(mean, arr[i].shape) * 255) / 255
        mse = ((a - b) ** 2).mean()
        assert float(got[i]) == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)


def test_image_grid_layout():
    a = torch.zeros(2, 3, 8, 8)
    b = torch.ones(2, 3, 8, 8)
    grid = np.asarray(image_grid([a, b], gap=2))
    assert grid.shape == (2 * 8 + 2, 2 * 8 + 2, 3)
    assert (grid[:8, :8] == 0).all() and (grid[:8, 10:] == 255).all()
    assert (grid[8:10] == 255).all()  # the white gap between rows


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    torch.manual_seed(0)
    models = build_training_models(TINY, device="cpu")
    path = tmp_path_factory.mktemp("b") / "model.safetensors"
    return save_bundle(path, models.parts(), preset="small"), models


def test_reconstruct_is_deterministic_in_seed(tiny_bundle):
    _, m = tiny_bundle
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    args = (m.encoder.eval(), m.stage_b.eval(), m.stage_a.eval(), x, 5.0)
    kw = {"scale_factor": 1.0, "steps": 2, "guidance": 1.0}
    a = reconstruct(*args, seed=1, **kw)
    b = reconstruct(*args, seed=1, **kw)
    c = reconstruct(*args, seed=2, **kw)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_evaluate_bundle_rows_and_grid(tiny_bundle, tmp_path):
    path, _ = tiny_bundle
    rows = evaluate_bundle(path, snrs_db=[1, 20], size=64, count=2, steps=1, guidance=1.0,
                           grid=tmp_path / "g.png", grid_count=2, model=TINY)
    assert [r["snr_db"] for r in rows[:2]] == [1.0, 20.0] and math.isnan(rows[2]["snr_db"])
    assert all(0 < r["psnr_db"] < 60 for r in rows)
    from PIL import Image
    grid = np.asarray(Image.open(tmp_path / "g.png"), dtype=np.float64)
    assert grid.shape == (2 * 64 + 4, 3 * 64 + 2 * 4, 3)
    # Each SNR row is the mean over the images of 10 log10(255^2 / MSE) of the 8-bit images,
    # here recomputed from the grid: column 0 the originals, column 1 + k the SNR k.
    def block(i, j):
        return grid[i * 68:i * 68 + 64, j * 68:j * 68 + 64]

    for k in range(2):
        want = np.mean([10 * math.log10(255 ** 2 / ((block(i, 0) - block(i, 1 + k)) ** 2).mean())
                        for i in range(2)])
        assert rows[k]["psnr_db"] == pytest.approx(want, abs=1e-4)
