"""Turning what a person typed (form or JSON) into a review decision and recording it through
`archlab review`'s `record_decision`, one decision at a time per server."""
from __future__ import annotations

from pathlib import Path

from fastapi import Request
from pydantic import ValidationError

from archlab.commands.review import record_decision, replacement_decision
from archlab.errors import UsageError, validation_problems
from archlab.web.review_state import ACTIONS


def build(exp_id: str, action: str, note: str = "", code: str = "", name: str = ""):
    """The decision, or UsageError saying what is missing."""
    from agents.review import ReviewDecision

    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; choose one of: {', '.join(ACTIONS)}")
    try:
        if action == "reject":
            if not note.strip():
                raise UsageError("a rejection needs a note saying why (e.g. \"repeats e0003\"); the run records it "
                                 "as the experiment's reason")
            return ReviewDecision(action="reject", note=note)
        if action == "idea":
            if not note.strip():
                raise UsageError("an idea needs its text: what the researcher should try instead")
            return ReviewDecision(action="idea", note=note)
        if action == "replace":
            return replacement_decision(code, exp_id, note=note, name=name, where="the replacement",
                                        note_hint="the note field")
        return ReviewDecision(action="approve")
    except ValidationError as error:
        raise UsageError(validation_problems(error)) from error


def decide(request: Request, run_dir: Path, exp_id: str, action: str, note: str = "", code: str = "",
           name: str = "") -> str:
    """Record the decision (UsageError if it cannot be); returns a note for the person ("" if none)."""
    decision = build(exp_id, action, note=note, code=code, name=name)
    with request.app.state.web.deciding:
        return record_decision(run_dir, exp_id, decision)
