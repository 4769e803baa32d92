"""Kernel Inception distance (KID): an unbiased distance between image sets, for few images.

KID (Binkowski et al., "Demystifying MMD GANs", ICLR 2018) is the squared maximum mean
discrepancy between two sets of Inception features (the same 2048-d pool features as FID,
:func:`semlink.metrics.fid.inception_features`) under the cubic polynomial kernel
``k(x, y) = (x . y / d + 1) ** 3``, ``d = 2048``. Unlike FID its estimator is unbiased: its
expectation does not depend on the number of images, so values from 8, 24 or 100 images are
comparable (only their spread shrinks), and it can be negative when the sets are close.

The U-statistic averages the kernel over pairs of *independent* samples:

    KID = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j).

A link's reconstructions are not independent of the originals: reconstruction ``y_j`` of
image ``a`` resembles ``x_a`` more than any other original, and the repeats of one image
resemble each other. Given ``groups`` (the image each feature vector belongs to), pairs of the
same group are left out of every mean, which keeps the estimate unbiased for paired sets (with
all groups distinct it is the usual estimator above). torchmetrics' ``poly_mmd`` computes the
usual estimator for sets of equal size (its random subsets aside); tests compare the two.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from scipy import stats

from semlink.channels._checks import check_type

__all__ = ["KID_DEGREE", "KidEstimate", "kernel_inception_distance", "kid_jackknife",
           "polynomial_kernel"]

#: Degree of the polynomial kernel (with gamma = 1 / features and coefficient 1, as published).
KID_DEGREE = 3


def polynomial_kernel(features1: torch.Tensor, features2: torch.Tensor) -> torch.Tensor:
    """``(f1 @ f2.T / d + 1) ** 3``, the KID kernel.

    :input features1: [n, d] float.
    :input features2: [m, d] float.
    :output kernel: [n, m], the inputs' dtype.
    """
    return (features1 @ features2.T / features1.shape[1] + 1.0) ** KID_DEGREE


class KidEstimate(NamedTuple):
    """KID with its leave-one-group-out jackknife uncertainty.

    :ivar kid: float; :func:`kernel_inception_distance` of all rows.
    :ivar standard_error: float; jackknife standard error, NaN for fewer than 3 groups.
    :ivar ci_low: float; lower bound of the 95% interval ``kid -+ t_{0.975, G-1} SE``.
    :ivar ci_high: float; upper bound.
    :ivar groups: int; G, the groups (images) left out one at a time.
    """

    kid: float
    standard_error: float
    ci_low: float
    ci_high: float
    groups: int


def kernel_inception_distance(features1: torch.Tensor, features2: torch.Tensor, *,
                              groups1: torch.Tensor | None = None,
                              groups2: torch.Tensor | None = None) -> float:
    """Unbiased KID (squared MMD, cubic polynomial kernel) between two feature sets.

    Computed in float64 on the features' device; the sets may differ in size.

    :input features1: [n, d] float; e.g. the originals' Inception features.
    :input features2: [m, d] float; e.g. the reconstructions'.
    :param groups1: [n] int or None; the sample each row belongs to (e.g. its image index):
        pairs within one group (in either set, or across the sets) are left out of the
        means. None: every row is its own group.
    :param groups2: [m] int or None; as ``groups1``, in the same numbering.
    :output kid: float; 0 in expectation for sets from one distribution.
    :raises ValueError: If the shapes disagree, or a set or the pairs across them leave no
        pair to average (fewer than two groups).

    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> kernel_inception_distance(x, x + 1.0)
    16.625
    """
    return _kid(_terms(features1, features2, groups1, groups2))


def kid_jackknife(features1: torch.Tensor, features2: torch.Tensor, *,
                  groups1: torch.Tensor | None = None,
                  groups2: torch.Tensor | None = None) -> KidEstimate:
    """KID (as :func:`kernel_inception_distance`) and its jackknife uncertainty: the estimate
    recomputed with each group (an image: its original and all its reconstructions) left out,
    ``SE^2 = (G - 1) / G sum_g (KID_(-g) - mean)^2``, and a 95% Student-t interval with
    ``G - 1`` degrees of freedom. The ``G`` leave-one-out sums come from the full kernel sums
    minus each group's rows and columns, so this costs about what one KID costs.

    :input features1: [n, d] float.
    :input features2: [m, d] float.
    :param groups1: [n] int or None; as for :func:`kernel_inception_distance`.
    :param groups2: [m] int or None.
    :output estimate: :class:`KidEstimate`; NaN uncertainty for fewer than 3 groups.
    :raises ValueError: As :func:`kernel_inception_distance`.
    """
    terms = _terms(features1, features2, groups1, groups2)
    kid = _kid(terms)
    gx, gy = terms[0][2], terms[1][2]
    labels, index = torch.unique(torch.cat([gx, gy]), return_inverse=True)
    num_groups = len(labels)
    if num_groups < 3:
        return KidEstimate(kid, math.nan, math.nan, math.nan, num_groups)
    ix, iy = index[:len(gx)], index[len(gx):]  # group numbers 0..G-1 of the rows
    left_out = torch.zeros(num_groups, dtype=torch.float64, device=gx.device)
    for (sign, kernel, ga, gb, _), (rows, cols) in zip(terms, ((ix, ix), (iy, iy), (ix, iy))):
        distinct = ga[:, None] != gb[None, :]
        weighted = kernel * distinct
        pairs = distinct.to(torch.float64)
        # Pairs within one group are excluded already, so leaving a group out removes its
        # rows and its columns without counting a pair twice.
        sums = weighted.sum() - _by_group(weighted.sum(1), rows, num_groups) \
            - _by_group(weighted.sum(0), cols, num_groups)
        counts = pairs.sum() - _by_group(pairs.sum(1), rows, num_groups) \
            - _by_group(pairs.sum(0), cols, num_groups)
        left_out += sign * sums / counts
    if not bool(torch.isfinite(left_out).all()):  # a set left with one group only
        return KidEstimate(kid, math.nan, math.nan, math.nan, num_groups)
    spread = float(((left_out - left_out.mean()) ** 2).sum())
    se = math.sqrt((num_groups - 1) / num_groups * spread)
    half = float(stats.t.ppf(0.975, num_groups - 1)) * se
    return KidEstimate(kid, se, kid - half, kid + half, num_groups)


def _terms(features1: torch.Tensor, features2: torch.Tensor, groups1: torch.Tensor | None,
           groups2: torch.Tensor | None) -> list[tuple]:
    """``(sign, kernel, groups of rows, groups of columns, name)`` of the three KID means."""
    check_type(features1, torch.Tensor, name="features1")
    check_type(features2, torch.Tensor, name="features2")
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"features must be [n, d] and [m, d]; got {tuple(features1.shape)} "
                         f"and {tuple(features2.shape)}.")
    x, y = features1.double(), features2.double()
    gx = _groups(groups1, len(x), "groups1", x.device)
    gy = _groups(groups2, len(y), "groups2", y.device)
    # A set without groups: each row its own group, shared with no row of the other set.
    if groups1 is None:
        gx = gx + (int(gy.max()) + 1 if len(gy) else 0)
    elif groups2 is None:
        gy = gy + (int(gx.max()) + 1 if len(gx) else 0)
    return [(1.0, polynomial_kernel(x, x), gx, gx, "features1"),
            (1.0, polynomial_kernel(y, y), gy, gy, "features2"),
            (-2.0, polynomial_kernel(x, y), gx, gy, "the two sets")]


def _kid(terms: list[tuple]) -> float:
    """The signed sum of the three means of :func:`_terms`."""
    return float(sum(sign * _mean_over_distinct(kernel, ga, gb, what)
                     for sign, kernel, ga, gb, what in terms))


def _by_group(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Sum of ``values`` (float64) per group index: [num_groups]."""
    return torch.zeros(num_groups, dtype=torch.float64, device=values.device).index_add_(
        0, index, values)


def _groups(groups: torch.Tensor | None, n: int, name: str, device: torch.device
            ) -> torch.Tensor:
    if groups is None:
        return torch.arange(n, device=device)
    check_type(groups, torch.Tensor, name=name)
    if groups.shape != (n,) or groups.is_floating_point() or groups.is_complex():
        raise ValueError(f"`{name}` must be [{n}] integers; got {groups.dtype} "
                         f"{tuple(groups.shape)}.")
    return groups.to(device)


def _mean_over_distinct(kernel: torch.Tensor, groups1: torch.Tensor, groups2: torch.Tensor,
                        what: str) -> torch.Tensor:
    """Mean of ``kernel[i, j]`` over the pairs of different groups."""
    distinct = groups1[:, None] != groups2[None, :]
    pairs = int(distinct.sum())
    if pairs == 0:
        raise ValueError(f"KID needs samples of at least two groups in {what}; got "
                         f"{kernel.shape[0]} x {kernel.shape[1]} of one group.")
    return (kernel * distinct).sum() / pairs
