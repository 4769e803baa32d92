"""Paired comparison of two links of one results file, per SNR point and image metric.

Every link of a run transmits the same images, so two links can be compared image by image:
the difference ``link - baseline`` of a metric is taken per (image, transmission) pair that
both links hold at an SNR point, and its mean gets a paired Student-t interval and the p-value
of the paired t-test (scipy's ``ttest_rel``). Pairing removes what the images themselves
contribute to the spread (a detailed photo scores lower on every link), so the interval of a
difference is much narrower than the two links' own intervals suggest; the links' channel draws
stay independent (each link has its own seeds). Failed decodes enter as the link's failure
policy scored them, as in the summary. Set metrics (FID, KID) have no per-image values and are
not compared here.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from semlink.errors import InputError
from semlink.results import ResultsStore
from semlink.summary import t_interval

__all__ = ["COMPARE_COLUMNS", "compare_links"]

#: Columns of every comparison row.
COMPARE_COLUMNS = ("link", "baseline", "snr_db", "metric", "link_mean", "baseline_mean",
                   "difference", "ci_low", "ci_high", "p_value", "pairs")


def compare_links(store: ResultsStore, link: str, baseline: str, *,
                  metrics: list[str] | None = None, confidence: float = 0.95
                  ) -> list[dict[str, Any]]:
    """Paired differences ``link - baseline`` per SNR point (both links hold) and metric.

    :param store: A results file with image rows of both links.
    :param link: Link whose values are compared.
    :param baseline: Link compared against.
    :param metrics: Image metrics (``psnr``, ``ssim``, ...), or ``channel_uses`` (what each
        link spent per image, e.g. with HARQ); None = every image metric the file holds.
    :param confidence: Level of the interval, in (0, 1).
    :output rows: Dicts with :data:`COMPARE_COLUMNS`, by SNR then metric: the two links' means
        over the pairs, the mean difference and its interval (over the finite differences: an
        exact copy's infinite PSNR is left out; NaN bounds for fewer than 2), the p-value (NaN
        for fewer than 2 pairs or differences that are all equal) and the number of pairs.
    :raises InputError: If a link has no image rows, a metric is not in the file, or the links
        share no (image, transmission) pair at any SNR.
    """
    table = store.table("images")
    held = sorted(dict.fromkeys(str(v) for v in table.get("link", [])))
    for name in (link, baseline):
        if name not in held:
            raise InputError(f"{store.path}: no image rows of link {name!r} (links with images: "
                             f"{', '.join(held) or 'none'})")
    available = [c[len("metric_"):] for c in table if c.startswith("metric_")]
    for metric in metrics or []:
        if metric not in available + ["channel_uses"]:
            raise InputError(f"--metric {metric}: not in {store.path} (image metrics: "
                             f"{', '.join(available)}; or channel_uses)")
    metrics = list(metrics or available)
    links = np.asarray(table["link"]).astype(str)
    rows = []
    snrs = set(table["snr_db"][links == link]) & set(table["snr_db"][links == baseline])
    for snr_db in sorted(snrs):
        mine = _by_pair(table, links == link, snr_db)
        theirs = _by_pair(table, links == baseline, snr_db)
        pairs = sorted(mine.keys() & theirs.keys())
        if not pairs:
            continue
        a_rows = [mine[p] for p in pairs]
        b_rows = [theirs[p] for p in pairs]
        for metric in metrics:
            column = "channel_uses" if metric == "channel_uses" else f"metric_{metric}"
            a = np.asarray(table[column][a_rows], dtype=np.float64)
            b = np.asarray(table[column][b_rows], dtype=np.float64)
            difference, low, high = t_interval(a - b, confidence)
            rows.append(dict(zip(COMPARE_COLUMNS, (
                link, baseline, float(snr_db), metric, float(a.mean()), float(b.mean()),
                difference, low, high, _paired_p_value(a, b), len(pairs)))))
    if not rows:
        raise InputError(f"{store.path}: links {link!r} and {baseline!r} share no image and "
                         "transmission at any SNR point")
    return rows


def _by_pair(table: dict[str, np.ndarray], selected: np.ndarray, snr_db: float
             ) -> dict[tuple[int, int], int]:
    """(image index, repeat) -> row index of the selected rows at ``snr_db``."""
    index = np.flatnonzero(selected & (table["snr_db"] == snr_db))
    return {(int(table["image_index"][i]), int(table["repeat"][i])): int(i) for i in index}


def _paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    difference = a - b
    if difference.size < 2 or not np.isfinite(difference).all() or np.ptp(difference) == 0.0:
        return math.nan  # the test statistic is undefined
    return float(stats.ttest_rel(a, b).pvalue)
