"""Where a sweep's tasks run: in this process (one after another, or the classical links' tasks
on a worker thread beside the others), or on the workers of a Ray cluster.

Both executors take the same tasks and give the same results (a task's numbers depend only on
the scenario and its coordinates); the sweep runner writes them to the results file as they
arrive, in this process's main thread only. In this process, a CUDA run (or any run with
``SEMLINK_OVERLAP=1``) runs the classical links' tasks, mostly JPEG2000 and JPEG coding on the
host, on one worker thread while the main thread runs the others on the device
(:mod:`semlink.overlap`). On Ray, each worker (an actor holding one GPU, or one CPU for a CPU
run) builds its own :class:`~semlink.tasks.TaskRunner` once and is handed the next task as soon
as it is free, so fast and slow tasks (a BER point at high SNR, a batch of images) balance out.
The workers read the scenario's images and weights from the same paths as this process: on a
cluster of several machines those must be on a shared file system (the bundled ``sample``
images and the ``small`` preset ship with semlink and are always there).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from semlink.devices import resolve_device
from semlink.errors import InputError
from semlink.links.protocol import per_snr
from semlink.overlap import HostWorker, overlap_enabled, runs_on_host
from semlink.plan import Task
from semlink.scenario import Scenario
from semlink.tasks import TaskRunner, scenario_images, wants_features

__all__ = ["LocalExecutor", "RayExecutor", "TaskResult"]

#: ``(task, point_row, tables, seconds)`` of one finished task.
TaskResult = tuple[Task, dict[str, Any], dict[str, list[dict[str, Any]]], float]


class LocalExecutor:
    """Runs tasks in this process, on ``scenario.device``: one after another, or with
    ``overlap`` the classical links' tasks on a worker thread while this thread runs the
    others (:mod:`semlink.overlap`), with the same results.

    Thread safety of the overlap: what both threads would build lazily is built in this thread
    before the worker starts (every image loaded, the links built once, the bandwidth of the
    worker's links resolved, the FID/KID Inception network loaded); after that they share
    only objects they read (model weights, the LPIPS network, the image tensor). A link built
    per SNR point (adaptive MCS, the ideal code) is built by the thread that runs its link's
    tasks, under a key of its own. No lock is taken. Only this thread writes the results file
    and reports progress.

    :param overlap: Overlap the tasks; None (default): as :func:`~semlink.overlap.overlap_enabled`
        says for the device (``SEMLINK_OVERLAP``, else on CUDA only).
    :raises InputError: As :func:`~semlink.devices.resolve_device`,
        :func:`~semlink.overlap.overlap_enabled` and :class:`~semlink.tasks.TaskRunner` do.
    """

    def __init__(self, scenario: Scenario, *, base_dir: Path, recon_dir: Path | None,
                 overlap: bool | None = None) -> None:
        if overlap is not None and not isinstance(overlap, bool):
            raise TypeError(f"`overlap` must be a bool or None; got {type(overlap).__name__}.")
        self.device = resolve_device(scenario.device)
        self.device_name = None  # the store names this process's device
        self.overlap = overlap_enabled(self.device) if overlap is None else overlap
        self._runner = TaskRunner(scenario, base_dir=base_dir, device=self.device,
                                  recon_dir=recon_dir)
        self.num_images = self._runner.num_images
        self._worker: HostWorker[Task, TaskResult] | None = None
        self._left: list[TaskResult] = []  # finished on the worker, not handed out yet

    def prepare(self, links: Iterable[str]) -> None:
        """Check what can be checked before any task runs (see :meth:`TaskRunner.prepare`)."""
        self._runner.prepare(links)

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        """Run ``tasks``, yielding each result as it finishes (in this thread). Overlapped,
        the worker's results are yielded after each of this thread's tasks, and a task's
        exception is raised here after the results finished before it; on any exception here
        (a task's, Ctrl-C) the worker's running task is waited for and every finished result
        yielded before the exception goes on."""
        tasks = list(tasks)
        scenario = self._runner.scenario
        on_host = [runs_on_host(scenario.links.get(t.link)) for t in tasks]
        if not self.overlap or all(on_host) or not any(on_host):
            for task in tasks:
                yield self._run(task)
            return
        host = [t for t, h in zip(tasks, on_host) if h]
        self._build_shared(host)
        self._worker = HostWorker(self._run, host, setup=_thread_state(self.device))
        try:
            for task in (t for t, h in zip(tasks, on_host) if not h):
                yield self._run(task)
                yield from self._worker.results()
            yield from self._worker.results(wait=True)
        except (Exception, KeyboardInterrupt):
            yield from self.stop()  # finished tasks are kept, as one at a time
            raise
        finally:  # also when the caller stops iterating: what finished waits for stop()
            self._halt()

    def stop(self) -> list[TaskResult]:
        """Stop overlapped tasks: the worker thread, if one runs, finishes its running task and
        starts no other. Returns the results of its tasks finished but not yet yielded by
        :meth:`run` (to be stored: they are done), once; an empty list when there are none."""
        self._halt()
        left, self._left = self._left, []
        return left

    def close(self) -> None:
        """Stop the worker thread, if one runs (results not yet handed out are dropped)."""
        self.stop()

    def _halt(self) -> None:
        """Stop the worker, keeping its results not handed out yet for :meth:`stop`."""
        worker, self._worker = self._worker, None
        if worker is not None:
            self._left += worker.stop()

    def _run(self, task: Task) -> TaskResult:
        started = time.perf_counter()
        point, tables = self._runner.run(task)
        return task, point, tables, time.perf_counter() - started

    def _build_shared(self, host_tasks: list[Task]) -> None:
        """Build in this thread what the worker's tasks would otherwise build lazily beside
        this thread's (see the class docstring); what is built already is kept."""
        runner = self._runner
        for name in dict.fromkeys(t.link for t in host_tasks):
            if per_snr(runner.scenario.links[name]):
                runner.channel_uses(name)  # a bandwidth match builds the link it names
            else:
                runner.link(name)
        runner.images(())  # loads every image of the run
        if wants_features(runner.scenario):
            from semlink.metrics.fid import load_inception

            load_inception(self.device)


def _thread_state(device: str) -> Callable[[], None]:
    """The worker thread's setup: torch's thread-local state as this thread has it (grad mode;
    on CUDA, the current device, which a device named without an index means)."""
    grad = torch.is_grad_enabled()
    cuda = torch.cuda.current_device() if device.startswith("cuda") else None

    def setup() -> None:
        torch.set_grad_enabled(grad)
        if cuda is not None:
            torch.cuda.set_device(cuda)
    return setup


class _Worker:
    """A Ray actor: one :class:`TaskRunner` on the worker's device. Bad input comes back as a
    message, not as an exception, so that the driver reports it in one line."""

    def __init__(self, scenario: Scenario, base_dir: str, device: str, recon_dir: str | None,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        self._args = (scenario, Path(base_dir), device,
                      None if recon_dir is None else Path(recon_dir))
        self._runner: TaskRunner | None = None

    def prepare(self, links: list[str]) -> str | None:
        scenario, base_dir, device, recon_dir = self._args
        try:
            self._runner = TaskRunner(scenario, base_dir=base_dir, device=device,
                                      recon_dir=recon_dir)
            self._runner.prepare(links)
        except InputError as err:
            return str(err)
        return None

    def run(self, task: Task) -> tuple[TaskResult | None, str | None]:
        started = time.perf_counter()
        try:
            point, tables = self._runner.run(task)
        except InputError as err:
            return None, str(err)
        return (task, point, tables, time.perf_counter() - started), None


class RayExecutor:
    """Runs tasks on the workers of a Ray cluster, each task on the next free worker.

    :param address: Cluster to join (``ray.init(address=...)``); ``None`` joins the cluster
        ``RAY_ADDRESS`` names or else starts one on this machine. A Ray session this process
        already started is used as it is (and left running).
    :param workers: Number of workers; default one per GPU of the cluster for a CUDA run, one
        per CPU for a CPU run. CPU workers share the cluster's CPUs equally (as torch threads).
    :raises InputError: If Ray is not installed, the cluster cannot be reached, the scenario
        asks for CUDA on a cluster without GPUs, or ``workers`` exceeds the GPUs (CUDA) or
        CPUs (CPU) of the cluster.
    """

    def __init__(self, scenario: Scenario, *, base_dir: Path, recon_dir: Path | None,
                 address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("--ray: Ray is not installed; pip install 'semlink[ray]'") from None
        self._ray = ray
        self._owns_session = not ray.is_initialized()
        if self._owns_session:
            _check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, logging_level="WARNING",
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"--ray: cannot start or join a Ray cluster "
                                 f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                                 ) from None
        try:
            resources = ray.cluster_resources()
            gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
            self.device = _cluster_device(scenario.device, gpus)
            on_gpu = self.device == "cuda"
            slots = gpus if on_gpu else cpus
            count = workers or slots
            if count > slots:  # Ray would wait forever for the resources of the extra ones
                raise InputError(f"--workers: {count} workers need {count} "
                                 f"{'GPUs' if on_gpu else 'CPUs'}; the Ray cluster has {slots}")
            # A CPU worker gets an equal share of the CPUs, and as many torch threads.
            threads = 1 if on_gpu else cpus // count
            self.device_name = (f"Ray: {count} workers on {self.device} (cluster of {gpus} GPUs, "
                                f"{cpus} CPUs)")
            self.num_images = len(scenario_images(scenario, base_dir))
            actor = ray.remote(_Worker).options(num_gpus=1 if on_gpu else 0, num_cpus=threads)
            # A worker's one GPU is "cuda" there: Ray sets CUDA_VISIBLE_DEVICES per worker.
            # Workers have their own working directory: give them absolute paths.
            recon = None if recon_dir is None else str(recon_dir.resolve())
            self._workers = [actor.remote(scenario, str(base_dir.resolve()), self.device, recon,
                                          threads) for _ in range(count)]
        except BaseException:
            self.close()
            raise

    def prepare(self, links: Iterable[str]) -> None:
        """Build every worker's runner and check the links there; the first problem is raised."""
        links = list(links)
        for message in self._ray.get([w.prepare.remote(links) for w in self._workers]):
            if message is not None:
                raise InputError(message)

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        ray = self._ray
        queue, idle, in_flight = list(tasks)[::-1], list(self._workers), {}
        while queue or in_flight:
            while queue and idle:
                worker = idle.pop()
                in_flight[worker.run.remote(queue.pop())] = worker
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            idle.append(in_flight.pop(ready[0]))
            result, message = ray.get(ready[0])
            if message is not None:
                raise InputError(message)
            yield result

    def stop(self) -> list[TaskResult]:
        """Nothing to hand back: a task is yielded by :meth:`run` as soon as it finishes (an
        interrupted run's tasks still on the workers are dropped). An empty list."""
        return []

    def close(self) -> None:
        """Stop the workers, and the Ray session if this executor started it."""
        for worker in getattr(self, "_workers", []):
            self._ray.kill(worker)
        if self._owns_session:
            self._ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``HOST:PORT`` (or ``ray://HOST:PORT``) where nothing listens: Ray itself
    would retry for minutes. Other forms (``auto``, ``local``, none) are left to Ray.

    :raises InputError: If no TCP connection to the address opens within ``timeout_s``.
    """
    import socket

    host, sep, port = (address or "").removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise InputError(f"--ray: no Ray cluster answers at {address} "
                         f"({err.strerror or err})") from None


def _cluster_device(requested: str, gpus: int) -> str:
    """The device the workers run on: ``cuda`` (each worker's own GPU) or ``cpu``."""
    if requested == "auto":
        return "cuda" if gpus else "cpu"
    if requested.startswith("cuda"):
        if not gpus:
            raise InputError(f"device: {requested!r} requested but the Ray cluster has no GPU "
                             "(use device: auto or cpu)")
        return "cuda"
    return requested
