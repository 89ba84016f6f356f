"""Helpers for the end-to-end loop tests: a small run configuration and the real CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from agents.config import RunConfig
from agents.lab import Lab
from agents.team import Team
from knowledge.archive import Archive
from knowledge.embeddings import make_embedder
from knowledge.records import Experiment, Fitness, Stage
from knowledge.vectors import VectorStore
from sandbox.executors import LocalPool

ROOT = Path(__file__).resolve().parents[1]
BASELINE_NAME = "gated_delta_rule"


@contextmanager
def lab_in(directory: Path, team: Team, run: str, review: bool = False) -> Iterator[Lab]:
    """A Lab on a real archive, vector store and one CPU slot, its baseline e0001 already analysed."""
    archive = Archive.open(directory / "archive.sqlite")
    pool = LocalPool(["cpu"])
    lab = Lab(config=RunConfig(name=run, review=review), run=run, run_dir=directory, archive=archive,
              store=VectorStore(directory / "chroma", make_embedder("local")), team=team, executor=pool)
    archive.add_experiment(Experiment(id="e0001", run=run, name=BASELINE_NAME, proposer="reference",
                                      stage=Stage.ANALYZED, status="ok", fitness=Fitness(value=0.0)))
    try:
        yield lab
    finally:
        pool.shutdown()
        archive.close()


def write_config(directory: Path, experiments: int, workers: int = 2, extra: str = "") -> Path:
    """A smoke-budget run seeded with the baseline only, so an end-to-end run takes about a minute."""
    path = directory / "archlab.toml"
    path.write_text(
        f'task = "mqar"\nbudget = "smoke"\nexperiments = {experiments}\nworkers = {workers}\n'
        f'runs_dir = "{directory / "runs"}"\n{extra}\n[search]\nreferences = "baseline"\ncascade_seeds = 1\n'
    )
    return path


def archlab(*args: str, cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """The real command line, in a fresh process, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-m", "archlab.cli", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as hung:  # show what it printed before it hung, not only that it did
        raise AssertionError(f"archlab {' '.join(args)} did not finish in {timeout} s\n"
                             f"{_text(hung.stdout)}\n{_text(hung.stderr)}") from None
    if check and done.returncode != 0:
        raise AssertionError(f"archlab {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def status(run_dir: Path, cwd: Path) -> dict:
    return json.loads(archlab("status", str(run_dir), "--json", cwd=cwd).stdout)
