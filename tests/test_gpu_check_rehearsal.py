""".ci/gpu-check, the one script a lent GPU machine runs: every `semlink` command line in it
parses with semlink's own parser (and every scenario run validates with its --set overrides),
so a renamed option breaks a test here, not a GPU session; its sweep summary reads results files;
and (slow) the whole script rehearsed on the CPU at tiny sizes."""
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from semlink.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "gpu-check"


def _commands(tmp_path: Path, *, rehearsal: bool) -> list[list[str]]:
    env = {**os.environ, "SEMLINK_GPU_CHECK_DRY_RUN": "1", "PYTHON": sys.executable,
           "SEMLINK_GPU_CHECK_REHEARSAL": "1" if rehearsal else "0"}
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [shlex.split(line) for line in out.splitlines() if line.strip()]


def _ci_script(name: str):
    """The module of the script ``.ci/NAME.py`` (the folder is no package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _semlink_args(command: list[str]) -> list[str] | None:
    """The arguments after ``python -m semlink``; None for another command."""
    for i in range(len(command) - 1):
        if command[i:i + 2] == ["-m", "semlink"]:
            return command[i + 2:]
    return None


@pytest.mark.parametrize("rehearsal", [False, True], ids=["cuda-run", "cpu-rehearsal"])
def test_every_semlink_command_of_the_script_parses_and_its_scenarios_validate(
        tmp_path, rehearsal, capsys):
    commands = _commands(tmp_path, rehearsal=rehearsal)
    semlink = [args for args in map(_semlink_args, commands) if args is not None]
    parser = build_parser()
    for args in semlink:
        parser.parse_args(args)  # SystemExit (a test error) on an unknown option or value
    assert [a[0] for a in semlink] == ["bench"] * 5 + ["run"] + ["bench"] * 2
    for args in (a for a in semlink if a[0] == "run"):
        scenario = args[1]
        sets = [x for i, x in enumerate(args) if i and args[i - 1] == "--set"]
        validate = ["validate", scenario] + [y for s in sets for y in ("--set", s)]
        assert main(validate) == 0, capsys.readouterr().err
    device = "cpu" if rehearsal else "cuda"
    assert all(a[a.index("--device") + 1] == device for a in semlink)
    # One trace, of one call: a single size at batch 1 with --profile.
    (profiled,) = [a for a in semlink if "--profile" in a]
    batch = profiled.index("--batch")
    assert profiled[batch + 1] == "1" and profiled[batch + 2].startswith("--")
    assert profiled[profiled.index("--size") + 2].startswith("--")
    # The sweep is the shipped paper scenario, its stage B the bundle the step before writes
    # for the preset the sweep runs; the command after it summarises it with a script that
    # exists.
    (run,) = [a for a in semlink if a[0] == "run"]
    at = next(i for i, c in enumerate(commands) if _semlink_args(c) == run)
    sets = dict(x.split("=", 1) for i, x in enumerate(run) if i and run[i - 1] == "--set"
                and "=" in x)
    assert run[1] == "scenarios/paper-awgn-512.yaml" and "~links.img2img-sc" in run
    (bundle,) = [c for c in commands if ".ci/random_bundle.py" in c]
    assert commands.index(bundle) == at - 1
    assert bundle[1:5] == [".ci/random_bundle.py", sets["links.stable-cascade.weights"],
                           sets["links.stable-cascade.preset"], "--device"]
    assert sets["links.stable-cascade.preset"] == ("small" if rehearsal else
                                                   "stable-cascade-lite")
    summarise = commands[at + 1]
    assert summarise[1] == ".ci/sweep_seconds.py" and (ROOT / summarise[1]).is_file()


def test_the_gpu_steps_fit_a_device_command():
    """The steps' time limits (each `step NAME SECONDS ...`) add up to under 9 minutes."""
    limits = [int(line.split()[2]) for line in SCRIPT.read_text().splitlines()
              if line.startswith("step ")]
    assert len(limits) == 11 and sum(limits) <= 540
    assert limits[-2:] == [0, 0]  # the extras: only what the others leave


def test_a_step_may_use_what_earlier_steps_left_and_no_more(tmp_path):
    """The script's `step` on its own: a step whose command outlasts its limit runs to its end
    on what the steps before it left unused (exit 0), the next one, with nothing left, is cut
    at its own limit (timeout's exit 124); the summary says both. An extra step (limit 0) runs
    on what is left and is skipped where nothing is."""
    text = SCRIPT.read_text()
    function = text[text.index("planned=0 first_start="):text.index("\n}\n", text.index(
        "step() {")) + 3]
    snippet = "\n".join([
        f"rehearsal=0 dry=0 log={tmp_path / 'log'} summary={tmp_path / 'summary'}", function,
        "step fast 3 true", "step borrows 1 sleep 1.5", "step cut 1 sleep 5"])
    subprocess.run(["bash", "-c", snippet], check=True, timeout=30)
    lines = (tmp_path / "summary").read_text().splitlines()
    # bash counts whole seconds: the bank is 3 s, or 2 where a second ticked between steps
    assert lines[0].startswith("fast: exit 0 after ") and "(limit 3 s + 0 s banked)" in lines[0]
    borrowed = re.fullmatch(r"borrows: exit 0 after \d s \(limit 1 s \+ ([23]) s banked\)",
                            lines[1])
    assert borrowed, lines[1]
    assert re.fullmatch(r"cut: exit 124 after [1-5] s \(limit 1 s \+ [0-3] s banked\)",
                        lines[2]), lines[2]
    # an extra step (limit 0) runs on what is left, and is skipped, not unlimited, without it
    (tmp_path / "summary").unlink()
    snippet = "\n".join([
        f"rehearsal=0 dry=0 log={tmp_path / 'log'} summary={tmp_path / 'summary'}", function,
        "step fast 2 true", "step extra 0 true", "step slow 1 sleep 5", "step last 0 true"])
    subprocess.run(["bash", "-c", snippet], check=True, timeout=30)
    lines = (tmp_path / "summary").read_text().splitlines()
    assert re.fullmatch(r"extra: exit 0 after [01] s \(limit 0 s \+ [12] s banked\)", lines[1])
    assert lines[2].startswith("slow: exit 124 after ")  # its limit and the bank spent
    assert lines[3] == "last: skipped, no time left"


def test_the_random_bundle_loads_into_its_presets_semantic_link(tmp_path):
    """.ci/random_bundle.py writes what a semantic link of the preset loads (every key and
    shape, strictly), recording the preset's prediction; two seeds give other weights."""
    random_bundle = _ci_script("random_bundle")
    from safetensors.torch import load_file

    from semlink.links.semantic import SemanticLink
    from semlink.models.bundle import read_bundle_info
    from semlink.scenario import AnalogTransmission

    path = random_bundle.write_random_bundle(tmp_path / "a", "small", seed=1)
    link = SemanticLink(preset="small", image_size=64, weights=str(tmp_path / "a"),
                        transmission=AnalogTransmission(mode="analog"))
    assert link.receiver.prediction == "v_prediction" and not link.receiver.random_weights
    assert read_bundle_info(path)["preset"] == "small"
    other = random_bundle.write_random_bundle(tmp_path / "b", "small", seed=2)
    a, b = load_file(path), load_file(other)
    assert a.keys() == b.keys() and not all(a[k].equal(b[k]) for k in a)


def test_sweep_seconds_sums_task_seconds_per_link(tmp_path):
    """Per link: tasks, images and task seconds summed over the SNR points (the FID reference
    rows left out); a missing results file gives an error entry, not a crash."""
    sweep_seconds = _ci_script("sweep_seconds")
    from semlink.results import FORMAT_VERSION, ResultsStore

    store = ResultsStore(tmp_path / "r.h5", {"format": FORMAT_VERSION, "device": "cpu (x)",
                                             "scenario_hash": "abc"})
    rows = [("semantic", 1.0, 8, 0.5), ("semantic", 5.0, 8, 0.25), ("jpeg2000", 1.0, 8, 2.0),
            ("jpeg2000", 5.0, 4, 1.0)]
    for i, (link, snr, images, seconds) in enumerate(rows):
        store.add(f"p{i}", {"link": link, "snr_index": i, "snr_db": snr, "batch_index": 0,
                            "kind": "semantic", "images": images, "seconds": seconds}, {})
    store.save()
    out = tmp_path / "sweeps.json"
    assert sweep_seconds.main([str(out), f"a={tmp_path / 'r.h5'}:12",
                               f"b={tmp_path / 'missing.h5'}:3"]) == 0
    saved = json.loads(out.read_text())
    a = saved["a"]
    assert (a["wall_seconds"], a["device"], a["snr_points"]) == (12.0, "cpu (x)", 2)
    assert a["links"]["semantic"] == {"tasks": 2, "images": 16, "seconds": 0.75,
                                      "images_per_second": 16 / 0.75}
    assert a["links"]["jpeg2000"]["images"] == 12 and a["tasks_seconds"] == 3.75
    assert "results file not found" in saved["b"]["error"]
    # a file with stage times: per link, summed over its tasks, the rest as "other"
    from semlink.stage_times import STAGE_COLUMNS

    timed = ResultsStore(tmp_path / "t.h5", {"format": FORMAT_VERSION, "device": "cpu (x)"})
    for i, seconds in enumerate((1.0, 2.0)):
        timed.add(f"p{i}", {"link": "semantic", "snr_index": i, "snr_db": float(i),
                            "batch_index": 0, "kind": "semantic", "images": 8,
                            "seconds": seconds, **dict.fromkeys(STAGE_COLUMNS, 0.125)}, {})
    timed.save()
    assert sweep_seconds.main([str(out), f"t={tmp_path / 't.h5'}:4"]) == 0
    stages = json.loads(out.read_text())["t"]["links"]["semantic"]["stage_seconds"]
    assert stages["receive"] == 0.25 and stages["total"] == 3.0
    assert stages["other"] == 3.0 - 0.25 * len(STAGE_COLUMNS)


def test_gpu_targets_reads_each_target_off_the_files_worked_by_hand(tmp_path):
    """.ci/gpu_targets.py on hand-made files: batch 1 takes the fastest of eager and graphs, the
    best batch the fastest row above batch 1 (here the compiled one), the speed-up SD 1.5's
    seconds over that batch-1 row (512 px: 1.25 / 0.2 = 6.25, met; 1024 px:
    1.5 / 0.32 = 4.6875, missed), the sweep its wall time, LDPC the best Mbit/s; a missing
    file or size is "not measured", not an error."""
    gpu_targets = _ci_script("gpu_targets")

    def row(size, batch, seconds, **how):
        return {"image_size": size, "batch_size": batch, "seconds_per_image": seconds, **how}

    files = {
        "bench-lite.json": {"receiver": [row(512, 1, 0.7), row(1024, 1, 0.75)],
                            "sd15_img2img": [row(512, 1, 1.25), row(1024, 1, 1.5)]},
        "bench-graphs.json": {"receiver": [row(512, 1, 0.2, cuda_graphs=True),
                                           row(1024, 1, 0.32, cuda_graphs=True),
                                           row(512, 32, 0.06, cuda_graphs=True),
                                           {"image_size": 1024, "batch_size": 32,
                                            "error": "out of memory"}]},
        "bench-compile.json": {"receiver": [row(512, 32, 0.045, cuda_graphs=True,
                                                compiled=True)]},
        "sweeps.json": {"paper-sweep": {"wall_seconds": 200.0, "snr_points": 5,
                                        "links": {"stable-cascade": {"images": 500}}}},
        "ldpc.json": {"ldpc_chain": [{"information_mbit_per_second": 50.0},
                                     {"information_mbit_per_second": 120.0},
                                     {"batch_blocks": 65536, "error": "out of memory"}]},
    }
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data))
    got = {r["target"]: (r["value"], r["met"]) for r in gpu_targets.targets(tmp_path)}
    assert got == {
        "lite + stage A, 512 px, batch 1": (0.2, True),
        "lite + stage A, 1024 px, batch 1": (0.32, False),
        "lite + stage A, 512 px, best batch": (0.045, True),
        "speed-up over SD 1.5 img2img, 512 px": (pytest.approx(6.25), True),
        "speed-up over SD 1.5 img2img, 1024 px": (pytest.approx(4.6875), False),
        "paper sweep, 100 images x 5 SNR, end to end": (200.0, True),
        "LDPC chain (n = 1536), information bits": (120.0, True),
    }
    table = gpu_targets.markdown(gpu_targets.targets(tmp_path))
    assert ("| 0.045 s/image | <= 0.05 s/image | yes | bench, batch 32 (cuda_graphs, compiled) |"
            in table)
    (tmp_path / "bench-compile.json").unlink()
    (tmp_path / "sweeps.json").write_text("{not json")
    missing = {r["target"]: r for r in gpu_targets.targets(tmp_path)}
    assert missing["lite + stage A, 512 px, best batch"]["value"] == 0.06
    assert missing["paper sweep, 100 images x 5 SNR, end to end"]["value"] is None
    assert "| not measured | <= 300 s | - |" in gpu_targets.markdown(list(missing.values()))


@pytest.mark.slow
def test_the_whole_script_rehearsed_on_the_cpu(tmp_path):
    """Every step exits 0 on the CPU at tiny sizes and leaves its file; at most 8 files come
    back, as a device run returns."""
    env = {**os.environ, "SEMLINK_GPU_CHECK_REHEARSAL": "1", "PYTHON": sys.executable}
    out = tmp_path / "out"
    subprocess.run(["bash", str(SCRIPT), str(out)], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=900)
    summary = (out / "summary.txt").read_text()
    status = [line for line in summary.splitlines() if ": exit " in line]
    assert len(status) == 11 and all(": exit 0 after " in line for line in status), summary
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 8 and names[-3] == "receiver-small-64px-b1.json.gz", names
    ldpc = json.loads((out / "ldpc.json").read_text())["ldpc_chain"]
    assert [r["batch_blocks"] for r in ldpc] == [4, 8, 16]
    sweeps = json.loads((out / "sweeps.json").read_text())
    links = sweeps["paper-sweep"]["links"]
    assert sorted(links) == ["jpeg2000-capacity", "jpeg2000-ldpc", "stable-cascade"]
    assert all(link["images"] == 5 * 8 for link in links.values())
