"""Stable Cascade weight files in a local directory: find and describe.

A weights directory is what a user downloaded from Hugging Face ``stabilityai/stable-cascade``
(:func:`semlink.models.fetching.download_weights` does it when ``huggingface_hub`` and the
network are available). Two published layouts are accepted, side by side in one directory:

============  ===========================================  ==================================
component     original files (Stability AI's code)         diffusers layout (subfolder)
============  ===========================================  ==================================
encoder       ``effnet_encoder.safetensors``               (none: always the original file)
stage_a       ``stage_a.safetensors``                      ``vqgan/``
stage_b_lite  ``stage_b_lite[_bf16].safetensors``          ``decoder_lite/``
stage_b       ``stage_b[_bf16].safetensors``               ``decoder/``
============  ===========================================  ==================================

A diffusers subfolder holds ``config.json`` and ``diffusion_pytorch_model[.bf16|.fp16].safetensors``
or shards listed in ``diffusion_pytorch_model.safetensors.index[.bf16|.fp16].json``.

Only the safetensors headers are read here (:func:`scan_weights_dir`): each file's keys, dtypes
and shapes, whether it is complete, and whether it is the component it claims to be. Checking
them against a model, converting the keys and loading the tensors is
:mod:`semlink.models.weights`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semlink.channels._checks import check_type
from semlink.errors import InputError
from semlink.models.downloads import STABLE_CASCADE_REPO_ID
from semlink.models.safetensors_headers import (FLOAT_CODES, float_dtype, format_si,
                                                index_file_names, read_safetensors_header)

__all__ = [
    "COMPONENTS",
    "LAYOUTS",
    "REPO_ID",
    "FoundWeights",
    "WeightsReport",
    "scan_weights_dir",
    "describe_weights_dir",
    "NOT_READY",
    "float_dtype",
]

COMPONENTS: tuple[str, ...] = ("encoder", "stage_a", "stage_b_lite", "stage_b")
"""Weight components semlink loads."""

LAYOUTS: tuple[str, ...] = ("original", "diffusers")
"""Weight layouts: Stability AI's original files, diffusers subfolders."""

REPO_ID = STABLE_CASCADE_REPO_ID
"""Hugging Face repository of the published weights (gated: accept the licence first)."""

_ORIGINAL_FILES = {
    "encoder": ("effnet_encoder.safetensors",),
    "stage_a": ("stage_a.safetensors",),
    "stage_b_lite": ("stage_b_lite.safetensors", "stage_b_lite_bf16.safetensors"),
    "stage_b": ("stage_b.safetensors", "stage_b_bf16.safetensors"),
}
_DIFFUSERS_DIRS = {"stage_a": "vqgan", "stage_b_lite": "decoder_lite", "stage_b": "decoder"}
_DIFFUSERS_VARIANTS = ("", "bf16", "fp16")
_DESCRIPTIONS = {"encoder": "semantic encoder", "stage_a": "stage A (VQGAN)",
                 "stage_b_lite": "stage B lite", "stage_b": "stage B"}
# A key each layout must have, and a key whose last dim tells stage B lite (576) from full (640).
_SIGNATURES = {
    ("encoder", "original"): ("backbone.0.0.weight", "mapper.0.weight"),
    ("stage_a", "original"): ("vquantizer.codebook.weight",),
    ("stage_a", "diffusers"): ("vquantizer.embedding.weight",),
    ("stage_b", "original"): ("clip_mapper.weight",),
    ("stage_b", "diffusers"): ("clip_txt_pooled_mapper.weight",),
}
_WIDTH_KEY = "down_blocks.1.0.channelwise.0.weight"
_STAGE_B_WIDTH = {"stage_b_lite": 576, "stage_b": 640}
_SHOW = 3  # keys shown in an error message


@dataclass(frozen=True, eq=False)
class FoundWeights:
    """One set of weight files found for a component.

    :param component: One of :data:`COMPONENTS`.
    :param layout: One of :data:`LAYOUTS`.
    :param path: The file to name in messages: the ``.safetensors`` file, or the index json
        of a sharded diffusers model.
    :param files: The ``.safetensors`` files holding the tensors (several when sharded).
    :param tensors: key -> (safetensors dtype code such as ``"F32"``, shape) from the headers.
    :param size_bytes: Total size of ``files``.
    :param config: Parsed diffusers ``config.json``; None for original files.
    :param issues: One line per problem; empty when the files are usable.
    """

    component: str
    layout: str
    path: Path
    files: tuple[Path, ...] = ()
    tensors: Mapping[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict, repr=False)
    size_bytes: int = 0
    config: dict[str, Any] | None = field(default=None, repr=False)
    issues: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return not self.issues

    @property
    def dtype(self) -> str:
        """Floating dtype of the tensors (``"float32"``, ``"bfloat16"``, ``"mixed"``, ``"-"``)."""
        return float_dtype(self.tensors)

    @property
    def num_values(self) -> int:
        """Number of floating-point values (parameters plus BatchNorm statistics)."""
        return sum(math.prod(shape) for code, shape in self.tensors.values() if code in FLOAT_CODES)


@dataclass(frozen=True, eq=False)
class WeightsReport:
    """What :func:`scan_weights_dir` found in a directory.

    :param root: The directory.
    :param entries: Every set of weight files found, usable or not, in scan order
        (components in :data:`COMPONENTS` order, original before diffusers).
    """

    root: Path
    entries: tuple[FoundWeights, ...]

    def found(self, component: str) -> tuple[FoundWeights, ...]:
        """Entries of ``component`` (usable or not)."""
        return tuple(e for e in self.entries if e.component == component)

    def has(self, component: str) -> bool:
        """True when ``component`` has at least one usable entry."""
        return any(e.ok for e in self.found(component))

    @property
    def semantic_link_ready(self) -> bool:
        """True when the folder holds what a semantic link loads: the encoder, stage A and
        stage B lite or stage B."""
        return self.has("encoder") and self.has("stage_a") and (
            self.has("stage_b_lite") or self.has("stage_b"))

    @property
    def missing(self) -> tuple[str, ...]:
        """Components without a usable entry."""
        return tuple(c for c in COMPONENTS if not self.has(c))

    def rows(self) -> list[dict[str, str]]:
        """One row of strings per entry and per missing component, for a table.

        Columns: component, layout, file, dtype, tensors, values, size, status.
        """
        rows = []
        for comp in COMPONENTS:
            entries = self.found(comp)
            for e in entries:
                rows.append({
                    "component": comp, "layout": e.layout, "file": _relative(e.path, self.root),
                    "dtype": e.dtype, "tensors": str(len(e.tensors)),
                    "values": format_si(e.num_values, ""), "size": format_si(e.size_bytes, "B"),
                    "status": "ok" if e.ok else e.issues[0]})
            if not entries:
                rows.append({"component": comp, "layout": "-", "file": "-", "dtype": "-",
                             "tensors": "-", "values": "-", "size": "-",
                             "status": f"not found: {_expected_names(comp, None)}"})
        return rows


def scan_weights_dir(path: str | Path) -> WeightsReport:
    """Find the weight files of every component in a directory, reading only headers.

    :param path: The directory.
    :output report: :class:`WeightsReport`; unreadable or inconsistent files appear as
        entries with ``issues`` rather than raising.
    :raises InputError: If ``path`` does not exist or is not a directory.
    """
    root = _check_dir(path)
    entries: list[FoundWeights] = []
    for comp in COMPONENTS:
        for name in _ORIGINAL_FILES[comp]:
            if (root / name).exists():
                entries.append(_scan_entry(comp, "original", root / name, [root / name]))
        sub = _DIFFUSERS_DIRS.get(comp)
        if sub is not None and (root / sub).is_dir():
            entries.extend(_scan_diffusers(comp, root / sub))
    return WeightsReport(root, tuple(entries))


NOT_READY = "needs the encoder, stage A and stage B lite or stage B"


def describe_weights_dir(path: str | Path | WeightsReport) -> str:
    """A text table of the weights in a directory (for ``semlink weights DIR``).

    :param path: The directory, or what :func:`scan_weights_dir` found in it.
    :output text: Multi-line str: one line per entry or missing component, then a verdict.
    :raises InputError: If ``path`` does not exist or is not a directory.
    """
    report = path if isinstance(path, WeightsReport) else scan_weights_dir(path)
    rows = report.rows()
    cols = ("component", "layout", "file", "dtype", "tensors", "values", "size", "status")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols[:-1]}
    lines = [f"Stable Cascade weights in {report.root}"]
    lines.append("  ".join(c.ljust(widths[c]) if c in widths else c for c in cols))
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) if c in widths else r[c] for c in cols))
    lines.append("semantic link: " + ("ready (encoder, stage A and a stage B found)"
                                      if report.semantic_link_ready else f"not ready: {NOT_READY}"))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers


def _check_dir(path: str | Path) -> Path:
    check_type(path, (str, Path), name="path")
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"{root}: weights directory does not exist.")
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (give the folder holding the weights).")
    return root


def _expected_names(component: str, layout: str | None) -> str:
    names = []
    if layout in (None, "original"):
        names += list(_ORIGINAL_FILES[component])
    if layout in (None, "diffusers") and component in _DIFFUSERS_DIRS:
        names.append(f"{_DIFFUSERS_DIRS[component]}/diffusion_pytorch_model*.safetensors")
    if not names:
        return f"none in the {layout} layout (the encoder exists only as effnet_encoder.safetensors)"
    return " or ".join(names)


def _scan_entry(component: str, layout: str, path: Path, files: list[Path],
                config: dict[str, Any] | None = None, issues: list[str] | None = None,
                key_files: Mapping[str, str] | None = None) -> FoundWeights:
    issues = list(issues or [])
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    size = 0
    for f in files:
        try:
            part = read_safetensors_header(f)
            size += f.stat().st_size
        except InputError as err:
            issues.append(str(err))
            continue
        if key_files is not None:
            wrong = [k for k, v in key_files.items() if v == f.name and k not in part]
            if wrong:
                issues.append(f"{f}: lacks {len(wrong)} key(s) its index lists: "
                              f"{_keys(wrong)}.")
        tensors.update(part)
    if tensors:
        issues += _signature_issues(component, layout, path, tensors)
    return FoundWeights(component, layout, path, tuple(files), tensors, size, config,
                        tuple(issues))


def _scan_diffusers(component: str, folder: Path) -> list[FoundWeights]:
    config, issues = None, []
    cfg_path = folder / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        issues.append(f"{cfg_path}: missing (a diffusers folder needs its config.json).")
    except (OSError, ValueError) as err:
        issues.append(f"{cfg_path}: not a readable JSON file ({type(err).__name__}).")
    entries = []
    for variant in _DIFFUSERS_VARIANTS:
        dot = f".{variant}" if variant else ""
        single = folder / f"diffusion_pytorch_model{dot}.safetensors"
        index = folder / f"diffusion_pytorch_model.safetensors.index{dot}.json"
        if index.exists():
            extra, files, key_files = list(issues), [], None
            try:
                key_files = dict(json.loads(index.read_text())["weight_map"])
                for name in index_file_names(index, key_files):  # none outside the folder
                    if (folder / name).is_file():
                        files.append(folder / name)
                    else:
                        extra.append(f"{folder / name}: missing (listed in {index.name}).")
            except InputError as err:
                extra.append(f"{err}.")
                files, key_files = [], None
            except (OSError, ValueError, KeyError, TypeError) as err:
                extra.append(f"{index}: not a valid index ({type(err).__name__}).")
            entries.append(_scan_entry(component, "diffusers", index, files, config, extra,
                                       key_files))
        elif single.exists():
            entries.append(_scan_entry(component, "diffusers", single, [single], config, issues))
    if not entries:
        entries.append(FoundWeights(component, "diffusers", folder, issues=(
            f"{folder}: no diffusion_pytorch_model*.safetensors or index json.",)))
    return entries


def _signature_issues(component: str, layout: str, path: Path,
                      tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> list[str]:
    kind = "stage_b" if component.startswith("stage_b") else component
    for key in _SIGNATURES.get((kind, layout), ()):
        if key not in tensors:
            return [f"{path}: no `{key}`: not {_DESCRIPTIONS[component]} weights in the "
                    f"{layout} layout."]
    if kind == "stage_b" and _WIDTH_KEY in tensors:
        width = tensors[_WIDTH_KEY][1][-1]
        other = next(c for c in _STAGE_B_WIDTH if c != component)
        if width == _STAGE_B_WIDTH[other]:
            return [f"{path}: holds {_DESCRIPTIONS[other]} weights, not "
                    f"{_DESCRIPTIONS[component]} (`{_WIDTH_KEY}` has {width} inputs)."]
    return []


def _keys(keys: list[str]) -> str:
    shown = ", ".join(f"`{k}`" for k in keys[:_SHOW])
    return shown + (", ..." if len(keys) > _SHOW else "")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
