"""Results store: tables round-trip through HDF5 exactly, writes are atomic, bad files are named."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import semlink.results as results
from semlink.cli import _os_error_message, main
from semlink.errors import InputError
from semlink.results import ResultsStore


def _store(path):
    return ResultsStore(path, {"scenario_hash": "abc", "scenario_text": "name: x\n",
                               "versions": {"torch": "2.13"}})


def test_round_trip_columns_and_types(tmp_path):
    path = tmp_path / "r.h5"
    store = _store(path)
    store.add("p0", {"link": "sem", "snr_db": 1.0, "seconds": 0.5},
              {"images": [{"image": "a.png", "psnr": 20.25, "failed": False, "channel_uses": 1152},
                          {"image": "b.png", "psnr": float("inf"), "failed": True, "channel_uses": 1152}]})
    store.add("p1", {"link": "sem", "snr_db": 5.0, "seconds": 0.25},
              {"images": [{"image": "a.png", "psnr": 30.0, "failed": False, "channel_uses": 1152}]})
    again = ResultsStore.open(path)
    assert again.has("p0") and again.has("p1") and not again.has("p2")
    assert again.completed_points == 2
    images = again.table("images")
    assert list(images["image"]) == ["a.png", "b.png", "a.png"]
    np.testing.assert_array_equal(images["psnr"], [20.25, np.inf, 30.0])
    assert images["failed"].dtype == bool and list(images["failed"]) == [False, True, False]
    assert images["channel_uses"].dtype == np.int64
    assert again.attrs["scenario_hash"] == "abc" and again.attrs["versions"] == {"torch": "2.13"}
    assert again.rows("points")[1] == {"point_id": "p1", "link": "sem", "snr_db": 5.0, "seconds": 0.25}
    with h5py.File(path) as f:  # plain h5py readers see the documented layout
        assert f["tables/images/psnr"].dtype == np.float64


def test_duplicate_point_raises_and_columns_may_differ(tmp_path):
    store = _store(tmp_path / "r.h5")
    store.add("p0", {"snr_db": 1.0}, {"ber": [{"bits": 10, "bit_errors": 1}]})
    with pytest.raises(ValueError, match="already stored"):
        store.add("p0", {"snr_db": 1.0}, {})
    with pytest.raises(ValueError, match="not str, bool, int or float"):
        store.add("p1", {"snr_db": 2.0}, {"ber": [{"bits": 10, "bad": object()}]})
    # A rejected add leaves the store (and the file) as it was.
    assert ResultsStore.open(tmp_path / "r.h5").table("ber")["bits"].tolist() == [10]
    assert not store.has("p1")
    store.add("p1", {"snr_db": 2.0}, {"ber": [{"bits": 20, "name": "x"}]})
    ber = ResultsStore.open(tmp_path / "r.h5").table("ber")
    assert ber["bits"].tolist() == [10, 20]
    assert np.isnan(ber["bit_errors"][1]) and ber["bit_errors"][0] == 1
    assert ber["name"].tolist() == ["", "x"]


def test_write_is_atomic_no_temp_left(tmp_path):
    store = _store(tmp_path / "r.h5")
    store.add("p0", {"snr_db": 1.0}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_bad_files_give_input_errors(tmp_path):
    with pytest.raises(InputError, match="nope.h5: results file not found"):
        ResultsStore.open(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="junk.h5: cannot read results file"):
        ResultsStore.open(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["x"] = 1
    with pytest.raises(InputError, match="other.h5: not a semlink results file"):
        ResultsStore.open(other)


def test_extend_appends_points_and_rows_of_another_store(tmp_path):
    a, b = _store(tmp_path / "a.h5"), _store(tmp_path / "b.h5")
    a.add("p0", {"link": "sem", "snr_db": 1.0}, {"images": [{"image": "a.png", "psnr": 20.0}]})
    b.add("p1", {"link": "j2k", "snr_db": 1.0, "bler": 0.5},
          {"images": [{"image": "a.png", "psnr": 0.0, "lpips": 1.0}],
           "ber": [{"link": "j2k", "bit_errors": 7}]})
    a.extend(b)
    a.save()
    again = ResultsStore.open(tmp_path / "a.h5")
    assert again.has("p0") and again.has("p1")
    assert [r["point_id"] for r in again.rows("points")] == ["p0", "p1"]
    images = again.table("images")
    np.testing.assert_array_equal(images["psnr"], [20.0, 0.0])
    # A column only the second store has is missing (None) in the first store's rows.
    assert np.isnan(images["lpips"][0]) and images["lpips"][1] == 1.0
    assert again.rows("ber") == [{"link": "j2k", "bit_errors": 7}]
    with pytest.raises(ValueError, match="'p1' is already stored"):
        a.extend(b)
    assert a.completed_points == 2


def test_unwritable_file_is_one_line_naming_it(tmp_path):
    store = _store(tmp_path / "r.h5")
    (tmp_path / "r.h5.tmp").mkdir()  # h5py cannot create its temporary file
    with pytest.raises(OSError) as info:
        store.save()
    assert info.value.filename == str(tmp_path / "r.h5")
    assert info.value.strerror.startswith("cannot write results file (")
    assert "\n" not in str(info.value)


def test_json_attributes_read_back_as_values(tmp_path):
    store = _store(tmp_path / "r.h5")
    store.attrs["planned_points"] = ["a/snr0/batch0", "b/snr0/batch0"]
    store.attrs["scenario_text"] = '{"name": "x"}'  # YAML that is JSON too stays text
    store.save()
    with h5py.File(tmp_path / "r.h5") as f:  # HDF5 readers see JSON text
        assert json.loads(f.attrs["versions"]) == {"torch": "2.13"}
    again = ResultsStore.open(tmp_path / "r.h5")
    assert again.attrs["versions"] == {"torch": "2.13"}
    assert again.attrs["planned_points"] == ["a/snr0/batch0", "b/snr0/batch0"]
    assert again.attrs["scenario_text"] == '{"name": "x"}'


def _two_points(path):
    store = _store(path)
    store.add("p0", {"link": "sem", "snr_db": 1.0},
              {"images": [{"image": f"{i}.png", "metric_psnr": 20.0 + i} for i in range(5)]})
    store.add("p1", {"link": "sem", "snr_db": 5.0}, {})
    return store


def _fail_write_midway(fd, data):  # the disk fills after part of the file is written
    os.write(fd, data[:len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fail_fsync(fd):  # e.g. NFS reports a full quota only when the data is flushed
    raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))


@pytest.mark.parametrize("target, fake, reason", [
    ("_write_all", _fail_write_midway, "No space left on device"),
    ("os.fsync", _fail_fsync, "Disk quota exceeded"),
])
def test_failed_write_keeps_previous_file_and_removes_temp(tmp_path, monkeypatch, target, fake,
                                                           reason):
    path = tmp_path / "r.h5"
    store = _two_points(path)
    before = path.read_bytes()
    monkeypatch.setattr(results if target == "_write_all" else results.os,
                        target.removeprefix("os."), fake)
    with pytest.raises(OSError) as info:
        store.add("p2", {"link": "sem", "snr_db": 9.0}, {"images": [{"image": "x.png"}]})
    err = info.value
    assert (err.filename, err.strerror) == (str(path), f"cannot write results file ({reason})")
    assert _os_error_message(err) == f"{path}: cannot write results file ({reason})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]  # no r.h5.tmp
    assert path.read_bytes() == before
    again = ResultsStore.open(path)
    assert [r["point_id"] for r in again.rows("points")] == ["p0", "p1"]
    assert again.table("images")["metric_psnr"].tolist() == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert not store.has("p2")  # the store is as before too: a later write can succeed
    monkeypatch.undo()
    store.add("p2", {"link": "sem", "snr_db": 9.0}, {})
    assert ResultsStore.open(path).completed_points == 3


def test_real_write_failure_is_one_line_and_exits_cleanly(tmp_path):
    """The OS refuses the write for real (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC);
    the interpreter must exit normally, without h5py's "Exception ignored" blocks."""
    script = textwrap.dedent(f"""
        import resource, signal
        from semlink.results import ResultsStore
        store = ResultsStore({str(tmp_path / "r.h5")!r}, {{"scenario_hash": "abc"}})
        store.add("p0", {{"snr_db": 1.0}}, {{}})
        size = (store.path.stat().st_size // 4096 + 1) * 4096
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        try:
            store.add("p1", {{"snr_db": 2.0}}, {{"t": [{{"v": float(i)}} for i in range(10000)]}})
        except OSError as err:
            print(err.filename, err.strerror, sep="|")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(results.__file__)))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{tmp_path / 'r.h5'}|cannot write results file (File too large)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]
    assert [r["point_id"] for r in ResultsStore.open(tmp_path / "r.h5").rows("points")] == ["p0"]


def _shorten_psnr(f):
    del f["tables/images/metric_psnr"]
    f["tables/images/metric_psnr"] = np.array([1.0, 2.0, 3.0])


def _drop_point_id(f):
    del f["tables/points/point_id"]
    f["tables/points"].attrs["columns"] = json.dumps(["link", "snr_db"])


def _duplicate_point(f):
    del f["tables/points/point_id"]
    f["tables/points/point_id"] = np.array(["p0", "p0"], dtype=h5py.string_dtype())


def _drop_column_dataset(f):
    del f["tables/images/image"]


def _drop_columns_attr(f):
    del f["tables/images"].attrs["columns"]


@pytest.mark.parametrize("damage, message", [
    (_shorten_psnr, "(table images: column metric_psnr has 3 rows, the others 5)"),
    (_drop_point_id, "(table points has 2 rows but no point_id column)"),
    (_duplicate_point, "(table points: point 'p0' is stored twice)"),
    (_drop_column_dataset, "(table images, column image: missing or not a 1-D or 2-D dataset)"),
    (_drop_columns_attr, "(table images has no JSON list of columns)"),
])
def test_damaged_tables_are_refused_on_open(tmp_path, capsys, damage, message):
    path = tmp_path / "r.h5"
    _two_points(path)
    with h5py.File(path, "r+") as f:
        damage(f)
    expected = f"{path}: damaged results file {message}"
    with pytest.raises(InputError) as info:
        ResultsStore.open(path)
    assert str(info.value) == expected
    # export and plot read through open: one line, exit 2, not an IndexError
    assert main(["export", str(path), "--json", str(tmp_path / "r.json")]) == 2
    assert capsys.readouterr().err == f"semlink: error: {expected}\n"
    assert not (tmp_path / "r.json").exists()


def test_a_folder_is_not_a_results_file(tmp_path):
    folder = tmp_path / "out.h5"
    folder.mkdir()
    expected = f"{folder}: is a folder, not a results file; give a file name"
    with pytest.raises(InputError, match=f"^{expected}"):
        ResultsStore.open(folder)
    with pytest.raises(InputError, match=f"^{expected}"):
        ResultsStore(folder, {"scenario_hash": "abc"})  # what merge --overwrite and run build
    store = _store(tmp_path / "later.h5")
    (tmp_path / "later.h5").mkdir()  # appeared after the store was made
    with pytest.raises(InputError, match="later.h5: is a folder"):
        store.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["later.h5", "out.h5"]


SCENARIO = """\
name: folder-test
seed: 1
device: cpu
channel: {type: awgn}
snr: {kind: ebno, start_db: 0, stop_db: 0, step_db: 1}
links:
  qpsk: {type: ber, modulation: 4}
monte_carlo: {target_bit_errors: 1, min_bits: 1000, max_bits: 1000, batch_bits: 1000}
"""


@pytest.mark.parametrize("flags", [[], ["--resume"], ["--overwrite"]])
def test_run_into_a_folder_is_refused_in_one_line(tmp_path, capsys, flags):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["run", str(scenario), "-q", "-o", str(folder), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"semlink: error: {folder}: is a folder, not a results file;")
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]  # no out.tmp
    assert list(folder.iterdir()) == []


def test_concurrent_writer_is_named_and_its_temp_file_kept(tmp_path):
    path = tmp_path / "r.h5"
    store = _two_points(path)
    before = path.read_bytes()
    tmp = tmp_path / "r.h5.tmp"
    with open(tmp, "wb") as other:  # another process is writing the results file
        other.write(b"partial")
        other.flush()
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(OSError) as info:
            store.add("p2", {"snr_db": 9.0}, {})
        assert info.value.errno == errno.EAGAIN
        assert _os_error_message(info.value) == (
            f"{path}: cannot write results file (Resource temporarily unavailable: another "
            "process may be writing it)")
        assert tmp.read_bytes() == b"partial"  # not ours to truncate or remove
        assert path.read_bytes() == before
        # A reader retries briefly, then names the cause in one line.
        with open(path, "rb") as writing:
            fcntl.flock(writing.fileno(), fcntl.LOCK_EX)
            with pytest.raises(InputError) as info:
                ResultsStore.open(path)
        assert str(info.value) == (f"{path}: cannot read results file (Resource temporarily "
                                   "unavailable: another process may be writing it)")
    store.add("p2", {"snr_db": 9.0}, {})  # the other writer is gone: a stale temp is reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]
    assert ResultsStore.open(path).completed_points == 3
