"""Task planning: a scenario as a list of pure tasks, and shards of that list.

A task is one (link, SNR point) for BER links, or one (link, SNR point, batch of images) for image
links, with every transmission of those images (``repeats``) inside it. A task's result depends
only on the scenario and its coordinates, so the plan can be run in any order, resumed, dealt out
to shards run on other machines (:class:`Shard`) or to the workers of a Ray cluster, and gives the
same numbers. This module sits below both the sweep runner (:mod:`semlink.sweep`) and the
executors that run tasks (:mod:`semlink.executors`), and imports neither torch nor the models.

>>> from semlink.scenario import parse_scenario
>>> scenario = parse_scenario('''
... snr: {points_db: [0, 5]}
... links: {qpsk: {type: ber, modulation: 4}}
... ''')
>>> [task.point_id for task in plan_tasks(scenario, num_images=0)]
['qpsk/snr0/batch0', 'qpsk/snr1/batch0']
>>> Shard.parse("2/2").select(plan_tasks(scenario, num_images=0))
[Task(link='qpsk', snr_index=1, snr_db=5.0, batch_index=0, image_indices=())]
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TypeVar

from semlink.errors import InputError
from semlink.scenario import Scenario

_T = TypeVar("_T")
_SHARD_TAG = re.compile(r"\.shard[0-9]+of[0-9]+$")  # ends the stem of a shard's results file

__all__ = ["REFERENCE", "Task", "Shard", "plan_tasks"]

#: Pseudo-link name of the tasks that compute Inception features of the original images.
REFERENCE = "(reference)"


@dataclasses.dataclass(frozen=True)
class Task:
    """Coordinates of one unit of work; ``point_id`` names it in the results file."""

    link: str
    snr_index: int
    snr_db: float
    batch_index: int = 0
    image_indices: tuple[int, ...] = ()

    @property
    def point_id(self) -> str:
        return f"{self.link}/snr{self.snr_index}/batch{self.batch_index}"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based) of a scenario's tasks: every ``count``-th task of
    the plan, from task ``index``. The shards of one scenario are disjoint and together hold every
    task; dealing tasks out in turn mixes links, SNR points and batches in each shard, so shards
    take about equally long.

    :raises InputError: If not ``1 <= index <= count``.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise InputError(f"shard: must be K/N with 1 <= K <= N; got {self}")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"K/N"`` -> ``Shard(K, N)``.

        :raises InputError: If ``text`` is not two whole numbers ``K/N`` with ``1 <= K <= N``.
        """
        index, _, count = text.partition("/")
        if not (index.strip().isdigit() and count.strip().isdigit()):
            raise InputError(f"shard: must be K/N (shard K of N, e.g. 2/8); got {text!r}")
        return cls(int(index), int(count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, tasks: list[_T]) -> list[_T]:
        """This shard's tasks (or their point ids), in plan order."""
        return tasks[self.index - 1::self.count]

    def output(self, path: Path) -> Path:
        """The shard's results file beside the whole run's ``NAME.h5``: ``NAME.shardKofN.h5``;
        ``path`` itself when it already names a shard's file (resuming it checks that it holds
        this shard: :func:`semlink.sweep.open_store`).

        >>> Shard(2, 8).output(Path("results/s.h5")).as_posix()
        'results/s.shard2of8.h5'
        >>> Shard(2, 8).output(Path("results/s.shard2of8.h5")).as_posix()
        'results/s.shard2of8.h5'
        """
        if _SHARD_TAG.search(path.stem):
            return path
        return path.with_name(f"{path.stem}.shard{self.index}of{self.count}{path.suffix}")


def plan_tasks(scenario: Scenario, num_images: int) -> list[Task]:
    """All tasks of ``scenario`` in run order (link by link, SNR by SNR, batch by batch); with
    KID, or FID against the transmitted originals (no ``fid_reference``), the originals'
    features come first."""
    tasks = []
    batch = scenario.batch_size
    if _needs_reference_features(scenario) and num_images:
        for b, start in enumerate(range(0, num_images, batch)):
            tasks.append(Task(REFERENCE, -1, float("nan"), b,
                              tuple(range(start, min(start + batch, num_images)))))
    for name, link in scenario.links.items():
        for s, snr_db in enumerate(scenario.snr.values_db()):
            if link.kind == "bits":
                tasks.append(Task(name, s, snr_db))
                continue
            for b, start in enumerate(range(0, num_images, batch)):
                indices = tuple(range(start, min(start + batch, num_images)))
                tasks.append(Task(name, s, snr_db, b, indices))
    return tasks


def _needs_reference_features(scenario: Scenario) -> bool:
    """Whether the originals' Inception features are computed: KID always compares with them,
    FID unless it has ``fid_reference`` statistics."""
    return "kid" in scenario.metrics or ("fid" in scenario.metrics
                                         and scenario.fid_reference is None)
