"""Where an experiment stands in review, as its page shows it: open for a decision, a decision
recorded that the run has not applied yet, or past review (with the decisions it had)."""
from __future__ import annotations

from dataclasses import dataclass

from archlab.insights.records import ExperimentDetail
from archlab.insights.snapshot import RunSnapshot
from knowledge.records import Event

ACTIONS = ("approve", "reject", "replace", "idea")


@dataclass(frozen=True)
class ReviewState:
    open: bool                   # awaiting review, nothing pending: the form is shown
    pending: str                 # the action recorded and not yet applied ("" if none)
    history: tuple[Event, ...]   # review decisions and their application, oldest first
    driven: bool                 # a driver runs: it applies a decision within seconds
    review_mode: bool            # the run asks for review at all


def review_state(snap: RunSnapshot, detail: ExperimentDetail, events: list[Event]) -> ReviewState:
    decisions = [e for e in events if e.kind == "review_decision"]
    applied = [e for e in events if e.kind == "review_applied"]
    pending = decisions[len(applied)].message if len(decisions) > len(applied) else ""
    return ReviewState(open=detail.row.stage == "awaiting_review" and not pending, pending=pending,
                       history=tuple(e for e in events if e.kind in ("review", "review_decision", "review_applied")),
                       driven=bool(snap.driver), review_mode=snap.config.review)
