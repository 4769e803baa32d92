"""Measure the tables of docs/classical-link.md: classical link quality vs SNR at equal channel uses.

    .venv/bin/python docs/tables/classical_link_table.py [--repeats 4] [--seed 0]

The 8 sample photos at 512 px, N = 1152 complex channel uses per image (the semantic link's
analog embedding), AWGN, implicit JPEG2000 headers, ``paper`` failure policy (a lost image scores
PSNR 0 dB and SSIM 0). Every MCS of :data:`~semlink.links.amc.DEFAULT_MCS_TABLE` is simulated
at every SNR with ``repeats`` noise draws per image; the adaptive envelope takes at each SNR the
MCS :func:`~semlink.links.amc.select_mcs` picks (BLER target 0.1) and reports that MCS's
measured quality. Prints Markdown.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from semlink.channels.awgn import AWGNChannel  # noqa: E402
from semlink.codecs.jpeg2000 import decode, minimum_codestream_bytes  # noqa: E402
from semlink.errors import InputError  # noqa: E402
from semlink.images import load_images  # noqa: E402
from semlink.links.amc import DEFAULT_MCS_TABLE, select_mcs  # noqa: E402
from semlink.links.classical import HEADER_BYTES, ClassicalLink  # noqa: E402
from semlink.metrics.quality import psnr_db, ssim  # noqa: E402
from semlink.seeding import derive_seed, make_generator  # noqa: E402

N = 1152
SIZE = 512
SNRS_DB = (1.0, 5.0, 10.0, 15.0, 20.0)


def _quality(images: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return psnr_db(images, recon).float(), ssim(images, recon, precision="single").float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, _ = load_images("sample", SIZE)  # [8, 3, 512, 512]
    num = len(images)

    rows, timing = {}, {"encode": 0.0, "phy": 0.0, "decode": 0.0, "images": 0}
    for mcs in DEFAULT_MCS_TABLE:
        link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), modulation=mcs.modulation,
                             code_rate=mcs.code_rate)
        start = time.perf_counter()
        sent, streams = link.encode_frames(images)
        timing["encode"] += time.perf_counter() - start
        clean = torch.stack([decode(s, height=SIZE, width=SIZE, header="implicit").image
                             for s in streams])
        clean_psnr, clean_ssim = _quality(images, clean)
        try:
            explicit_link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE),
                                          modulation=mcs.modulation, code_rate=mcs.code_rate,
                                          jpeg2000_header="explicit")
        except InputError:  # the frame cannot hold the 136 header bytes
            explicit_psnr = (f"none ({link.budget.payload_bytes}-byte frame < "
                             f"{HEADER_BYTES + minimum_codestream_bytes(SIZE, SIZE)} bytes)")
        else:
            _, explicit_streams = explicit_link.encode_frames(images)
            explicit = torch.stack([decode(s, height=SIZE, width=SIZE).image
                                    for s in explicit_streams])
            explicit_psnr = f"{float(psnr_db(images, explicit).mean()):.2f} dB"
        row = {"mcs": mcs, "payload_bytes": link.budget.payload_bytes,
               "blocks": link.budget.plan.num_blocks, "n": link.budget.plan.n,
               "codestream_bytes": sum(map(len, streams)) / num,
               "clean_psnr": float(clean_psnr.mean()), "clean_ssim": float(clean_ssim.mean()),
               "explicit_psnr": explicit_psnr, "points": {}}
        frames = sent.repeat(args.repeats, 1)  # [repeats * 8, payload bits]
        for snr in SNRS_DB:
            gen = make_generator(derive_seed(args.seed, mcs.name, snr))
            start = time.perf_counter()
            x_hat, no_eff = AWGNChannel(generator=gen)(link.modulate(frames), snr)
            bits, ok = link.demodulate(x_hat, no_eff)
            mid = time.perf_counter()
            out = link.decode_frames(bits, ok)
            timing["phy"] += mid - start
            timing["decode"] += time.perf_counter() - mid
            timing["images"] += len(frames)
            # A frame whose CRCs all pass decodes to the error-free image (checked), so its
            # scores are the error-free ones; a lost frame scores 0 (paper).
            good = ~out.failed
            expected = clean.repeat(args.repeats, 1, 1, 1)
            assert torch.equal(out.images[good], expected[good]), "undetected error"
            psnr = torch.where(good, clean_psnr.repeat(args.repeats), torch.zeros(()))
            sim = torch.where(good, clean_ssim.repeat(args.repeats), torch.zeros(()))
            row["points"][snr] = (float(psnr.mean()), float(sim.mean()),
                                  float(out.failed.float().mean()),
                                  float((~ok).float().mean()))
        rows[mcs] = row
        print(f"done {mcs.name}", file=sys.stderr)

    start = time.perf_counter()
    choices = {snr: select_mcs(N, (SIZE, SIZE), snr, seed=args.seed) for snr in SNRS_DB}
    amc_s = time.perf_counter() - start

    def cell(psnr: float, sim: float) -> str:
        return f"{psnr:5.2f} / {sim:.3f}"

    head = " | ".join(f"{s:g} dB" for s in SNRS_DB)
    print(f"Mean PSNR (dB) / SSIM over the {num} sample photos x {args.repeats} noise draws "
          f"(lost images score 0 / 0).\n")
    print(f"| MCS | frame B | blocks x n | codestream B | error-free | {head} |")
    print("|---|---|---|---|---|" + "---|" * len(SNRS_DB))
    for mcs, row in rows.items():
        cells = " | ".join(cell(*row["points"][s][:2]) for s in SNRS_DB)
        print(f"| {mcs.name} | {row['payload_bytes']} | {row['blocks']} x {row['n']} | "
              f"{row['codestream_bytes']:.1f} | {cell(row['clean_psnr'], row['clean_ssim'])} | "
              f"{cells} |")
    env = []
    for s in SNRS_DB:
        c = choices[s]
        psnr, sim = rows[c.mcs]["points"][s][:2]
        env.append(cell(psnr, sim) + f" ({c.mcs.name}{'' if c.meets_target else ', miss'})")
    print(f"| adaptive (BLER <= 0.1) | | | | | {' | '.join(env)} |")

    print("\nImages lost (fraction) / code-block error rate:\n")
    print(f"| MCS | {head} |")
    print("|---|" + "---|" * len(SNRS_DB))
    for mcs, row in rows.items():
        cells = " | ".join(f"{row['points'][s][2]:.3f} / {row['points'][s][3]:.3f}"
                           for s in SNRS_DB)
        print(f"| {mcs.name} | {cells} |")

    print("\nAdaptive choice (estimated BLER of the pick, blocks simulated):\n")
    for s in SNRS_DB:
        c = choices[s]
        print(f"- {s:g} dB: {c.mcs.name}, BLER {c.estimate.block_errors}/{c.estimate.blocks}"
              f"{'' if c.meets_target else ' (no entry meets the target)'}; tried "
              + ", ".join(f"{e.mcs.name} {e.block_errors}/{e.blocks}" for e in c.evaluated))

    print("\nError-free PSNR with explicit headers (same frames):\n")
    for mcs, row in rows.items():
        print(f"- {mcs.name}: {row['explicit_psnr']} explicit vs "
              f"{row['clean_psnr']:.2f} dB implicit")
    print(f"\nMinimum frame bytes at {SIZE} px: explicit "
          f"{HEADER_BYTES + minimum_codestream_bytes(SIZE, SIZE)}, implicit "
          f"{HEADER_BYTES + minimum_codestream_bytes(SIZE, SIZE, header='implicit')}.")
    k = timing["images"]
    print(f"\nTime per image (this machine, 1 thread): JPEG2000 fit "
          f"{1000 * timing['encode'] / (num * len(DEFAULT_MCS_TABLE)):.0f} ms, "
          f"code blocks + QAM + AWGN + BP decoding {1000 * timing['phy'] / k:.0f} ms, "
          f"JPEG2000 decode + policy {1000 * timing['decode'] / k:.0f} ms; "
          f"MCS selection for {len(SNRS_DB)} SNRs {amc_s:.1f} s.")


if __name__ == "__main__":
    main()
