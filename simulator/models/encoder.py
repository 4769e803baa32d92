"""Stable Cascade's semantic encoder: EfficientNetV2-S features, a 1x1 mapper and BatchNorm.

The transmitter of the semantic link. An image in [0, 1] is resized by ``resize_factor``
(0.75 in Stable Cascade), normalised with the ImageNet mean/std, passed through the
EfficientNetV2-S feature extractor (overall stride 32) and mapped to ``embedding_channels``
standardised channels: 512 px -> 384 px -> Z ``[16, 12, 12]``.

The backbone is plain torch (torchvision is not a dependency) but its parameter and buffer
names and shapes equal those of ``torchvision.models.efficientnet_v2_s().features``, so the
published ``effnet_encoder.safetensors`` (keys ``backbone.*`` and ``mapper.*``) loads with no
renaming; see :mod:`semlink.models.weights`.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semlink.channels._checks import check_in_range, check_int, check_positive, check_type

__all__ = ["SemanticEncoder", "EfficientNetV2Features", "efficientnet_v2_stages", "embedding_shape"]

# EfficientNetV2-S (Tan & Le 2021, table 4; torchvision's `_efficientnet_conf`):
# (fused, expand_ratio, kernel, stride, in_channels, out_channels, num_layers)
_V2_S_STAGES = (
    (True, 1, 3, 1, 24, 24, 2),
    (True, 4, 3, 2, 24, 48, 4),
    (True, 4, 3, 2, 48, 64, 4),
    (False, 4, 3, 2, 64, 128, 6),
    (False, 6, 3, 1, 128, 160, 9),
    (False, 6, 3, 2, 160, 256, 15),
)
_V2_S_LAST_CHANNELS = 1280
_BN_EPS = 1e-3
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_STRIDE = 32  # overall downsampling of the backbone


def embedding_shape(height: int, width: int, *, channels: int,
                    resize_factor: float) -> tuple[int, int, int]:
    """Shape ``(channels, h, w)`` of Z for an image of ``height`` x ``width`` pixels: the image
    resized by ``resize_factor`` (rounded half up), then one cell per 32 x 32 pixels (rounded
    up). What :meth:`SemanticEncoder.embedding_shape` gives, without building the encoder.

    >>> embedding_shape(512, 512, channels=16, resize_factor=0.75)
    (16, 12, 12)
    """
    h, w = (math.floor(side * resize_factor + 0.5) for side in (height, width))
    return channels, math.ceil(h / _STRIDE), math.ceil(w / _STRIDE)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (>= divisor), never more than 10 % down.

    Same rule as torchvision's ``_make_divisible`` (from the TensorFlow MobileNet code).
    """
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def efficientnet_v2_stages(width_mult: float = 1.0, depth_mult: float = 1.0
                           ) -> tuple[tuple[tuple[bool, int, int, int, int, int, int], ...], int]:
    """Stage table of an EfficientNetV2-S scaled by ``width_mult`` and ``depth_mult``.

    Channels become ``_make_divisible(c * width_mult, 8)``, layer counts
    ``ceil(n * depth_mult)`` (torchvision's rules, applied here to the fused stages too).

    :param width_mult: float > 0; channel multiplier.
    :param depth_mult: float > 0; layer-count multiplier.
    :output stages: Tuple of ``(fused, expand_ratio, kernel, stride, in_channels,
        out_channels, num_layers)`` per stage.
    :output last_channels: Channels of the final 1x1 head conv: 1280 at ``width_mult == 1``
        (EfficientNetV2-S), else ``4 * out_channels`` of the last stage (torchvision's rule when
        no ``last_channel`` is given).

    >>> stages, last = efficientnet_v2_stages()
    >>> [s[5] for s in stages], [s[6] for s in stages], last
    ([24, 48, 64, 128, 160, 256], [2, 4, 4, 6, 9, 15], 1280)
    >>> stages, last = efficientnet_v2_stages(0.25, 0.25)
    >>> [s[5] for s in stages], [s[6] for s in stages], last
    ([8, 16, 16, 32, 40, 64], [1, 1, 1, 2, 3, 4], 256)
    """
    stages = tuple(
        (fused, expand, kernel, stride, _make_divisible(c_in * width_mult),
         _make_divisible(c_out * width_mult), int(math.ceil(n * depth_mult)))
        for fused, expand, kernel, stride, c_in, c_out, n in _V2_S_STAGES)
    last = _V2_S_LAST_CHANNELS if width_mult == 1.0 else 4 * stages[-1][5]
    return stages, last


class _ConvBNAct(nn.Sequential):
    """Conv (no bias, 'same' padding) -> BatchNorm(eps 1e-3) -> optional SiLU.

    Keys ``0.weight``, ``1.{weight,bias,running_mean,running_var,num_batches_tracked}`` as
    torchvision's ``Conv2dNormActivation``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=_BN_EPS),
        ]
        if act:
            layers.append(nn.SiLU())
        super().__init__(*layers)


class _SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(silu(fc1(mean_hw(x))))); keys ``fc1.*``, ``fc2.*`` (1x1 convs with bias)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))  # [batch, channels, 1, 1]
        return x * self.scale_activation(s)


class _Block(nn.Module):
    """One (Fused)MBConv block: ``block`` (nn.Sequential) + residual with stochastic depth.

    Fused: [3x3 expand conv, 1x1 project] (or one 3x3 conv when ``expand_ratio == 1``).
    MBConv: [1x1 expand, 3x3 depthwise, squeeze-excitation (input_channels // 4), 1x1 project].
    The residual (stride 1, equal channels) drops the block output per sample with
    probability ``drop_prob`` in training mode ("row" stochastic depth), identity in eval.
    """

    def __init__(self, fused: bool, expand_ratio: int, kernel: int, stride: int, c_in: int,
                 c_out: int, drop_prob: float) -> None:
        super().__init__()
        c_mid = _make_divisible(c_in * expand_ratio)
        layers: list[nn.Module]
        if fused:
            if c_mid != c_in:
                layers = [_ConvBNAct(c_in, c_mid, kernel, stride),
                          _ConvBNAct(c_mid, c_out, 1, act=False)]
            else:
                layers = [_ConvBNAct(c_in, c_out, kernel, stride)]
        else:
            layers = [] if c_mid == c_in else [_ConvBNAct(c_in, c_mid, 1)]
            layers += [_ConvBNAct(c_mid, c_mid, kernel, stride, groups=c_mid),
                       _SqueezeExcitation(c_mid, max(1, c_in // 4)),
                       _ConvBNAct(c_mid, c_out, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and c_in == c_out
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        out = self.block(x)
        if not self.use_res_connect:
            return out
        if self.training and self.drop_prob > 0.0:
            keep = 1.0 - self.drop_prob
            mask = torch.empty((x.shape[0], 1, 1, 1), dtype=out.dtype, device=out.device)
            mask.bernoulli_(keep, generator=generator)
            out = out * mask / keep
        return out + x


class _Stage(nn.Sequential):
    """Blocks of one stage; passes the stochastic-depth generator to each."""

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for block in self:
            x = block(x, generator)
        return x


class EfficientNetV2Features(nn.Sequential):
    """EfficientNetV2-S feature extractor with torchvision's ``features`` layout.

    Index 0: stem 3x3 stride-2 conv -> 24 channels; 1..6: the six stages; 7: 1x1 head conv
    -> ``last_channels``; all convs bias-free, BatchNorm eps 1e-3, SiLU. Stochastic depth
    probability grows linearly over the blocks, ``stochastic_depth_prob * i / num_blocks``.

    :param width_mult: float > 0, default 1.0; see :func:`efficientnet_v2_stages`.
    :param depth_mult: float > 0, default 1.0; see :func:`efficientnet_v2_stages`.
    :param stochastic_depth_prob: float in [0, 1), default 0.2 (torchvision's value).
    :input x: [batch, 3, H, W], float, normalised pixels.
    :input generator: Optional ``torch.Generator`` on ``x``'s device for stochastic depth
        (training mode only).
    :output features: [batch, last_channels, ceil(H/32), ceil(W/32)], float.
    """

    def __init__(self, *, width_mult: float = 1.0, depth_mult: float = 1.0,
                 stochastic_depth_prob: float = 0.2) -> None:
        stages, last = efficientnet_v2_stages(width_mult, depth_mult)
        layers: list[nn.Module] = [_ConvBNAct(3, stages[0][4], 3, 2)]
        total = sum(s[6] for s in stages)
        block_id = 0
        for fused, expand, kernel, stride, c_in, c_out, n in stages:
            blocks = []
            for i in range(n):
                blocks.append(_Block(fused, expand, kernel, stride if i == 0 else 1,
                                     c_in if i == 0 else c_out, c_out,
                                     stochastic_depth_prob * block_id / total))
                block_id += 1
            layers.append(_Stage(*blocks))
        layers.append(_ConvBNAct(stages[-1][5], last, 1))
        super().__init__(*layers)
        self.out_channels = last
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's EfficientNet init: kaiming-normal (fan_out) convs, unit BN.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, generator) if isinstance(layer, _Stage) else layer(x)
        return x


class SemanticEncoder(nn.Module):
    """Stable Cascade's EfficientNet encoder: image -> semantic embedding Z.

    Resize (bilinear, antialiased) by ``resize_factor`` to ``round(H * resize_factor)`` x
    ``round(W * resize_factor)``, normalise with the ImageNet mean/std, run ``backbone``
    (:class:`EfficientNetV2Features`), then ``mapper`` = 1x1 conv (no bias) to
    ``embedding_channels`` + ``BatchNorm2d(affine=False)``, which standardises each channel with
    its running statistics. The state dict (``backbone.*``, ``mapper.*``) is the layout of
    Stable Cascade's ``effnet_encoder.safetensors``.

    With ``frozen=True`` (default; the paper never trains the encoder) parameters do not
    require gradients and the module stays in eval mode even when a parent calls
    ``.train()``, so BatchNorm always uses its running statistics and stochastic depth is off.

    :param width_mult: float in (0, 4], default 1.0; channel multiplier of the backbone (1.0 =
        EfficientNetV2-S; e.g. 0.25 for a small test model).
    :param depth_mult: float in (0, 4], default 1.0; layer-count multiplier (ceil).
    :param embedding_channels: int >= 1, default 16; channels of Z.
    :param resize_factor: float in (0, 1], default 0.75; image scale before the backbone.
    :param stochastic_depth_prob: float in [0, 1), default 0.2; only used in training mode with
        ``frozen=False``.
    :param frozen: bool, default True; see above.
    :param check_values: bool, default True; check that pixels lie in [0, 1] on every call
        (one device sync).
    :input images: [batch, 3, H, W], floating, in [0, 1]; resized side
        ``round(H * resize_factor)`` must be >= 32. Computed in the encoder's parameter dtype.
    :input generator: Optional keyword ``torch.Generator`` for stochastic depth (training only).
    :output z: [batch, embedding_channels, ceil(round(H*resize_factor)/32),
        ceil(round(W*resize_factor)/32)], parameter dtype, on the images' device; about zero mean
        and unit variance per channel with trained weights. 512 px -> [16, 12, 12];
        1024 px -> [16, 24, 24]; 1024 px with ``resize_factor=1.0`` -> [16, 32, 32].
    :raises TypeError: If ``images`` is not a floating tensor.
    :raises ValueError: If the shape is not [batch, 3, H, W], the image is too small, or (with
        ``check_values``) a pixel lies outside [0, 1] or is NaN.

    >>> enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25)
    >>> enc(torch.rand(2, 3, 512, 512)).shape
    torch.Size([2, 16, 12, 12])
    """

    def __init__(self, *, width_mult: float = 1.0, depth_mult: float = 1.0,
                 embedding_channels: int = 16, resize_factor: float = 0.75,
                 stochastic_depth_prob: float = 0.2, frozen: bool = True,
                 check_values: bool = True) -> None:
        super().__init__()
        for name, value in (("width_mult", width_mult), ("depth_mult", depth_mult),
                            ("resize_factor", resize_factor)):
            check_positive(value, name=name)
        check_in_range(width_mult, name="width_mult", high=4.0)
        check_in_range(depth_mult, name="depth_mult", high=4.0)
        check_in_range(resize_factor, name="resize_factor", high=1.0)
        check_int(embedding_channels, name="embedding_channels", low=1)
        check_type(stochastic_depth_prob, (int, float), name="stochastic_depth_prob")
        if not 0.0 <= stochastic_depth_prob < 1.0:
            raise ValueError(
                f"`stochastic_depth_prob` must be in [0, 1); got {stochastic_depth_prob!r}.")
        check_type(frozen, bool, name="frozen")
        check_type(check_values, bool, name="check_values")
        self._config: dict[str, Any] = {
            "width_mult": float(width_mult), "depth_mult": float(depth_mult),
            "embedding_channels": embedding_channels, "resize_factor": float(resize_factor),
            "stochastic_depth_prob": float(stochastic_depth_prob), "frozen": frozen,
            "check_values": check_values,
        }
        self.backbone = EfficientNetV2Features(width_mult=width_mult, depth_mult=depth_mult,
                                               stochastic_depth_prob=stochastic_depth_prob)
        self.mapper = nn.Sequential(
            nn.Conv2d(self.backbone.out_channels, embedding_channels, 1, bias=False),
            nn.BatchNorm2d(embedding_channels, affine=False),
        )
        if frozen:
            self.requires_grad_(False)
        self.train(not frozen)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable); ``SemanticEncoder(**enc.config)`` rebuilds it."""
        return dict(self._config)

    @property
    def min_image_size(self) -> int:
        """Smallest image side in pixels: the resized side must be >= 32."""
        rf = self._config["resize_factor"]
        n = math.ceil((_STRIDE - 0.5) / rf)
        while math.floor(n * rf + 0.5) < _STRIDE:
            n += 1
        return n

    def embedding_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape ``(embedding_channels, h, w)`` of Z for an image of ``height`` x ``width`` pixels."""
        return embedding_shape(height, width, channels=self._config["embedding_channels"],
                               resize_factor=self._config["resize_factor"])

    def train(self, mode: bool = True) -> SemanticEncoder:
        """Set training mode; a frozen encoder stays in eval mode."""
        return super().train(mode and not self._config["frozen"])

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        rf = self._config["resize_factor"]
        return math.floor(height * rf + 0.5), math.floor(width * rf + 0.5)

    def forward(self, images: torch.Tensor, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise TypeError(f"`images` must be a floating tensor in [0, 1]; got {got}.")
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
            raise ValueError(
                f"`images` must have shape [batch >= 1, 3, H, W]; got {tuple(images.shape)}.")
        height, width = images.shape[-2:]
        h, w = self._resized_size(height, width)
        if min(h, w) < _STRIDE:
            raise ValueError(
                f"`images` must be at least {self.min_image_size}x{self.min_image_size} pixels "
                f"(resized side >= {_STRIDE} at resize_factor "
                f"{self._config['resize_factor']}); got {height}x{width}.")
        if self._config["check_values"] and not bool(torch.all((images >= 0) & (images <= 1))):
            raise ValueError("`images` must lie in [0, 1] everywhere (no NaN).")
        # resize in at least float32: antialiased bilinear is not implemented for every dtype
        x = images.float() if images.dtype in (torch.float16, torch.bfloat16) else images
        if (h, w) != (height, width):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                              antialias=True)
        # ImageNet normalisation with Python scalars: no host->device copy, exact constants
        x = torch.cat([(x[:, c:c + 1] - m) / s
                       for c, (m, s) in enumerate(zip(_IMAGENET_MEAN, _IMAGENET_STD))], dim=1)
        x = x.to(self.mapper[0].weight.dtype)
        return self.mapper(self.backbone(x, generator))  # [batch, embedding_channels, h/32, w/32]
