"""docs/results.md names exactly the attributes and columns a run writes (every kind of link, FID,
KID, predictability, a shard and its merge), and the tables agree with each other: per-image error
counts add up to the `ber` rows, the AMC's choice in `points` is the MCS the images used, the
ideal code's frame in `points` is the one its images were sent in."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from semlink.cli import main
from semlink.export import export_csv
from semlink.links.capacity import capacity_payload_bytes
from semlink.metrics.lpips import lpips_unavailable_reason
from semlink.results import ResultsStore
from semlink.summary import summarize

pytestmark = pytest.mark.usefixtures("one_thread")

DOC = Path(__file__).resolve().parents[2] / "docs" / "results.md"
LPIPS = lpips_unavailable_reason("alex") is None

SCENARIO = f"""\
name: every-column
device: cpu
images: {{source: sample, size: 192, count: 2}}
snr: {{points_db: [2, 12]}}
repeats: 2
metrics: [psnr, ssim, ms_ssim, fid, kid{', lpips' if LPIPS else ''}]
links:
  analog: {{type: semantic, preset: small}}
  digital: {{type: semantic, preset: small, transmission: {{mode: digital, bits_per_value: 4,
            modulation: 16, code_rate: 1/2}}}}
  fixed: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{channel_uses: 4000}}}}
  harq: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{match: analog}},
         harq: {{max_transmissions: 3}}}}
  amc: {{type: classical, adaptive: true, bandwidth: {{match: analog}}}}
  ideal: {{type: classical, channel_code: capacity, adaptive: true, bandwidth: {{match: analog}}}}
  qpsk: {{type: ber, modulation: 4}}
monte_carlo: {{target_bit_errors: 20, min_bits: 2000, max_bits: 4000, batch_bits: 2000}}
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("columns")
    (folder / "s.yaml").write_text(SCENARIO)
    shard, merged = folder / "s.shard1of1.h5", folder / "merged.h5"
    # -o s.h5 --shard 1/1 writes s.shard1of1.h5, as --help says
    assert main(["run", str(folder / "s.yaml"), "-q", "--shard", "1/1", "-o",
                 str(folder / "s.h5")]) == 0
    assert main(["merge", str(shard), "-o", str(merged)]) == 0
    return ResultsStore.open(shard), ResultsStore.open(merged)


def _documented() -> dict[str, set[str]]:
    """Backticked names in the first cell of each table row, per `##` section."""
    names: dict[str, set[str]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        if section and line.startswith("| `"):
            names.setdefault(section, set()).update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_every_attribute_and_column_is_documented(stores):
    doc = _documented()
    shard, merged = stores
    assert set(shard.attrs) | set(merged.attrs) == doc.pop("Root attributes")
    columns = {name: set(merged.table(name)) for name in merged.table_names}
    assert set(columns) == {"points", "images", "ber", "predictability", "features", "fid",
                            "kid"}
    for section, documented in doc.items():  # "`features`, `fid` and `kid`": three tables
        tables = [t for t in columns if f"`{t}`" in section]
        found = set().union(*(columns[t] for t in tables))
        if not LPIPS:
            documented = documented - {"metric_lpips"}
        assert tables and found == documented, (section, found ^ documented)
    assert sorted(t for section in doc for t in columns if f"`{t}`" in section) == sorted(columns)


def test_tables_agree(stores):
    _, merged = stores
    images, ber, points = merged.rows("images"), merged.rows("ber"), merged.rows("points")
    assert {r["link"] for r in ber} == {"digital", "fixed", "amc", "qpsk", "harq"}
    uses = {r["channel_uses"] for r in images if r["link"] == "analog"}
    for row in (r for r in images if r["link"] == "harq"):
        # HARQ: every send costs the matched link's channel uses; only frames that failed
        # are sent again
        assert 1 <= row["transmissions"] <= 3
        assert {row["channel_uses"] / row["transmissions"]} == uses
        if row["transmissions"] < 3:
            assert row["block_errors"] == 0 and not row["failed"]
    assert {r["transmissions"] for r in images if r["link"] == "harq"} != {1}  # 2 dB: resends
    summary = [r for r in summarize(merged) if r["metric"] == "channel_uses"]
    assert {r["link"] for r in summary} == {"harq"}
    for row in ber:
        if row["link"] == "qpsk":
            continue
        mine = [r for r in images if r["link"] == row["link"] and r["snr_db"] == row["snr_db"]]
        assert len(mine) == 2 * 2  # images x repeats
        assert row["bit_errors"] == sum(r["bit_errors"] for r in mine)
        assert row["block_errors"] == sum(r["block_errors"] for r in mine)
        assert row["bits"] % len(mine) == 0 and row["blocks"] % len(mine) == 0
    digital = {r["snr_db"]: r for r in ber if r["link"] == "digital"}
    assert digital[2.0]["bit_errors"] > 0 and digital[12.0]["bit_errors"] == 0
    for point in (p for p in points if p["link"] == "amc" and p["kind"] == "classical"):
        used = {f"{int(r['mcs_modulation'])}-QAM r={r['mcs_code_rate']:.3g}"
                for r in images if r["link"] == "amc" and r["snr_db"] == point["snr_db"]}
        assert used == {point["mcs"]} and 0 <= point["mcs_estimated_bler"] <= 1
    assert all(p["mcs"] == "" for p in points if p["link"] != "amc" or p["kind"] != "classical")
    for point in (p for p in points if p["link"] == "ideal" and p["kind"] == "classical"):
        mine = [r for r in images if r["link"] == "ideal" and r["snr_db"] == point["snr_db"]]
        assert {r["frame_bits"] for r in mine} == {point["frame_bits"]} and len(mine) == 4
        # AWGN: the outage rate is the capacity, and every frame gets exactly that much
        assert point["frame_bits"] == 8 * capacity_payload_bytes(mine[0]["channel_uses"],
                                                                 point["snr_db"])
        assert point["outage_estimate"] == 0 and point["outage_estimate_frames"] == 10000
        for row in mine:
            assert row["mutual_information_bits"] >= point["frame_bits"] and not row["failed"]


def test_csv_export_keeps_feature_vectors_whole(stores, tmp_path):
    _, merged = stores
    written = export_csv(merged, tmp_path)
    assert tmp_path / "features.feature.npy" in written
    with open(tmp_path / "features.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = merged.table("features")
    assert list(rows[0]) == ["link", "snr_db", "image_index", "repeat", "failed"]
    assert [r["link"] for r in rows] == table["link"].tolist()
    vectors = np.load(tmp_path / "features.feature.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (len(rows), 2048)
    np.testing.assert_array_equal(vectors, table["feature"])
