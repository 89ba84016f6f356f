"""The run's `compile` setting (archlab.toml or `archlab run --compile`): typed, refused with a clear message when
it is not true, false or "auto", and carried to the run's trainings and to its replays."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.config import RunConfig
from archlab.config import load_config
from archlab.errors import UsageError
from archlab.replay_experiment import make_plan
from knowledge.records import Experiment, Stage
from tests.cli_support import cli
from tests.loop_support import archlab


@pytest.mark.parametrize("line, value", [("", None), ("compile = true", True), ("compile = false", False),
                                         ('compile = "auto"', "auto")])
def test_compile_is_true_false_auto_or_the_budgets(tmp_path: Path, line: str, value):
    path = tmp_path / "archlab.toml"
    path.write_text(line + "\n")
    assert load_config(path, {}).compile == value


def test_a_bad_compile_setting_says_what_to_write(tmp_path: Path):
    path = tmp_path / "archlab.toml"
    path.write_text('compile = "fast"\n')
    with pytest.raises(UsageError, match="compile"):
        load_config(path, {})
    done = cli("run", "--compile", "fast", "--experiments", "0", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "--compile" in done.stderr and "'auto', 'true', 'false'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def test_a_replay_evaluates_with_the_runs_setting():
    exp = Experiment(id="e0002", run="r", name="softmax_attention", proposer="reference", stage=Stage.ANALYZED,
                     status="ok", metrics={"status": "ok", "seed": 0, "budget": "smoke", "device": "cpu"})
    for setting in (True, None):
        plan = make_plan(exp, RunConfig(name="r", budget="smoke", compile=setting), None, None, None)
        assert plan.compile is setting


@pytest.mark.slow  # a run whose only evaluations are the baseline's two seeds: ~30 s on 2 busy cores
def test_archlab_run_compile_false_reaches_the_runs_trainings(tmp_path: Path):
    (tmp_path / "archlab.toml").write_text('task = "mqar"\nbudget = "smoke"\n[search]\nreferences = "baseline"\n'
                                           'cascade_seeds = 1\n')
    archlab("run", "--compile", "false", "--experiments", "0", "--runs-dir", "runs", cwd=tmp_path)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["compile"] is False
    evaluations = sorted(run_dir.glob("experiments/e0001/eval-seed*/eval.json"))
    assert evaluations, "the baseline was not evaluated"
    for path in evaluations:  # unset, the smoke budget's "auto" would say it compiles only on CUDA
        compilation = json.loads(path.read_text())["compilation"]
        assert compilation["setting"] is False and compilation["reason"] == "compile is off for this evaluation"
