"""Results store: one HDF5 file per run, rewritten atomically after every finished point.

Layout of the file::

    /                  attrs: format, scenario_text, scenario_name, scenario_hash,
                              versions (JSON: semlink, python, torch, ...), device,
                              device_type, fid_reference, created_utc, updated_utc,
                              planned_points (JSON: every task of the run), shard ("K/N",
                              only in a shard's file), merged_from (JSON, only after a merge)
    /tables/<table>/<column>   one dataset per column: 1-D float64, int64, bool or UTF-8 str,
                               or 2-D float32 for a vector per row (feature vectors);
                               the group's ``columns`` attr (JSON) gives the column order

Tables are tidy: one row per observation. The sweep runner writes ``points`` (one row per finished
task), ``images`` (one row per image and transmission), ``ber`` (bit and block error counts) and
whatever else a link reports. Counts are stored, not rates, so runs merge and resume by adding.

Crash safety: every :meth:`ResultsStore.add` writes the whole file to ``<path>.tmp``, fsyncs it and
renames it over ``<path>``. A reader (or a run killed with SIGKILL at any moment) therefore always
finds either the previous or the new complete file, never a torn one. Results files are small
(metrics, not images), so rewriting is cheap next to the simulation of a point.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simulator.errors import InputError

__all__ = ["ResultsStore", "FORMAT_VERSION", "JSON_ATTRS", "reconstructions_dir"]

FORMAT_VERSION = 1
#: Root attributes holding dicts or lists: HDF5 keeps them as JSON text, :meth:`ResultsStore.open`
#: gives them back as values.
JSON_ATTRS = frozenset({"versions", "planned_points", "merged_from"})
_STR = h5py.string_dtype(encoding="utf-8")


class ResultsStore:
    """Tables of results for one scenario, kept in memory and mirrored to an HDF5 file.

    :param path: The ``.h5`` file.
    :param attrs: Root attributes (``scenario_text``, ``scenario_hash``, ``versions``, ...).
    :param tables: ``{table: {column: list}}`` already present (from :meth:`open`).
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any],
                 tables: Mapping[str, Mapping[str, list]] | None = None) -> None:
        self.path = Path(path)
        self.attrs: dict[str, Any] = dict(attrs)
        self._tables: dict[str, dict[str, list]] = {
            name: {col: list(values) for col, values in cols.items()}
            for name, cols in (tables or {}).items()}
        self._done: set[str] = set(self._tables.get("points", {}).get("point_id", []))

    # ------------------------------------------------------------------ reading
    @classmethod
    def open(cls, path: str | Path) -> "ResultsStore":
        """Read a results file.

        :raises InputError: If the file is missing or is not a semlink results file.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: results file not found")
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: _from_h5(v) for k, v in f.attrs.items()}
                for key in JSON_ATTRS.intersection(attrs):
                    attrs[key] = json.loads(attrs[key])
                if attrs.get("format") != FORMAT_VERSION:
                    raise InputError(f"{path}: not a semlink results file (format "
                                     f"{attrs.get('format')!r}, expected {FORMAT_VERSION})")
                tables = {name: {col: [_from_h5(v) for v in grp[col][()]]
                                 if grp[col].ndim == 1 else list(grp[col][()])
                                 for col in json.loads(grp.attrs["columns"])}
                          for name, grp in f.get("tables", {}).items()}
        except (OSError, KeyError, ValueError) as err:
            raise InputError(f"{path}: cannot read results file ({err})") from None
        return cls(path, attrs, tables)

    @property
    def table_names(self) -> list[str]:
        return sorted(self._tables)

    def table(self, name: str) -> dict[str, np.ndarray]:
        """Columns of table ``name`` as NumPy arrays (empty dict if the table does not exist)."""
        return {col: np.asarray(values) for col, values in self._tables.get(name, {}).items()}

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Table ``name`` as a list of row dicts."""
        cols = self._tables.get(name, {})
        n = len(next(iter(cols.values()), []))
        return [{col: values[i] for col, values in cols.items()} for i in range(n)]

    def has(self, point_id: str) -> bool:
        """Whether the task ``point_id`` has finished and is stored."""
        return point_id in self._done

    @property
    def completed_points(self) -> int:
        return len(self._done)

    # ------------------------------------------------------------------ writing
    def add(self, point_id: str, point: Mapping[str, Any],
            tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Store one finished task atomically: its ``points`` row and its rows of other tables.

        :param point_id: Unique id of the task; adding it twice raises.
        :param point: The task's row in ``points`` (``point_id`` is added).
        :param tables: ``{table: rows}``; rows may differ in their keys (missing = None).
        """
        if point_id in self._done:
            raise ValueError(f"point {point_id!r} is already stored")
        staged = {name: {c: list(v) for c, v in cols.items()} for name, cols in self._tables.items()}
        _append(staged, "points", [{"point_id": point_id, **point}])
        for name, rows in tables.items():
            _append(staged, name, list(rows))
        self._write(staged)  # raises before anything changes if a value cannot be stored
        self._tables = staged
        self._done.add(point_id)

    def extend(self, other: "ResultsStore") -> None:
        """Append every point and row of ``other`` (results of the same scenario) in memory;
        :meth:`save` writes them.

        :raises ValueError: If a point of ``other`` is already stored (nothing is appended).
        """
        twice = self._done & other._done
        if twice:
            raise ValueError(f"point {min(twice)!r} is already stored")
        for name in other.table_names:
            _append(self._tables, name, other.rows(name))
        self._done |= other._done

    def save(self) -> None:
        """Write the whole store to ``path`` atomically (temp file, fsync, rename)."""
        self._write(self._tables)

    def _write(self, tables: Mapping[str, Mapping[str, list]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.attrs["format"] = FORMAT_VERSION
        now = _dt.datetime.now(_dt.timezone.utc)
        self.attrs["updated_utc"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")  # as created_utc
        tmp = self.path.with_name(self.path.name + ".tmp")
        arrays = {name: {col: _to_h5(values, f"{name}.{col}") for col, values in cols.items()}
                  for name, cols in tables.items()}
        try:
            handle = h5py.File(tmp, "w")
        except OSError as err:  # h5py's message is a paragraph; name the file in one line
            reason = os.strerror(err.errno) if err.errno else "cannot create it"
            raise OSError(err.errno, f"cannot write results file ({reason})",
                          str(self.path)) from None
        with handle as f:
            for key, value in self.attrs.items():
                f.attrs[key] = json.dumps(value) if key in JSON_ATTRS else value
            group = f.create_group("tables")
            for name, cols in tables.items():
                tgrp = group.create_group(name)
                tgrp.attrs["columns"] = json.dumps(list(cols))  # HDF5 lists members sorted
                for col, values in cols.items():
                    tgrp.create_dataset(col, data=arrays[name][col])
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def reconstructions_dir(results_path: str | Path) -> Path:
    """Folder beside a results file where a run saves reconstructions as PNG
    (``save_reconstructions: true``): ``<stem>_reconstructions/``."""
    path = Path(results_path)
    return path.with_name(path.stem + "_reconstructions")


def _append(tables: dict[str, dict[str, list]], name: str, rows: list[Mapping[str, Any]]) -> None:
    """Append rows; a column missing from some rows (links report different facts) is None
    there, stored as NaN (numbers) or "" (text)."""
    if not rows:
        return
    cols = tables.setdefault(name, {})
    n_before = len(next(iter(cols.values()), []))
    for row in rows:
        for key in row:
            if key not in cols:
                cols[key] = [None] * n_before
    for key, values in cols.items():
        values.extend(row.get(key) for row in rows)


def _to_h5(values: list, where: str) -> np.ndarray:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, np.ndarray):  # a vector per row (e.g. Inception features)
        try:
            return np.stack([np.asarray(v, dtype=np.float32) for v in values])
        except (TypeError, ValueError):
            raise ValueError(f"column {where} holds vectors of different lengths or None") from None
    if isinstance(sample, str):
        return np.array(["" if v is None else v for v in values], dtype=_STR)
    if isinstance(sample, (bool, np.bool_)):
        return np.array(values, dtype=bool)
    if isinstance(sample, (int, np.integer)) and all(isinstance(v, (int, np.integer)) for v in values):
        return np.array(values, dtype=np.int64)
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {where} holds values that are not str, bool, int or float") from None


def _from_h5(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value
