"""Scoring images whose transmission failed (decoder error, CRC failure, no codestream).

Two policies, chosen per link:

* ``"paper"``: a failed image gets fixed worst-case scores instead of being measured
  (the paper's JPEG2000 + LDPC baseline: PSNR 0 dB, SSIM 0, LPIPS 1, FID 500);
  see :data:`PAPER_FAILURE_SCORES`.
* ``"concealed"``: the image the receiver shows instead (e.g. a grey or error-concealed
  image) is scored like any other; the metrics are left as they are.

Either way the number of failures is reported, so rates can be formed after merging runs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import torch

from semlink.channels._checks import check_int, check_one_of, check_type

__all__ = ["FAILURE_POLICIES", "PAPER_FAILURE_SCORES", "FailureScores", "fid_with_failures",
           "score_failures"]

FailurePolicy = Literal["paper", "concealed"]
#: Accepted values of a ``policy`` argument.
FAILURE_POLICIES = ("paper", "concealed")
#: Scores of a failed image under the "paper" policy, keyed by metric name.
PAPER_FAILURE_SCORES = {"psnr_db": 0.0, "ssim": 0.0, "ms_ssim": 0.0, "lpips": 1.0, "fid": 500.0}


class FailureScores(NamedTuple):
    """Per-image metrics after applying a failure policy.

    :ivar metrics: dict name -> [batch] tensor; same keys, shapes, dtypes and devices as given.
    :ivar num_failed: [], int64 tensor on the mask's device; failed images in the batch.
    """

    metrics: dict[str, torch.Tensor]
    num_failed: torch.Tensor


def score_failures(metrics: Mapping[str, torch.Tensor], failed: torch.Tensor,
                   policy: FailurePolicy,
                   scores: Mapping[str, float] | None = None) -> FailureScores:
    """Apply a failure policy to per-image metric values.

    :param policy: "paper" (failed images get the fixed ``scores``) or "concealed" (values
        are kept: they already score the concealed image).
    :param scores: Failure score per metric name for "paper"; None = :data:`PAPER_FAILURE_SCORES`.
    :input metrics: Mapping name -> [batch] float tensor, measured on the received images
        (whatever they are for failed ones).
    :input failed: [batch], bool; True where the transmission failed.
    :output scored: :class:`FailureScores`.
    :raises TypeError: If ``failed`` is not a bool tensor or a metric not a float tensor.
    :raises ValueError: If ``policy`` is unknown, a shape differs from ``failed``, or
        "paper" meets a metric without a failure score.

    >>> out = score_failures({"psnr_db": torch.tensor([31.0, 12.0])},
    ...                      torch.tensor([False, True]), "paper")
    >>> out.metrics["psnr_db"], int(out.num_failed)
    (tensor([31.,  0.]), 1)
    """
    check_one_of(policy, FAILURE_POLICIES, name="policy")
    if not isinstance(failed, torch.Tensor) or failed.dtype != torch.bool:
        raise TypeError(f"`failed` must be a bool tensor; got {getattr(failed, 'dtype', failed)!r}.")
    if failed.ndim != 1:
        raise ValueError(f"`failed` must have shape [batch]; got {tuple(failed.shape)}.")
    table = PAPER_FAILURE_SCORES if scores is None else dict(scores)
    out = {}
    for name, values in metrics.items():
        if not isinstance(values, torch.Tensor) or not values.is_floating_point():
            raise TypeError(f"`metrics[{name!r}]` must be a float tensor; got {type(values).__name__}.")
        if values.shape != failed.shape:
            raise ValueError(f"`metrics[{name!r}]` of shape {tuple(values.shape)} must match "
                             f"`failed` of shape {tuple(failed.shape)}.")
        if policy == "concealed":
            out[name] = values
            continue
        if name not in table:
            raise ValueError(f"`scores` must give a failure score for {name!r}; "
                             f"has {sorted(table)}.")
        fill = torch.full_like(values, table[name])
        out[name] = torch.where(failed.to(values.device), fill, values)
    return FailureScores(out, failed.sum())


def fid_with_failures(fid_decoded: float, num_failed: int, num_images: int,
                      policy: FailurePolicy, failure_fid: float = PAPER_FAILURE_SCORES["fid"]
                      ) -> float:
    """FID of a set in which some transmissions failed.

    FID is a set statistic, so a per-image constant cannot replace single images. Under
    "paper" this returns the image-weighted mix ``(n_ok * fid_decoded + n_failed *
    failure_fid) / n`` (FID of the decoded images, ``failure_fid`` for the failed share),
    which is ``failure_fid`` when everything failed, just as the per-image constants enter
    the mean PSNR. ``fid_decoded`` is then ignored when ``num_failed == num_images`` (pass
    nan). Under "concealed", ``fid_decoded`` must already be the FID of all received images,
    concealed ones included, and is returned unchanged.

    :param fid_decoded: float; FID of the decoded images ("paper") or of all ("concealed").
    :param num_failed: int in [0, num_images].
    :param num_images: int >= 1.
    :param policy: "paper" or "concealed".
    :param failure_fid: float >= 0, default 500.
    :output fid: float.
    :raises ValueError: If a count or the policy is invalid.

    >>> fid_with_failures(40.0, 1, 4, "paper")
    155.0
    """
    check_one_of(policy, FAILURE_POLICIES, name="policy")
    check_int(num_images, name="num_images", low=1)
    check_int(num_failed, name="num_failed", low=0, high=num_images)
    check_type(fid_decoded, (int, float), name="fid_decoded")
    check_type(failure_fid, (int, float), name="failure_fid")
    if policy == "concealed":
        return float(fid_decoded)
    if num_failed == num_images:
        return float(failure_fid)
    ok = num_images - num_failed
    return (ok * float(fid_decoded) + num_failed * float(failure_fid)) / num_images
