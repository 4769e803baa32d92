"""Tests for semlink.channels.rician: coefficient statistics, the documented draws, BPSK BER against
the average of the AWGN BER over the Rician power distribution (scipy's Rice law)."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm, rice

from semlink.channels.rayleigh import RayleighChannel
from semlink.channels.rician import RicianChannel


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rician_bpsk_ber(ebno_db: float, k_factor_db: float) -> float:
    """Q(sqrt(2 g |h|^2)) averaged over |h| ~ Rice: |h| / s is Rice(b = sqrt(2 K)) with
    s^2 = 1 / (2 (K + 1)), so that E|h|^2 = 1."""
    k, g = 10 ** (k_factor_db / 10), 10 ** (ebno_db / 10)
    scale = math.sqrt(1 / (2 * (k + 1)))
    return quad(lambda a: norm.sf(math.sqrt(2 * g) * a) * rice.pdf(a, math.sqrt(2 * k),
                                                                    scale=scale),
                0, math.inf, limit=200)[0]


@pytest.mark.parametrize("k_factor_db", [-5.0, 3.0, 10.0])
def test_coefficients_have_the_line_of_sight_mean_and_unit_power(k_factor_db):
    _, _, h = RicianChannel(k_factor_db=k_factor_db, return_channel=True,
                            generator=gen(1))(torch.ones(8, 20_000, dtype=torch.complex64), 10.0)
    k = 10 ** (k_factor_db / 10)
    assert float(h.real.mean()) == pytest.approx(math.sqrt(k / (k + 1)), abs=0.01)
    assert abs(float(h.imag.mean())) < 0.01
    assert float(h.abs().square().mean()) == pytest.approx(1.0, abs=0.01)
    assert float((h - h.mean()).abs().square().mean()) == pytest.approx(1 / (k + 1), rel=0.02)


def test_draws_are_the_rayleigh_draws_plus_the_line_of_sight_ray():
    """Same generator, same draw order: every coefficient is sqrt(K/(K+1)) + sqrt(1/(K+1)) g
    with g the Rayleigh channel's coefficient, over blocks and antennas."""
    x = torch.complex(torch.randn(2, 30, generator=gen(3)), torch.randn(2, 30, generator=gen(4)))
    kwargs = dict(coherence_symbols=4, num_rx_antennas=2, return_channel=True)
    _, no_ray, g = RayleighChannel(generator=gen(5), **kwargs)(x, 6.0)
    _, no_ric, h = RicianChannel(k_factor_db=6.0, generator=gen(5), **kwargs)(x, 6.0)
    k = 10 ** 0.6
    torch.testing.assert_close(h, math.sqrt(k / (k + 1)) + math.sqrt(1 / (k + 1)) * g)
    n0 = x.abs().square().mean(1, keepdim=True) / 10 ** 0.6
    torch.testing.assert_close(no_ric, n0 / h.abs().square().sum(1), rtol=1e-5, atol=0)
    assert not torch.allclose(no_ric, no_ray)


@pytest.mark.parametrize("k_factor_db, ebno_db", [(0.0, 6.0), (6.0, 6.0), (10.0, 4.0)])
def test_bpsk_ber_over_fast_rician_fading(k_factor_db, ebno_db):
    b = torch.randint(0, 2, (4, 250_000), generator=gen(7)).float()
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    x_hat, _ = RicianChannel(k_factor_db=k_factor_db, generator=gen(8))(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    assert errors >= 1000
    assert errors / b.numel() == pytest.approx(rician_bpsk_ber(ebno_db, k_factor_db), rel=0.08)


def test_bpsk_ber_with_imperfect_csi_over_rician_fading():
    """K = 6 dB, s2 = 0.05: the receiver's estimate is Rician with power 1 - s2 and K factor
    K / (1 - s2 (K + 1)), the error adds noise s2 Es: the BER is the Rice-averaged one (above)
    at that K and the mean Eb/N0 (1 - s2) g / (1 + s2 g), of an estimate of unit power."""
    k_db, s2, ebno_db = 6.0, 0.05, 6.0
    b = torch.randint(0, 2, (4, 250_000), generator=gen(17)).float()
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    x_hat, _ = RicianChannel(k_factor_db=k_db, csi_error_var=s2, generator=gen(18))(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    k, g = 10 ** (k_db / 10), 10 ** (ebno_db / 10)
    k_est, g_est = k / (1 - s2 * (k + 1)), (1 - s2) * g / (1 + s2 * g)
    theory = rician_bpsk_ber(10 * math.log10(g_est), 10 * math.log10(k_est))
    assert errors >= 1000
    assert errors / b.numel() == pytest.approx(theory, rel=0.08)
    with pytest.raises(ValueError, match="csi_error_var"):  # the scattering is 1/(K+1) = 0.2
        RicianChannel(k_factor_db=k_db, csi_error_var=0.21)


@pytest.mark.parametrize("k_factor_db, exc", [(math.inf, ValueError), (math.nan, ValueError),
                                              ("6", TypeError)])
def test_bad_k_factor(k_factor_db, exc):
    with pytest.raises(exc, match="k_factor_db"):
        RicianChannel(k_factor_db=k_factor_db)
