"""Checks and 8-bit quantisation shared by the image metrics."""
from __future__ import annotations

import torch

__all__ = ["check_images", "check_image_pair", "quantize_8bit"]


def check_images(x: torch.Tensor, *, name: str) -> None:
    """Raise unless ``x`` is a floating tensor ``[batch, 3, H, W]`` with ``batch >= 1``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor; got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"`{name}` must be a floating tensor in [0, 1]; got {x.dtype}.")
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 1:
        raise ValueError(f"`{name}` must have shape [batch >= 1, 3, H, W]; got {tuple(x.shape)}.")


def check_image_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    """Raise unless ``x`` and ``x_hat`` are image batches of one shape on one device."""
    check_images(x, name="x")
    check_images(x_hat, name="x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(
            f"`x` and `x_hat` must have the same shape; got {tuple(x.shape)} and {tuple(x_hat.shape)}.")
    if x.device != x_hat.device:
        raise ValueError(f"`x` and `x_hat` must be on one device; got {x.device} and {x_hat.device}.")


def quantize_8bit(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Round images to the 256 levels of an 8-bit file: ``round(clamp(x, 0, 1) * 255) / 255``.

    This is what saving a reconstruction as PNG and reading it back does; every metric in
    :mod:`semlink.metrics` scores images this way so numbers match file-based tools.

    :param dtype: Output dtype; None keeps ``x.dtype``.
    :input x: [...], float, nominally in [0, 1]; values outside are clipped.
    :output q: Same shape as ``x``; values k/255, k = 0..255.

    >>> quantize_8bit(torch.tensor([-0.1, 0.5, 0.999, 2.0]))
    tensor([0.0000, 0.5020, 1.0000, 1.0000])
    """
    out = x if dtype is None else x.to(dtype)
    return torch.round(out.clamp(0.0, 1.0) * 255.0) / 255.0
