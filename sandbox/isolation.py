"""Which isolation a job gets here, and the launch plan (command, environment, pre-exec step) that applies it.

Layers, strongest first, each used where it works on this machine:

- bubblewrap: private network, pid, ipc, uts and cgroup namespaces (and a user namespace where
  bubblewrap can make one), all capabilities dropped, the filesystem read-only except the job's
  work directory, a private /tmp; it dies with its parent (see `bubblewrap.py`).
- cgroups (v2, or v1 on hybrid machines; see `cgroups.py`): a fresh cgroup per job bounds the
  number of processes and threads (pids) and the memory of the whole process tree; its members
  are killed as a whole when the job ends.
- always: rlimits (address space except on CUDA, processes, file size, CPU time, no core dumps,
  256 open files), an own session and process group killed as a whole, death with the
  orchestrator, an allowlisted environment, the work directory as cwd and HOME, and no inherited
  descriptor but the standard streams and the job's `pass_fds` (the evaluator's progress pipe).

The evaluator's worker adds two layers of its own once it is set up, before candidate code loads:
a Python audit hook (the runtime guard) and, where pyseccomp and libseccomp are installed, a
seccomp filter (`syscall_filter.py`) that refuses network sockets, exec, fork and signals to other
processes at the kernel level. `isolation_report` lists every layer, active or not, and why.

The fallback, where bubblewrap is missing or broken, does NOT cover:
- network: a job can open sockets, to the internet and to services on localhost (the worker's
  seccomp filter, where active, refuses them to candidate code);
- filesystem: a job can read and write whatever the orchestrator's user can (RLIMIT_FSIZE only
  caps each file's size), including other runs, the archive and credentials files; the seccomp
  filter does not change this;
- processes: a job sees every process of the machine, can read the environment of those of the
  same user (/proc/PID/environ: the orchestrator's API keys, a file read that seccomp allows) and
  can signal them (unless the seccomp filter is active);
- a job running as root can write its pid into another cgroup and leave its own.
Without writable cgroups it does not cover either:
- whole-tree memory: RLIMIT_AS caps each process, not the sum over a job's children;
- fork bombs when running as root, who is exempt from RLIMIT_NPROC (the seccomp filter, where
  active, refuses fork to candidate code);
- children that leave the job's session (`setsid`): they survive the kill on timeout.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sandbox.bubblewrap import BwrapProbe, bwrap_argv, probe_bwrap
from sandbox.cgroups import CgroupParents, JobCgroup, find_cgroup_parents
from sandbox.job import SandboxJob
from sandbox.process_setup import (
    available_cpus,
    job_environment,
    make_preexec,
    processes_of_current_user,
    resource_limits,
)
from sandbox.syscall_filter import syscall_filter_support

FALLBACK_GAPS = (
    "no network isolation: a job can open sockets, including to services on localhost",
    "no filesystem isolation: a job can read and write whatever the orchestrator's user can "
    "(RLIMIT_FSIZE only caps file sizes)",
    "no process isolation: a job sees every process, can read the environment of those of the same user "
    "(/proc/PID/environ, including the orchestrator's API keys) and can signal them",
)
# The same gaps where the worker's seccomp filter works here: what it and the runtime guard narrow down.
FALLBACK_GAPS_WITH_SECCOMP = (
    "no network namespace: the worker's seccomp filter refuses network sockets once the worker is armed, "
    "before candidate code loads",
    "no filesystem isolation: the worker's runtime guard refuses writes, and reads outside the Python "
    "installation and the project, once armed; a job that is not the worker can read and write what the "
    "orchestrator's user can",
    "no process isolation: a job sees every process; the seccomp filter refuses signals to them and the "
    "runtime guard refuses reading /proc/PID/environ, once armed",
)
NO_CGROUP_GAPS = (
    "no whole-tree memory limit: RLIMIT_AS caps each process, not the sum over its children",
    "no fork-bomb guard for root (root ignores RLIMIT_NPROC)",
    "children that leave the job's session (setsid) survive the kill on timeout",
)


class SandboxError(RuntimeError):
    """The sandbox could not do its job (e.g. processes of a job survived SIGKILL)."""


@dataclass(frozen=True)
class LayerStatus:
    """One layer of the defence, whether it is active here, and what it does or why it is not active."""

    name: str
    active: bool
    detail: str


@dataclass(frozen=True)
class IsolationReport:
    level: str          # "strong" (bubblewrap and cgroups), "partial" (one of them) or "weak" (rlimits only)
    layers: list[str]
    missing: list[str]
    notes: list[str]
    every_layer: list[LayerStatus] = field(default_factory=list)  # all layers, sandbox and worker, for `doctor`


@dataclass(frozen=True)
class LaunchPlan:
    """Everything `subprocess.Popen` needs for one job, plus how to end it and read its fate."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None]
    cgroup: JobCgroup | None
    under_bwrap: bool

    def terminate(self, process: subprocess.Popen) -> None:
        """Kill whatever is left of the job: its process group, then every member of its cgroup.

        Called before the first process is reaped, so its pid still names the job's group.
        """
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole group is gone already
        process.wait()
        if self.cgroup is not None and not self.cgroup.kill_all():
            raise SandboxError(f"processes of the job survived SIGKILL: {self.cgroup.members()}")

    def memory_exceeded(self) -> bool:
        return self.cgroup is not None and self.cgroup.memory_exceeded()

    def exit_status(self, returncode: int) -> tuple[int | None, int | None]:
        """(exit code, signal). bubblewrap reports a job killed by signal N as exit code 128 + N."""
        if returncode < 0:
            return None, -returncode
        if self.under_bwrap and 128 < returncode < 128 + signal.NSIG:
            return None, returncode - 128
        return returncode, None


class Isolation:
    """The isolation policy: which layers to use. Probed once, when constructed; then immutable.

    `prefer_bwrap=False` or `use_cgroups=False` force the weaker layers (tests, or a machine where
    a layer misbehaves); a layer asked for but not working is reported in `report().missing`.
    """

    def __init__(self, *, prefer_bwrap: bool = True, use_cgroups: bool = True, bwrap_program: str = "bwrap"):
        turned_off = "turned off by the policy"
        self.bwrap: BwrapProbe = probe_bwrap(bwrap_program) if prefer_bwrap else BwrapProbe(None, turned_off)
        self.cgroups: CgroupParents = find_cgroup_parents() if use_cgroups else CgroupParents(None, None, (turned_off,))

    @property
    def name(self) -> str:
        """Short label recorded with every outcome, e.g. "bubblewrap+cgroup+rlimits"."""
        layers = (["bubblewrap"] if self.bwrap.program else []) + (["cgroup"] if self.cgroups.available else [])
        return "+".join([*layers, "rlimits"])

    def report(self) -> IsolationReport:
        layers, missing, notes = [], [], []
        every_layer = self.every_layer()
        seccomp_active = any(layer.name == "seccomp syscall filter" and layer.active for layer in every_layer)
        if self.bwrap.program:
            layers.append("bubblewrap")
        else:
            missing.append("bubblewrap")
            notes.append(f"bubblewrap: {self.bwrap.problem}")
            notes.extend(FALLBACK_GAPS_WITH_SECCOMP if seccomp_active else FALLBACK_GAPS)
        for controller, parent in (("pids", self.cgroups.pids), ("memory", self.cgroups.memory)):
            (layers if parent else missing).append(f"cgroup-{controller}")
        notes.extend(f"cgroups: {problem}" for problem in self.cgroups.problems)
        if not self.cgroups.available:
            notes.extend(NO_CGROUP_GAPS)
        layers += ["rlimits", "own-session", "env-allowlist"]
        strong_layers = int(bool(self.bwrap.program)) + int(self.cgroups.available)
        level = ("weak", "partial", "strong")[strong_layers]
        return IsolationReport(level=level, layers=layers, missing=missing, notes=notes, every_layer=every_layer)

    def every_layer(self) -> list[LayerStatus]:
        """Every layer, from the static screen to the rlimits, active or not, and why. Probes seccomp."""
        guard_active = sys.version_info >= (3, 8)
        seccomp = syscall_filter_support()
        return [
            LayerStatus("static screen", True, "candidate source is screened (AST, never executed) "
                        "in the orchestrator before it runs"),
            LayerStatus("runtime guard (audit hook)", guard_active,
                        "the worker installs a sys.addaudithook guard before candidate code loads"
                        if guard_active else f"Python {sys.version.split()[0]} has no audit hooks (3.8+)"),
            LayerStatus("seccomp syscall filter", seccomp.active, seccomp.detail),
            LayerStatus("bubblewrap", self.bwrap.program is not None,
                        f"namespaces and a read-only filesystem via {self.bwrap.program}"
                        if self.bwrap.program else self.bwrap.problem),
            *self._cgroup_layers(),
            LayerStatus("rlimits", True, "address space (not on CUDA), processes, file size, CPU time, "
                        "core dumps, open files"),
            LayerStatus("session and environment", True, "own session killed as a whole, death with the "
                        "orchestrator, allowlisted environment"),
        ]

    def _cgroup_layers(self) -> list[LayerStatus]:
        if not self.cgroups.survey:
            reason = "; ".join(self.cgroups.problems) or "not probed"
            return [LayerStatus(f"cgroup v{version} {name}", False, reason)
                    for version in (1, 2) for name in ("pids", "memory")]
        statuses = []
        for status in self.cgroups.survey:
            detail = status.detail
            if status.usable and not status.chosen:
                detail = f"usable ({detail}) but not used: jobs use cgroup v{self.cgroups.version}"
            statuses.append(LayerStatus(f"cgroup v{status.version} {status.controller}", status.chosen, detail))
        if self.cgroups.version == 2 and not (self.cgroups.pids or self.cgroups.memory):
            statuses.append(LayerStatus("cgroup v2 job tracking", True, f"job cgroups in {self.cgroups.unified} "
                                        "find and kill every process of a job, without limits"))
        return statuses

    @contextmanager
    def launch(self, job: SandboxJob) -> Iterator[LaunchPlan]:
        """A plan for one job; its cgroup exists for the duration of the block and is removed after."""
        cgroup = (JobCgroup.create(self.cgroups, job.limits.max_processes, job.limits.memory_bytes)
                  if self.cgroups.available else None)
        try:
            cpus = available_cpus()
            rlimits = resource_limits(job.limits, job.device, cpus, processes_of_current_user())
            yield LaunchPlan(
                argv=bwrap_argv(self.bwrap.program, job) if self.bwrap.program else list(job.argv),
                env=job_environment(job, dict(os.environ), cpus),
                cwd=str(job.work_dir),
                preexec=make_preexec(cgroup.procs_files if cgroup else [], rlimits),
                cgroup=cgroup,
                under_bwrap=self.bwrap.program is not None,
            )
        finally:
            if cgroup is not None:
                cgroup.kill_all()
                cgroup.remove()


def isolation_report(isolation: Isolation | None = None) -> IsolationReport:
    """What `archlab doctor` shows: the layers active on this machine, what is missing, and why."""
    return (isolation or Isolation()).report()
