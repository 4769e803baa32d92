"""Export a results file: tidy CSV (a summary and every raw table) and JSON."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from simulator.results import ResultsStore
from simulator.summary import SUMMARY_COLUMNS, summarize

__all__ = ["export_csv", "export_json"]


def export_csv(store: ResultsStore, folder: str | Path) -> list[Path]:
    """Write ``summary.csv`` (columns :data:`~simulator.summary.SUMMARY_COLUMNS`: one row per
    link x SNR x metric) and ``<table>.csv`` for every raw table (``points``, ``ber``, ``images``,
    ...), one row per stored row. Returns the written paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [_write(folder / "summary.csv", list(SUMMARY_COLUMNS), summarize(store))]
    for name in store.table_names:
        rows = store.rows(name)
        written.append(_write(folder / f"{name}.csv", list(rows[0]) if rows else [], rows))
    return written


def export_json(store: ResultsStore, path: str | Path) -> Path:
    """Write ``{"attrs": ..., "summary": [...]}`` as JSON (NaN and infinities as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"attrs": {k: _clean(v) for k, v in store.attrs.items()},
               "summary": [{k: _clean(v) for k, v in r.items()} for r in summarize(store)]}
    path.write_text(json.dumps(payload, indent=1))
    return path


def _write(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
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
