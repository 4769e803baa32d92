"""Random training crops: deterministic in the generator, exact where the crop is the image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from simulator.errors import InputError
from simulator.training.data import TrainImages


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path


def _truth(folder):
    return [torch.from_numpy(np.array(Image.open(folder / f"{i}.png"))).permute(2, 0, 1).float() / 255
            for i in range(3)]


def test_full_crop_is_the_image_or_its_mirror(folder):
    data = TrainImages(str(folder), size=64, min_crop=1.0, flip=True)
    batch = data.batch(16, torch.Generator().manual_seed(1))
    truth = _truth(folder)
    assert batch.shape == (16, 3, 64, 64) and batch.dtype == torch.float32
    flips = 0
    for img in batch:
        plain = [torch.equal(img, t) for t in truth]
        mirrored = [torch.equal(img, t.flip(-1)) for t in truth]
        assert any(plain) or any(mirrored)
        flips += any(mirrored)
    assert 0 < flips < 16  # P(all same) = 2 * 2**-16


def test_no_flip_crops_are_windows(folder):
    data = TrainImages(str(folder), size=32, min_crop=0.5, flip=False)
    batch = data.batch(8, torch.Generator().manual_seed(2), size=32)
    truth = _truth(folder)
    # a crop of side 32 is an exact window of one image (no resize)
    for img in batch:
        found = any(torch.equal(img, t[:, r:r + 32, c:c + 32])
                    for t in truth for r in range(33) for c in range(33))
        if not found:  # larger crops are resized: values stay in range
            assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0


def test_same_seed_same_batch(folder):
    data = TrainImages(str(folder), size=48)
    a = data.batch(4, torch.Generator().manual_seed(5))
    b = data.batch(4, torch.Generator().manual_seed(5))
    c = data.batch(4, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 3, 48, 48)


def test_unreadable_image_names_the_file(folder):
    (folder / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"bad\.png: cannot read image"):
        TrainImages(str(folder), size=64)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match=r"holds no image files"):
        TrainImages(str(tmp_path), size=64)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"size": 16}, ValueError, r"`size` must be"),
    ({"size": 64, "min_crop": 0.0}, ValueError, r"`min_crop` must be in \(0, 1\]"),
    ({"size": 64, "flip": 1}, TypeError, r"`flip` must be"),
])
def test_bad_arguments(folder, kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainImages(str(folder), **kwargs)
