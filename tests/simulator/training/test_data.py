"""Random training crops: deterministic in the generator, exact where the crop is the image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semlink.errors import InputError
from semlink.training.data import TrainImages


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


def test_whole_images_are_resized_not_cropped(tmp_path):
    """``whole``: a 2:1 image becomes size x size whole (Pillow-free reference: the same
    antialiased bilinear resize of the full image), mirrored or not; the draws per sample are
    those of cropping, so the image order is the cropping run's."""
    import torch.nn.functional as F

    rng = np.random.default_rng(5)
    wide = [rng.integers(0, 256, (32, 64, 3), dtype=np.uint8) for _ in range(3)]
    for i, array in enumerate(wide):
        Image.fromarray(array).save(tmp_path / f"{i}.png")
    truth = [F.interpolate(torch.from_numpy(a).permute(2, 0, 1).float()[None], size=(48, 48),
                           mode="bilinear", align_corners=False, antialias=True)[0] / 255
             for a in wide]
    whole = TrainImages(str(tmp_path), size=48, whole=True).batch(12, torch.Generator()
                                                                   .manual_seed(3))
    cropped = TrainImages(str(tmp_path), size=48).batch(12, torch.Generator().manual_seed(3))
    for img, crop in zip(whole, cropped):
        matches = [i for i, t in enumerate(truth)
                   if torch.allclose(img, t.clamp(0, 1), atol=1e-6)
                   or torch.allclose(img, t.clamp(0, 1).flip(-1), atol=1e-6)]
        assert len(matches) == 1
        assert not torch.allclose(img, crop)  # a square crop would show a part only


def test_no_flip_crops_are_windows(folder, tmp_path_factory):
    """``flip=False``: every crop is an unmirrored window of an image. Full crops (``min_crop=1``,
    no resize) are the images themselves, never their mirrors (a flip in half of 32 draws would
    be missed with probability 2**-32); resized crops of a column ramp (green = column) still
    increase from left to right in every row, where a mirrored crop would decrease."""
    truth = _truth(folder)
    full = TrainImages(str(folder), size=64, min_crop=1.0, flip=False)
    for img in full.batch(32, torch.Generator().manual_seed(2)):
        assert sum(torch.equal(img, t) for t in truth) == 1
        assert not any(torch.equal(img, t.flip(-1)) for t in truth)
    cols = np.broadcast_to(np.arange(64, dtype=np.uint8) * 4, (64, 64))
    ramp = np.stack([np.zeros_like(cols), cols, np.zeros_like(cols)], axis=-1)
    ramp_folder = tmp_path_factory.mktemp("ramp")
    Image.fromarray(np.ascontiguousarray(ramp)).save(ramp_folder / "ramp.png")
    data = TrainImages(str(ramp_folder), size=32, min_crop=0.5, flip=False)
    batch = data.batch(64, torch.Generator().manual_seed(2), size=32)
    green = batch[:, 1]  # [64, 32, 32]
    assert bool((green[..., -1] > green[..., 0]).all())
    assert bool((green.diff(dim=-1) >= 0).all())


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


def test_crop_offsets_cover_every_position_and_every_image(tmp_path):
    """With ``min_crop=1`` the crop is the full short side, an exact window (no resize) of a
    tall image: its row offset takes every value 0..H-W (17 here) and every image is drawn.
    P(one offset missed in 400 draws) <= 17 * (16/17)^400 ~ 5e-10."""
    rng = np.random.default_rng(1)
    truth = []
    for i in range(3):
        arr = rng.integers(0, 256, (80, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
        truth.append(torch.from_numpy(arr).permute(2, 0, 1).float() / 255)
    data = TrainImages(str(tmp_path), size=64, min_crop=1.0, flip=False)
    batch = data.batch(400, torch.Generator().manual_seed(3))
    tops, images = set(), set()
    for img in batch:
        hits = [(i, top) for i, t in enumerate(truth) for top in range(17)
                if torch.equal(img, t[:, top:top + 64])]
        assert len(hits) == 1
        images.add(hits[0][0])
        tops.add(hits[0][1])
    assert tops == set(range(17)) and images == {0, 1, 2}


def test_crop_side_uniform_and_position_independent(tmp_path):
    """Crop sides are uniform in [min_crop, 1] x the short side and rows and columns are drawn
    independently. Read off ramp images (red = row, green = column, in pixels) resized to 32:
    a crop's mean red/green is its centre, the red span between its first and last output
    rows is about (side - side/32). 300 crops of a 200 px image, min_crop 0.5: side ~ U(100,
    200), mean 150 (sigma of the mean 29 / sqrt(300) = 1.7 px)."""
    rows, cols = np.meshgrid(np.arange(200), np.arange(200), indexing="ij")
    ramp = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    data = TrainImages(str(tmp_path), size=32, min_crop=0.5, flip=False)
    batch = data.batch(300, torch.Generator().manual_seed(4)).double() * 255
    red, green = batch[:, 0], batch[:, 1]
    span = red[:, -1].mean(dim=1) - red[:, 0].mean(dim=1)           # ~ side * 31 / 32
    side = span * 32 / 31
    assert float(side.min()) < 110 and float(side.max()) > 190
    assert float(side.mean()) == pytest.approx(150, abs=6)
    centre_row, centre_col = red.mean(dim=(1, 2)), green.mean(dim=(1, 2))
    corr = np.corrcoef(centre_row.numpy(), centre_col.numpy())[0, 1]
    assert abs(corr) < 0.25  # independent offsets (sigma ~ 1 / sqrt(300) = 0.06)


def test_resized_crops_are_antialiased(tmp_path):
    """A crop shrunk to ``size`` is low-pass filtered (antialiased bilinear): 1-px stripes
    scaled by 3/4 blur to std ~0.12 around 0.5 (plain bilinear leaves ~0.27)."""
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    Image.fromarray(stripes).save(tmp_path / "s.png")
    data = TrainImages(str(tmp_path), size=48, min_crop=1.0, flip=False)
    batch = data.batch(1, torch.Generator().manual_seed(0))
    assert float(batch.std()) < 0.18
    assert float(batch.mean()) == pytest.approx(0.5, abs=0.02)
