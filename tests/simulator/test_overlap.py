"""Overlapped runs (semlink.overlap, semlink.executors.LocalExecutor): the classical link's
tasks on a worker thread beside the semantic link's give the results of one task at a time to
the last bit; a worker's error, an interrupt and a resume behave as in a serial run."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semlink.cli import main
from semlink.errors import InputError
from semlink.executors import LocalExecutor
from semlink.overlap import OVERLAP_ENV, HostWorker, overlap_enabled, runs_on_host
from semlink.results import ResultsStore
from semlink.scenario import parse_scenario
from semlink.sweep import run_scenario
from semlink.tasks import TaskRunner
from tests.cli_errors import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")

#: Two image links, KID (the worker computes Inception features too) and saved PNGs (both
#: threads write the originals): 2 reference, 4 semantic and 4 classical tasks.
SCENARIO = """\
name: overlap
seed: 3
device: cpu
images: {source: sample, size: 64, count: 4}
channel: {type: awgn}
snr: {points_db: [5, 15]}
batch_size: 2
metrics: [psnr, ssim, kid]
links:
  semantic: {type: semantic, preset: small}
  jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {channel_uses: 2000}}
save_reconstructions: true
"""
WORKER = "semlink-host-tasks"


def _run(folder: Path, overlap: str, *, resume: bool = False, on_task=None) -> ResultsStore:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(OVERLAP_ENV, overlap)
        return run_scenario(parse_scenario(SCENARIO), SCENARIO, base_dir=folder, resume=resume,
                            overwrite=not resume, output=folder / "r.h5", on_task=on_task)


def _exact(value):
    """A value as something that compares equal only to the same bits (NaN to NaN)."""
    if isinstance(value, np.ndarray):
        return (str(value.dtype), value.shape, value.tobytes())
    return repr(value) if isinstance(value, float) else value


def _content(path: Path) -> dict[str, list]:
    """Every table's rows of the results file without their seconds, rows and columns in a
    fixed order (tasks finish in any, and a table's columns come in the order its first stored
    rows brought them)."""
    store = ResultsStore.open(path)
    return {name: sorted((tuple(sorted((k, _exact(v)) for k, v in row.items()
                                       if not k.startswith("seconds")))
                          for row in store.rows(name)), key=repr)
            for name in store.table_names}


def _pngs(folder: Path) -> dict[str, bytes]:
    recon = folder / "r_reconstructions"
    return {str(p.relative_to(recon)): p.read_bytes() for p in sorted(recon.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    _run(folder, "0")
    return _content(folder / "r.h5"), _pngs(folder)


@pytest.fixture
def threads_of_tasks(monkeypatch):
    """``[(point_id, thread name)]`` of every task that finished, in the order they did."""
    finished = []
    run = TaskRunner.run

    def spy(self, task):
        result = run(self, task)
        finished.append((task.point_id, threading.current_thread().name))
        return result

    monkeypatch.setattr(TaskRunner, "run", spy)
    return finished


def test_an_overlapped_run_equals_the_serial_run_to_the_last_bit(serial, tmp_path,
                                                                 threads_of_tasks):
    progress_threads = []
    _run(tmp_path, "1", on_task=lambda *_: progress_threads.append(threading.current_thread()))
    assert _content(tmp_path / "r.h5") == serial[0]
    assert _pngs(tmp_path) == serial[1]
    assert len(serial[0]["images"]) == 16 and len(serial[0]["kid"]) == 4
    # It did overlap: the classical link on the worker, the rest here; progress here only.
    assert {(p.split("/")[0], t) for p, t in threads_of_tasks} == {
        ("(reference)", "MainThread"), ("semantic", "MainThread"), ("jpeg2000", WORKER)}
    assert progress_threads == [threading.main_thread()] * 10
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("value, expected", [(None, False), ("1", True), ("0", False)])
def test_a_cpu_run_overlaps_only_when_asked_to(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(OVERLAP_ENV, raising=False)
    else:
        monkeypatch.setenv(OVERLAP_ENV, value)
    scenario = parse_scenario(SCENARIO)
    assert LocalExecutor(scenario, base_dir=Path.cwd(), recon_dir=None).overlap is expected
    assert LocalExecutor(scenario, base_dir=Path.cwd(), recon_dir=None,
                         overlap=not expected).overlap is not expected


def test_a_failing_worker_task_fails_the_run_in_one_line_and_resume_completes_it(
        serial, tmp_path, threads_of_tasks, monkeypatch, capsys):
    run = TaskRunner.run  # the spy

    def fail(self, task):
        if task.point_id == "jpeg2000/snr1/batch0":
            raise InputError("links.jpeg2000: codestream refused (a test)")
        return run(self, task)

    monkeypatch.setattr(TaskRunner, "run", fail)
    monkeypatch.setenv(OVERLAP_ENV, "1")
    (tmp_path / "s.yaml").write_text(SCENARIO)
    argv = ["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "r.h5"), "-q"]
    assert one_line_error(argv, capsys) == ("semlink: error: links.jpeg2000: codestream "
                                            "refused (a test)\n")
    stored = set(ResultsStore.open(tmp_path / "r.h5").table("points")["point_id"])
    finished = {p for p, _ in threads_of_tasks}
    # The worker's tasks before the failing one were saved, and every finished task with them.
    assert {"jpeg2000/snr0/batch0", "jpeg2000/snr0/batch1"} <= stored == finished
    assert "jpeg2000/snr1/batch0" not in stored

    monkeypatch.setattr(TaskRunner, "run", run)
    assert main([*argv, "--resume"]) == 0
    assert _content(tmp_path / "r.h5") == serial[0]


@pytest.mark.parametrize("where", ["in a task", "in the progress callback"])
def test_an_interrupt_keeps_every_finished_task_and_resume_completes_the_run(
        serial, tmp_path, threads_of_tasks, monkeypatch, where):
    """Ctrl-C in this thread's task (inside the executor) or while a result is stored and
    reported (outside it): the worker's running task is waited for, and every task that
    finished, on either thread, is in the file."""
    run, calls = TaskRunner.run, []  # the spy

    def interrupt_in_task(self, task):
        if task.point_id == "semantic/snr0/batch1":
            raise KeyboardInterrupt
        return run(self, task)

    def interrupt_in_progress(*_):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    if where == "in a task":
        monkeypatch.setattr(TaskRunner, "run", interrupt_in_task)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "1", on_task=interrupt_in_progress if where != "in a task" else None)
    stored = ResultsStore.open(tmp_path / "r.h5").table("points")["point_id"]
    assert sorted(stored) == sorted(p for p, _ in threads_of_tasks)
    assert 3 <= len(stored) < 10

    monkeypatch.setattr(TaskRunner, "run", run)
    _run(tmp_path, "1", resume=True)
    assert _content(tmp_path / "r.h5") == serial[0]


# ---------------------------------------------------------------------------- the parts
@pytest.mark.parametrize("value, device, expected", [
    (None, "cpu", False), (None, "cuda", True), (None, "cuda:1", True), ("", "cuda", True),
    ("1", "cpu", True), (" 1 ", "cpu", True), ("0", "cuda", False)])
def test_overlap_is_on_for_cuda_unless_the_variable_says_otherwise(monkeypatch, value, device,
                                                                  expected):
    if value is None:
        monkeypatch.delenv(OVERLAP_ENV, raising=False)
    else:
        monkeypatch.setenv(OVERLAP_ENV, value)
    assert overlap_enabled(device) is expected


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_another_value_of_the_variable_is_refused(monkeypatch, value):
    monkeypatch.setenv(OVERLAP_ENV, value)
    with pytest.raises(InputError, match=rf"^SEMLINK_OVERLAP: must be 1 \(overlap .*\) or 0 "
                                         rf"\(one task at a time\); got '{value}'$"):
        overlap_enabled("cuda")


def test_only_the_classical_links_run_on_the_host_worker():
    links = parse_scenario("""\
images: {source: sample, size: 64}
snr: {points_db: [5]}
links:
  semantic: {type: semantic, preset: small}
  deepjscc: {type: deepjscc, preset: small}
  ldpc: {type: classical, bandwidth: {match: semantic}}
  jpeg: {type: classical, codec: jpeg, bandwidth: {channel_uses: 4000}}
  ideal: {type: classical, channel_code: capacity, adaptive: true, bandwidth: {channel_uses: 900}}
  ber: {type: ber, modulation: 4}
""").links
    assert [name for name, config in links.items() if runs_on_host(config)] == [
        "ldpc", "jpeg", "ideal"]
    assert not runs_on_host(None)  # the FID/KID reference features


def test_the_executor_checks_its_overlap_argument():
    with pytest.raises(TypeError, match=r"^`overlap` must be a bool or None; got int\.$"):
        LocalExecutor(parse_scenario(SCENARIO), base_dir=Path.cwd(), recon_dir=None, overlap=1)


def test_the_worker_hands_results_back_in_order_then_its_error():
    def square(x):
        if x == 3:
            raise ValueError("three")
        return x * x

    worker = HostWorker(square, [1, 2, 3, 4])
    got = []
    with pytest.raises(ValueError, match="^three$"):
        for value in worker.results(wait=True):
            got.append(value)
    assert got == [1, 4]  # 4 never ran: the worker stops at an error
    assert worker.stop() == [] and worker.ended


def test_the_worker_runs_in_its_thread_after_its_setup():
    seen = threading.local()

    def setup():
        seen.ready = True

    def where(x):
        return x, threading.current_thread().name, getattr(seen, "ready", False)

    worker = HostWorker(where, [1, 2], setup=setup)
    assert list(worker.results(wait=True)) == [(1, WORKER, True), (2, WORKER, True)]
    assert not getattr(seen, "ready", False)


def test_stopping_the_worker_waits_for_its_task_and_returns_what_was_not_handed_out():
    started, release = threading.Event(), threading.Event()

    def slow(x):
        started.set()
        release.wait(timeout=10)
        return x

    worker = HostWorker(slow, [1, 2, 3])
    assert started.wait(timeout=10)
    assert list(worker.results()) == []  # none finished yet: no waiting without wait=True
    threading.Timer(0.2, release.set).start()
    begun = time.perf_counter()
    assert worker.stop() == [1]  # task 1 finished, 2 and 3 never started
    assert time.perf_counter() - begun >= 0.1 and worker.ended
    assert worker.stop() == []


def test_the_worker_checks_its_arguments():
    with pytest.raises(TypeError, match=r"^`run` must be callable; got int\.$"):
        HostWorker(1, [])
    with pytest.raises(TypeError, match=r"^`setup` must be callable or None; got str\.$"):
        HostWorker(abs, [], setup="no")
