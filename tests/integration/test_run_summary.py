"""The table `semlink run` prints at the end holds the stored results: one row per link and SNR,
each metric's mean to 4 significant digits, and the image and failure (or bit) counts."""
from __future__ import annotations

import pytest

from semlink.cli import main
from semlink.results import ResultsStore
from semlink.summary import summarize

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGES = """\
name: summary
device: cpu
images: {source: sample, size: 64, count: 3}
snr: {points_db: [2, 12]}
links:
  semantic: {type: semantic, preset: small}
  jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {channel_uses: 2000}}
"""

BER = """\
name: summary-ber
device: cpu
snr: {kind: ebno, points_db: [0, 4]}
links:
  qpsk: {type: ber, modulation: 4}
monte_carlo: {target_bit_errors: 100, min_bits: 4000, max_bits: 20000, batch_bits: 4000}
"""


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the rich table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith(("┃", "│"))]
    cells = [[c.strip() for c in line.strip("┃│").split("┃" if line[0] == "┃" else "│")]
             for line in lines]
    return cells[0], cells[1:]


def _run(tmp_path, text, capsys):
    (tmp_path / "s.yaml").write_text(text)
    assert main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "r.h5")]) == 0
    err = capsys.readouterr().err
    assert f"results: {tmp_path / 'r.h5'}" in err
    return _table(err), summarize(ResultsStore.open(tmp_path / "r.h5"))


@pytest.mark.parametrize("text, counts", [(IMAGES, ["images", "failed"]), (BER, ["bits"])])
def test_summary_table_shows_the_stored_means(tmp_path, capsys, text, counts):
    (header, rows), summary = _run(tmp_path, text, capsys)
    metrics = list(dict.fromkeys(r["metric"] for r in summary))
    assert header == ["link", "SNR dB", *metrics, *counts]
    assert len(rows) == len({(r["link"], r["snr_db"]) for r in summary})
    for r in summary:
        row = next(c for c in rows if c[0] == r["link"] and float(c[1]) == r["snr_db"])
        assert float(row[header.index(r["metric"])]) == pytest.approx(r["value"], rel=1e-3,
                                                                       abs=1e-12)
        if counts == ["bits"]:
            assert int(row[-1]) == r["count"]
        elif r["metric"] not in ("ber", "bler"):  # those count bits and blocks
            assert int(row[-2]) == r["count"] == 3 and int(row[-1]) == r["failures"]
    if counts != ["bits"]:  # the classical link fails at 2 dB, and says so
        failed = {(c[0], float(c[1])): int(c[-1]) for c in rows}
        assert failed[("jpeg2000", 2.0)] == 3 and failed[("semantic", 2.0)] == 0
        # and each PSNR cell is the mean of the stored per-image rows, recomputed here
        images = ResultsStore.open(tmp_path / "r.h5").table("images")
        for c in rows:
            keep = (images["link"] == c[0]) & (images["snr_db"] == float(c[1]))
            assert keep.sum() == 3
            assert float(c[header.index("psnr")]) == pytest.approx(
                float(images["metric_psnr"][keep].mean()), abs=0.006)  # cells have 4 digits
