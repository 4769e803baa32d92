"""Peak-to-average power of what a scenario's links transmit, on the scenario's waveform
(``semlink papr``).

Each image link sends the scenario's first images once (``transmit``, stopped at its first
channel call) through a recording channel that keeps the symbols (the semantic link its analog or
coded embedding, the classical link its QAM code blocks); a BER link sends i.i.d. uniform symbols of its QAM order (random bits through a
systematic code are as uniform as without it). On a single-carrier channel the samples are
those symbols (with a phase tracker's pilot blocks between them), against each image's mean
power; on ``ofdm`` they are the channel's oversampled time-domain signal
(:meth:`semlink.channels.ofdm.OFDMSISOChannel.time_signal`, with the scenario's grid, pilots and
interleaver), against the mean power of a fully loaded OFDM symbol. Both references
are those of the transmit amplifier's back-off (:mod:`semlink.channels.amplifier`), so a level of
``g`` dB here is compressed by an amplifier at less than ``g`` dB input back-off. Links that send
no waveform (a config's ``waveform`` False: the ideal code, ``channel_code: capacity``) are left
out.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.phase_tracking import PhaseTrackingChannel
from semlink.channels.papr import papr_db, power_ccdf, power_levels_db
from semlink.modulation.qam import QAMMapper, bits_per_symbol_for_order
from semlink.channel import build_channel
from semlink.errors import InputError
from semlink.images import load_image
from semlink.links.protocol import sends_waveform
from semlink.scenario import Scenario
from semlink.seeding import derive_seed, make_generator
from semlink.tasks import TaskRunner, scenario_images

__all__ = ["EXCEEDED_BY", "THRESHOLDS_DB", "LinkPAPR", "link_papr"]

#: Fractions of the samples whose exceeded power level the report gives.
EXCEEDED_BY = (1e-2, 1e-3, 1e-4)
#: Power levels (dB above the reference) of the CCDF curve: 0 to 16 dB in steps of 0.25 dB.
THRESHOLDS_DB = tuple(i / 4 for i in range(65))
_BER_ROWS, _BER_SYMBOLS = 8, 4096  # i.i.d. symbols measured for a BER link


@dataclasses.dataclass(frozen=True)
class LinkPAPR:
    """What one link's transmitted signal looks like to a transmit amplifier.

    :ivar link: Link name.
    :ivar waveform: ``single carrier`` or ``OFDM`` (``OFDM, interleaved`` with the interleaver).
    :ivar rows: Rows measured (images; for a BER link rows of i.i.d. symbols).
    :ivar samples: Samples measured (symbols, or OFDM time samples).
    :ivar levels_db: Power exceeded by each fraction of :data:`EXCEEDED_BY` of the samples, dB
        above the reference (:func:`~semlink.channels.papr.power_levels_db`; NaN with too few samples).
    :ivar median_peak_db: Median over blocks of the block's peak, dB above the reference; a
        block is a row on a single carrier, an OFDM symbol on OFDM.
    :ivar ccdf: Fraction of the samples above each of :data:`THRESHOLDS_DB`.
    """

    link: str
    waveform: str
    rows: int
    samples: int
    levels_db: tuple[float, ...]
    median_peak_db: float
    ccdf: tuple[float, ...]


class _Sent(Exception):
    """Raised by :class:`_Recorder` once it holds the first symbols: the link stops there."""


class _Recorder:
    """A channel that keeps the first symbols it is sent and stops the link (its receiver,
    a diffusion model for the semantic link, is not needed)."""

    def __init__(self) -> None:
        self.sent: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, snr_db):
        self.sent.append(x)
        raise _Sent


def link_papr(scenario: Scenario, *, base_dir: Path, device: str, num_images: int = 8,
              snr_db: float | None = None, links: list[str] | None = None) -> list[LinkPAPR]:
    """Measure the transmitted signal of each link of ``scenario`` (see the module docstring).

    :param base_dir: Folder relative paths of the scenario start from.
    :param device: Torch device string.
    :param num_images: int >= 1; the scenario's first images sent (fewer if it has fewer).
    :param snr_db: For links whose frame depends on the SNR (``adaptive``): the SNR whose
        frame is sent; None = the scenario's first SNR point.
    :param links: Names of the links to measure; None = all of them.
    :output rows: One :class:`LinkPAPR` per measured link, in the scenario's order.
    :raises InputError: If a link name is unknown, or as the links and images raise.
    """
    names = list(scenario.links) if links is None else links
    for name in names:
        if name not in scenario.links:
            raise InputError(f"--link: no link named {name!r}; links are "
                             f"{', '.join(scenario.links)}")
    snr_db = scenario.snr.values_db()[0] if snr_db is None else snr_db
    channel = build_channel(scenario.channel, generator=make_generator(0, device), device=device)
    images = None
    runner = None
    rows = []
    for name in names:
        cfg = scenario.links[name]
        if not sends_waveform(cfg):
            continue
        if cfg.kind == "bits":
            x = _ber_symbols(cfg, seed=derive_seed(scenario.seed, name, "papr"), device=device)
        else:
            if runner is None:
                runner = TaskRunner(scenario.model_copy(update={"metrics": []}),
                                    base_dir=base_dir, device=device)
                images = _first_images(scenario, base_dir, num_images).to(device)
            x = _sent_symbols(runner, name, images, snr_db)
        rows.append(_measure(name, x, channel))
    return rows


def _first_images(scenario: Scenario, base_dir: Path, count: int) -> torch.Tensor:
    """[min(count, images), 3, H, W] of the scenario, without loading the rest."""
    cfg = scenario.images
    files = scenario_images(scenario, base_dir)[:count]
    return torch.stack([load_image(p, cfg.shape, center_crop=cfg.center_crop) for p in files])


def _sent_symbols(runner: TaskRunner, name: str, images: torch.Tensor,
                  snr_db: float) -> torch.Tensor:
    """[images, n] complex: the first transmission of ``images`` by link ``name``."""
    link = runner.link(name, snr_db)
    tap = _Recorder()
    seed = derive_seed(runner.scenario.seed, name, "papr")

    def generators(purpose: str) -> list[torch.Generator]:
        return [make_generator(derive_seed(seed, purpose, i), runner.device)
                for i in range(len(images))]

    try:
        link.transmit(images, tap, snr_db, generators)
    except _Sent:
        pass
    if not tap.sent:
        raise InputError(f"links.{name}: sent nothing through the channel")
    return tap.sent[0]


def _ber_symbols(cfg, *, seed: int, device: str) -> torch.Tensor:
    """[8, 4096] i.i.d. uniform symbols of a BER link's (``cfg``) Gray QAM, unit mean
    power."""
    bits_per_symbol = bits_per_symbol_for_order(cfg.modulation)
    bits = torch.randint(0, 2, (_BER_ROWS, _BER_SYMBOLS * bits_per_symbol),
                         generator=make_generator(seed, device), device=device)
    return QAMMapper(bits_per_symbol=bits_per_symbol, device=device)(bits.float())


def _measure(name: str, x: torch.Tensor, channel) -> LinkPAPR:
    """The :class:`LinkPAPR` of symbols ``x`` [rows, n] on ``channel``'s waveform."""
    if isinstance(channel, OFDMSISOChannel):
        signal = channel.time_signal(x)
        reference, block = 1.0, channel.oversampling * channel.resource_grid.fft_size
        waveform = "OFDM, interleaved" if channel.interleave else "OFDM"
    elif isinstance(channel, PhaseTrackingChannel):
        signal, reference, block = channel.frame(x), None, None
        waveform = "single carrier, pilot blocks"
    else:
        signal, reference, block, waveform = x, None, None, "single carrier"
    peaks = papr_db(signal, block_length=block, reference_power=reference).flatten()
    peaks = peaks[torch.isfinite(peaks)]
    return LinkPAPR(
        link=name, waveform=waveform, rows=x.shape[0], samples=signal.numel(),
        levels_db=tuple(power_levels_db(signal, list(EXCEEDED_BY),
                                        reference_power=reference).tolist()),
        median_peak_db=peaks.median().item() if peaks.numel() else math.nan,
        ccdf=tuple(power_ccdf(signal, list(THRESHOLDS_DB), reference_power=reference).tolist()))
