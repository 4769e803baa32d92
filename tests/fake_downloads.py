"""Stand-ins for the network in download tests: a huggingface_hub whose downloads copy from
local folders laid out as the Hugging Face repositories, and torch.hub's URL downloader writing
given bytes into a hub cache under a test folder, with the checksum semlink checks those bytes
against made to match the published file's prefix."""
from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path
from typing import Callable

import torch

__all__ = ["hub_functions", "fake_torch_hub"]


def hub_functions(remote: dict[str, Path], calls: list) -> tuple[Callable, Callable]:
    """``(hf_hub_download, snapshot_download)`` copying from ``remote[repo_id]``; each call is
    appended to ``calls`` as ``(repo_id, filename or allow_patterns, force_download)``."""

    def hf_hub_download(repo_id, filename, *, local_dir, force_download=False):
        calls.append((repo_id, filename, force_download))
        (Path(local_dir) / filename).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(remote[repo_id] / filename, Path(local_dir) / filename)
        return str(Path(local_dir) / filename)

    def snapshot_download(repo_id, *, local_dir, allow_patterns, ignore_patterns,
                          force_download=False):
        calls.append((repo_id, tuple(allow_patterns), force_download))
        for f in sorted(remote[repo_id].rglob("*")):
            name = f.relative_to(remote[repo_id]).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(name, p) for p in allow_patterns) and not any(
                    fnmatch.fnmatch(name, p) for p in ignore_patterns or ()):
                (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, Path(local_dir) / name)
        return str(local_dir)

    return hf_hub_download, snapshot_download


def fake_torch_hub(monkeypatch, home: Path, payload: bytes, digest_prefix: str) -> Path:
    """Point ``TORCH_HOME`` (and ``HOME``) into ``home``, make ``torch.hub.download_url_to_file``
    write ``payload``, and make a file holding ``payload`` hash to ``digest_prefix`` followed by
    zeros. ``torch.hub.download_url_to_file.urls`` records ``(url, hash_prefix)`` per call.

    :output checkpoints: The hub cache's ``checkpoints`` folder (not created).
    """
    import semlink.metrics._checksum as checksum
    import semlink.metrics.lpips as lpips

    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("HOME", str(home / "home"))
    assert Path(torch.hub.get_dir()) == home / "torch" / "hub"
    real = checksum.file_sha256

    def file_sha256(path):
        return digest_prefix.ljust(64, "0") if Path(path).read_bytes() == payload else real(path)

    for module in (checksum, lpips):  # lpips checks the backbone it loads with its own name
        monkeypatch.setattr(module, "file_sha256", file_sha256)
    urls = []

    def download_url_to_file(url, dst, hash_prefix=None, progress=True):
        urls.append((url, hash_prefix))
        Path(dst).write_bytes(payload)

    download_url_to_file.urls = urls
    monkeypatch.setattr(torch.hub, "download_url_to_file", download_url_to_file)
    return home / "torch" / "hub" / "checkpoints"
