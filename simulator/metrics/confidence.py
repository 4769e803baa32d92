"""Confidence intervals for the mean of per-image metric values at one SNR.

:func:`t_interval` is the Student-t interval (normal data, or many images);
:func:`bootstrap_interval` is the percentile bootstrap (no normality assumption; needs a
few tens of values to be meaningful). Both take the samples on any device and return
Python floats; for a single value the bounds are NaN (no spread can be estimated).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from scipy import stats

from semlink.channels._checks import check_int, check_type

__all__ = ["ConfidenceInterval", "bootstrap_interval", "t_interval"]


class ConfidenceInterval(NamedTuple):
    """A sample mean with the bounds of its confidence interval (NaN bounds for n = 1).

    :ivar mean: float; sample mean.
    :ivar low: float; lower bound.
    :ivar high: float; upper bound.
    """

    mean: float
    low: float
    high: float


def t_interval(samples: torch.Tensor, confidence: float = 0.95) -> ConfidenceInterval:
    """Student-t confidence interval for the mean: ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)``.

    Equal to ``scipy.stats.t.interval(confidence, n - 1, loc=mean, scale=s / sqrt(n))``
    with ``s`` the sample standard deviation (ddof = 1). Zero spread gives low = high = mean.

    :param confidence: float in (0, 1), default 0.95.
    :input samples: [n], float, n >= 1; e.g. the PSNR of each image at one SNR.
    :output interval: :class:`ConfidenceInterval`; low/high NaN when n = 1.
    :raises TypeError: If ``samples`` is not a floating tensor.
    :raises ValueError: If ``samples`` is not 1-D and non-empty or ``confidence`` not in (0, 1).

    >>> t_interval(torch.tensor([1.0, 2.0, 3.0]))  # doctest: +ELLIPSIS
    ConfidenceInterval(mean=2.0, low=-0.48..., high=4.48...)
    """
    x = _check_samples(samples, confidence)
    n = x.shape[0]
    mean = float(x.mean())
    if n == 1:
        return ConfidenceInterval(mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(x.std()) / math.sqrt(n)
    return ConfidenceInterval(mean, mean - half, mean + half)


def bootstrap_interval(samples: torch.Tensor, confidence: float = 0.95, *,
                       num_resamples: int = 10_000,
                       generator: torch.Generator | None = None) -> ConfidenceInterval:
    """Percentile-bootstrap confidence interval for the mean.

    Draws ``num_resamples`` resamples of size n with replacement (indices from ``generator``
    on the samples' device), takes each resample's mean, and returns the ``(1 - c) / 2`` and
    ``(1 + c) / 2`` quantiles of those means (linear interpolation). Same generator state ->
    same interval.

    :param confidence: float in (0, 1), default 0.95.
    :param num_resamples: int >= 1, default 10000.
    :param generator: torch.Generator on the samples' device; None = torch's global RNG.
    :input samples: [n], float, n >= 1.
    :output interval: :class:`ConfidenceInterval`; low/high NaN when n = 1.
    :raises TypeError: If ``samples`` is not a floating tensor or an argument's type is wrong.
    :raises ValueError: If ``samples`` is not 1-D and non-empty or an argument is out of range.
    """
    x = _check_samples(samples, confidence)
    check_int(num_resamples, name="num_resamples", low=1)
    if generator is not None:
        check_type(generator, torch.Generator, name="generator")
    n = x.shape[0]
    mean = float(x.mean())
    if n == 1:
        return ConfidenceInterval(mean, math.nan, math.nan)
    idx = torch.randint(n, (num_resamples, n), generator=generator, device=x.device)
    means = x[idx].mean(dim=1)  # [num_resamples]
    q = torch.tensor([0.5 - confidence / 2, 0.5 + confidence / 2], dtype=x.dtype, device=x.device)
    low, high = torch.quantile(means, q).tolist()
    return ConfidenceInterval(mean, low, high)


def _check_samples(samples: torch.Tensor, confidence: float) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
        raise TypeError("`samples` must be a floating tensor; got "
                        f"{getattr(samples, 'dtype', type(samples).__name__)}.")
    if samples.ndim != 1 or samples.shape[0] < 1:
        raise ValueError(f"`samples` must have shape [n >= 1]; got {tuple(samples.shape)}.")
    check_type(confidence, float, name="confidence")
    if not 0.0 < confidence < 1.0:  # NaN fails too
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    return samples.to(torch.float64)
