"""Additive white Gaussian noise: the noise block and the link-level AWGN channel."""
from __future__ import annotations

import torch
from sionna.phy import Block

from semlink.channels._checks import check_broadcasts_to, check_type, sionna_device
from semlink.channels._common import check_generator, check_symbols_and_snr
from semlink.channels.snr import mean_power

__all__ = ["AWGN", "AWGNChannel"]


class AWGN(Block):
    """Add circularly symmetric complex Gaussian noise: y = x + n.

    :param generator: Noise source on ``device``; None = Sionna's
        per-device generator (``sionna.phy.config.seed``).
    :param check_values: Check ``no >= 0`` per call (device sync); default True.
    :param precision: ``"single"`` | ``"double"`` | None (Sionna's default).
    :param device: Device string, e.g. ``"cpu"``, ``"cuda:0"``; None = Sionna's default.
    :input x: [..., n], complex. Any average energy.
    :input no: float or real tensor broadcastable to ``x``; linear.
        Variance per complex symbol: E|n|^2 = no, no/2 per I and Q.
    :output y: Same shape as ``x``; the block's complex dtype.
    :raises TypeError: If ``x`` is not complex or ``generator`` is not a ``torch.Generator``.
    :raises ValueError: If ``no`` does not broadcast to ``x``, ``no < 0`` somewhere, or
        ``generator`` lives on another device.

    >>> import torch
    >>> awgn = AWGN(generator=torch.Generator().manual_seed(0))
    >>> awgn(torch.zeros(2, 3, dtype=torch.complex64), 0.5).shape
    torch.Size([2, 3])
    """

    def __init__(self, *, generator: torch.Generator | None = None,
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(check_values, bool, name="check_values")
        check_generator(generator, self.device)
        self._generator = generator
        self._check_values = check_values

    def call(self, x: torch.Tensor, no: torch.Tensor | float) -> torch.Tensor:
        if not x.is_complex():
            raise TypeError(f"`x` must be complex; got {x.dtype}.")
        no = torch.as_tensor(no, dtype=self.dtype, device=x.device)
        check_broadcasts_to(no, x.shape, name="no")
        if self._check_values and not bool(torch.all(no >= 0)):  # NaN fails too
            raise ValueError("`no` must be >= 0 everywhere.")
        gen = self.torch_rng if self._generator is None else self._generator
        # complex randn: variance 1/2 per real component
        n = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=gen)
        return x + no.sqrt() * n


class AWGNChannel(Block):
    """Link-level AWGN channel with the semlink call convention.

    ``y = x + n`` with ``n ~ CN(0, N0)`` per symbol, ``N0 = mean(|x|^2 over the row) /
    10^(snr_db/10)``. There is nothing to equalise, so ``x_hat = y`` and ``no_eff = N0``.

    :param generator: Noise source on ``device``; None = Sionna's per-device generator.
    :param check_values: Check ``snr_db`` is not NaN or ``-inf`` per call (device sync);
        default True.
    :param precision: ``"single"`` (complex64 out, default) | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x: [batch, n], complex. Any average energy.
    :input snr_db: float or [batch] float tensor; Es/N0 in dB per complex symbol relative to
        the measured mean power of each row of ``x``. ``+inf`` = no noise.
    :output x_hat: [batch, n], complex (complex64 in single precision); noisy symbols.
    :output no_eff: [batch, n], float (float32 in single precision); N0 per symbol, linear.
    :raises TypeError: If ``x`` is not complex or ``snr_db`` is not real.
    :raises ValueError: If ``x`` is not 2-D, ``snr_db`` is not a scalar or ``[batch]``, or
        ``snr_db`` is NaN / ``-inf``.

    >>> import torch
    >>> ch = AWGNChannel(generator=torch.Generator().manual_seed(1))
    >>> x_hat, no_eff = ch(torch.ones(4, 8, dtype=torch.complex64), 10.0)
    >>> x_hat.shape, round(float(no_eff[0, 0]), 6)
    (torch.Size([4, 8]), 0.1)
    """

    def __init__(self, *, generator: torch.Generator | None = None,
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(check_values, bool, name="check_values")
        self._check_values = check_values
        self._awgn = AWGN(generator=generator, check_values=False,
                          precision=self.precision, device=self.device)

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float
             ) -> tuple[torch.Tensor, torch.Tensor]:
        snr_db = check_symbols_and_snr(x, snr_db, check_values=self._check_values)  # [batch, 1]
        no = mean_power(x).unsqueeze(-1) * torch.pow(10.0, -snr_db / 10.0)  # [batch, 1]
        y = self._awgn(x, no)
        return y, no.expand(x.shape).to(self.dtype).contiguous()
