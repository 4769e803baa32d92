"""Image sets: the bundled sample photos, a folder or a glob, loaded as float tensors in [0, 1]."""
from __future__ import annotations

import glob as _glob
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from simulator.errors import InputError

__all__ = ["SAMPLE_DIR", "IMAGE_SUFFIXES", "list_images", "read_rgb", "load_image", "load_images",
           "writable_format", "save_image", "to_uint8"]

#: The eight 512x512 photos shipped with semlink (licences in ``LICENSES.md`` there).
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(source: str, *, base_dir: str | Path | None = None,
                count: int | None = None, field: str = "images.source") -> list[Path]:
    """Image files of ``source``, sorted by name.

    :param source: ``"sample"`` (the bundled photos), a folder, or a glob pattern such as
        ``photos/*.jpg``; relative paths are relative to ``base_dir``.
    :param base_dir: Folder that relative paths start from (the scenario file's folder).
    :param count: Keep at most the first ``count`` files.
    :param field: Where ``source`` came from, to name in errors (a scenario's
        ``images.source``, a training config's ``data.source``, a command's argument).
    :raises InputError: If the folder does not exist or holds no image files.
    """
    if source == "sample":
        folder: Path | None = SAMPLE_DIR
        pattern = None
    else:
        path = Path(source).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        is_glob = any(ch in source for ch in "*?[")
        folder, pattern = (None, str(path)) if is_glob else (path, None)
    if folder is not None:
        if not folder.is_dir():
            raise InputError(f"{field}: folder {folder} does not exist")
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        where = f"folder {folder}"
    else:
        files = [Path(p) for p in _glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        where = f"pattern {pattern}"
    files.sort(key=lambda p: p.name)
    if not files:
        raise InputError(f"{field}: {where} holds no image files "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    return files[:count] if count is not None else files


def read_rgb(path: str | Path) -> Image.Image:
    """Read one image file, fully decoded, as an RGB PIL image.

    :raises InputError: If the file cannot be read as an image (naming the file).
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(f"{path}: cannot read image ({type(err).__name__}: {err})") from None


def load_image(path: str | Path, size: int, *, center_crop: bool = True) -> torch.Tensor:
    """Read one image as RGB, square it and resize it.

    :param path: Image file.
    :param size: Output side in pixels.
    :param center_crop: Crop the largest centred square first (else resize the whole image,
        changing its aspect ratio).
    :output image: [3, size, size], float32 in [0, 1].
    :raises InputError: If the file cannot be read as an image.
    """
    path = Path(path)
    rgb = read_rgb(path)
    if min(rgb.size) < 8:
        raise InputError(f"{path}: image is {rgb.size[0]}x{rgb.size[1]} pixels; need at least 8x8")
    if center_crop:
        w, h = rgb.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side))
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_images(source: str, size: int, *, count: int | None = None, center_crop: bool = True,
                base_dir: str | Path | None = None, field: str = "images.source"
                ) -> tuple[torch.Tensor, list[str]]:
    """Load an image set (``source``, ``base_dir``, ``count``, ``field``: as :func:`list_images`).

    :output images: [num_images, 3, size, size], float32 in [0, 1].
    :output names: File names (no folder), in the same order.
    """
    files = list_images(source, base_dir=base_dir, count=count, field=field)
    images = torch.stack([load_image(p, size, center_crop=center_crop) for p in files])
    return images, [p.name for p in files]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8 (rounded, clipped)."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def writable_format(path: str | Path) -> str:
    """The Pillow format a file named ``path`` is written in (from its suffix).

    :raises ValueError: If Pillow knows no format it can write for that suffix.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path}: no image format for the suffix {path.suffix!r}")
    return fmt


def save_image(image: torch.Tensor, path: str | Path) -> None:
    """Write a [3, H, W] float image in [0, 1] as PNG (or the format of ``path``'s suffix).

    The file appears whole or not at all (written beside it, then renamed): a run killed while
    saving, or two Ray workers saving the same original, never leave a truncated image.

    :raises ValueError: As :func:`writable_format`.
    """
    path = Path(path)
    fmt = writable_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(to_uint8(image)).save(tmp, format=fmt)
    os.replace(tmp, path)
