"""Plots: every figure the results support is written, as PNG and PDF."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from semlink.images import save_image
from semlink.plots import plot_results
from semlink.results import ResultsStore, reconstructions_dir

SCENARIO = """\
name: p
images: {source: sample, size: 64}
snr: {points_db: [1, 10]}
links:
  sem: {type: semantic}
  ber4: {type: ber, modulation: 4}
"""


def _store(tmp_path):
    store = ResultsStore(tmp_path / "r.h5", {"scenario_text": SCENARIO})
    for snr in (1.0, 10.0):
        store.add(f"b{snr}", {"link": "ber4"}, {"ber": [{
            "link": "ber4", "snr_db": snr, "modulation": 4, "code_rate": float("nan"),
            "bits": 10000, "bit_errors": 100 if snr == 1 else 3, "blocks": 5, "block_errors": 5,
            "esno_db": snr, "ebno_db": snr}]})
        store.add(f"s{snr}", {"link": "sem"}, {
            "images": [{"link": "sem", "snr_db": snr, "failed": False, "metric_psnr": p,
                        "metric_ssim": p / 40} for p in (10.0 + snr, 12.0 + snr)],
            "predictability": [{"link": "sem", "snr_db": snr, "image_index": 0, "metric": "lpips",
                                "mean": 0.2, "std": 0.01, "repeats": 3}]})
    return store


def test_all_figures_written(tmp_path):
    store = _store(tmp_path)
    recon = reconstructions_dir(store.path)
    save_image(torch.zeros(3, 16, 16), recon / "original" / "a.png")
    for snr in ("1", "10"):
        save_image(torch.ones(3, 16, 16), recon / "sem" / f"snr{snr}" / "a.png")
    written = {p.name for p in plot_results(store, tmp_path / "plots")}
    assert {"ber.png", "ber.pdf", "quality_psnr.png", "quality_ssim.pdf", "predictability.md",
            "image_grid.png"} <= written
    assert "bler.png" not in written  # uncoded rows have no block error rate
    assert Image.open(tmp_path / "plots" / "ber.png").size[0] > 300
    table = (tmp_path / "plots" / "predictability.md").read_text()
    assert "| sem | lpips | 10 | 0.2000 | 0.0100 | 1 |" in table


def _plotted(monkeypatch):
    """{figure name: {curve label: (x, y)}} of every figure plot_results draws (not saved:
    rendering is what takes time)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from semlink import plots

    curves = {}

    def capture(fig, out, name):
        curves[name] = {line.get_label(): (np.asarray(line.get_xdata(), dtype=float),
                                           np.asarray(line.get_ydata(), dtype=float))
                        for ax in fig.axes for line in ax.get_lines()}
        plt.close(fig)
        return [out / f"{name}.png"]

    monkeypatch.setattr(plots, "_save", capture)
    return curves


def test_curves_are_the_means_and_rates_by_hand(tmp_path, monkeypatch):
    """What is drawn, not only that a file is written: the quality curves are the means over
    images ((11 + 13) / 2 = 12 dB at 1 dB, (20 + 22) / 2 = 21 dB at 10 dB), the BER curve the
    error rates 100 / 10000 and 3 / 10000, in SNR order; an Es/N0 scenario gets no theory."""
    import numpy as np

    curves = _plotted(monkeypatch)
    plot_results(_store(tmp_path), tmp_path / "plots")
    x, y = curves["quality_psnr"]["sem"]
    np.testing.assert_array_equal(x, [1, 10])
    np.testing.assert_allclose(y, [12, 21])
    np.testing.assert_allclose(curves["quality_ssim"]["sem"][1], [12 / 40, 21 / 40])
    x, y = curves["ber"]["ber4"]
    np.testing.assert_array_equal(x, [1, 10])
    np.testing.assert_allclose(y, [0.01, 3e-4])
    assert set(curves["ber"]) == {"ber4"}


@pytest.mark.parametrize("points", [[0.0, 6.0], [0.0, 6.0, float("inf")]])
def test_theory_is_drawn_for_uncoded_links_at_eb_n0_only(tmp_path, monkeypatch, points):
    """Against Eb/N0, an uncoded QPSK link gets its textbook curve 0.5 erfc(sqrt(Eb/N0)) over
    its finite SNR span (a noiseless .inf point does not stretch it); a coded link gets none
    (no closed form for an LDPC code)."""
    import math

    import numpy as np

    text = (f"name: t\nsnr: {{kind: ebno, points_db: {points}}}\nlinks:\n".replace("inf", ".inf")
            + "  un: {type: ber, modulation: 4}\n  coded: {type: ber, modulation: 4, code_rate: 1/2}\n")
    store = ResultsStore(tmp_path / "r.h5", {"scenario_text": text})
    for link, rate in (("un", float("nan")), ("coded", 0.5)):
        for snr in points:
            store.add(f"{link}{snr}", {"link": link}, {"ber": [{
                "link": link, "snr_db": snr, "modulation": 4, "code_rate": rate, "bits": 10000,
                "bit_errors": 50, "blocks": 10, "block_errors": 5, "esno_db": snr,
                "ebno_db": snr}]})
    curves = _plotted(monkeypatch)
    plot_results(store, tmp_path / "plots")
    assert set(curves["ber"]) == {"un", "un theory", "coded"}
    x, y = curves["ber"]["un theory"]
    assert x[0] == 0 and x[-1] == 6
    np.testing.assert_allclose(y[[0, -1]], [0.5 * math.erfc(math.sqrt(10 ** (s / 10)))
                                            for s in (0, 6)], rtol=1e-6)


def _bpsk_theory_curve(tmp_path, monkeypatch, channel: str, points: list[float]):
    """(x, y) of the theory curve drawn for an uncoded BPSK BER link against Eb/N0 over
    ``channel`` (a scenario's channel section in flow style)."""
    text = (f"name: t\nchannel: {channel}\nsnr: {{kind: ebno, points_db: {points}}}\n"
            "links:\n  un: {type: ber, modulation: 2}\n")
    store = ResultsStore(tmp_path / "r.h5", {"scenario_text": text})
    for snr in points:
        store.add(f"un{snr}", {"link": "un"}, {"ber": [{
            "link": "un", "snr_db": snr, "modulation": 2, "code_rate": float("nan"),
            "bits": 10000, "bit_errors": 50, "blocks": 0, "block_errors": 0, "esno_db": snr,
            "ebno_db": snr}]})
    curves = _plotted(monkeypatch)
    plot_results(store, tmp_path / "plots")
    return curves["ber"]["un theory"]


@pytest.mark.parametrize("k_factor", ["6", "6e0"])
def test_rician_theory_is_the_rice_averaged_ber(tmp_path, monkeypatch, k_factor):
    """Over Rician fading (K = 6 dB) the uncoded BPSK link's theory curve is the AWGN BER
    averaged over the Rice law of |h| (integrated here), at its 8 dB end point; also with K
    written ``6e0``, which the plots' YAML reader leaves a string (the scenario's reads it as
    a number)."""
    import math

    from scipy.integrate import quad
    from scipy.stats import norm, rice

    x, y = _bpsk_theory_curve(tmp_path, monkeypatch, f"{{type: rician, k_factor_db: {k_factor}}}",
                              [0, 8])
    k, g = 10 ** 0.6, 10 ** 0.8
    want = quad(lambda a: norm.sf(math.sqrt(2 * g) * a)
                * rice.pdf(a, math.sqrt(2 * k), scale=math.sqrt(1 / (2 * (k + 1)))),
                0, math.inf)[0]
    assert x[-1] == 8 and y[-1] == pytest.approx(want, rel=1e-6)


def test_rayleigh_theory_follows_the_receive_antennas(tmp_path, monkeypatch):
    """Over Rayleigh fading with 2 receive antennas the uncoded BPSK link's theory curve is
    the 2-branch MRC closed form (at 10 dB: ((1 - mu) / 2)^2 (2 + mu), mu = sqrt(10 / 11)),
    not the single-antenna one."""
    import math

    x, y = _bpsk_theory_curve(tmp_path, monkeypatch, "{type: rayleigh, num_rx_antennas: 2}",
                              [0, 10])
    mu = math.sqrt(10 / 11)
    assert x[-1] == 10 and y[-1] == pytest.approx(((1 - mu) / 2) ** 2 * (2 + mu), rel=1e-9)


def test_alamouti_theory_is_twice_the_branches_at_half_the_snr(tmp_path, monkeypatch):
    """Alamouti's code with one fade per pair (blocks of 2 symbols): 2-branch MRC with half
    the Eb/N0 per branch (at 10 dB: g = 5, ((1 - mu) / 2)^2 (2 + mu), mu = sqrt(5 / 6)); under
    fast fading (blocks of 1) the code has no closed form here and no curve is drawn."""
    import math

    x, y = _bpsk_theory_curve(tmp_path, monkeypatch, "{type: rayleigh, num_tx_antennas: 2, "
                              "coherence_symbols: 2}", [0, 10])
    mu = math.sqrt(5 / 6)
    assert x[-1] == 10 and y[-1] == pytest.approx(((1 - mu) / 2) ** 2 * (2 + mu), rel=1e-6)
    with pytest.raises(KeyError, match="un theory"):
        _bpsk_theory_curve(tmp_path / "fast", monkeypatch, "{type: rayleigh, num_tx_antennas: 2}",
                           [0, 8])


def test_no_theory_is_drawn_behind_a_transmit_amplifier(tmp_path, monkeypatch):
    """The closed forms assume a linear transmitter: behind channel.amplifier an uncoded link
    gets no theory curve."""
    with pytest.raises(KeyError, match="un theory"):
        _bpsk_theory_curve(tmp_path, monkeypatch,
                           "{type: awgn, amplifier: {model: clip, input_backoff_db: 0}}", [0, 8])


def test_no_theory_is_drawn_with_a_phase_tracker(tmp_path, monkeypatch):
    """The tracker's estimation noise is outside the closed forms: no theory curve either,
    though the channel has no impairment."""
    with pytest.raises(KeyError, match="un theory"):
        _bpsk_theory_curve(tmp_path, monkeypatch,
                           "{type: awgn, phase_tracking: {pilot_spacing: 8}}", [0, 8])


@pytest.mark.parametrize("channel", [
    "{type: ofdm}",  # frequency-selective: no closed form here
    "{type: awgn, gain_db: 3}",  # a results file of another version: not this schema's channel
])
def test_no_theory_is_drawn_where_the_channels_config_has_none(tmp_path, monkeypatch, channel):
    """The channel's config class says whether it has a closed form; a section the schema
    refuses has none either, and the measured curve is still drawn."""
    with pytest.raises(KeyError, match="un theory"):
        _bpsk_theory_curve(tmp_path, monkeypatch, channel, [0, 8])


def test_awgn_theory_comes_from_the_awgn_config(tmp_path, monkeypatch):
    """An uncoded BPSK link over a channel section without a type (AWGN, the scenario's
    default) gets Q(sqrt(2 Eb/N0)) = 0.5 erfc(sqrt(Eb/N0)); at 8 dB: 0.5 erfc(sqrt(6.3096))."""
    import math

    text_channel = "{amplifier: null}"  # a section without type: AWGN, and no amplifier
    x, y = _bpsk_theory_curve(tmp_path, monkeypatch, text_channel, [0, 8])
    assert x[-1] == 8 and y[-1] == pytest.approx(0.5 * math.erfc(math.sqrt(10 ** 0.8)),
                                                 rel=1e-9)


@pytest.mark.parametrize("header, label", [
    ("", "cap (ideal code, JPEG2000 headers not sent (implicit))"),
    (", jpeg2000_header: explicit", "cap (ideal code, JPEG2000 headers sent (explicit))")])
def test_an_ideal_code_links_legend_says_its_header_convention(tmp_path, monkeypatch, header,
                                                                label):
    text = ("name: c\nimages: {source: sample, size: 64}\nsnr: {points_db: [1, 10]}\nlinks:\n"
            "  sem: {type: semantic}\n"
            "  cap: {type: classical, channel_code: capacity, bandwidth: {match: sem}"
            f"{header}}}\n")
    store = ResultsStore(tmp_path / "r.h5", {"scenario_text": text})
    for name in ("sem", "cap"):
        store.add(name, {"link": name}, {"images": [
            {"link": name, "snr_db": snr, "failed": False, "metric_psnr": 10.0 + snr}
            for snr in (1.0, 10.0)]})
    curves = _plotted(monkeypatch)
    plot_results(store, tmp_path / "plots")
    assert set(curves["quality_psnr"]) == {"sem", label}
