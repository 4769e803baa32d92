"""OFDM resource grids through a time-domain multipath channel: cyclic prefix, the channel's
taps sample by sample, noise, and the receiver's FFT window.

Where :class:`~channels.ofdm.OFDMSISOChannel` multiplies each resource element by the channel's
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
the frequency-domain model has neither. With a unitary FFT the noise per resource element is
the noise per sample, so ``snr_db`` means what it means in the frequency-domain model. The
frequency response the perfect-CSI receiver uses is the taps' DFT at each symbol's start
(``time_to_ofdm_channel``): it knows the channel, not the interference.
"""
from __future__ import annotations

import torch
from sionna.phy import Block
from sionna.phy.channel import TimeChannel, time_to_ofdm_channel
from sionna.phy.ofdm import OFDMDemodulator, OFDMModulator, ResourceGrid

from channels.awgn import AWGN

__all__ = ["TimeDomainOFDM", "WINDOW_ADVANCE"]

#: Samples the FFT window starts before the end of the prefix, at most (Sionna's -l_min).
WINDOW_ADVANCE = 6


class TimeDomainOFDM(Block):
    """Resource grids -> cyclic prefix -> multipath taps -> AWGN -> FFT window -> grids.

    :param cir: A TR 38.901 TDL or CDL model of :mod:`channels._tr38901` (its generator draws
        the taps).
    :param resource_grid: The grid of one slot.
    :param awgn: The AWGN block that draws the noise (the caller's generator).
    :param precision: ``"single"`` | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x_rg: [B, 1, 1, num_ofdm_symbols, fft_size] complex; one slot per row.
    :input no: [B] float; noise variance per sample (= per resource element).
    :output y: [B, 1, 1, num_ofdm_symbols, fft_size] complex; the received grid.
    :output h: [B, 1, 1, 1, 1, num_ofdm_symbols, fft_size] complex; the channel's frequency
        response at each symbol's start.
    """

    def __init__(self, cir, resource_grid: ResourceGrid, awgn: AWGN, *,
                 precision: str | None = None, device: str | None = None) -> None:
        super().__init__(precision=precision, device=device)
        rg = resource_grid
        kw = {"precision": self.precision, "device": self.device}
        delays = getattr(cir, "delays", None)
        delays = cir._delays if delays is None else delays  # CDL keeps them private
        self._rg = rg
        self._awgn = awgn
        self._channel = TimeChannel(cir, float(rg.fft_size * rg.subcarrier_spacing),
                                    int(rg.num_time_samples),
                                    maximum_delay_spread=float(delays.max()),
                                    normalize_channel=False, return_channel=True, **kw)
        cp = int(rg.cyclic_prefix_length)
        advance = min(cp, -self._channel.l_min, WINDOW_ADVANCE)
        self._skip = -self._channel.l_min - advance  # output sample 0 is at time l_min
        self._modulator = OFDMModulator(cp, **kw)
        self._demodulator = OFDMDemodulator(rg.fft_size, -advance, cp, **kw)
        # Built here: their first call checks the prefix on the host, not in a hot path.
        probe = torch.zeros(1, 1, 1, rg.num_ofdm_symbols, rg.fft_size, dtype=self.cdtype,
                            device=self.device)
        self._demodulator(self._modulator(probe))

    @property
    def lags(self) -> tuple[int, int]:
        """(l_min, l_max): the channel's smallest and largest tap lags, samples."""
        return self._channel.l_min, self._channel.l_max

    def call(self, x_rg: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        samples = self._modulator(x_rg)  # [B, 1, 1, num_time_samples]
        received, taps = self._channel(samples)  # noise-free; one extra tail of l_tot - 1
        received = self._awgn(received, no.reshape(-1, 1, 1, 1))
        window = received[..., self._skip:self._skip + samples.shape[-1]]
        h = time_to_ofdm_channel(taps, self._rg, self._channel.l_min)
        return self._demodulator(window), h
