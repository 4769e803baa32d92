"""Tests of `semlink weights DIR --download`: every part lands where its loader looks (Stable
Cascade in both layouts, the LPIPS AlexNet backbone in torch's hub cache, SD 1.5, BLIP), from a
fake huggingface_hub and URL downloader; without them, one line per missing file."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from semlink.cli import main
from semlink.metrics.lpips import find_lpips_backbone
from semlink.models import downloads as D
from semlink.models.sd15_files import SD15_REPO_ID, scan_sd15_dir
from semlink.models.weight_files import scan_weights_dir
from tests.fake_downloads import fake_torch_hub, hub_functions

ALEX_BYTES = b"not really alexnet"


def _tensors(path: Path, *keys: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(2) for k in keys or ("w",)}, str(path))


def _json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


@pytest.fixture
def remote(tmp_path) -> dict[str, Path]:
    """Tiny stand-ins for the three Hugging Face repositories (their real file names)."""
    sc, sd, blip = tmp_path / "hub" / "sc", tmp_path / "hub" / "sd15", tmp_path / "hub" / "blip"
    _tensors(sc / "effnet_encoder.safetensors", "backbone.0.0.weight", "mapper.0.weight")
    _tensors(sc / "stage_a.safetensors", "vquantizer.codebook.weight")
    for name in ("stage_b_lite", "stage_b_lite_bf16", "stage_b", "stage_b_bf16"):
        _tensors(sc / f"{name}.safetensors", "clip_mapper.weight")
    _json(sc / "vqgan" / "config.json", {})
    _tensors(sc / "vqgan" / "diffusion_pytorch_model.safetensors", "vquantizer.embedding.weight")
    for sub in ("decoder_lite", "decoder"):
        _json(sc / sub / "config.json", {})
        for stem in ("diffusion_pytorch_model", "diffusion_pytorch_model.bf16"):
            _tensors(sc / sub / f"{stem}.safetensors", "clip_txt_pooled_mapper.weight")
    _json(sd / "model_index.json", {"_class_name": "StableDiffusionPipeline"})
    _json(sd / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", "in_channels": 4,
                                        "cross_attention_dim": 768})
    _json(sd / "vae" / "config.json", {"_class_name": "AutoencoderKL", "latent_channels": 4})
    _json(sd / "text_encoder" / "config.json", {"hidden_size": 768})
    for dot in ("", ".fp16"):
        for part, stem in (("unet", "diffusion_pytorch_model"),
                           ("vae", "diffusion_pytorch_model"), ("text_encoder", "model")):
            _tensors(sd / part / f"{stem}{dot}.safetensors")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (sd / "tokenizer" / name).parent.mkdir(parents=True, exist_ok=True)
        (sd / "tokenizer" / name).write_text("{}")
    _json(sd / "scheduler" / "scheduler_config.json", {"num_train_timesteps": 1000})
    _tensors(sd / "unet" / "diffusion_pytorch_model.bin")  # never fetched: safetensors only
    for name in D.BLIP_FILES:
        if name.endswith(".safetensors"):
            _tensors(blip / name)
        else:
            (blip / name).parent.mkdir(parents=True, exist_ok=True)
            (blip / name).write_text("{}")
    return {D.STABLE_CASCADE_REPO_ID: sc, SD15_REPO_ID: sd, D.BLIP_REPO_ID: blip}


@pytest.fixture
def hub(remote, monkeypatch):
    """A huggingface_hub whose downloads copy from ``remote``; ``hub.calls`` records them."""
    calls = []
    hf_hub_download, snapshot_download = hub_functions(remote, calls)
    fake = types.SimpleNamespace(hf_hub_download=hf_hub_download,
                                 snapshot_download=snapshot_download, calls=calls)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    return fake


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """torch's hub cache in tmp_path; a fake URL downloader; its file passes the checksum."""
    return fake_torch_hub(monkeypatch, tmp_path, ALEX_BYTES, "7be5be79")


def test_download_everything_lands_where_the_loaders_look(tmp_path, hub, torch_home, capsys):
    w = tmp_path / "w"
    assert main(["weights", str(w), "--download", "--layout", "all", "--variant", "all",
                 "--sd15", "--blip"]) == 0
    report = scan_weights_dir(w)
    for comp in ("encoder", "stage_a", "stage_b_lite", "stage_b"):
        assert {e.layout for e in report.found(comp) if e.ok} == (
            {"original"} if comp == "encoder" else {"original", "diffusers"})
    assert not list(w.rglob("*bf16*"))  # float32 unless --bf16
    assert find_lpips_backbone("alex") == torch_home / "alexnet-owt-7be5be79.pth"
    assert torch.hub.download_url_to_file.urls == [("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79")]
    assert scan_sd15_dir(w / "sd15").ready and (w / "sd15" / "model_index.json").is_file()
    assert not list((w / "sd15").rglob("*.bin"))
    assert {p.name for p in (w / "sd15" / "unet").iterdir()} == {
        "config.json", "diffusion_pytorch_model.fp16.safetensors"}
    assert sorted(p.name for p in (w / "blip").iterdir()) == sorted(D.BLIP_FILES)
    out = capsys.readouterr().out
    assert "semantic link: ready" in out and "LPIPS AlexNet backbone: ok" in out
    assert "img2img-sc link: ready" in out and "BLIP captioner (img2img-sc link): " in out
    # A second run finds everything and fetches nothing.
    hub.calls.clear()
    assert main(["weights", str(w), "--download", "--layout", "all", "--variant", "all",
                 "--sd15", "--blip"]) == 0
    assert hub.calls == [] and len(torch.hub.download_url_to_file.urls) == 1


@pytest.mark.parametrize("layout", ["original", "diffusers"])
@pytest.mark.parametrize("bf16", [False, True])
def test_download_one_layout(tmp_path, hub, torch_home, layout, bf16):
    w = tmp_path / "w"
    assert main(["weights", str(w), "--download", "--layout", layout, "-q"]
                + ["--bf16"] * bf16) == 0
    report = scan_weights_dir(w)
    assert report.semantic_link_ready and report.missing == ("stage_b",)
    assert {e.layout for e in report.entries} == {"original", layout}
    assert bool(list(w.rglob("*bf16*"))) == bf16


def test_without_network_one_line_per_missing_file(tmp_path, monkeypatch, torch_home, capsys):
    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    def no_url(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        hf_hub_download=offline, snapshot_download=offline))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_url)
    w = tmp_path / "w"
    assert main(["weights", str(w), "--download", "--sd15"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("semlink: error: ") for line in err)
    assert "huggingface.co cannot be reached from here (ConnectionError: no route" in err[0]
    assert "could not download https://download.pytorch.org/models/alexnet" in err[1]
    expected = [f"{D.STABLE_CASCADE_REPO_ID}/resolve/main/{name} -> {w / name}" for name in (
        "effnet_encoder.safetensors", "stage_a.safetensors", "stage_b_lite.safetensors")]
    expected.append(f"{D.ALEXNET_URL} -> {torch_home / D.ALEXNET_FILE}")
    expected += [f"{SD15_REPO_ID}/resolve/main/{name} -> {w / 'sd15' / name}"
                 for files in D.sd15_files("fp16").values() for name in files]
    for line in expected:
        assert sum(line in e for e in err) == 1, line
    assert len(err) == 2 + len(expected) + 1  # why, one per file, the verdict
    assert err[-1].endswith("not ready for the semantic link (needs the encoder, stage A and "
                            "stage B lite or stage B)")
    assert not w.exists()  # no folder that looks like a download


def test_without_huggingface_hub_says_how_to_install_it(tmp_path, monkeypatch, torch_home,
                                                        capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert main(["weights", str(tmp_path / "w"), "--download"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("semlink: error: downloading from huggingface.co needs huggingface_hub: "
                      "pip install huggingface_hub")
    assert len(err) == 1 + 3 + 1  # the install line, 3 Stable Cascade files, the verdict
    assert find_lpips_backbone("alex") is not None  # the URL download needs no hub


def test_truncated_file_is_reported_with_the_fix_and_fetched_again(tmp_path, hub, torch_home,
                                                                   capsys):
    w = tmp_path / "w"
    assert main(["weights", str(w), "--download", "-q"]) == 0
    stage_b = w / "stage_b_lite.safetensors"
    stage_b.write_bytes(stage_b.read_bytes()[:-3])  # a half-finished download
    (parts,) = [d for d in D.plan_downloads(w) if "stage B lite" in d.part]
    assert parts.issue.startswith(f"{stage_b}: truncated safetensors file")
    assert parts.lines() == [
        f"{parts.issue} Fetch it again (`semlink weights DIR --download`) or by hand:",
        f"Stable Cascade stage B lite (original): https://huggingface.co/"
        f"{D.STABLE_CASCADE_REPO_ID}/resolve/main/stage_b_lite.safetensors -> {stage_b}"]
    assert main(["weights", str(w)]) == 2
    assert "truncated safetensors file" in capsys.readouterr().out
    hub.calls.clear()
    assert main(["weights", str(w), "--download", "-q"]) == 0
    assert hub.calls == [(D.STABLE_CASCADE_REPO_ID, "stage_b_lite.safetensors", True)]


def test_damaged_alexnet_is_reported(tmp_path, torch_home):
    torch_home.mkdir(parents=True)
    (torch_home / D.ALEXNET_FILE).write_bytes(b"cut")
    (lpips,) = [d for d in D.plan_downloads(tmp_path) if d.is_url]
    assert "must start with 7be5be79: a truncated or damaged download" in lpips.issue


def test_sd15_and_blip_are_required_only_when_asked(tmp_path, hub, torch_home, capsys):
    w = tmp_path / "w"
    assert main(["weights", str(w), "--download", "-q"]) == 0
    assert main(["weights", str(w)]) == 0  # the optional parts are reported, not required
    out = capsys.readouterr().out
    assert f"SD 1.5 (img2img-sc link, optional): {w / 'sd15'}: not found" in out
    assert f"BLIP captioner (img2img-sc link, optional): {w / 'blip'}: not found" in out
    assert main(["weights", str(w), "--sd15", str(tmp_path / "elsewhere"), "--blip"]) == 2
    err = capsys.readouterr().err
    assert f"-> {tmp_path / 'elsewhere' / 'unet' / 'config.json'}" in err
    assert f"-> {w / 'blip' / 'config.json'}" in err
    assert "not ready for the semantic link" not in err


def test_help_lists_every_file(capsys):
    with pytest.raises(SystemExit):
        main(["weights", "--help"])
    text = capsys.readouterr().out
    names = {f for v in ("lite", "full") for lay in ("original", "diffusers") for bf16 in (0, 1)
             for _, _, files in D.stable_cascade_files(v, lay, bool(bf16)) for f in files}
    names |= {f for v in D.SD15_VARIANTS for files in D.sd15_files(v).values() for f in files}
    names |= {*D.BLIP_FILES, D.ALEXNET_FILE, D.ALEXNET_URL, D.STABLE_CASCADE_REPO_ID,
              SD15_REPO_ID, D.BLIP_REPO_ID, "torch.hub.get_dir()/checkpoints/"}
    assert "stage_b_lite_bf16.safetensors" in names and "vqgan/config.json" in names
    missing = [n for n in names if n not in text]
    assert not missing


def test_lpips_file_is_the_one_lpips_loads():
    from semlink.metrics.lpips import BACKBONE_FILES

    assert BACKBONE_FILES["alex"] == D.ALEXNET_FILE


# The published file listings (huggingface.co "Files and versions", read 2026-12-07):
# https://huggingface.co/Salesforce/blip-image-captioning-large/tree/main
BLIP_PUBLISHED = {"config.json", "model.safetensors", "preprocessor_config.json",
                  "pytorch_model.bin", "special_tokens_map.json", "tf_model.h5", "tokenizer.json",
                  "tokenizer_config.json", "vocab.txt", "README.md", ".gitattributes"}
# https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/tree/main (diffusers
# folders; the safety checker and feature extractor, which semlink does not use, left out)
SD15_PUBLISHED = {
    "model_index.json", "scheduler/scheduler_config.json",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin",
    "text_encoder/pytorch_model.fp16.bin",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_pytorch_model.fp16.bin",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.bin",
    "vae/diffusion_pytorch_model.fp16.bin"}


def test_blip_and_sd15_downloads_are_published_file_names():
    """Every file the download asks for is in the published listing (a renamed or invented
    name fails here, not in a user's download), and the safetensors weights are the ones."""
    assert set(D.BLIP_FILES) <= BLIP_PUBLISHED
    assert {f for f in D.BLIP_FILES if "model" in f and not f.endswith(".json")} == \
        {"model.safetensors"}
    for variant, dot in (("fp16", ".fp16"), ("fp32", "")):
        files = {f for part in D.sd15_files(variant).values() for f in part}
        assert files <= SD15_PUBLISHED, files - SD15_PUBLISHED
        assert {f for f in files if f.endswith(".safetensors")} == {
            f"unet/diffusion_pytorch_model{dot}.safetensors",
            f"vae/diffusion_pytorch_model{dot}.safetensors",
            f"text_encoder/model{dot}.safetensors"}
