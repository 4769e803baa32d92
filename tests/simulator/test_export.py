"""Export: summary.csv and one CSV per table, values exactly as stored; JSON that any strict
parser reads (NaN as null), with the file's attributes and the summary with its intervals."""
from __future__ import annotations

import csv
import json
import math

from semlink.export import export_csv, export_json
from semlink.results import ResultsStore

T_975_1 = 12.706204736174698  # Student t, 97.5 % quantile, 1 degree of freedom (tables)


def _store(tmp_path):
    store = ResultsStore(tmp_path / "r.h5", {"scenario_name": "x", "versions": {"semlink": "0"}})
    store.add("q/snr0", {"link": "q", "snr_db": 3.0}, {"ber": [{
        "link": "q", "snr_db": 3.0, "modulation": 4, "code_rate": float("nan"), "bits": 10000,
        "bit_errors": 0, "blocks": 10, "block_errors": 0, "esno_db": 0.1 + 0.2,
        "ebno_db": float("nan")}]})
    store.add("s/snr0", {"link": "s", "snr_db": 3.0}, {"images": [
        {"link": "s", "snr_db": 3.0, "image": "a.png", "failed": False, "metric_psnr": 11.0},
        {"link": "s", "snr_db": 3.0, "image": "b.png", "failed": True, "metric_psnr": 13.0}]})
    store.add("s/snr1", {"link": "s", "snr_db": 9.0}, {"images": [
        {"link": "s", "snr_db": 9.0, "image": "a.png", "failed": False, "metric_psnr": 20.0}]})
    return store


def test_json_summary_with_intervals_by_hand_and_nan_as_null(tmp_path):
    """BER 0 of 10000: Clopper-Pearson [0, 1 - 0.025^(1/10000)]; PSNR 11 and 13: mean 12, the
    t interval 12 -/+ t(0.975, 1) x 1; a single image has no interval: null, not NaN (which
    strict JSON refuses)."""
    path = export_json(_store(tmp_path), tmp_path / "out" / "r.json")
    data = json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(
        ValueError(f"not JSON: {c}")))
    assert data["attrs"]["scenario_name"] == "x" and data["attrs"]["versions"] == {"semlink": "0"}
    rows = {(r["link"], r["snr_db"], r["metric"]): r for r in data["summary"]}
    assert set(rows) == {("q", 3.0, "ber"), ("s", 3.0, "psnr"), ("s", 9.0, "psnr")}
    ber = rows["q", 3.0, "ber"]
    assert (ber["value"], ber["ci_low"], ber["count"], ber["errors"]) == (0.0, 0.0, 10000, 0)
    assert math.isclose(ber["ci_high"], 1 - 0.025 ** (1 / 10000), rel_tol=1e-9)
    psnr = rows["s", 3.0, "psnr"]
    assert psnr["value"] == 12.0 and psnr["count"] == 2 and psnr["failures"] == 1
    assert math.isclose(psnr["ci_low"], 12 - T_975_1, rel_tol=1e-9)
    assert math.isclose(psnr["ci_high"], 12 + T_975_1, rel_tol=1e-9)
    single = rows["s", 9.0, "psnr"]
    assert single["value"] == 20.0 and single["ci_low"] is None and single["ci_high"] is None


def test_csv_tables_hold_every_row_and_exact_values(tmp_path):
    """summary.csv has the documented columns; each table's CSV its rows in stored order, every
    column, and floats that read back to the same double (0.1 + 0.2 is not 0.3)."""
    folder = tmp_path / "csv"
    written = export_csv(_store(tmp_path), folder)
    assert {p.name for p in written} == {"summary.csv", "points.csv", "ber.csv", "images.csv"}
    with open(folder / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert list(summary[0]) == ["link", "snr_db", "metric", "value", "ci_low", "ci_high", "count",
                                "errors", "failures"]
    assert len(summary) == 3
    rows = {(r["link"], float(r["snr_db"]), r["metric"]): r for r in summary}
    psnr = rows["s", 3.0, "psnr"]  # the same hand values as the JSON test, read back exactly
    assert (float(psnr["value"]), int(psnr["count"]), int(psnr["failures"])) == (12.0, 2, 1)
    assert math.isclose(float(psnr["ci_low"]), 12 - T_975_1, rel_tol=1e-9)
    ber = rows["q", 3.0, "ber"]
    assert (float(ber["value"]), int(ber["count"]), int(ber["errors"])) == (0.0, 10000, 0)
    assert math.isclose(float(ber["ci_high"]), 1 - 0.025 ** (1 / 10000), rel_tol=1e-9)
    assert rows["s", 9.0, "psnr"]["ci_low"] == "nan"  # no interval from one image (results.md)
    with open(folder / "ber.csv", newline="") as fh:
        (ber,) = list(csv.DictReader(fh))
    assert float(ber["esno_db"]) == 0.1 + 0.2 and int(ber["bits"]) == 10000
    with open(folder / "images.csv", newline="") as fh:
        images = list(csv.DictReader(fh))
    assert [(r["image"], float(r["metric_psnr"])) for r in images] == [
        ("a.png", 11.0), ("b.png", 13.0), ("a.png", 20.0)]
    with open(folder / "points.csv", newline="") as fh:
        assert [r["point_id"] for r in csv.DictReader(fh)] == ["q/snr0", "s/snr0", "s/snr1"]
