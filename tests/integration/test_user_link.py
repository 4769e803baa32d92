"""The user's-link example of docs/user-links.md, end to end: the page shows the example module
and scenario as they are in docs/examples/, ``semlink run`` runs them, and the results are what
the example's pooling and the matched classical link give."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch.nn.functional as F

from semlink.cli import main
from semlink.images import load_images
from semlink.metrics.quality import psnr_db
from semlink.results import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture(autouse=True)
def _fresh_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "downsample_link", raising=False)
    yield
    sys.modules.pop("downsample_link", None)


def test_the_page_shows_the_files_the_test_runs():
    page = (ROOT / "docs" / "user-links.md").read_text()
    blocks = re.findall(r"```(?:python|yaml)\n(.*?)```", page, flags=re.S)
    assert (EXAMPLES / "downsample_link.py").read_text() in blocks
    assert (EXAMPLES / "user-link.yaml").read_text() in blocks


def test_the_example_runs_beside_the_classical_link_at_matched_bandwidth(tmp_path):
    out = tmp_path / "user-link.h5"
    assert main(["run", str(EXAMPLES / "user-link.yaml"), "-o", str(out), "-q",
                 "--device", "cpu"]) == 0
    rows = ResultsStore.open(out).rows("images")
    by_link = {}
    for row in rows:
        by_link.setdefault(row["link"], []).append(row)
    # 128 px pooled 8 x 8: 3 x 16 x 16 = 768 values, two per complex symbol.
    assert {r["channel_uses"] for r in rows} == {384}
    assert len(by_link["downsample"]) == len(by_link["jpeg2000"]) == 2 * 3
    # At 20 dB the received pooled image is close to the sent one, and the reconstruction
    # close to the noiseless pooled-and-upsampled image, computed here.
    images = load_images("sample", 128, count=2)[0]
    noiseless = F.interpolate(F.avg_pool2d(images, 8), size=(128, 128), mode="bilinear",
                              align_corners=False).clamp(0, 1)
    ceiling = psnr_db(images, noiseless).tolist()
    at = {snr: [r for r in by_link["downsample"] if r["snr_db"] == snr] for snr in (0, 10, 20)}
    for snr_db in (10.0, 20.0):
        for row in at[snr_db]:
            # Unit-power symbols, two centred values v each: Es/N0 = SNR gives each value a
            # noise variance of mean(v^2) / SNR (768 values: a few per cent of spread).
            v = F.avg_pool2d(images[row["image_index"]], 8) - 0.5
            expected = float(v.square().mean()) / 10 ** (snr_db / 10)
            assert 0.6 * expected < row["pooled_mse"] < 1.4 * expected, (snr_db, row)
    for row in at[20.0]:
        assert ceiling[row["image_index"]] - 1.0 < row["metric_psnr"] \
            <= ceiling[row["image_index"]] + 1e-3
    mean = {snr: sum(r["metric_psnr"] for r in at[snr]) / 2 for snr in at}
    assert mean[0.0] < mean[10.0] < mean[20.0]
    assert not any(r["failed"] for r in by_link["downsample"])
    assert not any(r["failed"] for r in by_link["jpeg2000"] if r["snr_db"] == 20.0)
