"""Schema of the ``python`` link: a user's own link, a Python class named in the scenario.

::

    links:
      mine:
        type: python
        class: my_links:DownsampleLink     # MODULE:CLASS, or the name of an entry point
        options: {factor: 4}               # DownsampleLink(context, factor=4)

``class`` is ``MODULE:ATTRIBUTE`` (a module importable from the scenario file's folder, which is
searched first, or from the Python path; ATTRIBUTE may be dotted, ``Outer.Inner``) or the NAME of
an entry point of the group ``semlink.links`` that an installed package registers
(``[project.entry-points."semlink.links"] NAME = "package.module:Class"``). The class is built as
``Class(context, **options)`` (a :class:`~semlink.links.protocol.LinkContext`) and must implement
:class:`~semlink.links.protocol.ImageLink` (:mod:`semlink.links.user` checks it;
docs/user-links.md).

Loading a scenario from a file checks, without running any of the module's code, that the
module's file exists where Python would find it and defines the name at its top level, or that
the entry point is registered. Torch-free: the class is imported when the link is built.
"""
from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import importlib.util
import keyword
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from semlink.scenario.limits import _Frozen

if TYPE_CHECKING:
    from semlink.links.protocol import LinkContext

__all__ = ["ENTRY_POINT_GROUP", "PythonLinkConfig", "locate_link_class", "split_class_spec"]

#: Entry point group under which packages register link classes by name.
ENTRY_POINT_GROUP = "semlink.links"
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_SPEC = re.compile(rf"({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER}(?:\.{_IDENTIFIER})*)")
_ENTRY_POINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class PythonLinkConfig(_Frozen):
    """A user's link: the Python class ``class`` names, built with ``options``
    (docs/user-links.md)."""

    type: Literal["python"]
    class_: str = Field(alias="class", description="MODULE:CLASS (a module beside the scenario "
                        "file or on the Python path) or the name of an entry point of group "
                        "semlink.links.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the "
                                    "class: Class(context, **options).")
    scoring: Literal["concealed", "paper"] = Field(
        "concealed", description="How the images the link flags as failed are scored: "
        "concealed, the image it returns; paper, the paper's constants (PSNR 0, SSIM 0, "
        "LPIPS 1, FID 500).")

    kind: ClassVar[str] = "image"

    @field_validator("class_")
    @classmethod
    def _class(cls, value: str, info: ValidationInfo) -> str:
        split_class_spec(value)  # the syntax, wherever the scenario comes from
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is not None:
            problem = locate_link_class(value, Path(base_dir))
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("options")
    @classmethod
    def _keywords(cls, options: dict[str, Any]) -> dict[str, Any]:
        bad = [key for key in options if not key.isidentifier() or keyword.iskeyword(key)]
        if bad:
            raise ValueError(f"keys are the class's keyword arguments (Python identifiers); "
                             f"got {bad[0]!r}")
        if "context" in options:
            raise ValueError("'context' is the LinkContext the class gets first; name the "
                             "option otherwise")
        return options

    def build(self, context: LinkContext):
        """The user's class, built and checked (:func:`semlink.links.user.build_user_link`)."""
        from semlink.links.user import build_user_link

        return build_user_link(self, context)


def split_class_spec(spec: str) -> tuple[str | None, str]:
    """``(module, attribute)`` of ``MODULE:ATTRIBUTE``, or ``(None, name)`` of an entry point
    name.

    :raises ValueError: If ``spec`` is neither.

    >>> split_class_spec("my_links:DownsampleLink"), split_class_spec("downsample")
    (('my_links', 'DownsampleLink'), (None, 'downsample'))
    """
    match = _SPEC.fullmatch(spec)
    if match:
        return match.group(1), match.group(2)
    if ":" not in spec and _ENTRY_POINT.fullmatch(spec):
        return None, spec
    raise ValueError(f"must be MODULE:CLASS (e.g. my_links:DownsampleLink) or the name of an "
                     f"entry point of group {ENTRY_POINT_GROUP}; got {spec!r}")


def locate_link_class(spec: str, base_dir: Path) -> str:
    """Why ``spec`` cannot name a class here, found without running any module's code
    (``""`` if nothing is wrong as far as that can tell).

    A module is looked for in ``base_dir`` first, then where ``import`` looks; a package's
    submodules in its folders. The attribute's first part must be defined at the module's top
    level (a class, function, assignment or import), unless the module can define names in ways
    a reader cannot see (``from ... import *``, a module ``__getattr__``) or is no Python
    source. An entry point must be registered in group :data:`ENTRY_POINT_GROUP`.
    """
    module, attribute = split_class_spec(spec)
    if module is None:
        names = sorted({ep.name for ep in importlib.metadata.entry_points(
            group=ENTRY_POINT_GROUP)})
        if attribute in names:
            return ""
        return (f"no entry point {attribute!r} in group {ENTRY_POINT_GROUP} (installed: "
                f"{', '.join(names) or 'none'}); give MODULE:CLASS, or install the package "
                "that registers it")
    spec_found, problem = _find_module(module, base_dir)
    if problem:
        return problem
    origin = getattr(spec_found, "origin", None)
    if not (isinstance(origin, str) and origin.endswith(".py")):
        return ""  # a compiled or namespace module: nothing to read
    try:
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"), filename=origin)
    except (OSError, UnicodeDecodeError, SyntaxError) as err:
        return f"cannot read module {module!r} ({origin}): {err}"
    top = attribute.split(".")[0]
    defined = _top_level_names(tree)
    if top in defined or "*" in defined or "__getattr__" in defined:
        return ""
    return f"module {module!r} ({origin}) defines no {top!r} at its top level"


def _find_module(module: str, base_dir: Path):
    """``(spec, "")`` of ``module`` found as an import from ``base_dir`` first would find it,
    without importing anything; ``(None, problem)`` if it is not there."""
    parts = module.split(".")
    found = importlib.machinery.PathFinder.find_spec(parts[0], [str(base_dir)])
    if found is None:
        try:
            found = importlib.util.find_spec(parts[0])  # a top-level name imports nothing
        except (ImportError, ValueError):
            found = None
    if found is None:
        return None, (f"no module {parts[0]!r} in the scenario's folder ({base_dir}) or on the "
                      "Python path")
    for depth in range(1, len(parts)):
        locations = found.submodule_search_locations
        if locations is None:
            return None, f"{'.'.join(parts[:depth])!r} is a module, not a package"
        name = ".".join(parts[:depth + 1])
        found = importlib.machinery.PathFinder.find_spec(name, list(locations))
        if found is None:
            return None, f"no module {name!r} (package {'.'.join(parts[:depth])!r} is in " \
                         f"{', '.join(locations)})"
    return found, ""


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (``*`` for a star import)."""
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []) or [])
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names
