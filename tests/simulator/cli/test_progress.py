"""What ``semlink run`` shows while it runs: plain progress lines where stderr is not a terminal
(a log file, a batch scheduler), none with -q, one per task with -v; and no escape sequence at
all under NO_COLOR, even where colour is forced."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

import semlink.cli.progress
from semlink.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

#: Four BER tasks of a few thousand bits each: the fastest run there is.
SCENARIO = """\
name: tiny
device: cpu
snr: {kind: ebno, points_db: [0, 2, 4, 6]}
links:
  qpsk: {type: ber, modulation: 4}
monte_carlo: {target_bit_errors: 10, min_bits: 2000, max_bits: 2000, batch_bits: 2000}
"""
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ semlink run tiny: (\d+)/4 tasks, "
                  r"\d+\.\d\d tasks/s, ETA \d+:\d\d:\d\d$")
TASK = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ semlink run tiny: task (\d)/4: qpsk at "
                  r"(\d) dB, batch 0, \d+\.\d\d s$")


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return path


def _run(scenario, capsys, *flags: str) -> tuple[str, str]:
    assert main(["run", str(scenario), "-o", str(scenario.parent / "r.h5"), "--overwrite",
                 *flags]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_a_run_logged_to_a_file_writes_plain_progress_lines(scenario, tmp_path):
    """The first and the last task always get a line: a short run shows at least one."""
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "semlink", "run", str(scenario), "-o",
                               str(tmp_path / "r.h5")], stderr=log, stdout=subprocess.PIPE,
                              text=True, timeout=300)
    text = (tmp_path / "log").read_text()
    assert proc.returncode == 0, text
    done = [int(m.group(1)) for m in map(LINE.match, text.splitlines()) if m]
    assert done[0] == 1 and done[-1] == 4, text
    assert "\x1b[" not in text and "results: " in text  # no bar, then the summary


@pytest.mark.parametrize("interval, expected", [(1e9, [1, 4]), (0.0, [1, 2, 3, 4])])
def test_lines_come_at_most_every_interval_besides_the_first_and_last(
        interval, expected, scenario, capsys, monkeypatch):
    monkeypatch.setattr(semlink.cli.progress, "LOG_INTERVAL_S", interval)
    _, err = _run(scenario, capsys)
    assert [int(m.group(1)) for m in map(LINE.match, err.splitlines()) if m] == expected


def test_quiet_shows_no_progress_and_no_summary(scenario, capsys):
    assert _run(scenario, capsys, "-q") == ("", "")


def test_verbose_adds_a_line_per_task(scenario, capsys, monkeypatch):
    monkeypatch.setattr(semlink.cli.progress, "LOG_INTERVAL_S", 1e9)
    _, err = _run(scenario, capsys, "-v")
    tasks = [(int(m.group(1)), int(m.group(2))) for m in map(TASK.match, err.splitlines()) if m]
    assert tasks == [(1, 0), (2, 2), (3, 4), (4, 6)]
    assert err.rstrip().splitlines()[-1].startswith("semlink run: ")  # and the wall time


@pytest.mark.parametrize("force", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_no_color_writes_no_escape_sequence_even_where_colour_is_forced(
        force, scenario, capsys, monkeypatch):
    for name, value in force.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = _run(scenario, capsys)
    assert "\x1b[" in out + err  # forced: the summary table has its styles
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = _run(scenario, capsys)
    assert "\x1b[" not in out + err
    assert "│ qpsk │" in err and any(map(LINE.match, err.splitlines()))
