"""Peak-to-average power of transmitted signals: PAPR per block and the CCDF of instantaneous
power.

Both are measured against a reference power, that of a transmit amplifier's back-off
(:mod:`semlink.channels.amplifier`): a sample whose power is ``g`` dB above the reference is compressed
by an amplifier at less than ``g`` dB input back-off. For a single-carrier link the samples are
the symbols themselves and the reference is each row's mean power (one image's symbols, one BER
batch row); for OFDM they are the oversampled time-domain signal
(:meth:`semlink.channels.ofdm.OFDMSISOChannel.time_signal`) and the reference is 1, the power of a
fully loaded OFDM symbol. A complex Gaussian signal has the power CCDF ``exp(-g)`` (``g`` in
linear units): 1e-3 at 8.4 dB.
"""
from __future__ import annotations

import math

import torch

from semlink.channels._checks import check_complex, check_int, check_type

__all__ = ["papr_db", "power_ccdf", "power_levels_db"]


def _relative_power(x: torch.Tensor, reference_power: float | None) -> torch.Tensor:
    """``|x|^2`` over the reference (None: the row's mean), [batch, n] float; rows of zeros
    stay 0."""
    check_complex(x, name="x")
    if x.dim() != 2:
        raise ValueError(f"`x` must have shape [batch, n]; got shape {tuple(x.shape)}.")
    power = x.abs().square()
    if reference_power is not None:
        check_type(reference_power, (int, float), name="reference_power")
        if not reference_power > 0:
            raise ValueError(f"`reference_power` must be > 0; got {reference_power!r}.")
        return power / reference_power
    mean = power.mean(dim=-1, keepdim=True)
    return power / torch.where(mean > 0, mean, torch.ones_like(mean))


def papr_db(x: torch.Tensor, *, block_length: int | None = None,
            reference_power: float | None = None) -> torch.Tensor:
    """Peak power of each block over the reference power, dB (see the module docstring).

    :param block_length: int >= 1 dividing ``n``, or None (default: one block per row), e.g.
        ``oversampling * fft_size`` for the PAPR of each OFDM symbol.
    :param reference_power: float > 0, or None (default: each row's mean power).
    :input x: [batch, n] complex, n >= 1.
    :output papr: [batch, n // block_length] float (the real dtype of ``x``), dB; ``-inf`` for
        a block of zeros.
    :raises TypeError: If ``x`` is not complex or an argument has the wrong type.
    :raises ValueError: If ``x`` is not 2-D and non-empty, ``block_length`` does not divide n
        or ``reference_power`` is not > 0.

    >>> papr_db(torch.tensor([[1 + 1j, 3 + 1j, 1 - 3j, 3 + 3j]]))  # 16-QAM: 18 over 10
    tensor([[2.5527]])
    """
    power = _relative_power(x, reference_power)
    n = power.shape[-1]
    if n == 0:
        raise ValueError("`x` must hold at least one sample per row; got n = 0.")
    block_length = n if block_length is None else block_length
    check_int(block_length, name="block_length", low=1, high=n)
    if n % block_length:
        raise ValueError(f"`block_length` must divide n = {n}; got {block_length}.")
    peak = power.reshape(power.shape[0], -1, block_length).amax(dim=-1)
    return 10.0 * torch.log10(peak)


def power_ccdf(x: torch.Tensor, thresholds_db: torch.Tensor | list[float], *,
               reference_power: float | None = None) -> torch.Tensor:
    """Fraction of all samples whose power is more than each threshold above the reference.

    :param reference_power: float > 0, or None (default: each row's mean power).
    :input x: [batch, n] complex.
    :input thresholds_db: [k] float (tensor or list); dB above the reference power.
    :output ccdf: [k] float64 in [0, 1]; ``P(|x|^2 / reference > 10^(t / 10))`` over all
        samples.
    :raises TypeError: If ``x`` is not complex or an argument has the wrong type.
    :raises ValueError: If ``x`` is not 2-D or ``reference_power`` is not > 0.

    >>> power_ccdf(torch.tensor([[1 + 1j, 3 + 1j, 1 - 3j, 3 + 3j]]), [-3.0, 2.0, 3.0])
    tensor([0.7500, 0.2500, 0.0000], dtype=torch.float64)
    """
    check_type(thresholds_db, (list, tuple, torch.Tensor), name="thresholds_db")
    power = _relative_power(x, reference_power).flatten().to(torch.float64)
    levels = 10.0 ** (torch.as_tensor(thresholds_db, dtype=torch.float64,
                                      device=power.device) / 10.0)
    if power.numel() == 0:
        return torch.zeros_like(levels)
    return (power.unsqueeze(0) > levels.unsqueeze(-1)).to(torch.float64).mean(dim=-1)


def power_levels_db(x: torch.Tensor, exceeded_by: list[float], *,
                    reference_power: float | None = None) -> torch.Tensor:
    """The inverse of :func:`power_ccdf`: for each fraction ``p``, the power (dB above the
    reference) that at most ``p`` of the samples exceed, i.e. the ``floor(p N) + 1``-th largest
    of the ``N`` samples; NaN where ``p N < 10``, too few samples above it to place it.

    :param reference_power: float > 0, or None (default: each row's mean power).
    :input x: [batch, n] complex.
    :input exceeded_by: list of floats in (0, 1); fractions of the samples.
    :output levels: [len(exceeded_by)] float64, dB.
    :raises TypeError: If ``x`` is not complex or an argument has the wrong type.
    :raises ValueError: If ``x`` is not 2-D, a fraction is outside (0, 1) or
        ``reference_power`` is not > 0.

    >>> x = torch.tensor([[1.0 + 0j] * 99 + [10.0 + 0j]])  # one sample 20 dB up
    >>> power_levels_db(x, [0.1, 0.001], reference_power=1.0)
    tensor([0., nan], dtype=torch.float64)
    """
    check_type(exceeded_by, (list, tuple), name="exceeded_by")
    for p in exceeded_by:
        check_type(p, float, name="exceeded_by")
        if not 0.0 < p < 1.0:
            raise ValueError(f"`exceeded_by` must hold fractions in (0, 1); got {p!r}.")
    power = _relative_power(x, reference_power).flatten().to(torch.float64).sort().values
    n = power.numel()
    levels = []
    for p in exceeded_by:
        above = int(p * n)
        levels.append(10.0 * math.log10(power[n - above - 1].item())
                      if p * n >= 10 and power[n - above - 1] > 0 else math.nan)
    return torch.tensor(levels, dtype=torch.float64)
