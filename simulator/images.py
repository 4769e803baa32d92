"""Image sets: the bundled sample photos, a folder or a glob, loaded as float tensors in [0, 1].

Every file is read as an 8-bit RGB image, as a viewer shows it:

- EXIF orientation is applied (a photo taken upright is upright, whatever its pixel order).
- Transparency (RGBA, LA, palette or single-colour transparency) is composited over a white
  background: ``c * a + 255 * (1 - a)`` per channel with ``a`` in [0, 1], rounded; so fully
  transparent pixels are white, whatever RGB values they hold.
- High-bit-depth grayscale is scaled by its type's range, then rounded to 8 bits (everything
  downstream, codecs and metrics, works on 8-bit images): 16-bit (``I;16``, ``I;16B``...) divided
  by 65535; 32-bit integer (``I``) is read as 16-bit (0..65535; other values are refused, as no
  range can be justified for them); 32-bit float (``F``) must hold values in [0, 1], anything
  else (negative, above 1, NaN) is refused rather than guessed (a [0, 255] float image is not
  silently rescaled). 16-bit RGB(A) files are reduced to 8 bits by Pillow (their high byte).
- Grayscale becomes three equal channels; other modes (CMYK...) use Pillow's conversion.

One rule wherever an image is named (a scenario's ``images.source``, ``semlink transmit``,
training data): a file is an image when its suffix is one of :data:`IMAGE_SUFFIXES`, and it
must hold one still picture: an animated or multi-page file (APNG, animated WebP, multi-page
TIFF) is refused, not cut to its first frame; GIF is no suffix of an image.
"""
from __future__ import annotations

import contextlib
import errno
import glob as _glob
import os
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from semlink.errors import InputError, describe_error

__all__ = ["SAMPLE_DIR", "IMAGE_SUFFIXES", "list_images", "check_image_file", "read_rgb",
           "load_image", "load_images", "image_shape", "center_crop_box", "writable_format",
           "save_image", "to_uint8"]

#: The eight 512x512 photos shipped with semlink (licences in ``LICENSES.md`` there).
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(source: str, *, base_dir: str | Path | None = None,
                count: int | None = None, field: str = "images.source",
                unique_names: bool = True, at_most: bool = False) -> list[Path]:
    """Image files of ``source``, sorted by name.

    Results identify images by file name and saved reconstructions by name without suffix, so
    two files whose names differ only in folder, suffix or case (``x/a.png``, ``y/a.png``,
    ``a.jpg``) are refused rather than overwriting each other or ordered by chance.

    :param source: ``"sample"`` (the bundled photos), a folder, a glob pattern such as
        ``photos/*.jpg``, or one image file; relative paths are relative to ``base_dir``.
    :param base_dir: Folder that relative paths start from (the scenario file's folder).
    :param count: Keep the first ``count`` files; fewer there is an error (a run on fewer
        images than asked for would compare with numbers it is not comparable to) unless
        ``at_most``.
    :param field: Where ``source`` came from, to name in errors (a scenario's
        ``images.source``, a training config's ``data.source``, a command's argument).
    :param unique_names: Refuse two files of one name (default). Training data, which is never
        named in results, passes False; files of one name are then ordered by their path.
    :param at_most: ``count`` is an upper bound (training data: "use at most this many").
    :raises InputError: If the folder does not exist, holds no image files or fewer than
        ``count``, or two files share a name (without suffix, ignoring case).
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
    if source != "sample" and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        folder, pattern = None, _glob.escape(str(path))  # one image: a pattern matching it
    if folder is not None:
        if folder.is_file():
            raise InputError(f"{field}: {folder} is not an image file "
                             f"({', '.join(IMAGE_SUFFIXES)}) nor a folder")
        if not folder.is_dir():
            raise InputError(f"{field}: {_why_not_a_folder(folder)}")
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        where = f"folder {folder}"
    else:
        files = [Path(p) for p in _glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        where = f"pattern {pattern}"
    if not files:
        raise InputError(f"{field}: {where} holds no image files "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    seen: dict[str, Path] = {}
    for p in sorted(files, key=str):  # which pair is named does not depend on the filesystem
        other = seen.setdefault(p.stem.casefold(), p)
        if other is not p and unique_names:
            raise InputError(f"{field}: {where} holds two images named {p.stem!r} ({other} and {p});"
                             " results and saved reconstructions identify images by file name"
                             " (without suffix, ignoring case), so names must be unique")
    files.sort(key=lambda p: (p.name, str(p)))  # fully determined, whatever the filesystem
    if count is not None and len(files) < count and not at_most:
        count_field = field.rsplit(".", 1)[0] + ".count" if "." in field else "count"
        raise InputError(f"{field}: {where} holds {len(files)} image file(s), fewer than "
                         f"{count_field} {count}; add images, or pass --set "
                         f"{count_field}={len(files)}")
    return files[:count] if count is not None else files


def _why_not_a_folder(path: Path, what: str = "folder") -> str:
    """Why ``path`` (a ``what``), neither a folder nor a regular file, holds no images."""
    try:
        path.stat()
    except FileNotFoundError:
        return f"{what} {path} does not exist"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{path}: a symlink loop (its links lead back to themselves)"
        return f"{path}: {err.strerror or err}"
    return f"{path} is not a regular file or folder (a device, pipe or socket)"


def check_image_file(path: str | Path) -> None:
    """Refuse a file that is no image by the module's rule: a suffix of :data:`IMAGE_SUFFIXES`
    (which :func:`list_images` keeps) and a regular file.

    :raises InputError: Naming the file and what is wrong.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: not an image file semlink reads (suffixes "
                         f"{', '.join(IMAGE_SUFFIXES)}); save it as PNG")
    if not path.is_file():
        raise InputError(_why_not_a_folder(path, "file"))


def read_rgb(path: str | Path) -> Image.Image:
    """Read one image file, fully decoded, as an 8-bit RGB PIL image, as a viewer shows it
    (orientation, transparency and bit depth: see the module docstring).

    :raises InputError: If the file is no image by :func:`check_image_file`, holds more than
        one frame (animated or multi-page), cannot be read as an image, or is a 32-bit integer
        or float image whose values are out of range (naming the file).
    """
    check_image_file(path)
    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise InputError(f"{path}: holds {frames} frames (animated or multi-page); "
                                 "semlink sends still images: save the frame to send as PNG")
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # as viewers show it
            if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                return _gray_to_rgb(im, path)
            if im.has_transparency_data:
                return _over_white(im.convert("RGBA"))
            return im.convert("RGB")
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(f"{path}: cannot read image ({describe_error(err)})") from None


def _gray_to_rgb(im: Image.Image, path: str | Path) -> Image.Image:
    """A 16-bit, 32-bit integer or float grayscale image, scaled to [0, 1] by its type's range
    (module docstring), single-value transparency over white, as 8-bit RGB."""
    values = np.asarray(im)  # [H, W] uint16, int32 or float32
    if im.mode == "F":
        if np.isnan(values).any():
            raise InputError(f"{path}: float image holds NaN; need values in [0, 1]")
        if values.min() < 0 or values.max() > 1:
            raise InputError(f"{path}: float image holds values in [{values.min():g}, "
                             f"{values.max():g}]; need [0, 1] (divide a [0, 255] image by 255)")
        gray = values.astype(np.float64)
    else:
        if im.mode == "I" and (values.min() < 0 or values.max() > 65535):
            raise InputError(f"{path}: 32-bit integer image holds values in [{values.min()}, "
                             f"{values.max()}]; need 0..65535 (read as 16-bit)")
        gray = values.astype(np.float64) / 65535
        transparency = im.info.get("transparency")
        if isinstance(transparency, int):  # PNG tRNS: this gray value is fully transparent
            gray[values == transparency] = 1.0
    return Image.fromarray(np.rint(gray * 255).astype(np.uint8), "L").convert("RGB")


def _over_white(rgba: Image.Image) -> Image.Image:
    """An RGBA image composited over white: ``c * a + 255 * (1 - a)``, rounded."""
    array = np.asarray(rgba, dtype=np.float64)  # [H, W, 4]
    alpha = array[..., 3:] / 255
    rgb = array[..., :3] * alpha + 255 * (1 - alpha)
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")


def load_image(path: str | Path, size: int | tuple[int, int], *,
               center_crop: bool = True) -> torch.Tensor:
    """Read one image as RGB (as :func:`read_rgb`), crop it to the output's shape and resize it.

    :param path: Image file.
    :param size: Output side in pixels (square), or ``(height, width)``.
    :param center_crop: Crop the largest centred region of the output's aspect ratio first
        (a square for a square output), else resize the whole image (changing its aspect ratio).
    :output image: [3, height, width], float32 in [0, 1].
    :raises InputError: As :func:`read_rgb`, or if the image is smaller than 8x8.
    """
    path = Path(path)
    height, width = image_shape(size)
    rgb = read_rgb(path)
    if min(rgb.size) < 8:
        raise InputError(f"{path}: image is {rgb.size[0]}x{rgb.size[1]} pixels; need at least 8x8")
    if center_crop:
        rgb = rgb.crop(center_crop_box(rgb.size, (width, height)))
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def image_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of ``size``: a side (square) or a ``(height, width)`` pair."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def center_crop_box(image_size: tuple[int, int], target_size: tuple[int, int]
                    ) -> tuple[int, int, int, int]:
    """Pillow box ``(left, top, right, bottom)`` of the largest centred region of an image of
    ``image_size = (width, height)`` with the aspect ratio of ``target_size = (width, height)``.

    The cropped side is rounded to the nearest pixel; a square target crops ``min(w, h)``.
    """
    w, h = image_size
    tw, th = target_size
    if w * th >= h * tw:  # wider than the target: keep the full height
        cw, ch = min(w, round(h * tw / th)), h
    else:
        cw, ch = w, min(h, round(w * th / tw))
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


def load_images(source: str, size: int | tuple[int, int], *, count: int | None = None,
                center_crop: bool = True, base_dir: str | Path | None = None,
                field: str = "images.source") -> tuple[torch.Tensor, list[str]]:
    """Load an image set (``source``, ``base_dir``, ``count``, ``field``: as :func:`list_images`;
    ``size``, ``center_crop``: as :func:`load_image`).

    :output images: [num_images, 3, height, width], float32 in [0, 1].
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
    saving, or two Ray workers (or two threads of one run) saving the same original, never
    leave a truncated image.

    :raises ValueError: As :func:`writable_format`.
    :raises OSError: If the file cannot be written; it names ``path``, not the temporary file.
    """
    path = Path(path)
    fmt = writable_format(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(image)).save(tmp, format=fmt)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):  # not there, or its folder is not one
            tmp.unlink()
        raise OSError(err.errno, f"cannot write image ({err.strerror or err})", str(path)) from None
