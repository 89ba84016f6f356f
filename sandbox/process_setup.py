"""What every job process gets, with or without bubblewrap: its environment, rlimits, session and cgroup.

The environment is built from an allowlist, so API keys and credentials of the orchestrator never
reach a job. The rlimits and the move into the job's cgroup happen in the forked child before it
executes anything (`preexec_fn`), so no instruction of the job ever runs unconstrained.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

from sandbox.job import Limits, SandboxJob

MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"
OPEN_FILES = 256
CPU_GRACE_SECONDS = 30
PASSED_THROUGH = ("LD_LIBRARY_PATH",)  # where CUDA/MKL libraries live on module-based clusters; no secrets
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PR_SET_PDEATHSIG = 1

Rlimits = list[tuple[int, tuple[int, int]]]


def available_cpus() -> int:
    return len(os.sched_getaffinity(0))


def cuda_index(device: str) -> int | None:
    """`cuda:N` -> N, `cpu` -> None; anything else is a caller's mistake."""
    if device == "cpu":
        return None
    kind, _, index = device.partition(":")
    if kind != "cuda" or not index.isdigit():
        raise ValueError(f"device must be 'cpu' or 'cuda:N' (e.g. 'cuda:0'), got {device!r}")
    return int(index)


def job_environment(job: SandboxJob, parent_environment: dict[str, str], cpus: int) -> dict[str, str]:
    """The job's whole environment: fixed allowlisted values, then the job's own `env` on top."""
    gpu = cuda_index(job.device)
    environment = {
        "PATH": MINIMAL_PATH,
        "HOME": str(job.work_dir),
        "TMPDIR": str(job.work_dir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # a job killed on timeout still leaves its last lines in the log
        "PYTHONNOUSERSITE": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu),
        **{name: str(cpus) for name in THREAD_COUNT_VARIABLES},
        **{name: parent_environment[name] for name in PASSED_THROUGH if name in parent_environment},
    }
    for key, value in job.env.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key or "\0" in key + value:
            raise ValueError(f"job env entries must be str -> str without '=' or NUL in the name; got {key!r}")
    environment.update(job.env)
    return environment


def resource_limits(limits: Limits, device: str, cpus: int, processes_of_user: int) -> Rlimits:
    """(resource, (soft, hard)) pairs for `setrlimit`.

    RLIMIT_AS is left out on CUDA, where the driver reserves huge address ranges; the cgroup and
    the worker's GPU memory fraction bound memory there. RLIMIT_NPROC counts every process of the
    user, so the user's current count is added (root ignores it anyway; the pids cgroup is the guard).
    """
    cpu_seconds = limits.cpu_seconds or int(limits.wall_seconds * cpus) + CPU_GRACE_SECONDS
    processes = limits.max_processes + processes_of_user
    chosen: Rlimits = [
        (resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5)),  # SIGXCPU first, SIGKILL 5 s later
        (resource.RLIMIT_NPROC, (processes, processes)),
        (resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES)),
    ]
    if cuda_index(device) is None:
        chosen.append((resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)))
    return [(which, _within_hard_limit(which, soft, hard)) for which, (soft, hard) in chosen]


def _within_hard_limit(which: int, soft: int, hard: int) -> tuple[int, int]:
    """An unprivileged user cannot raise a hard limit; asking for less is always allowed."""
    _, current_hard = resource.getrlimit(which)
    if current_hard == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current_hard), min(hard, current_hard)


def processes_of_current_user(proc: Path = Path("/proc")) -> int:
    """Threads owned by this real uid: what RLIMIT_NPROC counts. Zero for root, which it ignores."""
    uid = os.getuid()
    if uid == 0:
        return 0
    count = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # the process ended while we looked
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            count += int(fields.get("Threads", "1"))
    return count


def make_preexec(cgroup_procs_files: list[str], rlimits: Rlimits) -> Callable[[], None]:
    """The function run in the forked child before exec: own session, die with us, cgroup, rlimits.

    Everything it needs is computed here, in the parent, so the child only makes system calls.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    orchestrator = os.getpid()

    def enter_sandbox() -> None:
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the orchestrator dying takes the job with it
        if os.getppid() != orchestrator:
            os._exit(127)  # the orchestrator died before the line above took effect
        pid = str(os.getpid()).encode()
        for procs in cgroup_procs_files:
            descriptor = os.open(procs, os.O_WRONLY)
            try:
                os.write(descriptor, pid)
            finally:
                os.close(descriptor)
        for which, limit in rlimits:
            resource.setrlimit(which, limit)

    return enter_sandbox
