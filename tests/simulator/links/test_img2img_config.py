"""The img2img-sc link's scenario config, its build from a LinkContext, and its captions (a CSV
file, BLIP): every bad input one line naming the file or key and the fix."""
from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from semlink.errors import InputError
from semlink.links.captions import BlipCaptioner, CaptionsFile
from semlink.links.protocol import LinkContext
from semlink.scenario import AWGNConfig, RayleighConfig
from semlink.scenario.link_img2img import Img2ImgSCLinkConfig
from semlink.seeding import derive_seed, make_generator

pytestmark = pytest.mark.usefixtures("one_thread")

CSV = 'image,caption\na.png,"a red door, a window"\nb.png,a cat on a sofa\n'


def _cfg(**kwargs):
    return Img2ImgSCLinkConfig.model_validate({"type": "img2img-sc", **kwargs})


def _context(tmp_path, channel=None, image_shape=(64, 64)):
    return LinkContext(name="i2i", image_shape=image_shape, device="cpu", seed=7,
                       base_dir=tmp_path, channel=channel or AWGNConfig(type="awgn"),
                       channel_uses_of=lambda name: 0)


def _generators(indices):
    return lambda purpose: [make_generator(derive_seed(0, purpose, i)) for i in indices]


# ----------------------------------------------------------------------------- config


def test_defaults_are_the_authors():
    cfg = _cfg(weights="sd15", captions="captions.csv")
    assert (cfg.model, cfg.transmission, cfg.steps, cfg.strength, cfg.guidance,
            cfg.negative_prompt) == ("sd15", "as_published", 50, 0.6, 9.0, "")
    assert (cfg.modulation, cfg.caption_bytes) == (16, 128)
    assert cfg.code_rate is None and cfg.codeword_length is None  # 1/2 and 2048 with analog
    assert Img2ImgSCLinkConfig.kind == "image"
    assert Img2ImgSCLinkConfig.model_validate(cfg.model_dump()) == cfg


@pytest.mark.parametrize("fields, match", [
    ({"weights": "w"}, r"give one of captions: \(a CSV file image,caption beside the images\) "
                       r"or captioner: \(a BLIP model folder, needs transformers\); got neither"),
    ({"weights": "w", "captions": "c.csv", "captioner": "blip"}, "got both"),
    ({"captions": "c.csv"}, "weights: model sd15 needs a Stable Diffusion 1.5 folder"),
    ({"model": "tiny", "weights": "w", "captions": "c.csv"}, "weights: model tiny builds random"),
    ({"model": "tiny", "captions": "c.csv", "code_rate": "1/3"},
     "code_rate: apply to transmission analog"),
    ({"model": "tiny", "captions": "c.csv", "modulation": 8}, "must be one of 2, 4, 16, 64, 256"),
    ({"model": "tiny", "captions": "c.csv", "strength": 1.5}, "less than or equal to 1"),
    ({"model": "tiny", "captions": "c.csv", "guidance": 0.5}, "greater than or equal to 1"),
    ({"model": "tiny", "captions": "c.csv", "transmission": "digital"}, "as_published"),
    ({"model": "tiny", "captions": "c.csv", "steps": 50.5}, "integer"),
    ({"model": "tiny", "captions": "c.csv", "cfg_scale": 9}, "Extra inputs"),
])
def test_bad_fields_are_refused(fields, match):
    with pytest.raises(ValidationError, match=match):
        _cfg(**fields)


def test_analog_takes_the_caption_code():
    cfg = _cfg(model="tiny", captions="c.csv", transmission="analog", code_rate="2/3",
               modulation=64)
    assert cfg.code_rate == pytest.approx(2 / 3) and cfg.modulation == 64


def test_the_config_module_does_not_import_torch():
    code = ("import sys, semlink.scenario.link_img2img; "
            "assert 'torch' not in sys.modules and 'pydantic' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- build


def test_build_from_the_config_sends_the_captions_of_the_file(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "captions.csv").write_text(CSV)
    cfg = _cfg(model="tiny", captions="photos/captions.csv", steps=4, strength=0.5)
    link = cfg.build(_context(tmp_path))
    assert link.receiver.steps == 4 and link.receiver.guidance == 9.0
    assert link.channel_uses == 256 * 16 + 2 * 128
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = link.transmit(images, None, math.inf, _generators([0, 1]),
                        names=["photos/a.png", "b.png"])
    lengths = [len("a red door, a window"), len("a cat on a sofa")]
    assert out.columns["channel_uses"].tolist() == [4096 + 2 * n for n in lengths]
    assert out.columns["caption_errors"].tolist() == [0, 0]
    with pytest.raises(InputError, match=r"captions.csv: no caption for image c.png \(add a row "
                       r"`c.png,<caption>`\)"):
        link.transmit(images[:1], None, 10.0, _generators([0]), names=["c.png"])


def test_tiny_weights_come_from_the_scenario_seed_and_link_name(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    cfg = _cfg(model="tiny", captions="c.csv")
    a = cfg.build(_context(tmp_path)).receiver.models.unet.conv_in.weight
    b = cfg.build(_context(tmp_path)).receiver.models.unet.conv_in.weight
    other = LinkContext(name="other", image_shape=(64, 64), device="cpu", seed=7,
                        base_dir=tmp_path, channel=AWGNConfig(type="awgn"),
                        channel_uses_of=lambda name: 0)
    c = cfg.build(other).receiver.models.unet.conv_in.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("channel, what", [
    (RayleighConfig(type="rayleigh"), "rayleigh"),
    (AWGNConfig(type="awgn", phase_noise_linewidth=0.01), "awgn with phase_noise_linewidth"),
])
def test_as_published_refuses_channels_it_does_not_simulate(tmp_path, channel, what):
    (tmp_path / "c.csv").write_text(CSV)
    with pytest.raises(InputError, match=rf"links.i2i.transmission: as_published flips bits with "
                       rf"the uncoded QAM BER over plain AWGN .*channel is {what}: use channel "
                       r"type awgn without impairments, or transmission: analog"):
        _cfg(model="tiny", captions="c.csv").build(_context(tmp_path, channel))
    link = _cfg(model="tiny", captions="c.csv", transmission="analog").build(
        _context(tmp_path, channel))
    assert link.channel_uses == 128 + 536


def test_missing_weights_folder_and_images_are_one_line(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    with pytest.raises(InputError, match=r"sd15: Stable Diffusion 1.5 folder not found "
                       r"\(links.i2i.weights\)"):
        _cfg(weights="sd15", captions="c.csv").build(_context(tmp_path))
    with pytest.raises(InputError, match="sends images"):
        _cfg(model="tiny", captions="c.csv").build(_context(tmp_path, image_shape=None))


# ----------------------------------------------------------------------------- captions


def test_captions_file_is_read_by_file_name(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("\ufeff" + CSV + "\n")  # a BOM and a blank line are fine
    captions = CaptionsFile(path, max_bytes=128)
    assert captions(None, ["x/b.png", "a.png"]) == ["a cat on a sofa", "a red door, a window"]
    with pytest.raises(ValueError, match="`names` must give the images' file names"):
        captions(torch.zeros(1, 3, 8, 8), None)


@pytest.mark.parametrize("text, match", [
    ("img,text\na.png,x\n", r"c.csv: the first row must be the header `image,caption`; got "
                            r"'img,text'"),
    ("", "the first row must be the header"),
    ("image,caption\na.png,a red door, a window\n", r"c.csv, line 2: needs 2 fields "
                                                     r"\(image,caption\); got 3 \(quote"),
    ("image,caption\na.png,x\na.png,y\n", r"c.csv, line 3: a.png is listed twice"),
    ("image,caption\na.png," + "x" * 20 + "\n", r"c.csv, line 2: the caption of a.png is 20 "
                                                r"bytes \(UTF-8\), more than caption_bytes \(16\)"
                                                r"; shorten it or raise the link's caption_bytes"),
])
def test_bad_captions_files_are_one_line(tmp_path, text, match):
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(InputError, match=match) as err:
        CaptionsFile(tmp_path / "c.csv", max_bytes=16)
    assert "\n" not in str(err.value)


def test_missing_or_binary_captions_file(tmp_path):
    with pytest.raises(InputError, match=r"c.csv: captions file not found \(links.x.captions: "
                       r"a CSV image,caption relative to the scenario's folder\)"):
        CaptionsFile(tmp_path / "c.csv", max_bytes=16, key="links.x.captions")
    (tmp_path / "c.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="cannot read the captions .*UTF-8 CSV"):
        CaptionsFile(tmp_path / "c.csv", max_bytes=16)


def test_blip_folder_problems_are_one_line(tmp_path):
    with pytest.raises(InputError, match=r"blip: BLIP model folder not found \(links.x.captioner"):
        BlipCaptioner(tmp_path / "blip", max_bytes=128, key="links.x.captioner")
    (tmp_path / "blip").mkdir()
    with pytest.raises(InputError, match=r"blip/config.json: missing"):
        BlipCaptioner(tmp_path / "blip", max_bytes=128)
    (tmp_path / "blip" / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"no model.safetensors .* download the weights"):
        BlipCaptioner(tmp_path / "blip", max_bytes=128)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None,
                    reason="transformers is installed")
def test_blip_without_transformers_names_both_options(tmp_path):
    (tmp_path / "blip").mkdir()
    (tmp_path / "blip" / "config.json").write_text("{}")
    (tmp_path / "blip" / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match=r"links.i2i.captioner: BLIP captions need transformers "
                       r"\(pip install 'semlink\[blip\]'\), or give `captions:`"):
        _cfg(model="tiny", captioner="blip").build(_context(tmp_path))


@pytest.mark.parametrize("fields", [{}, {"transmission": "analog"},
                                    {"transmission": "analog", "modulation": 4,
                                     "code_rate": "1/3", "caption_bytes": 64},
                                    {"modulation": 64, "caption_bytes": 30}])
def test_dimensionality_without_the_models_is_the_built_links(tmp_path, fields):
    (tmp_path / "c.csv").write_text(CSV)
    cfg = _cfg(model="tiny", captions="c.csv", **fields)
    context = _context(tmp_path, image_shape=(64, 96))
    row = cfg.dimensionality(context)
    assert row.sent_shape == (4, 8, 12)
    built = cfg.build(context)
    assert row == built.dimensionality()
    assert cfg.channel_uses(context) == built.channel_uses


def test_scenario_checks_and_paths():
    from types import SimpleNamespace

    cfg = _cfg(weights="w", captions="c.csv")
    assert cfg.referenced_paths() == {"weights": "w", "captions": "c.csv"}
    assert Img2ImgSCLinkConfig.scoring == "concealed"
    cfg.check_scenario(SimpleNamespace(channel=AWGNConfig(type="awgn")), "i2i")
    with pytest.raises(ValueError, match=r"links.i2i.transmission: as_published .* channel is "
                       r"rayleigh"):
        cfg.check_scenario(SimpleNamespace(channel=RayleighConfig(type="rayleigh")), "i2i")
    analog = _cfg(weights="w", captioner="blip", transmission="analog")
    analog.check_scenario(SimpleNamespace(channel=RayleighConfig(type="rayleigh")), "i2i")
    assert analog.referenced_paths() == {"weights": "w", "captioner": "blip"}
