"""Stage A: published config size, latent scaling round trip, image range and shapes."""
import pytest
import torch

from semlink.models.stage_a import (DIFFUSERS_SCALE_FACTOR, ORIGINAL_SCALE_FACTOR, build_stage_a,
                                      decode_latents, encode_latents, scale_factor_for_layout,
                                      stage_a_config)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vq():
    return build_stage_a("tiny")


def test_published_config_size_on_meta():
    vq = build_stage_a("stable-cascade", meta=True)
    assert sum(p.numel() for p in vq.parameters()) == 18_406_894  # "18.4M"
    assert stage_a_config("stable-cascade")["scale_factor"] == DIFFUSERS_SCALE_FACTOR


def test_scale_factor_per_layout():
    assert scale_factor_for_layout("original") == 0.43 == ORIGINAL_SCALE_FACTOR
    assert scale_factor_for_layout("diffusers") == 0.3764
    with pytest.raises(ValueError, match="`layout` must be one of 'original', 'diffusers'"):
        scale_factor_for_layout("ckpt")


@pytest.mark.parametrize("scale", [0.43, 0.3764, 1.0])
def test_encode_divides_decode_multiplies(vq, scale):
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = vq.encode(images).latents                       # the VQGAN's own output
        latents = encode_latents(vq, images, scale)
        assert latents.shape == (2, 4, 8, 12)
        torch.testing.assert_close(latents, raw / scale)
        # Round trip: the scale cancels, leaving the unscaled VQGAN reconstruction.
        out = decode_latents(vq, latents, scale)
        ref = vq.decode(raw, force_not_quantize=True).sample.clamp(0, 1)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        # Decoding with a different factor feeds a different latent to the decoder.
        wrong = vq.decode(latents * (scale * 1.5), force_not_quantize=True).sample.clamp(0, 1)
        assert not torch.allclose(wrong, out)
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1


def test_decode_clamps_to_unit_range(vq):
    latents = 50 * torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        unclamped = vq.decode(latents, force_not_quantize=True).sample
        out = decode_latents(vq, latents, 1.0)
    assert unclamped.min() < 0 or unclamped.max() > 1  # the clamp does something here
    assert out.min() >= 0 and out.max() <= 1


def test_bad_inputs_raise(vq):
    with pytest.raises(ValueError, match="multiples of 4"):
        encode_latents(vq, torch.rand(1, 3, 30, 32), 0.43)
    with pytest.raises(ValueError, match=r"must be \[batch, 4, h, w\]"):
        decode_latents(vq, torch.rand(1, 3, 8, 8), 0.43)
    with pytest.raises(ValueError, match="`scale_factor` must be > 0"):
        decode_latents(vq, torch.rand(1, 4, 8, 8), 0.0)
    with pytest.raises(ValueError, match="`name` must be one of"):
        stage_a_config("vae")
