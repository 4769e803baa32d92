"""CUDA-graph replay of the semantic receiver: noise drawn ahead equals noise drawn step by step,
the graph path gives the eager path's images, captures once per shape, re-captures on a new
shape and falls back cleanly where capture is impossible (on CPU: always)."""
from __future__ import annotations

import warnings

import pytest
import torch

import semlink.models.graphs as graphs
from semlink.models.receiver import SemanticReceiver
from semlink.models.sampler import denoise_latents, draw_sampling_noise, sample_latents
from semlink.models.stage_b import build_stage_b
from tests.host_sync import record_host_syncs

pytestmark = pytest.mark.usefixtures("one_thread")

LATENT = (4, 16, 16)


def _gens(*seeds, device="cpu"):
    return [torch.Generator(device).manual_seed(s) for s in seeds]


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(7)
    return build_stage_b("tiny")


@pytest.fixture(scope="module")
def receiver():
    torch.manual_seed(3)
    rx = SemanticReceiver(stage_b="tiny", stage_a="tiny", steps=3)
    rx.random_weights = False
    return rx.eval()


@pytest.mark.parametrize("steps", [1, 4])
def test_noise_drawn_ahead_is_the_step_by_step_draw(steps):
    """Row i: its initial latent, then one draw per step but the last, all from generator i in
    that order; one generator: the whole batch per draw."""
    noise = draw_sampling_noise(3, LATENT, steps, _gens(5, 6, 7), "cpu")
    assert noise.shape == (steps, 3, *LATENT) and noise.dtype == torch.float32
    for row, gen in enumerate(_gens(5, 6, 7)):
        for k in range(steps):
            torch.testing.assert_close(noise[k, row], torch.randn(LATENT, generator=gen),
                                       rtol=0, atol=0)
    one = draw_sampling_noise(2, LATENT, steps, torch.Generator().manual_seed(9), "cpu")
    gen = torch.Generator().manual_seed(9)
    for k in range(steps):
        torch.testing.assert_close(one[k], torch.randn((2, *LATENT), generator=gen), rtol=0, atol=0)


def test_sampling_loop_on_noise_drawn_ahead_has_no_host_sync_and_no_random_call(unet):
    z = torch.randn(2, 16, 6, 6)
    noise = draw_sampling_noise(2, LATENT, 3, _gens(1, 2), "cpu")
    state = torch.random.get_rng_state()
    with record_host_syncs() as syncs:
        out = denoise_latents(unet, z, noise, guidance=1.5)
    assert syncs == []
    torch.testing.assert_close(torch.random.get_rng_state(), state, rtol=0, atol=0)
    torch.testing.assert_close(out, sample_latents(unet, z, LATENT, steps=3, guidance=1.5,
                                                   generators=_gens(1, 2)), rtol=0, atol=0)


def test_graphs_requested_on_cpu_give_the_eager_images(receiver):
    z = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    eager = receiver(z, _gens(1, 2), image_size=64)
    receiver.cuda_graphs = True
    try:
        graphed = receiver(z, _gens(1, 2), image_size=64)
    finally:
        receiver.cuda_graphs = False
    torch.testing.assert_close(graphed, eager, rtol=0, atol=0)
    assert len(receiver.graphs) == 0 and receiver.graphs.captures == 0


class _FakeCapture:
    """Stands in for CapturedCall on a machine without CUDA: records captures, replays eagerly."""

    made: list[tuple] = []

    def __init__(self, fn, inputs):
        self.fn = fn
        _FakeCapture.made.append(tuple(x.shape for x in inputs))

    def __call__(self, *inputs):
        return self.fn(*inputs)


@pytest.fixture
def fake_cuda(monkeypatch):
    _FakeCapture.made = []
    monkeypatch.setattr(graphs, "graphs_available", lambda device: True)
    monkeypatch.setattr(graphs, "CapturedCall", _FakeCapture)
    return _FakeCapture


def test_cache_captures_once_per_key_and_again_for_a_new_shape(fake_cuda):
    cache = graphs.GraphCache(max_graphs=2)
    double = lambda x: 2 * x  # noqa: E731
    for _ in range(3):
        torch.testing.assert_close(cache.run(("a", 2), double, torch.ones(2)), torch.full((2,), 2.0))
    assert cache.captures == 1 and fake_cuda.made == [((2,),)]
    cache.run(("a", 3), double, torch.ones(3))     # a new batch shape: captured anew
    cache.run(("a", 2), double, torch.ones(2))     # the first again: replayed, kept recent
    cache.run(("a", 4), double, torch.ones(4))     # a third: the least recent (3) goes
    assert cache.captures == 3 and len(cache) == 2
    cache.run(("a", 3), double, torch.ones(3))
    assert cache.captures == 4


def test_cache_falls_back_to_eager_calls_once_capture_fails(monkeypatch):
    class Refuses:
        def __init__(self, fn, inputs):
            raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(graphs, "graphs_available", lambda device: True)
    monkeypatch.setattr(graphs, "CapturedCall", Refuses)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    cache = graphs.GraphCache()
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .operation not permitted"):
        out = cache.run("k", lambda x: x + 1, torch.zeros(2))
    torch.testing.assert_close(out, torch.ones(2))
    assert cache.fallback_reason == "operation not permitted when stream is capturing"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: the next call runs eagerly without a word
        torch.testing.assert_close(cache.run("k2", lambda x: x + 1, torch.zeros(3)), torch.ones(3))
    assert cache.captures == 0


def test_receiver_keys_graphs_by_batch_shape_size_steps_and_guidance(receiver, fake_cuda):
    receiver.cuda_graphs = True
    try:
        z = torch.randn(2, 16, 4, 4)
        eager_free = [receiver(z, _gens(1, 2), image_size=64) for _ in range(2)]
        receiver(z[:1], _gens(1), image_size=64)
        receiver(z, _gens(1, 2), image_size=64, guidance=2.0)
        receiver(z, _gens(1, 2), image_size=64, steps=2)
    finally:
        receiver.cuda_graphs = False
        receiver.graphs.clear()
    torch.testing.assert_close(eager_free[0], eager_free[1], rtol=0, atol=0)
    assert len(fake_cuda.made) == 4
    assert fake_cuda.made[0] == ((2, 16, 4, 4), (3, 2, 4, 16, 16))


def test_bad_graph_option_raises():
    with pytest.raises(TypeError, match="`cuda_graphs` must be bool"):
        SemanticReceiver(stage_b="tiny", stage_a="tiny", cuda_graphs=1)
    with pytest.raises(ValueError, match=r"`max_graphs` must be in \[1, inf\]"):
        graphs.GraphCache(max_graphs=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 0.0), (torch.bfloat16, 0.0)])
def test_cuda_graph_replay_equals_the_eager_receiver(receiver, dtype, tolerance):
    """On CUDA the replayed graph launches the eager path's kernels on the same inputs: the
    same images (bit-equal: same kernels, same order), for float32 and bfloat16 weights; a new
    batch shape captures a second graph; replays reuse them."""
    dev = torch.device("cuda")
    rx = SemanticReceiver(stage_b="tiny", stage_a="tiny", steps=3, device=dev, dtype=dtype)
    rx.load_weights(receiver.stage_b.state_dict(), receiver.stage_a.state_dict())
    z = torch.randn(2, 16, 4, 4, device=dev, dtype=dtype)
    eager = rx(z, _gens(1, 2, device="cuda"), image_size=64)
    rx.cuda_graphs = True
    first = rx(z, _gens(1, 2, device="cuda"), image_size=64)
    again = rx(z, _gens(1, 2, device="cuda"), image_size=64)
    assert rx.graphs.fallback_reason is None and rx.graphs.captures == 1
    torch.testing.assert_close(first, eager, rtol=0, atol=tolerance)
    torch.testing.assert_close(again, eager, rtol=0, atol=tolerance)
    single = rx(z[:1], _gens(1, device="cuda"), image_size=64)
    assert rx.graphs.captures == 2
    rx.cuda_graphs = False
    torch.testing.assert_close(single, rx(z[:1], _gens(1, device="cuda"), image_size=64),
                               rtol=0, atol=tolerance)
