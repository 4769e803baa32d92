"""Time-correlated Rayleigh fading with the Clarke/Jakes Doppler spectrum, sampled per symbol.

A terminal moving through isotropic scattering sees a fading coefficient whose autocorrelation
is ``E[h(t) h*(t + k)] = J0(2 pi nu k)`` at a lag of ``k`` symbols, ``nu = f_D T_s`` the maximum
Doppler shift times the symbol period (the normalised Doppler; ``f_D = v f_c / c``).

The process is a sum of ``M`` sinusoids (Clarke's model) with random arrival angles and complex
Gaussian gains:

    h[t] = sum_m g_m exp(j 2 pi nu cos(alpha_m) t) / sqrt(M),
    alpha_m ~ U[0, 2 pi),  g_m ~ CN(0, 1), all independent.

Given the angles, ``h[t]`` is a sum of independent CN(0, 1/M) terms, so every sample is exactly
CN(0, 1) (Rayleigh, unit power) whatever ``M``; averaged over the angles the autocorrelation is
exactly ``E[exp(j 2 pi nu cos(alpha) k)] = J0(2 pi nu k)``. (Sum-of-sinusoids models with unit
gains, as in Sionna's TDL models, are Rayleigh only as ``M`` grows.) ``M`` sets how faithfully
one realisation follows the spectrum; the ensemble statistics do not depend on it.

Sionna 2 has no time-varying flat-fading model (its TDL/CDL models are used for OFDM, in
:mod:`semlink.channels.ofdm`), hence this module.
"""
from __future__ import annotations

import math

import torch

from semlink.channels._checks import check_int, check_type

__all__ = ["DOPPLER_SINUSOIDS", "MAX_NORMALIZED_DOPPLER", "check_normalized_doppler",
           "jakes_process"]

#: Sinusoids per fading process.
DOPPLER_SINUSOIDS = 32
#: Largest normalised Doppler ``f_D T_s`` accepted: beyond it the fading changes faster than
#: the symbols are sent (and ``nu`` and ``1 - nu`` alias).
MAX_NORMALIZED_DOPPLER = 0.5
_SINUSOIDS_PER_STEP = 8  # bounds the [..., sinusoids, n] phases held at once


def check_normalized_doppler(normalized_doppler: float) -> float:
    """``normalized_doppler`` as a float, checked to lie in (0, :data:`MAX_NORMALIZED_DOPPLER`].

    :raises TypeError: If it is not a number.
    :raises ValueError: If it is out of range (or NaN).
    """
    check_type(normalized_doppler, (int, float), name="normalized_doppler")
    if not 0.0 < normalized_doppler <= MAX_NORMALIZED_DOPPLER:  # NaN fails too
        raise ValueError(f"`normalized_doppler` must be in (0, {MAX_NORMALIZED_DOPPLER}]; got "
                         f"{normalized_doppler!r}.")
    return float(normalized_doppler)


def jakes_process(batch_shape: tuple[int, ...], num_samples: int, normalized_doppler: float,
                  *, num_sinusoids: int = DOPPLER_SINUSOIDS,
                  generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.complex64,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Independent unit-power Rayleigh fading processes with the Jakes autocorrelation.

    Draws the angles, then the gains, from ``generator``. Phases are computed in float64 so
    that long sequences keep their correlation.

    :param batch_shape: Shape of the independent processes, e.g. ``(batch, antennas)``.
    :param num_samples: int >= 1; samples (symbols) per process.
    :param normalized_doppler: float in (0, 0.5]; ``f_D T_s``.
    :param num_sinusoids: int >= 1, default :data:`DOPPLER_SINUSOIDS`.
    :param generator: Random source on ``device``; None = torch's default.
    :param dtype: ``torch.complex64`` (default) or ``torch.complex128``.
    :param device: Device of the output; None = the generator's, else the CPU.
    :output h: [*batch_shape, num_samples], ``dtype``; each sample CN(0, 1).
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If a count or ``normalized_doppler`` is out of range.

    >>> h = jakes_process((2,), 100, 0.01, generator=torch.Generator().manual_seed(0))
    >>> h.shape, h.dtype, bool((h[:, 1:] - h[:, :-1]).abs().max() < 0.2)
    (torch.Size([2, 100]), torch.complex64, True)
    """
    check_type(batch_shape, tuple, name="batch_shape")
    for side in batch_shape:
        check_int(side, name="batch_shape", low=0)
    check_int(num_samples, name="num_samples", low=1)
    check_int(num_sinusoids, name="num_sinusoids", low=1)
    check_normalized_doppler(normalized_doppler)
    if dtype not in (torch.complex64, torch.complex128):
        raise ValueError(f"`dtype` must be torch.complex64 or torch.complex128; got {dtype}.")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    sinusoids = (*batch_shape, num_sinusoids)
    angles = torch.rand(sinusoids, dtype=torch.float64, device=device, generator=generator)
    gains = torch.randn(sinusoids, dtype=dtype, device=device, generator=generator)
    gains = gains / math.sqrt(num_sinusoids)
    # cycles per symbol of each sinusoid: nu cos(alpha), alpha = 2 pi u
    frequency = normalized_doppler * torch.cos(2.0 * math.pi * angles)
    t = torch.arange(num_samples, dtype=torch.float64, device=device)
    h = torch.zeros((*batch_shape, num_samples), dtype=dtype, device=device)
    for start in range(0, num_sinusoids, _SINUSOIDS_PER_STEP):
        cycles = frequency[..., start:start + _SINUSOIDS_PER_STEP, None] * t  # [..., s, n]
        phase = (2.0 * math.pi * torch.frac(cycles)).to(gains.real.dtype)
        h += (gains[..., start:start + _SINUSOIDS_PER_STEP, None]
              * torch.polar(torch.ones_like(phase), phase)).sum(dim=-2)
    return h
