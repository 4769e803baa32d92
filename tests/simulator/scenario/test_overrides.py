"""Overrides (`--set KEY=VALUE`, the API's `overrides=`) and required values (`???`) in
semlink.scenario.loading: values read as YAML, required values named with their line and the
`--set` to give, relative paths of overrides rebased from the current directory, the effective
text, and no ready scenario pointing at the project's shared folder."""
from __future__ import annotations

from pathlib import Path

import pytest

import semlink
from semlink.scenario import (MISSING, REMOVE, Override, OverrideError, ScenarioError, as_overrides,
                              load_scenario, missing_paths, parse_scenario, scenario_hash)
from semlink.training.config import load_train_config, parse_train_config

REPO = Path(__file__).resolve().parents[3]

IMAGES = """\
name: o
device: cpu
images:
  source: ???
  size: 256
snr: {points_db: [5]}
links:
  semantic: {type: semantic, preset: small}
"""


@pytest.mark.parametrize("text, key, value", [
    ("seed=3", "seed", 3),
    ("snr.points_db=[1,5]", "snr.points_db", [1, 5]),
    ("x=null", "x", None),
    ("x=1e-9", "x", 1e-9),
    ("x=", "x", ""),
    ("images.source=~/cityscapes/test", "images.source", "~/cityscapes/test"),
    ("a.b={c: 1, d: [x]}", "a.b", {"c": 1, "d": ["x"]}),
    ("x=a=b", "x", "a=b"),
    ("data.source=???", "data.source", MISSING),
    ("~links.img2img-sc", "links.img2img-sc", REMOVE),
])
def test_parse_reads_the_value_as_yaml(text, key, value):
    override = Override.parse(text)
    assert (override.key, override.value, override.origin) == (key, value, f"--set {text}")


@pytest.mark.parametrize("text, reason", [
    ("seed", "must be KEY=VALUE"), ("=1", "must be KEY=VALUE"),
    ("a.=1", "'a.' is not a dotted path"), ("a b=1", "'a b' is not a dotted path"),
    ("x={a: 1", "'{a: 1' is not a valid YAML value"),
    ("~links.x=1", "~KEY removes KEY and takes no value; give --set ~links.x"),
    ("~", "'' is not a dotted path"), ("~a..b", "'a..b' is not a dotted path"),
])
def test_parse_refuses_what_is_no_override(text, reason):
    with pytest.raises(OverrideError, match=f"^--set {text}: ") as info:
        Override.parse(text)
    assert info.value.reason.startswith(reason)


def test_as_overrides_takes_a_mapping_of_plain_values():
    (override,) = as_overrides({"snr.points_db": (1, 5)})
    assert override == Override("snr.points_db", [1, 5], "overrides['snr.points_db']")
    with pytest.raises(TypeError, match="`overrides` must be a mapping"):
        as_overrides(["seed=3"])
    with pytest.raises(TypeError, match=r"`overrides\['x'\]` must hold plain values"):
        as_overrides({"x": object()})


def test_missing_paths():
    assert missing_paths({"a": [{"b": "???"}, "???"], "c": "x???", "d": {"e": MISSING}}) == [
        "a.0.b", "a.1", "d.e"]


def test_a_required_value_is_one_line_with_its_line_and_the_set_to_give(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(IMAGES)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems == [f"{path}:4: images.source: required; pass --set "
                                   "images.source=VALUE"]
    # with another problem of the file, both at once
    path.write_text(IMAGES.replace("seed", "x").replace("device: cpu", "device: gpu"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert [p.split(": ")[1] for p in info.value.problems] == ["images.source", "device"]


def test_a_required_value_in_a_base_names_the_base_and_a_set_of_the_recipe_gives_it(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  source: ???\nphases:\n  - {train: [stage_a], "
                                        "steps: 1}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base: base.yaml\nname: r\n")
    with pytest.raises(ScenarioError, match=rf"^{tmp_path / 'base.yaml'}:2: data.source: "
                                            r"required; pass --set data.source=PATH \(your "):
        load_train_config(recipe)
    recipe.write_text("base: base.yaml\nset: {data.source: photos}\n")
    assert load_train_config(recipe)[0].data.source == "photos"
    cfg, _ = load_train_config(tmp_path / "base.yaml", overrides={"data.source": "photos"})
    assert cfg.data.source == "photos"


def test_required_set_by_an_override_names_the_override(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(IMAGES.replace("???", "sample"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=[Override.parse("images.source=???")])
    assert info.value.problems == ["--set images.source=???: images.source: required; pass "
                                   "--set images.source=VALUE"]


def test_allow_missing_keeps_a_string_and_refuses_where_no_string_goes(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(IMAGES)
    scenario, _ = load_scenario(path, allow_missing=True)
    assert scenario.images.source == MISSING
    path.write_text(IMAGES.replace("size: 256", "size: ???"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, allow_missing=True)
    assert info.value.problems == [f"{path}:5: images.size: required; pass --set "
                                   "images.size=VALUE (Side of the square image, pixels.)"]


def test_overrides_are_applied_after_the_file_and_the_text_is_the_effective_one(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(IMAGES.replace("???", "sample"))
    scenario, text = load_scenario(path, overrides=[Override.parse("snr.points_db=[1, 7]"),
                                                    Override.parse("links.semantic.steps=2")])
    assert scenario.snr.values_db() == [1.0, 7.0] and scenario.links["semantic"].steps == 2
    assert text.startswith(f"# {path} with --set snr.points_db=[1, 7] --set "
                           "links.semantic.steps=2\n")
    assert parse_scenario(text) == scenario
    by_hand = IMAGES.replace("???", "sample").replace("[5]", "[1, 7]").replace(
        "preset: small}", "preset: small, steps: 2}")
    assert scenario_hash(scenario) == scenario_hash(parse_scenario(by_hand))
    assert load_scenario(path)[1] == path.read_text()  # no overrides: the file's own text


TWO_LINKS = IMAGES.replace("???", "sample") + """\
  jpeg2000: {type: classical, bandwidth: {match: semantic}}
"""


def test_a_removed_key_is_gone_from_the_scenario_its_text_and_its_hash(tmp_path):
    """``--set ~KEY`` (Hydra's removal) gives the scenario written without the key."""
    path = tmp_path / "s.yaml"
    path.write_text(TWO_LINKS)
    scenario, text = load_scenario(path, overrides=[Override.parse("~links.jpeg2000")])
    assert list(scenario.links) == ["semantic"]
    assert text.startswith(f"# {path} with --set ~links.jpeg2000\n") and "jpeg2000:" not in text
    assert parse_scenario(text) == scenario
    assert scenario_hash(scenario) == scenario_hash(parse_scenario(IMAGES.replace("???", "sample")))
    # the Python API's mapping takes REMOVE; a key set again after its removal is there
    scenario, _ = load_scenario(path, overrides={
        "links.jpeg2000": REMOVE, "links.jpeg2000.type": "classical",
        "links.jpeg2000.bandwidth.channel_uses": 500})
    assert scenario.links["jpeg2000"].bandwidth.channel_uses == 500


@pytest.mark.parametrize("text, problem", [
    ("~links.jpg", "--set ~links.jpg: links has no key 'jpg' to remove; it has semantic, "
                   "jpeg2000"),
    ("~snr.points_db.0", "--set ~snr.points_db.0: snr.points_db is a list; its items cannot be "
                         "removed one by one; set the whole list with snr.points_db=[...]"),
    ("~channel.x", "--set ~channel.x: the top level has no key 'channel' to remove; it has "
                   "name, device, images, snr, links"),
])
def test_removing_what_is_not_there_is_one_line_naming_the_override(tmp_path, text, problem):
    path = tmp_path / "s.yaml"
    path.write_text(TWO_LINKS)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=[Override.parse(text)])
    assert info.value.problems == [problem]


def test_a_link_that_names_a_removed_link_is_refused_at_its_line(tmp_path):
    """The file's other values are validated as ever: here on the line of the ``match``, the
    link's name with a dash (a cross-field message's path)."""
    path = tmp_path / "s.yaml"
    path.write_text(TWO_LINKS.replace("semantic", "stable-cascade"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=[Override.parse("~links.stable-cascade")])
    assert info.value.problems == [f"{path}:9: links.jpeg2000.bandwidth.match: no link named "
                                   "'stable-cascade'; links are jpeg2000"]


def test_relative_paths_of_overrides_start_from_overrides_dir(tmp_path):
    """Rebased to the file's folder, where the file's own paths start: a/b/s.yaml with
    photos given from c/ holds ../../c/photos."""
    path = tmp_path / "a" / "b" / "s.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(IMAGES.replace("  size: 256", "  size: 256\nfid_reference: ref.npz")
                    .replace("links:", "metrics: [psnr, fid]\nlinks:"))
    cwd = tmp_path / "c"
    given = {"images.source": "photos/*.png", "links.semantic.weights": "../w"}
    scenario, text = load_scenario(path, overrides=given, overrides_dir=cwd)
    assert scenario.images.source == "../../c/photos/*.png"
    assert scenario.links["semantic"].weights == "../../w"
    assert scenario.fid_reference == "ref.npz"  # the file's own: as written
    assert parse_scenario(text) == scenario
    for kept in ("/data/photos", "~/photos", "sample"):
        scenario, _ = load_scenario(path, overrides={"images.source": kept}, overrides_dir=cwd)
        assert scenario.images.source == kept
    # a whole section set: its paths are the override's too
    scenario, _ = load_scenario(path, overrides={"images": {"source": "p", "size": 64}},
                                overrides_dir=cwd)
    assert scenario.images.source == "../../c/p"
    # no overrides_dir: as the file's own
    scenario, _ = load_scenario(path, overrides={"images.source": "p"})
    assert scenario.images.source == "p"


def test_a_recipe_overrides_its_paths_from_the_current_directory(tmp_path):
    (tmp_path / "recipes").mkdir()
    text = "data:\n  source: ???\noutput: runs/x\nphases:\n  - {train: [stage_a], steps: 1}\n"
    cfg = parse_train_config(text, source=str(tmp_path / "recipes" / "r.yaml"),
                             overrides={"data.source": "train", "output": "runs/y",
                                        "model.init": "b.safetensors"},
                             overrides_dir=tmp_path)
    assert (cfg.data.source, cfg.output, cfg.model.init) == ("../train", "../runs/y",
                                                              "../b.safetensors")


# The recipes the project trained, with the project's training crops given on the command
# line from the repository's root (`semlink train scenarios/X.yaml --set
# data.source=../shared/data/train`), hash as when the files named them (relative to
# scenarios/): tests/simulator/training/test_config.py pins those hashes.
def test_a_command_line_path_from_the_repository_root_gives_the_files_former_value():
    for name in ("train-small.yaml", "train-paper.yaml", "train-deepjscc-small.yaml"):
        cfg, _ = load_train_config(REPO / "scenarios" / name,
                                   overrides={"data.source": "../shared/data/train"},
                                   overrides_dir=REPO)
        assert cfg.data.source == "../../shared/data/train"


def test_ready_scenarios_do_not_point_at_the_shared_folder():
    """No ready scenario or recipe names ../shared (not even in a comment): a user's copy
    of the repository has no such folder; the recipes ask for data.source (???)."""
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    assert len(files) > 20
    assert [f.name for f in files if "../shared" in f.read_text()] == []
    required = {f.name for f in files if f"source: {MISSING}" in f.read_text()}
    assert required == {"train-small.yaml", "train-paper.yaml", "train-deepjscc-small.yaml"}


def test_python_api_overrides(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text("device: cpu\nsnr: {points_db: [0]}\nlinks: {b: {type: ber}}\n"
                    "monte_carlo: {min_bits: 1024, max_bits: 1024, batch_bits: 1024}\n")
    monkeypatch.chdir(tmp_path)
    loaded = semlink.read_scenario(path, overrides={"snr.points_db": [2, 6]})
    assert loaded.scenario.snr.values_db() == [2.0, 6.0]
    with pytest.raises(ScenarioError, match=r"^overrides\['seed'\]: Input should be greater"):
        semlink.read_scenario(path, overrides={"seed": -1})
    results = semlink.run(semlink.read_scenario(path), output="r.h5",
                          overrides={"snr.points_db": [3]})
    assert [row["snr_db"] for row in results.rows("points")] == [3.0]
    assert results.attrs["scenario_hash"] == scenario_hash(loaded.overridden(
        {"snr.points_db": [3]}).scenario)
    from_text = semlink.read_scenario(text=path.read_text(), overrides={"links.b.modulation": 16})
    assert from_text.scenario.links["b"].modulation == 16
    assert from_text.text.startswith("# <scenario> with overrides['links.b.modulation']\n")
