"""Review mode: each candidate waits for a person's decision, given from another terminal."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.records import Stage
from tests.loop_candidates import RUNNING_MAX
from tests.loop_support import ROOT, archlab, write_config

pytestmark = pytest.mark.slow


def awaiting(run_dir: Path, process: subprocess.Popen, exclude: tuple[str, ...] = (), wanted: str | None = None,
             deadline_s: float = 240) -> str:
    """The id of a candidate waiting for review (waits for one, boundedly). The run keeps proposing
    while candidates wait, so several may be waiting at once."""
    deadline = time.monotonic() + deadline_s
    while True:
        if (run_dir / "archive.sqlite").exists():
            with Archive.open(run_dir / "archive.sqlite") as archive:
                waiting = [e.id for e in archive.experiments(run="reviewed") if e.stage is Stage.AWAITING_REVIEW
                           and e.id not in exclude and wanted in (None, e.id)]
            if waiting:
                return waiting[0]
        assert process.poll() is None, "the run ended while a review was expected"
        assert time.monotonic() < deadline, "no candidate came up for review"
        time.sleep(0.2)


def applied(run_dir: Path, exp_id: str) -> int:
    with Archive.open(run_dir / "archive.sqlite") as archive:
        return sum(e.kind == "review_applied" for e in archive.events(experiment_id=exp_id))


def decide(run_dir: Path, process: subprocess.Popen, exp_id: str, *decision: str) -> None:
    """Give a decision from another terminal and wait (boundedly) until the run has applied it."""
    before = applied(run_dir, exp_id)
    archlab("review", str(run_dir), exp_id, *decision, cwd=run_dir.parent.parent)
    deadline = time.monotonic() + 120
    while applied(run_dir, exp_id) == before:
        assert process.poll() is None and time.monotonic() < deadline, "the decision was not applied"
        time.sleep(0.2)


def test_review_decisions_steer_the_run(tmp_path):
    config = write_config(tmp_path, experiments=3, workers=1, extra="review = true")
    run_dir = tmp_path / "runs" / "reviewed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "archlab.cli", "run", "--config", str(config), "--name", "reviewed"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rejected = awaiting(run_dir, run)
        listing = archlab("review", str(run_dir), cwd=tmp_path).stdout
        assert rejected in listing
        decide(run_dir, run, rejected, "--reject", "too close to the baseline")

        inspired = awaiting(run_dir, run, exclude=(rejected,))
        with Archive.open(run_dir / "archive.sqlite") as archive:
            first_motivation = archive.get_experiment(inspired).motivation
        typo = archlab("review", str(run_dir), inspired, "--idea", "state_size=2", cwd=tmp_path, check=False)
        assert typo.returncode == 2 and "unknown gene 'state_size'" in typo.stderr  # refused, nothing recorded
        decide(run_dir, run, inspired, "--idea", "try a larger state: key_expand=2")
        awaiting(run_dir, run, wanted=inspired)  # proposed anew, and back for review
        decide(run_dir, run, inspired, "--approve")

        replaced = awaiting(run_dir, run, exclude=(rejected, inspired))
        handwritten = tmp_path / "mine.py"
        handwritten.write_text(RUNNING_MAX)
        decide(run_dir, run, replaced, "--replace", str(handwritten))
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output
    finally:
        if run.poll() is None:
            run.kill()

    wrong = archlab("review", str(run_dir), rejected, "--approve", cwd=tmp_path, check=False)
    assert wrong.returncode == 2 and "not awaiting review" in wrong.stderr
    with Archive.open(run_dir / "archive.sqlite") as archive:
        assert archive.get_experiment(rejected).stage is Stage.REJECTED
        assert "too close to the baseline" in archive.get_experiment(rejected).reason
        idea = archive.get_experiment(inspired)
        assert idea.stage is Stage.ANALYZED and idea.motivation  # re-proposed, then approved and trained
        assert idea.genome["key_expand"] == 2 and "key_expand=2" in idea.motivation  # the idea, as given
        notes = [e.data["note"] for e in archive.events(experiment_id=inspired) if e.kind == "review_decision"]
        assert notes == ["try a larger state: key_expand=2", ""]  # the refused idea left no trace
        proposed = [e for e in archive.events(experiment_id=inspired) if e.kind == "stage" and "proposed" in e.message]
        assert len(proposed) == 2
        assert [i.text for i in archive.insights(source="person")] == ["try a larger state: key_expand=2"]
        person = archive.get_experiment(replaced)
        assert person.proposer == "person" and person.code == RUNNING_MAX and person.stage is Stage.ANALYZED
    assert first_motivation  # the first proposal existed before the idea replaced it
