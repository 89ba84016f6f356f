"""One driver per run: a second `run`/`resume` exits 2 naming the holder; a kill -9 frees the run;
readers and review decisions work while a driver holds it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from archlab.runlock import LOCK_FILE, driver_of, hold_run
from knowledge.archive import Archive
from tests.cli_support import ROOT, archlab_cmd, cli, make_run
from tests.loop_support import write_config


def test_a_held_run_refuses_a_second_driver_and_serves_readers(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    with hold_run(run_dir, "demo"):
        second = cli("resume", str(run_dir), cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert f"pid {os.getpid()} on {socket.gethostname()}" in second.stderr
        assert "one driver per run" in second.stderr and f"kill {os.getpid()}" in second.stderr
        status = json.loads(cli("status", str(run_dir), "--json", cwd=tmp_path).stdout)
        assert status["driver"]["pid"] == os.getpid()
        runs = cli("runs", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        assert "running" in runs.stdout and f"driven by pid {os.getpid()}" in runs.stdout
        decided = cli("review", str(run_dir), "e0003", "--reject", "repeats e0002", cwd=tmp_path)
        assert decided.returncode == 0, decided.stderr
    assert driver_of(run_dir) is None  # released on exit; the file stays, naming the last driver
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    with Archive.open(run_dir, readonly=True) as archive:
        assert [e.data["note"] for e in archive.events(kind="review_decision")] == ["repeats e0002"]


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*archlab_cmd(), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_driver(run_dir: Path, process: subprocess.Popen, deadline_s: float = 120) -> int:
    deadline = time.monotonic() + deadline_s
    while (holder := driver_of(run_dir)) is None:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no driver took the run"
        time.sleep(0.1)
    return holder.pid


@pytest.mark.slow
def test_two_drivers_started_at_once_then_kill_9_and_resume(tmp_path):
    config = write_config(tmp_path, experiments=1, workers=1)
    run_dir = tmp_path / "runs" / "race"
    args = ["run", "--config", str(config), "--name", "race"]
    first, second = _start(args, tmp_path), _start(args, tmp_path)  # both at once, same run
    try:
        holder_pid = _wait_for_driver(run_dir, first)
        deadline = time.monotonic() + 120
        loser, winner = (second, first) if holder_pid == first.pid else (first, second)
        output, _ = loser.communicate(timeout=120)
        print(f"--- the refused driver (pid {loser.pid}), exit {loser.returncode}:\n{output}")
        assert loser.returncode == 2, output
        assert f"run race is already being driven by pid {winner.pid}" in output and "Traceback" not in output
        while not (run_dir / "archive.sqlite").exists():  # the driver opens the archive after the lock
            assert winner.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert cli("status", str(run_dir), cwd=tmp_path).returncode == 0  # readers work meanwhile

        winner.send_signal(signal.SIGKILL)  # the holder dies without any chance to clean up
        winner.wait(timeout=30)
        print(f"--- the holder (pid {winner.pid}) killed by -9: exit {winner.returncode}")
        assert driver_of(run_dir) is None  # the kernel released the lock with the process
        resumed = cli("resume", str(run_dir), cwd=tmp_path, timeout=600)
        print(f"--- archlab resume {run_dir}: exit {resumed.returncode}\n{resumed.stdout}{resumed.stderr}")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
    status = json.loads(cli("status", str(run_dir), "--json", cwd=tmp_path).stdout)
    assert status["finished"] == 1 and status["driver"] is None
    with Archive.open(run_dir, readonly=True) as archive:  # evaluated once per seed: no second driver's copies
        evaluated = [e for e in archive.events(kind="stage") if e.message.startswith("evaluated")]
        assert len(evaluated) == len({e.experiment_id for e in evaluated})
