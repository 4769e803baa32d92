"""Measure the code-block-group table of docs/classical-link.md: HARQ resending whole frames
against resending only the groups of code blocks with a failed block (5G CBG).

    .venv/bin/python docs/tables/cbg_table.py

The classical chain of scenarios/harq.yaml (JPEG2000 + CRC + 5G LDPC rate 1/2 + 16-QAM, up to 4
sends, Chase or IR) on the 8 sample photos at 512 px with the paper's 1152 channel uses per
image: 3 code blocks of 1536 bits, so 4 groups put each block in a group of its own. Over AWGN
and Rayleigh block fading (32 symbols per fade), seed 0. Prints Markdown: per channel, SNR and
link the lost images and the mean channel uses per image.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import yaml
from _scenario_table import ROOT

from semlink.scenario import parse_scenario
from semlink.summary import summarize
from semlink.sweep import run_scenario

LINKS = {}
for combining in ("chase", "ir"):
    for groups in (None, 4):
        harq = {"max_transmissions": 4, "combining": combining}
        if groups:
            harq["code_block_groups"] = groups
        LINKS[f"{combining}{'-cbg' if groups else ''}"] = {
            "type": "classical", "modulation": 16, "code_rate": "1/2",
            "bandwidth": {"channel_uses": 1152}, "harq": harq}
CHANNELS = {"AWGN": ({"type": "awgn"}, [1, 3, 5]),
            "Rayleigh, 32 symbols per fade": ({"type": "rayleigh", "coherence_symbols": 32},
                                              [3, 6, 10])}


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    names = list(LINKS)
    print("| channel | SNR dB | " + " | ".join(names) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in names) + " |")
    with tempfile.TemporaryDirectory() as folder:
        for index, (label, (channel, snrs)) in enumerate(CHANNELS.items()):
            text = yaml.safe_dump({
                "name": "cbg", "seed": 0, "device": "cpu", "batch_size": 8,
                "images": {"source": "sample", "size": 512}, "channel": channel,
                "snr": {"points_db": snrs}, "metrics": ["psnr"], "links": LINKS},
                sort_keys=False)
            store = run_scenario(parse_scenario(text), text, base_dir=ROOT / "scenarios",
                                 output=Path(folder) / f"{index}.h5")
            rows = {(r["link"], r["snr_db"], r["metric"]): r for r in summarize(store)}
            for snr in snrs:
                cells = []
                for name in names:
                    lost = rows[name, float(snr), "psnr"]["failures"]
                    uses = rows[name, float(snr), "channel_uses"]["value"]
                    cells.append(f"{uses:.0f}" + (f" ({lost} lost)" if lost else ""))
                print(f"| {label} | {snr:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
