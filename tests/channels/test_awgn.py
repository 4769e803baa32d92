"""Tests for semlink.channels.awgn: noise statistics, uncoded QPSK BER vs Q(sqrt(2 Eb/N0)), contracts."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.special import erfc

from semlink.channels.awgn import AWGN, AWGNChannel
from tests.host_sync import record_host_syncs


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def qpsk(bits: torch.Tensor) -> torch.Tensor:
    """[batch, 2k] bits -> [batch, k] Gray QPSK, Es = 1: ((1-2 b0) + j (1-2 b1)) / sqrt 2."""
    b = bits.reshape(bits.shape[0], -1, 2)
    return torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2)


def qpsk_hard(x_hat: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x_hat.real < 0), (x_hat.imag < 0)], dim=-1).reshape(x_hat.shape[0], -1).float()


def q_func(z: float) -> float:
    return 0.5 * erfc(z / math.sqrt(2))


# --- AWGN noise block ---------------------------------------------------------------------

def test_awgn_block_variance_and_circularity():
    x = torch.zeros(4, 100_000, dtype=torch.complex64)
    no = torch.tensor([[0.1], [1.0], [2.0], [0.0]])
    y = AWGN(generator=gen(0))(x, no)
    # E|n|^2 = no, no/2 per I and Q; 4e5 real samples -> rel. std of a variance ~ 0.45 %
    torch.testing.assert_close(y.abs().square().mean(1), no[:, 0], rtol=0.02, atol=0.0)
    torch.testing.assert_close(y.real.square().mean(1), no[:, 0] / 2, rtol=0.03, atol=0.0)
    torch.testing.assert_close(y.imag.square().mean(1), no[:, 0] / 2, rtol=0.03, atol=0.0)
    assert abs(float((y.real * y.imag).mean(1)[1])) < 5 * 0.5 / math.sqrt(1e5)


def test_awgn_block_raises():
    awgn = AWGN(generator=gen(0))
    with pytest.raises(TypeError, match=r"`x` must be complex; got torch.float32"):
        awgn(torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match=r"`no` of shape \(3,\) must broadcast to \(2, 4\)"):
        awgn(torch.zeros(2, 4, dtype=torch.complex64), torch.ones(3))
    with pytest.raises(ValueError, match=r"`no` must be >= 0 everywhere"):
        awgn(torch.zeros(2, 4, dtype=torch.complex64), -1.0)
    with pytest.raises(TypeError, match=r"`check_values` must be bool; got 1"):
        AWGN(check_values=1)
    with pytest.raises(TypeError, match=r"`generator` must be Generator; got 0"):
        AWGN(generator=0)


# --- link-level AWGN channel ----------------------------------------------------------------

def test_measured_noise_variance_per_row_snr():
    """Each row has its own power and SNR: N0 = mean|x|^2 / 10^(snr/10) per row."""
    amp = torch.tensor([0.1, 1.0, 3.0, 10.0])
    snr_db = torch.tensor([0.0, 10.0, 20.0, -5.0])
    x = qpsk(torch.randint(0, 2, (4, 200_000), generator=gen(1)).float()) * amp[:, None]
    x_hat, no_eff = AWGNChannel(generator=gen(2))(x, snr_db)
    n0 = amp ** 2 / 10 ** (snr_db / 10)
    torch.testing.assert_close(no_eff, n0[:, None].expand(4, 100_000), rtol=1e-5, atol=0.0)
    # 1e5 complex samples: rel. std of the variance estimate 0.32 %; 2 % is > 6 sigma
    torch.testing.assert_close((x_hat - x).abs().square().mean(1), n0, rtol=0.02, atol=0.0)


@pytest.mark.parametrize("ebno_db", [0.0, 3.0, 6.0])
def test_uncoded_qpsk_ber_matches_closed_form(ebno_db):
    # p = 7.9e-2, 2.3e-2, 2.4e-3; 2e6 bits -> >= 4700 errors, rel. sigma <= 1.5 %, 10 % >= 6 sigma
    bits = torch.randint(0, 2, (8, 250_000), generator=gen(3)).float()
    x = qpsk(bits)
    esno_db = ebno_db + 10 * math.log10(2)
    x_hat, _ = AWGNChannel(generator=gen(4))(x, esno_db)
    errors = int((qpsk_hard(x_hat) != bits).sum())
    ber = errors / bits.numel()
    theory = q_func(math.sqrt(2 * 10 ** (ebno_db / 10)))
    print(f"AWGN QPSK Eb/N0={ebno_db} dB: BER {ber:.4e} vs theory {theory:.4e} "
          f"(ratio {ber / theory:.3f}, {errors} errors)")
    assert errors >= 200
    assert ber == pytest.approx(theory, rel=0.10)


def test_infinite_snr_is_noiseless_and_zero_row_is_fine():
    x = qpsk(torch.randint(0, 2, (3, 64), generator=gen(5)).float())
    x[2] = 0
    x_hat, no_eff = AWGNChannel(generator=gen(6))(x, torch.tensor([float("inf"), 10.0, 10.0]))
    torch.testing.assert_close(x_hat[0], x[0], rtol=0, atol=0)
    assert bool((no_eff[0] == 0).all()) and bool((no_eff[2] == 0).all())
    torch.testing.assert_close(x_hat[2], x[2], rtol=0, atol=0)


def test_determinism_and_seed_dependence():
    x = qpsk(torch.randint(0, 2, (4, 256), generator=gen(7)).float())
    a, _ = AWGNChannel(generator=gen(11))(x, 5.0)
    b, _ = AWGNChannel(generator=gen(11))(x, 5.0)
    c, _ = AWGNChannel(generator=gen(12))(x, 5.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_default_generator_follows_sionna_seed():
    import sionna.phy
    x = torch.ones(2, 32, dtype=torch.complex64)
    sionna.phy.config.seed = 5
    a, _ = AWGNChannel()(x, 0.0)
    sionna.phy.config.seed = 5
    b, _ = AWGNChannel()(x, 0.0)
    assert torch.equal(a, b)
    sionna.phy.config.seed = 6  # another seed, other noise: the seed is really followed
    c, _ = AWGNChannel()(x, 0.0)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("precision, cdtype, rdtype", [
    ("single", torch.complex64, torch.float32), ("double", torch.complex128, torch.float64)])
def test_shapes_and_dtypes(precision, cdtype, rdtype):
    x = torch.ones(3, 17, dtype=torch.complex64)
    x_hat, no_eff = AWGNChannel(generator=gen(0), precision=precision)(x, 3)
    assert x_hat.shape == (3, 17) and no_eff.shape == (3, 17)
    assert x_hat.dtype == cdtype and no_eff.dtype == rdtype


@pytest.mark.parametrize("x, snr, exc, match", [
    (torch.ones(2, 3), 1.0, TypeError, r"`x` must be a complex tensor; got torch.float32"),
    (torch.ones(2, 3, 4, dtype=torch.complex64), 1.0, ValueError,
     r"`x` must have shape \[batch, n\]; got shape \(2, 3, 4\)"),
    (torch.ones(2, 3, dtype=torch.complex64), torch.ones(2, 1), ValueError,
     r"`snr_db` must be a scalar or have shape \[batch\] = \(2,\); got shape \(2, 1\)"),
    (torch.ones(2, 3, dtype=torch.complex64), torch.ones(3), ValueError,
     r"`snr_db` of shape \(3,\) must broadcast to \(2,\)"),
    (torch.ones(2, 3, dtype=torch.complex64), torch.ones(2, dtype=torch.complex64), TypeError,
     r"`snr_db` must be a real number or a real tensor; got torch.complex64"),
    (torch.ones(2, 3, dtype=torch.complex64), True, TypeError,
     r"`snr_db` must be a real number or a real tensor; got True"),
    (torch.ones(2, 3, dtype=torch.complex64), float("nan"), ValueError,
     r"`snr_db` must be > -inf and not NaN everywhere"),
    (torch.ones(2, 3, dtype=torch.complex64), torch.tensor([1.0, -float("inf")]), ValueError,
     r"`snr_db` must be > -inf and not NaN everywhere"),
])
def test_channel_call_raises(x, snr, exc, match):
    with pytest.raises(exc, match=match):
        AWGNChannel(generator=gen(0))(x, snr)


def test_unchecked_channel_makes_no_host_sync_and_checked_makes_one():
    """check_values=False promises a call without device syncs (the snr_db check is the only
    one, and the noise block inside must not add its own `no >= 0` check); True syncs once."""
    x = torch.ones(2, 16, dtype=torch.complex64)
    snr = torch.tensor([3.0, 7.0])
    with record_host_syncs() as syncs:
        AWGNChannel(check_values=False, generator=gen(0))(x, snr)
        AWGN(check_values=False, generator=gen(0))(x, torch.full((2, 1), 0.1))
    assert syncs == []
    with record_host_syncs() as syncs:
        AWGNChannel(check_values=True, generator=gen(0))(x, snr)
    assert len(syncs) == 1, syncs


def test_channel_constructor_raises():
    with pytest.raises(TypeError, match=r"`check_values` must be bool; got 'yes'"):
        AWGNChannel(check_values="yes")


@pytest.mark.gpu
def test_generator_on_wrong_device_raises():
    with pytest.raises(ValueError, match=r"`generator` must live on the block's device 'cpu'"):
        AWGNChannel(generator=torch.Generator(device="cuda"), device="cpu")


def test_generator_device_matching_without_a_gpu():
    """The device rule of ``check_generator`` (the GPU test above exercises it end to end):
    types must agree, and a bare ``cuda`` is ``cuda:0``, never ``cuda:1``."""
    from semlink.channels._common import _same_device
    d = torch.device
    assert _same_device(d("cpu"), d("cpu"))
    assert _same_device(d("cuda"), d("cuda:0")) and _same_device(d("cuda:0"), d("cuda"))
    assert not _same_device(d("cpu"), d("cuda")) and not _same_device(d("cuda:0"), d("cpu"))
    assert not _same_device(d("mps"), d("cuda"))  # both index 0, different kinds
    assert not _same_device(d("cuda"), d("cuda:1")) and not _same_device(d("cuda:1"), d("cuda:0"))
