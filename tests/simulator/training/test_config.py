"""Training-config schema: the shipped recipes parse; bad files get one line per problem."""
from __future__ import annotations

from pathlib import Path

import pytest

from semlink.errors import InputError
from semlink.scenario import RayleighConfig, ScenarioError
from semlink.training.config import load_train_config, parse_train_config, train_config_hash

REPO = Path(__file__).resolve().parents[3]

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
    cfg, text = load_train_config(REPO / "scenarios" / name)
    assert text.startswith("#")
    assert cfg.total_steps >= 100 and cfg.phases[-1].train[-1] == "stage_b"


def test_paper_recipe_is_the_papers():
    cfg, _ = load_train_config(REPO / "scenarios" / "train-paper.yaml")
    (phase,) = cfg.phases
    assert cfg.model.preset == "stable-cascade-lite" and cfg.data.size == 1024
    assert phase.train == ["stage_b"] and phase.steps == 15000 and phase.batch_size == 4
    assert phase.lr == 1e-4
    assert (phase.conditioning.snr_min_db, phase.conditioning.snr_max_db) == (1.0, 20.0)


@pytest.mark.parametrize("stage", ["", "-refine", "-refine2"])
def test_ablation_recipes_differ_only_in_the_conditioning_noise(stage):
    noisy, _ = load_train_config(REPO / "scenarios" / f"train-small{stage}.yaml")
    clean, _ = load_train_config(REPO / "scenarios" / f"train-small-noisefree{stage}.yaml")
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


def test_cli_validate_recognises_training_recipes(capsys):
    from semlink.cli import main

    assert main(["validate", str(REPO / "scenarios" / "train-small.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ok: training recipe 'small' (preset small): stage_a 500 steps;" in out


def test_hash_ignores_output_and_cadence_only():
    base = parse_train_config(GOOD)
    moved = parse_train_config(GOOD + "output: elsewhere\ncheckpoint_every: 3\nlog_every: 2\n")
    reseeded = parse_train_config(GOOD + "seed: 1\n")
    assert train_config_hash(base) == train_config_hash(moved) != train_config_hash(reseeded)


def test_an_unset_estimate_or_whole_leaves_the_hash_as_before_the_fields_existed():
    import hashlib
    import json

    base = parse_train_config(GOOD)
    fields = base.model_dump(mode="json", exclude={"output", "device", "log_every",
                                                   "checkpoint_every"})
    for phase in fields["phases"]:
        del phase["conditioning"]["estimate"]
    del fields["data"]["whole"]
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
