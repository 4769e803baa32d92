"""Shared fixtures: deterministic seeds and the CUDA marker."""
from __future__ import annotations

import pytest
import torch

from tests.threads import torch_threads


@pytest.fixture(autouse=True)
def _seed_everything():
    """Fix Sionna's and torch's global seeds so a test never depends on run order."""
    import sionna.phy

    sionna.phy.config.seed = 1234
    torch.manual_seed(1234)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """Run a module single-threaded: tiny models and LDPC decoding are far faster so on a
    shared, loaded CPU (use with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    with torch_threads(1):
        yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
