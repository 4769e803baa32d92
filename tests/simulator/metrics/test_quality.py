"""PSNR, SSIM and MS-SSIM against a NumPy/SciPy implementation of Wang et al., on real
photos with JPEG artefacts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from semlink.metrics import (
    LPIPS,
    ms_ssim,
    ms_ssim_max_scales,
    pairwise_spread,
    psnr_db,
    quantize_8bit,
    ssim,
)
from tests.host_sync import record_host_syncs
from tests.simulator.metrics.conftest import jpeg, to_tensor

MS_BETAS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def np_psnr(ref_u8: np.ndarray, rec_u8: np.ndarray) -> float:
    mse = np.mean((ref_u8.astype(np.float64) - rec_u8.astype(np.float64)) ** 2)
    return 10.0 * np.log10(255.0 ** 2 / mse)


def np_ssim_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and contrast-structure maps of two [3, H, W] float64 images in [0, 255].

    Wang et al. (2004): 11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255.
    Borders: mirror the image about its edge pixel (SciPy "mirror", the same as torch's
    "reflect"), so the maps have the image's size, as torchmetrics does.
    """
    r = np.arange(11) - 5.0
    g = np.exp(-r ** 2 / (2 * 1.5 ** 2))
    g /= g.sum()

    def filt(img):
        out = ndimage.correlate1d(img, g, axis=-1, mode="mirror")
        return ndimage.correlate1d(out, g, axis=-2, mode="mirror")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_maps, cs_maps = [], []
    for ch in range(3):
        x, y = a[ch], b[ch]
        mx, my = filt(x), filt(y)
        vx, vy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2
        cov = filt(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        ssim_maps.append((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs)
        cs_maps.append(cs)
    return np.stack(ssim_maps), np.stack(cs_maps)


def np_ms_ssim(a: np.ndarray, b: np.ndarray, scales: int = 5) -> float:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003) with 2 x 2 mean pooling between scales;
    contrast terms averaged over the valid (unpadded) region, negative terms clipped to 0."""
    betas = MS_BETAS[:scales] / MS_BETAS[:scales].sum()
    value = 1.0
    for s in range(scales):
        smap, cs = np_ssim_maps(a, b)
        if s == scales - 1:
            term = max(smap.mean(), 0.0)
        else:
            term = max(cs[:, 5:-5, 5:-5].mean(), 0.0)
            h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
            a = a[:, :h, :w].reshape(3, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
            b = b[:, :h, :w].reshape(3, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        value *= term ** betas[s]
    return value


@pytest.fixture(scope="module")
def jpeg_pairs(photos):
    """3 photos and their JPEG quality 10 and 30 copies, cropped to the central 256 x 256
    (float64 SSIM is slow on CPU), as [3, 3, 256, 256] float32 tensors."""
    refs = photos[:3]
    crop = (slice(None), slice(None), slice(128, 384), slice(128, 384))
    return {q: (to_tensor(refs)[crop], to_tensor(jpeg(refs, q))[crop]) for q in (10, 30)}


def as_255(t: torch.Tensor) -> np.ndarray:
    return np.round(t.numpy().astype(np.float64) * 255)


@pytest.mark.parametrize("quality", [10, 30])
def test_psnr_matches_numpy_formula(jpeg_pairs, quality):
    ref, rec = jpeg_pairs[quality]
    got = psnr_db(ref, rec)
    assert got.shape == (3,) and got.dtype == torch.float64
    want = [np_psnr(as_255(ref[i]), as_255(rec[i])) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-3)
    assert 20.0 < float(got.min()) and float(got.max()) < 45.0  # plausible JPEG values


@pytest.mark.parametrize("quality", [10, 30])
def test_ssim_matches_numpy_wang(jpeg_pairs, quality):
    ref, rec = jpeg_pairs[quality]
    got = ssim(ref, rec)
    assert got.shape == (3,) and got.dtype == torch.float64
    want = [np_ssim_maps(as_255(rec[i]), as_255(ref[i]))[0].mean() for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    single = ssim(ref, rec, precision="single")
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), want, rtol=0, atol=1e-4)


def test_ms_ssim_matches_numpy_wang(jpeg_pairs):
    ref, rec = jpeg_pairs[10]
    got = ms_ssim(ref[:2], rec[:2])
    assert got.shape == (2,) and got.dtype == torch.float64
    want = [np_ms_ssim(as_255(rec[i]), as_255(ref[i])) for i in range(2)]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    single = ms_ssim(ref[:2], rec[:2], precision="single")
    np.testing.assert_allclose(single.numpy(), want, rtol=0, atol=1e-4)


def test_ms_ssim_fewer_scales_on_small_images(jpeg_pairs):
    ref, rec = jpeg_pairs[10]
    small_ref, small_rec = ref[:1, :, :100, :100], rec[:1, :, :100, :100]
    assert ms_ssim_max_scales(100, 100) == 4
    got = ms_ssim(small_ref, small_rec, scales=4)
    want = np_ms_ssim(as_255(small_rec[0]), as_255(small_ref[0]), scales=4)
    assert float(got[0]) == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match=r"too small for MS-SSIM with 5 scales; it allows at most 4"):
        ms_ssim(small_ref, small_rec)
    with pytest.raises(ValueError, match=r"too small for MS-SSIM; use `ssim`"):
        ms_ssim(ref[:1, :, :10, :10], rec[:1, :, :10, :10], scales=1)
    with pytest.raises(ValueError, match=r"`scales` must be in \[1, 5\]; got 6"):
        ms_ssim(ref, rec, scales=6)
    with pytest.raises(ValueError, match=r"`precision` must be one of 'single', 'double'"):
        ms_ssim(ref, rec, precision="half")


def test_ms_ssim_clips_negative_scale_terms_to_zero(jpeg_pairs):
    """A photo against its negative has negative contrast-structure terms at every scale; they
    are clipped to 0 (torchmetrics' normalize="relu", as the NumPy reference does), so MS-SSIM
    is exactly 0, not NaN from a negative number raised to a fractional beta."""
    ref = jpeg_pairs[10][0][:1, :, :64, :64]
    neg = 1.0 - ref
    assert ms_ssim_max_scales(64, 64) == 3
    want = np_ms_ssim(as_255(neg[0]), as_255(ref[0]), scales=3)
    assert want == 0.0
    for precision in ("double", "single"):
        got = ms_ssim(ref, neg, scales=3, precision=precision)
        assert torch.equal(got, torch.zeros_like(got)), (precision, got)


@pytest.mark.parametrize("side,scales", [(10, 0), (11, 1), (12, 2), (44, 3), (99, 4), (176, 5),
                                         (512, 5)])
def test_ms_ssim_max_scales(side, scales):
    assert ms_ssim_max_scales(side, side) == scales
    assert ms_ssim_max_scales(side, 1000) == scales


def test_worse_jpeg_scores_worse(jpeg_pairs):
    ref, q10 = jpeg_pairs[10]
    _, q30 = jpeg_pairs[30]
    assert bool(torch.all(psnr_db(ref, q10) < psnr_db(ref, q30)))
    for metric in (ssim, ms_ssim):
        worse = metric(ref, q10, precision="single")
        assert bool(torch.all(worse < metric(ref, q30, precision="single"))), metric.__name__


def test_equal_and_subquantum_differences():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x8 = quantize_8bit(x)
    nudged = x8 + 0.4 / 255  # rounds back to the same 8-bit image
    assert torch.all(torch.isinf(psnr_db(x8, nudged)))
    assert torch.equal(ssim(x8, nudged), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(ms_ssim(x8, nudged, scales=2), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"`precision` must be one of 'single', 'double'; got 'half'"):
        ssim(x8, nudged, precision="half")


def test_psnr_one_level_closed_form():
    x = torch.full((1, 3, 8, 8), 100 / 255)
    # torchmetrics takes log(10) in float32: a relative error of ~3e-8 (~1e-6 dB)
    assert float(psnr_db(x, x + 1 / 255)[0]) == pytest.approx(20 * np.log10(255), abs=1e-5)


def test_float32_and_float64_inputs_agree(jpeg_pairs):
    ref, rec = jpeg_pairs[30]
    assert torch.equal(psnr_db(ref, rec), psnr_db(ref.double(), rec.double()))
    assert torch.equal(ssim(ref[:1, :, :64, :64], rec[:1, :, :64, :64]),
                       ssim(ref[:1, :, :64, :64].double(), rec[:1, :, :64, :64].double()))


def test_quantize_8bit_clips_and_rounds():
    x = torch.tensor([-0.2, 0.0, 0.4 / 255, 1.6 / 255, 254.7 / 255, 1.2])
    want = torch.tensor([0.0, 0.0, 0.0, 2.0, 255.0, 255.0]) / 255
    assert torch.equal(quantize_8bit(x), want)
    assert quantize_8bit(x, torch.float64).dtype == torch.float64


@pytest.mark.parametrize("metric", [psnr_db, ssim, ms_ssim])
def test_errors(metric):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"`x` and `x_hat` must have the same shape"):
        metric(x, x[:, :, :8])
    with pytest.raises(ValueError, match=r"`x` must have shape \[batch >= 1, 3, H, W\]"):
        metric(x[0], x[0])
    with pytest.raises(TypeError, match=r"`x_hat` must be a floating tensor"):
        metric(x, (x * 255).to(torch.uint8))
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor"):
        metric(x.numpy(), x)


def test_ssim_too_small():
    x = torch.rand(1, 3, 5, 5)
    with pytest.raises(ValueError, match=r"at least 6 x 6 pixels"):
        ssim(x, x)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
def test_metrics_run_where_the_images_are_without_host_syncs(jpeg_pairs, device):
    """Each per-image metric runs on the images' device, reads nothing back to the host
    (no ``.item()``, no data-dependent shapes, no device-to-host copy) and, on CUDA, agrees
    with the CPU."""
    ref, rec = (t.to(device) for t in jpeg_pairs[30])
    lpips = LPIPS(random_backbone=True, generator=torch.Generator().manual_seed(0)).to(device)
    metrics = {"psnr_db": psnr_db, "ssim": ssim, "ms_ssim": ms_ssim, "lpips": lpips,
               "spread": lambda a, b: pairwise_spread(torch.stack([a, b], 1), psnr_db).mean}
    for name, metric in metrics.items():
        with record_host_syncs() as syncs:
            value = metric(ref, rec)
        assert syncs == [], name
        assert value.device.type == device and value.shape == (ref.shape[0],), name
        if device != "cpu":
            on_cpu = metric.cpu() if isinstance(metric, torch.nn.Module) else metric
            # LPIPS convolves in float32, which cuDNN may run in TF32 (10-bit mantissa)
            tol = 5e-3 if name == "lpips" else 1e-4
            torch.testing.assert_close(value.cpu(), on_cpu(ref.cpu(), rec.cpu()),
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_fid_features_run_where_the_images_are(jpeg_pairs, device, tmp_path, monkeypatch):
    """The Inception file is loaded onto the images' device and run there, without host
    syncs; a small scripted stand-in with the same interface replaces the 87 MB file, which
    does not travel to a GPU machine (the real one is checked on CPU in test_fid.py)."""
    from semlink.metrics import fid

    class StandIn(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [b, 3, 299, 299] -> [b, 2048, 1, 1]
            return torch.nn.functional.adaptive_avg_pool2d(x, 1).repeat(1, 2048 // 3 + 1, 1, 1)[
                :, :2048]

    path = tmp_path / "default_1.pt"
    torch.jit.script(StandIn()).save(str(path))
    monkeypatch.setattr(fid, "fid_model_path", lambda: path)
    monkeypatch.setattr(fid, "FID_MODEL_SHA256", fid.file_sha256(path))
    monkeypatch.setattr(fid, "_MODELS", {})
    ref = jpeg_pairs[30][0].to(device)
    with record_host_syncs() as syncs:
        feats = fid.inception_features(ref)
    assert syncs == []
    assert feats.device.type == device and feats.shape == (ref.shape[0], 2048)
    want = fid.inception_input(ref.cpu()).mean(dim=(2, 3))  # the stand-in's first 3 features
    torch.testing.assert_close(feats[:, :3].cpu(), want, rtol=1e-4, atol=1e-4)
