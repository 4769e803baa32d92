"""Measure the Doppler table of docs/semantic-link.md: the links of
``scenarios/rayleigh-doppler.yaml`` over Rayleigh fading of several speeds.

    .venv/bin/python docs/tables/doppler_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, ZF with perfect CSI,
seed 0) at SNRs 1, 5, 10 and 20 dB over block fading of 32 symbols (``scenarios/rayleigh.yaml``'s
channel) and over time-correlated fading with ``normalized_doppler`` 0.001, 0.01 and 0.1. Prints
Markdown: mean PSNR (dB) per channel, SNR and link, lost images in parentheses.
"""
from __future__ import annotations

from _scenario_table import print_psnr_table

CHANNELS = {
    "block, 32 symbols": {"type": "rayleigh", "coherence_symbols": 32, "equalizer": "zf"},
    "f_D T_s = 0.001": {"type": "rayleigh", "normalized_doppler": 0.001, "equalizer": "zf"},
    "f_D T_s = 0.01": {"type": "rayleigh", "normalized_doppler": 0.01, "equalizer": "zf"},
    "f_D T_s = 0.1": {"type": "rayleigh", "normalized_doppler": 0.1, "equalizer": "zf"},
}

if __name__ == "__main__":
    print_psnr_table("rayleigh-doppler.yaml", CHANNELS, [1, 5, 10, 20], "channel")
