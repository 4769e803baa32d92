"""An independent reference for uncoded BER: Gray PAM/QAM over AWGN by exact region integration,
for tests of the simulated BER link and of the closed forms in :mod:`semlink.theory`."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

__all__ = ["gray_pam_ber"]


def gray_pam_ber(ebno_db: float, modulation_order: int) -> float:
    """BER of Gray square QAM (or BPSK) over AWGN by exact region integration."""
    bits = int(math.log2(modulation_order))
    levels = 2 if modulation_order == 2 else math.isqrt(modulation_order)
    bits_per_dim = int(math.log2(levels))
    amplitudes = np.arange(-(levels - 1), levels, 2, dtype=float)  # -L+1 .. L-1
    es = (amplitudes ** 2).mean() * (1 if modulation_order == 2 else 2)
    n0 = es / (bits * 10 ** (ebno_db / 10))
    sigma = math.sqrt(n0 / 2)  # per real dimension
    gray = [i ^ (i >> 1) for i in range(levels)]
    edges = np.concatenate(([-np.inf], (amplitudes[:-1] + amplitudes[1:]) / 2, [np.inf]))
    errors = 0.0
    for sent in range(levels):
        z = (edges - amplitudes[sent]) / sigma
        lo, hi = z[:-1], z[1:]
        # P(decide region j), each tail taken from the side where it is small: a difference of
        # two cdf values near 1 would lose the 1e-15 error rates of high SNR to cancellation.
        mass = np.where(hi <= 0, norm.cdf(hi) - norm.cdf(lo),
                        np.where(lo >= 0, norm.sf(lo) - norm.sf(hi),
                                 1.0 - norm.cdf(lo) - norm.sf(hi)))
        for decided in range(levels):
            errors += mass[decided] * bin(gray[sent] ^ gray[decided]).count("1")
    return errors / (levels * bits_per_dim)
