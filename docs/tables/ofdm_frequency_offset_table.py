"""Measure the OFDM frequency-offset table of docs/semantic-link.md: the links of
``scenarios/ofdm-tdl.yaml`` as a waveform (``domain: time``) with the receiver oscillator off
by a fraction of the subcarrier spacing, untracked, tracked on PT-RS, and corrected from the
cyclic prefixes first.

    .venv/bin/python docs/tables/ofdm_frequency_offset_table.py

The scenario as shipped (8 sample photos at 256 px, 288 channel uses per image, TDL-C with
300 ns delay spread at 3 m/s, LS estimation, seed 0) in the time domain with nearest-neighbour
interpolation at SNRs 10, 20 and 30 dB: without an offset, and 3 kHz and 9 kHz off (0.1 and
0.3 of the 30 kHz spacing), untracked, with PT-RS every 12 subcarriers (interference
estimated), and with the offset estimated on the prefixes before them. Prints Markdown: mean
PSNR (dB) per channel, SNR and link, lost images in parentheses.
"""
from __future__ import annotations

import yaml
from _scenario_table import ROOT, print_psnr_table

TIME = {**yaml.safe_load((ROOT / "scenarios" / "ofdm-tdl.yaml").read_text())["channel"],
        "domain": "time", "interpolation": "nn"}
PTRS = {"phase_tracking": {"subcarrier_stride": 12, "estimate_interference": True}}

CHANNELS = {"none": TIME}
for khz in (3, 9):
    offset = {**TIME, "frequency_offset_hz": khz * 1e3}
    CHANNELS |= {f"{khz} kHz": offset, f"{khz} kHz, PT-RS": {**offset, **PTRS},
                 f"{khz} kHz, prefix estimate, PT-RS": {**offset, **PTRS,
                                                         "estimate_frequency_offset": True}}

if __name__ == "__main__":
    print_psnr_table("ofdm-tdl.yaml", CHANNELS, [10, 20, 30], "frequency offset, receiver")
