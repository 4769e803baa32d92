"""Tests for semlink.channels._checks.sionna_device: Sionna 2 accepts only ``cpu`` and ``cuda:N`` as
device names (a bare ``cuda`` raised on the lent GPU machine), so a bare ``cuda`` becomes
torch's current ``cuda:N``."""
from __future__ import annotations

import torch

from semlink.channels._checks import sionna_device


def test_a_bare_cuda_becomes_the_current_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert sionna_device("cuda") == "cuda:1"
    assert sionna_device(torch.device("cuda")) == "cuda:1"
    assert sionna_device("cuda:0") == "cuda:0"


def test_other_names_pass_through():
    assert sionna_device("cpu") == "cpu"
    assert sionna_device(torch.device("cpu")) == "cpu"
    assert sionna_device(None) is None
