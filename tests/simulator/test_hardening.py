"""Hardening against hostile or absurd input (issue #22): each refused in one line, exit 2,
naming the file, the field, the value and the limit; and the smaller inconsistencies fixed with
it (shard file names, image files, a weight index's names, option messages, size warnings)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semlink.cli import main
from semlink.errors import InputError
from semlink.scenario import ScenarioError, load_scenario, parse_scenario
from semlink.scenario import loading
from semlink.scenario.limits import MAX_SNR_POINTS, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES
from tests.cli_errors import one_line_error

BER = "links: {b: {type: ber}}\n"
SMALL_MC = ("monte_carlo: {target_bit_errors: 10, min_bits: 1000, max_bits: 1000, "
            "batch_bits: 1000}\n")


# ---------------------------------------------------------------- 1: nesting
@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000,  # flow: read ahead by the scanner
                                    "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(200)) + " 1"])
def test_deep_nesting_is_one_line(tmp_path, capsys, command, nested):
    path = tmp_path / "deep.yaml"
    path.write_text(f"description: {nested}\nsnr: {{points_db: [1]}}\n{BER}")
    err = one_line_error([command, str(path)], capsys)
    assert f"{path}:" in err and f"nesting deeper than {MAX_YAML_DEPTH} levels" in err
    assert f"(limit {MAX_YAML_DEPTH})" in err


# ---------------------------------------------------------------- 2: size
def test_oversized_file_is_refused_before_parsing(tmp_path, capsys, monkeypatch):
    """A 10 MB scenario (a million SNR points) is refused by its size: YAML never parses it."""
    path = tmp_path / "huge.yaml"
    points = ", ".join(["12.5"] * 2_000_000)
    path.write_text(f"{BER}snr: {{points_db: [{points}]}}\n")
    assert path.stat().st_size > 10 * 10**6

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed a file over the size limit")

    monkeypatch.setattr(loading, "_parse", no_parsing)
    err = one_line_error(["validate", str(path)], capsys)
    assert f"{path}: {path.stat().st_size} bytes" in err and str(MAX_YAML_BYTES) in err
    with pytest.raises(ScenarioError, match="1 MiB"):  # and a training recipe alike
        from semlink.training.config import load_train_config
        load_train_config(path)


def test_long_lists_are_refused_early(tmp_path, capsys):
    """Under the size limit, a list of 200,000 points stops at MAX_YAML_VALUES values, the
    line and path named; a list of 1001 points is refused by the schema, with its limit."""
    path = tmp_path / "many.yaml"
    path.write_text(f"{BER}snr: {{points_db: [{', '.join(['1.5'] * 200_000)}]}}\n")
    assert path.stat().st_size < MAX_YAML_BYTES
    err = one_line_error(["validate", str(path)], capsys)
    assert f"{path}:2: snr.points_db: more than {MAX_YAML_VALUES} values" in err
    path.write_text(f"{BER}snr: {{points_db: [{', '.join(['1.5'] * (MAX_SNR_POINTS + 1))}]}}\n")
    err = one_line_error(["validate", str(path)], capsys)
    assert f"{path}:2: snr.points_db:" in err and f"at most {MAX_SNR_POINTS} items" in err


def test_expanding_aliases_are_counted(tmp_path, capsys):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(6)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    err = one_line_error(["validate", str(path)], capsys)
    assert f"more than {MAX_YAML_VALUES} values" in err and "aliases expanded" in err


# ---------------------------------------------------------------- 3: absurd values
@pytest.mark.parametrize("line, expected", [
    ("seed: 99999999999999999999999999999999999999999",
     ":1: seed: Input should be less than or equal to 9223372036854775807; got 9999"),
    ("batch_size: 1000000000000000",
     ":1: batch_size: Input should be less than or equal to 1024; got 1000000000000000"),
    ("repeats: 100000", ":1: repeats: Input should be less than or equal to 1000; got 100000"),
    ("monte_carlo: {batch_bits: 1000000000000}",
     ":1: monte_carlo.batch_bits: Input should be less than or equal to 100000000; "
     "got 1000000000000"),
    ("channel: {type: rician, k_factor_db: 1000}",
     ":1: channel.k_factor_db: Input should be less than or equal to 50; got 1000"),
])
def test_absurd_numbers_are_refused(tmp_path, capsys, line, expected):
    path = tmp_path / "absurd.yaml"
    path.write_text(f"{line}\nsnr: {{points_db: [1]}}\n{BER}")
    for command in ("validate", "run"):
        assert f"{path}{expected}" in one_line_error([command, str(path)], capsys)


@pytest.mark.parametrize("snr, expected", [
    ("{points_db: [1, 1e308]}", "snr.points_db.1: must be in [-50, 100] dB (or .inf for a "
                                "noiseless channel); got 1e+308"),
    ("{start_db: -100, stop_db: 0, step_db: 1}",
     "snr.start_db: Input should be greater than or equal to -50; got -100"),
])
def test_snr_out_of_range(tmp_path, capsys, snr, expected):
    path = tmp_path / "snr.yaml"
    path.write_text(f"{BER}snr: {snr}\n")
    assert f"{path}:2: {expected}" in one_line_error(["validate", str(path)], capsys)
    assert parse_scenario(f"{BER}snr: {{points_db: [-50, 100, .inf]}}").snr.points_db[-1] > 100


def test_absurd_numbers_of_a_training_recipe(tmp_path, capsys):
    path = tmp_path / "train.yaml"
    path.write_text("seed: 99999999999999999999\ndata: {source: sample}\nphases:\n"
                    "  - {train: [stage_b], steps: 10}\n")
    err = one_line_error(["validate", str(path)], capsys)
    assert f"{path}:1: seed: Input should be less than or equal to 9223372036854775807" in err
    path.write_text("data: {source: sample}\nphases:\n"
                    "  - {train: [stage_b], steps: 10, batch_size: 1000000000000000}\n")
    err = one_line_error(["validate", str(path)], capsys)
    assert (f"{path}:3: phases.0.batch_size: Input should be less than or equal to 1024; "
            "got 1000000000000000") in err


# ---------------------------------------------------------------- 5: shards
def test_shards_of_an_output_are_named_as_help_says(tmp_path, capsys, monkeypatch):
    """``run -o s.h5 --shard K/2`` writes s.shardKof2.h5 (not s.h5, which made the second
    shard fail on "results file exists"); the two merge into the whole run."""
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(f"snr: {{points_db: [2, 4]}}\n{BER}{SMALL_MC}")
    for k in (1, 2):
        assert main(["run", "s.yaml", "-q", "-o", "s.h5", "--shard", f"{k}/2"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["s.shard1of2.h5", "s.shard2of2.h5"]
    # resuming with the shard's own file named: the same file, not s.shard1of2.shard1of2.h5
    assert main(["run", "s.yaml", "-q", "--resume", "-o", "s.shard1of2.h5", "--shard", "1/2"]) == 0
    assert main(["merge", "s.shard1of2.h5", "s.shard2of2.h5", "-o", "s.h5"]) == 0
    assert "all 2 points from 2 files" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == [
        "s.h5", "s.shard1of2.h5", "s.shard2of2.h5"]


# ---------------------------------------------------------------- 6: smaller ones
def test_symlink_loop_and_device_as_image_source(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for source, expected in ((loop, f"images.source: {loop}: a symlink loop"),
                             (Path(os.devnull), f"images.source: {os.devnull} is not a regular "
                                                "file or folder")):
        path = tmp_path / "s.yaml"
        path.write_text(f"images: {{source: {source}, size: 64}}\nsnr: {{points_db: [1]}}\n"
                        "links: {c: {type: classical, bandwidth: {ratio: 0.1}}}\n")
        assert expected in one_line_error(["run", str(path)], capsys)


def test_animated_images_are_refused_everywhere(tmp_path, capsys):
    """One rule (semlink.images): still images of IMAGE_SUFFIXES. An animated GIF is no
    image to transmit (as a scenario's folder never lists it), and an animated PNG is refused
    by transmit and by a scenario alike."""
    frames = [Image.fromarray(np.full((64, 64, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    out = str(tmp_path / "out.png")
    send = ["--size", "64", "--snr-db", "5", "-o", out]
    err = one_line_error(["transmit", str(tmp_path / "anim.gif"), *send], capsys)
    assert "anim.gif: not an image file semlink reads" in err
    err = one_line_error(["transmit", str(tmp_path / "anim.png"), *send], capsys)
    assert "anim.png: holds 3 frames (animated or multi-page)" in err
    path = tmp_path / "s.yaml"
    path.write_text(f"images: {{source: {tmp_path / 'anim.png'}, size: 64}}\n"
                    "snr: {points_db: [1]}\n"
                    "links: {c: {type: classical, bandwidth: {ratio: 0.1}}}\n")
    assert "anim.png: holds 3 frames" in one_line_error(["run", str(path), "-o",
                                                         str(tmp_path / "r.h5")], capsys)


def test_run_says_it_created_the_output_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(f"snr: {{points_db: [2]}}\n{BER}{SMALL_MC}output: new/deep/s.h5\n")
    assert main(["run", "s.yaml"]) == 0
    assert "results: new/deep/s.h5 (created folder new)" in capsys.readouterr().err
    Path("new/deep/s.h5").unlink()
    assert main(["run", "s.yaml"]) == 0  # the folder exists now: nothing to say
    assert "created folder" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../../outside.safetensors", "/etc/passwd", "sub/x.safetensors",
                                  ".."])
def test_weight_index_names_stay_in_their_folder(tmp_path, name):
    from semlink.models.weight_files import scan_weights_dir

    unet = tmp_path / "decoder_lite"
    unet.mkdir()
    (unet / "config.json").write_text("{}")
    index = unet / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a.weight": name}}))
    issues = [i for found in scan_weights_dir(tmp_path).entries for i in found.issues]
    assert f"{index}: weight_map names {name!r}; an index lists files of its own folder" in \
        "\n".join(issues)


def test_channel_uses_names_both_links_it_applies_to(tmp_path, capsys):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    err = one_line_error(["transmit", str(tmp_path / "a.png"), "--link", "semantic",
                          "--channel-uses", "100", "--snr-db", "5", "-o",
                          str(tmp_path / "o.png")], capsys)
    assert "--channel-uses: applies to the classical and capacity links, not to --link " \
           "semantic" in err


def test_classical_link_takes_a_side_as_the_semantic_link_does():
    from semlink.links.capacity import CapacityLink
    from semlink.links.classical import ClassicalLink

    assert ClassicalLink(channel_uses=3000, image_size=64).image_size == (64, 64)
    assert CapacityLink(channel_uses=3000, image_size=64, payload_bytes=500).image_size == (64, 64)
    with pytest.raises(TypeError):
        ClassicalLink(channel_uses=3000, image_size=True)


# ---------------------------------------------------------------- 7: training size
QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"


@pytest.mark.parametrize("size", [256, 512])
def test_preset_at_another_size_is_warned_of(tmp_path, capsys, size):
    """quickstart runs the small preset at 256 px, its training size: no warning; at 512 px one
    line on stderr, and the file is still valid (exit 0)."""
    text = QUICKSTART.read_text()
    assert "size: 256" in text
    path = tmp_path / "q.yaml"
    path.write_text(text.replace("size: 256", f"size: {size}"))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    if size == 256:
        assert "warning" not in err
    else:
        assert err == (f"semlink: warning: {path}: links.semantic: preset 'small' was trained on "
                       "256x256 px images; this scenario runs it at 512x512 px, a size it was not "
                       "made for (its results there may fall short of its own)\n")


def test_stable_cascade_at_512_px_is_no_warning(capsys):
    """Stability AI's models were trained at many sizes and the paper runs them at 512 px: the
    ready 512 px protocol validates without the small preset's one-size warning."""
    path = QUICKSTART.parent / "paper-awgn-512.yaml"
    assert main(["validate", str(path), "--set", "images.source=sample"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_results_record_the_training_size(tmp_path):
    from semlink.results import ResultsStore
    from semlink.scenario import scenario_hash
    from semlink.sweep import open_store

    scenario, text = load_scenario(QUICKSTART)
    digest = scenario_hash(scenario)
    open_store(scenario, text, tmp_path / "q.h5", device="cpu", resume=False, overwrite=False)
    attrs = ResultsStore.open(tmp_path / "q.h5").attrs
    assert attrs["preset_training_sizes"] == {"semantic": 256}
    assert attrs["scenario_hash"] == digest  # the hash does not hold it
