"""A sweep reads results back to the host once per batch, never once per image: the number of
host syncs of a task does not grow with its batch size."""
from __future__ import annotations

import collections
from pathlib import Path

import pytest

from semlink.scenario import parse_scenario
from semlink.plan import plan_tasks
from semlink.tasks import TaskRunner
from tests.host_sync import record_host_syncs

pytestmark = pytest.mark.usefixtures("one_thread")

SCENARIO = """\
name: syncs
device: cpu
images: {{source: sample, size: 128, count: 4}}
snr: {{points_db: [5]}}
batch_size: {batch}
repeats: 3
metrics: [psnr, ssim]
links:
  semantic: {{type: semantic, preset: small}}
  jpeg2000: {{type: classical, modulation: 16, code_rate: 1/2, bandwidth: {{channel_uses: 2000}}}}
"""


def _syncs_per_task(batch: int) -> dict[str, collections.Counter]:
    scenario = parse_scenario(SCENARIO.format(batch=batch))
    runner = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu")
    counts = {}
    for task in plan_tasks(scenario, runner.num_images):
        if task.link in counts:
            continue
        runner.run(task)  # builds the link and loads its weights (not the hot path)
        with record_host_syncs() as syncs:
            runner.run(task)
        counts[task.link] = collections.Counter(op for op, _ in syncs)
    return counts


def test_host_syncs_per_task_do_not_grow_with_the_batch():
    two, four = _syncs_per_task(2), _syncs_per_task(4)
    assert two == four
    # The semantic task's only reads are the encoder's check of its input range, once per
    # transmission (3 repeats: the link encodes each time, semlink.links.protocol).
    assert sum(two["semantic"].values()) <= 3
    # The classical link counts bit and block errors once per transmission (3 repeats).
    assert sum(two["jpeg2000"].values()) <= 2 * 3
