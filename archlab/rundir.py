"""Run directories: `runs/<name>/` holds the resolved config, the archive, the vector store,
the LangGraph checkpoints and every experiment's files."""
from __future__ import annotations

import time
from pathlib import Path

from agents.config import RunConfig
from archlab.errors import UsageError

CONFIG_FILE = "config.json"


def new_run_dir(config: RunConfig) -> tuple[str, Path]:
    name = config.name or time.strftime(f"{config.task}-{config.budget}-%Y%m%d-%H%M%S")
    path = config.runs_dir / name
    if (path / CONFIG_FILE).exists():
        raise UsageError(f"run {name} already exists in {config.runs_dir}: `archlab resume {path}` continues it, "
                         "or choose another --name")
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_FILE).write_text(config.model_copy(update={"name": name}).model_dump_json(indent=2))
    return name, path


def find_run(ref: str, runs_dir: Path = Path("runs")) -> Path:
    """RUN is a run directory path or a name under the runs directory."""
    for candidate in (Path(ref), runs_dir / ref):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    known = sorted(p.name for p in runs_dir.glob("*") if (p / CONFIG_FILE).is_file()) if runs_dir.is_dir() else []
    hint = f"; runs in {runs_dir}: {', '.join(known)}" if known else ""
    raise UsageError(f"no run {ref!r} (give a run directory or a name under {runs_dir}){hint}")


def load_run_config(run_dir: Path) -> RunConfig:
    return RunConfig.model_validate_json((run_dir / CONFIG_FILE).read_text())
