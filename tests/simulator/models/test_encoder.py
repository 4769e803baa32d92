"""Tests of the semantic encoder: torchvision key layout, output shapes, BN and validation."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from semlink.models.encoder import EfficientNetV2Features, SemanticEncoder

# EfficientNetV2-S rows of Tan & Le (2021), table 4: (fused, expand, c_in, c_out, layers);
# kernel 3 everywhere, SE ratio 0.25 of the block input channels in the MBConv stages.
_TABLE = [(True, 1, 24, 24, 2), (True, 4, 24, 48, 4), (True, 4, 48, 64, 4),
          (False, 4, 64, 128, 6), (False, 6, 128, 160, 9), (False, 6, 160, 256, 15)]
# torchvision: EfficientNet_V2_S_Weights.IMAGENET1K_V1 num_params; classifier Linear(1280, 1000)
_PUBLISHED_TOTAL = 21_458_488
_CLASSIFIER = 1280 * 1000 + 1000
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _torchvision_features_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``efficientnet_v2_s().features``, written from the table."""
    layout: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, c_in: int, c_out: int, k: int, groups: int = 1) -> None:
        layout[f"{prefix}.0.weight"] = (c_out, c_in // groups, k, k)
        for name in _BN_KEYS:
            layout[f"{prefix}.1.{name}"] = () if name == "num_batches_tracked" else (c_out,)

    conv_bn("0", 3, 24, 3)
    for stage, (fused, expand, c_in, c_out, n) in enumerate(_TABLE, start=1):
        for i in range(n):
            cin = c_in if i == 0 else c_out
            mid = cin * expand  # all multiples of 8 in V2-S
            p = f"{stage}.{i}.block"
            if fused and expand == 1:
                conv_bn(f"{p}.0", cin, c_out, 3)
            elif fused:
                conv_bn(f"{p}.0", cin, mid, 3)
                conv_bn(f"{p}.1", mid, c_out, 1)
            else:
                sq = cin // 4
                conv_bn(f"{p}.0", cin, mid, 1)
                conv_bn(f"{p}.1", mid, mid, 3, groups=mid)
                layout[f"{p}.2.fc1.weight"] = (sq, mid, 1, 1)
                layout[f"{p}.2.fc1.bias"] = (sq,)
                layout[f"{p}.2.fc2.weight"] = (mid, sq, 1, 1)
                layout[f"{p}.2.fc2.bias"] = (mid,)
                conv_bn(f"{p}.3", mid, c_out, 1)
    conv_bn("7", 256, 1280, 1)
    return layout


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def meta_full() -> SemanticEncoder:
    with torch.device("meta"):
        return SemanticEncoder(check_values=False)


@pytest.fixture(scope="module")
def small() -> SemanticEncoder:
    torch.manual_seed(0)
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25)
    with torch.no_grad():  # non-trivial running statistics so eval-mode BN matters
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return enc


def test_backbone_layout_equals_torchvision(meta_full):
    expected = _torchvision_features_layout()
    got = {k: tuple(v.shape) for k, v in meta_full.backbone.state_dict().items()}
    assert len(expected) == 780
    assert got == expected


@pytest.mark.parametrize("key, shape", [
    ("backbone.0.0.weight", (24, 3, 3, 3)),
    ("backbone.1.1.block.0.0.weight", (24, 24, 3, 3)),
    ("backbone.2.0.block.0.0.weight", (96, 24, 3, 3)),
    ("backbone.4.0.block.1.0.weight", (256, 1, 3, 3)),
    ("backbone.6.14.block.2.fc1.weight", (64, 1536, 1, 1)),
    ("backbone.6.14.block.3.1.running_var", (256,)),
    ("backbone.7.0.weight", (1280, 256, 1, 1)),
    ("backbone.7.1.num_batches_tracked", ()),
    ("mapper.0.weight", (16, 1280, 1, 1)),
    ("mapper.1.running_mean", (16,)),
    ("mapper.1.running_var", (16,)),
])
def test_specific_keys(meta_full, key, shape):
    assert tuple(meta_full.state_dict()[key].shape) == shape


def test_encoder_state_dict_keys(meta_full):
    sd = meta_full.state_dict()
    assert len(sd) == 784  # 780 backbone + mapper conv + 3 BN buffers (affine=False)
    assert {k for k in sd if k.startswith("mapper.")} == {
        "mapper.0.weight", "mapper.1.running_mean", "mapper.1.running_var",
        "mapper.1.num_batches_tracked"}


def test_parameter_count_matches_published(meta_full):
    layout = _torchvision_features_layout()
    from_table = sum(math.prod(s) for k, s in layout.items()
                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert from_table == _PUBLISHED_TOTAL - _CLASSIFIER == 20_177_488
    assert sum(p.numel() for p in meta_full.backbone.parameters()) == from_table


@pytest.mark.parametrize("size, resize_factor, expected", [
    ((512, 512), 0.75, (16, 12, 12)),
    ((1024, 1024), 0.75, (16, 24, 24)),
    ((1024, 1024), 1.0, (16, 32, 32)),
    ((512, 768), 0.75, (16, 12, 18)),
    ((100, 70), 1.0, (16, 4, 3)),  # ceil(100/32), ceil(70/32)
])
def test_full_size_output_shapes(size, resize_factor, expected):
    with torch.device("meta"):
        enc = SemanticEncoder(resize_factor=resize_factor, check_values=False)
        z = enc(torch.empty(2, 3, *size))
    assert tuple(z.shape) == (2, *expected)
    assert enc.embedding_shape(*size) == expected


def test_small_variant_shape_dtype_and_determinism(small):
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z1, z2 = small(x), small(x)
    assert z1.shape == (2, 16, 3, 3) and z1.dtype == torch.float32
    assert torch.equal(z1, z2)
    assert torch.isfinite(z1).all()


def test_eval_bn_is_per_image(small):
    """Eval-mode BatchNorm: an image's Z does not depend on the rest of the batch."""
    x = torch.rand(4, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        z_batch = small(x)
        z_one = small(x[2:3])
    torch.testing.assert_close(z_one, z_batch[2:3], rtol=1e-5, atol=1e-5)


def test_mapper_bn_uses_running_stats(small):
    """Z = (conv1x1(features) - running_mean) / sqrt(running_var + 1e-5), computed by hand."""
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        small.mapper[1].running_mean.copy_(torch.linspace(-1, 1, 16))
        small.mapper[1].running_var.copy_(torch.linspace(0.5, 4, 16))
        feats = small.backbone(small_input(x))
        y = torch.einsum("oc,bchw->bohw", small.mapper[0].weight[:, :, 0, 0], feats)
        ref = (y - torch.linspace(-1, 1, 16).view(1, -1, 1, 1)) / torch.sqrt(
            torch.linspace(0.5, 4, 16).view(1, -1, 1, 1) + 1e-5)
        z = small(x)
    torch.testing.assert_close(z, ref, rtol=1e-4, atol=1e-4)


def small_input(x: torch.Tensor) -> torch.Tensor:
    """Resize by 0.75 (antialiased bilinear) and ImageNet-normalise, as Stable Cascade does."""
    x = nn.functional.interpolate(x, scale_factor=0.75, mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


class _Recorder(nn.Module):
    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.seen: torch.Tensor | None = None

    def forward(self, x, generator=None):
        self.seen = x
        return torch.zeros(x.shape[0], self.out_channels, 1, 1)


def test_constant_image_normalised_with_imagenet_stats():
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25)
    enc.backbone = _Recorder(enc.backbone.out_channels)
    x = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 64, 80).contiguous()
    enc(x)
    assert enc.backbone.seen.shape == (1, 3, 48, 60)
    expected = torch.tensor([(0.2 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.9 - 0.406) / 0.225])
    torch.testing.assert_close(enc.backbone.seen, expected.view(1, 3, 1, 1).expand(1, 3, 48, 60))


def test_resize_is_antialiased():
    """1-px stripes shrunk to 0.75: antialiased bilinear blurs them (std ~0.12, plain ~0.27)."""
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25)
    enc.backbone = _Recorder(enc.backbone.out_channels)
    x = torch.zeros(1, 3, 64, 64)
    x[..., ::2] = 1.0
    enc(x)
    pixels = enc.backbone.seen * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + \
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert float(pixels.std()) < 0.18
    torch.testing.assert_close(pixels.mean(), torch.tensor(0.5), atol=0.02, rtol=0)


def test_frozen_stays_in_eval_mode():
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25)
    nn.Sequential(enc).train()  # a parent switching to train mode must not unfreeze it
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())


def test_unfrozen_training_uses_batch_statistics():
    """Train-mode BN (affine=False) standardises each channel over batch and space."""
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25, frozen=False,
                          stochastic_depth_prob=0.0)
    assert enc.training and all(p.requires_grad for p in enc.parameters())
    z = enc(torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(4)))
    mean = z.mean(dim=(0, 2, 3))
    var = z.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(var, torch.ones(16), atol=1e-2, rtol=0)


def test_stochastic_depth_seeded_and_active_only_in_training():
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.5, frozen=False,
                          stochastic_depth_prob=0.5)
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = enc(x, generator=torch.Generator().manual_seed(7))
        b = enc(x, generator=torch.Generator().manual_seed(7))
        c = enc(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    enc.eval()
    with torch.no_grad():
        assert torch.equal(enc(x, generator=torch.Generator().manual_seed(7)),
                           enc(x, generator=torch.Generator().manual_seed(8)))


def test_stochastic_depth_drop_rate():
    """Rows of a residual block are dropped with probability p and kept rows scaled by 1/(1-p).

    p = 0.3 on 4000 rows: sigma = sqrt(0.21/4000) = 0.0072; tolerance 0.04 > 5 sigma.
    """
    backbone = EfficientNetV2Features(width_mult=0.25, depth_mult=0.25)
    block = backbone[4][1]  # a stride-1 block with a residual connection
    assert block.use_res_connect
    block.drop_prob = 0.3
    block.train()
    x = torch.randn(4000, block.block[0][0].in_channels, 2, 2)
    with torch.no_grad():  # both in training mode: BN uses this batch's statistics
        full = block.block(x)
        y = block(x, torch.Generator().manual_seed(9))
    dropped = torch.isclose(y, x, atol=1e-6).flatten(1).all(dim=1)
    assert abs(float(dropped.float().mean()) - 0.3) < 0.04
    torch.testing.assert_close(y[~dropped], x[~dropped] + full[~dropped] / 0.7)


def test_float64_matches_float32(small):
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(6))
    enc64 = SemanticEncoder(**small.config).double()
    enc64.load_state_dict(small.state_dict())
    with torch.no_grad():
        z32, z64 = small(x), enc64(x.double())
    assert z64.dtype == torch.float64
    torch.testing.assert_close(z64.float(), z32, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # half-precision input runs in the encoder's dtype
        assert small(x.bfloat16()).dtype == torch.float32


def test_config_round_trip():
    enc = SemanticEncoder(width_mult=0.5, depth_mult=0.25, embedding_channels=8,
                          resize_factor=1.0, frozen=False)
    cfg = json.loads(json.dumps(enc.config))
    again = SemanticEncoder(**cfg)
    assert again.config == enc.config
    assert again.state_dict().keys() == enc.state_dict().keys()
    assert again.mapper[0].weight.shape == (8, 4 * 128, 1, 1)  # 4x the last stage (256 * 0.5)


def test_min_image_size(small):
    assert small.min_image_size == 42  # round(42 * 0.75) = 32, round(41 * 0.75) = 31
    small(torch.rand(1, 3, 42, 42))
    with pytest.raises(ValueError, match=r"at least 42x42 pixels.*got 41x64"):
        small(torch.rand(1, 3, 41, 64))


@pytest.mark.parametrize("images, exc, match", [
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, r"`images` must be a floating"),
    ([[0.0]], TypeError, r"got list"),
    (torch.rand(3, 64, 64), ValueError, r"shape \[batch >= 1, 3, H, W\]; got \(3, 64, 64\)"),
    (torch.rand(1, 4, 64, 64), ValueError, r"got \(1, 4, 64, 64\)"),
    (torch.rand(0, 3, 64, 64), ValueError, r"got \(0, 3, 64, 64\)"),
    (torch.full((1, 3, 64, 64), 1.5), ValueError, r"must lie in \[0, 1\]"),
    (torch.full((1, 3, 64, 64), -0.1), ValueError, r"must lie in \[0, 1\]"),
    (torch.full((1, 3, 64, 64), float("nan")), ValueError, r"must lie in \[0, 1\]"),
])
def test_bad_images(small, images, exc, match):
    with pytest.raises(exc, match=match):
        small(images)


def test_check_values_off_skips_range_check():
    enc = SemanticEncoder(width_mult=0.25, depth_mult=0.25, check_values=False)
    assert enc(torch.full((1, 3, 64, 64), 1.5)).shape == (1, 16, 2, 2)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"width_mult": 0.0}, ValueError, r"`width_mult` must be > 0; got 0.0"),
    ({"width_mult": 5.0}, ValueError, r"`width_mult` must be in \[-inf, 4.0\]; got 5.0"),
    ({"depth_mult": "1"}, TypeError, r"`depth_mult` must be int or float"),
    ({"embedding_channels": True}, TypeError, r"`embedding_channels` must be int; got True"),
    ({"embedding_channels": 0}, ValueError, r"`embedding_channels` must be in \[1, inf\]"),
    ({"resize_factor": 1.5}, ValueError, r"`resize_factor` must be in \[-inf, 1.0\]"),
    ({"stochastic_depth_prob": 1.0}, ValueError, r"`stochastic_depth_prob` must be in \[0, 1\)"),
    ({"frozen": 1}, TypeError, r"`frozen` must be bool; got 1"),
    ({"check_values": None}, TypeError, r"`check_values` must be bool; got None"),
])
def test_bad_config(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SemanticEncoder(**kwargs)


def test_backbone_batchnorm_eps_is_torchvision_1e3():
    """EfficientNetV2's BatchNorms use eps = 1e-3 (torchvision's ``norm_layer`` for V2), which
    the published running statistics were computed with; the mapper's keeps PyTorch's 1e-5.

    Checked on the stem in eval mode with zero mean, zero variance and unit affine: its output
    is silu(conv(x) / sqrt(eps)), so eps is read off the values (1e-5 would give 10x larger)."""
    backbone = EfficientNetV2Features(width_mult=0.25, depth_mult=0.25).eval()
    stem = backbone[0]
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        stem[1].running_mean.zero_()
        stem[1].running_var.zero_()
        conv = nn.functional.conv2d(x, stem[0].weight, stride=2, padding=1)
        expected = nn.functional.silu(conv / math.sqrt(1e-3))
        torch.testing.assert_close(stem(x), expected, rtol=1e-4, atol=1e-5)
    assert all(m.eps == 1e-3 for m in backbone.modules() if isinstance(m, nn.BatchNorm2d))
    assert SemanticEncoder(width_mult=0.25, depth_mult=0.25).mapper[1].eps == 1e-5


def test_stochastic_depth_probability_grows_linearly_from_zero():
    """torchvision's rule: block i of n (counted over all stages from 0) drops with
    probability p * i / n, so the first block never drops and the last almost p."""
    p = 0.2
    backbone = EfficientNetV2Features(width_mult=0.25, depth_mult=0.25, stochastic_depth_prob=p)
    blocks = [b for i in range(1, 7) for b in backbone[i]]
    n = 1 + 1 + 1 + 2 + 3 + 4  # ceil(0.25 * [2, 4, 4, 6, 9, 15])
    assert len(blocks) == n
    assert [b.drop_prob for b in blocks] == pytest.approx([p * i / n for i in range(n)])
