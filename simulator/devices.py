"""Torch devices a run names: which names are accepted, what ``auto`` becomes on this machine, and
how a device, and the package versions that ran on it, are described in results files and
benchmark JSON."""
from __future__ import annotations

import platform

from semlink import __version__
from semlink.errors import InputError

__all__ = ["describe_device", "is_device_name", "package_versions", "resolve_device"]


def is_device_name(device: str) -> bool:
    """True for the device names a run accepts: ``auto``, ``cpu``, ``cuda`` and ``cuda:N``."""
    return device in ("auto", "cpu", "cuda") or (device.startswith("cuda:")
                                                  and device[5:].isdigit())


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; an unknown name or an unavailable
    CUDA device is an InputError."""
    import torch  # here, not at the top: the scenario schema checks names without loading torch
    if not is_device_name(device):
        raise InputError(f"device: must be auto, cpu, cuda or cuda:N; got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} requested but CUDA is not available here "
                         "(use device: auto or cpu)")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise InputError(f"device: {device!r} requested but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def describe_device(device: str) -> str:
    """A resolved device with what it is: ``cuda (NVIDIA H200)``, ``cpu (x86_64, 2 threads)``.

    The thread count is part of a CPU's description because it changes both speed and, for some
    kernels, the last bits of float32 results (docs/conventions.md).
    """
    import torch
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a result's numbers."""
    import importlib.metadata as md

    versions = {"semlink": __version__, "python": platform.python_version()}
    for dist in ("torch", "sionna-no-rt", "diffusers", "numpy", "scipy", "pillow",
                 "torchmetrics", "h5py"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions
