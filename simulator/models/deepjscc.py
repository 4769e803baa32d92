"""DeepJSCC: a convolutional autoencoder trained through the channel (Bourtsoulatze, Kurka and
Gunduz, "Deep joint source-channel coding for wireless image transmission", 2019).

As published (32 px CIFAR): 5x5 convolutions with PReLU, two stride-2 stages, a last layer whose
channels set the bandwidth ratio, average power normalisation, the channel, and a mirrored
decoder of transposed convolutions ending in a sigmoid. semlink extends it to the paper's
budgets: ``stages`` stride-2 stages (5 by default: 1/32 of the side, like the semantic encoder),
so ``channels`` x (H/32) x (W/32) reals leave the encoder - 9 channels give 2304 reals = 1152
complex channel uses at 512 px and 288 at 256 px, the semantic link's budgets. Consecutive pairs
of reals form one complex symbol; each image's symbols are scaled to unit average power
(E|x|^2 = 1, the convention of every semlink link). The network is fully convolutional: one
trained model serves every image size that is a multiple of ``2 ** stages``.

``shortcut=True`` (semlink's addition, used by the shipped ``small`` preset) adds a linear path
beside each convolution stack: at the encoder, the image average-pooled to ``1 / 2^(stages-2)``
of its side, rearranged into 48 channels at ``1 / 2^stages`` (pixel unshuffle by 4) and mixed by
a 1x1 convolution into the ``channels``, added to the stack's output; at the decoder, a 1x1
convolution back to 48 channels, pixel shuffle, bilinear upsampling to the image size, added
(times 4, the sigmoid's inverse slope at 1/2) to the logits before the sigmoid. The pair alone
is a linear thumbnail codec, so training starts from a sensible reconstruction and the stacks
learn the residual; at these bandwidths (0.29 % of the image's reals) the plain network sits on
the mean colour for hundreds of steps first (docs/deepjscc.md).

Example::

    >>> import torch
    >>> model = DeepJSCC(channels=9, features=16)
    >>> with torch.no_grad():
    ...     x = model.encode(torch.rand(2, 3, 64, 64))
    >>> x.shape, x.dtype, round(float(x.abs().pow(2).mean()), 4)
    (torch.Size([2, 18]), torch.complex64, 1.0)
    >>> model.decode(x, (64, 64)).shape
    torch.Size([2, 3, 64, 64])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semlink.channels._checks import check_int, check_type

__all__ = ["DEEPJSCC_PRESET", "DeepJSCC", "deepjscc_channel_uses"]

KERNEL = 5  # the published 5x5 convolutions
_SHORTCUT_SHUFFLE = 4  # the shortcut's pixel (un)shuffle factor: 3 * 4 * 4 = 48 channels
_SHORTCUT_GAIN = 4.0   # 1 / sigmoid'(0): the shortcut adds to the logits as to the image
#: The ``preset`` name in the metadata of DeepJSCC bundles (:mod:`semlink.models.bundle`).
DEEPJSCC_PRESET = "deepjscc"


def deepjscc_channel_uses(height: int, width: int, *, channels: int, stages: int = 5) -> int:
    """Complex channel uses of one image: ``channels * (H / 2^stages) * (W / 2^stages) / 2``.

    >>> deepjscc_channel_uses(512, 512, channels=9), deepjscc_channel_uses(256, 256, channels=9)
    (1152, 288)
    """
    side = 2 ** stages
    if height % side or width % side:
        raise ValueError(f"image {height}x{width} px: both sides must be multiples of {side} "
                         f"(DeepJSCC's {stages} stride-2 stages)")
    reals = channels * (height // side) * (width // side)
    if reals % 2:
        raise ValueError(f"{reals} reals per image cannot be paired into complex symbols; use an "
                         "even number of channels or other sides")
    return reals // 2


def _widths(features: int | Sequence[int], stages: int) -> list[int]:
    """Channels of each stride-2 stage, from the image inwards."""
    if isinstance(features, int) and not isinstance(features, bool):
        features = [features] * stages
    check_type(features, (list, tuple), name="features")
    widths = list(features)
    if len(widths) != stages or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                        for w in widths):
        raise ValueError(f"`features` must be an int >= 1 or {stages} of them (one per stage); "
                         f"got {features!r}.")
    return widths


def _conv(cin: int, cout: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, KERNEL, stride=stride, padding=KERNEL // 2)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    # stride 2, output_padding 1: exactly twice the input side
    return nn.ConvTranspose2d(cin, cout, KERNEL, stride=2, padding=KERNEL // 2, output_padding=1)


class DeepJSCC(nn.Module):
    """DeepJSCC encoder and decoder (the channel sits between :meth:`encode` and :meth:`decode`).

    :param channels: int >= 1; channels of the encoder's last layer (the bandwidth), default 9.
    :param features: int >= 1, or one int per stage from the image inwards; channels of the
        hidden layers (the stride-1 layers take the innermost stage's), default 64. Growing
        widths put the capacity where the arithmetic is cheap.
    :param stages: int in [1, 8]; stride-2 stages (the side shrinks by ``2 ** stages``), default 5.
    :param extra_layers: int >= 0; stride-1 layers after the stages on each side, default 2
        (the published five layers are two stride-2 and three stride-1).
    :param shortcut: bool; add the linear thumbnail path beside both stacks (module docstring),
        default False (the published network). Needs ``stages >= 2``.
    :input images: [batch, 3, height, width], float in [0, 1]; sides multiples of ``2 ** stages``.
    :output images_hat: [batch, 3, height, width], float32 in (0, 1).
    """

    def __init__(self, *, channels: int = 9, features: int | Sequence[int] = 64, stages: int = 5,
                 extra_layers: int = 2, shortcut: bool = False) -> None:
        super().__init__()
        self.channels = check_int(channels, name="channels", low=1)
        self.stages = check_int(stages, name="stages", low=1, high=8)
        self.extra_layers = check_int(extra_layers, name="extra_layers", low=0)
        check_type(shortcut, bool, name="shortcut")
        self.shortcut = shortcut
        if shortcut and stages < 2:
            raise ValueError(f"`shortcut` needs stages >= 2 (it pools by 2^(stages-2) and "
                             f"unshuffles by 4); got stages={stages}.")
        widths = _widths(features, stages)
        self.features = widths[0] if len(set(widths)) == 1 else list(widths)
        enc: list[nn.Module] = []
        cin = 3
        for width in widths:
            enc += [_conv(cin, width, 2), nn.PReLU(width)]
            cin = width
        for _ in range(extra_layers):
            enc += [_conv(cin, cin, 1), nn.PReLU(cin)]
        enc.append(_conv(cin, channels, 1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [_conv(channels, cin, 1), nn.PReLU(cin)]
        for _ in range(extra_layers):
            dec += [_conv(cin, cin, 1), nn.PReLU(cin)]
        for i in reversed(range(stages)):
            cout = 3 if i == 0 else widths[i - 1]
            dec.append(_deconv(cin, cout))
            dec.append(nn.Sigmoid() if i == 0 else nn.PReLU(cout))
            cin = cout
        self.decoder = nn.Sequential(*dec)
        if shortcut:
            thumb = 3 * _SHORTCUT_SHUFFLE ** 2
            self.encoder_shortcut = nn.Conv2d(thumb, channels, 1)
            self.decoder_shortcut = nn.Conv2d(channels, thumb, 1)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``DeepJSCC(**config)`` rebuilds the network.
        ``shortcut`` appears only when true, so the published network's config (and the bundles
        written before it existed) stay as they were."""
        config = {"channels": self.channels, "features": self.features, "stages": self.stages,
                  "extra_layers": self.extra_layers}
        return {**config, "shortcut": True} if self.shortcut else config

    def channel_uses(self, height: int, width: int) -> int:
        """Complex channel uses of one ``height`` x ``width`` image (:func:`deepjscc_channel_uses`)."""
        return deepjscc_channel_uses(height, width, channels=self.channels, stages=self.stages)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the encoder's output for one image: ``(channels, H / 2^stages, W / 2^stages)``."""
        self.channel_uses(height, width)  # checks the sides
        side = 2 ** self.stages
        return self.channels, height // side, width // side

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images to unit-power complex symbols.

        :input images: [batch, 3, height, width], float in [0, 1].
        :output x: [batch, channel_uses], complex64; ``mean |x|^2 = 1`` per image.
        :raises ValueError: If ``images`` is not [batch, 3, H, W] with sides multiples of
            ``2 ** stages``.
        """
        check_type(images, torch.Tensor, name="images")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"`images` must be [batch, 3, height, width]; got {tuple(images.shape)}.")
        self.channel_uses(images.shape[2], images.shape[3])
        centred = images.float() - 0.5
        z = self.encoder(centred)                                   # [batch, C, h, w]
        if self.shortcut:
            thumb = F.avg_pool2d(centred, 2 ** self.stages // _SHORTCUT_SHUFFLE)
            z = z + self.encoder_shortcut(F.pixel_unshuffle(thumb, _SHORTCUT_SHUFFLE))
        pairs = z.reshape(z.shape[0], -1, 2)                        # [batch, n, 2]
        x = torch.complex(pairs[..., 0], pairs[..., 1])             # [batch, n]
        power = x.abs().pow(2).mean(dim=1, keepdim=True)
        return x / power.clamp_min(1e-12).sqrt()

    def decode(self, x_hat: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Received (equalised) symbols to images.

        :param image_size: (height, width) of the images sent, px.
        :input x_hat: [batch, channel_uses], complex.
        :output images: [batch, 3, height, width], float32 in (0, 1).
        :raises ValueError: If ``x_hat`` does not hold this size's channel uses.
        """
        check_type(x_hat, torch.Tensor, name="x_hat")
        shape = self.latent_shape(*image_size)
        uses = shape[0] * shape[1] * shape[2] // 2
        if x_hat.dim() != 2 or x_hat.shape[1] != uses or not x_hat.is_complex():
            raise ValueError(f"`x_hat` must be [batch, {uses}] complex for {image_size[0]}x"
                             f"{image_size[1]} px; got {tuple(x_hat.shape)} {x_hat.dtype}.")
        z = torch.view_as_real(x_hat.to(torch.complex64)).reshape(x_hat.shape[0], *shape)
        if not self.shortcut:
            return self.decoder(z).float()
        logits = self.decoder[:-1](z)                               # before the sigmoid
        thumb = F.pixel_shuffle(self.decoder_shortcut(z), _SHORTCUT_SHUFFLE)
        thumb = F.interpolate(thumb, size=tuple(image_size), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits + _SHORTCUT_GAIN * thumb).float()

    def forward(self, images: torch.Tensor, channel: Any, snr_db: torch.Tensor | float
                ) -> torch.Tensor:
        """``decode(channel(encode(images), snr_db))``: the whole link, differentiable where the
        channel is (AWGN and the fading channels' equalisation are).

        :param channel: A semlink channel, ``x_hat, no_eff = channel(x, snr_db)``.
        :input snr_db: float or [batch]; Es/N0 in dB.
        """
        x = self.encode(images)
        x_hat, _ = channel(x, snr_db)
        return self.decode(x_hat, (images.shape[2], images.shape[3]))
