"""Run directories: `runs/<name>/` holds the resolved config, the archive, the vector store,
the LangGraph checkpoints and every experiment's files."""
from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import ValidationError

from agents.config import RunConfig
from archlab.errors import UsageError, validation_problems
from knowledge.archive import ARCHIVE_FILE, Archive
from knowledge.schema import SchemaTooNewError, SchemaTooOldError

CONFIG_FILE = "config.json"


def writable_dir(path: Path, what: str) -> Path:
    """Create `path` if needed and make sure files can be written in it, or say what to fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the {what} {path}: {error.strerror}; choose a writable place") from error
    if not path.is_dir():
        raise UsageError(f"the {what} {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"the {what} {path} is not writable; choose a writable place or fix its permissions")
    return path


def run_name(config: RunConfig) -> str:
    return config.name or time.strftime(f"{config.task}-{config.budget}-%Y%m%d-%H%M%S")


def prepare_run_dir(config: RunConfig, name: str) -> Path:
    """The new run's directory, created and writable; the config is written once the run is held."""
    writable_dir(config.runs_dir, "runs directory (--runs-dir)")
    return writable_dir(config.runs_dir / name, "run directory")


def write_run_config(config: RunConfig, name: str, path: Path) -> None:
    """Record the resolved config of a new run; refuses a name that is taken (call while holding the run)."""
    if (path / CONFIG_FILE).exists():
        raise UsageError(f"run {name} already exists in {config.runs_dir}: `archlab resume {path}` continues it, "
                         "or choose another --name")
    (path / CONFIG_FILE).write_text(config.model_copy(update={"name": name}).model_dump_json(indent=2))


def find_run(ref: str, runs_dir: Path = Path("runs")) -> Path:
    """RUN is a run directory path or a name under the runs directory."""
    for candidate in (Path(ref), runs_dir / ref):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    known = sorted(p.name for p in runs_dir.glob("*") if (p / CONFIG_FILE).is_file()) if runs_dir.is_dir() else []
    hint = f"; runs in {runs_dir}: {', '.join(known)}" if known else ""
    raise UsageError(f"no run {ref!r} (give a run directory or a name under {runs_dir}){hint}")


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG_FILE
    try:
        return RunConfig.model_validate_json(path.read_text())
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from error
    except ValidationError as error:
        raise UsageError(f"{path} is not a run configuration this archlab can read: "
                         f"{validation_problems(error)}") from error


def open_for_reading(run_dir: Path) -> Archive:
    """The run's archive opened read-only (works on read-only storage and beside a running driver)."""
    path = run_dir / ARCHIVE_FILE
    if not path.is_file():
        from archlab.runlock import driver_of

        holder = driver_of(run_dir)
        raise UsageError(f"run {run_dir} has no archive yet: " + (
            f"its driver, {holder.describe()}, is starting; try again in a moment" if holder
            else f"its driver never started; `archlab resume {run_dir}` starts it"))
    try:
        return Archive.open(path, readonly=True)
    except SchemaTooOldError as error:
        if os.access(run_dir, os.W_OK) and os.access(path, os.W_OK):
            return Archive.open(path)  # upgrade once, in place, as every writer would
        raise UsageError(str(error)) from error
    except SchemaTooNewError as error:
        raise UsageError(str(error)) from error


def open_for_writing(run_dir: Path, command: str) -> Archive:
    """The run's archive for a command that records something; exit 2 on read-only storage."""
    path = run_dir / ARCHIVE_FILE
    if not (os.access(run_dir, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))):
        raise UsageError(f"{command} records its result in {path}, but {run_dir} is read-only; "
                         "status, ls and show work there, decisions need a writable copy")
    try:
        return Archive.open(path)
    except SchemaTooNewError as error:
        raise UsageError(str(error)) from error
