"""Record the operations that would make the host wait for the device.

A CUDA program runs fast only while the host queues work without reading results back. The
reads that stall it are few and recognisable at the ATen level: a scalar read (``.item()``,
``float(t)``, ``bool(t)``, ``if t:``), ops whose output size depends on the data (``nonzero``,
boolean indexing, ``unique``, ``masked_select``, ``repeat_interleave`` with tensor repeats),
comparisons returning a Python bool (``equal``), and copies from an accelerator to the host.
:func:`record_host_syncs` watches every op dispatched while it is active, on any device, so a
CPU-only test proves that a hot path contains none of them; on CUDA the same check also sees the
device-to-host copies (which on a CPU-only machine are no-ops).
"""
from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["HostSync", "record_host_syncs"]

# Overload packets whose every call reads data back to the host.
_ALWAYS_SYNC = {
    "_local_scalar_dense", "nonzero", "masked_select", "_unique", "_unique2",
    "unique_consecutive", "unique_dim", "equal", "is_nonzero", "allclose",
}


class HostSync(tuple):
    """``(op name, 'file:line' of the innermost frame outside torch)``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{self[0]} at {self[1]}"


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        path = frame.filename.replace("\\", "/")
        if "/torch/" not in path and "/torchmetrics/" not in path and not path.endswith(
                "host_sync.py"):
            return f"{'/'.join(path.split('/')[-2:])}:{frame.lineno}"
    return "?"


def _tensors(args, kwargs) -> list[torch.Tensor]:
    flat = list(args) + list(kwargs.values())
    out = []
    for a in flat:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(t for t in a if isinstance(t, torch.Tensor))
    return out


def _syncs(func, args, kwargs) -> bool:
    name = func.overloadpacket.__name__
    if name in _ALWAYS_SYNC:
        return True
    if name == "repeat_interleave":  # repeats as a tensor: the output size is data
        return func._overloadname in ("Tensor", "self_Tensor") and kwargs.get(
            "output_size") is None
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
        return any(t.dtype == torch.bool for t in _tensors(args[1:2], {}))
    if name in ("_to_copy", "copy_"):
        tensors = _tensors(args, kwargs)
        src = tensors[-1] if name == "copy_" else tensors[0]
        dst = (tensors[0].device if name == "copy_"
               else torch.device(kwargs.get("device") or src.device))
        return src.device.type != "cpu" and dst.type == "cpu"
    return False


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[HostSync] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _syncs(func, args, kwargs):
            self.syncs.append(HostSync((func.overloadpacket.__name__, _caller())))
        return func(*args, **kwargs)


@contextlib.contextmanager
def record_host_syncs() -> Iterator[list[HostSync]]:
    """Context manager yielding the list of host syncs made inside it (filled on exit too)."""
    recorder = _Recorder()
    with recorder:
        yield recorder.syncs
