"""Measure the OFDM amplifier table of docs/semantic-link.md: the links of
``scenarios/ofdm-amplifier.yaml`` behind transmit amplifiers of several back-offs.

    .venv/bin/python docs/tables/ofdm_amplifier_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, OFDM over TDL-C with
LS estimation, seed 0) at SNRs 5, 10, 15, 20 and 30 dB with a linear transmitter and with Rapp
amplifiers (p = 2) at input back-offs of 6, 3 and 0 dB on the time-domain signal; then with the
interleaver, linear and at 0 dB. Prints Markdown: mean PSNR (dB) per amplifier, SNR and link,
lost images in parentheses.
"""
from __future__ import annotations

from _scenario_table import ROOT, print_psnr_table

import yaml

CHANNEL = yaml.safe_load((ROOT / "scenarios" / "ofdm-amplifier.yaml").read_text())["channel"]
LINEAR = {key: value for key, value in CHANNEL.items() if key != "amplifier"}
CHANNELS = {"linear": LINEAR} | {
    f"Rapp, {backoff:g} dB back-off": {**LINEAR, "amplifier": {"input_backoff_db": backoff}}
    for backoff in (6.0, 3.0, 0.0)} | {
    "linear, interleaved": {**LINEAR, "interleave": True},
    "Rapp, 0 dB back-off, interleaved": {**LINEAR, "interleave": True,
                                         "amplifier": {"input_backoff_db": 0.0}}}

if __name__ == "__main__":
    print_psnr_table("ofdm-amplifier.yaml", CHANNELS, [5, 10, 15, 20, 30], "amplifier")
