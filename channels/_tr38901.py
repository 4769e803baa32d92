"""Sionna's 3GPP TR 38.901 TDL and CDL models, drawing from an explicit ``torch.Generator``.

Sionna's models take their random numbers from ``self.torch_rng`` (by default
``sionna.phy.config.torch_rng(device)``). These subclasses override that property so that
every draw comes from the generator given at construction; ``generator=None`` keeps Sionna's
behaviour. CDL draws its ray phases inside a :class:`ChannelCoefficientsGenerator` that it
builds in its constructor, so :class:`GeneratorCDL` replaces that sub-object with one that
uses the same generator. ``tests/channels/test_ofdm.py`` checks that the outputs depend only
on the generator (not on ``sionna.phy.config.seed``), which would catch a draw that escapes.
"""
from __future__ import annotations

import torch
from sionna.phy.channel.tr38901 import CDL, TDL, Antenna, ChannelCoefficientsGenerator

__all__ = ["GeneratorTDL", "GeneratorCDL"]


class GeneratorTDL(TDL):
    """SISO :class:`sionna.phy.channel.tr38901.TDL` whose randomness comes from ``generator``.

    :param model: ``"A"`` .. ``"E"`` (TR 38.901 scalable profiles).
    :param delay_spread: RMS delay spread, s.
    :param carrier_frequency: Hz.
    :param speed: UE speed, m/s (fixed, not drawn).
    :param generator: ``torch.Generator`` on ``device`` or None (Sionna's generator).
    """

    def __init__(self, *, model: str, delay_spread: float, carrier_frequency: float,
                 speed: float, generator: torch.Generator | None,
                 precision: str | None = None, device: str | None = None) -> None:
        super().__init__(model, delay_spread, carrier_frequency, min_speed=speed,
                         precision=precision, device=device)
        self._generator = generator

    @property
    def torch_rng(self) -> torch.Generator:
        return super().torch_rng if self._generator is None else self._generator


class _GeneratorCoefficients(ChannelCoefficientsGenerator):
    def __init__(self, *, carrier_frequency: float, tx_array: Antenna, rx_array: Antenna,
                 generator: torch.Generator | None, precision: str | None,
                 device: str | None) -> None:
        super().__init__(carrier_frequency, tx_array, rx_array, subclustering=False,
                         precision=precision, device=device)
        self._generator = generator

    @property
    def torch_rng(self) -> torch.Generator:
        return super().torch_rng if self._generator is None else self._generator


class GeneratorCDL(CDL):
    """SISO downlink :class:`sionna.phy.channel.tr38901.CDL` drawing from ``generator``.

    Both ends use one vertically polarised omnidirectional antenna. The UE moves at ``speed``
    in a random direction per example.

    :param model: ``"A"`` .. ``"E"``.
    :param delay_spread: RMS delay spread, s.
    :param carrier_frequency: Hz.
    :param speed: UE speed, m/s.
    :param generator: ``torch.Generator`` on ``device`` or None (Sionna's generator).
    """

    def __init__(self, *, model: str, delay_spread: float, carrier_frequency: float,
                 speed: float, generator: torch.Generator | None,
                 precision: str | None = None, device: str | None = None) -> None:
        ant = Antenna("single", "V", "omni", carrier_frequency,
                      precision=precision, device=device)
        super().__init__(model, delay_spread, carrier_frequency, ut_array=ant, bs_array=ant,
                         direction="downlink", min_speed=speed, max_speed=speed,
                         precision=precision, device=device)
        self._generator = generator
        # CDL.__call__ uses self._cir_gen for the random ray phases: same generator there.
        self._cir_gen = _GeneratorCoefficients(
            carrier_frequency=carrier_frequency, tx_array=ant, rx_array=ant,
            generator=generator, precision=precision, device=device)

    @property
    def torch_rng(self) -> torch.Generator:
        return super().torch_rng if self._generator is None else self._generator
