"""Argument checks shared by semlink's packages: one message style for every bad parameter."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "check_type",
    "check_int",
    "check_positive",
    "check_in_range",
    "check_one_of",
    "check_broadcasts_to",
    "check_complex",
    "sionna_device",
]


def check_type(value: Any, types: type | tuple[type, ...], *, name: str) -> None:
    """Raise TypeError unless ``value`` is an instance of ``types`` (``bool`` is not an ``int``)."""
    types_tuple = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types_tuple:
        raise TypeError(f"`{name}` must be {_type_names(types_tuple)}; got {value!r}.")
    if not isinstance(value, types_tuple):
        raise TypeError(f"`{name}` must be {_type_names(types_tuple)}; got {value!r}.")


def check_int(value: Any, *, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an int (not bool) in ``[low, high]``; raise otherwise."""
    check_type(value, int, name=name)
    check_in_range(value, name=name, low=low, high=high)
    return value


def check_positive(value: Any, *, name: str, strict: bool = True) -> float:
    """Return ``value`` as float if it is a real number > 0 (>= 0 when ``strict`` is False)."""
    check_type(value, (int, float), name=name)
    if value != value or (value <= 0 if strict else value < 0):  # NaN fails too
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"`{name}` must be {bound}; got {value!r}.")
    return float(value)


def check_in_range(value: Any, *, name: str, low: float | None = None,
                   high: float | None = None) -> None:
    """Raise ValueError unless ``low <= value <= high`` (``None`` = unbounded)."""
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        raise ValueError(f"`{name}` must be in [{lo}, {hi}]; got {value!r}.")


def check_one_of(value: Any, allowed: Iterable[Any], *, name: str) -> None:
    """Raise ValueError unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def check_broadcasts_to(t: torch.Tensor, shape: torch.Size | tuple[int, ...], *, name: str) -> None:
    """Raise ValueError unless tensor ``t`` broadcasts to ``shape`` without changing it."""
    try:
        out = torch.broadcast_shapes(tuple(t.shape), tuple(shape))
    except RuntimeError:
        out = None
    if out != tuple(shape):
        raise ValueError(f"`{name}` of shape {tuple(t.shape)} must broadcast to {tuple(shape)}.")


def check_complex(t: torch.Tensor, *, name: str) -> None:
    """Raise TypeError unless ``t`` is a complex tensor."""
    if not isinstance(t, torch.Tensor) or not t.is_complex():
        got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise TypeError(f"`{name}` must be a complex tensor; got {got}.")


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def sionna_device(device: str | torch.device | None) -> str | None:
    """``device`` as Sionna's blocks name it: Sionna accepts ``cpu`` and ``cuda:N`` only, so
    a bare ``cuda`` (torch's current CUDA device) becomes ``cuda:N``; None stays None
    (Sionna's default device).

    >>> sionna_device("cpu"), sionna_device(None)
    ('cpu', None)
    """
    if device is None:
        return None
    device = str(device)
    if device == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return device
