"""The shipped `small` model through the product's own semantic link: on the 8 sample photos at
256 px over AWGN it reconstructs the scenes, PSNR at 20 dB well above the best constant-colour
image, and degrades gracefully down to 1 dB.

Measured on these seeds: 15.37 dB at 20 dB and 14.74 dB at 1 dB against 12.32 dB for the constant
colour: +3.05 dB, where issue 8 asks for at least +3 dB (docs/training.md)."""
from __future__ import annotations

import pytest
import torch

from semlink.images import load_images
from semlink.links.semantic import SemanticLink
from semlink.metrics.quality import psnr_db
from semlink.models.bundle import BUNDLE_FILE, bundle_prediction, read_bundle_info
from semlink.models.presets import get_preset
from semlink.scenario import AnalogTransmission
from semlink.seeding import make_generator
from tests.sample_psnr import mean_psnr_by_snr

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def psnr_by_snr() -> tuple[dict[float, float], float]:
    link = SemanticLink(preset="small", image_size=256,
                        transmission=AnalogTransmission(mode="analog"))
    assert link.weights_source.endswith(BUNDLE_FILE) and not link.receiver.random_weights
    images = load_images("sample", 256)[0]                          # [8, 3, 256, 256]
    flat = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    return mean_psnr_by_snr(link, images), float(psnr_db(images, flat).mean())


def test_shipped_bundle_is_the_presets():
    info = read_bundle_info(get_preset("small").shipped_weights_dir / BUNDLE_FILE)
    assert info["preset"] == "small" and info["parts"] == ["encoder", "stage_a", "stage_b"]
    assert bundle_prediction(info) == get_preset("small").prediction == "v_prediction"


def test_reconstructs_the_scenes(psnr_by_snr):
    psnr, constant = psnr_by_snr
    assert psnr[20.0] >= constant + 3.0, (psnr, constant)
    assert psnr[1.0] >= psnr[20.0] - 4.0, psnr


def test_the_embedding_matters():
    """Sampling from an all-zero embedding (the unconditional path) is far worse than from the
    image's own embedding: the receiver uses what the channel delivered."""
    link = SemanticLink(preset="small", image_size=256,
                        transmission=AnalogTransmission(mode="analog"))
    images = load_images("sample", 256, count=4)[0]
    z = link.encode(images)
    gens = lambda: [make_generator(i) for i in range(4)]  # noqa: E731
    own = float(psnr_db(images, link.reconstruct(z, gens())).mean())
    none = float(psnr_db(images, link.reconstruct(torch.zeros_like(z), gens())).mean())
    assert own > none + 2.0, (own, none)
