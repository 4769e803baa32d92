"""Transmit power amplifier: memoryless compression of complex baseband symbols, in front of a
channel.

A solid-state amplifier compresses the amplitude of its input and leaves the phase (AM/AM only,
no AM/PM). Rapp's model with saturation amplitude ``A`` and smoothness ``p``:

    |y| = |x| / (1 + (|x| / A)^(2 p))^(1 / (2 p)),

linear for ``|x| << A`` and flat at ``A`` above; ``p -> inf`` is the ideal clipper
``|y| = min(|x|, A)``. The operating point is the input back-off, the saturation power over the
mean input power: ``A^2 = 10^(IBO / 10) mean(|x|^2)`` per row. Constant-envelope symbols (PSK)
pass a clipper at ``IBO >= 0 dB`` untouched; Gaussian-like symbols (an analog embedding) and
outer QAM points are compressed, and the receiver, which does not know the amplifier, sees the
distortion as extra noise and a gain below 1 (Bussgang).

:class:`AmplifiedChannel` puts an amplifier in front of a single-carrier channel of this
package; the channel's SNR is then relative to the amplifier's output power (the transmitted
symbols), as it measures it. OFDM takes the amplifier inside
(:class:`~semlink.channels.ofdm.OFDMSISOChannel`, ``amplifier=``), on its time-domain signal and
against a fully loaded symbol's power (``reference_power``).
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import check_one_of, check_type, sionna_device
from semlink.channels.snr import mean_power

__all__ = ["AMPLIFIER_MODELS", "AmplifiedChannel", "PowerAmplifier", "amplifier_gain"]

AMPLIFIER_MODELS = ("rapp", "clip")


def amplifier_gain(amplitude: torch.Tensor, saturation: torch.Tensor | float, *,
                   model: str = "rapp", smoothness: float = 2.0) -> torch.Tensor:
    """``|y| / |x|`` of the amplifier at input amplitude ``|x|`` (1 at ``|x| = 0``).

    :input amplitude: [...] float >= 0; ``|x|``.
    :input saturation: float or tensor broadcastable to ``amplitude``; ``A`` > 0.
    :param model: ``"rapp"`` (default) or ``"clip"``.
    :param smoothness: float > 0; Rapp's ``p`` (default 2), unused by ``"clip"``.
    :output gain: [...] float in (0, 1].

    >>> amplifier_gain(torch.tensor([0.0, 1.0, 4.0]), 2.0, model="clip")
    tensor([1.0000, 1.0000, 0.5000])
    >>> round(float(amplifier_gain(torch.tensor(2.0), 2.0, smoothness=1.0)), 4)  # 1 / sqrt(2)
    0.7071
    """
    ratio = amplitude / saturation
    if model == "clip":
        return torch.where(ratio > 1, 1 / ratio.clamp_min(1), torch.ones_like(ratio))
    return (1 + ratio ** (2 * smoothness)) ** (-1 / (2 * smoothness))


class PowerAmplifier(Block):
    """Memoryless AM/AM amplifier (Rapp or clipper) at an input back-off per row.

    :param input_backoff_db: float, finite; saturation power over the mean input power, dB.
    :param model: ``"rapp"`` (default) or ``"clip"``.
    :param smoothness: float > 0, default 2; Rapp's ``p``.
    :param precision: ``"single"`` | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x: [batch, n] complex.
    :input reference_power: float > 0, [batch] float tensor or None (default); the power the
        back-off is set against: None = each row's mean ``|x|^2`` (the single-carrier
        channels), a number = a nominal transmit power (OFDM: that of a fully loaded symbol).
    :output y: [batch, n] complex; ``x`` with its amplitudes compressed, phases kept.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If ``model`` is unknown, or a number is out of range.

    >>> pa = PowerAmplifier(input_backoff_db=0.0, model="clip")  # A^2 = mean power = 3
    >>> pa(torch.tensor([[1, 1j, -1, 3]], dtype=torch.complex64))
    tensor([[ 1.0000+0.j,  0.0000+1.j, -1.0000+0.j,  1.7321+0.j]])
    """

    def __init__(self, *, input_backoff_db: float, model: str = "rapp",
                 smoothness: float = 2.0, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(input_backoff_db, (int, float), name="input_backoff_db")
        if not math.isfinite(input_backoff_db):
            raise ValueError(f"`input_backoff_db` must be finite; got {input_backoff_db!r}.")
        check_type(model, str, name="model")
        check_one_of(model, AMPLIFIER_MODELS, name="model")
        check_type(smoothness, (int, float), name="smoothness")
        if not 0.0 < smoothness < math.inf:  # NaN fails too
            raise ValueError(f"`smoothness` must be a finite number > 0; got {smoothness!r}.")
        self._backoff = 10.0 ** (float(input_backoff_db) / 10.0)
        self.input_backoff_db = float(input_backoff_db)
        self.model = model
        self.smoothness = float(smoothness)

    def call(self, x: torch.Tensor, reference_power: float | None = None) -> torch.Tensor:
        if reference_power is None:
            reference_power = mean_power(x)  # [batch]
        # Block.__call__ makes a float a 0-d tensor on the device: no host read here.
        saturation = (reference_power * self._backoff).sqrt().reshape(-1, 1)  # [batch or 1, 1]
        gain = amplifier_gain(x.abs(), saturation, model=self.model, smoothness=self.smoothness)
        return x * gain.to(x.real.dtype)


class AmplifiedChannel(Block):
    """``channel(amplifier(x), snr_db)``: a channel of this package behind a transmit amplifier.

    :param amplifier: :class:`PowerAmplifier`.
    :param channel: Any channel block with the package's call convention.
    :input x: [batch, n] complex.
    :input snr_db: As the channel's; relative to the amplifier's output power.
    :output: What the channel returns (``x_hat, no_eff``): ``no_eff`` is the channel's noise
        only, as a receiver that does not know the amplifier would assume.
    """

    def __init__(self, amplifier: PowerAmplifier, channel: Block) -> None:
        super().__init__(precision=channel.precision, device=channel.device)
        check_type(amplifier, PowerAmplifier, name="amplifier")
        self.amplifier = amplifier
        self.channel = channel

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float):
        return self.channel(self.amplifier(x), snr_db)
