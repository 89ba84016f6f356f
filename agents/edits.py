"""Search/replace edits of a parent candidate file, as the coder may answer them.

Each search block must occur exactly once in the file as it stands when that edit is
applied; otherwise the edit is ambiguous and the error, written for the repair prompt,
says which block failed and how to fix it.
"""
from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field


class Edit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    search: str = Field(min_length=1)
    replace: str


class EditError(ValueError):
    """One or more edits could not be applied; the message lists each with a fix."""


def apply_edits(code: str, edits: Sequence[Edit]) -> str:
    """Apply `edits` in order; every failing edit is reported, none is guessed."""
    if not edits:
        raise EditError("no edits given: answer the full file, or at least one search/replace edit")
    problems: list[str] = []
    for number, edit in enumerate(edits, start=1):
        count = code.count(edit.search)
        if count == 1:
            code = code.replace(edit.search, edit.replace, 1)
        else:
            problems.append(f"edit {number} of {len(edits)} (search starts {_first_line(edit.search)!r}): {_why(code, edit.search, count)}")
    if problems:
        raise EditError("\n".join(problems))
    return code


def _why(code: str, search: str, count: int) -> str:
    if count > 1:
        return f"the search block occurs {count} times; include more surrounding lines so it occurs exactly once"
    if _squeeze(search) in _squeeze(code):
        return "the search block matches only if whitespace is ignored; copy indentation and line breaks exactly"
    return "the search block does not occur in the file; copy the lines to replace verbatim from the current file"


def _squeeze(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""
