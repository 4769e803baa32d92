"""Progress of ``semlink run``: rich's bar on a terminal, plain log lines anywhere else.

Where stderr is not a terminal (a batch scheduler's log, ``2> log``), or ``NO_COLOR`` is set,
a live bar would leave escape sequences or only its last state: the run writes one line at its
first task, then at most one every :data:`LOG_INTERVAL_S` seconds, and one at its last task::

    2026-12-07T03:10:02Z semlink run quickstart: 4/10 tasks, 0.52 img/s, ETA 0:00:12

With ``verbose``, every task also gets a line (link, SNR, batch, images, seconds); with
``quiet``, nothing is written.
"""
from __future__ import annotations

import datetime
import sys
import time
from typing import Any, TextIO

__all__ = ["LOG_INTERVAL_S", "RunProgress"]

#: Seconds between two plain progress lines (the first and the last task are always written).
LOG_INTERVAL_S = 5.0


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class RunProgress:
    """What ``semlink run`` shows while tasks finish; a context manager around the run, whose
    :meth:`on_task` is :func:`semlink.sweep.run_scenario`'s ``on_task``.

    :param name: The scenario's name, in every line.
    :param console: The rich console the bar and verbose lines go to (stderr).
    :param quiet: Show nothing.
    :param verbose: Also one line per task.
    :param stream: Where plain lines go; default ``sys.stderr`` at construction.
    """

    def __init__(self, name: str, *, console: Any, quiet: bool = False, verbose: bool = False,
                 stream: TextIO | None = None) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._name, self._quiet, self._verbose = name, quiet, verbose
        self._stream = sys.stderr if stream is None else stream
        # The bar is for terminals, gone once done: a pipe or log file would get only its last
        # state (and a blank line before an error). console.is_terminal is False under NO_COLOR.
        self._bar_shown = not quiet and console.is_terminal and self._stream.isatty()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                  console=console, disable=not self._bar_shown, transient=True)
        self._bar = None
        self._images = self._tasks = 0  # of this process (not resumed ones)
        self._task_seconds = 0.0
        self._first_finished = self._last_line = 0.0  # monotonic times

    def __enter__(self) -> "RunProgress":
        self._progress.__enter__()
        self._bar = self._progress.add_task(self._name, total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def on_task(self, task: Any, point: dict[str, Any], done: int, total: int) -> None:
        """A task finished: ``done`` of ``total`` tasks are (resumed ones included)."""
        now = time.monotonic()
        self._tasks += 1
        if self._tasks == 1:
            self._first_finished = now
        self._images += len(task.image_indices)
        self._task_seconds += point["seconds"]
        rate = self._rate()
        self._progress.update(self._bar, completed=done, total=total, rate=rate,
                              description=f"{task.link} @ {task.snr_db:g} dB")
        if self._quiet:
            return
        if self._verbose:
            images = len(task.image_indices)
            self._line(f"task {done}/{total}: {task.link} at {task.snr_db:g} dB, batch "
                       f"{task.batch_index}" + (f", {images} images" if images else "")
                       + f", {point['seconds']:.2f} s")
        if self._bar_shown:
            return
        if self._tasks == 1 or done == total or now - self._last_line >= LOG_INTERVAL_S:
            self._last_line = now
            # Seconds per task: the first task's own (set-up, such as loading models, is not
            # a task's), then the wall time since it per task after it.
            per_task = point["seconds"] if self._tasks == 1 else \
                (now - self._first_finished) / (self._tasks - 1)
            eta = per_task * (total - done)
            self._line(f"{done}/{total} tasks" + (f", {rate}" if rate else "")
                       + f", ETA {_duration(eta)}")

    def _rate(self) -> str:
        """Images per second of task time (tasks per second for BER links)."""
        if self._task_seconds <= 0:
            return ""
        if self._images:
            return f"{self._images / self._task_seconds:.2f} img/s"
        return f"{self._tasks / self._task_seconds:.2f} tasks/s"

    def _line(self, text: str) -> None:
        line = f"{_utc_now()} semlink run {self._name}: {text}"
        if self._bar_shown:  # above the bar
            self._progress.console.print(line, highlight=False, markup=False)
        else:
            print(line, file=self._stream, flush=True)
