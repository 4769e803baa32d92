"""Wall-clock seconds per stage of a sweep task: where a run's time goes (``semlink info``).

The task runner (:mod:`semlink.tasks`) splits each task's time into :data:`STAGES`, and the
sweep stores them in the task's ``points`` row as ``seconds_<stage>`` (:data:`STAGE_COLUMNS`,
seconds, wall clock) beside its total ``seconds``:

- ``load``: the images read from disk and resized (every image of the run in a process's first
  task that sends images; later tasks select their batch and copy it to the device).
- ``transmit``: the link's transmitter, from its ``transmit`` call to its first channel call:
  encoder, compression, channel coding, modulation. The repetition's channel block is built
  here, and a link built per SNR point (adaptive modulation and coding, the ideal code) is
  built here in its first task at that point (with its Monte-Carlo estimates). A BER link's
  random payload, encoding and mapping.
- ``channel``: inside the channel's calls: fading, noise, and what the channel block does at
  the receiver (channel estimation, equalisation, OFDM demodulation).
- ``receive``: the rest of the link's ``transmit`` after its first channel call: demapping,
  LDPC decoding, JPEG2000 decoding, stage B sampling and stage A; a retransmission's
  transmitter work (HARQ) counts here too, its channel calls under ``channel``.
- ``metrics``: quality metrics and failure scoring, Inception features (FID, KID),
  predictability, the rows' values read back from the device; a BER link's error counting.
- ``write``: the task's reconstructions saved as PNG (``save_reconstructions``).

What no stage holds (``seconds`` minus their sum) is the runner's dispatch around them:
microseconds to milliseconds. The results file itself is written after a task's time is taken,
as before: neither ``seconds`` nor a stage holds that write.

Timing changes no result: on a CPU it reads a clock; on a CUDA device each stage boundary first
waits for the work the device has queued (:func:`torch.cuda.synchronize`), so that the work is
charged to the stage that queued it, not to whichever stage next reads a value back. That is one
synchronisation per boundary, a few per batch and transmission (a HARQ link's resends add two
each), each microseconds against the tens of milliseconds of stage B sampling; it stalls the
host until the queue drains, but orders and computes nothing differently.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["STAGES", "STAGE_COLUMNS", "StageTimer", "TimedChannel", "stage_totals",
           "format_stage_table"]

#: The stages of a task, in the order a transmission runs through them.
STAGES = ("load", "transmit", "channel", "receive", "metrics", "write")
#: ``points`` columns of the stages' seconds: ``seconds_load``, ``seconds_transmit``, ...
STAGE_COLUMNS = tuple(f"seconds_{stage}" for stage in STAGES)


class StageTimer:
    """Seconds per stage of one task, one stage running at a time.

    Its state: the stage running now (:attr:`current`, None before the first :meth:`switch`
    and after :meth:`stop`), the clock reading it started at, and each stage's seconds summed
    over its runs (:attr:`seconds`). :meth:`switch` ends the running stage (adding the clock's
    advance since it started) and starts the next one at the same reading, so no time between
    stages is lost or counted twice.

    :param device: Torch device the timed work runs on. On a CUDA device every switch first
        calls ``torch.cuda.synchronize(device)`` (module docstring); elsewhere nothing waits.
    :param clock: Seconds, monotonic, as a float; default :func:`time.perf_counter`. Tests
        give a fake one.
    :raises TypeError: If ``clock`` is not callable.

    >>> ticks = iter([0.0, 1.5, 1.75, 4.0])
    >>> timer = StageTimer(clock=lambda: next(ticks))
    >>> timer.switch("transmit"); timer.switch("receive"); timer.switch("transmit"); timer.stop()
    >>> timer.seconds["transmit"], timer.seconds["receive"]
    (3.75, 0.25)
    """

    def __init__(self, *, device: str | torch.device = "cpu",
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not callable(clock):
            raise TypeError(f"`clock` must be callable; got {type(clock).__name__}.")
        device = torch.device(device)
        self._sync = device if device.type == "cuda" else None
        self._clock = clock
        self._seconds = dict.fromkeys(STAGES, 0.0)
        self._current: str | None = None
        self._since = 0.0

    @property
    def current(self) -> str | None:
        """The stage running now, or None."""
        return self._current

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds of every stage of :data:`STAGES`, s, summed up to its last switch (a copy)."""
        return dict(self._seconds)

    def switch(self, stage: str | None) -> None:
        """End the running stage, if any, and start ``stage`` (None: start none).

        :raises ValueError: If ``stage`` is not one of :data:`STAGES` or None.
        """
        if stage is not None and stage not in self._seconds:
            raise ValueError(f"`stage` must be one of {STAGES} or None; got {stage!r}.")
        if self._sync is not None:
            torch.cuda.synchronize(self._sync)
        now = self._clock()
        if self._current is not None:
            self._seconds[self._current] += now - self._since
        self._current, self._since = stage, now

    def stop(self) -> None:
        """End the running stage (``switch(None)``)."""
        self.switch(None)

    def columns(self) -> dict[str, float]:
        """The ``points`` fields: ``{"seconds_load": s, ...}``, :data:`STAGE_COLUMNS` order."""
        return {column: self._seconds[stage] for column, stage in zip(STAGE_COLUMNS, STAGES)}

    def timed(self, channel: Any) -> "TimedChannel":
        """``channel`` with its calls timed as ``channel`` (:class:`TimedChannel`)."""
        return TimedChannel(channel, self)


class TimedChannel:
    """A channel block whose calls this timer charges to ``channel``, and what follows each
    call to ``receive``: the link's transmitter is what ran before its first channel call.

    Called as the channel is, ``x_hat, no_eff = channel(x, snr_db)``, with the same results;
    its other attributes are the channel's. It is not an instance of the channel's class.

    :param channel: The channel block.
    :param timer: The task's timer.
    """

    def __init__(self, channel: Any, timer: StageTimer) -> None:
        self._channel = channel
        self._timer = timer

    def __call__(self, x: torch.Tensor, snr_db: Any) -> Any:
        self._timer.switch("channel")
        try:
            return self._channel(x, snr_db)
        finally:
            self._timer.switch("receive")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


def stage_totals(points: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Stage seconds summed per link over the tasks that recorded them.

    :param points: The ``points`` table's columns (:meth:`semlink.results.ResultsStore.table`).
        Rows without stage times (files written before them, FID and KID points) are left out.
    :output totals: ``{link: {"tasks": n, "load": s, ..., "write": s, "other": s,
        "total": s}}`` in the links' order of first appearance; seconds summed over the ``n``
        timed tasks, ``total`` their ``seconds``, ``other`` what no stage holds
        (``total`` minus the stages). Empty when no row has stage times.

    >>> points = {"link": ["a", "a", "b"], "seconds": [2.0, 3.0, 1.0],
    ...           **{c: [0.25, 0.25, float("nan")] for c in STAGE_COLUMNS}}
    >>> totals = stage_totals(points)
    >>> list(totals), totals["a"]["tasks"], totals["a"]["load"], totals["a"]["other"]
    (['a'], 2, 0.5, 2.0)
    """
    if not all(column in points for column in ("link", "seconds", *STAGE_COLUMNS)):
        return {}
    totals: dict[str, dict[str, float]] = {}
    stage_rows = zip(*(points[column] for column in STAGE_COLUMNS))
    for link, seconds, stages in zip(points["link"], points["seconds"], stage_rows):
        values = [float(v) for v in stages]
        if not all(math.isfinite(v) for v in values):
            continue
        total = totals.setdefault(str(link), {"tasks": 0, **dict.fromkeys(STAGES, 0.0),
                                              "other": 0.0, "total": 0.0})
        total["tasks"] += 1
        for stage, value in zip(STAGES, values):
            total[stage] += value
        total["total"] += float(seconds)
    for total in totals.values():
        total["other"] = total["total"] - sum(total[stage] for stage in STAGES)
    return totals


def format_stage_table(totals: Mapping[str, Mapping[str, float]]) -> list[str]:
    """``semlink info``'s lines on :func:`stage_totals`: per link a row of seconds and a row of
    shares of its total (none when there are no totals).

    >>> row = {"tasks": 2, "load": 1.0, "transmit": 0.5, "channel": 0.25, "receive": 2.0,
    ...        "metrics": 0.25, "write": 0.0, "other": 0.0, "total": 4.0}
    >>> print("\\n".join(format_stage_table({"sem": row})))
      seconds per stage, summed over each link's tasks, and their share of its task seconds:
        link  tasks  load   transmit  channel  receive  metrics  write  other  total
        sem   2      1.00   0.50      0.25     2.00     0.25     0.00   0.00   4.00
                     25.0%  12.5%     6.2%     50.0%    6.2%     0.0%   0.0%   100.0%
    """
    if not totals:
        return []
    parts = (*STAGES, "other", "total")
    table = [("link", "tasks", *parts)]
    for link, total in totals.items():
        table.append((link, str(int(total["tasks"])), *(f"{total[p]:.2f}" for p in parts)))
        share = [f"{100.0 * total[p] / total['total']:.1f}%" if total["total"] > 0 else "-"
                 for p in parts]
        table.append(("", "", *share))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return ["  seconds per stage, summed over each link's tasks, and their share of its task "
            "seconds:"] + ["    " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths)
                                              ).rstrip() for line in table]
