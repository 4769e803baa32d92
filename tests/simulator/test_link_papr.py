"""Tests for semlink.link_papr and `semlink papr`: BER links' QAM against the constellations'
known peaks and the Gaussian CCDF on OFDM, the semantic link's recorded symbols against its
embedding mapped by hand, the OFDM sample count, the power levels against a sort written out,
left-out capacity links, and one-line errors."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.papr import power_levels_db
from semlink.modulation.analog import AnalogMapper
from semlink.cli import main
from semlink.images import load_images
from semlink.link_papr import EXCEEDED_BY, THRESHOLDS_DB, link_papr
from semlink.links.semantic import SemanticLink
from semlink.scenario import AnalogTransmission, parse_scenario

BER = """\
name: p
seed: 3
device: cpu
channel: CHANNEL
snr: {points_db: [10]}
links:
  qpsk: {type: ber, modulation: 4}
  qam16: {type: ber, modulation: 16}
"""

IMAGES = """\
name: p
seed: 0
device: cpu
images: {source: sample, size: 256, count: 2}
channel: CHANNEL
snr: {points_db: [10]}
links:
  semantic: {type: semantic, preset: small, steps: 1}
  j2k: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {match: semantic}}
  ideal: {type: classical, channel_code: capacity, bandwidth: {match: semantic}}
"""


def _papr(text: str, channel: str, **kwargs):
    scenario = parse_scenario(text.replace("CHANNEL", channel))
    return {r.link: r for r in link_papr(scenario, base_dir=Path("."), device="cpu", **kwargs)}


def test_qam_on_a_single_carrier_peaks_where_its_constellation_does():
    """QPSK has a constant envelope (0 dB everywhere); 16-QAM's 4 corners of 16 points carry
    1.8 times the mean power: a quarter of the samples at 2.55 dB, none above."""
    rows = _papr(BER, "{type: awgn}")
    qpsk, qam = rows["qpsk"], rows["qam16"]
    assert (qpsk.waveform, qpsk.rows, qpsk.samples) == ("single carrier", 8, 8 * 4096)
    assert qpsk.levels_db == pytest.approx((0.0, 0.0, math.nan), abs=1e-5, nan_ok=True)
    assert qpsk.median_peak_db == pytest.approx(0.0, abs=1e-5)
    assert qam.median_peak_db == pytest.approx(10 * math.log10(1.8), abs=0.05)
    ccdf = dict(zip(THRESHOLDS_DB, qam.ccdf))
    assert ccdf[2.0] == pytest.approx(0.25, abs=0.01) and ccdf[3.0] == 0.0


def test_a_phase_trackers_pilot_blocks_are_part_of_the_signal():
    """Pilot blocks of 4 every 60 data symbols: 4096 data + 4 x 70 pilots per row, the pilots
    at the row's mean power (0 dB), so 16-QAM's quarter of samples at 2.55 dB shrinks to
    0.25 x 4096 / 4376 of them."""
    rows = _papr(BER, "{type: awgn, phase_tracking: {pilot_spacing: 60, pilot_length: 4}}")
    qam = rows["qam16"]
    assert (qam.waveform, qam.samples) == ("single carrier, pilot blocks", 8 * 4376)
    ccdf = dict(zip(THRESHOLDS_DB, qam.ccdf))
    assert ccdf[2.0] == pytest.approx(0.25 * 4096 / 4376, abs=0.005)  # 0.234, not 0.25


def test_qam_on_many_subcarriers_has_the_gaussian_ccdf():
    """On 128 subcarriers either QAM's time signal is close to complex Gaussian: the power
    exceeded by 1 % of the samples is -ln(0.01) = 4.6 (6.63 dB), by 0.1 % 8.39 dB. (A row's
    4096 symbols fill two slots of 128 x 16 data elements exactly: the full-load reference is
    the signal's mean.)"""
    rows = _papr(BER, "{type: ofdm, model: none, fft_size: 128, num_ofdm_symbols: 18, "
                      "channel_estimation: perfect}")
    for row in rows.values():
        assert row.waveform == "OFDM"
        assert row.levels_db[0] == pytest.approx(10 * math.log10(-math.log(1e-2)), abs=0.25)
        assert row.levels_db[1] == pytest.approx(10 * math.log10(-math.log(1e-3)), abs=0.4)


def test_image_links_are_measured_on_what_they_send():
    """The semantic link's samples are its embedding of the first images mapped to unit-power
    symbols (the analog mapper applied here by hand); on OFDM each image's 288 symbols take
    one slot of 14 OFDM symbols of 4 x 72 samples; the capacity link, which has no waveform, is
    left out."""
    rows = _papr(IMAGES, "{type: awgn}")
    assert list(rows) == ["semantic", "j2k"]
    link = SemanticLink(preset="small", image_size=256,
                        transmission=AnalogTransmission(mode="analog"))
    x, _ = AnalogMapper(shape=link.embedding_shape)(link.encode(load_images("sample", 256,
                                                                            count=2)[0]))
    peak = 10 * torch.log10(x.abs().square().amax(dim=1))  # unit mean power per row
    assert rows["semantic"].samples == x.numel() == 2 * 288
    assert rows["semantic"].median_peak_db == pytest.approx(float(peak.median()), abs=1e-4)
    assert rows["j2k"].median_peak_db < 2.7  # 16-QAM
    ofdm = _papr(IMAGES, "{type: ofdm, model: none}", links=["semantic"])
    assert list(ofdm) == ["semantic"] and ofdm["semantic"].samples == 2 * 14 * 4 * 72
    # against a full symbol's power, not the row's own (288 of 864 data elements filled)
    signal = OFDMSISOChannel(model="AWGN").time_signal(x)
    full_load = power_levels_db(signal, [0.01], reference_power=1.0).item()
    own_mean = power_levels_db(signal, [0.01]).item()
    assert ofdm["semantic"].levels_db[0] == pytest.approx(full_load)
    assert full_load < own_mean - 2.0


def test_power_levels_are_the_order_statistics():
    """The level exceeded by a fraction p of N samples is the (floor(p N) + 1)-th largest
    power, NaN when fewer than 10 samples lie above."""
    x = torch.randn(3, 4000, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    power = x.abs().square().flatten().double()
    by_hand = [10 * math.log10(float(power.sort(descending=True).values[int(p * 12000)]))
               for p in (0.01, 0.001)]
    levels = power_levels_db(x, [0.01, 0.001, 1e-4], reference_power=1.0).tolist()
    assert levels[:2] == pytest.approx(by_hand) and math.isnan(levels[2])
    assert EXCEEDED_BY == (1e-2, 1e-3, 1e-4)


def test_papr_command_prints_the_table_and_writes_the_ccdf(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(BER.replace("CHANNEL", "{type: awgn}"))
    assert main(["papr", str(path), "--link", "qam16", "--csv", str(tmp_path / "c.csv"),
                 "--plot", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "qam16" in out and "single carrier" in out and "qpsk" not in out
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"power_ccdf.png",
                                                                "power_ccdf.pdf"}
    with open(tmp_path / "c.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(THRESHOLDS_DB) and rows[0]["link"] == "qam16"
    assert [r["threshold_db"] for r in rows[3:5]] == ["0.75", "1.0"]
    # 16-QAM: the 8 edge points sit at the mean power, the 4 corners 2.55 dB above it
    assert float(rows[4]["ccdf"]) == pytest.approx(0.25, abs=0.01)


def test_papr_command_errors_are_one_line(tmp_path, capsys):
    """An unknown link names the links; a bad --images is refused by the parser."""
    path = tmp_path / "s.yaml"
    path.write_text(BER.replace("CHANNEL", "{type: awgn}"))
    assert main(["papr", str(path), "--link", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "semlink: error: --link: no link named 'nope'; links are qpsk, qam16\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["papr", str(path), "--images", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "argument --images: must be an integer >= 1; got '0'" in err
    recipe = Path(__file__).parents[2] / "scenarios" / "train-small.yaml"
    assert main(["papr", str(recipe)]) == 2
    assert "is a training recipe (it has phases:), not a scenario; train with semlink train" in \
        capsys.readouterr().err


def test_papr_command_refuses_a_scenario_without_a_waveform(tmp_path, capsys):
    only_ideal = IMAGES.replace("CHANNEL", "{type: awgn}").split("  semantic:")[0] + (
        "  semantic: {type: semantic, preset: small}\n"
        "  ideal: {type: classical, channel_code: capacity, bandwidth: {match: semantic}}\n")
    path = tmp_path / "s.yaml"
    path.write_text(only_ideal)
    assert main(["papr", str(path), "--link", "ideal"]) == 2
    assert "no link with a waveform" in capsys.readouterr().err
