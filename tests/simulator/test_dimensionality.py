"""``semlink info``'s link rows: what a link over the ideal code leaves out of its frame."""
from __future__ import annotations

from pathlib import Path

from semlink.dimensionality import scenario_rows
from semlink.scenario import parse_scenario


def test_info_row_of_an_ideal_code_link_says_its_header_convention():
    scenario = parse_scenario(
        "name: c\nimages: {source: sample, size: 64}\nsnr: {points_db: [5]}\nlinks:\n"
        "  cap: {type: classical, channel_code: capacity, bandwidth: {channel_uses: 288},"
        " jpeg2000_header: explicit}\n")
    (row,) = scenario_rows(scenario, base_dir=Path("."))
    assert row.why == ("frame chosen per SNR point; ideal code, JPEG2000 headers sent "
                       "(explicit)")
