"""Image sets: the bundled photos, folders, globs, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from simulator.errors import InputError
from simulator.images import SAMPLE_DIR, list_images, load_image, load_images, save_image


def test_sample_set_is_bundled_with_licences():
    files = list_images("sample")
    assert len(files) == 8 and files[0].name == "00_street_vtest.png"
    assert (SAMPLE_DIR / "LICENSES.md").is_file()
    text = (SAMPLE_DIR / "LICENSES.md").read_text()
    assert all(f.name in text for f in files)


def test_load_resizes_and_matches_pillow(tmp_path):
    images, names = load_images("sample", 256, count=2)
    assert images.shape == (2, 3, 256, 256) and images.dtype == torch.float32
    assert names == ["00_street_vtest.png", "01_street_leuven.png"]
    # Independent: Pillow's own resize of the (already square) photo.
    ref = np.asarray(Image.open(SAMPLE_DIR / names[1]).convert("RGB").resize(
        (256, 256), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    np.testing.assert_allclose(images[1].permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_center_crop_of_non_square_and_save_round_trip(tmp_path):
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:, 20:60] = 255  # the centred 40x40 square is white
    Image.fromarray(array).save(tmp_path / "wide.png")
    image = load_image(tmp_path / "wide.png", 40)
    assert torch.all(image == 1.0)
    save_image(image, tmp_path / "out" / "w.png")
    assert torch.equal(load_image(tmp_path / "out" / "w.png", 40), image)
    save_image(image * 0, tmp_path / "out" / "w.png")  # replaced whole, nothing left beside it
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["w.png"]
    assert torch.equal(load_image(tmp_path / "out" / "w.png", 40), image * 0)
    save_image(image, tmp_path / "out" / "w.JPG")  # the suffix names the format
    assert Image.open(tmp_path / "out" / "w.JPG").format == "JPEG"
    with pytest.raises(ValueError, match=r"w\.xyz: no image format for the suffix '\.xyz'"):
        save_image(image, tmp_path / "out" / "w.xyz")


def test_glob_and_relative_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("b.png", "a.png", "notes.txt"):
        target = tmp_path / "imgs" / name
        if name.endswith(".png"):
            Image.new("RGB", (16, 16), (10, 20, 30)).save(target)
        else:
            target.write_text("hi")
    assert [p.name for p in list_images("imgs", base_dir=tmp_path)] == ["a.png", "b.png"]
    assert [p.name for p in list_images(str(tmp_path / "imgs" / "b*"))] == ["b.png"]


def test_errors_name_the_place(tmp_path):
    with pytest.raises(InputError, match="folder .*missing does not exist"):
        list_images(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty holds no image files"):
        list_images(str(tmp_path / "empty"))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="broken.png: cannot read image"):
        load_image(bad, 64)
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match="tiny.png: image is 4x4 pixels"):
        load_image(tmp_path / "tiny.png", 64)
