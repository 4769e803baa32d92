"""Paired comparison of two links: differences per (image, transmission), against scipy's
paired t-test and t interval computed on the pairs written out here."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from semlink.cli import main
from semlink.compare import COMPARE_COLUMNS, compare_links
from semlink.errors import InputError
from semlink.results import ResultsStore


def _store(tmp_path, rows_by_link):
    store = ResultsStore(tmp_path / "r.h5", {})
    for link, rows in rows_by_link.items():
        store.add(link, {"link": link}, {"images": [
            {"link": link, "snr_db": snr, "image_index": i, "repeat": r, "failed": False,
             "metric_psnr": psnr, "metric_ssim": psnr / 40} for snr, i, r, psnr in rows]})
    return store


def test_differences_are_paired_by_image_and_transmission(tmp_path):
    """Image 3 only in the link, repeat 1 of image 0 only in the baseline: those rows have no
    partner and are left out. The interval and p-value are scipy's on the matched pairs; the
    images' own spread (a hard image scores low on both links) does not widen the interval."""
    rng = np.random.default_rng(0)
    content = [20.0, 30.0, 25.0, 35.0]  # what each image scores, whatever the link
    link = [(5.0, i, r, content[i] + 1.0 + rng.normal(0, 0.2)) for i in range(4)
            for r in range(2) if (i, r) != (0, 1)]
    base = [(5.0, i, r, content[i] + rng.normal(0, 0.2)) for i in range(3) for r in range(2)]
    link.append((10.0, 9, 0, 1.0))  # an SNR the baseline lacks: no row
    store = _store(tmp_path, {"a": link, "b": base})
    rows = compare_links(store, "a", "b", metrics=["psnr"])
    assert len(rows) == 1 and tuple(rows[0]) == COMPARE_COLUMNS
    (row,) = rows
    mine = {(i, r): v for _, i, r, v in link if _ == 5.0}
    theirs = {(i, r): v for _, i, r, v in base}
    keys = sorted(mine.keys() & theirs.keys())
    a = np.array([mine[k] for k in keys])
    b = np.array([theirs[k] for k in keys])
    low, high = stats.t.interval(0.95, len(keys) - 1, loc=(a - b).mean(),
                                 scale=stats.sem(a - b))
    assert row["pairs"] == len(keys) == 5
    assert (row["link_mean"], row["baseline_mean"]) == pytest.approx((a.mean(), b.mean()))
    assert (row["difference"], row["ci_low"], row["ci_high"]) == pytest.approx(
        ((a - b).mean(), low, high))
    assert row["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert 0.5 < row["ci_low"] < 1.0 < row["ci_high"] < 1.5  # the +1 dB, pinned down
    unpaired = stats.t.interval(0.95, 4, loc=0, scale=stats.sem(a))[1]
    assert high - low < unpaired  # the images' spread alone is wider


def test_metrics_default_to_all_and_degenerate_cases_give_nan(tmp_path):
    store = _store(tmp_path, {"a": [(1.0, 0, 0, 12.0), (1.0, 1, 0, 14.0)],
                              "b": [(1.0, 0, 0, 10.0), (1.0, 1, 0, 12.0)]})
    rows = compare_links(store, "a", "b")
    assert [r["metric"] for r in rows] == ["psnr", "ssim"]
    assert rows[0]["difference"] == 2.0 and (rows[0]["ci_low"], rows[0]["ci_high"]) == (2.0, 2.0)
    assert math.isnan(rows[0]["p_value"])  # equal differences: no t statistic
    single = compare_links(_store(tmp_path / "s", {"a": [(1.0, 0, 0, 3.0)],
                                                   "b": [(1.0, 0, 0, 1.0)]}), "a", "b")
    assert single[0]["pairs"] == 1 and math.isnan(single[0]["ci_low"])


def test_errors_name_the_link_or_metric(tmp_path):
    store = _store(tmp_path, {"a": [(1.0, 0, 0, 12.0)], "b": [(2.0, 0, 0, 10.0)]})
    with pytest.raises(InputError, match=r"no image rows of link 'c' \(links with images: a, b\)"):
        compare_links(store, "c", "a")
    with pytest.raises(InputError, match=r"--metric lpips: not in .*r\.h5 \(image metrics: "
                                         r"psnr, ssim; or channel_uses\)"):
        compare_links(store, "a", "b", metrics=["lpips"])
    with pytest.raises(InputError, match=r"links 'a' and 'b' share no image and transmission"):
        compare_links(store, "a", "b")


def test_compare_command_prints_and_writes_csv(tmp_path, capsys):
    store = _store(tmp_path, {"a": [(1.0, i, 0, 12.0 + i * i) for i in range(3)],
                              "b": [(1.0, i, 0, 10.0 + i) for i in range(3)]})
    store.save()
    out = tmp_path / "cmp" / "d.csv"
    assert main(["compare", str(store.path), "a", "b", "--metric", "psnr", "--csv",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a - b, paired" in printed and "psnr" in printed
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(COMPARE_COLUMNS) and len(lines) == 2
    assert lines[1].startswith("a,b,1.0,psnr,") and lines[1].endswith(",3")
    assert main(["compare", str(store.path), "a", "nope"]) == 2
    assert "no image rows of link 'nope'" in capsys.readouterr().err


def test_channel_uses_are_compared_when_asked(tmp_path):
    """--metric channel_uses pairs what each link spent per image (a HARQ link's varies)."""
    store = ResultsStore(tmp_path / "r.h5", {})
    for link, uses in (("harq", [288, 576, 864]), ("once", [288, 288, 288])):
        store.add(link, {"link": link}, {"images": [
            {"link": link, "snr_db": 1.0, "image_index": i, "repeat": 0, "failed": False,
             "channel_uses": u, "metric_psnr": 10.0} for i, u in enumerate(uses)]})
    (row,) = compare_links(store, "harq", "once", metrics=["channel_uses"])
    assert (row["link_mean"], row["baseline_mean"], row["difference"]) == (576, 288, 288)
    assert [r["metric"] for r in compare_links(store, "harq", "once")] == ["psnr"]
