"""The semantic link end to end on the small preset: shapes, seeds, noise reaching the receiver."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
from PIL import Image

from semlink.channels.awgn import AWGNChannel
from semlink.channel import build_channel
from semlink.cli import main
from semlink.images import SAMPLE_DIR, load_images
from semlink.links.semantic import SemanticLink
from semlink.metrics.quality import psnr_db
from semlink.scenario import (
    AmplifierConfig,
    AnalogTransmission,
    AWGNConfig,
    DigitalTransmission,
    OFDMConfig,
    OFDMPhaseTrackingConfig,
    PhaseTrackingConfig,
    RayleighConfig,
)
from semlink.seeding import make_generator
from tests.corrupt_blocks import CorruptBlocks
from tests.host_sync import record_host_syncs

ANALOG = AnalogTransmission(mode="analog")


pytestmark = pytest.mark.usefixtures("one_thread")


def _link(size: int | tuple[int, int], **kwargs) -> SemanticLink:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # random weights until trained ones ship
        return SemanticLink(preset="small", image_size=size, transmission=kwargs.pop("tx", ANALOG),
                            **kwargs)


@pytest.mark.parametrize("size, z_shape", [(512, (16, 12, 12)), (1024, (16, 24, 24))])
def test_shapes_through_the_link(size, z_shape):
    link = _link(size, steps=1)
    assert link.embedding_shape == z_shape
    assert link.channel_uses == math.prod(z_shape) // 2  # 1152 at 512 px, as in the paper
    if size == 512:
        images = load_images("sample", size, count=1)[0]
        z = link.encode(images)
        assert z.shape == (1, *z_shape)
        zhat = link.send(z, AWGNChannel(generator=make_generator(0)), 10.0).zhat
        out = link.reconstruct(zhat, [make_generator(1)])
        assert out.shape == (1, 3, 512, 512) and 0 <= float(out.min()) <= float(out.max()) <= 1


def test_non_square_images_through_the_link():
    """(height, width) = (128, 192): the encoder's 0.75 resize gives 96 x 144 px, one embedding
    cell per started 32 px: Z [16, 3, 5] (120 complex channel uses), and the receiver returns
    the image's own shape. Kodak's 768 x 512 at 512 px: Z [16, 12, 18], 1728 uses."""
    assert _link((512, 768)).embedding_shape == (16, 12, 18)
    link = _link((128, 192), steps=1)
    assert link.embedding_shape == (16, 3, 5) and link.channel_uses == 120
    images = load_images("sample", (128, 192), count=2)[0]
    out = link.transmit(images, AWGNChannel(generator=make_generator(0)), 10.0,
                        lambda purpose: [make_generator(1), make_generator(2)])
    assert link.encode(images).shape == (2, 16, 3, 5) and out.images.shape == (2, 3, 128, 192)


@pytest.mark.parametrize("snr_db", [1.0, 10.0, 20.0])
def test_noise_reaches_the_embedding_at_the_configured_snr(snr_db):
    link = _link(512)
    z = link.encode(load_images("sample", 512)[0])  # [8, 16, 12, 12]
    zhat = link.send(z, AWGNChannel(generator=make_generator(3)), snr_db).zhat
    measured = 10 * math.log10(float((z ** 2).mean() / ((zhat - z) ** 2).mean()))
    # 8 x 2304 reals: the noise power estimate has ~1.5% std, i.e. ~0.07 dB.
    assert measured == pytest.approx(snr_db, abs=0.3)


def test_repetitions_spend_r_times_the_channel_uses_and_divide_the_noise():
    """repetitions: 4 sends every symbol four times (4 x 288 channel uses at 256 px): over AWGN
    the combined noise is a quarter, so the embedding arrives 6 dB cleaner than at one send
    (measured over 8 photos); over fading Zhat is the demapped MRC of the four draws,
    recomputed here from the same channel."""
    from semlink.modulation.analog import AnalogDemapper, AnalogMapper
    from semlink.modulation.combining import chase_combine

    tx = AnalogTransmission(mode="analog", repetitions=4)
    link = _link(256, tx=tx)
    assert link.channel_uses == 4 * 288
    z = link.encode(load_images("sample", 256)[0])
    zhat = link.send(z, AWGNChannel(generator=make_generator(3)), 5.0)[0]
    measured = 10 * math.log10(float((z ** 2).mean() / ((zhat - z) ** 2).mean()))
    assert measured == pytest.approx(5.0 + 10 * math.log10(4), abs=0.3)
    fading = RayleighConfig(type="rayleigh", coherence_symbols=8)
    zhat = link.send(z[:2], build_channel(fading, generator=make_generator(5), device="cpu"),
                     4.0)[0]
    x, scale = AnalogMapper(shape=link.embedding_shape)(z[:2])
    channel = build_channel(fading, generator=make_generator(5), device="cpu")
    x_hat, no_eff = channel(x, 4.0)
    for _ in range(3):
        x_hat, no_eff = chase_combine(x_hat, no_eff, *channel(x, 4.0))
    torch.testing.assert_close(zhat, AnalogDemapper(shape=link.embedding_shape)(x_hat, scale))


@pytest.mark.parametrize("estimate", ["lmmse", "noise-matched"])
def test_the_receivers_symbol_estimate_is_applied_before_demapping(estimate):
    """With an estimate the link's Zhat is the demapped estimate of the equalised symbols
    (recomputed here from the same channel draw); over AWGN noise-matched changes nothing."""
    from semlink.modulation.analog import AnalogDemapper, AnalogMapper, estimate_symbols

    tx = AnalogTransmission(mode="analog", estimate=estimate)
    link = _link(256, tx=tx)
    z = link.encode(load_images("sample", 256, count=2)[0])
    fading = RayleighConfig(type="rayleigh", coherence_symbols=8)
    zhat = link.send(z, build_channel(fading, generator=make_generator(5), device="cpu"), 4.0)[0]
    x, scale = AnalogMapper(shape=link.embedding_shape)(z)
    x_hat, no_eff = build_channel(fading, generator=make_generator(5), device="cpu")(x, 4.0)
    demap = AnalogDemapper(shape=link.embedding_shape)
    torch.testing.assert_close(zhat, demap(estimate_symbols(x_hat, no_eff, estimate), scale))
    assert not torch.allclose(zhat, demap(x_hat, scale))
    plain = _link(256).send(z, AWGNChannel(generator=make_generator(6)), 4.0)[0]
    matched = link.send(z, AWGNChannel(generator=make_generator(6)), 4.0)[0]
    if estimate == "noise-matched":
        torch.testing.assert_close(matched, plain, rtol=1e-5, atol=1e-5)
    else:  # shrunk by 1 / (1 + N0) over AWGN
        torch.testing.assert_close(matched, plain / (1 + 10 ** -0.4), rtol=1e-5, atol=1e-5)


def test_seeds_make_transmissions_reproducible_and_distinct():
    link = _link(256, steps=2)
    images = load_images("sample", 256, count=2)[0]

    def run(channel_seed, sampler_seeds):
        ch = AWGNChannel(generator=make_generator(channel_seed))
        return link.transmit(images, ch, 5.0,
                             lambda purpose: [make_generator(s) for s in sampler_seeds]).images

    first = run(0, [10, 11])
    assert torch.equal(first, run(0, [10, 11]))
    # Only the channel seed changes: the noisy embedding, hence the image, changes.
    assert not torch.allclose(first, run(1, [10, 11]))
    # Only the sampler seed of row 1 changes: row 0 is untouched, row 1 differs.
    other = run(0, [10, 12])
    assert torch.equal(first[0], other[0]) and not torch.allclose(first[1], other[1])


@pytest.mark.parametrize("combining", ["chase", "ir"])
def test_digital_harq_resends_embeddings_until_their_blocks_pass(combining):
    """16-QAM rate 1/2 at 3 dB loses code blocks of every embedding in one send (their values
    fall back to 0); with up to four sends every block passes, so Zhat is the error-free
    quantised Z of a noiseless send, and each embedding was sent 2 to 4 times."""
    from semlink.scenario import HarqConfig

    base = dict(mode="digital", bits_per_value=6, clip=[-8, 8], modulation=16, code_rate=0.5)
    once = _link(256, tx=DigitalTransmission(**base))
    harq = _link(256, tx=DigitalTransmission(
        **base, harq=HarqConfig(max_transmissions=4, combining=combining)))
    assert harq.channel_uses == once.channel_uses  # per send
    z = once.encode(load_images("sample", 256, count=4)[0])
    lossy = once.send(z, AWGNChannel(generator=make_generator(2)), 3.0)
    assert bool((lossy.block_errors > 0).all()) and bool((lossy.transmissions == 1).all())
    sent = harq.send(z, AWGNChannel(generator=make_generator(2)), 3.0)
    clean = once.send(z, AWGNChannel(generator=make_generator(0)), float("inf")).zhat
    assert bool((sent.block_errors == 0).all()) and bool((sent.bit_errors == 0).all())
    assert torch.equal(sent.zhat, clean)
    assert bool(((sent.transmissions >= 2) & (sent.transmissions <= 4)).all())
    assert torch.equal(sent.channel_uses, sent.transmissions * harq.channel_uses)
    # with code block groups (one block each) only the failed blocks go again: the same
    # delivery for no more channel uses, counted in whole blocks (fewer with Chase here, where
    # some blocks pass on the second send and the rest need a third; IR delivers all on the
    # second, after a first send that failed every block)
    groups = _link(256, tx=DigitalTransmission(
        **base, harq=HarqConfig(max_transmissions=4, combining=combining,
                                code_block_groups=8)))
    block = groups.channel_uses // groups.code_plan.num_blocks
    assert groups.code_plan.num_blocks > 1 and groups.channel_uses % block == 0
    cbg = groups.send(z, AWGNChannel(generator=make_generator(2)), 3.0)
    assert torch.equal(cbg.zhat, clean)
    assert bool(((cbg.channel_uses - groups.channel_uses) % block == 0).all())
    assert int(cbg.channel_uses.sum()) <= int(sent.channel_uses.sum())
    if combining == "chase":
        assert int(cbg.channel_uses.sum()) < int(sent.channel_uses.sum())


def test_digital_transmission_is_exact_without_noise_and_falls_back_to_zeros():
    tx = DigitalTransmission(mode="digital", bits_per_value=8, clip=[-20, 20], modulation=16,
                             code_rate=0.5)
    link = _link(256, tx=tx)
    z = link.encode(load_images("sample", 256, count=2)[0])
    assert float(z.abs().max()) < 20  # inside the clipping range: no clipping error
    zhat, block_errors, bit_errors, *_ = link.send(
        z, AWGNChannel(generator=make_generator(0)), float("inf"))
    step = 40 / 2 ** 8
    assert torch.all(block_errors == 0) and torch.all(bit_errors == 0)
    assert float((zhat - z).abs().max()) <= step / 2 + 1e-5  # quantisation error only
    lost, block_errors, bit_errors, *_ = link.send(
        z, AWGNChannel(generator=make_generator(0)), -10.0)
    assert torch.all(block_errors > 0)
    assert float((lost == 0).float().mean()) > 0.5  # values of failed blocks become zeros
    # At -10 dB the decoder's hard decisions are near coin flips: BER near 1/2, never above.
    ber = bit_errors.double() / link.code_plan.num_payload_bits
    assert bool(((ber > 0.3) & (ber < 0.55)).all()), ber


@pytest.mark.parametrize("modulation, n, k, blocks, uses", [
    (16, 2048, 1024, 4, 2048),  # 3456 bits / 1000 per block -> 4 blocks x 2048 bits / 4
    (64, 2046, 1023, 4, 1364),  # 2048 rounded down to whole 64-QAM symbols: 4 x 2046 / 6
    (4, 2048, 1024, 4, 4096),
])
def test_digital_plan_and_channel_uses_by_hand(modulation, n, k, blocks, uses):
    """256 px: Z is 16 x 6 x 6 = 576 values x 6 bits = 3456 payload bits. The codeword length
    2048 is rounded down to whole QAM symbols, k = n / 2 includes the 24 CRC bits, and the
    channel uses are the coded bits over log2(M)."""
    tx = DigitalTransmission(mode="digital", bits_per_value=6, clip=[-8, 8],
                             modulation=modulation, code_rate=0.5)
    link = _link(256, tx=tx)
    plan = link.code_plan
    assert link.embedding_shape == (16, 6, 6) and plan.num_payload_bits == 3456
    assert (plan.n, plan.k, plan.num_blocks) == (n, k, blocks)
    assert link.channel_uses == uses == blocks * n // int(math.log2(modulation))


def test_a_lost_code_block_zeroes_exactly_the_values_it_carries():
    """6-bit values and 1000 payload bits per block: value j (bits 6j .. 6j + 5) is lost when any
    of its bits lies in the lost block 1 (bits 1000 .. 1999), i.e. j = 166 .. 333 (values 166
    and 333 straddle a block edge). Those become 0; every other value is what a noiseless
    link delivers, and the other row is untouched."""
    tx = DigitalTransmission(mode="digital", bits_per_value=6, clip=[-8, 8], modulation=16,
                             code_rate=0.5)
    link = _link(256, tx=tx)
    assert link.code_plan.payload_bits_per_block == 1000
    z = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(3)) * 2
    clean = link.send(z, AWGNChannel(generator=make_generator(0)), float("inf")).zhat
    assert bool((clean != 0).all())  # 6-bit bin centres in [-8, 8] are never 0
    zhat, block_errors, bit_errors, *_ = link.send(z, CorruptBlocks({0: [1]}, 2048 // 4), 0.0)
    assert block_errors.tolist() == [1, 0]
    assert int(bit_errors[0]) > 0 and int(bit_errors[1]) == 0
    lost = torch.zeros(576, dtype=torch.bool)
    for j in range(576):
        lost[j] = any(1000 <= b < 2000 for b in range(6 * j, 6 * j + 6))
    assert lost.nonzero().flatten().tolist() == list(range(166, 334))
    row0 = zhat[0].flatten()
    assert bool((row0[lost] == 0).all())
    assert torch.equal(row0[~lost], clean[0].flatten()[~lost])
    assert torch.equal(zhat[1], clean[1])


DIGITAL = DigitalTransmission(mode="digital", bits_per_value=4, clip=[-8, 8], modulation=16,
                             code_rate=0.5)
MATCHED = AnalogTransmission(mode="analog", estimate="noise-matched")
REPEATED = AnalogTransmission(mode="analog", estimate="noise-matched", repetitions=3)
AMPLIFIER = AmplifierConfig(input_backoff_db=3.0)
TRACKING = PhaseTrackingConfig(pilot_spacing=16, pilot_length=2, estimate_frequency_offset=True,
                              estimate_phase_noise=True)
PTRS = OFDMPhaseTrackingConfig(subcarrier_stride=12, estimate_interference=True)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tx, channel", [(ANALOG, AWGNConfig(type="awgn")),
                                         (ANALOG, RayleighConfig(type="rayleigh")),
                                         (MATCHED, RayleighConfig(type="rayleigh")),
                                         (MATCHED, RayleighConfig(type="rayleigh",
                                                                  normalized_doppler=0.01)),
                                         (REPEATED, RayleighConfig(type="rayleigh")),
                                         (MATCHED, RayleighConfig(type="rayleigh",
                                                                  num_tx_antennas=2)),
                                         (ANALOG, OFDMConfig(type="ofdm")),
                                         (ANALOG, OFDMConfig(type="ofdm", amplifier=AMPLIFIER,
                                                              interleave=True)),
                                         (ANALOG, OFDMConfig(type="ofdm", domain="time",
                                                             phase_noise_linewidth_hz=1e3)),
                                         (ANALOG, OFDMConfig(type="ofdm", domain="time",
                                                             phase_noise_linewidth_hz=1e3,
                                                             estimate_frequency_offset=True,
                                                             phase_tracking=PTRS)),
                                         (ANALOG, AWGNConfig(type="awgn",
                                                             phase_noise_linewidth=0.01)),
                                         (ANALOG, AWGNConfig(type="awgn",
                                                             phase_noise_linewidth=0.01,
                                                             phase_tracking=TRACKING)),
                                         (DIGITAL, RayleighConfig(type="rayleigh",
                                                                  frequency_offset=1e-3,
                                                                  phase_tracking=TRACKING)),
                                         (DIGITAL, AWGNConfig(type="awgn"))],
                         ids=["analog-awgn", "analog-rayleigh", "matched-rayleigh",
                              "matched-doppler", "repeated-rayleigh", "alamouti-rayleigh",
                              "analog-ofdm",
                              "amplified-ofdm", "time-domain-ofdm", "ptrs-ofdm",
                              "phase-noise-awgn",
                              "tracked-awgn", "tracked-digital-rayleigh",
                              "digital-awgn"])
def test_hot_path_stays_on_the_device_without_host_syncs(tx, channel, device):
    """From Z through the channel to the decoded image nothing is read back to the host:
    no ``.item()``, no data-dependent shapes, no device-to-host copy."""
    link = _link(256, tx=tx, steps=2, guidance=1.5, device=device)
    z = link.encode(load_images("sample", 256, count=2)[0])
    ch = build_channel(channel, generator=make_generator(0, device), device=device)
    with record_host_syncs() as syncs:
        zhat, block_errors, bit_errors, sends, uses = link.send(
            z, ch, torch.tensor([3.0, 12.0], device=device))
        images = link.reconstruct(zhat, [make_generator(s, device) for s in (1, 2)])
    assert syncs == []
    assert {t.device.type for t in (zhat, block_errors, bit_errors, sends, uses,
                                    images)} == {device}
    assert images.shape == (2, 3, 256, 256)


def test_bfloat16_models_as_on_cuda_match_float32():
    """The dtype CUDA runs use (bfloat16 parameters, float32 channel and images) works end to
    end on any machine and changes the images only by rounding: the trained small preset's
    bfloat16 and float32 reconstructions agree to > 30 dB PSNR (41 measured), far closer
    than either is to the original (16 to 17 dB)."""
    images = load_images("sample", 256, count=2)[0]
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        link = _link(256, dtype=dtype)
        assert next(link.receiver.stage_b.parameters()).dtype == dtype
        ch = AWGNChannel(generator=make_generator(0))
        got = link.transmit(images, ch, 10.0, lambda purpose: [make_generator(1),
                                                               make_generator(2)])
        zhat = link.send(link.encode(images), AWGNChannel(generator=make_generator(0)), 10.0).zhat
        assert got.images.dtype == torch.float32 and zhat.dtype == torch.float32
        out[dtype] = got.images
    assert float(psnr_db(out[torch.float32], out[torch.bfloat16]).min()) > 30.0


def test_transmit_command_on_a_sample_photo(tmp_path, capsys):
    out = tmp_path / "recon.png"
    photo = SAMPLE_DIR / "02_astronaut.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["transmit", str(photo), "--snr-db", "5", "--out", str(out), "--steps", "2",
                     "--device", "cpu"]) == 0
    assert out.is_file()
    assert "semantic link, 288 channel uses, awgn at 5 dB: PSNR" in capsys.readouterr().out


def test_transmit_command_takes_a_non_square_size(tmp_path, capsys):
    """--size WIDTHxHEIGHT: the reconstruction has that size, for the semantic link and the
    classical one (whose channel-use bound is 3 x width x height); a malformed size is one line."""
    photo = str(SAMPLE_DIR / "02_astronaut.png")
    for link in ("semantic", "classical"):
        out = tmp_path / f"{link}.png"
        assert main(["transmit", photo, "--snr-db", "20", "--size", "192x128", "--link", link,
                     "--device", "cpu", "--out", str(out)]) == 0
        assert Image.open(out).size == (192, 128)
    assert "semantic link, 120 channel uses" in capsys.readouterr().out
    assert main(["transmit", photo, "--snr-db", "20", "--size", "128x64", "--link", "classical",
                 "--channel-uses", str(3 * 128 * 64 + 1), "--out", str(out)]) == 2
    assert ("--channel-uses: at most 3 x width x height = 24576 for --size 128x64"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(["transmit", photo, "--snr-db", "20", "--size", "192x128x3", "--out", str(out)])
    assert "argument --size: must be SIDE or WIDTHxHEIGHT" in capsys.readouterr().err


def test_transmit_command_takes_the_receivers_estimate(tmp_path, capsys):
    """--estimate reaches the link: over Rayleigh fading noise-matched changes the image, over
    AWGN (where it is the identity) it does not change the reported quality."""
    photo = str(SAMPLE_DIR / "02_astronaut.png")

    def run(channel, *estimate):
        out = tmp_path / f"{channel}{len(estimate)}.png"
        assert main(["transmit", photo, "--snr-db", "3", "--channel", channel, "--device", "cpu",
                     "--out", str(out), *estimate]) == 0
        return capsys.readouterr().out.split(": ", 1)[1], load_images(str(out), 256)[0]

    (plain_line, plain), (matched_line, matched) = (
        run("rayleigh"), run("rayleigh", "--estimate", "noise-matched"))
    assert not torch.equal(plain, matched) and plain_line != matched_line
    assert run("awgn")[0] == run("awgn", "--estimate", "noise-matched")[0]


def test_missing_weights_for_real_preset_is_a_clear_error(tmp_path):
    from semlink.errors import InputError

    # Both fail before the 700M-parameter model is built.
    with pytest.raises(InputError, match="needs `weights:`"):
        SemanticLink(preset="stable-cascade-lite", image_size=512, transmission=ANALOG)
    with pytest.raises(InputError, match="nope: weights directory not found"):
        SemanticLink(preset="stable-cascade-lite", image_size=512, transmission=ANALOG,
                     weights=tmp_path / "nope")
