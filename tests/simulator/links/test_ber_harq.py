"""HARQ on BER links: per code block, the counts of sends and channel uses, fewer residual
errors than one send, and the throughput the summary makes of them."""
from __future__ import annotations

import pytest

from simulator.links.ber import simulate_ber_point
from simulator.results import ResultsStore
from simulator.scenario import AWGNConfig, BERLinkConfig, HarqConfig, MonteCarloConfig
from simulator.summary import summarize

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
           **{k: getattr(counts, k) for k in ("bits", "bit_errors", "blocks", "block_errors",
                                              "esno_db", "ebno_db", "transmissions",
                                              "channel_uses")}}
    store.add("b", {"link": "b"}, {"ber": [row]})
    (throughput,) = [r for r in summarize(store) if r["metric"] == "throughput"]
    assert counts.bits == 488 * counts.blocks
    expected = (counts.blocks - counts.block_errors) * 488 / counts.channel_uses
    assert throughput["value"] == pytest.approx(expected, rel=1e-12)
    assert 488 / (2 * 512) < throughput["value"] < 488 / 512  # between 2 sends and 1 each
