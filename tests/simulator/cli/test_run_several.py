"""`semlink run A.yaml B.yaml ...`: several scenarios one after the other, each into its own
output with the same `--set`, and every file checked before the first task runs - a problem in
the last file is found before hours of the first are spent, and nothing is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from semlink.cli import main
from semlink.images import SAMPLE_DIR
from semlink.results import ResultsStore

BER = """\
name: {name}
seed: 3
device: cpu
snr: {{points_db: [0, 4]}}
links:
  qpsk: {{type: ber, modulation: {modulation}}}
monte_carlo: {{min_bits: 2048, max_bits: 2048, batch_bits: 2048}}
output: {output}
"""

IMAGES = """\
name: short
seed: 3
device: cpu
images: {{source: sample, size: 64, count: 9}}
snr: {{points_db: [4]}}
metrics: [psnr]
links:
  j: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{ratio: 0.05}}}}
output: {output}
"""


def _write(folder: Path, name: str, modulation: str = "4", output: str | None = None) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(BER.format(name=name, modulation=modulation,
                               output=output or str(folder / f"{name}.h5")))
    return path


def test_each_file_runs_into_its_own_output_with_the_same_overrides(tmp_path):
    a, b = _write(tmp_path, "a"), _write(tmp_path, "b", modulation="16")
    assert main(["run", str(a), str(b), "-q", "--set", "snr.points_db=[4]"]) == 0
    for name, modulation in (("a", 4), ("b", 16)):
        store = ResultsStore.open(tmp_path / f"{name}.h5")
        assert store.attrs["scenario_name"] == name
        rows = store.rows("ber")
        assert {row["snr_db"] for row in rows} == {4.0}  # the override reached both files
        assert {row["modulation"] for row in rows} == {modulation}


def test_a_bad_last_file_stops_the_run_before_the_first_starts(tmp_path, capsys):
    a = _write(tmp_path, "a")
    bad = _write(tmp_path, "bad", modulation="5")
    assert main(["run", str(a), str(bad), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"semlink: error: {bad}:") and "modulation" in err[0]
    assert not (tmp_path / "a.h5").exists()


def test_every_files_problems_are_listed(tmp_path, capsys):
    one, two = _write(tmp_path, "one", modulation="5"), _write(tmp_path, "two", modulation="7")
    assert main(["run", str(one), str(two), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[2].strip() for line in err] == [str(one), str(two)]


def test_an_existing_output_of_a_later_file_is_refused_up_front(tmp_path, capsys):
    a, b = _write(tmp_path, "a"), _write(tmp_path, "b")
    assert main(["run", str(b), "-q"]) == 0
    assert main(["run", str(a), str(b), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"semlink: error: {tmp_path / 'b.h5'}: results file exists ({b}); pass "
                   "--resume to continue it or --overwrite to start again")
    assert not (tmp_path / "a.h5").exists()
    assert main(["run", str(a), str(b), "-q", "--resume"]) == 0  # b is complete: kept
    assert (tmp_path / "a.h5").exists()


def test_two_files_with_one_output_are_refused(tmp_path, capsys):
    shared = str(tmp_path / "same.h5")
    a, b = _write(tmp_path, "a", output=shared), _write(tmp_path, "b", output=shared)
    assert main(["run", str(a), str(b), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"semlink: error: {b}: output {shared}: also the output of {a}")
    assert not Path(shared).exists()


@pytest.mark.parametrize("option", [["-o", "x.h5"], ["--output", "x.h5"]])
def test_output_takes_one_scenario(tmp_path, capsys, option):
    a, b = _write(tmp_path, "a"), _write(tmp_path, "b")
    assert main(["run", str(a), str(b), "-q", *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semlink: error: --output: names one results file, for one scenario")


def test_a_file_with_fewer_images_than_its_count_is_refused_up_front(tmp_path, capsys):
    a = _write(tmp_path, "a")
    short = tmp_path / "short.yaml"
    short.write_text(IMAGES.format(output=tmp_path / "short.h5"))
    assert main(["run", str(a), str(short), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"semlink: error: {short}: images.source: folder {SAMPLE_DIR} holds 8 image "
                   "file(s), fewer than images.count 9; add images, or pass --set "
                   "images.count=8")
    assert not (tmp_path / "a.h5").exists()
