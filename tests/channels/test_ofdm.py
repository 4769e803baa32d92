"""Tests for semlink.channels.ofdm: BER vs closed forms, LS vs perfect CSI, slot mapping, contracts.

Fading set-up for the closed-form comparison: TDL-A, 1 us RMS delay spread, 100 m/s at
3.5 GHz, 72 subcarriers at 30 kHz, 14 OFDM symbols. The coherence bandwidth (~1/(5 * 1 us)
= 200 kHz, about 7 subcarriers) gives ~10 independent fades per OFDM symbol, and the maximum
Doppler of 1.2 kHz (0.6 per 0.5 ms slot) decorrelates the channel within a slot; every slot is
an independent realisation. With 256 slots the run-to-run spread of the measured BER is about
2-3 % (checked over seeds), so the 15 % tolerance is > 5 sigma. Each resource element sees
h ~ CN(0, 1) (normalised TDL power delay profile), so with perfect CSI the per-bit BER is the
flat Rayleigh closed form 0.5 (1 - sqrt(g / (1 + g))).
"""
from __future__ import annotations

import math

import pytest
import sionna.phy
import torch
from scipy.special import erfc

from semlink.channels.ofdm import MODELS, OFDMSISOChannel, pack_slots, unpack_slots

DATA_PER_SLOT = 72 * 12  # defaults: 72 subcarriers x (14 - 2 pilot) OFDM symbols
FADING = {"model": "TDL-A", "delay_spread_s": 1e-6, "speed_mps": 100.0}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def qpsk_bits(batch: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random bits [batch, n, 2] and Gray QPSK [batch, n] with Es = 1."""
    b = torch.randint(0, 2, (batch, n, 2), generator=gen(seed)).float()
    return b, torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2)


def bit_errors(x_hat: torch.Tensor, b: torch.Tensor) -> int:
    b_hat = torch.stack([x_hat.real < 0, x_hat.imag < 0], dim=-1).float()
    return int((b_hat != b).sum())


def awgn_ber(ebno_db: float) -> float:
    return 0.5 * erfc(math.sqrt(10 ** (ebno_db / 10)))  # Q(sqrt(2 Eb/N0))


def rayleigh_ber(ebno_db: float) -> float:
    g = 10 ** (ebno_db / 10)
    return 0.5 * (1 - math.sqrt(g / (1 + g)))


QPSK_EBNO_TO_ESNO = 10 * math.log10(2)


# --- BER against closed forms ---------------------------------------------------------------

@pytest.mark.parametrize("ebno_db", [1.0, 4.0])
def test_static_channel_qpsk_ber_matches_awgn(ebno_db):
    # p = 5.6e-2, 1.25e-2; 4.4e5 bits -> >= 5500 errors, rel. sigma <= 1.4 %, 10 % > 7 sigma
    b, x = qpsk_bits(4, 64 * DATA_PER_SLOT - 100, 1)
    ch = OFDMSISOChannel(model="AWGN", generator=gen(2))
    x_hat, _ = ch(x, ebno_db + QPSK_EBNO_TO_ESNO)
    errors = bit_errors(x_hat, b)
    ber, theory = errors / b.numel(), awgn_ber(ebno_db)
    print(f"OFDM static QPSK Eb/N0={ebno_db} dB: BER {ber:.4e} vs AWGN theory {theory:.4e} "
          f"(ratio {ber / theory:.3f}, {errors} errors)")
    assert errors >= 200
    assert ber == pytest.approx(theory, rel=0.10)


@pytest.mark.parametrize("ebno_db", [4.0, 10.0])
def test_tdl_perfect_csi_ber_matches_rayleigh(ebno_db):
    b, x = qpsk_bits(8, 32 * DATA_PER_SLOT, 3)  # 256 slots
    ch = OFDMSISOChannel(**FADING, channel_estimation="perfect", generator=gen(4))
    x_hat, no_eff = ch(x, ebno_db + QPSK_EBNO_TO_ESNO)
    errors = bit_errors(x_hat, b)
    ber, theory = errors / b.numel(), rayleigh_ber(ebno_db)
    print(f"OFDM TDL-A perfect CSI QPSK Eb/N0={ebno_db} dB: BER {ber:.4e} vs Rayleigh theory "
          f"{theory:.4e} (ratio {ber / theory:.3f}, {errors} errors)")
    assert errors >= 200
    assert ber == pytest.approx(theory, rel=0.15)
    z = (x_hat - x) / no_eff.sqrt()  # CN(0, 1) given the channel
    assert float(z.abs().square().mean()) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("interpolation", ["nn", "lin"])
def test_ls_estimation_is_no_better_than_perfect_csi(interpolation):
    """Same generator seed -> the same channel and noise; only the receiver's CSI differs."""
    ebno_db = 10.0
    b, x = qpsk_bits(4, 16 * DATA_PER_SLOT, 5)  # 64 slots
    out = {}
    for est in ("perfect", "ls"):
        ch = OFDMSISOChannel(**FADING, channel_estimation=est, interpolation=interpolation,
                             generator=gen(6))
        x_hat, _ = ch(x, ebno_db + QPSK_EBNO_TO_ESNO)
        out[est] = (bit_errors(x_hat, b) / b.numel(), float((x_hat - x).abs().square().mean()))
    ratio = out["ls"][0] / out["perfect"][0]
    gap_db = 10 * math.log10(out["ls"][1] / out["perfect"][1])
    print(f"OFDM TDL-A LS-{interpolation} vs perfect CSI at Eb/N0={ebno_db} dB: BER "
          f"{out['ls'][0]:.4e} vs {out['perfect'][0]:.4e} (ratio {ratio:.2f}); "
          f"post-equalisation error power gap {gap_db:.2f} dB")
    assert out["ls"][0] >= out["perfect"][0]
    assert out["ls"][1] >= out["perfect"][1]
    assert out["ls"][0] < 0.25  # the estimator works at all (random guessing gives 0.5)


def test_ls_over_static_channel_costs_3db_and_no_eff_accounts_for_it():
    """LS at a unit-power pilot has error variance N0; 'nn' reuses it, so at high SNR the
    post-equalisation error is about N0 (noise) + N0 |x|^2 (estimation error) = 2 N0."""
    b, x = qpsk_bits(4, 16 * DATA_PER_SLOT, 7)
    ch = OFDMSISOChannel(model="AWGN", channel_estimation="ls", interpolation="nn",
                         generator=gen(8))
    x_hat, no_eff = ch(x, 20.0)
    mse = float((x_hat - x).abs().square().mean())
    assert 10 * math.log10(mse / 0.01) == pytest.approx(10 * math.log10(2), abs=0.3)
    assert float(no_eff.mean()) == pytest.approx(0.02, rel=0.05)


def test_noise_level_per_row_follows_measured_power():
    amp = torch.tensor([0.2, 1.0, 5.0])
    snr_db = torch.tensor([0.0, 10.0, 20.0])
    _, x = qpsk_bits(3, 20_000, 9)
    x = x * amp[:, None]
    x_hat, no_eff = OFDMSISOChannel(model="AWGN", generator=gen(10))(x, snr_db)
    n0 = amp ** 2 / 10 ** (snr_db / 10)
    torch.testing.assert_close(no_eff, n0[:, None].expand(3, 20_000), rtol=1e-4, atol=0.0)
    # 2e4 samples per row: rel. sigma of the variance 0.7 %; 5 % > 7 sigma
    torch.testing.assert_close((x_hat - x).abs().square().mean(1), n0, rtol=0.05, atol=0.0)


@pytest.mark.parametrize("model", [m for m in MODELS if m != "AWGN"])
def test_every_fading_model_gives_unit_normalised_error_with_perfect_csi(model):
    _, x = qpsk_bits(2, 4 * DATA_PER_SLOT, 11)
    x_hat, no_eff = OFDMSISOChannel(model=model, delay_spread_s=300e-9, speed_mps=10.0,
                                    generator=gen(12))(x, 10.0)
    z = (x_hat - x) / no_eff.sqrt()
    # 6912 samples of |z|^2 ~ Exp(1): sigma of the mean 0.012
    assert float(z.abs().square().mean()) == pytest.approx(1.0, abs=0.07)
    assert bool(torch.isfinite(x_hat).all())


# --- slot mapping -------------------------------------------------------------------------

@pytest.mark.parametrize("n, slots, pad", [
    (1, 1, 863), (863, 1, 1), (864, 1, 0), (865, 2, 863), (1151, 2, 577), (5000, 6, 184)])
def test_slot_counts(n, slots, pad):
    ch = OFDMSISOChannel(model="AWGN")
    assert ch.num_data_symbols == DATA_PER_SLOT
    assert ch.num_slots(n) == slots and ch.num_padding(n) == pad


@pytest.mark.parametrize("n", [1, 1151, 5000])
def test_pack_unpack_is_exact(n):
    x = torch.randn(3, n, dtype=torch.complex64, generator=gen(n))
    slots, pad = pack_slots(x, DATA_PER_SLOT)
    assert slots.shape == (3, -(-n // DATA_PER_SLOT), DATA_PER_SLOT)
    assert bool((slots.reshape(3, -1)[:, n:] == 0).all())
    assert torch.equal(unpack_slots(slots, pad), x)


@pytest.mark.parametrize("n", [1, 1151, 5000])
@pytest.mark.parametrize("model", ["AWGN", "TDL-B"])
def test_noiseless_round_trip(model, n):
    """No noise: the equaliser inverts the channel, so x_hat = x for any n (mapping order
    mismatches between mapper and equaliser would break this under frequency selectivity)."""
    x = torch.randn(3, n, dtype=torch.complex64, generator=gen(n)) * 2
    x_hat, no_eff = OFDMSISOChannel(model=model, delay_spread_s=1e-6, speed_mps=50.0,
                                    generator=gen(1))(x, float("inf"))
    torch.testing.assert_close(x_hat, x, rtol=1e-4, atol=1e-4)
    assert bool((no_eff >= 0).all()) and float(no_eff.max()) < 1e-5


def test_zero_row_and_empty_input():
    x = torch.ones(2, 10, dtype=torch.complex64)
    x[1] = 0
    x_hat, no_eff = OFDMSISOChannel(model="TDL-A", generator=gen(0))(x, 10.0)
    assert bool((x_hat[1] == 0).all()) and bool((no_eff[1] >= 0).all())
    assert float(no_eff[1].max()) < 1e-6
    x_hat, no_eff = OFDMSISOChannel(model="AWGN")(torch.ones(2, 0, dtype=torch.complex64), 1.0)
    assert x_hat.shape == (2, 0) and no_eff.shape == (2, 0)


@pytest.mark.parametrize("estimation", ["perfect", "ls"])
def test_the_interleaver_moves_each_symbol_to_its_resource_element_and_back(estimation):
    """Symbol j of an interleaved row travels on the resource element that symbol inv[j] of a
    plain row uses (inv = argsort(perm)): with the same channel and noise draws, its effective
    noise is that element's, and with perfect CSI (x_hat = x + noise / h, whatever x is) so is
    its error, with x_hat back in the row's order. (LS estimation scales x by the estimate's
    error, so there the error depends on the symbol.)"""
    from semlink.channels.ofdm import interleaver

    n = 1500
    x = qpsk_bits(2, n, 3)[1]
    inverse = torch.argsort(interleaver(n))
    out = {}
    for interleave in (False, True):
        ch = OFDMSISOChannel(model="TDL-C", delay_spread_s=300e-9, speed_mps=3.0,
                             channel_estimation=estimation, interleave=interleave,
                             generator=gen(4))
        out[interleave] = ch(x, 8.0)
    (plain, no_plain), (moved, no_moved) = out[False], out[True]
    torch.testing.assert_close(no_moved, no_plain[:, inverse], rtol=1e-4, atol=1e-7)
    assert not torch.allclose(no_moved, no_plain, rtol=1e-2)
    if estimation == "perfect":
        torch.testing.assert_close(moved - x, (plain - x)[:, inverse], rtol=1e-4, atol=1e-5)
    assert interleaver(n).tolist() == interleaver(n).tolist()  # part of the waveform: fixed
    assert sorted(interleaver(n).tolist()) == list(range(n))


def test_the_interleaver_breaks_up_the_peaks_of_a_smooth_row():
    """A slowly varying row (an AR(1) process with correlation 0.99 from symbol to symbol,
    like an embedding's neighbouring values) puts its power on few time samples; interleaved,
    its OFDM signal is Gaussian-like again: exceeded by 0.1 % of the samples at about 8.4 dB
    (exp(-g) = 1e-3), and 12 dB by 1 % of the samples before, a few in 1e5 after."""
    from semlink.channels.papr import papr_db, power_ccdf

    g = gen(5)
    n = 4 * DATA_PER_SLOT
    white = torch.complex(torch.randn(8, n, generator=g), torch.randn(8, n, generator=g))
    smooth = torch.zeros_like(white)
    smooth[:, 0] = white[:, 0]
    for i in range(1, n):
        smooth[:, i] = 0.99 * smooth[:, i - 1] + math.sqrt(1 - 0.99 ** 2) * white[:, i]
    level = {}
    for interleave in (False, True):
        signal = OFDMSISOChannel(model="AWGN", interleave=interleave).time_signal(smooth)
        ccdf = power_ccdf(signal, [8.4, 12.0], reference_power=1.0).tolist()
        level[interleave] = ccdf
    assert level[False][1] > 1e-2 and level[True][1] < 1e-4
    assert 2e-4 < level[True][0] < 3e-3
    assert float(papr_db(smooth).mean()) == pytest.approx(float(papr_db(smooth[:, torch.randperm(
        n, generator=gen(6))]).mean()))  # a single carrier does not care about the order


# --- randomness, shapes ---------------------------------------------------------------------

@pytest.mark.parametrize("model", ["TDL-A", "TDL-D", "CDL-C", "CDL-E"])
@pytest.mark.parametrize("estimation", ["perfect", "ls"])
def test_determinism_uses_only_the_generator(model, estimation):
    x = qpsk_bits(2, 900, 13)[1]

    def run(seed: int, global_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        sionna.phy.config.seed = global_seed
        ch = OFDMSISOChannel(model=model, speed_mps=30.0, channel_estimation=estimation,
                             generator=gen(seed))
        return ch(x, 5.0)

    a, b, c = run(1, 100), run(1, 200), run(2, 100)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # Sionna's seed plays no part
    assert not torch.equal(a[0], c[0])


def test_default_generator_follows_sionna_seed():
    """Without a generator both the fading and the noise draws follow ``sionna.phy.config.seed``:
    the same seed reproduces, another seed changes the fading (under perfect CSI ``no_eff`` =
    N0 / |h|^2 depends on the channel alone) and the noise (model AWGN has no fading)."""
    x = qpsk_bits(2, 900, 14)[1]

    def run(seed: int, model: str) -> tuple[torch.Tensor, torch.Tensor]:
        sionna.phy.config.seed = seed
        return OFDMSISOChannel(model=model, channel_estimation="perfect")(x, 5.0)

    a, b, c = run(3, "TDL-C"), run(3, "TDL-C"), run(4, "TDL-C")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])  # the fading draw follows the seed
    assert not torch.equal(run(3, "AWGN")[0], run(4, "AWGN")[0])  # so does the noise


@pytest.mark.parametrize("precision, cdtype, rdtype", [
    ("single", torch.complex64, torch.float32), ("double", torch.complex128, torch.float64)])
def test_shapes_and_dtypes(precision, cdtype, rdtype):
    x = torch.ones(3, 1000, dtype=torch.complex64)
    x_hat, no_eff = OFDMSISOChannel(model="TDL-E", channel_estimation="ls", precision=precision,
                                    generator=gen(0))(x, torch.tensor([0.0, 5.0, 10.0]))
    assert x_hat.shape == (3, 1000) and no_eff.shape == (3, 1000)
    assert x_hat.dtype == cdtype and no_eff.dtype == rdtype


def test_guard_carriers_dc_null_and_empty_pilots():
    ch = OFDMSISOChannel(model="TDL-A", fft_size=64, num_guard_carriers=(4, 3), dc_null=True,
                         pilot_pattern="empty", generator=gen(0))
    assert ch.num_data_symbols == (64 - 7 - 1) * 14
    x = torch.randn(2, 2000, dtype=torch.complex64, generator=gen(1))
    x_hat, _ = ch(x, float("inf"))
    torch.testing.assert_close(x_hat, x, rtol=1e-4, atol=1e-4)
    ch = OFDMSISOChannel(model="TDL-A", fft_size=64, num_guard_carriers=(4, 3), dc_null=True,
                         pilot_ofdm_symbol_indices=[3], channel_estimation="ls",
                         interpolation="lin_time_avg", generator=gen(0))
    assert ch.num_data_symbols == (64 - 7 - 1) * 13
    x_hat, _ = ch(x, 30.0)
    # One pilot symbol, its LS estimate held over the static slot: at 30 dB the equalised
    # symbols are x up to a few per cent of its power (0.5 to 6 % over seeds; a wrong
    # estimate or interpolation gives an error of the order of x itself).
    assert x_hat.shape == (2, 2000)
    assert float((x_hat - x).abs().square().mean() / x.abs().square().mean()) < 0.2


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    ({"model": "TDL-F"}, ValueError, r"`model` must be one of 'AWGN', 'TDL-A', .*'CDL-E'; got 'TDL-F'"),
    ({"model": "tdl-a"}, ValueError, r"`model` must be one of .*; got 'tdl-a'"),
    ({"model": 1}, TypeError, r"`model` must be str; got 1"),
    ({"delay_spread_s": -1e-9}, ValueError, r"`delay_spread_s` must be in \[0.0, 1e-05\]; got -1e-09"),
    ({"delay_spread_s": 1e-3}, ValueError, r"`delay_spread_s` must be in \[0.0, 1e-05\]"),
    ({"delay_spread_s": "300ns"}, TypeError, r"`delay_spread_s` must be int or float"),
    ({"speed_mps": -1.0}, ValueError, r"`speed_mps` must be in \[0.0, 500.0\]; got -1.0"),
    ({"speed_mps": float("nan")}, ValueError, r"`speed_mps` must be in \[0.0, 500.0\]; got nan"),
    ({"carrier_frequency_hz": 1e8}, ValueError,
     r"`carrier_frequency_hz` must be in \[500000000.0, 100000000000.0\]; got 100000000.0"),
    ({"fft_size": 0}, ValueError, r"`fft_size` must be in \[1, 4096\]; got 0"),
    ({"fft_size": 8192}, ValueError, r"`fft_size` must be in \[1, 4096\]; got 8192"),
    ({"fft_size": 64.0}, TypeError, r"`fft_size` must be int; got 64.0"),
    ({"fft_size": True}, TypeError, r"`fft_size` must be int; got True"),
    ({"subcarrier_spacing_hz": 0.0}, ValueError, r"`subcarrier_spacing_hz` must be > 0; got 0.0"),
    ({"subcarrier_spacing_hz": 1e7}, ValueError,
     r"`subcarrier_spacing_hz` must be in \[1000.0, 1000000.0\]; got 10000000.0"),
    ({"num_ofdm_symbols": 0}, ValueError, r"`num_ofdm_symbols` must be in \[1, 140\]; got 0"),
    ({"cyclic_prefix_length": 73}, ValueError, r"`cyclic_prefix_length` must be in \[0, 72\]; got 73"),
    ({"cyclic_prefix_length": -1}, ValueError, r"`cyclic_prefix_length` must be in \[0, 72\]"),
    ({"num_guard_carriers": 4}, TypeError, r"`num_guard_carriers` must be tuple or list; got 4"),
    ({"num_guard_carriers": (1, 2, 3)}, ValueError, r"`num_guard_carriers` must be a pair"),
    ({"num_guard_carriers": (-1, 0)}, ValueError, r"`num_guard_carriers` must be in \[0, inf\]; got -1"),
    ({"num_guard_carriers": (36, 36)}, ValueError,
     r"`num_guard_carriers` must leave at least one subcarrier: sum \+ dc_null in \[0, 71\]"),
    ({"dc_null": 1}, TypeError, r"`dc_null` must be bool; got 1"),
    ({"pilot_pattern": "comb"}, ValueError, r"`pilot_pattern` must be one of 'kronecker', 'empty'; got 'comb'"),
    ({"pilot_ofdm_symbol_indices": ()}, ValueError,
     r"`pilot_ofdm_symbol_indices` must hold 1 to 13 indices"),
    ({"pilot_ofdm_symbol_indices": tuple(range(14))}, ValueError,
     r"`pilot_ofdm_symbol_indices` must hold 1 to 13 indices"),
    ({"pilot_ofdm_symbol_indices": (2, 14)}, ValueError,
     r"`pilot_ofdm_symbol_indices` must be in \[0, 13\]; got 14"),
    ({"pilot_ofdm_symbol_indices": (2, 2)}, ValueError, r"`pilot_ofdm_symbol_indices` must be distinct"),
    ({"pilot_ofdm_symbol_indices": 2}, TypeError, r"`pilot_ofdm_symbol_indices` must be tuple or list; got 2"),
    ({"pilot_ofdm_symbol_indices": (2.0,)}, TypeError, r"`pilot_ofdm_symbol_indices` must be int; got 2.0"),
    ({"channel_estimation": "lmmse"}, ValueError,
     r"`channel_estimation` must be one of 'perfect', 'ls'; got 'lmmse'"),
    ({"pilot_pattern": "empty", "channel_estimation": "ls"}, ValueError,
     r"`channel_estimation` must be 'perfect' with pilot_pattern='empty'; got 'ls'"),
    ({"interpolation": "cubic"}, ValueError,
     r"`interpolation` must be one of 'nn', 'lin', 'lin_time_avg'; got 'cubic'"),
    ({"check_values": "no"}, TypeError, r"`check_values` must be bool; got 'no'"),
    ({"generator": 7}, TypeError, r"`generator` must be Generator; got 7"),
    ({"interleave": 1}, TypeError, r"`interleave` must be bool; got 1"),
    ({"oversampling": 17}, ValueError, r"`oversampling` must be in \[1, 16\]; got 17"),
    ({"amplifier": "rapp"}, TypeError, r"`amplifier` must be PowerAmplifier; got 'rapp'"),
])
def test_constructor_raises(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        OFDMSISOChannel(**kwargs)


def test_call_and_helper_raises():
    ch = OFDMSISOChannel(model="AWGN", generator=gen(0))
    with pytest.raises(TypeError, match=r"`x` must be a complex tensor; got torch.float32"):
        ch(torch.ones(2, 5), 1.0)
    with pytest.raises(ValueError, match=r"`x` must have shape \[batch, n\]; got shape \(5,\)"):
        ch(torch.ones(5, dtype=torch.complex64), 1.0)
    with pytest.raises(ValueError, match=r"`snr_db` of shape \(3,\) must broadcast to \(2,\)"):
        ch(torch.ones(2, 5, dtype=torch.complex64), torch.zeros(3))
    with pytest.raises(ValueError, match=r"`snr_db` must be > -inf and not NaN"):
        ch(torch.ones(2, 5, dtype=torch.complex64), -float("inf"))
    with pytest.raises(ValueError, match=r"`n` must be in \[0, inf\]; got -1"):
        ch.num_slots(-1)
    with pytest.raises(ValueError, match=r"`slot_size` must be in \[1, inf\]; got 0"):
        pack_slots(torch.ones(1, 3), 0)
    with pytest.raises(ValueError, match=r"`num_pad` must be in \[0, 4\]; got 5"):
        unpack_slots(torch.ones(1, 2, 2), 5)


# --- TR 38.901 profiles behind the OFDM channel (semlink.channels._tr38901) -------------------------

# TR 38.901 Table 7.7.2-1 (TDL-A): normalised delays and powers (dB).
TDL_A_DELAYS = [0.0, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375,
                1.8978, 2.2242, 2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966,
                5.0066, 5.3043, 9.6586]
TDL_A_POWERS_DB = [-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7,
                   -12.4, -15.2, -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7]
# TR 38.901 Table 7.7.1-3 (CDL-C): normalised cluster delays.
CDL_C_DELAYS = [0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935,
                0.8213, 0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077,
                6.3065, 6.6374, 7.0427, 8.6523]
SPEED_OF_LIGHT = 299_792_458.0


def _time_correlation(a: torch.Tensor, lag: int) -> float:
    """E[sum_paths a(t) a*(0)] / E[sum_paths |a(0)|^2] over examples, a [..., paths, time]."""
    num = (a[..., lag] * a[..., 0].conj()).sum(-1).mean()
    return float(num.real / a[..., 0].abs().square().sum(-1).mean())


def test_tdl_profile_is_the_tr38901_table_scaled_by_the_delay_spread():
    """TDL-A at 300 ns: path delays = delay spread x the table's normalised delays, mean path
    powers = the table's powers normalised to a unit sum (a unit in the wrong place, or a
    delay spread that does not reach Sionna, changes every delay)."""
    from semlink.channels._tr38901 import GeneratorTDL
    tdl = GeneratorTDL(model="A", delay_spread=300e-9, carrier_frequency=3.5e9, speed=0.0,
                       generator=gen(0))
    a, tau = tdl(2000, 1, 1e6)  # a [2000, 1, 1, 1, 1, 23, 1], tau [2000, 1, 1, 23]
    torch.testing.assert_close(tau[0, 0, 0].double(), torch.tensor(TDL_A_DELAYS, dtype=torch.float64) * 300e-9,
                               rtol=1e-5, atol=0.0)
    powers = torch.tensor([10 ** (p / 10) for p in TDL_A_POWERS_DB], dtype=torch.float64)
    powers /= powers.sum()
    measured = a[..., 0].abs().square().mean(dim=(0, 1, 2, 3, 4)).double()  # [23]
    # 2000 Rayleigh draws per path: rel. sigma 2.2 %; 12 % > 5 sigma.
    strong = powers > 0.05
    torch.testing.assert_close(measured[strong], powers[strong], rtol=0.12, atol=0.0)
    assert float(measured.sum()) == pytest.approx(1.0, abs=0.05)


def test_tdl_doppler_is_clarke_at_speed_times_carrier():
    """100 m/s at 3.5 GHz: f_d = v f_c / c = 1167.5 Hz. Sionna's sum-of-sinusoids TDL follows
    Clarke's autocorrelation J0(2 pi f_d t) (checked at lags 0 .. 0.35 ms, through its first
    zero); a speed or carrier that does not reach the model leaves the channel static or
    decorrelates it at the wrong rate. 1000 examples: deviations ~0.01, tolerance 0.06."""
    from scipy.special import j0

    from semlink.channels._tr38901 import GeneratorTDL
    speed, carrier, dt = 100.0, 3.5e9, 50e-6
    fd = speed * carrier / SPEED_OF_LIGHT
    a, _ = GeneratorTDL(model="A", delay_spread=300e-9, carrier_frequency=carrier, speed=speed,
                        generator=gen(0))(1000, 8, 1 / dt)
    for lag in range(8):
        assert _time_correlation(a, lag) == pytest.approx(j0(2 * math.pi * fd * lag * dt),
                                                          abs=0.06), lag


def test_cdl_delays_and_doppler_scale_with_delay_spread_speed_and_carrier():
    """CDL-C: cluster delays = delay spread x TR 38.901 Table 7.7.1-3; a UE at rest gives a
    static channel; the ray phases rotate at v f_c / c cos(angle), so (v, f_c, dt),
    (v/2, f_c, 2 dt) and (v/2, 2 f_c, dt) give the same coefficients for the same draws. The
    spread of Doppler shifts is bounded: with f_r = f_d (v^.r^) and Sionna's direction draw
    (azimuth uniform, polar angle uniform in [0, pi]) E[(v^.r^)^2] lies in [1/4, 1/2], so the
    small-lag decorrelation 1 - c(dt) ~ (2 pi dt)^2 E[f_r^2] / 2 pins the speed actually used
    (all UEs at ``speed``, not spread between 0 and it)."""
    from semlink.channels._tr38901 import GeneratorCDL

    def run(speed: float, carrier: float, dt: float, batch: int = 200) -> tuple:
        cdl = GeneratorCDL(model="C", delay_spread=300e-9, carrier_frequency=carrier,
                           speed=speed, generator=gen(0))
        return cdl(batch, 8, 1 / dt)

    a, tau = run(100.0, 3.5e9, 50e-6)
    torch.testing.assert_close(tau[0, 0, 0].double().sort().values,
                               torch.tensor(sorted(CDL_C_DELAYS), dtype=torch.float64) * 300e-9, rtol=1e-5, atol=0.0)
    static, _ = run(0.0, 3.5e9, 50e-6)
    assert torch.equal(static[..., -1], static[..., 0])
    assert not torch.equal(a[..., -1], a[..., 0])
    torch.testing.assert_close(run(50.0, 3.5e9, 100e-6)[0], a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(run(50.0, 7e9, 50e-6)[0], a, rtol=1e-4, atol=1e-5)
    fd, dt = 100.0 * 3.5e9 / SPEED_OF_LIGHT, 50e-6
    a, _ = run(100.0, 3.5e9, dt, batch=500)
    for lag in range(1, 8):  # no ray faster than f_d: c(t) >= cos(2 pi f_d t) up to t = 1/(2 f_d)
        assert _time_correlation(a, lag) >= math.cos(2 * math.pi * fd * lag * dt) - 0.03
    spread = 2 * (1 - _time_correlation(a, 1)) / (2 * math.pi * fd * dt) ** 2  # E[f_r^2]/f_d^2
    assert 0.2 < spread < 0.55, spread
