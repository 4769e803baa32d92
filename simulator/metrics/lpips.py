"""LPIPS v0.1 (Zhang et al. 2018), the learned perceptual distance, in plain torch.

Same computation as the ``lpips`` package (``lpips.LPIPS(net=..., version="0.1")``):
images in [0, 1] are mapped to [-1, 1], shifted and scaled per channel (the ScalingLayer),
passed through the ImageNet backbone (AlexNet or VGG16 ``features``); at 5 ReLU taps the
features are normalised to unit length over channels (``x / (|x| + 1e-10)``), the squared
difference of the two images' features is weighted by a learned 1 x 1 convolution
(``lin0``..``lin4``), averaged over space and summed over the 5 layers.

Weights come from two files, and never from the network:

* the linear heads from the installed ``lpips`` package (``lpips/weights/v0.1/alex.pth``,
  ``vgg.pth``; located without importing ``lpips``, whose import needs torchvision);
* the backbone from torchvision's ImageNet checkpoint (:data:`BACKBONE_FILES`), given as a
  path or found in the torch hub cache (``$TORCH_HOME/hub/checkpoints/``, by default
  ``~/.cache/torch/hub/checkpoints/``). The backbone modules use torchvision's parameter
  names (``features.0.weight``, ...) so the checkpoint loads as it is.

Without the backbone file LPIPS is unavailable: :class:`LPIPS` raises :class:`InputError`
naming the file and where to put it (:func:`lpips_unavailable_reason` says so without
raising). Random backbone weights are only used when asked for (``random_backbone=True``,
for tests); such values are not LPIPS.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from semlink.channels._checks import check_one_of, check_type
from semlink.errors import InputError
from semlink.metrics._checksum import file_sha256
from semlink.metrics._images import check_image_pair, quantize_8bit

__all__ = [
    "BACKBONE_FILES",
    "LPIPS",
    "backbone_search_dirs",
    "find_lpips_backbone",
    "lpips_heads_path",
    "lpips_unavailable_reason",
]

#: torchvision ImageNet checkpoints; the 8 hex digits are the start of the file's SHA-256.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}

_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_MIN_SIDE = {"alex": 32, "vgg": 16}  # smallest image the 5 taps are defined for
_SHIFT = (-0.030, -0.088, -0.188)  # lpips ScalingLayer
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips.normalize_tensor
_LPIPS_INSTALL = "install it with `pip install --no-deps lpips==0.1.4`"


def backbone_search_dirs() -> list[Path]:
    """Directories searched for a backbone file: torch's hub cache ``checkpoints`` folder
    (``torch.hub.get_dir()``, i.e. ``$TORCH_HOME/hub``) and ``~/.cache/torch/hub/checkpoints``."""
    dirs = [Path(torch.hub.get_dir()) / "checkpoints",
            Path.home() / ".cache" / "torch" / "hub" / "checkpoints"]
    return list(dict.fromkeys(dirs))


def find_lpips_backbone(net: str = "alex") -> Path | None:
    """Path of the ImageNet backbone checkpoint for ``net`` ("alex" or "vgg"), or None."""
    check_one_of(net, BACKBONE_FILES, name="net")
    for folder in backbone_search_dirs():
        path = folder / BACKBONE_FILES[net]
        if path.is_file():
            return path
    return None


def lpips_unavailable_reason(net: str = "alex") -> str | None:
    """None when LPIPS with ``net`` can be computed, else one line saying what is missing."""
    check_one_of(net, BACKBONE_FILES, name="net")
    try:
        lpips_heads_path(net)
    except InputError as err:
        return str(err)
    if find_lpips_backbone(net) is None:
        return _missing_backbone_message(net)
    return None


def lpips_heads_path(net: str = "alex") -> Path:
    """Path of the lpips v0.1 linear heads for ``net``, found without importing ``lpips``.

    :raises InputError: If the ``lpips`` package or its weight file is missing.
    """
    check_one_of(net, BACKBONE_FILES, name="net")
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"LPIPS needs the package lpips, which is not installed; {_LPIPS_INSTALL}.")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"
    if not path.is_file():
        raise InputError(f"LPIPS heads {path} are missing; {_LPIPS_INSTALL}.")
    return path


class _LinearHead(nn.Module):
    """lpips ``NetLinLayer`` in eval mode: ``model.0`` is its (inactive) dropout."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _Backbone(nn.Module):
    """torchvision ``alexnet().features`` / ``vgg16().features`` up to the last tapped ReLU."""

    def __init__(self, net: str) -> None:
        super().__init__()
        if net == "alex":
            layers: list[nn.Module] = [
                nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
                nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
                nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU()]
            self.taps = (1, 4, 7, 9, 11)
        else:
            layers, c_in = [], 3
            for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                         512, 512, 512):
                if item == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU()]
                    c_in = item
            self.taps = (3, 8, 15, 22, 29)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class LPIPS(nn.Module):
    """LPIPS v0.1 distance per image pair (lower = more similar; 0 for equal images).

    :param net: "alex" (default; the usual LPIPS) or "vgg".
    :param backbone_path: Path of the torchvision ImageNet checkpoint; None = search
        :func:`backbone_search_dirs` for :data:`BACKBONE_FILES` ``[net]``.
    :param heads_path: Path of the lpips v0.1 heads; None = the installed lpips package's.
    :param random_backbone: bool, default False; True uses random backbone weights (He
        normal, zero bias) drawn from ``generator`` instead of a checkpoint. For tests only.
    :param generator: torch.Generator on CPU for ``random_backbone``; None = torch's global RNG.
    :param verify_backbone: bool, default True; check the checkpoint's SHA-256 against the
        8 hex digits in its torchvision name (as ``torch.hub`` does).
    :param quantize: bool, default True; round inputs to 8 bits first (as when scoring PNGs).
    :input x: [batch, 3, H, W], float in [0, 1]; H, W >= 32 (alex) or 16 (vgg). On the
        module's device.
    :input x_hat: Same shape and device as ``x``.
    :output distance: [batch], float32, >= 0.
    :raises InputError: If the backbone or head file is missing, corrupt or does not fit.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If ``net`` is unknown or the images' shapes/devices are wrong.
    """

    def __init__(self, *, net: str = "alex", backbone_path: str | os.PathLike | None = None,
                 heads_path: str | os.PathLike | None = None, random_backbone: bool = False,
                 generator: torch.Generator | None = None, verify_backbone: bool = True,
                 quantize: bool = True) -> None:
        super().__init__()
        check_one_of(net, BACKBONE_FILES, name="net")
        for name, value in (("random_backbone", random_backbone),
                            ("verify_backbone", verify_backbone), ("quantize", quantize)):
            check_type(value, bool, name=name)
        if generator is not None:
            check_type(generator, torch.Generator, name="generator")
        if random_backbone and backbone_path is not None:
            raise ValueError("`backbone_path` must be None when `random_backbone` is True; "
                             f"got {str(backbone_path)!r}.")
        self.net_name = net
        self.quantize = quantize
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net = _Backbone(net)
        for i, c in enumerate(_CHANNELS[net]):
            self.add_module(f"lin{i}", _LinearHead(c))
        self._load_heads(Path(heads_path) if heads_path is not None else lpips_heads_path(net))
        if random_backbone:
            self._randomise_backbone(generator)
        else:
            if backbone_path is None:
                found = find_lpips_backbone(net)
                if found is None:
                    raise InputError(_missing_backbone_message(net))
                backbone_path = found
            self._load_backbone(Path(backbone_path), verify_backbone)
        self.requires_grad_(False)
        self.eval()

    @property
    def heads(self) -> list[nn.Module]:
        """The 5 linear heads ``lin0``..``lin4``."""
        return [getattr(self, f"lin{i}") for i in range(5)]

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        check_image_pair(x, x_hat)
        if x.device != self.shift.device:
            raise ValueError(f"`x` must be on the module's device {self.shift.device}; got {x.device}.")
        if min(x.shape[-2:]) < _MIN_SIDE[self.net_name]:
            raise ValueError(f"`x` must be at least {_MIN_SIDE[self.net_name]} pixels a side for "
                             f"LPIPS-{self.net_name}; got {tuple(x.shape)}.")
        dtype = self.shift.dtype
        both = torch.cat([x, x_hat]).to(dtype)  # [2 batch, 3, H, W]
        if self.quantize:
            both = quantize_8bit(both)
        both = (2.0 * both - 1.0 - self.shift) / self.scale
        batch = x.shape[0]
        total = torch.zeros(batch, dtype=dtype, device=x.device)
        for feat, head in zip(self.net(both), self.heads):
            unit = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            a, b = unit[:batch], unit[batch:]
            total = total + head((a - b).pow(2)).mean(dim=(2, 3))[:, 0]  # [batch]
        return total

    def _load_heads(self, path: Path) -> None:
        state = _torch_load(path, "LPIPS heads")
        expected = {f"lin{i}.model.1.weight" for i in range(5)}
        if set(state) != expected:
            raise InputError(f"LPIPS heads {path}: keys must be {sorted(expected)}; "
                             f"got {sorted(state)}.")
        for i, head in enumerate(self.heads):
            _copy_param(head.model[1].weight, state[f"lin{i}.model.1.weight"], path,
                        f"lin{i}.model.1.weight")

    def _load_backbone(self, path: Path, verify: bool) -> None:
        if not path.is_file():
            raise InputError(f"LPIPS backbone {path} does not exist; "
                             + _missing_backbone_message(self.net_name))
        if verify:
            prefix = BACKBONE_FILES[self.net_name].rsplit("-", 1)[1].split(".")[0]
            digest = file_sha256(path)
            if not digest.startswith(prefix):
                raise InputError(f"LPIPS backbone {path}: SHA-256 {digest} must start with "
                                 f"{prefix} (torchvision's {BACKBONE_FILES[self.net_name]}).")
        state = _torch_load(path, "LPIPS backbone")
        own = self.net.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise InputError(f"LPIPS backbone {path} lacks {missing[:4]}; it must be torchvision's "
                             f"{BACKBONE_FILES[self.net_name]}.")
        for key, param in own.items():
            _copy_param(param, state[key], path, key)

    def _randomise_backbone(self, generator: torch.Generator | None) -> None:
        with torch.no_grad():
            for layer in self.net.features:
                if isinstance(layer, nn.Conv2d):
                    fan_in = layer.weight[0].numel()
                    w = torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                    layer.weight.copy_(w)
                    layer.bias.zero_()


def _missing_backbone_message(net: str) -> str:
    dirs = " or ".join(str(d) for d in backbone_search_dirs())
    return (f"LPIPS-{net} is unavailable: the torchvision ImageNet backbone "
            f"{BACKBONE_FILES[net]} was not found; put it in {dirs} (the hub cache follows "
            f"$TORCH_HOME/hub/checkpoints) or pass `backbone_path`.")


def _torch_load(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise InputError(f"{what} {path}: cannot load ({err}).") from err
    if not isinstance(state, dict):
        raise InputError(f"{what} {path}: must hold a state dict; got {type(state).__name__}.")
    return state


def _copy_param(target: torch.Tensor, value: torch.Tensor, path: Path, key: str) -> None:
    if not isinstance(value, torch.Tensor) or value.shape != target.shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise InputError(f"{path}: `{key}` must have shape {tuple(target.shape)}; got {got}.")
    with torch.no_grad():
        target.copy_(value)
