"""Error-rate intervals over independent units: coverage of a closed form where errors come in
clusters (slot-static Rayleigh fading), agreement with Clopper-Pearson where they do not."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from semlink.error_rates import (clopper_pearson, design_effect, effective_errors,
                                 unit_interval)
from semlink.links.ber import simulate_ber_point
from semlink.scenario import AWGNConfig, BERLinkConfig, MonteCarloConfig, RayleighConfig


def rayleigh_qpsk_ber(ebno_db: float) -> float:
    """Gray QPSK over flat Rayleigh fading with perfect CSI, per bit: its I and Q bits are two
    BPSK decisions at Eb/N0 = g, so ``P_b = 0.5 (1 - sqrt(g / (1 + g)))``, BPSK's average of
    Q(sqrt(2 |h|^2 g)) over |h|^2 ~ Exp(1) (Proakis, Digital Communications, 4th ed.,
    eq. 14.3-7)."""
    g = 10.0 ** (ebno_db / 10.0)
    return 0.5 * (1.0 - math.sqrt(g / (1.0 + g)))


def slot_fading_counts(replicates: int, ebno_db: float, slots: int,
                       symbols: int) -> list[tuple[int, int, int, int]]:
    """``(errors, bits, units, errors_squared)`` of ``replicates`` independent runs of Gray
    QPSK over ``slots`` slots of ``symbols`` symbols, every symbol of a slot through the same
    Rayleigh gain h ~ CN(0, 1), perfect CSI, coherent decisions; Es = 1, so
    N0 = 1 / (2 Eb/N0). A slot is the unit."""
    gen = torch.Generator().manual_seed(1)
    no = 1.0 / (2.0 * 10.0 ** (ebno_db / 10.0))
    shape = (replicates, slots, symbols)
    h = torch.randn(replicates, slots, 1, dtype=torch.complex64, generator=gen)  # E|h|^2 = 1
    bits = torch.randint(0, 2, (*shape, 2), generator=gen)
    x = torch.complex(1.0 - 2.0 * bits[..., 0], 1.0 - 2.0 * bits[..., 1]) / math.sqrt(2.0)
    y = h * x + math.sqrt(no) * torch.randn(shape, dtype=torch.complex64, generator=gen)
    z = h.conj() * y  # [replicates, slots, symbols]; derotated with the known gain
    decided = torch.stack([z.real < 0, z.imag < 0], dim=-1).long()
    per_slot = (decided != bits).sum(dim=(2, 3))  # [replicates, slots]
    return [(int(e), slots * symbols * 2, slots, int(q)) for e, q in
            zip(per_slot.sum(dim=1).tolist(), per_slot.square().sum(dim=1).tolist())]


def test_the_closed_form_matches_theory_module():
    from semlink.theory import ber_rayleigh

    assert rayleigh_qpsk_ber(15.0) == pytest.approx(float(ber_rayleigh(15.0, 4)), rel=1e-12)


@pytest.mark.parametrize("ebno_db, slots, symbols", [(15.0, 400, 64), (25.0, 2000, 16)])
def test_unit_interval_covers_slot_static_fading_and_the_bitwise_one_does_not(
        ebno_db, slots, symbols):
    """200 independent runs of slot-static fading (about 4 and 1.5 error-bearing slots in 100
    at these SNRs): the 95 % interval over slots covers the closed form in about 95 % of them
    (>= 88 %: a binomial 200 at 0.95 falls below 176 with probability < 1e-3), Clopper-Pearson
    over the bits, which takes them as independent, in less than 75 % (measured: 95 and
    93.5 %, against 26.5 and 58.5 %)."""
    truth = rayleigh_qpsk_ber(ebno_db)
    new = old = 0
    for errors, bits, units, squared in slot_fading_counts(200, ebno_db, slots, symbols):
        low, high = unit_interval(errors, bits, units, squared)
        new += low <= truth <= high
        low, high = clopper_pearson(errors, bits)
        old += low <= truth <= high
    assert new >= 176, new
    assert old < 150, old


def test_unit_interval_is_clopper_pearson_for_independent_errors():
    """Uncoded QPSK over AWGN through the BER link (errors independent from bit to bit): the
    ends of the interval over its 400 rows stay within 1 % of Clopper-Pearson's over the bits,
    never inside them (the design effect is not taken below 1), and the stop rule's effective
    errors within 10 % of the bit errors."""
    link = BERLinkConfig(type="ber", modulation=4, codeword_length=256)
    mc = MonteCarloConfig(target_bit_errors=10**9, min_bits=102_400, max_bits=102_400,
                          batch_bits=102_400)
    for seed in range(3):
        c = simulate_ber_point(link, AWGNConfig(type="awgn"), 4.0, snr_kind="ebno",
                               monte_carlo=mc, seed=seed, device="cpu")
        assert c.units == c.blocks == 400 and c.bits == 102_400
        low, high = unit_interval(c.bit_errors, c.bits, c.units, c.bit_errors_squared)
        cp_low, cp_high = clopper_pearson(c.bit_errors, c.bits)
        assert low == pytest.approx(cp_low, rel=0.01) and high == pytest.approx(cp_high, rel=0.01)
        assert low <= cp_low and high >= cp_high
        eff = effective_errors(c.bit_errors, c.bits, c.units, c.bit_errors_squared)
        assert 0.9 * c.bit_errors <= eff <= c.bit_errors


def test_the_stop_rule_counts_fades_not_bits():
    """Slot-static fading (one fade per 64-symbol row): 20 effective errors take about 20 rows
    in error, not 20 bit errors (which one deep fade gives at once); the same point over AWGN
    stops at the first batch with 20 bit errors."""
    link = BERLinkConfig(type="ber", modulation=4, codeword_length=128)
    mc = MonteCarloConfig(target_bit_errors=20, min_bits=1000, max_bits=10**6, batch_bits=1280)
    faded = simulate_ber_point(link, RayleighConfig(type="rayleigh", coherence_symbols=64), 15.0,
                               snr_kind="ebno", monte_carlo=mc, seed=0, device="cpu")
    assert faded.block_errors >= 15 and faded.bit_errors >= 100
    assert effective_errors(faded.bit_errors, faded.bits, faded.units,
                            faded.bit_errors_squared) >= 20
    plain = simulate_ber_point(link, AWGNConfig(type="awgn"), 2.0, snr_kind="ebno",
                               monte_carlo=mc, seed=0, device="cpu")
    assert 20 <= plain.bit_errors < 20 + 100  # one batch of 1280 bits gives about 48


def test_design_effect_by_hand_and_edges():
    # 10 of 100 units with 10 errors each, 100 bits a unit: s^2 = (1000 - 100^2/100) / 99.
    p, spread = 100 / 10_000, (1000 - 100) / 99
    deff = spread / (100 * 100 ** 2) / (p * (1 - p) / 10_000)
    assert design_effect(100, 10_000, 100, 1000) == pytest.approx(deff, rel=1e-12)
    assert design_effect(100, 10_000, 100, 100) == 1.0  # spread below binomial: 1
    assert design_effect(0, 10_000, 100, 0) == 1.0
    assert design_effect(7, 100, 1, 49) == 7.0  # one unit: all its errors one effective error
    assert effective_errors(7, 100, 1, 49) == 1.0


def test_unit_interval_edges_and_korn_graubard_sample_size():
    assert unit_interval(0, 1000, 10, 0) == clopper_pearson(0, 1000)
    assert unit_interval(1000, 1000, 10, 100_000) == clopper_pearson(1000, 1000)
    assert all(math.isnan(v) for v in unit_interval(0, 0, 0, 0))
    assert all(math.isnan(v) for v in unit_interval(5, 100, 1, 25))
    # Clopper-Pearson at p = E/N over N / deff * (z / t_{n-1})^2 trials
    errors, bits, units, squared = 100, 10_000, 100, 1000
    n_eff = bits / design_effect(errors, bits, units, squared) * (
        stats.norm.ppf(0.975) / stats.t.ppf(0.975, units - 1)) ** 2
    e_eff = errors / bits * n_eff
    low, high = unit_interval(errors, bits, units, squared)
    assert low == pytest.approx(stats.beta.ppf(0.025, e_eff, n_eff - e_eff + 1), rel=1e-12)
    assert high == pytest.approx(stats.beta.ppf(0.975, e_eff + 1, n_eff - e_eff), rel=1e-12)
