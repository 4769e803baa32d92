"""Every file the paper reproduction downloads: where it comes from, where it goes, whether it
is there, and fetching what is not (``semlink weights DIR --download``).

* Stable Cascade, from Hugging Face ``stabilityai/stable-cascade`` (gated: accept its licence
  and ``hf auth login``) into the weights directory, in either or both layouts of
  :mod:`semlink.models.weight_files`, stage B lite and/or full;
* the LPIPS AlexNet backbone, torchvision's ``alexnet-owt-7be5be79.pth`` from
  ``download.pytorch.org``, into torch's hub cache (``torch.hub.get_dir()/checkpoints/``, where
  :mod:`semlink.metrics.lpips` and the ``lpips`` package look);
* on request, Stable Diffusion 1.5 in diffusers layout (``unet/``, ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``, ``model_index.json``; safetensors only, fp16 or float32) for
  the img2img-sc link (:mod:`semlink.models.sd15_files`), and the BLIP captioner
  ``Salesforce/blip-image-captioning-large`` (:class:`semlink.links.captions.BlipCaptioner`).

:func:`plan_downloads` lists the parts (:class:`Download`), each with its current problem (None
when present and usable: a file is never fetched twice); :func:`semlink.models.fetching.fetch`
downloads the parts that have one; :meth:`Download.lines` then says, one line per file, where
to get what is still missing and where to put it. Importing this module imports only the standard library (the
CLI's ``--help`` lists the files from it); checking and fetching import the rest on use.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semlink.errors import InputError
from semlink.models.sd15_files import SD15_REPO_ID

__all__ = [
    "STABLE_CASCADE_REPO_ID",
    "BLIP_REPO_ID",
    "ALEXNET_FILE",
    "ALEXNET_URL",
    "VARIANTS",
    "DOWNLOAD_LAYOUTS",
    "SD15_VARIANTS",
    "BLIP_FILES",
    "MISSING",
    "Download",
    "stable_cascade_files",
    "sd15_files",
    "plan_downloads",
    "describe_extras",
    "download_listing",
]

STABLE_CASCADE_REPO_ID = "stabilityai/stable-cascade"
"""Hugging Face repository of the published Stable Cascade weights (gated)."""

BLIP_REPO_ID = "Salesforce/blip-image-captioning-large"
"""Hugging Face repository of the BLIP captioner the authors used."""

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
"""torchvision's ImageNet AlexNet checkpoint (LPIPS-alex's backbone); the 8 hex digits start
its SHA-256."""

ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
"""Where torchvision downloads :data:`ALEXNET_FILE` from."""

VARIANTS: tuple[str, ...] = ("lite", "full", "all")
"""Stage B variants to download: lite, full, or both."""

DOWNLOAD_LAYOUTS: tuple[str, ...] = ("original", "diffusers", "all")
"""Stable Cascade layouts to download: Stability AI's files, diffusers folders, or both."""

SD15_VARIANTS: tuple[str, ...] = ("fp16", "fp32")
"""Stable Diffusion 1.5 weight files to download: ``*.fp16.safetensors`` or float32."""

BLIP_FILES: tuple[str, ...] = ("config.json", "preprocessor_config.json", "model.safetensors",
                               "tokenizer.json", "tokenizer_config.json",
                               "special_tokens_map.json", "vocab.txt")
"""Files of the BLIP captioner folder (``BlipForConditionalGeneration`` + ``BlipProcessor``)."""

MISSING = "missing"
""":attr:`Download.issue` of a part none of whose files is there."""

_STAGE_B = {"lite": ("stage_b_lite",), "full": ("stage_b",), "all": ("stage_b_lite", "stage_b")}
_LAYOUTS = {"original": ("original",), "diffusers": ("diffusers",),
            "all": ("original", "diffusers")}
_DIFFUSERS_DIRS = {"stage_a": "vqgan", "stage_b_lite": "decoder_lite", "stage_b": "decoder"}
_TITLES = {"encoder": "semantic encoder", "stage_a": "stage A", "stage_b_lite": "stage B lite",
           "stage_b": "stage B"}
_SD15_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_HUB = "https://huggingface.co"


@dataclass(frozen=True)
class Download:
    """One part to download: files of one source that go into one place.

    :param part: What it is, for messages (``"Stable Cascade stage A (diffusers)"``).
    :param source: A Hugging Face repository id, or the URL of one file.
    :param files: Paths in the repository (``*`` globs allowed), saved under the same paths
        below ``dest``; empty for a URL.
    :param dest: The local folder for a repository's files; the file itself for a URL.
    :param exclude: Globs left out of a repository's files (``*bf16*``).
    :param issue: None when the part is present and usable; :data:`MISSING`; else one line
        naming the damaged file (a truncated safetensors file, a wrong checksum).
    """

    part: str
    source: str
    files: tuple[str, ...]
    dest: Path
    exclude: tuple[str, ...] = ()
    issue: str | None = MISSING

    @property
    def is_url(self) -> bool:
        """True when ``source`` is a URL (one file), not a Hugging Face repository."""
        return "://" in self.source

    def sources(self) -> list[tuple[str, Path]]:
        """``(where to get it, where to put it)`` per file; a glob gives its folder's page."""
        if self.is_url:
            return [(self.source, self.dest)]
        out = []
        for name in self.files:
            if "*" in name:
                folder, pattern = name.rsplit("/", 1)
                skip = f", not {' or '.join(self.exclude)}" if self.exclude else ""
                out.append((f"{_HUB}/{self.source}/tree/main/{folder} ({pattern}{skip})",
                            self.dest / folder))
            else:
                out.append((f"{_HUB}/{self.source}/resolve/main/{name}", self.dest / name))
        return out

    def lines(self) -> list[str]:
        """Nothing when usable; else the problem (unless :data:`MISSING`) and one line
        ``part: URL -> local path`` per file to fetch (a present file only if named in the
        problem, or when its name is a glob)."""
        if self.issue is None:
            return []
        out = [] if self.issue == MISSING else [f"{self.issue} Fetch it again (`semlink weights "
                                                "DIR --download`) or by hand:"]
        for url, local in self.sources():
            if "*" in url or not local.is_file() or str(local) in self.issue:
                out.append(f"{self.part}: {url} -> {local}")
        return out


# ----------------------------------------------------------------------------- what to fetch


def stable_cascade_files(variant: str = "lite", layout: str = "original",
                         bf16: bool = False) -> list[tuple[str, str, tuple[str, ...]]]:
    """The Stable Cascade files to download, as ``(component, layout, repository paths)``.

    The encoder exists only as ``effnet_encoder.safetensors``. Diffusers stage B files are
    globs (float32 files may be sharded); with ``bf16`` the bf16 files instead.

    :param variant: One of :data:`VARIANTS`.
    :param layout: One of :data:`DOWNLOAD_LAYOUTS`.
    :param bf16: Stage B in bfloat16 (half the size) instead of float32.

    >>> [files for _, _, files in stable_cascade_files()]
    [('effnet_encoder.safetensors',), ('stage_a.safetensors',), ('stage_b_lite.safetensors',)]
    """
    _check_choice(variant, VARIANTS, "variant")
    _check_choice(layout, DOWNLOAD_LAYOUTS, "layout")
    out = [("encoder", "original", ("effnet_encoder.safetensors",))]
    for lay in _LAYOUTS[layout]:
        for comp in ("stage_a", *_STAGE_B[variant]):
            if lay == "original":
                suffix = "_bf16" if bf16 and comp != "stage_a" else ""
                out.append((comp, lay, (f"{comp}{suffix}.safetensors",)))
            else:
                sub = _DIFFUSERS_DIRS[comp]
                stem = "diffusion_pytorch_model"
                weights = ((f"{stem}.safetensors",) if comp == "stage_a" else
                           (f"{stem}*bf16*.safetensors", f"{stem}.safetensors.index.bf16.json")
                           if bf16 else
                           (f"{stem}*.safetensors", f"{stem}.safetensors.index*.json"))
                out.append((comp, lay, (f"{sub}/config.json", *(f"{sub}/{w}" for w in weights))))
    return out


def sd15_files(variant: str = "fp16") -> dict[str, tuple[str, ...]]:
    """Stable Diffusion 1.5 files to download (diffusers layout, safetensors only), per part.

    :param variant: One of :data:`SD15_VARIANTS`.

    >>> sd15_files("fp16")["unet"]
    ('unet/config.json', 'unet/diffusion_pytorch_model.fp16.safetensors')
    """
    _check_choice(variant, SD15_VARIANTS, "sd15_variant")
    dot = ".fp16" if variant == "fp16" else ""
    return {"model_index.json": ("model_index.json",),
            "unet": ("unet/config.json", f"unet/diffusion_pytorch_model{dot}.safetensors"),
            "vae": ("vae/config.json", f"vae/diffusion_pytorch_model{dot}.safetensors"),
            "text_encoder": ("text_encoder/config.json", f"text_encoder/model{dot}.safetensors"),
            "tokenizer": tuple(f"tokenizer/{f}" for f in (
                "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")),
            "scheduler": ("scheduler/scheduler_config.json",)}


def plan_downloads(dest: str | Path, *, variant: str = "lite", layout: str = "original",
                   bf16: bool = False, lpips: bool = True, sd15: str | Path | None = None,
                   sd15_variant: str = "fp16", blip: str | Path | None = None,
                   repo_id: str = STABLE_CASCADE_REPO_ID) -> list[Download]:
    """The parts to download and, for each, what is wrong with it now (headers only).

    :param dest: The Stable Cascade weights directory (need not exist).
    :param variant: One of :data:`VARIANTS`.
    :param layout: One of :data:`DOWNLOAD_LAYOUTS`.
    :param bf16: Stage B in bfloat16 instead of float32.
    :param lpips: Include the LPIPS AlexNet backbone.
    :param sd15: Stable Diffusion 1.5 folder; None = leave SD 1.5 out.
    :param sd15_variant: One of :data:`SD15_VARIANTS`.
    :param blip: BLIP folder; None = leave BLIP out.
    :param repo_id: Stable Cascade's Hugging Face repository.
    :output downloads: Stable Cascade parts, then LPIPS, SD 1.5, BLIP; ``issue`` None for
        those present and usable.
    """
    root = Path(dest).expanduser()
    out = _stable_cascade(root, variant, layout, bf16, repo_id)
    if lpips:
        out.append(_lpips_backbone())
    if sd15 is not None:
        out += _sd15(Path(sd15).expanduser(), sd15_variant)
    if blip is not None:
        out.append(_blip(Path(blip).expanduser()))
    return out


def _stable_cascade(root: Path, variant: str, layout: str, bf16: bool,
                    repo_id: str) -> list[Download]:
    from semlink.models.weight_files import scan_weights_dir

    report = scan_weights_dir(root) if root.is_dir() else None
    exclude = () if bf16 else ("*bf16*", "*fp16*")
    out = []
    for comp, lay, files in stable_cascade_files(variant, layout, bf16):
        part = f"Stable Cascade {_TITLES[comp]}" + (f" ({lay})" if comp != "encoder" else "")
        entries = [] if report is None else [e for e in report.found(comp) if e.layout == lay]
        issue = (None if any(e.ok for e in entries) else entries[0].issues[0] if entries
                 else MISSING)
        out.append(Download(part, repo_id, files, root, exclude if lay == "diffusers" else (),
                            issue))
    return out


def _lpips_backbone() -> Download:
    import torch

    from semlink.metrics.lpips import BACKBONE_FILES, find_lpips_backbone

    assert BACKBONE_FILES["alex"] == ALEXNET_FILE  # one file, named in two modules
    found = find_lpips_backbone("alex")
    dest = found or Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    return Download("LPIPS AlexNet backbone", ALEXNET_URL, (), dest,
                    issue=MISSING if found is None else _checksum_issue(found))


def _checksum_issue(path: Path) -> str | None:
    from semlink.metrics._checksum import file_sha256

    prefix = ALEXNET_FILE.rsplit("-", 1)[1].split(".")[0]
    digest = file_sha256(path)
    if digest.startswith(prefix):
        return None
    return (f"{path}: SHA-256 {digest[:16]}... must start with {prefix}: a truncated or "
            "damaged download.")


def _sd15(root: Path, variant: str) -> list[Download]:
    from semlink.models.sd15_files import scan_sd15_dir

    report = scan_sd15_dir(root) if root.is_dir() else None
    out = []
    for part, files in sd15_files(variant).items():
        if report is None:
            issue = MISSING
        elif part in _SD15_PARTS:
            issues = report[part].issues
            issue = issues[0] if issues else None
        else:
            issue = None if (root / files[0]).is_file() else MISSING
        title = f"SD 1.5 {part}" + ("/" if part in _SD15_PARTS else "")
        out.append(Download(title, SD15_REPO_ID, files, root, issue=issue))
    return out


def _blip(root: Path) -> Download:
    from semlink.models.safetensors_headers import read_safetensors_header

    issue = None if root.is_dir() else MISSING
    weights = root / "model.safetensors"
    if issue is None:
        others = [f for f in ("model.safetensors.index.json", "pytorch_model.bin")
                  if (root / f).is_file()]
        for name in BLIP_FILES:
            if not (root / name).is_file() and not (name == weights.name and others):
                issue = f"{root / name}: missing (the BLIP captioner needs it)."
                break
    if issue is None and weights.is_file():
        try:
            read_safetensors_header(weights)
        except InputError as err:
            issue = str(err)
    return Download("BLIP captioner", BLIP_REPO_ID, BLIP_FILES, root, issue=issue)


# ----------------------------------------------------------------------------- reports


def describe_extras(downloads: Sequence[Download], *, sd15: Path | None = None,
                    blip: Path | None = None) -> str:
    """Lines on what Stable Cascade's table does not show (for ``semlink weights DIR``): the
    LPIPS backbone and heads, and the SD 1.5 and BLIP folders (those not in ``downloads``
    are optional: one line each).

    :param downloads: What :func:`plan_downloads` returned (with ``lpips=True``).
    :param sd15: The SD 1.5 folder to mention when ``downloads`` leaves it out.
    :param blip: The BLIP folder to mention when ``downloads`` leaves it out.
    :output text: Multi-line str.
    """
    from semlink.metrics.lpips import lpips_heads_path
    from semlink.models.sd15_files import describe_sd15_dir

    lines = []
    for d in downloads:
        if d.is_url:
            lines.append(f"{d.part}: " + (
                f"ok, {d.dest}" if d.issue is None else
                f"missing; `semlink weights DIR --download` puts it in {d.dest}"
                if d.issue == MISSING else d.issue))
    try:
        lines.append(f"LPIPS heads: ok, {lpips_heads_path('alex').parent}")
    except InputError as err:
        lines.append(f"LPIPS heads: {err}")
    sd15_parts = [d for d in downloads if d.source == SD15_REPO_ID]
    folder = sd15_parts[0].dest if sd15_parts else sd15
    if folder is not None and folder.is_dir():
        lines.append(describe_sd15_dir(folder))
    elif folder is not None:
        lines.append(f"SD 1.5 (img2img-sc link{'' if sd15_parts else ', optional'}): "
                     f"{folder}: not found; `semlink weights DIR --download --sd15` fetches it")
    blip_part = next((d for d in downloads if d.source == BLIP_REPO_ID), None)
    optional = "" if blip_part is not None else ", optional"
    if blip_part is None and blip is not None:
        blip_part = _blip(blip)
    if blip_part is not None:
        state = ("ok" if blip_part.issue is None else "not found; `semlink weights DIR "
                 "--download --blip` fetches it" if blip_part.issue == MISSING
                 else blip_part.issue)
        lines.append(f"BLIP captioner (img2img-sc link{optional}): {blip_part.dest}: {state}")
    return "\n".join(lines)


def download_listing(width: int = 79) -> str:
    """Every file ``--download`` can fetch and where it goes, for ``semlink weights --help``."""
    import textwrap

    def wrap(head: str, names: Sequence[str], indent: str = "    ") -> list[str]:
        return textwrap.wrap(f"{head}{', '.join(names)}", width, initial_indent=indent,
                             subsequent_indent=indent + "  ", break_on_hyphens=False,
                             break_long_words=False)

    def sc_files(variant: str, layout: str, bf16: bool = False) -> list[str]:
        return [f for _, _, files in stable_cascade_files(variant, layout, bf16) for f in files]

    lines = ["Downloads (--download; from huggingface.co with huggingface_hub):"]
    lines += wrap("", [f"Stable Cascade ({_HUB}/{STABLE_CASCADE_REPO_ID}; gated: accept its "
                       "licence, `hf auth login`) into DIRECTORY by --layout (original, "
                       "diffusers, all) and --variant (lite, full, all); default --layout "
                       "original --variant lite:"], "  ")
    for layout in ("original", "diffusers"):
        lite, both = sc_files("lite", layout), sc_files("all", layout)
        lines += wrap(f"{layout}: ", lite)
        lines += wrap("  full: ", [f for f in both if f not in lite])
        lines += wrap("  with --bf16: ", [f for f in sc_files("all", layout, True)
                                          if f not in both])
    lines += wrap("", [f"LPIPS AlexNet backbone ({ALEXNET_URL}) into torch.hub.get_dir()/"
                       "checkpoints/ ($TORCH_HOME/hub/checkpoints/, by default "
                       "~/.cache/torch/hub/checkpoints/):"], "  ")
    lines += wrap("", [ALEXNET_FILE])
    lines += wrap("", [f"--sd15 [DIR]: Stable Diffusion 1.5 ({_HUB}/{SD15_REPO_ID}) into DIR "
                       "(default DIRECTORY/sd15); --sd15-variant fp16 (default) or fp32:"], "  ")
    for variant in SD15_VARIANTS:
        lines += wrap(f"{variant}: ", [f for files in sd15_files(variant).values()
                                       for f in files])
    lines += wrap("", [f"--blip [DIR]: BLIP captioner ({_HUB}/{BLIP_REPO_ID}) into DIR "
                       "(default DIRECTORY/blip):"], "  ")
    lines += wrap("", BLIP_FILES)
    lines += wrap("", ["Files already there and usable are kept; a truncated or damaged one "
                       "is fetched again. Without huggingface_hub or the network, every "
                       "missing file is listed with where to put it (exit code 2)."], "")
    return "\n".join(lines)


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}.")

