"""Stable Diffusion 1.5 for the Img2Img-SC baseline: the weights folder, the models, and img2img
from a latent.

A weights folder is Stable Diffusion 1.5 in diffusers layout (what Hugging Face
``stable-diffusion-v1-5/stable-diffusion-v1-5`` holds):

================  ===============================================  ============================
component         files                                            loaded with
================  ===============================================  ============================
``unet/``         ``config.json``, ``diffusion_pytorch_model``     diffusers UNet2DConditionModel
                  ``[.fp16].safetensors`` (or a sharded index)
``vae/``          the same                                         diffusers AutoencoderKL
``text_encoder/`` ``config.json``, ``model[.fp16].safetensors``    transformers CLIPTextModel
``tokenizer/``    ``vocab.json``, ``merges.txt``                   transformers CLIPTokenizer
``scheduler/``    ``scheduler_config.json``                        diffusers DDIMScheduler
================  ===============================================  ============================

:func:`scan_sd15_dir` reads only configs and safetensors headers (a half-downloaded file, a
Stable Diffusion 2.x or inpainting folder, ``.bin``-only weights show as one-line issues);
:func:`describe_sd15_dir` is its table for ``semlink weights``; :func:`load_sd15` checks each
file's keys and shapes against the model built from its config before reading any data.
The text encoder needs ``transformers`` (``pip install 'semlink[blip]'``); the UNet and VAE
need only diffusers.

The receiver (:class:`SD15Img2Img`) takes prompt embeddings ``[batch, 77, dim]``: encoding
text is a separate step (:class:`CLIPPromptEncoder` for the real weights, :class:`TinyTextEncoder`,
a byte-level embedding with the same call, for :func:`tiny_sd15`'s random test models).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semlink.errors import InputError, describe_error
from semlink.models.weight_files import _keys, _read_header, _si

__all__ = ["SD15_COMPONENTS", "SD15_REPO_ID", "SD15_SCALING_FACTOR", "PROMPT_TOKENS",
           "SD15Component", "SD15Report", "scan_sd15_dir", "describe_sd15_dir", "SD15Models",
           "load_sd15", "tiny_sd15", "TinyTextEncoder", "CLIPPromptEncoder",
           "img2img_timesteps", "SD15Img2Img"]

SD15_COMPONENTS: tuple[str, ...] = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
"""Subfolders of a Stable Diffusion 1.5 folder in diffusers layout."""

SD15_REPO_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
"""Hugging Face repository of the weights (the v1.5 checkpoint the authors used)."""

SD15_SCALING_FACTOR = 0.18215
"""Latent scale of SD 1.5's VAE: the UNet works on ``raw * 0.18215``."""

PROMPT_TOKENS = 77
"""Tokens of a CLIP prompt embedding."""

_LAYOUT = ("a Stable Diffusion 1.5 folder in diffusers layout holds unet/, vae/, text_encoder/, "
           f"tokenizer/ and scheduler/ (download {SD15_REPO_ID})")
_WEIGHT_STEMS = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model",
                 "text_encoder": "model"}
_VARIANTS = ("", "fp16")
_CONFIG_FILES = {"unet": "config.json", "vae": "config.json", "text_encoder": "config.json",
                 "scheduler": "scheduler_config.json"}
_TOKENIZER_FILES = ("vocab.json", "merges.txt")
# config key -> SD 1.5's value, and what another value most likely means.
_EXPECTED = {
    "unet": {"in_channels": (4, "an inpainting or depth UNet?"),
             "out_channels": (4, None),
             "cross_attention_dim": (768, "a Stable Diffusion 2.x or XL folder?")},
    "vae": {"latent_channels": (4, "not SD 1.5's VAE"), "in_channels": (3, None),
            "out_channels": (3, None)},
    "text_encoder": {"hidden_size": (768, "a Stable Diffusion 2.x text encoder?")},
}
_CLASS_NAMES = {"unet": "UNet2DConditionModel", "vae": "AutoencoderKL"}
_FLOAT_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# Attention blocks of VAEs saved before diffusers 0.14 (query/key/value/proj_attn).
_DEPRECATED_ATTENTION = re.compile(r"^(.*\.attentions\.\d+)\.(query|key|value|proj_attn)\."
                                   r"(weight|bias)$")
_NEW_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


# ----------------------------------------------------------------------------- the folder


@dataclasses.dataclass(frozen=True, eq=False)
class SD15Component:
    """One subfolder of a Stable Diffusion 1.5 folder, as found.

    :param component: One of :data:`SD15_COMPONENTS`.
    :param folder: The subfolder.
    :param files: Weight files (``unet``, ``vae``, ``text_encoder``; several when sharded), or
        the tokenizer's files, or the scheduler's config.
    :param variant: ``""`` (float32) or ``"fp16"`` for weights; None otherwise.
    :param tensors: key -> (safetensors dtype code, shape) from the headers.
    :param size_bytes: Total size of ``files``.
    :param config: The parsed config JSON; None for the tokenizer or when unreadable.
    :param issues: One line per problem, each naming the file and the fix; empty when usable.
    """

    component: str
    folder: Path
    files: tuple[Path, ...] = ()
    variant: str | None = None
    tensors: Mapping[str, tuple[str, tuple[int, ...]]] = dataclasses.field(
        default_factory=dict, repr=False)
    size_bytes: int = 0
    config: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    issues: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return not self.issues

    @property
    def dtype(self) -> str:
        """Floating dtype of the tensors (``"float32"``, ``"float16"``, ``"mixed"``, ``"-"``)."""
        codes = {c for c, _ in self.tensors.values() if c in _FLOAT_NAMES}
        if len(codes) == 1:
            return _FLOAT_NAMES[codes.pop()]
        return "mixed" if codes else "-"


@dataclasses.dataclass(frozen=True, eq=False)
class SD15Report:
    """What :func:`scan_sd15_dir` found.

    :param root: The folder.
    :param components: One entry per :data:`SD15_COMPONENTS`, in that order.
    """

    root: Path
    components: tuple[SD15Component, ...]

    def __getitem__(self, component: str) -> SD15Component:
        return next(c for c in self.components if c.component == component)

    def issues(self, components: Sequence[str] = SD15_COMPONENTS) -> list[str]:
        """Every issue of ``components``, in order."""
        return [i for c in self.components if c.component in components for i in c.issues]

    @property
    def ready(self) -> bool:
        """True when every component is usable."""
        return not self.issues()

    def check(self, components: Sequence[str] = SD15_COMPONENTS) -> None:
        """Raise the first issue of ``components`` as an :class:`InputError`."""
        issues = self.issues(components)
        if issues:
            raise InputError(issues[0])

    def rows(self) -> list[dict[str, str]]:
        """One row of strings per component: component, file, dtype, tensors, size, status."""
        rows = []
        for c in self.components:
            shown = c.files[0] if len(c.files) == 1 else c.folder
            rows.append({"component": c.component, "file": _relative(shown, self.root),
                         "dtype": c.dtype, "tensors": str(len(c.tensors)) if c.tensors else "-",
                         "size": _si(c.size_bytes, "B") if c.size_bytes else "-",
                         "status": "ok" if c.ok else c.issues[0]})
        return rows


def scan_sd15_dir(path: str | Path) -> SD15Report:
    """Check a Stable Diffusion 1.5 folder reading only configs and safetensors headers.

    :param path: The folder (diffusers layout, see the module docstring).
    :output report: :class:`SD15Report`; problems appear as ``issues``, not raised.
    :raises InputError: If ``path`` does not exist or is not a directory.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"{root}: Stable Diffusion 1.5 folder does not exist.")
    if not root.is_dir():
        raise InputError(f"{root}: not a directory ({_LAYOUT}).")
    return SD15Report(root, tuple(_scan_component(root / name, name)
                                  for name in SD15_COMPONENTS))


def describe_sd15_dir(path: str | Path | SD15Report) -> str:
    """A text table of a Stable Diffusion 1.5 folder (for ``semlink weights DIR``).

    :param path: The folder, or what :func:`scan_sd15_dir` found in it.
    :output text: Multi-line str: one line per component, then a verdict.
    :raises InputError: If ``path`` does not exist or is not a directory.
    """
    report = path if isinstance(path, SD15Report) else scan_sd15_dir(path)
    rows = report.rows()
    cols = ("component", "file", "dtype", "tensors", "size", "status")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols[:-1]}
    lines = [f"Stable Diffusion 1.5 weights in {report.root}"]
    for r in [dict(zip(cols, cols)), *rows]:
        lines.append("  ".join(r[c].ljust(widths[c]) if c in widths else r[c] for c in cols))
    text_ok = not report.issues(("text_encoder", "tokenizer"))
    core_ok = not report.issues(("unet", "vae", "scheduler"))
    if core_ok and text_ok:
        verdict = "ready (UNet, VAE, text encoder, tokenizer and scheduler found)"
    elif core_ok:
        verdict = "not ready: the text encoder or tokenizer is missing or damaged"
    else:
        verdict = "not ready: needs unet/, vae/, text_encoder/, tokenizer/ and scheduler/"
    lines.append("img2img-sc link: " + verdict)
    return "\n".join(lines)


def _scan_component(folder: Path, name: str) -> SD15Component:
    if not folder.is_dir():
        return SD15Component(name, folder, issues=(f"{folder}: missing; {_LAYOUT}.",))
    if name == "tokenizer":
        files = tuple(folder / f for f in _TOKENIZER_FILES)
        missing = [f for f in files if not f.is_file()]
        issues = tuple(f"{f}: missing (the CLIP tokenizer needs {' and '.join(_TOKENIZER_FILES)}"
                       f"; download the tokenizer/ folder of {SD15_REPO_ID})." for f in missing)
        size = sum(f.stat().st_size for f in files if f.is_file())
        return SD15Component(name, folder, files, size_bytes=size, issues=issues)
    config, issues = _read_config(folder / _CONFIG_FILES[name], name)
    if name == "scheduler":
        cfg = folder / _CONFIG_FILES[name]
        return SD15Component(name, folder, (cfg,), config=config, issues=tuple(issues),
                             size_bytes=cfg.stat().st_size if cfg.is_file() else 0)
    return _scan_weights(folder, name, config, issues)


def _read_config(path: Path, name: str) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None, [f"{path}: missing (download it with the rest of {path.parent.name}/ "
                      f"from {SD15_REPO_ID})."]
    except (OSError, ValueError) as err:
        return None, [f"{path}: not a readable JSON file ({type(err).__name__})."]
    if not isinstance(config, dict):
        return None, [f"{path}: not a JSON object."]
    issues = []
    expected_class = _CLASS_NAMES.get(name)
    got_class = config.get("_class_name")
    if expected_class is not None and got_class not in (None, expected_class):
        issues.append(f"{path}: a {got_class} config, not {expected_class}; {path.parent.name}/"
                      f" must be Stable Diffusion 1.5's.")
    for key, (value, hint) in _EXPECTED.get(name, {}).items():
        if key in config and config[key] != value:
            issues.append(f"{path}: {key} is {config[key]!r}, Stable Diffusion 1.5's is "
                          f"{value!r}{f' ({hint})' if hint else ''}; give the v1.5 folder.")
    if name == "scheduler" and not isinstance(config.get("num_train_timesteps", 1000), int):
        issues.append(f"{path}: num_train_timesteps must be an integer.")
    return config, issues


def _scan_weights(folder: Path, name: str, config: dict[str, Any] | None,
                  config_issues: list[str]) -> SD15Component:
    stem = _WEIGHT_STEMS[name]
    found = []
    for variant in _VARIANTS:
        dot = f".{variant}" if variant else ""
        index = folder / f"{stem}.safetensors.index{dot}.json"
        single = folder / f"{stem}{dot}.safetensors"
        if index.is_file():
            found.append(_read_sharded(folder, name, variant, index))
        elif single.exists():
            found.append(_read_files(folder, name, variant, [single]))
    if not found:
        bins = sorted(p.name for p in folder.glob("*.bin"))
        why = (f"holds only {bins[0]} (pickle); semlink reads safetensors: download "
               f"{stem}.safetensors" if bins else f"no {stem}[.fp16].safetensors or its index")
        return SD15Component(name, folder, config=config,
                             issues=(*config_issues, f"{folder}: {why}."))
    best = next((c for c in found if c.ok), found[0])  # float32 first, then fp16
    return dataclasses.replace(best, config=config, issues=(*config_issues, *best.issues))


def _read_sharded(folder: Path, name: str, variant: str, index: Path) -> SD15Component:
    try:
        weight_map = dict(json.loads(index.read_text())["weight_map"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return SD15Component(name, folder, (index,), variant,
                             issues=(f"{index}: not a valid index ({type(err).__name__}).",))
    files = [folder / f for f in dict.fromkeys(weight_map.values())]
    missing = [f for f in files if not f.is_file()]
    if missing:
        return SD15Component(name, folder, (index,), variant, issues=(
            f"{missing[0]}: missing (listed in {index.name}; download it).",))
    return _read_files(folder, name, variant, files)


def _read_files(folder: Path, name: str, variant: str, files: list[Path]) -> SD15Component:
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    issues: list[str] = []
    for f in files:
        try:
            tensors.update(_read_header(f))
        except InputError as err:  # unreadable, not safetensors, or truncated
            issues.append(f"{err} Download it again.")
    size = sum(f.stat().st_size for f in files if f.is_file())
    return SD15Component(name, folder, tuple(files), variant, tensors, size,
                         issues=tuple(issues))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- the models


@dataclasses.dataclass(eq=False)
class SD15Models:
    """The parts of Stable Diffusion 1.5 img2img.

    :ivar unet: diffusers ``UNet2DConditionModel``, eval mode.
    :ivar vae: diffusers ``AutoencoderKL``, eval mode.
    :ivar scheduler_config: The scheduler's config (a DDIM scheduler is built from it).
    :ivar text_encoder: ``prompts -> [batch, 77, dim]`` embeddings, or None when not loaded.
    :ivar scaling_factor: The VAE's latent scale (0.18215 for SD 1.5).
    :ivar source: The weights folder, or ``"tiny-random"``.
    """

    unet: nn.Module
    vae: nn.Module
    scheduler_config: dict[str, Any]
    text_encoder: Callable[[Sequence[str]], torch.Tensor] | None
    scaling_factor: float
    source: str


def load_sd15(path: str | Path, *, device: str = "cpu", dtype: torch.dtype = torch.float32,
              text_encoder: bool = True) -> SD15Models:
    """Load Stable Diffusion 1.5 from a folder in diffusers layout.

    Each model is built from its ``config.json`` on the meta device, the safetensors header is
    checked against it (keys and shapes; VAE attention keys saved before diffusers 0.14 are
    renamed), then the tensors are read and loaded strictly.

    :param path: The folder.
    :param device: Torch device of the models.
    :param dtype: Parameter dtype (float32 on the CPU; float16 on CUDA, as the authors' autocast).
    :param text_encoder: Load the CLIP text encoder and tokenizer (needs ``transformers``).
    :output models: :class:`SD15Models`.
    :raises InputError: One line naming the file and the fix, for every problem
        :func:`scan_sd15_dir` finds, a key or shape that does not fit, non-finite weights,
        or ``transformers`` missing when ``text_encoder`` is True.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    report = scan_sd15_dir(path)
    report.check(("unet", "vae", "scheduler") + (("text_encoder", "tokenizer")
                                                   if text_encoder else ()))
    unet = _load_model(UNet2DConditionModel, report["unet"], device, dtype)
    vae = _load_model(AutoencoderKL, report["vae"], device, dtype)
    encoder = CLIPPromptEncoder(report, device=device, dtype=dtype) if text_encoder else None
    scale = float(report["vae"].config.get("scaling_factor", SD15_SCALING_FACTOR))
    return SD15Models(unet, vae, dict(report["scheduler"].config), encoder, scale,
                      str(report.root))


def _renamed(key: str) -> str:
    m = _DEPRECATED_ATTENTION.match(key)
    return f"{m[1]}.{_NEW_ATTENTION[m[2]]}.{m[3]}" if m else key


def _load_model(cls: type, found: SD15Component, device: str, dtype: torch.dtype) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from semlink.models.weights import check_finite

    config_path = found.folder / _CONFIG_FILES[found.component]
    try:
        with torch.device("meta"):
            model = cls.from_config(found.config)
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(f"{config_path}: cannot build {cls.__name__} from it "
                         f"({describe_error(err)}).") from err
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shown = found.files[0] if len(found.files) == 1 else found.folder
    header = {_renamed(k): v for k, v in found.tensors.items()}
    missing = [k for k in expected if k not in header]
    unexpected = [k for k in header if k not in expected]
    if missing or unexpected:
        parts = ([f"{len(missing)} key(s) missing: {_keys(missing)}"] if missing else []) + \
                ([f"{len(unexpected)} unexpected key(s): {_keys(unexpected)}"] if unexpected
                 else [])
        raise InputError(f"{shown}: {'; '.join(parts)} (not the {cls.__name__} its "
                         f"{config_path.name} describes).")
    wrong = [k for k, shape in expected.items() if header[k][1] != shape]
    if wrong:
        raise InputError(f"{shown}: wrong shape for `{wrong[0]}`: expected "
                         f"{list(expected[wrong[0]])}, got {list(header[wrong[0]][1])}; the "
                         f"weights do not match {config_path.name}.")
    state: dict[str, torch.Tensor] = {}
    for f in found.files:
        try:
            state.update({_renamed(k): v for k, v in load_file(f, device="cpu").items()})
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise InputError(f"{f}: cannot load ({describe_error(err)}).") from err
    check_finite(state, shown)
    model.load_state_dict(state, strict=True, assign=True)
    return nn.Module.to(model, device=device, dtype=dtype).eval()


def _tiny_configs() -> tuple[dict[str, Any], dict[str, Any]]:
    """UNet and VAE configs of the same classes as SD 1.5's, about a thousand times smaller:
    a latent of 4 channels at 1/8 of the image side, cross-attention on SD 1.5's
    ``[batch, 77, 768]`` prompt embeddings."""
    unet = {"sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
            "block_out_channels": (16, 32), "norm_num_groups": 8, "cross_attention_dim": 768,
            "attention_head_dim": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D")}
    vae = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
           "block_out_channels": (8, 16, 16, 16), "norm_num_groups": 4, "sample_size": 64,
           "down_block_types": ("DownEncoderBlock2D",) * 4,
           "up_block_types": ("UpDecoderBlock2D",) * 4, "scaling_factor": SD15_SCALING_FACTOR}
    return unet, vae


#: SD 1.5's scheduler settings (its ``scheduler_config.json``), for the tiny models.
_SD15_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                   "beta_schedule": "scaled_linear", "clip_sample": False,
                   "set_alpha_to_one": False, "steps_offset": 1, "prediction_type": "epsilon"}


def _fill(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Deterministic random weights from ``generator`` (torch's global RNG untouched): matrices
    and kernels N(0, 1 / fan_in), norm scales 1, biases 0."""
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.dim() >= 2:
                fan_in = math.prod(t.shape[1:])
                t.copy_(torch.randn(t.shape, generator=generator) / math.sqrt(fan_in))
            else:
                t.fill_(1.0 if name.endswith("weight") else 0.0)
    return model


def tiny_sd15(*, seed: int = 0, device: str = "cpu",
              dtype: torch.dtype = torch.float32) -> SD15Models:
    """Tiny random UNet and VAE of SD 1.5's classes, SD 1.5's scheduler, and a
    :class:`TinyTextEncoder` (``[batch, 77, 768]`` embeddings, as CLIP's), for tests and CPU
    demos: the images they make are noise. The same ``seed`` gives the same weights on every
    machine.

    >>> m = tiny_sd15(seed=0)
    >>> type(m.unet).__name__, m.unet.config.cross_attention_dim, m.text_encoder(["a"]).shape
    ('UNet2DConditionModel', 768, torch.Size([1, 77, 768]))
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet_cfg, vae_cfg = _tiny_configs()
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**unet_cfg), AutoencoderKL(**vae_cfg)
    models = []
    for m in (unet, vae):
        m = _fill(nn.Module.to_empty(m, device="cpu"), generator)
        models.append(nn.Module.to(m, device=device, dtype=dtype).eval())
    text = TinyTextEncoder(dim=unet_cfg["cross_attention_dim"], seed=seed + 1).to(
        device=device, dtype=dtype)
    return SD15Models(models[0], models[1], dict(_SD15_SCHEDULER), text, SD15_SCALING_FACTOR,
                      "tiny-random")


class TinyTextEncoder(nn.Module):
    """A stand-in for CLIP's text encoder with its call: prompts -> ``[batch, 77, dim]``.

    The UTF-8 bytes of a prompt (at most 75, then cut) between a start token (256) and end
    tokens (257, also the padding, as CLIP's SD 1.5 tokenizer pads), embedded by a random
    ``nn.Embedding`` plus a random position embedding. Different prompts give different
    embeddings, so caption errors reach the receiver in tests without ``transformers``.

    :param dim: int >= 1; embedding width (the UNet's ``cross_attention_dim``).
    :param seed: int; the weights' seed.
    :input prompts: Sequence of str.
    :output embeddings: [batch, 77, dim], the module's dtype, on its device.
    """

    def __init__(self, *, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.config = {"dim": dim, "seed": seed}
        generator = torch.Generator().manual_seed(seed)
        self.tokens = nn.Parameter(torch.randn(258, dim, generator=generator))
        self.positions = nn.Parameter(0.1 * torch.randn(PROMPT_TOKENS, dim, generator=generator))

    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        if isinstance(prompts, str):
            raise TypeError("`prompts` must be a sequence of str, not one str.")
        ids = torch.full((len(prompts), PROMPT_TOKENS), 257, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            data = list(prompt.encode("utf-8"))[:PROMPT_TOKENS - 2]
            ids[i, 0] = 256
            ids[i, 1:1 + len(data)] = torch.tensor(data, dtype=torch.long)
        ids = ids.to(self.tokens.device)
        return self.tokens[ids] + self.positions  # [batch, 77, dim]


class CLIPPromptEncoder:
    """SD 1.5's text path: CLIP tokenizer (padded to 77 tokens, longer prompts cut) and
    ``CLIPTextModel``'s last hidden state, from a checked folder (needs ``transformers``).

    :param report: :func:`scan_sd15_dir` of the folder (text_encoder/ and tokenizer/ usable).
    :input prompts: Sequence of str.
    :output embeddings: [batch, 77, 768], ``dtype``, on ``device``.
    :raises InputError: If ``transformers`` is missing or cannot load the files.
    """

    def __init__(self, report: SD15Report, *, device: str, dtype: torch.dtype) -> None:
        try:
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError as err:
            raise InputError(f"{report.root}: the CLIP text encoder needs transformers "
                             "(pip install 'semlink[blip]').") from err
        found = report["text_encoder"]
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(str(report.root / "tokenizer"))
            model = CLIPTextModel.from_pretrained(str(found.folder), variant=found.variant or None,
                                                  use_safetensors=True, torch_dtype=dtype)
        except Exception as err:  # noqa: BLE001 - a library's multi-line failure: one line
            raise InputError(f"{found.folder}: transformers cannot load the CLIP text encoder "
                             f"({describe_error(err)}).") from err
        self.model = model.to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length,
                             return_tensors="pt").input_ids.to(self.device)
        return self.model(ids)[0]


# ----------------------------------------------------------------------------- img2img


def img2img_timesteps(scheduler: Any, steps: int, strength: float, device: str = "cpu"
                      ) -> torch.Tensor:
    """The timesteps img2img denoises through, as diffusers' ``StableDiffusionImg2ImgPipeline``:
    a schedule of ``steps``, of which the last ``int(steps * strength)`` (SD 1.5's DDIM with 50
    steps at strength 0.6: the 30 from 581 down to 1).

    :param scheduler: A diffusers DDIM scheduler (``set_timesteps`` is called on it).
    :output timesteps: [int(steps * strength)] int64, descending; empty at strength 0.

    >>> from diffusers import DDIMScheduler
    >>> s = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    ...                   steps_offset=1, set_alpha_to_one=False, clip_sample=False)
    >>> t = img2img_timesteps(s, 50, 0.6)
    >>> len(t), int(t[0]), int(t[-1])
    (30, 581, 1)
    """
    scheduler.set_timesteps(steps, device=device)
    start = steps - min(int(steps * strength), steps)
    return scheduler.timesteps[start * scheduler.order:]


def _per_row_randn(shape: Sequence[int], generators: Sequence[torch.Generator],
                   device: str | torch.device) -> torch.Tensor:
    """[len(generators), *shape] float32 standard normal, row i from ``generators[i]``."""
    return torch.stack([torch.randn(tuple(shape), generator=g, device=device)
                        for g in generators])


class SD15Img2Img:
    """Stable Diffusion img2img from a (received) latent: noise it to the schedule's start
    timestep, denoise with the UNet and classifier-free guidance under a DDIM schedule, decode
    with the VAE (diffusers' ``StableDiffusionImg2ImgPipeline``, from a latent, not an image).

    :param models: :class:`SD15Models`.
    :param steps: int >= 1; DDIM schedule length (50, the authors').
    :param strength: float in [0, 1]; share of the schedule denoised (0.6: 30 steps). At 0
        the latent is decoded as it is.
    :param guidance: float >= 1; guidance scale (9, the authors'); 1 = no unconditional pass.
    :param negative_prompt: The unconditional prompt ("" as the authors).
    """

    def __init__(self, models: SD15Models, *, steps: int = 50, strength: float = 0.6,
                 guidance: float = 9.0, negative_prompt: str = "") -> None:
        from diffusers import DDIMScheduler

        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"`steps` must be an int >= 1; got {steps!r}.")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"`strength` must be in [0, 1]; got {strength!r}.")
        if not guidance >= 1.0:
            raise ValueError(f"`guidance` must be >= 1; got {guidance!r}.")
        self.models = models
        self.steps, self.strength, self.guidance = steps, strength, guidance
        self.negative_prompt = negative_prompt
        self.scheduler = DDIMScheduler.from_config(models.scheduler_config)
        self._uncond: torch.Tensor | None = None
        param = next(models.unet.parameters())
        self.device, self.dtype = param.device, param.dtype

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor,
                      generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Images -> scaled latents, sampled from the VAE's posterior (as the authors' LDM code
        and diffusers' img2img do), row i's draw from ``generators[i]``.

        :input images: [batch, 3, H, W] float in [0, 1].
        :output latents: [batch, 4, H/8, W/8] float32, times the scaling factor.
        """
        x = images.to(device=self.device, dtype=self.dtype) * 2 - 1
        dist = self.models.vae.encode(x).latent_dist
        noise = _per_row_randn(dist.mean.shape[1:], generators, self.device)
        return (dist.mean.float() + dist.std.float() * noise) * self.models.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents [batch, 4, h, w] -> images [batch, 3, 8h, 8w] float32 in [0, 1]."""
        x = self.models.vae.decode((latents / self.models.scaling_factor).to(self.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> [batch, 77, dim] embeddings with the models' text encoder."""
        if self.models.text_encoder is None:
            raise ValueError("these models have no text encoder: pass prompt embeddings.")
        return self.models.text_encoder(list(prompts)).to(self.dtype)

    @torch.no_grad()
    def denoise(self, latents: torch.Tensor, embeddings: torch.Tensor,
                generators: Sequence[torch.Generator],
                uncond_embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """The img2img loop: noise ``latents`` to the first timestep of
        :func:`img2img_timesteps` (row i's noise from ``generators[i]``), then DDIM (eta 0, no
        further noise) with classifier-free guidance ``eps_u + g (eps_c - eps_u)``.

        :input latents: [batch, 4, h, w] float, scaled latents (the received ones).
        :input embeddings: [batch, 77, dim]; the prompts' embeddings.
        :input uncond_embeddings: [1 or batch, 77, dim]; None = the negative prompt's.
        :output latents: [batch, 4, h, w] float32; ``latents`` unchanged at strength 0.
        """
        latents = latents.to(device=self.device, dtype=torch.float32)
        if embeddings.shape[0] != latents.shape[0] or len(generators) != latents.shape[0]:
            raise ValueError(f"`embeddings` {tuple(embeddings.shape)}, `latents` "
                             f"{tuple(latents.shape)} and {len(generators)} generators must "
                             "have one row per image.")
        timesteps = img2img_timesteps(self.scheduler, self.steps, self.strength, self.device)
        if len(timesteps) == 0:
            return latents
        batch = latents.shape[0]
        noise = _per_row_randn(latents.shape[1:], generators, self.device)
        x = self.scheduler.add_noise(latents, noise, timesteps[:1].repeat(batch))
        cond = embeddings.to(self.dtype)
        guided = self.guidance != 1.0
        if guided:
            if uncond_embeddings is None:
                uncond_embeddings = self._negative_embedding()
            cond = torch.cat([uncond_embeddings.to(self.dtype).expand(batch, -1, -1), cond])
        for t in timesteps:
            inputs = torch.cat([x, x]) if guided else x
            eps = self.models.unet(inputs.to(self.dtype), t, encoder_hidden_states=cond
                                   ).sample.float()
            if guided:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + self.guidance * (eps_c - eps_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        return x

    def _negative_embedding(self) -> torch.Tensor:
        if self._uncond is None:  # one text encoding per receiver
            self._uncond = self.encode_prompts([self.negative_prompt])
        return self._uncond

    def __call__(self, latents: torch.Tensor, prompts: Sequence[str],
                 generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Received latents and prompts -> images [batch, 3, 8h, 8w] float32 in [0, 1]."""
        return self.decode(self.denoise(latents, self.encode_prompts(prompts), generators))
