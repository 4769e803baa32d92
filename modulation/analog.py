"""Analog (uncoded) transmission of a real tensor: pairs of reals become one complex symbol.

Each batch row (e.g. a semantic embedding Z of shape [16, 12, 12]) is flattened in C order,
an odd count is completed by one zero, consecutive pairs ``(z[2i], z[2i+1])`` become the
symbol ``z[2i] + j z[2i+1]``, and the row is scaled to unit average symbol power (Es = 1, the
pad symbol included). The per-row scale (the RMS symbol amplitude before scaling) is side
information: the receiver needs it to undo the normalisation. It is assumed to reach the
receiver error-free, e.g. sent as a few protected bytes per row and counted separately from
the ``ceil(numel / 2)`` channel uses, or known from the encoder's statistics.
"""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import (check_broadcasts_to, check_complex, check_int, check_type,
                              sionna_device)

__all__ = ["analog_channel_uses", "ANALOG_ESTIMATES", "estimate_symbols", "AnalogMapper",
           "AnalogDemapper"]

#: What the receiver makes of the equalised symbols before demapping (:func:`estimate_symbols`).
ANALOG_ESTIMATES = ("none", "lmmse", "noise-matched")


def _check_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    check_type(shape, tuple, name="shape")
    if len(shape) == 0:
        raise ValueError("`shape` must have at least one dimension; got ().")
    for i, d in enumerate(shape):
        check_int(d, name=f"shape[{i}]", low=1)
    return shape


def analog_channel_uses(shape: tuple[int, ...]) -> int:
    """Complex channel symbols per row for a real tensor row of shape ``shape``.

    :param shape: tuple of ints >= 1; per-row shape, e.g. (16, 12, 12).
    :output num_symbols: int, ``ceil(prod(shape) / 2)``.
    :raises TypeError: If ``shape`` is not a tuple of ints.
    :raises ValueError: If ``shape`` is empty or has a dimension < 1.

    >>> analog_channel_uses((16, 12, 12))
    1152
    """
    return -(-math.prod(_check_shape(shape)) // 2)


def estimate_symbols(x_hat: torch.Tensor, no_eff: torch.Tensor, method: str) -> torch.Tensor:
    """Per-symbol estimate of unit-power analog symbols from their equalised values.

    The mapper's symbols have unit average power; taken as zero-mean with variance 1, the
    equalised symbol ``x_hat_k = x_k + e_k`` (``e_k`` of variance ``no_eff_k``) has the linear
    MMSE estimate ``x_hat_k / (1 + no_eff_k)``. The methods:

    - ``"none"``: ``x_hat`` as it is (the paper: the receiver conditions on the noisy symbols).
    - ``"lmmse"``: ``x_hat_k / (1 + no_eff_k)``: unreliable symbols (a deep fade after
      zero-forcing) shrink towards 0, the unconditional embedding.
    - ``"noise-matched"``: the LMMSE estimate scaled by ``1 + n_ref``, ``n_ref = 1 / mean_k(1 /
      no_eff_k)`` per row (the noise of the row's mean SINR): what an AWGN channel of noise
      ``n_ref`` would have delivered for the same posterior mean, ``y / (1 + n_ref) = x_hat_k /
      (1 + no_eff_k)``. A receiver trained on AWGN (uniform noise) gets inputs of the kind it was
      trained on; on AWGN (equal ``no_eff``) it is the identity.

    :input x_hat: [batch, n] complex; equalised symbols.
    :input no_eff: [batch, n] float >= 0; effective noise variance per symbol, relative to the
        unit symbol power (0 = noiseless).
    :param method: One of :data:`ANALOG_ESTIMATES`.
    :output x_est: [batch, n], the dtype of ``x_hat``.
    :raises ValueError: If ``method`` is unknown.

    >>> x_hat = torch.tensor([[1.0 + 1.0j, 2.0 + 0.0j]])
    >>> estimate_symbols(x_hat, torch.tensor([[1.0, 3.0]]), "lmmse")
    tensor([[0.5000+0.5000j, 0.5000+0.0000j]])
    >>> estimate_symbols(x_hat, torch.tensor([[1.0, 3.0]]), "noise-matched")  # n_ref = 1.5
    tensor([[1.2500+1.2500j, 1.2500+0.0000j]])
    """
    check_type(method, str, name="method")
    if method not in ANALOG_ESTIMATES:
        raise ValueError(f"`method` must be one of {ANALOG_ESTIMATES}; got {method!r}.")
    if method == "none":
        return x_hat
    no_eff = no_eff.to(x_hat.real.dtype)
    gain = 1.0 / (1.0 + no_eff)  # [batch, n]
    if method == "noise-matched":
        # The harmonic mean, so that a few deep fades (no_eff -> inf) do not set the level;
        # a noiseless symbol (1 / 0 = inf) makes it 0.
        n_ref = 1.0 / (1.0 / no_eff).mean(dim=-1, keepdim=True)  # [batch, 1]
        gain = gain * (1.0 + n_ref)
    return x_hat * gain


class _AnalogBlock(Block):
    """What the mapper and the demapper share: the per-row shape and the symbol count."""

    def __init__(self, *, shape: tuple[int, ...], precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        self._shape = _check_shape(shape)
        self._numel = math.prod(shape)
        self._num_symbols = analog_channel_uses(shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-row shape of the real tensor."""
        return self._shape

    @property
    def num_symbols(self) -> int:
        """Channel uses (complex symbols) per row."""
        return self._num_symbols


class AnalogMapper(_AnalogBlock):
    """Real tensor rows to unit-power complex symbols plus a per-row scale.

    :param shape: tuple of ints >= 1; per-row shape of ``z`` (all dims after batch).
    :input z: [batch, *shape], float (ints are cast); any finite values.
    :output x: [batch, num_symbols], complex; ``num_symbols = ceil(prod(shape) / 2)``,
        mean |x|^2 = 1 per row (an all-zero row gives zero symbols).
    :output scale: [batch], float >= 0; RMS amplitude of the unscaled symbols, so that
        ``z`` is recovered as ``x * scale``. Side information, not counted in ``num_symbols``.
    :raises TypeError: If ``z`` is complex.
    :raises ValueError: If ``z`` is not ``[batch, *shape]``.

    >>> x, s = AnalogMapper(shape=(2,))(torch.tensor([[3.0, 4.0]]))
    >>> x, s
    (tensor([[0.6000+0.8000j]]), tensor([5.]))
    """

    @property
    def num_pad(self) -> int:
        """Zeros appended per row to make the real count even (0 or 1)."""
        return 2 * self._num_symbols - self._numel

    def call(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if z.is_complex():
            raise TypeError(f"`z` must be real; got {z.dtype}.")
        if z.dim() != len(self._shape) + 1 or tuple(z.shape[1:]) != self._shape:
            raise ValueError(f"`z` of shape {tuple(z.shape)} must be [batch, *{self._shape}].")
        flat = z.reshape(z.shape[0], self._numel).to(self.dtype)  # [batch, numel]; ints too
        flat = torch.nn.functional.pad(flat, (0, self.num_pad))  # [batch, 2 * num_symbols]
        x = torch.complex(flat[:, 0::2], flat[:, 1::2])  # [batch, num_symbols]
        scale = x.abs().square().mean(dim=1).sqrt()  # [batch]
        tiny = torch.finfo(scale.dtype).tiny  # an all-zero row stays zero
        x = x / scale.clamp_min(tiny).unsqueeze(1)
        return x, scale


class AnalogDemapper(_AnalogBlock):
    """Exact inverse of :class:`AnalogMapper`: symbols and scale back to the real tensor.

    :param shape: tuple of ints >= 1; per-row shape of the real tensor.
    :input x_hat: [batch, num_symbols], complex; received (equalised) symbols.
    :input scale: [batch] float tensor (or a float or [1] tensor broadcast to all rows);
        the per-row scale from :class:`AnalogMapper`.
    :output z_hat: [batch, *shape], float; ``real``/``imag`` of ``x_hat * scale`` interleaved,
        the pad value dropped. With AWGN of variance ``no`` per complex symbol on ``x``, the
        error per real value has variance ``scale**2 * no / 2``.
    :raises TypeError: If ``x_hat`` is not complex or ``scale`` is complex.
    :raises ValueError: If shapes do not match.

    >>> AnalogDemapper(shape=(2,))(torch.tensor([[0.6 + 0.8j]]), torch.tensor([5.0]))
    tensor([[3., 4.]])
    """

    def call(self, x_hat: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
        check_complex(x_hat, name="x_hat")
        if x_hat.dim() != 2 or x_hat.shape[1] != self._num_symbols:
            raise ValueError(f"`x_hat` of shape {tuple(x_hat.shape)} must be "
                             f"[batch, {self._num_symbols}].")
        if isinstance(scale, torch.Tensor) and scale.is_complex():
            raise TypeError(f"`scale` must be real; got {scale.dtype}.")
        scale = torch.as_tensor(scale, dtype=self.dtype, device=x_hat.device)
        check_broadcasts_to(scale, (x_hat.shape[0],), name="scale")
        x = x_hat * scale.unsqueeze(-1)  # [batch, num_symbols]
        flat = torch.view_as_real(x).reshape(x.shape[0], 2 * self._num_symbols)  # re, im, re, ...
        return flat[:, :self._numel].reshape(x.shape[0], *self._shape)
