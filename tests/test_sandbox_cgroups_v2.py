"""cgroup v2: discovery and the choice of version on /proc-like files, and the kernel's v2 for real.

This machine is hybrid (pids and memory on v1, cgroup2 with only `hugetlb`), so the real-kernel
tests use the v2 parts that need no controller (membership, `cgroup.kill`) and `hugetlb` as the
stand-in controller for delegation and the "no internal processes" rule. Each skips with the
reason where this machine lacks what it needs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sandbox import cgroups_v2
from sandbox.cgroups import CgroupParents, JobCgroup, find_cgroup_parents
from sandbox.process_setup import make_preexec

REPO = Path(__file__).resolve().parents[1]
V1_LINES = "4:memory:/jobs\n8:pids:/jobs\n"
V1_MOUNTS = ("35 31 0:32 / {root}/memory rw - cgroup cgroup rw,memory\n"
             "39 31 0:36 / {root}/pids rw - cgroup cgroup rw,pids\n")


def fake_machine(tmp_path: Path, own: str, controllers: str, *, v1: bool = False, v2: bool = True) -> Path:
    """A /proc/self (cgroup, mountinfo) and a cgroup tree of plain directories and files; returns proc_self."""
    proc_self, root = tmp_path / "proc-self", tmp_path / "cgroupfs"
    proc_self.mkdir()
    cgroup_lines, mount_lines = "", ""
    if v1:
        cgroup_lines += V1_LINES
        mount_lines += V1_MOUNTS.format(root=root)
        for name in ("memory", "pids"):
            (root / name / "jobs").mkdir(parents=True)
    if v2:
        cgroup_lines += f"0::{own}\n"
        mount_lines += f"41 31 0:38 / {root / 'unified'} rw,relatime - cgroup2 cgroup2 rw\n"
        own_dir = root / "unified" / own.lstrip("/")
        own_dir.mkdir(parents=True)
        (own_dir / "cgroup.controllers").write_text(controllers + "\n")
        (own_dir / "cgroup.subtree_control").write_text("\n")
        (own_dir / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (proc_self / "cgroup").write_text(cgroup_lines)
    (proc_self / "mountinfo").write_text("22 1 8:1 / / rw - ext4 /dev/vda rw\n" + mount_lines)
    return proc_self


def test_v2_only_machine_uses_v2_and_enables_both_controllers(tmp_path):
    proc_self = fake_machine(tmp_path, "/system.slice/archlab.service", "cpu io memory pids")
    parents = find_cgroup_parents(proc_self)
    service = tmp_path / "cgroupfs/unified/system.slice/archlab.service"
    assert parents.version == 2 and parents.unified == service
    assert parents.pids == service and parents.memory == service and parents.problems == ()
    assert (service / "cgroup.subtree_control").read_text() == "+pids +memory"
    v1 = [status for status in parents.survey if status.version == 1]
    assert all(not status.usable and "no cgroup v1 hierarchy" in status.detail for status in v1)
    assert [(s.controller, s.chosen) for s in parents.survey if s.version == 2] == [("pids", True), ("memory", True)]


def test_hybrid_machine_keeps_v1_and_says_why_v2_lacks_the_controllers(tmp_path):
    proc_self = fake_machine(tmp_path, "/", "hugetlb", v1=True)
    parents = find_cgroup_parents(proc_self)
    assert parents.version == 1 and parents.unified is None
    assert parents.pids == tmp_path / "cgroupfs/pids/jobs" and parents.memory == tmp_path / "cgroupfs/memory/jobs"
    v2 = {status.controller: status for status in parents.survey if status.version == 2}
    assert not v2["pids"].usable and "attached to a cgroup v1 hierarchy" in v2["pids"].detail
    assert "systemd.unified_cgroup_hierarchy=1" in v2["memory"].detail


def test_undelegated_controllers_are_named_with_the_way_to_delegate_them(tmp_path):
    proc_self = fake_machine(tmp_path, "/user.slice/session-3.scope", "cpu memory")
    parents = find_cgroup_parents(proc_self)
    assert parents.version == 2 and parents.memory is not None and parents.pids is None
    (problem,) = parents.problems
    assert "`pids` is not delegated" in problem and "cgroup.controllers" in problem
    assert "systemd-run --scope -p Delegate=yes" in problem


def test_v2_without_any_controller_still_tracks_jobs_when_v1_is_missing(tmp_path):
    parents = find_cgroup_parents(fake_machine(tmp_path, "/box", ""))
    assert parents.available and parents.version == 2 and parents.pids is None and parents.memory is None


@pytest.mark.parametrize("spoil, reason", [
    (lambda proc_self: (proc_self / "cgroup").write_text("4:memory:/jobs\n"), "no `0::` line"),
    (lambda proc_self: (proc_self / "cgroup").write_text("0::/gone\n"), "cannot create a cgroup in"),
    (lambda proc_self: (proc_self / "mountinfo").write_text("22 1 8:1 / / rw - ext4 /dev/vda rw\n"),
     "no cgroup2 filesystem is mounted"),
], ids=["no-v2-line", "own-cgroup-missing", "not-mounted"])
def test_unusable_v2_says_why(tmp_path, spoil, reason):
    proc_self = fake_machine(tmp_path, "/box", "pids memory")
    spoil(proc_self)
    probe = cgroups_v2.probe_v2(("pids", "memory"), proc_self)
    assert probe.parent is None and probe.enabled == ()
    assert reason in probe.problems["pids"] and reason in probe.problems["cgroup2"]


def test_a_probe_from_the_orchestrator_leaf_uses_its_parent(tmp_path):
    proc_self = fake_machine(tmp_path, "/box", "pids memory")
    (proc_self / "cgroup").write_text(f"0::/box/{cgroups_v2.ORCHESTRATOR_LEAF}\n")
    assert cgroups_v2.probe_v2(("pids",), proc_self).parent == tmp_path / "cgroupfs/unified/box"


def test_v2_job_cgroup_gets_limits_and_reads_memory_events(tmp_path):
    parents = find_cgroup_parents(fake_machine(tmp_path, "/box", "pids memory"))
    group = JobCgroup.create(parents, max_processes=64, memory_bytes=2**30)
    (directory,) = [Path(procs).parent for procs in group.procs_files]
    assert directory.parent == parents.unified and directory.name.startswith("archlab-")
    assert (directory / "pids.max").read_text() == "64" and (directory / "memory.max").read_text() == str(2**30)
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 0\noom_kill 0\noom_group_kill 0\n")
    assert not group.memory_exceeded()  # hitting the limit and reclaiming is not an overrun
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert group.memory_exceeded()


# --- the kernel's cgroup v2 on this machine ---------------------------------------------------------

def real_v2_root() -> Path | None:
    mount = cgroups_v2.v2_mount(Path("/proc/self/mountinfo").read_text())
    return mount[0] if mount and os.access(mount[0] / "cgroup.procs", os.W_OK) else None


needs_writable_v2 = pytest.mark.skipif(real_v2_root() is None, reason="no writable cgroup2 mount here")


def test_this_machines_report_says_precisely_why_v2_is_or_is_not_used():
    parents = find_cgroup_parents()
    v2 = {status.controller: status for status in parents.survey if status.version == 2}
    on_v1 = {status.controller for status in parents.survey
             if status.version == 1 and "no cgroup v1 hierarchy" not in status.detail}
    assert set(v2) == {"pids", "memory"}
    for name, status in v2.items():
        assert status.usable or status.detail
        if name in on_v1:  # a hybrid machine like this one: the controller cannot be on v2 too
            assert not status.usable and "attached to a cgroup v1 hierarchy" in status.detail


@needs_writable_v2
def test_real_v2_job_cgroup_kills_a_child_that_left_the_session():
    probe = cgroups_v2.probe_v2((), v1_controllers=frozenset())
    if probe.parent is None:
        pytest.skip(f"cgroup v2 is not usable here: {probe.problems['cgroup2']}")
    group = JobCgroup.create(CgroupParents(None, None, (), probe.parent), max_processes=64, memory_bytes=2**30)
    try:
        job = subprocess.Popen(
            [sys.executable, "-c", "import subprocess, sys, time\n"
             "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
             "print(child.pid, flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True, preexec_fn=make_preexec(group.procs_files, []))
        escaped = int(job.stdout.readline())
        assert {job.pid, escaped} <= set(group.members())
        assert group.kill_all(deadline_seconds=5)
        job.wait(timeout=5)
        assert not Path(f"/proc/{escaped}").exists() or "Z" in Path(f"/proc/{escaped}/stat").read_text().split()[2]
        assert not group.memory_exceeded()  # no memory controller here: nothing to report
    finally:
        group.kill_all()
        group.remove()
    assert not any(Path(procs).parent.exists() for procs in group.procs_files)


PROBE_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from sandbox import cgroups_v2
first = cgroups_v2.probe_v2(("hugetlb",))
again = cgroups_v2.probe_v2(("hugetlb",))
print(json.dumps([[str(p.parent), list(p.enabled), p.problems] for p in (first, again)]
                 + [open("/proc/self/cgroup").read()]))
"""


@pytest.fixture
def hugetlb_delegated():
    """The v2 root's children get `hugetlb` (enabled for the test when needed, then put back)."""
    root = real_v2_root()
    if root is None or os.getuid() != 0 or "hugetlb" not in (root / "cgroup.controllers").read_text().split():
        pytest.skip("needs root and a writable cgroup2 root offering `hugetlb`")
    enabled_here = "hugetlb" not in (root / "cgroup.subtree_control").read_text().split()
    if enabled_here:
        (root / "cgroup.subtree_control").write_text("+hugetlb")
    scratch = root / f"archlab-test-{uuid.uuid4().hex[:12]}"
    scratch.mkdir()
    try:
        yield scratch
    finally:
        for leaf in sorted((path for path in scratch.rglob("*") if path.is_dir()),
                           key=lambda path: len(path.parts), reverse=True):
            leaf.rmdir()
        for _ in range(100):
            try:
                scratch.rmdir()
                break
            except OSError:
                time.sleep(0.01)
        if enabled_here:
            (root / "cgroup.subtree_control").write_text("-hugetlb")


def probe_from(cgroup: Path) -> list:
    process = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, str(REPO)], capture_output=True, text=True,
                             timeout=60, preexec_fn=make_preexec([str(cgroup / "cgroup.procs")], []))
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_alone_in_its_cgroup_the_orchestrator_moves_into_a_leaf_and_enables_the_controller(hugetlb_delegated):
    first, again, own = probe_from(hugetlb_delegated)
    assert first == [str(hugetlb_delegated), ["hugetlb"], {}]
    assert again == first  # the second probe, from the leaf, finds the same parent, already prepared
    assert own.strip().endswith(f"/{hugetlb_delegated.name}/{cgroups_v2.ORCHESTRATOR_LEAF}")
    assert "hugetlb" in (hugetlb_delegated / "cgroup.subtree_control").read_text().split()


def test_sharing_its_cgroup_the_orchestrator_moves_nothing_and_says_how_to_fix_it(hugetlb_delegated):
    neighbour = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 preexec_fn=make_preexec([str(hugetlb_delegated / "cgroup.procs")], []))
    try:
        (first, _, _) = probe_from(hugetlb_delegated)
    finally:
        neighbour.kill()
        neighbour.wait()
    parent, enabled, problems = first
    assert parent == str(hugetlb_delegated) and enabled == []
    assert "also holds other processes" in problems["hugetlb"] and str(neighbour.pid) in problems["hugetlb"]
    assert "Delegate=yes" in problems["hugetlb"]
    assert not (hugetlb_delegated / cgroups_v2.ORCHESTRATOR_LEAF).exists()
