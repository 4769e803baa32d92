"""Tests for semlink.channels.snr against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from semlink.channels.snr import ebno_db_to_esno_db, esno_db_to_ebno_db, mean_power, noise_variance


@pytest.mark.parametrize("ebno_db, bps, rate, esno_db", [
    (4.0, 2, 1.0, 4.0 + 10 * math.log10(2)),        # uncoded QPSK: +3.0103 dB
    (0.0, 1, 1.0, 0.0),                              # uncoded BPSK: Es = Eb
    (4.0, 2, 0.5, 4.0),                              # rate-1/2 QPSK: Es = Eb
    (1.0, 4, 0.5, 1.0 + 10 * math.log10(2)),         # rate-1/2 16-QAM: 2 info bits/symbol
    (-2.0, 6, 2 / 3, -2.0 + 10 * math.log10(4)),     # rate-2/3 64-QAM: 4 info bits/symbol
])
def test_ebno_esno_hand_values(ebno_db, bps, rate, esno_db):
    assert ebno_db_to_esno_db(ebno_db, bps, rate) == pytest.approx(esno_db, abs=1e-12)
    assert esno_db_to_ebno_db(esno_db, bps, rate) == pytest.approx(ebno_db, abs=1e-12)


def test_ebno_esno_tensor_roundtrip():
    ebno = torch.tensor([0.0, 5.0, 10.0], dtype=torch.float64)
    esno = ebno_db_to_esno_db(ebno, 4)
    torch.testing.assert_close(esno, ebno + 6.020599913279624)
    torch.testing.assert_close(esno_db_to_ebno_db(esno, 4), ebno)


@pytest.mark.parametrize("power, snr_db, no", [
    (1.0, 0.0, 1.0), (1.0, 10.0, 0.1), (2.0, 3.0, 2.0 / 10 ** 0.3), (4.0, -10.0, 40.0),
    (1.0, float("inf"), 0.0),
])
def test_noise_variance_hand_values(power, snr_db, no):
    assert noise_variance(power, snr_db) == pytest.approx(no, rel=1e-12)


def test_noise_variance_tensor_broadcast():
    p = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    out = noise_variance(p, torch.tensor([0.0, 20.0], dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.01], [2.0, 0.02]], dtype=torch.float64))


def test_mean_power_per_row():
    x = torch.tensor([[1 + 1j, 1 - 1j], [3 + 0j, 0 + 4j]], dtype=torch.complex64)
    torch.testing.assert_close(mean_power(x), torch.tensor([2.0, 12.5]))


@pytest.mark.parametrize("bps, rate, exc, match", [
    (0, 1.0, ValueError, r"`bits_per_symbol` must be in \[1, inf\]; got 0"),
    (True, 1.0, TypeError, r"`bits_per_symbol` must be int; got True"),
    (2.0, 1.0, TypeError, r"`bits_per_symbol` must be int; got 2.0"),
    (2, 0.0, ValueError, r"`code_rate` must be in \(0, 1\]; got 0.0"),
    (2, 1.5, ValueError, r"`code_rate` must be in \(0, 1\]; got 1.5"),
    (2, float("nan"), ValueError, r"`code_rate` must be in \(0, 1\]; got nan"),
    (2, "1/2", TypeError, r"`code_rate` must be int or float; got '1/2'"),
])
@pytest.mark.parametrize("fn", [ebno_db_to_esno_db, esno_db_to_ebno_db])
def test_conversion_raises(fn, bps, rate, exc, match):
    with pytest.raises(exc, match=match):
        fn(3.0, bps, rate)
