"""JPEG2000 over an ideal code: capacity and outage rates against closed forms (AWGN, block and
fast Rayleigh fading), frames decoded exactly at capacity and lost one byte above it, outage
frequencies against the closed-form outage probability, failure policies, bad arguments."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import exp1

from semlink.channels.awgn import AWGNChannel
from semlink.channels.rayleigh import RayleighChannel
from semlink.channel import build_channel
from semlink.codecs.jpeg2000 import decode, encode_to_budget
from semlink.links.capacity import (
    MAX_PAYLOAD_BYTES,
    CapacityLink,
    capacity_bits_per_use,
    capacity_payload_bytes,
    estimate_outage_rate,
    mutual_information_bits,
)
from semlink.links.framing import HEADER_BYTES, MID_GREY
from semlink.scenario import RayleighConfig

SIZE = 64


def _images(batch: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields: JPEG2000 spends every byte it gets on them."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                           align_corners=False).clamp(0, 1)


def _awgn(seed: int = 0) -> AWGNChannel:
    return AWGNChannel(generator=torch.Generator().manual_seed(seed), check_values=False)


def test_capacity_per_use_is_log2_of_one_plus_snr():
    assert capacity_bits_per_use(0.0) == 1.0
    assert capacity_bits_per_use(10 * math.log10(3)) == pytest.approx(2.0, abs=1e-12)
    assert capacity_bits_per_use(10 * math.log10(255)) == pytest.approx(8.0, abs=1e-12)
    assert capacity_bits_per_use(math.inf) == math.inf
    assert capacity_bits_per_use(-math.inf) == 0.0
    with pytest.raises(ValueError, match="snr_db"):
        capacity_bits_per_use(math.nan)


def test_payload_is_the_whole_bytes_of_the_capacity_capped_by_the_header_field():
    assert capacity_payload_bytes(288, 0.0) == 36  # 288 bits exactly
    assert capacity_payload_bytes(288, 10.0) == math.floor(288 * math.log2(11) / 8) == 124
    assert capacity_payload_bytes(5, 0.0) == 0  # 5 bits: no whole byte
    assert capacity_payload_bytes(288, math.inf) == MAX_PAYLOAD_BYTES == HEADER_BYTES + 65535
    assert capacity_payload_bytes(100_000, 30.0) == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("snr_db", [-3.0, 0.0, 7.5, 20.0])
def test_mutual_information_over_awgn_is_n_times_the_capacity(snr_db):
    x = torch.ones(3, 500, dtype=torch.complex64) * 0.5j  # power 1/4: the SNR is relative to it
    info = mutual_information_bits(x, _awgn()(x, snr_db)[1])
    assert info.dtype == torch.float64 and info.shape == (3,)
    np.testing.assert_allclose(info.numpy(), 500 * capacity_bits_per_use(snr_db), rtol=1e-6)
    assert torch.isinf(mutual_information_bits(x, _awgn()(x, math.inf)[1])).all()


@pytest.mark.parametrize("snr_db", [0.0, 3.0, 12.0])
def test_awgn_at_capacity_decodes_every_frame_as_the_codec_would(snr_db):
    # 0 dB: 288 uses carry exactly 36 bytes, the frame fills the mutual information to the bit.
    images = _images(3)
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE),
                        payload_bytes=capacity_payload_bytes(288, snr_db))
    out = link.send(images, _awgn(), snr_db)
    assert not out.failed.any() and (out.block_errors == 0).all()
    for image, recon, used in zip(images, out.images, out.bytes_used.tolist()):
        stream = encode_to_budget(image, link.payload_bytes - HEADER_BYTES,
                                  header="implicit").codestream
        assert used == len(stream)
        expected = decode(stream, height=SIZE, width=SIZE, header="implicit").image
        torch.testing.assert_close(recon, expected, rtol=0, atol=0)


@pytest.mark.parametrize("policy", ["paper", "error-concealment", "mean-image"])
def test_one_byte_above_capacity_is_lost_on_awgn_under_every_policy(policy):
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), failure_policy=policy,
                        payload_bytes=capacity_payload_bytes(288, 6.0) + 1)
    out = link.send(_images(2), _awgn(), 6.0)
    assert out.failed.all() and (out.block_errors == 1).all() and (out.bytes_used == 0).all()
    assert (out.images == MID_GREY).all() and out.failure_policy == policy
    np.testing.assert_allclose(out.mutual_information_bits.numpy(),
                               288 * capacity_bits_per_use(6.0), rtol=1e-6)


def test_a_frame_of_exactly_the_capacity_is_not_lost_to_float32_rounding():
    # At 10 log10(127) dB the capacity is 7 bits per use, 252 bytes over 288 uses; the
    # channel's float32 N0 = 1/127 rounds up, so the mutual information it reports falls a
    # hair short of 2016 bits.
    snr_db = 10 * math.log10(127)
    x = torch.ones(1, 288, dtype=torch.complex64)
    assert float(mutual_information_bits(x, _awgn()(x, snr_db)[1])) < 2016
    assert capacity_payload_bytes(288, snr_db) == 252
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=252)
    assert not link.send(_images(1), _awgn(), snr_db).failed.any()


def test_a_frame_too_small_for_any_codestream_loses_every_image():
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=10,
                        failure_policy="error-concealment")
    assert not link.carries_images and link.minimum_frame_bytes == 24
    out = link.send(_images(2), _awgn(), 20.0)  # the channel would carry it
    assert out.failed.all() and (out.block_errors == 0).all() and (out.images == MID_GREY).all()
    empty = CapacityLink(channel_uses=4, image_size=(SIZE, SIZE), payload_bytes=0)
    assert empty.send(_images(1), _awgn(), 0.0).failed.all()


def test_outage_frequency_over_block_fading_is_the_closed_form():
    # One fade per frame: I = N log2(1 + |h|^2 SNR), |h|^2 ~ Exp(1), so a frame of B bits is
    # lost with probability 1 - exp(-(2^(B/N) - 1) / SNR).
    n, snr_db, frames = 96, 10.0, 400
    snr = 10 ** (snr_db / 10)
    link = CapacityLink(channel_uses=n, image_size=(32, 32), payload_bytes=capacity_payload_bytes(
        n, snr_db))
    channel = RayleighChannel(coherence_symbols=n, generator=torch.Generator().manual_seed(3),
                              check_values=False)
    out = link.send(_images(frames, size=32), channel, snr_db)
    expected = 1 - math.exp(-(2 ** (8 * link.payload_bytes / n) - 1) / snr)
    assert 0.55 < expected < 0.65
    assert abs(float(out.failed.double().mean()) - expected) < 4 * math.sqrt(
        expected * (1 - expected) / frames)
    assert torch.equal(out.failed, out.mutual_information_bits < 8 * link.payload_bytes)


@pytest.mark.parametrize("epsilon, snr_db", [(0.1, 10.0), (0.01, 20.0), (0.3, 3.0)])
def test_outage_rate_over_block_fading_is_the_epsilon_quantile(epsilon, snr_db):
    n, frames = 256, 10000
    rate = estimate_outage_rate(n, snr_db, outage_target=epsilon, frames=frames, seed=1,
                                channel_config=RayleighConfig(type="rayleigh",
                                                              coherence_symbols=n))
    snr = 10 ** (snr_db / 10)
    # The epsilon-quantile of |h|^2 ~ Exp(1) is -ln(1 - epsilon); its estimate from `frames`
    # draws has a relative standard deviation sqrt(eps / ((1 - eps) frames)) / -ln(1 - eps).
    quantile = -math.log1p(-epsilon)
    spread = 4 * math.sqrt(epsilon / ((1 - epsilon) * frames)) / quantile
    low, high = (math.floor(n * math.log2(1 + snr * quantile * f) / 8) for f in (1 - spread,
                                                                                  1 + spread))
    assert low <= rate.payload_bytes <= high
    assert rate.outages <= math.floor(epsilon * frames) and rate.outage > 0.8 * epsilon
    assert rate.frames == frames and rate.channel_uses == n
    assert rate.bits_per_use == 8 * rate.payload_bytes / n


def test_outage_rate_over_fast_fading_tends_to_the_ergodic_capacity():
    # E[log2(1 + X snr)], X ~ Exp(1), = log2(e) exp(1/snr) E1(1/snr); with 4000 independent
    # fades per frame the median of I / N is within a fraction of a percent of it.
    n, snr = 4000, 10.0
    ergodic = math.log2(math.e) * math.exp(1 / snr) * exp1(1 / snr)
    rate = estimate_outage_rate(n, 10.0, outage_target=0.5, frames=400, seed=2,
                                channel_config=RayleighConfig(type="rayleigh"))
    assert rate.bits_per_use == pytest.approx(ergodic, rel=0.01)
    assert ergodic < capacity_bits_per_use(10.0) - 0.4  # Jensen: well below the AWGN capacity


def test_outage_rate_over_awgn_is_the_capacity_and_the_estimate_is_memoised():
    rate = estimate_outage_rate(288, 7.0, frames=50)
    assert rate.payload_bytes == capacity_payload_bytes(288, 7.0) and rate.outages == 0
    # 7 bits per use exactly, which the channel's float32 N0 misses by a hair (see above)
    exact = estimate_outage_rate(288, 10 * math.log10(127), frames=20)
    assert exact.payload_bytes == capacity_payload_bytes(288, 10 * math.log10(127)) == 252
    assert exact.outages == 0
    assert estimate_outage_rate(288, 7.0, frames=50) is rate
    assert estimate_outage_rate(288, math.inf, frames=5).payload_bytes == MAX_PAYLOAD_BYTES


def test_outage_rate_follows_the_seed():
    fading = RayleighConfig(type="rayleigh", coherence_symbols=64)
    rates = {estimate_outage_rate(64, 10.0, frames=200, seed=s, channel_config=fading)
             .payload_bytes for s in range(6)}
    assert len(rates) > 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="payload_bytes"):
        CapacityLink(channel_uses=8, image_size=(SIZE, SIZE), payload_bytes=MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(ValueError, match="failure_policy"):
        CapacityLink(channel_uses=8, image_size=(SIZE, SIZE), payload_bytes=30,
                     failure_policy="retry")
    with pytest.raises(ValueError, match="image_size"):
        CapacityLink(channel_uses=8, image_size=(SIZE,), payload_bytes=30)
    with pytest.raises(ValueError, match="outage_target"):
        estimate_outage_rate(8, 0.0, outage_target=1.0)
    with pytest.raises(ValueError, match="snr_db"):
        estimate_outage_rate(8, -math.inf)
    with pytest.raises(ValueError, match="channel_uses"):
        capacity_payload_bytes(0, 0.0)


@pytest.mark.parametrize("seed", range(8))
def test_outage_rate_is_its_definition_recounted_by_brute_force(seed):
    """Few frames in uneven batches (25 = 10 + 10 + 5), so the order statistics are bytes apart:
    the channel redrawn here call by call, each frame's mutual information in closed form (one
    fade per frame: N log2(1 + 1 / no_eff)), and B found by trying every size: the largest with
    #{f : I_f < 8 B} <= floor(epsilon * frames), and exactly that many outages."""
    n, snr_db, epsilon, frames, batch = 32, 10.0, 0.2, 25, 10
    config = RayleighConfig(type="rayleigh", coherence_symbols=n)
    rate = estimate_outage_rate(n, snr_db, outage_target=epsilon, channel_config=config,
                                frames=frames, batch_frames=batch, seed=seed)
    channel = build_channel(config, generator=torch.Generator().manual_seed(seed), device="cpu")
    info = []
    for size in (10, 10, 5):
        no_eff = channel(torch.ones(size, n, dtype=torch.complex64), snr_db)[1].double()
        assert torch.equal(no_eff, no_eff[:, :1].expand(-1, n))  # one fade per frame
        info += (n * torch.log2(1 + 1 / no_eff[:, 0])).tolist()
    allowed = math.floor(epsilon * frames)
    best = max(b for b in range(n * 8) if sum(i < 8 * b for i in info) <= allowed)
    assert rate.payload_bytes == best
    assert rate.outages == sum(i < 8 * best for i in info) <= allowed
    assert rate.frames == frames and rate.outage <= epsilon


def test_one_byte_above_capacity_is_lost_even_in_a_frame_near_the_largest():
    """48000 uses at 30 dB carry 48000 log2(1001) = 478426.6 bits: 59803 bytes (478424 bits)
    decode, 59804 bytes (478432 bits, 1.1e-5 above the mutual information) are lost; the
    rounding allowance must be far below one byte in such a frame."""
    n, snr_db = 48000, 30.0
    assert capacity_payload_bytes(n, snr_db) == 59803 == math.floor(n * math.log2(1001) / 8)
    for extra, lost in ((0, False), (1, True)):
        link = CapacityLink(channel_uses=n, image_size=(SIZE, SIZE), payload_bytes=59803 + extra)
        out = link.send(_images(1), _awgn(), snr_db)
        assert out.failed.tolist() == [lost] and out.block_errors.tolist() == [int(lost)]


def test_explicit_headers_are_sent_and_decoded_as_the_codec_would():
    """With jpeg2000_header explicit the frame holds the whole codestream (JPEG2000 headers
    included): a larger smallest frame, and the image the codec decodes from that budget."""
    payload = capacity_payload_bytes(288, 20.0)  # floor(288 log2(101) / 8) = 239
    implicit = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=payload)
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=payload,
                        jpeg2000_header="explicit")
    assert link.jpeg2000_header == "explicit"
    assert implicit.minimum_frame_bytes < link.minimum_frame_bytes < payload
    images = _images(2)
    out = link.send(images, _awgn(), 20.0)
    assert not out.failed.any()
    for image, recon, used in zip(images, out.images, out.bytes_used.tolist()):
        stream = encode_to_budget(image, payload - HEADER_BYTES, header="explicit").codestream
        assert used == len(stream)
        expected = decode(stream, height=SIZE, width=SIZE, header="explicit").image
        torch.testing.assert_close(recon, expected, rtol=0, atol=0)


def test_a_frame_of_exactly_the_smallest_size_carries_an_image():
    """payload_bytes == minimum_frame_bytes (header + smallest codestream) is enough: the image
    is decoded, as the codec decodes the smallest codestream; one byte less loses it."""
    smallest = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=0) \
        .minimum_frame_bytes
    link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=smallest)
    assert link.carries_images
    images = _images(1)
    out = link.send(images, _awgn(), 20.0)
    stream = encode_to_budget(images[0], smallest - HEADER_BYTES, header="implicit").codestream
    assert not out.failed.any() and out.bytes_used.tolist() == [len(stream)]
    short = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=smallest - 1)
    assert not short.carries_images and short.send(images, _awgn(), 20.0).failed.all()


def test_explicit_headers_leave_exactly_the_header_bytes_fewer_for_the_image():
    """The header-inclusive bound: at the same channel uses and SNR (the same frame), an
    explicit-header frame decodes to the image an implicit-header frame of 118 bytes fewer
    (the JPEG2000 main and tile-part headers, implicit_header_bytes) decodes to, and its PSNR
    is lower than the implicit frame's of the full size."""
    from semlink.codecs.jpeg2000 import implicit_header_bytes
    from semlink.metrics.quality import psnr_db

    headers = implicit_header_bytes(SIZE, SIZE)
    assert headers == 118
    payload = capacity_payload_bytes(288, 20.0)  # 239 bytes
    images = _images(3)
    sent = {}
    for header, frame in (("explicit", payload), ("implicit", payload),
                          ("implicit", payload - headers)):
        link = CapacityLink(channel_uses=288, image_size=(SIZE, SIZE), payload_bytes=frame,
                            jpeg2000_header=header)
        out = link.send(images, _awgn(), 20.0)
        assert not out.failed.any()
        sent[(header, frame)] = out
    explicit, implicit = sent[("explicit", payload)], sent[("implicit", payload)]
    fewer = sent[("implicit", payload - headers)]
    torch.testing.assert_close(explicit.images, fewer.images, rtol=0, atol=0)
    assert (explicit.bytes_used == fewer.bytes_used + headers).all()
    assert (psnr_db(images, explicit.images) < psnr_db(images, implicit.images)).all()


def test_a_scenario_chooses_the_header_inclusive_bound_without_changing_hashes():
    """jpeg2000_header: explicit in a capacity link's section builds the explicit link; left out
    it is implicit, and the hash is that of the section naming implicit (existing results keep
    their hashes)."""
    from semlink.links.protocol import LinkContext
    from semlink.scenario import parse_scenario, scenario_hash

    text = ("name: c\nimages: {{source: sample, size: 64}}\nsnr: {{points_db: [5]}}\n"
            "links:\n  cap: {{type: classical, channel_code: capacity, "
            "bandwidth: {{channel_uses: 288}}{}}}\n")
    plain, implicit, explicit = (parse_scenario(text.format(extra)) for extra in
                                 ("", ", jpeg2000_header: implicit",
                                  ", jpeg2000_header: explicit"))
    assert scenario_hash(plain) == scenario_hash(implicit) != scenario_hash(explicit)
    context = LinkContext(name="cap", image_shape=(SIZE, SIZE), device="cpu", seed=0,
                          base_dir=Path("."), channel=explicit.channel,
                          channel_uses_of=lambda name: 288, snr_db=5.0)
    link = explicit.links["cap"].build(context)
    assert isinstance(link, CapacityLink) and link.jpeg2000_header == "explicit"
    assert link.payload_bytes == capacity_payload_bytes(288, 5.0)
