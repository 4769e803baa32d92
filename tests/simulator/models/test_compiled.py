"""torch.compile of stage B (SemanticReceiver(compiled=True), semlink bench --compile): the
compiled receiver gives the eager receiver's images up to float rounding, compiles once per
input shape, keeps the module's state dict as it is and drops its compiled code when weights
are loaded. Compiled on the CPU (inductor writes C++ there): about 15 s per shape here."""
from __future__ import annotations

import pytest
import torch

from semlink.models.receiver import SemanticReceiver

pytestmark = pytest.mark.usefixtures("one_thread")


def _receiver(compiled: bool) -> SemanticReceiver:
    torch.manual_seed(3)  # the same random weights for both
    rx = SemanticReceiver(stage_b="tiny", stage_a="tiny", steps=2, compiled=compiled)
    rx.random_weights = False
    return rx.eval()


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_compiled_stage_b_gives_the_eager_images_up_to_rounding_and_compiles_per_shape():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, compiled = _receiver(False), _receiver(True)
    for batch in (1, 2):  # a second shape: compiled again (static shapes), still the same
        z = torch.randn(batch, 16, 4, 4, generator=torch.Generator().manual_seed(batch))
        a = eager(z, _gens(*range(batch)), image_size=64)
        b = compiled(z, _gens(*range(batch)), image_size=64)
        # Fused kernels sum in another order: not bit-equal, but far below one 8-bit level
        # (1/255) of the [0, 1] images.
        assert a.shape == b.shape == (batch, 3, 64, 64)
        difference = (a - b).abs()
        assert difference.max() < 1 / 255 and difference.mean() < 1e-4
    counters = torch._dynamo.utils.counters["stats"]
    assert counters["unique_graphs"] >= 2  # one per shape at least


def test_the_benchs_difference_from_eager_is_the_compiled_images_against_the_eager_ones():
    """``semlink bench --compile`` rows carry ``difference_from_eager``: the compiled call's
    images against an eager receiver's with the same weights, inputs and seeds (0, 1, ... per
    row, fresh for each call: a generator used once draws other noise), computed here apart;
    the receiver is compiled again afterwards."""
    from semlink.bench import _difference_from_eager

    eager, compiled = _receiver(False), _receiver(True)
    z = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    compiled(z, _gens(0), image_size=64)  # calls before do not matter
    difference = _difference_from_eager(compiled, z, image_size=64, steps=2, guidance=1.5)
    expected = (compiled(z, _gens(0), image_size=64, guidance=1.5)
                - eager(z, _gens(0), image_size=64, guidance=1.5)).abs()
    assert difference == {"max": float(expected.max()), "mean": float(expected.mean())}
    assert difference["max"] < 1 / 255  # rounding, not other noise
    assert compiled.compiled and not compiled.cuda_graphs


def test_the_compiled_wrapper_is_not_a_submodule_and_loading_weights_drops_it():
    rx = _receiver(True)
    keys = list(rx.state_dict())
    wrapper = rx._sampling_stage_b()  # built, not compiled yet (that is the first call)
    assert wrapper is not rx.stage_b and wrapper is rx._sampling_stage_b()
    assert list(rx.state_dict()) == keys  # no second copy of stage B's parameters
    rx.load_weights(rx.stage_b.state_dict(), rx.stage_a.state_dict())
    assert rx._sampling_stage_b() is not wrapper  # compiled code guarded on the old weights
    eager = _receiver(False)
    assert eager._sampling_stage_b() is eager.stage_b
    with pytest.raises(TypeError, match="compiled"):
        SemanticReceiver(stage_b="tiny", stage_a="tiny", compiled=1)


def test_a_compilation_that_fails_warns_once_and_runs_eagerly(monkeypatch):
    """Where inductor cannot compile (here: a backend that refuses), the receiver says why
    once and gives the eager images, bit for bit, from then on."""
    from torch._dynamo.exc import BackendCompilerFailed

    def refusing_backend(graph_module, example_inputs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: torch._dynamo.optimize(
        refusing_backend, nopython=True)(module))
    torch._dynamo.reset()
    eager, compiled = _receiver(False), _receiver(True)
    z = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(5))
    with pytest.warns(RuntimeWarning, match=r"torch.compile of stage B failed \(.*no C\+\+ "
                                            r"compiler.*\); running eagerly"):
        b = compiled(z, _gens(0), image_size=64)
    assert torch.equal(b, eager(z, _gens(0), image_size=64)) and not compiled.compiled
    assert issubclass(BackendCompilerFailed, torch._dynamo.exc.TorchDynamoException)


def test_a_scenarios_semantic_link_with_compile_gives_the_eager_psnr_and_its_own_hash(tmp_path):
    """``links.NAME.compile: true``: the same run up to rounding (PSNR within 0.01 dB of the
    eager run's per image), another scenario hash; a scenario without the field keeps its hash
    (the field is null there, and null fields are not hashed)."""
    import semlink
    from semlink.scenario import parse_scenario, scenario_hash

    text = """\
device: cpu
images: {source: sample, size: 64, count: 2}
snr: {points_db: [10]}
links:
  semantic: {type: semantic, preset: small}
"""
    eager = semlink.read_scenario(text=text)
    compiled = eager.overridden({"links.semantic.compile": True})
    assert scenario_hash(parse_scenario(text)) == scenario_hash(
        parse_scenario(text.replace("preset: small}", "preset: small, compile: null}")))
    assert scenario_hash(eager.scenario) != scenario_hash(compiled.scenario)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    a = semlink.run(eager, output=tmp_path / "a.h5").rows("images")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 0  # eager: nothing compiled
    b = semlink.run(compiled, output=tmp_path / "b.h5").rows("images")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert [r["image"] for r in a] == [r["image"] for r in b] and len(a) == 2
    assert max(abs(x["metric_psnr"] - y["metric_psnr"]) for x, y in zip(a, b)) < 0.01


@pytest.mark.gpu
def test_compiled_bf16_on_cuda_is_as_close_to_float32_as_eager_bf16():
    """On CUDA in bfloat16 (as the real presets run) the compiled receiver is a rounding of the
    same function: its images are no farther from the float32 receiver's than eager bfloat16's
    are (mean absolute difference, at most twice eager's plus 1e-3; on the CPU, 0.0016 against
    eager's 0.12 for these random tiny models, whose sampling amplifies rounding). A failed
    compilation is an error here, not a warning."""
    import warnings

    cuda = torch.device("cuda")
    reference = _receiver(False).to(cuda)
    weights = reference.stage_b.state_dict(), reference.stage_a.state_dict()
    eager, compiled = (SemanticReceiver(stage_b="tiny", stage_a="tiny", steps=2, device=cuda,
                                        dtype=torch.bfloat16, compiled=c) for c in (False, True))
    for rx in (eager, compiled):
        rx.load_weights(*weights)
    z = torch.randn(2, 16, 4, 4, device=cuda, generator=torch.Generator(cuda).manual_seed(4))

    def images(rx, zhat):
        gens = [torch.Generator(cuda).manual_seed(s) for s in (0, 1)]
        return rx(zhat, gens, image_size=64)

    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        b = images(compiled, z.bfloat16())
    assert compiled.compiled
    truth, a = images(reference, z), images(eager, z.bfloat16())
    eager_error, compiled_error = (float((x - truth).abs().mean()) for x in (a, b))
    assert compiled_error <= 2 * eager_error + 1e-3, (compiled_error, eager_error)
