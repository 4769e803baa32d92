"""Tests for the transmit amplifier on OFDM (semlink.channels.ofdm) and for semlink.channels.papr: the time
signal against a direct IDFT, the OFDM signal's Gaussian power CCDF, the Bussgang gain of a
clipped OFDM signal against its closed form, the channel's output against a second
implementation of the amplifier round trip (torch.fft, not Sionna's modulators), a linear
amplifier changing nothing, LS estimation absorbing the gain, and PAPR by hand."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.amplifier import PowerAmplifier
from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.papr import papr_db, power_ccdf


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian(batch: int, n: int, seed: int) -> torch.Tensor:
    g = gen(seed)
    return torch.complex(torch.randn(batch, n, generator=g), torch.randn(batch, n, generator=g))


def qpsk(batch: int, n: int, seed: int) -> torch.Tensor:
    bits = 1.0 - 2.0 * torch.randint(0, 2, (batch, n, 2), generator=gen(seed))
    return torch.complex(bits[..., 0], bits[..., 1]) / math.sqrt(2)


def test_time_signal_is_the_oversampled_idft_of_the_subcarriers():
    """With no pilots and no guards the data fill the grid row by row (OFDM symbol, then
    subcarrier k = 0 .. N-1 at frequency k - N // 2); sample t of a symbol is then
    sum_k X_k exp(j 2 pi (k - N // 2) t / (L N)) / sqrt(N): a fully loaded unit-power symbol
    has mean power 1. Written out as a matrix product, not an FFT."""
    n_fft, sym, over = 12, 3, 4
    ch = OFDMSISOChannel(model="AWGN", fft_size=n_fft, num_ofdm_symbols=sym,
                         pilot_pattern="empty", oversampling=over, precision="double")
    x = gaussian(2, n_fft * sym, 0).to(torch.complex128)
    x = x / x.abs().square().mean(dim=1, keepdim=True).sqrt()  # the channel's normalisation
    freqs = torch.arange(n_fft) - n_fft // 2
    t = torch.arange(over * n_fft)
    idft = torch.exp(2j * math.pi * torch.outer(freqs, t).double() / (over * n_fft))
    expected = (x.reshape(2, sym, n_fft) @ idft).reshape(2, -1) / math.sqrt(n_fft)
    s = ch.time_signal(x)
    assert s.shape == (2, sym * over * n_fft)
    assert torch.allclose(s, expected, atol=1e-12)


def test_ofdm_makes_qpsk_gaussian():
    """Constant-envelope QPSK has a PAPR of 0 dB; on 1024 subcarriers its time signal is
    close to complex Gaussian, whose power CCDF is exp(-g): 8.1e-2, 1.9e-2, 1.8e-3 at 4, 6,
    8 dB (300 k samples: binomial 5-sigma bounds)."""
    ch = OFDMSISOChannel(model="AWGN", fft_size=1024, pilot_pattern="empty")
    x = qpsk(2, 2 * ch.num_data_symbols, 1)  # whole slots: the reference is the mean
    assert papr_db(x).abs().max() < 1e-5
    s = ch.time_signal(x)
    thresholds = [4.0, 6.0, 8.0]
    ccdf = power_ccdf(s, thresholds, reference_power=1.0)
    for p, g in zip(ccdf.tolist(), thresholds):
        expected = math.exp(-10 ** (g / 10))
        assert abs(p - expected) < 5 * math.sqrt(expected / s.numel()) + 5e-4, (g, p, expected)
    # the per-symbol PAPR of 4096 samples: the largest of ~1024 near-independent powers, ~9 dB
    assert 8.0 < float(papr_db(s, block_length=4096).median()) < 10.5


def _in_band_by_fft(signal: torch.Tensor, n_fft: int, over: int, n: int) -> torch.Tensor:
    """Second implementation of the receiver side: per OFDM symbol a unitary FFT of L N
    samples, centre the spectrum, keep the N band subcarriers, the first n data symbols."""
    batch = signal.shape[0]
    spectrum = torch.fft.fftshift(torch.fft.fft(signal.reshape(batch, -1, over * n_fft),
                                                norm="ortho"), dim=-1)
    left = over * n_fft // 2 - n_fft // 2
    return spectrum[..., left:left + n_fft].reshape(batch, -1)[:, :n]


@pytest.mark.parametrize("backoff_db", [0.0, 3.0])
def test_clipped_ofdm_follows_bussgang_and_the_channel_matches_a_second_implementation(
        backoff_db):
    """A clipper at A^2 = IBO times the mean power of a (Gaussian) OFDM signal: each
    subcarrier comes out as alpha X + D with alpha = 1 - exp(-A^2) + sqrt(pi)/2 A erfc(A)
    (0.7715 at 0 dB, 0.9213 at 3 dB). The channel (AWGN, perfect CSI, no noise) returns the
    same in-band symbols, scaled to the data's power, as the FFT written here."""
    pa = PowerAmplifier(input_backoff_db=backoff_db, model="clip")
    ch = OFDMSISOChannel(model="AWGN", pilot_pattern="empty", amplifier=pa)
    n = 3 * ch.num_data_symbols
    x = gaussian(4, n, 2)
    power = x.abs().square().mean(dim=1, keepdim=True)
    x_unit = x / power.sqrt()
    y = _in_band_by_fft(pa(ch.time_signal(x), reference_power=1.0), 72, 4, n) * math.sqrt(
        ch.num_data_symbols / 14 / (4 * 72))  # undo time_signal's full-load scaling
    alpha = (y * x_unit.conj()).mean(dim=1).real / x_unit.abs().square().mean(dim=1)
    a2 = 10 ** (backoff_db / 10)
    expected = 1 - math.exp(-a2) + math.sqrt(math.pi) / 2 * math.sqrt(a2) * math.erfc(
        math.sqrt(a2))
    assert alpha.tolist() == pytest.approx([expected] * 4, abs=4e-3)

    x_hat, no_eff = ch(x, float("inf"))
    reference = y / y.abs().square().mean(dim=1, keepdim=True).sqrt() * power.sqrt()
    assert torch.allclose(x_hat, reference, atol=1e-4 * float(power.max().sqrt()))
    assert float(no_eff.abs().max()) < 1e-6


def test_a_large_backoff_leaves_the_ofdm_link_linear():
    """40 dB above the mean the amplifier never compresses: with the same seeds a TDL-C link
    with LS estimation gives the same x_hat and no_eff as without it, at 10 dB and noise-free."""
    x = qpsk(2, 1500, 3)
    for snr_db in (10.0, float("inf")):
        outs = []
        for amp in (None, PowerAmplifier(input_backoff_db=40.0)):
            ch = OFDMSISOChannel(model="TDL-C", delay_spread_s=100e-9, channel_estimation="ls",
                                 amplifier=amp, generator=gen(4))
            outs.append(ch(x, snr_db))
        (a, na), (b, nb) = outs
        assert torch.allclose(a, b, atol=1e-4) and torch.allclose(na, nb, atol=1e-5)


def test_ls_estimation_absorbs_the_amplifier_gain_and_qpsk_is_distorted():
    """A clipper at 0 dB leaves single-carrier QPSK untouched, but compresses OFDM's Gaussian
    peaks: the in-band gain is below 1 with perfect CSI (the receiver knows the channel, not
    the amplifier), while LS estimation on pilots that passed the amplifier too brings it back
    to 1. Either way the distortion leaves an error vector far above the 60 dB noise."""
    x = qpsk(2, 3 * 864, 5)
    gains, evms = {}, {}
    for estimation in ("perfect", "ls"):
        ch = OFDMSISOChannel(model="AWGN", channel_estimation=estimation, generator=gen(6),
                             amplifier=PowerAmplifier(input_backoff_db=0.0, model="clip"))
        x_hat, _ = ch(x, 60.0)
        gain = (x_hat * x.conj()).mean() / x.abs().square().mean()
        gains[estimation] = float(gain.real)
        evms[estimation] = float((x_hat - gain * x).abs().square().mean())
    assert 0.95 < gains["perfect"] < 0.995
    assert gains["ls"] == pytest.approx(1.0, abs=0.01)
    assert min(evms.values()) > 1e-3  # 60 dB noise alone: 1e-6


def test_papr_by_hand_and_errors():
    """A tone has PAPR 0 dB; one pulse in n samples has 10 log10(n); per block each block's
    peak counts against the row's mean; a fixed reference replaces the mean."""
    tone = torch.exp(1j * torch.linspace(0, 6, 8)).unsqueeze(0)
    assert float(papr_db(tone)) == pytest.approx(0.0, abs=1e-5)
    pulse = torch.zeros(1, 8, dtype=torch.complex64)
    pulse[0, 5] = 2.0
    assert float(papr_db(pulse)) == pytest.approx(10 * math.log10(8))
    assert papr_db(pulse, block_length=4).tolist() == [[-math.inf, pytest.approx(9.0309, 1e-4)]]
    assert float(papr_db(pulse, reference_power=2.0)) == pytest.approx(10 * math.log10(2))
    assert power_ccdf(pulse, [5.0, 10.0]).tolist() == [0.125, 0.0]
    with pytest.raises(ValueError, match="block_length"):
        papr_db(pulse, block_length=3)
    with pytest.raises(ValueError, match="reference_power"):
        power_ccdf(pulse, [1.0], reference_power=0.0)
    with pytest.raises(TypeError, match="x"):
        papr_db(torch.ones(1, 4))


def test_a_partly_filled_slot_is_not_driven_harder_than_a_full_one():
    """The back-off is against a fully loaded symbol's power: a row of 216 QPSK symbols (3 of
    the slot's 12 data symbols, the rest empty) has the same peaks in its loaded symbols as a
    row of full slots and comes out as distorted (error vector -14 dB for both at a 0 dB
    clipper); against the row's own mean power (360 of the slot's 1008 elements loaded, 2.8
    times lower) its error vector would be 3.7 dB larger."""
    def error_vector_db(n: int) -> float:
        x = qpsk(4, n, 7)
        ch = OFDMSISOChannel(model="AWGN", channel_estimation="perfect",
                             amplifier=PowerAmplifier(input_backoff_db=0.0, model="clip"))
        x_hat, _ = ch(x, float("inf"))
        gain = (x_hat * x.conj()).mean() / x.abs().square().mean()
        return 10 * math.log10(float((x_hat - gain * x).abs().square().mean()))

    full, partial = error_vector_db(3 * 864), error_vector_db(216)
    assert -17.0 < full < -12.0
    assert abs(partial - full) < 1.5
