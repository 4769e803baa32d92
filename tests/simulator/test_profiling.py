"""semlink.profiling: the summary of a profiler trace against counts and times worked out by
hand for a made-up CUDA trace (kernel and runtime names as PyTorch's Kineto writes them), and
on a real CPU trace of the receiver."""
import gzip
import json

import pytest

from semlink.bench import bench_receiver
from semlink.profiling import summarize_trace, summarize_trace_events

# One step of a loop on a CUDA device, in microseconds: two launches, two kernels that overlap
# for 5 us, a device-to-host copy (a .item()) and the synchronisation it waits in, then the
# measurement's final device synchronise; metadata and flow events to be skipped.
EVENTS = [
    {"ph": "M", "name": "process_name", "ts": 0},
    {"ph": "X", "cat": "cpu_op", "name": "aten::conv2d", "ts": 100, "dur": 30},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 105, "dur": 4},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 112, "dur": 4},
    {"ph": "f", "cat": "ac2g", "name": "ac2g", "ts": 112},
    {"ph": "X", "cat": "kernel", "name": "implicit_convolve_sgemm", "ts": 110, "dur": 20},
    {"ph": "X", "cat": "kernel", "name": "elementwise_kernel", "ts": 125, "dur": 15},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "ts": 131, "dur": 20},
    {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "ts": 145,
     "dur": 5},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "ts": 151, "dur": 2},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaDeviceSynchronize", "ts": 190, "dur": 10},
]


def test_counts_and_times_of_a_cuda_trace():
    summary = summarize_trace_events(EVENTS)
    # wall: 100 .. 200 us; kernels 20 + 15 us; busy: kernels 110..140 (overlap once) and the
    # copy 145..150 = 35 us
    assert summary == {"wall_ms": 0.1, "kernels": 2, "launches": 2, "host_syncs": 2,
                       "device_to_host_copies": 1, "kernel_ms": 0.035, "gpu_busy_ms": 0.035,
                       "gpu_busy_fraction": 0.35}


def test_a_graph_replay_is_one_launch_and_a_gzipped_file_reads_as_the_json(tmp_path):
    events = [{"ph": "X", "cat": "cuda_runtime", "name": "cudaGraphLaunch", "ts": 0, "dur": 3},
              *({"ph": "X", "cat": "kernel", "name": "k", "ts": 10 + 10 * i, "dur": 10}
                for i in range(8)),
              {"ph": "X", "cat": "cuda_runtime", "name": "cudaDeviceSynchronize", "ts": 5,
               "dur": 85}]
    path = tmp_path / "t.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": events}, f)
    summary = summarize_trace(path)
    assert (summary["launches"], summary["kernels"], summary["host_syncs"]) == (1, 8, 1)
    assert summary["gpu_busy_fraction"] == pytest.approx(80 / 90, abs=1e-4)
    (tmp_path / "x.json").write_text('{"events": []}')
    with pytest.raises(ValueError, match="not a Chrome trace"):
        summarize_trace(tmp_path / "x.json")


@pytest.mark.usefixtures("one_thread")
def test_the_bench_row_summarises_its_cpu_trace(tmp_path):
    row = bench_receiver("small", 64, 1, device="cpu", steps=1, repeats=1,
                         profile_dir=str(tmp_path))
    summary = row["profile_summary"]
    assert summary == summarize_trace(row["profile"])
    # a CPU trace: the call's operators, no device at all
    assert summary["wall_ms"] > 0 and summary["kernels"] == summary["launches"] == 0
    assert summary["host_syncs"] == 0 and summary["gpu_busy_fraction"] is None
