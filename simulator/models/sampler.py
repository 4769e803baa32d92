"""The Würstchen / Stable Cascade DDPM sampler for stage B, with classifier-free guidance.

Same update as diffusers' ``DDPMWuerstchenScheduler`` with the decoder pipeline's loop
(timesteps ``linspace(1, 0, steps + 1)``, UNet fed the timestep ratio ``t``), written so the
loop never synchronises with the host: the schedule is computed once before the loop, and
each batch row draws its noise from its own generator.

Cosine schedule (Würstchen, ``s = 0.008``), clamped to [1e-4, 0.9999]::

    alpha_cumprod(t) = cos((t + s) / (1 + s) * pi / 2)^2 / cos(s / (1 + s) * pi / 2)^2

Step from ``t`` to ``t_prev`` with predicted noise ``eps`` (``a = acp(t) / acp(t_prev)``)::

    mu = (x - (1 - a) / sqrt(1 - acp(t)) * eps) / sqrt(a)
    x_prev = mu + sqrt((1 - a) * (1 - acp(t_prev)) / (1 - acp(t))) * n,  n ~ N(0, I)

with no noise on the last step (``t_prev = 0``).

Two parameterisations of the UNet's output (:data:`PREDICTION_TYPES`, diffusers' names):
``"epsilon"`` (the noise, as Stable Cascade's stage B is trained) and ``"v_prediction"``
(``v = sqrt(acp) eps - sqrt(1 - acp) x0``, Salimans and Ho 2022), which the CPU-sized ``small``
preset uses: near ``t = 1`` predicting eps is almost the identity and the first step divides
its error by ``sqrt(acp) ~ 0.01``, while v there is ``-x0``, which a small model must take from
the embedding. The sampler turns v into ``eps = sqrt(1 - acp) x + sqrt(acp) v``.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch

from semlink.channels._checks import check_int, check_one_of, check_positive, check_type
from semlink.models.stage_b import null_text_pooled, predict_noise

__all__ = ["COSINE_S", "PREDICTION_TYPES", "alpha_cumprod", "sampling_schedule", "add_noise",
           "training_target", "sample_latents", "check_sampling_arguments", "draw_sampling_noise",
           "denoise_latents"]

COSINE_S = 0.008
"""Offset ``s`` of the Würstchen cosine schedule."""

_ACP_MIN, _ACP_MAX = 1e-4, 0.9999

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction")
"""What a stage B UNet predicts: the noise, or the velocity ``v``."""


def alpha_cumprod(t: torch.Tensor) -> torch.Tensor:
    """Würstchen cosine ``alpha_cumprod`` at timestep ratios ``t``.

    :input t: [...], float in [0, 1]; 0 = clean, 1 = pure noise.
    :output acp: Same shape and dtype as ``t``, in [1e-4, 0.9999].
    """
    s = COSINE_S
    init = math.cos(s / (1 + s) * math.pi * 0.5) ** 2
    acp = torch.cos((t + s) / (1 + s) * torch.pi * 0.5) ** 2 / init
    return acp.clamp(_ACP_MIN, _ACP_MAX)


def sampling_schedule(steps: int, *, device: torch.device | str | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Timestep ratios and ``alpha_cumprod`` of a ``steps``-step sampling run.

    :param steps: int >= 1.
    :param device: Device of the outputs; None = CPU.
    :output timesteps: [steps + 1], float32, ``linspace(1, 0, steps + 1)``.
    :output acp: [steps + 1], float32, :func:`alpha_cumprod` of ``timesteps``.
    :raises ValueError: If ``steps < 1``.
    """
    check_int(steps, name="steps", low=1)
    timesteps = torch.linspace(1.0, 0.0, steps + 1, device=device)
    return timesteps, alpha_cumprod(timesteps)


def add_noise(latents: torch.Tensor, noise: torch.Tensor, timestep_ratio: torch.Tensor) -> torch.Tensor:
    """Forward diffusion (training): ``sqrt(acp(t)) * latents + sqrt(1 - acp(t)) * noise``.

    :input latents: [batch, ...], float; clean scaled stage A latents.
    :input noise: Same shape as ``latents``; standard normal.
    :input timestep_ratio: [batch], float in [0, 1].
    :output noisy: Same shape and dtype as ``latents``.
    :raises ValueError: If shapes do not match.
    """
    if noise.shape != latents.shape or timestep_ratio.shape != latents.shape[:1]:
        raise ValueError(f"`latents` {tuple(latents.shape)}, `noise` {tuple(noise.shape)} and "
                         f"`timestep_ratio` {tuple(timestep_ratio.shape)} must match.")
    acp = alpha_cumprod(timestep_ratio).view(-1, *([1] * (latents.dim() - 1)))
    return (acp.sqrt() * latents + (1 - acp).sqrt() * noise).to(latents.dtype)


def training_target(latents: torch.Tensor, noise: torch.Tensor, timestep_ratio: torch.Tensor,
                    prediction: str = "epsilon") -> torch.Tensor:
    """What the UNet should output for the noisy latent :func:`add_noise` makes.

    :param prediction: One of :data:`PREDICTION_TYPES`.
    :input latents: [batch, ...], float; clean scaled stage A latents ``x0``.
    :input noise: Same shape; the ``eps`` given to :func:`add_noise`.
    :input timestep_ratio: [batch], float in [0, 1].
    :output target: Same shape as ``latents``: ``eps``, or ``sqrt(acp) eps - sqrt(1 - acp) x0``.
    :raises ValueError: If ``prediction`` is unknown or shapes do not match.
    """
    check_one_of(prediction, PREDICTION_TYPES, name="prediction")
    if noise.shape != latents.shape or timestep_ratio.shape != latents.shape[:1]:
        raise ValueError(f"`latents` {tuple(latents.shape)}, `noise` {tuple(noise.shape)} and "
                         f"`timestep_ratio` {tuple(timestep_ratio.shape)} must match.")
    if prediction == "epsilon":
        return noise
    acp = alpha_cumprod(timestep_ratio).view(-1, *([1] * (latents.dim() - 1)))
    return (acp.sqrt() * noise - (1 - acp).sqrt() * latents).to(latents.dtype)


@torch.no_grad()
def sample_latents(unet: torch.nn.Module, effnet_cond: torch.Tensor,
                   latent_shape: Sequence[int], *, steps: int = 10, guidance: float = 1.1,
                   generators: Sequence[torch.Generator] | torch.Generator,
                   amp_dtype: torch.dtype | None = None, prediction: str = "epsilon"
                   ) -> torch.Tensor:
    """Sample stage A latents with stage B conditioned on semantic embeddings.

    Classifier-free guidance: ``eps = eps_u + guidance * (eps_c - eps_u)``, the unconditional
    input being an all-zero embedding; conditional and unconditional rows go through ONE UNet
    call. ``guidance == 1`` skips the unconditional rows (purely conditional sampling).
    The pooled-text input is zeros.

    Reproducibility: with a list, row ``i`` draws all its noise (initial latent and every step)
    from ``generators[i]`` only, so its output does not depend on the other rows (up to
    floating-point differences of batched kernels). A single generator draws for the whole
    batch at once.

    :param unet: ``StableCascadeUNet`` in eval mode, on ``effnet_cond``'s device.
    :param latent_shape: (channels, h, w) of one latent; channels = the UNet's
        ``in_channels``; h and w multiples of its ``patch_size``.
    :param steps: int >= 1; UNet evaluations per image, default 10.
    :param guidance: float >= 0; default 1.1.
    :param generators: One ``torch.Generator`` per batch row, or one for the batch; on
        ``effnet_cond``'s device type.
    :param amp_dtype: Autocast dtype; None = bfloat16 on CUDA, none elsewhere (float32).
    :param prediction: What ``unet`` outputs, one of :data:`PREDICTION_TYPES`; default
        ``"epsilon"`` (Stable Cascade). Guidance mixes the raw outputs (the conversion to
        eps is affine in them, so it is the same as mixing eps).
    :input effnet_cond: [batch, C_z, h_z, w_z], float; (noisy) semantic embedding,
        C_z = the UNet's ``effnet_in_channels``.
    :output latents: [batch, *latent_shape], float32, on ``effnet_cond``'s device; scaled stage A
        latents (decode with :func:`semlink.models.stage_a.decode_latents`).
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If shapes, counts or devices do not match, ``steps < 1``,
        ``guidance < 0``, ``prediction`` is unknown, or the UNet is in training mode.
    """
    batch, device = check_sampling_arguments(unet, effnet_cond, latent_shape, generators,
                                             steps=steps, guidance=guidance, prediction=prediction)
    noise = draw_sampling_noise(batch, tuple(latent_shape), steps, generators, device)
    return denoise_latents(unet, effnet_cond, noise, guidance=guidance, amp_dtype=amp_dtype,
                           prediction=prediction)


def draw_sampling_noise(batch: int, latent_shape: tuple[int, ...], steps: int,
                        generators: Sequence[torch.Generator] | torch.Generator,
                        device: torch.device | str) -> torch.Tensor:
    """Every random draw of a ``steps``-step sampling run, made before the loop.

    Row ``i`` draws its initial latent and then the noise of each step from ``generators[i]``,
    in that order (one generator draws the whole batch at once, each step after the other), so
    drawing ahead gives exactly the numbers drawing step by step gives; the loop
    (:func:`denoise_latents`) is then free of random-number calls and can be captured in a CUDA
    graph (:mod:`semlink.models.graphs`).

    :param latent_shape: (channels, h, w) of one latent.
    :param steps: int >= 1.
    :output noise: [steps, batch, *latent_shape], float32: ``noise[0]`` is the initial latent,
        ``noise[k]`` the noise added after step ``k - 1`` (the last step adds none).
    """
    check_int(steps, name="steps", low=1)
    shape = tuple(latent_shape)
    if isinstance(generators, torch.Generator):
        draws = [torch.randn((batch, *shape), generator=generators, device=device)
                 for _ in range(steps)]
        return torch.stack(draws)                                   # [steps, batch, *shape]
    rows = [torch.cat([torch.randn((1, *shape), generator=g, device=device)
                       for _ in range(steps)]) for g in generators]  # batch x [steps, *shape]
    return torch.stack(rows, dim=1)                                 # [steps, batch, *shape]


@torch.no_grad()
def denoise_latents(unet: torch.nn.Module, effnet_cond: torch.Tensor, noise: torch.Tensor, *,
                    guidance: float = 1.1, amp_dtype: torch.dtype | None = None,
                    prediction: str = "epsilon", cache_casts: bool = True) -> torch.Tensor:
    """The sampling loop of :func:`sample_latents` on noise drawn ahead
    (:func:`draw_sampling_noise`): no random-number call, no host round trip, static shapes,
    so it can be captured in a CUDA graph and replayed.

    :param guidance: float >= 0; classifier-free guidance, as in :func:`sample_latents`.
    :param amp_dtype: Autocast dtype; None = bfloat16 on CUDA, none elsewhere.
    :param prediction: One of :data:`PREDICTION_TYPES`.
    :param cache_casts: Let autocast cache the weights it casts; False while capturing a CUDA
        graph (PyTorch's rule for autocast under capture). Numbers do not depend on it.
    :input effnet_cond: [batch, C_z, h_z, w_z], float; (noisy) semantic embedding.
    :input noise: [steps, batch, channels, h, w], float32.
    :output latents: [batch, channels, h, w], float32.
    """
    device = effnet_cond.device
    guidance = check_positive(guidance, name="guidance", strict=False)
    check_one_of(prediction, PREDICTION_TYPES, name="prediction")
    if amp_dtype is not None:
        check_type(amp_dtype, torch.dtype, name="amp_dtype")
    elif device.type == "cuda":
        amp_dtype = torch.bfloat16
    autocast = (torch.autocast(device_type=device.type, dtype=amp_dtype,
                               cache_enabled=cache_casts)
                if amp_dtype is not None else contextlib.nullcontext())
    model_dtype = next(unet.parameters()).dtype
    steps, batch = noise.shape[0], noise.shape[1]

    # Everything the loop needs, computed once: no host round trip inside the loop.
    timesteps, acp = sampling_schedule(steps, device=device)
    alpha = acp[:-1] / acp[1:]                                     # [steps]
    eps_coef = (1 - alpha) / (1 - acp[:-1]).sqrt()
    mu_coef = (1.0 / alpha).sqrt()
    noise_std = ((1 - alpha) * (1 - acp[1:]) / (1 - acp[:-1])).sqrt()
    use_uncond = guidance != 1.0
    rows = 2 * batch if use_uncond else batch
    cond = effnet_cond.to(model_dtype)
    if use_uncond:
        cond = torch.cat([cond, torch.zeros_like(cond)])           # [2 batch, C_z, h_z, w_z]
    text = null_text_pooled(unet, rows, device=device, dtype=model_dtype)
    ratios = timesteps.to(model_dtype)

    x = noise[0]                                                   # [batch, *latent_shape]
    for i in range(steps):
        x_in = torch.cat([x, x]) if use_uncond else x
        with autocast:
            eps = predict_noise(unet, x_in.to(model_dtype), ratios[i].expand(rows), cond, text)
        eps = eps.float()
        if use_uncond:
            eps_c, eps_u = eps.chunk(2)
            eps = torch.lerp(eps_u, eps_c, guidance)
        if prediction == "v_prediction":
            eps = (1 - acp[i]).sqrt() * x + acp[i].sqrt() * eps
        x = mu_coef[i] * (x - eps_coef[i] * eps)
        if i < steps - 1:  # the last step (t_prev = 0) adds no noise
            x = x + noise_std[i] * noise[i + 1]
    return x


def check_sampling_arguments(unet: torch.nn.Module, effnet_cond: torch.Tensor,
                             latent_shape: Sequence[int],
                             generators: Sequence[torch.Generator] | torch.Generator, *,
                             steps: int, guidance: float, prediction: str
                             ) -> tuple[int, torch.device]:
    """Check the arguments of a sampling run as :func:`sample_latents` takes them.

    :output batch_device: ``(batch, device)`` of ``effnet_cond``.
    :raises TypeError, ValueError: As :func:`sample_latents`.
    """
    check_int(steps, name="steps", low=1)
    check_one_of(prediction, PREDICTION_TYPES, name="prediction")
    check_positive(guidance, name="guidance", strict=False)
    check_type(unet, torch.nn.Module, name="unet")
    if unet.training:
        raise ValueError("`unet` must be in eval mode (dropout would make sampling "
                         "irreproducible); call unet.eval().")
    check_type(effnet_cond, torch.Tensor, name="effnet_cond")
    cfg = unet.config
    if effnet_cond.dim() != 4 or effnet_cond.shape[1] != cfg.effnet_in_channels:
        raise ValueError(f"`effnet_cond` must be [batch, {cfg.effnet_in_channels}, h_z, w_z]; "
                         f"got {tuple(effnet_cond.shape)}.")
    if not effnet_cond.is_floating_point():
        raise TypeError(f"`effnet_cond` must be a float tensor; got {effnet_cond.dtype}.")
    check_type(latent_shape, (tuple, list, torch.Size), name="latent_shape")
    shape = tuple(latent_shape)
    patch = cfg.patch_size
    if (len(shape) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                   for n in shape)
            or shape[0] != cfg.in_channels or shape[1] % patch or shape[2] % patch):
        raise ValueError(f"`latent_shape` must be ({cfg.in_channels}, h, w) with h and w positive "
                         f"multiples of {patch}; got {latent_shape!r}.")
    batch, device = effnet_cond.shape[0], effnet_cond.device
    if isinstance(generators, torch.Generator):
        gens = [generators]
    else:
        check_type(generators, (list, tuple), name="generators")
        gens = list(generators)
        if len(gens) != batch:
            raise ValueError(f"`generators` must hold one generator per batch row ({batch}); "
                             f"got {len(gens)}.")
    for g in gens:
        check_type(g, torch.Generator, name="generators")
        if g.device.type != device.type:
            raise ValueError(f"`generators` must be on {device.type} like `effnet_cond`; "
                             f"got one on {g.device.type}.")
    return batch, device
