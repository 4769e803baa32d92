"""`semlink bench`: JSON layout, the CPU substitution of the real presets, timings that count."""
import json

import pytest
import torch

from simulator.bench import bench_receiver, bench_sd15_img2img, run_bench, sd15_models
from simulator.cli import main
from tests.threads import torch_threads

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cpu_run_of_a_real_preset_times_small_and_says_so():
    result = run_bench(preset="stable-cascade-lite", sizes=[64], batch_sizes=[1, 2], device="cpu",
                       steps=1, repeats=1)
    assert result["requested_preset"] == "stable-cascade-lite" and result["preset"] == "small"
    assert "'stable-cascade-lite' is timed on a CUDA device only" in result["note"]
    assert result["sd15_img2img"] == [] and result["device_name"].startswith("cpu (")
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
    from simulator import bench

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
    assert torch.cuda.is_available()
