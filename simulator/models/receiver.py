"""The semantic receiver: noisy embedding -> stage B sampling -> stage A decoding -> image."""
from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from semlink.channels._checks import check_int, check_one_of, check_positive, check_type
from semlink.models.graphs import GraphCache
from semlink.models.presets import get_preset
from semlink.models.sampler import (PREDICTION_TYPES, check_sampling_arguments, denoise_latents,
                                    draw_sampling_noise)
from semlink.models.stage_a import build_stage_a, decode_latents
from semlink.models.stage_b import build_stage_b

__all__ = ["SemanticReceiver"]


class SemanticReceiver(torch.nn.Module):
    """Reconstruct images from (noisy) semantic embeddings with stage B + stage A.

    The stage A latent has 4 channels at a quarter of the image size; stage B samples it
    conditioned on ``zhat`` (:func:`semlink.models.sampler.sample_latents`), stage A
    decodes it (:func:`semlink.models.stage_a.decode_latents`).

    Parameters start random (:attr:`random_weights` is True and the first call warns) until
    :meth:`load_weights` fills them.

    :param stage_b: Stage B config name or ``StableCascadeUNet`` keyword dict; default "small".
    :param stage_a: Stage A config name or ``PaellaVQModel`` keyword dict; default "small".
    :param latent_scale_factor: float > 0; latent scale of the stage A weights, default 1.0.
    :param steps: int >= 1; default sampling steps, default 10.
    :param guidance: float >= 0; default classifier-free guidance, default 1.1.
    :param prediction: What stage B outputs, ``"epsilon"`` (default) or ``"v_prediction"``
        (:data:`semlink.models.sampler.PREDICTION_TYPES`).
    :param device: Parameter device; None = CPU. Not part of :attr:`config`.
    :param dtype: Parameter dtype; default float32. Not part of :attr:`config`.
    :param meta: Build on the meta device (for ``load_weights(..., assign=True)``).
        Not part of :attr:`config`.
    :param cuda_graphs: On CUDA, capture the whole reconstruction (sampling loop and stage A)
        in one CUDA graph per (batch shape, image size, steps, guidance) and replay it
        (:mod:`semlink.models.graphs`): the same kernels without per-launch host work. Ignored
        elsewhere; falls back to eager calls, with one warning, where capture fails. Default
        False. Not part of :attr:`config` (it changes speed, not numbers).
    :param compiled: Run stage B through ``torch.compile`` (inductor, static shapes): its
        elementwise work (norms, activations) fused into fewer kernels. Each new input shape
        compiles once, on its first call (seconds for the small models, about a minute or
        more for stage B lite on a GPU). The numbers differ from the eager path's by float
        rounding (fused kernels sum in another order; float32 on the CPU: about 1e-4 of a
        UNet output, more after the sampling steps); eager stays the default, for results
        that do not depend on the compiler. Combines with ``cuda_graphs`` (the compiled
        kernels are captured). Where compilation fails (no C++ compiler for the CPU, an
        unsupported operation) it warns once and runs eagerly from then on. Default False.
        Not part of :attr:`config`.
    :param channels_last: Keep stage B's and stage A's convolution weights in the
        channels-last memory format (``torch.channels_last``), so their convolutions, and the
        layers after them, run on NHWC tensors. A speed option to measure per device (stage B's
        depthwise convolutions can be slower so); images differ from the default layout's by
        float rounding (another convolution algorithm). Default False. Not part of
        :attr:`config`.
    :input zhat: [batch, C_z, h_z, w_z], float, on the parameters' device; noisy embedding.
    :input generators: One ``torch.Generator`` per batch row (or one for the batch) on the
        parameters' device type; seeds every random draw of that row.
    :input image_size: int or (height, width), px; multiples of ``4 * patch_size`` (8).
    :output images: [batch, 3, height, width], float32, in [0, 1], on ``zhat``'s device.
    """

    def __init__(self, *, stage_b: str | Mapping[str, Any] = "small",
                 stage_a: str | Mapping[str, Any] = "small", latent_scale_factor: float = 1.0,
                 steps: int = 10, guidance: float = 1.1, prediction: str = "epsilon",
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, meta: bool = False,
                 cuda_graphs: bool = False, compiled: bool = False,
                 channels_last: bool = False) -> None:
        super().__init__()
        check_type(cuda_graphs, bool, name="cuda_graphs")
        check_type(compiled, bool, name="compiled")
        check_type(channels_last, bool, name="channels_last")
        check_type(stage_b, (str, Mapping), name="stage_b")
        check_type(stage_a, (str, Mapping), name="stage_a")
        self._stage_b_cfg = stage_b if isinstance(stage_b, str) else copy.deepcopy(dict(stage_b))
        self._stage_a_cfg = stage_a if isinstance(stage_a, str) else copy.deepcopy(dict(stage_a))
        self.latent_scale_factor = check_positive(latent_scale_factor, name="latent_scale_factor")
        self.steps = check_int(steps, name="steps", low=1)
        self.guidance = check_positive(guidance, name="guidance", strict=False)
        check_one_of(prediction, PREDICTION_TYPES, name="prediction")
        self.prediction = prediction
        self.stage_b = build_stage_b(self._stage_b_cfg, device=device, dtype=dtype, meta=meta)
        self.stage_a = build_stage_a(self._stage_a_cfg, device=device, dtype=dtype, meta=meta)
        self.channels_last = channels_last
        self._apply_memory_format()
        self.random_weights = True
        self._warned = False
        self.cuda_graphs = cuda_graphs
        self.graphs = GraphCache()
        self.compiled = compiled
        # A tuple, not a module attribute: registered, the wrapper would repeat stage B's
        # parameters in state_dict() under another prefix.
        self._compiled_stage_b: tuple[torch.nn.Module, ...] = ()

    @classmethod
    def from_preset(cls, name: str, *, device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None, meta: bool = False,
                    cuda_graphs: bool = False, compiled: bool = False,
                    channels_last: bool = False) -> SemanticReceiver:
        """Build the receiver of a preset (random weights; see :meth:`load_weights`).

        :param name: One of :data:`semlink.models.presets.PRESET_NAMES`.
        :param dtype: None = the preset's default on ``device`` (bfloat16 on CUDA).
        :raises ValueError: If ``name`` is unknown.
        """
        preset = get_preset(name)
        if dtype is None:
            dtype = preset.default_dtype("cpu" if device is None else device)
        return cls(stage_b=preset.stage_b, stage_a=preset.stage_a,
                   latent_scale_factor=preset.latent_scale_factor, steps=preset.steps,
                   guidance=preset.guidance, prediction=preset.prediction, device=device,
                   dtype=dtype, meta=meta, cuda_graphs=cuda_graphs, compiled=compiled,
                   channels_last=channels_last)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``SemanticReceiver(**config)`` rebuilds it."""
        return {"stage_b": copy.deepcopy(self._stage_b_cfg),
                "stage_a": copy.deepcopy(self._stage_a_cfg),
                "latent_scale_factor": self.latent_scale_factor, "steps": self.steps,
                "guidance": self.guidance, "prediction": self.prediction}

    def load_weights(self, stage_b_state: Mapping[str, torch.Tensor],
                     stage_a_state: Mapping[str, torch.Tensor], *, assign: bool = False) -> None:
        """Load diffusers-layout state dicts into stage B and stage A (strict) and clear
        :attr:`random_weights`.

        :param assign: Passed to ``load_state_dict`` (True after building with ``meta=True``).
        :raises RuntimeError: If keys or shapes do not match (from ``load_state_dict``).
        """
        self.stage_b.load_state_dict(stage_b_state, strict=True, assign=assign)
        self.stage_a.load_state_dict(stage_a_state, strict=True, assign=assign)
        self.stage_b.eval()
        self.stage_a.eval()
        self._apply_memory_format()  # assign=True put the loaded tensors' layout in place
        self.random_weights = False
        self.graphs.clear()  # graphs captured the old parameters' addresses
        self._compiled_stage_b = ()  # and compiled code may guard on the old parameters

    def forward(self, zhat: torch.Tensor, generators: Sequence[torch.Generator] | torch.Generator,
                *, image_size: int | tuple[int, int], steps: int | None = None,
                guidance: float | None = None) -> torch.Tensor:
        height, width = self._check_size(image_size)
        if self.random_weights and not self._warned:
            warnings.warn("SemanticReceiver has random weights (none loaded); its images are "
                          "noise, not reconstructions.", RuntimeWarning, stacklevel=2)
            self._warned = True
        param = next(self.stage_b.parameters())
        if zhat.device != param.device:
            raise ValueError(f"`zhat` must be on the model's device {param.device}; "
                             f"got {zhat.device}.")
        latent_shape = (self.stage_b.config.in_channels, height // 4, width // 4)
        steps = self.steps if steps is None else steps
        guidance = self.guidance if guidance is None else guidance
        batch, device = check_sampling_arguments(self.stage_b, zhat, latent_shape, generators,
                                                 steps=steps, guidance=guidance,
                                                 prediction=self.prediction)
        noise = draw_sampling_noise(batch, latent_shape, steps, generators, device)
        if self.cuda_graphs:  # the cache runs eagerly where graphs are unavailable
            key = (tuple(zhat.shape), zhat.dtype, latent_shape, steps, float(guidance))
            reconstruct = functools.partial(self._reconstruct, guidance=guidance,
                                            cache_casts=False)
            return self.graphs.run(key, reconstruct, zhat, noise)
        return self._reconstruct(zhat, noise, guidance=guidance)

    @torch.no_grad()
    def _reconstruct(self, zhat: torch.Tensor, noise: torch.Tensor, *, guidance: float,
                     cache_casts: bool = True) -> torch.Tensor:
        """Stage B sampling on noise drawn ahead, then stage A: tensors in, tensor out, no
        random-number call and no host round trip (what a CUDA graph captures)."""
        sample = functools.partial(denoise_latents, effnet_cond=zhat, noise=noise,
                                   guidance=guidance, prediction=self.prediction,
                                   cache_casts=cache_casts)
        try:
            latents = sample(self._sampling_stage_b())               # [batch, 4, H/4, W/4]
        except Exception as err:  # no C++ compiler, an unsupported operation
            if not (self.compiled and _is_compile_error(err)):
                raise
            self.compiled, self._compiled_stage_b = False, ()
            warnings.warn(f"torch.compile of stage B failed ({_root_cause(err)}); running eagerly "
                          "from now on", RuntimeWarning, stacklevel=3)
            latents = sample(self.stage_b)
        vq_dtype = next(self.stage_a.parameters()).dtype
        images = decode_latents(self.stage_a, latents.to(vq_dtype), self.latent_scale_factor)
        return images.float()

    def _apply_memory_format(self) -> None:
        """Stage B's and stage A's 4-D weights in channels-last with :attr:`channels_last`
        (a no-op otherwise, and on the meta device)."""
        if self.channels_last and next(self.stage_b.parameters()).device.type != "meta":
            self.stage_b.to(memory_format=torch.channels_last)
            self.stage_a.to(memory_format=torch.channels_last)

    def _sampling_stage_b(self) -> torch.nn.Module:
        """Stage B as the sampler calls it: the module, or with :attr:`compiled` its
        ``torch.compile`` wrapper (built once; it shares the module's parameters, so loaded
        weights reach it)."""
        if not self.compiled:
            return self.stage_b
        if not self._compiled_stage_b:
            self._compiled_stage_b = (torch.compile(self.stage_b, dynamic=False),)
        return self._compiled_stage_b[0]

    def _check_size(self, image_size: int | tuple[int, int]) -> tuple[int, int]:
        if isinstance(image_size, int) and not isinstance(image_size, bool):
            image_size = (image_size, image_size)
        check_type(image_size, (tuple, list), name="image_size")
        multiple = 4 * self.stage_b.config.patch_size
        if (len(image_size) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 and n % multiple == 0
                           for n in image_size)):
            raise ValueError(f"`image_size` must be an int or (height, width) of positive multiples "
                             f"of {multiple}; got {image_size!r}.")
        return int(image_size[0]), int(image_size[1])


def _is_compile_error(err: Exception) -> bool:
    """Whether ``err`` comes from torch.compile (dynamo or its backend), not from the model."""
    from torch._dynamo.exc import TorchDynamoException  # imported by torch.compile already

    return isinstance(err, TorchDynamoException)


def _root_cause(err: BaseException) -> str:
    """``Type: first line`` of what made torch.compile fail (a backend's own exception is
    wrapped, its message on a later line)."""
    inner = getattr(err, "inner_exception", None) or err.__cause__ or err
    text = str(inner).strip()
    return f"{type(inner).__name__}: {text.splitlines()[0]}" if text else type(inner).__name__
