"""Memory estimate of a task (semlink.memory): against the peak measured in a fresh process,
and the refusal of issue #22's 15.6 GB OFDM configuration."""
import json
import os
import subprocess
import sys
import time

import pytest

from semlink.cli import main
from semlink.memory import (MEMORY_LIMIT_ENV, TR38901_PROFILES, channel_bytes, format_size,
                            parse_size)
from semlink.scenario import ChannelConfig

# Measures one channel call's peak RSS over the RSS before it (VmHWM reset through
# /proc/self/clear_refs), each configuration after the previous one's memory is released.
# glibc returns every allocation of 64 KiB and more to the system on free (the environment
# below), so the RSS follows torch's live tensors rather than glibc's cached heap.
_MEASURE = r"""
import json, re, sys
import torch
torch.set_num_threads(1)
from pydantic import TypeAdapter
from semlink.scenario import ChannelConfig

def status(key):
    return int(re.search(rf"{key}:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

for spec in json.loads(sys.argv[1]):
    cfg = TypeAdapter(ChannelConfig).validate_python(spec["channel"])
    gen = torch.Generator().manual_seed(0)
    channel = cfg.build(generator=gen, device="cpu")
    with torch.no_grad():
        channel(torch.ones(1, 8, dtype=torch.complex64), 10.0)  # lazy set-up, not the batch
        x = torch.randn(spec["rows"], spec["n"], generator=gen, dtype=torch.complex64)
        open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
        before = status("VmRSS")
        out = channel(x, 10.0)
        del out, x
    print(json.dumps({"peak": status("VmHWM") - before}), flush=True)
"""

# Three channels, each at about 100-150 MB: far above the allocator's noise.
_CASES = [
    {"channel": {"type": "awgn"}, "rows": 4, "n": 1_000_000},
    {"channel": {"type": "rayleigh", "coherence_symbols": 16}, "rows": 4, "n": 500_000},
    {"channel": {"type": "ofdm", "model": "tdl-a", "domain": "time", "speed_mps": 100.0,
                 "fft_size": 256, "num_ofdm_symbols": 14}, "rows": 4, "n": 1000},
]


def _clear_refs_works() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _clear_refs_works(),
                    reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
def test_estimate_within_a_factor_two_of_the_measured_peak():
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(_CASES)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    peaks = [json.loads(line)["peak"] for line in done.stdout.splitlines()]
    assert len(peaks) == len(_CASES)
    from pydantic import TypeAdapter

    for case, peak in zip(_CASES, peaks):
        config = TypeAdapter(ChannelConfig).validate_python(case["channel"])
        estimate, _ = channel_bytes(config, case["rows"], case["n"])
        assert 0.5 <= estimate / peak <= 2, (case, format_size(estimate), format_size(peak))


def test_tr38901_profiles_are_sionnas():
    from semlink.channels._tr38901 import GeneratorCDL, GeneratorTDL

    for name, (paths, delay) in TR38901_PROFILES.items():
        family, letter = name.split("-")
        cls = GeneratorTDL if family == "tdl" else GeneratorCDL
        model = cls(model=letter.upper(), delay_spread=1.0, carrier_frequency=3.5e9, speed=0.0,
                    generator=None)
        delays = getattr(model, "delays", None)
        delays = model._delays if delays is None else delays
        assert model._num_clusters == paths, name
        assert float(delays.max()) == pytest.approx(delay, rel=1e-4), name


_BIG = """\
name: issue-22
images: {source: sample, size: 64, count: 1}
channel: {type: ofdm, model: tdl-a, fft_size: 4096, num_ofdm_symbols: 140, domain: time,
          speed_mps: 500}
snr: {points_db: [10]}
batch_size: 1
links:
  jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {channel_uses: 3000}}
output: results.h5
"""


def test_the_issue_22_configuration_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """The 15.6 GB configuration of issue #22 (one 64 px image): refused by validate and by
    run, exit 2, one line with the estimate and the fix, before the results file exists."""
    file = tmp_path / "big.yaml"
    file.write_text(_BIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "8GiB")
    started = time.perf_counter()
    for argv in (["validate", str(file)], ["run", str(file), "-q"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith("semlink: error: channel: this configuration needs about 13.")
        assert "the limit is 8.0 GiB" in err[0] and "lower batch_size, fft_size" in err[0]
    assert not (tmp_path / "results.h5").exists()
    assert time.perf_counter() - started < 30  # nothing of the 14 GB was allocated


def test_memory_limit_option_overrides_the_environment(tmp_path, monkeypatch, capsys):
    file = tmp_path / "big.yaml"
    file.write_text(_BIG)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GB")
    assert main(["validate", str(file), "--memory-limit", "off"]) == 0
    assert "peak memory ~13.7 GiB per task" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["validate", str(file), "--memory-limit", "lots"])
    assert refused.value.code == 2
    assert "a memory limit must be a size" in capsys.readouterr().err


def test_fits_where_the_limit_allows(tmp_path, monkeypatch, capsys):
    file = tmp_path / "small.yaml"
    file.write_text(_BIG.replace("fft_size: 4096, num_ofdm_symbols: 140", "fft_size: 72"))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "8GiB")
    assert main(["validate", str(file)]) == 0
    assert "peak memory ~" in capsys.readouterr().out


@pytest.mark.parametrize("text, size", [("8GiB", 8 * 2 ** 30), ("500MB", 500_000_000),
                                        ("1.5g", 1_500_000_000), ("123456", 123456),
                                        ("off", None)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1G", "0", "8 parsecs"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="memory limit must be a size"):
        parse_size(text)
