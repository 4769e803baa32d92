"""Rician flat fading (block-wise or time-correlated): a line-of-sight ray plus Rayleigh
scattering."""
from __future__ import annotations

import math

from semlink.channels._checks import check_type
from semlink.channels.rayleigh import RayleighChannel

__all__ = ["RicianChannel"]


class RicianChannel(RayleighChannel):
    r"""Rician block-fading channel: :class:`~semlink.channels.rayleigh.RayleighChannel` with a
    line-of-sight component.

    Every coefficient is ``h = sqrt(K / (K + 1)) + sqrt(1 / (K + 1)) g`` with ``g ~ CN(0, 1)``
    and ``K = 10^(k_factor_db / 10)`` the ratio of line-of-sight to scattered power, so that
    ``E|h|^2 = 1`` and the mean received SNR is ``snr_db``. The line-of-sight phase is 0 (the
    receiver knows ``h``, so a fixed phase changes nothing). ``K -> 0`` is Rayleigh fading,
    ``K -> inf`` AWGN. With ``normalized_doppler`` the scattered part ``g`` is the Jakes
    process and the line of sight stays fixed. Blocks, receive antennas (each with its own
    scattering around the same line-of-sight ray), MRC, equalisers, imperfect CSI (the line of
    sight is known, the error is in the scattered part: ``csi_error_var < 1 / (K + 1)``), draw
    order and outputs are those of :class:`~semlink.channels.rayleigh.RayleighChannel`.

    :param k_factor_db: float, finite; Rician K factor in dB.
    :param kwargs: The parameters of :class:`~semlink.channels.rayleigh.RayleighChannel`.
    :raises TypeError: If ``k_factor_db`` is not a number.
    :raises ValueError: If ``k_factor_db`` is not finite, or as RayleighChannel.

    >>> import torch
    >>> ch = RicianChannel(k_factor_db=10.0, return_channel=True,
    ...                    generator=torch.Generator().manual_seed(0))
    >>> _, _, h = ch(torch.ones(1, 4000, dtype=torch.complex64), 20.0)
    >>> round(float(h.real.mean()), 2), round(float(h.abs().square().mean()), 2)
    (0.95, 1.0)
    """

    def __init__(self, *, k_factor_db: float, **kwargs) -> None:
        check_type(k_factor_db, (int, float), name="k_factor_db")
        if not math.isfinite(k_factor_db):
            raise ValueError(f"`k_factor_db` must be finite; got {k_factor_db!r}.")
        self._k_factor_db = float(k_factor_db)
        super().__init__(**kwargs)

    @property
    def k_factor_db(self) -> float:
        """Rician K factor, dB."""
        return self._k_factor_db

    def _fading_powers(self) -> tuple[float, float]:
        """(``sqrt(K / (K + 1))``, ``1 / (K + 1)``): the line of sight and the scattering."""
        k = 10.0 ** (self._k_factor_db / 10.0)
        return math.sqrt(k / (k + 1.0)), 1.0 / (k + 1.0)
