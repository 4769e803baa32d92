"""Training images: a folder held in memory, deterministic random crops per step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semlink.channels._checks import check_int, check_type
from semlink.images import list_images, read_rgb

__all__ = ["TrainImages"]


def _read_rgb(path: Path) -> torch.Tensor:
    """[3, H, W] uint8 of one image file; InputError naming the file if unreadable."""
    rgb = read_rgb(path)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


class TrainImages:
    """Images of a folder (or glob), kept as uint8 in memory, served as random crops (or whole).

    :param source: Folder, glob pattern or ``"sample"``; see :func:`semlink.images.list_images`.
    :param size: int >= 32; crop side after resizing, px.
    :param min_crop: float in (0, 1]; smallest crop side as a fraction of the image's shorter side.
    :param flip: Random left-right flips.
    :param whole: Resize each whole image to ``size`` x ``size`` instead of cropping a square
        (its aspect ratio changes; ``min_crop`` is unused), as the paper resizes Cityscapes.
        The random draws per sample are the same either way.
    :param base_dir: Folder that a relative ``source`` starts from.
    :param count: Use at most the first ``count`` files (by name).
    :raises InputError: If the folder holds no images or an image cannot be read (images of
        any size are accepted; crops smaller than ``size`` are upscaled).
    """

    def __init__(self, source: str, *, size: int, min_crop: float = 0.6, flip: bool = True,
                 whole: bool = False, base_dir: str | Path | None = None,
                 count: int | None = None) -> None:
        check_type(source, str, name="source")
        check_int(size, name="size", low=32)
        check_type(min_crop, (int, float), name="min_crop")
        if not 0.0 < min_crop <= 1.0:
            raise ValueError(f"`min_crop` must be in (0, 1]; got {min_crop!r}.")
        check_type(flip, bool, name="flip")
        check_type(whole, bool, name="whole")
        self.files = list_images(source, base_dir=base_dir, count=count, field="data.source",
                                 unique_names=False, at_most=True)
        self.images = [_read_rgb(p) for p in self.files]   # each [3, H, W] uint8
        self.size = size
        self.min_crop = float(min_crop)
        self.flip = flip
        self.whole = whole

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, batch_size: int, generator: torch.Generator, *,
              device: torch.device | str = "cpu", size: int | None = None) -> torch.Tensor:
        """Draw ``batch_size`` random crops; every draw comes from ``generator`` (a CPU generator).

        Image indices are drawn with replacement; crop side, position and flip per sample (the
        crop's draws are made, and unused, with ``whole``).

        :param batch_size: int >= 1.
        :param generator: CPU ``torch.Generator``; the same state gives the same batch.
        :param device: Where the batch is returned.
        :param size: Crop side, px; None = the ``size`` given at construction.
        :output images: [batch_size, 3, size, size], float32 in [0, 1].
        """
        check_int(batch_size, name="batch_size", low=1)
        size = self.size if size is None else check_int(size, name="size", low=32)
        idx = torch.randint(len(self.images), (batch_size,), generator=generator)
        u = torch.rand(batch_size, 4, generator=generator, dtype=torch.float64)
        crops = []
        for i in range(batch_size):
            img = self.images[int(idx[i])]
            h, w = img.shape[-2:]
            short = min(h, w)
            side = max(1, round(short * (self.min_crop + (1 - self.min_crop) * float(u[i, 0]))))
            top = int(float(u[i, 1]) * (h - side + 1))
            left = int(float(u[i, 2]) * (w - side + 1))
            if self.whole:
                top, left, side_h, side_w = 0, 0, h, w
            else:
                side_h = side_w = side
            crop = img[:, top:top + side_h, left:left + side_w].to(device=device,
                                                                  dtype=torch.float32)
            if float(u[i, 3]) < 0.5 and self.flip:
                crop = crop.flip(-1)
            crops.append(crop)
        out = []
        for crop in crops:
            if tuple(crop.shape[-2:]) != (size, size):
                crop = F.interpolate(crop[None], size=(size, size), mode="bilinear",
                                     align_corners=False, antialias=True)[0]
            out.append(crop)
        return (torch.stack(out) / 255.0).clamp(0.0, 1.0)  # [batch, 3, size, size]
