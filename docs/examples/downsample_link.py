"""A user's link for semlink (docs/user-links.md): the image average-pooled by ``factor``, its
values sent as analog symbols (two per complex symbol, unit power per image), and the received
values upsampled back to the image's size."""
import torch
import torch.nn.functional as F

from semlink.links.protocol import Dimensionality, Transmitted


class DownsampleLink:
    """``type: python``, ``class: downsample_link:DownsampleLink``, ``options: {factor: F}``."""

    def __init__(self, context, *, factor=8):
        height, width = context.image_shape
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1 \
                or height % factor or width % factor:
            raise ValueError(f"factor must be an int >= 1 dividing {height} and {width}; "
                             f"got {factor!r}")
        self.factor = factor
        self.image_shape = (height, width)
        self.sent_shape = (3, height // factor, width // factor)
        self.values = 3 * (height // factor) * (width // factor)
        self.channel_uses = (self.values + 1) // 2  # two real values per complex symbol

    def dimensionality(self):
        return Dimensionality(self.sent_shape, self.image_shape, self.channel_uses,
                              "pooled pixels, analog")

    def transmit(self, images, channel, snr_db, generators):
        small = F.avg_pool2d(images, self.factor)                 # [batch, 3, h, w]
        values = F.pad(small.flatten(1) - 0.5, (0, 2 * self.channel_uses - self.values))
        x = torch.complex(values[:, 0::2], values[:, 1::2])        # [batch, channel_uses]
        # The scale (each image's RMS symbol) is side information, as the semantic link's.
        scale = x.abs().square().mean(1, keepdim=True).sqrt().clamp_min(1e-6)
        x_hat, _ = channel(x / scale, snr_db)
        received = torch.stack([x_hat.real, x_hat.imag], dim=-1).flatten(1) * scale
        small_hat = (received[:, :self.values] + 0.5).reshape(small.shape).clamp(0, 1)
        recon = F.interpolate(small_hat, size=self.image_shape, mode="bilinear",
                              align_corners=False).clamp(0, 1)
        failed = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        mse = (small_hat - small).square().flatten(1).mean(1)   # [batch]
        return Transmitted(recon, failed, columns={"pooled_mse": mse})
