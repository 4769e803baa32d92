"""`semlink bench`: JSON layout, the CPU substitution of the real presets, timings that count."""
import json

import diffusers
import pytest
import torch

from semlink.bench import bench_receiver, bench_sd15_img2img, run_bench, sd15_models
from semlink.cli import main
from tests.threads import torch_threads

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cpu_run_of_a_real_preset_times_small_and_says_so():
    result = run_bench(preset="stable-cascade-lite", sizes=[64], batch_sizes=[1, 2], device="cpu",
                       steps=1, repeats=1)
    assert result["requested_preset"] == "stable-cascade-lite" and result["preset"] == "small"
    assert "'stable-cascade-lite' is timed on a CUDA device only" in result["note"]
    assert result["sd15_img2img"] == [] and result["device_name"].startswith("cpu (")
    assert result["img2img_sc"] == []  # with SD 1.5: on CUDA, or asked for
    # The versions the numbers depend on, as a results file records them.
    assert result["torch"] == result["versions"]["torch"] == torch.__version__
    assert result["diffusers"] == result["versions"]["diffusers"] == diffusers.__version__
    rows = result["receiver"]
    assert [(r["image_size"], r["batch_size"]) for r in rows] == [(64, 1), (64, 2)]
    for row in rows:
        assert row["preset"] == "small" and row["dtype"] == "float32" and row["steps"] == 1
        assert row["seconds_per_image"] > 0
        assert row["images_per_second"] == pytest.approx(1 / row["seconds_per_image"])
        assert row["peak_memory_mib"] is None  # only measured on CUDA
    json.dumps(result)


def test_more_steps_take_longer():
    """The timing measures the sampling loop: 8 UNet steps cost clearly more than 1, while
    stage A's decoding, timed alone, costs the same and less than the whole receiver."""
    one = bench_receiver("small", 64, 1, device="cpu", steps=1, repeats=3)
    eight = bench_receiver("small", 64, 1, device="cpu", steps=8, repeats=3)
    assert eight["seconds_per_image"] > 2 * one["seconds_per_image"]
    assert 0 < eight["stage_a_seconds_per_image"] < eight["seconds_per_image"] / 2
    assert 0 < one["stage_a_seconds_per_image"] < 4 * eight["stage_a_seconds_per_image"]


def test_cli_writes_json_and_rejects_unknown_preset(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--preset", "stable-cascade", "--size", "64", "--batch", "1",
                 "--steps", "1", "--repeats", "1", "--device", "cpu", "--json", str(out)])
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved == json.loads(capsys.readouterr().out)
    assert saved["preset"] == "small" and saved["requested_preset"] == "stable-cascade"
    assert main(["bench", "--preset", "stable-cascade-xl", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset: unknown preset 'stable-cascade-xl'" in err


def test_a_run_cut_short_keeps_what_it_measured(tmp_path, monkeypatch, capsys):
    """--json is rewritten after every measurement: a crash (or a time limit) in the third
    measurement leaves the first two in the file, and stderr shows each as it lands."""
    from semlink import bench

    real = bench.bench_receiver
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("device lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(bench, "bench_receiver", flaky)
    out = tmp_path / "sub" / "bench.json"
    with pytest.raises(RuntimeError, match="device lost"):
        main(["bench", "--size", "64", "--batch", "1", "2", "3", "--steps", "1", "--repeats",
              "1", "--device", "cpu", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert [(r["image_size"], r["batch_size"]) for r in saved["receiver"]] == [(64, 1), (64, 2)]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("semlink bench: small 64 px, batch 1: ") and err[0].endswith(
        " s/image")
    assert len(err) == 2


def test_sd15_models_have_the_published_sizes():
    unet, vae = sd15_models(meta=True)
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863


def test_sd15_img2img_runs_on_cpu():
    """The SD 1.5 img2img baseline end to end (VAE encode, guided DDIM steps, decode) with
    the real 860M-parameter UNet, float32 on the CPU (~20 s): a GPU run times the same code."""
    with torch_threads(2):
        row = bench_sd15_img2img(64, 1, device="cpu", steps=2, repeats=1)
    assert row["dtype"] == "float32" and row["steps"] == 2 and row["seconds_per_image"] > 0
    assert row["peak_memory_mib"] is None


@pytest.mark.gpu
def test_cuda_bench_includes_sd15():
    result = run_bench(preset="small", sizes=[256], batch_sizes=[1], device="cuda", steps=2,
                       repeats=1)
    assert result["receiver"][0]["peak_memory_mib"] > 0
    assert result["sd15_img2img"][0]["seconds_per_image"] > 0
    (row,) = result["img2img_sc"]  # on by default where SD 1.5 is timed, at its real sizes
    assert row["model"] == "sd15" and row["dtype"] == "float16" and row["peak_memory_mib"] > 0
    assert row["denoising_steps"] == 30 and row["seconds_per_image"] > 0
    assert torch.cuda.is_available()


def test_timing_arithmetic_on_a_fake_clock(monkeypatch):
    """Seconds per image = time of the timed calls / (repeats x batch), the warm-up call left
    out; images/s its inverse; stage A's share likewise. A fake clock that advances 0.6 s per
    receiver call (a whole batch) and 0.1 s per stage-A decode gives, by hand, for 3 repeats of
    a batch of 2: 3 x 0.6 / 6 = 0.3 s/image, 1 / 0.3 images/s, 3 x 0.1 / 6 = 0.05 s/image; the
    warm-up call, timed alone, 0.6 s."""
    from types import SimpleNamespace

    from semlink import bench

    now = [100.0]

    class FakeReceiver:
        stage_b = SimpleNamespace(config=SimpleNamespace(in_channels=4))
        stage_a, latent_scale_factor = None, 1.0
        graphs = SimpleNamespace(captures=0, fallback_reason=None)
        compiled = False

        @classmethod
        def from_preset(cls, preset, *, device, dtype, cuda_graphs, compiled, channels_last):
            return cls()

        def __call__(self, zhat, gens, **kwargs):
            assert len(gens) == zhat.shape[0] == 2
            now[0] += 0.6

    def decode_latents(stage_a, latents, scale):
        now[0] += 0.1

    monkeypatch.setattr(bench, "SemanticReceiver", FakeReceiver)
    monkeypatch.setattr(bench, "decode_latents", decode_latents)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    row = bench.bench_receiver("small", 64, 2, device="cpu", steps=1, repeats=3)
    assert row["seconds_per_image"] == pytest.approx(0.3)
    assert row["warmup_seconds"] == pytest.approx(0.6)  # the one warm-up call, timed apart
    assert row["images_per_second"] == pytest.approx(1 / 0.3)
    assert row["stage_a_seconds_per_image"] == pytest.approx(0.05)


def test_out_of_memory_ends_only_that_sizes_sweep(monkeypatch):
    """A batch that runs out of GPU memory is recorded as such, the larger batches of that
    size are not tried, and the next size starts again from the smallest batch."""
    from semlink import bench

    calls = []

    def fake(preset, size, batch, **kwargs):
        calls.append((size, batch))
        if size == 64 and batch >= 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return {"image_size": size, "batch_size": batch}

    monkeypatch.setattr(bench, "bench_receiver", fake)
    result = run_bench(preset="small", sizes=[64, 128], batch_sizes=[1, 2, 4], device="cpu",
                       sd15=False)
    assert calls == [(64, 1), (64, 2), (128, 1), (128, 2), (128, 4)]
    assert result["receiver"][1] == {"image_size": 64, "batch_size": 2, "error": "out of memory"}
    assert len(result["receiver"]) == 5


def test_cpu_bench_times_the_img2img_sc_link_with_the_tiny_models_when_asked():
    """``img2img_sc=True`` on the CPU: the link as published (50 DDIM steps x 0.6 = 30, guidance
    9) with the tiny random models, once per size at the first batch size, each measurement
    reported as it lands; the JSON row says which models ran."""
    seen = []
    result = run_bench(preset="small", sizes=[64], batch_sizes=[1, 2], device="cpu", steps=1,
                       sd15=False, img2img_sc=True, repeats=1,
                       on_result=lambda r: seen.append((len(r["receiver"]),
                                                        len(r["img2img_sc"]))))
    assert seen == [(1, 0), (2, 0), (2, 1)]
    (row,) = result["img2img_sc"]
    assert row["pipeline"] == "img2img-sc" and row["model"] == "tiny"
    assert row["transmission"] == "as_published" and row["denoising_steps"] == 30
    assert (row["image_size"], row["batch_size"], row["dtype"]) == (64, 1, "float32")
    assert row["warmup_seconds"] > 0 and row["seconds_per_image"] > 0
    assert row["seconds_per_image"] == pytest.approx(sum(
        row[f"{k}_seconds_per_image"] for k in ("encode", "transmission", "denoise", "decode")))
    assert result["sd15_img2img"] == []
    json.dumps(result)


def test_img2img_sc_out_of_memory_is_recorded_and_ends_only_that_size(monkeypatch):
    from semlink.links import img2img

    calls = []

    def fake(size, batch, **kwargs):
        calls.append((size, batch, kwargs["model"]))
        if size == 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return {"image_size": size, "batch_size": batch}

    monkeypatch.setattr(img2img, "bench_img2img_sc", fake)
    monkeypatch.setattr("semlink.bench.bench_receiver", lambda *a, **k: {"image_size": a[1]})
    result = run_bench(preset="small", sizes=[64, 128], batch_sizes=[4, 8], device="cpu",
                       sd15=False, img2img_sc=True)
    assert calls == [(64, 4, "tiny"), (128, 4, "tiny")]
    assert result["img2img_sc"] == [
        {"pipeline": "img2img-sc", "model": "tiny", "image_size": 64, "batch_size": 4,
         "error": "out of memory"}, {"image_size": 128, "batch_size": 4}]


def test_cli_img2img_sc_options(tmp_path, capsys):
    """``--img2img-sc`` times the link on the CPU too (stderr names it and its models);
    ``--no-img2img-sc`` skips it; the two together are a usage error."""
    out = tmp_path / "bench.json"
    common = ["bench", "--size", "64", "--batch", "1", "--steps", "1", "--repeats", "1",
              "--device", "cpu", "--no-sd15"]
    assert main([*common, "--img2img-sc", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [r["model"] for r in saved["img2img_sc"]] == ["tiny"]
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("semlink bench: img2img-sc (tiny) 64 px, batch 1: ")
    assert main([*common, "--no-img2img-sc", "-q", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["img2img_sc"] == []
    with pytest.raises(SystemExit) as info:
        main([*common, "--img2img-sc", "--no-img2img-sc"])
    assert info.value.code == 2
