"""Executors: place sandboxed work on device slots, locally or on a Ray cluster, behind one interface.

A piece of work is a callable `work(device=..., stop=...)` that runs one sandboxed job on the
device it was placed on ("cpu" or "cuda:N") and returns what it learned (for the evaluator, a
whole `EvalResult`, so nothing but the result has to travel back from a cluster node). `stop`
is the caller's stop event: a local piece of work sees it and kills its sandbox; a Ray task
cannot share an event, so the executor cancels the task instead (its sandbox dies with it).
Either way, work that the stop reached ends with `WorkCancelled`: it has no result to record.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from sandbox.process_setup import cuda_index

T = TypeVar("T")
Work = Callable[..., T]  # called as work(device=str, stop=threading.Event | None)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CANCEL_POLL_SECONDS = 0.5


class WorkCancelled(Exception):
    """The caller's stop reached this piece of work before it finished: there is no result to keep."""


class Executor(Protocol):
    capacity: int  # pieces of work that can run at once

    def submit(self, work: Work[T], stop: threading.Event | None = None) -> Future[T]: ...

    def shutdown(self) -> None: ...


class LocalPool:
    """Runs work on this machine: at most one piece per slot at a time, e.g. ["cuda:0", "cuda:1"] or ["cpu", "cpu"]."""

    def __init__(self, slots: list[str]):
        if not slots:
            raise ValueError("LocalPool needs at least one slot, e.g. ['cpu'] or ['cuda:0', 'cuda:1']")
        for slot in slots:
            cuda_index(slot)  # refuses anything but "cpu" and "cuda:N"
        self.slots = list(slots)
        self.capacity = len(slots)
        self._free: queue.Queue[str] = queue.Queue()
        for slot in slots:
            self._free.put(slot)
        self._threads = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="sandbox-slot")

    def submit(self, work: Work[T], stop: threading.Event | None = None) -> Future[T]:
        return self._threads.submit(self._run_on_free_slot, work, stop)

    def _run_on_free_slot(self, work: Work[T], stop: threading.Event | None) -> T:
        slot = self._free.get()  # one worker thread per slot, so a slot is always free here
        try:
            if stop is not None and stop.is_set():
                raise WorkCancelled("stopped before it started")
            outcome = work(device=slot, stop=stop)
        finally:
            self._free.put(slot)
        if stop is not None and stop.is_set():
            raise WorkCancelled("the stop came while it ran")  # its sandbox was killed: the outcome says so, not the work
        return outcome

    def shutdown(self) -> None:
        """Wait for the running work (bounded by its sandbox's wall limit) and drop the queued."""
        self._threads.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Runs each piece of work as a Ray task on whichever node has a free CPU or GPU.

    `device_kind` is "cpu" (a task takes one CPU) or "cuda" (one GPU, `num_gpus=1`). The work is
    called on the node that runs it, with the GPU Ray assigned there; only its return value comes
    back. Connects to `address` (a running cluster, whose nodes need archlab installed or a
    `runtime_env` that ships it) or starts a local Ray whose workers import this checkout.
    `capacity` is how many tasks the caller should keep in flight (Ray queues the rest).
    """

    def __init__(self, device_kind: str = "cpu", *, capacity: int = 1, address: str | None = None,
                 num_cpus: int | None = None, runtime_env: dict | None = None):
        if device_kind not in ("cpu", "cuda"):
            raise ValueError(f"device_kind must be 'cpu' or 'cuda', got {device_kind!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        import ray  # optional dependency: `pip install 'archlab[cluster]'`

        self._ray = ray
        self.capacity = capacity
        self._closing = threading.Event()
        self._watchers: list[threading.Thread] = []
        self._watchers_lock = threading.Lock()  # experiments submit from several threads
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if runtime_env is None and address is None:
                runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
        resources = {"num_gpus": 1, "num_cpus": 1} if device_kind == "cuda" else {"num_cpus": 1}
        self._remote = ray.remote(max_retries=0, **resources)(_run_on_ray_worker)

    def submit(self, work: Work[T], stop: threading.Event | None = None) -> Future[T]:
        task = self._remote.remote(work)
        ray_future: Future[Any] = task.future()
        if stop is None:
            return ray_future
        future: Future[T] = Future()
        cancelled = threading.Event()
        ray_future.add_done_callback(lambda done: _settle(future, done, cancelled))
        watcher = threading.Thread(target=self._cancel_on_stop, args=(task, ray_future, stop, cancelled),
                                   daemon=True, name="ray-cancel-on-stop")
        watcher.start()
        with self._watchers_lock:
            self._watchers = [w for w in self._watchers if w.is_alive()] + [watcher]
        return future

    def _cancel_on_stop(self, task: Any, ray_future: Future[Any], stop: threading.Event,
                        cancelled: threading.Event) -> None:
        while not ray_future.done() and not self._closing.is_set():
            if stop.wait(CANCEL_POLL_SECONDS):
                cancelled.set()  # before the cancel, so however Ray ends the task it reads as cancelled
                self._ray.cancel(task, force=True)  # kills the Ray worker; its sandbox dies with it
                return

    def shutdown(self) -> None:
        """Disconnect from (or stop) the Ray runtime this executor started; leave a caller's own alone.

        The cancel watchers end first: a task reference released after Ray has shut down makes
        Ray abort the whole process."""
        self._closing.set()
        with self._watchers_lock:
            watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.join()
        if self._owns_ray:
            self._ray.shutdown()


def _settle(future: Future[T], done: Future[T], cancelled: threading.Event) -> None:
    """Pass a Ray task's ending on, as `WorkCancelled` if the stop cancelled it: Ray reports a
    force-cancelled task as TaskCancelledError, WorkerCrashedError, or the killed sandbox's outcome."""
    if cancelled.is_set():
        future.set_exception(WorkCancelled("cancelled at the caller's stop"))
    elif done.exception() is not None:
        future.set_exception(done.exception())
    else:
        future.set_result(done.result())


def _run_on_ray_worker(work: Work[T]) -> T:
    """Inside the Ray task: the device is the GPU Ray assigned (a physical index), or the CPU."""
    import ray

    gpus = ray.get_gpu_ids()
    return work(device=f"cuda:{int(gpus[0])}" if gpus else "cpu", stop=None)
