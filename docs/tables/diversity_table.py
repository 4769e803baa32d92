"""Measure the antenna table of docs/semantic-link.md: the links of
``scenarios/transmit-diversity.yaml`` with one or two antennas at each end.

    .venv/bin/python docs/tables/diversity_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, Rayleigh block fading
with a new coefficient every 16 symbols, seed 0) at SNRs 0, 5, 10, 15 and 20 dB over 1x1 (one
antenna each), 1x2 (two receive antennas, MRC), 2x1 (Alamouti's code, one receive antenna) and
2x2 (both). Prints Markdown: mean PSNR (dB) per antennas, SNR and link, lost images in
parentheses.
"""
from __future__ import annotations

from _scenario_table import print_psnr_table

FADING = {"type": "rayleigh", "coherence_symbols": 16}
CHANNELS = {
    "1x1": FADING,
    "1x2, MRC": {**FADING, "num_rx_antennas": 2},
    "2x1, Alamouti": {**FADING, "num_tx_antennas": 2},
    "2x2, Alamouti + MRC": {**FADING, "num_tx_antennas": 2, "num_rx_antennas": 2},
}

if __name__ == "__main__":
    print_psnr_table("transmit-diversity.yaml", CHANNELS, [0, 5, 10, 15, 20],
                     "antennas (tx x rx)")
