"""Measure the table of docs/semantic-link.md: the analog receiver's symbol estimates, paired.

    .venv/bin/python docs/tables/analog_estimate_table.py [--repeats 4]

The shipped ``small`` preset on the 8 sample photos at 256 px, Z sent analog (288 channel uses
per image) over AWGN, Rayleigh fading with one coefficient per 32 symbols and per symbol
(zero-forcing, perfect CSI), and the OFDM TDL-C channel of ``scenarios/ofdm-tdl.yaml`` (LS
estimates); at each SNR ``repeats`` channel draws per image. The three estimates
(:func:`semlink.modulation.analog.estimate_symbols`: ``none``, ``lmmse``, ``noise-matched``) see the same
channel draws and sampler seeds, so their differences are not sampling noise. Prints Markdown:
mean PSNR (dB) per channel, SNR and estimate.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from semlink.modulation.analog import ANALOG_ESTIMATES, estimate_symbols  # noqa: E402
from semlink.channel import build_channel  # noqa: E402
from semlink.images import load_images  # noqa: E402
from semlink.links.semantic import SemanticLink  # noqa: E402
from semlink.metrics.quality import psnr_db  # noqa: E402
from semlink.scenario import (AnalogTransmission, AWGNConfig, OFDMConfig,  # noqa: E402
                                RayleighConfig)
from semlink.seeding import derive_seed, make_generator  # noqa: E402

SNRS_DB = (1.0, 5.0, 10.0, 20.0)
CHANNELS = {
    "AWGN": AWGNConfig(type="awgn"),
    "Rayleigh, 32 symbols per fade": RayleighConfig(type="rayleigh", coherence_symbols=32),
    "Rayleigh, fast": RayleighConfig(type="rayleigh"),
    "OFDM TDL-C 300 ns, LS": OFDMConfig(type="ofdm", model="tdl-c", delay_spread_s=300e-9,
                                        speed_mps=3.0, channel_estimation="ls",
                                        interpolation="lin"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    images, _ = load_images("sample", 256)
    link = SemanticLink(preset="small", image_size=256,
                        transmission=AnalogTransmission(mode="analog"), device="cpu")
    z = link.encode(images)
    x, scale = link._analog_mapper(z)
    print("| channel | SNR dB | " + " | ".join(ANALOG_ESTIMATES) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in ANALOG_ESTIMATES) + " |")
    for name, config in CHANNELS.items():
        for snr_db in SNRS_DB:
            psnr = {method: 0.0 for method in ANALOG_ESTIMATES}
            for repeat in range(args.repeats):
                channel = build_channel(config, device="cpu", generator=make_generator(
                    derive_seed(0, name, snr_db, repeat)))
                x_hat, no_eff = channel(x, snr_db)
                for method in ANALOG_ESTIMATES:
                    zhat = link._analog_demapper(estimate_symbols(x_hat, no_eff, method), scale)
                    gens = [make_generator(derive_seed(0, "sampler", i, repeat))
                            for i in range(len(images))]
                    recon = link.reconstruct(zhat, gens)
                    psnr[method] += float(psnr_db(images, recon).mean()) / args.repeats
            print(f"| {name} | {snr_db:g} | "
                  + " | ".join(f"{psnr[m]:.2f}" for m in ANALOG_ESTIMATES) + " |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
