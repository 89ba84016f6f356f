"""Executors: place sandboxed jobs on device slots, locally or on a Ray cluster, behind one interface.

The job factory receives the device its job was placed on ("cpu" or "cuda:N") and returns the
job to run there, so the caller writes the device into the job's spec and work directory.
"""
from __future__ import annotations

import queue
from pathlib import Path
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from sandbox.isolation import Isolation
from sandbox.job import SandboxJob, SandboxOutcome
from sandbox.process_setup import cuda_index
from sandbox.runner import run_sandboxed

JobFactory = Callable[[str], SandboxJob]
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Executor(Protocol):
    def submit(self, job_factory: JobFactory) -> Future[SandboxOutcome]: ...

    def shutdown(self) -> None: ...


class LocalPool:
    """Runs jobs on this machine: at most one job per slot at a time, e.g. ["cuda:0", "cuda:1"] or ["cpu", "cpu"]."""

    def __init__(self, slots: list[str], *, isolation: Isolation | None = None):
        if not slots:
            raise ValueError("LocalPool needs at least one slot, e.g. ['cpu'] or ['cuda:0', 'cuda:1']")
        for slot in slots:
            cuda_index(slot)  # refuses anything but "cpu" and "cuda:N"
        self.slots = list(slots)
        self.isolation = isolation or Isolation()
        self._free: queue.Queue[str] = queue.Queue()
        for slot in slots:
            self._free.put(slot)
        self._threads = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="sandbox-slot")

    def submit(self, job_factory: JobFactory) -> Future[SandboxOutcome]:
        return self._threads.submit(self._run_on_free_slot, job_factory)

    def _run_on_free_slot(self, job_factory: JobFactory) -> SandboxOutcome:
        slot = self._free.get()  # one worker thread per slot, so a slot is always free here
        try:
            job = job_factory(slot)
            if job.device != slot:
                raise ValueError(f"the job factory was given slot {slot!r} but built a job for {job.device!r}")
            return run_sandboxed(job, isolation=self.isolation)
        finally:
            self._free.put(slot)

    def shutdown(self) -> None:
        """Wait for the running jobs (bounded by their wall limits) and drop the queued ones."""
        self._threads.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Runs each job as a Ray task on whichever node has a free CPU or GPU; same interface as LocalPool.

    `device_kind` is "cpu" (a task takes one CPU) or "cuda" (one GPU, `num_gpus=1`). The factory is
    called on the node that runs the job, with the GPU Ray assigned there, so work directories must
    be on storage that node can see. Connects to `address` (a running cluster, whose nodes need
    archlab installed or a `runtime_env` that ships it) or starts a local Ray whose workers import
    this checkout.
    """

    def __init__(self, device_kind: str = "cpu", *, address: str | None = None, num_cpus: int | None = None,
                 runtime_env: dict | None = None):
        if device_kind not in ("cpu", "cuda"):
            raise ValueError(f"device_kind must be 'cpu' or 'cuda', got {device_kind!r}")
        import ray  # optional dependency: `pip install 'archlab[cluster]'`

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if runtime_env is None and address is None:
                runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
        resources = {"num_gpus": 1, "num_cpus": 1} if device_kind == "cuda" else {"num_cpus": 1}
        self._remote = ray.remote(max_retries=0, **resources)(_run_on_ray_worker)

    def submit(self, job_factory: JobFactory) -> Future[SandboxOutcome]:
        return self._remote.remote(job_factory).future()

    def shutdown(self) -> None:
        """Disconnect from (or stop) the Ray runtime this executor started; leave a caller's own alone."""
        if self._owns_ray:
            self._ray.shutdown()


def _run_on_ray_worker(job_factory: JobFactory) -> SandboxOutcome:
    """Inside the Ray task: the device is the GPU Ray assigned (a physical index), or the CPU."""
    import ray

    gpus = ray.get_gpu_ids()
    device = f"cuda:{int(gpus[0])}" if gpus else "cpu"
    job = job_factory(device)
    if job.device != device:
        raise ValueError(f"the job factory was given device {device!r} but built a job for {job.device!r}")
    return run_sandboxed(job)
