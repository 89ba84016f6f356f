"""A seccomp filter the worker applies to itself once it is set up, before candidate code loads.

The policy allows every system call except those a model's forward pass never needs and an escape
does: network sockets (every family but AF_UNIX), running programs (execve), new processes (fork,
vfork, clone without CLONE_THREAD; threads keep working), signals to any other process, tracing
and reading other processes' memory, namespaces and mounts, and kernel interfaces that widen the
attack surface (bpf, perf events, keyrings, io_uring, module loading...). Refused calls fail with
EPERM, so Python raises PermissionError and the failure is reported with a traceback instead of
the worker dying silently. clone3 fails with ENOSYS: its flags lie in memory a filter cannot
read, and glibc then falls back to clone, which the filter can check. Syscalls of a foreign ABI
(32-bit `int 0x80`) fail with ENOSYS. The filter covers every thread (TSYNC), and sets
no_new_privs. It is the kernel-level backstop for what the static screen and the audit hook miss
(ctypes, native extensions): it applies with or without bubblewrap.

The compile profile (`allow_processes=True`, only when the worker compiles the model with
torch.compile: inductor and Triton run gcc and ptxas as child processes) lets execve, fork, vfork
and clone without CLONE_THREAD through and keeps every other rule; children inherit the filter, so
a compiler cannot open a network socket, trace, mount or signal other processes either. Which
programs may run is the audit hook's allowlist (evaluator/guard.py), which the kernel cannot check.
It needs the optional `pyseccomp` package and libseccomp.so.2. Where either is missing (GPU
machines often have only torch, numpy and the stdlib) or the kernel refuses, nothing is applied
and the returned status says why; it never raises.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLONE_THREAD = 0x00010000
PROBE_TIMEOUT_SECONDS = 30.0

REFUSED = (
    "execve", "execveat", "fork", "vfork",                               # programs and processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",           # other processes' memory
    "pidfd_getfd", "pidfd_send_signal", "process_madvise",
    "mount", "umount", "umount2", "pivot_root", "chroot", "setns", "unshare", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at",                            # namespaces, mounts, handles
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",             # io_uring bypasses seccomp
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "iopl", "ioperm", "lookup_dcookie",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "vhangup",
)
PROCESS_CALLS = frozenset({"execve", "execveat", "fork", "vfork"})  # allowed by the compile profile, with clone
# Calls added since Linux 5.1 have one number on every architecture; used where libseccomp is too
# old to know their names, since leaving clone3 or io_uring open would undo the rules above.
RECENT_SYSCALL_NUMBERS = {"pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
                          "io_uring_register": 427, "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438}
# Signal senders whose first argument is the target (thread) group: allowed only towards itself.
OWN_PROCESS_ONLY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open")


@dataclass(frozen=True)
class FilterStatus:
    """Whether the filter is in force (or, from `syscall_filter_support`, would be), and why not."""

    active: bool
    detail: str


def apply_syscall_filter(allow_processes: bool = False) -> FilterStatus:
    """Install the filter on this process and all its threads; irreversible. Never raises.

    `allow_processes`: the compile profile, where exec and new processes are allowed (see above)."""
    try:
        import pyseccomp as seccomp
    except Exception as error:  # ImportError, or RuntimeError/OSError when libseccomp.so is missing
        return FilterStatus(False, f"pyseccomp is unavailable ({type(error).__name__}: {error}); "
                                   "install `pyseccomp` and libseccomp2 for this layer")
    try:
        syscall_filter, skipped, all_threads = _build(seccomp, os.getpid(), allow_processes)
        syscall_filter.load()
    except Exception as error:  # the kernel or libseccomp refused (no seccomp, old kernel, ...)
        return FilterStatus(False, f"the kernel or libseccomp refused the filter: {type(error).__name__}: {error}")
    problem = _verify()
    if problem:
        return FilterStatus(False, f"the filter was loaded but does not hold: {problem}")
    detail = "network sockets, exec, new processes and signals to other processes are refused (EPERM)"
    if allow_processes:
        detail = ("compile profile: exec and new processes are allowed (compilers); network sockets and signals "
                  "to other processes are refused (EPERM)")
    if skipped:
        detail += f"; not on this architecture: {', '.join(skipped)}"
    if not all_threads:
        detail += "; threads started before it are not covered (this libseccomp cannot sync threads)"
    return FilterStatus(True, f"{detail}; speculative store bypass: {_speculation_state()}")


def _build(seccomp, own_pid: int, allow_processes: bool = False) -> tuple[object, list[str], bool]:
    """The filter, the refused calls this architecture does not have, and whether it covers all threads."""
    refuse, missing = seccomp.ERRNO(errno.EPERM), []
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    syscall_filter.set_attr(seccomp.Attr.CTL_NNP, 1)
    try:
        syscall_filter.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        all_threads = True
    except OSError:  # libseccomp < 2.2
        all_threads = False
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(errno.ENOSYS))
    rules = [(refuse, name) for name in REFUSED if not (allow_processes and name in PROCESS_CALLS)]
    rules += [(refuse, name, seccomp.Arg(0, seccomp.NE, own_pid)) for name in OWN_PROCESS_ONLY]
    rules += [(refuse, "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX)), (seccomp.ERRNO(errno.ENOSYS), "clone3")]
    if not allow_processes:
        rules.append((refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0)))
    for action, name, *arguments in rules:
        try:
            syscall_filter.add_rule(action, name, *arguments)
        except OSError:  # libseccomp knows no such call on this architecture
            try:
                syscall_filter.add_rule(action, RECENT_SYSCALL_NUMBERS[name], *arguments)
            except (KeyError, OSError):
                missing.append(name)
    return syscall_filter, missing, all_threads


def _speculation_state() -> str:
    """This process's speculative store bypass state, as the kernel reports it. Before Linux 5.16 the kernel forces
    the mitigation ("thread force mitigated") on a process that loads a seccomp filter without
    SECCOMP_FILTER_FLAG_SPEC_ALLOW, which slows Python code: recorded so that a slow worker can be told apart
    (docs/gpu.md, "MFU"). The flag is not set: the mitigation also guards the result's key in this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Speculation_Store_Bypass:"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "not reported"


def _verify() -> str:
    """'' when a network socket is refused now, else what happened instead."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    except PermissionError:
        return ""
    except OSError as error:
        return f"socket(AF_INET) failed with {error!r} instead of PermissionError"
    return "socket(AF_INET) still succeeds"


def syscall_filter_support() -> FilterStatus:
    """Would the worker's filter work here? Applies it in a throwaway Python process, never in this one."""
    repository = str(Path(__file__).resolve().parents[1])
    script = (f"import json, sys; sys.path.insert(0, {repository!r}); "
              "from sandbox.syscall_filter import apply_syscall_filter; "
              "status = apply_syscall_filter(); print(json.dumps([status.active, status.detail]))")
    try:
        result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_SECONDS, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as error:
        return FilterStatus(False, f"the probe process could not run: {error}")
    try:
        active, detail = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        return FilterStatus(False, f"the probe process failed: {last}")
    return FilterStatus(bool(active), str(detail))
