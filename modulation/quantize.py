"""Uniform scalar quantisation of a real tensor to bits (MSB first) and back to bin centres."""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import check_int, check_type, sionna_device

__all__ = ["MAX_QUANT_BITS", "UniformQuantizer", "UniformDequantizer"]

#: Largest number of bits per value.
MAX_QUANT_BITS = 16


def _check_config(num_bits: int, lo: float, hi: float) -> None:
    check_int(num_bits, name="num_bits", low=1, high=MAX_QUANT_BITS)
    check_type(lo, (int, float), name="lo")
    check_type(hi, (int, float), name="hi")
    if not math.isfinite(lo):
        raise ValueError(f"`lo` must be finite; got {lo!r}.")
    if not (math.isfinite(hi) and hi > lo):
        raise ValueError(f"`hi` must be finite and > lo={lo!r}; got {hi!r}.")


class UniformQuantizer(Block):
    """Quantise each value to one of ``2**num_bits`` equal bins of ``[lo, hi]``.

    Bin ``i`` is ``[lo + i * step, lo + (i + 1) * step)`` with ``step = (hi - lo) / 2**num_bits``
    (the top bin also holds ``hi``); values outside ``[lo, hi]`` are clipped into the first or
    last bin. For data inside the range the mean squared error is ``step**2 / 12``
    (uniform data); values on a bin edge may fall into either neighbour by float rounding.

    :param num_bits: int in [1, 16]; bits per value.
    :param lo: float; lower clipping bound (same unit as the data).
    :param hi: float > lo; upper clipping bound.
    :input z: [batch, ...], float; finite values.
    :output bits: [batch, numel * num_bits], float, 0/1; value ``j`` (C order) occupies
        bits ``[j * num_bits, (j + 1) * num_bits)``, MSB first.
    :raises TypeError: If a parameter has the wrong type or ``z`` is complex.
    :raises ValueError: If ``num_bits`` is out of range, ``lo >= hi``, or ``z`` is a scalar.

    >>> UniformQuantizer(num_bits=3, lo=0.0, hi=8.0)(torch.tensor([[5.3, -1.0]]))
    tensor([[1., 0., 1., 0., 0., 0.]])
    """

    def __init__(self, *, num_bits: int, lo: float, hi: float, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        _check_config(num_bits, lo, hi)
        self._num_bits, self._lo, self._hi = num_bits, float(lo), float(hi)
        self._step = (self._hi - self._lo) / 2**num_bits

    @property
    def step(self) -> float:
        """Bin width, (hi - lo) / 2**num_bits."""
        return self._step

    def call(self, z: torch.Tensor) -> torch.Tensor:
        if z.is_complex():
            raise TypeError(f"`z` must be real; got {z.dtype}.")
        if z.dim() == 0:
            raise ValueError("`z` must be [batch, ...]; got a scalar.")
        levels = 2**self._num_bits
        idx = torch.floor((z.reshape(z.shape[0], -1) - self._lo) / self._step)
        idx = idx.clamp(0, levels - 1).to(torch.int64)  # [batch, numel]
        shifts = torch.arange(self._num_bits - 1, -1, -1, device=z.device)  # MSB first
        bits = (idx.unsqueeze(-1) >> shifts) & 1  # [batch, numel, num_bits]
        return bits.reshape(z.shape[0], -1).to(self.dtype)


class UniformDequantizer(Block):
    """Bits of :class:`UniformQuantizer` back to the bin centres ``lo + (i + 0.5) * step``.

    :param num_bits: int in [1, 16]; bits per value.
    :param lo: float; lower clipping bound used by the quantiser.
    :param hi: float > lo; upper clipping bound used by the quantiser.
    :param shape: tuple of ints >= 1; per-row shape of the output.
    :param check_values: bool, default True; check per call that ``bits`` is 0/1 (device sync).
    :input bits: [batch, prod(shape) * num_bits], float, 0/1, MSB first per value.
    :output z_hat: [batch, *shape], float; bin centres in ``[lo + step/2, hi - step/2]``.
    :raises TypeError: If a parameter has the wrong type.
    :raises ValueError: If a parameter is out of range, ``bits`` has the wrong shape, or
        (when checked) is not 0/1.

    >>> UniformDequantizer(num_bits=3, lo=0.0, hi=8.0, shape=(2,))(
    ...     torch.tensor([[1., 0., 1., 0., 0., 0.]]))
    tensor([[5.5000, 0.5000]])
    """

    def __init__(self, *, num_bits: int, lo: float, hi: float, shape: tuple[int, ...],
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        _check_config(num_bits, lo, hi)
        check_type(shape, tuple, name="shape")
        if len(shape) == 0:
            raise ValueError("`shape` must have at least one dimension; got ().")
        for i, d in enumerate(shape):
            check_int(d, name=f"shape[{i}]", low=1)
        check_type(check_values, bool, name="check_values")
        self._num_bits, self._lo, self._hi = num_bits, float(lo), float(hi)
        self._step = (self._hi - self._lo) / 2**num_bits
        self._shape = shape
        self._numel = math.prod(shape)
        self._check_values = check_values

    @property
    def step(self) -> float:
        """Bin width, (hi - lo) / 2**num_bits."""
        return self._step

    def call(self, bits: torch.Tensor) -> torch.Tensor:
        n_bits = self._numel * self._num_bits
        if bits.is_complex() or bits.dim() != 2 or bits.shape[1] != n_bits:
            raise ValueError(f"`bits` must be real [batch, {n_bits}]; got shape "
                             f"{tuple(bits.shape)}, dtype {bits.dtype}.")
        if self._check_values and not bool(torch.all((bits == 0) | (bits == 1))):
            raise ValueError("`bits` must contain only 0 and 1.")
        b = bits.reshape(bits.shape[0], self._numel, self._num_bits).to(torch.int64)
        shifts = torch.arange(self._num_bits - 1, -1, -1, device=bits.device)  # MSB first
        idx = (b << shifts).sum(dim=-1)  # [batch, numel]
        z_hat = self._lo + (idx.to(self.dtype) + 0.5) * self._step
        return z_hat.reshape(bits.shape[0], *self._shape)
