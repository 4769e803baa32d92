"""Intervals and stop rules of error rates counted over independent units.

Bit errors are not independent: the bits of a QAM symbol, of a code block, of a fade or of an
OFDM slot fail together. What is independent is a *unit*: one row of a BER link (an LDPC code
block, or an uncoded row of bits; every row is its own draw of the channel), one image
transmission of an image link. A unit ``u`` carries ``b`` trials (bits) and ``e_u`` errors;
from the sums a results file keeps (``n`` units, errors ``E = sum e_u``, trials ``N = n b``,
``S = sum e_u^2``) the ratio estimator ``p = E / N`` has the cluster-sampling variance

    var(p) = s^2 / (n b^2),    s^2 = (S - E^2 / n) / (n - 1)

(Cochran, Sampling Techniques, 3rd ed., 1977, sec. 9.2 with clusters of equal size). Its
*design effect* ``deff = var(p) / (p (1 - p) / N)`` is how much the correlation inflates the
variance of independent bits; ``N / deff`` trials are worth as much as independent ones, and
``E / deff`` errors are the *effective errors* the stop rule counts: about ``E`` when errors
are independent, about the number of error-bearing units when each unit's errors come together.
The interval is Clopper-Pearson's over that effective sample size, with Korn and Graubard's
degrees-of-freedom factor ``(z / t_{n-1})^2`` (Korn and Graubard, "Confidence intervals for
proportions with small expected number of positive counts estimated from survey data", Survey
Methodology 24(2), 1998): it stays in [0, 1], is asymmetric near 0, and is Clopper-Pearson's
where errors are independent (``deff`` is not taken below 1).
"""
from __future__ import annotations

import math

from scipy import stats

__all__ = ["clopper_pearson", "design_effect", "effective_errors", "unit_interval"]


def clopper_pearson(errors: float, trials: float,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for an error rate; ``(nan, nan)`` when ``trials == 0``.
    Real-valued (effective) counts are accepted: the beta quantiles need no integers.

    >>> low, high = clopper_pearson(0, 1000)
    >>> low, round(high, 5)  # 1 - 0.025^(1/1000)
    (0.0, 0.00368)
    """
    if trials == 0:
        return math.nan, math.nan
    alpha = 1.0 - confidence
    low = 0.0 if errors == 0 else float(stats.beta.ppf(alpha / 2, errors, trials - errors + 1))
    high = 1.0 if errors == trials else float(stats.beta.ppf(1 - alpha / 2, errors + 1,
                                                             trials - errors))
    return low, high


def design_effect(errors: int, trials: int, units: int, errors_squared: int) -> float:
    """Variance of the error rate over ``units`` independent units of equal size, relative to
    the variance of ``trials`` independent trials (see the module docstring); at least 1.

    1 where nothing can be measured: no errors, nothing but errors, or one trial per unit
    (the units are then the trials). With errors in fewer than two units the spread is unknown:
    ``errors``, as if they all came together (one effective error).

    :param errors: int >= 0; errors over all units, ``sum e_u``.
    :param trials: int >= 1; trials over all units (``units`` times the trials per unit).
    :param units: int >= 1; independent units.
    :param errors_squared: int >= 0; ``sum e_u^2``.
    :output deff: float >= 1.

    >>> design_effect(100, 10_000, 100, 100)  # one error in each of 100 units: 0.99 -> 1
    1.0
    >>> round(design_effect(100, 10_000, 100, 10 * 10 ** 2), 2)  # ten units, ten each
    9.18
    """
    if errors == 0 or errors == trials or units == trials:
        return 1.0
    if units < 2:
        return max(1.0, float(errors))
    p = errors / trials
    per_unit = trials / units
    spread = max(errors_squared - errors * errors / units, 0.0) / (units - 1)  # s^2 of e_u
    variance = spread / (units * per_unit * per_unit)
    return max(1.0, variance / (p * (1.0 - p) / trials))


def effective_errors(errors: int, trials: int, units: int, errors_squared: int) -> float:
    """``errors / deff`` (:func:`design_effect`): the errors that independent trials would need
    for the same precision; the ``target_bit_errors`` stop rule of a BER link counts these.

    >>> effective_errors(100, 10_000, 100, 100)  # independent: all count
    100.0
    >>> round(effective_errors(1000, 100_000, 100, 10 * 100 ** 2), 1)  # 10 units of 100 errors
    10.9
    """
    return errors / design_effect(errors, trials, units, errors_squared)


def unit_interval(errors: int, trials: int, units: int, errors_squared: int,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Interval of an error rate over independent units: Clopper-Pearson on the effective
    sample size ``trials / deff`` (:func:`design_effect`), shrunk by ``(z / t_{units-1})^2``
    for the spread estimated from ``units`` (Korn and Graubard 1998). Clopper-Pearson on the
    trials where the units are the trials (one trial each) or nothing measures a correlation
    (no errors, nothing but errors): with no errors its upper end holds for independent trials
    only. ``(nan, nan)`` without trials, or with errors and fewer than two units.

    :param errors: int >= 0; ``sum e_u``.
    :param trials: int >= 0; trials over all units.
    :param units: int >= 0; independent units, each with ``trials / units`` trials.
    :param errors_squared: int >= 0; ``sum e_u^2``.
    :param confidence: float in (0, 1), default 0.95.
    :output: ``(low, high)``, floats in [0, 1].

    >>> unit_interval(37, 500, 500, 37) == clopper_pearson(37, 500)  # one trial per unit
    True
    """
    if trials == 0:
        return math.nan, math.nan
    if errors == 0 or errors == trials or units == trials:
        return clopper_pearson(errors, trials, confidence)
    if units < 2:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    t = float(stats.t.ppf(0.5 + confidence / 2, units - 1))
    effective = trials / design_effect(errors, trials, units, errors_squared) * (z / t) ** 2
    return clopper_pearson(errors / trials * effective, effective, confidence)
