"""Tests for semlink.channels.doppler and time-correlated fading in the Rayleigh and Rician channels:
the Jakes autocorrelation J0(2 pi nu k) (scipy's Bessel function as the reference), exactly
Rayleigh samples, BER against the closed forms, the documented draws, and errors."""
from __future__ import annotations

import math

import pytest
import scipy.special
import torch

from semlink.channels.doppler import jakes_process
from semlink.channels.rayleigh import RayleighChannel
from semlink.channels.rician import RicianChannel
from semlink.theory import ber_rayleigh


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("nu", [0.002, 0.02, 0.1])
def test_autocorrelation_is_the_jakes_bessel_function(nu):
    """Over 4000 processes the sample autocorrelation at lags up to 300 symbols is J0(2 pi nu k)
    within 5 standard errors (each process contributes one product per lag and start)."""
    h = jakes_process((4000,), 400, nu, generator=gen(1), dtype=torch.complex128)
    lags = torch.tensor([0, 1, 5, 20, 60, 150, 300])
    for lag in lags.tolist():
        products = h[:, lag:] * h[:, :h.shape[1] - lag].conj()  # E = J0, real
        estimate = products.mean().real
        # processes are independent; the samples along one are not: bound the spread by
        # the spread of the per-process means
        se = products.mean(dim=1).real.std() / math.sqrt(h.shape[0])
        truth = scipy.special.j0(2 * math.pi * nu * lag)
        assert abs(float(estimate) - truth) < 5 * float(se) + 1e-3, (lag, float(estimate), truth)
        assert abs(float(products.mean().imag)) < 5 * float(se) + 1e-3  # symmetric spectrum


def test_every_sample_is_unit_rayleigh_even_with_few_sinusoids():
    """Given the angles a sample is a sum of independent CN(0, 1/M) terms: CN(0, 1) for any M.
    Two sinusoids still give |h|^2 ~ Exp(1): mean 1, E|h|^4 = 2, P(|h|^2 < 0.05) = 1 - e^-0.05
    (unit-gain sinusoids would give |h|^2 <= 4 and no Rayleigh deep fades)."""
    h = jakes_process((200_000,), 3, 0.05, num_sinusoids=2, generator=gen(2))
    power = h.abs().square().double()
    assert float(power.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(power.square().mean()) == pytest.approx(2.0, abs=0.05)
    assert float((power < 0.05).double().mean()) == pytest.approx(1 - math.exp(-0.05), rel=0.03)
    assert abs(float(h.real.mean())) < 0.01 and abs(float((h * h).mean().abs())) < 0.01


def test_slow_fading_is_smooth_and_fast_fading_decorrelates():
    """E|h(t) - h(0)|^2 = 2 - 2 J0(2 pi nu t): 0.0078 after 199 symbols at f_D T_s = 1e-4
    (nearly constant), and at f_D T_s = 1/2 neighbours are anti-correlated (J0(pi) = -0.304)."""
    slow = jakes_process((4000,), 200, 1e-4, generator=gen(3), dtype=torch.complex128)
    drift = float((slow[:, -1] - slow[:, 0]).abs().square().mean())
    assert drift == pytest.approx(2 - 2 * scipy.special.j0(2 * math.pi * 1e-4 * 199), rel=0.1)
    fast = jakes_process((20_000,), 2, 0.5, generator=gen(4), dtype=torch.complex128)
    assert float((fast[:, 1] * fast[:, 0].conj()).mean().real) == pytest.approx(
        scipy.special.j0(math.pi), abs=0.02)


@pytest.mark.parametrize("antennas, ebno_db", [(1, 10.0), (2, 5.0)])
def test_bpsk_ber_over_doppler_fading_matches_the_closed_form(antennas, ebno_db):
    """Uncoded BER depends on the samples' law only, so correlated fading gives the i.i.d.
    closed form (L-branch MRC: semlink.theory.ber_rayleigh) while a channel realisation
    spans many coherence times: 2000 rows of 500 symbols at f_D T_s = 0.01."""
    b = torch.randint(0, 2, (2000, 500), generator=gen(5)).float()
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    channel = RayleighChannel(normalized_doppler=0.01, num_rx_antennas=antennas,
                              generator=gen(6))
    x_hat, _ = channel(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    theory = float(ber_rayleigh(ebno_db, 2, num_rx_antennas=antennas))
    assert errors >= 1000
    assert errors / b.numel() == pytest.approx(theory, rel=0.15)


def test_the_channel_draws_the_process_then_the_noise_then_the_csi_error():
    """Documented draws: the Jakes process of (batch, antenna) from the generator, then the
    noise, then (imperfect CSI) one estimation error per symbol; equalised by MRC."""
    batch, antennas, n, nu, s2, snr_db = 3, 2, 40, 0.03, 0.1, 7.0
    x = torch.polar(torch.ones(batch, n), torch.rand(batch, n, generator=gen(7)) * 6.0)
    x_hat, no_eff, h = RayleighChannel(normalized_doppler=nu, num_rx_antennas=antennas,
                                       csi_error_var=s2, return_channel=True,
                                       generator=gen(8))(x, snr_db)
    g = gen(8)
    h_est = math.sqrt(1 - s2) * jakes_process((batch, antennas), n, nu, generator=g)
    noise = torch.randn((batch, antennas * n), dtype=torch.complex64,
                        generator=g).reshape(batch, antennas, n)
    error = torch.randn((batch, antennas * n), dtype=torch.complex64,
                        generator=g).reshape(batch, antennas, n)
    h_true = h_est + math.sqrt(s2) * error
    n0 = 10 ** (-snr_db / 10)
    y = h_true * x[:, None] + math.sqrt(n0) * noise
    gain2 = h_est.abs().square().sum(1)
    torch.testing.assert_close(h, h_true)
    torch.testing.assert_close(x_hat, (y * h_est.conj()).sum(1) / gain2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(no_eff, (n0 + s2) / gain2, rtol=1e-5, atol=0.0)


def test_rician_doppler_fades_the_scattering_around_a_fixed_line_of_sight():
    """h = sqrt(K/(K+1)) + sqrt(1/(K+1)) g with g the Jakes process: mean the line of sight,
    autocovariance J0(2 pi nu k) / (K + 1)."""
    k = 10 ** 0.5
    _, _, h = RicianChannel(k_factor_db=5.0, normalized_doppler=0.05, return_channel=True,
                            generator=gen(9))(torch.ones(3000, 30, dtype=torch.complex64), 30.0)
    los = math.sqrt(k / (k + 1))
    assert float(h.real.mean()) == pytest.approx(los, abs=0.01)
    g = (h - los).to(torch.complex128)
    for lag in (0, 3, 10):
        cov = float((g[:, lag:] * g[:, :30 - lag].conj()).mean().real)
        assert cov == pytest.approx(scipy.special.j0(2 * math.pi * 0.05 * lag) / (k + 1),
                                    abs=0.01)


def test_block_fading_draws_are_unchanged_and_errors():
    x = torch.ones(2, 9, dtype=torch.complex64)
    plain = RayleighChannel(coherence_symbols=3, generator=gen(10))(x, 5.0)
    again = RayleighChannel(coherence_symbols=3, normalized_doppler=None, generator=gen(10))(
        x, 5.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, again))
    with pytest.raises(ValueError, match=r"`normalized_doppler` replaces block fading: "
                                         r"`coherence_symbols` must be 1; got 3"):
        RayleighChannel(coherence_symbols=3, normalized_doppler=0.1)
    for bad in (0.0, 0.6, float("nan")):
        with pytest.raises(ValueError, match=r"`normalized_doppler` must be in \(0, 0.5\]"):
            RayleighChannel(normalized_doppler=bad)
    with pytest.raises(ValueError, match=r"`normalized_doppler` must be in \(0, 0.5\]"):
        jakes_process((1,), 4, -0.1)
    with pytest.raises(ValueError, match=r"`dtype` must be torch.complex64 or"):
        jakes_process((1,), 4, 0.1, dtype=torch.float32)
    with pytest.raises(TypeError, match=r"`normalized_doppler` must be"):
        RayleighChannel(normalized_doppler="fast")
