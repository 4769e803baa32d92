"""The deepjscc link: channel uses and dimensionality from the network, the symbols through the
scenario's channel, bundles checked with one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.errors import InputError
from semlink.links.deepjscc import DeepJSCCLink, load_deepjscc
from semlink.links.protocol import ImageLink, LinkContext
from semlink.models.bundle import save_bundle
from semlink.models.deepjscc import DEEPJSCC_PRESET, DeepJSCC, deepjscc_channel_uses
from semlink.scenario.link_deepjscc import DeepJSCCLinkConfig

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = {"channels": 4, "features": [8, 16], "stages": 2, "extra_layers": 0}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("jscc") / "model.safetensors"
    return save_bundle(path, {"deepjscc": DeepJSCC(**ARCH)}, preset=DEEPJSCC_PRESET,
                       info={"architecture": {"deepjscc": ARCH}})


def _context(tmp_path, shape=(64, 64)) -> LinkContext:
    return LinkContext(name="jscc", image_shape=shape, device="cpu", seed=0, base_dir=tmp_path,
                       channel=None, channel_uses_of=lambda name: 0)


@pytest.mark.parametrize("side, channels, uses", [(512, 9, 1152), (256, 9, 288), (1024, 9, 4608)])
def test_channel_uses_are_the_published_budgets(side, channels, uses):
    """9 channels at 1/32 of the side: 2304 reals = 1152 complex uses at 512 px (the semantic
    link's budget), 288 at 256 px."""
    assert deepjscc_channel_uses(side, side, channels=channels) == uses
    assert DeepJSCC(channels=channels, features=4).channel_uses(side, side) == uses


def test_the_link_follows_the_protocol_and_reports_its_dimensionality(bundle, tmp_path):
    cfg = DeepJSCCLinkConfig(type="deepjscc", weights=str(bundle))
    link = cfg.build(_context(tmp_path, (64, 128)))
    assert isinstance(link, ImageLink) and link.kind == "image" and link.scoring == "concealed"
    # [4, 16, 32] reals = 1024 complex uses per 64 x 128 image
    assert link.channel_uses == 4 * 16 * 32 // 2
    d = link.dimensionality()
    assert d.sent_shape == (4, 16, 32) and d.channel_uses == 1024
    assert d.compression_ratio == pytest.approx(3 * 64 * 128 / (4 * 16 * 32))


def test_symbols_cross_the_channel_and_noise_shows_in_the_images(bundle, tmp_path):
    link = DeepJSCCLinkConfig(type="deepjscc", weights=str(bundle)).build(_context(tmp_path))
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))

    def send(snr_db, seed=0):
        channel = AWGNChannel(generator=torch.Generator().manual_seed(seed))
        return link.transmit(images, channel, snr_db, generators=lambda purpose: [])

    clean = link.model.decode(link.model.encode(images), (64, 64))
    high, low = send(60.0), send(0.0)
    assert high.images.shape == images.shape and high.failed.tolist() == [False, False]
    torch.testing.assert_close(high.images, clean, rtol=0, atol=1e-3)
    assert (low.images - clean).abs().mean() > 10 * (high.images - clean).abs().mean()
    # Unit-power symbols: the symbols' error is the noise variance 1 / SNR (0 dB: about 1).
    assert low.columns["symbol_mse"].shape == (2,)
    assert low.columns["symbol_mse"].mean().item() == pytest.approx(1.0, rel=0.15)
    torch.testing.assert_close(send(0.0, seed=3).images, send(0.0, seed=3).images)


def test_relative_weights_start_from_the_scenario_folder(bundle, tmp_path):
    cfg = DeepJSCCLinkConfig(type="deepjscc", weights=bundle.parent.name)
    link = cfg.build(_context(bundle.parent.parent))
    assert link.channel_uses == 4 * 16 * 16 // 2


def test_bad_weights_and_sizes_give_one_line(bundle, tmp_path):
    def build(weights, shape=(64, 64)):
        return DeepJSCCLinkConfig(type="deepjscc", weights=str(weights)).build(
            _context(tmp_path, shape))

    with pytest.raises(InputError, match=r"links.jscc.weights: .*missing.safetensors: model "
                                         r"bundle not found"):
        build(tmp_path / "missing.safetensors")
    other = save_bundle(tmp_path / "other.safetensors", {"stage_a": torch.nn.Linear(2, 2)},
                        preset="small")
    with pytest.raises(InputError, match="holds weights of 'small', not a DeepJSCC"):
        build(other)
    bare = save_bundle(tmp_path / "bare.safetensors", {"deepjscc": DeepJSCC(**ARCH)},
                       preset=DEEPJSCC_PRESET)
    with pytest.raises(InputError, match="records no DeepJSCC architecture"):
        build(bare)
    with pytest.raises(InputError, match=r"links.jscc: images: image 64x70 px: both sides must "
                                         r"be multiples of 4"):
        build(bundle, (64, 70))
    for error in (InputError,):
        with pytest.raises(error):
            load_deepjscc(tmp_path)  # a folder without model.safetensors


def _silence_the_stacks(model: DeepJSCC) -> None:
    """Zero the last layer of each convolution stack: only the linear shortcut speaks."""
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
        last = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last.weight.zero_()
        last.bias.zero_()


def test_the_shortcut_alone_is_a_linear_thumbnail_codec():
    """With both stacks silenced the network is the documented linear path, recomputed here by
    reshapes instead of pooling and pixel (un)shuffle: 8x8 block means of the centred image
    (32 px side / 2^(stages-2)), each 4x4 group of them as 48 values, a 1x1 convolution into
    the channels, unit power per image; back: 1x1 convolution, the 4x4 groups put back,
    bilinear upsampling, times 4 into the sigmoid."""
    torch.manual_seed(3)
    model = DeepJSCC(channels=4, features=[4, 4, 4, 4, 4], stages=5, extra_layers=0,
                     shortcut=True)
    _silence_the_stacks(model)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    means = (images - 0.5).reshape(2, 3, 8, 8, 8, 8).mean(dim=(3, 5))        # [2, 3, 8, 8]
    groups = means.reshape(2, 3, 2, 4, 2, 4).permute(0, 1, 3, 5, 2, 4)      # c, i, j, h, w
    thumb = groups.reshape(2, 48, 2, 2)
    w, b = model.encoder_shortcut.weight[:, :, 0, 0], model.encoder_shortcut.bias
    z = torch.einsum("oc,bchw->bohw", w, thumb) + b[None, :, None, None] # [2, 4, 2, 2]
    pairs = z.reshape(2, -1, 2)
    x = torch.complex(pairs[..., 0], pairs[..., 1])
    x = x / x.abs().pow(2).mean(dim=1, keepdim=True).sqrt()
    with torch.no_grad():
        assert torch.allclose(model.encode(images), x, atol=1e-5)
        zr = torch.view_as_real(x).reshape(2, 4, 2, 2)
        w2, b2 = model.decoder_shortcut.weight[:, :, 0, 0], model.decoder_shortcut.bias
        back = torch.einsum("oc,bchw->bohw", w2, zr) + b2[None, :, None, None]
        small = back.reshape(2, 3, 4, 4, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(2, 3, 8, 8)
        up = torch.nn.functional.interpolate(small, size=(64, 64), mode="bilinear",
                                             align_corners=False)
        logits = model.decoder[:-1](zr)  # the silenced stack: its bias, zero
        assert float(logits.abs().max()) == 0.0
        assert torch.allclose(model.decode(x, (64, 64)), torch.sigmoid(4.0 * up), atol=1e-5)


def test_the_shortcut_is_recorded_only_when_used_and_needs_two_stages():
    plain = DeepJSCC(**ARCH)
    assert "shortcut" not in plain.config  # bundles written before it keep their config
    assert not any("shortcut" in k for k in plain.state_dict())
    with_it = DeepJSCC(**ARCH, shortcut=True)
    assert with_it.config == {**ARCH, "shortcut": True}
    assert DeepJSCC(**with_it.config).state_dict().keys() == with_it.state_dict().keys()
    with pytest.raises(ValueError, match="`shortcut` needs stages >= 2"):
        DeepJSCC(channels=4, features=8, stages=1, shortcut=True)
