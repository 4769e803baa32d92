"""Oscillator phase noise: a Wiener (random-walk) phase on the received signal, which the
receiver does not track.

A free-running oscillator of 3 dB linewidth ``df`` (Hz) adds to the signal sampled every ``T``
seconds a phase whose increments are independent ``N(0, 2 pi df T)`` (the Lorentzian spectrum's
Wiener model). The phase starts at 0 in every row (the receiver has locked to it there) and
wanders from there, so late symbols of a long row turn furthest.

- Single carrier (:class:`PhaseNoisyChannel`): the equalised symbols of any flat channel of
  this package turn by ``exp(j theta_k)``, ``k`` the symbol index, with ``df T`` given as
  ``normalized_linewidth`` (linewidth times symbol period). With a single tap this is the same
  as turning the received signal before equalisation (the noise is circular); ``no_eff`` stays
  the channel's: the receiver does not know the phase.
- OFDM (:class:`~channels.ofdm_time.TimeDomainOFDM`): every time-domain sample turns, ``T`` the
  sample period ``1 / (fft_size x subcarrier_spacing)``: a common phase per OFDM symbol, which
  pilots and LS estimation see where they are, and interference between subcarriers.
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from channels._checks import check_type

__all__ = ["PhaseNoisyChannel", "MAX_NORMALIZED_LINEWIDTH", "check_linewidth", "wiener_phase"]

#: Largest linewidth-period product accepted: a phase step of sqrt(2 pi 0.1) = 0.79 rad rms.
MAX_NORMALIZED_LINEWIDTH = 0.1


def check_linewidth(normalized_linewidth: float) -> float:
    """``normalized_linewidth`` as a float in (0, 0.1].

    :raises TypeError: If it is not a number.
    :raises ValueError: If it is outside (0, 0.1] (NaN included).
    """
    check_type(normalized_linewidth, (int, float), name="normalized_linewidth")
    if not 0.0 < normalized_linewidth <= MAX_NORMALIZED_LINEWIDTH:
        raise ValueError(f"`normalized_linewidth` must be in (0, {MAX_NORMALIZED_LINEWIDTH}]; "
                         f"got {normalized_linewidth!r}.")
    return float(normalized_linewidth)


def wiener_phase(shape: tuple[int, ...], n: int, normalized_linewidth: float, *,
                 generator: torch.Generator | None, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """Wiener phase of ``n`` samples per row, starting at 0.

    :param shape: Leading shape of the rows.
    :param n: int >= 0; samples per row.
    :param normalized_linewidth: ``df T`` in (0, 0.1]; the increments' variance is ``2 pi df T``.
    :param generator: Source of the increments (on ``device``); None = torch's default.
    :output theta: [*shape, n] ``dtype``, rad; ``theta[..., 0] = 0``.

    >>> theta = wiener_phase((2,), 5, 0.01, generator=torch.Generator().manual_seed(0))
    >>> theta.shape, theta[:, 0].tolist()
    (torch.Size([2, 5]), [0.0, 0.0])
    """
    step = math.sqrt(2.0 * math.pi * check_linewidth(normalized_linewidth))
    increments = torch.randn((*shape, max(n - 1, 0)), dtype=dtype, device=device,
                             generator=generator) * step
    start = torch.zeros((*shape, min(n, 1)), dtype=dtype, device=device)
    return torch.cat([start, start + increments.cumsum(dim=-1)], dim=-1)


class PhaseNoisyChannel(Block):
    """``channel`` followed by the receiver oscillator's Wiener phase noise (single carrier).

    :param channel: Any single-carrier channel block of this package (call convention
        ``x_hat, no_eff = channel(x, snr_db)``).
    :param normalized_linewidth: float in (0, 0.1]; linewidth times symbol period, ``df T``.
    :param generator: Source of the phase increments, on the channel's device (drawn after the
        channel's own draws); None = torch's default.
    :input x: [batch, n] complex.
    :input snr_db: As the channel's.
    :output x_hat: [batch, n] complex; the channel's equalised symbols turned by the phase.
    :output no_eff: The channel's (the receiver does not know the phase).
    """

    def __init__(self, channel: Block, normalized_linewidth: float, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(precision=channel.precision, device=channel.device)
        self.channel = channel
        self.normalized_linewidth = check_linewidth(normalized_linewidth)
        self._generator = generator

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float):
        x_hat, no_eff = self.channel(x, snr_db)
        theta = wiener_phase((x_hat.shape[0],), x_hat.shape[1], self.normalized_linewidth,
                             generator=self._generator, dtype=x_hat.real.dtype,
                             device=x_hat.device)
        return x_hat * torch.polar(torch.ones_like(theta), theta), no_eff
