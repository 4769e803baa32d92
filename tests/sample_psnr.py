"""Mean PSNR of a built image link on a set of images at some SNRs over AWGN, with the fixed
channel and per-image seeds the shipped presets' tests are measured with."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from semlink.channels.awgn import AWGNChannel
from semlink.metrics.quality import psnr_db
from semlink.seeding import make_generator


def mean_psnr_by_snr(link, images: torch.Tensor, snrs_db: Sequence[float] = (1.0, 20.0)
                     ) -> dict[float, float]:
    """``{snr_db: mean PSNR in dB}`` of ``link.transmit`` on ``images`` [batch, 3, H, W]: the
    channel seeded 11, image i's generators 100 + i at every SNR."""
    out = {}
    for snr_db in snrs_db:
        channel = AWGNChannel(generator=make_generator(11))
        gens = [make_generator(100 + i) for i in range(images.shape[0])]
        recon = link.transmit(images, channel, snr_db, lambda purpose: gens).images
        out[snr_db] = float(psnr_db(images, recon).mean())
    return out
