"""The Python API (semlink.api, re-exported by the package): scenarios read and changed as in a
file, runs equal to ``semlink run``'s, progress counted per task, results as the store and the
export hold them, channels built as a run builds them, and ``import semlink`` light."""
from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import semlink
from semlink import transmission
from semlink.channel import build_channel
from semlink.errors import InputError
from semlink.export import export_csv
from semlink.plan import plan_tasks
from semlink.results import ResultsStore
from semlink.scenario import ScenarioError, load_scenario, parse_scenario, scenario_hash
from semlink.seeding import make_generator
from semlink.summary import SUMMARY_COLUMNS, summarize

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
READY = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if not p.name.startswith("train"))

BER = """\
# two BER links, a few thousand bits each
name: ber-api
seed: 2
device: cpu
snr: {points_db: [0, 4, 8]}
links:
  bpsk: {type: ber, modulation: 2}
  qpsk: {type: ber, modulation: 4, code_rate: 1/2}
monte_carlo: {min_bits: 4096, max_bits: 4096, batch_bits: 4096}
"""

IMAGES = """\
name: images-api
device: cpu
images: {source: sample, size: 64, count: 3}
snr: {points_db: [5]}
batch_size: 2
repeats: 2
links:
  semantic: {type: semantic, preset: small}
  jpeg2000: {type: classical, bandwidth: {channel_uses: 2000}}
"""


# ---------------------------------------------------------------------------- the package
def test_import_semlink_loads_nothing_heavy():
    code = ("import semlink, sys; heavy = [m for m in ('torch', 'sionna', 'diffusers', "
            "'pydantic', 'numpy', 'h5py') if m in sys.modules]; assert not heavy, heavy; "
            "assert callable(semlink.read_scenario)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_every_name_of_all_resolves():
    assert {"read_scenario", "run", "open_results", "transmit", "make_channel", "Progress",
            "Results", "LoadedScenario", "ScenarioError", "InputError"} <= set(semlink.__all__)
    for name in semlink.__all__:
        assert getattr(semlink, name) is not None
        assert name in dir(semlink)
    assert semlink.ScenarioError is ScenarioError and semlink.InputError is InputError
    # the function, and no module of that name to shadow it
    assert semlink.transmit is transmission.transmit
    assert importlib.util.find_spec("semlink.transmit") is None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'semlink' has no attribute 'nope'"):
        semlink.nope  # noqa: B018


# ---------------------------------------------------------------------------- scenarios
def test_read_a_file_keeps_its_text_and_folder(tmp_path):
    path = tmp_path / "ber.yaml"
    path.write_text(BER)
    loaded = semlink.read_scenario(path)
    assert loaded.text == BER and loaded.base_dir == tmp_path.resolve()
    assert loaded.scenario == load_scenario(path)[0] and loaded.source == str(path)
    assert semlink.read_scenario(path, base_dir="/").base_dir == Path("/")


def test_read_text_starts_paths_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = semlink.read_scenario(text=BER)
    assert loaded.scenario == parse_scenario(BER) and loaded.base_dir == tmp_path


def test_a_missing_scenario_file_is_one_line(tmp_path):
    with pytest.raises(ScenarioError, match=r"^\S*nope.yaml: scenario file not found$") as err:
        semlink.read_scenario(tmp_path / "nope.yaml")
    assert err.value.problems == [f"{tmp_path / 'nope.yaml'}: scenario file not found"]


def test_scenario_problems_are_one_line_each():
    with pytest.raises(ScenarioError) as err:
        semlink.read_scenario(text=BER.replace("seed: 2", "seed: -1").replace("modulation: 4",
                                                                             "modulation: 5"))
    assert [p.split(": ")[:2] for p in err.value.problems] == [
        ["<scenario>:3", "seed"], ["<scenario>:8", "links.qpsk.modulation"]]
    assert all(p.endswith(("got -1", "got 5")) for p in err.value.problems)


@pytest.mark.parametrize("kwargs", [{}, {"path": "a.yaml", "text": BER}])
def test_read_wants_a_path_or_text(kwargs):
    with pytest.raises(TypeError, match="give `path`"):
        semlink.read_scenario(**kwargs)


@pytest.mark.parametrize("path", READY, ids=[p.stem for p in READY])
def test_an_update_without_changes_gives_the_same_scenario(path):
    """The updated text (the scenario written out as YAML) reads back as the same scenario, hash
    included, for every ready scenario."""
    # the paper's protocols ask for the test images (images.source: ???)
    supplied = {"images.source": "sample"} if "'???'" in path.read_text() else None
    loaded = semlink.read_scenario(path, overrides=supplied)
    again = loaded.updated({})
    assert again.scenario == loaded.scenario
    assert scenario_hash(again.scenario) == scenario_hash(loaded.scenario)
    assert parse_scenario(again.text) == loaded.scenario


def test_updates_merge_mappings_and_none_removes():
    loaded = semlink.read_scenario(text=BER)
    changed = loaded.updated({"snr": {"points_db": [1.5]}, "links": {"bpsk": None,
                                                                     "qpsk": {"modulation": 16}},
                              "monte_carlo": {"max_bits": 8192}, "seed": None})
    scenario = changed.scenario
    assert list(scenario.links) == ["qpsk"] and scenario.links["qpsk"].modulation == 16
    assert scenario.links["qpsk"].code_rate == 0.5  # kept
    assert scenario.snr.values_db() == [1.5] and scenario.seed == 0  # the default
    assert scenario.monte_carlo.max_bits == 8192 and scenario.monte_carlo.min_bits == 4096
    assert parse_scenario(changed.text) == scenario
    assert loaded.scenario == parse_scenario(BER)  # unchanged: frozen


def test_an_invalid_update_names_the_source_and_field(tmp_path):
    path = tmp_path / "ber.yaml"
    path.write_text(BER)
    with pytest.raises(ScenarioError) as err:
        semlink.read_scenario(path).updated({"links": {"qpsk": {"modulaton": 16}}})
    (problem,) = err.value.problems
    assert problem.startswith(f"{path} (updated): links.qpsk.modulaton: unknown key; allowed: "
                              "type, modulation, code_rate, ")


@pytest.mark.parametrize("changes, match", [
    (["snr"], "`changes` must be a mapping"),
    ({"snr": {1: 2}}, "keys must be str"),
    ({"name": object()}, "must hold plain values"),
])
def test_update_type_errors(changes, match):
    with pytest.raises(TypeError, match=match):
        semlink.read_scenario(text=BER).updated(changes)


# ---------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def ber_run(tmp_path_factory):
    """The BER scenario run through the API (with progress) and by ``semlink run``."""
    from semlink.cli import main

    folder = tmp_path_factory.mktemp("ber")
    (folder / "ber.yaml").write_text(BER)
    events = []
    results = semlink.run(semlink.read_scenario(folder / "ber.yaml"),
                          output=folder / "api.h5", progress=events.append)
    assert main(["run", str(folder / "ber.yaml"), "-q", "-o", str(folder / "cli.h5")]) == 0
    return folder, results, events


def _comparable(rows: list[dict]) -> list[dict]:
    """Rows without timings, NaN as None and vectors as lists (so that == compares them)."""
    return [{k: (None if isinstance(v, float) and v != v else
                 v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in row.items() if not k.startswith("seconds")} for row in rows]


def _content(store: ResultsStore) -> dict:
    return {name: _comparable(store.rows(name)) for name in store.table_names}


def test_a_run_equals_the_command_line_run(ber_run):
    folder, results, _ = ber_run
    cli = ResultsStore.open(folder / "cli.h5")
    assert results.attrs["scenario_hash"] == cli.attrs["scenario_hash"]
    assert results.attrs["scenario_text"] == cli.attrs["scenario_text"] == BER
    assert _content(results.store) == _content(cli)


def test_progress_counts_every_task(ber_run):
    _, results, events = ber_run
    tasks = plan_tasks(parse_scenario(BER), num_images=0)
    assert [e.done for e in events] == list(range(1, len(tasks) + 1))
    assert {e.total for e in events} == {len(tasks)} and events[-1].fraction == 1.0
    assert [(e.link, e.snr_db) for e in events] == [(t.link, t.snr_db) for t in tasks]
    assert all(e.images == 0 and e.seconds > 0 for e in events)
    assert [e.seconds for e in events] == list(results.array("points")["seconds"])


def test_a_resumed_run_counts_the_tasks_already_done(tmp_path):
    """A callback that raises stops the run after its first task; the resume reports tasks 2 to
    6 of 6, and the file then holds the whole run."""
    loaded = semlink.read_scenario(text=BER)

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        semlink.run(loaded, output=tmp_path / "r.h5", progress=stop)
    assert ResultsStore.open(tmp_path / "r.h5").completed_points == 1
    with pytest.raises(InputError, match="results file exists; pass --resume"):
        semlink.run(loaded, output=tmp_path / "r.h5")
    events = []
    results = semlink.run(loaded, output=tmp_path / "r.h5", resume=True, progress=events.append)
    assert [(e.done, e.total) for e in events] == [(k, 6) for k in range(2, 7)]
    assert results.store.completed_points == 6


def test_a_pydantic_copy_runs_validated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = parse_scenario(BER).model_copy(update={"snr": parse_scenario(BER).snr.model_copy(
        update={"points_db": [3.0]}), "output": "out/b.h5"})
    results = semlink.run(scenario)
    assert results.path == Path("out/b.h5")
    assert sorted(set(results.array("ber")["snr_db"])) == [3.0]
    assert parse_scenario(results.attrs["scenario_text"]) == scenario
    assert results.attrs["scenario_hash"] == scenario_hash(scenario)
    with pytest.raises(ScenarioError, match=r"^<scenario>: batch_size: Input should be greater"):
        semlink.run(scenario.model_copy(update={"batch_size": 0}))


@pytest.mark.parametrize("scenario, progress, match", [
    ("ber.yaml", None, "`scenario` must be a LoadedScenario"),
    (None, 3, "`progress` must be callable"),
])
def test_run_type_errors(scenario, progress, match):
    with pytest.raises(TypeError, match=match):
        semlink.run(scenario or semlink.read_scenario(text=BER), progress=progress)


# ---------------------------------------------------------------------------- results
@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    events = []
    results = semlink.run(semlink.read_scenario(text=IMAGES), output=folder / "images.h5",
                          progress=events.append)
    return folder, results, events


def test_image_progress_counts_images(image_run):
    _, _, events = image_run
    # 3 images in batches of 2, per link: 2 tasks of 2 and 1 image
    assert [(e.done, e.total, e.link, e.images) for e in events] == [
        (1, 4, "semantic", 2), (2, 4, "semantic", 1), (3, 4, "jpeg2000", 2), (4, 4, "jpeg2000", 1)]


def test_rows_are_the_stored_rows(image_run):
    folder, results, _ = image_run
    store = ResultsStore.open(folder / "images.h5")
    assert results.tables == ["summary", *store.table_names]
    assert {"points", "images", "ber", "predictability"} <= set(results.tables)
    for name in store.table_names:
        assert _comparable(results.rows(name)) == _comparable(store.rows(name))
    assert _comparable(results.rows()) == _comparable(summarize(store))
    assert _comparable(results.rows("summary")) == _comparable(results.rows())
    assert len(results.rows("images")) == 2 * 3 * 2  # links x images x repeats


def test_arrays_hold_what_the_export_writes(image_run, tmp_path):
    """Every column of every table, and the summary, as ``semlink export --csv`` writes it."""
    folder, results, _ = image_run
    export_csv(ResultsStore.open(folder / "images.h5"), tmp_path)
    for name in results.tables:
        with (tmp_path / f"{name}.csv").open(newline="") as fh:
            exported = list(csv.DictReader(fh))
        array = results.array(name)
        assert list(array.dtype.names) == list(exported[0])
        assert len(array) == len(exported)
        for record, row in zip(array, exported):
            for col in array.dtype.names:
                value = record[col]
                if array.dtype[col].kind == "U":
                    assert value == row[col]
                elif array.dtype[col].kind == "b":
                    assert str(bool(value)) == row[col]
                else:
                    assert np.array_equal(value, float(row[col]), equal_nan=True), (name, col)
    summary = results.array("summary")
    assert summary.dtype.names == SUMMARY_COLUMNS
    assert summary["count"].dtype == np.int64 and summary["link"].dtype.kind == "U"


def test_a_vector_column_is_a_subarray_field(tmp_path):
    store = ResultsStore(tmp_path / "v.h5", {"scenario_name": "v"})
    store.add("a/snr0/batch0", {"link": "a"}, {"features": [
        {"link": "a", "feature": np.arange(4, dtype=np.float32)},
        {"link": "a", "feature": np.ones(4, dtype=np.float32)}]})
    results = semlink.open_results(tmp_path / "v.h5")
    features = results.array("features")
    assert features.dtype["feature"].shape == (4,) and features["feature"].shape == (2, 4)
    np.testing.assert_array_equal(features["feature"][0], np.arange(4))
    assert results.rows("summary") == [] and len(results.array("summary")) == 0


def test_an_unknown_table_names_the_tables(image_run):
    _, results, _ = image_run
    with pytest.raises(ValueError, match=r"`table` must be one of summary, ber, .*; got 'imagez'"):
        results.rows("imagez")
    with pytest.raises(ValueError, match="got 'imagez'"):
        results.array("imagez")


def test_a_missing_results_file_is_one_line(tmp_path):
    with pytest.raises(InputError, match=r"missing.h5: results file not found$"):
        semlink.open_results(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="is a folder, not a results file"):
        semlink.open_results(tmp_path)


def test_to_pandas_without_pandas_says_how_to_install_it(image_run, monkeypatch):
    _, results, _ = image_run
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match=r"^Results.to_pandas needs pandas, which is not "
                                          r"installed: pip install pandas$"):
        results.to_pandas()


def test_to_pandas_gives_the_same_table(image_run):
    pandas = pytest.importorskip("pandas")
    _, results, _ = image_run
    frame = results.to_pandas("images")
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == list(
        results.array("images").dtype.names)
    assert len(frame) == len(results.rows("images"))


# ---------------------------------------------------------------------------- channels
def _symbols() -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    return torch.exp(2j * torch.pi * torch.rand(3, 64, generator=gen)).to(torch.complex64)


@pytest.mark.parametrize("config, fields", [
    ("awgn", {}),
    ("rayleigh", {"num_rx_antennas": 2, "coherence_symbols": 8}),
    ({"type": "rician", "k_factor_db": 3.0, "amplifier": {"input_backoff_db": 4}}, {}),
    ("awgn", {"phase_noise_linewidth": 1e-3, "phase_tracking": {"pilot_spacing": 16}}),
])
def test_a_channel_is_built_as_a_run_builds_it(config, fields):
    """The same output as build_channel on the validated section with a generator seeded so."""
    channel = semlink.make_channel(config, seed=7, **fields)
    data = {"type": config, **fields} if isinstance(config, str) else config
    section = parse_scenario(f"channel: {data}\nsnr: {{points_db: [0]}}\n"
                             "links: {b: {type: ber, modulation: 4}}\n").channel
    reference = build_channel(section, generator=make_generator(7, "cpu"), device="cpu")
    x = _symbols()
    x_hat, no_eff = channel(x, 10.0)
    x_ref, no_ref = reference(x, 10.0)
    assert x_hat.shape == x.shape and x_hat.dtype == torch.complex64
    assert no_eff.shape == x.shape and no_eff.dtype == torch.float32
    torch.testing.assert_close(x_hat, x_ref, rtol=0, atol=0)
    torch.testing.assert_close(no_eff, no_ref, rtol=0, atol=0)
    assert semlink.make_channel(section, seed=7)(x, 10.0)[0].equal(x_hat)


def test_the_seed_decides_the_draws():
    x = _symbols()
    first = semlink.make_channel("rayleigh", seed=1)(x, 5.0)[0]
    assert semlink.make_channel("rayleigh", seed=1)(x, 5.0)[0].equal(first)
    assert not semlink.make_channel("rayleigh", seed=2)(x, 5.0)[0].equal(first)


def test_channel_problems_are_one_line_each():
    with pytest.raises(ScenarioError) as err:
        semlink.make_channel("rician", k_factor_db="6", bogus=1)
    assert err.value.problems[0] == "channel.k_factor_db: Input should be a valid number; got '6'"
    assert err.value.problems[1].startswith("channel.bogus: unknown key; allowed: type, ")
    with pytest.raises(ScenarioError, match=r"^channel: must be one of 'awgn', 'rayleigh', "):
        semlink.make_channel("fading")


@pytest.mark.parametrize("args, kwargs, match", [
    (({"type": "awgn"},), {"amplifier": None}, "give the fields"),
    ((3,), {}, "`config` must be a channel type name"),
    (("awgn",), {"seed": True}, "`seed` must be an int >= 0"),
    (("awgn",), {"seed": -1}, "`seed` must be an int >= 0"),
])
def test_channel_type_errors(args, kwargs, match):
    with pytest.raises(TypeError, match=match):
        semlink.make_channel(*args, **kwargs)


def test_check_values_refuses_a_nan_snr():
    with pytest.raises(ValueError):
        semlink.make_channel("awgn")(_symbols(), float("nan"))
