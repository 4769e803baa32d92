"""`--set KEY=VALUE` on `semlink run`, `train`, `validate` and `papr`: the value lands in the
document (checked against a file with the value written in by hand), the results record the
effective scenario and their hash covers it, bad overrides are one line each (exit 2, no
traceback, no results file), and the ready recipes ask for their training images."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from semlink.cli import main
from semlink.images import SAMPLE_DIR
from semlink.results import ResultsStore
from semlink.scenario import load_scenario, parse_scenario, scenario_hash
from tests.cli_errors import one_line_error

REPO = Path(__file__).resolve().parents[3]

BER = """\
name: o
seed: 3
device: cpu
snr: {points_db: [0, 4]}
links:
  qpsk: {type: ber, modulation: 4}
monte_carlo: {min_bits: 2048, max_bits: 2048, batch_bits: 2048}
"""

RECIPE = f"""\
name: tiny
seed: 3
checkpoint_every: 5
log_every: 1
data:
  source: ???
  size: 64
  count: 2
model: {{preset: small, stage_b: tiny, stage_a: tiny}}
phases:
  - {{train: [stage_a], steps: 3, batch_size: 2, lr: 1.0e-3}}
validation: null
"""


@pytest.fixture
def ber(tmp_path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(BER)
    return path


def _run(path: Path, out: Path, *extra: str) -> int:
    return main(["run", str(path), "-q", "-o", str(out), *extra])


def test_run_applies_and_records_the_override(ber, tmp_path):
    out = tmp_path / "r.h5"
    assert _run(ber, out, "--set", "snr.points_db=[4]", "--set", "links.qpsk.modulation=16") == 0
    store = ResultsStore.open(out)
    assert {(r["link"], r["snr_db"]) for r in store.rows("points")} == {("qpsk", 4.0)}
    # the file as if written by hand with the new values: the same scenario, the same hash
    by_hand = tmp_path / "by-hand.yaml"
    by_hand.write_text(BER.replace("[0, 4]", "[4]").replace("modulation: 4", "modulation: 16"))
    expected, _ = load_scenario(by_hand)
    assert store.attrs["scenario_hash"] == scenario_hash(expected)
    stored = parse_scenario(store.attrs["scenario_text"])
    assert stored == expected
    assert store.attrs["scenario_text"].startswith(
        f"# {ber} with --set snr.points_db=[4] --set links.qpsk.modulation=16\n")


def test_an_override_equal_to_the_file_keeps_the_hash_another_value_changes_it(ber, tmp_path):
    plain, same, other = (tmp_path / f"{n}.h5" for n in ("plain", "same", "other"))
    assert _run(ber, plain) == 0
    assert _run(ber, same, "--set", "seed=3", "--set", "snr.points_db=[0.0, 4]") == 0
    assert _run(ber, other, "--set", "seed=4") == 0
    hashes = [ResultsStore.open(p).attrs["scenario_hash"] for p in (plain, same, other)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert ResultsStore.open(plain).attrs["scenario_text"] == BER  # no --set: the file's text


def test_resume_refuses_other_overrides_and_takes_the_same(ber, tmp_path, capsys):
    out = tmp_path / "r.h5"
    assert _run(ber, out, "--set", "seed=4") == 0
    line = one_line_error(["run", str(ber), "-q", "-o", str(out), "--resume"], capsys)
    assert "holds results of a different scenario" in line and "--set" in line
    line = one_line_error(["run", str(ber), "-q", "-o", str(out), "--resume", "--set",
                           "seed=5"], capsys)
    assert "holds results of a different scenario" in line
    assert _run(ber, out, "--resume", "--set", "seed=4") == 0


@pytest.mark.parametrize("override, message", [
    ("links.qpsk.modulaton=16", "--set links.qpsk.modulaton=16: unknown key; allowed: type, "),
    ("seed=-1", "--set seed=-1: Input should be greater than or equal to 0; got -1"),
    ("snr.points_db=[1,x]", "--set snr.points_db=[1,x]: snr.points_db.1: Input should be a "
                            "valid number; got 'x'"),
    ("links.qpsk.modulation=5", "--set links.qpsk.modulation=5: "),
    ("snr.points_db.2=7", "--set snr.points_db.2=7: snr.points_db has 2 items (0..1); no item 2"),
    ("seed.x=1", "--set seed.x=1: seed is 3, not a mapping or a list"),
])
def test_bad_values_name_the_override_and_write_nothing(ber, tmp_path, capsys, override,
                                                        message):
    out = tmp_path / "r.h5"
    line = one_line_error(["run", str(ber), "-o", str(out), "--set", override], capsys)
    assert line.startswith(f"semlink: error: {message}")
    assert not out.exists()


@pytest.mark.parametrize("override, message", [
    ("seed", "seed: must be KEY=VALUE"),
    ("=3", "=3: must be KEY=VALUE"),
    ("a..b=3", "a..b=3: 'a..b' is not a dotted path"),
    ("seed=[1,", "seed=[1,: '[1,' is not a valid YAML value"),
])
def test_malformed_set_is_refused_by_the_parser(ber, tmp_path, capsys, override, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(ber), "-o", str(tmp_path / "r.h5"), "--set", override])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"argument --set: {message}" in err
    assert not (tmp_path / "r.h5").exists()


def test_yaml_values_null_lists_and_empty(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(BER + "description: text\n")
    assert main(["validate", "-v", str(path), "--set", "description=", "--set",
                 "images=null", "--set", "snr={start_db: 1, stop_db: 3, step_db: 1}"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out.splitlines()[1])
    assert resolved["description"] == "" and resolved["images"] is None
    assert (resolved["snr"]["points_db"], resolved["snr"]["stop_db"]) == (None, 3.0)


def test_validate_names_required_values_and_takes_them_from_set(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    assert main(["validate", str(recipe)]) == 0
    assert capsys.readouterr().out.endswith("; to run it, pass --set data.source=...\n")
    assert main(["validate", str(recipe), "--set", f"data.source={SAMPLE_DIR}"]) == 0
    assert "to run it" not in capsys.readouterr().out


def test_train_refuses_a_required_value_then_trains_with_it(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.parent.mkdir()
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    line = one_line_error(["train", str(recipe), "-q", "-o", str(out)], capsys)
    assert line == (f"semlink: error: {recipe}:6: data.source: required; pass --set "
                    "data.source=PATH (your training images: a folder or glob pattern)\n")
    assert not out.exists()
    # a relative path on the command line starts from the current directory
    monkeypatch.chdir(SAMPLE_DIR.parent)
    assert main(["train", str(recipe), "-q", "-o", str(out), "--set",
                 f"data.source={SAMPLE_DIR.name}", "--set", "phases.0.steps=2"]) == 0
    stored = yaml.safe_load((out / "train-config.yaml").read_text())
    assert stored["phases"][0]["steps"] == 2
    assert (recipe.parent / stored["data"]["source"]).resolve() == SAMPLE_DIR.resolve()
    with open(out / "log.csv", newline="") as fh:
        assert [r["step"] for r in csv.DictReader(fh)] == ["1", "2"]
    # resuming with other overrides is another config: refused
    line = one_line_error(["train", str(recipe), "-q", "-o", str(out), "--resume", "--set",
                           f"data.source={SAMPLE_DIR.name}", "--set", "phases.0.steps=3",
                           "--set", "seed=4"], capsys)
    assert "was written by a different training config" in line


def test_papr_takes_overrides(tmp_path):
    """QPSK has constant power (nothing above 1 dB); 16-QAM's 4 corners of 16 sit 2.55 dB
    above the mean: the override to 16 must reach the measured link."""
    path = tmp_path / "s.yaml"
    path.write_text(BER.replace("device: cpu\n", "device: cpu\nchannel: {type: awgn}\n"))
    ccdf = {}
    for modulation in (4, 16):
        table = tmp_path / f"c{modulation}.csv"
        assert main(["papr", str(path), "-q", "--csv", str(table), "--set",
                     f"links.qpsk.modulation={modulation}"]) == 0
        with open(table, newline="") as fh:
            ccdf[modulation] = {r["threshold_db"]: float(r["ccdf"]) for r in csv.DictReader(fh)}
    assert ccdf[4]["1.0"] == 0.0
    assert ccdf[16]["1.0"] == pytest.approx(0.25, abs=0.01)

