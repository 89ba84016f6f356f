"""`archlab replay RUN --as NEW`: the whole run again, in a new run directory beside it.

The new run has the original's configuration under a new name and a `replay.json` naming the
original: its session then serves LLM answers and review decisions from the original archive
(agents.replay), and the offline researcher draws from the same recorded seed. Evaluations,
checks, selection and analysis all run again, so the report shows what they now make of it.
`archlab resume NEW` continues an interrupted replay the same way.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from agents.config import RunConfig
from agents.replay import REPLAY_FILE, ReplayOrigin
from archlab.drive_run import drive
from archlab.errors import UsageError, validation_problems
from archlab.rundir import load_run_config, open_for_reading, prepare_run_dir, write_run_config
from archlab.runlock import hold_run


def _new_config(config: RunConfig, original_dir: Path, name: str) -> RunConfig:
    try:
        return RunConfig.model_validate({**config.model_dump(), "name": name, "runs_dir": original_dir.parent})
    except ValidationError as error:
        raise UsageError(f"--as {name}: {validation_problems(error)}") from error


def replay_run(original_dir: Path, name: str) -> int:
    from archlab.replay_diff import compare_runs, render_divergence

    config = load_run_config(original_dir)
    with open_for_reading(original_dir):
        pass  # the original must be readable (and upgraded, if old) before anything is created
    new_config = _new_config(config, original_dir, name)
    run_dir = prepare_run_dir(new_config, name)
    with hold_run(run_dir, name):
        write_run_config(new_config, name, run_dir)
        origin = ReplayOrigin(run_dir=original_dir.resolve(), run=config.name or original_dir.name)
        (run_dir / REPLAY_FILE).write_text(origin.model_dump_json(indent=2))
        source = "LLM answers and review decisions" if config.llm else "the offline researcher's seed and review decisions"
        print(f"replaying run {origin.run} as {name} in {run_dir} ({source} from {original_dir}; no network)")
        code = drive(new_config, run_dir, "replay")
    if code == 130:
        return code
    with open_for_reading(original_dir) as original, open_for_reading(run_dir) as replayed:
        report = compare_runs(original, origin.run, replayed, name)
        print(render_divergence(report, origin.run, name, replayed))
    return 0 if code == 0 and all(item.same for item in report) else 1
