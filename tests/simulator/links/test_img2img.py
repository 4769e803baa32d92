"""The Img2Img-SC link with tiny random SD 1.5 models: the as-published bits and binary symmetric
channel against the closed form and struct's doubles, the authors' sanitising rule, channel uses
against the published counts, the analog transmission through AWGN."""
from __future__ import annotations

import math
import struct

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.errors import InputError
from semlink.links.img2img import (Img2ImgSCLink, binary_symmetric_channel, bits_to_bytes,
                                   bits_to_float64, bsc_crossover_probability, bytes_to_bits,
                                   decode_caption, float64_to_bits, plan_caption_blocks,
                                   sanitize_latent)
from semlink.links.protocol import ImageLink
from semlink.models.sd15 import tiny_sd15
from semlink.seeding import derive_seed, make_generator

pytestmark = pytest.mark.usefixtures("one_thread")

CAPTIONS = {"a.png": "a red door next to a window", "b.png": "a cat on a sofa"}


@pytest.fixture(scope="module")
def tiny():
    return tiny_sd15(seed=1)


def _captions(images, names):
    return [CAPTIONS[n] for n in names]


def _link(tiny, transmission="as_published", size=64, **kwargs):
    kwargs = {"steps": 4, "strength": 0.5, "guidance": 3.0, **kwargs}
    return Img2ImgSCLink(models=tiny, image_size=(size, size), captions=_captions,
                         transmission=transmission, **kwargs)


def _generators(seed, indices):
    return lambda purpose: [make_generator(derive_seed(seed, purpose, i)) for i in indices]


def _q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


# ----------------------------------------------------------------------------- bits


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0, 15.0])
def test_crossover_probability_is_the_exact_gray_16qam_ber(snr_db):
    # Per dimension 4-PAM at +-d, +-3d, Es = 10 d^2, sigma^2 = N0/2: the sign bit errs with
    # (Q(1) + Q(3)) / 2, the inner/outer bit with (2 Q(1) + Q(3) - Q(5)) / 2 (Q(k) = Q(k d/sigma)).
    a = math.sqrt(2 * 10 ** (snr_db / 10) / 10)
    exact = (3 * _q(a) + 2 * _q(3 * a) - _q(5 * a)) / 4
    assert bsc_crossover_probability(snr_db, 16) == pytest.approx(exact, rel=1e-12)
    assert bsc_crossover_probability(math.inf) == 0.0


def test_crossover_probability_of_qpsk_is_q_of_sqrt_snr():
    assert bsc_crossover_probability(7.0, 4) == pytest.approx(_q(math.sqrt(10 ** 0.7)), rel=1e-12)


def test_bsc_flip_rate_at_5_db_is_the_closed_form():
    p = bsc_crossover_probability(5.0)  # 0.164
    bits = (torch.rand(2, 2**20, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    received, flips = binary_symmetric_channel(bits, p, gens)
    rate = float((received != bits).float().mean())  # 2^21 bits: sigma 2.6e-4, 5 % = 32 sigma
    assert rate == pytest.approx(p, rel=0.05)
    assert torch.equal(flips, received != bits)
    again, _ = binary_symmetric_channel(bits[1:], p, [torch.Generator().manual_seed(2)])
    assert torch.equal(again, received[1:])  # a row's flips are its generator's alone


VALUES = [0.0, -0.0, 1.0, -2.0, 0.15625, 1e-300, 5e-324, -1.7976931348623157e308,
          math.inf, -math.inf, 0.1, 3.141592653589793]


def test_doubles_are_their_big_endian_ieee_bits():
    bits = float64_to_bits(torch.tensor([VALUES], dtype=torch.float64))
    assert bits.shape == (1, 64 * len(VALUES)) and bits.dtype == torch.float32
    expected = "".join(f"{int.from_bytes(struct.pack('>d', v), 'big'):064b}" for v in VALUES)
    assert "".join(str(int(b)) for b in bits[0].tolist()) == expected


def test_a_float64_round_trip_without_errors_is_exact():
    gen = torch.Generator().manual_seed(0)
    latents = torch.cat([torch.randn(3, 500, generator=gen) * 10.0 ** torch.randint(
        -40, 38, (3, 500), generator=gen), torch.tensor([VALUES[:10]] * 3, dtype=torch.float32)],
        dim=1)
    back = bits_to_float64(float64_to_bits(latents))
    assert back.dtype == torch.float64
    assert torch.equal(back.float(), latents)  # -0.0 and the infinities included
    assert torch.equal(torch.signbit(back), torch.signbit(latents))
    nan = bits_to_float64(float64_to_bits(torch.tensor([[math.nan]])))
    assert torch.isnan(nan).all()


def test_bits_to_float64_refuses_partial_doubles():
    with pytest.raises(ValueError, match="multiple of 64"):
        bits_to_float64(torch.zeros(1, 65))


def test_flipping_a_bit_changes_the_double_it_belongs_to():
    bits = float64_to_bits(torch.tensor([[1.0, 1.0]]))
    bits[0, 64] = 1 - bits[0, 64]  # the second value's sign
    bits[0, 1] = 1 - bits[0, 1]  # the first value's top exponent bit: 2^1024 = inf
    assert bits_to_float64(bits).tolist() == [[math.inf, -1.0]]


def test_sanitising_replaces_what_the_authors_replace():
    values = torch.tensor([[math.nan, math.inf, -math.inf, 11.0, -11.0, 0.005, -0.005, 0.0,
                            0.5, -3.0, 10.0, -10.0, 0.01, -0.01, 9.99]], dtype=torch.float64)
    kept = [False] * 8 + [True] * 7
    out, replaced = sanitize_latent(values, [torch.Generator().manual_seed(4)])
    assert replaced[0].tolist() == [not k for k in kept]
    draws = torch.randn(15, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = torch.where(torch.tensor([kept]), values, draws).float()
    assert out.dtype == torch.float32 and torch.equal(out, expected)


def test_caption_bytes_round_trip_and_decode_with_replacement():
    data = "a cat, ünïcode".encode()
    assert bits_to_bytes(bytes_to_bits(data)) == data
    assert bytes_to_bits(b"\x80\x01").int().tolist() == [1] + [0] * 7 + [0] * 7 + [1]
    assert decode_caption(b"a cat\x00\x00") == "a cat"
    assert decode_caption(b"a \xffcat") == "a \ufffdcat"


# ----------------------------------------------------------------------------- channel uses


def test_link_is_an_image_link_scored_as_concealed(tiny):
    link = _link(tiny)
    assert isinstance(link, ImageLink)
    assert link.kind == "image" and link.scoring == "concealed" and link.point_fields() == {}


@pytest.mark.parametrize("transmission", ["as_published", "analog"])
def test_dimensionality_is_table_1s_row(tiny, transmission):
    d = _link(tiny, transmission, size=512).dimensionality()
    assert d.sent_shape == (4, 64, 64) and d.image_shape == (512, 512)
    assert d.compression_ratio == 48  # 3 * 512^2 / 16384, the paper's Table 1
    assert round(d.percent_of_image, 2) == 2.08
    assert "caption (not counted)" in d.note


def test_as_published_channel_uses_are_the_bits_over_four(tiny):
    link = _link(tiny, size=512)
    # 16384 doubles of 64 bits and 8 bits per caption byte, 4 bits per 16-QAM symbol
    assert link.uses_as_published(27) == (16384 * 64 + 8 * 27) // 4 == 262_198
    assert link.channel_uses == 262_144 + 2 * 128  # the longest caption allowed
    assert _link(tiny, size=512, modulation=64).uses_as_published(27) == math.ceil(
        (16384 * 64 + 8 * 27) / 6)


def test_analog_channel_uses_are_8192_plus_the_caption_blocks(tiny):
    link = _link(tiny, "analog", size=512)
    # 128 bytes = 1024 bits: one block would need k >= 1048 > 1024 (n <= 2048 at rate 1/2), so
    # 2 blocks of 512 payload + 24 CRC = 536 bits, n = 1072 = 268 16-QAM symbols each.
    assert link.channel_uses == 8192 + 2 * 268
    plan = link.caption_plan
    assert (plan.num_blocks, plan.k, plan.n) == (2, 536, 1072)
    assert _link(tiny, "analog", size=512, caption_bytes=64, modulation=4,
                 code_rate=1 / 3).channel_uses == 8192 + 1608 // 2  # k = 536 = round(n / 3)


@pytest.mark.parametrize("caption_bytes, modulation, code_rate", [(1, 2, 0.5), (40, 16, 0.75),
                                                                  (1024, 256, 0.9)])
def test_caption_blocks_are_the_shortest_that_carry_the_frame(caption_bytes, modulation,
                                                             code_rate):
    plan = plan_caption_blocks(caption_bytes, modulation=modulation, code_rate=code_rate)
    bps = int(math.log2(modulation))
    assert plan.n % bps == 0 and plan.n <= 2048
    assert plan.num_blocks * (plan.k - 24) >= 8 * caption_bytes
    share = -(-8 * caption_bytes // plan.num_blocks)
    assert round(code_rate * (plan.n - bps)) - 24 < share  # one QAM symbol less: too short
    if plan.num_blocks > 1:  # one block fewer would need codewords above 2048 bits
        longest = 2048 - 2048 % bps
        assert round(code_rate * longest) - 24 < -(-8 * caption_bytes // (plan.num_blocks - 1))


# ----------------------------------------------------------------------------- transmit


def test_as_published_counts_and_columns(tiny):
    link = _link(tiny)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ch = AWGNChannel(generator=make_generator(0))
    out = link.transmit(images, ch, 5.0, _generators(0, [0, 1]), names=["a.png", "b.png"])
    assert out.images.shape == (2, 3, 64, 64) and not out.failed.any()
    cols = out.columns
    lengths = [len(CAPTIONS[n]) for n in ("a.png", "b.png")]
    assert cols["channel_uses"].tolist() == [256 * 16 + 2 * n for n in lengths]
    bits = [256 * 64 + 8 * n for n in lengths]
    p = bsc_crossover_probability(5.0)
    for flipped, n in zip(cols["flipped_bits"].tolist(), bits):
        assert abs(flipped - p * n) < 5 * math.sqrt(n * p * (1 - p))
    assert (cols["replaced_values"] > 0).all() and (cols["caption_errors"] > 0).all()
    assert cols["bit_error_probability"].tolist() == [p, p]
    assert set(cols) == {"channel_uses", "caption_errors", "latent_mse", "flipped_bits",
                         "replaced_values", "bit_error_probability"}


def test_as_published_without_noise_keeps_the_latent_but_the_authors_rule(tiny):
    link = _link(tiny)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    latents[0, 0, 0, :3] = torch.tensor([0.001, 12.0, 0.5])
    rx = link.send(latents, ["a cat"], None, math.inf, _generators(1, [0]))
    assert rx.captions == ["a cat"] and rx.flipped_bits.tolist() == [0]
    small = (latents.abs() < 0.01) | (latents.abs() > 10)
    assert rx.replaced_values.tolist() == [int(small.sum())] and small.sum() >= 2
    assert torch.equal(rx.latents[~small], latents[~small])
    assert not torch.equal(rx.latents[small], latents[small])


def test_as_published_results_do_not_depend_on_the_batch(tiny):
    link = _link(tiny)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    both = link.send(latents, ["a", "b b"], None, 8.0, _generators(2, [0, 1]))
    alone = link.send(latents[1:], ["b b"], None, 8.0, _generators(2, [1]))
    assert torch.equal(both.latents[1:], alone.latents)
    assert both.captions[1] == alone.captions[0]
    assert both.flipped_bits[1] == alone.flipped_bits[0]
    other = link.send(latents, ["a", "b b"], None, 8.0, _generators(3, [0, 1]))
    assert not torch.equal(other.latents, both.latents)


def test_analog_latent_arrives_within_the_channel_noise(tiny):
    link = _link(tiny, "analog", size=512)
    latents = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(6))
    snr_db = 20.0
    rx = link.send(latents, ["a red door", "ü"], AWGNChannel(generator=make_generator(2)),
                   snr_db, _generators(0, [0, 1]))
    # Unit-power symbols of pairs: each real value errs with variance mean(z^2) * N0.
    expected = latents.square().flatten(1).mean(1) * 10 ** (-snr_db / 10)
    mse = (rx.latents - latents).square().flatten(1).mean(1)
    assert torch.allclose(mse, expected, rtol=0.05)  # 16384 values: sigma 1.1 %
    assert rx.captions == ["a red door", "ü"]
    assert rx.caption_errors.tolist() == [0, 0] and rx.caption_block_errors.tolist() == [0, 0]
    assert rx.channel_uses.tolist() == [link.channel_uses] * 2


def test_analog_caption_at_low_snr_arrives_as_its_decoded_bytes(tiny):
    link = _link(tiny, "analog")
    latents = torch.randn(1, 4, 8, 8)
    rx = link.send(latents, ["a red door"], AWGNChannel(generator=make_generator(3)), -5.0,
                   _generators(0, [0]))
    assert rx.caption_block_errors.tolist() == [2]
    assert rx.caption_errors[0] > 0 and rx.captions[0] != "a red door"


def test_analog_transmit_columns(tiny):
    link = _link(tiny, "analog")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out = link.transmit(images, AWGNChannel(generator=make_generator(4)), 30.0,
                        _generators(0, [0, 1]), names=["a.png", "b.png"])
    assert set(out.columns) == {"channel_uses", "caption_errors", "latent_mse",
                                "caption_block_errors"}
    assert out.columns["caption_errors"].tolist() == [0, 0]
    assert (out.columns["latent_mse"] < 1e-2).all()


def test_a_caption_longer_than_the_frame_is_refused(tiny):
    link = _link(tiny, "analog", caption_bytes=8)
    with pytest.raises(InputError, match="is 10 bytes; caption_bytes allows 8"):
        link.send(torch.zeros(1, 4, 8, 8), ["a red door"], None, 10.0, _generators(0, [0]))


def test_strength_zero_shows_the_decoded_received_latent(tiny):
    link = _link(tiny, strength=0.0)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    gens = _generators(0, [0])
    out = link.transmit(images, None, math.inf, gens, names=["a.png"])
    rx = link.send(link.encode(images, gens("vae")), ["x"], None, math.inf, gens)
    with torch.no_grad():
        expected = ((tiny.vae.decode(rx.latents / 0.18215).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(out.images, expected)


def test_image_sides_must_fit_the_vae(tiny):
    with pytest.raises(InputError, match="multiples of 8"):
        Img2ImgSCLink(models=tiny, image_size=(60, 64), captions=_captions)


def test_bench_runs_with_the_tiny_models():
    from semlink.links.img2img import bench_img2img_sc

    for transmission in ("as_published", "analog"):
        r = bench_img2img_sc(64, 1, device="cpu", model="tiny", transmission=transmission,
                             steps=4, strength=0.5, repeats=1)
        assert r["denoising_steps"] == 2 and r["seconds_per_image"] > 0
        assert r["seconds_per_image"] == pytest.approx(sum(
            r[f"{k}_seconds_per_image"] for k in ("encode", "transmission", "denoise", "decode")))
        caption = len("a photograph of a red door next to a window")
        assert r["channel_uses"] == (256 * 16 + 2 * caption if transmission == "as_published"
                                     else 128 + 536)
