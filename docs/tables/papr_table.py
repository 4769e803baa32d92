"""Measure the peak-to-average power table of docs/semantic-link.md: how far above its mean
power each link's transmitted signal goes, on a single carrier and on OFDM.

    .venv/bin/python docs/tables/papr_table.py

What ``semlink papr scenarios/ofdm-amplifier.yaml`` measures (simulator/link_papr.py), with
the 8 sample photos at 512 px instead of 256 (1152 channel uses per image, more samples) and
three channels in turn: AWGN (a single carrier, against each image's mean power), the
scenario's OFDM grid (72 subcarriers, pilots on OFDM symbols 2 and 11; the 4x oversampled time
signal against a fully loaded symbol's mean power), and the same with the interleaver. Prints
Markdown: the power exceeded by 1 % and 0.1 % of the samples and the median peak per block
(an image on a single carrier, an OFDM symbol on OFDM), dB above the reference.
"""
from __future__ import annotations

import time

import torch
import yaml
from _scenario_table import ROOT

from semlink.link_papr import EXCEEDED_BY, link_papr
from semlink.scenario import parse_scenario

NAMES = {"semantic": "semantic (analog)", "jpeg2000": "JPEG2000, 16-QAM",
         "jpeg2000-qpsk": "JPEG2000, QPSK"}


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    source = yaml.safe_load((ROOT / "scenarios" / "ofdm-amplifier.yaml").read_text())
    ofdm = {key: value for key, value in source["channel"].items() if key != "amplifier"}
    channels = [{"type": "awgn"}, ofdm, {**ofdm, "interleave": True}]
    measured = {}
    for channel in channels:
        text = yaml.safe_dump({**source, "channel": channel, "device": "cpu",
                               "images": {**source["images"], "size": 512}}, sort_keys=False)
        for row in link_papr(parse_scenario(text), base_dir=ROOT / "scenarios", device="cpu"):
            measured.setdefault(row.link, []).append(row)
    one, tenth = EXCEEDED_BY.index(1e-2), EXCEEDED_BY.index(1e-3)
    print("| link | waveform | samples | 1 % exceed | 0.1 % exceed | median peak per block |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for link, rows in measured.items():
        for r in rows:
            levels = ["-" if v != v else f"{v:.2f}" for v in (r.levels_db[one], r.levels_db[tenth])]
            print(f"| {NAMES[link]} | {r.waveform} | {r.samples} | {levels[0]} | {levels[1]} | "
                  f"{r.median_peak_db:.2f} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
