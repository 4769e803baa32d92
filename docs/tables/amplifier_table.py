"""Measure the amplifier table of docs/semantic-link.md: the links of
``scenarios/amplifier.yaml`` behind transmit amplifiers of several back-offs.

    .venv/bin/python docs/tables/amplifier_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, AWGN, seed 0) at SNRs
5, 7, 8, 10 and 30 dB with a linear transmitter and with Rapp amplifiers (p = 2) at input
back-offs of 6, 3 and 0 dB. Prints Markdown: mean PSNR (dB) per amplifier, SNR and link, lost
images in parentheses.
"""
from __future__ import annotations

from _scenario_table import print_psnr_table

CHANNELS = {
    "linear": {"type": "awgn"},
    "Rapp, 6 dB back-off": {"type": "awgn", "amplifier": {"input_backoff_db": 6.0}},
    "Rapp, 3 dB back-off": {"type": "awgn", "amplifier": {"input_backoff_db": 3.0}},
    "Rapp, 0 dB back-off": {"type": "awgn", "amplifier": {"input_backoff_db": 0.0}},
}

if __name__ == "__main__":
    print_psnr_table("amplifier.yaml", CHANNELS, [5, 7, 8, 10, 30], "amplifier")
