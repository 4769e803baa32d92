"""Seconds per stage of a task (semlink.stage_times): the timer's arithmetic on a fake clock, the
runner's stage boundaries, what a run stores, and what `semlink info` and the JSON export show
(files written before stage times as before)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from semlink.stage_times import (STAGE_COLUMNS, STAGES, StageTimer, TimedChannel,
                                 format_stage_table, stage_totals)

pytestmark = pytest.mark.usefixtures("one_thread")


class FakeClock:
    """A clock that reads what the test sets: ``clock.now += 1.5``."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ the timer
def test_switch_charges_each_interval_to_the_stage_running_in_it():
    clock = FakeClock()
    timer = StageTimer(clock=clock)
    clock.now += 7.0  # before the first stage: no stage's
    timer.switch("load")
    clock.now += 0.5
    timer.switch("transmit")
    clock.now += 1.25
    timer.switch("receive")
    clock.now += 2.0
    timer.switch("transmit")  # a stage run twice adds up
    clock.now += 0.75
    timer.stop()
    clock.now += 3.0  # after stop: no stage's
    assert timer.current is None
    assert timer.seconds == {"load": 0.5, "transmit": 2.0, "channel": 0.0, "receive": 2.0,
                             "metrics": 0.0, "write": 0.0}
    assert timer.columns() == {"seconds_load": 0.5, "seconds_transmit": 2.0,
                               "seconds_channel": 0.0, "seconds_receive": 2.0,
                               "seconds_metrics": 0.0, "seconds_write": 0.0}
    assert list(timer.columns()) == list(STAGE_COLUMNS)


def test_the_running_stage_counts_only_up_to_its_last_switch():
    clock = FakeClock()
    timer = StageTimer(clock=clock)
    timer.switch("metrics")
    clock.now += 4.0
    assert timer.current == "metrics" and timer.seconds["metrics"] == 0.0
    timer.switch("metrics")  # a switch to the running stage closes its interval
    assert timer.seconds["metrics"] == 4.0
    snapshot = timer.seconds
    snapshot["metrics"] = -1.0  # a copy
    assert timer.seconds["metrics"] == 4.0


def test_timer_refuses_unknown_stages_and_clocks():
    timer = StageTimer(clock=FakeClock())
    with pytest.raises(ValueError, match=r"`stage` must be one of .*; got 'decode'"):
        timer.switch("decode")
    with pytest.raises(TypeError, match="`clock` must be callable; got float"):
        StageTimer(clock=1.0)


@pytest.mark.parametrize("device, syncs", [("cpu", 0), ("cuda", 3), ("cuda:1", 3)])
def test_cuda_waits_for_queued_work_at_every_boundary_cpu_never(monkeypatch, device, syncs):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(d))
    timer = StageTimer(device=device, clock=FakeClock())
    timer.switch("transmit")
    timer.switch("receive")
    timer.stop()
    assert calls == [torch.device(device)] * syncs


def test_timed_channel_charges_its_calls_to_channel_and_what_follows_to_receive():
    clock = FakeClock()
    timer = StageTimer(clock=clock)

    class Channel:
        pilot_spacing = 16

        def __call__(self, x, snr_db):
            clock.now += 3.0
            return x + 1, snr_db

    channel = timer.timed(Channel())
    assert isinstance(channel, TimedChannel) and channel.pilot_spacing == 16
    timer.switch("transmit")
    clock.now += 1.0
    assert channel(torch.zeros(2), 5.0)[1] == 5.0
    assert timer.current == "receive"
    clock.now += 0.5
    channel(torch.zeros(2), 5.0)  # a resend: its channel call is channel's
    clock.now += 0.25
    timer.stop()
    assert timer.seconds == {"load": 0.0, "transmit": 1.0, "channel": 6.0, "receive": 0.75,
                             "metrics": 0.0, "write": 0.0}


def test_a_channel_that_raises_still_ends_its_stage():
    clock = FakeClock()
    timer = StageTimer(clock=clock)

    def broken(x, snr_db):
        clock.now += 2.0
        raise ValueError("no")

    timer.switch("transmit")
    with pytest.raises(ValueError, match="no"):
        TimedChannel(broken, timer)(torch.zeros(1), 0.0)
    assert timer.current == "receive" and timer.seconds["channel"] == 2.0


# ------------------------------------------------------------------ stored totals
def test_stage_totals_sum_the_timed_rows_per_link_and_leave_the_others_out():
    nan = float("nan")
    points = {"link": np.array(["a", "b", "a", "a"]), "seconds": np.array([2.0, 1.0, 3.0, 9.0]),
              **{c: np.array([0.25, 0.125, 0.5, nan]) for c in STAGE_COLUMNS}}
    totals = stage_totals(points)
    assert list(totals) == ["a", "b"]
    assert totals["a"] == {"tasks": 2, **dict.fromkeys(STAGES, 0.75), "other": 0.5,
                           "total": 5.0}
    assert totals["b"]["other"] == 0.25 and totals["b"]["total"] == 1.0
    assert stage_totals({"link": points["link"], "seconds": points["seconds"]}) == {}


def test_stage_table_gives_seconds_and_shares_per_link():
    row = {"tasks": 3, "load": 0.0, "transmit": 1.0, "channel": 0.5, "receive": 6.0,
           "metrics": 2.0, "write": 0.0, "other": 0.5, "total": 10.0}
    idle = {**dict.fromkeys(row, 0.0), "tasks": 1}
    lines = format_stage_table({"semantic": row, "b": idle})
    assert lines[0].startswith("  seconds per stage")
    assert lines[1].split() == ["link", "tasks", *STAGES, "other", "total"]
    assert lines[2].split() == ["semantic", "3", "0.00", "1.00", "0.50", "6.00", "2.00", "0.00",
                                "0.50", "10.00"]
    assert lines[3].split() == ["0.0%", "10.0%", "5.0%", "60.0%", "20.0%", "0.0%", "5.0%",
                                "100.0%"]
    assert lines[5].split() == ["-"] * 8  # no time: no shares
    assert format_stage_table({}) == []


# ------------------------------------------------------------------ the runner
TINY = """\
name: stages
seed: 1
device: cpu
images: {source: sample, size: 64, count: 2}
snr: {points_db: [10]}
batch_size: 2
metrics: [psnr]
links:
  jp: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {channel_uses: 1152}}
  qpsk: {type: ber, modulation: 4}
monte_carlo: {min_bits: 2048, max_bits: 2048, batch_bits: 2048}
save_reconstructions: true
"""


def test_the_runner_switches_stages_where_a_task_crosses_them(tmp_path, monkeypatch):
    """The order of a task's stages: an image link is built (transmit), its batch loaded, its
    transmitter runs up to the channel, its receiver after it, then metrics, the PNGs (write)
    and metrics again; a BER point's one Monte-Carlo batch goes transmit, channel, receive,
    metrics."""
    import semlink.images
    import semlink.tasks
    from semlink.plan import plan_tasks
    from semlink.scenario import parse_scenario
    from semlink.tasks import TaskRunner

    switched: list = []

    class Recording(StageTimer):
        def switch(self, stage):
            switched.append(stage)
            super().switch(stage)

    monkeypatch.setattr(semlink.tasks, "StageTimer", Recording)
    monkeypatch.setattr(semlink.images, "save_image", lambda image, path: None)
    scenario = parse_scenario(TINY)
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu", recon_dir=tmp_path)
    image_task, ber_task = plan_tasks(scenario, runner.num_images)
    point, _ = runner.run(image_task)
    assert switched == ["transmit", "load", "transmit", "channel", "receive", "metrics", "write",
                        "metrics", None]
    assert all(point[c] > 0 for c in STAGE_COLUMNS)
    switched.clear()
    point, _ = runner.run(ber_task)
    assert switched == ["transmit", "transmit", "channel", "receive", "metrics", None]
    assert point["seconds_load"] == point["seconds_write"] == 0.0
    assert all(point[f"seconds_{s}"] > 0 for s in ("transmit", "channel", "receive", "metrics"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny scenario run with the Python API, and a copy of its results file with the
    stage columns removed (as a file of before them)."""
    import semlink

    folder = tmp_path_factory.mktemp("stages")
    new, old = folder / "new.h5", folder / "old.h5"
    semlink.run(semlink.read_scenario(text=TINY), output=new)
    shutil.copy(new, old)
    with h5py.File(old, "r+") as f:
        points = f["tables/points"]
        for column in STAGE_COLUMNS:
            del points[column]
        points.attrs["columns"] = json.dumps([c for c in json.loads(points.attrs["columns"])
                                              if c not in STAGE_COLUMNS])
    return new, old


def test_a_run_stores_each_tasks_stage_seconds_within_its_seconds(tiny_run):
    from semlink.results import ResultsStore

    rows = ResultsStore.open(tiny_run[0]).rows("points")
    assert len(rows) == 2
    for row in rows:
        stages = [row[c] for c in STAGE_COLUMNS]
        assert all(isinstance(s, float) and s >= 0.0 for s in stages)
        assert sum(stages) <= row["seconds"] + 1e-9
        # what no stage holds is the runner's dispatch: a small part of the task
        assert row["seconds"] - sum(stages) <= max(0.1 * row["seconds"], 0.05)
    jp = next(r for r in rows if r["link"] == "jp")
    assert jp["seconds_write"] > 0 and jp["seconds_channel"] > 0


def test_info_prints_the_stage_table_and_files_without_it_print_as_before(tiny_run, capsys):
    from semlink.cli import main

    new, old = tiny_run
    assert main(["info", str(new)]) == 0
    with_stages = capsys.readouterr().out.splitlines()
    assert main(["info", str(old)]) == 0
    without = capsys.readouterr().out.splitlines()
    start = with_stages.index("  seconds per stage, summed over each link's tasks, and their "
                              "share of its task seconds:")
    header, jp_seconds, jp_shares = with_stages[start + 1:start + 4]
    assert header.split() == ["link", "tasks", *STAGES, "other", "total"]
    assert jp_seconds.split()[:2] == ["jp", "1"]
    assert with_stages[start + 4].split()[:2] == ["qpsk", "1"]
    assert sum(float(s.rstrip("%")) for s in jp_shares.split()[:-1]) == pytest.approx(100, abs=1)
    assert without == [line.replace(str(new), str(old))
                       for line in with_stages[:start] + with_stages[start + 6:]]


def test_the_json_export_has_the_stage_seconds_when_the_file_does(tiny_run, tmp_path):
    from semlink.export import export_json
    from semlink.results import ResultsStore

    new, old = tiny_run
    data = json.loads(export_json(ResultsStore.open(new), tmp_path / "new.json").read_text())
    stored = ResultsStore.open(new).table("points")
    jp = data["stage_seconds"]["jp"]
    assert set(data["stage_seconds"]) == {"jp", "qpsk"}
    assert jp["tasks"] == 1 and jp["total"] == float(stored["seconds"][stored["link"] == "jp"][0])
    assert math.isclose(sum(jp[s] for s in (*STAGES, "other")), jp["total"])
    data = json.loads(export_json(ResultsStore.open(old), tmp_path / "old.json").read_text())
    assert "stage_seconds" not in data
