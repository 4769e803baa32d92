"""Predictability: how much repeated transmissions of one image differ from each other.

The paper sends one image R = 25 times at fixed settings and reports the mean and standard
deviation of LPIPS over all R (R - 1) / 2 pairs of reconstructions: a deterministic link
scores 0 +- 0, a generative receiver that invents different details each time scores higher.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from semlink.channels._checks import check_int
from semlink.metrics.lpips import LPIPS

__all__ = ["PairwiseSpread", "pairwise_spread"]

PairMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PairwiseSpread(NamedTuple):
    """Mean and standard deviation of a metric over all pairs of reconstructions.

    :ivar mean: [] or [images], float; mean over the pairs.
    :ivar std: Same shape; sample standard deviation over the pairs (``correction=1``);
        NaN when there is a single pair (R = 2).
    :ivar num_pairs: int; R (R - 1) / 2.
    """

    mean: torch.Tensor
    std: torch.Tensor
    num_pairs: int


def pairwise_spread(reconstructions: torch.Tensor, metric: PairMetric | None = None, *,
                    batch_size: int = 16) -> PairwiseSpread:
    """Mean and std of ``metric`` over all unordered pairs (i < j) of R reconstructions.

    ``metric`` is any per-image pair metric ``metric(a, b) -> [batch]``: by default LPIPS-alex
    (the paper's choice; raises :class:`~semlink.errors.InputError` when its backbone is
    missing, see :func:`~semlink.metrics.lpips.lpips_unavailable_reason`), or e.g.
    :func:`~semlink.metrics.quality.psnr_db` / :func:`~semlink.metrics.quality.ssim`.
    Pairs are scored in chunks of ``batch_size`` on the images' device. A distance metric
    gives exactly 0 +- 0 for identical reconstructions; PSNR gives ``inf`` there.

    :param metric: Callable ``(a, b) -> [batch]`` for ``a``, ``b`` [batch, 3, H, W]; None =
        a new :class:`~semlink.metrics.lpips.LPIPS` on the images' device (pass an
        instance to reuse one across calls).
    :param batch_size: int >= 1, default 16; pairs per ``metric`` call (memory only).
    :input reconstructions: [R, 3, H, W] for one image, or [images, R, 3, H, W]; float in
        [0, 1]; R >= 2.
    :output spread: :class:`PairwiseSpread`; ``mean``/``std`` of shape [] or [images] in
        the metric's dtype, on the images' device.
    :raises InputError: If ``metric`` is None and LPIPS is unavailable.
    :raises TypeError: If ``reconstructions`` is not a floating tensor or ``metric`` is not
        callable.
    :raises ValueError: If the shape is wrong, R < 2, or ``metric`` returns a wrong shape.
    """
    if not isinstance(reconstructions, torch.Tensor) or not reconstructions.is_floating_point():
        raise TypeError("`reconstructions` must be a floating tensor; got "
                        f"{getattr(reconstructions, 'dtype', type(reconstructions).__name__)}.")
    if metric is not None and not callable(metric):
        raise TypeError(f"`metric` must be callable; got {type(metric).__name__}.")
    check_int(batch_size, name="batch_size", low=1)
    single = reconstructions.ndim == 4
    recs = reconstructions.unsqueeze(0) if single else reconstructions  # [images, R, 3, H, W]
    if recs.ndim != 5 or recs.shape[2] != 3 or recs.shape[1] < 2 or recs.shape[0] < 1:
        raise ValueError("`reconstructions` must have shape [R >= 2, 3, H, W] or "
                         f"[images, R >= 2, 3, H, W]; got {tuple(reconstructions.shape)}.")
    if metric is None:
        metric = LPIPS().to(recs.device)
    images, count = recs.shape[:2]
    first, second = torch.triu_indices(count, count, offset=1, device=recs.device)  # [pairs]
    num_pairs = first.shape[0]
    image_idx = torch.arange(images, device=recs.device).repeat_interleave(num_pairs)
    first, second = first.repeat(images), second.repeat(images)  # [images * pairs]
    values = []
    for lo in range(0, images * num_pairs, batch_size):
        sl = slice(lo, lo + batch_size)
        a = recs[image_idx[sl], first[sl]]  # [chunk, 3, H, W]
        b = recs[image_idx[sl], second[sl]]
        out = metric(a, b)
        if not isinstance(out, torch.Tensor) or out.shape != (a.shape[0],):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"`metric` must return a [{a.shape[0]}] tensor; got {got}.")
        values.append(out)
    per_pair = torch.cat(values).reshape(images, num_pairs)
    mean = per_pair.mean(dim=1)
    std = per_pair.std(dim=1) if num_pairs > 1 else torch.full_like(mean, float("nan"))
    if single:
        mean, std = mean[0], std[0]
    return PairwiseSpread(mean, std, int(num_pairs))
