"""semlink.roofline: flops and bytes counted against closed forms (a matrix product, a linear
layer, views, fused attention), the meta device counting as the CPU does (so the real presets
can be counted on it), and the floors' arithmetic."""
import pytest
import torch

from semlink.models.stage_b import build_stage_b, predict_noise
from semlink.roofline import Work, count_work

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_matrix_product_is_2mnk_flops_and_its_three_matrices_moved_once():
    m, k, n = 48, 40, 24
    work = count_work(torch.mm, torch.ones(m, k), torch.ones(k, n))
    assert work == Work(flops=2 * m * n * k, bytes_moved=4 * (m * k + k * n + m * n),
                        operations=1)
    half = count_work(torch.mm, torch.ones(m, k, dtype=torch.bfloat16),
                      torch.ones(k, n, dtype=torch.bfloat16))
    assert half.bytes_moved * 2 == work.bytes_moved and half.flops == work.flops


def test_a_linear_layer_on_tokens_moves_input_weight_bias_output_and_its_views_nothing():
    batch, tokens, k, n = 2, 5, 16, 8
    layer = torch.nn.Linear(k, n)
    work = count_work(layer, torch.ones(batch, tokens, k))
    # F.linear: view to [batch * tokens, k], addmm with the transposed weight (a view), view back
    assert work == Work(flops=2 * batch * tokens * k * n, operations=1,
                        bytes_moved=4 * (batch * tokens * k + k * n + n + batch * tokens * n))
    x = torch.ones(4, 6)
    assert count_work(lambda: (x.t(), x.view(24), x.permute(1, 0), x[1:])) == Work(0, 0, 0)


def test_attention_counts_as_one_fused_kernel_and_with_a_mask_as_it_dispatches():
    b, h, lq, lk, d = 2, 3, 20, 30, 16
    q = torch.randn(b, h, lq, d, dtype=torch.bfloat16)
    k, v = (torch.randn(b, h, lk, d, dtype=torch.bfloat16) for _ in range(2))
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def attention(*args, **kwargs):  # looked up at call time, as diffusers does
        return torch.nn.functional.scaled_dot_product_attention(*args, **kwargs)

    fused = count_work(attention, q, k, v)
    assert fused.flops == 4 * b * h * lq * lk * d and fused.operations == 1
    # q, k, v read once, the output and its float32 log-sum-exp written (and a few bytes of RNG
    # state); never the [lq, lk] attention matrix
    qkvo = 2 * (2 * b * h * lq * d + 2 * b * h * lk * d)
    assert qkvo + 4 * b * h * lq <= fused.bytes_moved <= qkvo + 4 * b * h * lq + 64
    mask = torch.ones(lq, lk, dtype=torch.bool)
    unfused = count_work(attention, q, k, v, attn_mask=mask)
    # not the fused count: the function's own operations (here the mask's conversion and the
    # CPU kernel), uncounted by the flop formulas of the GPU kernels
    assert unfused.operations > 1 and unfused.bytes_moved > fused.bytes_moved
    assert torch.nn.functional.scaled_dot_product_attention is sdpa  # put back


def test_the_meta_device_counts_what_the_cpu_counts():
    torch.manual_seed(0)
    unet = build_stage_b("tiny")
    meta = build_stage_b("tiny", meta=True)
    inputs = (torch.randn(2, 4, 16, 16), torch.tensor([0.3, 0.7]), torch.randn(2, 16, 6, 6))
    on_cpu = count_work(predict_noise, unet, *inputs)
    on_meta = count_work(predict_noise, meta, *(x.to("meta") for x in inputs))
    assert on_cpu == on_meta and on_cpu.flops > 0 and on_cpu.operations > 50


def test_floors_and_arithmetic():
    work = Work(flops=8_000_000, bytes_moved=1_000_000, operations=10)
    assert work.flops_per_byte == 8.0
    assert work.floor_seconds(flops_per_second=4e9, bytes_per_second=1e9) == {
        "compute": 0.002, "memory": 0.001, "floor": 0.002}
    assert work + work.scaled(0.5) == Work(12_000_000, 1_500_000, 15)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with pytest.raises(RuntimeError):  # the function's own error passes through ...
        count_work(torch.mm, torch.ones(2, 3), torch.ones(2, 3))
    assert torch.nn.functional.scaled_dot_product_attention is sdpa  # ... and SDPA is back
