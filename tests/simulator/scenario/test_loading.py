"""YAML loading: dotted-path overrides, ``base:`` layering with line-precise errors, and choices
and messages derived from the discriminated unions (a type added to a union is offered)."""
from __future__ import annotations

import textwrap
from typing import Annotated, Literal, Union

import pytest
from pydantic import Field

from semlink.scenario import (CHANNEL_TYPES, LINK_TYPES, ChannelConfig, LinkConfig,
                              OverrideError, ScenarioError, Transmission, _Frozen,
                              apply_overrides, union_members, validate_yaml)

RECIPE = {"name": "r", "phases": [{"steps": 500}, {"steps": 1500, "conditioning": {
    "noise": "channel", "channel": {"type": "awgn"}}}]}


def test_an_override_changes_one_value_inside_a_list_and_nothing_else():
    out = apply_overrides(RECIPE, {"phases.1.conditioning.noise": "none"})
    assert out == {"name": "r", "phases": [{"steps": 500}, {"steps": 1500, "conditioning": {
        "noise": "none", "channel": {"type": "awgn"}}}]}
    assert RECIPE["phases"][1]["conditioning"]["noise"] == "channel"  # the input is untouched


def test_overrides_add_missing_keys_replace_mappings_whole_and_apply_in_order():
    out = apply_overrides(RECIPE, {"phases.0.conditioning.channel.type": "rayleigh",
                                   "phases.1.conditioning": {"noise": "none"},
                                   "phases.1.conditioning.drop_prob": 0.2, "seed": 3})
    assert out["phases"][0] == {"steps": 500, "conditioning": {"channel": {"type": "rayleigh"}}}
    assert out["phases"][1]["conditioning"] == {"noise": "none", "drop_prob": 0.2}
    assert out["seed"] == 3 and list(out) == ["name", "phases", "seed"]


def test_an_override_value_is_copied_not_shared():
    value = {"noise": "none"}
    out = apply_overrides(RECIPE, {"phases.1.conditioning": value})
    value["noise"] = "channel"
    assert out["phases"][1]["conditioning"] == {"noise": "none"}


@pytest.mark.parametrize("key, reason", [
    ("phases.2.steps", "phases has 2 items (0..1); no item 2"),
    ("phases.-1.steps", "phases is a list of 2 items (0..1); '-1' is not an item index"),
    ("phases.first", "phases is a list of 2 items (0..1); 'first' is not an item index"),
    ("name.first", "name is 'r', not a mapping or a list"),
    ("phases.0.steps.x", "phases.0.steps is 500, not a mapping or a list"),
    ("phases..steps", "empty part in the path; join keys and item indices with single dots, "
                      "as in phases.0.steps"),
    ("", "empty part in the path; join keys and item indices with single dots, as in "
         "phases.0.steps"),
])
def test_a_path_that_cannot_be_followed_is_named_with_the_reason(key, reason):
    with pytest.raises(OverrideError) as info:
        apply_overrides(RECIPE, {key: 1})
    assert (info.value.key, info.value.reason) == (key, reason)
    assert isinstance(info.value, ValueError) and str(info.value) == f"{key}: {reason}"


class _Phase(_Frozen):
    steps: int = Field(ge=1)
    noise: Literal["channel", "none"] = "channel"


class _Recipe(_Frozen):
    name: str
    seed: int = 0
    phases: list[_Phase]


BASE = textwrap.dedent("""\
    # the base
    name: base
    seed: 4
    phases:
      - steps: 10
      - steps: 20
    """)


def _write(folder, **files) -> None:
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))


def _load(path):
    return validate_yaml(path.read_text(), _Recipe, source=str(path), what="a recipe",
                         layered=True)


def _problems(path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        _load(path)
    return info.value.problems


def test_a_base_is_merged_under_the_file_and_its_overrides_applied_last(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path, base=BASE)
    _write(tmp_path / "sub", child="""\
        base: ../base.yaml
        name: child
        set: {phases.1.noise: none, phases.0.steps: 11}
        """, grandchild="""\
        base: child.yaml
        seed: 5
        """)
    assert _load(tmp_path / "sub" / "child.yaml") == _Recipe(
        name="child", seed=4, phases=[_Phase(steps=11), _Phase(steps=20, noise="none")])
    assert _load(tmp_path / "sub" / "grandchild.yaml") == _Recipe(
        name="child", seed=5, phases=[_Phase(steps=11), _Phase(steps=20, noise="none")])


def test_without_layering_base_and_set_are_unknown_keys(tmp_path):
    _write(tmp_path, base=BASE, child="base: base.yaml\nname: c\n")
    with pytest.raises(ScenarioError, match=r"child.yaml:1: base: unknown key; allowed: name, "
                                            r"seed, phases"):
        validate_yaml((tmp_path / "child.yaml").read_text(), _Recipe,
                      source=str(tmp_path / "child.yaml"))


def test_a_bad_value_from_the_base_names_the_base_file_and_its_line(tmp_path):
    _write(tmp_path, base=BASE.replace("steps: 20", "steps: 0"), child="""\
        base: base.yaml
        name: 5
        """)
    base, child = tmp_path / "base.yaml", tmp_path / "child.yaml"
    assert _problems(child) == [
        f"{child}:2: name: Input should be a valid string; got 5",
        f"{base}:6: phases.1.steps: Input should be greater than or equal to 1; got 0"]


def test_a_bad_override_value_names_the_line_of_the_override(tmp_path):
    _write(tmp_path, base=BASE, child="""\
        base: base.yaml
        set:
          phases.0.noise: off
          phases.1.steps: -3
        """)
    child = tmp_path / "child.yaml"
    assert sorted(_problems(child)) == [
        f"{child}:3: phases.0.noise: Input should be 'channel' or 'none'; got False",
        f"{child}:4: phases.1.steps: Input should be greater than or equal to 1; got -3"]


def test_an_unknown_key_added_by_an_override_is_at_the_overrides_line(tmp_path):
    _write(tmp_path, base=BASE, child="base: base.yaml\nset:\n  phases.1.nois: none\n")
    child = tmp_path / "child.yaml"
    assert _problems(child) == [f"{child}:3: phases.1.nois: unknown key; allowed: steps, noise"]


def test_every_bad_override_path_names_the_recipes_line_and_the_key(tmp_path):
    _write(tmp_path, base=BASE, child="""\
        base: base.yaml
        set:
          phases.2.steps: 1
          name.x: 1
          1.5: 2
          phases.0.steps: 3
        """)
    child = tmp_path / "child.yaml"
    assert _problems(child) == [
        f"{child}:3: set.phases.2.steps: phases has 2 items (0..1); no item 2",
        f"{child}:4: set.name.x: name is 'base', not a mapping or a list",
        f"{child}:5: set: keys are dotted paths such as phases.0.steps; got '1.5'"]


@pytest.mark.parametrize("files, problem", [
    ({"child": "name: c\nbase: nope.yaml\n"},
     "{child}:2: base: {dir}/nope.yaml not found; base is relative to this file's folder"),
    ({"child": "base: other.yaml\n", "other": "name: o\nbase: child.yaml\n"},
     "{dir}/other.yaml:2: base: child.yaml leads back to this file (a cycle of bases: "
     "child.yaml -> other.yaml -> child.yaml); a recipe cannot build on itself"),
    ({"child": "base: child.yaml\n"},
     "{child}:1: base: child.yaml leads back to this file (a cycle of bases: child.yaml -> "
     "child.yaml); a recipe cannot build on itself"),
    ({"child": "base: [base.yaml]\n"},
     "{child}:1: base: must be the path of the file this one builds on, relative to this "
     "file; got ['base.yaml']"),
    ({"child": "base: base.yaml\nset: [phases.0.steps]\n"},
     "{child}:2: set: must be a mapping of dotted paths to values, such as "
     "{{phases.0.steps: 1000}}; got ['phases.0.steps']"),
    ({"child": "base: list.yaml\n", "list": "- a\n"},
     "{dir}/list.yaml:1: a recipe must be a mapping of keys; got list"),
    ({"child": "base: broken.yaml\n", "broken": "name: [\n"},
     "{dir}/broken.yaml:2: invalid YAML: expected the node content, but found '<stream end>'"),
])
def test_a_broken_chain_of_bases_is_one_line(tmp_path, files, problem):
    _write(tmp_path, base=BASE, **files)
    child = tmp_path / "child.yaml"
    assert _problems(child) == [problem.format(child=child, dir=tmp_path)]


# A type added to a union: the choices, the allowed keys and the lines of its errors follow.
class _Beam(_Frozen):
    type: Literal["beam"]
    width_deg: float = 10.0


class _Relay(_Frozen):
    type: Literal["relay"]
    hops: int = 2


class _Quantum(_Frozen):
    mode: Literal["quantum"]
    qubits: int = 1


def _extended(union, extra):
    members = (*union_members(union).values(), extra)
    discriminator = "mode" if extra is _Quantum else "type"
    return Annotated[Union[members], Field(discriminator=discriminator)]


class _Extended(_Frozen):
    channel: _extended(ChannelConfig, _Beam)
    links: dict[str, _extended(LinkConfig, _Relay)] = {}
    transmission: _extended(Transmission, _Quantum) = None


@pytest.mark.parametrize("text, problem", [
    ("channel: {type: laser}\n", "h.yaml:1: channel: must be one of "
     f"{', '.join(map(repr, (*CHANNEL_TYPES, 'beam')))}; got 'laser'"),
    ("channel: {type: beam}\nlinks: {x: {type: carrier-pigeon}}\n", "h.yaml:2: links.x: must be "
     f"one of {', '.join(map(repr, (*LINK_TYPES, 'relay')))}; got 'carrier-pigeon'"),
    ("channel: {type: beam}\ntransmission: {mode: smoke}\n", "h.yaml:2: transmission: must be one "
     "of 'analog', 'digital', 'quantum'; got 'smoke'"),
    ("channel:\n  type: beam\n  widht_deg: 3\n",
     "h.yaml:3: channel.widht_deg: unknown key; allowed: type, width_deg"),
    ("channel: {type: beam}\nlinks:\n  x:\n    type: relay\n    hops: many\n",
     "h.yaml:5: links.x.hops: Input should be a valid integer; got 'many'"),
    ("channel: {type: beam}\nlinks:\n  x:\n    type: relay\n    hop: 3\n",
     "h.yaml:5: links.x.hop: unknown key; allowed: type, hops"),
    ("channel: {type: beam}\ntransmission:\n  mode: quantum\n  qbits: 3\n",
     "h.yaml:4: transmission.qbits: unknown key; allowed: mode, qubits"),
])
def test_a_type_added_to_a_union_is_offered_and_its_errors_are_located(text, problem):
    """The choices come from the union itself, and the union tag pydantic puts in an error's
    location is found from the unions of the model: it names the class whose keys are listed
    and is left out of the path, which resolves to the key's own line."""
    with pytest.raises(ScenarioError) as info:
        validate_yaml(text, _Extended, source="h.yaml")
    assert info.value.problems == [problem]
