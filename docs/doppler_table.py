"""Measure the Doppler table of docs/semantic-link.md: the links of
``scenarios/rayleigh-doppler.yaml`` over Rayleigh fading of several speeds.

    .venv/bin/python docs/doppler_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, ZF with perfect CSI,
seed 0) at SNRs 1, 5, 10 and 20 dB over block fading of 32 symbols (``scenarios/rayleigh.yaml``'s
channel) and over time-correlated fading with ``normalized_doppler`` 0.001, 0.01 and 0.1. Prints
Markdown: mean PSNR (dB) per channel, SNR and link, lost images in parentheses.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.scenario import parse_scenario  # noqa: E402
from simulator.summary import summarize  # noqa: E402
from simulator.sweep import run_scenario  # noqa: E402

CHANNELS = {
    "block, 32 symbols": {"type": "rayleigh", "coherence_symbols": 32},
    "f_D T_s = 0.001": {"type": "rayleigh", "normalized_doppler": 0.001},
    "f_D T_s = 0.01": {"type": "rayleigh", "normalized_doppler": 0.01},
    "f_D T_s = 0.1": {"type": "rayleigh", "normalized_doppler": 0.1},
}
SNRS_DB = [1, 5, 10, 20]


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    source = yaml.safe_load((ROOT / "scenarios" / "rayleigh-doppler.yaml").read_text())
    links = list(source["links"])
    print("| channel | SNR dB | " + " | ".join(links) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in links) + " |")
    with tempfile.TemporaryDirectory() as folder:
        for name, channel in CHANNELS.items():
            text = yaml.safe_dump({**source, "channel": {**channel, "equalizer": "zf"},
                                   "snr": {"points_db": SNRS_DB}, "device": "cpu"})
            store = run_scenario(parse_scenario(text), text, base_dir=ROOT / "scenarios",
                                 output=Path(folder) / f"{len(name)}{name[-3:]}.h5")
            psnr = {(r["link"], r["snr_db"]): r for r in summarize(store)
                    if r["metric"] == "psnr"}
            for snr_db in SNRS_DB:
                cells = []
                for link in links:
                    row = psnr[link, float(snr_db)]
                    lost = f" ({row['failures']})" if row["failures"] else ""
                    cells.append(f"{row['value']:.2f}{lost}")
                print(f"| {name} | {snr_db} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
