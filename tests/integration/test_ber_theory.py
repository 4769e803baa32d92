"""Uncoded BER of the whole BER link (bits -> QAM -> channel -> LLR -> decisions) against theory.

The reference is computed here, independently of Sionna and of ``simulator.theory``: the bit error
probability of binary-reflected Gray PAM per real dimension, integrating the Gaussian over every
decision region (square M-QAM = two independent sqrt(M)-PAM).
"""
from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from simulator.links.ber import ber_link_rate, simulate_ber_point
from simulator.scenario import AWGNConfig, BERLinkConfig, MonteCarloConfig, RayleighConfig
from tests.ber_reference import gray_pam_ber


def test_reference_matches_textbook_bpsk_and_qpsk():
    for ebno_db in (0.0, 4.0, 8.0):
        q = norm.sf(math.sqrt(2 * 10 ** (ebno_db / 10)))
        assert gray_pam_ber(ebno_db, 2) == pytest.approx(q, rel=1e-12)
        assert gray_pam_ber(ebno_db, 4) == pytest.approx(q, rel=1e-12)


CASES = [(m, e) for m, points in {2: (0, 4, 7), 4: (0, 4, 7), 16: (2, 6, 10), 64: (6, 10, 13)}.items()
         for e in points]


@pytest.mark.parametrize("modulation, ebno_db", CASES)
def test_uncoded_awgn_ber_matches_theory(modulation, ebno_db):
    theory = gray_pam_ber(ebno_db, modulation)
    # >= 400 expected errors, capped so every point is quick; at least 200 are asserted.
    bits = int(min(max(400 / theory, 50_000), 600_000))
    mc = MonteCarloConfig(target_bit_errors=10**9, min_bits=1000, max_bits=bits, batch_bits=bits)
    counts = simulate_ber_point(BERLinkConfig(type="ber", modulation=modulation),
                                AWGNConfig(type="awgn"), ebno_db, snr_kind="ebno",
                                monte_carlo=mc, seed=modulation * 100 + ebno_db, device="cpu")
    assert counts.bit_errors >= 200
    assert counts.bit_errors / counts.bits == pytest.approx(theory, rel=0.10)


@pytest.mark.parametrize("modulation", [2, 4])
@pytest.mark.parametrize("ebno_db", [0.0, 10.0])
def test_uncoded_rayleigh_fast_fading_matches_closed_form(modulation, ebno_db):
    g = 10 ** (ebno_db / 10)
    theory = 0.5 * (1 - math.sqrt(g / (1 + g)))
    bits = int(max(500 / theory, 50_000))
    mc = MonteCarloConfig(target_bit_errors=10**9, min_bits=1000, max_bits=bits, batch_bits=bits)
    counts = simulate_ber_point(BERLinkConfig(type="ber", modulation=modulation),
                                RayleighConfig(type="rayleigh", coherence_symbols=1),
                                ebno_db, snr_kind="ebno", monte_carlo=mc, seed=7, device="cpu")
    assert counts.bit_errors >= 200
    assert counts.bit_errors / counts.bits == pytest.approx(theory, rel=0.10)


def test_stop_rule_and_seed():
    mc = MonteCarloConfig(target_bit_errors=100, min_bits=20_000, max_bits=10**6, batch_bits=10_000)
    link = BERLinkConfig(type="ber", modulation=4)
    a = simulate_ber_point(link, AWGNConfig(type="awgn"), 2.0, snr_kind="ebno", monte_carlo=mc,
                           seed=3, device="cpu")
    b = simulate_ber_point(link, AWGNConfig(type="awgn"), 2.0, snr_kind="ebno", monte_carlo=mc,
                           seed=3, device="cpu")
    assert a == b
    assert a.bits >= 20_000 and a.bit_errors >= 100  # stopped by the error target, not max_bits
    assert a.bits < 10**6
    assert a.esno_db == pytest.approx(2.0 + 10 * math.log10(2))


@pytest.mark.parametrize("modulation, n, payload", [(16, 2048, 1000), (64, 2046, 999)])
def test_coded_link_snr_refers_to_payload_bits(modulation, n, payload):
    """Coded BER links: n is the codeword length rounded down to whole symbols, k = n / 2, and
    Eb/N0 is per payload bit (the 24 CRC bits are overhead): Es/N0 = Eb/N0 + 10 log10(
    log2(M) * (k - 24) / n), both ways round. One batch of 1 or 2 code blocks is enough."""
    link = BERLinkConfig(type="ber", modulation=modulation, code_rate=0.5)
    bps = int(math.log2(modulation))
    assert ber_link_rate(link) == (bps, n, pytest.approx(payload / n, rel=1e-15))
    offset = 10 * math.log10(bps * payload / n)
    mc = MonteCarloConfig(target_bit_errors=1, target_block_errors=1, min_bits=1, max_bits=1,
                          batch_bits=1000)
    counts = simulate_ber_point(link, AWGNConfig(type="awgn"), 3.0, snr_kind="ebno",
                                monte_carlo=mc, seed=1, device="cpu")
    assert counts.bits == counts.blocks * payload == math.ceil(1000 / payload) * payload
    assert (counts.ebno_db, counts.esno_db) == (3.0, pytest.approx(3.0 + offset, abs=1e-12))
    counts = simulate_ber_point(link, AWGNConfig(type="awgn"), 3.0, snr_kind="esno",
                                monte_carlo=mc, seed=1, device="cpu")
    assert (counts.esno_db, counts.ebno_db) == (3.0, pytest.approx(3.0 - offset, abs=1e-12))
