"""One driver per run: an exclusive `flock` on `RUN/driver.lock` for as long as a driver lives.

The lock belongs to the open file, so the kernel drops it when the process ends however it ends
(kill -9 included): there is no stale lock to clean up. The file records who holds it (host, pid,
command, start time) only so that a refused second driver can say whom it waits for. Readers
(`status`, `ls`, `show`, `review`) never take it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archlab.errors import UsageError

LOCK_FILE = "driver.lock"
# `archlab runs` probes the lock for an instant; a driver starting at that instant tries again.
ACQUIRE_TRIES, ACQUIRE_PAUSE_S = 10, 0.05


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    command: str
    since: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} (`{self.command}`, since {started})"


def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text())
        return Holder(host=str(data["host"]), pid=int(data["pid"]), command=str(data["command"]),
                      since=float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no driver yet, or one that is writing the file this very moment


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise


def _acquire(fd: int) -> bool:
    for _ in range(ACQUIRE_TRIES):
        if _try_lock(fd, fcntl.LOCK_EX):
            return True
        time.sleep(ACQUIRE_PAUSE_S)
    return False


@contextmanager
def hold_run(run_dir: Path, run: str) -> Iterator[None]:
    """Hold the run for this process, or exit 2 naming the process that drives it already."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UsageError(f"cannot drive run {run}: {run_dir} is not writable ({error.strerror}); a run's "
                         "directory must be writable to run or resume it (status, ls and show only read)") from error
    try:
        if not _acquire(fd):
            holder = _read_holder(path)
            who = holder.describe() if holder else "another process (it is starting)"
            raise UsageError(f"run {run} is already being driven by {who}; one driver per run: wait for it to "
                             f"finish or stop it (`kill {holder.pid if holder else 'PID'}`), then "
                             f"`archlab resume {run_dir}`. `archlab status`/`review` work meanwhile")
        record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(),
                  "command": " ".join(["archlab", *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, naming the last driver


def driver_of(run_dir: Path) -> Holder | None:
    """The process driving this run now, or None. Works on read-only storage (no lock file: no driver)."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            return None  # nobody holds it (our shared lock ends with the close below)
        return _read_holder(path) or Holder(host="?", pid=0, command="?", since=0.0)
    finally:
        os.close(fd)
