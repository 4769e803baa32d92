"""The receiver oscillator's phase errors: phase noise (a Wiener random walk) and a carrier
frequency offset (a phase ramp), neither tracked by the receiver.

A free-running oscillator of 3 dB linewidth ``df`` (Hz) adds to the signal sampled every ``T``
seconds a phase whose increments are independent ``N(0, 2 pi df T)`` (the Lorentzian spectrum's
Wiener model); an oscillator off by ``f_o`` Hz adds ``2 pi f_o T`` per sample. Both phases start
at 0 in every row (the receiver has locked to it there) and run on from there, so late symbols
of a long row turn furthest.

- Single carrier (:class:`OscillatorChannel`): the equalised symbols of any flat channel of
  this package turn by ``exp(j theta_k)``, ``k`` the symbol index, with ``df T`` given as
  ``normalized_linewidth`` and ``f_o T`` as ``normalized_frequency_offset`` (both per symbol
  period). With a single tap this is the same as turning the received signal before
  equalisation (the noise is circular); ``no_eff`` stays the channel's: the receiver does not
  know the phase.
- OFDM (:class:`~semlink.channels.ofdm_time.TimeDomainOFDM`): every time-domain sample turns, ``T``
  the sample period ``1 / (fft_size x subcarrier_spacing)``: a common phase per OFDM symbol,
  which pilots and LS estimation see where they are, and interference between subcarriers (a
  frequency offset of ``e`` subcarrier spacings keeps ``|sin(pi e) / (N sin(pi e / N))|^2`` of
  each subcarrier's power and spreads the rest over the others).
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import check_type

__all__ = ["MAX_NORMALIZED_FREQUENCY_OFFSET", "MAX_NORMALIZED_LINEWIDTH", "OscillatorChannel",
           "check_frequency_offset", "check_linewidth", "oscillator_phase", "wiener_phase"]

#: Largest linewidth-period product accepted: a phase step of sqrt(2 pi 0.1) = 0.79 rad rms.
MAX_NORMALIZED_LINEWIDTH = 0.1
#: Largest frequency offset accepted, in sample rates: half a turn per sample (Nyquist).
MAX_NORMALIZED_FREQUENCY_OFFSET = 0.5


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


def check_frequency_offset(normalized_frequency_offset: float) -> float:
    """``normalized_frequency_offset`` as a float in [-0.5, 0.5].

    :raises TypeError: If it is not a number.
    :raises ValueError: If it is outside [-0.5, 0.5] (NaN included).
    """
    check_type(normalized_frequency_offset, (int, float), name="normalized_frequency_offset")
    bound = MAX_NORMALIZED_FREQUENCY_OFFSET
    if not -bound <= normalized_frequency_offset <= bound:
        raise ValueError(f"`normalized_frequency_offset` must be in [{-bound}, {bound}]; "
                         f"got {normalized_frequency_offset!r}.")
    return float(normalized_frequency_offset)


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


def oscillator_phase(shape: tuple[int, ...], n: int, *, normalized_linewidth: float | None,
                     normalized_frequency_offset: float | None,
                     generator: torch.Generator | None, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> torch.Tensor:
    """The phase error of ``n`` samples per row: the frequency offset's ramp ``2 pi f_o T k``
    plus the Wiener phase noise (each only when given), from 0.

    :output theta: [*shape, n] ``dtype``, rad.

    >>> oscillator_phase((1,), 3, normalized_linewidth=None, normalized_frequency_offset=0.25,
    ...                  generator=None)
    tensor([[0.0000, 1.5708, 3.1416]])
    """
    theta = torch.zeros((*shape, n), dtype=dtype, device=device)
    if normalized_frequency_offset is not None:
        ramp = torch.arange(n, dtype=dtype, device=device)
        theta = theta + 2.0 * math.pi * check_frequency_offset(normalized_frequency_offset) * ramp
    if normalized_linewidth is not None:
        theta = theta + wiener_phase(shape, n, normalized_linewidth, generator=generator,
                                     dtype=dtype, device=device)
    return theta


class OscillatorChannel(Block):
    """``channel`` followed by the receiver oscillator's phase errors (single carrier).

    :param channel: Any single-carrier channel block of this package (call convention
        ``x_hat, no_eff = channel(x, snr_db)``).
    :param normalized_linewidth: float in (0, 0.1] or None; linewidth times symbol period,
        ``df T``: Wiener phase noise.
    :param normalized_frequency_offset: float in [-0.5, 0.5] or None; frequency offset times
        symbol period, ``f_o T``: a phase ramp.
    :param generator: Source of the phase increments, on the channel's device (drawn after the
        channel's own draws); None = torch's default.
    :input x: [batch, n] complex.
    :input snr_db: As the channel's.
    :output x_hat: [batch, n] complex; the channel's equalised symbols turned by the phase.
    :output no_eff: The channel's (the receiver does not know the phase).
    :raises ValueError: If neither is given, or one is out of range.
    """

    def __init__(self, channel: Block, normalized_linewidth: float | None = None, *,
                 normalized_frequency_offset: float | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(precision=channel.precision, device=channel.device)
        if normalized_linewidth is None and normalized_frequency_offset is None:
            raise ValueError("`normalized_linewidth` or `normalized_frequency_offset` must be "
                             "given; got neither.")
        self.channel = channel
        self.normalized_linewidth = (None if normalized_linewidth is None
                                     else check_linewidth(normalized_linewidth))
        self.normalized_frequency_offset = (
            None if normalized_frequency_offset is None
            else check_frequency_offset(normalized_frequency_offset))
        self._generator = generator

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float):
        x_hat, no_eff = self.channel(x, snr_db)
        theta = oscillator_phase((x_hat.shape[0],), x_hat.shape[1],
                                 normalized_linewidth=self.normalized_linewidth,
                                 normalized_frequency_offset=self.normalized_frequency_offset,
                                 generator=self._generator, dtype=x_hat.real.dtype,
                                 device=x_hat.device)
        return x_hat * torch.polar(torch.ones_like(theta), theta), no_eff
