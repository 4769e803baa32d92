"""docs/scenarios.md stays in step with the schema: every field of every section is listed
under its heading, no field that does not exist is, scalar defaults are the schema's, and the
example validates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from semlink import scenario as schema
from semlink.scenario.link_deepjscc import DeepJSCCLinkConfig
from semlink.scenario.link_img2img import Img2ImgSCLinkConfig

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
    "`type: img2img-sc`": Img2ImgSCLinkConfig,
    "`type: deepjscc`": DeepJSCCLinkConfig,
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


def _bounds(annotation, metadata) -> list[float]:
    """The numeric limits (ge, gt, le, lt, max_length) of a field's metadata and of the
    ``Annotated`` types within its annotation (an optional's, a list's items)."""
    import typing

    found = [float(v) for m in metadata for attr in ("ge", "gt", "le", "lt", "max_length")
             if isinstance(v := getattr(m, attr, None), (int, float))]
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            inner, *extra = typing.get_args(arg)
            found += _bounds(inner, [m for e in extra for m in getattr(e, "metadata", [e])])
        elif not isinstance(arg, (int, float, str)) and arg is not type(None):
            found += _bounds(arg, [])
    return found


def _numbers(cell: str) -> list[float]:
    """The numbers a type cell writes: ``-50``, ``0.5e9``, ``10^7``, ``2^63 - 1``, ``1/5``."""
    values = []
    for base, power, minus_one, num, den, plain in re.findall(
            r"(\d+)\^(\d+)(\s*-\s*1)?|(\d+)/(\d+)|(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", cell):
        values.append(int(base) ** int(power) - bool(minus_one) if base else
                      int(num) / int(den) if num else float(plain))
    return values


@pytest.mark.parametrize("heading", SECTIONS)
def test_numeric_bounds_are_documented(heading):
    """Every bound of a number (or a list's length) in the schema is written in the field's
    type column, so that the tables are the reference of the limits."""
    by_alias = {f.alias or name: f for name, f in SECTIONS[heading].model_fields.items()}
    for row in _tables()[heading]:
        field = by_alias[row[0].strip("`")]
        written = _numbers(row[1])
        for bound in _bounds(field.annotation, field.metadata):
            assert any(abs(bound - w) <= 1e-9 * max(1.0, abs(w)) for w in written), \
                (heading, row[0], bound, row[1])
