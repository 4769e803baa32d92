"""LPIPS: the lpips heads load, the network equals the LPIPS v0.1 definition re-computed
here with torch.nn.functional (random backbone weights, real photos), and a missing
backbone makes LPIPS unavailable with a clear message."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from semlink.errors import InputError
from semlink.metrics import (
    BACKBONE_FILES,
    LPIPS,
    find_lpips_backbone,
    lpips_heads_path,
    lpips_unavailable_reason,
)
from tests.simulator.metrics.conftest import jpeg, to_tensor

# lpips.ScalingLayer, copied from the lpips 0.1.4 source
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def reference_lpips(x: torch.Tensor, y: torch.Tensor, state: dict, net: str) -> torch.Tensor:
    """LPIPS v0.1 from its definition, with the weights in ``state`` (the module's state dict)."""
    def w(i):
        return state[f"net.features.{i}.weight"], state[f"net.features.{i}.bias"]

    def features(img):
        h = (2 * img - 1 - SHIFT) / SCALE
        taps = []
        if net == "alex":
            h = F.relu(F.conv2d(h, *w(0), stride=4, padding=2))
            taps.append(h)
            h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), *w(3), padding=2))
            taps.append(h)
            h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), *w(6), padding=1))
            taps.append(h)
            h = F.relu(F.conv2d(h, *w(8), padding=1))
            taps.append(h)
            h = F.relu(F.conv2d(h, *w(10), padding=1))
            taps.append(h)
        else:  # VGG16: blocks of 2, 2, 3, 3, 3 convs; tap after each block, pool between
            idx = 0
            for block, convs in enumerate((2, 2, 3, 3, 3)):
                if block:
                    h = F.max_pool2d(h, 2, 2)
                    idx += 1
                for _ in range(convs):
                    h = F.relu(F.conv2d(h, *w(idx), padding=1))
                    idx += 2
                taps.append(h)
        return taps

    total = torch.zeros(x.shape[0])
    for k, (a, b) in enumerate(zip(features(x), features(y))):
        a = a / (torch.sqrt((a ** 2).sum(dim=1, keepdim=True)) + 1e-10)
        b = b / (torch.sqrt((b ** 2).sum(dim=1, keepdim=True)) + 1e-10)
        weights = state[f"lin{k}.model.1.weight"].view(1, -1, 1, 1)
        total += ((a - b) ** 2 * weights).sum(dim=1).mean(dim=(1, 2))
    return total


@pytest.fixture(scope="module")
def photo_pair(photos):
    """2 photos and their JPEG quality 10 copies, central 256 x 256, as tensors."""
    crop = (slice(None), slice(None), slice(128, 384), slice(128, 384))
    return to_tensor(photos[4:6])[crop], to_tensor(jpeg(photos[4:6], 10))[crop]


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """A torch hub cache and home directory without any backbone file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def random_lpips(net: str = "alex", seed: int = 0, **kwargs) -> LPIPS:
    return LPIPS(net=net, random_backbone=True, generator=torch.Generator().manual_seed(seed),
                 **kwargs)


@pytest.mark.parametrize("net,channels", [("alex", (64, 192, 384, 256, 256)),
                                          ("vgg", (64, 128, 256, 512, 512))])
def test_heads_load_from_lpips_package(net, channels):
    path = lpips_heads_path(net)
    spec = importlib.util.find_spec("lpips")
    assert path == Path(spec.submodule_search_locations[0]) / "weights" / "v0.1" / f"{net}.pth"
    stored = torch.load(path, map_location="cpu", weights_only=True)
    model = random_lpips(net)
    for k, c in enumerate(channels):
        weight = model.state_dict()[f"lin{k}.model.1.weight"]
        assert weight.shape == (1, c, 1, 1)
        assert torch.equal(weight, stored[f"lin{k}.model.1.weight"])
        assert float(weight.min()) >= 0.0 and float(weight.max()) > 0.0


def test_alexnet_matches_definition_on_photos(photo_pair):
    ref, rec = photo_pair
    model = random_lpips("alex", seed=1)
    got = model(ref, rec)
    assert got.shape == (2,) and got.dtype == torch.float32
    want = reference_lpips(ref, rec, model.state_dict(), "alex")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert bool(torch.all(got > 0))


def test_vgg_matches_definition_on_photos(photo_pair):
    ref, rec = (t[:, :, :64, :64] for t in photo_pair)  # VGG16 is heavy on CPU
    model = random_lpips("vgg", seed=2)
    got = model(ref, rec)
    want = reference_lpips(ref, rec, model.state_dict(), "vgg")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_unit_normalisation_makes_lpips_blind_to_the_backbone_scale(photo_pair):
    """With zero biases the backbone is positively homogeneous: scaling every conv by 0.1 scales
    tap k by 0.1^(k+1) (the deepest features get norms ~1e-4). lpips normalises each feature
    vector to unit length with only a 1e-10 guard, so the distance must not change (to ~1e-6)
    and must still equal the definition; a larger guard would shrink the deep taps."""
    ref, rec = (t[:, :, :64, :64] for t in photo_pair)
    model = random_lpips("alex", seed=1)
    before = model(ref, rec)
    with torch.no_grad():
        for layer in model.net.features:
            if isinstance(layer, torch.nn.Conv2d):
                assert not layer.bias.any()
                layer.weight.mul_(0.1)
    after = model(ref, rec)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=0.0)
    torch.testing.assert_close(after, reference_lpips(ref, rec, model.state_dict(), "alex"),
                               rtol=1e-5, atol=1e-7)


def test_random_backbone_is_he_normal_with_zero_bias():
    """random_backbone draws each conv weight from N(0, 2 / fan_in) (He normal), biases 0."""
    model = random_lpips("alex", seed=6)
    convs = [m for m in model.net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        w = conv.weight.double()
        fan_in = w[0].numel()  # 363, 1600, 1728, 3456, 2304
        # >= 23 000 draws: the sample variance has a relative sigma <= 0.01; 5 % is > 5 sigma
        assert float(w.var()) == pytest.approx(2.0 / fan_in, rel=0.05)
        assert abs(float(w.mean())) < 5 * (2.0 / fan_in / w.numel()) ** 0.5
        assert not conv.bias.any()


@pytest.mark.parametrize("net,side", [("alex", 32), ("vgg", 16)])
def test_smallest_image_side_is_enforced_exactly(net, side):
    """The documented minimum side (32 px for alex, 16 for vgg) works; one pixel less is refused."""
    model = random_lpips(net)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    assert model(x, 1 - x).shape == (1,)
    with pytest.raises(ValueError, match=rf"at least {side} pixels a side for LPIPS-{net}"):
        model(x[:, :, 1:, :], 1 - x[:, :, 1:, :])


def test_identical_images_score_exactly_zero(photo_pair):
    ref, rec = photo_pair
    model = random_lpips()
    assert torch.equal(model(ref, ref), torch.zeros(2))
    mixed = model(torch.cat([ref, rec]), torch.cat([ref, ref]))
    assert torch.equal(mixed[:2], torch.zeros(2)) and bool(torch.all(mixed[2:] > 0))


def test_same_seed_same_weights_and_quantisation(photo_pair):
    ref, _ = photo_pair
    a, b, c = random_lpips(seed=3), random_lpips(seed=3), random_lpips(seed=4)
    assert torch.equal(a.net.features[0].weight, b.net.features[0].weight)
    assert not torch.equal(a.net.features[0].weight, c.net.features[0].weight)
    nudged = ref + 0.3 / 255  # rounds back to the same 8-bit image
    assert torch.equal(a(ref, nudged), torch.zeros(2))
    raw = random_lpips(seed=3, quantize=False)
    assert bool(torch.all(raw(ref, nudged) > 0))


def test_missing_backbone_is_unavailable_with_clear_message(no_hub):
    assert find_lpips_backbone("alex") is None
    reason = lpips_unavailable_reason("alex")
    assert "alexnet-owt-7be5be79.pth" in reason and str(no_hub / "torch_home") in reason
    with pytest.raises(InputError, match=r"LPIPS-alex is unavailable: .*alexnet-owt-7be5be79\.pth"
                                         r" was not found; put it in .*torch_home/hub/checkpoints"):
        LPIPS()
    with pytest.raises(InputError, match=r"LPIPS-vgg is unavailable: .*vgg16-397923af\.pth"):
        LPIPS(net="vgg")
    with pytest.raises(InputError, match=r"nowhere\.pth does not exist"):
        LPIPS(backbone_path=no_hub / "nowhere.pth")


def test_torchvision_checkpoint_loads_from_hub_cache(no_hub):
    source = random_lpips(seed=5)
    state = {k.removeprefix("net."): v for k, v in source.state_dict().items()
             if k.startswith("net.")}
    state["classifier.1.weight"] = torch.zeros(4096, 9216)[:2]  # other keys are ignored
    folder = no_hub / "torch_home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / BACKBONE_FILES["alex"]
    torch.save(state, path)
    assert find_lpips_backbone("alex") == path
    assert lpips_unavailable_reason("alex") is None
    model = LPIPS(verify_backbone=False)
    for key in ("features.0.weight", "features.10.bias"):
        assert torch.equal(model.net.state_dict()[key], state[key])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(x, 1 - x), source(x, 1 - x))
    with pytest.raises(InputError, match=r"SHA-256 [0-9a-f]{64} must start with 7be5be79"):
        LPIPS()
    del state["features.8.weight"]
    torch.save(state, path)
    with pytest.raises(InputError, match=r"lacks \['features\.8\.weight'\]"):
        LPIPS(verify_backbone=False)
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(InputError, match=r"lacks"):
        LPIPS(verify_backbone=False)


def test_bad_heads_file(tmp_path):
    bad = tmp_path / "alex.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, bad)
    with pytest.raises(InputError, match=r"LPIPS heads .*alex\.pth: keys must be"):
        random_lpips(heads_path=bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"LPIPS heads .*alex\.pth: cannot load"):
        random_lpips(heads_path=bad)


def test_argument_errors(photo_pair):
    ref, rec = photo_pair
    with pytest.raises(ValueError, match=r"`net` must be one of 'alex', 'vgg'; got 'squeeze'"):
        LPIPS(net="squeeze", random_backbone=True)
    with pytest.raises(ValueError, match=r"`backbone_path` must be None when `random_backbone`"):
        LPIPS(random_backbone=True, backbone_path="x.pth")
    with pytest.raises(TypeError, match=r"`random_backbone` must be bool; got 1"):
        LPIPS(random_backbone=1)
    model = random_lpips()
    with pytest.raises(ValueError, match=r"at least 32 pixels a side for LPIPS-alex"):
        model(ref[:, :, :16, :16], rec[:, :, :16, :16])
    with pytest.raises(ValueError, match=r"`x` and `x_hat` must have the same shape"):
        model(ref, rec[:1])
