"""Make the dimensionality table of docs/links.md (the paper's Table 1): what every link sends
per image at 512 and 1024 px.

    .venv/bin/python docs/tables/dimensionality_table.py

Each row is a link section of ``EXAMPLES`` in a scenario of that image size, asked what it sends
as ``semlink info`` asks (simulator/dimensionality.py: the config's own row where it gives one
without models, else the built link's ``dimensionality()``), with the semantic link's channel uses
as the classical links' bandwidth. A link type that is not registered in the schema yet is left
out, and a link that must be built to answer and cannot be here (its weights missing) gets no
row; both are named below the table. The paper's other two semantic schemes close the table as
reference rows, not simulated. Prints Markdown; no data sets needed.
"""
from __future__ import annotations

import time
import warnings

import yaml
from _scenario_table import ROOT

from semlink.dimensionality import scenario_rows
from semlink.errors import InputError
from semlink.scenario import LINK_TYPES, parse_scenario

SIZES = (512, 1024)
MATCHED = {"match": "semantic"}
#: (label, link section); the first one is named ``semantic`` and sets the others' bandwidth.
EXAMPLES = [
    ("semantic, analog (the paper)", {"type": "semantic", "preset": "stable-cascade",
                                      "weights": "not-needed"}),
    ("semantic, analog, resize_factor 1.0 (the paper's ablation)",
     {"type": "semantic", "preset": "stable-cascade", "weights": "not-needed",
      "resize_factor": 1.0}),
    ("semantic, digital: 6 bits per value, LDPC 1/2, 16-QAM",
     {"type": "semantic", "preset": "stable-cascade", "weights": "not-needed",
      "transmission": {"mode": "digital"}}),
    ("classical: JPEG2000 + LDPC 1/2 + 16-QAM, matched (the paper)",
     {"type": "classical", "bandwidth": MATCHED}),
    ("classical: JPEG + LDPC 1/2 + 16-QAM, matched",
     {"type": "classical", "codec": "jpeg", "bandwidth": MATCHED}),
    *((f"classical: LDPC {r} + {m}-QAM, matched (an MCS adaptive coding chooses from)",
       {"type": "classical", "modulation": m, "code_rate": r, "bandwidth": MATCHED})
      for m in (4, 16, 64) for r in ("1/2", "3/4") if (m, r) != (16, "1/2")),
    ("deepjscc (the shipped small preset)", {"type": "deepjscc"}),
    ("img2img-sc (the paper's baseline, SD 1.5)",
     {"type": "img2img-sc", "weights": "not-needed", "captions": "not-needed.csv"}),
    ("python: docs/examples/downsample_link.py, factor 8",
     {"type": "python", "class": "downsample_link:DownsampleLink", "options": {"factor": 8}}),
]
#: The paper's Table 1 rows of the schemes it compares with, at 512 px (not simulated here).
REFERENCE = [("DIFFSC (the paper's Table 1; not simulated)", "[8, 32, 32]", "96", "1.04"),
             ("CASC (the paper's Table 1; not simulated)", "[8, 32, 32]", "96", "1.04")]


def _cells(size: int, section: dict) -> list[str]:
    """The row of link ``section`` at ``size`` px (the first example as ``semantic`` beside
    it, for bandwidth matching); its cells, or the reason it has none."""
    links = {"semantic": EXAMPLES[0][1], "link": section}
    text = yaml.safe_dump({"images": {"size": size}, "snr": {"points_db": [10]},
                           "links": links}, sort_keys=False)
    try:
        scenario = parse_scenario(text, base_dir=ROOT / "docs" / "examples")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            row = scenario_rows(scenario, base_dir=ROOT / "docs" / "examples")[-1]
    except InputError as err:  # a link that must be built and lacks its weights here
        return [f"not here: {str(err).splitlines()[0]}"]
    d = row.dimensionality
    unit = " bytes" if d.note.startswith("frame bytes") else ""
    return [f"{list(d.sent_shape)}{unit}", f"{d.compression_ratio:.1f}",
            f"{d.percent_of_image:.3g}", str(d.channel_uses)]


def main() -> None:
    start = time.perf_counter()
    registered = [(label, s) for label, s in EXAMPLES if s["type"] in LINK_TYPES]
    missing = sorted({s["type"] for _, s in EXAMPLES} - set(LINK_TYPES))
    head = " | ".join(f"{size} px: sent | CR | % of image | channel uses" for size in SIZES)
    print(f"| link | {head} |")
    print("| --- |" + " --- | ---: | ---: | ---: |" * len(SIZES))
    notes = []
    for label, section in registered:
        cells = []
        for size in SIZES:
            got = _cells(size, section)
            if len(got) == 1:  # no row: say why below the table
                notes.append(f"{label} at {size} px: {got[0]}")
                got = ["-"] * 4
            cells += got
        print(f"| {label} | " + " | ".join(cells) + " |")
    for label, shape, ratio, percent in REFERENCE:
        print(f"| {label} | {shape} | {ratio} | {percent} | - |"
              + " - | - | - | - |" * (len(SIZES) - 1))
    for note in notes:
        print(f"\n({note})")
    if missing:
        print(f"\n(not registered yet, left out: {', '.join(missing)})")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
