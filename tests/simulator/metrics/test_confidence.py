"""Confidence intervals: Student-t against SciPy, bootstrap determinism and coverage."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from semlink.metrics import bootstrap_interval, t_interval

DATA = torch.tensor([0.21, 0.25, 0.19, 0.30, 0.27, 0.22, 0.24, 0.26], dtype=torch.float64)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(confidence):
    x = DATA.numpy()
    want = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    got = t_interval(DATA, confidence)
    assert got.mean == pytest.approx(x.mean(), rel=1e-14)
    assert (got.low, got.high) == pytest.approx(want, rel=1e-12)


def test_t_interval_hand_computed():
    # mean 2, s = 1, n = 3; for 2 degrees of freedom t_p = (2p - 1) / sqrt(2 p (1 - p))
    got = t_interval(torch.tensor([1.0, 2.0, 3.0]))
    p = 0.975
    half = (2 * p - 1) / math.sqrt(2 * p * (1 - p)) / math.sqrt(3)
    assert got == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-12)


def test_single_sample_has_nan_bounds():
    for interval in (t_interval(torch.tensor([3.5])), bootstrap_interval(torch.tensor([3.5]))):
        assert interval.mean == 3.5 and math.isnan(interval.low) and math.isnan(interval.high)


def test_constant_samples_have_zero_width():
    x = torch.full((5,), 0.4)
    assert t_interval(x) == pytest.approx((0.4, 0.4, 0.4))
    assert bootstrap_interval(x, generator=torch.Generator().manual_seed(0)) == pytest.approx(
        (0.4, 0.4, 0.4))


def test_bootstrap_is_deterministic_with_a_seed():
    a = bootstrap_interval(DATA, generator=torch.Generator().manual_seed(7))
    b = bootstrap_interval(DATA, generator=torch.Generator().manual_seed(7))
    c = bootstrap_interval(DATA, generator=torch.Generator().manual_seed(8))
    assert a == b and a != c
    assert a.low < a.mean < a.high


def test_bootstrap_agrees_with_t_interval_for_normal_data():
    # n = 400 normal values: the percentile bootstrap half-width is z * s / sqrt(n) up to the
    # Monte-Carlo error of 4000 resamples (~2% of the half-width) and t/z - 1 = 0.3%.
    x = torch.randn(400, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    boot = bootstrap_interval(x, num_resamples=4000, generator=torch.Generator().manual_seed(4))
    t = t_interval(x)
    assert boot.mean == t.mean
    assert (boot.high - boot.low) == pytest.approx(t.high - t.low, rel=0.08)
    assert boot.low == pytest.approx(t.low, abs=0.1 * (t.high - t.low))


def test_errors():
    with pytest.raises(ValueError, match=r"`samples` must have shape \[n >= 1\]; got \(0,\)"):
        t_interval(torch.zeros(0))
    with pytest.raises(ValueError, match=r"`samples` must have shape \[n >= 1\]; got \(2, 2\)"):
        bootstrap_interval(torch.zeros(2, 2))
    with pytest.raises(TypeError, match=r"`samples` must be a floating tensor"):
        t_interval(torch.arange(3))
    with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\); got 1.0"):
        t_interval(DATA, 1.0)
    with pytest.raises(TypeError, match=r"`confidence` must be float; got 95"):
        t_interval(DATA, 95)
    with pytest.raises(ValueError, match=r"`num_resamples` must be in \[1, inf\]; got 0"):
        bootstrap_interval(DATA, num_resamples=0)
    with pytest.raises(TypeError, match=r"`generator` must be Generator"):
        bootstrap_interval(DATA, generator=np.random.default_rng(0))
