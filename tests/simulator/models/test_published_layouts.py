"""semlink's weight loaders against Stability AI's and diffusers' PUBLISHED key names and shapes.

The expected layouts come from ``tests/published_stable_cascade.py``, which re-derives them from
the published module definitions and conversion scripts (sources and commits listed there and
named again per test below), never from semlink's models. Each test names its source; renaming
one published key makes the loaders fail with a message naming it.

Full-size files are written as sparse safetensors (header only; no data): the header check runs
on the real names and shapes, and real-size loading replaces the data read by meta tensors.
Values landing on the right parameters are checked with real data at real size for the encoder
and stage A, and with a tiny ``StageB`` configuration for stage B.
"""
from __future__ import annotations

import math

import pytest
import torch

from semlink.errors import InputError
from semlink.models import weights as W
from semlink.models.encoder import SemanticEncoder
from semlink.models.stage_a import build_stage_a, scale_factor_for_layout, stage_a_config
from semlink.models.stage_b import build_stage_b, stage_b_config
from tests import published_stable_cascade as P

pytestmark = pytest.mark.usefixtures("one_thread")

_PRESET = {"lite": "stable-cascade-lite", "full": "stable-cascade"}
_COMPONENT = {"lite": "stage_b_lite", "full": "stage_b"}

# ---------------------------------------------------------------- literal published names

# Original stage_b_lite[_bf16].safetensors: StageB(c_hidden=[320, 576, 1152, 1152],
# nhead=[-1, 9, 18, 18], blocks=[[2, 4, 14, 4], [4, 14, 4, 2]], block_repeat=[[1]*4, [2]*4])
# of github.com/Stability-AI/StableCascade train/train_b.py @ 32cd6c0d ('700M'), modules
# modules/stage_b.py + modules/common.py @ cf967c61.
LITE_ORIGINAL = {
    "embedding.1.weight": (320, 16, 1, 1),  # Conv2d(c_in * patch_size**2 = 4 * 4, 320, 1)
    "effnet_mapper.0.weight": (1280, 16, 1, 1),  # Conv2d(c_effnet = 16, 4 * 320, 1)
    "effnet_mapper.2.weight": (320, 1280, 1, 1),
    "pixels_mapper.0.weight": (1280, 3, 1, 1),
    "pixels_mapper.2.bias": (320,),
    "clip_mapper.weight": (5120, 1280),  # Linear(c_clip 1280, c_cond 1280 * c_clip_seq 4)
    "down_blocks.0.0.depthwise.weight": (320, 1, 3, 3),
    "down_blocks.0.0.channelwise.0.weight": (1280, 320),
    "down_blocks.0.0.channelwise.2.gamma": (1, 1, 1, 1280),
    "down_blocks.0.1.mapper.weight": (640, 64),  # TimestepBlock: Linear(c_r 64, 2c)
    "down_blocks.0.1.mapper_sca.weight": (640, 64),
    "down_downscalers.1.1.weight": (576, 320, 2, 2),
    "down_blocks.1.0.channelwise.0.weight": (2304, 576),
    "down_blocks.2.2.attention.attn.in_proj_weight": (3456, 1152),  # nn.MultiheadAttention
    "down_blocks.2.2.attention.attn.in_proj_bias": (3456,),
    "down_blocks.2.2.attention.attn.out_proj.weight": (1152, 1152),
    "down_blocks.2.2.kv_mapper.1.weight": (1152, 1280),
    "down_blocks.3.11.attention.attn.in_proj_weight": (3456, 1152),  # 4 layers x 'CTA'
    "up_upscalers.0.1.weight": (1152, 1152, 2, 2),  # ConvTranspose2d(c[3], c[2], 2, 2)
    "up_upscalers.2.1.weight": (576, 320, 2, 2),
    "up_blocks.1.0.channelwise.0.weight": (4608, 2304),  # c + c_skip
    "up_blocks.1.41.kv_mapper.1.bias": (1152,),  # 14 layers x 'CTA'
    "up_repeat_mappers.0.0.weight": (1152, 1152, 1, 1),
    "up_repeat_mappers.3.0.weight": (320, 320, 1, 1),
    "clf.1.weight": (16, 320, 1, 1),  # Conv2d(320, c_out * patch_size**2)
}
# Original stage_b[_bf16].safetensors: StageB(c_hidden=[320, 640, 1280, 1280],
# nhead=[-1, -1, 20, 20], blocks=[[2, 6, 28, 6], [6, 28, 6, 2]], block_repeat=[[1]*4, [3, 3, 2, 2]])
# ('3B' in train/train_b.py @ 32cd6c0d; StageB's defaults in modules/stage_b.py @ cf967c61).
FULL_ORIGINAL = {
    "embedding.1.weight": (320, 16, 1, 1),
    "effnet_mapper.0.weight": (1280, 16, 1, 1),
    "clip_mapper.weight": (5120, 1280),
    "down_blocks.1.0.channelwise.0.weight": (2560, 640),
    "down_blocks.1.11.mapper_sca.bias": (1280,),  # 6 layers x 'CT'
    "down_blocks.2.83.attention.attn.in_proj_weight": (3840, 1280),  # 28 layers x 'CTA'
    "down_blocks.2.83.attention.attn.out_proj.bias": (1280,),
    "up_blocks.1.0.channelwise.0.weight": (5120, 2560),
    # up_repeat_mappers.u serves level i = 3 - u with block_repeat[1][::-1][i] - 1 convs:
    # [3, 3, 2, 2][::-1] = [2, 2, 3, 3] -> 2, 2, 1, 1 convs for u = 0, 1, 2, 3
    "up_repeat_mappers.0.1.weight": (1280, 1280, 1, 1),
    "up_repeat_mappers.1.1.weight": (1280, 1280, 1, 1),
    "up_repeat_mappers.2.0.weight": (640, 640, 1, 1),
    "up_upscalers.2.1.weight": (640, 320, 2, 2),
    "clf.1.bias": (16,),
}
# diffusers decoder_lite/ and decoder/ (StableCascadeUNet) names after the renaming loop of
# github.com/huggingface/diffusers scripts/convert_stable_cascade_lite.py and
# scripts/convert_stable_cascade.py @ 068abab0.
LITE_DIFFUSERS = {
    "clip_txt_pooled_mapper.weight": (5120, 1280),
    "clip_txt_pooled_mapper.bias": (5120,),
    "down_blocks.2.2.attention.to_q.weight": (1152, 1152),
    "down_blocks.2.2.attention.to_k.bias": (1152,),
    "down_blocks.2.2.attention.to_v.weight": (1152, 1152),
    "down_blocks.2.2.attention.to_out.0.weight": (1152, 1152),
    "effnet_mapper.0.weight": (1280, 16, 1, 1),
    "down_blocks.1.0.channelwise.0.weight": (2304, 576),
}
FULL_DIFFUSERS = {
    "clip_txt_pooled_mapper.weight": (5120, 1280),
    "down_blocks.2.83.attention.to_q.weight": (1280, 1280),
    "down_blocks.2.83.attention.to_out.0.bias": (1280,),
    "down_blocks.1.0.channelwise.0.weight": (2560, 640),
}
# Original stage_a.safetensors: StageA() of github.com/Stability-AI/StableCascade
# modules/stage_a.py @ 6c695205 (c_hidden 384, levels 2, bottleneck_blocks 12, c_latent 4,
# codebook_size 8192; VectorQuantize.codebook of pabloppp/pytorch-tools torchtools/nn/vq.py @ 9e99b839).
STAGE_A_ORIGINAL = {
    "in_block.1.weight": (192, 12, 1, 1),
    "down_blocks.0.depthwise.1.weight": (192, 1, 3, 3),
    "down_blocks.0.gammas": (6,),
    "down_blocks.1.weight": (384, 192, 4, 4),
    "down_blocks.2.channelwise.0.weight": (1536, 384),
    "down_blocks.3.0.weight": (4, 384, 1, 1),
    "down_blocks.3.1.running_var": (4,),
    "vquantizer.codebook.weight": (8192, 4),
    "up_blocks.0.0.weight": (384, 4, 1, 1),
    "up_blocks.12.channelwise.2.weight": (384, 1536),
    "up_blocks.13.weight": (384, 192, 4, 4),  # ConvTranspose2d(384, 192, 4, 2, 1)
    "up_blocks.14.gammas": (6,),
    "out_block.0.weight": (12, 192, 1, 1),
}
# diffusers vqgan/ (PaellaVQModel): github.com/huggingface/diffusers scripts/convert_wuerstchen.py
# @ 83d1e6ae renames the codebook only.
STAGE_A_DIFFUSERS = {"vquantizer.embedding.weight": (8192, 4), "down_blocks.3.0.weight": (4, 384, 1, 1)}
# effnet_encoder.safetensors: EfficientNetEncoder of github.com/Stability-AI/StableCascade
# modules/effnet.py @ d693a9c2 = torchvision efficientnet_v2_s().features (pytorch/vision
# torchvision/models/efficientnet.py, V2-S table) + mapper.
ENCODER = {
    "backbone.0.0.weight": (24, 3, 3, 3),
    "backbone.0.1.running_var": (24,),
    "backbone.1.0.block.0.0.weight": (24, 24, 3, 3),  # FusedMBConv, expand 1
    "backbone.2.0.block.0.0.weight": (96, 24, 3, 3),  # FusedMBConv, expand 4
    "backbone.2.0.block.1.0.weight": (48, 96, 1, 1),
    "backbone.4.0.block.0.0.weight": (256, 64, 1, 1),  # MBConv expand
    "backbone.4.0.block.1.0.weight": (256, 1, 3, 3),  # depthwise
    "backbone.4.0.block.2.fc1.weight": (16, 256, 1, 1),  # SqueezeExcitation, 64 // 4
    "backbone.4.0.block.2.fc2.bias": (256,),
    "backbone.4.0.block.3.0.weight": (128, 256, 1, 1),
    "backbone.6.14.block.2.fc1.weight": (64, 1536, 1, 1),
    "backbone.7.0.weight": (1280, 256, 1, 1),
    "mapper.0.weight": (16, 1280, 1, 1),  # 16-channel semantic embedding
    "mapper.1.running_mean": (16,),
}


def _published(variant: str, layout: str) -> P.Layout:
    original = P.stage_b_original_layout(**P.STAGE_B_ORIGINAL_ARGS[variant])
    return original if layout == "original" else P.stage_b_to_diffusers(original)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _meta_encoder() -> SemanticEncoder:
    with torch.device("meta"):
        return SemanticEncoder()


@pytest.fixture(scope="module")
def meta_stage_b():
    """Full-size stage B templates on the meta device (no memory), built once."""
    return {v: build_stage_b(_PRESET[v], meta=True) for v in ("lite", "full")}


@pytest.fixture
def header_only_reads(monkeypatch):
    """Read sparse full-size files as meta tensors from their headers (no data), and skip the
    finiteness pass that needs values: everything else of the loaders runs unchanged."""
    from safetensors import safe_open

    dtypes = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "I64": torch.int64}

    def read(path, device):
        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), dtype=dtypes[f.get_slice(k).get_dtype()],
                                   device="meta") for k in f.keys()}

    monkeypatch.setattr(W, "_read_tensors", read)
    monkeypatch.setattr(W, "check_finite", lambda state, source: None)


# ---------------------------------------------------------------- the derivations themselves


@pytest.mark.parametrize(("expected", "layout"), [
    (ENCODER, lambda: P.effnet_encoder_layout()),
    (STAGE_A_ORIGINAL, lambda: P.stage_a_original_layout()),
    (STAGE_A_DIFFUSERS, lambda: P.stage_a_to_diffusers(P.stage_a_original_layout())),
    (LITE_ORIGINAL, lambda: _published("lite", "original")),
    (FULL_ORIGINAL, lambda: _published("full", "original")),
    (LITE_DIFFUSERS, lambda: _published("lite", "diffusers")),
    (FULL_DIFFUSERS, lambda: _published("full", "diffusers")),
], ids=["encoder", "stage_a-original", "stage_a-diffusers", "lite-original", "full-original",
        "lite-diffusers", "full-diffusers"])
def test_derived_layouts_hold_the_literal_published_names(expected, layout):
    """The re-derivations in tests/published_stable_cascade.py reproduce the literal names and
    shapes read off the sources cited next to each table above."""
    derived = layout()
    assert {k: derived.get(k) for k in expected} == expected


def test_derived_counts():
    """Totals of the published layouts: effnet encoder 20.35M values (EfficientNetV2-S features
    + mapper), stage A 18.4M; stage B parameters 699,471,248 (lite, "700M" in train_b.py) and
    1,562,941,136 (full, "1.5B") - sources as in tests/published_stable_cascade.py."""
    def total(layout):
        return sum(math.prod(s) for s in layout.values())
    assert "mapper.1.weight" not in P.effnet_encoder_layout()  # BatchNorm2d(16, affine=False)
    assert total(_published("lite", "original")) == 699_471_248
    assert total(_published("full", "original")) == 1_562_941_136
    assert total(_published("lite", "diffusers")) == 699_471_248
    assert 18_000_000 < total(P.stage_a_original_layout()) < 19_000_000
    assert 20_000_000 < total(P.effnet_encoder_layout()) < 21_000_000


# ---------------------------------------------------------------- published configs


@pytest.mark.parametrize("variant", ["lite", "full"])
def test_stage_b_configs_equal_the_published_config_json(variant):
    """semlink's stage B configs equal huggingface.co/stabilityai/stable-cascade
    decoder_lite/config.json (rev edf1afbb) and decoder/config.json (refs/pr/68), which equal
    the StableCascadeUNet(...) arguments of diffusers scripts/convert_stable_cascade[_lite].py
    @ 068abab0 and the StageB(...) arguments of StableCascade train/train_b.py @ 32cd6c0d."""
    published = P.DECODER_CONFIGS[variant]
    assert stage_b_config(_PRESET[variant]) == published
    from_original = P.diffusers_config_from_original(**P.STAGE_B_ORIGINAL_ARGS[variant])
    assert from_original == {k: published[k] for k in from_original}


def test_stage_a_config_equals_the_published_config_json():
    """semlink's stage A config equals huggingface.co/stabilityai/stable-cascade
    vqgan/config.json (rev 1b70b878), and its diffusers-layout latent scale is that file's
    scale_factor 0.3764; StableCascade modules/stage_a.py @ 6c695205 uses 0.43."""
    assert stage_a_config("stable-cascade") == P.VQGAN_CONFIG
    assert scale_factor_for_layout("diffusers") == P.VQGAN_CONFIG["scale_factor"]
    assert scale_factor_for_layout("original") == 0.43


# ---------------------------------------------------------------- semlink's templates


@pytest.mark.parametrize("variant", ["lite", "full"])
def test_stage_b_model_has_exactly_the_published_names(meta_stage_b, variant):
    """Every published diffusers stage B name and shape (StableCascade modules/stage_b.py
    @ cf967c61 + train_b.py @ 32cd6c0d through diffusers scripts/convert_stable_cascade[_lite].py
    @ 068abab0) is one of semlink's model - and nothing else."""
    assert _shapes(meta_stage_b[variant]) == _published(variant, "diffusers")


def test_stage_a_and_encoder_models_have_exactly_the_published_names():
    """StableCascade modules/stage_a.py @ 6c695205 (+ diffusers convert_wuerstchen.py @ 83d1e6ae)
    and modules/effnet.py @ d693a9c2 (+ torchvision efficientnet_v2_s)."""
    assert _shapes(build_stage_a("stable-cascade", meta=True)) == \
        P.stage_a_to_diffusers(P.stage_a_original_layout())
    assert _shapes(_meta_encoder()) == P.effnet_encoder_layout()


# ---------------------------------------------------------------- loading: values


@pytest.mark.parametrize(("counters", "dtype"), [(True, torch.float32), (False, torch.bfloat16)])
def test_encoder_file_loads_key_by_key(tmp_path, counters, dtype):
    """A full-size effnet_encoder.safetensors in the layout of StableCascade modules/effnet.py
    @ d693a9c2 (torchvision efficientnet_v2_s features + mapper) loads every tensor onto the
    parameter of the same published name (float32: every tensor's values distinct); a bfloat16
    file without BatchNorm counters loads too (values rounded, counters 0)."""
    written = P.make_tensors(P.effnet_encoder_layout(bn_counter=counters), dtype)
    P.write_file(tmp_path / P.ORIGINAL_FILES["encoder"], written)
    enc = _meta_encoder()
    found = W.load_encoder(enc, tmp_path)
    assert (found.component, found.layout) == ("encoder", "original")
    got = enc.state_dict()
    for key, value in written.items():
        assert torch.equal(got[key], value.float() if value.is_floating_point() else value), key
    if not counters:
        assert int(got["mapper.1.num_batches_tracked"]) == 0


@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_stage_a_file_loads_key_by_key(tmp_path, layout):
    """Full-size stage_a.safetensors (StableCascade modules/stage_a.py @ 6c695205, torchtools
    VectorQuantize.codebook) or vqgan/ (config.json of huggingface.co/stabilityai/stable-cascade
    rev 1b70b878, codebook renamed as diffusers scripts/convert_wuerstchen.py @ 83d1e6ae):
    every tensor lands on its published name, the codebook on ``vquantizer.embedding``."""
    original = P.make_tensors(P.stage_a_original_layout(), torch.bfloat16)
    if layout == "original":
        P.write_file(tmp_path / P.ORIGINAL_FILES["stage_a"], original)
    else:
        path = P.write_diffusers_folder(tmp_path / P.DIFFUSERS_DIRS["stage_a"], P.VQGAN_CONFIG,
                                        "PaellaVQModel", "diffusion_pytorch_model.safetensors")
        P.write_file(path, P.stage_a_to_diffusers(original))
    vq = build_stage_a("stable-cascade", meta=True)
    found = W.load_stage_a(vq, tmp_path)
    assert found.layout == layout
    got = vq.state_dict()
    for key, value in P.stage_a_to_diffusers(original).items():
        assert torch.equal(got[key], value.float() if value.is_floating_point() else value), key
    assert torch.equal(got["vquantizer.embedding.weight"],
                       original["vquantizer.codebook.weight"].float())


# A tiny StageB (StableCascade modules/stage_b.py @ cf967c61 arguments): two levels, attention
# in the second, repeat mappers on both paths, skip connections, its own c_cond and c_clip.
_TINY = {"c_hidden": [16, 32], "nhead": [-1, 2], "blocks": [[1, 2], [2, 1]],
         "block_repeat": [[1, 2], [2, 3]], "level_config": ["CT", "CTA"], "c_cond": 32,
         "c_clip": 24}


@pytest.mark.parametrize("variant", ["lite", "full"])
@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_stage_b_file_loads_key_by_key(tmp_path, variant, layout):
    """A stage B file in the original StageB layout (stage_b_lite.safetensors / stage_b.safetensors)
    or converted by the renaming loop of diffusers scripts/convert_stable_cascade[_lite].py
    @ 068abab0 (decoder_lite/ or decoder/): each tensor - q, k and v chunks of ``in_proj`` in
    order, ``out_proj``, ``clip_mapper`` - lands where diffusers' conversion puts it."""
    original = P.make_tensors(P.stage_b_original_layout(**_TINY))
    expected = P.stage_b_to_diffusers(original)
    config = P.diffusers_config_from_original(**_TINY, dropout=(0, 0))
    if layout == "original":
        P.write_file(tmp_path / P.ORIGINAL_FILES[variant].replace("_bf16", ""), original)
    else:
        path = P.write_diffusers_folder(tmp_path / P.DIFFUSERS_DIRS[variant], config,
                                        "StableCascadeUNet", "diffusion_pytorch_model.safetensors")
        P.write_file(path, expected)
    unet = build_stage_b(config)
    found = W.load_stage_b(unet, tmp_path, variant=variant)
    assert (found.component, found.layout) == (_COMPONENT[variant], layout)
    got = unet.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    q, k, v = original["down_blocks.1.2.attention.attn.in_proj_weight"].chunk(3)
    assert torch.equal(got["down_blocks.1.2.attention.to_k.weight"], k)
    assert torch.equal(got["up_blocks.0.5.attention.to_v.weight"],
                       original["up_blocks.0.5.attention.attn.in_proj_weight"].chunk(3)[2])
    assert torch.equal(got["clip_txt_pooled_mapper.bias"], original["clip_mapper.bias"])


# ---------------------------------------------------------------- loading: full-size headers


@pytest.mark.parametrize("variant", ["lite", "full"])
@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_full_size_stage_b_headers_load(tmp_path, meta_stage_b, header_only_reads, variant, layout):
    """Sparse bf16 files with the full published stage B layout (StableCascade modules/stage_b.py
    @ cf967c61 + train_b.py @ 32cd6c0d; diffusers convert_stable_cascade[_lite].py @ 068abab0,
    decoder[_lite]/config.json of huggingface.co/stabilityai/stable-cascade) pass the scan and
    the header check and convert onto semlink's full-size model with every shape in place."""
    published = _published(variant, layout)
    if layout == "original":
        P.write_sparse_file(tmp_path / P.ORIGINAL_FILES[variant], published)
    else:
        path = P.write_diffusers_folder(tmp_path / P.DIFFUSERS_DIRS[variant],
                                        P.DECODER_CONFIGS[variant], "StableCascadeUNet",
                                        "diffusion_pytorch_model.bf16.safetensors")
        P.write_sparse_file(path, published)
    (entry,) = W.scan_weights_dir(tmp_path).found(_COMPONENT[variant])
    assert entry.ok and entry.dtype == "bfloat16"
    assert entry.num_values == sum(math.prod(s) for s in published.values())
    unet = meta_stage_b[variant]
    found = W.load_stage_b(unet, tmp_path)  # variant from block_out_channels
    assert (found.component, found.layout) == (_COMPONENT[variant], layout)
    assert _shapes(unet) == P.stage_b_to_diffusers(published)


@pytest.mark.parametrize("counters", [True, False])
def test_full_size_stage_a_and_encoder_headers_load(tmp_path, header_only_reads, counters):
    """Sparse files with the published stage A (modules/stage_a.py @ 6c695205) and encoder
    (modules/effnet.py @ d693a9c2) layouts, with or without BatchNorm counters, as float16 too."""
    P.write_sparse_file(tmp_path / P.ORIGINAL_FILES["encoder"],
                        P.effnet_encoder_layout(bn_counter=counters), "F16")
    P.write_sparse_file(tmp_path / P.ORIGINAL_FILES["stage_a"],
                        P.stage_a_original_layout(bn_counter=counters), "F32")
    W.load_encoder(_meta_encoder(), tmp_path)
    assert W.load_stage_a(build_stage_a("stable-cascade", meta=True), tmp_path).layout == "original"


# ---------------------------------------------------------------- one published name renamed

_RENAMES = [
    # (component, layout, published key, renamed to, error regex)
    ("encoder", "original", "backbone.4.0.block.2.fc1.weight", "backbone.4.0.block.2.fc_1.weight",
     r"effnet_encoder\.safetensors: 1 key\(s\) missing for semantic encoder: "
     r"`backbone\.4\.0\.block\.2\.fc1\.weight`; 1 unexpected key\(s\): "
     r"`backbone\.4\.0\.block\.2\.fc_1\.weight` \(original layout\)"),
    ("encoder", "original", "mapper.0.weight", "mapper.weight",
     r"no `mapper\.0\.weight`: not semantic encoder weights in the original layout"),
    ("stage_a", "original", "up_blocks.13.weight", "up_blocks.13.0.weight",
     r"stage_a\.safetensors: 1 key\(s\) missing for stage A \(VQGAN\): `up_blocks\.13\.weight`"),
    ("stage_a", "original", "vquantizer.codebook.weight", "vquantizer.embedding.weight",
     r"no `vquantizer\.codebook\.weight`: not stage A \(VQGAN\) weights in the original layout"),
    ("stage_a", "diffusers", "vquantizer.embedding.weight", "vquantizer.codebook.weight",
     r"no `vquantizer\.embedding\.weight`: not stage A \(VQGAN\) weights in the diffusers layout"),
    ("lite", "original", "effnet_mapper.0.weight", "effnet_mapper.0.weights",
     r"stage_b_lite_bf16\.safetensors: 1 key\(s\) missing for stage B lite: "
     r"`effnet_mapper\.0\.weight`; 1 unexpected key\(s\): `effnet_mapper\.0\.weights`"),
    ("lite", "original", "down_blocks.2.2.attention.attn.in_proj_weight",
     "down_blocks.2.2.attention.attn.in_proj.weight",
     r"missing for stage B lite: `down_blocks\.2\.2\.attention\.attn\.in_proj_weight`"),
    ("lite", "original", "clip_mapper.weight", "clip_txt_pooled_mapper.weight",
     r"no `clip_mapper\.weight`: not stage B lite weights in the original layout"),
    ("full", "original", "up_repeat_mappers.0.1.weight", "up_repeat_mappers.0.2.weight",
     r"stage_b_bf16\.safetensors: 1 key\(s\) missing for stage B: `up_repeat_mappers\.0\.1\.weight`"),
    ("lite", "diffusers", "down_blocks.2.2.attention.to_q.weight",
     "down_blocks.2.2.attention.to_query.weight",
     r"decoder_lite/diffusion_pytorch_model\.bf16\.safetensors: 1 key\(s\) missing for stage B "
     r"lite: `down_blocks\.2\.2\.attention\.to_q\.weight`; 1 unexpected key\(s\): "
     r"`down_blocks\.2\.2\.attention\.to_query\.weight` \(diffusers layout\)"),
    ("full", "diffusers", "clf.1.weight", "clf.0.weight",
     r"decoder/diffusion_pytorch_model\.bf16\.safetensors: 1 key\(s\) missing for stage B: "
     r"`clf\.1\.weight`"),
]


@pytest.mark.parametrize(("what", "layout", "key", "renamed", "message"), _RENAMES,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in _RENAMES])
def test_renaming_one_published_key_fails_clearly(tmp_path, meta_stage_b, what, layout, key,
                                                  renamed, message):
    """A published file (layouts and sources as in the tests above) with one key renamed is
    refused before any data is read, naming the published key that is missing."""
    if what == "encoder":
        published, model = P.effnet_encoder_layout(), _meta_encoder()
    elif what == "stage_a":
        published = P.stage_a_original_layout()
        published = published if layout == "original" else P.stage_a_to_diffusers(published)
        model = build_stage_a("stable-cascade", meta=True)
    else:
        published, model = _published(what, layout), meta_stage_b[what]
    assert key in published
    published = {(renamed if k == key else k): s for k, s in published.items()}
    if layout == "original":
        P.write_sparse_file(tmp_path / P.ORIGINAL_FILES[what], published)
    else:
        config, cls = ((P.VQGAN_CONFIG, "PaellaVQModel") if what == "stage_a"
                       else (P.DECODER_CONFIGS[what], "StableCascadeUNet"))
        P.write_sparse_file(P.write_diffusers_folder(
            tmp_path / P.DIFFUSERS_DIRS[what], config, cls,
            "diffusion_pytorch_model.bf16.safetensors"), published)
    component = {"lite": "stage_b_lite", "full": "stage_b"}.get(what, what)
    with pytest.raises(InputError, match=message):
        W.load_weights(model, tmp_path, component, layout=layout)
