"""Helpers for the CLI tests: the installed `archlab` in a fresh process, and a small run directory
written through the real archive (no driver), so a test of a reader or a usage error takes seconds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agents.config import RunConfig
from knowledge.archive import Archive
from knowledge.records import Experiment, Fitness, Stage

ROOT = Path(__file__).resolve().parents[1]
ARCHLAB = ROOT / ".venv" / "bin" / "archlab"
# Without CAP_DAC_OVERRIDE root obeys file modes, so a chmod'ed directory is read-only to it too.
NO_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"]


def archlab_cmd() -> list[str]:
    return [str(ARCHLAB)] if ARCHLAB.exists() else [sys.executable, "-m", "archlab.cli"]


def cli(*args: str, cwd: Path, unprivileged: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """`archlab ARGS` as a user types it; `unprivileged`: as root without the right to ignore file modes."""
    prefix = NO_OVERRIDE if unprivileged and os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*prefix, *archlab_cmd(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def make_run(runs_dir: Path, name: str = "demo", awaiting: bool = True) -> Path:
    """A run directory as a driver leaves it: config, an analysed baseline, a proposal, one candidate waiting."""
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    config = RunConfig(name=name, runs_dir=runs_dir, budget="smoke", experiments=3, review=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2))
    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.add_experiments([
            Experiment(id="e0001", run=name, name="gated_delta_rule", proposer="reference", stage=Stage.ANALYZED,
                       status="ok", fitness=Fitness(value=0.0, stderr=0.01, seeds=2)),
            Experiment(id="e0002", run=name, name="wider_state", proposer="offline", parent_id="e0001",
                       motivation="a larger state recalls more", stage=Stage.ANALYZED, status="ok",
                       fitness=Fitness(value=0.05, stderr=0.01), code="class Mixer: pass\n"),
            Experiment(id="e0003", run=name, name="short_conv_gate", proposer="offline", parent_id="e0002",
                       motivation="a short convolution sharpens recall", genome={"conv": 4},
                       stage=Stage.AWAITING_REVIEW if awaiting else Stage.ANALYZED),
        ])
    return run_dir
