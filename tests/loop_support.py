"""Helpers for the end-to-end loop tests: a small run configuration and the real CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
