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


def awaiting(run_dir: Path, process: subprocess.Popen, deadline_s: float = 240) -> str:
    """The id of the candidate now waiting for review (waits for one, boundedly)."""
    deadline = time.monotonic() + deadline_s
    while True:
        if (run_dir / "archive.sqlite").exists():
            with Archive.open(run_dir / "archive.sqlite") as archive:
                waiting = [e.id for e in archive.experiments(run="reviewed") if e.stage is Stage.AWAITING_REVIEW]
            if waiting:
                return waiting[0]
        assert process.poll() is None, "the run ended while a review was expected"
        assert time.monotonic() < deadline, "no candidate came up for review"
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
        archlab("review", str(run_dir), rejected, "--reject", "too close to the baseline", cwd=tmp_path)

        inspired = awaiting(run_dir, run)
        assert inspired != rejected
        with Archive.open(run_dir / "archive.sqlite") as archive:
            first_motivation = archive.get_experiment(inspired).motivation
        archlab("review", str(run_dir), inspired, "--idea", "try a larger state", cwd=tmp_path)
        again = awaiting(run_dir, run)
        assert again == inspired  # proposed anew, and back for review
        archlab("review", str(run_dir), inspired, "--approve", cwd=tmp_path)

        replaced = awaiting(run_dir, run)
        handwritten = tmp_path / "mine.py"
        handwritten.write_text(RUNNING_MAX)
        archlab("review", str(run_dir), replaced, "--replace", str(handwritten), cwd=tmp_path)
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
        assert [i.text for i in archive.insights(source="person")] == ["try a larger state"]
        person = archive.get_experiment(replaced)
        assert person.proposer == "person" and person.code == RUNNING_MAX and person.stage is Stage.ANALYZED
    assert first_motivation  # the first proposal existed before the idea replaced it
