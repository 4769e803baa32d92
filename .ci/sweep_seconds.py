"""Seconds of the sweeps a GPU check ran, per link, from their results files, as one JSON file.

    python .ci/sweep_seconds.py OUT.json NAME=RESULTS.h5:WALL_SECONDS ...

Each run: the device and scenario hash the file records, its wall time (the `semlink run`
command's, model loading included, as the caller measured it), and per link the tasks, images
and task seconds (the ``seconds`` of the ``points`` rows: one batch through the link at one SNR
point, metrics included) summed over the SNR points, with images per second and
``stage_seconds`` (:func:`semlink.stage_times.stage_totals`: load, transmit, channel, receive,
metrics, write, other, total); ``tasks_seconds`` is their sum over the links. A results file
that is missing (a run cut short before its first task) gives ``"error"`` instead. Rewrites
OUT.json whole.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def summarize_run(path: str, wall_seconds: float) -> dict[str, Any]:
    """One run's entry of the JSON (see the module docstring)."""
    from semlink.errors import InputError
    from semlink.results import ResultsStore
    from semlink.stage_times import stage_totals

    try:
        store = ResultsStore.open(path)
    except InputError as err:
        return {"results": path, "wall_seconds": wall_seconds, "error": str(err)}
    links: dict[str, dict[str, Any]] = defaultdict(lambda: {"tasks": 0, "images": 0,
                                                            "seconds": 0.0})
    snr = set()
    for row in store.rows("points"):
        if row.get("kind") in ("reference", "fid"):
            continue
        link = links[str(row["link"])]
        link["tasks"] += 1
        link["images"] += int(row.get("images", 0))
        link["seconds"] += float(row["seconds"])
        snr.add(float(row["snr_db"]))
    stages = stage_totals(store.table("points"))
    for name, link in links.items():
        link["images_per_second"] = (link["images"] / link["seconds"] if link["seconds"] > 0
                                     else None)
        if name in stages:  # where the seconds went (files written before stage times: none)
            link["stage_seconds"] = {k: v for k, v in stages[name].items() if k != "tasks"}
    return {"results": path, "wall_seconds": wall_seconds, "device": store.attrs.get("device"),
            "scenario_hash": store.attrs.get("scenario_hash"), "snr_points": len(snr),
            "tasks_seconds": sum(link["seconds"] for link in links.values()),
            "links": dict(links)}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, runs = Path(argv[0]), {}
    for arg in argv[1:]:
        name, _, rest = arg.partition("=")
        path, _, wall = rest.rpartition(":")
        if not (name and path and wall):
            print(f"sweep_seconds.py: {arg!r}: expected NAME=RESULTS.h5:WALL_SECONDS",
                  file=sys.stderr)
            return 2
        runs[name] = summarize_run(path, float(wall))
    out.write_text(json.dumps(runs, indent=1) + "\n")
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
