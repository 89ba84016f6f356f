"""Reference candidates: hand-written implementations shipped with the project, one file each.

They are the tasks' baselines and the seeds of a new archive. This module only describes them
(name, file, one-line summary) by reading their text: the orchestrator never imports candidate
or reference code, which runs only inside the sandbox.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REFERENCES_DIR = Path(__file__).resolve().parent
# Exempt from the sub-quadratic check: the quality ceiling, not a contender on cost.
QUADRATIC_REFERENCES = frozenset({"softmax_attention"})


@dataclass(frozen=True)
class Reference:
    name: str
    family: str
    path: Path
    summary: str  # first line of the file's module docstring
    quadratic: bool  # True only for the quality ceiling (softmax attention)


def known_families() -> list[str]:
    return sorted(p.name for p in REFERENCES_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def list_references(family: str = "mixer") -> list[Reference]:
    """Every reference of `family`, sorted by name."""
    folder = REFERENCES_DIR / family
    if family not in known_families():
        raise KeyError(f"no references for family {family!r}; known families: {', '.join(known_families())}")
    return [_describe(path, family) for path in sorted(folder.glob("*.py")) if not path.name.startswith("_")]


def get_reference(name: str, family: str = "mixer") -> Reference:
    """The reference called `name` (the file name without .py); a KeyError lists the known names."""
    references = {ref.name: ref for ref in list_references(family)}
    if name not in references:
        raise KeyError(f"unknown {family} reference {name!r}; known: {', '.join(sorted(references))}")
    return references[name]


def _describe(path: Path, family: str) -> Reference:
    docstring = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
    if not docstring:
        raise ValueError(f"reference {path} has no module docstring; its first line is the reference's summary")
    name = path.stem
    return Reference(name=name, family=family, path=path, summary=docstring.strip().splitlines()[0],
                     quadratic=name in QUADRATIC_REFERENCES)
