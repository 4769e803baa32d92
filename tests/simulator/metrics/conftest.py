"""Real photos for the metric tests: the 8 shipped 512 x 512 samples, and JPEG/blur copies."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "simulator" / "data" / "sample"


def load_photos(count: int = 8) -> list[Image.Image]:
    """The first ``count`` sample photos as RGB PIL images."""
    paths = sorted(SAMPLE_DIR.glob("*.png"))[:count]
    assert len(paths) == count, f"expected {count} sample photos in {SAMPLE_DIR}"
    return [Image.open(p).convert("RGB") for p in paths]


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL images -> [batch, 3, H, W] float32 in [0, 1]."""
    arrays = [np.array(im, dtype=np.float32) / 255.0 for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def jpeg(images: list[Image.Image], quality: int) -> list[Image.Image]:
    """Each image encoded as JPEG at ``quality`` in memory and decoded again."""
    out = []
    for im in images:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out.append(Image.open(buf).convert("RGB"))
    return out


def blur(images: list[Image.Image], radius: float) -> list[Image.Image]:
    return [im.filter(ImageFilter.GaussianBlur(radius)) for im in images]


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    return load_photos()
