"""Closed-form error rates for theory overlays on BER plots (uncoded, Gray mapping)."""
from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.special import erfc

__all__ = ["ber_awgn", "ber_rayleigh", "ber_rician"]


def ber_awgn(ebno_db: np.ndarray | float, modulation_order: int) -> np.ndarray:
    """Exact bit error rate of Gray-coded BPSK or square M-QAM over AWGN.

    Cho and Yoon, "On the general BER expression of one- and two-dimensional amplitude
    modulations", IEEE Trans. Commun. 50(7), 2002, eq. (14)-(16).

    :param ebno_db: Eb/N0 in dB, any shape.
    :param modulation_order: 2 (BPSK) or 4, 16, 64, 256.
    :output ber: Same shape as ``ebno_db``.
    """
    gamma_b = 10.0 ** (np.asarray(ebno_db, dtype=np.float64) / 10.0)
    if modulation_order == 2:
        return 0.5 * erfc(np.sqrt(gamma_b))
    if modulation_order not in (4, 16, 64, 256):
        raise ValueError(f"`modulation_order` must be 2, 4, 16, 64 or 256; got {modulation_order!r}.")
    m = modulation_order
    sqrt_m = int(math.isqrt(m))
    bits = int(math.log2(m))
    arg = np.sqrt(3.0 * bits * gamma_b / (2.0 * (m - 1)))
    total = np.zeros_like(gamma_b)
    for k in range(1, int(math.log2(sqrt_m)) + 1):
        p_k = np.zeros_like(gamma_b)
        for i in range(int((1 - 2.0 ** -k) * sqrt_m)):
            w = math.floor(i * 2 ** (k - 1) / sqrt_m)
            p_k += (-1) ** w * (2 ** (k - 1) - math.floor(i * 2 ** (k - 1) / sqrt_m + 0.5)) \
                * erfc((2 * i + 1) * arg)
        total += p_k / sqrt_m
    return total / math.log2(sqrt_m)


def _effective_ebno(gamma_b: np.ndarray, modulation_order: int, csi_error_var: float
                    ) -> np.ndarray:
    """Mean Eb/N0 per branch seen through an MMSE channel estimate with error variance ``s2``
    (semlink.channels.rayleigh): ``|h_est|^2 Eb / (N0 + s2 Es)`` has the mean ``(1 - s2) g / (1 +
    s2 log2(M) g)``."""
    if not 0.0 <= csi_error_var < 1.0:
        raise ValueError(f"`csi_error_var` must be in [0, 1); got {csi_error_var!r}.")
    bits = math.log2(modulation_order)
    return (1.0 - csi_error_var) * gamma_b / (1.0 + csi_error_var * bits * gamma_b)


def _check_fading(modulation_order: int, num_rx_antennas: int, channel: str) -> None:
    """The orders and branch counts the fading closed forms cover."""
    if modulation_order not in (2, 4):
        raise ValueError(f"`modulation_order` must be 2 or 4 for the {channel} closed form; "
                         f"got {modulation_order!r}.")
    if not isinstance(num_rx_antennas, int) or num_rx_antennas < 1:
        raise ValueError(f"`num_rx_antennas` must be an int >= 1; got {num_rx_antennas!r}.")


def ber_rayleigh(ebno_db: np.ndarray | float, modulation_order: int,
                 num_rx_antennas: int = 1, csi_error_var: float = 0.0) -> np.ndarray:
    """BER of Gray BPSK/QPSK over Rayleigh flat fading with perfect CSI and maximum-ratio
    combining of ``L = num_rx_antennas`` independent branches, ``g`` the mean Eb/N0 per branch
    (linear) and ``mu = sqrt(g / (1 + g))`` (Proakis, Digital Communications, 4th ed., eq.
    14.4-15):

        ((1 - mu) / 2)^L  sum_{k=0}^{L-1} C(L - 1 + k, k) ((1 + mu) / 2)^k,

    ``0.5 (1 - mu)`` for one antenna. With imperfect CSI (``csi_error_var`` s2, the model of
    :class:`~semlink.channels.rayleigh.RayleighChannel`) the same with ``g`` replaced by ``(1 - s2) g /
    (1 + s2 log2(M) g)``: the estimate is Rayleigh with power ``1 - s2`` and the error adds
    noise ``s2 Es``.

    :raises ValueError: For other orders (no simple closed form is offered), ``L < 1`` or
        ``csi_error_var`` outside [0, 1).
    """
    _check_fading(modulation_order, num_rx_antennas, "Rayleigh")
    gamma_b = _effective_ebno(10.0 ** (np.asarray(ebno_db, dtype=np.float64) / 10.0),
                              modulation_order, csi_error_var)
    mu = np.sqrt(gamma_b / (1.0 + gamma_b))
    branches = num_rx_antennas
    total = sum(math.comb(branches - 1 + k, k) * ((1.0 + mu) / 2.0) ** k
                for k in range(branches))
    return ((1.0 - mu) / 2.0) ** branches * total


def ber_rician(ebno_db: np.ndarray | float, modulation_order: int, k_factor_db: float,
               num_rx_antennas: int = 1, csi_error_var: float = 0.0) -> np.ndarray:
    """BER of Gray BPSK/QPSK over Rician flat fading (K factor ``k_factor_db``) with perfect
    CSI and maximum-ratio combining of ``L = num_rx_antennas`` independent branches, ``g`` the
    mean Eb/N0 per branch, by the moment-generating-function form (Simon and Alouini, Digital
    Communication over Fading Channels, eqs. 5.3 and 2.22), integrated numerically:

        (1/pi) int_0^{pi/2} [ (1 + K) s / ((1 + K) s + g) exp(-K g / ((1 + K) s + g)) ]^L dtheta,
        s = sin^2(theta).

    With imperfect CSI (``csi_error_var`` s2 < 1 / (K + 1), the model of
    :class:`~semlink.channels.rician.RicianChannel`) the estimate is Rician with power ``1 - s2`` and
    K factor ``K / (1 - s2 (K + 1))``, and ``g`` becomes ``(1 - s2) g / (1 + s2 log2(M) g)``.

    :raises ValueError: For other orders, ``L < 1``, a K factor that is not finite or a
        ``csi_error_var`` outside [0, 1 / (K + 1)).
    """
    _check_fading(modulation_order, num_rx_antennas, "Rician")
    if not math.isfinite(k_factor_db):
        raise ValueError(f"`k_factor_db` must be finite; got {k_factor_db!r}.")
    k = 10.0 ** (k_factor_db / 10.0)
    if not 0.0 <= csi_error_var < 1.0 / (k + 1.0):
        raise ValueError(f"`csi_error_var` must be in [0, 1 / (K + 1)) = [0, {1 / (k + 1):.4g}); "
                         f"got {csi_error_var!r}.")
    gamma_b = _effective_ebno(10.0 ** (np.asarray(ebno_db, dtype=np.float64) / 10.0),
                              modulation_order, csi_error_var)
    k = k / (1.0 - csi_error_var * (k + 1.0))  # the estimate's: LOS over its scattered power

    def one(g: float) -> float:
        def integrand(theta: float) -> float:
            s = math.sin(theta) ** 2
            d = (1.0 + k) * s + g
            return ((1.0 + k) * s / d * math.exp(-k * g / d)) ** num_rx_antennas
        return quad(integrand, 0.0, math.pi / 2, epsabs=0.0, epsrel=1e-10, limit=200)[0] / math.pi

    return np.vectorize(one, otypes=[np.float64])(gamma_b)
