"""What semlink's image codecs share around Pillow: an image tensor as 8-bit pixels, and a
decode that reports a damaged file as a reason instead of raising."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from semlink.channels._checks import check_int, check_type
from semlink.errors import describe_error

__all__ = ["DecodedImage", "check_encoded", "decode_rgb", "to_uint8_hwc"]


@dataclass(frozen=True)
class DecodedImage:
    """Outcome of decoding a possibly damaged file (JPEG or JPEG2000).

    :param image: [3, height, width], float32 in [0, 1], on the CPU; None when ``failed``.
    :param failed: True if no image of the expected size came out.
    :param reason: Why it failed; "" when it did not.
    :param num_bytes_used: Bytes of the received file that were decoded (for a codec's
        ``decode_prefix``, the kept prefix without the end marker it appends); 0 when
        ``failed``.
    """

    image: torch.Tensor | None
    failed: bool
    reason: str
    num_bytes_used: int


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """8-bit pixels of an image, rounded, on the host (where the codecs run).

    :input image: [3, height, width], float in [0, 1].
    :output pixels: [height, width, 3] uint8, C-contiguous.
    :raises TypeError: If ``image`` is not a floating-point tensor.
    :raises ValueError: If its shape is not [3, H, W] or a value lies outside [0, 1] (NaN too).
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        got = image.dtype if isinstance(image, torch.Tensor) else type(image).__name__
        raise TypeError(f"`image` must be a floating-point tensor; got {got}.")
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"`image` must have shape [3, height, width]; got {tuple(image.shape)}.")
    host = image.detach().to("cpu", torch.float32).numpy()  # the codec runs on the host
    low, high = float(host.min()), float(host.max())
    if not (0.0 <= low and high <= 1.0):  # NaN fails too
        raise ValueError(f"`image` values must be in [0, 1]; got range [{low}, {high}].")
    return np.ascontiguousarray(np.rint(host * 255.0).astype(np.uint8).transpose(1, 2, 0))


def decode_rgb(data: bytes, *, image_format: str, height: int, width: int,
               errors: tuple[type[BaseException], ...], decoder: str
               ) -> tuple[torch.Tensor | None, str]:
    """Decode ``data`` with Pillow's ``image_format`` plugin as an RGB image of the given size.

    :param errors: The exceptions that mean "cannot decode" for this format (found by fuzzing
        each codec); any other exception propagates.
    :param decoder: Names the decoder in the reason (``"OpenJPEG"``, ``"Pillow"``).
    :output image: [3, height, width] float32 in [0, 1] on the CPU, or None.
    :output reason: Why there is no image (``""`` when there is one).
    """
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as im:
            im.load()
            if im.size != (width, height) or im.mode != "RGB":
                return None, (f"decoded a {im.mode} image of {im.size[1]}x{im.size[0]}, "
                              f"expected RGB {height}x{width}")
            pixels = np.asarray(im)  # [height, width, 3], uint8
    except errors as err:
        return None, f"{decoder} could not decode it ({describe_error(err)})"
    # NumPy, not torch: tiny torch ops cost ms each when the thread pool is oversubscribed.
    planar = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(planar / np.float32(255.0)), ""  # [3, height, width], float32


def check_encoded(data: bytes, height: int, width: int, *, name: str) -> bytes:
    """``data`` (a codestream or file, named ``name`` in messages) as bytes, and the image size
    it should decode to checked.

    :raises TypeError: If ``data`` is not bytes or the sides are not ints.
    :raises ValueError: If a side is below 1.
    """
    check_type(data, (bytes, bytearray), name=name)
    check_int(height, name="height", low=1)
    check_int(width, name="width", low=1)
    return bytes(data)
