"""Runtime containment: hostile raw Python scripts run through `run_sandboxed`.

These scripts bypass the static screen on purpose: they test the second line of defence. Each
runs under bubblewrap and under the fallback (where the behaviour is meant to be contained there
too), and each checks the classification, that no process of the job survives, that this machine
can still start processes, and that nothing outside the work directory changed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from sandbox.isolation import Isolation
from sandbox.job import Limits, SandboxJob, SandboxOutcome
from sandbox.runner import run_sandboxed

REPO = Path(__file__).resolve().parents[1]
FALLBACK_NOT_ISOLATED = "the fallback has no {} isolation (documented in sandbox/isolation.py)"
STUBBORN_CHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


@pytest.fixture(scope="module")
def isolations() -> dict[str, Isolation]:
    return {"bubblewrap": Isolation(), "fallback": Isolation(prefer_bwrap=False),
            "rlimits-only": Isolation(prefer_bwrap=False, use_cgroups=False)}


@pytest.fixture(params=["bubblewrap", "fallback", "rlimits-only"])
def isolation(request, isolations) -> Isolation:
    chosen = isolations[request.param]
    if request.param == "bubblewrap" and chosen.bwrap.program is None:
        pytest.skip(f"bubblewrap does not work here: {chosen.bwrap.problem}")
    return chosen


class Sandbox:
    """Runs a script as a job in a fresh work directory and remembers what lies outside it."""

    def __init__(self, root: Path, isolation: Isolation):
        self.isolation = isolation
        self.marker = f"archlab-test-{uuid.uuid4().hex}"  # in every process's command line
        self.work_dir = root / "work"
        self.work_dir.mkdir()
        self.outside = root / "outside"
        self.outside.mkdir()
        self.canary = self.outside / "canary.txt"
        self.canary.write_text("original")
        self._root = root
        self._before = self._snapshot()

    @property
    def bubblewrapped(self) -> bool:
        return self.isolation.bwrap.program is not None

    def run(self, script: str, *args: str, stop: threading.Event | None = None, **limits) -> SandboxOutcome:
        job = SandboxJob(
            argv=[sys.executable, "-c", textwrap.dedent(script), self.marker, *args],
            work_dir=self.work_dir,
            limits=Limits(**{"wall_seconds": 10.0, "memory_bytes": 2**30, "max_processes": 64, **limits}),
            readonly_paths=(REPO,),
        )
        return run_sandboxed(job, isolation=self.isolation, stop=stop)

    def survivors(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and self.marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # ended while we looked
        return found

    def _snapshot(self) -> dict[str, tuple[int, bytes]]:
        return {str(path): (path.stat().st_size, path.read_bytes() if path.is_file() else b"")
                for path in sorted(self._root.rglob("*")) if self.work_dir not in path.parents and path != self.work_dir}

    def assert_contained(self) -> None:
        assert self.survivors() == [], "a process of the job outlived run_sandboxed"
        assert subprocess.run(["true"]).returncode == 0, "this machine can no longer start processes"
        assert self._snapshot() == self._before, "something outside the work directory changed"


@pytest.fixture
def sandbox(tmp_path, isolation) -> Sandbox:
    box = Sandbox(tmp_path, isolation)
    yield box
    box.assert_contained()


def test_exit_code_output_and_isolation_are_reported(sandbox):
    outcome = sandbox.run("import sys; print('hello'); print('oops', file=sys.stderr); sys.exit(3)")
    assert (outcome.exit_code, outcome.signal, outcome.timed_out) == (3, None, False)
    assert outcome.stdout_tail == "hello\n" and outcome.stderr_tail == "oops\n"
    assert outcome.stdout_path.read_text() == "hello\n"
    assert outcome.isolation == sandbox.isolation.name
    assert ("bubblewrap" in outcome.isolation) == sandbox.bubblewrapped


def test_death_by_signal_is_reported_as_a_signal(sandbox):
    outcome = sandbox.run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert outcome.signal == signal.SIGSEGV and outcome.exit_code is None and not outcome.timed_out


def test_infinite_loop_times_out_with_its_children_killed(sandbox):
    outcome = sandbox.run("""
        import subprocess, sys
        # a child that ignores SIGTERM, in the job's session, then a busy loop
        subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
        print("looping", flush=True)
        while True:
            pass
    """, STUBBORN_CHILD, wall_seconds=2.0)
    assert outcome.timed_out and outcome.signal == signal.SIGKILL and outcome.exit_code is None
    assert 2.0 <= outcome.wall_seconds < 5.0
    assert "looping" in outcome.stdout_tail  # what was printed before the kill is kept


def test_a_stop_request_kills_the_job_at_once(sandbox):
    """Ctrl-C in the orchestrator: the job and its children die well before the wall limit."""
    stop = threading.Event()
    started = sandbox.work_dir / "started"

    def stop_once_started():
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()

    watcher = threading.Thread(target=stop_once_started)
    watcher.start()
    outcome = sandbox.run("""
        import pathlib, subprocess, sys
        subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
        pathlib.Path("started").write_text("yes")
        while True:
            pass
    """, STUBBORN_CHILD, stop=stop, wall_seconds=60.0)
    watcher.join()
    assert outcome.stopped and not outcome.timed_out
    assert outcome.wall_seconds < 20


@pytest.mark.parametrize("leaves_session", [False, True], ids=["same-session", "own-session"])
def test_background_child_is_killed_when_the_job_exits(sandbox, leaves_session):
    if leaves_session and not (sandbox.bubblewrapped or sandbox.isolation.cgroups.available):
        pytest.skip("without bubblewrap or cgroups, a child that calls setsid() escapes (documented)")
    outcome = sandbox.run(f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]], start_new_session={leaves_session})
        print("parent done")
    """, STUBBORN_CHILD)
    assert outcome.exit_code == 0 and not outcome.timed_out
    assert outcome.wall_seconds < 5.0  # run_sandboxed did not wait for the sleeper holding the output pipes


def test_memory_hog_is_stopped_and_classified(sandbox):
    outcome = sandbox.run("""
        chunks = []
        while True:
            chunks.append(bytearray(2**30))  # 1 GB at a time, zero-filled, so really allocated
    """, memory_bytes=2**30)
    assert not outcome.timed_out
    assert outcome.memory_exceeded or (outcome.exit_code == 1 and "MemoryError" in outcome.stderr_tail)


def test_memory_of_a_process_tree_is_capped_as_a_whole(sandbox):
    if sandbox.isolation.cgroups.memory is None:
        pytest.skip("without the memory cgroup, RLIMIT_AS caps each process, not the tree (documented)")
    outcome = sandbox.run("""
        import subprocess, sys
        child = "import time; block = bytearray(300 * 2**20); time.sleep(2)"  # under each process's own limit
        children = [subprocess.Popen([sys.executable, "-c", child, sys.argv[1]]) for _ in range(4)]
        print([c.wait() for c in children])
    """, memory_bytes=768 * 2**20)
    assert outcome.memory_exceeded, outcome.stderr_tail


def test_fork_bomb_is_contained_by_the_process_limit(sandbox):
    if sandbox.isolation.cgroups.pids is None and os.getuid() == 0:
        pytest.skip("root ignores RLIMIT_NPROC; without the pids cgroup a fork bomb is not contained (documented)")
    outcome = sandbox.run("""
        import os
        original, refused = os.getpid(), 0
        for _ in range(200):  # bounded, so it stops by itself even if uncontained
            try:
                os.fork()
            except OSError:
                refused += 1
        if os.getpid() == original:
            print("refused", refused, flush=True)
    """, max_processes=32)
    assert not outcome.timed_out and outcome.exit_code == 0
    refused = int(outcome.stdout_tail.split()[-1])
    assert refused > 100  # the limit of 32 processes stopped all but a handful of the 200 forks


def test_cpu_time_limit_stops_a_busy_job(sandbox):
    outcome = sandbox.run("while True: pass", cpu_seconds=1)
    assert not outcome.timed_out and outcome.signal in (signal.SIGXCPU, signal.SIGKILL)


def test_output_flood_is_truncated_and_disk_use_bounded(sandbox):
    outcome = sandbox.run("""
        import sys
        line = "x" * 999 + "\\n"
        for _ in range(50_000):  # 50 MB on stdout
            sys.stdout.write(line)
        sys.stderr.write("last words\\n")
    """, output_bytes=64 * 1024)
    assert outcome.exit_code == 0 and outcome.output_truncated
    assert outcome.stdout_path.stat().st_size <= 2 * 64 * 1024 + 100
    assert "bytes left out" in outcome.stdout_path.read_text()
    assert len(outcome.stdout_tail) <= 64 * 1024 + 100 and "earlier bytes not shown" in outcome.stdout_tail
    assert outcome.stderr_tail == "last words\n"
    assert sum(p.stat().st_size for p in sandbox.work_dir.rglob("*") if p.is_file()) < 1024 * 1024


def test_file_size_is_capped(sandbox):
    outcome = sandbox.run("""
        with open("big.bin", "wb") as f:
            f.write(b"x" * (8 * 2**20))
    """, max_file_bytes=2**20)
    assert outcome.exit_code != 0 and "File too large" in outcome.stderr_tail
    assert (sandbox.work_dir / "big.bin").stat().st_size <= 2**20


def test_secrets_in_the_environment_never_reach_the_job(sandbox, monkeypatch):
    secrets = {"OPENAI_API_KEY": "sk-test-secret", "AWS_SECRET_ACCESS_KEY": "aws-test-secret",
               "AWS_ACCESS_KEY_ID": "AKIATESTSECRET"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    outcome = sandbox.run("import os; print(sorted(os.environ.items()))")
    assert outcome.exit_code == 0
    for name, value in secrets.items():
        assert name not in outcome.stdout_tail and value not in outcome.stdout_tail


def test_orchestrator_environment_is_unreadable_through_proc(sandbox, monkeypatch):
    if not sandbox.bubblewrapped:
        pytest.skip(FALLBACK_NOT_ISOLATED.format("process") + ": /proc/PID/environ of the orchestrator is readable")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    outcome = sandbox.run("""
        import sys
        try:
            print(open(f"/proc/{sys.argv[2]}/environ").read())
        except OSError as error:
            print("refused:", error)
    """, str(os.getpid()))
    assert "refused" in outcome.stdout_tail and "sk-test-secret" not in outcome.stdout_tail


def test_network_is_unreachable(sandbox):
    if not sandbox.bubblewrapped:
        pytest.skip(FALLBACK_NOT_ISOLATED.format("network") + ": a job can connect to localhost")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        outcome = sandbox.run("""
            import socket, sys
            try:
                socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2)
                print("connected")
            except OSError as error:
                print("refused:", error)
        """, str(listener.getsockname()[1]))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the listener
    assert "refused" in outcome.stdout_tail


@pytest.mark.parametrize("target", ["existing file outside", "new file in the repository",
                                    "result file beside the work dir"])
def test_writes_outside_the_work_dir_fail(sandbox, target):
    if not sandbox.bubblewrapped:
        pytest.skip(FALLBACK_NOT_ISOLATED.format("filesystem") + ": a job can write wherever its user can")
    path = {"existing file outside": sandbox.canary,
            "new file in the repository": REPO / f"forged-{uuid.uuid4().hex}.json",
            "result file beside the work dir": sandbox.work_dir.parent / "eval.json"}[target]
    outcome = sandbox.run("""
        import sys
        try:
            with open(sys.argv[2], "w") as f:
                f.write('{"status": "ok", "metrics": {"accuracy": 1.0}}')
            print("written")
        except OSError as error:
            print("refused:", error)
    """, str(path))
    assert outcome.exit_code == 0
    assert sandbox.canary.read_text() == "original"
    assert path == sandbox.canary or not path.exists()
    # under bubblewrap the write lands nowhere visible outside: refused, or into the private /tmp
    assert "refused" in outcome.stdout_tail or str(path).startswith("/tmp/")
