"""A person's review decision on a candidate, and how it changes the experiment."""
from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, model_validator

from agents.lab import Lab
from knowledge.novelty import code_hash, structure_hash
from knowledge.records import Insight, Stage
from sandbox.screen import screen_source
from evaluator.families.mixer import ALLOWED_IMPORTS


class ReviewDecision(BaseModel):
    action: Literal["approve", "reject", "replace", "idea"]
    note: str = ""          # reject: why; idea: the idea for the researcher
    code: str = ""          # replace: the new candidate file

    @model_validator(mode="after")
    def _complete(self) -> "ReviewDecision":
        if self.action == "replace" and not self.code.strip():
            raise ValueError("a replace decision needs the new code")
        if self.action == "idea" and not self.note.strip():
            raise ValueError("an idea decision needs the idea's text")
        return self


def pending_decision(lab: Lab, exp_id: str) -> dict | None:
    """The oldest decision `archlab review` recorded for this experiment that is not applied yet."""
    events = lab.archive.events(experiment_id=exp_id)
    decisions = [e for e in events if e.kind == "review_decision"]
    applied = [e for e in events if e.kind == "review_applied"]
    return decisions[len(applied)].data if len(decisions) > len(applied) else None


def apply_review(lab: Lab, exp_id: str, decision: ReviewDecision) -> None:
    """approve → train it; reject → finished with the note; replace → the person's code is
    screened and trained; idea → the idea is archived and the experiment is proposed anew."""
    _apply(lab, exp_id, decision)
    lab.log(exp_id, "review_applied", decision.action, note=decision.note)


def _apply(lab: Lab, exp_id: str, decision: ReviewDecision) -> None:
    if decision.action == "approve":
        lab.update(exp_id, stage=Stage.APPROVED)
    elif decision.action == "reject":
        lab.update(exp_id, stage=Stage.REJECTED, reason=f"rejected in review: {decision.note}")
    elif decision.action == "replace":
        report = screen_source(decision.code, ALLOWED_IMPORTS)
        if not report.passed:
            lab.update(exp_id, stage=Stage.FAILED, status="invalid", reason=f"replacement code refused: {report.reason}")
            return
        (lab.experiment_dir(exp_id) / "candidate.py").write_text(decision.code)
        lab.update(exp_id, code=decision.code, code_hash=code_hash(decision.code),
                   structure_hash=structure_hash(decision.code), proposer="person", stage=Stage.APPROVED)
    else:
        idea_id = "idea-" + hashlib.sha256(f"{exp_id}:{decision.note}".encode()).hexdigest()[:12]
        lab.archive.add_insight(Insight(id=idea_id, title="A person's idea", text=decision.note, source="person",
                                        run=lab.run, experiment_id=exp_id))
        lab.update(exp_id, stage=Stage.PROPOSED, motivation="", plan="", code="", code_hash="", structure_hash="")
