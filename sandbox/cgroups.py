"""One cgroup (v1: pids and memory) per job: the real fork-bomb guard and the whole-tree memory limit.

rlimits act per process, and root ignores RLIMIT_NPROC altogether, so only a cgroup bounds what
a job *and its children* may take. Each job's cgroup is created below the orchestrator's own
cgroup (so it can never escape limits set on the orchestrator), the job is moved in before it
executes anything, and the cgroup is emptied and removed when the job ends. Its member list is
also the one reliable way to find every process of a job, including those that left its session.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("pids", "memory")
KILL_DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class CgroupParents:
    """Where job cgroups can be created, per controller (None where not available), and why not."""

    pids: Path | None
    memory: Path | None
    problems: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.pids is not None or self.memory is not None


def find_cgroup_parents(proc_self: Path = Path("/proc/self")) -> CgroupParents:
    """Locate this process's own v1 cgroups and check that a child cgroup can be created in each."""
    try:
        membership = _own_cgroup_paths((proc_self / "cgroup").read_text())
        mounts = _v1_mounts((proc_self / "mountinfo").read_text())
    except OSError as error:
        return CgroupParents(None, None, (f"cannot read this process's cgroups: {error}",))
    found: dict[str, Path | None] = {}
    problems: list[str] = []
    for controller in CONTROLLERS:
        if controller not in membership or controller not in mounts:
            found[controller] = None
            problems.append(f"no cgroup v1 `{controller}` hierarchy is mounted (cgroup v2 is not supported)")
            continue
        mount_point, mount_root = mounts[controller]
        own = membership[controller]
        relative = own[len(mount_root):] if own.startswith(mount_root) else own
        parent = mount_point / relative.lstrip("/")
        problem = _probe_writable(parent)
        found[controller] = None if problem else parent
        if problem:
            problems.append(f"cgroup `{controller}` at {parent} is not usable: {problem}")
    return CgroupParents(found["pids"], found["memory"], tuple(problems))


def _own_cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """/proc/self/cgroup lines look like `4:memory:/some/path` (several controllers may share a line)."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _v1_mounts(mountinfo: str) -> dict[str, tuple[Path, str]]:
    """controller -> (mount point, root of the hierarchy seen at that mount)."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) < 3 or tail[0] != "cgroup":
            continue
        for option in tail[2].split(","):
            if option in CONTROLLERS:
                mounts.setdefault(option, (Path(fields[4]), fields[3]))
    return mounts


def _probe_writable(parent: Path) -> str:
    """'' when a child cgroup can be created and removed here, else what went wrong."""
    probe = parent / f"archlab-probe-{uuid.uuid4().hex[:12]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return error.strerror or str(error)
    return ""


class JobCgroup:
    """The cgroups of one job; `procs_files` are written by the job itself right before it executes."""

    def __init__(self, directories: dict[str, Path]):
        self._directories = directories

    @classmethod
    def create(cls, parents: CgroupParents, max_processes: int, memory_bytes: int) -> "JobCgroup":
        name = f"archlab-{uuid.uuid4().hex}"
        directories: dict[str, Path] = {}
        group = cls(directories)
        try:
            if parents.pids is not None:
                directories["pids"] = parents.pids / name
                directories["pids"].mkdir()
                _write(directories["pids"] / "pids.max", max_processes)
            if parents.memory is not None:
                directories["memory"] = parents.memory / name
                directories["memory"].mkdir()
                _write(directories["memory"] / "memory.limit_in_bytes", memory_bytes)
                swap_limit = directories["memory"] / "memory.memsw.limit_in_bytes"
                if swap_limit.exists():  # only with swap accounting; must come after the memory limit
                    _write(swap_limit, memory_bytes)
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self._directories.values()]

    def memory_exceeded(self) -> bool:
        """True when the kernel's OOM killer acted in this job's memory cgroup."""
        directory = self._directories.get("memory")
        if directory is None:
            return False
        for line in (directory / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
        return int((directory / "memory.failcnt").read_text()) > 0  # kernels before 4.13 lack `oom_kill`

    def members(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files:
            try:
                pids.update(int(pid) for pid in Path(procs).read_text().split())
            except FileNotFoundError:
                continue
        return sorted(pids)

    def kill_all(self, deadline_seconds: float = KILL_DEADLINE_SECONDS) -> bool:
        """SIGKILL every member until none is left (a fork bomb keeps refilling it for a moment)."""
        deadline = time.monotonic() + deadline_seconds
        while True:
            members = self.members()
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)  # killed processes leave the cgroup once the kernel has torn them down

    def remove(self) -> None:
        """Remove the job's cgroups; a cgroup still holding a dying process is retried briefly."""
        for directory in self._directories.values():
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))
