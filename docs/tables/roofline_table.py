"""Measure the work table of docs/benchmarks.md: the floating-point operations and the bytes moved
per image (per code block for LDPC) of each measurement issue #21 sets a target for, and the
time floors they give on an H100 and an H200.

    .venv/bin/python docs/tables/roofline_table.py

Counted with :func:`semlink.roofline.count_work` (flops of matrix products, convolutions and
attention; bytes every operation reads and writes run eagerly, one kernel each; attention as
one flash kernel): the receivers on the meta device (the real architectures, no weights, no
arithmetic), the LDPC chain on the CPU (64 code blocks). Stage B lite + stage A as
``semlink bench`` runs it (bfloat16, 10 steps, guidance 1.1: conditional and unconditional
rows in one batch), SD 1.5 img2img as the bench times it (float16, VAE encoding, 30 UNet steps
on a doubled batch, VAE decoding; the scheduler's few elementwise operations left out).
Floors: flops over the bf16 matrix rate and bytes over the copy bandwidth measured on this
workplace's machines (the device tool's KINDS.md: H100 798 TFLOP/s and 3.0 TB/s, H200 788
TFLOP/s and 4.3 TB/s); no eager run is faster than the larger of the two, launch gaps and host
work come on top.
"""
from __future__ import annotations

import time

import torch

from semlink.bench import build_ldpc_chain, sd15_models
from semlink.models.presets import get_preset
from semlink.models.receiver import SemanticReceiver
from semlink.roofline import Work, count_work

PEAKS = {"H100": (798e12, 3.0e12), "H200": (788e12, 4.3e12)}
RECEIVERS = [("stable-cascade-lite", 512, 1), ("stable-cascade-lite", 512, 32),
             ("stable-cascade-lite", 1024, 1), ("stable-cascade-lite", 1024, 8)]
SD15 = [(512, 1), (1024, 1)]


def receiver_work(preset: str, size: int, batch: int, *, steps: int = 10,
                  guidance: float = 1.1) -> Work:
    """One receiver call of ``batch`` images on the meta device."""
    p = get_preset(preset)
    rx = SemanticReceiver.from_preset(preset, meta=True, dtype=torch.bfloat16)
    side = -(-round(size * p.encoder_resize_factor) // 32)
    zhat = torch.empty(batch, p.embedding_channels, side, side, device="meta",
                       dtype=torch.bfloat16)
    noise = torch.empty(steps, batch, rx.stage_b.config.in_channels, size // 4, size // 4,
                        device="meta")
    # The receiver's call minus the drawing of its noise (random numbers need a device).
    return count_work(rx._reconstruct, zhat, noise, guidance=guidance)


def sd15_work(size: int, batch: int, *, steps: int = 30) -> Work:
    """SD 1.5 img2img of ``batch`` images on the meta device."""
    unet, vae = sd15_models(dtype=torch.float16, meta=True)
    image = torch.empty(batch, 3, size, size, device="meta", dtype=torch.float16)
    latents = torch.empty(batch, 4, size // 8, size // 8, device="meta", dtype=torch.float16)
    text = torch.empty(2 * batch, 77, 768, device="meta", dtype=torch.float16)
    t = torch.tensor(500, device="meta")
    encode = count_work(lambda: vae.encode(image).latent_dist.sample())
    step = count_work(lambda: unet(torch.cat([latents] * 2), t, encoder_hidden_states=text))
    decode = count_work(lambda: vae.decode(latents))
    return encode + step.scaled(steps) + decode


def ldpc_work(blocks: int) -> tuple[Work, int]:
    """The LDPC chain of ``semlink bench --ldpc`` on ``blocks`` code blocks (CPU), and its
    information bits per block."""
    chain = build_ldpc_chain(blocks, device="cpu")
    return count_work(lambda: chain.decoder(chain.transmit())), chain.k


def _row(name: str, call: Work, per: int, unit: str) -> str:
    """A table row: ``call``'s work per ``unit`` (``per`` of them in the call)."""
    work = call.scaled(1 / per)
    cells = [name, f"{call.operations}", f"{work.flops / 1e12:.3g}",
             f"{work.bytes_moved / 1e9:.3g}", f"{work.flops_per_byte:.0f}"]
    for flops, bandwidth in PEAKS.values():
        floor = work.floor_seconds(flops_per_second=flops, bytes_per_second=bandwidth)
        cells.append(f"{floor['compute'] * 1e3:.3g} / {floor['memory'] * 1e3:.3g}")
    return "| " + " | ".join(cells) + f" | {unit} |"


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    print("| measurement | operations per call | TFLOP | GB moved (eager) | flop/byte | H100 "
          "floor ms: compute / memory | H200 floor ms: compute / memory | per |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for preset, size, batch in RECEIVERS:
        name = f"{preset} + stage A, {size} px, batch {batch}, 10 steps"
        print(_row(name, receiver_work(preset, size, batch), batch, "image"), flush=True)
    for size, batch in SD15:
        name = f"SD 1.5 img2img, {size} px, batch {batch}, 30 steps"
        print(_row(name, sd15_work(size, batch), batch, "image"), flush=True)
    blocks = 64
    work, k = ldpc_work(blocks)
    print(_row(f"LDPC chain, n = 1536, rate 1/2, 16-QAM, 20 BP iterations, {blocks} blocks",
               work, blocks, f"code block ({k} information bits)"))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
