"""Image-quality metrics: PSNR, SSIM, MS-SSIM, LPIPS, FID, KID, predictability, failure
scoring and confidence intervals.

Every metric scores 8-bit images (inputs are rounded to 1/255 steps first), runs batched on
the images' device and returns per-image ``[batch]`` tensors, except FID and KID, which score
sets.
"""
from semlink.metrics._images import quantize_8bit
from semlink.metrics.confidence import ConfidenceInterval, bootstrap_interval, t_interval
from semlink.metrics.failure import (
    FAILURE_POLICIES,
    PAPER_FAILURE_SCORES,
    FailureScores,
    fid_with_failures,
    score_failures,
)
from semlink.metrics.fid import (
    FID_FEATURES,
    FID_INPUT_SIZE,
    FID_MODEL_SHA256,
    FidMoments,
    FidResult,
    FidStatistics,
    fid_model_path,
    fid_score,
    frechet_distance,
    inception_features,
    inception_input,
    load_fid_statistics,
    load_inception,
    save_fid_statistics,
)
from semlink.metrics.kid import (KID_DEGREE, KidEstimate, kernel_inception_distance,
                                  kid_jackknife, polynomial_kernel)
from semlink.metrics.lpips import (
    BACKBONE_FILES,
    LPIPS,
    backbone_search_dirs,
    find_lpips_backbone,
    lpips_heads_path,
    lpips_unavailable_reason,
)
from semlink.metrics.predictability import PairwiseSpread, pairwise_spread
from semlink.metrics.quality import MS_SSIM_BETAS, ms_ssim, ms_ssim_max_scales, psnr_db, ssim

__all__ = [
    "BACKBONE_FILES",
    "FAILURE_POLICIES",
    "FID_FEATURES",
    "FID_INPUT_SIZE",
    "FID_MODEL_SHA256",
    "KID_DEGREE",
    "KidEstimate",
    "LPIPS",
    "MS_SSIM_BETAS",
    "PAPER_FAILURE_SCORES",
    "ConfidenceInterval",
    "FailureScores",
    "FidMoments",
    "FidResult",
    "FidStatistics",
    "PairwiseSpread",
    "backbone_search_dirs",
    "bootstrap_interval",
    "fid_model_path",
    "fid_score",
    "fid_with_failures",
    "find_lpips_backbone",
    "frechet_distance",
    "inception_features",
    "inception_input",
    "kernel_inception_distance",
    "kid_jackknife",
    "load_fid_statistics",
    "load_inception",
    "lpips_heads_path",
    "lpips_unavailable_reason",
    "ms_ssim",
    "ms_ssim_max_scales",
    "pairwise_spread",
    "polynomial_kernel",
    "psnr_db",
    "quantize_8bit",
    "save_fid_statistics",
    "score_failures",
    "ssim",
    "t_interval",
]
