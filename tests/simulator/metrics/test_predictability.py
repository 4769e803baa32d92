"""Pairwise spread of repeated reconstructions: exact zeros, hand-averaged pairs, batching."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from semlink.errors import InputError
from semlink.metrics import LPIPS, pairwise_spread, psnr_db
from tests.simulator.metrics.conftest import blur, jpeg, to_tensor


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).mean(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def lpips_random():
    return LPIPS(random_backbone=True, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def three_versions(photos):
    """One photo 64 x 64 crop, three different reconstructions of it: [3, 3, 64, 64]."""
    im = [photos[2].crop((200, 200, 264, 264))]
    return torch.cat([to_tensor(im), to_tensor(jpeg(im, 10)), to_tensor(blur(im, 2))])


def test_identical_reconstructions_give_exact_zero(three_versions, lpips_random):
    same = three_versions[:1].expand(25, -1, -1, -1).contiguous()
    spread = pairwise_spread(same, lpips_random, batch_size=64)
    assert spread.num_pairs == 300
    assert spread.mean.shape == () and float(spread.mean) == 0.0 and float(spread.std) == 0.0


def test_three_images_equal_hand_average(three_versions, lpips_random):
    a, b, c = (three_versions[i:i + 1] for i in range(3))
    pairs = torch.cat([lpips_random(a, b), lpips_random(a, c), lpips_random(b, c)])
    spread = pairwise_spread(three_versions, lpips_random, batch_size=2)
    assert spread.num_pairs == 3
    assert float(spread.mean) == pytest.approx(float(pairs.sum()) / 3, rel=1e-6)
    assert float(spread.std) == pytest.approx(float(np.std(pairs.numpy(), ddof=1)), rel=1e-5)
    assert float(spread.mean) > 0


def test_mse_pairs_against_numpy(three_versions):
    x = three_versions.numpy().astype(np.float64)
    values = [np.mean((x[i] - x[j]) ** 2) for i, j in itertools.combinations(range(3), 2)]
    spread = pairwise_spread(three_versions.double(), mse)
    assert float(spread.mean) == pytest.approx(np.mean(values), rel=1e-12)
    assert float(spread.std) == pytest.approx(np.std(values, ddof=1), rel=1e-10)


def test_batched_images_equal_single_calls(three_versions):
    gen = torch.Generator().manual_seed(1)
    stack = torch.stack([three_versions, torch.rand(3, 3, 64, 64, generator=gen)])  # [2, R=3, ...]
    batched = pairwise_spread(stack, psnr_db, batch_size=4)
    assert batched.mean.shape == (2,) and batched.std.shape == (2,)
    for i in range(2):
        single = pairwise_spread(stack[i], psnr_db)
        assert torch.equal(batched.mean[i], single.mean)
        assert torch.allclose(batched.std[i], single.std)


def test_two_reconstructions_have_nan_std(three_versions):
    spread = pairwise_spread(three_versions[:2], mse)
    assert spread.num_pairs == 1 and torch.isnan(spread.std)
    assert float(spread.mean) == pytest.approx(float(mse(three_versions[:1], three_versions[1:2])))


def test_errors(three_versions):
    with pytest.raises(ValueError, match=r"must have shape \[R >= 2, 3, H, W\]"):
        pairwise_spread(three_versions[:1], mse)
    with pytest.raises(ValueError, match=r"must have shape \[R >= 2, 3, H, W\]"):
        pairwise_spread(three_versions[0], mse)
    with pytest.raises(TypeError, match=r"`reconstructions` must be a floating tensor"):
        pairwise_spread((three_versions * 255).to(torch.uint8), mse)
    with pytest.raises(TypeError, match=r"`metric` must be callable; got str"):
        pairwise_spread(three_versions, "lpips")
    with pytest.raises(ValueError, match=r"`metric` must return a \[3\] tensor; got \(\)"):
        pairwise_spread(three_versions, lambda a, b: mse(a, b).mean())
    with pytest.raises(ValueError, match=r"`batch_size` must be in \[1, inf\]; got 0"):
        pairwise_spread(three_versions, mse, batch_size=0)


def test_default_metric_is_lpips_and_says_when_unavailable(three_versions, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(InputError, match=r"LPIPS-alex is unavailable: .*alexnet-owt-7be5be79"):
        pairwise_spread(three_versions)
