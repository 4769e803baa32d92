"""The training loop of ``semlink train``: phases, losses, EMA, checkpoints, logs, validation.

Reproducibility: every random draw of optimiser step ``s`` (data order and crops, diffusion
times and noise, conditioning SNRs and channel noise, drops, dropout, stochastic depth) comes
from generators seeded with ``derive_seed(seed, "step", s)``, so the RNG state of a run is its
step counter: a checkpoint holds weights, optimiser, EMA and the step, and ``--resume`` continues
the very same loss curve. The global torch RNG (used by dropout) is reseeded per step inside
``torch.random.fork_rng``, so the caller's RNG state is left as it was.
"""
from __future__ import annotations

import contextlib
import csv
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from semlink.errors import InputError
from semlink.images import load_images
from semlink.metrics.quality import psnr_db, ssim
from semlink.channel import build_channel
from semlink.models.bundle import BUNDLE_FILE, save_bundle
from semlink.models.deepjscc import DEEPJSCC_PRESET
from semlink.models.sampler import add_noise, training_target
from semlink.models.stage_a import encode_latents
from semlink.models.stage_b import predict_noise
from semlink.scenario import Override
from semlink.seeding import derive_seed
from semlink.devices import resolve_device
from semlink.training.checkpoint import CHECKPOINT_FILE, EMA, load_checkpoint, save_checkpoint
from semlink.training.conditioning import NoisyConditioning
from semlink.training.config import (ConditioningConfig, PhaseConfig, TrainConfig,
                                     load_train_config, train_config_hash)
from semlink.training.data import TrainImages
from semlink.training.models import TrainingModels, build_training_models
from semlink.training.validation import validate, validate_deepjscc

__all__ = ["LOG_FILE", "VALIDATION_FILE", "train", "train_main"]

LOG_FILE = "log.csv"
VALIDATION_FILE = "validation.csv"
_LOG_FIELDS = ["step", "phase", "lr", "loss", "seconds"]
_VAL_FIELDS = ["step", "phase", "snr_db", "psnr_db", "ssim"]
_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def train_main(config_path: str, *, resume: bool = False, output: str | None = None,
               quiet: bool = False, device: str | None = None,
               overrides: Sequence[Override] | Mapping[str, Any] | None = None) -> int:
    """Entry point of ``semlink train CONFIG``: train, print where the bundle went, return 0.

    :param config_path: Training config YAML.
    :param resume: Continue from ``OUTPUT/checkpoint.pt``.
    :param output: Output folder; None = the config's ``output`` (relative to the config file).
    :param quiet: No progress bar.
    :param device: Device to train on instead of the config's (``auto`` allowed); it is not
        part of the checkpoint's identity, so a run may resume on another device.
    :param overrides: Values of the config to change (``--set KEY=VALUE``); relative paths in
        them start from the current directory. They are part of the checkpoint's identity
        (its config hash), and ``train-config.yaml`` holds the effective config.
    :raises InputError: Bad config, images, weights or checkpoint (the CLI prints one line).
    """
    config, text = load_train_config(config_path, overrides=overrides, overrides_dir=Path.cwd())
    if device is not None:
        config = config.model_copy(update={"device": device})
    base_dir = Path(config_path).resolve().parent
    out = Path(output) if output is not None else base_dir / config.output
    bundle = train(config, output=out, base_dir=base_dir, resume=resume, quiet=quiet,
                   config_text=text)
    if not quiet:
        print(f"trained model: {bundle}")
    return 0


def train(config: TrainConfig, *, output: str | Path, base_dir: str | Path | None = None,
          resume: bool = False, quiet: bool = True, config_text: str | None = None,
          stop_after: int | None = None) -> Path:
    """Run (or resume) a training run; returns the path of the final bundle.

    Output folder: ``checkpoint.pt`` (every ``checkpoint_every`` steps and at phase ends),
    ``log.csv`` (step, phase, lr, mean loss since the previous row, seconds),
    ``validation.csv`` (step, phase, snr_db, psnr_db, ssim; ``snr_db`` empty = stage A round
    trip), ``train-config.yaml`` and, at the end, ``model.safetensors`` (EMA weights, via
    :func:`semlink.models.bundle.save_bundle`).

    :param base_dir: Folder that relative paths of the config start from.
    :param resume: Continue from the output's checkpoint (the config must be the same).
    :param stop_after: Stop (after checkpointing) once this many steps are done, as if killed
        (for tests and time-sliced runs); None = run to the end.
    :raises InputError: If the output already holds a checkpoint and ``resume`` is False,
        there is none to resume from, or it was made by another config.
    """
    out = Path(output)
    ckpt_path = out / CHECKPOINT_FILE
    if not resume and ckpt_path.exists():
        raise InputError(f"{out}: already holds a training checkpoint; pass --resume to "
                         "continue it or choose another output")
    device = torch.device(resolve_device(config.device))  # InputError if CUDA is missing
    cfg_hash = train_config_hash(config)
    data = TrainImages(config.data.source, size=config.data.size, min_crop=config.data.min_crop,
                       flip=config.data.flip, whole=bool(config.data.whole), base_dir=base_dir,
                       count=config.data.count)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(derive_seed(config.seed, "init"))  # random initial weights
        models = build_training_models(config.model, device=str(device), base_dir=base_dir)
    val_images = None
    if config.validation is not None:
        v = config.validation
        val_images, _ = load_images(v.source, v.size, count=v.count, base_dir=base_dir,
                                    field="validation.source")
        val_images = val_images.to(device)

    state: dict[str, Any] | None = None
    if resume:
        state = load_checkpoint(ckpt_path, map_location=device)
        if state.get("config_hash") != cfg_hash:
            raise InputError(f"{ckpt_path}: was written by a different training config; "
                             "resume with the same config (and the same --set) or start a new "
                             "output")
        for part, module in models.parts().items():
            module.load_state_dict(state["models"][part])
    else:
        out.mkdir(parents=True, exist_ok=True)
        if config_text is not None:
            (out / "train-config.yaml").write_text(config_text, encoding="utf-8")
    step = 0 if state is None else int(state["step"])
    _truncate_csv(out / LOG_FILE, _LOG_FIELDS, step)
    _truncate_csv(out / VALIDATION_FILE, _VAL_FIELDS, step)

    with torch.random.fork_rng(devices=devices), _progress(config.total_steps, step, quiet) as bar:
        start = 0
        for index, phase in enumerate(config.phases):
            end = start + phase.steps
            if step < end:
                step = _run_phase(config, index, phase, start, step, models, data, val_images,
                                  out, cfg_hash, state if state and state["phase"] == index else None,
                                  bar, stop_after)
                state = None
                if step < end:  # stopped early
                    return out / CHECKPOINT_FILE
            start = end
    info = {"name": config.name, "config_hash": cfg_hash, "steps": config.total_steps,
            "seed": config.seed, "init": models.init_source,
            "architecture": models.architecture(),
            "phases": [p.model_dump(mode="json") for p in config.phases]}
    preset = config.model.preset if config.model.deepjscc is None else DEEPJSCC_PRESET
    return save_bundle(out / BUNDLE_FILE, models.parts(), preset=preset, info=info)


def _run_phase(config: TrainConfig, index: int, phase: PhaseConfig, start: int, step: int,
               models: TrainingModels, data: TrainImages, val_images: torch.Tensor | None,
               out: Path, cfg_hash: str, state: dict[str, Any] | None, bar: Any,
               stop_after: int | None) -> int:
    """Train one phase from global ``step`` to its end; returns the step reached."""
    device = models.device
    parts = models.parts()
    trained = {name: parts[name] for name in phase.train}
    for name, module in parts.items():
        is_trained = name in trained
        module.requires_grad_(is_trained)
        module.train(is_trained)
    params = [p for m in trained.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=phase.lr, weight_decay=phase.weight_decay)
    ema = EMA(trained, phase.ema_decay)
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        loss_sum = state["loss_sum"].to(device)
        loss_count = int(state["loss_count"])
    jscc = phase.train == ["deepjscc"]
    diffusion = phase.train != ["stage_a"] and not jscc
    size = config.data.size if phase.size is None else phase.size
    cond_gen = torch.Generator(device=device)
    cond = channel = None
    if diffusion:
        z_shape = models.encoder.embedding_shape(size, size)
        cond = NoisyConditioning(phase.conditioning, shape=z_shape, generator=cond_gen,
                                 device=str(device))
    if jscc:
        channel = build_channel(phase.conditioning.channel, generator=cond_gen,
                                device=str(device))
    autocast = _autocast(device)
    end = start + phase.steps
    tic = time.perf_counter()
    while step < end:
        local = step - start
        lr = phase.lr * min(1.0, (local + 1) / phase.warmup_steps) if phase.warmup_steps else phase.lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        seed = derive_seed(config.seed, "step", step)
        torch.manual_seed(seed)                         # dropout (inside fork_rng)
        data_gen = torch.Generator().manual_seed(seed)
        dev_gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "device"))
        cond_gen.manual_seed(derive_seed(seed, "conditioning"))
        for _ in range(phase.grad_accum):
            images = data.batch(phase.batch_size, data_gen, device=device, size=size)
            with autocast:
                if diffusion:
                    loss = _diffusion_loss(models, images, cond, dev_gen, "encoder" in trained,
                                           phase.timesteps)
                elif jscc:
                    loss = _deepjscc_loss(models.deepjscc, images, channel, phase.conditioning,
                                          cond_gen)
                else:
                    loss = _reconstruction_loss(models.stage_a, images, phase.recon_loss)
            (loss / phase.grad_accum).backward()
            loss_sum = loss_sum + loss.detach().float() / phase.grad_accum
        if phase.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, phase.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update()
        loss_count += 1
        step += 1
        bar.advance(step)
        if step % config.log_every == 0 or step == end:
            mean = float(loss_sum) / loss_count
            _append_csv(out / LOG_FILE, _LOG_FIELDS,
                        {"step": step, "phase": index, "lr": lr, "loss": repr(mean),
                         "seconds": f"{time.perf_counter() - tic:.3f}"})
            bar.show_loss(mean)
            loss_sum = torch.zeros((), device=device)
            loss_count = 0
        phase_done = step == end
        if phase_done:
            ema.copy_to()
            _recalibrate_batchnorm(trained, models, data, phase, size, device,
                                   derive_seed(config.seed, "batchnorm", index))
        if val_images is not None and (step % config.validation.every == 0 or phase_done):
            _validate(config, index, phase, step, models, ema, val_images, out, phase_done)
        stopping = stop_after is not None and step >= stop_after
        if step % config.checkpoint_every == 0 or phase_done or stopping:
            save_checkpoint(out / CHECKPOINT_FILE, {
                "config_hash": cfg_hash, "step": step, "phase": index if not phase_done else index + 1,
                "models": {k: m.state_dict() for k, m in parts.items()},
                "optimizer": optimizer.state_dict(), "ema": ema.state_dict(),
                "loss_sum": loss_sum.detach().cpu(), "loss_count": loss_count})
        if stopping:
            break
    for module in parts.values():
        module.requires_grad_(False)
        module.eval()
    return step


@torch.no_grad()
def _recalibrate_batchnorm(trained: dict[str, torch.nn.Module], models: TrainingModels,
                           data: TrainImages, phase: PhaseConfig, size: int, device: torch.device,
                           seed: int, batches: int = 16) -> None:
    """Recompute BatchNorm running statistics for the EMA weights just copied in.

    The running statistics were tracked for the live weights; the averaged weights produce
    other activations (e.g. Z far from unit variance in eval mode). Exact averages over
    ``batches`` fresh training batches (momentum None), in training mode without gradients.
    """
    norms = [m for part in trained.values() for m in part.modules()
             if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    gen = torch.Generator().manual_seed(seed)
    dev_gen = torch.Generator(device=device).manual_seed(seed)
    for _ in range(batches):
        images = data.batch(phase.batch_size, gen, device=device, size=size)
        if "stage_a" in trained:
            models.stage_a.encode(images)
        if "encoder" in trained:
            models.encoder(images, generator=dev_gen)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def _autocast(device: torch.device):
    """Mixed precision of the forward passes: bfloat16 autocast on CUDA (float32 master weights
    and optimiser state), none on CPU, where bfloat16 matmuls are slower than float32."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _diffusion_loss(models: TrainingModels, images: torch.Tensor, cond: NoisyConditioning,
                    gen: torch.Generator, train_encoder: bool,
                    timesteps: Sequence[float] = (0.0, 1.0)) -> torch.Tensor:
    """Diffusion MSE of stage B (eps or v target, as ``models.prediction``) on the stage A
    latents of ``images``, conditioned on the (noisy, sometimes dropped) embedding, at times
    drawn uniformly from ``timesteps``."""
    with torch.set_grad_enabled(train_encoder):
        z = models.encoder(images, generator=gen)                    # [batch, 16, h, w]
    with torch.no_grad():
        latents = encode_latents(models.stage_a, images, models.scale_factor).float()
    zhat, _ = cond(z)
    batch = images.shape[0]
    low, high = timesteps
    t = low + (high - low) * torch.rand(batch, generator=gen, device=images.device)
    eps = torch.randn(latents.shape, generator=gen, device=images.device)
    noisy = add_noise(latents, eps, t)
    pred = predict_noise(models.stage_b, noisy, t, zhat)
    return F.mse_loss(pred.float(), training_target(latents, eps, t, models.prediction))


def _deepjscc_loss(model: torch.nn.Module, images: torch.Tensor, channel: Any,
                   conditioning: ConditioningConfig, gen: torch.Generator) -> torch.Tensor:
    """MSE of DeepJSCC's reconstruction through ``channel`` at an SNR (Es/N0, dB) drawn per
    image uniformly from the phase's ``[snr_min_db, snr_max_db]``."""
    low, high = conditioning.snr_min_db, conditioning.snr_max_db
    snr_db = low + (high - low) * torch.rand(images.shape[0], generator=gen,
                                             device=images.device)
    return F.mse_loss(model(images, channel, snr_db), images)


def _reconstruction_loss(vq: torch.nn.Module, images: torch.Tensor, kind: str) -> torch.Tensor:
    """Stage A autoencoding loss with the quantiser bypassed (as stage B's latents are)."""
    latents = vq.encode(images).latents
    recon = vq.decode(latents, force_not_quantize=True).sample.float()
    return F.mse_loss(recon, images) if kind == "mse" else F.l1_loss(recon, images)


@torch.no_grad()
def _validate(config: TrainConfig, index: int, phase: PhaseConfig, step: int,
              models: TrainingModels, ema: EMA, val_images: torch.Tensor, out: Path,
              ema_in_place: bool) -> None:
    """Score the EMA weights on the held-out images; append rows to validation.csv."""
    parts = models.parts()
    modes = {name: m.training for name, m in parts.items()}
    if not ema_in_place:
        ema.swap()
    for m in parts.values():
        m.eval()
    v = config.validation
    try:
        if phase.train == ["deepjscc"]:
            result = validate_deepjscc(models.deepjscc, val_images, v.snr_db, seed=config.seed)
        elif phase.train == ["stage_a"]:
            rows = []
            for i in range(0, val_images.shape[0], 8):
                x = val_images[i:i + 8]
                recon = models.stage_a.decode(models.stage_a.encode(x).latents,
                                              force_not_quantize=True).sample.float().clamp(0, 1)
                rows.append((psnr_db(x, recon), ssim(x, recon, precision="single")))
            result = [{"snr_db": "", "psnr_db": float(torch.cat([r[0] for r in rows]).mean()),
                       "ssim": float(torch.cat([r[1] for r in rows]).mean())}]
        else:
            result = validate(models.encoder, models.stage_b, models.stage_a, val_images, v.snr_db,
                              scale_factor=models.scale_factor, steps=v.steps,
                              guidance=v.guidance, seed=config.seed,
                              prediction=models.prediction)
    finally:
        if not ema_in_place:
            ema.swap()
        for name, m in parts.items():
            m.train(modes[name])
    for row in result:
        _append_csv(out / VALIDATION_FILE, _VAL_FIELDS, {"step": step, "phase": index, **row})


def _append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_csv(path: Path, fields: list[str], step: int) -> None:
    """Drop rows after ``step`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


class _Bar:
    """A rich progress bar (or nothing when quiet)."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def show_loss(self, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, loss=f"{loss:.4f}" if math.isfinite(loss) else "nan")


@contextlib.contextmanager
def _progress(total: int, done: int, quiet: bool):
    if quiet:
        yield _Bar(None, None)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                        TimeRemainingColumn())
    with progress:
        task = progress.add_task("train", total=total, completed=done, loss="-")
        yield _Bar(progress, task)
