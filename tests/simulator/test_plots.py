"""Plots: every figure the results support is written, as PNG and PDF."""
from __future__ import annotations

import torch
from PIL import Image

from simulator.images import save_image
from simulator.plots import plot_results
from simulator.results import ResultsStore, reconstructions_dir

SCENARIO = """\
name: p
images: {source: sample, size: 64}
snr: {points_db: [1, 10]}
links:
  sem: {type: semantic}
  ber4: {type: ber, modulation: 4}
"""


def _store(tmp_path):
    store = ResultsStore(tmp_path / "r.h5", {"scenario_text": SCENARIO})
    for snr in (1.0, 10.0):
        store.add(f"b{snr}", {"link": "ber4"}, {"ber": [{
            "link": "ber4", "snr_db": snr, "modulation": 4, "code_rate": float("nan"),
            "bits": 10000, "bit_errors": 100 if snr == 1 else 3, "blocks": 5, "block_errors": 5,
            "esno_db": snr, "ebno_db": snr}]})
        store.add(f"s{snr}", {"link": "sem"}, {
            "images": [{"link": "sem", "snr_db": snr, "failed": False, "metric_psnr": p,
                        "metric_ssim": p / 40} for p in (10.0 + snr, 12.0 + snr)],
            "predictability": [{"link": "sem", "snr_db": snr, "image_index": 0, "metric": "lpips",
                                "mean": 0.2, "std": 0.01, "repeats": 3}]})
    return store


def test_all_figures_written(tmp_path):
    store = _store(tmp_path)
    recon = reconstructions_dir(store.path)
    save_image(torch.zeros(3, 16, 16), recon / "original" / "a.png")
    for snr in ("1", "10"):
        save_image(torch.ones(3, 16, 16), recon / "sem" / f"snr{snr}" / "a.png")
    written = {p.name for p in plot_results(store, tmp_path / "plots")}
    assert {"ber.png", "ber.pdf", "quality_psnr.png", "quality_ssim.pdf", "predictability.md",
            "image_grid.png"} <= written
    assert "bler.png" not in written  # uncoded rows have no block error rate
    assert Image.open(tmp_path / "plots" / "ber.png").size[0] > 300
    table = (tmp_path / "plots" / "predictability.md").read_text()
    assert "| sem | lpips | 10 | 0.2000 | 0.0100 | 1 |" in table
