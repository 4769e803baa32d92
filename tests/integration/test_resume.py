"""A run killed with SIGKILL at random moments and resumed gives exactly the uninterrupted results."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semlink.cli import main
from semlink.results import ResultsStore

SCENARIO = """\
name: resume-test
seed: 5
device: cpu
channel: {type: awgn}
snr: {kind: ebno, start_db: 0, stop_db: 9, step_db: 1}
links:
  qpsk: {type: ber, modulation: 4}
  16qam: {type: ber, modulation: 16}
monte_carlo: {target_bit_errors: 50, min_bits: 4000, max_bits: 8000, batch_bits: 4000}
"""


def _run(scenario: Path, output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "semlink.cli", "run", str(scenario), "-q",
                             "-o", str(output), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _results(path: Path) -> dict[str, list]:
    store = ResultsStore.open(path)
    # NaN != NaN: compare NaN cells as None.
    ber = sorted(({k: None if v != v else v for k, v in r.items()} for r in store.rows("ber")),
                 key=lambda r: (r["link"], r["snr_db"]))
    points = sorted(r["point_id"] for r in store.rows("points"))
    return {"ber": ber, "points": points}


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    reference = tmp_path / "ref.h5"
    assert _run(scenario, reference).wait(timeout=300) == 0

    output = tmp_path / "killed.h5"
    rng = random.Random(11)
    kills = 0
    proc = _run(scenario, output)
    while kills < 5:
        # Wait until the run has written something, then kill it at a random moment.
        deadline = time.monotonic() + 120
        while not output.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        # The file is readable after every kill, and holds no half point.
        done = _results(output)
        assert len(done["points"]) == len(set(done["points"])) == len(done["ber"])
        proc = _run(scenario, output, "--resume")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert kills >= 3, "the run finished too fast to be killed repeatedly"

    got, want = _results(output), _results(reference)
    assert got["points"] == want["points"] and len(got["points"]) == 20
    assert got["ber"] == want["ber"]


def test_existing_output_and_changed_scenario_are_refused(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("stop_db: 9", "stop_db: 1"))
    output = tmp_path / "r.h5"
    assert main(["run", str(scenario), "-q", "-o", str(output)]) == 0
    before = _results(output)
    assert main(["run", str(scenario), "-q", "-o", str(output)]) == 2
    assert "results file exists; pass --resume" in capsys.readouterr().err
    # Resuming a finished run recomputes nothing.
    assert main(["run", str(scenario), "-q", "-o", str(output), "--resume"]) == 0
    assert _results(output) == before
    scenario.write_text(SCENARIO.replace("stop_db: 9", "stop_db: 2"))
    assert main(["run", str(scenario), "-q", "-o", str(output), "--resume"]) == 2
    assert "holds results of a different scenario" in capsys.readouterr().err
    assert main(["run", str(scenario), "-q", "-o", str(output), "--overwrite"]) == 0
    assert len(_results(output)["points"]) == 6


def test_device_is_checked_by_type_not_hashed(tmp_path, capsys):
    """--device overrides the scenario's device without changing the results' identity (auto,
    cpu and cuda name the same scenario), but a file computed on one device type is never
    resumed on another (CPU float32 and CUDA bfloat16 models give different numbers)."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("stop_db: 9", "stop_db: 1").replace("device: cpu",
                                                                             "device: auto"))
    output = tmp_path / "r.h5"
    assert main(["run", str(scenario), "-q", "-o", str(output), "--device", "cpu"]) == 0
    store = ResultsStore.open(output)
    assert store.attrs["device_type"] == "cpu" and store.attrs["device"].startswith("cpu")
    before = _results(output)
    assert main(["run", str(scenario), "-q", "-o", str(output), "--resume"]) == 0
    assert _results(output) == before
    store.attrs["device_type"] = "cuda"  # as if the first run had had a GPU
    store.save()
    assert main(["run", str(scenario), "-q", "-o", str(output), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "r.h5: was computed on cuda; resuming on cpu would mix results" in err
    assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["run", str(scenario), "--device", "gpu"])
    assert "argument --device: must be auto, cpu, cuda or cuda:N; got 'gpu'" in (
        capsys.readouterr().err)


def test_export_csv_values_equal_hdf5(tmp_path):
    import csv

    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("stop_db: 9", "stop_db: 2"))
    output = tmp_path / "r.h5"
    assert main(["run", str(scenario), "-q", "-o", str(output)]) == 0
    assert main(["export", str(output), "--csv", str(tmp_path / "csv")]) == 0
    with open(tmp_path / "csv" / "ber.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = ResultsStore.open(output).table("ber")
    assert [int(r["bit_errors"]) for r in rows] == table["bit_errors"].tolist()
    np.testing.assert_array_equal([float(r["esno_db"]) for r in rows], table["esno_db"])
    with open(tmp_path / "csv" / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert {r["metric"] for r in summary} == {"ber"}
    first = next(r for r in summary if r["link"] == "qpsk" and float(r["snr_db"]) == 0.0)
    ber_rows = [i for i, (l, s) in enumerate(zip(table["link"], table["snr_db"])) if l == "qpsk" and s == 0]
    expected = table["bit_errors"][ber_rows].sum() / table["bits"][ber_rows].sum()
    assert float(first["value"]) == expected
