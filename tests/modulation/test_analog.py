"""Tests for modulation/analog.py: pairing, unit power, exact inverse and SNR transfer over AWGN."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.channels.rayleigh import RayleighChannel
from semlink.modulation.analog import (
    AnalogDemapper,
    AnalogMapper,
    analog_channel_uses,
    estimate_symbols,
)

SHAPE = (16, 12, 12)


def test_pairs_and_scale_by_hand():
    z = torch.tensor([[1.0, 2.0, 3.0, -4.0, 0.5]])  # odd count: one zero appended
    x, scale = AnalogMapper(shape=(5,))(z)
    raw = torch.tensor([1 + 2j, 3 - 4j, 0.5 + 0j], dtype=torch.complex64)
    rms = math.sqrt((5 + 25 + 0.25) / 3)
    torch.testing.assert_close(scale, torch.tensor([rms]))
    torch.testing.assert_close(x[0], raw / rms)


@pytest.mark.parametrize("shape,uses", [(SHAPE, 1152), ((5,), 3), ((1,), 1), ((3, 3), 5)])
def test_channel_uses(shape, uses):
    assert analog_channel_uses(shape) == uses
    mapper = AnalogMapper(shape=shape)
    assert mapper.num_symbols == uses and mapper.num_pad == 2 * uses - math.prod(shape)
    x, _ = mapper(torch.randn(2, *shape))
    assert x.shape == (2, uses) and x.dtype == torch.complex64


@pytest.mark.parametrize("shape", [SHAPE, (3, 3)])
def test_exact_round_trip_and_unit_power(shape):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, *shape, generator=g) * torch.tensor([0.1, 1.0, 30.0, 1e3]).reshape(
        4, *([1] * len(shape)))
    x, scale = AnalogMapper(shape=shape)(z)
    torch.testing.assert_close(x.abs().square().mean(dim=1), torch.ones(4))
    assert scale.shape == (4,) and scale.dtype == torch.float32
    z_hat = AnalogDemapper(shape=shape)(x, scale)
    assert z_hat.shape == z.shape and z_hat.dtype == torch.float32
    torch.testing.assert_close(z_hat, z, rtol=1e-6, atol=0)


def test_integer_input_is_cast():
    x, scale = AnalogMapper(shape=(2,))(torch.tensor([[3, 4]]))
    torch.testing.assert_close(x, torch.tensor([[0.6 + 0.8j]]))
    torch.testing.assert_close(scale, torch.tensor([5.0]))


def test_zero_row_stays_zero():
    z = torch.zeros(2, 4)
    z[1] = 1.0
    x, scale = AnalogMapper(shape=(4,))(z)
    assert scale[0] == 0 and torch.all(x[0] == 0) and torch.all(torch.isfinite(x))
    torch.testing.assert_close(AnalogDemapper(shape=(4,))(x, scale), z)


@pytest.mark.parametrize("snr_db", [1.0, 10.0, 20.0])
def test_awgn_snr_transfers_to_the_tensor(snr_db):
    # noise variance 1/s per complex symbol (Es = 1) -> SNR of Z_hat equals s.
    # 32 rows x 2304 reals: noise power estimate has relative sigma sqrt(2/73728) = 0.52 %
    # (0.023 dB), so 0.2 dB is > 8 sigma.
    g = torch.Generator().manual_seed(int(snr_db))
    z = torch.randn(32, *SHAPE, generator=g) * torch.rand(32, 1, 1, 1, generator=g) * 5
    x, scale = AnalogMapper(shape=SHAPE)(z)
    no = 10 ** (-snr_db / 10)
    y = x + math.sqrt(no) * torch.randn(x.shape, dtype=torch.complex64, generator=g)
    z_hat = AnalogDemapper(shape=SHAPE)(y, scale)
    measured = 10 * math.log10((z.square().sum() / (z_hat - z).square().sum()).item())
    assert measured == pytest.approx(snr_db, abs=0.2)


def test_scalar_scale_broadcasts_and_double_precision():
    mapper = AnalogMapper(shape=(6,), precision="double")
    x, scale = mapper(torch.randn(3, 6, dtype=torch.float64))
    assert x.dtype == torch.complex128 and scale.dtype == torch.float64
    out = AnalogDemapper(shape=(6,), precision="double")(x, 2.0)
    torch.testing.assert_close(out[:, 0], 2.0 * x[:, 0].real)


@pytest.mark.parametrize("shape,err,match", [
    ([4], TypeError, "`shape` must be tuple"),
    ((), ValueError, "`shape` must have at least one dimension"),
    ((4, 0), ValueError, r"`shape\[1\]` must be in \[1, inf\]; got 0"),
    ((4, 2.0), TypeError, r"`shape\[1\]` must be int"),
])
def test_invalid_shape_raises(shape, err, match):
    with pytest.raises(err, match=match):
        AnalogMapper(shape=shape)
    with pytest.raises(err, match=match):
        AnalogDemapper(shape=shape)
    with pytest.raises(err, match=match):
        analog_channel_uses(shape)


def test_call_errors():
    mapper, demapper = AnalogMapper(shape=(2, 3)), AnalogDemapper(shape=(2, 3))
    with pytest.raises(ValueError, match=r"`z` of shape \(4, 6\) must be \[batch, \*\(2, 3\)\]"):
        mapper(torch.zeros(4, 6))
    with pytest.raises(TypeError, match="`z` must be real"):
        mapper(torch.zeros(4, 2, 3, dtype=torch.complex64))
    x = torch.zeros(4, 3, dtype=torch.complex64)
    with pytest.raises(TypeError, match="`x_hat` must be a complex tensor"):
        demapper(torch.zeros(4, 3), torch.ones(4))
    with pytest.raises(ValueError, match=r"`x_hat` of shape \(4, 4\) must be \[batch, 3\]"):
        demapper(torch.zeros(4, 4, dtype=torch.complex64), torch.ones(4))
    with pytest.raises(ValueError, match=r"`scale` of shape \(3,\) must broadcast to \(4,\)"):
        demapper(x, torch.ones(3))
    with pytest.raises(TypeError, match="`scale` must be real"):
        demapper(x, torch.ones(4, dtype=torch.complex64))


def _gaussian_symbols(batch: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(batch, n, generator=g), torch.randn(batch, n, generator=g)) \
        / math.sqrt(2)


def test_lmmse_estimate_reaches_the_mmse_of_gaussian_symbols_over_fading():
    # x ~ CN(0, 1) through zero-forcing Rayleigh fading: given no_eff, the MMSE of x is
    # no_eff / (1 + no_eff), and the equalised symbol's error is no_eff itself.
    x = _gaussian_symbols(64, 2000, seed=0)
    x_hat, no_eff = RayleighChannel(generator=torch.Generator().manual_seed(1),
                                    check_values=False)(x, 3.0)
    lmmse = estimate_symbols(x_hat, no_eff, "lmmse")
    expected = float((no_eff / (1 + no_eff)).mean())
    measured = float((lmmse - x).abs().square().mean())
    assert measured == pytest.approx(expected, rel=0.02)
    assert measured < 0.5 * float((x_hat - x).abs().square().mean())


def test_noise_matched_estimate_is_the_identity_on_awgn_and_the_mean_sinr_level_otherwise():
    x = _gaussian_symbols(4, 300, seed=2)
    x_hat, no_eff = AWGNChannel(generator=torch.Generator().manual_seed(3),
                                check_values=False)(x, 2.0)
    torch.testing.assert_close(estimate_symbols(x_hat, no_eff, "noise-matched"), x_hat,
                               rtol=1e-6, atol=0)
    # Two noise levels, by hand: n_ref = 1 / mean(1/0.25, 1/4) = 1 / 2.125.
    x_hat = torch.tensor([[2.0 + 0.0j, 0.0 + 4.0j]])
    no_eff = torch.tensor([[0.25, 4.0]])
    n_ref = 1 / 2.125
    expected = torch.tensor([[2.0 / 1.25 * (1 + n_ref), 4.0j / 5.0 * (1 + n_ref)]])
    torch.testing.assert_close(estimate_symbols(x_hat, no_eff, "noise-matched"),
                               expected.to(torch.complex64))
    # A noiseless symbol sets n_ref to 0: the plain LMMSE estimate.
    no_eff = torch.tensor([[0.0, 4.0]])
    torch.testing.assert_close(estimate_symbols(x_hat, no_eff, "noise-matched"),
                               estimate_symbols(x_hat, no_eff, "lmmse"))
    assert torch.equal(estimate_symbols(x_hat, no_eff, "lmmse"),
                       torch.tensor([[2.0 + 0.0j, 0.8j]]))


def test_estimate_none_and_errors():
    x_hat = torch.ones(1, 3, dtype=torch.complex64)
    assert estimate_symbols(x_hat, torch.ones(1, 3), "none") is x_hat
    with pytest.raises(ValueError, match="method"):
        estimate_symbols(x_hat, torch.ones(1, 3), "mmse")


@pytest.mark.parametrize("method", ["lmmse", "noise-matched"])
def test_estimate_keeps_the_dtype_of_the_symbols_whatever_the_noise_dtype(method):
    """A float64 no_eff does not promote complex64 symbols: the output is x_hat's dtype (as
    documented), with the values worked out by hand (n_ref = 1 / mean(1, 1/3) = 1.5)."""
    x_hat = torch.tensor([[1.0 + 1.0j, 2.0 + 0.0j]], dtype=torch.complex64)
    out = estimate_symbols(x_hat, torch.tensor([[1.0, 3.0]], dtype=torch.float64), method)
    assert out.dtype == torch.complex64
    gain = torch.tensor([1 / 2, 1 / 4]) * (2.5 if method == "noise-matched" else 1.0)
    torch.testing.assert_close(out, x_hat * gain)
