"""Replaying a recorded run: the original archive, read-only, serves what was decided outside
the code (LLM answers, a person's review decisions), so a new run re-derives everything else.

Answers are keyed by experiment, role and order: the n-th attempt of `role` in experiment e0007
gets the n-th recorded attempt of `role` in e0007, whatever other experiments did meanwhile. An
attempt the original abandoned (the run stopped) was made again on resume, so it is skipped.
Where the new run departs from the record (a prompt now different, an answer never recorded,
no decision recorded) a `replay_divergence` event says so in the new archive.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from knowledge.archive import Archive
from knowledge.records import LLMCall

if TYPE_CHECKING:
    from agents.lab import Lab

REPLAY_FILE = "replay.json"  # in a replay's run directory: which run it replays
DIVERGENCE = "replay_divergence"
ABANDONED_PREFIX = "abandoned:"  # agents.llm.client.ABANDONED (not imported: that would import litellm)


class ReplayOrigin(BaseModel):
    """What `replay.json` holds."""

    run_dir: Path  # the original run's directory
    run: str       # its name in its archive


def prompt_sha256(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def only_figures_differ(recorded: list[dict[str, Any]], asked: list[dict[str, Any]]) -> bool:
    """Prompts that differ only in numbers: briefs show measured speed and latency, which vary
    from run to run; a changed template or context changes words."""
    def masked(messages: list[dict[str, Any]]) -> str:
        return NUMBER.sub("#", json.dumps(messages, sort_keys=True))
    return masked(recorded) == masked(asked)


def first_difference(recorded: list[dict[str, Any]], asked: list[dict[str, Any]]) -> str:
    """Where two prompts part, in words: which message and the text around the first changed character."""
    if len(recorded) != len(asked):
        return f"{len(asked)} messages where {len(recorded)} were recorded"
    for index, (old, new) in enumerate(zip(recorded, asked)):
        if old == new:
            continue
        a, b = str(old.get("content", "")), str(new.get("content", ""))
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return (f"message {index + 1} ({new.get('role')}) differs at character {at}: "
                f"recorded {a[max(0, at - 30):at + 50]!r}, now {b[max(0, at - 30):at + 50]!r}")
    return "the same messages in another order"


class ReplaySource:
    """The original run's answers and decisions, loaded once; thread-safe (read-only after init)."""

    def __init__(self, origin: ReplayOrigin, archive: Archive) -> None:
        self.origin = origin
        self._answers: dict[tuple[str | None, str], list[LLMCall]] = defaultdict(list)
        for call in archive.llm_calls(run=origin.run):
            if not call.error.startswith(ABANDONED_PREFIX):
                self._answers[(call.experiment_id, call.role)].append(call)
        self._decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in archive.events(run=origin.run, kind="review_decision"):
            self._decisions[event.experiment_id or ""].append(event.data)

    @classmethod
    def open(cls, run_dir: Path) -> ReplaySource:
        """The source named by RUN/replay.json."""
        origin = ReplayOrigin.model_validate_json((run_dir / REPLAY_FILE).read_text())
        with Archive.open(origin.run_dir, readonly=True) as archive:
            return cls(origin, archive)

    def answer(self, experiment_id: str | None, role: str, index: int) -> LLMCall | None:
        recorded = self._answers.get((experiment_id, role), [])
        return recorded[index] if index < len(recorded) else None

    def answers(self, experiment_id: str | None, role: str) -> int:
        return len(self._answers.get((experiment_id, role), []))

    def retried(self, experiment_id: str | None, role: str, index: int) -> bool:
        """Whether the original sent the same prompt again after attempt `index`: it took the
        failure for a transient one."""
        failed, following = self.answer(experiment_id, role, index), self.answer(experiment_id, role, index + 1)
        return failed is not None and following is not None and following.prompt == failed.prompt

    def post_decision(self, lab: Lab, exp_id: str) -> bool:
        """Record the original's next review decision on `exp_id` as a person would have; without
        one the experiment fails saying so (a replay waits for nobody). True when posted."""
        from agents.steps import fail

        posted = sum(1 for e in lab.archive.events(experiment_id=exp_id) if e.kind == "review_decision")
        recorded = self._decisions.get(exp_id, [])
        if posted < len(recorded):
            decision = recorded[posted]
            lab.log(exp_id, "review_decision", str(decision.get("action", "")), **decision)
            return True
        why = (f"no recorded review decision #{posted + 1} for {exp_id}: the original run made {len(recorded)} "
               "here (it was stopped while the candidate awaited review, or the replay reached review where "
               "the original did not)")
        lab.log(exp_id, DIVERGENCE, why, cause="decision")
        fail(lab, exp_id, f"replay: {why}")
        return False
