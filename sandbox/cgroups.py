"""One cgroup per job (v1: pids and memory hierarchies; v2: one unified cgroup): the real fork-bomb
guard and the whole-tree memory limit.

rlimits act per process, and root ignores RLIMIT_NPROC altogether, so only a cgroup bounds what
a job *and its children* may take. Each job's cgroup is created below the orchestrator's own
cgroup (so it can never escape limits set on the orchestrator), the job is moved in before it
executes anything, and the cgroup is emptied and removed when the job ends. Its member list is
also the one reliable way to find every process of a job, including those that left its session.

Which version: v2 when it gives job cgroups both controllers (one directory per job, an atomic
`cgroup.kill`, OOM events that say whether an allocation failed); else v1 where any of its
controllers works (hybrid machines keep pids and memory on v1); else v2 with what it has, which
at least tracks and kills the whole job. A job running as root without bubblewrap can still write
its pid into another cgroup and leave its own: with cgroups alone, a root job is not contained.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sandbox import cgroups_v2

CONTROLLERS = ("pids", "memory")
KILL_DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class ControllerStatus:
    """One controller of one cgroup version on this machine, for `archlab doctor`."""

    version: int
    controller: str
    usable: bool
    chosen: bool
    detail: str


@dataclass(frozen=True)
class CgroupParents:
    """Where job cgroups are created, per controller (None where not available), and why not.

    With v2 (`unified` set) there is one parent, and `pids`/`memory` name it where that controller
    is enabled for its children. `survey` lists every version and controller probed.
    """

    pids: Path | None
    memory: Path | None
    problems: tuple[str, ...] = ()
    unified: Path | None = None
    survey: tuple[ControllerStatus, ...] = ()

    @property
    def available(self) -> bool:
        return self.pids is not None or self.memory is not None or self.unified is not None

    @property
    def version(self) -> int:
        """2 or 1 for the version job cgroups use, 0 when none is used."""
        return 2 if self.unified is not None else int(self.available)


def find_cgroup_parents(proc_self: Path = Path("/proc/self")) -> CgroupParents:
    """Probe v1 and v2 for this process and choose the version job cgroups use (see the module docstring)."""
    v1, v1_mounted = _probe_v1(proc_self)
    v2 = cgroups_v2.probe_v2(CONTROLLERS, proc_self, frozenset(v1_mounted))
    use_v2 = v2.parent is not None and (set(v2.enabled) == set(CONTROLLERS)
                                        or not any(path for path, _ in v1.values()))
    survey = tuple(
        [ControllerStatus(1, name, path is not None, path is not None and not use_v2,
                          f"at {path}" if path else why) for name, (path, why) in v1.items()]
        + [ControllerStatus(2, name, name in v2.enabled, name in v2.enabled and use_v2,
                            f"at {v2.parent}" if name in v2.enabled else v2.problems[name]) for name in CONTROLLERS])
    chosen = [status for status in survey if status.version == (2 if use_v2 else 1)]
    problems = tuple(f"cgroup v{status.version} `{status.controller}`: {status.detail}"
                     for status in chosen if not status.usable)
    if use_v2:
        enabled = {name: v2.parent if name in v2.enabled else None for name in CONTROLLERS}
        return CgroupParents(enabled["pids"], enabled["memory"], problems, v2.parent, survey)
    return CgroupParents(v1["pids"][0], v1["memory"][0], problems, None, survey)


def _probe_v1(proc_self: Path) -> tuple[dict[str, tuple[Path | None, str]], set[str]]:
    """controller -> (parent for job cgroups or None, why not); and the controllers mounted as v1."""
    try:
        membership = _own_cgroup_paths((proc_self / "cgroup").read_text())
        mounts = _v1_mounts((proc_self / "mountinfo").read_text())
    except OSError as error:
        return {name: (None, f"cannot read this process's cgroups: {error}") for name in CONTROLLERS}, set()
    found: dict[str, tuple[Path | None, str]] = {}
    for controller in CONTROLLERS:
        if controller not in membership or controller not in mounts:
            found[controller] = (None, "no cgroup v1 hierarchy with it is mounted")
            continue
        mount_point, mount_root = mounts[controller]
        own = membership[controller]
        relative = own[len(mount_root):] if own.startswith(mount_root) else own
        parent = mount_point / relative.lstrip("/")
        problem = cgroups_v2.probe_writable(parent)
        found[controller] = (None, f"{parent} is not usable: {problem}") if problem else (parent, "")
    return found, set(mounts)


def _own_cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """/proc/self/cgroup lines look like `4:memory:/some/path` (several controllers may share a line)."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller:  # the v2 line `0::/path` names none
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


class JobCgroup:
    """The cgroups of one job; `procs_files` are written by the job itself right before it executes.

    v1: one directory per controller; v2: one directory (key "unified") with the enabled controllers.
    """

    def __init__(self, directories: dict[str, Path]):
        self._directories = directories

    @classmethod
    def create(cls, parents: CgroupParents, max_processes: int, memory_bytes: int) -> "JobCgroup":
        name = f"archlab-{uuid.uuid4().hex}"
        directories: dict[str, Path] = {}
        group = cls(directories)
        try:
            if parents.unified is not None:
                directory = directories["unified"] = parents.unified / name
                directory.mkdir()
                if parents.pids is not None:
                    _write(directory / "pids.max", max_processes)
                if parents.memory is not None:
                    _write(directory / "memory.max", memory_bytes)
                    if (directory / "memory.swap.max").exists():  # only with swap accounting
                        _write(directory / "memory.swap.max", 0)
                return group
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
        """True when the job hit its memory limit: an allocation failed there or the OOM killer acted."""
        unified = self._directories.get("unified")
        if unified is not None:
            return (unified / "memory.events").exists() and cgroups_v2.memory_exceeded(unified)
        directory = self._directories.get("memory")
        if directory is None:
            return False
        for line in (directory / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
        return int((directory / "memory.failcnt").read_text()) > 0  # kernels before 4.13 lack `oom_kill`

    def members(self) -> list[int]:
        """Every process in the job's cgroups, including cgroups a (root) job created below them."""
        pids: set[int] = set()
        for directory in self._directories.values():
            for procs in directory.rglob("cgroup.procs"):
                try:
                    pids.update(int(pid) for pid in procs.read_text().split())
                except FileNotFoundError:
                    continue
        return sorted(pids)

    def kill_all(self, deadline_seconds: float = KILL_DEADLINE_SECONDS) -> bool:
        """SIGKILL every member until none is left (a fork bomb keeps refilling it for a moment).

        v2's `cgroup.kill` kills the whole subtree at once, forks in flight included; elsewhere
        each member is signalled.
        """
        deadline = time.monotonic() + deadline_seconds
        unified = self._directories.get("unified")
        while True:
            members = self.members()
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            if unified is None or not cgroups_v2.kill_members(unified):
                for pid in members:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.01)  # killed processes leave the cgroup once the kernel has torn them down

    def remove(self) -> None:
        """Remove the job's cgroups, deepest first; a cgroup still holding a dying process is retried briefly."""
        for directory in self._directories.values():
            below = sorted((path for path in directory.rglob("*") if path.is_dir()),
                           key=lambda path: len(path.parts), reverse=True)
            for path in [*below, directory]:
                for _ in range(100):
                    try:
                        path.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))
