"""SISO OFDM link over 3GPP TR 38.901 TDL/CDL channels with pilot-based estimation and LMMSE,
optionally behind a transmit power amplifier.

The channel is simulated in the frequency domain (Sionna's ``OFDMChannel``: one complex gain
per resource element, no ISI/ICI, time variation from OFDM symbol to OFDM symbol). A batch
row of ``n`` data symbols is split into ``ceil(n / num_data_symbols)`` slots (resource grids);
the last slot is zero-padded. Every slot gets an independent channel realisation.

A transmit amplifier acts on the time-domain signal, where the sum of many subcarriers is
Gaussian-like whatever they carry (a high peak-to-average power ratio even for QPSK). The
grids are taken to the time domain with Sionna's ``OFDMModulator`` at ``oversampling`` times
the subcarrier bandwidth (zero subcarriers around the band; 4x shows the analog peaks to a
fraction of a dB), amplified, and brought back with ``OFDMDemodulator``; the subcarriers
outside the band (the amplifier's spectral regrowth) are cut, as a transmit filter would, and
the in-band distortion stays on every subcarrier, pilots and guards included. The cyclic prefix
is left out of this round trip: its samples copy the symbol's tail, so a memoryless amplifier
maps them to copies of the same outputs.

With ``domain="time"`` the grids go through the channel as a waveform instead
(:class:`~semlink.channels.ofdm_time.TimeDomainOFDM`: cyclic prefix, multipath taps sample by sample,
FFT window), so a prefix shorter than the channel and motion within a symbol cost what they
cost (ISI, ICI).

Phase-tracking reference signals (``ptrs_subcarrier_stride``, 5G NR's PT-RS): one pilot every
``K`` effective subcarriers on every OFDM symbol that is not a pilot symbol, on which the
receiver measures and takes out each OFDM symbol's common phase error after equalisation
(:mod:`semlink.channels.ofdm_ptrs`, which also lays out the pilots).

An optional interleaver permutes each row's symbols pseudo-randomly before they are mapped
(and back after equalisation): neighbouring symbols that are alike (an embedding's correlated
values, a frame's header and padding) then no longer sit on neighbouring subcarriers, where
they add up coherently into time-domain peaks, and a faded stretch of subcarriers hits
scattered symbols instead of a block of them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sionna.phy import Block
from sionna.phy.channel import OFDMChannel
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import (LMMSEEqualizer, LSChannelEstimator, OFDMDemodulator,
                             OFDMModulator, PilotPattern, RemoveNulledSubcarriers, ResourceGrid,
                             ResourceGridMapper)

from semlink.channels._checks import (check_in_range, check_int, check_one_of, check_positive,
                              check_type, sionna_device)
from semlink.channels._common import check_generator, check_symbols_and_snr
from semlink.channels._tr38901 import GeneratorCDL, GeneratorTDL
from semlink.channels.amplifier import PowerAmplifier
from semlink.channels.awgn import AWGN
from semlink.channels.ofdm_ptrs import PTRSTracker, pilot_pattern as make_pilot_pattern
from semlink.channels.ofdm_time import TimeDomainOFDM
from semlink.channels.snr import mean_power

__all__ = ["OFDMSISOChannel", "MODELS", "interleaver", "pack_slots", "unpack_slots"]

MODELS = ("AWGN",) + tuple(f"TDL-{m}" for m in "ABCDE") + tuple(f"CDL-{m}" for m in "ABCDE")
CHANNEL_ESTIMATIONS = ("perfect", "ls")
DOMAINS = ("frequency", "time")
INTERPOLATIONS = ("nn", "lin", "lin_time_avg")
PILOT_PATTERNS = ("kronecker", "empty")
MAX_DELAY_SPREAD_S = 10e-6
MAX_SPEED_MPS = 500.0
CARRIER_RANGE_HZ = (0.5e9, 100e9)  # TR 38.901 validity range
SUBCARRIER_SPACING_RANGE_HZ = (1e3, 1e6)
MAX_FFT_SIZE = 4096
MAX_OFDM_SYMBOLS = 140
INTERLEAVER_SEED = 0x1EAF  # fixed, as the pilots: the permutation is part of the waveform
MAX_OVERSAMPLING = 16


def pack_slots(x: torch.Tensor, slot_size: int) -> tuple[torch.Tensor, int]:
    """Cut each row into slots of ``slot_size`` symbols, zero-padding the last slot.

    :param slot_size: int >= 1; data symbols per slot.
    :input x: [batch, n], any dtype.
    :output slots: [batch, num_slots, slot_size], ``num_slots = ceil(n / slot_size)``.
    :output num_pad: int; zeros appended to each row (``num_slots * slot_size - n``).

    >>> import torch
    >>> s, pad = pack_slots(torch.arange(5.).reshape(1, 5), 2)
    >>> s.shape, pad
    (torch.Size([1, 3, 2]), 1)
    """
    check_int(slot_size, name="slot_size", low=1)
    batch, n = x.shape
    num_slots = -(-n // slot_size)
    num_pad = num_slots * slot_size - n
    x = torch.nn.functional.pad(x, (0, num_pad))
    return x.reshape(batch, num_slots, slot_size), num_pad  # [batch, num_slots, slot_size]


def unpack_slots(slots: torch.Tensor, num_pad: int) -> torch.Tensor:
    """Inverse of :func:`pack_slots`: concatenate the slots and drop the padding.

    :input slots: [batch, num_slots, slot_size].
    :input num_pad: int in [0, num_slots * slot_size].
    :output x: [batch, num_slots * slot_size - num_pad].
    """
    batch, num_slots, slot_size = slots.shape
    check_int(num_pad, name="num_pad", low=0, high=num_slots * slot_size)
    return slots.reshape(batch, num_slots * slot_size)[:, :num_slots * slot_size - num_pad]


def _rms(power: torch.Tensor) -> torch.Tensor:
    """sqrt(power), 1 where the power is 0 (a row of zeros stays zero when divided by it)."""
    return torch.where(power > 0, power, torch.ones_like(power)).sqrt()


def interleaver(n: int) -> torch.Tensor:
    """The interleaver of rows of ``n`` symbols: a fixed pseudo-random permutation (the same on
    every device and in every run), symbol ``i`` of the interleaved row is ``x[perm[i]]``.

    :param n: int >= 0; symbols per row.
    :output perm: [n] int64, a permutation of 0 .. n-1, on the CPU.

    >>> sorted(interleaver(6).tolist()) == list(range(6))
    True
    """
    check_int(n, name="n", low=0)
    return torch.randperm(n, generator=torch.Generator().manual_seed(INTERLEAVER_SEED))


class OFDMSISOChannel(Block):
    r"""SISO OFDM link: resource-grid mapping, TDL/CDL channel, noise, estimation, LMMSE.

    Per call, each row of ``x`` is normalised to unit mean power (its measured power ``Es``),
    split into slots of :attr:`num_data_symbols` symbols (:func:`pack_slots`), and mapped with
    unit-power QPSK pilots onto a Sionna :class:`~sionna.phy.ofdm.ResourceGrid`. The grids go
    through the frequency-domain channel, then complex AWGN with
    ``N0/Es = 10^(-snr_db/10)`` is added to every resource element (pilots too), so ``snr_db``
    is Es/N0 per *data* resource element relative to the measured data-symbol power and the
    mean channel gain (``E|h|^2 = 1`` for TDL; CDL includes its antenna patterns). The
    receiver estimates the channel (LS at the pilots + interpolation, or perfect CSI) and
    applies Sionna's LMMSE equaliser (unbiased: ``x_hat = x + e``). ``x_hat`` and ``no_eff``
    are scaled back to the units of ``x``.

    Channel models (``model``):

    - ``"AWGN"``: static unit gain ``h = 1`` on every resource element (for validation);
      ``delay_spread_s`` and ``speed_mps`` are ignored.
    - ``"TDL-A"`` .. ``"TDL-E"``: TR 38.901 tapped delay lines scaled by ``delay_spread_s``
      (A-C NLOS Rayleigh taps, D/E LOS with a Rician first tap); Doppler from ``speed_mps``.
    - ``"CDL-A"`` .. ``"CDL-E"``: TR 38.901 clustered delay lines, downlink, one
      omnidirectional vertically polarised antenna at each end.

    :param model: One of :data:`MODELS`, default ``"TDL-A"``.
    :param delay_spread_s: float in [0, 1e-5], default 300e-9; RMS delay spread, s.
    :param speed_mps: float in [0, 500], default 0; UE speed, m/s.
    :param carrier_frequency_hz: float in [0.5e9, 100e9], default 3.5e9; Hz.
    :param fft_size: int in [1, 4096], default 72; subcarriers.
    :param subcarrier_spacing_hz: float in [1e3, 1e6], default 30e3; Hz.
    :param num_ofdm_symbols: int in [1, 140], default 14; OFDM symbols per slot.
    :param cyclic_prefix_length: int in [0, fft_size], default 6; samples. In the frequency
        domain it only sets the OFDM symbol duration (hence the channel's time evolution);
        in the time domain it is sent, and a channel longer than it causes ISI.
    :param domain: ``"frequency"`` (default; one gain per resource element) | ``"time"`` (the
        waveform through the multipath taps, :mod:`semlink.channels.ofdm_time`).
    :param phase_noise_linewidth_hz: float > 0 or None (default); the receiver oscillator's
        linewidth, Hz: Wiener phase noise on the time-domain samples (``domain="time"`` only).
    :param frequency_offset_hz: float or None (default); the receiver oscillator's frequency
        offset, Hz: a phase ramp on the time-domain samples (``domain="time"`` only).
    :param estimate_frequency_offset: bool, default False; the receiver estimates each row's
        frequency offset from its cyclic prefixes and corrects the samples before the FFT
        (``domain="time"`` only; :class:`~semlink.channels.ofdm_time.TimeDomainOFDM`).
    :param num_guard_carriers: (left, right) ints >= 0, default (0, 0); nulled subcarriers.
    :param dc_null: bool, default False; null the DC subcarrier.
    :param pilot_pattern: ``"kronecker"`` (default; every effective subcarrier of the pilot
        OFDM symbols carries a fixed pseudo-random unit-power QPSK pilot) | ``"empty"``
        (no pilots; needs ``channel_estimation="perfect"``).
    :param pilot_ofdm_symbol_indices: distinct ints in [0, num_ofdm_symbols - 1], default
        (2, 11); at least one OFDM symbol must remain for data. Ignored for ``"empty"``.
    :param ptrs_subcarrier_stride: int >= 1 or None (default: none); a phase-tracking pilot
        on every ``K``-th effective subcarrier (from ``K // 2``) of every OFDM symbol that is
        not a pilot symbol (every symbol with ``"empty"``), and each symbol's common phase
        error estimated on them and taken out of its data after equalisation
        (:class:`~semlink.channels.ofdm_ptrs.PTRSTracker`). At most the number of effective
        subcarriers.
    :param ptrs_estimate_interference: bool, default False; also measure, per slot, the PT-RS
        residual power beyond the noise and the channel estimate's error (the interference
        between subcarriers of phase noise, a frequency offset or motion) and add it, over
        ``|h_hat|^2``, to the data's ``no_eff``. Needs ``ptrs_subcarrier_stride``.
    :param channel_estimation: ``"perfect"`` (default; the true frequency response) |
        ``"ls"`` (least squares at the pilots, then ``interpolation``).
    :param interpolation: ``"nn"`` (default) | ``"lin"`` | ``"lin_time_avg"``; Sionna's
        interpolators for LS estimates. Ignored with perfect CSI.
    :param amplifier: :class:`~semlink.channels.amplifier.PowerAmplifier` or None (default: linear).
        It compresses the time-domain signal of each row's slots (see the module docstring);
        its back-off is against the mean power of a fully loaded OFDM symbol (data at their
        mean power and pilots on every effective subcarrier), so a slot the data fill only
        partly is not driven harder than a full one. The amplified data resource elements
        are then scaled to the power the data had before it, so ``snr_db`` stays Es/N0 of the
        transmitted (amplified) data and ``x_hat`` estimates them in the units of ``x``: the
        Bussgang gain of the amplifier (below 1) stays in ``x_hat`` with perfect CSI and is
        absorbed by LS estimation, whose pilots pass the amplifier too.
    :param oversampling: int in [1, 16], default 4; time-domain samples per subcarrier
        spacing and FFT sample for the amplifier (:meth:`time_signal`).
    :param interleave: bool, default False; permute each row's ``n`` symbols with a fixed
        pseudo-random permutation of ``n`` (:func:`interleaver`) before mapping them onto the
        slots, and restore their order after equalisation.
    :param generator: Source of the channel realisations and the noise, on ``device``;
        None = Sionna's per-device generator. Same seed, same output on the same device.
    :param check_values: Check ``snr_db`` is not NaN or ``-inf`` per call (device sync);
        default True.
    :param precision: ``"single"`` (complex64 out, default) | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x: [batch, n], complex, n >= 0. Any average energy.
    :input snr_db: float or [batch] float tensor; Es/N0 in dB per data resource element.
        ``+inf`` = no noise.
    :output x_hat: [batch, n], complex; equalised symbols (unbiased estimate of ``x``).
    :output no_eff: [batch, n], float; effective noise variance per symbol from the LMMSE
        equaliser (includes channel-estimation error for ``"ls"``), in the units of ``|x|^2``,
        >= 0 (Sionna's ``1/d - 1`` can round below 0 when the noise vanishes; it is clipped).
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If a parameter is out of its range (the message names it and the
        range), ``x`` is not 2-D, or ``snr_db`` has a bad shape or value.

    >>> import torch
    >>> ch = OFDMSISOChannel(model="TDL-C", delay_spread_s=100e-9, speed_mps=3.0,
    ...                      generator=torch.Generator().manual_seed(0))
    >>> x = torch.ones(2, 1000, dtype=torch.complex64)
    >>> x_hat, no_eff = ch(x, 15.0)
    >>> x_hat.shape, no_eff.dtype, ch.num_data_symbols, ch.num_slots(1000)
    (torch.Size([2, 1000]), torch.float32, 864, 2)
    """

    def __init__(self, *, model: str = "TDL-A", delay_spread_s: float = 300e-9,
                 speed_mps: float = 0.0, carrier_frequency_hz: float = 3.5e9,
                 fft_size: int = 72, subcarrier_spacing_hz: float = 30e3,
                 num_ofdm_symbols: int = 14, cyclic_prefix_length: int = 6,
                 num_guard_carriers: tuple[int, int] = (0, 0), dc_null: bool = False,
                 pilot_pattern: str = "kronecker",
                 pilot_ofdm_symbol_indices: Sequence[int] = (2, 11),
                 channel_estimation: str = "perfect", interpolation: str = "nn",
                 amplifier: PowerAmplifier | None = None, oversampling: int = 4,
                 interleave: bool = False, domain: str = "frequency",
                 phase_noise_linewidth_hz: float | None = None,
                 frequency_offset_hz: float | None = None,
                 ptrs_subcarrier_stride: int | None = None,
                 ptrs_estimate_interference: bool = False,
                 estimate_frequency_offset: bool = False,
                 generator: torch.Generator | None = None, check_values: bool = True,
                 precision: str | None = None, device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(model, str, name="model")
        check_one_of(model, MODELS, name="model")
        check_type(delay_spread_s, (int, float), name="delay_spread_s")
        check_in_range(delay_spread_s, name="delay_spread_s", low=0.0, high=MAX_DELAY_SPREAD_S)
        check_type(speed_mps, (int, float), name="speed_mps")
        check_in_range(speed_mps, name="speed_mps", low=0.0, high=MAX_SPEED_MPS)
        check_type(carrier_frequency_hz, (int, float), name="carrier_frequency_hz")
        check_in_range(carrier_frequency_hz, name="carrier_frequency_hz",
                       low=CARRIER_RANGE_HZ[0], high=CARRIER_RANGE_HZ[1])
        check_int(fft_size, name="fft_size", low=1, high=MAX_FFT_SIZE)
        check_positive(subcarrier_spacing_hz, name="subcarrier_spacing_hz")
        check_in_range(subcarrier_spacing_hz, name="subcarrier_spacing_hz",
                       low=SUBCARRIER_SPACING_RANGE_HZ[0], high=SUBCARRIER_SPACING_RANGE_HZ[1])
        check_int(num_ofdm_symbols, name="num_ofdm_symbols", low=1, high=MAX_OFDM_SYMBOLS)
        check_int(cyclic_prefix_length, name="cyclic_prefix_length", low=0, high=fft_size)
        self._check_guards(num_guard_carriers, dc_null, fft_size)
        check_type(pilot_pattern, str, name="pilot_pattern")
        check_one_of(pilot_pattern, PILOT_PATTERNS, name="pilot_pattern")
        check_type(channel_estimation, str, name="channel_estimation")
        check_one_of(channel_estimation, CHANNEL_ESTIMATIONS, name="channel_estimation")
        check_type(interpolation, str, name="interpolation")
        check_one_of(interpolation, INTERPOLATIONS, name="interpolation")
        if pilot_pattern == "kronecker":
            pilot_ofdm_symbol_indices = self._check_pilot_indices(
                pilot_ofdm_symbol_indices, num_ofdm_symbols)
        elif channel_estimation != "perfect":
            raise ValueError(
                f"`channel_estimation` must be 'perfect' with pilot_pattern='empty'; "
                f"got {channel_estimation!r}.")
        if amplifier is not None:
            check_type(amplifier, PowerAmplifier, name="amplifier")
        check_int(oversampling, name="oversampling", low=1, high=MAX_OVERSAMPLING)
        check_type(interleave, bool, name="interleave")
        check_type(domain, str, name="domain")
        check_one_of(domain, DOMAINS, name="domain")
        check_type(estimate_frequency_offset, bool, name="estimate_frequency_offset")
        for name, value in (("phase_noise_linewidth_hz", phase_noise_linewidth_hz),
                            ("frequency_offset_hz", frequency_offset_hz),
                            ("estimate_frequency_offset", estimate_frequency_offset or None)):
            if value is not None and domain != "time":
                raise ValueError(f"`{name}` needs domain='time' (it acts on the time-domain "
                                 f"samples); got domain={domain!r}.")
        check_type(check_values, bool, name="check_values")
        check_generator(generator, self.device)

        self._model = model
        self._channel_estimation = channel_estimation
        self._check_values = check_values
        kw = {"precision": self.precision, "device": self.device}

        def grid(pattern: PilotPattern | None) -> ResourceGrid:
            return ResourceGrid(num_ofdm_symbols=num_ofdm_symbols, fft_size=fft_size,
                                subcarrier_spacing=float(subcarrier_spacing_hz),
                                cyclic_prefix_length=cyclic_prefix_length,
                                num_guard_carriers=tuple(num_guard_carriers), dc_null=dc_null,
                                pilot_pattern=pattern, **kw)

        self._rg = grid(None)  # its dimensions size the pilot patterns
        pilot_symbols = pilot_ofdm_symbol_indices if pilot_pattern == "kronecker" else []
        if pilot_symbols:
            self._rg.pilot_pattern = make_pilot_pattern(self._rg, pilot_symbols, None, **kw)
        estimation_grid = self._rg
        self._ptrs = None
        if ptrs_subcarrier_stride is not None:
            check_int(ptrs_subcarrier_stride, name="ptrs_subcarrier_stride", low=1,
                      high=self._rg.num_effective_subcarriers)
            # The PT-RS go on a grid of their own: LS estimation reads the pilot symbols only.
            self._rg = grid(make_pilot_pattern(self._rg, pilot_symbols,
                                               ptrs_subcarrier_stride, **kw))
        check_type(ptrs_estimate_interference, bool, name="ptrs_estimate_interference")
        if ptrs_estimate_interference and ptrs_subcarrier_stride is None:
            raise ValueError("`ptrs_estimate_interference` needs ptrs_subcarrier_stride (it "
                             "measures the PT-RS residuals); got None.")
        self._ptrs_subcarrier_stride = ptrs_subcarrier_stride
        self._ptrs_estimate_interference = ptrs_estimate_interference
        self._mapper = ResourceGridMapper(self._rg, **kw)
        self._amplifier = amplifier
        self._oversampling = oversampling
        self._interleave = interleave
        self._permutations: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._modulator = OFDMModulator(cyclic_prefix_length=0, **kw)
        self._demodulator = OFDMDemodulator(oversampling * fft_size, l_min=0,
                                            cyclic_prefix_length=0, **kw)
        # Built here: their first call checks the cyclic prefix on the host, not in a hot path.
        probe = torch.zeros(1, num_ofdm_symbols, oversampling * fft_size, dtype=self.cdtype,
                            device=self.device)
        self._demodulator(self._modulator(probe))
        # Flat (symbol, subcarrier) indices of the data resource elements, in mapping order.
        self._data_indices = torch.nonzero(self._rg.build_type_grid()[0, 0].flatten() == 0
                                           ).squeeze(-1).to(self.device)
        self._remove_nulled = RemoveNulledSubcarriers(self._rg, **kw)
        self._awgn = AWGN(generator=generator, check_values=False, **kw)
        self._equalizer = LMMSEEqualizer(self._rg, StreamManagement(np.ones([1, 1]), 1),
                                         whiten_interference=False, **kw)
        self._estimator = (LSChannelEstimator(estimation_grid, interpolation_type=interpolation,
                                              **kw)
                           if channel_estimation == "ls" else None)
        if ptrs_subcarrier_stride is not None:
            self._ptrs = PTRSTracker(self._rg, pilot_symbols, ptrs_subcarrier_stride,
                                     estimate_interference=ptrs_estimate_interference, **kw)
        cir = None
        if model != "AWGN":
            family, letter = model.split("-")
            cls = GeneratorTDL if family == "TDL" else GeneratorCDL
            cir = cls(model=letter, delay_spread=float(delay_spread_s),
                      carrier_frequency=float(carrier_frequency_hz), speed=float(speed_mps),
                      generator=generator, **kw)
        self._channel = None
        if domain == "time":  # also without multipath: noise (and phase noise) per sample
            self._channel = TimeDomainOFDM(cir, self._rg, self._awgn,
                                           phase_noise_linewidth_hz=phase_noise_linewidth_hz,
                                           frequency_offset_hz=frequency_offset_hz,
                                           estimate_frequency_offset=estimate_frequency_offset,
                                           generator=generator, **kw)
        elif cir is not None:
            self._channel = OFDMChannel(cir, self._rg, normalize_channel=False,
                                        return_channel=True, **kw)
        self._domain = domain

    # -- configuration helpers -------------------------------------------------------------

    @staticmethod
    def _check_guards(num_guard_carriers: tuple[int, int], dc_null: bool, fft_size: int) -> None:
        check_type(num_guard_carriers, (tuple, list), name="num_guard_carriers")
        if len(num_guard_carriers) != 2:
            raise ValueError(f"`num_guard_carriers` must be a pair (left, right); "
                             f"got {num_guard_carriers!r}.")
        for side in num_guard_carriers:
            check_int(side, name="num_guard_carriers", low=0)
        check_type(dc_null, bool, name="dc_null")
        if sum(num_guard_carriers) + dc_null >= fft_size:
            raise ValueError(
                f"`num_guard_carriers` must leave at least one subcarrier: sum + dc_null in "
                f"[0, {fft_size - 1}] for fft_size={fft_size}; got {tuple(num_guard_carriers)!r}.")

    @staticmethod
    def _check_pilot_indices(indices: Sequence[int], num_ofdm_symbols: int) -> list[int]:
        check_type(indices, (tuple, list), name="pilot_ofdm_symbol_indices")
        if not 1 <= len(indices) < num_ofdm_symbols:
            raise ValueError(
                f"`pilot_ofdm_symbol_indices` must hold 1 to {num_ofdm_symbols - 1} indices "
                f"(num_ofdm_symbols={num_ofdm_symbols}, one symbol must carry data); "
                f"got {indices!r}.")
        for i in indices:
            check_int(i, name="pilot_ofdm_symbol_indices", low=0, high=num_ofdm_symbols - 1)
        if len(set(indices)) != len(indices):
            raise ValueError(f"`pilot_ofdm_symbol_indices` must be distinct; got {indices!r}.")
        return sorted(indices)

    # -- public properties -----------------------------------------------------------------

    @property
    def resource_grid(self) -> ResourceGrid:
        """The Sionna resource grid of one slot."""
        return self._rg

    @property
    def num_data_symbols(self) -> int:
        """Data resource elements per slot."""
        return int(self._rg.num_data_symbols)

    def num_slots(self, n: int) -> int:
        """Slots (resource grids) used for a row of ``n`` data symbols: ``ceil(n / D)``."""
        check_int(n, name="n", low=0)
        return -(-n // self.num_data_symbols)

    def num_padding(self, n: int) -> int:
        """Zero symbols appended to a row of ``n`` data symbols to fill the last slot."""
        return self.num_slots(n) * self.num_data_symbols - n

    @property
    def domain(self) -> str:
        """``"frequency"`` or ``"time"``: where the channel acts."""
        return self._domain

    @property
    def amplifier(self) -> PowerAmplifier | None:
        """The transmit amplifier, None for a linear transmitter."""
        return self._amplifier

    @property
    def interleave(self) -> bool:
        """Whether each row's symbols are interleaved across the slots."""
        return self._interleave

    @property
    def ptrs_subcarrier_stride(self) -> int | None:
        """Effective subcarriers between two PT-RS, None without phase tracking."""
        return self._ptrs_subcarrier_stride

    @property
    def ptrs_estimate_interference(self) -> bool:
        """Whether the PT-RS residuals' interference is counted in ``no_eff``."""
        return self._ptrs_estimate_interference

    @property
    def oversampling(self) -> int:
        """Time-domain samples per FFT sample in :meth:`time_signal` and the amplifier."""
        return self._oversampling

    # -- time domain -----------------------------------------------------------------------

    def time_signal(self, x: torch.Tensor) -> torch.Tensor:
        """The transmitted time-domain signal of each row: what the amplifier's input is.

        Each row is normalised to unit mean power and mapped onto its slots with the pilots,
        as in a call; every OFDM symbol is then an ``oversampling * fft_size``-point IDFT of
        its subcarriers, zeros around the band (no cyclic prefix: its samples are copies).

        :input x: [batch, n] complex.
        :output s: [batch, num_slots(n) * num_ofdm_symbols * oversampling * fft_size] complex;
            scaled so that a fully loaded OFDM symbol (unit-power data and pilots on every
            effective subcarrier) has mean power 1, the amplifier's reference.
        :raises ValueError: If ``x`` is not 2-D complex.
        """
        check_symbols_and_snr(x, 0.0, check_values=False)
        batch = x.shape[0]
        x_rg = self._grids(x)[0]
        return self._to_time(x_rg.reshape(batch, -1, *x_rg.shape[-2:])).reshape(batch, -1)

    def _permutation(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(interleaver, its inverse) for rows of ``n`` symbols, on the device; made once per
        ``n``, so a hot path copies it to the device only on its first call."""
        if n not in self._permutations:
            forward = interleaver(n)
            self._permutations[n] = (forward.to(self.device),
                                     torch.argsort(forward).to(self.device))
        return self._permutations[n]

    def _grids(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Interleave each row (if asked), scale it to unit mean power and map it onto its
        slots with the pilots.

        :input x: [batch, n] complex.
        :output x_rg: [batch * num_slots, 1, 1, sym, fft] complex.
        :output power: [batch]; the rows' mean power (a row of zeros is mapped as it is).
        :output num_pad: int; zero symbols that fill the last slot.
        """
        if self._interleave and x.shape[1]:
            x = x[:, self._permutation(x.shape[1])[0]]
        power = mean_power(x)  # [batch]
        slots, num_pad = pack_slots(x / _rms(power).unsqueeze(-1), self.num_data_symbols)
        return self._mapper(slots.reshape(-1, 1, 1, self.num_data_symbols)), power, num_pad

    def _band(self) -> tuple[int, int]:
        """Zero subcarriers left and right of the band in the oversampled spectrum."""
        fft_size = self._rg.fft_size
        left = (self._oversampling * fft_size) // 2 - fft_size // 2  # keeps DC at the centre
        return left, (self._oversampling - 1) * fft_size - left

    def _to_time(self, grids: torch.Tensor) -> torch.Tensor:
        """[batch, num_slots, sym, fft] grids -> [batch, num_slots, sym * L * fft] samples,
        unit mean power for a fully loaded symbol (Sionna's unitary IDFT spreads the
        effective subcarriers' power over L * fft samples)."""
        gain = math.sqrt(self._oversampling * self._rg.fft_size
                         / self._rg.num_effective_subcarriers)
        return self._modulator(torch.nn.functional.pad(grids, self._band())) * gain

    def _amplify(self, x_rg: torch.Tensor, batch: int, n: int) -> torch.Tensor:
        """Pass the grids of each row through the amplifier in the time domain and scale the
        amplified data resource elements to unit mean power (over the ``n`` data symbols,
        padding left out).

        :input x_rg: [batch * num_slots, 1, 1, sym, fft] complex; unit-power data and pilots.
        :output y_rg: Same shape; amplified, in-band part only.
        """
        sym, fft_size = x_rg.shape[-2:]
        grids = x_rg.reshape(batch, -1, sym, fft_size)
        samples = self._to_time(grids)  # [batch, num_slots, sym * L * fft]
        amplified = self._amplifier(samples.reshape(batch, -1), reference_power=1.0)
        amplified = amplified.reshape(samples.shape)  # scale undone by the normalisation below
        left, _ = self._band()
        y = self._demodulator(amplified)[..., left:left + fft_size]  # [batch, slots, sym, fft]
        data = y.reshape(batch, -1, sym * fft_size)[..., self._data_indices]
        rms = _rms(mean_power(data.reshape(batch, -1)[:, :n]))  # [batch]
        return (y / rms[:, None, None, None]).reshape(x_rg.shape)

    # -- forward ---------------------------------------------------------------------------

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float
             ) -> tuple[torch.Tensor, torch.Tensor]:
        snr_db = check_symbols_and_snr(x, snr_db, check_values=self._check_values)  # [batch, 1]
        batch, n = x.shape
        if n == 0:
            return x.clone(), torch.zeros(x.shape, dtype=self.dtype, device=x.device)
        x_rg, power, num_pad = self._grids(x)  # [B, 1, 1, sym, fft], B = batch * num_slots
        num_slots = x_rg.shape[0] // batch
        scale = _rms(power)  # [batch]
        if self._amplifier is not None:
            x_rg = self._amplify(x_rg, batch, n)

        # Noise variance relative to unit-power data (0 for all-zero rows): [B]
        no = torch.where(power > 0, torch.pow(10.0, -snr_db[:, 0] / 10.0),
                         torch.zeros_like(power)).repeat_interleave(num_slots)
        if self._channel is None:
            y = self._awgn(x_rg, no.reshape(-1, 1, 1, 1, 1))  # [B, 1, 1, sym, fft]
            h = torch.ones_like(x_rg)[:, :, :, None, None]  # [B, 1, 1, 1, 1, sym, fft]
        elif self._domain == "time":
            y, h = self._channel(x_rg, no, num_slots)  # noise added to the samples
        else:
            y, h = self._channel(x_rg)  # noise-free; h: [B, 1, 1, 1, 1, sym, fft]
            y = self._awgn(y, no.reshape(-1, 1, 1, 1, 1))

        if self._estimator is None:
            h_hat = self._remove_nulled(h)  # [B, 1, 1, 1, 1, sym, num_effective_subcarriers]
            err_var = torch.zeros((), dtype=self.dtype, device=x.device)
        else:
            h_hat, err_var = self._estimator(y, no)
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no)  # [B, 1, 1, D] each
        if self._ptrs is not None:
            turn, variance = self._ptrs(y, h_hat, err_var, no)
            x_hat, no_eff = x_hat * turn, no_eff + variance

        x_hat = unpack_slots(x_hat.reshape(batch, num_slots, -1), num_pad)  # [batch, n]
        no_eff = unpack_slots(no_eff.reshape(batch, num_slots, -1), num_pad)  # [batch, n]
        # Sionna computes no_eff = 1/d - 1 with d -> 1 at high SNR: clip rounding below 0.
        no_eff = no_eff.clamp_min(0.0)
        if self._interleave:
            inverse = self._permutation(n)[1]
            x_hat, no_eff = x_hat[:, inverse], no_eff[:, inverse]
        return x_hat * scale.unsqueeze(-1), no_eff * scale.square().unsqueeze(-1)
