"""Acceptance of the classical link (issue 4) on the 8 sample photos at 512 px: N = 1152
channel uses (the semantic embedding of a 512 px image), 16-QAM, LDPC rate 1/2, AWGN.

The half-failure SNR of the images is compared with the SNR where the BLER of the same code
blocks (random payload) crosses 0.5, both found by bisection with common random numbers (one
noise seed for every SNR, so the estimates are monotone in SNR up to BP's rare exceptions).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.codecs.jpeg2000 import decode
from semlink.images import load_images
from semlink.links.classical import ClassicalLink

N = 1152
SIZE = 512


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup():
    images = load_images("sample", SIZE)[0]  # [8, 3, 512, 512]
    link = ClassicalLink(channel_uses=N, image_size=(SIZE, SIZE), modulation=16, code_rate=0.5)
    sent, streams = link.encode_frames(images)
    return link, images, sent, streams


def _psnr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in NumPy on the 8-bit grid (peak 255); 0 for a lost image as in the paper."""
    a = np.rint(x.numpy() * 255).astype(np.float64)
    b = np.rint(y.numpy() * 255).astype(np.float64)
    return float(10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)))


def _receive(link: ClassicalLink, sent: torch.Tensor, snr_db: float, seed: int):
    channel = AWGNChannel(generator=torch.Generator().manual_seed(seed))
    x_hat, no_eff = channel(link.modulate(sent), snr_db)
    return link.demodulate(x_hat, no_eff)  # bits, block_ok


def _image_failure_rate(link, sent, snr_db: float, repeats: int) -> float:
    """Fraction of images lost under ``paper`` over ``repeats`` noise draws of every frame."""
    frames = sent.repeat(repeats, 1)
    bits, ok = _receive(link, frames, snr_db, seed=11)
    return float(link.decode_frames(bits, ok).failed.float().mean())


def _bler(link, snr_db: float, rows: int) -> float:
    """Block error rate of the link's code blocks with uniformly random payload bits."""
    payload = torch.randint(0, 2, (rows, link.budget.plan.num_payload_bits),
                            generator=torch.Generator().manual_seed(3)).float()
    _, ok = _receive(link, payload, snr_db, seed=12)
    return float((~ok).float().mean())


def _crossing_db(rate, level: float, low: float, high: float, steps: int) -> float:
    """SNR where the decreasing ``rate(snr)`` crosses ``level``, by bisection in [low, high]."""
    assert rate(low) > level > rate(high)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if rate(mid) > level:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def test_codestreams_fit_the_budget(setup):
    link, _, sent, streams = setup
    b = link.budget
    assert (b.plan.num_blocks, b.plan.n, b.plan.k, b.payload_bytes) == (3, 1536, 768, 279)
    assert sent.shape == (8, 8 * 279)
    for stream in streams:
        assert 0.9 * b.codestream_bytes <= len(stream) <= b.codestream_bytes == 279 - 6


def test_20db_decodes_every_image_at_the_error_free_psnr(setup):
    link, images, sent, streams = setup
    bits, ok = _receive(link, sent, 20.0, seed=1)
    out = link.decode_frames(bits, ok)
    assert bool(ok.all()) and not out.failed.any() and torch.equal(bits, sent)
    for image, received, stream in zip(images, out.images, streams):
        clean = decode(stream, height=SIZE, width=SIZE, header="implicit").image
        assert torch.equal(received, clean)
        # 273 bytes for 512 x 512 (0.008 bit/pixel): ~14-22 dB, well above the grey image.
        grey = torch.full_like(image, 0.5)
        assert _psnr_db(image, received) == _psnr_db(image, clean) > _psnr_db(image, grey) + 2


def test_1db_loses_every_image_under_paper(setup):
    link, _, sent, _ = setup
    bits, ok = _receive(link, sent, 1.0, seed=2)
    out = link.decode_frames(bits, ok)
    assert out.failed.all() and torch.all(out.images == 0.5)
    assert torch.all(out.block_errors >= 1)


def test_half_failure_snr_is_near_the_bler_crossing(setup):
    link, _, sent, _ = setup
    # 32 frames (96 blocks) per image point and 240 blocks per BLER point; 6 halvings of 8 dB
    # resolve 0.125 dB. The waterfall of n = 1536 is ~1 dB wide, so counting noise moves a
    # crossing by ~0.1 dB.
    image_half_db = _crossing_db(lambda s: _image_failure_rate(link, sent, s, repeats=4),
                                 0.5, 2.0, 10.0, steps=6)
    bler_half_db = _crossing_db(lambda s: _bler(link, s, rows=80), 0.5, 2.0, 10.0, steps=6)
    print(f"half of the images fail at {image_half_db:.2f} dB; BLER 0.5 at {bler_half_db:.2f} dB")
    assert abs(image_half_db - bler_half_db) < 1.0, (image_half_db, bler_half_db)
    # An image is lost when any of its 3 blocks is: it fails more often than a block.
    assert image_half_db >= bler_half_db - 0.125


@pytest.mark.slow
def test_half_failure_snr_matches_three_independent_blocks(setup):
    """Thorough (~2.5 minutes): with 96 frames per image point and 600 blocks per BLER point,
    the half-failure SNR equals the SNR where the BLER is 1 - 2^(-1/3) = 0.206 (each image has
    3 blocks that fail independently), within 0.2 dB, and lies within 1 dB of BLER 0.5."""
    link, _, sent, _ = setup
    grid = np.arange(4.5, 8.01, 0.25)
    bler = np.array([_bler(link, float(s), rows=200) for s in grid])
    assert bler[0] > 0.5 and bler[-1] < 0.05

    def crossing(level: float) -> float:  # first fall below ``level``, linear interpolation
        i = int(np.argmax(bler < level))
        return float(np.interp(level, [bler[i], bler[i - 1]], [grid[i], grid[i - 1]]))

    image_half_db = _crossing_db(lambda s: _image_failure_rate(link, sent, s, repeats=12),
                                 0.5, 4.0, 8.0, steps=5)
    print(f"half of the images fail at {image_half_db:.2f} dB; BLER 0.5 at "
          f"{crossing(0.5):.2f} dB, 0.206 at {crossing(1 - 2 ** (-1 / 3)):.2f} dB")
    assert abs(image_half_db - crossing(0.5)) < 1.0
    assert abs(image_half_db - crossing(1 - 2 ** (-1 / 3))) < 0.2


def test_transmit_command_takes_the_scenarios_defaults_and_fractions(tmp_path, capsys):
    """`semlink transmit --link classical` defaults to the scenarios' 16-QAM rate 1/2 and takes
    the rate as a fraction like a scenario does."""
    from semlink.cli import main
    from semlink.images import SAMPLE_DIR

    photo = str(SAMPLE_DIR / "02_astronaut.png")
    lines = []
    for rate in ([], ["--code-rate", "1/2"], ["--code-rate", "0.5", "--modulation", "16"]):
        assert main(["transmit", photo, "--snr-db", "20", "--link", "classical", "--device", "cpu",
                     "--out", str(tmp_path / "c.png")] + rate) == 0
        lines.append(capsys.readouterr().out)
    assert lines[0] == lines[1] == lines[2]
    assert "classical link, 288 channel uses, awgn at 20 dB: PSNR" in lines[0]
    assert "decoding failed" not in lines[0]


def test_transmit_command_over_the_ideal_code_defaults_to_288_channel_uses(tmp_path, capsys):
    """Without --channel-uses the capacity link gets the documented default, 288 (the small
    preset's at 256 px): at 0 dB exactly 288 bits, a 36-byte frame that decodes."""
    from semlink.cli import main
    from semlink.images import SAMPLE_DIR

    photo = str(SAMPLE_DIR / "02_astronaut.png")
    assert main(["transmit", photo, "--snr-db", "0", "--link", "capacity", "--device", "cpu",
                 "--out", str(tmp_path / "c.png")]) == 0
    line = capsys.readouterr().out
    assert "capacity link, 288 channel uses, awgn at 0 dB: PSNR" in line
    assert "decoding failed" not in line


def test_transmit_command_over_the_ideal_code_decodes_the_capacity_frame(tmp_path, capsys):
    """`semlink transmit --link capacity` sends the frame of the AWGN capacity at --snr-db and
    saves exactly the JPEG2000 image of that budget."""
    from semlink.cli import main
    from semlink.codecs.jpeg2000 import decode, encode_to_budget
    from semlink.images import SAMPLE_DIR, load_image
    from semlink.links.capacity import capacity_payload_bytes
    from semlink.links.framing import HEADER_BYTES

    photo = SAMPLE_DIR / "02_astronaut.png"
    out = tmp_path / "c.png"
    assert main(["transmit", str(photo), "--snr-db", "7", "--link", "capacity", "--device", "cpu",
                 "--channel-uses", "400", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "capacity link, 400 channel uses, awgn at 7 dB: PSNR" in line
    assert "decoding failed" not in line
    budget = capacity_payload_bytes(400, 7.0) - HEADER_BYTES
    stream = encode_to_budget(load_image(photo, 256), budget, header="implicit").codestream
    expected = decode(stream, height=256, width=256, header="implicit").image
    torch.testing.assert_close(load_image(out, 256), (expected * 255).round() / 255,
                               rtol=0, atol=1e-6)


def test_transmit_command_over_fading_with_diversity_and_a_line_of_sight(tmp_path, capsys):
    """--channel rician --k-factor-db and --rx-antennas reach the channel: the same frame over
    the ideal code at 6 dB is lost over one fast-fading antenna (its mutual information
    averages below the AWGN capacity it was sized for, Jensen) and arrives with 8 antennas
    and a strong line of sight (nearly AWGN with 9 dB of array gain)."""
    from semlink.cli import main
    from semlink.images import SAMPLE_DIR

    photo = str(SAMPLE_DIR / "02_astronaut.png")
    lines = []
    for channel in (["--channel", "rayleigh"],
                    ["--channel", "rician", "--k-factor-db", "20", "--rx-antennas", "8"]):
        assert main(["transmit", photo, "--snr-db", "6", "--link", "capacity", "--device", "cpu",
                     "--out", str(tmp_path / "c.png"), *channel]) == 0
        lines.append(capsys.readouterr().out)
    assert "rayleigh at 6 dB" in lines[0] and "(decoding failed)" in lines[0]
    assert "rician (K 20 dB, 8 rx) at 6 dB" in lines[1] and "decoding failed" not in lines[1]
    # Eight Rayleigh antennas with an estimation error as large as the noise (s2 = 0.25 at
    # 6 dB, N0 = 0.25): the mean SINR 8 x 0.75 / 0.5 = 12 still carries the frame sized for
    # AWGN at 6 dB (log2(13) = 3.7 > log2(1 + 3.98) = 2.3 bits per use).
    assert main(["transmit", photo, "--snr-db", "6", "--link", "capacity", "--device", "cpu",
                 "--out", str(tmp_path / "c.png"), "--channel", "rayleigh", "--rx-antennas",
                 "8", "--csi-error-var", "0.25"]) == 0
    assert "decoding failed" not in capsys.readouterr().out


def test_transmit_command_passes_the_doppler_and_amplifier_to_the_channel(tmp_path, monkeypatch):
    """--normalized-doppler builds time-correlated fading: the channel semlink transmit builds
    is the Jakes model of that f_D T_s (with the Rician line of sight kept); the amplifier,
    oscillator and phase tracker options reach the channel too."""
    import semlink.channel
    from semlink.cli import main
    from semlink.images import SAMPLE_DIR

    built = []
    build = semlink.channel.build_channel

    def spy(config, **kwargs):
        built.append(build(config, **kwargs))
        return built[-1]

    monkeypatch.setattr(semlink.channel, "build_channel", spy)
    assert main(["transmit", str(SAMPLE_DIR / "02_astronaut.png"), "--snr-db", "20", "--link",
                 "capacity", "--device", "cpu", "--out", str(tmp_path / "c.png"), "--channel",
                 "rician", "--k-factor-db", "3", "--normalized-doppler", "0.02"]) == 0
    (channel,) = built
    assert channel.normalized_doppler == 0.02 and channel.k_factor_db == 3.0
    # --amplifier-backoff-db puts a Rapp amplifier (p = 2) in front, here of AWGN
    assert main(["transmit", str(SAMPLE_DIR / "02_astronaut.png"), "--snr-db", "20", "--link",
                 "classical", "--device", "cpu", "--out", str(tmp_path / "c.png"),
                 "--amplifier-backoff-db", "1.5"]) == 0
    amplified = built[-1]
    assert (amplified.amplifier.model, amplified.amplifier.input_backoff_db,
            amplified.amplifier.smoothness) == ("rapp", 1.5, 2.0)
    # and on OFDM the amplifier goes inside, onto the time-domain signal
    assert main(["transmit", str(SAMPLE_DIR / "02_astronaut.png"), "--snr-db", "20", "--link",
                 "classical", "--device", "cpu", "--out", str(tmp_path / "c.png"),
                 "--channel", "ofdm", "--amplifier-backoff-db", "4"]) == 0
    assert built[-1].amplifier.input_backoff_db == 4.0
    # the receiver's oscillator, tracked on pilots, over Rayleigh fading
    assert main(["transmit", str(SAMPLE_DIR / "02_astronaut.png"), "--snr-db", "20", "--link",
                 "classical", "--device", "cpu", "--out", str(tmp_path / "c.png"),
                 "--channel", "rayleigh", "--phase-noise-linewidth", "0.001",
                 "--frequency-offset", "0.002", "--pilot-spacing", "12"]) == 0
    tracked = built[-1]
    assert (tracked.pilot_spacing, tracked.pilot_length) == (12, 1)
    assert (tracked.channel.normalized_linewidth,
            tracked.channel.normalized_frequency_offset) == (0.001, 0.002)


def test_transmit_command_retransmits_with_harq(tmp_path, capsys):
    """--harq T: at 2 dB one send of 16-QAM rate 1/2 loses the frame; with up to 4 sends
    combined it arrives, and the line counts the channel uses of every send;
    --harq-combining ir sends redundancy versions instead."""
    import re

    from semlink.cli import main
    from semlink.images import SAMPLE_DIR

    photo = str(SAMPLE_DIR / "02_astronaut.png")
    args = ["transmit", photo, "--snr-db", "2", "--link", "classical", "--device", "cpu",
            "--out", str(tmp_path / "c.png")]
    assert main(args) == 0
    assert "288 channel uses, awgn at 2 dB" in (line := capsys.readouterr().out)
    assert "decoding failed" in line
    assert main(args + ["--harq", "4"]) == 0
    line = capsys.readouterr().out
    sends = int(re.search(r"(\d+) channel uses \((\d) of at most 4 sends\)", line).group(2))
    assert 2 <= sends <= 4 and f"{288 * sends} channel uses" in line
    assert "decoding failed" not in line
    # incremental redundancy needs no more sends than Chase combining here
    assert main(args + ["--harq", "4", "--harq-combining", "ir"]) == 0
    line = capsys.readouterr().out
    ir_sends = int(re.search(r"\((\d) of at most 4 sends\)", line).group(1))
    assert 2 <= ir_sends <= sends and "decoding failed" not in line
    # --harq-groups: 512 px at 1152 uses is 3 code blocks; over Rayleigh fading at 8 dB they
    # fail apart, and only the failed blocks' groups (384 symbols per block) go again
    wide = ["transmit", photo, "--snr-db", "8", "--link", "classical", "--device", "cpu",
            "--size", "512", "--channel-uses", "1152", "--channel", "rayleigh", "--harq", "4",
            "--harq-groups", "4", "--seed", "1", "--out", str(tmp_path / "g.png")]
    assert main(wide) == 0
    line = capsys.readouterr().out
    uses, sends = map(int, re.search(r"(\d+) channel uses \((\d) of", line).groups())
    assert sends >= 2 and (uses - 1152) % 384 == 0 and uses < 1152 * sends, line
