"""Gray-labelled BPSK and square QAM: bits to unit-energy symbols and symbols to bit LLRs."""
from __future__ import annotations

import torch
from sionna.phy import Block
from sionna.phy.mapping import Constellation, Demapper, Mapper

from semlink.channels._checks import (check_broadcasts_to, check_complex, check_one_of, check_type,
                              sionna_device)

__all__ = [
    "BITS_PER_SYMBOL",
    "MODULATION_ORDERS",
    "bits_per_symbol_for_order",
    "QAMMapper",
    "QAMDemapper",
]

#: Allowed bits per symbol: 1 = BPSK, 2 = QPSK (4-QAM), 4 = 16-QAM, 6 = 64-QAM, 8 = 256-QAM.
BITS_PER_SYMBOL: tuple[int, ...] = (1, 2, 4, 6, 8)
#: Allowed modulation orders M = 2**bits_per_symbol.
MODULATION_ORDERS: tuple[int, ...] = tuple(2**k for k in BITS_PER_SYMBOL)

_DEMAPPING_METHODS = ("app", "maxlog")


def bits_per_symbol_for_order(modulation_order: int) -> int:
    """Number of bits per symbol of an M-ary constellation.

    :param modulation_order: int, M, one of 2 (BPSK), 4, 16, 64, 256 (QAM).
    :output bits_per_symbol: int, log2(M).
    :raises TypeError: If ``modulation_order`` is not an int.
    :raises ValueError: If ``modulation_order`` is not one of the allowed values.

    >>> bits_per_symbol_for_order(16)
    4
    """
    check_type(modulation_order, int, name="modulation_order")
    check_one_of(modulation_order, MODULATION_ORDERS, name="modulation_order")
    return modulation_order.bit_length() - 1


def _constellation(bits_per_symbol: int, precision: str | None,
                   device: str | None) -> Constellation:
    """Sionna's unit-energy Gray constellation: real +-1 PAM for 1 bit, square QAM otherwise."""
    check_type(bits_per_symbol, int, name="bits_per_symbol")
    check_one_of(bits_per_symbol, BITS_PER_SYMBOL, name="bits_per_symbol")
    kind = "pam" if bits_per_symbol == 1 else "qam"
    return Constellation(kind, bits_per_symbol, precision=precision, device=device)


class QAMMapper(Block):
    """Map bits to Gray-labelled constellation points with unit average energy (Es = 1).

    Labelling is Sionna's (3GPP TS 38.211 Sec. 5.1): the bit label of point ``i`` is the binary
    representation of ``i``, MSB first. BPSK (``bits_per_symbol=1``) maps bit 0 to +1 and
    bit 1 to -1; its symbols are complex with zero imaginary part.

    :param bits_per_symbol: int, one of 1 (BPSK), 2 (QPSK), 4 (16-QAM), 6 (64-QAM),
        8 (256-QAM). Use :func:`bits_per_symbol_for_order` to convert M.
    :param check_values: bool, default True; check per call that ``bits`` holds only 0 and 1
        (device sync).
    :input bits: [..., num_symbols * bits_per_symbol], float or int, 0/1.
    :output x: [..., num_symbols], complex (complex64 for single precision); E|x|^2 = 1 over
        equiprobable bits.
    :raises ValueError: If ``bits_per_symbol`` is not allowed, the last dimension of ``bits``
        is not a multiple of it, or ``bits`` is not 0/1 (when checked).

    >>> m = QAMMapper(bits_per_symbol=2)
    >>> m(torch.tensor([[0., 0., 1., 1.]])).shape
    torch.Size([1, 2])
    """

    def __init__(self, *, bits_per_symbol: int, check_values: bool = True,
                 precision: str | None = None, device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(check_values, bool, name="check_values")
        self._constellation = _constellation(bits_per_symbol, precision, device)
        self._mapper = Mapper(constellation=self._constellation, precision=precision,
                              device=device)
        self._bits_per_symbol = bits_per_symbol
        self._check_values = check_values

    @property
    def bits_per_symbol(self) -> int:
        """Bits per symbol, log2(M)."""
        return self._bits_per_symbol

    @property
    def points(self) -> torch.Tensor:
        """[2**bits_per_symbol], complex; point ``i`` carries the label ``i`` (MSB first)."""
        return self._constellation()

    def call(self, bits: torch.Tensor) -> torch.Tensor:
        if bits.is_complex():
            raise TypeError(f"`bits` must be a real tensor; got {bits.dtype}.")
        if bits.dim() == 0 or bits.shape[-1] % self._bits_per_symbol != 0:
            raise ValueError(f"Last dimension of `bits` {tuple(bits.shape)} must be a multiple of "
                             f"bits_per_symbol={self._bits_per_symbol}.")
        if self._check_values and not bool(torch.all((bits == 0) | (bits == 1))):
            raise ValueError("`bits` must contain only 0 and 1.")
        return self._mapper(bits)


class QAMDemapper(Block):
    """Bit LLRs (or hard decisions) of noisy constellation points for AWGN with variance ``no``.

    LLR sign as in Sionna: ``llr = log P(b=1 | y) / P(b=0 | y)`` (positive means 1), so the
    output feeds Sionna's LDPC decoder directly. "app" is exact (log-sum-exp over the
    constellation); "maxlog" keeps only the nearest point of each bit set.

    :param bits_per_symbol: int, one of 1, 2, 4, 6, 8; as :class:`QAMMapper`.
    :param method: "app" (default, exact) or "maxlog".
    :param hard_out: bool, default False; output hard decisions 0/1 (nearest point's label)
        instead of LLRs.
    :param check_values: bool, default True; check per call that ``no >= 0`` (device sync).
    :input y: [..., num_symbols], complex; received symbols (Es = 1 reference).
    :input no: float or real tensor broadcastable to ``y``; linear noise variance per complex
        symbol, E|n|^2 = no (no/2 per real dimension). Values below the smallest positive
        float are clamped to it.
    :output llr: [..., num_symbols * bits_per_symbol], float; LLRs, or 0/1 if ``hard_out``.
    :raises TypeError: If ``y`` is not complex.
    :raises ValueError: If parameters are not allowed, ``no`` does not broadcast to ``y``
        or ``no < 0`` (when checked).

    >>> d = QAMDemapper(bits_per_symbol=2, hard_out=True)
    >>> d(QAMMapper(bits_per_symbol=2)(torch.tensor([0., 1.])), 0.1)
    tensor([0., 1.])
    """

    def __init__(self, *, bits_per_symbol: int, method: str = "app", hard_out: bool = False,
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(method, str, name="method")
        check_one_of(method, _DEMAPPING_METHODS, name="method")
        check_type(hard_out, bool, name="hard_out")
        check_type(check_values, bool, name="check_values")
        self._constellation = _constellation(bits_per_symbol, precision, device)
        self._demapper = Demapper(method, constellation=self._constellation, hard_out=hard_out,
                                  precision=precision, device=device)
        self._bits_per_symbol = bits_per_symbol
        self._check_values = check_values

    @property
    def bits_per_symbol(self) -> int:
        """Bits per symbol, log2(M)."""
        return self._bits_per_symbol

    def call(self, y: torch.Tensor, no: torch.Tensor | float) -> torch.Tensor:
        check_complex(y, name="y")
        if y.dim() == 0:
            raise ValueError("`y` must have at least one dimension; got a scalar.")
        if isinstance(no, torch.Tensor) and no.is_complex():
            raise TypeError(f"`no` must be real; got {no.dtype}.")
        no = torch.as_tensor(no, dtype=self.dtype, device=y.device)
        check_broadcasts_to(no, y.shape, name="no")
        if self._check_values and not bool(torch.all(no >= 0)):  # NaN fails too
            raise ValueError("`no` must be >= 0 everywhere.")
        return self._demapper(y, no)
