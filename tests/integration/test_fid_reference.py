"""FID against fixed reference statistics (`fid_reference`, written by `semlink fid-stats`): with
statistics of the transmitted originals it equals FID against the originals; shards merge with
it; a missing or unreadable file is one line before any task, and at a merge."""
from __future__ import annotations

import pytest

from semlink.cli import main
from semlink.results import ResultsStore
from tests.cli_errors import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")

SCENARIO = """\
name: fid-reference
device: cpu
images: {source: sample, size: 64, count: 4}
snr: {points_db: [5, 15]}
batch_size: 2
metrics: [psnr, fid]
links:
  semantic: {type: semantic, preset: small}
"""


def _fid(path) -> dict[float, float]:
    return {r["snr_db"]: r["fid"] for r in ResultsStore.open(path).rows("fid")}



@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fidref")
    stats = folder / "stats" / "originals.npz"
    assert main(["fid-stats", "sample", "--size", "64", "--count", "4", "-o", str(stats)]) == 0
    (folder / "originals.yaml").write_text(SCENARIO)
    (folder / "fixed.yaml").write_text(SCENARIO + "fid_reference: stats/originals.npz\n")
    for name in ("originals", "fixed"):
        assert main(["run", str(folder / f"{name}.yaml"), "-q", "-o",
                     str(folder / f"{name}.h5")]) == 0
    return folder


def test_statistics_of_the_originals_give_the_same_fid(folder):
    want, got = _fid(folder / "originals.h5"), _fid(folder / "fixed.h5")
    assert set(got) == {5.0, 15.0} and got == pytest.approx(want, rel=1e-9)
    fixed = ResultsStore.open(folder / "fixed.h5")
    assert fixed.attrs["fid_reference"] == str((folder / "stats" / "originals.npz").resolve())
    assert ResultsStore.open(folder / "originals.h5").attrs["fid_reference"] == ""
    # No features of the originals are computed: the statistics stand for them.
    assert not any(p.startswith("(reference)") for p in fixed.attrs["planned_points"])


def test_shards_merge_against_the_statistics(folder, capsys):
    for k in (1, 2):
        assert main(["run", str(folder / "fixed.yaml"), "-q", "--shard", f"{k}/2", "-o",
                     str(folder / "fixed-shards.h5")]) == 0
    for k in (1, 2):  # -o NAME.h5 --shard K/N writes NAME.shardKofN.h5
        (folder / f"fixed-shards.shard{k}of2.h5").rename(folder / f"fixed{k}.h5")
    assert main(["merge", str(folder / "fixed1.h5"), str(folder / "fixed2.h5"), "-o",
                 str(folder / "merged.h5")]) == 0
    assert _fid(folder / "merged.h5") == _fid(folder / "fixed.h5")
    moved = folder / "stats" / "moved.npz"
    (folder / "stats" / "originals.npz").rename(moved)
    try:
        err = one_line_error(["merge", str(folder / "fixed1.h5"), str(folder / "fixed2.h5"), "-o",
                      str(folder / "merged2.h5")], capsys)
        assert "fid_reference: FID statistics" in err and "originals.npz" in err
    finally:
        moved.rename(folder / "stats" / "originals.npz")


def test_bad_reference_is_one_line_before_any_task(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO + "fid_reference: none.npz\n")
    err = one_line_error(["run", str(scenario), "-q", "-o", str(tmp_path / "r.h5")], capsys)
    assert "fid_reference: FID statistics" in err and "none.npz" in err
    assert not (tmp_path / "r.h5").exists()
    scenario.write_text(SCENARIO.replace("[psnr, fid]", "[psnr]") + "fid_reference: a.npz\n")
    err = one_line_error(["validate", str(scenario)], capsys)
    assert "fid_reference: set, but fid is not among the metrics" in err
    err = one_line_error(["fid-stats", "sample", "--size", "64", "--count", "1", "-o",
                  str(tmp_path / "x.npz")], capsys)
    assert "sample: FID statistics need at least 2 images; found 1" in err
    err = one_line_error(["fid-stats", str(tmp_path / "nothing"), "--size", "64", "-o",
                          str(tmp_path / "x.npz")], capsys)
    assert "fid-stats: folder " in err and "nothing does not exist" in err
    err = one_line_error(["fid-stats", "sample", "--size", "64", "-o", str(tmp_path / "x")], capsys)
    assert "--output: " in err and "x: must end in .npz" in err
