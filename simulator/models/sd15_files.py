"""Stable Diffusion 1.5 weight folders (the Img2Img-SC baseline's): what a folder in diffusers
layout holds, checked from configs and safetensors headers only.

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
:func:`describe_sd15_dir` is its table for ``semlink weights``. Loading is
:func:`semlink.models.sd15.load_sd15`'s.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from semlink.errors import InputError
from semlink.models.safetensors_headers import (float_dtype, format_si, index_file_names,
                                               read_safetensors_header)

__all__ = ["SD15_COMPONENTS", "SD15_REPO_ID", "SD15Component", "SD15Report", "scan_sd15_dir",
           "describe_sd15_dir"]

SD15_COMPONENTS: tuple[str, ...] = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
"""Subfolders of a Stable Diffusion 1.5 folder in diffusers layout."""

SD15_REPO_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
"""Hugging Face repository of the weights (the v1.5 checkpoint the authors used)."""

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
        return float_dtype(self.tensors)


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
                         "size": format_si(c.size_bytes, "B") if c.size_bytes else "-",
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
    try:
        files = [folder / f for f in index_file_names(index, weight_map)]  # none outside it
    except InputError as err:
        return SD15Component(name, folder, (index,), variant, issues=(f"{err}.",))
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
            tensors.update(read_safetensors_header(f))
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
