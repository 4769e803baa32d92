"""Summary statistics: exact binomial intervals and t-intervals against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from semlink.results import ResultsStore
from semlink.summary import clopper_pearson, summarize, t_interval


def test_clopper_pearson_closed_forms():
    # Zero errors: upper bound 1 - (alpha/2)^(1/n); all errors: lower bound (alpha/2)^(1/n).
    n = 1000
    low, high = clopper_pearson(0, n)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    low, high = clopper_pearson(n, n)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / n), rel=1e-9)
    # Middle: the interval's ends are where the binomial tail probabilities equal alpha/2.
    low, high = clopper_pearson(37, 500)
    assert stats.binom.sf(36, 500, low) == pytest.approx(0.025, rel=1e-6)
    assert stats.binom.cdf(37, 500, high) == pytest.approx(0.025, rel=1e-6)
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))


def test_t_interval_by_hand():
    values = np.array([20.0, 22.0, 24.0, 26.0])
    mean, low, high = t_interval(values)
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert (mean, low, high) == pytest.approx((23.0, 23.0 - half, 23.0 + half))
    assert t_interval(np.array([5.0, 5.0])) == (5.0, 5.0, 5.0)
    mean, low, high = t_interval(np.array([7.0, np.inf]))  # PSNR of an exact copy is inf
    assert mean == 7.0 and math.isnan(low)


def test_summarize_pools_counts_and_images(tmp_path):
    store = ResultsStore(tmp_path / "r.h5", {})
    for i, (bits, errors) in enumerate([(1000, 10), (3000, 20)]):
        store.add(f"b{i}", {"link": "coded"}, {"ber": [{
            "link": "coded", "snr_db": 2.0, "modulation": 4, "code_rate": 0.5, "bits": bits,
            "bit_errors": errors, "blocks": 10, "block_errors": i, "esno_db": 2.0, "ebno_db": 2.0}]})
    store.add("i0", {"link": "sem"}, {"images": [
        {"link": "sem", "snr_db": 5.0, "failed": f, "metric_psnr": p}
        for f, p in [(False, 20.0), (True, 0.0), (False, 30.0)]]})
    rows = {(r["link"], r["metric"]): r for r in summarize(store)}
    ber = rows[("coded", "ber")]
    assert ber["value"] == 30 / 4000 and ber["count"] == 4000 and ber["errors"] == 30
    assert rows[("coded", "bler")]["value"] == 1 / 20
    psnr = rows[("sem", "psnr")]
    assert psnr["value"] == pytest.approx(50 / 3) and psnr["failures"] == 1 and psnr["count"] == 3


def test_the_ideal_codes_block_error_rate_is_its_outage_rate(tmp_path):
    """A link over the ideal code (frame_bits recorded per image) gets a BLER row from its
    images: outages over transmissions, with the exact binomial interval; other image links
    (frame_bits NaN there) get none."""
    store = ResultsStore(tmp_path / "r.h5", {})
    store.add("s0", {"link": "sem"}, {"images": [
        {"link": "sem", "snr_db": 5.0, "failed": False, "metric_psnr": 20.0, "block_errors": 0}
        for _ in range(3)]})
    outage = [1, 0, 0, 1, 0, 0, 0, 1]
    store.add("c0", {"link": "ideal"}, {"images": [
        {"link": "ideal", "snr_db": 5.0, "failed": bool(o), "metric_psnr": 0.0 if o else 18.0,
         "block_errors": o, "frame_bits": 592, "mutual_information_bits": 500.0 + 200 * (1 - o)}
        for o in outage]})
    rows = {(r["link"], r["metric"]): r for r in summarize(store)}
    bler = rows[("ideal", "bler")]
    assert (bler["value"], bler["count"], bler["errors"]) == (3 / 8, 8, 3)
    assert (bler["ci_low"], bler["ci_high"]) == clopper_pearson(3, 8)
    assert ("sem", "bler") not in rows and rows[("ideal", "psnr")]["failures"] == 3


def test_summarize_rows_sorted_uncoded_without_bler_and_fid_counts(tmp_path):
    """Rows follow the order links first appear in ``points`` (not alphabetical), then SNR;
    an uncoded BER link (code_rate nan) gets no BLER row; failures are counted per (link, SNR)
    group; FID rows carry the image and failure counts with no interval."""
    store = ResultsStore(tmp_path / "r.h5", {})
    ber = {"modulation": 4, "bits": 100, "bit_errors": 1, "blocks": 0, "block_errors": 0}
    store.add("p0", {"link": "zeta"}, {"ber": [
        {"link": "zeta", "snr_db": 9.0, "code_rate": float("nan"), "esno_db": 9.0,
         "ebno_db": 6.0, **ber},
        {"link": "zeta", "snr_db": 3.0, "code_rate": float("nan"), "esno_db": 3.0,
         "ebno_db": 0.0, **ber}]})
    store.add("p1", {"link": "alpha"}, {"images": [
        {"link": "alpha", "snr_db": s, "failed": f, "metric_psnr": 10.0}
        for s, f in [(5.0, True), (5.0, True), (1.0, False), (1.0, True), (1.0, False)]]})
    store.add("p2", {"link": "alpha"}, {"fid": [
        {"link": "alpha", "snr_db": 5.0, "fid": 321.0, "num_images": 40, "num_failed": 7}]})
    rows = summarize(store)
    assert [(r["link"], r["snr_db"], r["metric"]) for r in rows] == [
        ("zeta", 3.0, "ber"), ("zeta", 9.0, "ber"),
        ("alpha", 1.0, "psnr"), ("alpha", 5.0, "fid"), ("alpha", 5.0, "psnr")]
    by_key = {(r["link"], r["snr_db"], r["metric"]): r for r in rows}
    assert by_key[("alpha", 1.0, "psnr")]["failures"] == 1
    assert by_key[("alpha", 5.0, "psnr")]["failures"] == 2
    fid = by_key[("alpha", 5.0, "fid")]
    assert (fid["value"], fid["count"], fid["errors"], fid["failures"]) == (321.0, 40, 0, 7)
    assert math.isnan(fid["ci_low"]) and math.isnan(fid["ci_high"])


def test_an_ideal_code_frame_too_small_for_an_image_is_a_failure_not_an_outage(tmp_path):
    """A frame too small for any codestream loses every image (failed) although the channel
    carried it (block_errors 0): the BLER row counts outages, not failures, so it is 1/4 here
    for one outage among four transmissions; like every error-rate row it has no failures."""
    store = ResultsStore(tmp_path / "r.h5", {})
    outage = [0, 1, 0, 0]
    store.add("c0", {"link": "ideal"}, {"images": [
        {"link": "ideal", "snr_db": -2.0, "failed": True, "metric_psnr": 0.0,
         "block_errors": o, "frame_bits": 16, "mutual_information_bits": 20.0 - 10 * o}
        for o in outage]})
    rows = {(r["link"], r["metric"]): r for r in summarize(store)}
    bler = rows[("ideal", "bler")]
    assert (bler["value"], bler["count"], bler["errors"], bler["failures"]) == (1 / 4, 4, 1, 0)
    assert rows[("ideal", "psnr")]["failures"] == 4


def test_ber_interval_is_over_the_units_whose_moments_add_across_rows(tmp_path):
    """Rows that record their units and bit errors squared (BER links; image links: one unit
    per image transmission) get the interval over independent units of their summed counts,
    so two shards' rows give what one run's would; the BLER of an image link over its images
    likewise, and rows without the moments (older files) Clopper-Pearson's over the bits."""
    from semlink.error_rates import unit_interval

    store = ResultsStore(tmp_path / "r.h5", {})
    shards = [(40, 12, 400), (60, 30, 1500)]  # units, bit errors, bit errors squared
    for i, (units, errors, squared) in enumerate(shards):
        store.add(f"b{i}", {"link": "ber"}, {"ber": [{
            "link": "ber", "snr_db": 2.0, "modulation": 4, "code_rate": math.nan,
            "bits": 100 * units, "bit_errors": errors, "blocks": units, "block_errors": 5,
            "esno_db": 2.0, "ebno_db": 2.0, "units": units, "bit_errors_squared": squared}]})
    store.add("c0", {"link": "img"}, {"ber": [{
        "link": "img", "snr_db": 2.0, "modulation": 16, "code_rate": 0.5, "bits": 8000,
        "bit_errors": 300, "blocks": 40, "block_errors": 6, "esno_db": 2.0,
        "ebno_db": math.nan, "units": 8, "bit_errors_squared": 45_000,
        "block_errors_squared": 18}]})
    store.add("o0", {"link": "old"}, {"ber": [{
        "link": "old", "snr_db": 2.0, "modulation": 4, "code_rate": math.nan, "bits": 1000,
        "bit_errors": 10, "blocks": 10, "block_errors": 3, "esno_db": 2.0, "ebno_db": 2.0}]})
    rows = {(r["link"], r["metric"]): r for r in summarize(store)}
    assert (rows[("ber", "ber")]["ci_low"], rows[("ber", "ber")]["ci_high"]) == \
        unit_interval(42, 10_000, 100, 1900)
    assert (rows[("img", "ber")]["ci_low"], rows[("img", "ber")]["ci_high"]) == \
        unit_interval(300, 8000, 8, 45_000)
    assert (rows[("img", "bler")]["ci_low"], rows[("img", "bler")]["ci_high"]) == \
        unit_interval(6, 40, 8, 18)
    assert (rows[("old", "ber")]["ci_low"], rows[("old", "ber")]["ci_high"]) == \
        clopper_pearson(10, 1000)
    # clustered errors: wider than the bitwise interval
    assert rows[("img", "ber")]["ci_high"] - rows[("img", "ber")]["ci_low"] > \
        2 * (clopper_pearson(300, 8000)[1] - clopper_pearson(300, 8000)[0])
