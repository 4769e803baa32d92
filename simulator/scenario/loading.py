"""YAML loading and error formatting of scenarios and training recipes.

:func:`validate_yaml` reads a YAML text into a pydantic model and reports every problem as one
line ``FILE:LINE: yaml.path: message``, all at once. A layered file (training recipes) may name a
``base:`` file, whose mapping is deep-merged under its own keys, and ``set:`` dotted-path
overrides (:func:`apply_overrides`), which change one value anywhere, also inside a list::

    base: train-small.yaml                    # relative to this file
    name: small-noisefree
    set:
      phases.1.conditioning.noise: none       # phases[1].conditioning.noise

The command line changes values the same way, last (``--set KEY=VALUE``, :class:`Override`, the
Hydra/OmegaConf convention), removes a key with Hydra's ``--set ~KEY`` (:data:`REMOVE`), and a
value a user must supply is written as OmegaConf's missing value ``???`` (:data:`MISSING`): a
document that still holds one after the overrides is refused with a line naming the key and the
``--set`` to give.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from semlink.errors import InputError
from semlink.scenario.limits import (MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES,
                                     members_by_tag)

__all__ = [
    "BASE_KEY",
    "OVERRIDES_KEY",
    "MISSING",
    "REMOVE",
    "ScenarioError",
    "OverrideError",
    "Override",
    "as_overrides",
    "missing_paths",
    "validate_yaml",
    "resolve_yaml",
    "apply_overrides",
    "yaml_text",
    "read_yaml_file",
]

_M = TypeVar("_M", bound=BaseModel)
#: Top-level keys of a layered file: the file it builds on, and its dotted-path overrides.
BASE_KEY = "base"
OVERRIDES_KEY = "set"
#: OmegaConf's missing value: a value the user must supply (``--set KEY=VALUE``).
MISSING = "???"


class _Remove:
    """The type of :data:`REMOVE` (one instance)."""

    def __repr__(self) -> str:
        return "REMOVE"


#: An override's value that removes its key (``--set ~KEY``, Hydra's convention; in the Python
#: API's ``overrides`` mapping, ``{"links.img2img-sc": REMOVE}``).
REMOVE = _Remove()
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


@dataclasses.dataclass(frozen=True)
class Override:
    """One value put into a loaded document at a dotted path (:func:`apply_overrides`), after
    its ``base:`` and ``set:``: the command line's ``--set KEY=VALUE`` (:meth:`parse`), or an
    entry of the Python API's ``overrides`` mapping (:func:`as_overrides`).

    :param key: Dotted path: mapping keys, and 0-based item indices in lists.
    :param value: The value, as YAML loads it (``None``, numbers, strings, lists, mappings),
        or :data:`REMOVE` to remove the key.
    :param origin: Names the override in messages: ``--set KEY=VALUE`` or ``overrides['KEY']``.
    """

    key: str
    value: Any
    origin: str

    @classmethod
    def parse(cls, text: str) -> "Override":
        """The override of the command line's ``--set KEY=VALUE``: ``VALUE`` is read as YAML
        (a scalar or a flow list or mapping: ``seed=3``, ``snr.points_db=[1,5]``, ``x=null``);
        an empty one (``KEY=``) is the empty string. ``--set ~KEY`` removes ``KEY``.

        :raises OverrideError: (a ValueError) If ``text`` has no ``=`` (nor a leading ``~``),
            ``KEY`` is not a dotted path, ``VALUE`` is not valid YAML, or ``~KEY`` comes with a
            value; its ``reason`` is a line to print.

        >>> Override.parse("snr.points_db=[1, 5]")
        Override(key='snr.points_db', value=[1, 5], origin='--set snr.points_db=[1, 5]')
        >>> Override.parse("~links.img2img-sc")
        Override(key='links.img2img-sc', value=REMOVE, origin='--set ~links.img2img-sc')
        >>> Override.parse("seed")
        Traceback (most recent call last):
        ...
        semlink.scenario.loading.OverrideError: --set seed: must be KEY=VALUE, a dotted path into the YAML and a YAML value, as in snr.points_db=[1,5]
        """
        origin = f"--set {text}"
        if text.startswith("~"):
            key = text[1:]
            if "=" in key:
                raise OverrideError(origin, "~KEY removes KEY and takes no value; give "
                                            f"--set ~{key.partition('=')[0]}")
            cls._check_key(key, origin)
            return cls(key, REMOVE, origin)
        key, equals, value_text = text.partition("=")
        if not equals or not key:
            raise OverrideError(origin, "must be KEY=VALUE, a dotted path into the YAML and a "
                                        "YAML value, as in snr.points_db=[1,5]")
        cls._check_key(key, origin)
        if not value_text.strip():
            return cls(key, "", origin)
        try:
            value = _parse(value_text, origin, _Loader.get_single_data)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise OverrideError(origin, f"{value_text!r} is not a valid YAML value ({problem}); "
                                        "for text, put YAML quotes inside the shell's, as in "
                                        "'KEY=\"a: b\"'") from None
        return cls(key, value, origin)

    @staticmethod
    def _check_key(key: str, origin: str) -> None:
        if not key or not all(key.split(".")) or any(ch.isspace() for ch in key):
            raise OverrideError(origin, f"{key!r} is not a dotted path; join keys and item "
                                        "indices with single dots, as in phases.0.steps")


def as_overrides(overrides: Mapping[str, Any] | Sequence[Override] | None, *,
                 name: str = "overrides") -> tuple[Override, ...]:
    """``overrides`` as :class:`Override` s: a sequence of them as it is, a mapping of dotted
    paths to plain values (the Python API's ``overrides={"snr.points_db": [5]}``) one each.

    :param name: The argument ``overrides`` came from, for messages.
    :raises TypeError: If ``overrides`` is neither, a key is not a string or a value is not
        plain (numbers, strings, lists, mappings: what YAML writes).
    """
    if overrides is None:
        return ()
    if isinstance(overrides, Mapping):
        made = []
        for key, value in overrides.items():
            if not isinstance(key, str):
                raise TypeError(f"`{name}` keys must be dotted paths (str); got {key!r}.")
            if value is not REMOVE:
                yaml_text({"value": value}, name=f"{name}[{key!r}]")  # TypeError if not plain
                value = _plain(value)
            made.append(Override(key, value, f"{name}[{key!r}]"))
        return tuple(made)
    if isinstance(overrides, Sequence) and not isinstance(overrides, str) and \
            all(isinstance(o, Override) for o in overrides):
        return tuple(overrides)
    raise TypeError(f"`{name}` must be a mapping of dotted paths to values, such as "
                    f"{{'seed': 3}}; got {type(overrides).__name__}.")


def missing_paths(data: Any, prefix: str = "") -> list[str]:
    """The dotted paths of ``data`` (mappings and lists, as loaded from YAML or dumped from a
    model) whose value is :data:`MISSING` (``???``), in document order.

    >>> missing_paths({"data": {"source": "???", "size": 256}, "phases": [{"lr": "???"}]})
    ['data.source', 'phases.0.lr']
    """
    if isinstance(data, Mapping):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [prefix] if data == MISSING and prefix else []
    return [path for key, value in items
            for path in missing_paths(value, f"{prefix}.{key}" if prefix else str(key))]


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


    # Limits (MAX_YAML_DEPTH, MAX_YAML_VALUES), checked as the nodes are composed: deep nesting
    # would end in a RecursionError, a long list or expanding aliases in minutes of parsing.
    _depth = 0
    _values = 0
    _path: list[Any]
    _sizes: dict[int, int]

    def compose_document(self) -> yaml.Node:
        self._path, self._sizes = [], {}
        return super().compose_document()

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # The scanner reads nested [ and { ahead of the composer, in time quadratic in depth.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise _LimitError(_too_deep(), self.get_mark(), [])
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # ``index``: a value's key node in a mapping, an item's index in a list (None: a key)
        if index is not None:
            self._path.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        event = self.peek_event()
        start, before = event.start_mark, self._values
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _LimitError(_too_deep(), start, self._path)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(event, yaml.AliasEvent):  # the anchored value again, every item counted
            self._values += self._sizes.get(id(node), 1)
        else:
            self._values += 1
            if getattr(event, "anchor", None) is not None:
                self._sizes[id(node)] = self._values - before
        if self._values > MAX_YAML_VALUES:
            raise _LimitError(f"more than {MAX_YAML_VALUES} values (list items, keys and "
                              f"values, aliases expanded; limit {MAX_YAML_VALUES})", start,
                              self._path[:-1] if index is not None else self._path)
        if index is not None:
            self._path.pop()
        return node


def _too_deep() -> str:
    return f"nesting deeper than {MAX_YAML_DEPTH} levels of lists and mappings (limit " \
           f"{MAX_YAML_DEPTH})"


class _LimitError(yaml.MarkedYAMLError):
    """A file beyond one of the limits of :class:`_Loader`; ``path`` where (keys, indices)."""

    def __init__(self, problem: str, mark: yaml.Mark, path: list[Any]) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        parts = [str(p) for p in path]
        self.where = ".".join(parts[:4]) + (".…" if len(parts) > 4 else "")


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def validate_yaml(text: str, model: type[_M], *, source: str, what: str = "a scenario",
                  layered: bool = False, context: dict[str, Any] | None = None,
                  overrides: Mapping[str, Any] | Sequence[Override] | None = None,
                  overrides_dir: str | Path | None = None, base_dir: str | Path | None = None,
                  allow_missing: bool = False) -> _M:
    """Validate YAML ``text`` into the pydantic ``model`` (scenarios, training configs, ...).

    :param source: Names the text in messages (a file path).
    :param what: What the file is, for the message about a non-mapping document.
    :param layered: Read the top-level keys ``base:`` (another file of the kind, relative to
        the folder of ``source``; its mapping is deep-merged under this file's keys) and
        ``set:`` (dotted paths to values, applied last by :func:`apply_overrides`). A problem
        in a value from a base file names that file and its line; one in an override names
        the line of the override.
    :param context: pydantic's validation context (validators read it: e.g. ``base_dir``).
    :param overrides: Values put in after ``base:`` and ``set:``, in order (``--set``; a
        mapping as :func:`as_overrides` takes it). A problem in one names it (``--set KEY=VALUE:
        message``).
    :param overrides_dir: The folder relative paths in ``overrides`` start from (the current
        directory, for the command line): each path field an override sets (those the
        validated model's ``referenced_paths()`` names) is rewritten relative to ``base_dir``,
        where the document's own relative paths start. None: override values are taken as the
        document's own (relative to ``base_dir``).
    :param base_dir: The folder the document's relative paths start from; default the folder
        of ``source``.
    :param allow_missing: Accept values still :data:`MISSING` (``???``) where the schema takes
        a string (``semlink validate`` names them; :func:`missing_paths` finds them); else each
        is a problem, ``SOURCE:LINE: key: required; pass --set key=VALUE``.
    :raises ScenarioError: One line per problem, ``SOURCE:LINE: yaml.path: message``.
    :raises TypeError: If ``overrides`` is not a mapping of plain values or of Override s.
    """
    return resolve_yaml(text, model, source=source, what=what, layered=layered,
                        context=context, overrides=overrides, overrides_dir=overrides_dir,
                        base_dir=base_dir, allow_missing=allow_missing)[0]


def resolve_yaml(text: str, model: type[_M], *, source: str, what: str = "a scenario",
                 layered: bool = False, context: dict[str, Any] | None = None,
                 overrides: Mapping[str, Any] | Sequence[Override] | None = None,
                 overrides_dir: str | Path | None = None, base_dir: str | Path | None = None,
                 allow_missing: bool = False) -> tuple[_M, str]:
    """:func:`validate_yaml`, and the effective text to store beside what it makes: ``text``
    itself without ``overrides``; else the document with them applied (its ``base:`` merged
    and ``set:`` applied too), written out as YAML under a comment naming the source and the
    overrides (the file's comments are not kept). It validates to the same model.

    :output: ``(model, text)``.
    :raises ScenarioError: As :func:`validate_yaml`.
    """
    overrides = as_overrides(overrides)
    data, root = (_layered if layered else _document)(text, source, what)
    origins = {o.origin: o.key for o in overrides}
    data, root = _apply(data, root, overrides)
    result = _validated(data, root, model, source, context, origins, allow_missing)
    if overrides_dir is not None:
        base = Path(source).parent if base_dir is None else Path(base_dir)
        moved = _rebased(result, overrides, Path(overrides_dir), base)
        if moved:
            data = apply_overrides(data, moved)
            result = _validated(data, root, model, source, context, origins, allow_missing)
    if not overrides:
        return result, text
    named = " ".join(o.origin for o in overrides).replace("\n", " ")
    return result, f"# {source} with {named}\n" + yaml_text(data, name="overrides")


def _apply(data: dict, root: yaml.MappingNode,
           overrides: Sequence[Override]) -> tuple[dict, yaml.MappingNode]:
    """``data`` and ``root`` with ``overrides`` applied in order: the nodes they add are marked
    with their origin (messages name the override); every problem reported at once."""
    problems = []
    for override in overrides:
        try:
            data = apply_overrides(data, {override.key: override.value})
        except OverrideError as err:
            problems.append(f"{override.origin}: {err.reason}")
            continue
        if override.value is REMOVE:
            root = _set_node(root, override.key.split("."), None, None)
            continue
        mark = yaml.Mark(override.origin, 0, 0, 0, None, None)
        key = yaml.ScalarNode("tag:yaml.org,2002:str", override.key, mark, mark)
        value = _parse(yaml.safe_dump(override.value), override.origin,
                       _Loader.get_single_node)
        root = _set_node(root, override.key.split("."), key, value)
    if problems:
        raise ScenarioError(problems)
    return data, root


def _validated(data: dict, root: yaml.MappingNode, model: type[_M], source: str,
               context: dict[str, Any] | None, origins: Mapping[str, str],
               allow_missing: bool) -> _M:
    """``data`` validated into ``model``; every problem one line (a :data:`MISSING` value one
    line saying which ``--set`` to give, unless ``allow_missing`` and the schema takes it)."""
    missing = missing_paths(data)
    required = {path: _required(path, root, source, model, origins) for path in missing}
    problems = [] if allow_missing else list(required.values())
    try:
        result = model.model_validate(data, context=context)
    except ValidationError as err:
        for error in err.errors():
            where, line = _format_problem(error, root, source, model, origins)
            if where not in required:
                problems.append(line)
            elif allow_missing and required[where] not in problems:  # ??? where no str goes
                problems.append(required[where])
        raise ScenarioError(problems) from None
    if problems:
        raise ScenarioError(problems)
    return result


def _required(path: str, root: yaml.Node, source: str, model: type[BaseModel],
              origins: Mapping[str, str]) -> str:
    """The line for a :data:`MISSING` value at the dotted ``path``: where it is, and the
    ``--set`` to give (``PATH`` or ``VALUE``, as the field's ``metavar`` says, and its
    description)."""
    loc: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
    _, file, line = _resolve(root, loc, {}, source)
    field = _parent_model(model, loc, _tagged_models(model)).model_fields.get(str(loc[-1]))
    extra = field.json_schema_extra if field is not None else None
    metavar = extra.get("metavar", "VALUE") if isinstance(extra, dict) else "VALUE"
    hint = f" ({field.description})" if field is not None and field.description else ""
    where = file if file in origins else f"{file}:{line}"
    return f"{where}: {path}: required; pass --set {path}={metavar}{hint}"


def _rebased(config: BaseModel, overrides: Sequence[Override], overrides_dir: Path,
             base_dir: Path) -> dict[str, str]:
    """The path fields of ``config`` (its ``referenced_paths()``) that ``overrides`` set to a
    relative path, by dotted path: rewritten from ``overrides_dir`` to ``base_dir``."""
    named = getattr(config, "referenced_paths", None)
    if named is None or not overrides or overrides_dir.resolve() == base_dir.resolve():
        return {}
    keys = [o.key for o in overrides]
    moved = {}
    for field, value in named().items():
        if not any(field == key or field.startswith(f"{key}.") for key in keys):
            continue  # the document's own: relative to base_dir already
        if value == MISSING or Path(value).expanduser().is_absolute():
            continue
        moved[field] = os.path.relpath(os.path.join(overrides_dir.resolve(), value),
                                       base_dir.resolve())
    return moved


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
    it replaces). The value :data:`REMOVE` removes the key, which must be there, from its
    mapping. Paths are applied in order, so a later one may reach into a value an earlier one
    set. Neither ``data`` nor ``overrides`` is changed.

    :raises OverrideError: (a ValueError) For the first path that cannot be followed: an empty
        part, a part that is not an index of a list, an index past a list's end, a part below
        a value that is neither a mapping nor a list, or a key to remove that is not there (or
        is a list item).

    >>> recipe = {"phases": [{"steps": 500}, {"steps": 1500, "conditioning": {"noise": "channel"}}]}
    >>> apply_overrides(recipe, {"phases.1.conditioning.noise": "none", "seed": 2})
    {'phases': [{'steps': 500}, {'steps': 1500, 'conditioning': {'noise': 'none'}}], 'seed': 2}
    >>> apply_overrides(recipe, {"phases.1.conditioning": REMOVE})
    {'phases': [{'steps': 500}, {'steps': 1500}]}
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
                if value is REMOVE and part not in holder:
                    raise OverrideError(key, f"{where or 'the top level'} has no key {part!r} "
                                             f"to remove; it has {', '.join(map(str, holder))}"
                                        if holder else f"{where} is empty; nothing to remove")
                if last and value is REMOVE:
                    del holder[part]
                elif last:
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
                if last and value is REMOVE:
                    raise OverrideError(key, f"{where} is a list; its items cannot be removed "
                                             f"one by one; set the whole list with {where}=[...]")
                if last:
                    holder[int(part)] = copy.deepcopy(value)
                else:
                    holder = holder[int(part)]
            else:
                raise OverrideError(key, f"{where} is {holder!r}, not a mapping or a list")
    return result


def read_yaml_file(path: str | Path, *, what: str = "scenario") -> str:
    """The text of a scenario or recipe file, refused before it is parsed when it is longer
    than :data:`~semlink.scenario.limits.MAX_YAML_BYTES` (1 MiB): a file's size is looked at,
    and anything else (a pipe, a device) is read no further than that.

    :param what: What the file is, for the message: ``scenario``, ``training config``.
    :raises ScenarioError: One line for a file over the limit.
    :raises OSError: If it cannot be read (FileNotFoundError if it does not exist).
    :raises UnicodeDecodeError: If it is not UTF-8.
    """
    path = Path(path)
    limit = f"the limit of a {what} file is {MAX_YAML_BYTES} bytes (1 MiB)"
    if path.is_file() and path.stat().st_size > MAX_YAML_BYTES:
        raise ScenarioError([f"{path}: {path.stat().st_size} bytes; {limit}: a file that "
                             "large is no hand-written scenario (refused unread)"])
    with open(path, encoding="utf-8") as file:
        text = file.read(MAX_YAML_BYTES + 1)  # characters: at most 4 bytes each
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise ScenarioError([f"{path}: more than {MAX_YAML_BYTES} bytes; {limit}"])
    return text


def _document(text: str, source: str, what: str) -> tuple[dict, yaml.MappingNode]:
    """The mapping of YAML ``text`` and its node tree, whose marks name ``source``."""
    try:
        root = _parse(text, source, _Loader.get_single_node)
        # constructed from its own node tree (once parsed), which the limits were checked on
        data = None if root is None else _parse(text, source,
                                                lambda loader: loader.construct_document(root))
    except _LimitError as err:
        where = f" {err.where}:" if err.where else ""
        raise ScenarioError([f"{source}:{err.problem_mark.line + 1}:{where} {err.problem}"]
                            ) from None
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
            base_text = read_yaml_file(path, what=what.removeprefix("a "))
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


def _set_node(node: yaml.Node | None, parts: list[str], key: yaml.Node | None,
              value: yaml.Node | None) -> yaml.Node:
    """A copy of ``node`` with ``value`` at the dotted path ``parts`` (as
    :func:`apply_overrides` put it in the data); keys it adds are placed at ``key``'s line.
    ``value`` None: the key at ``parts`` removed (:data:`REMOVE`; it is there)."""
    part, rest = parts[0], parts[1:]
    if value is None and not rest:
        assert isinstance(node, yaml.MappingNode)  # apply_overrides checked it
        return _mapping_node(node, [(k, v) for k, v in node.value if k.value != part])
    if isinstance(node, yaml.SequenceNode):
        items = list(node.value)
        items[int(part)] = _set_node(items[int(part)], rest, key, value) if rest else value
        return yaml.SequenceNode(node.tag, items, node.start_mark, node.end_mark,
                                 node.flow_style)
    if not isinstance(node, yaml.MappingNode):  # a mapping the override adds
        node = yaml.MappingNode("tag:yaml.org,2002:map", [], key.start_mark, key.end_mark)
    pairs = list(node.value)
    i = next((i for i, (k, _) in enumerate(pairs) if k.value == part), None)
    if i is not None and rest:
        pairs[i] = (pairs[i][0], _set_node(pairs[i][1], rest, key, value))
        return _mapping_node(node, pairs)
    assert key is not None  # a removal's path is there all the way (see above)
    child = _set_node(None, rest, key, value) if rest else value
    entry = (yaml.ScalarNode("tag:yaml.org,2002:str", part, key.start_mark, key.end_mark), child)
    if i is None:
        pairs.append(entry)
    else:
        pairs[i] = (pairs[i][0] if rest else entry[0], entry[1])
    return _mapping_node(node, pairs)


def _mapping_node(like: yaml.MappingNode, pairs: list) -> yaml.MappingNode:
    return yaml.MappingNode(like.tag, pairs, like.start_mark, like.end_mark, like.flow_style)


def _format_problem(error: dict[str, Any], root: yaml.Node | None, source: str,
                    model: type[BaseModel],
                    origins: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(yaml.path, line)`` of a pydantic error: the line ``FILE:LINE: yaml.path: message``,
    or ``--set KEY=VALUE: message`` for a value an override (by origin in ``origins``, its key
    the value) put there."""
    loc = list(error["loc"])
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    # Cross-field messages carry their own path ("links.x.bandwidth.match: ...").
    head = msg.split(": ", 1)[0]
    if ": " in msg and all(part.replace("_", "").replace("-", "").isalnum()
                           for part in head.split(".")) and \
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
    if origins and file in origins:
        return where, f"{file}: {msg}" if where == origins[file] else f"{file}: {where}: {msg}"
    return where, f"{file}:{line}: {where}: {msg}"


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
