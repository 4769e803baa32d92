"""Measure the OFDM phase-noise table of docs/semantic-link.md: the links of
``scenarios/ofdm-tdl.yaml`` as a waveform (``domain: time``) with the receiver oscillator's
phase noise, untracked and tracked on PT-RS.

    .venv/bin/python docs/tables/ofdm_phase_noise_table.py

The scenario as shipped (8 sample photos at 256 px, 288 channel uses per image, TDL-C with
300 ns delay spread at 3 m/s, LS estimation, seed 0) in the time domain at SNRs 10, 20 and
30 dB: without phase noise, with linewidths of 1 and 10 kHz (2.16 Msample/s), and with PT-RS
every 12 or 4 subcarriers under the scenario's linear interpolation and under nearest-neighbour
interpolation, at 1 kHz also with the interference measured on the PT-RS. Prints Markdown:
mean PSNR (dB) per channel, SNR and link, lost images in parentheses.
"""
from __future__ import annotations

import yaml
from _scenario_table import ROOT, print_psnr_table

TIME = {**yaml.safe_load((ROOT / "scenarios" / "ofdm-tdl.yaml").read_text())["channel"],
        "domain": "time"}


def channel(linewidth_hz: float | None, stride: int | None = None,
            interpolation: str = "lin", interference: bool = False) -> dict:
    noise = {} if linewidth_hz is None else {"phase_noise_linewidth_hz": linewidth_hz}
    ptrs = {} if stride is None else {"phase_tracking": {"subcarrier_stride": stride,
                                                         "estimate_interference": interference}}
    return {**TIME, **noise, **ptrs, "interpolation": interpolation}


CHANNELS = {
    "none": channel(None),
    "1 kHz": channel(1e3),
    "1 kHz, PT-RS every 12": channel(1e3, 12),
    "1 kHz, nn": channel(1e3, None, "nn"),
    "1 kHz, nn, PT-RS every 12": channel(1e3, 12, "nn"),
    "1 kHz, PT-RS every 12, interference": channel(1e3, 12, interference=True),
    "1 kHz, nn, PT-RS every 12, interference": channel(1e3, 12, "nn", interference=True),
    "10 kHz": channel(1e4),
    "10 kHz, PT-RS every 12": channel(1e4, 12),
    "10 kHz, nn": channel(1e4, None, "nn"),
    "10 kHz, nn, PT-RS every 12": channel(1e4, 12, "nn"),
    "10 kHz, nn, PT-RS every 4": channel(1e4, 4, "nn"),
}

if __name__ == "__main__":
    print_psnr_table("ofdm-tdl.yaml", CHANNELS, [10, 20, 30], "phase noise, receiver")
