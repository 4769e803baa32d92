"""Export a results file: tidy CSV (a summary and every raw table) and JSON."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from semlink.results import ResultsStore
from semlink.stage_times import stage_totals
from semlink.summary import SUMMARY_COLUMNS, summarize

__all__ = ["export_csv", "export_json", "write_table_csv"]


def export_csv(store: ResultsStore, folder: str | Path) -> list[Path]:
    """Write ``summary.csv`` (columns :data:`~semlink.summary.SUMMARY_COLUMNS`: one row per
    link x SNR x metric) and ``<table>.csv`` for every raw table (``points``, ``ber``, ``images``,
    ...), one row per stored row. A column of vectors (the Inception features) does not fit a
    CSV cell: it goes to ``<table>.<column>.npy`` ([rows, d] float32, rows in the CSV's order).
    Returns the written paths."""
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_table_csv(folder / "summary.csv", list(SUMMARY_COLUMNS), summarize(store))]
    for name in store.table_names:
        table = store.table(name)
        vectors = [col for col, values in table.items() if values.ndim == 2]
        for col in vectors:
            np.save(folder / f"{name}.{col}.npy", table[col])
            written.append(folder / f"{name}.{col}.npy")
        rows = [{k: v for k, v in row.items() if k not in vectors} for row in store.rows(name)]
        columns = [col for col in table if col not in vectors]
        written.append(write_table_csv(folder / f"{name}.csv", columns, rows))
    return written


def export_json(store: ResultsStore, path: str | Path) -> Path:
    """Write ``{"attrs": ..., "summary": [...], "stage_seconds": {...}}`` as JSON (NaN and
    infinities as null). ``stage_seconds`` is :func:`semlink.stage_times.stage_totals`: per link
    its timed tasks and their seconds per stage, ``other`` and ``total``; absent for a file
    written before stage times."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"attrs": {k: _clean(v) for k, v in store.attrs.items()},
               "summary": [{k: _clean(v) for k, v in r.items()} for r in summarize(store)]}
    stages = stage_totals(store.table("points"))
    if stages:
        payload["stage_seconds"] = stages
    path.write_text(json.dumps(payload, indent=1))
    return path


def write_table_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts) as CSV with ``columns``, floats in round-trip ``repr`` form."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
    return path


def _csv_value(value: Any) -> Any:
    # repr round-trips floats exactly, so CSV values equal the HDF5 ones.
    return repr(value) if isinstance(value, float) else value


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
