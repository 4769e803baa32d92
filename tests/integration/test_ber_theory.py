"""Uncoded BER of the whole BER link (bits -> QAM -> channel -> LLR -> decisions) against theory.

The reference is computed here, independently of Sionna and of ``semlink.theory``: the bit error
probability of binary-reflected Gray PAM per real dimension, integrating the Gaussian over every
decision region (square M-QAM = two independent sqrt(M)-PAM).
"""
from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from semlink.error_rates import effective_errors
from semlink.links.ber import BERCounts, ber_link_rate, simulate_ber_point
from semlink.scenario import (AWGNConfig, BERLinkConfig, MonteCarloConfig, OFDMConfig,
                                RayleighConfig)
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


def test_uncoded_rayleigh_with_receive_diversity_matches_closed_form():
    """QPSK over fast fading, 3 receive antennas combined by MRC, at 4 dB Eb/N0 per antenna:
    ((1 - mu) / 2)^3 (1 + 3 (1 + mu) / 2 + 6 ((1 + mu) / 2)^2), mu = sqrt(g / (1 + g))."""
    g = 10 ** 0.4
    mu = math.sqrt(g / (1 + g))
    theory = ((1 - mu) / 2) ** 3 * (1 + 3 * (1 + mu) / 2 + 6 * ((1 + mu) / 2) ** 2)
    bits = int(max(600 / theory, 50_000))
    mc = MonteCarloConfig(target_bit_errors=10**9, min_bits=1000, max_bits=bits, batch_bits=bits)
    counts = simulate_ber_point(BERLinkConfig(type="ber", modulation=4),
                                RayleighConfig(type="rayleigh", num_rx_antennas=3),
                                4.0, snr_kind="ebno", monte_carlo=mc, seed=8, device="cpu")
    assert counts.bit_errors >= 300
    assert counts.bit_errors / counts.bits == pytest.approx(theory, rel=0.12)


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


def test_eb_n0_counts_the_pilots_of_a_phase_tracker():
    """Uncoded QPSK rows of 1024 symbols with a pilot block of 4 every 60 data symbols: 18
    intervals and 19 blocks, 76 pilots at the data's power, so each payload bit carries
    1100 / 1024 of a data bit's energy and Es/N0 = Eb/N0 + 10 log10(2 x 1024 / 1100)."""
    link = BERLinkConfig(type="ber", modulation=4, codeword_length=2048)
    channel = AWGNConfig(type="awgn", phase_tracking={"pilot_spacing": 60, "pilot_length": 4})
    mc = MonteCarloConfig(target_bit_errors=1, min_bits=1, max_bits=1, batch_bits=2048)
    counts = simulate_ber_point(link, channel, 4.0, snr_kind="ebno", monte_carlo=mc, seed=1,
                                device="cpu")
    assert counts.esno_db == pytest.approx(4.0 + 10 * math.log10(2 * 1024 / 1100), abs=1e-12)
    bare = simulate_ber_point(link, AWGNConfig(type="awgn"), 4.0, snr_kind="ebno",
                              monte_carlo=mc, seed=1, device="cpu")
    assert bare.esno_db == pytest.approx(4.0 + 10 * math.log10(2), abs=1e-12)


def test_eb_n0_on_ofdm_counts_its_pilots_and_cyclic_prefix():
    """Uncoded QPSK rows of 1024 symbols on the default grid (72 subcarriers, 14 symbols,
    pilots on 2 of them: 864 data elements a slot) take 2 slots and 2 x 144 pilots; the 6-sample
    prefix repeats 6 of every 72 samples: each payload bit carries 1312 / 1024 x 78 / 72 of a
    data bit's energy. Without pilots (perfect CSI) only the prefix is left."""
    link = BERLinkConfig(type="ber", modulation=4, codeword_length=2048)
    mc = MonteCarloConfig(target_bit_errors=1, min_bits=1, max_bits=1, batch_bits=2048)
    for section, energy in (({}, 1312 / 1024 * 78 / 72),
                            ({"pilot_ofdm_symbol_indices": [], "channel_estimation": "perfect",
                              "cyclic_prefix_length": 12}, 84 / 72)):
        channel = OFDMConfig(type="ofdm", model="none", **section)
        counts = simulate_ber_point(link, channel, 4.0, snr_kind="ebno", monte_carlo=mc, seed=1,
                                    device="cpu")
        assert counts.esno_db == pytest.approx(4.0 + 10 * math.log10(2 / energy), abs=1e-9)


def _point(link: BERLinkConfig, snr_db: float, **stop) -> BERCounts:
    batch_bits = 10_000 if link.code_rate is None else 1000
    mc = {"target_bit_errors": 10**9, "target_block_errors": 10**9, "min_bits": 1000,
          "batch_bits": batch_bits, **stop}
    return simulate_ber_point(link, AWGNConfig(type="awgn"), snr_db, snr_kind="ebno",
                              monte_carlo=MonteCarloConfig(**mc), seed=5, device="cpu")


QPSK = BERLinkConfig(type="ber", modulation=4)
QPSK_CODED = BERLinkConfig(type="ber", modulation=4, code_rate=0.5, codeword_length=256)


@pytest.mark.parametrize("link, snr_db, batch, stop, binding", [
    (QPSK, 2.0, 10_240, {"target_bit_errors": 1500, "max_bits": 10**7}, "bit_errors"),
    (QPSK_CODED, -1.0, 1040, {"target_bit_errors": 1, "target_block_errors": 25,
                               "max_bits": 10**7}, "block_errors"),
])
def test_a_point_stops_at_the_first_batch_that_reaches_its_error_targets(link, snr_db, batch,
                                                                          stop, binding):
    """The batches come from one random stream, so the same seed with ``max_bits`` one batch
    short reproduces the point's batches but the last: it must be short of the binding target
    (the point did not run a batch too many) while the full point reaches it (nor one too
    few). A batch is 5 uncoded rows of 2048 bits, or 10 code blocks of 104 payload bits.
    The bit target counts effective errors (bit errors over their design effect across the
    rows). For the coded link the bit target (1 error) is met batches earlier: the block target
    decides."""
    def count(c: BERCounts, what: str) -> float:
        if what == "bit_errors":
            return effective_errors(c.bit_errors, c.bits, c.units, c.bit_errors_squared)
        return getattr(c, what)

    full = _point(link, snr_db, **stop)
    assert full.bits % batch == 0 and full.bits >= 3 * batch
    short = _point(link, snr_db, max_bits=full.bits - batch)
    assert short.bits == full.bits - batch
    target = stop["target_" + binding]
    assert count(short, binding) < target <= count(full, binding)
    assert count(short, "bit_errors") >= stop["target_bit_errors"] or binding == "bit_errors"


def test_a_point_runs_min_bits_even_when_its_errors_came_first_and_stops_at_max_bits():
    """min_bits and max_bits are whole batches of 10,240 bits: 50,000 -> 5 batches although
    the 10-error target is met in the first; at 12 dB (no errors) max_bits 25,000 -> 3."""
    assert _point(QPSK, 2.0, target_bit_errors=10, min_bits=50_000, max_bits=10**6).bits == 51_200
    quiet = _point(QPSK, 12.0, target_bit_errors=10, max_bits=25_000)
    assert (quiet.bits, quiet.bit_errors) == (30_720, 0)
