"""The link protocol: every registered config follows it, the built links implement it, the
builder builds once (or per SNR point) and resolves bandwidth matching, and the Table 1 rows are
the paper's (semantic) and the frame's bytes (classical)."""
from __future__ import annotations

import math
import typing
import warnings
from pathlib import Path

import pytest

from semlink.cli import main
from semlink.errors import InputError
from semlink.links.builder import LinkBuilder
from semlink.links.protocol import (LINK_KINDS, SCORING_RULES, BitLink, Dimensionality,
                                    ImageLink, per_snr, scoring_rule, sends_waveform)
from semlink.scenario import LINK_CONFIGS, LINK_TYPES, parse_scenario

ROOT = Path(__file__).resolve().parents[3]

SCENARIO = """\
images: {{source: sample, size: {size}, count: 1}}
snr: {{points_db: [10]}}
links:
  analog: {{type: semantic, preset: small}}
  repeated: {{type: semantic, preset: small, transmission: {{mode: analog, repetitions: 3}}}}
  digital: {{type: semantic, preset: small,
            transmission: {{mode: digital, bits_per_value: 4, modulation: 64, code_rate: 3/4}}}}
  jpeg2000: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{match: analog}}}}
  fixed: {{type: classical, bandwidth: {{channel_uses: 500}}, failure_policy: mean-image}}
  follows: {{type: classical, codec: jpeg, bandwidth: {{match: fixed}}}}
  amc: {{type: classical, adaptive: true, bandwidth: {{match: analog}}}}
  ideal: {{type: classical, channel_code: capacity, bandwidth: {{channel_uses: 288}}}}
  ber: {{type: ber, modulation: 16, code_rate: 1/2}}
"""


def _builder(size: int = 512) -> LinkBuilder:
    return LinkBuilder(parse_scenario(SCENARIO.format(size=size)), base_dir=Path.cwd(),
                       device="cpu")


def test_every_registered_config_follows_the_protocol():
    tags = []
    for cls in LINK_CONFIGS:
        (tag,) = typing.get_args(cls.model_fields["type"].annotation)
        tags.append(tag)
        assert cls.kind in LINK_KINDS and callable(cls.build), cls
    assert tuple(tags) == LINK_TYPES


def test_semantic_row_at_512_px_is_the_papers():
    """Table 1 of the paper: Z [16, 12, 12] at 512 px, CR 341, 0.29 % of the image; sent as
    analog pairs, 1152 complex channel uses."""
    builder = _builder(512)
    row = builder.dimensionality("analog")
    assert row.sent_shape == (16, 12, 12) and row.values == 2304
    assert round(row.compression_ratio) == 341 and round(row.percent_of_image, 2) == 0.29
    assert row.channel_uses == 1152 and row.image_shape == (512, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert builder.link("analog").dimensionality() == row  # the models agree
        repeated = builder.link("repeated")
    # Each value still sent once per repetition: three times the channel uses.
    assert builder.dimensionality("repeated").channel_uses == 3 * 1152 == repeated.channel_uses
    assert repeated.dimensionality() == builder.dimensionality("repeated")


def test_digital_semantic_row_counts_the_code_blocks():
    """Z [16, 6, 6] at 256 px, 4 bits per value: 2304 payload bits; 64-QAM r=3/4 code blocks of
    n = 2046 (2048 rounded down to 6 bits), k = 1534 -> 1510 payload bits each: 2 blocks,
    4092 coded bits, 682 symbols."""
    builder = _builder(256)
    row = builder.dimensionality("digital")
    assert row.sent_shape == (16, 6, 6) and row.channel_uses == 682
    assert builder.channel_uses("digital") == 682
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        link = builder.link("digital")
    assert link.channel_uses == 682 and link.dimensionality() == row


def test_classical_row_is_its_frame_in_bytes():
    """1152 uses at 16-QAM r=1/2: 3 blocks of k = 768, 3 x 744 payload bits = 279 bytes
    (the frame: 6 header bytes + 273 of codestream); CR 3 x 512^2 / 279."""
    builder = _builder(512)
    row = builder.dimensionality("jpeg2000")
    assert row.sent_shape == (279,) and row.channel_uses == 1152
    assert row.compression_ratio == pytest.approx(786432 / 279)
    assert builder.link("jpeg2000").dimensionality() == row
    assert builder.link("jpeg2000").budget.payload_bytes == 279


def test_bandwidth_matches_any_image_link_without_building_it():
    builder = _builder(512)
    assert builder.channel_uses("follows") == 500 == builder.channel_uses("fixed")
    assert builder.channel_uses("amc") == 1152
    assert builder._built == {}  # answered by the configs


def test_per_snr_links_are_built_per_snr_point():
    builder = _builder(256)
    with pytest.raises(ValueError, match="built per SNR point"):
        builder.link("ideal")
    first = builder.link("ideal", 10.0)
    assert builder.link("ideal", 10) is first and builder.link("ideal", 20.0) is not first
    # The AWGN capacity: floor(288 log2(1 + 10) / 8) bytes at 10 dB, worked out here.
    assert first.payload_bytes == math.floor(288 * math.log2(11) / 8) == 124
    assert builder.dimensionality("ideal") is None
    assert builder.dimensionality("ideal", 10.0).sent_shape == (124,)


def test_built_links_implement_the_protocol():
    builder = _builder(256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        image_links = [builder.link("analog"), builder.link("jpeg2000"),
                       builder.link("ideal", 5.0)]
    for link in image_links:
        assert isinstance(link, ImageLink) and link.kind == "image"
        assert link.scoring in SCORING_RULES
        assert isinstance(link.dimensionality(), Dimensionality)
    ber = builder.link("ber")
    assert isinstance(ber, BitLink) and ber.kind == "bits"
    assert not isinstance(ber, ImageLink)


def test_config_traits_and_their_defaults():
    links = parse_scenario(SCENARIO.format(size=256)).links
    assert [per_snr(links[n]) for n in ("analog", "jpeg2000", "amc", "ideal")] == \
        [False, False, True, True]
    assert [scoring_rule(links[n]) for n in ("analog", "jpeg2000", "fixed")] == \
        ["concealed", "paper", "concealed"]
    assert [sends_waveform(links[n]) for n in ("jpeg2000", "ideal")] == [True, False]

    class Bare:  # a config that gives none of the optional traits
        kind = "image"
    assert (per_snr(Bare()), scoring_rule(Bare()), sends_waveform(Bare())) == \
        (False, "concealed", True)


def test_the_builder_refuses_a_link_scoring_otherwise_than_its_config():
    class Built:
        kind, scoring, channel_uses = "image", "paper", 10

    class Config:
        kind, type = "image", "mine"

        def build(self, context):
            return Built()

    scenario = parse_scenario(SCENARIO.format(size=256))
    scenario = scenario.model_copy(update={"links": {"mine": Config()}})
    with pytest.raises(InputError, match=r"links\.mine: the built link scores failed decodes "
                                         r"as 'paper', its config as 'concealed'"):
        LinkBuilder(scenario, base_dir=Path.cwd(), device="cpu").link("mine")


def test_info_prints_each_links_row(capsys):
    """``semlink info`` of the paper's 512 px scenario: the semantic link's Table 1 row and
    the classical link's frame, without the Stable Cascade weights."""
    assert main(["info", str(ROOT / "scenarios" / "paper-awgn-512.yaml")]) == 0
    out = capsys.readouterr().out
    assert "3 x 512 x 512 = 786432 values" in out
    semantic = next(line for line in out.splitlines() if "[16, 12, 12]" in line).split()
    assert semantic[4:8] == ["2304", "341.3", "0.293", "1152"]
    classical = next(line for line in out.splitlines() if "[279]" in line).split()
    assert classical[2:6] == ["279", "2818.8", "0.0355", "1152"]
    # the paper's Table 1 row of Img2Img-SC: [4, 64, 64], CR 48; as published, 64 bits per
    # value over 16-QAM plus a caption of caption_bytes (128)
    img2img = next(line for line in out.splitlines() if "[4, 64, 64]" in line).split()
    assert img2img[4:9] == ["16384", "48.0", "2.08", str(16384 * 16 + 128 * 2), "64-bit"]
