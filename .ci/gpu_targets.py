"""Issue #21's speed targets read off the files `.ci/gpu-check` writes: one Markdown table row per
target, the measured value, the target and whether it is met, so a GPU session's numbers reach
docs/benchmarks.md without hand arithmetic.

    python .ci/gpu_targets.py DIR        # DIR: what .ci/gpu-check wrote (bench-*.json, ...)

A file or row that is missing (a step cut at its limit, out of memory) gives "not measured" in
its rows, never an error. The receiver targets take the fastest way measured for the
configuration the target names (eager, CUDA graphs, compiled): at batch 1 the 512 and 1024 px
rows of bench-lite.json (eager) and bench-graphs.json; per image at the best batch every row
with a batch above 1; the speed-up is SD 1.5 img2img's seconds per image in bench-lite.json
over the best batch-1 receiver at the same size.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["targets", "markdown"]


def _read(folder: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return {}


def _timed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if "seconds_per_image" in r]


def _how(row: dict[str, Any]) -> str:
    ways = [w for w in ("cuda_graphs", "compiled", "channels_last") if row.get(w)]
    return ", ".join(ways) or "eager"


def targets(folder: str | Path) -> list[dict[str, Any]]:
    """``[{"target", "value", "unit", "limit", "kind", "met", "source"}]``: one per target of
    issue #21, ``kind`` "max" (value <= limit) or "min" (value >= limit); value and met None
    where nothing was measured."""
    folder = Path(folder)
    lite, graphs, compiled = (_read(folder, f"bench-{name}.json")
                              for name in ("lite", "graphs", "compile"))
    receivers = [r for b in (lite, graphs, compiled) for r in _timed(b.get("receiver", []))]
    sd15 = {r["image_size"]: r for r in _timed(lite.get("sd15_img2img", []))
            if r["batch_size"] == 1}

    def best(rows):
        return min(rows, key=lambda r: r["seconds_per_image"], default=None)

    out = []

    def add(target, row_or_value, limit, kind, unit, source):
        if isinstance(row_or_value, dict):
            value, source = row_or_value["seconds_per_image"], f"{source} ({_how(row_or_value)})"
        else:
            value = row_or_value
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        out.append({"target": target, "value": value, "unit": unit, "limit": limit,
                    "kind": kind, "met": met, "source": source})

    batch1 = {size: best([r for r in receivers if r["image_size"] == size
                          and r["batch_size"] == 1]) for size in (512, 1024)}
    add("lite + stage A, 512 px, batch 1", batch1[512], 0.25, "max", "s/image", "bench")
    add("lite + stage A, 1024 px, batch 1", batch1[1024], 0.30, "max", "s/image", "bench")
    batched = best([r for r in receivers if r["image_size"] == 512 and r["batch_size"] > 1])
    add("lite + stage A, 512 px, best batch", batched, 0.05, "max", "s/image",
        "bench" if batched is None else f"bench, batch {batched['batch_size']}")
    for size, limit in ((512, 6.0), (1024, 10.0)):
        ratio = (sd15[size]["seconds_per_image"] / batch1[size]["seconds_per_image"]
                 if size in sd15 and batch1[size] else None)
        add(f"speed-up over SD 1.5 img2img, {size} px", ratio, limit, "min", "x",
            "bench-lite.json sd15_img2img / the batch-1 row above")
    sweep = _read(folder, "sweeps.json").get("paper-sweep", {})
    semantic = sweep.get("links", {}).get("stable-cascade", {})
    shape = (f"{semantic['images'] // sweep['snr_points']} images x {sweep['snr_points']} SNR"
             if semantic.get("images") and sweep.get("snr_points") else "100 images x 5 SNR")
    add(f"paper sweep, {shape}, end to end", sweep.get("wall_seconds"), 300.0, "max", "s",
        "sweeps.json")
    ldpc = [r["information_mbit_per_second"] for r in _read(folder, "ldpc.json").get(
        "ldpc_chain", []) if "information_mbit_per_second" in r]
    add("LDPC chain (n = 1536), information bits", max(ldpc, default=None), 100.0, "min",
        "Mbit/s", "ldpc.json")
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`targets` as a Markdown table."""
    lines = ["| target | measured | limit | met | from |", "| --- | ---: | ---: | --- | --- |"]
    for r in rows:
        sign = "<=" if r["kind"] == "max" else ">="
        value = "not measured" if r["value"] is None else f"{r['value']:.3g} {r['unit']}"
        met = {None: "-", True: "yes", False: "no"}[r["met"]]
        lines.append(f"| {r['target']} | {value} | {sign} {r['limit']:g} {r['unit']} | {met} "
                     f"| {r['source']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python .ci/gpu_targets.py DIR")
    print(markdown(targets(sys.argv[1])), end="")
