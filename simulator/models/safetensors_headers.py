"""safetensors headers: a file's keys, dtypes and shapes, and whether it is complete, read
without loading any tensor (stdlib only: importing this module imports neither torch nor
safetensors, so ``semlink --help`` can name weight files).

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
(``{key: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``) and the
data; a file shorter than ``8 + n`` plus the largest end offset was cut off (a half-finished
download).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from semlink.errors import InputError

__all__ = ["FLOAT_CODES", "read_safetensors_header", "float_dtype", "format_si",
           "index_file_names"]

FLOAT_CODES = frozenset({"F64", "F32", "F16", "BF16"})
"""safetensors dtype codes of floating-point tensors."""

_DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                "I64": "int64", "I32": "int32"}
_MAX_HEADER = 100 * 2**20


def index_file_names(index: Path, weight_map: Mapping[str, object]) -> list[str]:
    """The file names a diffusers index's ``weight_map`` lists (each once, in order), checked
    to be plain names of files beside ``index``: no folder part, ``..`` or absolute path,
    which would read a file outside the weights folder.

    :raises InputError: One line naming ``index`` and the first name that is not one.

    >>> index_file_names(Path("unet/x.index.json"), {"a": "m-1.safetensors", "b": "m-1.safetensors"})
    ['m-1.safetensors']
    >>> index_file_names(Path("unet/x.index.json"), {"a": "../../etc/passwd"})
    Traceback (most recent call last):
    ...
    semlink.errors.InputError: unet/x.index.json: weight_map names '../../etc/passwd'; an index lists files of its own folder (plain names, no '/', '\\', '..' or absolute paths)
    """
    names = list(dict.fromkeys(weight_map.values()))
    for name in names:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name \
                or Path(name).is_absolute() or Path(name).name != name:
            raise InputError(f"{index}: weight_map names {name!r}; an index lists files of its "
                             "own folder (plain names, no '/', '\\', '..' or absolute paths)")
    return names


def read_safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensors a safetensors file lists, after checking the file holds all their data.

    :param path: The ``.safetensors`` file.
    :output tensors: key -> (safetensors dtype code such as ``"F32"``, shape).
    :raises InputError: One line naming the file if it cannot be read, is not a safetensors
        file, or is truncated (shorter than its header says).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 0 or n > size - 8 or n > _MAX_HEADER:
                raise InputError(f"{path}: not a safetensors file (no valid header in its "
                                 f"{size} bytes).")
            raw = f.read(n)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err}).") from err
    try:
        header = json.loads(raw)
        header.pop("__metadata__", None)
        tensors = {k: (str(v["dtype"]), tuple(int(s) for s in v["shape"]))
                   for k, v in header.items()}
        end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise InputError(f"{path}: not a safetensors file (header is not valid).") from err
    if 8 + n + end > size:
        raise InputError(f"{path}: truncated safetensors file ({size} bytes; its header "
                         f"describes {8 + n + end}).")
    return tensors


def float_dtype(tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> str:
    """The floating dtype of a file's tensors (``{key: (safetensors dtype code, shape)}``, as a
    header lists them): ``"float32"``, ``"bfloat16"``, ... , ``"mixed"`` or ``"-"`` (none).

    >>> float_dtype({"w": ("BF16", (2, 2)), "n": ("I64", ())})
    'bfloat16'
    """
    codes = {code for code, _ in tensors.values() if code in FLOAT_CODES}
    if len(codes) == 1:
        return _DTYPE_NAMES[codes.pop()]
    return "mixed" if codes else "-"


def format_si(value: int, unit: str) -> str:
    """``value`` with an SI prefix (k, M, G) and ``unit``, for tables.

    >>> format_si(2_400_000_000, "B"), format_si(1500, ""), format_si(12, "B")
    ('2.4 GB', '1.5k', '12 B')
    """
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.1f}{' ' if unit else ''}{prefix}{unit}"
    return f"{value}{' ' if unit else ''}{unit}"
