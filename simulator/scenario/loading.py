"""YAML loading and error formatting of scenarios and training recipes.

:func:`validate_yaml` reads a YAML text into a pydantic model and reports every problem as one
line ``FILE:LINE: yaml.path: message``, all at once. A layered file (training recipes) may name a
``base:`` file, whose mapping is deep-merged under its own keys, and ``set:`` dotted-path
overrides (:func:`apply_overrides`), which change one value anywhere, also inside a list::

    base: train-small.yaml                    # relative to this file
    name: small-noisefree
    set:
      phases.1.conditioning.noise: none       # phases[1].conditioning.noise
"""
from __future__ import annotations

import copy
import functools
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from semlink.errors import InputError
from semlink.scenario.limits import members_by_tag

__all__ = [
    "BASE_KEY",
    "OVERRIDES_KEY",
    "ScenarioError",
    "OverrideError",
    "validate_yaml",
    "apply_overrides",
    "yaml_text",
]

_M = TypeVar("_M", bound=BaseModel)
#: Top-level keys of a layered file: the file it builds on, and its dotted-path overrides.
BASE_KEY = "base"
OVERRIDES_KEY = "set"
_INDEX = re.compile(r"[0-9]+")


class ScenarioError(InputError):
    """A scenario file with one or more problems; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class OverrideError(ValueError):
    """An override whose dotted path cannot be followed: ``key`` is the path, ``reason`` why."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-9`` and ``300e-9`` as floats (YAML 1.1 needs a dot) and
    refuses a key given twice in one mapping (YAML keeps the last silently: a second ``snr:``
    or link of the same name would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the constructor below reports it
                continue
            if first is not None:  # also within one line: {a: 1, a: 2}
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {first + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def validate_yaml(text: str, model: type[_M], *, source: str, what: str = "a scenario",
                  layered: bool = False, context: dict[str, Any] | None = None) -> _M:
    """Validate YAML ``text`` into the pydantic ``model`` (scenarios, training configs, ...).

    :param source: Names the text in messages (a file path).
    :param what: What the file is, for the message about a non-mapping document.
    :param layered: Read the top-level keys ``base:`` (another file of the kind, relative to
        the folder of ``source``; its mapping is deep-merged under this file's keys) and
        ``set:`` (dotted paths to values, applied last by :func:`apply_overrides`). A problem
        in a value from a base file names that file and its line; one in an override names
        the line of the override.
    :param context: pydantic's validation context (validators read it: e.g. ``base_dir``).
    :raises ScenarioError: One line per problem, ``SOURCE:LINE: yaml.path: message``.
    """
    data, root = (_layered if layered else _document)(text, source, what)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise ScenarioError([_format_problem(e, root, source, model)
                             for e in err.errors()]) from None


def yaml_text(data: Mapping[str, Any], *, name: str) -> str:
    """``data`` written as a scenario file would hold it (tuples as lists, mappings as dicts),
    for the loaders to validate as they validate a file (the Python API, ``semlink transmit``).

    :param name: The argument ``data`` came from, for the message.
    :raises TypeError: If ``data`` holds values YAML cannot write.

    >>> print(yaml_text({"snr": {"points_db": (1, 5)}}, name="changes"), end="")
    snr:
      points_db:
      - 1
      - 5
    """
    try:
        return yaml.safe_dump(_plain(data), sort_keys=False)
    except yaml.YAMLError as err:
        raise TypeError(f"`{name}` must hold plain values (numbers, strings, lists, mappings) "
                        f"as a scenario file does; {err}.") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with the value at each dotted path of ``overrides`` replaced.

    A path's parts are mapping keys, or 0-based item indices where the value is a list:
    ``phases.1.conditioning.noise`` is ``data["phases"][1]["conditioning"]["noise"]``. A key
    missing from a mapping is added (and the mappings on its way); an index must name an
    existing item. A value replaces what was there whole (a mapping is not merged into the one
    it replaces). Paths are applied in order, so a later one may reach into a value an earlier
    one set. Neither ``data`` nor ``overrides`` is changed.

    :raises OverrideError: (a ValueError) For the first path that cannot be followed: an empty
        part, a part that is not an index of a list, an index past a list's end, or a part
        below a value that is neither a mapping nor a list.

    >>> recipe = {"phases": [{"steps": 500}, {"steps": 1500, "conditioning": {"noise": "channel"}}]}
    >>> apply_overrides(recipe, {"phases.1.conditioning.noise": "none", "seed": 2})
    {'phases': [{'steps': 500}, {'steps': 1500, 'conditioning': {'noise': 'none'}}], 'seed': 2}
    >>> apply_overrides(recipe, {"phases.2.steps": 10})
    Traceback (most recent call last):
    ...
    semlink.scenario.loading.OverrideError: phases.2.steps: phases has 2 items (0..1); no item 2
    """
    result = copy.deepcopy(dict(data))
    for key, value in overrides.items():
        parts = key.split(".")
        if not all(parts):
            raise OverrideError(key, "empty part in the path; join keys and item indices with "
                                     "single dots, as in phases.0.steps")
        holder: Any = result
        for depth, part in enumerate(parts):
            where, last = ".".join(parts[:depth]), depth == len(parts) - 1
            if isinstance(holder, dict):
                if last:
                    holder[part] = copy.deepcopy(value)
                else:
                    holder = holder.setdefault(part, {})
            elif isinstance(holder, list):
                count = f"{len(holder)} item{'' if len(holder) == 1 else 's'}" + (
                    f" (0..{len(holder) - 1})" if holder else "")
                if not _INDEX.fullmatch(part):
                    raise OverrideError(key, f"{where} is a list of {count}; {part!r} is not "
                                             "an item index")
                if int(part) >= len(holder):
                    raise OverrideError(key, f"{where} has {count}; no item {int(part)}")
                if last:
                    holder[int(part)] = copy.deepcopy(value)
                else:
                    holder = holder[int(part)]
            else:
                raise OverrideError(key, f"{where} is {holder!r}, not a mapping or a list")
    return result


def _document(text: str, source: str, what: str) -> tuple[dict, yaml.MappingNode]:
    """The mapping of YAML ``text`` and its node tree, whose marks name ``source``."""
    try:
        data = _parse(text, source, _Loader.get_single_data)
        root = _parse(text, source, _Loader.get_single_node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError([f"{source}{line}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: {what} must be a mapping of keys; got "
                             f"{type(data).__name__}"])
    return data, root


def _parse(text: str, source: str, read: typing.Callable[[_Loader], Any]) -> Any:
    loader = _Loader(text)
    loader.name = source  # the marks of the nodes name their file (a base's lines are its own)
    try:
        return read(loader)
    finally:
        loader.dispose()


def _layered(text: str, source: str, what: str,
             chain: tuple[Path, ...] = ()) -> tuple[dict, yaml.MappingNode]:
    """:func:`_document`, its base merged under it and its overrides applied; ``chain``: the
    files that led here (each a base of the one before), against cycles."""
    data, root = _document(text, source, what)
    entries = {key.value: (key, value) for key, value in root.value
               if key.value in (BASE_KEY, OVERRIDES_KEY)}
    root = _mapping_node(root, [pair for pair in root.value if pair[0].value not in entries])
    base, overrides = data.pop(BASE_KEY, None), data.pop(OVERRIDES_KEY, None)
    if BASE_KEY in entries:
        key = entries[BASE_KEY][0]
        where = f"{source}:{key.start_mark.line + 1}: {BASE_KEY}"
        if not isinstance(base, str) or not base:
            raise ScenarioError([f"{where}: must be the path of the file this one builds on, "
                                 f"relative to this file; got {base!r}"])
        path = Path(source).parent / base
        chain = (*chain, Path(source).resolve())
        if path.resolve() in chain:
            files = " -> ".join(p.name for p in (*chain, path))
            raise ScenarioError([f"{where}: {base} leads back to this file (a cycle of bases: "
                                 f"{files}); a recipe cannot build on itself"])
        try:
            base_text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScenarioError([f"{where}: {path} not found; base is relative to this "
                                 "file's folder"]) from None
        except (OSError, UnicodeDecodeError) as err:
            raise ScenarioError([f"{where}: cannot read {path} ({err})"]) from None
        base_data, base_root = _layered(base_text, str(path), what, chain)
        data, root = _merge(base_data, data), _merge_nodes(base_root, root)
    if OVERRIDES_KEY in entries:
        key, node = entries[OVERRIDES_KEY]
        data, root = _override(data, root, overrides, key, node, source)
    return data, root


def _override(data: dict, root: yaml.MappingNode, overrides: Any, key: yaml.Node,
              node: yaml.Node, source: str) -> tuple[dict, yaml.MappingNode]:
    """``data`` and ``root`` with the ``set:`` mapping ``overrides`` (its key and value nodes
    ``key`` and ``node``) applied; every problem of it reported at once."""
    if not isinstance(overrides, dict) or not isinstance(node, yaml.MappingNode):
        raise ScenarioError([f"{source}:{key.start_mark.line + 1}: {OVERRIDES_KEY}: must be a "
                             "mapping of dotted paths to values, such as "
                             f"{{phases.0.steps: 1000}}; got {overrides!r}"])
    problems = []
    for path_node, value_node in node.value:
        path, line = path_node.value, path_node.start_mark.line + 1
        if not isinstance(path, str) or path not in overrides:  # e.g. a number as a key
            problems.append(f"{source}:{line}: {OVERRIDES_KEY}: keys are dotted paths such as "
                            f"phases.0.steps; got {path!r}")
            continue
        try:
            data = apply_overrides(data, {path: overrides[path]})
        except OverrideError as err:
            problems.append(f"{source}:{line}: {OVERRIDES_KEY}.{err.key}: {err.reason}")
            continue
        root = _set_node(root, path.split("."), path_node, value_node)
    if problems:
        raise ScenarioError(problems)
    return data, root


def _merge(base: dict, own: dict) -> dict:
    """``own`` deep-merged over ``base``: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merge(merged[key], value)
        merged[key] = value
    return merged


def _merge_nodes(base: yaml.MappingNode, own: yaml.MappingNode) -> yaml.MappingNode:
    """:func:`_merge` of node trees: each value keeps the node (and line) it came from."""
    pairs = list(base.value)
    for key, value in own.value:
        i = next((i for i, (k, _) in enumerate(pairs) if k.value == key.value), None)
        if i is None:
            pairs.append((key, value))
            continue
        if isinstance(value, yaml.MappingNode) and isinstance(pairs[i][1], yaml.MappingNode):
            value = _merge_nodes(pairs[i][1], value)
        pairs[i] = (key, value)
    return _mapping_node(own, pairs)


def _set_node(node: yaml.Node | None, parts: list[str], key: yaml.Node,
              value: yaml.Node) -> yaml.Node:
    """A copy of ``node`` with ``value`` at the dotted path ``parts`` (as
    :func:`apply_overrides` put it in the data); keys it adds are placed at ``key``'s line."""
    part, rest = parts[0], parts[1:]
    if isinstance(node, yaml.SequenceNode):
        items = list(node.value)
        items[int(part)] = _set_node(items[int(part)], rest, key, value) if rest else value
        return yaml.SequenceNode(node.tag, items, node.start_mark, node.end_mark,
                                 node.flow_style)
    if not isinstance(node, yaml.MappingNode):  # a mapping the override adds
        node = yaml.MappingNode("tag:yaml.org,2002:map", [], key.start_mark, key.end_mark)
    pairs = list(node.value)
    i = next((i for i, (k, _) in enumerate(pairs) if k.value == part), None)
    child = None if i is None else pairs[i][1]
    entry = (yaml.ScalarNode("tag:yaml.org,2002:str", part, key.start_mark, key.end_mark),
             _set_node(child, rest, key, value) if rest else value)
    if i is None:
        pairs.append(entry)
    else:
        pairs[i] = (pairs[i][0] if rest else entry[0], entry[1])
    return _mapping_node(node, pairs)


def _mapping_node(like: yaml.MappingNode, pairs: list) -> yaml.MappingNode:
    return yaml.MappingNode(like.tag, pairs, like.start_mark, like.end_mark, like.flow_style)


def _format_problem(error: dict[str, Any], root: yaml.Node | None, source: str,
                    model: type[BaseModel]) -> str:
    loc = list(error["loc"])
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    # Cross-field messages carry their own path ("links.x.bandwidth.match: ...").
    head = msg.split(": ", 1)[0]
    if ": " in msg and all(part.replace("_", "").isalnum() for part in head.split(".")) and \
            head.split(".")[0] in model.model_fields:
        loc = [int(p) if p.isdigit() else p for p in head.split(".")]
        msg = msg.split(": ", 1)[1]
    tagged = _tagged_models(model)
    if error["type"] == "extra_forbidden":
        fields = _parent_model(model, loc, tagged).model_fields
        msg = f"unknown key; allowed: {', '.join(f.alias or n for n, f in fields.items())}"
    elif error["type"] == "union_tag_invalid":
        msg = f"must be one of {error['ctx']['expected_tags']}; got {error['ctx']['tag']!r}"
    if "input" in error and error["type"] not in ("missing", "extra_forbidden") and \
            not isinstance(error["input"], (dict, list)) and "; got " not in msg:
        msg = f"{msg}; got {error['input']!r}"
    loc, file, line = _resolve(root, loc, tagged, source)
    where = ".".join(str(p) for p in loc) or "(top level)"
    return f"{file}:{line}: {where}: {msg}"


def _resolve(root: yaml.Node | None, loc: list[Any], tags: Mapping[str, Any],
             source: str) -> tuple[list[Any], str, int]:
    """Follow ``loc`` through the YAML tree: the file (a node's mark names it; ``source`` at the
    top) and 1-based line of the deepest node reached, and the path without the union ``tags``
    pydantic inserts (a tag is skipped when it is not a key there)."""
    node, file, line, path = root, source, 1, []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node, file, line = value, key.start_mark.name, key.start_mark.line + 1
                    path.append(part)
                    break
            else:
                if isinstance(part, str) and (part in tags or "[" in part):
                    continue
                path.extend(loc[i:])
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            file, line = node.start_mark.name, node.start_mark.line + 1
            path.append(part)
        else:
            path.extend(p for p in loc[i:] if not (isinstance(p, str) and p in tags))
            break
    return path, file, line


def _parent_model(root: type[BaseModel], loc: list[Any],
                  tagged: Mapping[str, type[BaseModel]]) -> type[BaseModel]:
    """The model class that holds the last key of ``loc`` (for listing its allowed keys):
    follow nested model fields from ``root``; a union tag names its class directly."""
    cls = root
    for part in loc[:-1]:
        if isinstance(part, str) and part in tagged and part not in cls.model_fields:
            cls = tagged[part]
        elif isinstance(part, str) and part in cls.model_fields:
            nested = [t for t in (cls.model_fields[part].annotation,
                                  *typing.get_args(cls.model_fields[part].annotation))
                      if isinstance(t, type) and issubclass(t, BaseModel)]
            if nested:
                cls = nested[0]
    return cls


@functools.cache
def _tagged_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The members of every discriminated union within ``model`` (in its fields and the models
    nested there), by tag: in a validation error's location a tag names the member checked."""
    found: dict[str, type[BaseModel]] = {}
    seen: set[type] = set()

    def visit(annotation: Any, discriminator: str | None = None) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.add(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation, field.discriminator)
            return
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is Annotated:
            tag = [m.discriminator for m in args[1:] if getattr(m, "discriminator", None)]
            visit(args[0], tag[0] if tag else discriminator)
            return
        if discriminator is not None and typing.get_origin(annotation) in (Union,
                                                                          types.UnionType):
            found.update(members_by_tag(args, discriminator))
        for arg in args:
            visit(arg)

    visit(model)
    return found
