"""Closed-form error rates for theory overlays on BER plots (uncoded, Gray mapping)."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

__all__ = ["ber_awgn", "ber_rayleigh"]


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


def ber_rayleigh(ebno_db: np.ndarray | float, modulation_order: int) -> np.ndarray:
    """BER of Gray BPSK/QPSK over Rayleigh flat fading with perfect CSI:
    ``0.5 (1 - sqrt(g / (1 + g)))`` with ``g`` the mean Eb/N0 (linear).

    :raises ValueError: For other orders (no simple closed form is offered).
    """
    if modulation_order not in (2, 4):
        raise ValueError(f"`modulation_order` must be 2 or 4 for the Rayleigh closed form; "
                         f"got {modulation_order!r}.")
    gamma_b = 10.0 ** (np.asarray(ebno_db, dtype=np.float64) / 10.0)
    return 0.5 * (1.0 - np.sqrt(gamma_b / (1.0 + gamma_b)))
