"""Stage B configs: published parameter counts, builder, zero-text forward."""
import pytest
import torch

from semlink.models.stage_b import (STAGE_B_CONFIG_NAMES, build_stage_b, null_text_pooled,
                                      predict_noise, stage_b_config)


pytestmark = pytest.mark.usefixtures("one_thread")


def _count(unet):
    return sum(p.numel() for p in unet.parameters())


@pytest.mark.parametrize("name, expected", [
    ("stable-cascade-lite", 699_471_248),   # paper.md / published decoder_lite
    ("stable-cascade", 1_562_941_136),      # published decoder ("about 1.5B")
])
def test_real_configs_parameter_counts_on_meta(name, expected):
    unet = build_stage_b(name, meta=True)
    assert next(unet.parameters()).device.type == "meta"
    assert _count(unet) == expected


def test_lite_config_matches_paper():
    cfg = stage_b_config("stable-cascade-lite")
    assert cfg["block_out_channels"] == [320, 576, 1152, 1152]
    assert cfg["down_num_layers_per_block"] == [2, 4, 14, 4]
    assert cfg["up_num_layers_per_block"] == [4, 14, 4, 2]
    assert cfg["up_blocks_repeat_mappers"] == [2, 2, 2, 2]
    assert cfg["num_attention_heads"] == [0, 9, 18, 18]
    assert [("SDCascadeAttnBlock" in b) for b in cfg["block_types_per_layer"]] == [False, False, True, True]
    assert (cfg["effnet_in_channels"], cfg["patch_size"], cfg["conditioning_dim"]) == (16, 2, 1280)


def test_small_config_is_cpu_sized():
    cfg = stage_b_config("small")
    assert cfg["effnet_in_channels"] == 16
    assert [("SDCascadeAttnBlock" in b) for b in cfg["block_types_per_layer"]] == [False, False, True, True]
    assert _count(build_stage_b("small", meta=True)) < 5_000_000


def test_config_is_a_copy():
    cfg = stage_b_config("small")
    cfg["block_out_channels"][0] = 999
    assert stage_b_config("small")["block_out_channels"][0] == 32


def test_build_dtype_eval_and_dict_config():
    unet = build_stage_b(stage_b_config("tiny"), dtype=torch.bfloat16)
    assert not unet.training
    assert {p.dtype for p in unet.parameters()} == {torch.bfloat16}


def test_predict_noise_zero_text_and_any_embedding_size():
    unet = build_stage_b("tiny")
    x = torch.randn(2, 4, 32, 32)
    t = torch.tensor([0.3, 0.7])
    text = null_text_pooled(unet, 2, device=x.device, dtype=x.dtype)
    assert text.shape == (2, 1, 32) and not text.any()
    for z_side in (6, 12):  # the UNet resizes the embedding itself
        eps = predict_noise(unet, x, t, torch.randn(2, 16, z_side, z_side))
        assert eps.shape == x.shape
    # None = the zero text input, explicitly equal to passing zeros.
    z = torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        direct = unet(x, t, torch.zeros(2, 1, 32), effnet=z).sample
        torch.testing.assert_close(predict_noise(unet, x, t, z), direct, rtol=0, atol=0)


def test_predict_noise_rejects_mismatched_batch():
    unet = build_stage_b("tiny")
    with pytest.raises(ValueError, match="must share the batch"):
        predict_noise(unet, torch.randn(2, 4, 8, 8), torch.rand(2), torch.randn(3, 16, 4, 4))
    with pytest.raises(ValueError, match="must be 4-D"):
        predict_noise(unet, torch.randn(4, 8, 8), torch.rand(1), torch.randn(1, 16, 4, 4))


def test_bad_names_and_types_raise():
    with pytest.raises(ValueError, match="`name` must be one of 'stable-cascade-lite'"):
        stage_b_config("sdxl")
    with pytest.raises(TypeError, match="`name` must be str"):
        stage_b_config(3)
    with pytest.raises(TypeError, match="`config` must be dict"):
        build_stage_b(3)
    with pytest.raises(TypeError, match="`meta` must be bool"):
        build_stage_b("tiny", meta=1)
    assert set(STAGE_B_CONFIG_NAMES) == {"stable-cascade-lite", "stable-cascade", "small", "tiny"}


def _attention_modules(unet):
    return [m for m in unet.modules() if type(m).__name__ == "Attention"]


# Attention blocks of the published decoders (decoder_lite/ and decoder/config.json): only the two
# deepest levels hold SDCascadeAttnBlock, one per layer: lite 14 + 4 down, 4 + 14 up; full
# 28 + 6 down, 6 + 28 up.
@pytest.mark.parametrize("name, blocks", [("stable-cascade-lite", 36), ("stable-cascade", 68)])
def test_real_configs_attention_is_flash_eligible(name, blocks):
    # PyTorch's flash kernel (bf16/fp16 on sm80+) takes head dims that are multiples of 8 up to
    # 256; the published heads are 64 wide (1152 / 18, 1280 / 20), so the bf16 GPU receiver
    # can run flash attention through SDPA.
    attention = _attention_modules(build_stage_b(name, meta=True))
    assert len(attention) == blocks
    for module in attention:
        head_dim = module.inner_dim // module.heads
        assert head_dim == 64 and head_dim % 8 == 0 and head_dim <= 256
        assert type(module.processor).__name__ == "AttnProcessor2_0"


def test_attention_runs_through_scaled_dot_product_attention(monkeypatch):
    # Every attention block calls torch's fused SDPA (not a matmul-softmax-matmul of its own),
    # so on CUDA the kernel choice (flash, memory-efficient) is torch's.
    unet = build_stage_b("small")
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    x = torch.randn(1, 4, 16, 16)
    predict_noise(unet, x, torch.tensor([0.5]), torch.randn(1, 16, 6, 6))
    assert len(calls) == len(_attention_modules(unet)) > 0
    assert all(shape[0] == 1 and shape[1] == 4 for shape in calls)  # [batch, heads, ...]
