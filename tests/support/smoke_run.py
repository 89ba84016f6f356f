"""One real offline discovery run at the smoke budget per test session, made by `archlab run` with
stdout and stderr captured (not a terminal): the baseline (two seeds) and one proposal.

Each such run costs most of a minute on two cores, so the tests that only read a finished run share
this one (the report, replay's refusals, the export, the plain event lines `archlab run` prints), and
a test that writes (a replay that records itself, a resume, a tampered archive) works on `copy_run`.
At the end of the session the run must be byte for byte as `archlab run` left it, so a test that
wrote into the shared run fails instead of quietly changing what the others read."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_support import ROOT, archlab_cmd
from tests.loop_support import write_config

SMOKE_RUN = "smoke"


@dataclass(frozen=True)
class FinishedRun:
    """A run `archlab run` finished, and what it printed."""

    run_dir: Path
    stdout: str
    stderr: str


def copy_run(run_dir: Path, runs_dir: Path) -> Path:
    """A copy under runs_dir, as if the run had been made there: the same run name, so the archive's
    rows still match, and config.json's runs_dir pointing at the copy's parent."""
    copy = runs_dir / run_dir.name
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "runs_dir": str(runs_dir)}, indent=2))
    return copy


def _digests(run_dir: Path) -> dict[str, str]:
    """Every file's hash, less what a reader leaves: SQLite's shared-memory index and an empty
    write-ahead log (a read-only connection cannot remove them; they hold no data)."""
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file() and not path.name.endswith("-shm")
            and not (path.name.endswith("-wal") and path.stat().st_size == 0)}


@pytest.fixture(scope="session")
def smoke_run_result(tmp_path_factory) -> Iterator[FinishedRun]:
    """Made on first use; checked unchanged when the session ends."""
    root = tmp_path_factory.mktemp("smoke-run")
    config = write_config(root, experiments=1, workers=1)
    done = subprocess.run([*archlab_cmd(), "run", "--offline", "--config", str(config), "--name", SMOKE_RUN],
                          cwd=root, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run = FinishedRun(root / "runs" / SMOKE_RUN, done.stdout, done.stderr)
    before = _digests(run.run_dir)
    yield run
    after = _digests(run.run_dir)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, (f"a test wrote into the shared smoke run ({', '.join(changed)}); "
                         "give it a copy: tests.support.smoke_run.copy_run")


@pytest.fixture(scope="session")
def smoke_run(smoke_run_result: FinishedRun) -> Path:
    """The shared run's directory: read it, never write it (copy_run gives a writable copy)."""
    return smoke_run_result.run_dir
