"""The bubblewrap command line: namespaces and a minimal, read-only view of the filesystem.

Inside, a job sees: the system libraries (/usr and the /lib, /bin links), the dynamic loader's
configuration, the Python installation (sys.prefix and sys.base_prefix), the job's read-only
paths, a private /dev, /proc and /tmp, and its work directory, the only writable place.
It does not see the user's home, /work, the repository (unless passed read-only), credentials,
or the network (a private network namespace with only a loopback device). All capabilities are
dropped and bubblewrap runs the job in a user namespace where it can, so a read-only mount
cannot be remounted writable. Descriptors the job inherits (`SandboxJob.pass_fds`) pass through
bubblewrap unchanged, with the same numbers: it closes none of them.
"""
from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox.job import SandboxJob
from sandbox.process_setup import cuda_index

SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives")
PROBE_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class BwrapProbe:
    """Whether bubblewrap works here: `program` is its path when it does, else `problem` says why not."""

    program: str | None
    problem: str = ""


def bwrap_argv(program: str, job: SandboxJob) -> list[str]:
    """The full command line running `job.argv` under bubblewrap. Later mounts go on top of earlier ones."""
    argv = [program, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for directory in SYSTEM_DIRECTORIES:
        path = Path(directory)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            argv += ["--symlink", str(path.readlink()), directory]
        elif path.is_dir():
            argv += ["--ro-bind", directory, directory]
    for file in SYSTEM_FILES:
        argv += ["--ro-bind-try", file, file]
    for path in (Path(sys.base_prefix), Path(sys.prefix), *job.readonly_paths):
        argv += _bind("--ro-bind", Path(path))
    if cuda_index(job.device) is not None:
        argv += ["--ro-bind", "/sys", "/sys"]  # the driver walks /sys/bus/pci to enumerate GPUs
        for device in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", device, device]
    argv += _bind("--bind", job.work_dir)
    argv += ["--remount-ro", "/", "--chdir", str(job.work_dir), "--", *job.argv]  # the new root itself stays read-only
    return argv


def _bind(option: str, path: Path) -> list[str]:
    """Bind at the given path and, when it differs, at its resolved path, so both spellings work inside."""
    resolved = path.resolve()
    argv = [option, str(resolved), str(resolved)]
    if str(path) != str(resolved) and path.is_absolute():
        argv += [option, str(resolved), str(path)]
    return argv


def probe_bwrap(program: str = "bwrap") -> BwrapProbe:
    """Run a trivial Python job under the exact command line real jobs get; a broken bwrap says why here."""
    found = shutil.which(program)
    if found is None:
        return BwrapProbe(None, f"`{program}` is not installed (e.g. `apt-get install bubblewrap`)")
    with tempfile.TemporaryDirectory(prefix="archlab-bwrap-probe-") as work_dir:
        job = SandboxJob(argv=[sys.executable, "-c", "pass"], work_dir=Path(work_dir))
        try:
            result = subprocess.run(bwrap_argv(found, job), capture_output=True, text=True,
                                    timeout=PROBE_TIMEOUT_SECONDS, env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.TimeoutExpired) as error:
            return BwrapProbe(None, f"`{found}` could not run: {error}")
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.returncode}"
        return BwrapProbe(None, f"`{found}` is installed but fails here: {message}")
    return BwrapProbe(found)
