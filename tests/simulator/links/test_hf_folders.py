"""The Img2Img-SC link's transformers code paths on folders in the published Hugging Face layouts
(:mod:`tests.tiny_hf_folders`): Stable Diffusion 1.5 with the real CLIP tokenizer and text
encoder, the BLIP captioner, the link built from a scenario, and the helper's files against
what ``semlink weights DIR --download --sd15 --blip`` fetches."""
from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest
import torch

from semlink.errors import InputError
from semlink.links.builder import LinkBuilder
from semlink.links.captions import BlipCaptioner
from semlink.models import downloads as D
from semlink.models.fetching import fetch
from semlink.models.sd15 import CLIPPromptEncoder, load_sd15, scan_sd15_dir, tiny_sd15
from semlink.models.sd15_files import SD15_REPO_ID
from semlink.scenario import parse_scenario
from semlink.seeding import derive_seed, make_generator
from tests.fake_downloads import hub_functions
from tests.tiny_hf_folders import CLIP_VOCAB_SIZE, write_tiny_blip, write_tiny_sd15

pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")

SEED = 5
SCENARIO = """\
images: {source: sample, size: 64, count: 2}
snr: {points_db: [10]}
links:
  i2i: {type: img2img-sc, weights: sd15, captioner: blip, steps: 2, strength: 0.5}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """One folder holding ``sd15/`` (fp16 variant) and ``blip/``, written once per module."""
    root = tmp_path_factory.mktemp("hf")
    write_tiny_sd15(root / "sd15", seed=SEED)
    write_tiny_blip(root / "blip", seed=SEED)
    return root


@pytest.fixture(scope="module")
def sd15(root):
    return load_sd15(root / "sd15", text_encoder=True)


@pytest.fixture(scope="module")
def captioner(root):
    return BlipCaptioner(root / "blip", max_bytes=128)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _images(count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- SD 1.5


def test_the_folder_is_ready_and_loads_the_weights_written(root, sd15):
    assert scan_sd15_dir(root / "sd15").ready
    report = scan_sd15_dir(root / "sd15")
    assert {report[c].variant for c in ("unet", "vae", "text_encoder")} == {"fp16"}
    assert {report[c].dtype for c in ("unet", "vae", "text_encoder")} == {"float16"}
    tiny = tiny_sd15(seed=SEED)  # the UNet and VAE written, rounded to float16 as published
    for loaded, written in ((sd15.unet, tiny.unet), (sd15.vae, tiny.vae)):
        state = written.state_dict()
        for key, value in loaded.state_dict().items():
            assert value.dtype == torch.float32
            assert torch.equal(value, state[key].half().float()), key
    assert sd15.scheduler_config["_class_name"] == "PNDMScheduler"
    assert sd15.scheduler_config["num_train_timesteps"] == 1000
    assert sd15.source == str(root / "sd15")


def test_clip_tokenizes_captions_byte_by_byte(sd15):
    encoder = sd15.text_encoder
    assert isinstance(encoder, CLIPPromptEncoder)
    ids = encoder.tokenizer(["A cat"]).input_ids[0]  # lower-cased; </w> ends each word
    assert ids == [CLIP_VOCAB_SIZE - 2, 256 + ord("a"), ord("c"), ord("a"), 256 + ord("t"),
                   CLIP_VOCAB_SIZE - 1]
    padded = encoder.tokenizer(["a red door, a window " * 20], padding="max_length",
                               truncation=True, max_length=77).input_ids[0]
    assert len(padded) == 77 and padded[-1] == CLIP_VOCAB_SIZE - 1  # cut, ends with <|endoftext|>


def test_prompt_embeddings_are_what_the_unet_takes(sd15):
    prompts = ["a cat on a sofa", "a red door, a window", "a cat on a sofa", "ünïcödé ✓"]
    emb = sd15.text_encoder(prompts)
    assert emb.shape == (4, 77, sd15.unet.config.cross_attention_dim)
    assert emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert torch.equal(emb[0], emb[2]) and not torch.allclose(emb[0], emb[1])
    assert not torch.allclose(emb[0], emb[3])
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    out = sd15.unet(latents, 10, encoder_hidden_states=emb).sample
    assert out.shape == latents.shape and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- BLIP


def test_blip_captions_each_image_the_same_way_twice(root, captioner):
    images = _images(3)
    captions = captioner(images, ["a.png", "b.png", "c.png"])
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert captioner(images, None) == captions
    assert BlipCaptioner(root / "blip", max_bytes=128)(images, None) == captions
    # Greedy: at most 20 tokens of at most 5 letters and a space each.
    assert all(len(c.encode("utf-8")) <= 120 for c in captions)
    assert all(c == c.strip() and "[" not in c for c in captions)  # special tokens skipped


def test_blip_refuses_a_caption_longer_than_max_bytes(root, captioner):
    images = _images(3)
    captions = captioner(images, None)
    longest = max(range(3), key=lambda i: len(captions[i].encode()))
    size = len(captions[longest].encode())
    assert size >= 2
    short = BlipCaptioner(root / "blip", max_bytes=size - 1, key="links.i2i.captioner")
    name = ["a.png", "b.png", "c.png"][longest]
    with pytest.raises(InputError, match=rf"blip: the caption of {name} is {size} bytes \(UTF-8\),"
                       rf" more than caption_bytes \({size - 1}\)"):
        short(images, ["x/a.png", "x/b.png", "x/c.png"])


# ----------------------------------------------------------------------------- the link


def test_link_from_a_scenario_transmits_end_to_end(root, captioner):
    scenario = parse_scenario(SCENARIO)
    link = LinkBuilder(scenario, base_dir=root, device="cpu").link("i2i")
    assert isinstance(link.captions, BlipCaptioner)
    assert isinstance(link.receiver.models.text_encoder, CLIPPromptEncoder)
    images = _images(2, seed=1)

    def generators(purpose):
        return [make_generator(derive_seed(SEED, purpose, i)) for i in range(2)]

    out = link.transmit(images, None, math.inf, generators)
    assert out.images.shape == (2, 3, 64, 64) and out.images.dtype == torch.float32
    assert 0 <= float(out.images.min()) and float(out.images.max()) <= 1
    assert not out.failed.any()
    # Noise-free: the BLIP captions arrive intact; 256 latent doubles at 16-QAM, 2 uses a byte.
    sizes = [len(c.encode("utf-8")) for c in captioner(images, None)]
    assert out.columns["channel_uses"].tolist() == [4096 + 2 * n for n in sizes]
    assert out.columns["caption_errors"].tolist() == [0, 0]
    again = link.transmit(images, None, math.inf, generators)
    assert torch.equal(again.images, out.images)


# ----------------------------------------------------------------------------- the downloads


def test_the_files_are_the_download_plans(root):
    planned = {f for files in D.sd15_files("fp16").values() for f in files}
    assert _files(root / "sd15") == planned
    assert _files(root / "blip") == set(D.BLIP_FILES)
    parts = [d for d in D.plan_downloads(root / "w", lpips=False, sd15=root / "sd15",
                                         blip=root / "blip")
             if d.source in (SD15_REPO_ID, D.BLIP_REPO_ID)]
    assert len(parts) == 7 and all(d.issue is None for d in parts)  # present and usable


def test_the_fp32_variant_is_the_fp32_plan(tmp_path):
    folder = write_tiny_sd15(tmp_path / "sd15", seed=SEED, variant="fp32")
    assert _files(folder) == {f for files in D.sd15_files("fp32").values() for f in files}
    report = scan_sd15_dir(folder)
    assert report.ready and report["text_encoder"].dtype == "float32"
    assert report["unet"].variant == ""


def test_a_fake_hub_serving_the_folders_satisfies_the_download(root, captioner, tmp_path,
                                                                monkeypatch):
    """``--download --sd15 --blip`` from a hub that serves the helper's folders: every file
    fetched, the result ready and loadable."""
    served = {SD15_REPO_ID: root / "sd15", D.BLIP_REPO_ID: root / "blip"}
    hf_hub_download, snapshot_download = hub_functions(served, [])
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        hf_hub_download=hf_hub_download, snapshot_download=snapshot_download))
    w = tmp_path / "w"

    def plan():
        return [d for d in D.plan_downloads(w, lpips=False, sd15=w / "sd15", blip=w / "blip")
                if d.source in served]

    assert all(d.issue == D.MISSING for d in plan())
    assert fetch(plan(), progress=False) == []
    assert all(d.issue is None for d in plan())
    assert _files(w / "sd15") == _files(root / "sd15")
    assert _files(w / "blip") == _files(root / "blip")
    assert scan_sd15_dir(w / "sd15").ready
    assert load_sd15(w / "sd15", text_encoder=True).text_encoder(["a cat"]).shape == (1, 77, 768)
    images = _images(2)
    assert BlipCaptioner(w / "blip", max_bytes=128)(images, None) == captioner(images, None)
