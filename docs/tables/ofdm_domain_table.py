"""Measure the OFDM time-domain table of docs/semantic-link.md: the links of
``scenarios/ofdm-tdl.yaml`` with the channel applied per resource element (the frequency-domain
model) and as a waveform (``domain: time``) with cyclic prefixes of 20, 6 and 0 samples.

    .venv/bin/python docs/tables/ofdm_domain_table.py

The scenario as shipped (8 sample photos at 256 px, 288 channel uses per image, TDL-C with
300 ns delay spread at 3 m/s, LS estimation, seed 0) at SNRs 5, 10, 20 and 30 dB. Prints
Markdown: mean PSNR (dB) per channel, SNR and link, lost images in parentheses.
"""
from __future__ import annotations

import yaml
from _scenario_table import ROOT, print_psnr_table

OFDM = yaml.safe_load((ROOT / "scenarios" / "ofdm-tdl.yaml").read_text())["channel"]
CHANNELS = {"frequency domain, prefix 6": OFDM} | {
    f"time domain, prefix {cp}": {**OFDM, "domain": "time", "cyclic_prefix_length": cp}
    for cp in (20, 6, 0)}

if __name__ == "__main__":
    print_psnr_table("ofdm-tdl.yaml", CHANNELS, [5, 10, 20, 30], "channel")
