"""Tests for semlink.channels.rayleigh: BER vs the Rayleigh closed form, block structure, no_eff."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.rayleigh import RayleighChannel
from semlink.theory import ber_rayleigh


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bits(shape: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=gen(seed)).float()


def rayleigh_ber(ebno_db: float) -> float:
    """Coherent BPSK/QPSK (Gray) over Rayleigh fading, per bit: 0.5 (1 - sqrt(g / (1 + g)))."""
    g = 10 ** (ebno_db / 10)
    return 0.5 * (1 - math.sqrt(g / (1 + g)))


@pytest.mark.parametrize("ebno_db", [0.0, 10.0])
@pytest.mark.parametrize("modulation", ["bpsk", "qpsk"])
def test_fast_fading_ber_matches_closed_form(modulation, ebno_db):
    # p >= 2.3e-2 with 1e6 i.i.d. fading bits: >= 23000 errors, rel. sigma <= 0.7 %
    if modulation == "bpsk":
        b = bits((4, 250_000), 1)
        x = torch.complex(1 - 2 * b, torch.zeros_like(b))
        esno_db = ebno_db
    else:
        b = bits((4, 500_000), 1)
        bb = b.reshape(4, -1, 2)
        x = torch.complex(1 - 2 * bb[..., 0], 1 - 2 * bb[..., 1]) / math.sqrt(2)
        esno_db = ebno_db + 10 * math.log10(2)
    x_hat, _ = RayleighChannel(coherence_symbols=1, generator=gen(2))(x, esno_db)
    if modulation == "bpsk":
        b_hat = (x_hat.real < 0).float()
    else:
        b_hat = torch.stack([x_hat.real < 0, x_hat.imag < 0], -1).reshape(4, -1).float()
    errors = int((b_hat != b).sum())
    ber = errors / b.numel()
    theory = rayleigh_ber(ebno_db)
    print(f"Rayleigh fast {modulation} Eb/N0={ebno_db} dB: BER {ber:.4e} vs theory "
          f"{theory:.4e} (ratio {ber / theory:.3f}, {errors} errors)")
    assert errors >= 200
    assert ber == pytest.approx(theory, rel=0.10)


@pytest.mark.parametrize("coherence", [1, 3, 7, 64, 1000])
def test_block_fading_structure(coherence):
    n = 50
    x = torch.ones(6, n, dtype=torch.complex64)
    _, _, h = RayleighChannel(coherence_symbols=coherence, return_channel=True,
                              generator=gen(3))(x, 10.0)
    assert h.shape == (6, n)
    for start in range(0, n, coherence):
        block = h[:, start:start + coherence]
        assert torch.equal(block, block[:, :1].expand_as(block))
        if start + coherence < n:  # next block is a fresh draw
            assert bool((h[:, start + coherence] != h[:, start]).all())
    if coherence >= n:
        assert torch.equal(h, h[:, :1].expand_as(h))


def test_channel_statistics_cn01():
    x = torch.ones(4, 100_000, dtype=torch.complex64)
    _, _, h = RayleighChannel(return_channel=True, generator=gen(4))(x, 10.0)
    # |h|^2 ~ Exp(1): mean 1, std 1 -> sigma of the mean 1.6e-3 over 4e5 samples
    assert float(h.abs().square().mean()) == pytest.approx(1.0, abs=0.01)
    assert abs(complex(h.mean())) < 0.01
    assert float(h.real.var()) == pytest.approx(0.5, abs=0.01)


def test_no_eff_is_exact_and_normalised_error_is_unit_variance():
    b = bits((4, 200_000), 5).reshape(4, -1, 2)
    amp = torch.tensor([0.5, 1.0, 2.0, 4.0])
    x = torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2) * amp[:, None]
    snr_db = torch.tensor([0.0, 5.0, 10.0, 20.0])
    x_hat, no_eff, h = RayleighChannel(coherence_symbols=5, return_channel=True,
                                       generator=gen(6))(x, snr_db)
    n0 = amp ** 2 / 10 ** (snr_db / 10)  # [4]
    torch.testing.assert_close(no_eff, n0[:, None] / h.abs().square(), rtol=1e-5, atol=0.0)
    z = (x_hat - x) / no_eff.sqrt()
    # |z|^2 ~ Exp(1) given h: mean 1, sigma of the mean 1/sqrt(1e5) = 3.2e-3 per row
    torch.testing.assert_close(z.abs().square().mean(1), torch.ones(4), rtol=0.0, atol=0.02)


def test_mmse_is_the_unbiased_lmmse_estimate():
    """Biased LMMSE by hand, then remove the bias: equals the 'mmse' output (and ZF)."""
    b = bits((3, 2000), 7).reshape(3, -1, 2)
    x = torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) * 1.5  # Es = 4.5
    snr_db = torch.tensor([0.0, 6.0, 12.0])
    x_m, no_m, h = RayleighChannel(equalizer="mmse", return_channel=True,
                                   generator=gen(8))(x, snr_db)
    x_z, no_z = RayleighChannel(equalizer="zf", generator=gen(8))(x, snr_db)
    es = 4.5
    n0 = (es / 10 ** (snr_db / 10))[:, None]
    y = h * x_z  # ZF inverts h
    g = h.conj() * es / (h.abs().square() * es + n0)  # biased LMMSE gain
    beta = (g * h).real  # E[x_b | x] = beta x
    torch.testing.assert_close(x_m, g * y / beta, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(no_m, es * (1 / beta - 1), rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(x_m, x_z, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(no_m, no_z, rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("coherence", [1, 4, 5])
def test_documented_draw_order_h_then_noise(coherence):
    """The generator yields h first (one CN(0, 1) draw per fading block, ceil(n / L) of them),
    then the noise: the output is reproduced from a copy of the generator by hand. n = 20 is a
    multiple of L = 1, 4, 5, so drawing a spare coefficient would shift the noise stream."""
    batch, n, snr_db = 3, 20, 6.0
    x = torch.complex(torch.randn(batch, n, generator=gen(9)),
                      torch.randn(batch, n, generator=gen(10)))
    x_hat, no_eff, h = RayleighChannel(coherence_symbols=coherence, return_channel=True,
                                       generator=gen(21))(x, snr_db)
    g = gen(21)
    blocks = -(-n // coherence)
    h_ref = torch.randn((batch, blocks), dtype=torch.complex64, generator=g)
    h_ref = h_ref.repeat_interleave(coherence, dim=1)[:, :n]
    noise = torch.randn((batch, n), dtype=torch.complex64, generator=g)
    n0 = x.abs().square().mean(1, keepdim=True) / 10 ** (snr_db / 10)
    assert torch.equal(h, h_ref)
    torch.testing.assert_close(x_hat, (h_ref * x + n0.sqrt() * noise) / h_ref,
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(no_eff, n0 / h_ref.abs().square(), rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("antennas, ebno_db", [(2, 5.0), (4, 2.0)])
def test_mrc_bpsk_ber_matches_the_diversity_closed_form(antennas, ebno_db):
    """BPSK over fast fading with L-branch MRC: Proakis eq. 14.4-15 (written out here),
    mu = sqrt(g / (1 + g)) with g the mean Eb/N0 per branch."""
    b = bits((4, 250_000), 5)
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    x_hat, _ = RayleighChannel(num_rx_antennas=antennas, generator=gen(6))(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    g = 10 ** (ebno_db / 10)
    mu = math.sqrt(g / (1 + g))
    theory = ((1 - mu) / 2) ** antennas * sum(
        math.comb(antennas - 1 + k, k) * ((1 + mu) / 2) ** k for k in range(antennas))
    assert errors >= 1000  # rel. sigma <= 3 %
    assert errors / b.numel() == pytest.approx(theory, rel=0.12)
    assert theory < 0.2 * rayleigh_ber(ebno_db)  # diversity: far below one antenna


@pytest.mark.parametrize("rx, ebno_db", [(1, 8.0), (2, 4.0)])
def test_alamouti_ber_is_twice_the_branches_at_half_the_snr(rx, ebno_db):
    """Alamouti's code over fades that hold for each pair (blocks of 2 symbols) with A receive
    antennas: BPSK's BER is the 2A-branch MRC closed form (Proakis eq. 14.4-15) with half the
    Eb/N0 per branch, each transmit antenna sending half the power."""
    b = bits((4, 250_000), 7)
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    ch = RayleighChannel(num_tx_antennas=2, num_rx_antennas=rx, coherence_symbols=2,
                         generator=gen(8))
    x_hat, _ = ch(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    g = 10 ** (ebno_db / 10) / 2
    mu = math.sqrt(g / (1 + g))
    branches = 2 * rx
    theory = ((1 - mu) / 2) ** branches * sum(
        math.comb(branches - 1 + k, k) * ((1 + mu) / 2) ** k for k in range(branches))
    assert errors >= 1000
    assert errors / b.numel() == pytest.approx(theory, rel=0.12)


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_alamouti_combines_a_pair_as_alamouti_wrote_it(equalizer):
    """One coefficient per antenna pair over each symbol pair: s1_hat = (conj(h1) y1 +
    h2 conj(y2)) sqrt(2) / (|h1|^2 + |h2|^2), s2_hat = (conj(h2) y1 - h1 conj(y2)) sqrt(2) /
    (...), no_eff = 2 N0 / (|h1|^2 + |h2|^2), with y1 = (h1 s1 + h2 s2) / sqrt(2) + n1 and
    y2 = (-h1 conj(s2) + h2 conj(s1)) / sqrt(2) + n2 recomputed from the drawn h and noise
    (draw order: coefficients [batch, 2 * blocks], then the noise [batch, n]: one receive
    antenna's). An odd row
    is completed by a zero symbol, which is not returned."""
    batch, n, snr_db = 2, 9, 3.0
    x = torch.complex(torch.randn(batch, n, generator=gen(1)), torch.randn(batch, n,
                                                                           generator=gen(2)))
    x_hat, no_eff, h = RayleighChannel(num_tx_antennas=2, coherence_symbols=2, return_channel=True,
                                       equalizer=equalizer, generator=gen(3))(x, snr_db)
    assert h.shape == (batch, 1, 2, n)
    g = gen(3)
    h_ref = torch.randn((batch, 2 * 5), dtype=torch.complex64, generator=g).reshape(batch, 2, 5)
    noise = torch.randn((batch, 10), dtype=torch.complex64, generator=g)
    n0 = x.abs().square().mean(1, keepdim=True) / 10 ** (snr_db / 10)
    sent = torch.nn.functional.pad(x, (0, 1))
    s1, s2 = sent[:, 0::2], sent[:, 1::2]
    h1, h2 = h_ref[:, 0], h_ref[:, 1]  # one per pair (blocks of 2 = pairs)
    r = math.sqrt(2)
    y1 = (h1 * s1 + h2 * s2) / r + n0.sqrt() * noise[:, 0::2]
    y2 = (-h1 * s2.conj() + h2 * s1.conj()) / r + n0.sqrt() * noise[:, 1::2]
    gain = h1.abs().square() + h2.abs().square()
    want = torch.stack([(h1.conj() * y1 + h2 * y2.conj()) * r / gain,
                        (h2.conj() * y1 - h1 * y2.conj()) * r / gain], dim=-1).reshape(batch, 10)
    torch.testing.assert_close(x_hat, want[:, :n], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(no_eff, (2 * n0 / gain).repeat_interleave(2, dim=1)[:, :n],
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(h[:, 0, :, 0::2], h_ref[..., :5])


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_alamouti_under_fast_fading_stays_unbiased_and_calibrated(equalizer):
    """With a new coefficient every channel use the code's columns are no longer orthogonal;
    the joint equaliser still returns x + e with E[e] = 0 and E[|e|^2 / no_eff] = 1 (ZF, exact
    Gaussian given h; the unbiased LMMSE, its residual interference included), noise-free it
    returns x, and it is worse than a pair that sees one fade: fast fading costs Alamouti."""
    b = bits((8, 20_000), 9)
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    for snr_db in (float("inf"), 6.0):
        ch = RayleighChannel(num_tx_antennas=2, equalizer=equalizer, generator=gen(10))
        x_hat, no_eff = ch(x, snr_db)
        if snr_db == float("inf"):  # float32: pairs whose columns are nearly parallel lose
            residual = (x_hat - x).abs()  # digits in the 2 x 2 solve
            assert float(residual.median()) < 1e-5 and float(residual.max()) < 0.05
            continue
        e = x_hat - x
        assert abs(complex(e.mean())) < 0.02
        assert float((e.abs().square() / no_eff).mean()) == pytest.approx(1.0, abs=0.05)
    slow, _ = RayleighChannel(num_tx_antennas=2, coherence_symbols=2, equalizer=equalizer,
                              generator=gen(10))(x, 6.0)
    errors = {name: int(((v.real < 0).float() != b).sum()) for name, v in
              (("fast", x_hat), ("pairs", slow))}
    assert errors["fast"] > 1.3 * errors["pairs"]


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_alamouti_passes_a_zero_row_through_as_zero(equalizer):
    """A row of zeros (no power, so no noise) comes back as zeros with zero noise, also from the
    LMMSE whose regularisation divides by the row's power; the other row is untouched by it."""
    x = torch.ones(2, 7, dtype=torch.complex64)
    x[1] = 0
    x_hat, no_eff = RayleighChannel(num_tx_antennas=2, equalizer=equalizer,
                                    generator=gen(0))(x, 10.0)
    assert x_hat.shape == (2, 7) and bool(torch.isfinite(x_hat).all())
    assert float(x_hat[1].abs().max()) == 0.0 and float(no_eff[1].max()) == 0.0
    assert float(no_eff[0].min()) > 0.0


@pytest.mark.parametrize("coherence", [1, 5])
def test_mrc_combines_each_antennas_draws_as_documented(coherence):
    """Several antennas: the coefficients of all antennas first ([batch, A * blocks]), then the
    noise ([batch, A * n]); x_hat = sum conj(h_a) y_a / sum |h_a|^2 and no_eff = N0 / sum
    |h_a|^2, recomputed by hand from a copy of the generator."""
    batch, n, antennas, snr_db = 2, 20, 3, 4.0
    x = torch.complex(torch.randn(batch, n, generator=gen(11)),
                      torch.randn(batch, n, generator=gen(12)))
    x_hat, no_eff, h = RayleighChannel(coherence_symbols=coherence, num_rx_antennas=antennas,
                                       return_channel=True, generator=gen(22))(x, snr_db)
    g = gen(22)
    blocks = -(-n // coherence)
    h_ref = torch.randn((batch, antennas * blocks), dtype=torch.complex64, generator=g)
    h_ref = h_ref.reshape(batch, antennas, blocks).repeat_interleave(coherence, dim=2)[..., :n]
    noise = torch.randn((batch, antennas * n), dtype=torch.complex64, generator=g)
    noise = noise.reshape(batch, antennas, n)
    n0 = x.abs().square().mean(1, keepdim=True) / 10 ** (snr_db / 10)
    y = h_ref * x[:, None] + n0.sqrt()[:, None] * noise
    gain = sum(h_ref[:, a].abs().square() for a in range(antennas))
    assert torch.equal(h, h_ref) and h.shape == (batch, antennas, n)
    torch.testing.assert_close(x_hat, sum(h_ref[:, a].conj() * y[:, a]
                                          for a in range(antennas)) / gain,
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(no_eff, n0 / gain, rtol=1e-5, atol=0.0)


def test_imperfect_csi_draws_and_equalises_as_documented():
    """csi_error_var s2: estimates sqrt(1 - s2) g first, then the noise, then the errors
    sqrt(s2) e (per block); y uses the true h = h_est + error, the receiver h_est, and no_eff
    = (N0 + s2 P) / |h_est|^2; recomputed by hand from a copy of the generator."""
    batch, n, coherence, s2, snr_db = 2, 12, 3, 0.2, 5.0
    x = torch.complex(torch.randn(batch, n, generator=gen(13)),
                      torch.randn(batch, n, generator=gen(14)))
    x_hat, no_eff, h = RayleighChannel(coherence_symbols=coherence, csi_error_var=s2,
                                       return_channel=True, generator=gen(23))(x, snr_db)
    g = gen(23)
    draws = torch.randn((batch, n // coherence), dtype=torch.complex64, generator=g)
    h_est = (math.sqrt(1 - s2) * draws).repeat_interleave(coherence, dim=1)
    noise = torch.randn((batch, n), dtype=torch.complex64, generator=g)
    error = torch.randn((batch, n // coherence), dtype=torch.complex64, generator=g)
    h_true = h_est + math.sqrt(s2) * error.repeat_interleave(coherence, dim=1)
    power = x.abs().square().mean(1, keepdim=True)
    n0 = power / 10 ** (snr_db / 10)
    torch.testing.assert_close(h, h_true)
    torch.testing.assert_close(x_hat, (h_true * x + n0.sqrt() * noise) / h_est,
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(no_eff, (n0 + s2 * power) / h_est.abs().square(),
                               rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("antennas, s2, ebno_db", [(1, 0.05, 10.0), (2, 0.1, 5.0)])
def test_bpsk_ber_with_imperfect_csi_matches_the_closed_form(antennas, s2, ebno_db):
    """The estimate is Rayleigh of power 1 - s2 and the error adds noise s2 Es: L-branch MRC
    with the mean Eb/N0 per branch (1 - s2) g / (1 + s2 g) (BPSK: Es = Eb)."""
    b = bits((4, 250_000), 15)
    x = torch.complex(1 - 2 * b, torch.zeros_like(b))
    x_hat, _ = RayleighChannel(num_rx_antennas=antennas, csi_error_var=s2,
                               generator=gen(16))(x, ebno_db)
    errors = int(((x_hat.real < 0).float() != b).sum())
    g = 10 ** (ebno_db / 10)
    g = (1 - s2) * g / (1 + s2 * g)
    mu = math.sqrt(g / (1 + g))
    theory = ((1 - mu) / 2) ** antennas * sum(
        math.comb(antennas - 1 + k, k) * ((1 + mu) / 2) ** k for k in range(antennas))
    assert errors >= 1000
    assert errors / b.numel() == pytest.approx(theory, rel=0.08)
    assert theory > 1.3 * float(ber_rayleigh(ebno_db, 2, antennas))  # worse than perfect CSI


def test_one_antenna_draws_what_it_always_did():
    x = torch.ones(3, 30, dtype=torch.complex64)
    a = RayleighChannel(coherence_symbols=4, generator=gen(8))(x, 3.0)
    b = RayleighChannel(coherence_symbols=4, num_rx_antennas=1, generator=gen(8))(x, 3.0)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_determinism_and_seed_dependence():
    x = torch.ones(3, 40, dtype=torch.complex64)
    a = RayleighChannel(coherence_symbols=4, generator=gen(1))(x, 3.0)
    b = RayleighChannel(coherence_symbols=4, generator=gen(1))(x, 3.0)
    c = RayleighChannel(coherence_symbols=4, generator=gen(2))(x, 3.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("precision, cdtype, rdtype", [
    ("single", torch.complex64, torch.float32), ("double", torch.complex128, torch.float64)])
def test_shapes_and_dtypes(precision, cdtype, rdtype):
    x = torch.ones(2, 9, dtype=torch.complex64)
    out = RayleighChannel(generator=gen(0), precision=precision)(x, torch.tensor([1.0, 2.0]))
    assert len(out) == 2
    assert out[0].shape == (2, 9) and out[1].shape == (2, 9)
    assert out[0].dtype == cdtype and out[1].dtype == rdtype


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"coherence_symbols": 0}, ValueError, r"`coherence_symbols` must be in \[1, inf\]; got 0"),
    ({"coherence_symbols": 2.0}, TypeError, r"`coherence_symbols` must be int; got 2.0"),
    ({"coherence_symbols": True}, TypeError, r"`coherence_symbols` must be int; got True"),
    ({"equalizer": "ml"}, ValueError, r"`equalizer` must be one of 'zf', 'mmse'; got 'ml'"),
    ({"equalizer": None}, TypeError, r"`equalizer` must be str; got None"),
    ({"return_channel": 1}, TypeError, r"`return_channel` must be bool; got 1"),
    ({"num_rx_antennas": 0}, ValueError, r"`num_rx_antennas` must be in \[1, inf\]; got 0"),
    ({"num_tx_antennas": 3}, ValueError, r"`num_tx_antennas` must be in \[1, 2\]; got 3"),
    ({"csi_error_var": 1.0}, ValueError, r"`csi_error_var` must be in \[0, 1\) \(the scattered"),
    ({"csi_error_var": -0.1}, ValueError, r"`csi_error_var` must be in \[0, 1\)"),
    ({"check_values": None}, TypeError, r"`check_values` must be bool; got None"),
    ({"generator": 3}, TypeError, r"`generator` must be Generator; got 3"),
])
def test_constructor_raises(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RayleighChannel(**kwargs)


def test_call_raises():
    ch = RayleighChannel(generator=gen(0))
    with pytest.raises(TypeError, match=r"`x` must be a complex tensor"):
        ch(torch.ones(2, 3), 1.0)
    with pytest.raises(ValueError, match=r"`snr_db` must be > -inf and not NaN"):
        ch(torch.ones(2, 3, dtype=torch.complex64), float("nan"))
