"""The embedding stage B is trained on: Z through a noisy channel (the paper), or Z itself."""
from __future__ import annotations

import torch

from semlink.modulation.analog import AnalogDemapper, AnalogMapper, estimate_symbols
from semlink.channel import build_channel
from semlink.training.config import ConditioningConfig

__all__ = ["NoisyConditioning"]


class NoisyConditioning:
    """Z -> Zhat for training: analog mapping, channel at random SNRs, the receiver's symbol
    estimate, demapping, random drops.

    Differentiable in Z (the encoder can learn through it). All draws (SNRs, channel noise and
    fading, drops) come from ``generator``, which the training loop reseeds every step.

    :param config: The phase's conditioning settings.
    :param shape: (channels, h, w) of one embedding.
    :param generator: ``torch.Generator`` on ``device``.
    :param device: Torch device string.
    :input z: [batch, *shape], float.
    :output zhat: [batch, *shape], float32; rows dropped to zeros with probability
        ``config.drop_prob``.
    :output snr_db: [batch], float32; the SNR drawn per row (NaN with ``noise: none``).
    """

    def __init__(self, config: ConditioningConfig, *, shape: tuple[int, int, int],
                 generator: torch.Generator, device: str) -> None:
        self.config = config
        self.generator = generator
        self.device = device
        self._channel = None
        if config.noise == "channel":
            self._mapper = AnalogMapper(shape=tuple(shape), device=device)
            self._demapper = AnalogDemapper(shape=tuple(shape), device=device)
            self._channel = build_channel(config.channel, generator=generator, device=device)

    def __call__(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = z.shape[0]
        z = z.float()
        cfg = self.config
        if self._channel is not None:
            u = torch.rand(batch, generator=self.generator, device=z.device)
            snr_db = cfg.snr_min_db + (cfg.snr_max_db - cfg.snr_min_db) * u     # [batch]
            x, scale = self._mapper(z)                                           # [batch, n]
            x_hat, no_eff = self._channel(x, snr_db)
            x_hat = estimate_symbols(x_hat, no_eff, cfg.estimate or "none")
            zhat = self._demapper(x_hat, scale).float()                          # [batch, *shape]
        else:
            snr_db = torch.full((batch,), float("nan"), device=z.device)
            zhat = z
        if cfg.drop_prob > 0:
            keep = torch.rand(batch, generator=self.generator, device=z.device) >= cfg.drop_prob
            zhat = zhat * keep.view(batch, 1, 1, 1).to(zhat.dtype)
        return zhat, snr_db
