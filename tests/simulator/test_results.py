"""Results store: tables round-trip through HDF5 exactly, writes are atomic, bad files are named."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.results import ResultsStore


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
