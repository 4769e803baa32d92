"""Stable Cascade weights into semlink's models: check, convert and load.

Which files a weights directory holds, in which layout, is :mod:`semlink.models.weight_files`
(its public names are importable from here as well).

Original keys differ from the diffusers classes (``StableCascadeUNet``, ``PaellaVQModel``) in:

- stage B: ``*.attention.attn.in_proj_weight/bias`` (``nn.MultiheadAttention``, q|k|v stacked
  along dim 0) -> ``*.attention.to_q/to_k/to_v.weight/bias``; ``*.attn.out_proj.*`` ->
  ``*.to_out.0.*``; ``clip_mapper.*`` -> ``clip_txt_pooled_mapper.*`` (all other modules,
  ``effnet_mapper``, ``pixels_mapper``, blocks, ``clf``, have equal names);
- stage A: ``vquantizer.codebook.weight`` (torchtools ``VectorQuantize``) ->
  ``vquantizer.embedding.weight``; the rest is equal. The latent scale differs too (0.43 vs
  the config's 0.3764), see :func:`semlink.models.stage_a.scale_factor_for_layout`;
- encoder: none; :class:`~semlink.models.encoder.SemanticEncoder` has the file's layout.

Every file is checked against the target model from its safetensors header before any data
is read (keys, shapes, dtype kinds); problems raise :class:`~semlink.errors.InputError`
with one line naming the file and the first mismatching keys. Missing BatchNorm
``num_batches_tracked`` counters are tolerated (they do not affect eval-mode outputs).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from semlink.channels._checks import check_one_of, check_type
from semlink.errors import InputError
from semlink.models.fetching import download_weights
from semlink.models.safetensors_headers import FLOAT_CODES
from semlink.models.weight_files import (
    _DESCRIPTIONS,
    COMPONENTS,
    LAYOUTS,
    NOT_READY,
    REPO_ID,
    FoundWeights,
    WeightsReport,
    _expected_names,
    _keys,
    describe_weights_dir,
    scan_weights_dir,
)

__all__ = [
    "COMPONENTS",
    "LAYOUTS",
    "REPO_ID",
    "FoundWeights",
    "WeightsReport",
    "scan_weights_dir",
    "describe_weights_dir",
    "NOT_READY",
    "convert_stage_b_original",
    "convert_stage_a_original",
    "read_weights",
    "load_weights",
    "check_finite",
    "load_encoder",
    "load_stage_a",
    "load_stage_b",
    "load_stable_cascade",
    "PRESET_VARIANTS",
    "download_weights",
]


def convert_stage_b_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename original ``StageB`` keys to diffusers ``StableCascadeUNet`` keys.

    ``X.attn.in_proj_weight`` [3c, c] -> ``X.to_q.weight``, ``X.to_k.weight``, ``X.to_v.weight``
    (chunks of dim 0, same for ``in_proj_bias``); ``X.attn.out_proj.*`` -> ``X.to_out.0.*``;
    ``clip_mapper.*`` -> ``clip_txt_pooled_mapper.*``; other keys unchanged. Tensors are views.

    :input state_dict: key -> tensor in the original layout.
    :output state_dict: key -> tensor in the diffusers layout.
    :raises InputError: If an ``in_proj`` tensor's first dim is not a multiple of 3.
    """
    out: dict[str, torch.Tensor] = {}
    for key, t in state_dict.items():
        for suffix in ("weight", "bias"):
            tail = f".attn.in_proj_{suffix}"
            if key.endswith(tail):
                if t.dim() == 0 or t.shape[0] % 3:
                    raise InputError(f"`{key}` must have a first dim divisible by 3 (q, k, v); "
                                     f"got shape {list(t.shape)}.")
                base = key[: -len(tail)]
                for name, part in zip(("to_q", "to_k", "to_v"), t.chunk(3, dim=0)):
                    out[f"{base}.{name}.{suffix}"] = part
                break
        else:
            if ".attn.out_proj." in key:
                out[key.replace(".attn.out_proj.", ".to_out.0.")] = t
            elif key.startswith("clip_mapper."):
                out["clip_txt_pooled_mapper." + key[len("clip_mapper."):]] = t
            else:
                out[key] = t
    return out


def convert_stage_a_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename original ``StageA`` keys to diffusers ``PaellaVQModel`` keys.

    Only the codebook differs: ``vquantizer.codebook.weight`` -> ``vquantizer.embedding.weight``.

    :input state_dict: key -> tensor in the original layout.
    :output state_dict: key -> tensor in the diffusers layout.
    """
    return {("vquantizer.embedding.weight" if k == "vquantizer.codebook.weight" else k): t
            for k, t in state_dict.items()}


def read_weights(model: nn.Module, weights_dir: str | Path, component: str, *,
                 layout: str | None = None) -> tuple[dict[str, torch.Tensor], FoundWeights]:
    """Read, check and convert one component's weights for ``model`` without loading them.

    ``model`` serves as the template: its ``state_dict()`` keys, shapes, dtypes and device.
    Choice among several files of the component: usable ones first, then the layout order
    of :data:`LAYOUTS`, then a file whose floating dtype equals the model's, then float32.
    The header is checked against the template (in the file's layout) before any data is
    read; tensors are read with ``safetensors.torch.load_file`` straight onto the model's
    device (the CPU for a meta model), converted to the diffusers keys and cast to the
    model's dtypes (bf16 files into float32 models, for example). A missing
    ``num_batches_tracked`` becomes 0.

    :param model: Template module: a ``SemanticEncoder`` for ``"encoder"``, a
        ``StableCascadeUNet`` for stage B, a ``PaellaVQModel`` for stage A; may be on meta.
    :param weights_dir: The weights directory.
    :param component: One of :data:`COMPONENTS`.
    :param layout: One of :data:`LAYOUTS`, or None = any.
    :output state_dict: Exactly the keys of ``model.state_dict()``, ready for
        ``load_state_dict(strict=True)`` (``assign=True`` for a meta model).
    :output found: The :class:`FoundWeights` read (its ``layout`` decides the stage A scale).
    :raises InputError: If the directory or files are missing or unreadable, or keys, shapes
        or dtype kinds do not match ``model``.
    """
    check_type(model, nn.Module, name="model")
    check_type(component, str, name="component")
    check_one_of(component, COMPONENTS, name="component")
    if layout is not None:
        check_one_of(layout, LAYOUTS, name="layout")
    report = scan_weights_dir(weights_dir)
    candidates = [e for e in report.found(component) if layout in (None, e.layout)]
    if not candidates:
        raise InputError(f"{report.root}: no {_DESCRIPTIONS[component]} weights; expected "
                         f"{_expected_names(component, layout)}.")
    target = model.state_dict()
    model_dtype = next((t.dtype for t in target.values() if t.is_floating_point()), torch.float32)
    best = min(candidates, key=lambda e: (not e.ok, LAYOUTS.index(e.layout),
                                          e.dtype != _torch_dtype_name(model_dtype),
                                          e.dtype != "float32"))
    if not best.ok:
        raise InputError(best.issues[0])
    _check_header(best, _file_layout(component, best.layout, target))

    device = next((t.device for t in target.values()), torch.device("cpu"))
    load_device = torch.device("cpu") if device.type == "meta" else device
    state: dict[str, torch.Tensor] = {}
    for f in best.files:
        state.update(_read_tensors(f, load_device))
    if best.layout == "original" and component.startswith("stage_b"):
        state = convert_stage_b_original(state)
    elif best.layout == "original" and component == "stage_a":
        state = convert_stage_a_original(state)
    for key, ref in target.items():
        if key not in state:  # only num_batches_tracked: _check_header allowed it
            state[key] = torch.zeros(ref.shape, dtype=ref.dtype, device=load_device)
        elif state[key].dtype != ref.dtype:
            state[key] = state[key].to(ref.dtype)
    check_finite(state, best.files[0] if len(best.files) == 1 else best.files[0].parent)
    return state, best


def check_finite(state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Refuse weights holding NaN or infinity (a diverged training, a damaged file): a model
    would turn every image into NaN without an error. One pass over the values, at load time.

    :raises InputError: Naming ``source`` and the first such tensor.
    """
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"{source}: {key} holds NaN or infinite values (diverged training "
                             "or a damaged file)")


def load_weights(model: nn.Module, weights_dir: str | Path, component: str, *,
                 layout: str | None = None) -> FoundWeights:
    """Load one component's weights from a directory into ``model``, in place.

    :func:`read_weights`, then ``model.load_state_dict(strict=True)``; a model on the meta
    device gets the tensors assigned (on the CPU).

    :param model: Target module; see :func:`read_weights`.
    :param weights_dir: The weights directory.
    :param component: One of :data:`COMPONENTS`.
    :param layout: One of :data:`LAYOUTS`, or None = any.
    :output found: The :class:`FoundWeights` loaded.
    :raises InputError: See :func:`read_weights`; ``model`` is unchanged then.
    """
    state, found = read_weights(model, weights_dir, component, layout=layout)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    model.load_state_dict(state, strict=True, assign=on_meta)
    return found


def load_encoder(model: nn.Module, weights_dir: str | Path) -> FoundWeights:
    """Load ``effnet_encoder.safetensors`` into a full-size ``SemanticEncoder``.

    :param model: ``SemanticEncoder`` with ``width_mult = depth_mult = 1`` and 16 channels
        (any other size fails the shape check); may be built on the meta device.
    :param weights_dir: The weights directory.
    :output found: The :class:`FoundWeights` loaded.
    :raises TypeError: If ``model`` is not a ``SemanticEncoder``.
    :raises InputError: See :func:`load_weights`.
    """
    from semlink.models.encoder import SemanticEncoder

    check_type(model, SemanticEncoder, name="model")
    return load_weights(model, weights_dir, "encoder")


def load_stage_a(model: nn.Module, weights_dir: str | Path, *,
                 layout: str | None = None) -> FoundWeights:
    """Load stage A (``stage_a.safetensors`` or ``vqgan/``) into a ``PaellaVQModel``.

    :param model: ``PaellaVQModel``, e.g. from ``build_stage_a("stable-cascade")``.
    :param weights_dir: The weights directory.
    :param layout: One of :data:`LAYOUTS` or None = any (original first).
    :output found: The :class:`FoundWeights` loaded; pass ``found.layout`` to
        ``scale_factor_for_layout``.
    :raises InputError: See :func:`load_weights`.
    """
    return load_weights(model, weights_dir, "stage_a", layout=layout)


def load_stage_b(model: nn.Module, weights_dir: str | Path, *, variant: str | None = None,
                 layout: str | None = None) -> FoundWeights:
    """Load stage B lite or full into a ``StableCascadeUNet``.

    :param model: ``StableCascadeUNet``, e.g. from ``build_stage_b("stable-cascade-lite")``
        (``meta=True`` avoids allocating random weights first).
    :param weights_dir: The weights directory.
    :param variant: ``"lite"`` (``stage_b_lite*``, ``decoder_lite/``) or ``"full"``
        (``stage_b*``, ``decoder/``); None = from ``model.config.block_out_channels[1]``
        (576 lite, 640 full).
    :param layout: One of :data:`LAYOUTS` or None = any (original first).
    :output found: The :class:`FoundWeights` loaded.
    :raises ValueError: If ``variant`` is None and the model is neither size.
    :raises InputError: See :func:`load_weights`.
    """
    if variant is None:
        widths = list(getattr(getattr(model, "config", None), "block_out_channels", []) or [])
        by_width = {576: "lite", 640: "full"}
        if len(widths) < 2 or widths[1] not in by_width:
            raise ValueError("`variant` must be 'lite' or 'full' for a model whose "
                             f"block_out_channels are not stage B's; got {widths!r}.")
        variant = by_width[widths[1]]
    check_one_of(variant, ("lite", "full"), name="variant")
    return load_weights(model, weights_dir, "stage_b_lite" if variant == "lite" else "stage_b",
                        layout=layout)


#: Stage B variant of each real preset.
PRESET_VARIANTS = {"stable-cascade-lite": "lite", "stable-cascade": "full"}


def load_stable_cascade(encoder: nn.Module, stage_b: nn.Module, stage_a: nn.Module,
                        weights_dir: str | Path, *, preset: str) -> float:
    """Load Stability AI's weights (either layout) into a receiver's three models.

    :param encoder: Full-size ``SemanticEncoder``.
    :param stage_b: ``StableCascadeUNet`` of the preset's variant.
    :param stage_a: ``PaellaVQModel``.
    :param preset: ``"stable-cascade-lite"`` or ``"stable-cascade"`` (chooses stage B's files).
    :output latent_scale_factor: float; the one that goes with the stage A weights found
        (:func:`~semlink.models.stage_a.scale_factor_for_layout`).
    :raises InputError: See :func:`load_weights`.
    """
    from semlink.models.stage_a import scale_factor_for_layout

    check_one_of(preset, tuple(PRESET_VARIANTS), name="preset")
    load_encoder(encoder, weights_dir)
    load_stage_b(stage_b, weights_dir, variant=PRESET_VARIANTS[preset])
    return scale_factor_for_layout(load_stage_a(stage_a, weights_dir).layout)


# ----------------------------------------------------------------------------- helpers


def _file_layout(component: str, layout: str, target: Mapping[str, torch.Tensor]
                 ) -> dict[str, tuple[tuple[int, ...], bool]]:
    """key -> (shape, is_floating) the file must hold for ``target`` (the model's state dict)."""
    out: dict[str, tuple[tuple[int, ...], bool]] = {}
    for key, t in target.items():
        shape, is_float = tuple(t.shape), t.is_floating_point()
        if layout == "original" and component.startswith("stage_b"):
            if key.endswith((".to_k.weight", ".to_k.bias", ".to_v.weight", ".to_v.bias")):
                continue
            if key.endswith((".to_q.weight", ".to_q.bias")):
                suffix = key.rsplit(".", 1)[1]
                key = f"{key[: -len('.to_q.' + suffix)]}.attn.in_proj_{suffix}"
                shape = (3 * shape[0], *shape[1:])
            elif ".to_out.0." in key:
                key = key.replace(".to_out.0.", ".attn.out_proj.")
            elif key.startswith("clip_txt_pooled_mapper."):
                key = "clip_mapper." + key[len("clip_txt_pooled_mapper."):]
        elif layout == "original" and component == "stage_a" and key == "vquantizer.embedding.weight":
            key = "vquantizer.codebook.weight"
        out[key] = (shape, is_float)
    return out


def _check_header(found: FoundWeights, expected: Mapping[str, tuple[tuple[int, ...], bool]]
                  ) -> None:
    what = _DESCRIPTIONS[found.component]
    missing = [k for k in expected if k not in found.tensors
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in found.tensors if k not in expected]
    parts = []
    if missing:
        parts.append(f"{len(missing)} key(s) missing for {what}: {_keys(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_keys(unexpected)}")
    if parts:
        raise InputError(f"{found.path}: {'; '.join(parts)} ({found.layout} layout).")
    wrong = [k for k, (shape, _) in expected.items()
             if k in found.tensors and found.tensors[k][1] != shape]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise InputError(f"{found.path}: wrong shape for `{k}`: expected {list(expected[k][0])}, "
                         f"got {list(found.tensors[k][1])}{more}; the model's configuration "
                         f"does not match these {what} weights.")
    kinds = [k for k, (_, is_float) in expected.items()
             if k in found.tensors and (found.tensors[k][0] in FLOAT_CODES) != is_float]
    if kinds:
        raise InputError(f"{found.path}: `{kinds[0]}` has dtype {found.tensors[kinds[0]][0]}, "
                         f"expected {'a floating' if expected[kinds[0]][1] else 'an integer'} type.")


def _read_tensors(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        detail = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: cannot load ({type(err).__name__}: {detail}).") from err


def _torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
