"""Measure the phase-noise table of docs/semantic-link.md: the links of
``scenarios/phase-noise.yaml`` with the receiver's oscillator at several linewidths, untracked
and tracked on pilots.

    .venv/bin/python docs/tables/phase_noise_table.py

Runs the scenario (8 sample photos at 256 px, 288 channel uses per image, AWGN, seed 0) at SNRs
5, 10 and 30 dB without phase noise and with linewidth-period products 1e-4, 1e-3 and 1e-2,
then with a pilot-aided phase tracker (``phase_tracking``: one pilot every 16 or 4 data
symbols; at 1e-2 also with the drift between pilots estimated, ``estimate_phase_noise``).
Prints Markdown: mean PSNR (dB) per channel, SNR and link, lost images in
parentheses.
"""
from __future__ import annotations

from _scenario_table import print_psnr_table

UNTRACKED = {"none": {"type": "awgn"}} | {
    f"{v:g}": {"type": "awgn", "phase_noise_linewidth": v} for v in (1e-4, 1e-3, 1e-2)}
TRACKED = {
    f"{v or 'none'}, pilot every {spacing}{', drift estimated' if drift else ''}": {
        "type": "awgn", "phase_tracking": {"pilot_spacing": spacing,
                                           "estimate_phase_noise": drift},
        **({"phase_noise_linewidth": v} if v else {})}
    for v, spacing, drift in ((None, 16, False), (1e-3, 16, False), (1e-2, 16, False),
                              (1e-2, 16, True), (1e-2, 4, False))}

if __name__ == "__main__":
    print_psnr_table("phase-noise.yaml", UNTRACKED | TRACKED, [5, 10, 30],
                     "linewidth x symbol period")
