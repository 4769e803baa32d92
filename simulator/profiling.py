"""Where a profiled call's time went: a summary of a torch profiler Chrome trace.

``semlink bench --profile DIR`` writes one trace per measurement
(:func:`semlink.bench.profile_trace`) and puts this summary beside it in the JSON, so a GPU
session states from the numbers whether a call is bound by launches and host work or by
arithmetic, and whether it synchronises with the host, without opening the trace:

* ``wall_ms``: from the first to the last event of the trace (the profiled call, and the one
  device synchronisation that ends the measurement);
* ``kernels``, ``kernel_ms``: device kernels and their summed durations; ``gpu_busy_ms``: the
  time at least one kernel or copy runs (overlapping ones counted once); ``gpu_busy_fraction``:
  that over ``wall_ms``; far below 1 at batch 1 means the device waits for the host;
* ``launches``: kernel and CUDA-graph launches by the host (``cudaLaunchKernel``,
  ``cuLaunchKernel``, ``cudaGraphLaunch``, ...); a replayed graph is one launch for many
  kernels;
* ``host_syncs``: calls in which the host waits for the device (``cudaStreamSynchronize``,
  ``cudaDeviceSynchronize``, ``cudaEventSynchronize``); the measurement's own final
  synchronisation is one of them, so a loop without host syncs shows 1;
* ``device_to_host_copies``: device-to-host copies (a ``.item()``, a ``.cpu()``): each also
  waits for the device.

On the CPU the trace has no device events: the device fields are 0 (``gpu_busy_fraction``
None).
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["LAUNCH_CALLS", "SYNC_CALLS", "summarize_trace", "summarize_trace_events"]

#: Host calls that launch work on the device (CUDA runtime and driver names).
LAUNCH_CALLS = frozenset({"cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel",
                          "cuLaunchKernelEx", "cudaLaunchCooperativeKernel", "cudaGraphLaunch",
                          "cuGraphLaunch"})
#: Host calls that block until the device has finished work.
SYNC_CALLS = frozenset({"cudaStreamSynchronize", "cudaDeviceSynchronize",
                        "cudaEventSynchronize", "cuStreamSynchronize", "cuCtxSynchronize",
                        "cuEventSynchronize"})
_DEVICE_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})


def summarize_trace_events(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary (module docstring) of a Chrome trace's ``traceEvents``: complete events
    (``"ph": "X"``, ``ts`` and ``dur`` in microseconds); metadata and flow events are skipped.

    >>> summarize_trace_events([
    ...     {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 0, "dur": 5},
    ...     {"ph": "X", "cat": "kernel", "name": "gemm", "ts": 10, "dur": 30},
    ...     {"ph": "X", "cat": "cuda_runtime", "name": "cudaDeviceSynchronize", "ts": 6,
    ...      "dur": 34}])["gpu_busy_fraction"]
    0.75
    """
    spans, busy = [], []
    counts = {"kernels": 0, "launches": 0, "host_syncs": 0, "device_to_host_copies": 0}
    kernel_us = 0.0
    for event in events:
        if event.get("ph") != "X" or "ts" not in event:
            continue
        start, duration = float(event["ts"]), float(event.get("dur", 0.0))
        spans.append((start, start + duration))
        name, category = str(event.get("name", "")), event.get("cat")
        if category in _DEVICE_CATEGORIES:
            busy.append((start, start + duration))
            if category == "kernel":
                counts["kernels"] += 1
                kernel_us += duration
            elif "DtoH" in name:
                counts["device_to_host_copies"] += 1
        elif name in LAUNCH_CALLS:
            counts["launches"] += 1
        elif name in SYNC_CALLS:
            counts["host_syncs"] += 1
    wall_us = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    busy_us = _union_length(busy)
    return {"wall_ms": wall_us / 1e3, **counts, "kernel_ms": kernel_us / 1e3,
            "gpu_busy_ms": busy_us / 1e3,
            "gpu_busy_fraction": round(busy_us / wall_us, 4) if busy and wall_us > 0 else None}


def summarize_trace(path: str | Path) -> dict[str, Any]:
    """:func:`summarize_trace_events` of a Chrome trace file (``.json``, or ``.json.gz``).

    :raises OSError: If the file cannot be read.
    :raises ValueError: If it is not a Chrome trace (JSON with ``traceEvents``).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        trace = json.load(f)
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        raise ValueError(f"{path}: not a Chrome trace (no traceEvents list)")
    return summarize_trace_events(trace["traceEvents"])


def _union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by ``intervals`` (overlaps counted once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total
