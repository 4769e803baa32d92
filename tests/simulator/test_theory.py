"""The closed forms drawn on BER plots equal independent computations: region integration over
AWGN (tests/ber_reference.py) and numerical averaging of the AWGN BER over Rayleigh fading."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from semlink.theory import ber_awgn, ber_rayleigh, ber_rician
from tests.ber_reference import gray_pam_ber

EBNO_DB = np.array([-2.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0])


@pytest.mark.parametrize("modulation", [2, 4, 16, 64, 256])
def test_awgn_closed_form_equals_region_integration(modulation):
    want = [gray_pam_ber(e, modulation) for e in EBNO_DB]
    got = ber_awgn(EBNO_DB, modulation)
    assert got.shape == EBNO_DB.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    assert float(ber_awgn(6.0, modulation)) == pytest.approx(gray_pam_ber(6.0, modulation))


@pytest.mark.parametrize("modulation", [2, 4])
def test_rayleigh_closed_form_equals_the_averaged_awgn_ber(modulation):
    for ebno_db in (0.0, 10.0, 20.0):
        mean = 10 ** (ebno_db / 10)
        # Gray BPSK/QPSK: Q(sqrt(2 g)) per bit, g exponential with mean Eb/N0.
        want, _ = quad(lambda g: norm.sf(math.sqrt(2 * g)) * math.exp(-g / mean) / mean,
                       0, math.inf)
        assert float(ber_rayleigh(ebno_db, modulation)) == pytest.approx(want, rel=1e-7)


@pytest.mark.parametrize("antennas", [2, 3, 4])
def test_rayleigh_diversity_closed_form_equals_the_averaged_awgn_ber(antennas):
    # MRC of L Rayleigh branches: the combined Eb/N0 is Gamma(L, g) (chi-square with 2L
    # degrees of freedom), the BER its average of Q(sqrt(2 g)).
    from scipy.stats import gamma

    for ebno_db in (0.0, 8.0, 15.0):
        mean = 10 ** (ebno_db / 10)
        want, _ = quad(lambda g: norm.sf(math.sqrt(2 * g)) * gamma.pdf(g, antennas, scale=mean),
                       0, math.inf, limit=200)
        got = float(ber_rayleigh(ebno_db, 2, num_rx_antennas=antennas))
        assert got == pytest.approx(want, rel=1e-6)
    assert float(ber_rayleigh(10.0, 4, 1)) == float(ber_rayleigh(10.0, 4))


@pytest.mark.parametrize("k_factor_db", [-3.0, 5.0, 12.0])
def test_rician_form_equals_the_awgn_ber_averaged_over_the_rice_law(k_factor_db):
    from scipy.stats import rice

    k = 10 ** (k_factor_db / 10)
    scale = math.sqrt(1 / (2 * (k + 1)))  # E|h|^2 = 1
    for ebno_db in (0.0, 8.0, 15.0):
        g = 10 ** (ebno_db / 10)
        want, _ = quad(lambda a: norm.sf(math.sqrt(2 * g) * a)
                       * rice.pdf(a, math.sqrt(2 * k), scale=scale), 0, math.inf, limit=200)
        assert float(ber_rician(ebno_db, 2, k_factor_db)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("antennas", [1, 3])
def test_rician_without_line_of_sight_is_rayleigh_and_with_a_strong_one_awgn(antennas):
    ebno_db = np.array([0.0, 6.0, 12.0])
    np.testing.assert_allclose(ber_rician(ebno_db, 4, -60.0, antennas),
                               ber_rayleigh(ebno_db, 4, antennas), rtol=1e-5)
    # K = 40 dB: the fading is nearly gone (at moderate BER); with L antennas the combined
    # Eb/N0 is L g.
    np.testing.assert_allclose(ber_rician(ebno_db[:2], 2, 40.0, antennas),
                               ber_awgn(ebno_db[:2] + 10 * np.log10(antennas), 2), rtol=0.02)


def test_imperfect_csi_forms_equal_averages_over_the_estimate():
    """With an estimation error of variance s2 the estimate has power 1 - s2 (Rician: K factor
    K / (1 - s2 (K + 1))) and the error adds noise s2 Es (QPSK: Es = 2 Eb): the BER is Q(sqrt(2
    |h_est|^2 Eb / (N0 + s2 Es))) averaged over the estimate's law, integrated here."""
    from scipy.stats import rice

    s2, g = 0.05, 10 ** 0.8  # 8 dB
    g_est = (1 - s2) * g / (1 + 2 * s2 * g)  # QPSK
    want, _ = quad(lambda u: norm.sf(math.sqrt(2 * u)) * math.exp(-u / g_est) / g_est,
                   0, math.inf)
    assert float(ber_rayleigh(8.0, 4, csi_error_var=s2)) == pytest.approx(want, rel=1e-7)
    k = 10 ** 0.6
    k_est = k / (1 - s2 * (k + 1))
    scale = math.sqrt(1 / (2 * (k_est + 1)))
    want, _ = quad(lambda a: norm.sf(math.sqrt(2 * g_est) * a)
                   * rice.pdf(a, math.sqrt(2 * k_est), scale=scale), 0, math.inf, limit=200)
    assert float(ber_rician(8.0, 4, 6.0, csi_error_var=s2)) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="csi_error_var"):
        ber_rayleigh(8.0, 2, csi_error_var=1.0)
    with pytest.raises(ValueError, match="csi_error_var"):
        ber_rician(8.0, 2, 6.0, csi_error_var=0.21)


def test_unsupported_orders_are_refused():
    with pytest.raises(ValueError, match="must be 2, 4, 16, 64 or 256; got 8"):
        ber_awgn(3.0, 8)
    with pytest.raises(ValueError, match="must be 2 or 4 for the Rayleigh closed form; got 16"):
        ber_rayleigh(3.0, 16)
    with pytest.raises(ValueError, match="num_rx_antennas"):
        ber_rayleigh(3.0, 2, num_rx_antennas=0)
    with pytest.raises(ValueError, match="must be 2 or 4 for the Rician closed form"):
        ber_rician(3.0, 16, 6.0)
    with pytest.raises(ValueError, match="k_factor_db"):
        ber_rician(3.0, 2, math.inf)
