"""The training loop: resume equals an uninterrupted run, logs, bundle, refusals."""
from __future__ import annotations

import csv

import pytest
import torch

from semlink.errors import InputError
from semlink.images import SAMPLE_DIR
from semlink.models.bundle import load_bundle, read_bundle_info
from semlink.seeding import derive_seed
from semlink.training.config import parse_train_config
from semlink.training.loop import train, train_main
from semlink.training.models import build_training_models
from tests.diffusion_reference import cosine_alpha_cumprod
from tests.threads import torch_threads

CONFIG = f"""\
name: tiny
seed: 3
checkpoint_every: 2
log_every: 1
data: {{source: {SAMPLE_DIR}, size: 64, count: 3}}
model: {{preset: small, stage_b: tiny, stage_a: tiny}}
phases:
  - {{train: [stage_a], steps: 1, batch_size: 2, lr: 1.0e-3}}
  - {{train: [encoder, stage_b], steps: 3, batch_size: 2, grad_accum: 2, lr: 1.0e-3,
     conditioning: {{snr_min_db: 1, snr_max_db: 20, drop_prob: 0.5}}}}
validation: {{size: 64, count: 2, snr_db: [5], every: 100, steps: 1, guidance: 1.0}}
"""


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    with torch_threads(2):
        bundle = train(parse_train_config(CONFIG), output=out)
    return out, bundle


def test_resume_continues_the_same_loss_curve(tmp_path, uninterrupted):
    full, _ = uninterrupted
    cfg = parse_train_config(CONFIG)
    # stop inside phase 2 after step 3 (checkpoints at 1, 2, 3), then resume; with the
    # uninterrupted run's threads, as a sum's order depends on them
    with torch_threads(2):
        train(cfg, output=tmp_path, stop_after=3)
        assert len(_rows(tmp_path / "log.csv")) == 3
        torch.manual_seed(999)  # a different global RNG state must not matter
        bundle = train(cfg, output=tmp_path, resume=True)
    a = [(r["step"], r["phase"], r["loss"]) for r in _rows(full / "log.csv")]
    b = [(r["step"], r["phase"], r["loss"]) for r in _rows(tmp_path / "log.csv")]
    assert a == b and len(a) == 4
    assert _rows(full / "validation.csv") == _rows(tmp_path / "validation.csv")
    from safetensors.torch import load_file
    x, y = load_file(full / "model.safetensors"), load_file(bundle)
    assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_logs_and_bundle(uninterrupted):
    out, bundle = uninterrupted
    log = _rows(out / "log.csv")
    assert [int(r["step"]) for r in log] == [1, 2, 3, 4]
    assert [int(r["phase"]) for r in log] == [0, 1, 1, 1]
    # stage A starts from random weights: MSE of a random decoder on [0, 1] images is large
    assert all(float(r["loss"]) > 0 for r in log)
    val = _rows(out / "validation.csv")
    assert [(r["step"], r["snr_db"]) for r in val] == [("1", ""), ("4", "5.0")]
    assert all(0 < float(r["psnr_db"]) < 60 and -1 <= float(r["ssim"]) <= 1 for r in val)
    info = read_bundle_info(bundle)
    assert info["preset"] == "small" and info["parts"] == ["encoder", "stage_a", "stage_b"]
    assert info["info"]["steps"] == 4
    models = build_training_models(parse_train_config(CONFIG).model, device="cpu")
    load_bundle(bundle, models.parts(), preset="small")  # strict: every key and shape


def test_phase_trains_only_its_parts(tmp_path):
    text = CONFIG.replace("[encoder, stage_b]", "[stage_b]").replace("steps: 3,", "steps: 1,")
    text = text[:text.index("validation:")] + "validation: null\n"
    cfg = parse_train_config(text)
    train(cfg, output=tmp_path)
    torch.manual_seed(derive_seed(cfg.seed, "init"))   # the run's initial weights
    init = build_training_models(cfg.model, device="cpu")
    trained = build_training_models(cfg.model, device="cpu")
    load_bundle(tmp_path / "model.safetensors", trained.parts())

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                     b.state_dict().values()))

    assert same(init.encoder, trained.encoder)          # never trained
    assert not same(init.stage_a, trained.stage_a)      # phase 1
    assert not same(init.stage_b, trained.stage_b)      # phase 2
    assert not (tmp_path / "validation.csv").exists()


def test_refuses_to_overwrite_and_to_resume_another_config(tmp_path, uninterrupted):
    full, _ = uninterrupted
    cfg = parse_train_config(CONFIG)
    with pytest.raises(InputError, match=r"already holds a training checkpoint; pass --resume"):
        train(cfg, output=full)
    other = parse_train_config(CONFIG.replace("seed: 3", "seed: 4"))
    with pytest.raises(InputError, match=r"written by a different training config"):
        train(other, output=full, resume=True)
    with pytest.raises(InputError, match=r"no checkpoint to resume from"):
        train(cfg, output=tmp_path / "empty", resume=True)


def test_train_main_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG + "epochs: 1\n")
    with pytest.raises(InputError, match=r"bad\.yaml:\d+: epochs"):
        train_main(str(bad), resume=False, output=None, quiet=True)
    broken = tmp_path / "imgs"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"nope")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace(str(SAMPLE_DIR), "imgs"))
    with pytest.raises(InputError, match=r"a\.png: cannot read image"):
        train_main(str(cfg), resume=False, output=None, quiet=True)
    # A missing folder is named with the config field it came from.
    cfg.write_text(CONFIG.replace(str(SAMPLE_DIR), "no-data"))
    with pytest.raises(InputError, match=r"^data\.source: folder .*no-data does not exist"):
        train_main(str(cfg), resume=False, output=None, quiet=True)
    cfg.write_text(CONFIG.replace("validation: {size: 64", "validation: {source: no-val, size: 64"))
    with pytest.raises(InputError, match=r"^validation\.source: folder .*no-val does not exist"):
        train_main(str(cfg), resume=False, output=str(tmp_path / "o"), quiet=True)
    cfg.write_text(CONFIG + "device: cuda:7\n" if not torch.cuda.is_available() else CONFIG)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match=r"CUDA is not available"):
            train_main(str(cfg), resume=False, output=str(tmp_path / "o"), quiet=True)
        # --device overrides the config's device, in both directions
        cfg.write_text(CONFIG)
        with pytest.raises(InputError, match=r"'cuda' requested but CUDA is not available"):
            train_main(str(cfg), output=str(tmp_path / "o"), quiet=True, device="cuda")


def test_device_override_trains_where_asked(tmp_path, capsys):
    from semlink.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("steps: 3", "steps: 1").replace("every: 100", "every: 1000")
                   + "device: cuda:7\n")
    assert main(["train", str(cfg), "-q", "-o", str(tmp_path / "o"), "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "model.safetensors").is_file()


def test_diffusion_times_follow_the_phase_range_and_v_target(tmp_path, monkeypatch):
    """A phase with ``timesteps: [0.9, 1.0]`` only shows stage B times in that range, and the
    small preset learns v (its bundle says so)."""
    from semlink.training import loop

    seen = []
    real = loop.predict_noise

    def spy(unet, noisy, t, zhat):
        seen.append(t.detach().clone())
        return real(unet, noisy, t, zhat)

    monkeypatch.setattr(loop, "predict_noise", spy)
    cfg = parse_train_config(CONFIG.replace("drop_prob: 0.5}}", "drop_prob: 0.5},\n"
                                            "     timesteps: [0.9, 1.0]}")
                             .replace("every: 100", "every: 1000"))
    assert cfg.phases[1].timesteps == [0.9, 1.0]
    bundle = train(cfg, output=tmp_path)
    times = torch.cat(seen)
    assert times.numel() == 3 * 2 * 2  # steps x grad_accum x batch
    assert float(times.min()) >= 0.9 and float(times.max()) <= 1.0
    assert read_bundle_info(bundle)["info"]["architecture"]["prediction"] == "v_prediction"


def test_mixed_precision_steps_as_on_cuda(tmp_path, monkeypatch):
    """The loop under bfloat16 autocast (what it uses on CUDA, here CPU autocast): both kinds
    of phase run with autocast active, losses stay finite and the trained weights stay
    float32 (master weights), so a GPU training run does not fail on dtypes."""
    from semlink.training import loop

    monkeypatch.setattr(loop, "_autocast",
                        lambda device: torch.autocast(device_type="cpu", dtype=torch.bfloat16))
    active, pred_dtypes = [], []
    real = loop.predict_noise

    def spy(unet, noisy, t, zhat):
        active.append(torch.is_autocast_enabled("cpu"))
        out = real(unet, noisy, t, zhat)
        pred_dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(loop, "predict_noise", spy)
    bundle = train(parse_train_config(CONFIG.replace("every: 100", "every: 1000")),
                   output=tmp_path)
    assert active and all(active) and torch.bfloat16 in pred_dtypes
    losses = [float(r["loss"]) for r in _rows(tmp_path / "log.csv")]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    from safetensors.torch import load_file
    assert {t.dtype for t in load_file(bundle).values() if t.is_floating_point()} == {
        torch.float32}


@pytest.mark.gpu
def test_trains_on_cuda(tmp_path):
    """Both kinds of phase on CUDA (bfloat16 autocast): finite losses, a loadable bundle."""
    cfg = parse_train_config(CONFIG.replace("every: 100", "every: 2") + "device: cuda\n")
    bundle = train(cfg, output=tmp_path)
    losses = [float(r["loss"]) for r in _rows(tmp_path / "log.csv")]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert _rows(tmp_path / "validation.csv")  # validation ran on the GPU too
    models = build_training_models(cfg.model, device="cpu")
    load_bundle(bundle, models.parts(), preset="small")


def test_diffusion_loss_is_mse_to_v_of_scaled_latents_given_the_noisy_embedding(monkeypatch):
    """One diffusion loss by hand: stage B sees the conditioning's (noisy, dropped) embedding,
    times in the phase's range, and its prediction (here zeros, through a spy) is scored
    against v = sqrt(acp) eps - sqrt(1 - acp) x0, x0 = stage A's latents / the scale factor,
    eps recovered from the noisy latent it was given."""
    from semlink.training import loop

    torch.manual_seed(0)
    models = build_training_models(parse_train_config(CONFIG).model, device="cpu")
    models.scale_factor = 0.5  # the small preset's is 1.0: make the scaling visible
    assert models.prediction == "v_prediction"
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    marker = torch.full((2, 16, 2, 2), 0.25)
    seen = {}

    def cond(z):
        seen["z"] = z
        return marker, torch.zeros(2)

    def spy(unet, noisy, t, zhat):
        seen.update(noisy=noisy.detach().double(), t=t.detach().double(), zhat=zhat)
        return torch.zeros_like(noisy)

    monkeypatch.setattr(loop, "predict_noise", spy)
    loss = loop._diffusion_loss(models, images, cond, torch.Generator().manual_seed(2), False,
                                (0.2, 0.8))
    assert seen["z"].shape == (2, 16, 2, 2) and seen["zhat"] is marker
    t = seen["t"]
    assert float(t.min()) >= 0.2 and float(t.max()) <= 0.8
    with torch.no_grad():
        x0 = models.stage_a.encode(images).latents.double() / 0.5
    a = torch.tensor([cosine_alpha_cumprod(float(v)) for v in t],
                     dtype=torch.float64).view(-1, 1, 1, 1)
    eps = (seen["noisy"] - a.sqrt() * x0) / (1 - a).sqrt()
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    assert float(loss) == pytest.approx(float(v.square().mean()), rel=1e-4)
    assert abs(float(v.square().mean()) / float(eps.square().mean()) - 1) > 0.05  # != eps target


def test_learning_rate_warms_up_linearly(tmp_path):
    """``warmup_steps: 4``: the logged learning rate of steps 1..5 is lr * min(1, step / 4)."""
    text = CONFIG.replace("steps: 1, batch_size: 2, lr: 1.0e-3}",
                          "steps: 5, batch_size: 1, lr: 1.0e-3, warmup_steps: 4}")
    text = text[:text.index("  - {train: [encoder")] + "validation: null\n"
    cfg = parse_train_config(text)
    assert [p.train for p in cfg.phases] == [["stage_a"]] and cfg.phases[0].warmup_steps == 4
    train(cfg, output=tmp_path)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "log.csv")]
    assert lrs == pytest.approx([1e-3 * min(1.0, s / 4) for s in range(1, 6)])


def test_a_phase_ends_with_the_ema_of_its_weights(tmp_path, monkeypatch):
    """The weights a phase leaves are the exponential moving average of the live weights after
    each optimiser step, computed here from the recorded live weights with the documented
    warm-up (decay_t = min(decay, (1 + t) / (10 + t))), not the last live weights."""
    from semlink.training import checkpoint

    text = CONFIG.replace("steps: 1, batch_size: 2, lr: 1.0e-3}",
                          "steps: 3, batch_size: 1, lr: 1.0e-2, ema_decay: 0.5}")
    text = text[:text.index("  - {train: [encoder")] + "validation: null\n"
    cfg = parse_train_config(text)
    live, initial = [], {}
    real_init, real_update = checkpoint.EMA.__init__, checkpoint.EMA.update

    def init(self, modules, decay):
        real_init(self, modules, decay)
        initial.update({k: v.clone() for k, v in self.shadow.items()})

    def update(self):
        live.append({k: p.detach().clone().float() for k, p in self._params.items()})
        real_update(self)

    monkeypatch.setattr(checkpoint.EMA, "__init__", init)
    monkeypatch.setattr(checkpoint.EMA, "update", update)
    bundle = train(cfg, output=tmp_path)
    assert len(live) == 3
    expected = dict(initial)
    for t, params in enumerate(live):
        decay = min(0.5, (1 + t) / (10 + t))
        expected = {k: decay * expected[k] + (1 - decay) * params[k] for k in expected}
    models = build_training_models(cfg.model, device="cpu")
    load_bundle(bundle, models.parts(), preset="small")
    got = {f"stage_a.{k}": p.float() for k, p in models.stage_a.named_parameters()}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
    moved = [k for k in expected if not torch.allclose(live[-1][k], expected[k], atol=1e-4)]
    assert moved  # the average is not the last live weights


def test_batchnorm_statistics_are_recomputed_for_the_weights_a_phase_leaves(uninterrupted):
    """After a phase the BatchNorm running statistics are exact averages over 16 fresh batches
    run through the weights the phase leaves (its EMA), not those tracked on the live weights
    while training. Checked on the mapper's BatchNorm (the one that makes Z): the 16 batches of
    phase 1 are drawn again from the seed ``derive_seed(seed, "batchnorm", 1)`` and the mean of
    their batch means and unbiased variances of the mapper input is computed here."""
    from semlink.training.data import TrainImages

    _, bundle = uninterrupted
    cfg = parse_train_config(CONFIG)
    models = build_training_models(cfg.model, device="cpu")
    load_bundle(bundle, models.parts(), preset="small")
    norm = models.encoder.mapper[1]
    stored_mean, stored_var = norm.running_mean.clone(), norm.running_var.clone()
    inputs = []
    hook = norm.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach()))
    seed = derive_seed(cfg.seed, "batchnorm", 1)
    gen, dev_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    data = TrainImages(str(SAMPLE_DIR), size=64, count=3)
    models.encoder.train()
    with torch.no_grad():
        for _ in range(16):
            models.encoder(data.batch(2, gen, size=64), generator=dev_gen)
    hook.remove()
    means = torch.stack([a.mean(dim=(0, 2, 3)) for a in inputs])
    variances = torch.stack([a.var(dim=(0, 2, 3)) for a in inputs])
    torch.testing.assert_close(stored_mean, means.mean(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(stored_var, variances.mean(0), rtol=1e-4, atol=1e-6)
