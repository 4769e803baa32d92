"""The baseline links in a scenario run, beside the semantic and classical links: Img2Img-SC
(tiny random SD 1.5 models, captions from a file looked up by image name) and DeepJSCC (a
bundle written by semlink train), through the task runner like every link."""
from __future__ import annotations

import pytest
import torch

from semlink.api import open_results, read_scenario, run
from semlink.images import SAMPLE_DIR
from semlink.models.bundle import save_bundle
from semlink.models.deepjscc import DEEPJSCC_PRESET, DeepJSCC

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = {"channels": 4, "features": [8, 16], "stages": 2, "extra_layers": 0}


@pytest.fixture
def folder(tmp_path):
    names = sorted(p.name for p in SAMPLE_DIR.glob("*.png"))[:2]
    (tmp_path / "captions.csv").write_text(
        "image,caption\n" + "".join(f"{n},a photo called {n}\n" for n in names))
    torch.manual_seed(0)
    save_bundle(tmp_path / "jscc" / "model.safetensors", {"deepjscc": DeepJSCC(**ARCH)},
                preset=DEEPJSCC_PRESET, info={"architecture": {"deepjscc": ARCH}})
    return tmp_path


SCENARIO = """\
name: baselines
seed: 1
images: {source: sample, size: 64, count: 2}
snr: {points_db: [3, 20]}
batch_size: 2
metrics: [psnr]
links:
  i2i-published: {type: img2img-sc, model: tiny, captions: captions.csv, steps: 4}
  i2i-analog: {type: img2img-sc, model: tiny, transmission: analog, captions: captions.csv,
               steps: 4}
  jscc: {type: deepjscc, weights: jscc}
"""


def test_img2img_sc_and_deepjscc_run_in_a_scenario(folder):
    (folder / "s.yaml").write_text(SCENARIO)
    run(read_scenario(folder / "s.yaml"), output=folder / "r.h5")
    rows = open_results(folder / "r.h5").rows("images")
    by_link = {}
    for r in rows:
        by_link.setdefault(r["link"], []).append(r)
    assert {k: len(v) for k, v in by_link.items()} == {"i2i-published": 4, "i2i-analog": 4,
                                                      "jscc": 4}
    # 64 px: the SD latent [4, 8, 8] = 256 values; analog: 128 uses + the caption's code blocks;
    # as published: 64 bits per value / 4 bits per symbol, plus the caption's bytes.
    analog = {r["channel_uses"] for r in by_link["i2i-analog"]}
    assert len(analog) == 1 and analog.pop() > 128
    assert all(r["channel_uses"] > 256 * 16 for r in by_link["i2i-published"])
    assert {r["channel_uses"] for r in by_link["jscc"]} == {4 * 16 * 16 // 2}
    assert all(0 < r["metric_psnr"] < 60 for r in rows)


def test_a_captions_file_without_the_image_is_one_line(folder):
    (folder / "captions.csv").write_text("image,caption\nother.png,something\n")
    (folder / "s.yaml").write_text(SCENARIO)
    from semlink.errors import InputError

    with pytest.raises(InputError) as info:
        run(read_scenario(folder / "s.yaml"), output=folder / "r.h5")
    first = sorted(p.name for p in SAMPLE_DIR.glob("*.png"))[0]
    assert str(info.value) == (f"{folder / 'captions.csv'}: no caption for image {first} (add a "
                               f"row `{first},<caption>`).")
    # refused while the links are built, before the results file is created
    assert not (folder / "r.h5").exists()
