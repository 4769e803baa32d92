"""docs/scenarios.md stays in step with the schema: every field of every section is listed
under its heading, no field that does not exist is, scalar defaults are the schema's, and the
example validates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from semlink import scenario as schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"

SECTIONS = {
    "Top level": schema.Scenario,
    "`images`": schema.ImagesConfig,
    "`snr`": schema.SNRConfig,
    "`type: awgn`": schema.AWGNConfig,
    "`type: rayleigh`": schema.RayleighConfig,
    "`type: rician`": schema.RicianConfig,
    "`amplifier`": schema.AmplifierConfig,
    "`phase_tracking`": schema.PhaseTrackingConfig,
    "`type: ofdm`": schema.OFDMConfig,
    "`type: semantic`": schema.SemanticLinkConfig,
    "`transmission: {mode: analog}`": schema.AnalogTransmission,
    "`transmission: {mode: digital}`": schema.DigitalTransmission,
    "`type: classical`": schema.ClassicalLinkConfig,
    "`bandwidth`": schema.BandwidthConfig,
    "`harq`": schema.HarqConfig,
    "`type: ber`": schema.BERLinkConfig,
    "`type: python`": schema.PythonLinkConfig,
    "`monte_carlo`": schema.MonteCarloConfig,
}


def _tables() -> dict[str, list[list[str]]]:
    """Rows (cells) of the field table under each heading."""
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            continue
        if heading and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            tables.setdefault(heading, []).append(cells)
    return tables


@pytest.mark.parametrize("heading", SECTIONS)
def test_every_field_is_documented_under_its_heading(heading):
    rows = _tables().get(heading)
    assert rows, f"docs/scenarios.md has no field table under {heading!r}"
    documented = [row[0].strip("`") for row in rows]
    # A field named like a Python keyword (``class``) is written as its alias.
    fields = [f.alias or name for name, f in SECTIONS[heading].model_fields.items()]
    assert documented == fields, heading


@pytest.mark.parametrize("heading", SECTIONS)
def test_scalar_defaults_are_the_schemas(heading):
    model = SECTIONS[heading]
    by_alias = {f.alias or name: f for name, f in model.model_fields.items()}
    for row in _tables()[heading]:
        name, default = row[0].strip("`"), row[2].strip("`")
        value = by_alias[name].default
        if isinstance(value, bool):
            assert default == str(value).lower(), (heading, name)
        elif isinstance(value, (int, float)):
            assert float(default) == value, (heading, name)
        elif isinstance(value, str):
            assert default == (value or "empty"), (heading, name)


def test_the_example_validates():
    text = DOC.read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    parsed = schema.parse_scenario(example)
    assert parsed.name == "my-comparison" and set(parsed.links) == {"semantic", "jpeg2000"}
