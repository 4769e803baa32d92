"""Device names: which are accepted, what ``auto`` becomes, and how a device is described."""
from __future__ import annotations

import pytest
import torch

from semlink.devices import describe_device, is_device_name, resolve_device
from semlink.errors import InputError
from tests.threads import torch_threads


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_accepted_device_names(name):
    assert is_device_name(name)


@pytest.mark.parametrize("name", ["tpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "mps", ""])
def test_rejected_device_names_are_one_line_errors_naming_the_field(name):
    assert not is_device_name(name)
    with pytest.raises(InputError, match=r"^device: must be auto, cpu, cuda or cuda:N") as error:
        resolve_device(name)
    assert "\n" not in str(error.value)


def test_auto_is_cuda_only_where_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_cuda_requested_without_cuda_or_beyond_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"'cuda' requested but CUDA is not available here"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(InputError, match=r"'cuda:2' requested but this machine has 2 CUDA"):
        resolve_device("cuda:2")


def test_a_cpu_is_described_with_its_thread_count():
    with torch_threads(1):
        assert describe_device("cpu").startswith("cpu (") and describe_device("cpu").endswith(
            ", 1 threads)")


def test_a_gpu_is_described_with_its_model(monkeypatch):
    names = {0: "NVIDIA H200", 1: "NVIDIA A6000"}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: names[device.index or 0])
    assert describe_device("cuda") == "cuda (NVIDIA H200)"
    assert describe_device("cuda:1") == "cuda:1 (NVIDIA A6000)"
