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

Crash safety: every :meth:`ResultsStore.add` builds the whole file in memory (HDF5's core driver),
writes it to ``<path>.tmp``, fsyncs it and renames it over ``<path>``. A reader (or a run killed
with SIGKILL at any moment) therefore always finds either the previous or the new complete file,
never a torn one. HDF5 itself never writes to disk, so a full disk is a plain ``OSError`` from
``os.write`` (HDF5 cannot leave a half-closed file behind to crash the interpreter at exit), and a
failed write removes its temporary file. The writer holds an exclusive ``flock`` on ``<path>.tmp``
from before it truncates it until the rename: a second process writing the same results file
fails with one line instead of renaming a file the first is still writing. Results files are small
(metrics, not images), so rewriting is cheap next to the simulation of a point.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from semlink.errors import InputError, first_line

try:
    import fcntl
except ImportError:  # not POSIX (Windows): results files are written without the lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["ResultsStore", "FORMAT_VERSION", "JSON_ATTRS", "reconstructions_dir"]

FORMAT_VERSION = 1
#: Root attributes holding dicts or lists: HDF5 keeps them as JSON text, :meth:`ResultsStore.open`
#: gives them back as values.
JSON_ATTRS = frozenset({"versions", "planned_points", "merged_from", "preset_training_sizes"})
_STR = h5py.string_dtype(encoding="utf-8")
#: errno values of a lock another process holds.
_BUSY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})
_BUSY_HINT = "another process may be writing it"
_OPEN_TRIES = 10


class ResultsStore:
    """Tables of results for one scenario, kept in memory and mirrored to an HDF5 file.

    :param path: The ``.h5`` file.
    :param attrs: Root attributes (``scenario_text``, ``scenario_hash``, ``versions``, ...).
    :param tables: ``{table: {column: list}}`` already present (from :meth:`open`).
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any],
                 tables: Mapping[str, Mapping[str, list]] | None = None) -> None:
        self.path = Path(path)
        self.check_path(self.path)
        self.attrs: dict[str, Any] = dict(attrs)
        self._tables: dict[str, dict[str, list]] = {
            name: {col: list(values) for col, values in cols.items()}
            for name, cols in (tables or {}).items()}
        self._done: set[str] = set(self._tables.get("points", {}).get("point_id", []))

    @staticmethod
    def check_path(path: str | Path) -> None:
        """Refuse a results path that is a folder (``-o`` given a directory); the constructor,
        :meth:`open` and every write call it.

        :raises InputError: If ``path`` is an existing folder.
        """
        if Path(path).is_dir():
            raise InputError(f"{path}: is a folder, not a results file; give a file name "
                             f"(e.g. {Path(path) / 'results.h5'})")

    # ------------------------------------------------------------------ reading
    @classmethod
    def open(cls, path: str | Path) -> "ResultsStore":
        """Read a results file.

        :raises InputError: If the file is missing, is a folder, is not a semlink results file or
            is damaged (a table's columns of different lengths, a ``points`` table without
            unique ``point_id`` values).
        """
        path = Path(path)
        cls.check_path(path)
        if not path.is_file():
            raise InputError(f"{path}: results file not found")
        for attempt in range(_OPEN_TRIES):
            try:
                with h5py.File(path, "r") as f:
                    attrs = {k: _from_h5(v) for k, v in f.attrs.items()}
                    if attrs.get("format") != FORMAT_VERSION:
                        raise InputError(f"{path}: not a semlink results file (format "
                                         f"{attrs.get('format')!r}, expected {FORMAT_VERSION})")
                    for key in JSON_ATTRS.intersection(attrs):
                        try:
                            attrs[key] = json.loads(attrs[key])
                        except (TypeError, ValueError):
                            raise InputError(f"{path}: damaged results file (attribute {key} "
                                             "is not JSON)") from None
                    tables = _read_tables(f, path)
                break
            except OSError as err:
                # A writer holds its lock on a file it has just renamed here for microseconds.
                if err.errno in _BUSY and attempt + 1 < _OPEN_TRIES:
                    time.sleep(0.02)
                    continue
                hint = f": {_BUSY_HINT}" if err.errno in _BUSY else ""
                raise InputError(f"{path}: cannot read results file "
                                 f"({_reason(err)}{hint})") from None
            except (KeyError, TypeError, ValueError, RuntimeError) as err:
                if isinstance(err, InputError):
                    raise
                raise InputError(f"{path}: cannot read results file ({_reason(err)})") from None
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
        self.check_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.attrs["format"] = FORMAT_VERSION
        now = _dt.datetime.now(_dt.timezone.utc)
        self.attrs["updated_utc"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")  # as created_utc
        arrays = {name: {col: _to_h5(values, f"{name}.{col}") for col, values in cols.items()}
                  for name, cols in tables.items()}
        image = self._file_image(arrays)  # raises before the disk is touched
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = None
        owned = False  # the temporary file is ours to truncate, and to remove after a failure
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            _lock(fd)
            # Another writer may have renamed the file we opened onto the results file
            # between our open and our lock: then ``tmp`` is not the file we hold.
            if not _same_file(fd, tmp):
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            owned = True
            os.ftruncate(fd, 0)
            _write_all(fd, image)
            os.fsync(fd)
            os.replace(tmp, self.path)  # still locked: no writer can truncate it meanwhile
            owned = False
            os.close(fd)
            fd = None
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            if owned:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            hint = f": {_BUSY_HINT}" if err.errno in _BUSY else ""
            raise OSError(err.errno, f"cannot write results file ({_reason(err)}{hint})",
                          str(self.path)) from None
        finally:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _file_image(self, arrays: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
        """The bytes of the HDF5 file holding ``self.attrs`` and ``arrays``, built in memory."""
        name = f"{self.path.name}.{os.getpid()}.{id(self)}.in-memory"  # never created on disk
        with h5py.File(name, "w", driver="core", backing_store=False) as f:
            for key, value in self.attrs.items():
                f.attrs[key] = json.dumps(value) if key in JSON_ATTRS else value
            group = f.create_group("tables")
            for table, cols in arrays.items():
                tgrp = group.create_group(table)
                tgrp.attrs["columns"] = json.dumps(list(cols))  # HDF5 lists members sorted
                for col, data in cols.items():
                    tgrp.create_dataset(col, data=data)
            f.flush()
            return f.id.get_file_image()


def reconstructions_dir(results_path: str | Path) -> Path:
    """Folder beside a results file where a run saves reconstructions as PNG
    (``save_reconstructions: true``): ``<stem>_reconstructions/``."""
    path = Path(results_path)
    return path.with_name(path.stem + "_reconstructions")


def _read_tables(f: h5py.File, path: Path) -> dict[str, dict[str, list]]:
    """The tables of an open results file, checked for what the rest of semlink relies on."""
    root = f.get("tables")
    if root is None:
        return {}
    if not isinstance(root, h5py.Group):
        raise InputError(f"{path}: damaged results file (tables is not a group)")
    tables: dict[str, dict[str, list]] = {}
    for name, grp in root.items():
        where = f"{path}: damaged results file (table {name}"
        if not isinstance(grp, h5py.Group):
            raise InputError(f"{where} is not a group)")
        try:
            cols = json.loads(grp.attrs["columns"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where} has no JSON list of columns)") from None
        if (not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)
                or len(set(cols)) != len(cols)):
            raise InputError(f"{where}: its columns attribute is not a list of distinct names)")
        lengths: dict[str, int] = {}
        table: dict[str, list] = {}
        for col in cols:
            data = grp.get(col)
            if not isinstance(data, h5py.Dataset) or data.ndim not in (1, 2):
                raise InputError(f"{where}, column {col}: missing or not a 1-D or 2-D dataset)")
            lengths[col] = data.shape[0]
            values = data[()]
            table[col] = [_from_h5(v) for v in values] if data.ndim == 1 else list(values)
        if len(set(lengths.values())) > 1:
            n = Counter(lengths.values()).most_common(1)[0][0]
            col = next(c for c, m in lengths.items() if m != n)
            raise InputError(f"{where}: column {col} has {lengths[col]} rows, the others {n})")
        rows = next(iter(lengths.values()), 0)
        if name == "points" and rows:
            ids = table.get("point_id")
            if ids is None:
                raise InputError(f"{where} has {rows} rows but no point_id column)")
            seen: set = set()
            for point_id in ids:
                if point_id in seen:
                    raise InputError(f"{where}: point {point_id!r} is stored twice)")
                seen.add(point_id)
        tables[name] = table
    return tables


def _lock(fd: int) -> None:
    """Lock ``fd`` exclusively without waiting; filesystems (and systems) without locks are
    written unlocked."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in _BUSY:
            raise
        # ENOLCK, ENOTSUP, ENOSYS: no locking there (as HDF5 with locks disabled)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _reason(err: BaseException) -> str:
    """One line on why an OS or HDF5 call failed (h5py's messages span lines)."""
    errno_ = getattr(err, "errno", None)
    return os.strerror(errno_) if errno_ else first_line(err)


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
