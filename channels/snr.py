"""SNR bookkeeping: Eb/N0 <-> Es/N0 and the noise variance for a measured signal power.

Definitions used throughout semlink (all per complex channel symbol):

- ``Es`` is the mean energy of one transmitted complex symbol; the channels measure it as the
  mean of ``|x|^2`` over each batch row.
- ``N0`` is the noise variance per complex symbol, ``E|n|^2 = N0`` (``N0/2`` per real
  dimension), so ``snr_db = 10 log10(Es/N0)``.
- ``Eb`` is the energy per *information* bit. A symbol carries ``bits_per_symbol`` coded bits
  of which a fraction ``code_rate`` are information bits, hence
  ``Es/N0 = Eb/N0 * bits_per_symbol * code_rate``. For an uncoded link ``code_rate = 1``
  (QPSK: Es/N0 = Eb/N0 + 3.01 dB); for a rate-1/2 code with QPSK Es/N0 = Eb/N0. semlink's BER
  links pass the payload rate, the CRC counted as overhead (n = 2048, k = 1024 with 24 CRC bits:
  1000/2048, so Es/N0 = Eb/N0 - 0.10 dB).
"""
from __future__ import annotations

import math

import torch

from semlink.channels._checks import check_int, check_type

__all__ = ["ebno_db_to_esno_db", "esno_db_to_ebno_db", "noise_variance", "mean_power"]


def _efficiency_db(bits_per_symbol: int, code_rate: float) -> float:
    check_int(bits_per_symbol, name="bits_per_symbol", low=1)
    check_type(code_rate, (int, float), name="code_rate")
    if not 0 < code_rate <= 1:  # NaN fails too
        raise ValueError(f"`code_rate` must be in (0, 1]; got {code_rate!r}.")
    return 10.0 * math.log10(bits_per_symbol * code_rate)


def ebno_db_to_esno_db(ebno_db: float | torch.Tensor, bits_per_symbol: int,
                       code_rate: float = 1.0) -> float | torch.Tensor:
    """Convert Eb/N0 (per information bit) to Es/N0 (per complex symbol), both in dB.

    ``Es/N0 = Eb/N0 + 10 log10(bits_per_symbol * code_rate)``.

    :param bits_per_symbol: int >= 1; coded bits per complex symbol (QPSK 2, 16-QAM 4).
    :param code_rate: float in (0, 1], default 1.0 (uncoded); information bits / coded bits.
    :input ebno_db: float or real tensor of any shape, dB.
    :output esno_db: Same type and shape as ``ebno_db``, dB.
    :raises TypeError: If ``bits_per_symbol`` is not an int or ``code_rate`` not a number.
    :raises ValueError: If ``bits_per_symbol < 1`` or ``code_rate`` is outside (0, 1].

    >>> round(ebno_db_to_esno_db(4.0, 2), 4)
    7.0103
    >>> round(ebno_db_to_esno_db(4.0, 2, code_rate=0.5), 4)
    4.0
    """
    return ebno_db + _efficiency_db(bits_per_symbol, code_rate)


def esno_db_to_ebno_db(esno_db: float | torch.Tensor, bits_per_symbol: int,
                       code_rate: float = 1.0) -> float | torch.Tensor:
    """Convert Es/N0 (per complex symbol) to Eb/N0 (per information bit), both in dB.

    Inverse of :func:`ebno_db_to_esno_db`; same parameters and errors.

    >>> round(esno_db_to_ebno_db(10.0, 4, code_rate=0.5), 4)
    6.9897
    """
    return esno_db - _efficiency_db(bits_per_symbol, code_rate)


def noise_variance(signal_power: float | torch.Tensor,
                   snr_db: float | torch.Tensor) -> float | torch.Tensor:
    """Noise variance per complex symbol ``N0 = signal_power / 10^(snr_db/10)``.

    :input signal_power: float or real tensor, linear, >= 0; mean ``|x|^2`` per complex symbol.
    :input snr_db: float or real tensor broadcastable with ``signal_power``; Es/N0 in dB.
        ``+inf`` gives 0 (no noise).
    :output no: float (two floats in) or tensor (broadcast shape); linear, ``E|n|^2``.

    >>> noise_variance(2.0, 10.0)
    0.2
    """
    if isinstance(signal_power, torch.Tensor) or isinstance(snr_db, torch.Tensor):
        snr_db = torch.as_tensor(snr_db)
        return signal_power * torch.pow(10.0, -snr_db / 10.0)
    return signal_power * 10.0 ** (-snr_db / 10.0)


def mean_power(x: torch.Tensor) -> torch.Tensor:
    """Measured mean power of each row: ``mean(|x|^2)`` over the last dimension.

    :input x: [..., n], complex or real.
    :output power: [...], real (the real dtype matching ``x``), linear.
    """
    return x.abs().square().mean(dim=-1)
