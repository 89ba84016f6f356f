"""Executors: place sandboxed work on device slots, locally or on a Ray cluster, behind one interface.

A piece of work is a callable `work(device=..., stop=...)` that runs one sandboxed job on the
device it was placed on ("cpu" or "cuda:N") and returns what it learned (for the evaluator, a
whole `EvalResult`, so nothing but the result has to travel back from a cluster node). `stop`
is the caller's stop event: a local piece of work sees it and kills its sandbox; a Ray task
cannot share an event, so the executor cancels the task instead (its sandbox dies with it).
Either way, work that the stop reached ends with `WorkCancelled`: it has no result to record.
`on_progress`, where given, is passed on as `work(..., on_progress=...)` by executors that run
work in this process (LocalPool); a cluster node cannot call back into it, so Ray leaves it out.
Where K pieces of work share one GPU (a slot `cuda:NxK`, sandbox.slots), the work is called with
`sharing=K` as well, so that it caps itself to its share of the GPU's memory, and a LocalPool built with
`stagger=True` starts the first pieces on that GPU one after another (sandbox.stagger).
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from sandbox.ray_faults import ConnectionWatch, EvaluationLost, LostAttempt, fault_cause, stretch_ray_reconnect_window
from sandbox.slots import DeviceSlot, parse_slots
from sandbox.stagger import StaggeredStarts

T = TypeVar("T")
Work = Callable[..., T]  # called as work(device=str, stop=threading.Event | None[, sharing=int][, on_progress=...])
Notify = Callable[[str, str, dict], None]  # (event kind, message, data): what the cluster did to a piece of work
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CANCEL_POLL_SECONDS = 0.5


class WorkCancelled(Exception):
    """The caller's stop reached this piece of work before it finished: there is no result to keep."""


class Executor(Protocol):
    capacity: int  # pieces of work that can run at once

    def submit(self, work: Work[T], stop: threading.Event | None = None,
               on_progress: Callable[[Any], None] | None = None, notify: Notify | None = None) -> Future[T]: ...

    def shutdown(self) -> None: ...


class LocalPool:
    """Runs work on this machine: at most one piece per slot at a time. Slots are specs (sandbox.slots),
    e.g. ["cuda:0", "cuda:1"], ["cpu", "cpu"] or ["cuda:0x4"] (four pieces at once on cuda:0).
    `stagger`: on a shared GPU, each slot's first piece of work starts when the one before it has begun
    training (sandbox.stagger); such work is always called with `on_progress`, which tells the pool so."""

    def __init__(self, specs: list[str], stagger: bool = False):
        if not specs:
            raise ValueError("LocalPool needs at least one slot, e.g. ['cpu'] or ['cuda:0', 'cuda:1']")
        placed = parse_slots(specs)
        self.slots = [slot.device for slot in placed]  # one device per slot: a shared GPU is named K times
        self.capacity = len(placed)
        self._stagger = StaggeredStarts(placed) if stagger else None
        self._free: queue.Queue[tuple[int, DeviceSlot]] = queue.Queue()
        for position, slot in enumerate(placed):
            self._free.put((position, slot))
        self._threads = ThreadPoolExecutor(max_workers=len(placed), thread_name_prefix="sandbox-slot")

    def submit(self, work: Work[T], stop: threading.Event | None = None,
               on_progress: Callable[[Any], None] | None = None, notify: Notify | None = None) -> Future[T]:
        """`notify` is never called: on this machine no node, Ray worker or object store can be lost."""
        return self._threads.submit(self._run_on_free_slot, work, stop, on_progress)

    def _run_on_free_slot(self, work: Work[T], stop: threading.Event | None,
                          on_progress: Callable[[Any], None] | None) -> T:
        position, slot = self._free.get()  # one worker thread per slot, so a slot is always free here
        try:
            if self._stagger is not None:
                self._stagger.wait_turn(position, stop)
                on_progress = self._stagger.watch(position, on_progress)
            if stop is not None and stop.is_set():
                raise WorkCancelled("stopped before it started")
            extra = {"on_progress": on_progress} if on_progress is not None else {}
            if slot.sharing > 1:
                extra["sharing"] = slot.sharing
            outcome = work(device=slot.device, stop=stop, **extra)
        finally:
            if self._stagger is not None:
                self._stagger.ended(position)
            self._free.put((position, slot))
        if stop is not None and stop.is_set():
            raise WorkCancelled("the stop came while it ran")  # its sandbox was killed: the outcome says so, not the work
        return outcome

    def shutdown(self) -> None:
        """Wait for the running work (bounded by its sandbox's wall limit) and drop the queued."""
        self._threads.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Runs each piece of work as a Ray task on whichever node has a free CPU or GPU.

    `device_kind` is "cpu" (a task takes one CPU) or "cuda" (one GPU, `num_gpus=1`; with
    `gpu_sharing` K, a K-th of one, `num_gpus=1/K`, so that Ray packs K tasks on a GPU, and the work is
    called with `sharing=K`). The work is called on the node that runs it, with the GPU Ray assigned
    there; only its return value comes back. Connects to `address` (a running cluster, whose nodes need archlab installed or a
    `runtime_env` that ships it) or starts a local Ray whose workers import this checkout.
    `capacity` is how many tasks the caller should keep in flight (Ray queues the rest).

    A try the cluster loses (sandbox.ray_faults) is made again, up to `tries` in all, each loss
    told to the submission's `notify`; after the last, the work ends with `EvaluationLost`. When the
    cluster's GCS stays unreachable for `reconnect_s`, the executor gives the link up: the work in
    flight ends with `WorkCancelled`, `lost_connection` says why, and the run's `stop` is set.
    """

    def __init__(self, device_kind: str = "cpu", *, capacity: int = 1, address: str | None = None,
                 num_cpus: int | None = None, runtime_env: dict | None = None, tries: int = 3,
                 reconnect_s: float = 60.0, stop: threading.Event | None = None, notify: Notify | None = None,
                 gpu_sharing: int = 1):
        if device_kind not in ("cpu", "cuda"):
            raise ValueError(f"device_kind must be 'cpu' or 'cuda', got {device_kind!r}")
        if capacity < 1 or tries < 1 or gpu_sharing < 1:
            raise ValueError(f"capacity, tries and gpu_sharing must be at least 1, got {capacity}, {tries} "
                             f"and {gpu_sharing}")
        import ray  # optional dependency: `pip install 'archlab[cluster]'`

        self._ray = ray
        self.capacity = capacity
        self.tries = tries
        self.lost_connection = ""  # why the link to the cluster was given up, once it was
        self._stop = stop
        self._notify = notify or _ignore
        self._closing = threading.Event()
        self._supervisors: list[threading.Thread] = []
        self._supervisors_lock = threading.Lock()  # experiments submit from several threads
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if runtime_env is None and address is None:
                runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
            stretch_ray_reconnect_window(reconnect_s)
            # "local" always starts a Ray of our own: None would join whichever cluster this host started last
            ray.init(address=address or "local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
        resources = {"num_gpus": 1 / gpu_sharing, "num_cpus": 1} if device_kind == "cuda" else {"num_cpus": 1}
        self._sharing = gpu_sharing if device_kind == "cuda" else 1
        self._remote = ray.remote(max_retries=0, **resources)(_run_on_ray_worker)
        self._watch = ConnectionWatch(_gcs_address(ray), reconnect_s,
                                      on_lost=self._give_up_connection, on_back=self._connection_back)
        self._watch.start()

    def submit(self, work: Work[T], stop: threading.Event | None = None,
               on_progress: Callable[[Any], None] | None = None, notify: Notify | None = None) -> Future[T]:
        """`on_progress` is left out: a node cannot call back into this process."""
        future: Future[T] = Future()
        supervisor = threading.Thread(target=self._supervise, args=(work, stop, notify or _ignore, future),
                                      daemon=True, name="ray-task")
        with self._supervisors_lock:
            self._supervisors = [s for s in self._supervisors if s.is_alive()] + [supervisor]
        supervisor.start()
        return future

    def _supervise(self, work: Work[T], stop: threading.Event | None, notify: Notify, future: Future[T]) -> None:
        """Try the work until it returns, raises of its own, is stopped, or the tries run out."""
        lost: list[LostAttempt] = []
        try:
            for attempt in range(1, self.tries + 1):
                done = self._one_try(work, stop)
                error = done.exception()
                cause = fault_cause(error) if error is not None else None
                if error is not None and cause is None:
                    future.set_exception(error)  # the work's own exception
                    return
                if error is None:
                    value, node = done.result()
                    notify("placement", f"ran on node {node['host']} ({node['node_ip']}, {node['node_id'][:12]})",
                           node)
                    future.set_result(value)
                    return
                lost.append(LostAttempt(attempt, self.tries, cause))
                again = "; trying again" if attempt < self.tries else "; no tries left"
                notify("lost", f"try {attempt} of {self.tries} lost to the cluster: {cause}{again}",
                       {"attempt": attempt, "tries": self.tries, "cause": cause})
            future.set_exception(EvaluationLost(lost))
        except BaseException as error:  # WorkCancelled, or Ray refusing the submission
            future.set_exception(error)

    def _one_try(self, work: Work[T], stop: threading.Event | None) -> Future[Any]:
        """Submit the work once and wait for Ray's answer, watching the caller's stop and the link."""
        self._wait_for_cluster()
        if stop is not None and stop.is_set():
            raise WorkCancelled("stopped before it started")
        task = self._remote.remote(work, self._sharing)
        ray_future: Future[Any] = task.future()
        while not wait([ray_future], timeout=CANCEL_POLL_SECONDS).done:
            if self.lost_connection or self._closing.is_set():  # no Ray call now: it would block on the lost GCS
                raise WorkCancelled(self.lost_connection or "the executor shut down")
            if stop is not None and stop.is_set():
                if not self.lost_connection:
                    self._ray.cancel(task, force=True)  # kills the Ray worker; its sandbox dies with it
                raise WorkCancelled("cancelled at the caller's stop")
        if stop is not None and stop.is_set():
            raise WorkCancelled("the stop came while it ran")  # a killed sandbox's outcome is not the work's
        return ray_future

    def _wait_for_cluster(self) -> None:
        """A retry goes out only while the GCS answers (a lost head fails the tries in flight at once)."""
        while not self._watch.reachable():
            if self.lost_connection or self._closing.wait(CANCEL_POLL_SECONDS):
                raise WorkCancelled(self.lost_connection or "the executor shut down")

    def _give_up_connection(self, message: str) -> None:
        self.lost_connection = message  # before the stop: the tries in flight must not call Ray any more
        self._notify("connection", message, {"address": self._watch.address})
        if self._stop is not None:
            self._stop.set()

    def _connection_back(self, seconds: float) -> None:
        self._notify("connection", f"the Ray cluster answers again after {seconds:.0f} s", {"address": self._watch.address})

    def shutdown(self) -> None:
        """Disconnect from (or stop) the Ray runtime this executor started; leave a caller's own alone.

        The supervisors end first: a task reference released after Ray has shut down makes Ray
        abort the whole process."""
        self._closing.set()
        self._watch.close()
        with self._supervisors_lock:
            supervisors, self._supervisors = self._supervisors, []
        for supervisor in supervisors:
            supervisor.join()
        if self._owns_ray:
            self._ray.shutdown()


def _gcs_address(ray: Any) -> str:
    """host:port of the cluster's GCS; "" through Ray Client (ray://), whose own link does the reconnecting."""
    try:
        return ray.get_runtime_context().gcs_address or ""
    except Exception:  # Ray Client has no GCS address to give
        return ""


def _ignore(kind: str, message: str, data: dict) -> None:
    """The default `notify`: nobody asked to hear about the cluster."""


def _run_on_ray_worker(work: Work[T], sharing: int = 1) -> tuple[T, dict[str, str]]:
    """Inside the Ray task: the device is the GPU Ray assigned (a physical index), or the CPU.
    The node's name comes back with the value: files the work left are on that node's disk."""
    import socket

    import ray

    gpus = ray.get_gpu_ids()
    extra = {"sharing": sharing} if sharing > 1 else {}
    value = work(device=f"cuda:{int(gpus[0])}" if gpus else "cpu", stop=None, **extra)
    node = {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname()}
    return value, node
