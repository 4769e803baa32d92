"""The shipped DeepJSCC `small` preset through the product's own link: on the 8 sample photos at
256 px over AWGN, at least 16 dB PSNR at 20 dB and at most 3 dB less at 1 dB (issue 19), the
semantic link's budget of channel uses, and the recipe's architecture and provenance in the
bundle."""
from __future__ import annotations

import pytest
import torch

from semlink.images import load_images
from semlink.links.deepjscc import shipped_weights
from semlink.links.protocol import LinkContext
from semlink.metrics.quality import psnr_db
from semlink.models.bundle import read_bundle_info
from semlink.scenario import AWGNConfig
from semlink.scenario.link_deepjscc import DeepJSCCLinkConfig
from tests.sample_psnr import mean_psnr_by_snr

pytestmark = pytest.mark.usefixtures("one_thread")


def _link(side: int):
    context = LinkContext(name="deepjscc", image_shape=(side, side), device="cpu", seed=0,
                          base_dir=None, channel=AWGNConfig(type="awgn"),
                          channel_uses_of=lambda name: 0)
    return DeepJSCCLinkConfig(type="deepjscc").build(context)


@pytest.fixture(scope="module")
def psnr_by_snr() -> dict[float, float]:
    return mean_psnr_by_snr(_link(256), load_images("sample", 256)[0])


def test_the_shipped_preset_sends_the_semantic_links_budget():
    """9 channels at 1/32 of the side: [9, 8, 8] = 576 reals = 288 complex uses at 256 px and
    [9, 16, 16] = 1152 uses at 512 px, the small and paper semantic links' budgets."""
    info = read_bundle_info(shipped_weights("small"))
    assert info["preset"] == "deepjscc" and info["parts"] == ["deepjscc"]
    arch = info["info"]["architecture"]["deepjscc"]
    assert arch["channels"] == 9 and arch["stages"] == 5 and arch["shortcut"] is True
    small, paper = _link(256), _link(512)
    assert small.channel_uses == 288 and paper.channel_uses == 1152
    assert tuple(small.dimensionality().sent_shape) == (9, 8, 8)
    assert tuple(paper.dimensionality().sent_shape) == (9, 16, 16)
    assert round(paper.dimensionality().compression_ratio) == 341


def test_reaches_16_db_and_degrades_by_at_most_3_db(psnr_by_snr):
    assert psnr_by_snr[20.0] >= 16.0, psnr_by_snr
    assert psnr_by_snr[20.0] - psnr_by_snr[1.0] <= 3.0, psnr_by_snr


def test_the_symbols_carry_the_image():
    """Decoding another image's symbols is far worse than decoding the image's own: the
    decoder uses what the channel delivered, not a learned average."""
    link = _link(256)
    images = load_images("sample", 256, count=4)[0]
    with torch.no_grad():
        x = link.model.encode(images)
        own = float(psnr_db(images, link.model.decode(x, (256, 256))).mean())
        other = float(psnr_db(images, link.model.decode(x.roll(1, dims=0), (256, 256))).mean())
    assert own > other + 3.0, (own, other)
