"""merge_results on hand-made shard files: what the merged file says about its inputs, and the
planned points no input holds (the end-to-end merge of real shards is in
tests/integration/test_distributed.py)."""
from __future__ import annotations

import pytest

from semlink.errors import InputError
from semlink.merge import merge_results
from semlink.results import ResultsStore

SCENARIO = "name: m\nsnr: {points_db: [1, 2, 3]}\nlinks: {q: {type: ber}}\n"
PLANNED = ["q/snr0/batch0", "q/snr1/batch0", "q/snr2/batch0"]


def _shard(path, k, points, *, created, device, device_type="cpu"):
    store = ResultsStore(path, {"scenario_text": SCENARIO, "scenario_hash": "h" * 64,
                                "device": device, "device_type": device_type,
                                "created_utc": created, "planned_points": PLANNED,
                                "shard": f"{k}/3", "versions": {"semlink": "0.1.0"}})
    for p in points:
        store.add(p, {"link": "q"}, {"ber": [{"link": "q", "bits": 10, "bit_errors": 1}]})
    store.save()
    return path


def test_merged_attributes_and_missing_points(tmp_path):
    """Two of three shards: the missing point is reported; the merged file is no shard, was
    begun when the earliest input was, names each device once and every input in order."""
    a = _shard(tmp_path / "a.h5", 3, [PLANNED[2]], created="2024-05-02T00:00:00Z", device="gpu0")
    b = _shard(tmp_path / "b.h5", 1, [PLANNED[0]], created="2024-05-01T00:00:00Z", device="gpu1")
    c = _shard(tmp_path / "c.h5", 2, [], created="2024-05-03T00:00:00Z", device="gpu0")
    report = merge_results([a, b, c], tmp_path / "m.h5")
    assert report.planned == 3 and report.missing == (PLANNED[1],)
    merged = ResultsStore.open(tmp_path / "m.h5")
    assert sorted(merged.table("points")["point_id"]) == [PLANNED[0], PLANNED[2]]
    attrs = merged.attrs
    assert "shard" not in attrs
    assert attrs["created_utc"] == "2024-05-01T00:00:00Z"
    assert attrs["device"] == "gpu0; gpu1"
    assert [(m["file"], m["shard"]) for m in attrs["merged_from"]] == [
        (str(a), "3/3"), (str(b), "1/3"), (str(c), "2/3")]


def test_overlap_and_other_device_types_are_refused(tmp_path):
    a = _shard(tmp_path / "a.h5", 1, [PLANNED[0]], created="t", device="x")
    b = _shard(tmp_path / "b.h5", 2, [PLANNED[1], PLANNED[0]], created="t", device="x")
    with pytest.raises(InputError, match=rf"b.h5: point {PLANNED[0]} is also in .*a.h5"):
        merge_results([a, b], tmp_path / "m.h5")
    cuda = _shard(tmp_path / "cuda.h5", 2, [PLANNED[1]], created="t", device="x",
                  device_type="cuda")
    with pytest.raises(InputError, match="cuda.h5: was computed on cuda"):
        merge_results([a, cuda], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
