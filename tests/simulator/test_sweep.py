"""The sweep's plan and the random streams of its tasks: every image of every (link, SNR) point is
planned once, in batches, and every transmission draws its channel and sampler noise from a stream
of its own (docs/scenarios.md, ``seed`` and ``batch_size``)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from semlink.links.semantic import SemanticLink
from semlink.plan import REFERENCE, plan_tasks
from semlink.scenario import parse_scenario
from semlink.tasks import TaskRunner

pytestmark = pytest.mark.usefixtures("one_thread")

PLAN = """\
name: plan
images: {source: sample, size: 64, count: 5}
snr: {start_db: 0, stop_db: 10, step_db: 10}
batch_size: 2
metrics: [psnr, fid]
links:
  sem: {type: semantic, preset: small}
  qpsk: {type: ber, modulation: 4}
"""


def test_plan_batches_every_image_once_per_link_and_snr():
    """Written out by hand: 5 images in batches of 2 are (0, 1), (2, 3), (4,); FID's reference
    features of the originals come first; a BER link has one task per SNR point, the range's
    stop point included."""
    tasks = plan_tasks(parse_scenario(PLAN), num_images=5)
    batches = [(0, 1), (2, 3), (4,)]
    expected = [(REFERENCE, -1, b, batch) for b, batch in enumerate(batches)]
    for s in (0, 1):
        expected += [("sem", s, b, batch) for b, batch in enumerate(batches)]
    expected += [("qpsk", 0, 0, ()), ("qpsk", 1, 0, ())]
    assert [(t.link, t.snr_index, t.batch_index, t.image_indices) for t in tasks] == expected
    assert [t.snr_db for t in tasks if t.link != REFERENCE] == [0.0] * 3 + [10.0] * 3 + [0.0, 10.0]
    assert len({t.point_id for t in tasks}) == len(tasks)
    # Against a statistics file, no reference tasks: the originals' features are not needed.
    with_file = parse_scenario(PLAN + "fid_reference: stats.npz\n")
    assert [t for t in plan_tasks(with_file, 5) if t.link == REFERENCE] == []


SEEDS = """\
name: seeds
seed: 7
device: cpu
images: {{source: sample, size: 64, count: 4}}
snr: {{points_db: [5, 15]}}
batch_size: {batch}
repeats: 2
metrics: [psnr]
links:
  sem: {{type: semantic, preset: small}}
"""


def _streams(batch: int, monkeypatch) -> tuple[dict, dict]:
    """Seeds of the generators each task hands the channel and the sampler, by coordinates:
    channel ``(snr_index, batch_index, repeat)``, sampler ``(snr_index, image, repeat)``. The
    sampler itself is replaced by zeros: only its generators matter here."""
    import semlink.channel

    channel_seeds, sampler_seeds = [], []
    real_build = semlink.channel.build_channel

    def build_channel(config, *, generator, device, **kwargs):
        if generator is not None:
            channel_seeds.append(generator.initial_seed())
        return real_build(config, generator=generator, device=device, **kwargs)

    def reconstruct(self, zhat, generators):
        sampler_seeds.append([g.initial_seed() for g in generators])
        return torch.zeros(len(generators), 3, 64, 64)

    monkeypatch.setattr(semlink.channel, "build_channel", build_channel)
    monkeypatch.setattr(SemanticLink, "reconstruct", reconstruct)
    scenario = parse_scenario(SEEDS.format(batch=batch))
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    channel, sampler = {}, {}
    for task in plan_tasks(scenario, runner.num_images):
        channel_seeds.clear(), sampler_seeds.clear()
        runner.run(task)
        assert len(channel_seeds) == len(sampler_seeds) == scenario.repeats  # one per repeat
        for repeat in range(scenario.repeats):
            channel[task.snr_index, task.batch_index, repeat] = channel_seeds[repeat]
            for image, seed in zip(task.image_indices, sampler_seeds[repeat], strict=True):
                sampler[task.snr_index, image, repeat] = seed
    return channel, sampler


def test_every_transmission_has_streams_of_its_own(monkeypatch):
    """Two SNR points x 2 batches x 2 repeats: 8 channel streams, and 2 x 4 images x 2 repeats:
    16 sampler streams, all different (a stream used twice would make two repeats, batches or
    SNR points share their noise, and the predictability of the repeats meaningless). The
    sampler's stream is the image's, whatever batch it travels in: batches of 1 give the same
    sampler seeds (docs/scenarios.md: the sampler's noise is drawn per image)."""
    channel, sampler = _streams(2, monkeypatch)
    assert len(channel) == 8 and len(set(channel.values())) == 8
    assert len(sampler) == 16 and len(set(sampler.values())) == 16
    assert not set(channel.values()) & set(sampler.values())
    channel_1, sampler_1 = _streams(1, monkeypatch)
    assert sampler_1 == sampler
    assert len(channel_1) == 16 and len(set(channel_1.values())) == 16


BANDWIDTH = """\
name: bw
device: cpu
images: {source: sample, size: 128, count: 2}
snr: {points_db: [5]}
links:
  sem: {type: semantic, preset: small}
  ratio: {type: classical, bandwidth: {ratio: 0.05}}
  uses: {type: classical, bandwidth: {channel_uses: 2000}}
  matched: {type: classical, bandwidth: {match: sem}}
"""


def test_bandwidth_is_resolved_as_documented():
    """Channel uses per image: a ratio N / (3 H W) gives round(0.05 x 3 x 128 x 128) = 2458; a
    number is taken as it is; ``match`` takes the semantic link's, 16 x 3 x 3 embedding values
    at 128 px (the small preset's 0.75 resize, one cell per 32 px), two per complex symbol: 72."""
    runner = TaskRunner(parse_scenario(BANDWIDTH), base_dir=Path.cwd(), device="cpu")
    assert runner.channel_uses("ratio") == 2458
    assert runner.channel_uses("uses") == 2000
    assert runner.channel_uses("matched") == runner.channel_uses("sem") == 72


def test_a_link_matched_to_a_repeating_semantic_link_gets_all_its_channel_uses():
    """transmission.repetitions: 3 triples the semantic link's channel uses (3 x 72 at 128 px),
    and a classical link matched to it gets them all."""
    text = BANDWIDTH.replace("sem: {type: semantic, preset: small}",
                             "sem: {type: semantic, preset: small, transmission: "
                             "{mode: analog, repetitions: 3}}")
    runner = TaskRunner(parse_scenario(text), base_dir=Path.cwd(), device="cpu")
    assert runner.channel_uses("matched") == runner.channel_uses("sem") == 216


def test_non_square_images_run_through_every_link_kind():
    """width x height = 192 x 128: a ratio counts 3 x 128 x 192 values (0.05 of them: 3686
    uses), ``match`` takes the semantic link's Z [16, 3, 5] (120 uses); every link's rows are
    scored on 128 x 192 images (the classical link at 20 dB is error free, so its PSNR is its
    JPEG2000 decode's, recomputed here from the codec alone, implicit headers as by default)."""
    from semlink.codecs.jpeg2000 import decode, encode_to_budget
    from semlink.links.framing import HEADER_BYTES
    from semlink.metrics.quality import psnr_db

    text = BANDWIDTH.replace("size: 128", "width: 192, height: 128").replace("[5]", "[20]")
    scenario = parse_scenario(text)
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    assert runner.channel_uses("ratio") == 3686
    assert runner.channel_uses("matched") == runner.channel_uses("sem") == 120
    assert runner.images((0, 1)).shape == (2, 3, 128, 192)
    rows = {}
    for task in plan_tasks(scenario, runner.num_images):
        rows[task.link] = runner.run(task)[1]["images"]
    assert all(len(r) == 2 for r in rows.values())
    link = runner.link("uses")
    image = runner.images((0,))
    codestream = encode_to_budget(image[0], link.budget.payload_bytes - HEADER_BYTES,
                                  header="implicit").codestream
    decoded = decode(codestream, height=128, width=192, header="implicit").image
    expected = float(psnr_db(image, decoded[None]))
    assert rows["uses"][0]["metric_psnr"] == pytest.approx(expected, abs=1e-4)


FID = """\
name: fid
images: {source: sample, size: 64}
snr: {points_db: [5]}
repeats: 2
metrics: [fid, kid]
links:
  sem: {type: semantic, preset: small}
"""


def _set_metrics_of_rows(rows: list[dict], path: Path) -> tuple[float, float]:
    from semlink.results import ResultsStore
    from semlink.sweep import add_set_points

    store = ResultsStore(path, {})
    for i, row in enumerate(rows):  # one task per row: the order tasks finished in
        store.add(f"t{i}", {"link": row["link"]}, {"features": [row]})
    add_set_points(parse_scenario(FID), store)
    return float(store.table("fid")["fid"][0]), float(store.table("kid")["kid"][0])


def _feature_rows(seed: int, images: int = 24, repeats: int = 2) -> list[dict]:
    """Reference and link rows of Inception-like features of mixed magnitudes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-3, 4, size=(1, 48))
    rows = [{"link": REFERENCE, "snr_db": float("nan"), "image_index": i, "repeat": 0,
             "failed": False, "feature": (rng.gamma(2.0, size=48) * scale[0]).astype(np.float32)}
            for i in range(images)]
    rows += [{"link": "sem", "snr_db": 5.0, "image_index": i, "repeat": r, "failed": False,
              "feature": (rng.gamma(2.0, size=48) * scale[0]).astype(np.float32)}
             for i in range(images) for r in range(repeats)]
    return rows


def test_fid_and_kid_are_the_same_to_the_last_bit_whatever_order_the_tasks_finished_in(
        tmp_path):
    """Shards, Ray workers and resumed runs store feature rows in other orders; FID and KID
    sort them by (image, repeat) first, so their sums run in one order and the values are
    bit-identical (docs/conventions.md). Features of mixed magnitudes make float addition
    order visible."""
    import numpy as np

    rows = _feature_rows(3)
    in_order = _set_metrics_of_rows(rows, tmp_path / "a.h5")
    shuffled = [rows[i] for i in np.random.default_rng(4).permutation(len(rows))]
    assert _set_metrics_of_rows(shuffled, tmp_path / "b.h5") == in_order
    assert in_order[0] > 0


def test_kid_of_a_link_leaves_out_the_pairs_of_one_image(tmp_path):
    """KID from the stored features, written out: the originals against the reconstructions
    (two repeats per image), every kernel mean over pairs of different images; a failed image
    counts as the receiver shows it (its features are used)."""
    import numpy as np

    rows = _feature_rows(5, images=3)
    rows[4]["failed"] = True
    x = [r["feature"].astype(np.float64) for r in rows if r["link"] == REFERENCE]
    y = [(r["image_index"], r["feature"].astype(np.float64)) for r in rows if r["link"] == "sem"]

    def k(a, b):
        return (a @ b / 48 + 1) ** 3

    def mean(values):
        return sum(values) / len(values)

    expected = (mean([k(x[a], x[b]) for a in range(3) for b in range(3) if a != b])
                + mean([k(u, v) for i, u in y for j, v in y if i != j])
                - 2 * mean([k(x[a], v) for a in range(3) for j, v in y if a != j]))
    assert _set_metrics_of_rows(rows, tmp_path / "k.h5")[1] == pytest.approx(expected,
                                                                              rel=1e-9)
    from semlink.results import ResultsStore

    (kid,) = ResultsStore.open(tmp_path / "k.h5").rows("kid")
    assert kid["kid_ci_low"] < kid["kid"] < kid["kid_ci_high"]  # the jackknife over 3 images


def test_kid_needs_the_originals_even_with_fid_reference_statistics():
    """The reference tasks (the originals' features) run for KID whatever FID compares with,
    and for FID only without fid_reference."""
    def planned(extra: str) -> bool:
        scenario = parse_scenario(FID.replace("metrics: [fid, kid]\n", extra))
        return any(t.link == REFERENCE for t in plan_tasks(scenario, 8))

    assert planned("metrics: [fid, kid]\nfid_reference: stats.npz\n")
    assert planned("metrics: [kid]\n") and planned("metrics: [fid]\n")
    assert not planned("metrics: [fid]\nfid_reference: stats.npz\n")
    assert not planned("metrics: [psnr]\n")


TASKS = """\
name: tasks
seed: 3
device: cpu
images: {{source: sample, size: 64, count: 2}}
snr: {{points_db: [-10, 40]}}
batch_size: 2
repeats: 2
metrics: [psnr, ssim]
links:
  jp: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{channel_uses: 1152}},
       failure_policy: {policy}}}
  dig: {{type: semantic, preset: small, transmission: {{mode: digital, bits_per_value: 6,
        modulation: 16, code_rate: 1/2}}}}
"""


def _run_all(policy: str) -> dict:
    scenario = parse_scenario(TASKS.format(policy=policy))
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    return {(t.link, t.snr_db): runner.run(t) for t in plan_tasks(scenario, runner.num_images)}


def test_image_rows_and_error_counts_of_coded_links():
    """Per transmission one row (images x repeats), each with its repeat and the link's channel
    uses; the ``ber`` row counts every transmission. By hand (docs/classical-link.md): 1152
    uses of 16-QAM 1/2 are 3 blocks, a 279-byte frame = 2232 payload bits. The digital semantic
    link at 64 px sends Z [16, 2, 2] x 6 bits = 384 payload bits. At -10 dB every block fails
    (and under ``paper`` a lost image scores PSNR 0, SSIM 0), at 40 dB none."""
    results = _run_all("paper")
    for snr, lost in ((-10.0, True), (40.0, False)):
        point, tables = results["jp", snr]
        rows = tables["images"]
        assert sorted((r["image_index"], r["repeat"]) for r in rows) == [(0, 0), (0, 1),
                                                                          (1, 0), (1, 1)]
        assert all(r["channel_uses"] == 1152 and r["failed"] is lost for r in rows)
        if lost:
            assert all(r["metric_psnr"] == 0.0 and r["metric_ssim"] == 0.0 for r in rows)
        else:
            assert all(r["metric_psnr"] > 20.0 for r in rows)
        (ber,) = tables["ber"]
        assert (ber["bits"], ber["blocks"]) == (4 * 2232, 4 * 3)
        assert ber["block_errors"] == (12 if lost else 0)
        assert point["images"] == 4
        _, tables = results["dig", snr]
        (ber,) = tables["ber"]
        assert ber["bits"] == 4 * 384 and ber["modulation"] == 16
        assert ber["blocks"] % 4 == 0 and ber["block_errors"] == (ber["blocks"] if lost else 0)
        assert sum(r["block_errors"] for r in tables["images"]) == ber["block_errors"]
        assert all(r["failed"] is False for r in tables["images"])  # a fallback, not a loss


def test_lost_images_are_scored_as_shown_unless_the_policy_is_paper():
    """``mean-image``: a lost image is shown as mid grey and scored, so its PSNR is that of
    grey against the photo (finite, > 0), not the paper's 0 (docs/scenarios.md)."""
    _, tables = _run_all("mean-image")["jp", -10.0]
    rows = tables["images"]
    assert all(r["failed"] for r in rows)
    assert all(0.0 < r["metric_psnr"] < 20.0 for r in rows)


def test_reconstructions_are_saved_for_the_first_transmission_only(tmp_path, monkeypatch):
    """``save_reconstructions`` writes the first transmission of every image (docs/scenarios.md):
    one PNG per image and point, holding repeat 0's reconstruction (its PSNR is row repeat 0's,
    not repeat 1's: the small preset's sampler noise differs per repeat)."""
    import semlink.images
    from semlink.metrics.quality import psnr_db

    saved = {}

    def save_image(image, path):
        assert path not in saved or path.parent.name == "original", path
        saved[path] = image.clone()

    monkeypatch.setattr(semlink.images, "save_image", save_image)
    scenario = parse_scenario(SEEDS.format(batch=2) + "save_reconstructions: true\n")
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu", recon_dir=tmp_path)
    task = next(t for t in plan_tasks(scenario, runner.num_images) if t.snr_db == 5.0)
    _, tables = runner.run(task)
    names = [runner._files[i].stem for i in task.image_indices]
    recon = [saved[tmp_path / "sem" / "snr5" / f"{n}.png"] for n in names]
    assert len([p for p in saved if p.parent.name == "snr5"]) == len(names)
    originals = runner.images(task.image_indices)
    for j, index in enumerate(task.image_indices):
        psnr = {r["repeat"]: r["metric_psnr"] for r in tables["images"]
                if r["image_index"] == index}
        assert psnr[0] != psnr[1]
        value = float(psnr_db(originals[j:j + 1], recon[j][None]))
        assert value == pytest.approx(psnr[0], abs=1e-3)


IDEAL = """\
name: ideal
seed: {seed}
device: cpu
images: {{source: sample, size: 64, count: 1}}
channel: {{type: rayleigh, coherence_symbols: 512}}
snr: {{points_db: [10, 20]}}
metrics: [psnr]
links:
  fixed: {{type: classical, channel_code: capacity, bandwidth: {{channel_uses: 512}}}}
  outage: {{type: classical, channel_code: capacity, adaptive: true, bler_target: 0.3,
            failure_policy: mean-image, jpeg2000_header: explicit,
            bandwidth: {{channel_uses: 512}}}}
"""


def test_ideal_code_links_take_their_frame_and_settings_from_the_scenario():
    """Without adaptive the frame is the AWGN capacity of each SNR point, floor(512 log2(1 +
    SNR) / 8) bytes, whatever the channel; with it, the epsilon-outage rate over the scenario's
    block Rayleigh fading at epsilon = bler_target = 0.3: N log2(1 + SNR q) / 8 bytes with q =
    -ln(0.7) the quantile of |h|^2 ~ Exp(1), within 4 sigma of its 10000-draw estimate (0.1 or
    AWGN would give about 225 or 426 bytes at 20 dB). The link keeps its failure policy and
    JPEG2000 headers, and its estimate is drawn from the scenario's seed."""
    from semlink.links.capacity import CapacityLink

    runner = TaskRunner(parse_scenario(IDEAL.format(seed=5)), base_dir=Path.cwd(), device="cpu")
    for snr_db, capacity in ((10.0, math.floor(512 * math.log2(11) / 8)),
                             (20.0, math.floor(512 * math.log2(101) / 8))):
        fixed = runner.link("fixed", snr_db)
        assert isinstance(fixed, CapacityLink) and fixed.payload_bytes == capacity
        assert fixed.outage_rate is None
    link = runner.link("outage", 20.0)
    quantile = -math.log(0.7)
    spread = 4 * math.sqrt(0.3 / (0.7 * 10000)) / quantile
    low, high = (math.floor(512 * math.log2(1 + 100 * quantile * f) / 8) for f in (1 - spread,
                                                                                 1 + spread))
    assert 320 < low <= link.payload_bytes <= high < 345
    assert link.outage_rate.payload_bytes == link.payload_bytes
    assert 0.25 < link.outage_rate.outage <= 0.3 and link.outage_rate.frames == 10000
    assert (link.failure_policy, link.jpeg2000_header) == ("mean-image", "explicit")
    reseeded = TaskRunner(parse_scenario(IDEAL.format(seed=6)), base_dir=Path.cwd(),
                          device="cpu").link("outage", 20.0)
    assert reseeded.outage_rate != link.outage_rate


def test_ideal_code_points_record_the_frame_and_the_estimated_outage_probability():
    """The point of an ideal-code link records its frame in bits and, with adaptive, the
    outage probability estimated for it (a fraction <= bler_target, not a count) and the draws
    it took; every image row of the point was sent in that frame."""
    scenario = parse_scenario(IDEAL.format(seed=5))
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    task = next(t for t in plan_tasks(scenario, runner.num_images)
                if t.link == "outage" and t.snr_db == 20.0)
    point, tables = runner.run(task)
    rate = runner.link("outage", 20.0).outage_rate
    assert point["frame_bits"] == 8 * rate.payload_bytes
    assert point["outage_estimate"] == rate.outages / 10000 <= 0.3
    assert point["outage_estimate_frames"] == 10000
    assert [r["frame_bits"] for r in tables["images"]] == [8 * rate.payload_bytes]


def test_info_names_the_links_channel_and_images_of_the_scenario(tmp_path):
    """`semlink info` says what a file compares, read from its stored scenario text without
    validating it (files of other versions too); unreadable text adds no line."""
    from semlink.results import ResultsStore
    from semlink.sweep import describe_results

    text = ("name: x\nimages: {source: photos, width: 768, height: 512}\n"
            "channel: {type: rician, k_factor_db: 3, amplifier: {input_backoff_db: 3}}\n"
            "links: {sem: {type: semantic}, jp: {type: classical}}\n")
    store = ResultsStore(tmp_path / "a.h5", {"scenario_text": text, "scenario_name": "x"})
    lines = describe_results(store).splitlines()
    assert lines[1] == ("  links sem (semantic), jp (classical); channel rician (K 3 dB) "
                        "behind an amplifier; images photos at 768x512 px")
    ofdm = ResultsStore(tmp_path / "d.h5", {"scenario_text": (
        "channel: {type: ofdm, model: tdl-c, domain: time, interleave: true, "
        "phase_noise_linewidth_hz: 100, estimate_frequency_offset: true, phase_tracking: "
        "{subcarrier_stride: 12, estimate_interference: true}}\nlinks: {b: {type: ber}}")})
    assert describe_results(ofdm).splitlines()[1] == (
        "  links b (ber); channel ofdm (tdl-c, time domain, interleaved, phase noise 100 Hz, "
        "offset estimated on the prefixes, PT-RS every 12 subcarriers, interference "
        "estimated)")
    fading = ResultsStore(tmp_path / "e.h5", {"scenario_text": (
        "channel: {type: rayleigh, num_tx_antennas: 2, num_rx_antennas: 1, "
        "normalized_doppler: 0.01}\nlinks: {b: {type: ber}}")})
    assert describe_results(fading).splitlines()[1] == (
        "  links b (ber); channel rayleigh (2 tx, Doppler 0.01)")
    tracked = ResultsStore(tmp_path / "f.h5", {"scenario_text": (
        "channel: {type: awgn, frequency_offset: 0.01, phase_tracking: {pilot_spacing: 16}}\n"
        "links: {b: {type: ber}}")})
    assert describe_results(tracked).splitlines()[1] == (
        "  links b (ber); channel awgn (frequency offset 0.01, phase tracked on pilots every 16 "
        "symbols)")
    blocks = ResultsStore(tmp_path / "i.h5", {"scenario_text": (
        "channel: {type: awgn, phase_tracking: {pilot_spacing: 16, pilot_length: 2, "
        "estimate_frequency_offset: true, estimate_phase_noise: true}}\n"
        "links: {b: {type: ber}}")})
    assert describe_results(blocks).splitlines()[1] == (
        "  links b (ber); channel awgn (phase tracked on blocks of 2 pilots every 16 symbols, "
        "frequency offset estimated, phase noise estimated)")
    odd = ResultsStore(tmp_path / "g.h5", {"scenario_text": (
        "channel: {type: awgn, phase_tracking: 16}\nlinks: {b: {type: ber}}")})
    assert describe_results(odd).splitlines()[1] == (
        "  links b (ber); channel awgn (phase tracking)")
    odd = ResultsStore(tmp_path / "h.h5", {"scenario_text": (
        "channel: {type: rician, k_factor_db: high}\nlinks: {b: {type: ber}}")})
    assert describe_results(odd).splitlines()[1] == (
        "  links b (ber); channel rician (k factor db)")
    bare = ResultsStore(tmp_path / "b.h5", {"scenario_text": "links: {b: {type: ber}}"})
    assert describe_results(bare).splitlines()[1] == "  links b (ber); channel awgn"
    broken = ResultsStore(tmp_path / "c.h5", {"scenario_text": "links: {b: [\n"})
    assert describe_results(broken).splitlines()[1].startswith("  0 points")


def test_digital_semantic_harq_rows_record_sends_and_channel_uses(tmp_path):
    """A digital semantic link with harq records per image its sends and the channel uses they
    took (sends x its channel uses per send); the summary gives its mean channel uses."""
    from semlink.results import ResultsStore
    from semlink.summary import summarize

    scenario = parse_scenario("""\
name: dig-harq
seed: 3
device: cpu
images: {source: sample, size: 64, count: 2}
snr: {points_db: [3]}
batch_size: 2
links:
  dig: {type: semantic, preset: small, transmission: {mode: digital, bits_per_value: 6,
        modulation: 16, code_rate: 1/2, harq: {max_transmissions: 3}}}
""")
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    per_send = runner.link("dig").channel_uses
    store = ResultsStore(tmp_path / "r.h5", {})
    for i, task in enumerate(plan_tasks(scenario, runner.num_images)):
        _, tables = runner.run(task)
        store.add(f"t{i}", {"link": "dig"}, {"images": tables["images"]})
    rows = store.rows("images")
    assert {r["transmissions"] for r in rows} - {1, 2, 3} == set()
    assert any(r["transmissions"] > 1 for r in rows)  # 3 dB: some blocks need a resend
    assert all(r["channel_uses"] == r["transmissions"] * per_send for r in rows)
    (uses,) = [r for r in summarize(store) if r["metric"] == "channel_uses"]
    assert uses["value"] == pytest.approx(sum(r["channel_uses"] for r in rows) / len(rows))


def test_classical_cbg_rows_record_the_channel_uses_of_the_resent_blocks(tmp_path):
    """A classical link with code block groups records per image the channel uses its sends
    took: the first send's 1152 plus 384 per resent block (3 blocks of 1536 bits at 16-QAM,
    one per group), the same numbers the link itself reports for the task's channel draws."""
    from semlink.channel import build_channel
    from semlink.results import ResultsStore
    from semlink.seeding import make_generator

    scenario = parse_scenario("""\
name: cbg
seed: 5
device: cpu
images: {source: sample, size: 128, count: 4}
channel: {type: rayleigh}
snr: {points_db: [8]}
batch_size: 4
links:
  j: {type: classical, bandwidth: {channel_uses: 1152},
      harq: {max_transmissions: 4, code_block_groups: 4}}
""")
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    (task,) = plan_tasks(scenario, runner.num_images)
    store = ResultsStore(tmp_path / "r.h5", {})
    store.add("t0", {"link": "j"}, {"images": runner.run(task)[1]["images"]})
    rows = store.rows("images")
    gen = make_generator(runner._seed(task, task.batch_index, 0, "channel"))
    out = runner.link("j").send(runner.images(task.image_indices),
                                build_channel(scenario.channel, generator=gen, device="cpu"),
                                8.0)
    assert [r["channel_uses"] for r in rows] == out.channel_uses.tolist()
    assert [r["transmissions"] for r in rows] == out.transmissions.tolist()
    assert all((r["channel_uses"] - 1152) % 384 == 0 for r in rows)
    assert any(1152 < r["channel_uses"] < 1152 * r["transmissions"] for r in rows)
