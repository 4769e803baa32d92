"""SemanticReceiver: shapes at paper sizes, range, seeding, batch independence, config."""
import json

import pytest
import torch

from semlink.models.receiver import SemanticReceiver
from semlink.models.sampler import sample_latents
from semlink.models.stage_a import decode_latents
from tests.threads import torch_threads


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rx():
    torch.manual_seed(3)
    receiver = SemanticReceiver(stage_b="tiny", stage_a="tiny", latent_scale_factor=0.43, steps=2)
    receiver.random_weights = False  # silence the warning; weights are random on purpose
    return receiver


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_paper_512_shapes(rx):
    z = torch.randn(1, 16, 12, 12)  # Z for a 512 px image
    out = rx(z, _gens(0), image_size=512, steps=1, guidance=1.0)
    assert out.shape == (1, 3, 512, 512) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_equals_sampler_then_decoder(rx):
    z = torch.randn(2, 16, 6, 6)
    out = rx(z, _gens(1, 2), image_size=(64, 96))
    latents = sample_latents(rx.stage_b, z, (4, 16, 24), steps=2, guidance=1.1, generators=_gens(1, 2))
    with torch.no_grad():
        ref = decode_latents(rx.stage_a, latents, 0.43)
    assert out.shape == (2, 3, 64, 96)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_call_guidance_and_v_prediction_reach_the_sampler():
    """A per-call ``guidance`` and the receiver's ``prediction`` are what the sampler gets: the
    output equals sample_latents with those values then the decoder, and differs from the
    defaults (so the comparison can tell them apart)."""
    torch.manual_seed(4)
    rx_v = SemanticReceiver(stage_b="tiny", stage_a="tiny", latent_scale_factor=0.43, steps=2,
                            prediction="v_prediction")
    rx_v.random_weights = False
    z = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(5))
    out = rx_v(z, _gens(1), image_size=32, guidance=2.0)

    def ref(guidance, prediction):
        latents = sample_latents(rx_v.stage_b, z, (4, 8, 8), steps=2, guidance=guidance,
                                 generators=_gens(1), prediction=prediction)
        with torch.no_grad():
            return decode_latents(rx_v.stage_a, latents, 0.43)

    torch.testing.assert_close(out, ref(2.0, "v_prediction"), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, ref(1.1, "v_prediction"))   # the default guidance
    assert not torch.allclose(out, ref(2.0, "epsilon"))        # the other parameterisation


def test_seeds_reproduce_and_transmissions_differ(rx):
    z = torch.randn(1, 16, 6, 6).expand(2, -1, -1, -1)
    a = rx(z, _gens(4, 5), image_size=64)
    b = rx(z, _gens(4, 5), image_size=64)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a[0], a[1])


def test_row_independent_of_batch(rx):
    z = torch.randn(2, 16, 6, 6)
    both = rx(z, _gens(8, 9), image_size=64)
    alone = rx(z[1:], _gens(9), image_size=64)
    torch.testing.assert_close(alone[0], both[1], rtol=1e-4, atol=1e-5)


def test_config_round_trip(rx):
    cfg = rx.config
    assert cfg == {"stage_b": "tiny", "stage_a": "tiny", "latent_scale_factor": 0.43, "steps": 2,
                   "guidance": 1.1, "prediction": "epsilon"}
    json.dumps(cfg)
    again = SemanticReceiver(**cfg)
    assert again.config == cfg
    assert again.stage_b.config == rx.stage_b.config


def test_from_preset_meta_and_load_weights(rx):
    big = SemanticReceiver.from_preset("stable-cascade-lite", meta=True)
    assert sum(p.numel() for p in big.stage_b.parameters()) == 699_471_248
    assert big.latent_scale_factor == 0.43 and big.random_weights
    assert big.prediction == "epsilon"  # Stability AI's stage B predicts the noise
    assert SemanticReceiver.from_preset("small", meta=True).prediction == "v_prediction"
    fresh = SemanticReceiver(stage_b="tiny", stage_a="tiny", latent_scale_factor=0.43, meta=True)
    fresh.load_weights(rx.stage_b.state_dict(), rx.stage_a.state_dict(), assign=True)
    assert not fresh.random_weights
    z = torch.randn(1, 16, 6, 6)
    torch.testing.assert_close(fresh(z, _gens(0), image_size=64, steps=1),
                               rx(z, _gens(0), image_size=64, steps=1), rtol=0, atol=0)


def _conv_weights(receiver):
    return [m.weight for m in receiver.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_channels_last_keeps_every_convolution_nhwc_and_gives_the_images_up_to_rounding(rx):
    """``channels_last=True``: every convolution weight of stage B and stage A in
    ``torch.channels_last`` (also after loading contiguous tensors with ``assign=True``); the
    images are the default layout's up to float rounding (another convolution algorithm)."""
    nhwc = SemanticReceiver(stage_b="tiny", stage_a="tiny", latent_scale_factor=0.43, steps=2,
                            channels_last=True, meta=True)
    contiguous = {k: v.contiguous() for k, v in rx.stage_b.state_dict().items()}
    nhwc.load_weights(contiguous, rx.stage_a.state_dict(), assign=True)
    weights = _conv_weights(nhwc)
    assert len(weights) == len(_conv_weights(rx)) > 10
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous(memory_format=torch.channels_last)
                   for w in _conv_weights(rx) if w.shape[2:] != (1, 1))  # the default differs
    z = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(8))
    a, b = rx(z, _gens(3, 4), image_size=64), nhwc(z, _gens(3, 4), image_size=64)
    assert (a - b).abs().max() < 1 / 255 and (a - b).abs().mean() < 1e-4
    with pytest.raises(TypeError, match="channels_last"):
        SemanticReceiver(stage_b="tiny", stage_a="tiny", channels_last="yes")


def test_random_weights_warn_once():
    r = SemanticReceiver(stage_b="tiny", stage_a="tiny", steps=1)
    z = torch.randn(1, 16, 4, 4)
    with pytest.warns(RuntimeWarning, match="random weights"):
        r(z, _gens(0), image_size=32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r(z, _gens(0), image_size=32)


def test_bad_arguments_raise(rx):
    z = torch.randn(1, 16, 6, 6)
    with pytest.raises(ValueError, match="`image_size` must be an int or"):
        rx(z, _gens(0), image_size=60)
    with pytest.raises(ValueError, match="`image_size` must be an int or"):
        rx(z, _gens(0), image_size=(64,))
    with pytest.raises(ValueError, match="`latent_scale_factor` must be > 0"):
        SemanticReceiver(stage_b="tiny", stage_a="tiny", latent_scale_factor=-1.0)
    with pytest.raises(TypeError, match="`stage_b` must be str or Mapping"):
        SemanticReceiver(stage_b=3)
    with pytest.raises(ValueError, match="`name` must be one of"):
        SemanticReceiver.from_preset("huge")
    with pytest.raises(ValueError, match="model's device"):
        rx(z.to("meta"), _gens(0), image_size=64)


@pytest.mark.parametrize("preset", ["stable-cascade-lite",
                                    pytest.param("stable-cascade", marks=pytest.mark.slow)])
def test_real_architecture_samples_in_bfloat16(preset):
    """The real stage B (700M / 1.56B parameters, built with random weights in bfloat16, the
    CUDA dtype) and stage A run a guided sampling step at 256 px on the CPU: the glue a GPU
    benchmark relies on (null text conditioning, embedding size, latent scale, decoder) fits
    the real configurations (lite: ~14 s and 3.2 GB on 2 cores)."""
    with torch_threads(2):  # big matmuls: worth both cores, unlike the tiny models here
        receiver = SemanticReceiver.from_preset(preset, device="cpu", dtype=torch.bfloat16)
        receiver.random_weights = False
        assert next(receiver.stage_b.parameters()).dtype == torch.bfloat16
        zhat = torch.randn(2, 16, 6, 6)  # Z of a 256 px image
        out = receiver(zhat, _gens(0, 1), image_size=256, steps=1, guidance=1.5)
    assert out.shape == (2, 3, 256, 256) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and 0 <= float(out.min()) <= float(out.max()) <= 1
    assert not torch.equal(out[0], out[1])
