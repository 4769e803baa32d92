"""`semlink bench` beyond the mean: the warm-up (and a CUDA graph's capture) timed apart from the
steady state, the graph option where no graph can be captured, the profiler trace, and the
classical bit chain's throughput; their command-line options."""
import json

import pytest
import torch

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


def test_cli_cuda_graphs_on_cpu_is_timed_eagerly_with_a_note_and_profile_writes_a_trace(
        tmp_path, capsys):
    """``--cuda-graphs`` on the CPU is not refused: the rows say ``cuda_graphs: false`` (timed
    eagerly) and the note says why; ``--profile DIR`` puts one trace per measurement there,
    its path in the row."""
    from semlink.cli import main

    out, traces = tmp_path / "bench.json", tmp_path / "traces"
    assert main(["bench", "--size", "64", "--batch", "1", "--steps", "1", "--repeats", "1",
                 "--device", "cpu", "--no-sd15", "--cuda-graphs", "--profile", str(traces),
                 "--json", str(out), "-q"]) == 0
    saved = json.loads(out.read_text())
    assert saved["cuda_graphs"] is True  # what was asked for
    assert "cuda_graphs ignored: CUDA graphs need a CUDA device" in saved["note"]
    (row,) = saved["receiver"]
    assert row["cuda_graphs"] is False and row["seconds_per_image"] > 0
    assert row["profile"] == str(traces / "receiver-small-64px-b1.json")
    assert "traceEvents" in json.loads((traces / "receiver-small-64px-b1.json").read_text())
    assert saved["ldpc_chain"] == [] and capsys.readouterr().err == ""


def test_cli_channels_last_builds_the_receiver_so_and_says_so(tmp_path, monkeypatch):
    """``--channels-last``: the timed receiver has its convolution weights in channels-last,
    and the JSON says so at the top and in each row."""
    from semlink import bench
    from semlink.cli import main

    built = []
    from_preset = bench.SemanticReceiver.from_preset

    def spy(*args, **kwargs):
        built.append(from_preset(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(bench.SemanticReceiver, "from_preset", spy)
    out = tmp_path / "bench.json"
    assert main(["bench", "--size", "64", "--batch", "1", "--steps", "1", "--repeats", "1",
                 "--device", "cpu", "--no-sd15", "--channels-last", "--json", str(out),
                 "-q"]) == 0
    saved = json.loads(out.read_text())
    assert saved["channels_last"] is True and saved["receiver"][0]["channels_last"] is True
    (receiver,) = built
    weights = [m.weight for m in receiver.modules() if isinstance(m, torch.nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def test_cli_ldpc_alone_times_only_the_bit_chain(tmp_path, capsys):
    """``--ldpc BLOCKS...`` without ``--size``/``--batch``: one ``ldpc_chain`` row per batch of
    code blocks, in the order given, information Mbit/s = blocks x k / seconds per call / 1e6,
    and no receiver, SD 1.5 or Img2Img-SC timing; stderr shows each row as it lands."""
    from semlink.cli import main

    out = tmp_path / "ldpc.json"
    assert main(["bench", "--device", "cpu", "--ldpc", "2", "3", "--repeats", "1",
                 "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved == json.loads(capsys.readouterr().out)
    assert saved["receiver"] == saved["sd15_img2img"] == saved["img2img_sc"] == []
    assert saved["note"] == ""  # no preset substituted: none was timed
    rows = saved["ldpc_chain"]
    assert [r["batch_blocks"] for r in rows] == [2, 3]
    for row in rows:
        assert row["n"] == 1536 and row["block_error_rate"] == 0.0
        assert row["information_mbit_per_second"] == pytest.approx(
            row["batch_blocks"] * row["k"] / row["seconds_per_call"] / 1e6)


def test_cli_ldpc_with_sizes_times_both_and_reports_each(tmp_path, capsys):
    from semlink.cli import main

    assert main(["bench", "--device", "cpu", "--size", "64", "--batch", "1", "--steps", "1",
                 "--repeats", "1", "--no-sd15", "--ldpc", "2"]) == 0
    captured = capsys.readouterr()
    saved = json.loads(captured.out)
    assert len(saved["receiver"]) == 1 and len(saved["ldpc_chain"]) == 1
    err = captured.err.splitlines()
    assert err[0].startswith("semlink bench: small 64 px, batch 1: ")
    assert err[1].startswith("semlink bench: ldpc chain, 2 blocks: ")
    assert err[1].endswith(" Mbit/s") and len(err) == 2


def test_ldpc_out_of_memory_is_recorded_and_ends_the_chain_sweep(monkeypatch):
    import torch

    from semlink import bench

    calls = []

    def fake(blocks, **kwargs):
        calls.append(blocks)
        if blocks >= 8192:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return {"batch_blocks": blocks}

    monkeypatch.setattr(bench, "bench_ldpc_chain", fake)
    seen = []
    result = bench.run_bench(preset="small", sizes=[], batch_sizes=[1], device="cpu",
                             ldpc_blocks=[1024, 8192, 65536],
                             on_result=lambda r: seen.append(len(r["ldpc_chain"])))
    assert calls == [1024, 8192] and seen == [1, 2]
    assert result["ldpc_chain"] == [{"batch_blocks": 1024},
                                    {"batch_blocks": 8192, "error": "out of memory"}]
    assert result["receiver"] == []



@pytest.mark.parametrize("snr_db, bler", [(20.0, 0.0), (0.0, 1.0)])
def test_a_compiled_ldpc_decoder_decodes_as_the_eager_one(snr_db, bler):
    """--compile with --ldpc: the BP decoder through torch.compile (two iterations, to keep
    the compilation short) decodes every block at a working point and none far below it, as
    the eager decoder does; its compilation is in the warm-up, apart from the timing."""
    from semlink.bench import bench_ldpc_chain

    compiled = bench_ldpc_chain(8, device="cpu", snr_db=snr_db, repeats=1, num_iter=2,
                                compiled=True)
    eager = bench_ldpc_chain(8, device="cpu", snr_db=snr_db, repeats=1, num_iter=2)
    assert compiled["compiled"] and not eager["compiled"]
    assert compiled["block_error_rate"] == eager["block_error_rate"] == bler
    assert compiled["warmup_seconds"] > compiled["seconds_per_call"]
