"""Overlapped task execution on one device: the classical links' tasks on a worker thread while
the main thread runs the others, so that host work (JPEG2000 and JPEG coding) and device work
(stage B sampling) proceed at the same time (docs/benchmarks.md).

Which tasks go to the worker (:func:`runs_on_host`): those of the ``classical`` links (config
:class:`~semlink.scenario.ClassicalLinkConfig`, LDPC or the ideal code). Their time is mostly
the host's: every image is encoded to its byte budget and decoded by Pillow (OpenJPEG,
libjpeg), which releases the GIL, around a short LDPC chain or none. Every other task (the
semantic, Img2Img-SC, DeepJSCC and user links, BER links, the FID/KID reference features) stays
on the main thread. One worker: a second would compete with the codec threads a classical
batch already starts (``SEMLINK_CODEC_THREADS``).

When (:func:`overlap_enabled`): ``SEMLINK_OVERLAP=1`` overlaps, ``SEMLINK_OVERLAP=0`` runs one
task at a time; unset, a CUDA run overlaps and a CPU run does not (there both threads would
compete for the same cores). A run whose tasks are all of one side runs them one at a time.

The results are those of one task at a time, to the last bit: a task's numbers depend only on
its own seeds (:mod:`semlink.seeding`), whichever thread runs it and whatever runs beside it.
Threads, not processes: the models stay loaded once. (Sweeps replay no CUDA graphs, which only
``semlink bench --cuda-graphs`` captures: a capture in one thread beside another thread's CUDA
calls would fail, as PyTorch's default ``capture_error_mode="global"`` refuses them.)
:class:`HostWorker` hands its results back through a queue; the thread that created it (the
sweep's main thread) writes the results file and reports progress.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from semlink.errors import InputError
from semlink.scenario import ClassicalLinkConfig

__all__ = ["OVERLAP_ENV", "HostWorker", "overlap_enabled", "runs_on_host"]

#: Environment variable: ``1`` overlaps host and device tasks, ``0`` runs one task at a time;
#: unset or empty, a CUDA run overlaps (:func:`overlap_enabled`).
OVERLAP_ENV = "SEMLINK_OVERLAP"

_T = TypeVar("_T")
_R = TypeVar("_R")
_RESULT, _ERROR, _END = "result", "error", "end"
_POLL_S = 0.2  # a waiting main thread wakes this often (Ctrl-C is seen at once anyway)


def overlap_enabled(device: str) -> bool:
    """Whether a run on ``device`` (a resolved torch device name) overlaps its host and device
    tasks: ``SEMLINK_OVERLAP`` (``1`` or ``0``) when set, else True on CUDA only.

    :raises InputError: If the variable holds anything but ``1``, ``0`` or nothing.
    """
    text = os.environ.get(OVERLAP_ENV, "").strip()
    if not text:
        return device.startswith("cuda")
    if text not in ("0", "1"):
        raise InputError(f"{OVERLAP_ENV}: must be 1 (overlap the classical links' tasks with "
                         f"the others) or 0 (one task at a time); got {text!r}")
    return text == "1"


def runs_on_host(config: Any) -> bool:
    """Whether the tasks of a link with ``config`` run on the host worker: True for the
    ``classical`` links (module docstring); False for every other link and for the FID/KID
    reference features (``config`` None).

    >>> from semlink.scenario import parse_scenario
    >>> links = parse_scenario('''
    ... images: {source: sample}
    ... snr: {points_db: [5]}
    ... links:
    ...   semantic: {type: semantic, preset: small}
    ...   jpeg2000: {type: classical, bandwidth: {match: semantic}}
    ... ''').links
    >>> runs_on_host(links["jpeg2000"]), runs_on_host(links["semantic"]), runs_on_host(None)
    (True, False, False)
    """
    return isinstance(config, ClassicalLinkConfig)


class HostWorker(Generic[_T, _R]):
    """One thread that runs ``run(task)`` for each of ``tasks`` in order, started at once, and
    hands the results back to the thread that created it, in the order they finished.

    A task that raises stops the worker; :meth:`results` raises that exception (the same
    object, its traceback the worker's) after the results finished before it. :meth:`stop`
    lets the running task finish, starts no other and returns what was not handed out yet.

    :param run: Runs one task; called in the worker thread only.
    :param tasks: The tasks, in the order to run them.
    :param setup: Called in the worker thread before its first task: thread-local state to set
        there (torch's grad mode, the current CUDA device); None: nothing.
    :param name: The thread's name.

    >>> worker = HostWorker(lambda x: x * x, [1, 2, 3])
    >>> list(worker.results(wait=True)), worker.ended
    ([1, 4, 9], True)
    """

    def __init__(self, run: Callable[[_T], _R], tasks: Iterable[_T], *,
                 setup: Callable[[], None] | None = None,
                 name: str = "semlink-host-tasks") -> None:
        if not callable(run):
            raise TypeError(f"`run` must be callable; got {type(run).__name__}.")
        if setup is not None and not callable(setup):
            raise TypeError(f"`setup` must be callable or None; got {type(setup).__name__}.")
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._ended = False  # the end marker was taken from the queue
        # Not a daemon: a process that exits while the worker runs lets its task finish
        # (stop() is always called first, so that is the task running then and no other).
        self._thread = threading.Thread(target=self._work, args=(run, list(tasks), setup),
                                        name=name, daemon=False)
        self._thread.start()

    @property
    def ended(self) -> bool:
        """True once every result (or the error that stopped the worker) was handed out."""
        return self._ended

    def _work(self, run: Callable[[_T], _R], tasks: list[_T],
              setup: Callable[[], None] | None) -> None:
        try:
            if setup is not None:
                setup()
            for task in tasks:
                if self._stopping.is_set():
                    break
                self._queue.put((_RESULT, run(task)))
        except BaseException as err:  # raised again in the thread that hands results out
            self._queue.put((_ERROR, err))
        finally:
            self._queue.put((_END, None))

    def results(self, *, wait: bool = False) -> Iterator[_R]:
        """The results of the tasks finished since the last call: those queued now, or with
        ``wait`` every one until the worker ends (waiting for each).

        :raises BaseException: The exception a task raised, after the results before it.
        """
        while not self._ended:
            try:
                kind, value = (self._queue.get(timeout=_POLL_S) if wait else
                               self._queue.get_nowait())
            except queue.Empty:
                if wait:
                    continue
                return
            if kind == _END:
                self._ended = True
            elif kind == _ERROR:
                raise value
            else:
                yield value

    def stop(self) -> list[_R]:
        """Start no other task, wait for the running one, and return the results not handed
        out yet (a task's exception among them is dropped: the caller is stopping already).
        Calling it again returns an empty list."""
        self._stopping.set()
        self._thread.join()
        left = []
        while not self._ended:  # after join() the end marker is in the queue, last
            kind, value = self._queue.get_nowait()
            if kind == _END:
                self._ended = True
            elif kind == _RESULT:
                left.append(value)
        return left
