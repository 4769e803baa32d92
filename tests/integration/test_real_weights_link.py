"""A real preset's semantic link loads Stability AI's files from its `weights:` folder, in either
published layout, with the latent scale that goes with the stage A file, and transmits with them;
a training recipe starts from the same folder. The presets' stage A and B are swapped for tiny
models of the same classes (the real ones have 0.7 to 1.6 billion parameters: their sizes and
key layouts are checked in tests/simulator/models/test_weights.py); the encoder is full size."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.errors import InputError
from semlink.images import load_images
from semlink.links.semantic import SemanticLink
from semlink.models import presets
from semlink.models.encoder import SemanticEncoder
from semlink.models.stage_a import DIFFUSERS_SCALE_FACTOR, ORIGINAL_SCALE_FACTOR, build_stage_a
from semlink.models.stage_b import build_stage_b
from semlink.scenario import AnalogTransmission
from semlink.seeding import make_generator
from semlink.training.config import ModelConfig
from semlink.training.models import build_training_models
from tests.weights_layout import (assert_state_equal, save, to_original_stage_a,
                                  to_original_stage_b, write_diffusers)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def tiny_real_presets(monkeypatch):
    for name in ("stable-cascade-lite", "stable-cascade"):
        tiny = dataclasses.replace(presets.get_preset(name), stage_b="tiny", stage_a="tiny")
        monkeypatch.setitem(presets._PRESETS, name, tiny)


@pytest.fixture(scope="module")
def state_dicts():
    """The models' own random initialisation (sane enough to transmit with) from a seed of
    their own, so the link's freshly built models differ from them until loaded."""
    with torch.random.fork_rng():
        torch.manual_seed(99)
        models = SemanticEncoder(), build_stage_b("tiny"), build_stage_a("tiny")
    return [(m, {k: v.clone() for k, v in m.state_dict().items()}) for m in models]


def _folder(tmp_path, state_dicts, layout, variant):
    (_, enc), (b_model, b_sd), (a_model, a_sd) = state_dicts
    folder = tmp_path / layout
    save(enc, folder / "effnet_encoder.safetensors")  # the only layout the encoder has
    if layout == "original":
        save(to_original_stage_b(b_sd), folder / f"stage_b{'_lite' if variant == 'lite' else ''}"
                                                 ".safetensors", dtype=torch.bfloat16)
        save(to_original_stage_a(a_sd), folder / "stage_a.safetensors")
    else:
        write_diffusers(folder / ("decoder_lite" if variant == "lite" else "decoder"), b_model,
                        b_sd)
        write_diffusers(folder / "vqgan", a_model, a_sd)
    return folder


@pytest.mark.parametrize("layout, preset, scale", [
    ("original", "stable-cascade-lite", ORIGINAL_SCALE_FACTOR),
    ("diffusers", "stable-cascade", DIFFUSERS_SCALE_FACTOR)])
def test_link_loads_the_folder_and_transmits(tmp_path, state_dicts, layout, preset, scale):
    variant = "lite" if preset == "stable-cascade-lite" else "full"
    folder = _folder(tmp_path, state_dicts, layout, variant)
    link = SemanticLink(preset=preset, image_size=64, transmission=AnalogTransmission(mode="analog"),
                        weights=folder, steps=2)
    (_, enc), (_, b_sd), (_, a_sd) = state_dicts
    assert link.weights_source == str(folder) and not link.receiver.random_weights
    assert link.receiver.latent_scale_factor == scale
    assert_state_equal(link.encoder, enc)
    assert_state_equal(link.receiver.stage_a, a_sd)
    got_b = link.receiver.stage_b.state_dict()
    for key, value in b_sd.items():  # the original file was bfloat16: equal after rounding
        want = value.to(torch.bfloat16).float() if layout == "original" else value
        assert torch.equal(got_b[key], want), key
    images = load_images("sample", 64, count=2)[0]
    out = link.transmit(images, AWGNChannel(generator=make_generator(0)), 10.0,
                        lambda purpose: [make_generator(1), make_generator(2)])
    assert out.images.shape == (2, 3, 64, 64) and bool(torch.isfinite(out.images).all())


def test_link_names_what_is_missing(tmp_path, state_dicts):
    folder = _folder(tmp_path, state_dicts, "original", "lite")
    (folder / "stage_a.safetensors").unlink()
    with pytest.raises(InputError, match="stage_a"):
        SemanticLink(preset="stable-cascade-lite", image_size=64, weights=folder,
                     transmission=AnalogTransmission(mode="analog"))
    # Lite files do not serve the full preset.
    folder = _folder(tmp_path / "lite", state_dicts, "original", "lite")
    with pytest.raises(InputError, match="stage_b"):
        SemanticLink(preset="stable-cascade", image_size=64, weights=folder,
                     transmission=AnalogTransmission(mode="analog"))


def test_training_starts_from_the_folder(tmp_path, state_dicts):
    folder = _folder(tmp_path, state_dicts, "diffusers", "lite")
    models = build_training_models(ModelConfig(preset="stable-cascade-lite", stage_b="tiny",
                                               stage_a="tiny", init=str(folder)),
                                   device="cpu")
    (_, enc), (_, b_sd), (_, a_sd) = state_dicts
    assert models.init_source == str(folder) and models.scale_factor == DIFFUSERS_SCALE_FACTOR
    assert_state_equal(models.stage_b, b_sd)
    assert_state_equal(models.stage_a, a_sd)
    torch.testing.assert_close(models.encoder.state_dict(), enc, rtol=0, atol=0)
