"""Measure the peak-to-average power table of docs/semantic-link.md: how far above its mean
power each link's transmitted signal goes, on a single carrier and on OFDM.

    .venv/bin/python docs/papr_table.py

The 8 sample photos at 512 px go through the semantic link (small preset, analog: 1152 symbols
per image) and the classical link of the same 1152 channel uses (JPEG2000 + LDPC 1/2 over
16-QAM and over QPSK); a recording channel keeps the symbols each link sends. On a single
carrier the samples are those symbols, against each image's mean power; on OFDM (the scenarios'
72 subcarriers, 14 symbols with pilots on 2 and 11; with and without the interleaver) they are the
4x oversampled time-domain signal (channels.ofdm.OFDMSISOChannel.time_signal), against the
mean power of a fully loaded OFDM symbol, the reference of the amplifier's back-off. Prints Markdown: the power exceeded by
1 % and 0.1 % of the samples and the median peak per block (an image on a single carrier, an
OFDM symbol on OFDM), dB above the reference.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels.awgn import AWGNChannel  # noqa: E402
from channels.ofdm import OFDMSISOChannel  # noqa: E402
from channels.papr import papr_db  # noqa: E402
from simulator.images import load_images  # noqa: E402
from simulator.links.classical import ClassicalLink  # noqa: E402
from simulator.links.semantic import SemanticLink  # noqa: E402
from simulator.scenario import AnalogTransmission  # noqa: E402

SIZE = 512


class Recorder:
    """A noise-free channel that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[torch.Tensor] = []
        self._channel = AWGNChannel()

    def __call__(self, x: torch.Tensor, snr_db):
        self.sent.append(x)
        return self._channel(x, float("inf"))


def sent_symbols(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """[8, n] complex symbols of each link's first transmission."""
    semantic = SemanticLink(preset="small", image_size=SIZE,
                            transmission=AnalogTransmission(mode="analog"))
    out = {}
    tap = Recorder()
    semantic.send(semantic.encode(images), tap, float("inf"))
    out["semantic (analog)"] = tap.sent[0]
    for order, name in ((16, "JPEG2000, 16-QAM"), (4, "JPEG2000, QPSK")):
        link = ClassicalLink(channel_uses=semantic.channel_uses, image_size=(SIZE, SIZE),
                             modulation=order)
        tap = Recorder()
        link.transmit(images, tap, float("inf"))
        out[name] = tap.sent[0]
    return out


def quantile_db(relative_power: torch.Tensor, exceeded_by: float) -> float:
    """Power (dB over the reference) that a fraction ``exceeded_by`` of the samples exceed."""
    return 10 * torch.log10(torch.quantile(relative_power.flatten().double(),
                                           1 - exceeded_by)).item()


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    images, _ = load_images("sample", SIZE)
    ofdm = OFDMSISOChannel(model="AWGN")
    interleaved = OFDMSISOChannel(model="AWGN", interleave=True)
    block = ofdm.oversampling * ofdm.resource_grid.fft_size
    print("| link | waveform | samples | 1 % exceed (dB) | 0.1 % exceed (dB) | "
          "median peak per block (dB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, x in sent_symbols(images).items():
        power = x.abs().square()
        single = power / power.mean(dim=1, keepdim=True)
        waveforms = {"single carrier": (single, papr_db(x))}
        for waveform, channel in (("OFDM", ofdm), ("OFDM, interleaved", interleaved)):
            signal = channel.time_signal(x)
            waveforms[waveform] = (signal.abs().square(),
                                   papr_db(signal, block_length=block, reference_power=1.0))
        for waveform, (relative, peaks) in waveforms.items():
            print(f"| {name} | {waveform} | {relative.numel()} | "
                  f"{quantile_db(relative, 1e-2):.2f} | {quantile_db(relative, 1e-3):.2f} | "
                  f"{peaks[torch.isfinite(peaks)].median().item():.2f} |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
