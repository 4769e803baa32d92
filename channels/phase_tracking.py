"""Pilot-aided phase tracking for single-carrier links: known pilot symbols between the data,
the receiver's phase estimated on them and interpolated over the data in between.

The transmitter puts a block of ``pilot_length`` pilots in front of every ``pilot_spacing``
data symbols and one more block after the last (a row of ``n`` data symbols sends
``n + pilot_length x (ceil(n / pilot_spacing) + 1)`` symbols), as DVB-S2 does with its pilot
blocks (36 pilots every 1440 symbols). Each pilot is ``(1 + j) / sqrt(2)`` times the root of the
row's mean data power, so the row's mean power, and with it the channel's noise variance, is
the data's. After the channel (and its equaliser), the receiver estimates the phase of each
pilot block from the equalised pilots ``y_l`` and their noise ``no_l`` by maximum likelihood,
``phi = arg(sum_l y_l conj(p_l) / no_l)``, unwraps the block estimates (a step between
neighbouring blocks is taken to be the one within (-pi, pi]), interpolates them linearly from
block centre to block centre over the data, turns the data back by the interpolated phase and
drops the pilots.

A phase ramp (a carrier frequency offset) whose step from block to block stays within
(-pi, pi] is removed exactly, up to the estimation noise; a Wiener phase keeps, with
noise-free pilots one symbol long spaced ``D = pilot_spacing + 1`` apart, a Brownian bridge
between them: a residual of mean variance ``2 pi v (D + 1) / 6`` per data symbol (``v`` the
normalized linewidth). Each block estimate errs by about ``N0 / (2 L Es)`` rad^2 at high SNR
(``L`` pilots); the receiver adds that error, interpolated, to the data's ``no_eff``, and
with ``estimate_phase_noise`` the drift between the blocks too, from the step variance its
block phases show (:func:`phase_noise_estimate`). A step
beyond +-pi (a cycle slip, at low SNR or for a fast ramp) turns the data of one interval by
up to a whole turn; with blocks of two or more pilots the receiver can first estimate a
frequency offset from the steps within the blocks (``estimate_frequency_offset``, any offset
within half the symbol rate, about ``1 / (M SNR)`` rad^2 over ``M`` independent pilot pairs)
and take its ramp out of the row. Channel uses count the data symbols only: the
pilots are the waveform's overhead, ``pilot_overhead`` of the symbols sent, shared by every
link over the same channel.
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import check_int, check_type

__all__ = ["PhaseTrackingChannel", "frequency_offset_estimate", "interpolate_phase",
           "interpolation_weights", "phase_noise_estimate", "pilot_layout", "pilot_overhead",
           "pilot_phase"]

_NOISE_FLOOR = 1e-30

#: The pilot symbol, before scaling to the row's mean data power.
PILOT_SYMBOL = complex(1.0, 1.0) / math.sqrt(2.0)


def pilot_layout(n: int, pilot_spacing: int, pilot_length: int = 1, *,
                 device: str | torch.device = "cpu") -> tuple[int, torch.Tensor, torch.Tensor]:
    """Where data and pilots go in a row of ``n`` data symbols.

    :param n: int >= 1; data symbols per row.
    :param pilot_spacing: int >= 1; data symbols between two pilot blocks.
    :param pilot_length: int >= 1; pilots per block.
    :param device: Where the index tensors are made (no copy to the device later).
    :output sent: int; symbols sent per row, ``n + pilot_length x blocks``.
    :output data_index: [n] int64; position of each data symbol in the sent row.
    :output pilot_index: [blocks, pilot_length] int64; positions of the pilot blocks,
        ``blocks = ceil(n / pilot_spacing) + 1``.

    >>> sent, data, pilots = pilot_layout(5, 2)
    >>> sent, data.tolist(), pilots.flatten().tolist()
    (9, [1, 2, 4, 5, 7], [0, 3, 6, 8])
    """
    n = check_int(n, name="n", low=1)
    spacing = check_int(pilot_spacing, name="pilot_spacing", low=1)
    length = check_int(pilot_length, name="pilot_length", low=1)
    blocks = -(-n // spacing) + 1
    data = torch.arange(n, device=device)
    data_index = data + length * (data // spacing + 1)
    block = torch.arange(blocks, device=device)
    # the last block follows the last, possibly short, data interval
    starts = block * length + torch.clamp(block * spacing, max=n)
    pilot_index = starts.unsqueeze(1) + torch.arange(length, device=device)
    return n + length * blocks, data_index, pilot_index


def pilot_overhead(n: int, pilot_spacing: int, pilot_length: int = 1) -> float:
    """Share of the sent symbols that are pilots, for ``n`` data symbols per row.

    >>> round(pilot_overhead(288, 16), 4)
    0.0619
    """
    sent, _, pilot_index = pilot_layout(n, pilot_spacing, pilot_length)
    return pilot_index.numel() / sent


def pilot_phase(y: torch.Tensor, pilots: torch.Tensor, no_eff: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unwrapped maximum-likelihood phase of each pilot block, and its error variance.

    :param y: [batch, blocks, L] complex; received pilots.
    :param pilots: [batch or 1, blocks or 1, L or 1] complex; what they would be without the
        phase: the pilots sent (equalised ``y``), or the pilots times the channel estimate.
    :param no_eff: [batch, blocks, L] float; their (effective) noise variances.
    :output phi: [batch, blocks] float, rad; ``arg(sum_l y_l conj(p_l) / no_l)``, unwrapped
        along the blocks (each step taken within (-pi, pi]), the first within (-pi, pi].
    :output variance: [batch, blocks] float, rad^2; ``1 / (2 sum_l |p_l|^2 / no_l)``, the
        estimate's error variance at high SNR (the Cramer-Rao bound it attains).

    >>> y = torch.polar(torch.ones(1, 3, 1), torch.tensor([[[3.0], [-3.0], [-1.0]]]))
    >>> phi, variance = pilot_phase(y, torch.ones(1), torch.full((1, 3, 1), 0.1))
    >>> phi.tolist(), variance.tolist()  # doctest: +ELLIPSIS
    ([[3.0, 3.28318..., 5.28318...]], [[0.05..., 0.05..., 0.05...]])
    """
    # Noise-free pilots (no_eff 0) weigh alike instead of 1/0; the floor keeps a block's sum of
    # weights finite in float32.
    weights = 1.0 / no_eff.clamp_min(_NOISE_FLOOR)
    phi = torch.angle((y * pilots.conj() * weights).sum(dim=-1))
    steps = torch.remainder(phi.diff(dim=-1) + math.pi, 2.0 * math.pi) - math.pi
    phi = torch.cat([phi[:, :1], phi[:, :1] + steps.cumsum(dim=-1)], dim=-1)
    information = (pilots.abs().square() * weights).sum(dim=-1)  # [batch, blocks]
    return phi, 0.5 / information.clamp_min(_NOISE_FLOOR)  # silent pilots: finite, huge


def frequency_offset_estimate(y: torch.Tensor, pilots: torch.Tensor, no_eff: torch.Tensor
                              ) -> torch.Tensor:
    """Coarse frequency offset from the phase steps within the pilot blocks.

    ``omega = arg(sum_b sum_l z_{b,l+1} conj(z_{b,l}))`` with ``z = y conj(p) / no``: the
    steps between neighbouring pilots, weighed by their reliability, averaged as vectors
    (unambiguous for offsets within half the symbol rate, whatever the pilot spacing).

    :param y: [batch, blocks, L] complex, ``L >= 2``; equalised received pilots.
    :param pilots: [batch or 1, blocks or 1, L or 1] complex; the pilots sent.
    :param no_eff: [batch, blocks, L] float; their effective noise variances.
    :output omega: [batch] float, rad per symbol; ``2 pi`` times the offset in symbol rates.

    >>> ramp = torch.polar(torch.ones(1, 2, 3), 0.3 * torch.tensor([[0., 1, 2], [9, 10, 11]]))
    >>> round(float(frequency_offset_estimate(ramp, torch.ones(1), torch.ones(1, 2, 3))), 6)
    0.3
    """
    weights = 1.0 / no_eff.clamp_min(_NOISE_FLOOR)
    # Scaled to at most 1 per row: products of two weights of noise-free pilots would overflow.
    weights = weights / weights.amax(dim=(-2, -1), keepdim=True)
    z = y * pilots.conj() * weights
    return torch.angle((z[..., 1:] * z[..., :-1].conj()).sum(dim=(-2, -1)))


def phase_noise_estimate(phi: torch.Tensor, variance: torch.Tensor, centres: torch.Tensor
                         ) -> torch.Tensor:
    """Each row's Wiener step variance, from the steps of its block phases.

    Between block centres ``g_b`` symbols apart the tracked phase steps by a ramp's
    ``mu g_b`` (a frequency offset), a Wiener increment of variance ``s2 g_b`` and the two
    blocks' estimation errors (``v_b + v_{b+1}``, neighbouring steps sharing one). With
    ``mu`` fitted by least squares the residual steps ``r`` keep ``E[sum r^2] = tr(C) - g'Cg /
    g'g`` of their covariance ``C``; solved for ``s2``, an unbiased moment estimate, which a
    single row may see below 0.

    :param phi: [batch, blocks] float, rad; unwrapped block phases, ``blocks >= 3``.
    :param variance: [batch, blocks] float, rad^2; their estimation error variances.
    :param centres: [blocks] float; the block centres, symbols.
    :output: [batch] float, rad^2 per symbol.

    >>> centres = torch.tensor([0.0, 10.0, 20.0, 30.0])
    >>> phi = torch.tensor([[0.0, 0.5, 0.0, 0.5]])  # steps 0.5, -0.5, 0.5 about a slight ramp
    >>> round(float(phase_noise_estimate(phi, torch.zeros(1, 4), centres)), 6)
    0.033333
    """
    steps = phi.diff(dim=-1)  # [batch, B']
    gaps = centres.diff()  # [B']
    squares = gaps.square().sum()
    residual = steps - (steps * gaps).sum(dim=-1, keepdim=True) / squares * gaps
    # The steps' covariance C = s2 diag(g) + E, E tridiagonal: v_b + v_{b+1} on the diagonal,
    # -v_b between neighbouring steps (they share a block). Fitting the ramp projects out g:
    # E[sum r^2] = tr(C) - g'Cg / g'g.
    diagonal = variance[:, 1:] + variance[:, :-1]
    quadratic = ((diagonal * gaps.square()).sum(dim=-1)
                 - 2.0 * (variance[:, 1:-1] * gaps[:-1] * gaps[1:]).sum(dim=-1))
    explained = diagonal.sum(dim=-1) - quadratic / squares
    walk = gaps.sum() - gaps.pow(3).sum() / squares
    return (residual.square().sum(dim=-1) - explained) / walk


def interpolation_weights(centres: torch.Tensor, positions: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The neighbouring block centres of each data position and its distance between them.

    :param centres: [blocks] float; increasing block centres (positions in the sent row).
    :param positions: [n] float; data positions, each within the centres' span.
    :output left, right: [n] int64; the blocks before and after each position.
    :output weight: [n] float in [0, 1]; 0 at the left centre, 1 at the right.
    """
    right = torch.searchsorted(centres, positions).clamp(1, centres.numel() - 1)
    left = right - 1
    return left, right, (positions - centres[left]) / (centres[right] - centres[left])


def interpolate_phase(phi: torch.Tensor, centres: torch.Tensor, positions: torch.Tensor
                      ) -> torch.Tensor:
    """Linear interpolation of block phases to the data positions.

    :param phi: [batch, blocks] float, rad; phases at the block centres.
    :param centres: [blocks] float; increasing block centres (positions in the sent row).
    :param positions: [n] float; data positions, each within the centres' span.
    :output: [batch, n] float, rad.

    >>> interpolate_phase(torch.tensor([[0.0, 1.0, 3.0]]), torch.tensor([0.0, 4.0, 8.0]),
    ...                   torch.tensor([1.0, 2.0, 6.0]))
    tensor([[0.2500, 0.5000, 2.0000]])
    """
    return _interpolate(phi, *interpolation_weights(centres, positions))


def _interpolate(phi: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                 weight: torch.Tensor) -> torch.Tensor:
    """``phi`` [batch, blocks] at the positions :func:`interpolation_weights` describes."""
    return phi[:, left] * (1.0 - weight) + phi[:, right] * weight


class PhaseTrackingChannel(Block):
    """``channel`` with pilot blocks between the data and the receiver's phase tracked on them.

    :param channel: Any single-carrier channel block of this package (call convention
        ``x_hat, no_eff = channel(x, snr_db)``), typically an
        :class:`~semlink.channels.oscillator.OscillatorChannel`.
    :param pilot_spacing: int >= 1; data symbols between two pilot blocks.
    :param pilot_length: int >= 1, default 1; pilots per block.
    :param estimate_frequency_offset: bool, default False; first estimate a frequency offset
        from the steps within the pilot blocks (:func:`frequency_offset_estimate`, needs
        ``pilot_length >= 2``) and take its ramp out of the whole row, so that offsets up to
        half the symbol rate are tracked, not only those whose step from block to block
        stays within +-pi.
    :param estimate_phase_noise: bool, default False; also estimate each row's phase-noise
        step variance from its block phases (:func:`phase_noise_estimate`) and add the
        Brownian bridge it leaves between the blocks, ``s2 t (g - t) / g``, to ``no_eff``.
    :input x: [batch, n] complex; the data symbols.
    :input snr_db: As the channel's (Es/N0 of the data: the pilots have the row's mean power).
    :output x_hat: [batch, n] complex; the equalised data turned back by the tracked phase.
    :output no_eff: [batch, n] float; the channel's at the data plus the interpolated phase
        estimate's error variance times the row's mean power (and with
        ``estimate_phase_noise`` the phase noise's between the pilots).
    :raises ValueError: If ``pilot_spacing`` or ``pilot_length`` is below 1, or
        ``estimate_frequency_offset`` is asked for with single pilots.

    >>> from semlink.channels.awgn import AWGNChannel
    >>> from semlink.channels.oscillator import OscillatorChannel
    >>> turned = OscillatorChannel(AWGNChannel(), normalized_frequency_offset=0.01)
    >>> ch = PhaseTrackingChannel(turned, pilot_spacing=8)
    >>> x = torch.ones(1, 100, dtype=torch.complex64)
    >>> x_hat, _ = ch(x, 200.0)
    >>> bool(torch.allclose(x_hat, x, atol=1e-4))
    True
    """

    def __init__(self, channel: Block, pilot_spacing: int, pilot_length: int = 1, *,
                 estimate_frequency_offset: bool = False,
                 estimate_phase_noise: bool = False) -> None:
        super().__init__(precision=channel.precision, device=channel.device)
        self.channel = channel
        self.pilot_spacing = check_int(pilot_spacing, name="pilot_spacing", low=1)
        self.pilot_length = check_int(pilot_length, name="pilot_length", low=1)
        check_type(estimate_frequency_offset, bool, name="estimate_frequency_offset")
        if estimate_frequency_offset and pilot_length < 2:
            raise ValueError("`estimate_frequency_offset` needs pilot_length >= 2 (it measures "
                             f"the steps within a block); got pilot_length={pilot_length!r}.")
        self.estimate_frequency_offset = estimate_frequency_offset
        check_type(estimate_phase_noise, bool, name="estimate_phase_noise")
        self.estimate_phase_noise = estimate_phase_noise

    def frame(self, x: torch.Tensor) -> torch.Tensor:
        """The row the transmitter sends: the data with the pilot blocks between them.

        :input x: [batch, n] complex; the data symbols.
        :output frame: [batch, n + pilot_length x (ceil(n / pilot_spacing) + 1)] complex.
        """
        return self._frame(x)[0]

    def _frame(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(frame, pilot [batch, 1], row amplitude [batch, 1], data_index, pilot_index)."""
        batch, n = x.shape
        sent, data_index, pilot_index = pilot_layout(n, self.pilot_spacing, self.pilot_length,
                                                     device=x.device)
        amplitude = x.abs().square().mean(dim=1, keepdim=True).sqrt()  # [batch, 1]
        pilot = (amplitude * PILOT_SYMBOL).to(x.dtype)
        frame = pilot.expand(batch, sent).clone()
        frame[:, data_index] = x
        return frame, pilot, amplitude, data_index, pilot_index

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float):
        batch = x.shape[0]
        frame, pilot, amplitude, data_index, pilot_index = self._frame(x)
        y, no_eff = self.channel(frame, snr_db)
        blocks = pilot_index.shape[0]
        flat = pilot_index.flatten()
        pilot_no = no_eff[:, flat].reshape(batch, blocks, -1)
        if self.estimate_frequency_offset:  # the blocks then track only what is left
            omega = frequency_offset_estimate(y[:, flat].reshape(batch, blocks, -1),
                                              pilot.unsqueeze(-1), pilot_no)
            ramp = omega.unsqueeze(-1) * torch.arange(y.shape[1], device=y.device)
            y = y * torch.polar(torch.ones_like(ramp), -ramp)
        phi, variance = pilot_phase(y[:, flat].reshape(batch, blocks, -1), pilot.unsqueeze(-1),
                                    pilot_no)
        centres = pilot_index.to(phi.dtype).mean(dim=1)
        left, right, weight = interpolation_weights(centres, data_index.to(phi.dtype))
        theta = _interpolate(phi, left, right, weight)
        x_hat = y[:, data_index] * torch.polar(torch.ones_like(theta), -theta)
        # Independent block errors: the interpolated phase errs by (1 - w)^2 v_l + w^2 v_r,
        # which turns a symbol of the row's mean power into that much more noise.
        residual = variance[:, left] * (1.0 - weight) ** 2 + variance[:, right] * weight ** 2
        if self.estimate_phase_noise:  # the Brownian bridge between the block centres
            step = phase_noise_estimate(phi, variance, centres).clamp_min(0.0).unsqueeze(-1)
            span = centres[right] - centres[left]
            residual = residual + step * span * weight * (1.0 - weight)
        return x_hat, no_eff[:, data_index] + amplitude.square() * residual
