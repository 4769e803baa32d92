"""Measure the tables of docs/training.md: the trained `small` bundles on the sample photos.

    .venv/bin/python docs/tables/small_preset_table.py NOISY.safetensors NOISEFREE.safetensors \
        [--steps 1] [--guidance 1.0] [--grid docs/images/small-preset-grid.png]

Both bundles are evaluated with :func:`semlink.training.evaluate_bundle`: the 8 sample photos at
256 px, Z sent analog over AWGN at 1, 5, 10, 15 and 20 dB (Es/N0 per complex symbol), the same
channel and sampler seeds for both bundles, ``steps`` sampling steps and classifier-free
``guidance``. Prints the ablation table (PSNR / SSIM per SNR, and the best constant-colour image)
in Markdown and writes the image grid of the first (noise-trained) bundle.

``--choose`` first prints PSNR/SSIM of the noise-trained bundle on 16 training crops for a few
(steps, guidance) pairs at 10 dB: the sampler defaults of the preset were picked there, not on
the sample photos the acceptance is measured on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from semlink.metrics.quality import psnr_db, ssim  # noqa: E402
from semlink.models.bundle import read_bundle_info  # noqa: E402
from semlink.training import evaluate_bundle, load_trained_models  # noqa: E402
from semlink.training.data import TrainImages  # noqa: E402
from semlink.training.validation import reconstruct  # noqa: E402

SNRS_DB = (1, 5, 10, 15, 20)
TRAIN_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"


def choose(bundle: str) -> None:
    """PSNR/SSIM on 16 training crops (256 px) for a few sampler settings, at 10 dB."""
    models = load_trained_models(bundle)
    data = TrainImages(str(TRAIN_DIR), size=256, min_crop=1.0, flip=False)
    images = torch.cat([data.batch(1, torch.Generator().manual_seed(i)) for i in range(16)])
    print("| steps | guidance | PSNR (dB) | SSIM |\n| ---: | ---: | ---: | ---: |")
    for steps, guidance in [(1, 1.0), (4, 1.0), (10, 1.0), (4, 1.5), (10, 1.5), (10, 2.0)]:
        recon = reconstruct(models.encoder, models.stage_b, models.stage_a, images, 10.0,
                            scale_factor=models.scale_factor, steps=steps, guidance=guidance,
                            seed=5, prediction=models.prediction)
        print(f"| {steps} | {guidance} | {float(psnr_db(images, recon).mean()):.2f} | "
              f"{float(ssim(images, recon, precision='single').mean()):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("noisy")
    parser.add_argument("noisefree")
    parser.add_argument("--steps", type=int, default=1)  # the preset's, as the tables
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--grid", default=None, help="PNG of the noise-trained bundle's images")
    parser.add_argument("--choose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.choose:
        choose(args.noisy)
    tic = time.perf_counter()
    tables = {}
    for name, bundle, grid in (("noise-trained", args.noisy, args.grid),
                               ("noise-free", args.noisefree, None)):
        assert read_bundle_info(bundle)["preset"] == "small"
        tables[name] = evaluate_bundle(bundle, snrs_db=SNRS_DB, steps=args.steps,
                                       guidance=args.guidance, seed=0, grid=grid, grid_count=4)
    const = tables["noise-trained"][-1]
    print(f"\n{args.steps} steps, guidance {args.guidance}; 8 sample photos, 256 px, analog AWGN; "
          f"best constant colour: PSNR {const['psnr_db']:.2f} dB, SSIM {const['ssim']:.3f}\n")
    print("| SNR (dB) | noise-trained PSNR | noise-free PSNR | noise-trained SSIM | "
          "noise-free SSIM |\n| ---: | ---: | ---: | ---: | ---: |")
    for a, b in zip(tables["noise-trained"][:-1], tables["noise-free"][:-1]):
        print(f"| {a['snr_db']:g} | {a['psnr_db']:.2f} | {b['psnr_db']:.2f} | {a['ssim']:.3f} | "
              f"{b['ssim']:.3f} |")
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
