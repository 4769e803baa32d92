"""`semlink bench` beyond the mean: the warm-up (and a CUDA graph's capture) timed apart from the
steady state, the graph option where no graph can be captured, the profiler trace, and the
classical bit chain's throughput."""
import json

import pytest

from semlink.bench import bench_receiver

pytestmark = pytest.mark.usefixtures("one_thread")


def test_warmup_is_timed_apart_and_graphs_are_reported_as_not_captured_on_cpu():
    row = bench_receiver("small", 64, 1, device="cpu", steps=1, repeats=1, cuda_graphs=True)
    assert row["warmup_seconds"] > 0 and row["seconds_per_image"] > 0
    # Requested, but a CPU captures nothing: the row says the timing is eager, not graphed.
    assert row["cuda_graphs"] is False and "graph_fallback" not in row


def test_profile_writes_a_chrome_trace_of_one_call(tmp_path):
    row = bench_receiver("small", 64, 2, device="cpu", steps=2, repeats=1,
                         profile_dir=str(tmp_path / "traces"))
    path = tmp_path / "traces" / "receiver-small-64px-b2.json"
    assert row["profile"] == str(path)
    events = json.loads(path.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    # One traced call: two UNet steps and stage A's decoder, convolutions among them.
    assert "aten::conv2d" in names
    convs = sum(e.get("name") == "aten::conv2d" for e in events)
    one_step = bench_receiver("small", 64, 2, device="cpu", steps=1, repeats=1,
                              profile_dir=str(tmp_path / "one"))
    fewer = sum(e.get("name") == "aten::conv2d" for e in json.loads(
        (tmp_path / "one" / "receiver-small-64px-b2.json").read_text())["traceEvents"])
    assert convs > fewer > 0 and one_step["profile"]


def test_ldpc_chain_throughput_counts_information_bits_and_decodes_at_a_working_point():
    from semlink.bench import bench_ldpc_chain
    from semlink.modulation.ldpc import information_bits_per_block

    good = bench_ldpc_chain(8, device="cpu", snr_db=12.0, repeats=1)
    k = information_bits_per_block(0.5, 1536)
    assert (good["n"], good["k"], good["payload_bits"]) == (1536, k, k - 24)
    assert good["information_bits_per_second"] == pytest.approx(8 * k / good["seconds_per_call"])
    assert good["block_error_rate"] == 0.0 and 0 < good["decoder_share"] <= 1
    # Far below the rate-1/2 16-QAM threshold (about 6 dB Es/N0) every block fails: the chain
    # really decodes what crossed the channel.
    assert bench_ldpc_chain(8, device="cpu", snr_db=0.0, repeats=1)["block_error_rate"] == 1.0
