"""Aggregates of a results file: one row per link x SNR x metric, with confidence intervals.

Error rates come from summed counts (bits, errors) with a 95% interval over independent units
(:func:`semlink.error_rates.unit_interval`: Clopper-Pearson on the effective sample size of the
rows, or image transmissions, the errors were counted in; plain Clopper-Pearson for files
without the units' moments); image metrics, and the channel uses per image of a HARQ link, are
means over images and transmissions with a Student-t 95% interval. Rows are plain dicts
in a tidy long format (the CSV export writes them as they are).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from semlink.error_rates import clopper_pearson, unit_interval
from semlink.results import ResultsStore

__all__ = ["SUMMARY_COLUMNS", "summarize", "clopper_pearson", "t_interval", "throughput_interval"]

#: Columns of every summary row.
SUMMARY_COLUMNS = ("link", "snr_db", "metric", "value", "ci_low", "ci_high", "count",
                   "errors", "failures")


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` Student-t interval; bounds are nan for fewer than 2 finite values
    and equal the mean when all values are equal."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    sem = float(values.std(ddof=1) / np.sqrt(values.size))
    if sem == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def summarize(store: ResultsStore) -> list[dict[str, Any]]:
    """Tidy summary rows of every table the store holds, sorted by link order and SNR."""
    rows = _summarize_ber(store) + _summarize_images(store) + _summarize_sets(store)
    order = {name: i for i, name in enumerate(dict.fromkeys(store.table("points").get("link", [])))}
    rows.sort(key=lambda r: (order.get(r["link"], 0), r["snr_db"], r["metric"]))
    return rows


def throughput_interval(blocks: int, delivered: int, transmissions: int,
                        transmissions_squared: int, delivered_transmissions: int,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Interval of the delivered fraction per send ``R = sum d_i / sum m_i`` over ``n`` code
    blocks (``d_i`` 1 if block ``i`` arrived, ``m_i`` its sends): the ratio estimator's normal
    interval, ``R +- z s / (sqrt(n) mean(m))`` with ``s^2 = sum (d_i - R m_i)^2 / (n - 1)``
    written with the sums ``sum d``, ``sum m``, ``sum m^2`` and ``sum d m`` (d^2 = d). Times the
    payload bits per block over the channel uses per send it bounds the throughput. Clipped to
    [0, 1]; NaN for fewer than two blocks.

    >>> low, high = throughput_interval(100, 50, 100, 100, 50)  # one send each: 0.5 +- 0.098
    >>> round(low, 3), round(high, 3)
    (0.402, 0.598)
    """
    if blocks < 2 or transmissions == 0:
        return math.nan, math.nan
    ratio = delivered / transmissions
    spread = (delivered - 2 * ratio * delivered_transmissions
              + ratio ** 2 * transmissions_squared) / (blocks - 1)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = z * math.sqrt(max(spread, 0.0) / blocks) / (transmissions / blocks)
    return max(0.0, ratio - half), min(1.0, ratio + half)


def _summarize_ber(store: ResultsStore) -> list[dict[str, Any]]:
    sums: dict[tuple[str, float], np.ndarray] = defaultdict(lambda: np.zeros(4, dtype=np.int64))
    # independent units, their bit errors squared and block errors squared, summed (NaN:
    # not recorded, older files and user links; block_errors_squared: BER links, whose
    # units are the blocks)
    units: dict[tuple[str, float], np.ndarray] = defaultdict(lambda: np.zeros(3))
    channel_uses: dict[tuple[str, float], int] = defaultdict(int)
    # sends, sends squared, sends of the delivered blocks: the throughput's interval
    moments: dict[tuple[str, float], np.ndarray] = defaultdict(lambda: np.zeros(3))
    coded: dict[str, bool] = {}
    for r in store.rows("ber"):
        key = (r["link"], r["snr_db"])
        sums[key] += [r["bits"], r["bit_errors"], r["blocks"], r["block_errors"]]
        # BER links record their channel uses (None in other links' rows and older files)
        uses = r.get("channel_uses")
        if uses is not None and np.isfinite(uses):
            channel_uses[key] += int(uses)
        extra = [r.get(k) for k in ("transmissions", "transmissions_squared",
                                    "delivered_transmissions")]
        moments[key] += [np.nan if v is None else float(v) for v in extra]  # NaN: older files
        coded[r["link"]] = np.isfinite(r["code_rate"])
        units[key] += [np.nan if r.get(k) is None else float(r[k])
                       for k in ("units", "bit_errors_squared", "block_errors_squared")]
    rows = []
    for (link, snr_db), (bits, bit_errors, blocks, block_errors) in sums.items():
        # A block error rate means something only for code blocks, not for uncoded rows.
        counts = [("ber", bit_errors, bits)] + ([("bler", block_errors, blocks)] if coded[link] else [])
        n, squares = units[(link, snr_db)][0], units[(link, snr_db)][1:]
        for (metric, errors, trials), squared in zip(counts, squares):
            low, high = (unit_interval(int(errors), int(trials), int(n), int(squared))
                         if np.isfinite(n) and np.isfinite(squared)
                         else clopper_pearson(int(errors), int(trials)))
            rows.append(_row(link, snr_db, metric, errors / trials, low, high, int(trials),
                             int(errors), 0))
        uses = channel_uses.get((link, snr_db), 0)
        if coded[link] and uses > 0:
            # Throughput: payload bits of the blocks delivered without error, per channel use
            # spent on all sends (HARQ included).
            value = (blocks - block_errors) * (bits / blocks) / uses
            sends, squared, delivered_sends = moments[(link, snr_db)]
            low = high = math.nan
            if np.isfinite(squared):
                per_send = (bits / blocks) * sends / uses  # payload bits per channel use
                low, high = (per_send * v for v in throughput_interval(
                    int(blocks), int(blocks - block_errors), int(sends), int(squared),
                    int(delivered_sends)))
            rows.append(_row(link, snr_db, "throughput", float(value), low, high, int(blocks),
                             int(block_errors), 0))
    return rows


def _summarize_images(store: ResultsStore) -> list[dict[str, Any]]:
    table = store.table("images")
    if not table:
        return []
    metric_columns = [c for c in table if c.startswith("metric_")]
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for i, (link, snr_db) in enumerate(zip(table["link"], table["snr_db"])):
        groups[(str(link), float(snr_db))].append(i)
    rows = []
    for (link, snr_db), idx in groups.items():
        failures = int(np.sum(table["failed"][idx]))
        for col in metric_columns:
            mean, low, high = t_interval(table[col][idx])
            rows.append(_row(link, snr_db, col[len("metric_"):], mean, low, high, len(idx), 0,
                             failures))
        if "transmissions" in table and np.isfinite(
                np.asarray(table["transmissions"][idx], dtype=float)).all():  # HARQ links
            mean, low, high = t_interval(np.asarray(table["channel_uses"][idx], dtype=float))
            rows.append(_row(link, snr_db, "channel_uses", mean, low, high, len(idx), 0,
                             failures))
        if "frame_bits" in table and np.isfinite(
                np.asarray(table["frame_bits"][idx], dtype=float)).all():  # None: not recorded
            # The ideal code sends each frame as one codeword: its block error rate is the
            # outage rate (block_errors is 1 where a transmission was in outage).
            outages = int(np.sum(table["block_errors"][idx]))
            low, high = clopper_pearson(outages, len(idx))
            rows.append(_row(link, snr_db, "bler", outages / len(idx), low, high, len(idx),
                             outages, 0))
    return rows


def _summarize_sets(store: ResultsStore) -> list[dict[str, Any]]:
    # Set statistics, count = images: FID has no interval; KID its jackknife one over images
    # (NaN in files from before it was stored).
    nan = float("nan")
    return ([_row(r["link"], r["snr_db"], "fid", r["fid"], nan, nan, r["num_images"], 0,
                  r["num_failed"]) for r in store.rows("fid")]
            + [_row(r["link"], r["snr_db"], "kid", r["kid"], r.get("kid_ci_low", nan),
                    r.get("kid_ci_high", nan), r["num_images"], 0, r["num_failed"])
               for r in store.rows("kid")])


def _row(link: str, snr_db: float, metric: str, value: float, low: float, high: float,
         count: int, errors: int, failures: int) -> dict[str, Any]:
    return dict(zip(SUMMARY_COLUMNS, (str(link), float(snr_db), metric, float(value), low, high,
                                      count, errors, failures)))
