"""cgroup v2 (the unified hierarchy): find, and prepare, a cgroup whose children get pids and memory.

Job cgroups are created below this process's own v2 cgroup, so they never escape limits set on the
orchestrator. v2 enables a controller for children by writing `+pids +memory` to the parent's
`cgroup.subtree_control`, and only for controllers listed in its own `cgroup.controllers` (i.e.
delegated by its parent). The "no internal processes" rule forbids that while the parent itself
holds processes (the root cgroup excepted), so, like a container runtime's init or a systemd unit
with `Delegate=yes`, the orchestrator moves itself into a leaf child `archlab-orchestrator` when it
is alone in its cgroup; a later probe from that leaf uses its parent again. When other processes
share the cgroup (an ssh session's scope, say), nothing is moved and the reason says how to give
archlab a cgroup of its own. Even without controllers, a v2 job cgroup still finds and kills every
process of a job (`cgroup.kill`), including those that left its session.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

ORCHESTRATOR_LEAF = "archlab-orchestrator"
OWN_CGROUP_HINT = "start archlab in a cgroup of its own, e.g. `systemd-run --scope -p Delegate=yes archlab ...`"


@dataclass(frozen=True)
class V2Probe:
    """`parent`: where job cgroups go (None when v2 is unusable); `enabled`: wanted controllers they get."""

    parent: Path | None
    enabled: tuple[str, ...]
    problems: dict[str, str]   # controller (or "cgroup2" for the whole hierarchy) -> why not usable


def probe_v2(wanted: tuple[str, ...], proc_self: Path = Path("/proc/self"),
             v1_controllers: frozenset[str] = frozenset()) -> V2Probe:
    """Locate this process's v2 cgroup, enable `wanted` controllers for its children where allowed.

    `v1_controllers` (those mounted as v1 hierarchies) only sharpen the reasons: a controller
    serves one hierarchy at a time, so on a hybrid machine they are missing from v2.
    """
    try:
        own = own_v2_path((proc_self / "cgroup").read_text())
        mount = v2_mount((proc_self / "mountinfo").read_text())
    except OSError as error:
        return _unusable(wanted, f"cannot read this process's cgroups: {error}")
    if own is None:
        return _unusable(wanted, "this process is in no cgroup v2 (no `0::` line in /proc/self/cgroup)")
    if mount is None:
        return _unusable(wanted, "no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
    mount_point, mount_root = mount
    relative = own[len(mount_root):] if own.startswith(mount_root) else own
    base = mount_point / relative.lstrip("/")
    if base.name == ORCHESTRATOR_LEAF:
        base = base.parent  # this process moved itself into the leaf on an earlier probe
    problem = probe_writable(base)
    if problem:
        return _unusable(wanted, f"cannot create a cgroup in {base}: {problem}")
    delegated = set(_read_words(base / "cgroup.controllers"))
    problems = {name: _why_not_delegated(name, base, v1_controllers) for name in wanted if name not in delegated}
    offered = [name for name in wanted if name in delegated]
    problem = enable_for_children(base, offered)
    if problem:
        problems.update({name: problem for name in offered})
        offered = []
    return V2Probe(base, tuple(offered), problems)


def own_v2_path(proc_cgroup: str) -> str | None:
    """The path on the `0::/path` line of /proc/self/cgroup (None without one)."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].split(" ")[0]  # ` (deleted)` follows a removed cgroup
    return None


def v2_mount(mountinfo: str) -> tuple[Path, str] | None:
    """(mount point, root of the hierarchy seen there) of the first cgroup2 mount."""
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if tail and tail[0] == "cgroup2" and len(fields) >= 5:
            return Path(fields[4]), fields[3]
    return None


def enable_for_children(base: Path, controllers: list[str]) -> str:
    """'' once `controllers` are on in `base/cgroup.subtree_control`, else why they cannot be."""
    missing = [name for name in controllers if name not in _read_words(base / "cgroup.subtree_control")]
    if not missing:
        return ""
    request = " ".join(f"+{name}" for name in missing)
    try:
        (base / "cgroup.subtree_control").write_text(request)
        return ""
    except OSError as error:
        if error.errno != errno.EBUSY:
            return f"cannot enable them in {base}/cgroup.subtree_control: {error.strerror or error}"
    others = sorted(set(_read_words(base / "cgroup.procs")) - {str(os.getpid())})
    if others:
        return (f"{base} also holds other processes ({', '.join(others[:5])}), and cgroup v2 enables "
                f"controllers only for a cgroup without processes of its own; {OWN_CGROUP_HINT}")
    try:
        leaf = base / ORCHESTRATOR_LEAF
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (base / "cgroup.subtree_control").write_text(request)
    except OSError as error:
        return f"cannot move this process into {base / ORCHESTRATOR_LEAF} to free {base}: {error.strerror or error}"
    return ""


def _why_not_delegated(controller: str, base: Path, v1_controllers: frozenset[str]) -> str:
    if controller in v1_controllers:
        return (f"`{controller}` is attached to a cgroup v1 hierarchy (a hybrid setup), and a controller "
                "serves one hierarchy only; boot with systemd.unified_cgroup_hierarchy=1 for v2")
    return (f"`{controller}` is not delegated to {base} (missing from its cgroup.controllers: "
            f"the parent's cgroup.subtree_control lacks it); {OWN_CGROUP_HINT}")


def _unusable(wanted: tuple[str, ...], reason: str) -> V2Probe:
    return V2Probe(None, (), {"cgroup2": reason, **{name: reason for name in wanted}})


def _read_words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def probe_writable(parent: Path) -> str:
    """'' when a child cgroup can be created and removed in `parent`, else what went wrong."""
    probe = parent / f"archlab-probe-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return error.strerror or str(error)
    return ""


def kill_members(directory: Path) -> bool:
    """Ask the kernel to SIGKILL the cgroup's whole subtree at once; False where `cgroup.kill` is missing (< 5.14)."""
    kill_file = directory / "cgroup.kill"
    if not kill_file.exists():
        return False
    try:
        kill_file.write_text("1")
    except FileNotFoundError:
        pass  # removed meanwhile: nothing left to kill
    return True


def memory_exceeded(directory: Path) -> bool:
    """True when an allocation in the job failed at memory.max (`oom`) or the OOM killer acted (`oom_kill`)."""
    events = dict(line.split() for line in (directory / "memory.events").read_text().splitlines() if line.strip())
    return int(events.get("oom", 0)) > 0 or int(events.get("oom_kill", 0)) > 0
