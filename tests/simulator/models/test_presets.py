"""Presets: names, fields that must agree with the configs they name, errors."""
import dataclasses
import json

import pytest
import torch

from semlink.models.presets import PRESET_NAMES, get_preset
from semlink.models.stage_a import STAGE_A_CONFIG_NAMES
from semlink.models.stage_b import STAGE_B_CONFIG_NAMES, stage_b_config


def test_names():
    assert PRESET_NAMES == ("small", "stable-cascade-lite", "stable-cascade")


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_fields_consistent(name):
    p = get_preset(name)
    assert p.name == name
    assert p.stage_b in STAGE_B_CONFIG_NAMES and p.stage_a in STAGE_A_CONFIG_NAMES
    # The paper samples stage B with 10 steps; the small preset's one step is its best PSNR on
    # training crops (docs/training.md).
    assert (p.steps, p.guidance) == ((1, 1.0) if name == "small" else (10, 1.1))
    assert p.prediction == ("v_prediction" if name == "small" else "epsilon")
    assert p.embedding_channels == stage_b_config(p.stage_b)["effnet_in_channels"] == 16
    assert p.default_dtype("cuda") is torch.bfloat16
    assert p.default_dtype("cpu") is torch.float32
    json.dumps(p.to_dict())  # serialisable for result hashing
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.steps = 20


@pytest.mark.parametrize("name", ["stable-cascade-lite", "stable-cascade"])
def test_real_presets(name):
    p = get_preset(name)
    assert p.encoder_kwargs() == {"width_mult": 1.0, "depth_mult": 1.0, "embedding_channels": 16,
                                  "resize_factor": 0.75}
    assert p.native_image_size == 1024
    assert p.latent_scale_factor == 0.43  # original stage_a.safetensors
    assert p.stage_a == "stable-cascade"
    assert p.shipped_weights_dir is None and not p.has_shipped_weights()


def test_small_preset():
    p = get_preset("small")
    kw = p.encoder_kwargs()
    assert 0.25 <= kw["width_mult"] <= 0.5 and 0.25 <= kw["depth_mult"] <= 0.5
    assert p.native_image_size == 256
    assert p.shipped_weights_dir.parts[-4:] == ("simulator", "data", "weights", "small")
    assert p.has_shipped_weights() == (p.shipped_weights_dir.is_dir()
                                       and any(p.shipped_weights_dir.iterdir()))


def test_bad_names_raise():
    with pytest.raises(ValueError, match="`name` must be one of 'small', 'stable-cascade-lite', "
                                         "'stable-cascade'; got 'large'"):
        get_preset("large")
    with pytest.raises(TypeError, match="`name` must be str"):
        get_preset(None)


def test_small_preset_matches_its_shipped_weights():
    """The small preset's fields are those the shipped weights were trained with, as recorded in
    the bundle's metadata by the training run (read from the header only): encoder size and
    resize factor, stage B and stage A configurations, latent scale, parameterisation."""
    from semlink.models.bundle import BUNDLE_FILE, read_bundle_info
    from semlink.models.stage_a import stage_a_config

    p = get_preset("small")
    if not p.has_shipped_weights():
        pytest.skip("the small preset's weights are not shipped in this checkout")
    info = read_bundle_info(p.shipped_weights_dir / BUNDLE_FILE)
    assert info["preset"] == "small"
    arch = info["info"]["architecture"]
    assert {k: arch["encoder"][k] for k in p.encoder_kwargs()} == p.encoder_kwargs()
    assert arch["stage_b"] == stage_b_config(p.stage_b)
    assert arch["stage_a"] == stage_a_config(p.stage_a)
    assert arch["latent_scale_factor"] == p.latent_scale_factor
    assert arch["prediction"] == p.prediction
