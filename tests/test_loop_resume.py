"""kill -9 at several points of a run, then `archlab resume`: nothing lost, nothing duplicated,
no finished step repeated (an interrupted evaluation restarts)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.records import Stage
from tests.loop_support import ROOT, archlab, write_config
from tests.support.smoke_run import copy_run

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 240


def start_run(cwd: Path, *args: str) -> subprocess.Popen:
    """The CLI in the background; what it prints goes to cwd/run-N.log, kept for a failure's diagnosis."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = cwd / f"run-{len(list(cwd.glob('run-*.log')))}.log"
    with log.open("w") as output:
        return subprocess.Popen([sys.executable, "-m", "archlab.cli", *args], cwd=cwd, env=env,
                                stdout=output, stderr=subprocess.STDOUT)


def kill_when(process: subprocess.Popen, condition, what: str) -> None:
    """SIGKILL the run as soon as `condition()` holds (checked against the archive and files)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()


def proposals(run_dir: Path) -> list:
    """The run's proposals (its name is its directory's)."""
    if not (run_dir / "archive.sqlite").exists():
        return []
    with Archive.open(run_dir / "archive.sqlite") as archive:
        return [e for e in archive.experiments(run=run_dir.name) if e.proposer != "reference"]


def evaluation_in_flight(run_dir: Path) -> bool:
    for exp in proposals(run_dir):
        folder = run_dir / "experiments" / exp.id / "eval-seed0"
        if folder.is_dir() and not (folder / "eval.json").exists():
            return True
    return False


def test_kill_9_at_several_points_then_resume(tmp_path):
    config = write_config(tmp_path, experiments=4, workers=2)
    run_dir = tmp_path / "runs" / "crashy"

    run = start_run(tmp_path, "run", "--config", str(config), "--name", "crashy")
    kill_when(run, lambda: any(e.motivation for e in proposals(run_dir)), "the first proposal")

    run = start_run(tmp_path, "resume", str(run_dir))
    kill_when(run, lambda: evaluation_in_flight(run_dir), "an evaluation in flight")

    run = start_run(tmp_path, "resume", str(run_dir))
    kill_when(run, lambda: any(e.stage is Stage.ANALYZED for e in proposals(run_dir)), "a finished experiment")

    archlab("resume", str(run_dir), cwd=tmp_path)

    with Archive.open(run_dir / "archive.sqlite") as archive:
        assert archive.integrity_check() == ["ok"]
        experiments = archive.experiments(run="crashy")
        finished = [e for e in experiments if e.proposer != "reference"]
        assert len(finished) == 4 and all(e.finished for e in finished)
        assert len({e.id for e in experiments}) == len(experiments) == 5
        for exp in finished:
            stages = [e.message for e in archive.events(experiment_id=exp.id) if e.kind == "stage"]
            assert sum(m.startswith("proposed") for m in stages) <= 1, stages  # a repeated step logs twice
            assert stages.count("coded") <= 1 and stages.count("analyzed") <= 1, stages
            assert sum(m.startswith("evaluated") for m in stages) <= 1, stages
        genomes = [str(sorted(e.genome.items())) for e in finished if e.genome]
        assert len(genomes) == len(set(genomes))  # no proposal was made twice


def test_a_stop_signal_ends_the_run_cleanly_and_resume_finishes_it(smoke_run, tmp_path):
    """Ctrl-C (or `kill`): the evaluation in flight is abandoned, not recorded as a failure. The run is a copy
    of the session's finished smoke run driven on by one more proposal (`run` and `resume` drive alike)."""
    run_dir = copy_run(smoke_run, tmp_path / "runs")
    run = start_run(tmp_path, "resume", str(run_dir), "--experiments", "2")
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not evaluation_in_flight(run_dir):
        assert run.poll() is None and time.monotonic() < deadline, "no evaluation started"
        time.sleep(0.1)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 130
    stopped = proposals(run_dir)
    assert not any(exp.stage is Stage.FAILED for exp in stopped)
    assert not all(exp.finished for exp in stopped)  # the evaluation in flight was cut, left to the resume

    archlab("resume", str(run_dir), cwd=tmp_path)
    finished = proposals(run_dir)
    assert len(finished) == 2 and all(exp.finished for exp in finished)
