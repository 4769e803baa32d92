"""Measure the bfloat16 table of docs/benchmarks.md: how far the receiver's images move when its
weights and activations are bfloat16 (as the real presets run on CUDA) instead of float32, eager
and through ``torch.compile``.

    .venv/bin/python docs/tables/bfloat16_table.py [--size PX]

The shipped ``small`` preset's weights; the 8 sample photos at ``--size`` px (default 256),
encoded once in float32, their embeddings received noise-free (the receiver's own rounding is
what is measured) by three receivers with the same weights and the same sampling seeds:
float32 eager, bfloat16 eager, bfloat16 compiled. Prints Markdown: each receiver's images
against the float32 ones (mean and largest absolute difference in [0, 1] units, mean PSNR) and
against the photos (mean PSNR). On the CPU; on CUDA the bfloat16 kernels differ (a GPU session
reruns it with ``--device cuda``).
"""
from __future__ import annotations

import argparse
import time

import torch

from semlink.images import load_images
from semlink.links.semantic import SemanticLink
from semlink.scenario import AnalogTransmission

RECEIVERS = (("float32, eager", torch.float32, False), ("bfloat16, eager", torch.bfloat16, False),
             ("bfloat16, torch.compile", torch.bfloat16, True))


def _psnr_db(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """[batch] PSNR, dB, of [0, 1] images against ``reference``."""
    mse = (images - reference).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    photos = load_images("sample", args.size, count=8)[0].to(args.device)
    out = {}
    for name, dtype, compiled in RECEIVERS:
        link = SemanticLink(preset="small", image_size=args.size, device=args.device,
                            transmission=AnalogTransmission(mode="analog"), dtype=dtype,
                            compiled=compiled)
        if not out:  # the float32 link's encoder: one embedding for all three receivers
            with torch.no_grad():
                embedding = link.encoder(photos)
        generators = [torch.Generator(args.device).manual_seed(i) for i in range(len(photos))]
        out[name] = link.receiver(embedding.to(dtype), generators, image_size=args.size).float()
    reference = out[RECEIVERS[0][0]]
    print(f"| receiver ({args.size} px, `small`, {args.device}) | mean abs. difference to "
          "float32 | largest | PSNR to float32 (dB) | PSNR to the photos (dB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, images in out.items():
        difference = (images - reference).abs()
        to_float32 = ("-" if images is reference
                      else f"{_psnr_db(images, reference).mean():.1f}")
        print(f"| {name} | {difference.mean():.5f} | {difference.max():.4f} | {to_float32} | "
              f"{_psnr_db(images, photos).mean():.2f} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
