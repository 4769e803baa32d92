"""Measure the pilot-spacing table of docs/classical-link.md: the block error rate of a coded
16-QAM link under receiver phase noise, for pilot blocks every P data symbols, at an Eb/N0 that
charges the pilots' energy.

    .venv/bin/python docs/tables/pilot_spacing_table.py

A BER link (16-QAM, LDPC rate 1/2, 2048-bit codewords: 512 symbols per row) over AWGN with a
Wiener phase of linewidth-period product 1e-3 or 1e-2, tracked on single pilots every P data
symbols (``phase_tracking: {pilot_spacing: P}``), and without phase noise or pilots for
reference, at Eb/N0 6, 8 and 10 dB per payload bit with the CRC and the pilots counted as
overhead; 100 block errors or 200 blocks per point, seed 0.
Prints Markdown: BLER per linewidth, spacing and Eb/N0, the pilot overhead in a column.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from semlink.channels.phase_tracking import pilot_overhead  # noqa: E402
from semlink.links.ber import simulate_ber_point  # noqa: E402
from semlink.scenario import (AWGNConfig, BERLinkConfig, MonteCarloConfig,  # noqa: E402
                                PhaseTrackingConfig)

LINK = BERLinkConfig(type="ber", modulation=16, code_rate=0.5)
STOP = MonteCarloConfig(target_bit_errors=1, target_block_errors=100, min_bits=1,
                        max_bits=200 * 1000, batch_bits=25 * 1000)
EBNO_DB = (6.0, 8.0, 10.0)
SPACINGS = (None, 2, 4, 8, 16, 32, 64)


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    print("| linewidth x symbol period | pilot every | pilot overhead | "
          + " | ".join(f"BLER at {e:g} dB" for e in EBNO_DB) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in EBNO_DB) + " |")
    rows = [(None, None)] + [(v, p) for v in (1e-3, 1e-2) for p in SPACINGS]
    for linewidth, spacing in rows:
        tracking = None if spacing is None else PhaseTrackingConfig(pilot_spacing=spacing)
        channel = AWGNConfig(type="awgn", phase_noise_linewidth=linewidth,
                             phase_tracking=tracking)
        cells = []
        for ebno_db in EBNO_DB:
            counts = simulate_ber_point(LINK, channel, ebno_db, snr_kind="ebno",
                                        monte_carlo=STOP, seed=0, device="cpu")
            cells.append(f"{counts.block_errors / counts.blocks:.3f}")
        overhead = "-" if spacing is None else f"{100 * pilot_overhead(512, spacing):.1f} %"
        print(f"| {'none' if linewidth is None else f'{linewidth:g}'} | "
              f"{spacing or 'untracked'} | {overhead} | " + " | ".join(cells) + " |",
              flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
