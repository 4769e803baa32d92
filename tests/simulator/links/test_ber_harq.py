"""HARQ on BER links: per code block, the counts of sends and channel uses, fewer residual
errors than one send, and the throughput the summary makes of them, with its interval."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from semlink.links.ber import simulate_ber_point
from semlink.results import ResultsStore
from semlink.scenario import AWGNConfig, BERLinkConfig, HarqConfig, MonteCarloConfig
from semlink.summary import summarize, throughput_interval

pytestmark = pytest.mark.usefixtures("one_thread")

MC = MonteCarloConfig(target_bit_errors=1, min_bits=40_000, max_bits=40_000, batch_bits=20_000)


def _point(snr_db: float, harq: HarqConfig | None = None, code_rate: float = 0.5):
    link = BERLinkConfig(type="ber", modulation=4, code_rate=code_rate, codeword_length=1024,
                         harq=harq)
    return simulate_ber_point(link, AWGNConfig(type="awgn"), snr_db, snr_kind="esno",
                              monte_carlo=MC, seed=3, device="cpu")


def test_one_send_counts_one_transmission_per_block_and_its_channel_uses():
    """Without HARQ (or with at most one send) every block is sent once over n / log2(M) =
    512 channel uses; the counts are the same either way."""
    plain = _point(1.0)
    once = _point(1.0, HarqConfig(max_transmissions=1))
    assert plain == once
    assert plain.transmissions == plain.blocks and plain.channel_uses == 512 * plain.blocks
    assert plain.block_errors > 0  # 1 dB: QPSK rate 1/2 in its waterfall


@pytest.mark.parametrize("combining", ["chase", "ir"])
def test_retransmissions_clear_the_waterfall_at_the_cost_of_channel_uses(combining):
    """At 1 dB, up to four sends: no residual block error where one send loses a fraction;
    only failed blocks are resent (between 1 and 4 sends per block), each over 512 uses."""
    plain = _point(1.0)
    harq = _point(1.0, HarqConfig(max_transmissions=4, combining=combining))
    assert harq.blocks == plain.blocks and harq.block_errors == 0
    assert plain.blocks + plain.block_errors <= harq.transmissions < 4 * harq.blocks
    assert harq.channel_uses == 512 * harq.transmissions


def test_summary_throughput_is_delivered_payload_per_channel_use(tmp_path):
    """throughput = (blocks - block_errors) x payload bits per block / channel uses, from the
    counts (488 payload bits per block of 1024 coded bits at rate 1/2: 24 CRC bits)."""
    store = ResultsStore(tmp_path / "r.h5", {})
    counts = _point(1.0, HarqConfig(max_transmissions=2))
    row = {"link": "b", "snr_db": 1.0, "modulation": 4, "code_rate": 0.5,
           **dataclasses.asdict(counts)}
    store.add("b", {"link": "b"}, {"ber": [row]})
    (throughput,) = [r for r in summarize(store) if r["metric"] == "throughput"]
    assert counts.bits == 488 * counts.blocks
    expected = (counts.blocks - counts.block_errors) * 488 / counts.channel_uses
    assert throughput["value"] == pytest.approx(expected, rel=1e-12)
    assert 488 / (2 * 512) < throughput["value"] < 488 / 512  # between 2 sends and 1 each
    assert throughput["ci_low"] < throughput["value"] < throughput["ci_high"]
    # the moments: one or two sends per block, and every block but the lost ones delivered
    resent = counts.transmissions - counts.blocks
    assert counts.transmissions_squared == counts.blocks + 3 * resent
    assert counts.delivered_transmissions <= counts.transmissions
    # a file from before the moments were stored: the value, no interval
    old = {k: v for k, v in row.items() if k not in ("transmissions_squared",
                                                      "delivered_transmissions")}
    store = ResultsStore(tmp_path / "old.h5", {})
    store.add("b", {"link": "b"}, {"ber": [old]})
    (throughput,) = [r for r in summarize(store) if r["metric"] == "throughput"]
    assert throughput["value"] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(throughput["ci_low"]) and math.isnan(throughput["ci_high"])


def test_the_throughput_interval_covers_the_true_rate():
    """Blocks that need 1 to 4 sends (geometric, success 0.6 per send, lost after the 4th):
    the delta-method interval of delivered blocks per send covers the true ratio E[d] / E[m]
    in about 95 % of 2000 simulated points of 400 blocks each (binomial spread: 93.6..96.4 %)."""
    rng = np.random.default_rng(0)
    p, tries = 0.6, 4
    fail = 1 - p
    e_d = 1 - fail ** tries
    e_m = sum(fail ** k for k in range(tries))  # P(m > k) summed
    truth = e_d / e_m
    covered = 0
    for _ in range(2000):
        first_ok = rng.geometric(p, size=400)  # the send that succeeds
        sends = np.minimum(first_ok, tries)
        delivered = first_ok <= tries
        low, high = throughput_interval(400, int(delivered.sum()), int(sends.sum()),
                                        int((sends ** 2).sum()), int(sends[delivered].sum()))
        covered += low <= truth <= high
    assert 0.936 <= covered / 2000 <= 0.964
