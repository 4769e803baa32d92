"""Where a sweep's tasks run: one after another in this process, or on the workers of a Ray cluster.

Both executors take the same tasks and give the same results (a task's numbers depend only on
the scenario and its coordinates); the sweep runner writes them to the results file as they
arrive, in this process only. On Ray, each worker (an actor holding one GPU, or one CPU for a CPU
run) builds its own :class:`~semlink.tasks.TaskRunner` once and is handed the next task as soon
as it is free, so fast and slow tasks (a BER point at high SNR, a batch of images) balance out.
The workers read the scenario's images and weights from the same paths as this process: on a
cluster of several machines those must be on a shared file system (the bundled ``sample``
images and the ``small`` preset ship with semlink and are always there).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from semlink.devices import resolve_device
from semlink.errors import InputError
from semlink.plan import Task
from semlink.scenario import Scenario
from semlink.tasks import TaskRunner, scenario_images

__all__ = ["LocalExecutor", "RayExecutor", "TaskResult"]

#: ``(task, point_row, tables, seconds)`` of one finished task.
TaskResult = tuple[Task, dict[str, Any], dict[str, list[dict[str, Any]]], float]


class LocalExecutor:
    """Runs tasks one after another in this process, on ``scenario.device``.

    :raises InputError: As :func:`~semlink.devices.resolve_device` and
        :class:`~semlink.tasks.TaskRunner` do.
    """

    def __init__(self, scenario: Scenario, *, base_dir: Path, recon_dir: Path | None) -> None:
        self.device = resolve_device(scenario.device)
        self.device_name = None  # the store names this process's device
        self._runner = TaskRunner(scenario, base_dir=base_dir, device=self.device,
                                  recon_dir=recon_dir)
        self.num_images = self._runner.num_images

    def prepare(self, links: Iterable[str]) -> None:
        """Check what can be checked before any task runs (see :meth:`TaskRunner.prepare`)."""
        self._runner.prepare(links)

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        for task in tasks:
            started = time.perf_counter()
            point, tables = self._runner.run(task)
            yield task, point, tables, time.perf_counter() - started

    def close(self) -> None:
        pass


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
