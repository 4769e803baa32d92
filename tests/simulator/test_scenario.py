"""Scenario schema: valid files load, each broken file gives one located one-line error per problem."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from semlink.cli import main
from semlink.scenario import (CHANNEL_TYPES, LINK_TYPES, Override, ScenarioError, load_scenario,
                              parse_scenario, scenario_hash)

GOOD = textwrap.dedent("""\
    name: good
    images: {source: sample, size: 256, count: 2}
    channel: {type: awgn}
    snr: {points_db: [1, 10]}
    links:
      semantic: {type: semantic, preset: small}
      jpeg2000:
        type: classical
        modulation: 16
        code_rate: 1/2
        bandwidth: {match: semantic}
    """)


def test_good_scenario_loads_with_defaults():
    s = parse_scenario(GOOD)
    assert s.links["jpeg2000"].code_rate == 0.5
    # None: the preset's own sampler settings (10 steps, guidance 1.1 for Stable Cascade).
    assert s.links["semantic"].steps is None and s.links["semantic"].guidance is None
    assert s.snr.values_db() == [1.0, 10.0]


def test_ideal_code_needs_no_modulation_or_code_rate():
    text = GOOD.replace("    modulation: 16\n    code_rate: 1/2\n",
                        "    channel_code: capacity\n    adaptive: true\n")
    link = parse_scenario(text).links["jpeg2000"]
    assert link.channel_code == "capacity" and link.adaptive
    assert parse_scenario(GOOD).links["jpeg2000"].channel_code is None  # = ldpc, hash unchanged


def test_snr_range_is_inclusive():
    s = parse_scenario("snr: {start_db: 0, stop_db: 2, step_db: 0.5}\nlinks: {b: {type: ber}}")
    assert s.snr.values_db() == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_snr_range_keeps_its_stop_point_whatever_the_float_rounding():
    """0.3 / 0.1 is 2.9999999999999996 in floating point: the range 0..0.3 in steps of 0.1
    still ends at 0.3 (inclusive, docs/scenarios.md), and a stop between two steps is not
    reached (0..1 in steps of 0.3 ends at 0.9). Values written out by hand."""
    def values(start, stop, step):
        return parse_scenario(f"snr: {{start_db: {start}, stop_db: {stop}, step_db: {step}}}\n"
                              "links: {b: {type: ber}}").snr.values_db()

    assert values(0, 0.3, 0.1) == [0.0, 0.1, 0.2, 0.3]
    assert values(-1, 0.2, 0.4) == [-1.0, -0.6, -0.2, 0.2]
    assert values(0, 1, 0.3) == [0.0, 0.3, 0.6, 0.9]
    assert values(5, 5, 1) == [5.0]


def test_snr_range_of_at_most_1000_points():
    """MAX_SNR_POINTS is a number of points: -50..74.875 in steps of 1/8 dB is 1000 points,
    allowed; -50..75 is 1001, refused (steps exact in binary; the ends within -50..100 dB)."""
    text = "snr: {{start_db: -50, stop_db: {stop}, step_db: 0.125}}\nlinks: {{b: {{type: ber}}}}"
    assert len(parse_scenario(text.format(stop=74.875)).snr.values_db()) == 1000
    with pytest.raises(ScenarioError, match="gives 1001 SNR points; at most 1000"):
        parse_scenario(text.format(stop=75))


def test_resize_factor_down_to_one_encoder_cell():
    """images.size x resize_factor must be >= 32 px (the encoder's stride): 64 x 0.5 = 32 is
    allowed, 64 x 0.45 = 28.8 is refused."""
    text = ("images: {{source: sample, size: 64}}\nsnr: {{points_db: [1]}}\n"
            "links: {{s: {{type: semantic, resize_factor: {f}}}}}")
    assert parse_scenario(text.format(f=0.5)).links["s"].resize_factor == 0.5
    with pytest.raises(ScenarioError, match="resize_factor: images.size x resize_factor must be "
                                            ">= 32 px"):
        parse_scenario(text.format(f=0.45))


def test_non_square_images_take_width_and_height():
    rect = parse_scenario(GOOD.replace("size: 256", "width: 768, height: 512"))
    assert rect.images.shape == (512, 768) and rect.images.describe() == "768x512"
    assert parse_scenario(GOOD).images.shape == (256, 256)
    assert scenario_hash(rect) != scenario_hash(parse_scenario(GOOD.replace(
        "size: 256", "width: 512, height: 768")))
    # A square given as width and height is the same images as size, another scenario text.
    assert parse_scenario(GOOD.replace("size: 256", "width: 256, height: 256")).images.shape \
        == (256, 256)


def test_hash_changes_with_content_only():
    a, b = parse_scenario(GOOD), parse_scenario(GOOD + "\n# a comment\n")
    assert scenario_hash(a) == scenario_hash(b)
    assert scenario_hash(a) != scenario_hash(parse_scenario(GOOD.replace("[1, 10]", "[1, 11]")))
    # where it runs is checked on resume by device type, not hashed
    assert scenario_hash(a) == scenario_hash(parse_scenario(GOOD + "device: cuda:1\n"))
    # Unset optional fields do not count: an optional field added to the schema later keeps
    # the hashes (and resumes) of existing results files.
    class Later(type(a)):
        added_later: int | None = None

    assert scenario_hash(Later.model_validate(a.model_dump())) == scenario_hash(a)


# (broken YAML, expected "line: path" fragment of the single error)
BROKEN = [
    (GOOD.replace("preset: small", "presett: small"), ":6: links.semantic.presett: unknown key"),
    (GOOD.replace("name: good", "nmae: good"), ":1: nmae: unknown key"),
    (GOOD.replace("code_rate: 1/2", "code_rate: fast"), ":10: links.jpeg2000.code_rate: must be a number"),
    (GOOD.replace("code_rate: 1/2", "code_rate: 1.5"), ":10: links.jpeg2000.code_rate: Input should be less than or equal to 0.92578125"),
    (GOOD.replace("code_rate: 1/2", "code_rate: 1/10"), ":10: links.jpeg2000.code_rate: Input should be greater than or equal to 0.2"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, carrier_frequency_hz: 1.0e8}"), ":3: channel.carrier_frequency_hz: Input should be greater than or equal to 500000000"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, speed_mps: 1000}"), ":3: channel.speed_mps: Input should be less than or equal to 500"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, subcarrier_spacing_hz: 5.0e6}"), ":3: channel.subcarrier_spacing_hz: Input should be less than or equal to 1000000"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, fft_size: 8192}"), ":3: channel.fft_size: Input should be less than or equal to 4096"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, cyclic_prefix_length: 100}"), ":3: channel: cyclic_prefix_length (100) must be <= fft_size (72)"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, pilot_ofdm_symbol_indices: [2, 20]}"), ":3: channel: pilot_ofdm_symbol_indices must be distinct OFDM symbols in 0..13"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, pilot_ofdm_symbol_indices: [2, 2]}"), ":3: channel: pilot_ofdm_symbol_indices must be distinct"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, num_ofdm_symbols: 8}"), ":3: channel: pilot_ofdm_symbol_indices must be distinct OFDM symbols in 0..7 (num_ofdm_symbols 8); got [2, 11]"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, num_ofdm_symbols: 2, pilot_ofdm_symbol_indices: [0, 1]}"), ":3: channel: pilot_ofdm_symbol_indices must hold at most 1 indices"),
    (GOOD.replace("{points_db: [1, 10]}", "{points_db: [1, .nan]}"), ":4: snr.points_db.1: must be a number of dB (.inf for a noiseless channel); got nan"),
    (GOOD.replace("{points_db: [1, 10]}", "{points_db: [-.inf]}"), ":4: snr.points_db.0: must be a number of dB"),
    (GOOD.replace("{points_db: [1, 10]}", "{start_db: 0, stop_db: .inf, step_db: 1}"), ":4: snr.stop_db: Input should be a finite number"),
    (GOOD.replace("{points_db: [1, 10]}", "{start_db: 0, stop_db: 100, step_db: 1.0e-8}"),
     ":4: snr: start_db..stop_db in steps of step_db gives 10000000001 SNR points; at most 1000"),
    (GOOD.replace("preset: small", "preset: small, guidance: .inf"), ":6: links.semantic.guidance: Input should be a finite number"),
    (GOOD.replace("preset: small", "preset: small, transmission: {mode: digital, clip: [-.inf, 4]}"),
     ":6: links.semantic.transmission.clip.0: Input should be a finite number"),
    (GOOD + "output: ''\n", ":12: output: String should have at least 1 character"),
    (GOOD.replace("  jpeg2000:", "  ../../escape:"), ":5: links: link name '../../escape': use letters, digits and _ . + - (not first)"),
    (GOOD.replace("  jpeg2000:", "  (reference):"), ":5: links: link name '(reference)'"),
    (GOOD + "metrics: []\n", ":12: metrics: empty; image links need at least one of psnr"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber}}\nmetrics: [fid]\n", ":3: metrics: fid needs an image link"),
    (GOOD.replace("count: 2", "count: 1") + "metrics: [psnr, fid]\n", ":12: metrics: fid needs at least 2 images; images.count is 1"),
    (GOOD.replace("preset: small", "preset: stable-cascade-lite"), ":6: links.semantic.weights: preset 'stable-cascade-lite' needs the folder of its weights"),
    (GOOD.replace("preset: small", "preset: small, resize_factor: 0.1"),
     ":6: links.semantic.resize_factor: images.size x resize_factor must be >= 32 px (the encoder's stride); got 25.6"),
    (GOOD + "snr: {points_db: [5]}\n", ":12: invalid YAML: key 'snr' given twice (first on line 4)"),
    (GOOD.replace("  jpeg2000:", "  semantic: {type: ber}\n  jpeg2000:"), ":7: invalid YAML: key 'semantic' given twice (first on line 6)"),
    ("snr: {points_db: [1], points_db: [2]}\nlinks: {b: {type: ber}}\n", ":1: invalid YAML: key 'points_db' given twice (first on line 1)"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber, code_rate: 0.9, codeword_length: 10000}}\n",
     ":2: links.b: code_rate x codeword_length gives 9000 information bits per code block (CRC included); a 5G LDPC block holds 25 to 8448: codeword_length <= 9387"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber, code_rate: 0.2, codeword_length: 100}}\n",
     ":2: links.b: code_rate x codeword_length gives 20 information bits per code block (CRC included); a 5G LDPC block holds 25 to 8448: codeword_length >= 125"),
    (GOOD.replace("modulation: 16", "modulation: 8"), ":9: links.jpeg2000.modulation: must be one of 2, 4, 16, 64, 256"),
    (GOOD.replace("type: classical", "type: classical\n    channel_code: capacity"),
     ":7: links.jpeg2000: modulation, code_rate: not used with channel_code: capacity (an ideal code: no QAM, no LDPC)"),
    (GOOD.replace("preset: small", "preset: small, transmission: {mode: analog, estimate: mmse}"),
     ":6: links.semantic.transmission.estimate: Input should be 'none', 'lmmse' or 'noise-matched'; got 'mmse'"),
    (GOOD.replace("preset: small", "preset: small, transmission: {mode: digital, estimate: lmmse}"),
     ":6: links.semantic.transmission.estimate: unknown key"),
    (GOOD.replace("type: classical", "type: classical\n    channel_code: shannon"),
     ":9: links.jpeg2000.channel_code: Input should be 'ldpc' or 'capacity'; got 'shannon'"),
    (GOOD.replace("modulation: 16", "modulation: '16'"), ":9: links.jpeg2000.modulation: Input should be a valid integer"),
    (GOOD.replace("{type: awgn}", "{type: awgm}"),
     f":3: channel: must be one of {', '.join(map(repr, CHANNEL_TYPES))}; got 'awgm'"),
    (GOOD.replace("{type: awgn}", "{type: rician}"), ":3: channel.k_factor_db: Field required"),
    (GOOD.replace("{type: awgn}", "{type: rayleigh, csi_error_var: 1}"), ":3: channel.csi_error_var: Input should be less than 1"),
    (GOOD.replace("{type: awgn}", "{type: rician, k_factor_db: 6, csi_error_var: 0.25}"), ":3: channel: csi_error_var (0.25) must be below the scattered power 1 / (K + 1) = 0.2008"),
    (GOOD.replace("{type: awgn}", "{type: rician, k_factor_db: .inf}"), ":3: channel.k_factor_db: Input should be a finite number"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, delay_spread_s: -1e-9}"), ":3: channel.delay_spread_s: Input should be greater than or equal to 0"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, model: tdl-z}"), ":3: channel.model: must be one of none, tdl-a"),
    (GOOD.replace("{type: awgn}", "{type: rayleigh, coherence_symbols: 0}"), ":3: channel.coherence_symbols: Input should be greater than or equal to 1"),
    (GOOD.replace("{type: awgn}", "{type: rayleigh, num_rx_antennas: 0}"), ":3: channel.num_rx_antennas: Input should be greater than or equal to 1"),
    (GOOD.replace("{points_db: [1, 10]}", "{start_db: 0, stop_db: 10, step_db: -1}"), ":4: snr.step_db: Input should be greater than 0"),
    (GOOD.replace("{points_db: [1, 10]}", "{start_db: 10, stop_db: 0, step_db: 1}"), ":4: snr: stop_db (0.0) must be >= start_db (10.0)"),
    (GOOD.replace("{points_db: [1, 10]}", "{points_db: []}"), ":4: snr: points_db must not be empty"),
    (GOOD.replace("{points_db: [1, 10]}", "{points_db: [1, ten]}"), ":4: snr.points_db.1: Input should be a valid number"),
    (GOOD.replace("snr: {points_db: [1, 10]}\n", ""), ":1: snr: Field required"),
    (GOOD.replace("{match: semantic}", "{match: semantik}"), ":11: links.jpeg2000.bandwidth.match: no link named 'semantik'"),
    (GOOD.replace("{match: semantic}", "{match: jpeg2000}"), ":11: links.jpeg2000.bandwidth.match: the matches jpeg2000 -> jpeg2000 go round in a circle"),
    (GOOD + "  amc: {type: classical, adaptive: true, bandwidth: {channel_uses: 500}}\n"
            "  c: {type: classical, bandwidth: {match: amc}}\n",
     ":13: links.c.bandwidth.match: 'amc' sends a frame chosen per SNR point (adaptive or capacity); match a link of fixed channel uses"),
    (GOOD + "  b: {type: ber}\n  c: {type: classical, bandwidth: {match: b}}\n",
     ":13: links.c.bandwidth.match: 'b' must be an image link (not a BER link)"),
    (GOOD + "  b: {type: classical, bandwidth: {match: c}}\n  c: {type: classical, bandwidth: {match: b}}\n",
     ":12: links.b.bandwidth.match: the matches b -> c -> b go round in a circle; give one of them channel_uses or ratio"),
    (GOOD + "    codec: jpeg\n    jpeg2000_header: explicit\n",
     ":7: links.jpeg2000: jpeg2000_header: applies to codec jpeg2000"),
    (GOOD + "    codec: png\n", ":12: links.jpeg2000.codec: Input should be 'jpeg2000' or 'jpeg'"),
    (GOOD + "  mine: {type: python, class: 'my links:Link'}\n",
     ":12: links.mine.class: must be MODULE:CLASS (e.g. my_links:DownsampleLink) or the name of an entry point of group semlink.links; got 'my links:Link'"),
    (GOOD + "  mine: {type: python, class: 'json:JSONDecoder', options: {a-b: 1}}\n",
     ":12: links.mine.options: keys are the class's keyword arguments (Python identifiers); got 'a-b'"),
    (GOOD + "  mine: {type: python, class: 'json:JSONDecoder', klass: x}\n",
     ":12: links.mine.klass: unknown key; allowed: type, class, options, scoring"),
    (GOOD.replace("{match: semantic}", "{match: semantic, channel_uses: 10}"), ":11: links.jpeg2000.bandwidth: give exactly one of"),
    (GOOD.replace("size: 256", "size: 250"), ":2: images.size: must be a multiple of 32"),
    (GOOD.replace("count: 2", "count: 0"), ":2: images.count: Input should be greater than or equal to 1"),
    (GOOD.replace("preset: small", "preset: huge"), ":6: links.semantic.preset: Input should be 'small'"),
    (GOOD.replace("preset: small", "preset: small, steps: 2.5"), ":6: links.semantic.steps: Input should be a valid integer"),
    (GOOD + "batch_size: true\n", ":12: batch_size: Input should be a valid integer"),
    (GOOD + "device: tpu\n", ":12: device: must be auto, cpu, cuda or cuda:N; got 'tpu'"),
    (GOOD + "metrics: [psnr, fidd]\n", ":12: metrics.1: Input should be 'psnr'"),
    (GOOD + "repeats: -3\n", ":12: repeats: Input should be greater than or equal to 1"),
    (GOOD.replace("size: 256", "size: 160") + "metrics: [psnr, ms_ssim]\n",
     ":12: metrics: ms_ssim (5 scales, as published) needs images.size >= 192; got 160"),
    (GOOD.replace("size: 256", "width: 768, height: 160") + "metrics: [psnr, ms_ssim]\n",
     ":12: metrics: ms_ssim (5 scales, as published) needs each of images.width and height >= "
     "192; got 768x160"),
    (GOOD.replace("{type: awgn}",
                  "{type: rayleigh, coherence_symbols: 8, normalized_doppler: 0.01}"),
     ":3: channel: give either coherence_symbols (block fading) or normalized_doppler"),
    (GOOD.replace("{type: awgn}", "{type: rician, k_factor_db: 3, normalized_doppler: 0.6}"),
     ":3: channel.normalized_doppler: Input should be less than or equal to 0.5"),
    (GOOD + "    harq: {max_transmissions: 17}\n",
     ":12: links.jpeg2000.harq.max_transmissions: Input should be less than or equal to 16"),
    (GOOD.replace("modulation: 16\n    code_rate: 1/2\n", "channel_code: capacity\n")
     + "    harq: {max_transmissions: 2}\n",
     ":7: links.jpeg2000: harq: applies to channel_code ldpc"),
    (GOOD.replace("{type: awgn}",
                  "{type: awgn, amplifier: {model: clip, input_backoff_db: 3, smoothness: 2}}"),
     ":3: channel.amplifier: smoothness: applies to model rapp"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, phase_noise_linewidth_hz: 100}"),
     ":3: channel: phase_noise_linewidth_hz: acts on the time-domain samples; set domain: time"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, domain: time, frequency_offset_hz: 2e6}"),
     ":3: channel: frequency_offset_hz (2e+06) must be within +-1.08e+06 Hz"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, estimate_frequency_offset: true}"),
     ":3: channel: estimate_frequency_offset: acts on the time-domain samples; set domain: "
     "time"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, domain: time, cyclic_prefix_length: 0, "
                  "estimate_frequency_offset: true}"),
     ":3: channel: estimate_frequency_offset: correlates the cyclic prefixes; needs "
     "cyclic_prefix_length >= 1"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, frequency_offset_hz: 100}"),
     ":3: channel: frequency_offset_hz: acts on the time-domain samples; set domain: time"),
    (GOOD.replace("{type: awgn}", "{type: awgn, frequency_offset: 0.6}"),
     ":3: channel.frequency_offset: Input should be less than or equal to 0.5"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, num_guard_carriers: [6, 5], "
                  "phase_tracking: {subcarrier_stride: 62}}"),
     ":3: channel: phase_tracking.subcarrier_stride (62) must be at most the 61 effective "
     "subcarriers"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, phase_tracking: {subcarrier_stride: 4, "
                  "pilot_spacing: 4}}"),
     ":3: channel.phase_tracking.pilot_spacing: unknown key; allowed: subcarrier_stride"),
    (GOOD.replace("{type: awgn}", "{type: awgn, phase_tracking: {pilot_spacing: 8, "
                  "estimate_frequency_offset: true}}"),
     ":3: channel.phase_tracking: estimate_frequency_offset: measures the steps within a pilot "
     "block; needs pilot_length >= 2, got 1"),
    (GOOD.replace("{type: awgn}", "{type: awgn, phase_tracking: {pilot_spacing: 0}}"),
     ":3: channel.phase_tracking.pilot_spacing: Input should be greater than or equal to 1"),
    (GOOD.replace("{type: awgn}", "{type: rician, k_factor_db: 1, phase_tracking: "
                  "{pilot_length: 4}}"),
     ":3: channel.phase_tracking.pilot_spacing: Field required"),
    (GOOD.replace("{type: awgn}", "{type: rayleigh, phase_noise_linewidth: 0.2}"),
     ":3: channel.phase_noise_linewidth: Input should be less than or equal to 0.1"),
    (GOOD.replace("{type: awgn}", "{type: awgn, phase_noise_linewidth: 0.01}").replace(
        "modulation: 16\n    code_rate: 1/2\n", "channel_code: capacity\n"),
     ":9: links.jpeg2000.channel_code: capacity counts only the channel's noise, not "
     "channel.phase_noise_linewidth's phase"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, pilot_ofdm_symbol_indices: []}"),
     ":3: channel: pilot_ofdm_symbol_indices: an empty list (no pilots) needs "
     "channel_estimation perfect"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, num_guard_carriers: [36, 35], dc_null: true}"),
     ":3: channel: num_guard_carriers and dc_null null 72 of the 72 subcarriers"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, num_guard_carriers: [4]}"),
     ":3: channel.num_guard_carriers: List should have at least 2 items"),
    (GOOD.replace("{type: awgn}", "{type: ofdm, amplifier: {input_backoff_db: 3, gain: 2}}"),
     ":3: channel.amplifier.gain: unknown key"),
    (GOOD.replace("{type: awgn}", "{type: awgn, amplifier: {input_backoff_db: 3}}").replace(
        "modulation: 16\n    code_rate: 1/2\n", "channel_code: capacity\n"),
     ":9: links.jpeg2000.channel_code: capacity counts only the channel's noise"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber, harq: {max_transmissions: 2}}}\n",
     ":2: links.b: harq: needs code_rate"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber, code_rate: 1/2, harq: {max_transmissions: "
     "2, code_block_groups: 2}}}\n",
     ":2: links.b.harq: code_block_groups: applies to frames of several code blocks (a BER "
     "link's rows are single code blocks)"),
    (GOOD.replace("modulation: 16\n    code_rate: 1/2\n", "channel_code: capacity\n")
     + "    decoder: {iterations: 50}\n",
     ":7: links.jpeg2000: decoder: applies to channel_code ldpc"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber, decoder: {iterations: 5}}}\n",
     ":2: links.b: decoder: needs code_rate (an uncoded link decodes nothing)"),
    (GOOD + "    decoder: {iterations: 0}\n",
     ":12: links.jpeg2000.decoder.iterations: Input should be greater than or equal to 1"),
    (GOOD + "    harq: {max_transmissions: 2, code_block_groups: 5}\n",
     ":12: links.jpeg2000.harq.code_block_groups: Input should be 2, 4, 6 or 8; got 5"),
    (GOOD.replace("count: 2", "count: 1") + "metrics: [psnr, kid]\n",
     ":12: metrics: kid needs at least 2 images; images.count is 1"),
    ("snr: {points_db: [1]}\nlinks: {b: {type: ber}}\nmetrics: [kid]\n",
     ":3: metrics: kid needs an image link; this scenario has BER links only"),
    (GOOD.replace("size: 256", "width: 768"), ":2: images: width needs height (or give size "
     "alone for a square image)"),
    (GOOD.replace("size: 256", "height: 512"), ":2: images: height needs width"),
    (GOOD.replace("size: 256", "size: 256, width: 768, height: 512"),
     ":2: images: give either size (a square image) or width and height, not both"),
    (GOOD.replace("size: 256", "width: 768, height: 500"),
     ":2: images.height: must be a multiple of 32"),
    (GOOD.replace("size: 256", "width: 768, height: 64").replace(
        "preset: small", "preset: small, resize_factor: 0.25"),
     ":6: links.semantic.resize_factor: each of images.width and height x resize_factor must be "
     ">= 32 px (the encoder's stride); got 16"),
    (GOOD.replace("semantic: {type: semantic, preset: small}",
                  "semantic: {type: semantic, transmission: {mode: digital, bits_per_value: 17}}"),
     ":6: links.semantic.transmission.bits_per_value: Input should be less than or equal to 16"),
    (GOOD.replace("semantic: {type: semantic, preset: small}", "semantic: {type: telepathy}"),
     f":6: links.semantic: must be one of {', '.join(map(repr, LINK_TYPES))}; got 'telepathy'"),
    ("links: {b: {type: ber}}\nsnr: {points_db: [1]\n", ":3: invalid YAML: expected ',' or '}'"),
    ("- just\n- a list\n", ":1: a scenario must be a mapping"),
    ("snr: {points_db: [1]}\nlinks: {s: {type: semantic}}\n", ":1: images: required when an image link (not a BER link) is present"),
    (GOOD.replace("{points_db: [1, 10]}", "{kind: ebno, points_db: [1, 10]}"),
     ":4: snr.kind: ebno (per information bit) applies to BER links only"),
]


@pytest.mark.parametrize("text, expected", BROKEN, ids=[f"broken{i:02d}" for i in range(len(BROKEN))])
def test_broken_scenario_names_line_and_path(text, expected, tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert len(info.value.problems) == 1, info.value.problems
    assert f"{path}{expected}" in info.value.problems[0]
    # The CLI turns it into one line on stderr and exit code 2.
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("semlink: error: ") and "Traceback" not in err


def test_several_problems_are_all_reported(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(GOOD.replace("size: 256", "size: 250").replace("modulation: 16", "modulation: 8"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in info.value.problems] == ["2", "9"]


def test_ranges_are_the_components_own():
    """The schema states the components' ranges so that it loads without torch; they must
    stay the ranges the components check."""
    import semlink.channels.doppler as doppler
    import semlink.channels.ofdm as ofdm
    import semlink.modulation.ldpc as ldpc
    import semlink.links.harq as harq
    from semlink import scenario

    assert scenario.CODE_RATE_RANGE == (ldpc.MIN_CODE_RATE, ldpc.MAX_CODE_RATE)
    assert scenario.CODE_BLOCK_INFO_BITS == (ldpc.CRC_LENGTH + 1, ldpc.MAX_BLOCK_INFO_BITS)
    assert scenario.OFDM_CARRIER_RANGE_HZ == ofdm.CARRIER_RANGE_HZ
    assert scenario.OFDM_SUBCARRIER_SPACING_RANGE_HZ == ofdm.SUBCARRIER_SPACING_RANGE_HZ
    assert scenario.OFDM_MAX_DELAY_SPREAD_S == ofdm.MAX_DELAY_SPREAD_S
    assert scenario.OFDM_MAX_SPEED_MPS == ofdm.MAX_SPEED_MPS
    assert scenario.OFDM_MAX_FFT_SIZE == ofdm.MAX_FFT_SIZE
    assert scenario.OFDM_MAX_OFDM_SYMBOLS == ofdm.MAX_OFDM_SYMBOLS
    assert scenario.MAX_NORMALIZED_DOPPLER == doppler.MAX_NORMALIZED_DOPPLER
    assert scenario.MAX_HARQ_TRANSMISSIONS == harq.MAX_TRANSMISSIONS


def test_a_code_block_at_the_edge_of_the_schema_is_one_the_ldpc_plan_accepts():
    from semlink.modulation.ldpc import plan_code_blocks

    for rate, n in [(0.9, 9386), (0.2, 125), (948 / 1024, 9125)]:
        link = parse_scenario(f"snr: {{points_db: [1]}}\nlinks: {{b: {{type: ber, code_rate: {rate}, "
                              f"codeword_length: {n}, modulation: 2}}}}").links["b"]
        plan_code_blocks(100, n=link.codeword_length, code_rate=link.code_rate)  # no ValueError


def test_an_infinite_snr_is_a_noiseless_point():
    assert parse_scenario("snr: {points_db: [5, .inf]}\nlinks: {b: {type: ber}}").snr.values_db() == [
        5.0, float("inf")]


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="nope.yaml: scenario file not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_cli_validate_subprocess_exit_codes(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("type: classical", "type: clasical"))
    ok = subprocess.run([sys.executable, "-m", "semlink.cli", "validate", str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "ok: 2 link(s)" in ok.stdout
    ko = subprocess.run([sys.executable, "-m", "semlink.cli", "validate", str(bad)],
                        capture_output=True, text=True)
    assert ko.returncode == 2 and "Traceback" not in ko.stderr
    assert ko.stderr.strip().endswith("got 'clasical'")


@pytest.mark.parametrize("path", sorted(p for p in (Path(__file__).parents[2] / "scenarios").glob("*.yaml")
                                        if not p.name.startswith("train-")),
                         ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    # training configs (train-*.yaml) are checked by the training tests; the paper's protocols
    # ask for the user's test images (images.source: ???) and take them from an override
    needs_images = "source: '???'" in path.read_text()
    overrides = [Override.parse("images.source=sample")] if needs_images else None
    load_scenario(path, overrides=overrides)
    if needs_images:
        with pytest.raises(ScenarioError, match=r"images.source: required; pass --set"):
            load_scenario(path)


SCENARIOS = Path(__file__).parents[2] / "scenarios"


def test_the_baselines_scenario_runs_every_cpu_link_at_the_semantic_links_channel_uses():
    """scenarios/baselines.yaml: the small semantic preset, DeepJSCC's shipped preset and the
    classical links on the sample photos, no file of the user's; every link at the semantic
    link's 288 channel uses but JPEG, whose smallest file needs 2764 (it gets 32 times)."""
    from semlink.dimensionality import scenario_rows

    scenario, _ = load_scenario(SCENARIOS / "baselines.yaml")
    assert {n: link.type for n, link in scenario.links.items()} == {
        "semantic": "semantic", "deepjscc": "deepjscc", "jpeg2000": "classical",
        "jpeg2000-capacity": "classical", "jpeg-32x": "classical"}
    assert scenario.referenced_paths() == {} and scenario.images.source == "sample"
    assert scenario.links["deepjscc"].weights is None  # the shipped preset
    # DeepJSCC's channel uses come from its trained network (9 x 8 x 8 reals at 256 px);
    # the others' rows need no weights
    others = scenario.model_copy(update={"links": {
        k: v for k, v in scenario.links.items() if k != "deepjscc"}})
    uses = {r.link: r.channel_uses for r in scenario_rows(others, base_dir=SCENARIOS)}
    assert uses == {"semantic": 288, "jpeg2000": 288, "jpeg2000-capacity": 288,
                    "jpeg-32x": 32 * 288}


@pytest.mark.parametrize("name", ["paper-awgn-512", "paper-awgn-1024", "paper-predictability"])
def test_the_paper_scenarios_hold_img2img_sc_as_published(name):
    """The paper's protocols run the Img2Img-SC baseline as its authors published it, on SD 1.5
    and BLIP where `semlink weights weights/stable-cascade --sd15 --blip` puts them."""
    scenario, _ = load_scenario(SCENARIOS / f"{name}.yaml", allow_missing=True)
    link = scenario.links["img2img-sc"]
    assert (link.model, link.transmission, link.modulation) == ("sd15", "as_published", 16)
    assert (link.steps, link.strength, link.guidance, link.negative_prompt) == (50, 0.6, 9.0, "")
    assert (link.weights, link.captioner) == ("../weights/stable-cascade/sd15",
                                              "../weights/stable-cascade/blip")
    assert list(scenario.links)[0] == "stable-cascade"  # the paper's link stays first
