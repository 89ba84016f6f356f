"""What a sandboxed job is and what comes back from it.

A job is a command (normally `python -m evaluator.worker SPEC`) run in a fresh,
isolated process that may write only inside `work_dir`. The sandbox knows nothing
of candidates, tasks or metrics: it runs a command under limits and reports how it ended.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job. Memory covers the whole process tree where cgroups allow."""

    wall_seconds: float = 120.0
    memory_bytes: int = 6 * 2**30
    max_processes: int = 512          # threads count too (torch starts a pool per core)
    max_file_bytes: int = 256 * 2**20
    cpu_seconds: int | None = None    # defaults to a multiple of wall_seconds
    output_bytes: int = 256 * 2**10   # stdout and stderr are each truncated to this
    gpu_memory_fraction: float | None = None  # on CUDA: the worker caps itself to this share


@dataclass(frozen=True)
class SandboxJob:
    argv: list[str]
    work_dir: Path
    limits: Limits = field(default_factory=Limits)
    readonly_paths: tuple[Path, ...] = ()   # code the job needs to read (the project, the Python installation)
    env: dict[str, str] = field(default_factory=dict)  # added to the allowlisted environment
    device: str = "cpu"                     # "cpu" or "cuda:N": one device per worker
    pass_fds: tuple[int, ...] = ()          # descriptors the job inherits (e.g. a progress pipe); no others


@dataclass
class SandboxOutcome:
    """How the job ended. `timed_out` and `memory_exceeded` are decided by the sandbox, not the job."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    memory_exceeded: bool
    wall_seconds: float
    stdout_path: Path
    stderr_path: Path
    stdout_tail: str
    stderr_tail: str
    output_truncated: bool
    isolation: str          # which isolation was active, e.g. "bubblewrap+cgroup+rlimits"
    started_at: float = 0.0  # time.time() when the process was spawned
    stopped: bool = False    # killed because the orchestrator asked (e.g. Ctrl-C), not the job's fault
