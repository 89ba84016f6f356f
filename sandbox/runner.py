"""Run one job under the sandbox and report how it ended.

The wall limit is enforced here: on timeout the job's process group (and, with bubblewrap, its
pid namespace) and every member of its cgroup are killed, and no process of the job outlives
`run_sandboxed`. Whatever the job prints is captured, capped, and only ever treated as a log.
The job inherits stdin (/dev/null), stdout, stderr and `job.pass_fds`, no other descriptor.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

from sandbox.capture import OutputCapture
from sandbox.isolation import Isolation
from sandbox.job import SandboxJob, SandboxOutcome
from sandbox.process_setup import MINIMAL_PATH, cuda_index

STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
DRAIN_GRACE_SECONDS = 1.0
POLL_SECONDS = 0.01
STOP_CHECK_SECONDS = 0.25
EXITED, TIMED_OUT, STOPPED = "exited", "timed out", "stopped"


def run_sandboxed(job: SandboxJob, *, isolation: Isolation | None = None,
                  stop: threading.Event | None = None) -> SandboxOutcome:
    """Run `job.argv` isolated, within `job.limits`; block until it ended or was killed.

    Pass a long-lived `Isolation` to skip probing the machine on every call. Setting `stop`
    (e.g. on Ctrl-C in the orchestrator) kills the job at once; the outcome says `stopped`.
    """
    _check_job(job)
    isolation = isolation or Isolation()
    (job.work_dir / "tmp").mkdir(exist_ok=True)
    stdout_path, stderr_path = job.work_dir / STDOUT_LOG, job.work_dir / STDERR_LOG
    with isolation.launch(job) as plan:
        capture = OutputCapture([stdout_path, stderr_path], job.limits.output_bytes)
        try:
            started_at, start = time.time(), time.monotonic()
            process = subprocess.Popen(plan.argv, stdin=subprocess.DEVNULL, stdout=capture.writers[0],
                                       stderr=capture.writers[1], cwd=plan.cwd, env=plan.env,
                                       preexec_fn=plan.preexec, close_fds=True, pass_fds=job.pass_fds)
        except BaseException:
            capture.finish(grace_seconds=0)
            raise
        capture.close_writers()  # the job holds its own copies
        ended = TIMED_OUT
        try:
            ended = _wait_without_reaping(process.pid, job.limits.wall_seconds, stop)
        finally:  # also on KeyboardInterrupt: the job never outlives this call
            wall_seconds = time.monotonic() - start
            try:
                plan.terminate(process)
            finally:
                stdout, stderr = capture.finish(DRAIN_GRACE_SECONDS)
        memory_exceeded = plan.memory_exceeded()
    exit_code, signal_number = plan.exit_status(process.returncode)
    timed_out = ended == TIMED_OUT
    return SandboxOutcome(
        exit_code=None if timed_out else exit_code,
        signal=signal_number,
        timed_out=timed_out,
        memory_exceeded=memory_exceeded,
        wall_seconds=wall_seconds,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        stdout_tail=stdout.tail,
        stderr_tail=stderr.tail,
        output_truncated=stdout.truncated or stderr.truncated,
        isolation=isolation.name,
        started_at=started_at,
        stopped=ended == STOPPED,
    )


def _wait_without_reaping(pid: int, timeout: float, stop: threading.Event | None) -> str:
    """Wait until the job's first process exits, but leave it a zombie: EXITED, TIMED_OUT or STOPPED.

    Its pid (which is also the job's process group id) then cannot be reused by an unrelated
    process before the group is killed; `LaunchPlan.terminate` reaps it afterwards.
    """
    deadline = time.monotonic() + timeout
    try:
        descriptor = os.pidfd_open(pid)
    except OSError:  # kernels before 5.3: poll instead
        descriptor = None
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if stop is not None and stop.is_set():
                return STOPPED
            if descriptor is None:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return EXITED
                time.sleep(POLL_SECONDS)
            elif select.select([descriptor], [], [], min(remaining, STOP_CHECK_SECONDS))[0]:
                return EXITED
        return TIMED_OUT
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _check_job(job: SandboxJob) -> None:
    """Refuse a malformed job with a message that says what to fix, before anything is spawned."""
    if not job.argv or not all(isinstance(arg, str) for arg in job.argv):
        raise ValueError(f"job.argv must be a non-empty list of str, got {job.argv!r}")
    if not isinstance(job.work_dir, Path) or not job.work_dir.is_absolute() or not job.work_dir.is_dir():
        raise ValueError(f"job.work_dir must be an existing directory given as an absolute Path, got {job.work_dir!r}")
    if shutil.which(job.argv[0], path=MINIMAL_PATH) is None:
        raise ValueError(f"job.argv[0] {job.argv[0]!r} is not an executable; give an absolute path "
                         f"(e.g. sys.executable) or a program on {MINIMAL_PATH}")
    for path in job.readonly_paths:
        if not Path(path).is_absolute() or not Path(path).exists():
            raise ValueError(f"job.readonly_paths entry {str(path)!r} must be an existing absolute path")
    for descriptor in job.pass_fds:
        if not isinstance(descriptor, int) or isinstance(descriptor, bool) or descriptor < 3:
            raise ValueError(f"job.pass_fds entries must be open descriptors above 2 (0-2 are the job's standard "
                             f"streams), got {descriptor!r}")
        try:
            os.fstat(descriptor)
        except OSError:
            raise ValueError(f"job.pass_fds entry {descriptor} is not an open descriptor") from None
    limits = job.limits
    for name in ("wall_seconds", "memory_bytes", "max_processes", "max_file_bytes", "output_bytes"):
        if getattr(limits, name) <= 0:
            raise ValueError(f"limits.{name} must be positive, got {getattr(limits, name)!r}")
    if limits.cpu_seconds is not None and limits.cpu_seconds <= 0:
        raise ValueError(f"limits.cpu_seconds must be positive or None, got {limits.cpu_seconds!r}")
    cuda_index(job.device)  # raises with the accepted forms
