"""Pilots of the OFDM channel's slots and phase tracking on its PT-RS (5G NR's phase-tracking
reference signals), for :class:`~semlink.channels.ofdm.OFDMSISOChannel`.

The pilots (:func:`pilot_pattern`) are fixed pseudo-random unit-power QPSK: every effective
subcarrier of the pilot OFDM symbols and, with a PT-RS stride ``K``, one pilot every ``K``
effective subcarriers on every OFDM symbol that is not a pilot symbol. The channel is still
estimated on the pilot symbols alone; after equalisation the receiver (:class:`PTRSTracker`)
measures each OFDM symbol's common phase error on its PT-RS,
``arg(sum_k y_k conj(h_hat_k p_k))`` (maximum likelihood given the estimate), turns that
symbol's data back by it and adds the estimate's error variance ``N0 / (2 sum_k |h_hat_k|^2)``
to their ``no_eff``: the common part of phase noise and of a frequency offset, which LS
estimation follows only at the pilot symbols, is taken out. The interference between
subcarriers stays; ``estimate_interference`` measures it on the PT-RS residuals and adds it to
``no_eff``, so that LLRs do not trust the data more than they should.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sionna.phy import Block
from sionna.phy.ofdm import PilotPattern, RemoveNulledSubcarriers, ResourceGrid, ResourceGridMapper

from semlink.channels.phase_tracking import pilot_phase

__all__ = ["PILOT_SEED", "pilot_mask", "pilot_pattern", "PTRSTracker"]

PILOT_SEED = 0x5E11  # fixed: pilots are part of the waveform, not of the randomness


def pilot_mask(rg: ResourceGrid, pilot_symbols: Sequence[int], stride: int | None) -> np.ndarray:
    """Where a slot's pilots sit.

    :param rg: The slot's resource grid (its numbers of OFDM symbols and effective subcarriers).
    :param pilot_symbols: Indices of the OFDM symbols that are pilots in full.
    :param stride: int >= 1 or None; a PT-RS every ``stride``-th effective subcarrier (from
        ``stride // 2``) of the other OFDM symbols, None for none.
    :output mask: [num_ofdm_symbols, num_effective_subcarriers] bool.
    """
    mask = np.zeros([rg.num_ofdm_symbols, rg.num_effective_subcarriers], bool)
    if stride is not None:
        mask[:, stride // 2::stride] = True
    mask[pilot_symbols, :] = True
    return mask


def pilot_pattern(rg: ResourceGrid, pilot_symbols: Sequence[int], stride: int | None, *,
                  precision: str | None, device: str | None) -> PilotPattern:
    """Fixed pseudo-random unit-power QPSK on :func:`pilot_mask`: the pilot symbols' first
    (their values the same with PT-RS or without), then the PT-RS.

    :param rg: The slot's resource grid.
    :param pilot_symbols: Indices of the pilot OFDM symbols.
    :param stride: PT-RS stride, or None for the pilot symbols alone.
    :param precision: Sionna precision of the pattern.
    :param device: Device of the pattern.
    :output pattern: Sionna :class:`~sionna.phy.ofdm.PilotPattern` for one stream.
    """
    full = pilot_mask(rg, pilot_symbols, stride)
    symbols = pilot_mask(rg, pilot_symbols, None)
    # A local generator with a fixed seed: same pilots for every instance, global RNGs
    # untouched. Construction only, so the host round trip is fine.
    generator = torch.Generator().manual_seed(PILOT_SEED)
    values = np.zeros(full.shape, np.complex64)
    for where in (symbols, full & ~symbols):
        bits = torch.randint(0, 2, (2, int(where.sum())), generator=generator).numpy()
        values[where] = ((1 - 2 * bits[0]) + 1j * (1 - 2 * bits[1])) / math.sqrt(2)
    return PilotPattern(full[None, None], values[full].reshape(1, 1, -1),
                        precision=precision, device=device)


class PTRSTracker(Block):
    """Each OFDM symbol's common phase error, measured on its PT-RS against the channel
    estimate, and the noise the receiver adds to the data's ``no_eff`` for it.

    :param rg: The slot's resource grid, its pilot pattern :func:`pilot_pattern` with
        ``stride``.
    :param pilot_symbols: Indices of the pilot OFDM symbols (empty for none).
    :param stride: int >= 1; effective subcarriers between two PT-RS.
    :param estimate_interference: bool, default False; also measure, per slot, the PT-RS
        residual power beyond the noise and the channel estimate's error (the interference
        between subcarriers) and add it, over the data's ``|h_hat|^2``, to their ``no_eff``.
    :param precision: ``"single"`` | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input y: [B, 1, 1, sym, fft] complex; received grids.
    :input h_hat: [B, 1, 1, 1, 1, sym, num_effective_subcarriers] complex; the channel estimate.
    :input err_var: float tensor broadcastable to ``h_hat``; its error variance.
    :input no: [B] float; the noise variance per resource element.
    :output turn: [B, 1, 1, D] complex, unit magnitude: ``exp(-j phi)`` of each data resource
        element's OFDM symbol, ``D`` data resource elements per slot.
    :output extra: [B, 1, 1, D] float; the estimate's error variance
        ``N0 / (2 sum_k |h_hat_k|^2)`` (on a unit-power data symbol), plus the measured
        interference with ``estimate_interference``.
    """

    def __init__(self, rg: ResourceGrid, pilot_symbols: Sequence[int], stride: int, *,
                 estimate_interference: bool = False, precision: str | None = None,
                 device: str | None = None) -> None:
        super().__init__(precision=precision, device=device)
        kw = {"precision": self.precision, "device": self.device}
        self._estimate_interference = estimate_interference
        self._remove_nulled = RemoveNulledSubcarriers(rg, **kw)
        # Where the PT-RS are and what they carry, read back from the mapper's own grid:
        # index [S, P] flat (symbol, effective subcarrier) positions of the PT-RS of the S OFDM
        # symbols that have them, P per symbol; values [S, P] complex, the pilots sent there;
        # data [D] the flat positions of the data resource elements, in mapping order;
        # of_data [D] the row of index holding each one's OFDM symbol.
        full = pilot_mask(rg, pilot_symbols, stride)
        mask = full & ~pilot_mask(rg, pilot_symbols, None)
        symbols = np.flatnonzero(mask.any(axis=1))
        self._index = torch.as_tensor(np.flatnonzero(mask), device=self.device).reshape(
            len(symbols), -1)
        num_sc = rg.num_effective_subcarriers
        probe = torch.zeros(1, 1, 1, int(rg.num_data_symbols), dtype=self.cdtype,
                            device=self.device)
        grid = self._remove_nulled(ResourceGridMapper(rg, **kw)(probe)).reshape(-1)  # pilots
        row = torch.full((rg.num_ofdm_symbols,), -1, dtype=torch.int64)
        row[torch.as_tensor(symbols)] = torch.arange(len(symbols))
        data = torch.as_tensor(np.flatnonzero(~full))  # the mapper's row-major order
        self._values = grid[self._index]
        self._data = data.to(self.device)
        self._of_data = row[data // num_sc].to(self.device)

    def call(self, y: torch.Tensor, h_hat: torch.Tensor, err_var: torch.Tensor,
             no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = y.shape[0]
        index = self._index  # [S, P]
        received = self._remove_nulled(y).reshape(batch, -1)[:, index]  # [B, S, P]
        gains = h_hat.reshape(batch, -1)[:, index]
        expected = gains * self._values
        # One symbol's PT-RS are a pilot block: the same maximum-likelihood phase and error
        # variance as a single-carrier tracker's, unwrapped along the symbols.
        phi, variance = pilot_phase(received, expected, no[:, None, None].expand(received.shape))
        of_data = self._of_data
        extra = variance[:, of_data]  # [B, D]
        if self._estimate_interference:
            flat_h = h_hat.reshape(batch, -1)
            errors = torch.broadcast_to(err_var, h_hat.shape).reshape(batch, -1)[:, index]
            data_gains = flat_h[:, self._data].abs().square()
            extra = extra + self._interference(received, expected, phi, errors, no, data_gains)
        phi = phi[:, of_data]
        return (torch.polar(torch.ones_like(phi), -phi).reshape(batch, 1, 1, -1),
                extra.reshape(batch, 1, 1, -1))

    def _interference(self, received: torch.Tensor, expected: torch.Tensor, phi: torch.Tensor,
                      errors: torch.Tensor, no: torch.Tensor, data_gains: torch.Tensor
                      ) -> torch.Tensor:
        """Interference at each data resource element, measured on the PT-RS of its slot:
        the residual power beyond what noise and channel-estimation error explain, ``I``, per
        resource element, over the data's ``|h_hat|^2`` (0 where the residual shows none).

        :input received, expected: [B, S, P] complex; the PT-RS received and ``h_hat p``.
        :input phi: [B, S] float; each symbol's common phase error.
        :input errors: [B, S, P] float; the channel estimate's error variance there.
        :input no: [B] float; the noise variance per resource element.
        :input data_gains: [B, D] float; ``|h_hat|^2`` at the data resource elements.
        :output: [B, D] float.
        """
        pilots = received.shape[-1]
        residual = received - expected * torch.polar(torch.ones_like(phi), phi).unsqueeze(-1)
        # Fitting one phase per symbol takes 1 of its 2 P real dimensions out of the residual.
        kept = 1.0 - 0.5 / pilots
        measured = residual.abs().square().mean(dim=(-2, -1)) / kept  # [B]
        explained = no + (errors * self._values.abs().square()).mean(dim=(-2, -1))
        interference = (measured - explained).clamp_min(0.0)  # [B]
        return interference.unsqueeze(-1) / data_gains.clamp_min(torch.finfo(no.dtype).tiny)
