"""Training-config schema: the shipped recipes parse; bad files get one line per problem."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from semlink.errors import InputError
from semlink.scenario import RayleighConfig, ScenarioError
from semlink.training.config import load_train_config, parse_train_config, train_config_hash

REPO = Path(__file__).resolve().parents[3]
#: What the shipped recipes trained on, as the files named it (relative to scenarios/) before
#: they asked for it (data.source: ???); `semlink train scenarios/X.yaml --set
#: data.source=../shared/data/train` from the repository's root gives this value.
PROJECT_DATA = {"data.source": "../../shared/data/train"}


def _shipped(name: str):
    """``(config, text)`` of the shipped recipe ``name`` on the project's training crops."""
    return load_train_config(REPO / "scenarios" / name, overrides=PROJECT_DATA)

GOOD = """\
name: t
data: {source: photos, size: 128}
phases:
  - {train: [stage_a], steps: 10}
  - {train: [encoder, stage_b], steps: 20, size: 64,
     conditioning: {channel: {type: rayleigh}, snr_min_db: 0, snr_max_db: 5}}
"""


def test_good_config_defaults():
    cfg = parse_train_config(GOOD)
    assert cfg.total_steps == 30
    assert cfg.model.preset == "small" and cfg.device == "cpu"
    first, second = cfg.phases
    assert first.conditioning.noise == "channel" and first.conditioning.channel.type == "awgn"
    assert (first.conditioning.snr_min_db, first.conditioning.snr_max_db) == (1.0, 20.0)
    assert isinstance(second.conditioning.channel, RayleighConfig)
    assert second.size == 64 and cfg.validation.snr_db == [1.0, 5.0, 10.0, 20.0]
    assert first.timesteps == [0.0, 1.0]


@pytest.mark.parametrize("name", ["train-small.yaml", "train-small-noisefree.yaml",
                                  "train-small-refine.yaml", "train-small-noisefree-refine.yaml",
                                  "train-small-refine2.yaml",
                                  "train-small-noisefree-refine2.yaml", "train-paper.yaml"])
def test_shipped_recipes_parse(name):
    cfg, text = _shipped(name)
    assert text.startswith("#")
    assert cfg.total_steps >= 100 and cfg.phases[-1].train[-1] == "stage_b"


def test_paper_recipe_is_the_papers():
    cfg, _ = _shipped("train-paper.yaml")
    (phase,) = cfg.phases
    assert cfg.model.preset == "stable-cascade-lite" and cfg.data.size == 1024
    assert phase.train == ["stage_b"] and phase.steps == 15000 and phase.batch_size == 4
    assert phase.lr == 1e-4
    assert (phase.conditioning.snr_min_db, phase.conditioning.snr_max_db) == (1.0, 20.0)


@pytest.mark.parametrize("stage", ["", "-refine", "-refine2"])
def test_ablation_recipes_differ_only_in_the_conditioning_noise(stage):
    noisy, _ = _shipped(f"train-small{stage}.yaml")
    clean, _ = _shipped(f"train-small-noisefree{stage}.yaml")
    assert len(noisy.phases) == len(clean.phases) == (3 if not stage else 1)
    before = {"": None, "-refine": "", "-refine2": "-refine"}[stage]
    assert noisy.model.init == (None if before is None else
                                f"../runs/train-small{before}/model.safetensors")
    assert clean.model.init == (None if before is None else
                                f"../runs/train-small-noisefree{before}/model.safetensors")
    for a, b in zip(noisy.phases, clean.phases):
        assert a.model_dump(exclude={"name", "conditioning"}) == b.model_dump(
            exclude={"name", "conditioning"})
        assert a.conditioning.drop_prob == b.conditioning.drop_prob
    diffusion = [p for p in noisy.phases if p.train != ["stage_a"]]
    assert [p.conditioning.noise for p in diffusion] == ["channel"] * len(diffusion)
    assert [p.conditioning.noise for p in clean.phases
            if p.train != ["stage_a"]] == ["none"] * len(diffusion)
    assert [p.timesteps for p in diffusion] == ([[0.7, 1.0], [0.0, 1.0]] if not stage
                                                else [[0.7, 1.0]])
    assert noisy.model_dump(exclude={"name", "output", "phases", "model"}) == clean.model_dump(
        exclude={"name", "output", "phases", "model"})


# (recipe, train_config_hash, the fields the hash leaves out): the hashes of the recipes as
# they were before the derived ones were rewritten onto a base (base: and set:), when each file
# spelled out every key. Equal hash and equal remaining fields: the same validated config.
RECIPES_BEFORE_BASES = [
    ("train-small.yaml", "7c9a220e4cbbc765d7a4c7678e55b48bca199f7a35135379a5c8204f74ed1e70",
     "../runs/train-small", "cpu", 250, 50),
    ("train-small-refine.yaml",
     "859071e0697ca1e4c6e9858f8d6d85d0ab36ea153a7b1b3a440ca7045b3cacdf",
     "../runs/train-small-refine", "cpu", 250, 50),
    ("train-small-refine2.yaml",
     "4b9ffcb786d9f526e06a5ba7b25d3b3433c5f2b7875b9e3dc18cc79b9be63a23",
     "../runs/train-small-refine2", "cpu", 250, 50),
    ("train-small-noisefree.yaml",
     "aae990f013ae07ff4f6dda9ceab2a0170749117f771f4cc73468b019cb37454a",
     "../runs/train-small-noisefree", "cpu", 250, 50),
    ("train-small-noisefree-refine.yaml",
     "9b9e3f6e9b34f18fe610bc3d23b7ee0109043354ef8d6b5a6b7cd48c4fd6f0a1",
     "../runs/train-small-noisefree-refine", "cpu", 250, 50),
    ("train-small-noisefree-refine2.yaml",
     "dd2248bc5f11f4a9a258694693c127b134e15964d8134c2882a6076b8942aee1",
     "../runs/train-small-noisefree-refine2", "cpu", 250, 50),
    ("train-paper.yaml", "7ccd3547f5e3bff8dce5da1d42ee910318362da2d818238633346f50e17db850",
     "../runs/train-paper", "cuda", 500, 50),
]


@pytest.mark.parametrize("name, config_hash, output, device, checkpoint_every, log_every",
                         RECIPES_BEFORE_BASES, ids=[r[0] for r in RECIPES_BEFORE_BASES])
def test_recipes_resolve_to_the_configs_they_were_before_they_had_bases(
        name, config_hash, output, device, checkpoint_every, log_every):
    """A checkpoint of a recipe resumes only under the same hash: building the recipes on one
    another changed their text, not what they train."""
    cfg, _ = _shipped(name)
    assert train_config_hash(cfg) == config_hash
    assert (cfg.output, cfg.device, cfg.checkpoint_every, cfg.log_every) == (
        output, device, checkpoint_every, log_every)


def test_the_derived_recipes_hold_only_what_differs():
    """Only train-small.yaml, train-paper.yaml and the DeepJSCC recipe (another model) spell out
    their phases, besides the two refinements (their own phases on another recipe's base); the
    others build on one of the small recipes (base:)."""
    names = sorted(p.name for p in (REPO / "scenarios").glob("train-*.yaml"))
    spelled = [n for n in names if "phases:" in (REPO / "scenarios" / n).read_text()]
    based = [n for n in names if "\nbase: " in (REPO / "scenarios" / n).read_text()]
    standalone = {"train-deepjscc-small.yaml", "train-paper.yaml", "train-small.yaml"}
    assert spelled == sorted(standalone | {"train-small-refine.yaml",
                                           "train-deepjscc-small-refine.yaml"})
    assert sorted(based) == sorted(set(names) - standalone)


def test_a_recipe_on_a_shipped_base_changes_one_value_and_reports_its_own_lines(tmp_path):
    base = os.path.relpath(REPO / "scenarios" / "train-small.yaml", tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"base: {base}\nname: mine\nset:\n  phases.2.steps: 10\n")
    cfg, _ = load_train_config(mine, overrides=PROJECT_DATA)
    small, _ = _shipped("train-small.yaml")
    assert cfg.name == "mine" and [p.steps for p in cfg.phases] == [500, 1500, 10]
    assert cfg.model_dump(exclude={"name", "phases"}) == small.model_dump(
        exclude={"name", "phases"})
    assert cfg.phases[:2] == small.phases[:2]
    mine.write_text(f"base: {base}\nname: mine\nset:\n  phases.2.lr: -1\n  phases.3.lr: 1\n")
    with pytest.raises(ScenarioError) as info:
        load_train_config(mine)
    assert info.value.problems == [f"{mine}:5: set.phases.3.lr: phases has 3 items (0..2); no "
                                   "item 3"]
    mine.write_text(f"base: {base}\nname: mine\nset:\n  phases.2.lr: -1\n")
    with pytest.raises(ScenarioError) as info:
        load_train_config(mine, overrides=PROJECT_DATA)
    assert info.value.problems == [f"{mine}:4: phases.2.lr: Input should be greater than 0; "
                                   "got -1"]


@pytest.mark.parametrize("name", [r[0] for r in RECIPES_BEFORE_BASES])
def test_cli_validate_recognises_training_recipes(name, capsys):
    """Also the recipes that build on another (no phases: of their own)."""
    from semlink.cli import main

    cfg, _ = _shipped(name)
    assert main(["validate", str(REPO / "scenarios" / name)]) == 0
    out = capsys.readouterr().out
    assert f"ok: training recipe {cfg.name!r} (preset {cfg.model.preset}): " in out
    if name == "train-small.yaml":
        assert "ok: training recipe 'small' (preset small): stage_a 500 steps;" in out


def test_hash_ignores_output_and_cadence_only():
    base = parse_train_config(GOOD)
    moved = parse_train_config(GOOD + "output: elsewhere\ncheckpoint_every: 3\nlog_every: 2\n")
    reseeded = parse_train_config(GOOD + "seed: 1\n")
    assert train_config_hash(base) == train_config_hash(moved) != train_config_hash(reseeded)


def test_unset_later_fields_leave_the_hash_as_before_the_fields_existed():
    import hashlib
    import json

    base = parse_train_config(GOOD)
    fields = base.model_dump(mode="json", exclude={"output", "device", "log_every",
                                                   "checkpoint_every"})
    for phase in fields["phases"]:
        del phase["conditioning"]["estimate"]
    del fields["data"]["whole"]
    del fields["model"]["deepjscc"]
    before = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    assert train_config_hash(base) == before
    matched = parse_train_config(GOOD.replace("snr_max_db: 5}", "snr_max_db: 5, "
                                              "estimate: noise-matched}"))
    assert matched.phases[-1].conditioning.estimate == "noise-matched"
    assert train_config_hash(matched) != before
    whole = parse_train_config(GOOD.replace("size: 128}", "size: 128, whole: true}"))
    assert whole.data.whole is True and train_config_hash(whole) != before


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:1"])
def test_device_is_any_run_device_and_not_part_of_the_hash(device):
    """A recipe takes the device names a scenario takes (``auto`` resolves when training
    starts); a checkpoint made on one device resumes on another."""
    cfg = parse_train_config(GOOD + f"device: {device}\n")
    assert cfg.device == device
    assert train_config_hash(cfg) == train_config_hash(parse_train_config(GOOD))


@pytest.mark.parametrize("text, match", [
    (GOOD + "epochs: 3\n", r"<t>:7: epochs: unknown key; allowed: name, seed"),
    (GOOD.replace("[stage_a]", "[stage_a, stage_b]"), r"stage_a trains alone"),
    (GOOD.replace("[stage_a]", "[stage_c]"), r"phases\.0\.train\.0"),
    (GOOD.replace("snr_max_db: 5", "snr_max_db: -1"), r"snr_max_db \(-1.0\) must be >= snr_min_db"),
    (GOOD.replace("size: 128", "size: 100"), r"data\.size: .*multiple of 32"),
    (GOOD.replace("size: 64", "size: 80"), r"phases\.1\.size: .*multiple of 32"),
    (GOOD + "model: {preset: huge}\n", r"model\.preset: .*one of small"),
    (GOOD + "model: {stage_b: huge}\n", r"model\.stage_b: .*one of"),
    (GOOD + "device: tpu\n", r"device: .*'cpu', 'cuda'"),
    (GOOD.replace("steps: 10", "steps: 0"), r"phases\.0\.steps"),
    (GOOD.replace("steps: 10", "steps: '10'"), r"phases\.0\.steps"),
    (GOOD.replace("steps: 10}", "steps: 10, timesteps: [0.9, 0.5]}"),
     r"phases\.0: .*0 <= low < high <= 1; got \[0\.9, 0\.5\]"),
    (GOOD.replace("steps: 10}", "steps: 10, timesteps: [0.5]}"), r"phases\.0\.timesteps"),
    (GOOD.replace("snr_min_db: 0", "snr_min_db: .nan"),
     r"<t>:6: phases\.1\.conditioning\.snr_min_db: Input should be a finite number"),
    (GOOD.replace("steps: 10}", "steps: 10, lr: .inf}"), r"<t>:4: phases\.0\.lr: Input should be a finite number"),
    (GOOD + "validation: {snr_db: [1, .nan]}\n", r"<t>:7: validation\.snr_db\.1: Input should be a finite number"),
    ("- a\n- b\n", r"a training config must be a mapping"),
    ("data: [\n", r"invalid YAML"),
])
def test_bad_configs(text, match):
    with pytest.raises(ScenarioError, match=match):
        parse_train_config(text, source="<t>")


def test_all_problems_reported_at_once():
    text = GOOD.replace("size: 128", "size: 100") + "epochs: 3\n"
    with pytest.raises(ScenarioError) as info:
        parse_train_config(text, source="x.yaml")
    assert len(info.value.problems) == 2


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"training config not found"):
        load_train_config(tmp_path / "nope.yaml")


DEEPJSCC = """\
data: {source: sample, size: 64}
model: {deepjscc: {channels: 8, features: [8, 16], stages: 2}}
phases:
  - {train: [deepjscc], steps: 2, conditioning: {snr_min_db: 1, snr_max_db: 20}}
"""


def test_a_deepjscc_recipe_validates_and_its_architecture_counts_in_the_hash():
    cfg = parse_train_config(DEEPJSCC)
    assert cfg.model.deepjscc.channels == 8 and cfg.phases[0].train == ["deepjscc"]
    wider = parse_train_config(DEEPJSCC.replace("[8, 16]", "[8, 32]"))
    assert train_config_hash(cfg) != train_config_hash(wider)


@pytest.mark.parametrize("text, match", [
    (DEEPJSCC.replace(", stages: 2", ""),
     r"<t>:2: model.deepjscc: features: give one int or 5 \(one per stage\); got 2"),
    (DEEPJSCC.replace("train: [deepjscc]", "train: [stage_b]"),
     r"<t>:4: phases.0.train: model.deepjscc is set: every phase trains \[deepjscc\]"),
    (DEEPJSCC.replace("model: {deepjscc: {channels: 8, features: [8, 16], stages: 2}}\n", ""),
     r"phases.0.train: train: deepjscc needs model.deepjscc"),
    (DEEPJSCC.replace("train: [deepjscc]", "train: [deepjscc, encoder]"),
     r"deepjscc trains alone"),
    (DEEPJSCC.replace("snr_min_db: 1", "noise: none, snr_min_db: 1"),
     r"conditioning.noise: deepjscc learns through the channel"),
])
def test_deepjscc_recipe_errors(text, match):
    with pytest.raises(ScenarioError, match=match):
        parse_train_config(text, source="<t>")


def test_cli_validate_names_a_deepjscc_recipe_by_its_model(capsys):
    from semlink.cli import main

    assert main(["validate", str(REPO / "scenarios" / "train-deepjscc-small.yaml")]) == 0
    assert ("ok: training recipe 'deepjscc-small' (a DeepJSCC autoencoder): deepjscc 2500 steps; "
            "deepjscc 1000 steps; deepjscc 500 steps" in capsys.readouterr().out)
