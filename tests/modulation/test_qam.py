"""Tests for modulation/qam.py against 3GPP TS 38.211 Sec. 5.1 tables and closed-form error rates."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from semlink.modulation.qam import (
    BITS_PER_SYMBOL,
    QAMDemapper,
    QAMMapper,
    bits_per_symbol_for_order,
)


def _ts38211_points(k: int) -> np.ndarray:
    """Constellation point of every label 0..2**k-1 (MSB first) from the TS 38.211 formulas."""
    pts = []
    for label in range(2**k):
        b = [(label >> (k - 1 - i)) & 1 for i in range(k)]
        s = [1 - 2 * bit for bit in b]  # 1 - 2 b(i)
        if k == 1:  # our BPSK is real: 0 -> +1, 1 -> -1
            p = s[0]
        elif k == 2:
            p = (s[0] + 1j * s[1]) / math.sqrt(2)
        elif k == 4:
            p = (s[0] * (2 - s[2]) + 1j * s[1] * (2 - s[3])) / math.sqrt(10)
        elif k == 6:
            p = (s[0] * (4 - s[2] * (2 - s[4])) + 1j * s[1] * (4 - s[3] * (2 - s[5]))) / math.sqrt(42)
        else:
            p = (s[0] * (8 - s[2] * (4 - s[4] * (2 - s[6])))
                 + 1j * s[1] * (8 - s[3] * (4 - s[5] * (2 - s[7])))) / math.sqrt(170)
        pts.append(p)
    return np.asarray(pts, dtype=np.complex128)


def _labels(k: int) -> np.ndarray:
    return np.array([[(i >> (k - 1 - j)) & 1 for j in range(k)] for i in range(2**k)])


def _q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def _complex_noise(shape, no: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return math.sqrt(no) * torch.randn(shape, dtype=torch.complex64, generator=g)


@pytest.mark.parametrize("k", BITS_PER_SYMBOL)
def test_mapper_matches_ts38211_for_every_label(k):
    mapper = QAMMapper(bits_per_symbol=k)
    bits = torch.tensor(_labels(k), dtype=torch.float32).reshape(1, -1)  # all labels in order
    x = mapper(bits)[0].to(torch.complex128).numpy()
    np.testing.assert_allclose(x, _ts38211_points(k), atol=1e-6)
    assert x.shape == (2**k,)
    assert abs(np.mean(np.abs(x) ** 2) - 1.0) < 1e-6  # unit average energy


@pytest.mark.parametrize("k", BITS_PER_SYMBOL)
def test_gray_labelling_nearest_neighbours_differ_in_one_bit(k):
    pts, labels = _ts38211_points(k), _labels(k)
    dist = np.abs(pts[:, None] - pts[None, :])
    dmin = dist[dist > 0].min()
    i, j = np.nonzero(np.isclose(dist, dmin))
    assert np.all((labels[i] != labels[j]).sum(axis=1) == 1)


@pytest.mark.parametrize("method", ["app", "maxlog"])
@pytest.mark.parametrize("k", BITS_PER_SYMBOL)
def test_llrs_match_bruteforce_definition(k, method):
    g = torch.Generator().manual_seed(7)
    y = torch.randn(3, 50, dtype=torch.complex64, generator=g) * 1.2
    no = torch.rand(3, 1, generator=g) * 0.5 + 0.05  # broadcast per row
    llr = QAMDemapper(bits_per_symbol=k, method=method)(y, no)
    assert llr.shape == (3, 50 * k) and llr.dtype == torch.float32

    pts, labels = _ts38211_points(k), _labels(k)
    metric = -np.abs(y.numpy()[..., None].astype(np.complex128) - pts) ** 2 / no.numpy()[..., None]
    ref = np.empty((3, 50, k))
    for b in range(k):
        m1, m0 = metric[..., labels[:, b] == 1], metric[..., labels[:, b] == 0]
        if method == "app":
            ref[..., b] = np.logaddexp.reduce(m1, axis=-1) - np.logaddexp.reduce(m0, axis=-1)
        else:
            ref[..., b] = m1.max(axis=-1) - m0.max(axis=-1)
    np.testing.assert_allclose(llr.numpy(), ref.reshape(3, -1), rtol=1e-4, atol=1e-3)


def test_bpsk_and_qpsk_llr_closed_form():
    y = torch.tensor([0.3 - 0.7j, -1.1 + 0.2j], dtype=torch.complex64)
    no = 0.4
    llr_bpsk = QAMDemapper(bits_per_symbol=1)(y, no)
    torch.testing.assert_close(llr_bpsk, -4 * y.real / no)  # LLR = log P(1)/P(0), 1 -> -1
    llr_qpsk = QAMDemapper(bits_per_symbol=2)(y, no).reshape(2, 2)
    s = 2 * math.sqrt(2) / no
    torch.testing.assert_close(llr_qpsk, torch.stack([-s * y.real, -s * y.imag], -1))


@pytest.mark.parametrize("k", [1, 2])
def test_bpsk_qpsk_ber_matches_q_function(k):
    # Eb/N0 = 4 dB: p = Q(sqrt(2 Eb/N0)) ~ 1.25e-2; 4e5 bits give sigma ~ 1.8e-4, rel=0.08 ~ 5.7 sigma
    ebno = 10 ** 0.4
    no = 1 / (k * ebno)
    num_bits = 400_000
    g = torch.Generator().manual_seed(11)
    bits = torch.randint(0, 2, (1, num_bits), generator=g).float()
    x = QAMMapper(bits_per_symbol=k)(bits)
    y = x + _complex_noise(x.shape, no, seed=12)
    bits_hat = QAMDemapper(bits_per_symbol=k, hard_out=True)(y, no)
    ber = (bits_hat != bits).float().mean().item()
    assert ber == pytest.approx(_q(math.sqrt(2 * ebno)), rel=0.08)


# SER 1.8e-2 / 2.5e-2 / 2.8e-2; relative sigma 2.4 / 2.6 / 2.9 %, so rel=0.17 is >= 5.8 sigma
@pytest.mark.parametrize("k,esno_db,num_sym", [(4, 15.0, 100_000), (6, 21.0, 60_000),
                                               (8, 27.0, 40_000)])
def test_square_qam_ser_matches_closed_form(k, esno_db, num_sym):
    # exact ML SER of square M-QAM: 1 - (1 - P)^2, P = 2 (1 - 1/sqrt M) Q(sqrt(3 Es/N0 / (M-1)))
    m = 2**k
    esno = 10 ** (esno_db / 10)
    p = 2 * (1 - 1 / math.sqrt(m)) * _q(math.sqrt(3 * esno / (m - 1)))
    ser_ref = 1 - (1 - p) ** 2
    g = torch.Generator().manual_seed(k)
    bits = torch.randint(0, 2, (num_sym * k,), generator=g).float()
    x = QAMMapper(bits_per_symbol=k)(bits)
    y = x + _complex_noise(x.shape, 1 / esno, seed=100 + k)
    bits_hat = QAMDemapper(bits_per_symbol=k, method="maxlog", hard_out=True)(y, 1 / esno)
    ser = (bits_hat != bits).reshape(num_sym, k).any(dim=1).float().mean().item()
    assert ser == pytest.approx(ser_ref, rel=0.17)


@pytest.mark.parametrize("k", BITS_PER_SYMBOL)
def test_noise_free_round_trip_and_leading_dims(k):
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (2, 3, 12 * k), generator=g).float()
    x = QAMMapper(bits_per_symbol=k)(bits)
    assert x.shape == (2, 3, 12) and x.dtype == torch.complex64
    llr = QAMDemapper(bits_per_symbol=k)(x, torch.full((2, 3, 12), 1e-2))
    assert llr.shape == bits.shape
    assert torch.equal((llr > 0).float(), bits)


def test_bpsk_symbols_are_real():
    x = QAMMapper(bits_per_symbol=1)(torch.tensor([0.0, 1.0, 1.0]))
    assert x.dtype == torch.complex64
    assert torch.equal(x, torch.tensor([1, -1, -1], dtype=torch.complex64))


def test_double_precision_passthrough():
    mapper = QAMMapper(bits_per_symbol=4, precision="double")
    demapper = QAMDemapper(bits_per_symbol=4, precision="double")
    x = mapper(torch.zeros(2, 8))
    assert x.dtype == torch.complex128
    assert demapper(x, 0.1).dtype == torch.float64


def test_maxlog_and_app_agree_at_high_snr_and_zero_noise_is_clamped():
    g = torch.Generator().manual_seed(5)
    bits = torch.randint(0, 2, (1, 4 * 200), generator=g).float()
    x = QAMMapper(bits_per_symbol=4)(bits)
    y = x + _complex_noise(x.shape, 1e-3, seed=6)
    app, maxlog = (QAMDemapper(bits_per_symbol=4, method=m) for m in ("app", "maxlog"))
    # High SNR (no = 0.01, |LLR| >= 30): the nearest points dominate the log-sum-exp.
    torch.testing.assert_close(maxlog(y, 0.01), app(y, 0.01), rtol=1e-4, atol=1e-3)
    # ... but not at low SNR, where the other points count (so the two really differ).
    assert (maxlog(y, 1.0) - app(y, 1.0)).abs().max() > 0.05
    for demapper in (app, maxlog):  # no = 0 is clamped: finite LLRs of the right sign
        llr = demapper(x, 0.0)
        assert torch.all(torch.isfinite(llr)) and torch.equal((llr > 0).float(), bits)


@pytest.mark.parametrize("order,k", [(2, 1), (4, 2), (16, 4), (64, 6), (256, 8)])
def test_bits_per_symbol_for_order(order, k):
    assert bits_per_symbol_for_order(order) == k


@pytest.mark.parametrize("order", [8, 32, 1, 0, 1024])
def test_bits_per_symbol_for_order_rejects_non_square(order):
    with pytest.raises(ValueError, match=r"`modulation_order` must be one of 2, 4, 16, 64, 256"):
        bits_per_symbol_for_order(order)


@pytest.mark.parametrize("cls", [QAMMapper, QAMDemapper])
@pytest.mark.parametrize("k", [0, 3, 5, 16, -2])
def test_invalid_bits_per_symbol_raises(cls, k):
    with pytest.raises(ValueError, match=r"`bits_per_symbol` must be one of 1, 2, 4, 6, 8; got"):
        cls(bits_per_symbol=k)


@pytest.mark.parametrize("bad", [True, 2.0, "2"])
def test_bits_per_symbol_type_raises(bad):
    with pytest.raises(TypeError, match="`bits_per_symbol` must be int"):
        QAMMapper(bits_per_symbol=bad)
    with pytest.raises(TypeError, match="`modulation_order` must be int"):
        bits_per_symbol_for_order(bad)


def test_mapper_call_errors():
    mapper = QAMMapper(bits_per_symbol=4)
    with pytest.raises(ValueError, match="multiple of bits_per_symbol=4"):
        mapper(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="`bits` must contain only 0 and 1"):
        mapper(torch.full((1, 4), 0.5))
    with pytest.raises(TypeError, match="`bits` must be a real tensor"):
        mapper(torch.zeros(1, 4, dtype=torch.complex64))
    # unchecked mode skips the value check (no device sync)
    assert QAMMapper(bits_per_symbol=2, check_values=False)(torch.ones(1, 2)).shape == (1, 1)


def test_demapper_errors():
    with pytest.raises(ValueError, match="`method` must be one of 'app', 'maxlog'; got 'minsum'"):
        QAMDemapper(bits_per_symbol=2, method="minsum")
    with pytest.raises(TypeError, match="`hard_out` must be bool"):
        QAMDemapper(bits_per_symbol=2, hard_out=1)
    demapper = QAMDemapper(bits_per_symbol=2)
    y = torch.zeros(2, 5, dtype=torch.complex64)
    with pytest.raises(TypeError, match="`y` must be a complex tensor"):
        demapper(torch.zeros(2, 5), 0.1)
    with pytest.raises(ValueError, match=r"`no` of shape \(3,\) must broadcast to \(2, 5\)"):
        demapper(y, torch.ones(3))
    with pytest.raises(ValueError, match="`no` must be >= 0 everywhere"):
        demapper(y, -0.1)
    with pytest.raises(TypeError, match="`no` must be real"):
        demapper(y, torch.ones(1, dtype=torch.complex64))


def test_labels_helper_is_consistent():
    # guards the test's own reference tables: every label appears once
    for k in BITS_PER_SYMBOL:
        assert len({tuple(r) for r in _labels(k)}) == 2**k
        assert len(set(np.round(_ts38211_points(k), 9))) == 2**k
    assert list(itertools.islice(_labels(2).tolist(), 2)) == [[0, 0], [0, 1]]
