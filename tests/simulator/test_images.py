"""Image sets: the bundled photos, folders, globs, and clear errors for bad files."""
from __future__ import annotations

import re
import struct
import zlib
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from semlink.errors import InputError
from semlink.images import (SAMPLE_DIR, center_crop_box, list_images, load_image, load_images,
                              read_rgb, save_image)


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


def test_center_crop_of_a_portrait_takes_the_middle_rows(tmp_path):
    """A portrait image is cropped to its middle rows, not its top: 40x100 with the rows
    30..69 white and the rest black gives a white 40x40 square; without center_crop the whole
    image is squeezed, so the black top and bottom stay (resized by Pillow, as an independent
    reference)."""
    array = np.zeros((100, 40, 3), dtype=np.uint8)
    array[30:70] = 255
    Image.fromarray(array).save(tmp_path / "tall.png")
    assert torch.all(load_image(tmp_path / "tall.png", 40) == 1.0)
    squeezed = load_image(tmp_path / "tall.png", 40, center_crop=False)
    ref = np.asarray(Image.fromarray(array).resize((40, 40), Image.Resampling.BICUBIC),
                     dtype=np.float32) / 255
    np.testing.assert_allclose(squeezed.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    assert squeezed[:, 0].max() == 0


def test_non_square_output_crops_the_centred_region_of_its_aspect_ratio(tmp_path):
    """(height, width) outputs crop the largest centred region of their aspect ratio: a 90x60
    photo (W x H) to 3:1 keeps all 90 columns and the middle 30 rows; to 1:2 the middle 30
    columns; then Pillow resizes it (the reference, as in the other tests)."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)  # H x W = 60 x 90
    Image.fromarray(array).save(tmp_path / "photo.png")
    wide = load_image(tmp_path / "photo.png", (64, 192))  # (height, width)
    ref = np.asarray(Image.fromarray(array[15:45]).resize((192, 64), Image.Resampling.BICUBIC),
                     dtype=np.float32) / 255
    assert wide.shape == (3, 64, 192)
    np.testing.assert_allclose(wide.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    tall = load_image(tmp_path / "photo.png", (128, 64))
    ref = np.asarray(Image.fromarray(array[:, 30:60]).resize((64, 128),
                                                             Image.Resampling.BICUBIC),
                     dtype=np.float32) / 255
    np.testing.assert_allclose(tall.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    # Kodak's 3:2 in both orientations, and squares as before (the middle min(w, h) square)
    assert center_crop_box((768, 512), (768, 512)) == (0, 0, 768, 512)
    assert center_crop_box((512, 768), (768, 512)) == (0, 213, 512, 554)
    assert center_crop_box((80, 40), (32, 32)) == (20, 0, 60, 40)
    assert center_crop_box((41, 100), (64, 64)) == (0, 29, 41, 70)
    squeezed = load_image(tmp_path / "photo.png", (64, 64), center_crop=False)
    ref = np.asarray(Image.fromarray(array).resize((64, 64), Image.Resampling.BICUBIC),
                     dtype=np.float32) / 255
    np.testing.assert_allclose(squeezed.permute(1, 2, 0).numpy(), ref, atol=1e-6)


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


def _write_png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG of ``array`` ([H, W, 3] RGB or [H, W, 4] RGBA uint16), written by hand:
    Pillow cannot write 16-bit colour PNGs."""
    h, w, c = array.shape
    raw = b"".join(b"\x00" + array[i].astype(">u2").tobytes() for i in range(h))  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


_RNG = np.random.default_rng(7)
_U16 = _RNG.integers(0, 65536, (16, 16), dtype=np.uint16)
_U16[0, :2] = (0, 65535)  # both ends of the range


@pytest.mark.parametrize("name, array, truth", [
    ("gray16.png", _U16, _U16 / 65535),                          # Pillow mode I;16
    ("gray16.tif", _U16, _U16 / 65535),                          # I;16
    ("gray16be.tif", _U16.astype(">u2"), _U16 / 65535),          # I;16B
    ("int32.tif", _U16.astype(np.int32), _U16 / 65535),          # I, read as 16-bit
    ("float.tif", _U16.astype(np.float32) / 65535, _U16 / 65535),  # F in [0, 1]
])
def test_high_bit_depth_gray_is_scaled_by_its_range(tmp_path, name, array, truth):
    Image.fromarray(array).save(tmp_path / name)
    image = load_image(tmp_path / name, 16)  # native size: no resampling
    assert image.shape == (3, 16, 16)
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    # Rounded to 8 bits: within half a step of the value written (truncation would miss).
    np.testing.assert_allclose(image[0].numpy(), truth, rtol=0, atol=0.5 / 255 + 1e-6)
    assert image[0, 0, 0] == 0 and image[0, 0, 1] == 1


def test_16_bit_rgb_png_keeps_its_colours(tmp_path):
    array = _RNG.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    _write_png16(tmp_path / "rgb16.png", array)
    image = load_image(tmp_path / "rgb16.png", 16).permute(1, 2, 0).numpy()
    # Pillow keeps the high byte: within one 8-bit step of the value written.
    np.testing.assert_allclose(image, array / 65535, rtol=0, atol=1 / 255 + 1e-6)
    np.testing.assert_array_equal(np.rint(image * 255), array >> 8)


@pytest.mark.parametrize("name, array, match", [
    ("neg.tif", np.full((16, 16), -5, np.int32), r"neg\.tif: 32-bit integer image holds values "
                                                 r"in \[-5, -5\]; need 0\.\.65535"),
    ("big.tif", np.full((16, 16), 70000, np.int32), r"big\.tif: 32-bit integer image .*\[70000"),
    ("f255.tif", np.full((16, 16), 200.0, np.float32), r"f255\.tif: float image holds values "
                                                       r"in \[200, 200\]; need \[0, 1\]"),
    ("fneg.tif", np.full((16, 16), -0.5, np.float32), r"fneg\.tif: float image .*\[-0\.5, "),
    ("fnan.tif", np.full((16, 16), np.nan, np.float32), r"fnan\.tif: float image holds NaN"),
])
def test_out_of_range_int_and_float_images_are_refused(tmp_path, name, array, match):
    Image.fromarray(array).save(tmp_path / name)
    with pytest.raises(InputError, match=match):
        load_image(tmp_path / name, 16)


@pytest.mark.parametrize("orientation, turns", [(6, -1), (8, 1), (3, 2), (1, 0)])
def test_exif_orientation_is_applied(tmp_path, orientation, turns):
    stored = np.zeros((100, 200, 3), dtype=np.uint8)  # 200 wide, 100 tall, as stored
    stored[:48, :96] = 255  # a white block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif, quality=95)
    shown = np.rot90(stored, k=turns)  # numpy turns counter-clockwise; 6 = 90° clockwise
    rgb = np.asarray(read_rgb(tmp_path / "o.jpg"), dtype=np.float32)
    assert rgb.shape == shown.shape
    assert np.abs(rgb - shown).mean() < 2  # JPEG noise only; another turn moves the block
    if orientation == 6:  # portrait 100x200, block now at the top right
        assert rgb[:96, 52:].min() > 200 and rgb[:96, :48].max() < 50
        assert load_image(tmp_path / "o.jpg", 100).shape == (3, 100, 100)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[:, :4, 3] = 0     # left: fully transparent (its colour must not show)
    rgba[:4, 4:, 3] = 255  # top right: opaque
    rgba[4:, 4:, 3] = 128  # bottom right: half; c * 128/255 + 255 * 127/255, rounded by hand
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    la = rgba[..., [0, 3]]  # gray 200 with the same alpha
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    rgb = np.asarray(read_rgb(tmp_path / "rgba.png"))
    np.testing.assert_array_equal(rgb[:, :4], 255)
    np.testing.assert_array_equal(rgb[:4, 4:], np.broadcast_to([200, 100, 0], (4, 4, 3)))
    np.testing.assert_array_equal(rgb[4:, 4:], np.broadcast_to([227, 177, 127], (4, 4, 3)))
    gray = np.asarray(read_rgb(tmp_path / "la.png"))
    np.testing.assert_array_equal(gray[:, :4], 255)
    np.testing.assert_array_equal(gray[:4, 4:], 200)
    np.testing.assert_array_equal(gray[4:, 4:], 227)


def test_palette_and_single_colour_transparency_become_white(tmp_path):
    pal = Image.fromarray(np.array([[0, 1] * 4] * 8, dtype=np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, 1 blue
    pal.save(tmp_path / "p.png", transparency=0)  # red is transparent
    gray16 = _U16.copy()
    gray16[:, :8] = 1234
    Image.fromarray(gray16).save(tmp_path / "g16.png", transparency=1234)
    rgb = np.asarray(read_rgb(tmp_path / "p.png"))
    np.testing.assert_array_equal(rgb[:, 0::2], 255)
    np.testing.assert_array_equal(rgb[:, 1::2], np.broadcast_to([0, 0, 255], (8, 4, 3)))
    gray = np.asarray(read_rgb(tmp_path / "g16.png"))[..., 0]
    np.testing.assert_array_equal(gray[:, :8], 255)
    np.testing.assert_array_equal(gray[:, 8:], np.rint(_U16[:, 8:] / 65535 * 255))


@pytest.mark.parametrize("files", [
    ("x/a.png", "y/a.png"),  # same name in two folders
    ("x/a.png", "x/a.jpg"),  # saved reconstructions drop the suffix
    ("x/a.png", "y/A.png"),  # and collide on case-insensitive file systems
])
def test_duplicate_image_names_are_refused(tmp_path, files):
    for name in files:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16)).save(tmp_path / name)
    first, second = sorted(re.escape(str(tmp_path / name)) for name in files)
    source = "*/*" if files[0].split("/")[0] != files[1].split("/")[0] else "x"
    with pytest.raises(InputError, match=r"^images\.source: .* holds two images named '[aA]' "
                       rf"\({first} and {second}\); .*names must be unique$"):
        list_images(source, base_dir=tmp_path)
    # Training data is never named in results: both files are kept, ordered by path on a tie.
    kept = list_images(source, base_dir=tmp_path, field="data.source", unique_names=False)
    assert sorted(kept) == sorted(tmp_path / name for name in files)
    assert kept == sorted(kept, key=lambda p: (p.name, str(p)))


def test_glob_over_folders_is_ordered_by_file_name(tmp_path):
    for name in ("x/b.png", "y/a.png", "y/c.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16)).save(tmp_path / name)
    assert list_images(str(tmp_path / "*" / "*")) == [
        tmp_path / "y/a.png", tmp_path / "x/b.png", tmp_path / "y/c.jpg"]


def test_one_image_file_is_a_source_of_one_image(tmp_path):
    (tmp_path / "odd[1]").mkdir()  # glob characters in the path are taken literally
    Image.new("RGB", (16, 16)).save(tmp_path / "odd[1]" / "a.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "odd[1]" / "b.png")
    assert list_images(str(tmp_path / "odd[1]" / "a.png")) == [tmp_path / "odd[1]" / "a.png"]
    assert list_images("odd[1]/b.png", base_dir=tmp_path) == [tmp_path / "odd[1]" / "b.png"]


def test_an_image_that_cannot_be_written_names_the_file_not_its_temporary(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "x.png"
    with pytest.raises(OSError) as info:
        save_image(torch.zeros(3, 8, 8), target)
    assert info.value.filename == str(target) and "cannot write image" in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


def test_a_file_that_is_no_image_is_named_as_such(tmp_path):
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(InputError, match=r"^images\.source: .*notes\.txt is not an image file "
                       r"\(\.png, .*\) nor a folder$"):
        list_images(str(tmp_path / "notes.txt"))


def test_fewer_images_than_count_is_refused_naming_the_count_field(tmp_path):
    for name in ("a", "b", "c"):
        shutil.copy(sorted(SAMPLE_DIR.glob("*.png"))[0], tmp_path / f"{name}.png")
    assert [p.name for p in list_images(str(tmp_path), count=3)] == ["a.png", "b.png", "c.png"]
    with pytest.raises(InputError) as err:
        list_images(str(tmp_path), count=4)
    assert str(err.value) == (f"images.source: folder {tmp_path} holds 3 image file(s), fewer "
                              "than images.count 4; add images, or pass --set images.count=3")
    with pytest.raises(InputError, match=r"^data.source: .* fewer than data.count 9;"):
        list_images(str(tmp_path), count=9, field="data.source")
    # training data's count is "at most" (its recipe field says so): all three are used
    assert len(list_images(str(tmp_path), count=9, field="data.source", at_most=True)) == 3
