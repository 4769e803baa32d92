"""OFDM resource grids through a time-domain multipath channel: cyclic prefix, the channel's
taps sample by sample, noise, and the receiver's FFT window.

Where :class:`~semlink.channels.ofdm.OFDMSISOChannel` multiplies each resource element by the channel's
frequency response (no interference between symbols or subcarriers), this block does what the
waveform goes through: Sionna's ``OFDMModulator`` adds the cyclic prefix, ``TimeChannel``
filters the samples with the TR 38.901 model's taps (sinc pulses at the grid's bandwidth
``fft_size x subcarrier_spacing``, lags ``-6`` to ``ceil(W tau_max) + 6`` with ``tau_max`` the
profile's largest delay, the taps drawn for every sample so the channel may change within a
symbol), complex AWGN is added to every sample, and ``OFDMDemodulator`` removes the prefix and
takes the FFT. The receiver places its FFT window ``min(cyclic_prefix_length, 6)`` samples
early, into the prefix, so that the sinc pulses' early tails stay inside the symbol.

So a prefix shorter than the channel lets each symbol leak into the next (ISI, and the lost
circularity, ICI), and motion within a symbol spreads the subcarriers into each other (ICI):
the frequency-domain model has neither. Without a multipath model (``cir`` None) the samples
pass unchanged but for the noise. With ``phase_noise_linewidth_hz`` or ``frequency_offset_hz``
the receiver's oscillator turns every received sample by a Wiener phase or a phase ramp
(:mod:`semlink.channels.oscillator`), one path through all the slots of a row from 0 at its first
sample: a common phase per OFDM symbol, drifting from slot to slot, and interference between
subcarriers; with ``estimate_frequency_offset`` the receiver estimates a row's offset on its
cyclic prefixes and turns the samples back before the FFT. With a unitary FFT the noise per resource element is
the noise per sample, so ``snr_db`` means what it means in the frequency-domain model. The
frequency response the perfect-CSI receiver uses is the taps' DFT at each symbol's start
(``time_to_ofdm_channel``): it knows the channel, not the interference.
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block
from sionna.phy.channel import TimeChannel, time_to_ofdm_channel
from sionna.phy.ofdm import OFDMDemodulator, OFDMModulator, ResourceGrid

from semlink.channels._checks import check_type, sionna_device
from semlink.channels.awgn import AWGN
from semlink.channels.oscillator import (MAX_NORMALIZED_FREQUENCY_OFFSET, MAX_NORMALIZED_LINEWIDTH,
                                 oscillator_phase)

__all__ = ["TimeDomainOFDM", "WINDOW_ADVANCE", "cyclic_prefix_frequency_offset"]

#: Samples the FFT window starts before the end of the prefix, at most (Sionna's -l_min).
WINDOW_ADVANCE = 6


def cyclic_prefix_frequency_offset(window: torch.Tensor, *, fft_size: int, cp: int,
                                   advance: int, slots_per_row: int = 1) -> torch.Tensor:
    """A row's frequency offset from the correlation of the cyclic prefixes with the samples
    they copy (van de Beek's estimator, accumulated over the row's slots).

    Sample ``n`` of the prefix and sample ``n + N`` carry the same transmitted value, so an
    oscillator off by ``e`` subcarrier spacings turns the second by ``2 pi e`` more than the
    first: ``e = -arg(sum r_n conj(r_{n+N})) / (2 pi)``, unambiguous within half a subcarrier
    spacing, about ``1 / (4 pi^2 M SNR)`` of error over ``M`` prefix samples at high SNR. The
    prefixes of all but the last symbol of each slot are used (the window may end before the
    last symbol's copy).

    :param window: [B, 1, 1, S (N + cp)] complex; each slot's received samples, the window
        starting ``advance`` samples before its first symbol; the ``slots_per_row`` slots of a
        row consecutive.
    :param fft_size: int; ``N``. :param cp: int >= 1; prefix samples. :param advance: int in
        [0, cp].
    :output e: [B / slots_per_row] float; the offset, subcarrier spacings.
    """
    batch = window.shape[0]
    length = fft_size + cp
    symbols = window.shape[-1] // length
    samples = window.reshape(batch, -1)
    starts = torch.arange(symbols - 1, device=window.device) * length + advance
    first = (starts.unsqueeze(1) + torch.arange(cp, device=window.device)).flatten()
    corr = (samples[:, first] * samples[:, first + fft_size].conj()).sum(dim=-1)
    corr = corr.reshape(-1, slots_per_row).sum(dim=-1)
    return -torch.angle(corr) / (2.0 * math.pi)


class TimeDomainOFDM(Block):
    """Resource grids -> cyclic prefix -> multipath taps -> AWGN -> FFT window -> grids.

    :param cir: A TR 38.901 TDL or CDL model of :mod:`semlink.channels._tr38901` (its generator draws
        the taps), or None: no multipath.
    :param resource_grid: The grid of one slot.
    :param awgn: The AWGN block that draws the noise (the caller's generator).
    :param phase_noise_linewidth_hz: float > 0 or None (default: no phase noise); the receiver
        oscillator's 3 dB linewidth, Hz (its product with the sample period at most 0.1).
    :param frequency_offset_hz: float or None (default: none); the receiver oscillator's
        frequency offset, Hz (at most half the sample rate either way).
    :param estimate_frequency_offset: bool, default False; the receiver estimates each row's
        frequency offset from its cyclic prefixes (:func:`cyclic_prefix_frequency_offset`)
        and turns the samples back by its ramp before the FFT, taking away the interference
        of an offset within half a subcarrier spacing. Needs a prefix and two or more OFDM
        symbols a slot.
    :param generator: Source of the phase noise, on the device (drawn after the noise).
    :param precision: ``"single"`` | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x_rg: [B, 1, 1, num_ofdm_symbols, fft_size] complex; one slot per row, the
        ``slots_per_row`` slots of each transmitted row consecutive.
    :input no: [B] float; noise variance per sample (= per resource element).
    :input slots_per_row: int >= 1 dividing B, default 1; the phase noise runs on through the
        slots of one row.
    :output y: [B, 1, 1, num_ofdm_symbols, fft_size] complex; the received grid.
    :output h: [B, 1, 1, 1, 1, num_ofdm_symbols, fft_size] complex; the channel's frequency
        response at each symbol's start.
    """

    def __init__(self, cir, resource_grid: ResourceGrid, awgn: AWGN, *,
                 phase_noise_linewidth_hz: float | None = None,
                 frequency_offset_hz: float | None = None,
                 estimate_frequency_offset: bool = False,
                 generator: torch.Generator | None = None,
                 precision: str | None = None, device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        rg = resource_grid
        check_type(estimate_frequency_offset, bool, name="estimate_frequency_offset")
        if estimate_frequency_offset and (rg.cyclic_prefix_length < 1
                                          or rg.num_ofdm_symbols < 2):
            raise ValueError("`estimate_frequency_offset` correlates the cyclic prefixes: it "
                             "needs cyclic_prefix_length >= 1 and num_ofdm_symbols >= 2; got "
                             f"{rg.cyclic_prefix_length} and {rg.num_ofdm_symbols}.")
        self._estimate_frequency_offset = estimate_frequency_offset
        kw = {"precision": self.precision, "device": self.device}
        self._rg = rg
        self._awgn = awgn
        sample_rate = float(rg.fft_size * rg.subcarrier_spacing)
        self._phase_noise = None
        if phase_noise_linewidth_hz is not None:
            check_type(phase_noise_linewidth_hz, (int, float), name="phase_noise_linewidth_hz")
            highest = MAX_NORMALIZED_LINEWIDTH * sample_rate
            if not 0.0 < phase_noise_linewidth_hz <= highest:  # NaN fails too
                raise ValueError(f"`phase_noise_linewidth_hz` must be in (0, {highest:g}] (0.1 "
                                 f"of the sample rate); got {phase_noise_linewidth_hz!r}.")
            self._phase_noise = phase_noise_linewidth_hz / sample_rate
        self._frequency_offset = None
        if frequency_offset_hz is not None:
            check_type(frequency_offset_hz, (int, float), name="frequency_offset_hz")
            highest = MAX_NORMALIZED_FREQUENCY_OFFSET * sample_rate
            if not abs(frequency_offset_hz) <= highest:  # NaN fails too
                raise ValueError(f"`frequency_offset_hz` must be in [-{highest:g}, {highest:g}] "
                                 f"(half the sample rate); got {frequency_offset_hz!r}.")
            self._frequency_offset = frequency_offset_hz / sample_rate
        self._generator = generator
        self._channel = None
        l_min = 0
        if cir is not None:
            delays = getattr(cir, "delays", None)
            delays = cir._delays if delays is None else delays  # CDL keeps them private
            self._channel = TimeChannel(cir, sample_rate, int(rg.num_time_samples),
                                        maximum_delay_spread=float(delays.max()),
                                        normalize_channel=False, return_channel=True, **kw)
            l_min = self._channel.l_min
        cp = int(rg.cyclic_prefix_length)
        advance = min(cp, -l_min, WINDOW_ADVANCE)
        self._l_min = l_min
        self._advance = advance
        self._skip = -l_min - advance  # output sample 0 is at time l_min
        self._modulator = OFDMModulator(cp, **kw)
        self._demodulator = OFDMDemodulator(rg.fft_size, -advance, cp, **kw)
        # Built here: their first call checks the prefix on the host, not in a hot path.
        probe = torch.zeros(1, 1, 1, rg.num_ofdm_symbols, rg.fft_size, dtype=self.cdtype,
                            device=self.device)
        self._demodulator(self._modulator(probe))

    def call(self, x_rg: torch.Tensor, no: torch.Tensor, slots_per_row: int = 1
             ) -> tuple[torch.Tensor, torch.Tensor]:
        samples = self._modulator(x_rg)  # [B, 1, 1, num_time_samples]
        if self._channel is None:
            received = samples
            h = torch.ones_like(x_rg)[:, :, :, None, None]  # [B, 1, 1, 1, 1, sym, fft]
        else:
            received, taps = self._channel(samples)  # noise-free; one extra tail of l_tot - 1
            h = time_to_ofdm_channel(taps, self._rg, self._l_min)
        received = self._awgn(received, no.reshape(-1, 1, 1, 1))
        window = received[..., self._skip:self._skip + samples.shape[-1]]
        if self._phase_noise is not None or self._frequency_offset is not None:
            rows = window.shape[0] // slots_per_row  # one path per row, on through its slots
            theta = oscillator_phase((rows,), slots_per_row * window.shape[-1],
                                     normalized_linewidth=self._phase_noise,
                                     normalized_frequency_offset=self._frequency_offset,
                                     generator=self._generator, dtype=window.real.dtype,
                                     device=window.device).reshape(window.shape)
            window = window * torch.polar(torch.ones_like(theta), theta)
        if self._estimate_frequency_offset:
            window = self._correct_frequency(window, slots_per_row)
        return self._demodulator(window), h

    def _correct_frequency(self, window: torch.Tensor, slots_per_row: int) -> torch.Tensor:
        """``window`` turned back by the ramp of each row's estimated offset, from 0 at the
        row's first sample on through its slots (as the oscillator's)."""
        fft_size = int(self._rg.fft_size)
        offset = cyclic_prefix_frequency_offset(
            window, fft_size=fft_size, cp=int(self._rg.cyclic_prefix_length),
            advance=self._advance, slots_per_row=slots_per_row)  # [rows]
        n = torch.arange(slots_per_row * window.shape[-1], device=window.device,
                         dtype=window.real.dtype)
        ramp = (2.0 * math.pi / fft_size) * offset.unsqueeze(-1) * n  # [rows, slots * T]
        return window * torch.polar(torch.ones_like(ramp), -ramp).reshape(window.shape)
