"""Failure scoring: the paper's constants, the concealed-image policy, and FID mixing."""
from __future__ import annotations

import pytest
import torch

from semlink.metrics import PAPER_FAILURE_SCORES, fid_with_failures, score_failures


@pytest.fixture
def measured():
    return {"psnr_db": torch.tensor([31.0, 12.5, 28.0, 9.0], dtype=torch.float64),
            "ssim": torch.tensor([0.9, 0.2, 0.8, 0.1]),
            "lpips": torch.tensor([0.1, 0.7, 0.2, 0.8])}


def test_paper_policy_uses_constants(measured):
    failed = torch.tensor([False, True, False, True])
    out = score_failures(measured, failed, "paper")
    assert torch.equal(out.metrics["psnr_db"],
                       torch.tensor([31.0, 0.0, 28.0, 0.0], dtype=torch.float64))
    assert torch.equal(out.metrics["ssim"], torch.tensor([0.9, 0.0, 0.8, 0.0]))
    assert torch.equal(out.metrics["lpips"], torch.tensor([0.1, 1.0, 0.2, 1.0]))
    assert out.num_failed.dtype == torch.int64 and int(out.num_failed) == 2
    assert PAPER_FAILURE_SCORES == {"psnr_db": 0.0, "ssim": 0.0, "ms_ssim": 0.0, "lpips": 1.0,
                                    "fid": 500.0}


def test_concealed_policy_keeps_values_and_counts(measured):
    failed = torch.tensor([True, True, False, False])
    out = score_failures(measured, failed, "concealed")
    for name, values in measured.items():
        assert out.metrics[name] is values
    assert int(out.num_failed) == 2


def test_no_failures_change_nothing(measured):
    out = score_failures(measured, torch.zeros(4, dtype=torch.bool), "paper")
    for name, values in measured.items():
        assert torch.equal(out.metrics[name], values)
    assert int(out.num_failed) == 0


def test_paper_policy_keeps_dtype_and_exact_values():
    """Scored metrics keep the dtype they came in (FailureScores' contract): a float64 PSNR of
    31.123456789 dB survives bit for bit (float32 would round it to 31.12345695...), and the
    failure constant is written in that dtype."""
    psnr = torch.tensor([31.123456789, 12.5], dtype=torch.float64)
    lpips = torch.tensor([0.1, 0.7], dtype=torch.float16)
    out = score_failures({"psnr_db": psnr, "lpips": lpips}, torch.tensor([False, True]), "paper")
    assert out.metrics["psnr_db"].dtype == torch.float64
    assert out.metrics["psnr_db"][0].item() == 31.123456789 and out.metrics["psnr_db"][1] == 0.0
    assert out.metrics["lpips"].dtype == torch.float16
    assert out.metrics["lpips"].tolist() == [lpips[0].item(), 1.0]


def test_custom_scores_and_unknown_metric(measured):
    failed = torch.tensor([True, False, False, False])
    out = score_failures({"dists": torch.tensor([0.1, 0.2, 0.3, 0.4])}, failed, "paper",
                         scores={"dists": 1.0})
    assert torch.equal(out.metrics["dists"], torch.tensor([1.0, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match=r"`scores` must give a failure score for 'dists'"):
        score_failures({"dists": torch.zeros(4)}, failed, "paper")


def test_errors(measured):
    failed = torch.tensor([True, False, False, False])
    with pytest.raises(ValueError, match=r"`policy` must be one of 'paper', 'concealed'; got 'drop'"):
        score_failures(measured, failed, "drop")
    with pytest.raises(TypeError, match=r"`failed` must be a bool tensor"):
        score_failures(measured, failed.int(), "paper")
    with pytest.raises(ValueError, match=r"`metrics\['ssim'\]` of shape \(3,\) must match"):
        score_failures({"ssim": torch.zeros(3)}, failed, "paper")
    with pytest.raises(TypeError, match=r"`metrics\['ssim'\]` must be a float tensor"):
        score_failures({"ssim": torch.zeros(4, dtype=torch.int64)}, failed, "paper")
    with pytest.raises(ValueError, match=r"`failed` must have shape \[batch\]"):
        score_failures(measured, failed.view(2, 2), "paper")


@pytest.mark.parametrize("fid_ok,failed,total,policy,want", [
    (40.0, 0, 4, "paper", 40.0),
    (40.0, 1, 4, "paper", (3 * 40.0 + 500.0) / 4),
    (float("nan"), 4, 4, "paper", 500.0),
    (120.0, 3, 4, "concealed", 120.0),
])
def test_fid_with_failures(fid_ok, failed, total, policy, want):
    assert fid_with_failures(fid_ok, failed, total, policy) == pytest.approx(want)


def test_fid_with_failures_errors():
    with pytest.raises(ValueError, match=r"`num_failed` must be in \[0, 4\]; got 5"):
        fid_with_failures(10.0, 5, 4, "paper")
    with pytest.raises(TypeError, match=r"`num_images` must be int; got True"):
        fid_with_failures(10.0, 0, True, "paper")
    with pytest.raises(ValueError, match=r"`policy` must be one of"):
        fid_with_failures(10.0, 0, 4, "mean")
