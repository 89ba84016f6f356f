"""Loading the run configuration: `archlab.toml` plus command-line overrides.

The typed models live in `agents.config` (the loop consumes them); this module only reads
and validates, turning every problem into a message that says what to fix.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from agents.config import RunConfig
from archlab.errors import UsageError, validation_problems


def load_config(path: Path | None, overrides: dict) -> RunConfig:
    """Read `archlab.toml` (the given file, or ./archlab.toml if present) and apply CLI overrides.

    Overrides use dotted keys for nested sections, e.g. {"llm.model": "openai/gpt-4o"}.
    """
    data: dict = {}
    if path is None and Path("archlab.toml").is_file():
        path = Path("archlab.toml")
    if path is not None:
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"{path} is not valid TOML: {error}") from error
    for dotted, value in overrides.items():
        if value is None:
            continue
        section = data
        *parents, key = dotted.split(".")
        for parent in parents:
            section = section.setdefault(parent, {})
        section[key] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error)
        raise UsageError(f"invalid configuration{f' in {path}' if path else ''}: {problems}") from error
