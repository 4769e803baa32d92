"""Fetching the parts :func:`semlink.models.downloads.plan_downloads` lists: Hugging Face files
with ``huggingface_hub`` (an optional dependency: ``pip install huggingface_hub``), the LPIPS
AlexNet file with ``torch.hub.download_url_to_file`` (which checks its SHA-256 prefix). Every
failure (no package, no network, no access) is one line saying why and what to do.
"""
from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from semlink.errors import InputError
from semlink.models.downloads import MISSING, STABLE_CASCADE_REPO_ID, Download, plan_downloads

__all__ = ["fetch", "download_weights"]

_GATED = frozenset({STABLE_CASCADE_REPO_ID})
_INSTALL_HUB = "pip install huggingface_hub"
# Class names, so that no hub or HTTP package is imported to tell them apart.
_UNREACHABLE = frozenset({"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError",
                          "ConnectError", "ConnectTimeout", "Timeout", "TimeoutError",
                          "ReadTimeout", "ProxyError", "URLError", "gaierror",
                          "ConnectionRefusedError", "RemoteDisconnected"})


def fetch(downloads: Sequence[Download], *, progress: bool = True) -> list[str]:
    """Download every part of ``downloads`` that has an ``issue``, replacing damaged files.

    Hugging Face parts need ``huggingface_hub`` (its install command when missing) and, for
    Stable Cascade, the licence accepted and ``hf auth login``; after the first failure no
    further Hugging Face part is tried (no network, no access). The AlexNet file comes
    through ``torch.hub.download_url_to_file``, which checks its SHA-256 prefix.

    :param downloads: What :func:`plan_downloads` returned.
    :param progress: Show the AlexNet download's progress bar on stderr.
    :output failures: One line per failed source, saying why and what to do; empty when all
        downloads succeeded (check the parts again with :func:`plan_downloads`).
    """
    todo = [d for d in downloads if d.issue is not None]
    failures = _fetch_hub([d for d in todo if not d.is_url])
    for d in todo:
        if d.is_url:
            failures += _fetch_url(d, progress)
    return failures


def _fetch_hub(todo: list[Download]) -> list[str]:
    if not todo:
        return []
    try:
        import huggingface_hub
    except ImportError:
        return [f"downloading from huggingface.co needs huggingface_hub: {_INSTALL_HUB}"]
    groups: dict[tuple[str, Path], list[Download]] = {}
    for d in todo:
        groups.setdefault((d.source, d.dest), []).append(d)
    # The hub imports its modules on first use, and its logging module then sets the level of
    # its logger: take the functions first, then silence the retries' warnings (one each:
    # the failure is one line).
    functions = huggingface_hub.hf_hub_download, huggingface_hub.snapshot_download
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)
    try:
        for (repo, root), parts in groups.items():
            failure = _fetch_repo(*functions, repo, root, parts)
            if failure is not None:
                return [failure]
    finally:
        hub_log.setLevel(level)
    return []


def _fetch_repo(hf_hub_download, snapshot_download, repo: str, root: Path,
                parts: list[Download]) -> str | None:
    """Single files one by one, the rest in one ``snapshot_download``; None or why not."""
    if root.exists() and not root.is_dir():
        return f"could not download into {root}: not a directory."
    created = not root.exists()
    singles = [d for d in parts if len(d.files) == 1 and "*" not in d.files[0]]
    rest = [d for d in parts if d not in singles]
    what = singles[0].files[0] if singles else ""
    try:
        root.mkdir(parents=True, exist_ok=True)
        for d in singles:
            what = d.files[0]
            hf_hub_download(repo, what, local_dir=root, **_force(d))
        if rest:
            folders = dict.fromkeys(f.split("/", 1)[0] + "/" if "/" in f else f
                                    for d in rest for f in d.files)
            what = " and ".join(folders)
            exclude = list(dict.fromkeys(g for d in rest for g in d.exclude))
            snapshot_download(repo, local_dir=root,
                              allow_patterns=[f for d in rest for f in d.files],
                              ignore_patterns=exclude or None,
                              **(_force(rest[0]) if any(d.issue != MISSING for d in rest)
                                 else {}))
    except Exception as err:  # noqa: BLE001 - any hub/network failure is one line
        if created and root.is_dir() and all(p.is_relative_to(root / ".cache")
                                             for p in root.rglob("*") if p.is_file()):
            shutil.rmtree(root)  # leave no folder that looks like a download (the hub's
            # .cache/ holds only its bookkeeping of the failed attempt)
        return (f"could not download {what} from {repo} into {root}: "
                f"{_failure(err, 'huggingface.co', gated=repo in _GATED)}")
    return None


def _force(d: Download) -> dict[str, bool]:
    """Re-download a damaged file (the hub may otherwise trust its local metadata)."""
    return {} if d.issue == MISSING else {"force_download": True}


def _fetch_url(d: Download, progress: bool) -> list[str]:
    import torch

    prefix = d.dest.name.rsplit("-", 1)[1].split(".")[0]
    try:
        d.dest.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(d.source, str(d.dest), hash_prefix=prefix,
                                       progress=progress)
    except Exception as err:  # noqa: BLE001 - any network/disk failure is one line
        return [f"could not download {d.source} to {d.dest}: "
                f"{_failure(err, d.source.split('/')[2])}"]
    return []


def _failure(err: BaseException, host: str, *, gated: bool = False) -> str:
    """Why a download from ``host`` failed and what to do, in one line."""
    detail = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
    if type(err).__name__ == "GatedRepoError":
        return (f"access refused ({detail}). The repository is gated: accept its licence on "
                "huggingface.co and run `hf auth login`.")
    if type(err).__name__ in _UNREACHABLE:
        return (f"{host} cannot be reached from here ({detail}). Download the files "
                "on a machine with network access and copy them.")
    if gated:
        return (f"{detail}. The repository is gated: accept its licence on huggingface.co and "
                "run `hf auth login`, or download the files by hand.")
    return f"{detail}. Download the files by hand."


def download_weights(dest: str | Path, variant: str = "lite", *, layout: str = "original",
                     bf16: bool = False, repo_id: str = STABLE_CASCADE_REPO_ID):
    """Download the encoder, stage A and stage B from Hugging Face into ``dest`` (files
    already there and usable are kept).

    Needs ``huggingface_hub`` (``pip install huggingface_hub``), network access and, as the
    repository is gated, its licence accepted on huggingface.co and ``hf auth login``.
    Any failure (no package, no network, no access) becomes one :class:`InputError`.

    :param dest: Directory; created if missing.
    :param variant: One of :data:`VARIANTS`: stage B lite, full or both.
    :param layout: One of :data:`DOWNLOAD_LAYOUTS`: ``"original"`` (root files),
        ``"diffusers"`` (``vqgan/`` and ``decoder[_lite]/``) or both; the encoder is always
        ``effnet_encoder.safetensors``.
    :param bf16: Download the bf16 stage B (half the size) instead of float32.
    :param repo_id: Hugging Face repository.
    :output report: :func:`~semlink.models.weight_files.scan_weights_dir` of ``dest`` after
        the download (a :class:`~semlink.models.weight_files.WeightsReport`).
    :raises InputError: If the download fails or ``dest`` is not a directory.
    """
    from semlink.channels._checks import check_type
    from semlink.models.weight_files import scan_weights_dir

    check_type(bf16, bool, name="bf16")
    check_type(repo_id, str, name="repo_id")
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: not a directory.")
    parts = plan_downloads(root, variant=variant, layout=layout, bf16=bf16, lpips=False,
                           repo_id=repo_id)
    failures = _fetch_hub([d for d in parts if d.issue is not None])
    if failures:
        raise InputError(failures[0])
    return scan_weights_dir(root)
