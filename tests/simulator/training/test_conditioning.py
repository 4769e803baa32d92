"""Noisy conditioning: the channel's noise power at the drawn SNRs, drops, the noise-free option."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.modulation.analog import AnalogDemapper, AnalogMapper, estimate_symbols
from semlink.channel import build_channel
from semlink.scenario import AWGNConfig, RayleighConfig
from semlink.training.conditioning import NoisyConditioning
from semlink.training.config import ConditioningConfig

SHAPE = (16, 6, 6)


def _cond(**kwargs):
    gen = torch.Generator().manual_seed(11)
    return NoisyConditioning(ConditioningConfig(**kwargs), shape=SHAPE, generator=gen, device="cpu")


def test_awgn_error_power_matches_snr():
    # analog mapping at unit power: error variance per real value = mean(z^2) * 10^(-snr/10)
    cond = _cond(snr_min_db=10.0, snr_max_db=10.0, drop_prob=0.0)
    z = torch.randn(200, *SHAPE) * 3.0
    zhat, snr_db = cond(z)
    assert torch.all(snr_db == 10.0)
    err = (zhat - z).square().mean(dim=(1, 2, 3))
    expected = z.square().mean(dim=(1, 2, 3)) * 0.1
    n = 200 * math.prod(SHAPE)
    # sample variance of n Gaussian values: relative sigma sqrt(2/n); 5 sigma
    assert float(err.sum() / expected.sum()) == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))


def test_snr_uniform_in_range():
    cond = _cond(snr_min_db=1.0, snr_max_db=20.0, drop_prob=0.0)
    _, snr_db = cond(torch.randn(2000, *SHAPE))
    assert float(snr_db.min()) >= 1.0 and float(snr_db.max()) <= 20.0
    # mean of U(1, 20): 10.5, sigma = 19/sqrt(12 * 2000)
    assert float(snr_db.mean()) == pytest.approx(10.5, abs=5 * 19 / math.sqrt(12 * 2000))


def test_drop_fraction():
    cond = _cond(noise="none", drop_prob=0.25)
    z = torch.randn(4000, *SHAPE)
    zhat, snr_db = cond(z)
    zero = (zhat == 0).all(dim=(1, 2, 3))
    kept = ~zero
    assert torch.equal(zhat[kept], z[kept]) and bool(torch.isnan(snr_db).all())
    p = 0.25
    assert float(zero.float().mean()) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / 4000))


def test_gradient_reaches_z_and_same_seed_same_noise():
    z = torch.randn(4, *SHAPE, requires_grad=True)
    a, _ = _cond(drop_prob=0.0)(z)
    b, _ = _cond(drop_prob=0.0)(z)
    assert torch.equal(a, b)
    a.sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


def test_default_channel_is_awgn():
    assert isinstance(ConditioningConfig().channel, AWGNConfig)


def test_drops_are_independent_of_the_snr():
    """Dropping a row (for classifier-free guidance) is a draw of its own: the dropped rows'
    SNRs are uniform over the range like the kept ones (mean 10.5 dB for 1..20 dB), not the low
    or the high ones. 1000 rows each side: sigma of a mean 19 / sqrt(12 * 1000) = 0.17 dB."""
    cond = _cond(snr_min_db=1.0, snr_max_db=20.0, drop_prob=0.5)
    zhat, snr_db = cond(torch.randn(2000, *SHAPE))
    dropped = (zhat == 0).all(dim=(1, 2, 3))
    assert 800 < int(dropped.sum()) < 1200
    tol = 5 * 19 / math.sqrt(12 * 800)
    assert float(snr_db[dropped].mean()) == pytest.approx(10.5, abs=tol)
    assert float(snr_db[~dropped].mean()) == pytest.approx(10.5, abs=tol)


@pytest.mark.parametrize("estimate", ["lmmse", "noise-matched"])
def test_the_receivers_estimate_is_applied_as_at_inference(estimate):
    """With ``estimate`` Zhat is the demapped estimate of the channel's output, recomputed here
    from the same draws (the SNR first, then the channel, from the one generator)."""
    fading = RayleighConfig(type="rayleigh", coherence_symbols=4)
    cond = _cond(channel=fading, snr_min_db=3.0, snr_max_db=3.0, drop_prob=0.0,
                 estimate=estimate)
    z = torch.randn(4, *SHAPE)
    zhat, _ = cond(z)
    gen = torch.Generator().manual_seed(11)
    torch.rand(4, generator=gen)  # the SNR draw
    x, scale = AnalogMapper(shape=SHAPE)(z)
    x_hat, no_eff = build_channel(fading, generator=gen, device="cpu")(x, torch.full((4,), 3.0))
    expected = AnalogDemapper(shape=SHAPE)(estimate_symbols(x_hat, no_eff, estimate), scale)
    torch.testing.assert_close(zhat, expected)
    plain, _ = _cond(channel=fading, snr_min_db=3.0, snr_max_db=3.0, drop_prob=0.0)(z)
    assert not torch.allclose(zhat, plain)
