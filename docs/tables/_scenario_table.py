"""Shared by the docs' table scripts: run one shipped scenario over several channel sections
and print the mean PSNR per channel, SNR and link as a Markdown table."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from semlink.scenario import parse_scenario  # noqa: E402
from semlink.summary import summarize  # noqa: E402
from semlink.sweep import run_scenario  # noqa: E402


def print_psnr_table(scenario: str, channels: dict[str, dict], snrs_db: list[float],
                     first_column: str) -> None:
    """Run ``scenarios/<scenario>`` on the CPU (one thread) once per entry of ``channels`` (its
    ``channel`` section replaced, its SNR points set to ``snrs_db``) and print a row per channel
    and SNR: mean PSNR (dB) per link, lost images in parentheses; then the time taken."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    source = yaml.safe_load((ROOT / "scenarios" / scenario).read_text())
    links = list(source["links"])
    print(f"| {first_column} | SNR dB | " + " | ".join(links) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in links) + " |")
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, channel) in enumerate(channels.items()):
            text = yaml.safe_dump({**source, "channel": channel,
                                   "snr": {"points_db": snrs_db}, "device": "cpu"})
            store = run_scenario(parse_scenario(text), text, base_dir=ROOT / "scenarios",
                                 output=Path(folder) / f"{index}.h5")
            psnr = {(r["link"], r["snr_db"]): r for r in summarize(store)
                    if r["metric"] == "psnr"}
            for snr_db in snrs_db:
                cells = []
                for link in links:
                    row = psnr[link, float(snr_db)]
                    lost = f" ({row['failures']})" if row["failures"] else ""
                    cells.append(f"{row['value']:.2f}{lost}")
                print(f"| {name} | {snr_db:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")
