"""Full-reference pixel metrics per image: PSNR, SSIM and MS-SSIM on 8-bit images.

All three quantise both images to 8 bits first (:func:`quantize_8bit`), then call
torchmetrics' functional API with ``data_range=1.0`` and no reduction, so the numbers equal
those of tools that read 8-bit PNG files. They run on the images' device.

PSNR is computed in float64. SSIM and MS-SSIM take ``precision``: "double" (default; exact
to ~1e-12) or "single" (float32, as torchmetrics and pytorch-msssim usually run: errors up to
~6e-5 on photos, from the ``E[x^2] - E[x]^2`` variances; about 40x faster on CPU, where
float64 convolutions take a slow path: ~5 s per 512 x 512 image on a shared 2-core machine).
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from semlink.channels._checks import check_int, check_one_of
from semlink.metrics._images import check_image_pair, quantize_8bit

__all__ = ["MS_SSIM_BETAS", "psnr_db", "ssim", "ms_ssim", "ms_ssim_max_scales"]

#: Scale weights of Wang, Simoncelli & Bovik (2003), finest scale first.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_DTYPES = {"single": torch.float32, "double": torch.float64}
_KERNEL = 11  # Gaussian window of Wang et al. (2004): 11 x 11, sigma 1.5
_SIGMA = 1.5


def psnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, on 8-bit images (peak 255).

    ``10 log10(255^2 / MSE)`` with the MSE over all pixels and the 3 channels of each image.

    :input x: [batch, 3, H, W], float in [0, 1]; reference.
    :input x_hat: Same shape and device as ``x``; reconstruction.
    :output psnr: [batch], float64, dB; ``inf`` where the 8-bit images are equal.
    :raises TypeError: If an input is not a floating tensor.
    :raises ValueError: If shapes or devices differ or the layout is not [batch, 3, H, W].

    >>> x = torch.zeros(1, 3, 4, 4)
    >>> psnr_db(x, x + 1 / 255)    # MSE of one 8-bit level
    tensor([48.1308], dtype=torch.float64)
    """
    check_image_pair(x, x_hat)
    ref, rec = quantize_8bit(x, torch.float64), quantize_8bit(x_hat, torch.float64)
    return peak_signal_noise_ratio(rec, ref, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(x: torch.Tensor, x_hat: torch.Tensor, *, precision: str = "double") -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, on 8-bit images.

    Gaussian window 11 x 11 with sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range 255. As in
    torchmetrics, each image is reflect-padded by 5 pixels (``torch.nn.functional.pad``
    mode ``"reflect"``: edge pixel not repeated) so the SSIM map has the image's size; the
    result is the mean of the map over pixels and channels.

    :param precision: "double" (default, float64) or "single" (float32; see module docstring).
    :input x: [batch, 3, H, W], float in [0, 1]; reference; H, W >= 6.
    :input x_hat: Same shape and device as ``x``; reconstruction.
    :output ssim: [batch], float64 or float32 per ``precision``, in [-1, 1]; 1 for equal images.
    :raises TypeError: If an input is not a floating tensor.
    :raises ValueError: If shapes or devices differ, the layout is wrong, H or W < 6, or
        ``precision`` is unknown.
    """
    check_one_of(precision, _DTYPES, name="precision")
    check_image_pair(x, x_hat)
    if min(x.shape[-2:]) <= _KERNEL // 2:
        raise ValueError(f"`x` must be at least 6 x 6 pixels for SSIM; got {tuple(x.shape)}.")
    ref, rec = quantize_8bit(x, _DTYPES[precision]), quantize_8bit(x_hat, _DTYPES[precision])
    return structural_similarity_index_measure(
        rec, ref, gaussian_kernel=True, sigma=_SIGMA, kernel_size=_KERNEL, reduction="none",
        data_range=1.0, k1=0.01, k2=0.03)


def ms_ssim_max_scales(height: int, width: int) -> int:
    """Most MS-SSIM scales an image of ``height`` x ``width`` pixels supports (0 if none).

    With ``s`` scales the image is halved ``s - 1`` times; torchmetrics requires each side
    ``>= 2**s`` and ``side // max(1, s - 1)**2 > 10`` (the 11-pixel window), and the
    coarsest scale needs more than 5 pixels a side for the reflect padding. 512 x 512 allows
    5 scales, 128 x 128 allows 4.
    """
    check_int(height, name="height", low=1)
    check_int(width, name="width", low=1)
    side = min(height, width)
    best = 0
    for s in range(1, len(MS_SSIM_BETAS) + 1):
        if (side >= 2 ** s and side // max(1, s - 1) ** 2 > _KERNEL - 1
                and side // 2 ** (s - 1) > _KERNEL // 2):
            best = s
    return best


def ms_ssim(x: torch.Tensor, x_hat: torch.Tensor, *, scales: int = 5,
            precision: str = "double") -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) per image, on 8-bit images.

    Same window and constants as :func:`ssim`; 2 x 2 average pooling between scales; negative
    per-scale terms are clipped to 0 (torchmetrics' ``normalize="relu"``) so the power is real.
    The standard metric uses 5 scales (needs images of at least 176 pixels a side). Smaller
    images need fewer ``scales`` (see :func:`ms_ssim_max_scales`); then the first ``scales``
    weights of :data:`MS_SSIM_BETAS` are used, rescaled to sum to 1. Such values are not
    comparable with 5-scale MS-SSIM.

    :param scales: int in [1, 5], default 5; number of scales.
    :param precision: "double" (default, float64) or "single" (float32; see module docstring).
    :input x: [batch, 3, H, W], float in [0, 1]; reference.
    :input x_hat: Same shape and device as ``x``; reconstruction.
    :output ms_ssim: [batch], float64 or float32 per ``precision``, in [0, 1]; 1 for equal
        images.
    :raises TypeError: If an input is not a floating tensor or ``scales`` not an int.
    :raises ValueError: If shapes or devices differ, ``scales`` or ``precision`` is invalid,
        or the images are too small for ``scales`` scales.
    """
    check_int(scales, name="scales", low=1, high=len(MS_SSIM_BETAS))
    check_one_of(precision, _DTYPES, name="precision")
    check_image_pair(x, x_hat)
    height, width = x.shape[-2:]
    max_scales = ms_ssim_max_scales(height, width)
    if max_scales == 0:
        raise ValueError(f"`x` of {height} x {width} pixels is too small for MS-SSIM; use `ssim`.")
    if scales > max_scales:
        raise ValueError(
            f"`x` of {height} x {width} pixels is too small for MS-SSIM with {scales} scales; "
            f"it allows at most {max_scales} (pass `scales={max_scales}`; not comparable with "
            "5-scale values).")
    betas = MS_SSIM_BETAS[:scales]
    total = sum(betas)
    betas = tuple(b / total for b in betas)
    ref, rec = quantize_8bit(x, _DTYPES[precision]), quantize_8bit(x_hat, _DTYPES[precision])
    return multiscale_structural_similarity_index_measure(
        rec, ref, gaussian_kernel=True, sigma=_SIGMA, kernel_size=_KERNEL, reduction="none",
        data_range=1.0, k1=0.01, k2=0.03, betas=betas, normalize="relu")
