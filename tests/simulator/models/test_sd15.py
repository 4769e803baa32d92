"""Stable Diffusion 1.5 for Img2Img-SC: the weights folder's checks, loading, the tiny models and
img2img from a latent, against a DDIM loop written out here from the published schedule."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from semlink.errors import InputError
from semlink.models.sd15 import (SD15Img2Img, TinyTextEncoder, describe_sd15_dir,
                                 img2img_timesteps, load_sd15, scan_sd15_dir, tiny_sd15)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_sd15(seed=3)


def _write_folder(root, models) -> None:
    """An SD 1.5 folder in diffusers layout, written with diffusers' own save_pretrained and
    by hand (the text encoder and tokenizer: transformers is not installed here)."""
    models.unet.save_pretrained(root / "unet")
    models.vae.save_pretrained(root / "vae")
    (root / "text_encoder").mkdir()
    (root / "text_encoder" / "config.json").write_text(json.dumps(
        {"architectures": ["CLIPTextModel"], "hidden_size": 768}))
    save_file({"text_model.final_layer_norm.weight": torch.ones(768)},
              str(root / "text_encoder" / "model.safetensors"))
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.json").write_text("{}")
    (root / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "steps_offset": 1,
         "set_alpha_to_one": False, "skip_prk_steps": True, "clip_sample": False}))


@pytest.fixture
def folder(tmp_path, tiny):
    root = tmp_path / "sd15"
    _write_folder(root, tiny)
    return root


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------- the folder


def test_a_complete_folder_is_ready_and_loads_the_weights_written(folder, tiny):
    report = scan_sd15_dir(folder)
    assert report.ready, report.issues()
    assert report["unet"].dtype == "float32" and report["unet"].variant == ""
    text = describe_sd15_dir(folder)
    assert text.splitlines()[0] == f"Stable Diffusion 1.5 weights in {folder}"
    assert text.splitlines()[-1] == ("img2img-sc link: ready (UNet, VAE, text encoder, "
                                     "tokenizer and scheduler found)")
    models = load_sd15(folder, text_encoder=False)
    _state_equal(models.unet, tiny.unet)
    _state_equal(models.vae, tiny.vae)
    assert models.scaling_factor == 0.18215
    assert models.scheduler_config["beta_schedule"] == "scaled_linear"
    assert not models.unet.training and models.text_encoder is None


def test_vae_attention_keys_of_old_diffusers_files_are_renamed(folder, tiny):
    path = folder / "vae" / "diffusion_pytorch_model.safetensors"
    old = {k.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
           .replace(".to_out.0.", ".proj_attn."): v for k, v in load_file(str(path)).items()}
    assert any(".proj_attn." in k for k in old)
    save_file(old, str(path))
    _state_equal(load_sd15(folder, text_encoder=False).vae, tiny.vae)


def test_fp16_variant_is_found_when_it_is_the_only_file(folder, tiny):
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    save_file({k: v.half() for k, v in load_file(str(path)).items()},
              str(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    path.unlink()
    found = scan_sd15_dir(folder)["unet"]
    assert found.ok and found.variant == "fp16" and found.dtype == "float16"
    unet = load_sd15(folder, text_encoder=False).unet
    assert next(unet.parameters()).dtype == torch.float32
    expected = tiny.unet.state_dict()
    for k, v in unet.state_dict().items():
        assert torch.equal(v, expected[k].half().float()), k


def _remove(path):
    import shutil

    shutil.rmtree(path)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_config(path, **values):
    cfg = json.loads(path.read_text())
    cfg.update(values)
    path.write_text(json.dumps(cfg))


PROBLEMS = {
    "no unet": (lambda r: _remove(r / "unet"), r"unet: missing; a Stable Diffusion 1\.5 folder "
                r"in diffusers layout holds unet/, vae/"),
    "SD 2 unet": (lambda r: _edit_config(r / "unet" / "config.json", cross_attention_dim=1024),
                  r"config\.json: cross_attention_dim is 1024, Stable Diffusion 1\.5's is 768 "
                  r"\(a Stable Diffusion 2\.x or XL folder\?\); give the v1\.5 folder"),
    "inpainting unet": (lambda r: _edit_config(r / "unet" / "config.json", in_channels=9),
                        r"in_channels is 9, .*inpainting"),
    "not a VAE": (lambda r: _edit_config(r / "vae" / "config.json", _class_name="VQModel"),
                  r"vae/config\.json: a VQModel config, not AutoencoderKL"),
    "no unet config": (lambda r: (r / "unet" / "config.json").unlink(),
                       r"unet/config\.json: missing"),
    "half-downloaded vae": (lambda r: _truncate(r / "vae" / "diffusion_pytorch_model.safetensors"),
                            r"vae/diffusion_pytorch_model\.safetensors: (truncated|not a "
                            r"safetensors).*Download it again\."),
    "pickle only": (lambda r: (r / "vae" / "diffusion_pytorch_model.safetensors").rename(
        r / "vae" / "diffusion_pytorch_model.bin"), r"vae: holds only diffusion_pytorch_model"
        r"\.bin \(pickle\); semlink reads safetensors"),
    "no merges": (lambda r: (r / "tokenizer" / "merges.txt").unlink(),
                  r"tokenizer/merges\.txt: missing \(the CLIP tokenizer needs vocab\.json and "
                  r"merges\.txt"),
    "SD 2 text encoder": (lambda r: _edit_config(r / "text_encoder" / "config.json",
                                                 hidden_size=1024), r"hidden_size is 1024"),
    "scheduler not json": (lambda r: (r / "scheduler" / "scheduler_config.json").write_text("{"),
                           r"scheduler_config\.json: not a readable JSON file"),
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_each_problem_is_one_line_naming_the_file(folder, problem):
    damage, message = PROBLEMS[problem]
    damage(folder)
    report = scan_sd15_dir(folder)
    assert not report.ready
    with pytest.raises(InputError, match=message) as err:
        report.check()
    assert "\n" not in str(err.value)
    assert "not ready" in describe_sd15_dir(folder).splitlines()[-1]


def test_a_missing_or_non_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        scan_sd15_dir(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        scan_sd15_dir(tmp_path / "file")


def test_text_encoder_problems_do_not_stop_the_unet_and_vae(folder):
    (folder / "tokenizer" / "vocab.json").unlink()
    assert load_sd15(folder, text_encoder=False).unet is not None
    with pytest.raises(InputError, match="vocab.json: missing"):
        load_sd15(folder, text_encoder=True)


def test_weights_of_another_unet_name_the_key(folder):
    from diffusers import UNet2DConditionModel

    cfg = json.loads((folder / "unet" / "config.json").read_text())
    cfg["block_out_channels"] = [16, 48]  # same keys, other shapes
    other = UNet2DConditionModel.from_config(cfg)
    save_file(other.state_dict(), str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(InputError, match=r"diffusion_pytorch_model\.safetensors: wrong shape for "
                       r"`.+`: expected \[.+\], got \[.+\]; the weights do not match config"):
        load_sd15(folder, text_encoder=False)
    state = other.state_dict()
    state.pop(next(iter(state)))
    save_file({k: v.contiguous() for k, v in state.items()},
              str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(InputError, match=r"1 key\(s\) missing: `conv_in.weight`"):
        load_sd15(folder, text_encoder=False)


def test_non_finite_weights_are_refused(folder):
    path = folder / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    key = next(iter(state))
    state[key][0] = float("nan")
    save_file(state, str(path))
    with pytest.raises(InputError, match=f"{key} holds NaN"):
        load_sd15(folder, text_encoder=False)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None,
                    reason="transformers is installed")
def test_text_encoder_without_transformers_names_the_extra(folder):
    with pytest.raises(InputError, match=r"needs transformers \(pip install 'semlink\[blip\]'\)"):
        load_sd15(folder, text_encoder=True)


# ----------------------------------------------------------------------------- the models


def test_tiny_models_are_the_published_classes_and_deterministic(tiny):
    again = tiny_sd15(seed=3)
    _state_equal(again.unet, tiny.unet)
    _state_equal(again.vae, tiny.vae)
    other = tiny_sd15(seed=4)
    assert not torch.equal(other.unet.conv_in.weight, tiny.unet.conv_in.weight)
    assert type(tiny.unet).__name__ == "UNet2DConditionModel"
    assert type(tiny.vae).__name__ == "AutoencoderKL"
    assert 2 ** (len(tiny.vae.config.block_out_channels) - 1) == 8  # SD's latent at 1/8


def test_tiny_text_encoder_tells_prompts_apart():
    enc = TinyTextEncoder(dim=8, seed=0)
    e = enc(["a cat", "a cat", "a dog", ""])
    assert e.shape == (4, 77, 8)
    assert torch.equal(e[0], e[1]) and not torch.equal(e[0], e[2])
    assert torch.equal(e[0, 6:], e[3, 6:])  # after "a cat" + end token, all padding
    with pytest.raises(TypeError, match="sequence of str"):
        enc("a cat")


@pytest.mark.parametrize("steps, strength, first, count", [(50, 0.6, 581, 30), (50, 1.0, 981, 50),
                                                           (50, 0.0, None, 0), (10, 0.5, 401, 5)])
def test_img2img_timesteps_are_diffusers_img2img(tiny, steps, strength, first, count):
    from diffusers import DDIMScheduler

    t = img2img_timesteps(DDIMScheduler.from_config(tiny.scheduler_config), steps, strength)
    assert len(t) == count
    if count:
        ratio = 1000 // steps  # "leading" spacing with steps_offset 1: 1, 1 + ratio, ...
        assert t.tolist() == [first - ratio * i for i in range(count)] and t[-1] == 1


def _gens(n, seed=0):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def test_strength_zero_decodes_the_received_latent(tiny):
    rx = SD15Img2Img(tiny, steps=50, strength=0.0, guidance=9.0)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    out = rx(latents, ["a", "b"], _gens(2))
    with torch.no_grad():
        expected = ((tiny.vae.decode(latents / 0.18215).sample + 1) / 2).clamp(0, 1)
    assert out.shape == (2, 3, 64, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def _alphas_cumprod() -> torch.Tensor:
    """SD 1.5's "scaled_linear" schedule: betas on a square-root line from 0.00085 to 0.012."""
    betas = torch.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


@pytest.mark.parametrize("guidance", [1.0, 9.0])
def test_denoise_is_ddim_img2img_written_out(tiny, guidance):
    """5 steps at strength 0.6: noise to t = 401, then DDIM (eta 0) at 401, 201, 1."""
    rx = SD15Img2Img(tiny, steps=5, strength=0.6, guidance=guidance)
    gen = torch.Generator().manual_seed(5)
    latents = torch.randn(2, 4, 8, 8, generator=gen)
    cond = torch.randn(2, 77, 768, generator=gen)
    uncond = torch.randn(1, 77, 768, generator=gen)
    got = rx.denoise(latents, cond, _gens(2, 10), uncond)

    a = _alphas_cumprod()
    noise = torch.stack([torch.randn(4, 8, 8, generator=g) for g in _gens(2, 10)])
    x = (a[401].sqrt() * latents + (1 - a[401]).sqrt() * noise).float()
    with torch.no_grad():
        for t in (401, 201, 1):
            eps_c = tiny.unet(x, t, encoder_hidden_states=cond).sample
            eps_u = tiny.unet(x, t, encoder_hidden_states=uncond.expand(2, -1, -1)).sample
            eps = eps_c if guidance == 1.0 else eps_u + guidance * (eps_c - eps_u)
            a_t, a_prev = a[t], (a[t - 200] if t > 200 else a[0])  # set_alpha_to_one: False
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).float()
    torch.testing.assert_close(got, x, rtol=1e-4, atol=1e-4)


def test_each_row_draws_from_its_own_generator(tiny):
    rx = SD15Img2Img(tiny, steps=4, strength=0.5, guidance=3.0)
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 64, 64, generator=gen)
    both = rx(rx.encode_images(images, _gens(2)), ["a", "b"], _gens(2, 7))
    alone = rx(rx.encode_images(images[1:], _gens(1, 1)), ["b"], _gens(1, 8))
    torch.testing.assert_close(both[1:], alone, rtol=1e-4, atol=1e-4)
    again = rx(rx.encode_images(images, _gens(2)), ["a", "b"], _gens(2, 7))
    assert torch.equal(both, again)


def test_encode_samples_the_posterior_scaled(tiny):
    rx = SD15Img2Img(tiny)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    z = rx.encode_images(images, _gens(1))
    with torch.no_grad():
        dist = tiny.vae.encode(images * 2 - 1).latent_dist
    noise = torch.randn(4, 8, 8, generator=_gens(1)[0])
    torch.testing.assert_close(z[0], (dist.mean[0] + dist.std[0] * noise) * 0.18215)


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "steps"), ({"strength": 1.5}, "strength"),
                                           ({"guidance": 0.5}, "guidance")])
def test_receiver_settings_are_checked(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SD15Img2Img(tiny, **kwargs)
