"""Tests for semlink.channels.amplifier: Rapp and clipper AM/AM against hand values, the Bussgang gain
and distortion of a clipped complex Gaussian against their closed forms, constant-envelope
symbols passing untouched, the amplified channel's order of operations, and errors."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.amplifier import AmplifiedChannel, PowerAmplifier, amplifier_gain
from semlink.channels.awgn import AWGNChannel
from semlink.channels.snr import mean_power


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_rapp_and_clip_by_hand():
    """|y| = |x| / (1 + (|x|/A)^(2p))^(1/(2p)): at |x| = A it is A / 2^(1/(2p)); far below A
    it is |x|; far above, A. The clipper is min(|x|, A); p -> inf approaches it."""
    a = torch.tensor([0.0, 0.01, 1.0, 100.0], dtype=torch.float64)
    out = a * amplifier_gain(a, 1.0, smoothness=2.0)
    assert out.tolist() == pytest.approx([0.0, 0.01, 2 ** -0.25, 1.0], rel=1e-6, abs=1e-9)
    clip = a * amplifier_gain(a, 1.0, model="clip")
    assert clip.tolist() == [0.0, 0.01, 1.0, 1.0]
    sharp = a * amplifier_gain(a, 1.0, smoothness=50.0)
    assert sharp.tolist() == pytest.approx(clip.tolist(), abs=0.02)


@pytest.mark.parametrize("backoff_db", [-3.0, 0.0, 3.0])
def test_clipped_gaussian_matches_bussgang(backoff_db):
    """x ~ CN(0, 1) clipped at A (A^2 = IBO): the output is alpha x + d with d uncorrelated
    with x, alpha = 1 - exp(-A^2) + (sqrt(pi) / 2) A erfc(A) and E|y|^2 = 1 - exp(-A^2)
    (Rayleigh amplitude integrated by hand), so the signal-to-distortion ratio is
    alpha^2 / (E|y|^2 - alpha^2)."""
    x = torch.randn(20, 50_000, dtype=torch.complex128, generator=gen(1))
    x = x / mean_power(x).sqrt().unsqueeze(-1)  # the back-off is against the measured power
    y = PowerAmplifier(input_backoff_db=backoff_db, model="clip", precision="double")(x)
    a2 = 10 ** (backoff_db / 10)
    a = math.sqrt(a2)
    alpha = 1 - math.exp(-a2) + math.sqrt(math.pi) / 2 * a * math.erfc(a)
    power = 1 - math.exp(-a2)
    assert float((y * x.conj()).mean().real) == pytest.approx(alpha, rel=2e-3)
    assert float(y.abs().square().mean()) == pytest.approx(power, rel=2e-3)
    assert float(y.abs().max()) <= a * (1 + 1e-9)
    assert torch.allclose(torch.angle(y[y.abs() > 0]), torch.angle(x[y.abs() > 0]))


def test_constant_envelope_symbols_pass_a_clipper_at_0_db():
    """QPSK has |x|^2 = mean power: a clipper with A^2 = that power changes nothing; 16-QAM's
    corner points (|x|^2 = 1.8 at unit mean power) are pulled in to the saturation amplitude."""
    qpsk = torch.tensor([[1 + 1j, -1 + 1j, -1 - 1j, 1 - 1j]], dtype=torch.complex64) / 2 ** 0.5
    pa = PowerAmplifier(input_backoff_db=0.0, model="clip")
    assert torch.allclose(pa(qpsk), qpsk)
    levels = torch.tensor([-3.0, -1.0, 1.0, 3.0])
    qam = torch.complex(*torch.meshgrid(levels, levels, indexing="ij")).reshape(1, 16) / 10 ** 0.5
    out = pa(qam)
    corner = qam.abs() > 1.2
    assert torch.allclose(out.abs()[corner], torch.ones(4))
    assert torch.allclose(out[~corner & (qam.abs() < 1)], qam[~corner & (qam.abs() < 1)])


def test_amplified_channel_amplifies_then_adds_the_channels_noise():
    x = torch.randn(3, 64, dtype=torch.complex64, generator=gen(2))
    pa = PowerAmplifier(input_backoff_db=1.0, smoothness=3.0)
    x_hat, no_eff = AmplifiedChannel(pa, AWGNChannel(generator=gen(3)))(x, 12.0)
    ref_hat, ref_no = AWGNChannel(generator=gen(3))(pa(x), 12.0)
    assert torch.equal(x_hat, ref_hat) and torch.equal(no_eff, ref_no)
    # the noise is set against the amplified (transmitted) power
    assert torch.allclose(no_eff[:, 0], mean_power(pa(x)) / 10 ** 1.2)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_backoff_db": float("inf")}, r"`input_backoff_db` must be finite"),
    ({"input_backoff_db": 3.0, "model": "tube"}, r"`model` must be one of 'rapp', 'clip'"),
    ({"input_backoff_db": 3.0, "smoothness": 0.0}, r"`smoothness` must be a finite number > 0"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PowerAmplifier(**kwargs)
