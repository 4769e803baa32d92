"""Exponential moving average of weights, and training checkpoints that resume exactly."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from semlink.channels._checks import check_type
from semlink.errors import InputError, describe_error

__all__ = ["EMA", "CHECKPOINT_FILE", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FILE = "checkpoint.pt"


class EMA:
    """Exponential moving average of the floating-point parameters of some modules.

    ``shadow = decay * shadow + (1 - decay) * param`` after each optimiser step, with the
    warm-up ``decay_t = min(decay, (1 + t) / (10 + t))`` at update ``t`` (as diffusers'
    ``EMAModel``), so early averages are not dominated by the random initialisation. Buffers
    (BatchNorm statistics) are not averaged: :meth:`copy_to` leaves them as they are.

    :param modules: Name -> module; the averaged parameters are those requiring grad.
    :param decay: float in [0, 1).
    """

    def __init__(self, modules: Mapping[str, torch.nn.Module], decay: float) -> None:
        check_type(decay, (int, float), name="decay")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"`decay` must be in [0, 1); got {decay!r}.")
        self.decay = float(decay)
        self.updates = 0
        self._params = {f"{name}.{key}": p for name, module in modules.items()
                        for key, p in module.named_parameters() if p.requires_grad}
        self.shadow = {k: p.detach().clone().float() for k, p in self._params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the average."""
        t = self.updates
        decay = min(self.decay, (1 + t) / (10 + t))
        for key, p in self._params.items():
            self.shadow[key].lerp_(p.detach().float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self) -> None:
        """Overwrite the live parameters with the averages."""
        for key, p in self._params.items():
            p.copy_(self.shadow[key].to(p.dtype))

    def swap(self) -> None:
        """Exchange live parameters and averages (call twice to undo)."""
        with torch.no_grad():
            for key, p in self._params.items():
                live = p.detach().clone().float()
                p.copy_(self.shadow[key].to(p.dtype))
                self.shadow[key] = live

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise InputError("checkpoint EMA does not match the trained parameters")
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically with ``torch.save``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code runs).

    :raises InputError: If the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InputError(f"{path}: unreadable checkpoint ({describe_error(err)})") from None
