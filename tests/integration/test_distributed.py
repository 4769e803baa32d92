"""A sweep split into shards and merged, or run on the workers of a Ray cluster, gives exactly the
results of the whole run in one process, FID and reconstructions included; a partial merge is
finished by --resume; mismatched inputs and bad options are refused in one line."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from semlink.cli import main
from semlink.errors import InputError
from semlink.results import ResultsStore
from semlink.scenario import parse_scenario
from semlink.plan import Shard, plan_tasks
from tests.cli_errors import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")

SCENARIO = """\
name: shards
seed: 3
device: cpu
images: {source: sample, size: 64, count: 4}
snr: {points_db: [5, 15]}
batch_size: 2
repeats: 2
metrics: [psnr, ssim, fid]
output: results/whole.h5
save_reconstructions: true
links:
  semantic: {type: semantic, preset: small}
  jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {channel_uses: 2000}}
  qpsk: {type: ber, modulation: 4}
monte_carlo: {target_bit_errors: 20, min_bits: 2000, max_bits: 4000, batch_bits: 2000}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The whole run, its three shards (default file names), and a merge of shards 1 and 2."""
    folder = tmp_path_factory.mktemp("shards")
    scenario = folder / "s.yaml"
    scenario.write_text(SCENARIO)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        assert main(["run", str(scenario), "-q"]) == 0
        for k in (1, 2, 3):
            assert main(["run", str(scenario), "-q", "--shard", f"{k}/3"]) == 0
        assert main(["merge", "results/whole.shard1of3.h5", "results/whole.shard2of3.h5",
                     "-o", "results/part.h5"]) == 0
    return folder


def _pngs(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def _content(path):
    """Every table's rows, order-free, without timings (NaN compared as None)."""
    store = ResultsStore.open(path)
    content = {}
    for name in store.table_names:
        rows = [{k: (None if isinstance(v, float) and v != v else
                     v.tolist() if isinstance(v, np.ndarray) else v)
                 for k, v in r.items() if not k.startswith("seconds")} for r in store.rows(name)]
        content[name] = sorted(rows, key=repr)
    return content


def test_shards_partition_the_plan():
    scenario = parse_scenario(SCENARIO)
    tasks = plan_tasks(scenario, num_images=4)
    for count in (1, 2, 3, 7, len(tasks) + 2):
        shards = [Shard(k, count).select(tasks) for k in range(1, count + 1)]
        ids = [t.point_id for shard in shards for t in shard]
        assert sorted(ids) == sorted(t.point_id for t in tasks) and len(set(ids)) == len(ids)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "2", "a/b", "-1/2", "1/2/3"])
def test_bad_shard_is_refused(text):
    with pytest.raises(InputError, match="shard: must be K/N"):
        Shard.parse(text)


def test_merged_shards_equal_the_whole_run(runs, capsys):
    assert sorted(p.name for p in (runs / "results").glob("*.h5")) == [
        "part.h5", "whole.h5", "whole.shard1of3.h5", "whole.shard2of3.h5", "whole.shard3of3.h5"]
    shard = ResultsStore.open(runs / "results/whole.shard2of3.h5")
    assert shard.attrs["shard"] == "2/3" and "fid" not in shard.table_names
    merged = runs / "results/merged.h5"
    assert main(["merge", *(str(runs / f"results/whole.shard{k}of3.h5") for k in (3, 1, 2)),
                 "-o", str(merged)]) == 0
    assert "all 12 points from 3 files, and 4 FID points" in capsys.readouterr().out
    whole = _content(runs / "results/whole.h5")
    assert set(whole) == {"points", "images", "features", "fid", "ber", "predictability"}
    assert _content(merged) == whole  # FID to the last bit, though rows came in another order
    attrs = ResultsStore.open(merged).attrs
    assert "shard" not in attrs
    assert [m["shard"] for m in attrs["merged_from"]] == ["3/3", "1/3", "2/3"]
    shard3 = ResultsStore.open(runs / "results/whole.shard3of3.h5")
    assert attrs["merged_from"][0]["versions"] == shard3.attrs["versions"]
    # Each shard saved its reconstructions beside its own file; the merge gathers them.
    pngs = _pngs(runs / "results/merged_reconstructions")
    assert pngs == _pngs(runs / "results/whole_reconstructions") and len(pngs) == 4 + 4 * 2 * 2


def test_partial_merge_is_finished_by_resume(runs, capsys, monkeypatch):
    part = runs / "results/part.h5"
    store = ResultsStore.open(part)
    assert 0 < store.completed_points < 12 and "fid" not in store.table_names
    monkeypatch.chdir(runs)
    assert main(["run", "s.yaml", "-q", "--resume", "-o", str(part)]) == 0
    assert _content(part) == _content(runs / "results/whole.h5")



def test_merge_refuses_inputs_of_different_runs(runs, tmp_path, capsys):
    shard1, shard2 = (str(runs / f"results/whole.shard{k}of3.h5") for k in (1, 2))
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.replace("seed: 3", "seed: 4").replace("jpeg2000:", "#"))
    assert main(["run", str(other), "-q", "--shard", "1/4", "-o", str(tmp_path / "o.h5")]) == 0
    out = str(tmp_path / "m.h5")  # -o names the whole run's file; the shard's is beside it
    err = one_line_error(["merge", shard1, str(tmp_path / "o.shard1of4.h5"), "-o", out], capsys)
    assert "o.shard1of4.h5: holds results of a different scenario than" in err
    cuda = ResultsStore.open(shard2)
    cuda.path, cuda.attrs["device_type"] = tmp_path / "cuda.h5", "cuda"
    cuda.save()
    assert "cuda.h5: was computed on cuda" in one_line_error(
        ["merge", shard1, str(cuda.path), "-o", out], capsys)
    part = str(runs / "results/part.h5")
    assert "also in" in one_line_error(["merge", part, shard2, "-o", out], capsys)
    assert "given twice" in one_line_error(["merge", shard1, shard2, shard1, "-o", out], capsys)
    assert "is one of the inputs" in one_line_error(["merge", shard1, shard2, "-o", shard2], capsys)
    for flags in ([], ["--overwrite"]):  # said "exists; pass --overwrite", then failed on it
        assert f"{tmp_path}: is a folder, not a results file" in one_line_error(
            ["merge", shard1, shard2, "-o", str(tmp_path)] + flags, capsys)
    (tmp_path / "empty.h5").write_bytes(b"")
    assert "empty.h5: cannot read results file" in one_line_error(
        ["merge", shard1, str(tmp_path / "empty.h5"), "-o", out], capsys)
    assert "results file exists; pass --overwrite" in one_line_error(
        ["merge", shard1, "-o", str(tmp_path / "o.shard1of4.h5")], capsys)
    assert not (tmp_path / "m.h5").exists()


def test_a_shard_resumes_only_as_itself(runs, capsys, monkeypatch):
    monkeypatch.chdir(runs)
    shard1 = str(runs / "results/whole.shard1of3.h5")
    err = one_line_error(["run", "s.yaml", "-q", "--resume", "--shard", "2/3", "-o", shard1],
                         capsys)
    assert "holds shard 1/3; resuming it as shard 2/3" in err
    err = one_line_error(["run", "s.yaml", "-q", "--resume", "-o", shard1], capsys)
    assert "holds shard 1/3; resuming it as the whole run" in err
    assert main(["run", "s.yaml", "-q", "--resume", "--shard", "1/3", "-o", shard1]) == 0


def test_shard_option_is_checked_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "s.yaml", "--shard", "4/3"])
    assert exit_info.value.code == 2
    assert "argument --shard: must be K/N with 1 <= K <= N; got 4/3" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ray_session():
    """A Ray session of 2 CPUs on this machine, which ``semlink run --ray`` joins."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20, logging_level="WARNING")
    yield
    ray.shutdown()


def test_ray_workers_give_the_whole_runs_results(runs, ray_session, monkeypatch):
    monkeypatch.chdir(runs)
    assert main(["run", "s.yaml", "-q", "--ray", "--workers", "2", "-o", "results/ray.h5"]) == 0
    # Workers run one torch thread each, as this module does: the same numbers to the last bit.
    assert _content(runs / "results/ray.h5") == _content(runs / "results/whole.h5")
    assert _pngs(runs / "results/ray_reconstructions") == \
        _pngs(runs / "results/whole_reconstructions")
    attrs = ResultsStore.open(runs / "results/ray.h5").attrs
    assert attrs["device"].startswith("Ray: 2 workers on cpu") and attrs["device_type"] == "cpu"
    # Resumed on Ray: a file holding one shard is completed by the workers.
    assert main(["merge", "results/whole.shard3of3.h5", "-o", "results/ray-resumed.h5"]) == 0
    assert main(["run", "s.yaml", "-q", "--ray", "--resume", "-o", "results/ray-resumed.h5"]) == 0
    assert _content(runs / "results/ray-resumed.h5") == _content(runs / "results/whole.h5")


def test_ray_reports_bad_input_from_the_workers_in_one_line(runs, ray_session, tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("preset: small", "preset: stable-cascade-lite, "
                                         "weights: no-weights"))
    out = str(tmp_path / "r.h5")
    err = one_line_error(["run", str(scenario), "-q", "--ray", "-o", out], capsys)
    assert "no-weights: weights directory not found" in err
    scenario.write_text(SCENARIO.replace("device: cpu", "device: cuda"))
    err = one_line_error(["run", str(scenario), "-q", "--ray", "-o", out], capsys)
    assert "device: 'cuda' requested but the Ray cluster has no GPU" in err
    err = one_line_error(["run", str(runs / "s.yaml"), "-q", "--ray", "--workers", "3", "-o", out],
                         capsys)
    assert "--workers: 3 workers need 3 CPUs; the Ray cluster has 2" in err
    assert not (tmp_path / "r.h5").exists()


def test_ray_options_without_ray(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(runs)
    assert "--workers: counts Ray workers; give it with --ray" in one_line_error(
        ["run", "s.yaml", "-q", "--workers", "2", "-o", str(tmp_path / "r.h5")], capsys)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert "--ray: Ray is not installed; pip install 'semlink[ray]'" in one_line_error(
        ["run", "s.yaml", "-q", "--ray", "-o", str(tmp_path / "r.h5")], capsys)


def test_ray_address_where_nothing_listens_fails_fast(runs):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "semlink.cli", "run", "s.yaml", "-q", "--ray",
                           f"127.0.0.1:{port}", "-o", "results/unreachable.h5"],
                          cwd=runs, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and time.monotonic() - started < 60
    assert proc.stderr == f"semlink: error: --ray: no Ray cluster answers at 127.0.0.1:{port} " \
                          "(Connection refused)\n"


def test_info_tells_progress_against_the_plan(runs, tmp_path, capsys):
    shard2 = str(runs / "results/whole.shard2of3.h5")
    one = str(tmp_path / "one.h5")
    assert main(["merge", str(runs / "results/whole.shard1of3.h5"), "-o", one]) == 0
    capsys.readouterr()
    assert main(["info", shard2, one, str(runs / "results/whole.h5")]) == 0
    out = capsys.readouterr().out
    assert f"{shard2}: scenario 'shards' (hash " in out and "), shard 2/3\n" in out
    assert "  4 of 4 tasks done (this shard's)\n" in out
    what = ("  links semantic (semantic), jpeg2000 (classical), qpsk (ber); channel awgn; "
            "images sample at 64 px\n")
    assert f"), merged from 1 file\n{what}  4 of 12 tasks done\n" in out
    assert out.count(what) == 3
    assert "  12 of 12 tasks done, 4 FID points\n" in out
    assert out.count("  device: cpu (") == 3 and out.count("  versions: semlink ") == 3
