"""Sampler: schedule vs closed form, equality with diffusers' scheduler, guidance, seeding."""
import math
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMWuerstchenScheduler

from semlink.models.sampler import (add_noise, alpha_cumprod, sample_latents, sampling_schedule,
                                      training_target)
from semlink.models.stage_b import build_stage_b
from tests.diffusion_reference import cosine_alpha_cumprod


pytestmark = pytest.mark.usefixtures("one_thread")


LATENT = (4, 16, 16)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(7)
    return build_stage_b("tiny")


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("steps", [1, 10, 25])
def test_schedule_matches_closed_form(steps):
    timesteps, acp = sampling_schedule(steps)
    expected_t = [1 - i / steps for i in range(steps + 1)]
    torch.testing.assert_close(timesteps, torch.tensor(expected_t), rtol=0, atol=1e-6)
    expected = torch.tensor([cosine_alpha_cumprod(t) for t in expected_t])
    torch.testing.assert_close(acp, expected, rtol=1e-5, atol=1e-7)
    assert acp[0] == pytest.approx(1e-4) and acp[-1] == pytest.approx(0.9999)


def test_add_noise_closed_form():
    x, n = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    t = torch.tensor([0.0, 0.5, 1.0])
    out = add_noise(x, n, t)
    for i, ti in enumerate(t.tolist()):
        a = cosine_alpha_cumprod(ti)
        torch.testing.assert_close(out[i], math.sqrt(a) * x[i] + math.sqrt(1 - a) * n[i])
    with pytest.raises(ValueError, match="must match"):
        add_noise(x, n[:2], t)
    torch.testing.assert_close(alpha_cumprod(torch.tensor([0.25])), torch.tensor([cosine_alpha_cumprod(0.25)]))


def _diffusers_reference(unet, z, steps, guidance, gens, cfg_batched=True):
    """The decoder pipeline's loop with diffusers' own scheduler (a second implementation)."""
    sched = DDPMWuerstchenScheduler()
    sched.set_timesteps(steps)
    b = z.shape[0]
    lat = torch.cat([torch.randn((1, *LATENT), generator=g) for g in gens])
    with torch.no_grad():
        for t in sched.timesteps[:-1]:
            r = t.expand(b)
            if cfg_batched:
                pred = unet(torch.cat([lat, lat]), torch.cat([r, r]), torch.zeros(2 * b, 1, 32),
                            effnet=torch.cat([z, torch.zeros_like(z)])).sample
                cond, uncond = pred.chunk(2)
                pred = torch.lerp(uncond, cond, guidance)
            else:  # purely conditional
                pred = unet(lat, r, torch.zeros(b, 1, 32), effnet=z).sample
            lat = sched.step(pred, r, lat, generator=gens).prev_sample
    return lat


class _Oracle(torch.nn.Module):
    """A perfect denoiser for one known clean latent ``x0``: from the noisy input and ``t`` it
    returns the exact noise, or the exact ``v``, written from the definitions."""

    def __init__(self, x0, prediction):
        super().__init__()
        self.x0, self.prediction = x0, prediction
        self.config = SimpleNamespace(effnet_in_channels=16, in_channels=4, patch_size=2,
                                      clip_text_pooled_in_channels=32)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.eval()

    def forward(self, x, r, text, effnet, return_dict):
        a = torch.tensor([cosine_alpha_cumprod(float(t)) for t in r], dtype=torch.float64).view(-1, 1, 1, 1)
        x64, x0 = x.double(), self.x0.double().expand_as(x)
        eps = (x64 - a.sqrt() * x0) / (1 - a).sqrt()
        out = eps if self.prediction == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        return (out.float(),)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 4, 20])
def test_perfect_denoiser_lands_on_its_latent(prediction, steps):
    """With exact predictions every DDPM step is the exact posterior, so the chain ends at x0
    (to within the schedule's clamp acp(0) = 0.9999) whatever the steps and the noise."""
    x0 = torch.randn(1, *LATENT, generator=torch.Generator().manual_seed(3))
    oracle = _Oracle(x0, prediction)
    z = torch.randn(2, 16, 6, 6)
    out = sample_latents(oracle, z, LATENT, steps=steps, guidance=1.5, generators=_gens(1, 2),
                         prediction=prediction)
    torch.testing.assert_close(out, x0.expand(2, -1, -1, -1), rtol=0, atol=0.02)
    # Reading v as eps (the wrong parameterisation) does not land there with few steps (with
    # many, the late steps, where v ~ eps, repair it).
    if prediction == "v_prediction" and steps <= 4:
        wrong = sample_latents(oracle, z, LATENT, steps=steps, guidance=1.0, generators=_gens(1, 2))
        assert (wrong - x0).abs().mean() > 0.3


def test_training_target_definitions():
    x0, eps = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    t = torch.tensor([0.1, 0.5, 0.95])
    assert training_target(x0, eps, t) is eps
    v = training_target(x0, eps, t, "v_prediction")
    noisy = add_noise(x0, eps, t)
    for i, ti in enumerate(t.tolist()):
        a = cosine_alpha_cumprod(ti)
        torch.testing.assert_close(v[i], math.sqrt(a) * eps[i] - math.sqrt(1 - a) * x0[i])
        # x0 and eps come back from (x_t, v): the identities the sampler relies on.
        torch.testing.assert_close(math.sqrt(a) * noisy[i] - math.sqrt(1 - a) * v[i], x0[i],
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(math.sqrt(1 - a) * noisy[i] + math.sqrt(a) * v[i], eps[i],
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="prediction"):
        training_target(x0, eps, t, "sample")


@pytest.mark.parametrize("guidance", [1.1, 2.0])
def test_equals_diffusers_scheduler(unet, guidance):
    z = torch.randn(2, 16, 6, 6)
    ours = sample_latents(unet, z, LATENT, steps=4, guidance=guidance, generators=_gens(1, 2))
    ref = _diffusers_reference(unet, z, 4, guidance, _gens(1, 2))
    assert ours.dtype == torch.float32 and ours.shape == (2, *LATENT)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_guidance_one_is_conditional_only(unet):
    z = torch.randn(2, 16, 6, 6)
    ours = sample_latents(unet, z, LATENT, steps=3, guidance=1.0, generators=_gens(3, 4))
    ref = _diffusers_reference(unet, z, 3, 1.0, _gens(3, 4), cfg_batched=False)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    # Guidance 1.1 really differs from the conditional path.
    guided = sample_latents(unet, z, LATENT, steps=3, guidance=1.1, generators=_gens(3, 4))
    assert not torch.allclose(guided, ours)


def test_guidance_below_one_still_mixes_in_the_unconditional_rows(unet):
    """Guidance in [0, 1) is allowed and means eps_u + g (eps_c - eps_u) like any other value:
    0.5 equals diffusers' batched loop, and 0 is purely unconditional sampling, i.e. the
    conditional path fed the all-zero embedding. Only g == 1 may skip the unconditional rows."""
    z = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(21))
    half = sample_latents(unet, z, LATENT, steps=3, guidance=0.5, generators=_gens(3, 4))
    ref = _diffusers_reference(unet, z, 3, 0.5, _gens(3, 4))
    torch.testing.assert_close(half, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    uncond = sample_latents(unet, z, LATENT, steps=3, guidance=0.0, generators=_gens(3, 4))
    ref0 = _diffusers_reference(unet, torch.zeros_like(z), 3, 1.0, _gens(3, 4), cfg_batched=False)
    torch.testing.assert_close(uncond, ref0, rtol=1e-5, atol=1e-5 * ref0.abs().max().item())


def test_same_seeds_reproduce_different_seeds_differ(unet):
    z = torch.randn(1, 16, 6, 6).expand(3, -1, -1, -1)  # one image, three transmissions
    a = sample_latents(unet, z, LATENT, steps=2, generators=_gens(10, 11, 12))
    b = sample_latents(unet, z, LATENT, steps=2, generators=_gens(10, 11, 12))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a[0], a[1]) and not torch.allclose(a[1], a[2])


def test_row_independent_of_batch_composition(unet):
    z = torch.randn(3, 16, 6, 6)
    batch = sample_latents(unet, z, LATENT, steps=3, generators=_gens(5, 6, 7))
    alone = sample_latents(unet, z[1:2], LATENT, steps=3, generators=_gens(6))
    reordered = sample_latents(unet, z[[2, 1]], LATENT, steps=3, generators=_gens(7, 6))
    tol = 1e-5 * batch.abs().max().item()
    torch.testing.assert_close(alone[0], batch[1], rtol=1e-5, atol=tol)
    torch.testing.assert_close(reordered[1], batch[1], rtol=1e-5, atol=tol)


def test_single_generator_for_the_batch(unet):
    z = torch.randn(2, 16, 6, 6)
    a = sample_latents(unet, z, LATENT, steps=2, generators=torch.Generator().manual_seed(0))
    b = sample_latents(unet, z, LATENT, steps=2, generators=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("z_side, latent_side", [(12, 128), (24, 256)])  # 512 px, 1024 px
def test_paper_sizes(unet, z_side, latent_side):
    z = torch.randn(1, 16, z_side, z_side)
    out = sample_latents(unet, z, (4, latent_side, latent_side), steps=1, guidance=1.0,
                         generators=_gens(0))
    assert out.shape == (1, 4, latent_side, latent_side)
    assert torch.isfinite(out).all()


def test_bad_arguments_raise(unet):
    z = torch.randn(2, 16, 6, 6)
    with pytest.raises(ValueError, match="one generator per batch row"):
        sample_latents(unet, z, LATENT, generators=_gens(1))
    with pytest.raises(ValueError, match=r"`latent_shape` must be \(4, h, w\)"):
        sample_latents(unet, z, (4, 15, 16), generators=_gens(1, 2))
    with pytest.raises(ValueError, match=r"`effnet_cond` must be \[batch, 16"):
        sample_latents(unet, torch.randn(2, 8, 6, 6), LATENT, generators=_gens(1, 2))
    with pytest.raises(ValueError, match="`guidance` must be >= 0"):
        sample_latents(unet, z, LATENT, guidance=-1.0, generators=_gens(1, 2))
    with pytest.raises(TypeError, match="`steps` must be int"):
        sample_latents(unet, z, LATENT, steps=True, generators=_gens(1, 2))
    with pytest.raises(TypeError, match="`generators` must be Generator"):
        sample_latents(unet, z, LATENT, generators=[1, 2])
    with pytest.raises(ValueError, match="`prediction` must be one of"):
        sample_latents(unet, z, LATENT, generators=_gens(1, 2), prediction="x0")
    unet.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            sample_latents(unet, z, LATENT, generators=_gens(1, 2))
    finally:
        unet.eval()


@pytest.mark.gpu
def test_cuda_bf16_autocast_reproducible(unet):
    dev = torch.device("cuda")
    net = build_stage_b("tiny", device=dev)
    net.load_state_dict(unet.state_dict())
    z = torch.randn(2, 16, 6, 6, device=dev)
    gens = lambda: [torch.Generator(dev).manual_seed(s) for s in (1, 2)]  # noqa: E731
    a = sample_latents(net, z, LATENT, steps=3, generators=gens())
    b = sample_latents(net, z, LATENT, steps=3, generators=gens())
    assert a.device.type == "cuda" and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="must be on cuda"):
        sample_latents(net, z, LATENT, generators=_gens(1, 2))


def test_bfloat16_weights_under_bfloat16_autocast(unet):
    """The CUDA configuration (bfloat16 parameters, bfloat16 autocast, float32 latents in the
    loop), here with CPU autocast, for both parameterisations: runs, returns float32 and
    reproduces. (How close bfloat16 comes to float32 is checked on the trained small preset in
    tests/integration/test_semantic_link.py; this random UNet is too ill-conditioned for it.)"""
    net = build_stage_b("tiny", dtype=torch.bfloat16)
    net.load_state_dict(unet.state_dict())
    z = torch.randn(2, 16, 6, 6)
    for prediction in ("epsilon", "v_prediction"):
        runs = [sample_latents(net, z, LATENT, steps=3, guidance=1.5, generators=_gens(1, 2),
                               amp_dtype=torch.bfloat16, prediction=prediction)
                for _ in range(2)]
        assert runs[0].dtype == torch.float32 and torch.isfinite(runs[0]).all()
        torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
